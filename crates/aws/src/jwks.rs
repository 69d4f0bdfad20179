//! [`HttpsJwksSource`]: the `JwksSource` port over hyper + rustls, for the
//! identity providers' discovery documents and JWKS.
//!
//! The same hyper 1 / hyper-util / hyper-rustls / rustls stack the AWS SDK's
//! HTTPS client is built on, so nothing new is linked in for it. Its TLS
//! settings are the workspace's one HTTPS stack ([`crate::http`]): ring as
//! the crypto provider, Mozilla's roots compiled in ([`RootSet::Web`]: an
//! issuer can be any public host), and `SSL_CERT_FILE` to replace them (a
//! private CA, a local test server), exactly as for the SDK clients.
//!
//! [`RootSet::Web`]: crate::http::RootSet::Web

use std::sync::Arc;
use std::time::Duration;

use chime_sync_core::credentials::{FetchError, JwksSource};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use serde_json::Value;

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

    /// A source over `tls`: `chime_sync_aws::http::rustls_client_config(&roots, RootSet::Web)`.
    pub fn new(tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
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
