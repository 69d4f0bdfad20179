//! The one HTTPS stack of chime-identity-sync: rustls with the *ring* crypto provider, and trust
//! roots compiled into the binary, overridable with `SSL_CERT_FILE`.
//!
//! Every SDK client the functions build gets its HTTP client from the `SdkConfig`
//! ([`crate::lambda_sdk_config`], [`crate::sdk_config_loader`]), which carries
//! [`sdk_http_client`]. A client built later from the same `SdkConfig` (STS, Cognito) gets the
//! same stack for free. Code that speaks HTTPS without the SDK (an OIDC issuer's JWKS, say)
//! takes [`rustls_client_config`] and plugs it into `hyper-rustls` or `tokio-rustls`:
//!
//! ```no_run
//! # fn demo() -> Result<(), chime_sync_aws::http::TlsError> {
//! use chime_sync_aws::http::{TrustRoots, rustls_client_config};
//!
//! let roots = TrustRoots::from_env()?; // SSL_CERT_FILE, or the compiled-in roots
//! let tls = rustls_client_config(&roots, chime_sync_aws::http::RootSet::Web)?;
//! // hyper_rustls::HttpsConnectorBuilder::new().with_tls_config((*tls).clone())
//! //     .https_only().enable_http1().build()
//! # let _ = tls; Ok(()) }
//! ```
//!
//! (With `hyper-rustls`, turn its default features off and enable `ring`, `http1`, `tls12`:
//! its defaults pull in AWS-LC, a second crypto library.)
//!
//! ## Why ring, not AWS-LC
//! The SDK's default HTTPS client (`default-https-client`) uses rustls with AWS-LC. AWS-LC seeds
//! its DRBG at the first TLS handshake with CPU-jitter entropy on machines without
//! `/dev/sysgenid` (a VM-snapshot counter few kernels have), which made that first handshake
//! cost more CPU than the rest of a cold start together (docs/PERFORMANCE.md). ring draws its
//! randomness straight from the kernel (`getrandom(2)`, which blocks only until the kernel's
//! pool is first initialised, long before a Lambda sandbox runs our code) and adds nothing of
//! its own. Both end up trusting the same source, the kernel's CSPRNG; ring just does not add a
//! second, slow one on top. The workspace enables no AWS-LC feature anywhere, so the binaries
//! hold one TLS stack (`cargo tree -i aws-lc-rs` finds nothing).
//!
//! ## Which roots
//! [`RootSet::Aws`], what the SDK clients trust: the five Amazon Trust Services roots (Amazon
//! Root CA 1–4 and Starfield Services Root CA G2, the cross-signer), which AWS service endpoints
//! chain to since AWS moved them to its own CA. They are five PEM certificates in
//! `roots/amazon-trust-services.pem`, quick to parse. A full browser set is some 150
//! certificates, and the SDK's HTTP client parses its roots each time it builds a connector, so
//! it would cost every cold start its parse several times over (docs/PERFORMANCE.md).
//!
//! [`RootSet::Web`], for non-SDK HTTPS to arbitrary hosts (an IdP's JWKS): Mozilla's root
//! program as compiled into the `webpki-roots` crate, already in the form rustls uses, so it
//! costs no parsing at all. It includes the Amazon roots.
//!
//! No code reads the system's store (`/etc/ssl/certs`): that scan cost 2.7–3.4 ms per cold
//! start, and Lambda's base image gains nothing from it.
//!
//! ## `SSL_CERT_FILE`
//! When `SSL_CERT_FILE` names a PEM file, its certificates **replace** the compiled-in roots,
//! for every client and both root sets, as OpenSSL and `rustls-native-certs` treat that
//! variable. Use it for a TLS-inspecting proxy, a private endpoint with a private CA, or a
//! local fake with a throw-away CA. To trust the system store instead, point it at the
//! system bundle (`/etc/pki/tls/certs/ca-bundle.crt` on Amazon Linux 2023). The file is read
//! and checked once, at start-up: a missing, unreadable or malformed file, or one without a
//! certificate, is a start-up error naming `SSL_CERT_FILE`, never a panic or a silent
//! fallback. An empty value counts as unset; `SSL_CERT_DIR` is not read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;

/// The variable that replaces the compiled-in roots.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// The Amazon Trust Services roots, PEM (with a comment naming each one).
pub const AMAZON_TRUST_SERVICES_PEM: &str = include_str!("../roots/amazon-trust-services.pem");

/// `SSL_CERT_FILE` could not be used. Each variant names the file.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{SSL_CERT_FILE}={path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{SSL_CERT_FILE}={path}: not a PEM certificate file: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("{SSL_CERT_FILE}={path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("{SSL_CERT_FILE}={path}: certificate {index} cannot be a trust root: {reason}")]
    BadCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    /// rustls or the SDK's HTTP client refused the configuration (a bug, not an input error).
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

/// Which compiled-in roots a client trusts when `SSL_CERT_FILE` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSet {
    /// The Amazon Trust Services roots: AWS service endpoints.
    Aws,
    /// Mozilla's root program (`webpki-roots`): any public HTTPS host.
    Web,
}

/// Where trust comes from: the compiled-in roots, or the file `SSL_CERT_FILE` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// The compiled-in roots (see [`RootSet`]).
    Compiled,
    /// The certificates of an `SSL_CERT_FILE`, checked, in PEM as read.
    File {
        path: PathBuf,
        pem: Vec<u8>,
        certificates: usize,
    },
}

impl TrustRoots {
    /// `SSL_CERT_FILE` from the process environment, or the compiled-in roots.
    pub fn from_env() -> Result<Self, TlsError> {
        Self::from_lookup(|name| std::env::var_os(name).map(PathBuf::from))
    }

    /// As [`from_env`](Self::from_env), with the variable read through `lookup` (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<PathBuf>) -> Result<Self, TlsError> {
        match lookup(SSL_CERT_FILE).filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => Self::from_pem_file(&path),
            None => Ok(Self::Compiled),
        }
    }

    /// The certificates of one PEM file, each checked to be usable as a trust root, so a bad
    /// file is an error here and not a panic inside the HTTP client later.
    pub fn from_pem_file(path: &Path) -> Result<Self, TlsError> {
        let pem = std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let certificates = parse_pem(&pem).map_err(|reason| TlsError::Pem {
            path: path.to_owned(),
            reason,
        })?;
        if certificates.is_empty() {
            return Err(TlsError::NoCertificate {
                path: path.to_owned(),
            });
        }
        let mut store = RootCertStore::empty();
        for (i, cert) in certificates.into_iter().enumerate() {
            store.add(cert).map_err(|e| TlsError::BadCertificate {
                path: path.to_owned(),
                index: i + 1,
                reason: e.to_string(),
            })?;
        }
        Ok(Self::File {
            path: path.to_owned(),
            certificates: store.len(),
            pem,
        })
    }

    /// What a log line or a report says about the roots in use.
    pub fn describe(&self, set: RootSet) -> String {
        match (self, set) {
            (
                Self::File {
                    path, certificates, ..
                },
                _,
            ) => {
                format!(
                    "{certificates} certificate(s) from {SSL_CERT_FILE}={}",
                    path.display()
                )
            }
            (Self::Compiled, RootSet::Aws) => "the compiled-in Amazon Trust Services roots".into(),
            (Self::Compiled, RootSet::Web) => "the compiled-in webpki-roots (Mozilla)".into(),
        }
    }

    /// The roots as rustls holds them.
    pub fn root_cert_store(&self, set: RootSet) -> RootCertStore {
        match (self, set) {
            (Self::File { pem, .. }, _) => store_of(pem),
            (Self::Compiled, RootSet::Aws) => store_of(AMAZON_TRUST_SERVICES_PEM.as_bytes()),
            (Self::Compiled, RootSet::Web) => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        }
    }

    /// The PEM the SDK's HTTP client is given ([`RootSet::Aws`] when compiled in).
    fn sdk_pem(&self) -> &[u8] {
        match self {
            Self::File { pem, .. } => pem,
            Self::Compiled => AMAZON_TRUST_SERVICES_PEM.as_bytes(),
        }
    }
}

/// Every certificate of a PEM text; other PEM sections (keys, CRLs) are skipped.
fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e:?}"))
}

/// A store of PEM certificates already checked (the compiled-in file, or a checked
/// `SSL_CERT_FILE`); anything unparsable is skipped rather than trusted.
fn store_of(pem: &[u8]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(parse_pem(pem).unwrap_or_default());
    store
}

/// The SDK's hyper 1 HTTPS client with rustls on *ring*, trusting `roots` ([`RootSet::Aws`]
/// when compiled in), with `TCP_NODELAY` set (the SDK's default) and the SDK's own connect and
/// read timeouts, connection pooling and error classification (what its retries rely on).
pub fn sdk_http_client(roots: &TrustRoots) -> Result<SharedHttpClient, TlsError> {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(roots.sdk_pem());
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

/// The HTTP client for an SDK client built from `sdk_config`: the one it carries, or, for an
/// `SdkConfig` assembled by hand without one (tests, tools), [`sdk_http_client`] with the
/// compiled-in roots. The workspace enables no SDK default HTTPS client, so without this such
/// a client would fail every call with "no HTTP client".
pub fn http_client_for(sdk_config: &aws_config::SdkConfig) -> Option<SharedHttpClient> {
    sdk_config
        .http_client()
        .or_else(|| sdk_http_client(&TrustRoots::Compiled).ok())
}

/// A rustls client configuration on the same provider (*ring*) and the same `SSL_CERT_FILE`
/// rule as the SDK clients, for HTTPS outside the SDK. `set` picks the compiled-in roots when
/// `SSL_CERT_FILE` is unset: [`RootSet::Web`] for arbitrary hosts, [`RootSet::Aws`] for AWS
/// endpoints. TLS 1.2 and 1.3 (rustls's safe defaults), no client certificate; ALPN is left to
/// the connector (hyper-rustls sets it from the HTTP versions it enables).
pub fn rustls_client_config(
    roots: &TrustRoots,
    set: RootSet,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots.root_cert_store(set))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A scratch file under the target directory, unique per test.
    fn scratch(name: &str, contents: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("chime-sync-http-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn lookup(value: Option<&Path>) -> impl Fn(&str) -> Option<PathBuf> {
        let map: HashMap<&str, PathBuf> = value
            .map(|p| (SSL_CERT_FILE, p.to_owned()))
            .into_iter()
            .collect();
        move |name| map.get(name).cloned()
    }

    /// The compiled-in AWS roots are exactly five parsable trust anchors, and each is one of
    /// Mozilla's (webpki-roots): the file holds the genuine Amazon Trust Services roots.
    #[test]
    fn compiled_aws_roots_are_the_amazon_roots_mozilla_trusts() {
        let store = TrustRoots::Compiled.root_cert_store(RootSet::Aws);
        assert_eq!(store.len(), 5);
        for anchor in &store.roots {
            assert!(
                webpki_roots::TLS_SERVER_ROOTS.iter().any(|m| {
                    m.subject == anchor.subject
                        && m.subject_public_key_info == anchor.subject_public_key_info
                }),
                "a compiled-in Amazon root is not in Mozilla's set"
            );
        }
        for cn in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                AMAZON_TRUST_SERVICES_PEM.contains(cn),
                "{cn} is not named in the PEM file"
            );
        }
    }

    #[test]
    fn compiled_web_roots_are_mozillas_and_include_the_amazon_roots() {
        let web = TrustRoots::Compiled.root_cert_store(RootSet::Web);
        assert_eq!(web.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(web.len() > 100);
        let aws = TrustRoots::Compiled.root_cert_store(RootSet::Aws);
        for anchor in &aws.roots {
            assert!(web.roots.iter().any(|w| w.subject == anchor.subject));
        }
    }

    #[test]
    fn unset_or_empty_ssl_cert_file_means_the_compiled_roots() {
        assert_eq!(
            TrustRoots::from_lookup(lookup(None)).unwrap(),
            TrustRoots::Compiled
        );
        assert_eq!(
            TrustRoots::from_lookup(lookup(Some(Path::new("")))).unwrap(),
            TrustRoots::Compiled
        );
    }

    #[test]
    fn ssl_cert_file_replaces_the_compiled_roots_for_both_sets() {
        // Two of the Amazon roots stand in for a private CA bundle.
        let two: String = AMAZON_TRUST_SERVICES_PEM
            .split_inclusive("-----END CERTIFICATE-----\n")
            .take(2)
            .collect();
        let path = scratch("two-roots.pem", two.as_bytes());
        let roots = TrustRoots::from_lookup(lookup(Some(&path))).unwrap();
        assert!(matches!(
            roots,
            TrustRoots::File {
                certificates: 2,
                ..
            }
        ));
        assert_eq!(roots.root_cert_store(RootSet::Aws).len(), 2);
        assert_eq!(roots.root_cert_store(RootSet::Web).len(), 2);
        assert!(roots.describe(RootSet::Web).contains("SSL_CERT_FILE="));
        assert!(sdk_http_client(&roots).is_ok());
        assert!(rustls_client_config(&roots, RootSet::Web).is_ok());
    }

    #[test]
    fn a_bad_ssl_cert_file_is_an_error_naming_the_variable() {
        let missing = std::env::temp_dir().join("chime-sync-no-such-bundle.pem");
        let err = TrustRoots::from_lookup(lookup(Some(&missing))).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(err.to_string().starts_with("SSL_CERT_FILE="), "{err}");

        let path = scratch("not-pem.txt", b"just some text, no certificate\n");
        let err = TrustRoots::from_lookup(lookup(Some(&path))).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");

        // A PEM block whose base64 is broken.
        let path = scratch(
            "broken-base64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n",
        );
        let err = TrustRoots::from_lookup(lookup(Some(&path))).unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");

        // Valid PEM, valid base64, but not an X.509 certificate.
        let path = scratch(
            "not-a-cert.pem",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let err = TrustRoots::from_lookup(lookup(Some(&path))).unwrap_err();
        assert!(
            matches!(err, TlsError::BadCertificate { index: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("certificate 1"), "{err}");
    }

    #[test]
    fn compiled_roots_build_both_clients() {
        assert!(sdk_http_client(&TrustRoots::Compiled).is_ok());
        let config = rustls_client_config(&TrustRoots::Compiled, RootSet::Web).unwrap();
        assert!(!config.crypto_provider().cipher_suites.is_empty());
    }
}
