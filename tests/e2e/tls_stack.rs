//! One TLS stack: the workspace resolves no AWS-LC and no second (legacy) HTTPS stack.
//!
//! Cargo unifies features across the workspace, so one manifest enabling an SDK's
//! `default-https-client` or `rustls` feature, or hyper-rustls's default features, would link
//! AWS-LC (and its slow first handshake, docs/PERFORMANCE.md) or hyper 0.14 + rustls 0.21 into
//! every function. The lock file is where that shows: these tests read it and the manifests.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The `(name, version)` of every package in the workspace's Cargo.lock.
fn locked_packages() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn no_aws_lc_and_one_rustls_in_the_lock_file() {
    let packages = locked_packages();
    for banned in ["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys", "s2n-tls"] {
        assert!(
            !packages.iter().any(|(name, _)| name == banned),
            "{banned} is in Cargo.lock: some manifest enabled a crypto provider other than ring \
             (an SDK's default-https-client, or hyper-rustls/rustls default features)"
        );
    }
    let rustls: Vec<&String> = packages
        .iter()
        .filter(|(name, _)| name == "rustls")
        .map(|(_, version)| version)
        .collect();
    assert_eq!(rustls.len(), 1, "more than one rustls: {rustls:?}");
    assert!(
        !packages
            .iter()
            .any(|(name, version)| name == "hyper" && version.starts_with("0.")),
        "hyper 0.x is in Cargo.lock: the SDK's legacy `rustls` feature is on somewhere"
    );
    assert!(packages.iter().any(|(name, _)| name == "ring"));
}

/// Every workspace manifest that names an SDK or TLS crate leaves its defaults off, or takes
/// the workspace's (which are off).
#[test]
fn no_manifest_turns_the_sdk_default_https_client_back_on() {
    let mut manifests = vec![root().join("Cargo.toml")];
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        if path.is_file() {
            manifests.push(path);
        }
    }
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        for banned in [
            "default-https-client",
            "rustls-aws-lc",
            "\"aws-lc-rs\"",
            "aws_lc_rs",
        ] {
            assert!(
                !text
                    .lines()
                    .any(|l| !l.trim_start().starts_with('#') && l.contains(banned)),
                "{} enables {banned}",
                manifest.display()
            );
        }
    }
}
