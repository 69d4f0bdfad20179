//! The issuers' signing keys: the [`JwksSource`] port (an HTTP GET of a JSON
//! document) and the per-sandbox [`KeyCache`] on top of it.
//!
//! Keys are fetched on first use (OIDC discovery, then the JWKS, or the JWKS
//! URL from the configuration) and kept for the life of the sandbox. A token
//! naming a key the cache does not hold (the IdP rotated its keys) triggers
//! one refetch, at most once per [`KeyCache::min_refetch`] per issuer, so a
//! flood of tokens with made-up `kid`s cannot turn into a flood of requests
//! to the IdP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use thiserror::Error;
use tokio::time::Instant;

use super::issuers::{JwksLocation, TrustedIssuer};

/// A failed GET: unreachable, timed out, not 200, or not JSON.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("GET {url}: {reason}")]
pub struct FetchError {
    pub url: String,
    pub reason: String,
}

/// Fetches a JSON document over HTTP(S). The real one is hyper + rustls
/// (`chime-sync-aws`); tests and the replay use an in-memory one.
pub trait JwksSource: Send + Sync {
    fn get_json(&self, url: &str) -> impl Future<Output = Result<Value, FetchError>> + Send;
}

impl<T: JwksSource + ?Sized> JwksSource for &T {
    fn get_json(&self, url: &str) -> impl Future<Output = Result<Value, FetchError>> + Send {
        (**self).get_json(url)
    }
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The issuer's keys could not be fetched or read: the client is not at
    /// fault, so this is answered 503, never 401.
    #[error("the issuer's signing keys are unavailable: {0}")]
    Unavailable(String),
    /// The keys were fetched (or refetched within the last minute) and none
    /// has this `kid`.
    #[error("the issuer has no signing key with this kid")]
    UnknownKey,
}

struct Entry {
    keys: Arc<Vec<Jwk>>,
    /// When the keys were last fetched, or a refetch last attempted.
    attempted: Instant,
}

/// Every trusted issuer's keys, cached for the life of the sandbox.
pub struct KeyCache<S> {
    source: S,
    /// The least time between two fetches of one issuer's keys caused by an
    /// unknown `kid` (60 s).
    pub min_refetch: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl<S: JwksSource> KeyCache<S> {
    pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(60);

    pub fn new(source: S) -> Self {
        Self {
            source,
            min_refetch: Self::DEFAULT_MIN_REFETCH,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The key `kid` of `issuer`: from the cache, or after a (rate-limited) fetch.
    pub async fn key(&self, issuer: &TrustedIssuer, kid: &str) -> Result<Jwk, KeyError> {
        let cached = self.cached(&issuer.issuer);
        if let Some((keys, attempted)) = &cached {
            if let Some(jwk) = find(keys, kid) {
                return Ok(jwk);
            }
            if attempted.elapsed() < self.min_refetch {
                return Err(KeyError::UnknownKey);
            }
        }
        let fetched = self.fetch(issuer).await;
        let mut entries = self.lock();
        match fetched {
            Ok(keys) => {
                let found = find(&keys, kid);
                entries.insert(
                    issuer.issuer.clone(),
                    Entry {
                        keys: Arc::new(keys),
                        attempted: Instant::now(),
                    },
                );
                found.ok_or(KeyError::UnknownKey)
            }
            Err(e) => {
                // Keep the keys we have; count the attempt so an unknown kid
                // does not retry the IdP at request rate. With nothing cached
                // every request tries again: nobody can be served otherwise.
                if let Some(entry) = entries.get_mut(&issuer.issuer) {
                    entry.attempted = Instant::now();
                }
                Err(e)
            }
        }
    }

    fn cached(&self, issuer: &str) -> Option<(Arc<Vec<Jwk>>, Instant)> {
        self.lock()
            .get(issuer)
            .map(|e| (Arc::clone(&e.keys), e.attempted))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Discovery (when configured so), then the JWKS.
    async fn fetch(&self, issuer: &TrustedIssuer) -> Result<Vec<Jwk>, KeyError> {
        let unavailable = |e: FetchError| KeyError::Unavailable(e.to_string());
        let jwks_uri = match &issuer.jwks {
            JwksLocation::Explicit(uri) => uri.clone(),
            JwksLocation::Discovery(url) => {
                let doc = self.source.get_json(url).await.map_err(unavailable)?;
                jwks_uri_from_discovery(&doc, &issuer.issuer)
                    .map_err(|why| KeyError::Unavailable(format!("{url}: {why}")))?
            }
        };
        let doc = self.source.get_json(&jwks_uri).await.map_err(unavailable)?;
        keys_from_jwks(&doc).map_err(|why| KeyError::Unavailable(format!("{jwks_uri}: {why}")))
    }
}

/// `jwks_uri` of an OIDC discovery document, which must name this issuer
/// (OpenID Connect Discovery 1.0, section 4.3).
fn jwks_uri_from_discovery(doc: &Value, issuer: &str) -> Result<String, &'static str> {
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer");
    }
    doc.get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned)
        .ok_or("the discovery document has no jwks_uri URL")
}

/// The keys of a JWKS document. A key this library cannot read (a new key
/// type, an encryption key) is skipped rather than failing the whole set.
fn keys_from_jwks(doc: &Value) -> Result<Vec<Jwk>, &'static str> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWKS document (no `keys` array)")?;
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .collect())
}

fn find(keys: &[Jwk], kid: &str) -> Option<Jwk> {
    keys.iter()
        .find(|k| k.common.key_id.as_deref() == Some(kid))
        .cloned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::credentials::issuers::TrustedIssuers;
    use crate::credentials::memory::StaticJwks;

    const ISSUER: &str = "https://idp.example.com";
    const JWKS: &str = "https://idp.example.com/keys";

    fn issuer(discovery: bool) -> TrustedIssuer {
        let raw = if discovery {
            json!({ISSUER: {"audiences": ["a"]}})
        } else {
            json!({ISSUER: {"audiences": ["a"], "jwksUri": JWKS}})
        };
        TrustedIssuers::parse(&raw.to_string())
            .unwrap()
            .get(ISSUER)
            .unwrap()
            .clone()
    }

    fn jwks(kids: &[&str]) -> Value {
        let keys: Vec<Value> = kids
            .iter()
            .map(|kid| {
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
            })
            .collect();
        json!({"keys": keys})
    }

    #[tokio::test]
    async fn discovers_the_jwks_once_and_serves_from_the_cache() {
        let source = StaticJwks::new();
        source.set(
            &format!("{ISSUER}/.well-known/openid-configuration"),
            json!({"issuer": ISSUER, "jwks_uri": JWKS}),
        );
        source.set(JWKS, jwks(&["k1", "k2"]));
        let cache = KeyCache::new(&source);
        for kid in ["k1", "k2", "k1"] {
            let key = cache.key(&issuer(true), kid).await.unwrap();
            assert_eq!(key.common.key_id.as_deref(), Some(kid));
        }
        assert_eq!(source.fetches(JWKS), 1);
        assert_eq!(
            source.fetches(&format!("{ISSUER}/.well-known/openid-configuration")),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_kid_refetches_at_most_once_a_minute() {
        let source = StaticJwks::new();
        source.set(JWKS, jwks(&["old"]));
        let cache = KeyCache::new(&source);
        let issuer = issuer(false);
        cache.key(&issuer, "old").await.unwrap();
        // Rotation: the IdP now publishes "new"; a token with "new" refetches once.
        source.set(JWKS, jwks(&["old", "new"]));
        assert_eq!(cache.key(&issuer, "bogus").await, Err(KeyError::UnknownKey));
        assert_eq!(source.fetches(JWKS), 1, "fetched less than a minute ago");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(cache.key(&issuer, "bogus").await, Err(KeyError::UnknownKey));
        assert_eq!(source.fetches(JWKS), 2, "one refetch after a minute");
        for _ in 0..5 {
            assert_eq!(cache.key(&issuer, "bogus").await, Err(KeyError::UnknownKey));
        }
        assert_eq!(source.fetches(JWKS), 2, "no more within the minute");
        assert!(
            cache.key(&issuer, "new").await.is_ok(),
            "served from the refetch"
        );
        assert_eq!(source.fetches(JWKS), 2);
    }

    #[tokio::test]
    async fn an_unreachable_or_broken_jwks_is_unavailable_not_unknown() {
        let source = StaticJwks::new();
        let cache = KeyCache::new(&source);
        let err = cache.key(&issuer(false), "k").await.unwrap_err();
        assert!(matches!(err, KeyError::Unavailable(_)), "{err:?}");
        source.set(JWKS, json!({"no": "keys"}));
        assert!(matches!(
            cache.key(&issuer(false), "k").await,
            Err(KeyError::Unavailable(m)) if m.contains("no `keys` array")
        ));
        // Nothing cached: every request tries again.
        assert_eq!(source.fetches(JWKS), 2);
        let discovery = format!("{ISSUER}/.well-known/openid-configuration");
        source.set(
            &discovery,
            json!({"issuer": "https://evil.example.com", "jwks_uri": JWKS}),
        );
        assert!(matches!(
            cache.key(&issuer(true), "k").await,
            Err(KeyError::Unavailable(m)) if m.contains("another issuer")
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refetch_keeps_the_cached_keys() {
        let source = StaticJwks::new();
        source.set(JWKS, jwks(&["k1"]));
        let cache = KeyCache::new(&source);
        let issuer = issuer(false);
        cache.key(&issuer, "k1").await.unwrap();
        source.set_down(true);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(matches!(
            cache.key(&issuer, "k2").await,
            Err(KeyError::Unavailable(_))
        ));
        assert!(cache.key(&issuer, "k1").await.is_ok());
    }

    #[test]
    fn unreadable_keys_are_skipped() {
        let doc = json!({"keys": [{"kty": "weird"}, {"kty": "EC", "crv": "P-256", "kid": "ok",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}, 5]});
        let keys = keys_from_jwks(&doc).unwrap();
        assert!(find(&keys, "ok").is_some());
    }
}
