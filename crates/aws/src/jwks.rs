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
//! Each answer carries its `Cache-Control: max-age` (less `Age`) for the key
//! cache, which keeps the keys that long within its bounds
//! (`chime_sync_core::credentials::keys`).
//!
//! [`RootSet::Web`]: crate::http::RootSet::Web

use std::sync::Arc;
use std::time::Duration;

use chime_sync_core::credentials::{FetchError, Fetched, JwksSource};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::HeaderMap;
use hyper::body::Bytes;
use hyper::header::{AGE, CACHE_CONTROL};
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
    async fn get_json(&self, url: &str) -> Result<Fetched, FetchError> {
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
            let max_age = max_age(response.headers());
            let body = Limited::new(response.into_body(), Self::MAX_BYTES)
                .collect()
                .await
                .map_err(|e| fail(format!("reading the body: {e}")))?
                .to_bytes();
            let doc: Value =
                serde_json::from_slice(&body).map_err(|_| fail("the body is not JSON".into()))?;
            Ok(Fetched { doc, max_age })
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

/// How long the response may be reused: `Cache-Control: max-age` (RFC 9111,
/// 5.2.2.1) less `Age` (a cache on the way held it that long already).
/// `None` without a readable `max-age`, or with `no-store` or `no-cache`,
/// which ask for a fetch per use; the key cache then keeps its default.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        for directive in value.to_str().ok()?.split(',') {
            let (name, argument) = directive
                .split_once('=')
                .map_or((directive, None), |(n, a)| (n, Some(a)));
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" | "no-cache" => return None,
                "max-age" => {
                    max_age = argument.and_then(|a| a.trim().trim_matches('"').parse::<u64>().ok());
                }
                _ => {}
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|secs| Duration::from_secs(secs.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// Response headers, and the reuse time they allow.
    type Case = (&'static [(&'static str, &'static str)], Option<Duration>);

    #[test]
    fn max_age_is_read_from_cache_control_less_age() {
        let secs = |s| Some(Duration::from_secs(s));
        let cases: [Case; 11] = [
            (&[("cache-control", "max-age=600")], secs(600)),
            (
                &[("cache-control", "public, max-age=86400, must-revalidate")],
                secs(86_400),
            ),
            (&[("cache-control", "Max-Age = \"300\"")], secs(300)),
            (
                &[("cache-control", "public"), ("cache-control", "max-age=60")],
                secs(60),
            ),
            (
                &[("cache-control", "max-age=600"), ("age", "100")],
                secs(500),
            ),
            (&[("cache-control", "max-age=600"), ("age", "900")], secs(0)),
            (&[("cache-control", "no-store")], None),
            (&[("cache-control", "max-age=600, no-cache")], None),
            (&[("cache-control", "max-age=soon")], None),
            (&[("expires", "Thu, 01 Jan 2099 00:00:00 GMT")], None),
            (&[], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(max_age(&headers(pairs)), want, "{pairs:?}");
        }
    }
}
