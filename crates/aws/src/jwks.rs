//! [`HttpsJwksSource`]: the `JwksSource` port over hyper + rustls, for the
//! identity providers' discovery documents and JWKS.
//!
//! The same hyper 1 / hyper-util / hyper-rustls / rustls stack the AWS SDK's
//! HTTPS client is built on, so nothing new is linked in for it. The TLS
//! settings are made in one place, [`tls_client_config`]: ring as the crypto
//! provider, Mozilla's roots compiled in (no scan of the system's store at
//! cold start), and `SSL_CERT_FILE` to replace them (a private CA, a local
//! test server). When the SDK's own TLS configuration becomes shared, that
//! one function is what changes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chime_sync_core::credentials::{FetchError, JwksSource};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;

/// The variable that replaces the compiled-in roots with a PEM bundle.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// Why the TLS configuration could not be built (read at start-up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{SSL_CERT_FILE}={path}: {reason}")]
pub struct TlsConfigError {
    pub path: String,
    pub reason: String,
}

/// The TLS client configuration for outbound HTTPS: ring, TLS 1.2 and 1.3,
/// Mozilla's roots (webpki-roots), or the PEM certificates of `ssl_cert_file`
/// instead when given.
pub fn tls_client_config(ssl_cert_file: Option<&Path>) -> Result<ClientConfig, TlsConfigError> {
    let roots = match ssl_cert_file {
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => {
            let fail = |reason: String| TlsConfigError {
                path: path.display().to_string(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(format!("cannot read: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| fail(format!("not a PEM certificate bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(fail("holds no certificate".into()));
            }
            roots
        }
    };
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError {
            path: String::new(),
            reason: e.to_string(),
        })
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// GETs JSON documents over HTTPS (and over HTTP for the loopback issuers the
/// configuration allows), each within a timeout and a size limit.
#[derive(Clone)]
pub struct HttpsJwksSource {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpsJwksSource {
    /// Largest document accepted (a JWKS is a few KB).
    pub const MAX_BYTES: usize = 256 * 1024;

    pub fn new(tls: ClientConfig, timeout: Duration) -> Self {
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }
}

impl JwksSource for HttpsJwksSource {
    async fn get_json(&self, url: &str) -> Result<Value, FetchError> {
        let fail = |reason: String| FetchError {
            url: url.to_owned(),
            reason,
        };
        let uri: hyper::Uri = url.parse().map_err(|_| fail("not a valid URL".into()))?;
        let fetch = async {
            let response = self
                .client
                .get(uri)
                .await
                .map_err(|e| fail(connect_reason(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(fail(format!("HTTP {}", status.as_u16())));
            }
            let body = Limited::new(response.into_body(), Self::MAX_BYTES)
                .collect()
                .await
                .map_err(|e| fail(format!("reading the body: {e}")))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|_| fail("the body is not JSON".into()))
        };
        tokio::time::timeout(self.timeout, fetch)
            .await
            .unwrap_or_else(|_| Err(fail(format!("no answer within {:?}", self.timeout))))
    }
}

/// The innermost cause of a client error (connection refused, certificate
/// not trusted, ...), which is what an operator needs to see.
fn connect_reason(e: &hyper_util::client::legacy::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}
