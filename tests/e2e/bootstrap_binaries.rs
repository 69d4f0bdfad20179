//! What the deployed bootstraps link, read from the binaries themselves (the debug builds the
//! other tests spawn, or the ones `CHIME_SYNC_BOOTSTRAP_DIR` names, such as the release build),
//! for every binary template.yaml deploys. Each property comes from the source and the link
//! arguments, not from the optimiser, so the debug build shows it as the release build does:
//!
//! - a position-dependent executable (ELF type `EXEC`): `crates/bootstrap-build.rs` links them
//!   with `-no-pie`, so no relocation dirties their constants at start-up;
//! - no glibc libm: `chime_sync_runtime::math` defines the one symbol it was loaded for;
//! - none of aws-config's default credential and region chains: the functions build their
//!   `SdkConfig` from the environment (`chime_sync_aws::lambda_sdk_config`), so neither the
//!   IMDS address nor the ECS and web-identity variables those providers read is in the binary.
//!
//! Each of these is there to keep the functions' peak RSS under its target
//! (docs/PERFORMANCE.md, "Peak RSS"); a dependency or build change that undoes one fails here
//! rather than only in the next benchmark run.

use testkit::bins::bootstrap;
use testkit::workspace_root;

/// The `Binary:` build properties of template.yaml, as scripts/test.sh reads them.
fn deployed_binaries() -> Vec<String> {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let binaries: Vec<String> = template
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Binary:"))
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(binaries.len() >= 5, "template.yaml deploys {binaries:?}");
    binaries
}

/// memchr's substring search: a byte-by-byte scan of a debug binary in an unoptimised test
/// was most of this theme's time.
fn contains(haystack: &[u8], needle: &str) -> bool {
    memchr::memmem::find(haystack, needle.as_bytes()).is_some()
}

#[test]
fn bootstraps_are_position_dependent_and_link_neither_libm_nor_the_default_chains() {
    for name in deployed_binaries() {
        let path = bootstrap(&name);
        let elf = std::fs::read(&path).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF", "{}", path.display());
        // e_type, little-endian, at offset 16: 2 is ET_EXEC, 3 is ET_DYN (a PIE).
        let e_type = u16::from_le_bytes([elf[16], elf[17]]);
        assert_eq!(
            e_type, 2,
            "{name} is not linked with -no-pie (e_type {e_type})"
        );
        // The dynamic section names the libraries it needs in .dynstr.
        assert!(contains(&elf, "libc.so.6"), "{name}: no libc.so.6 at all?");
        assert!(
            !contains(&elf, "libm.so.6"),
            "{name} needs glibc's libm again"
        );
        for chain_only in [
            "169.254.169.254",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ] {
            assert!(
                !contains(&elf, chain_only),
                "{name} contains {chain_only:?}: aws-config's default chains are linked in"
            );
        }
    }
}
