//! The issuers' signing keys: the [`JwksSource`] port (an HTTP GET of a JSON
//! document, with the lifetime its response gives) and the per-sandbox
//! [`KeyCache`] on top of it.
//!
//! **Keys have a lifetime.** They are fetched on first use (OIDC discovery,
//! then the JWKS, or the JWKS URL from the configuration) and trusted for the
//! JWKS response's `Cache-Control: max-age` (less its `Age`), bounded to
//! [`MIN_LIFETIME`, `MAX_LIFETIME`] = [5 min, 24 h]; for [`DEFAULT_LIFETIME`]
//! (1 h) when the response has none or says `no-store` / `no-cache` (which
//! ask for a fetch per use: no IdP can take that from every sandbox). The
//! first request after the lifetime refetches and the fresh set replaces
//! the old one, so a key the IdP stopped publishing (revoked) is refused at
//! most one lifetime after. Below 5 min every sandbox would keep asking the
//! IdP; beyond 24 h a revoked key would live on for days.
//!
//! **What the IdP is asked, whatever the traffic**, per issuer:
//!
//! - one fetch at a time (single flight): requests that need the issuer's
//!   keys while a fetch is in flight wait for it and use its outcome;
//! - a token naming a key the set lacks (the IdP rotated) refetches, at most
//!   once per [`KeyCache::min_refetch`] (60 s);
//! - a failed fetch is remembered for [`NEGATIVE_TTL`] (30 s), also when
//!   nothing is cached yet, and requests meanwhile get its error (503).
//!
//! So a flood of tokens naming a trusted issuer (valid, or forged with
//! made-up `kid`s, against an IdP that is slow or down) costs at most one
//! discovery and one JWKS request per issuer per interval.
//!
//! **A refetch that fails once the lifetime is over** leaves the expired
//! keys in service, with a WARN per failed attempt, until 24 h after the
//! last successful fetch; from then on the issuer's tokens are answered 503
//! until a fetch succeeds. Refusing every sign-in because the IdP blipped is
//! worse than trusting a while longer the keys it last published (and a
//! revocation published during the outage cannot be learned of anyway); 24 h
//! is the longest lifetime an IdP may ask for, so expired keys are never
//! trusted longer than a successful fetch could have made them. A `kid` the
//! expired set lacks is unavailable (503), not unknown: the IdP may publish it.
//!
//! **Every URL fetched** passes the rule of the configured ones
//! ([`super::url_rule`]): `https://`, or `http://` only on the loopback. The
//! `jwks_uri` a discovery document names is no exception: keys fetched over
//! plain HTTP could be swapped on the path. A URL that fails it is not
//! fetched, and the keys are unavailable with a message naming the rule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use thiserror::Error;
use tokio::time::Instant;
use tracing::{info, warn};

use super::issuers::{JwksLocation, TrustedIssuer};
use super::url_rule::check_fetchable;

/// The shortest lifetime of a set of keys, whatever `max-age` says.
pub const MIN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The longest lifetime of a set of keys, and how long after the last
/// successful fetch expired keys may still serve while refetches fail.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The lifetime of keys whose response gave no usable `max-age`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How long a failed fetch is remembered before an issuer is asked again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// The logs' `source` field, as the credential-exchange handler's lines.
const LOG_SOURCE: &str = "credential-exchange";

/// How long keys fetched with this `max-age` are trusted.
pub fn lifetime(max_age: Option<Duration>) -> Duration {
    max_age.map_or(DEFAULT_LIFETIME, |age| {
        age.clamp(MIN_LIFETIME, MAX_LIFETIME)
    })
}

/// A failed GET: unreachable, timed out, not 200, or not JSON.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("GET {url}: {reason}")]
pub struct FetchError {
    pub url: String,
    pub reason: String,
}

/// A document fetched, and how long its response says it may be reused.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub doc: Value,
    /// `Cache-Control: max-age` less `Age`; `None` when the response has no
    /// `max-age` or says `no-store` / `no-cache` (then [`DEFAULT_LIFETIME`]).
    pub max_age: Option<Duration>,
}

/// Fetches a JSON document over HTTP(S). The real one is hyper + rustls
/// (`chime-sync-aws`); tests and the replay use an in-memory one.
pub trait JwksSource: Send + Sync {
    fn get_json(&self, url: &str) -> impl Future<Output = Result<Fetched, FetchError>> + Send;
}

impl<T: JwksSource + ?Sized> JwksSource for &T {
    fn get_json(&self, url: &str) -> impl Future<Output = Result<Fetched, FetchError>> + Send {
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

/// One issuer's keys as last fetched.
struct Keys {
    set: Arc<Vec<Jwk>>,
    /// When they were fetched: expired keys serve until 24 h after.
    fetched: Instant,
    expires: Instant,
}

/// One fetch attempt: when, and why it failed (`None`: it succeeded).
struct Attempt {
    at: Instant,
    failure: Option<String>,
}

#[derive(Default)]
struct State {
    keys: Option<Keys>,
    last: Option<Attempt>,
}

/// One issuer: what is cached, and the lock a fetch holds (single flight).
#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    flight: tokio::sync::Mutex<()>,
}

/// Every trusted issuer's keys, each set for its lifetime.
pub struct KeyCache<S> {
    source: S,
    /// The least time between two fetches of one issuer's keys caused by an
    /// unknown `kid` (60 s).
    pub min_refetch: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl<S: JwksSource> KeyCache<S> {
    pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(60);

    pub fn new(source: S) -> Self {
        Self {
            source,
            min_refetch: Self::DEFAULT_MIN_REFETCH,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The key `kid` of `issuer`: from the cache, or after a fetch (one at a
    /// time per issuer, and as often as the module doc says at most).
    pub async fn key(&self, issuer: &TrustedIssuer, kid: &str) -> Result<Jwk, KeyError> {
        let slot = self.slot(&issuer.issuer);
        if let Some(answer) = self.answer(&slot, kid, true) {
            return answer;
        }
        // Single flight: who waited here reads what the fetch in flight left.
        let _flight = slot.flight.lock().await;
        if let Some(answer) = self.answer(&slot, kid, true) {
            return answer;
        }
        let fetched = self.fetch(issuer).await;
        self.record(&slot, issuer, fetched);
        self.answer(&slot, kid, false).unwrap_or_else(|| {
            Err(KeyError::Unavailable(
                "no keys after a successful fetch".into(),
            ))
        })
    }

    fn slot(&self, issuer: &str) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.get(issuer) {
            return Arc::clone(slot);
        }
        Arc::clone(slots.entry(issuer.to_owned()).or_default())
    }

    fn answer(&self, slot: &Slot, kid: &str, may_fetch: bool) -> Option<Result<Jwk, KeyError>> {
        lock(&slot.state).answer(kid, Instant::now(), self.min_refetch, may_fetch)
    }

    /// Keep what a fetch brought (the new set replaces the old one whole: a
    /// key no longer published is no longer trusted), or when it failed.
    fn record(
        &self,
        slot: &Slot,
        issuer: &TrustedIssuer,
        fetched: Result<(Vec<Jwk>, Option<Duration>), String>,
    ) {
        let now = Instant::now();
        let mut state = lock(&slot.state);
        let failure = match fetched {
            Ok((keys, max_age)) => {
                let lifetime = lifetime(max_age);
                info!(source = LOG_SOURCE, issuer = %issuer.issuer, outcome = "keys-fetched",
                      keys = keys.len(), lifetime_s = lifetime.as_secs(),
                      "fetched the issuer's signing keys");
                state.keys = Some(Keys {
                    set: Arc::new(keys),
                    fetched: now,
                    expires: now + lifetime,
                });
                None
            }
            Err(why) => {
                if let Some(keys) = state.keys.as_ref().filter(|k| now >= k.expires) {
                    let age = now.duration_since(keys.fetched);
                    if age < MAX_LIFETIME {
                        warn!(source = LOG_SOURCE, issuer = %issuer.issuer,
                              outcome = "expired-keys-kept", age_s = age.as_secs(), error = %why,
                              "cannot refetch the issuer's expired signing keys: serving them \
                               until 24 h after the last successful fetch");
                    }
                }
                Some(why)
            }
        };
        state.last = Some(Attempt { at: now, failure });
    }

    /// Discovery (when configured so), then the JWKS: the keys and the JWKS
    /// response's `max-age`, or why not.
    async fn fetch(&self, issuer: &TrustedIssuer) -> Result<(Vec<Jwk>, Option<Duration>), String> {
        let jwks_uri = match &issuer.jwks {
            JwksLocation::Explicit(uri) => uri.clone(),
            JwksLocation::Discovery(url) => {
                let doc = self.get(url).await?.doc;
                jwks_uri_from_discovery(&doc, &issuer.issuer)
                    .map_err(|why| format!("{url}: {why}"))?
            }
        };
        let fetched = self.get(&jwks_uri).await?;
        let keys = keys_from_jwks(&fetched.doc).map_err(|why| format!("{jwks_uri}: {why}"))?;
        Ok((keys, fetched.max_age))
    }

    /// One GET, of a URL that passes the URL rule only.
    async fn get(&self, url: &str) -> Result<Fetched, String> {
        check_fetchable(url).map_err(|why| format!("{url}: not fetched: the URL {why}"))?;
        self.source.get_json(url).await.map_err(|e| e.to_string())
    }
}

impl State {
    /// The answer for `kid` from what is cached, or `None`: fetch first.
    /// With `may_fetch` false (a fetch just ended), the answer from what it left.
    fn answer(
        &self,
        kid: &str,
        now: Instant,
        min_refetch: Duration,
        may_fetch: bool,
    ) -> Option<Result<Jwk, KeyError>> {
        let fresh = self.keys.as_ref().filter(|k| now < k.expires);
        if let Some(jwk) = fresh.and_then(|k| find(&k.set, kid)) {
            return Some(Ok(jwk));
        }
        // Fresh keys without this kid: the unknown-kid rate limit. No fresh
        // keys: a recent failure is the answer until NEGATIVE_TTL has passed
        // (a recent success always left fresh keys: a lifetime is >= 5 min).
        let window = if fresh.is_some() {
            min_refetch
        } else {
            NEGATIVE_TTL
        };
        let last = self
            .last
            .as_ref()
            .filter(|a| !may_fetch || now.duration_since(a.at) < window)?;
        match (&last.failure, fresh) {
            (None, Some(_)) => Some(Err(KeyError::UnknownKey)),
            (Some(why), Some(_)) => Some(Err(KeyError::Unavailable(why.clone()))),
            (Some(why), None) => Some(self.expired(kid, now, why)),
            (None, None) => None,
        }
    }

    /// While refetches fail: the expired keys, until 24 h after they were fetched.
    fn expired(&self, kid: &str, now: Instant, why: &str) -> Result<Jwk, KeyError> {
        let Some(keys) = &self.keys else {
            return Err(KeyError::Unavailable(why.to_owned()));
        };
        if now.duration_since(keys.fetched) >= MAX_LIFETIME {
            return Err(KeyError::Unavailable(format!(
                "{why} (the keys last fetched 24 h ago or more are no longer trusted)"
            )));
        }
        find(&keys.set, kid).ok_or_else(|| {
            KeyError::Unavailable(format!(
                "{why} (none of the expired keys still served has this kid)"
            ))
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `jwks_uri` of an OIDC discovery document, which must name this issuer
/// (OpenID Connect Discovery 1.0, section 4.3) and pass the URL rule.
fn jwks_uri_from_discovery(doc: &Value, issuer: &str) -> Result<String, String> {
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer".into());
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("the discovery document has no jwks_uri URL")?;
    check_fetchable(uri).map_err(|why| format!("the discovery document's jwks_uri {uri} {why}"))?;
    Ok(uri.to_owned())
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
    use futures_util::future::join_all;
    use serde_json::json;

    use super::*;
    use crate::credentials::issuers::TrustedIssuers;
    use crate::credentials::memory::StaticJwks;

    const ISSUER: &str = "https://idp.example.com";
    const JWKS: &str = "https://idp.example.com/keys";
    const DISCOVERY: &str = "https://idp.example.com/.well-known/openid-configuration";

    fn trusted(issuer: &str, jwks_uri: Option<&str>) -> TrustedIssuer {
        let raw = match jwks_uri {
            None => json!({issuer: {"audiences": ["a"]}}),
            Some(uri) => json!({issuer: {"audiences": ["a"], "jwksUri": uri}}),
        };
        TrustedIssuers::parse(&raw.to_string())
            .unwrap()
            .get(issuer)
            .unwrap()
            .clone()
    }

    fn issuer(discovery: bool) -> TrustedIssuer {
        trusted(ISSUER, (!discovery).then_some(JWKS))
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

    /// A source publishing discovery and a JWKS of `kids`.
    /// A cache that fetched `k1` from `source`, which is then down.
    async fn holding_k1_then_down(source: &StaticJwks) -> (KeyCache<&StaticJwks>, TrustedIssuer) {
        let (cache, issuer) = (KeyCache::new(source), issuer(false));
        cache.key(&issuer, "k1").await.unwrap();
        source.set_down(true);
        (cache, issuer)
    }

    fn publishing(kids: &[&str]) -> StaticJwks {
        let source = StaticJwks::new();
        source.set(DISCOVERY, json!({"issuer": ISSUER, "jwks_uri": JWKS}));
        source.set(JWKS, jwks(kids));
        source
    }

    async fn advance(secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
    }

    fn unavailable(answer: Result<Jwk, KeyError>) -> String {
        match answer {
            Err(KeyError::Unavailable(why)) => why,
            other => panic!("not unavailable: {other:?}"),
        }
    }

    #[tokio::test]
    async fn discovers_the_jwks_once_and_serves_from_the_cache() {
        let source = publishing(&["k1", "k2"]);
        let cache = KeyCache::new(&source);
        for kid in ["k1", "k2", "k1"] {
            let key = cache.key(&issuer(true), kid).await.unwrap();
            assert_eq!(key.common.key_id.as_deref(), Some(kid));
        }
        assert_eq!(source.fetches(JWKS), 1);
        assert_eq!(source.fetches(DISCOVERY), 1);
    }

    #[test]
    fn the_lifetime_is_max_age_within_5_min_and_24_h_and_1_h_without() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(lifetime(secs(600)), Duration::from_secs(600));
        assert_eq!(lifetime(secs(299)), MIN_LIFETIME);
        assert_eq!(lifetime(secs(0)), MIN_LIFETIME);
        assert_eq!(lifetime(secs(86_401)), MAX_LIFETIME);
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(
            (MIN_LIFETIME, MAX_LIFETIME, DEFAULT_LIFETIME),
            (
                secs(300).unwrap(),
                secs(86_400).unwrap(),
                secs(3_600).unwrap()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_refetched_when_their_bounded_max_age_has_passed() {
        // (the response's max-age, how long the keys are kept)
        let cases = [
            (Some(600), 600),
            (Some(30), 300),
            (Some(0), 300),
            (Some(7 * 86_400), 86_400),
            (None, 3_600),
        ];
        for (max_age, kept) in cases {
            let source = publishing(&["k1"]);
            source.set_max_age(max_age.map(Duration::from_secs));
            let (cache, issuer) = (KeyCache::new(&source), issuer(false));
            cache.key(&issuer, "k1").await.unwrap();
            advance(kept - 1).await;
            cache.key(&issuer, "k1").await.unwrap();
            assert_eq!(
                source.fetches(JWKS),
                1,
                "max-age {max_age:?}: kept {kept} s"
            );
            advance(1).await;
            cache.key(&issuer, "k1").await.unwrap();
            assert_eq!(source.fetches(JWKS), 2, "max-age {max_age:?}: refetched");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_key_is_refused_once_its_lifetime_is_over() {
        let source = publishing(&["old", "new"]);
        source.set_max_age(Some(Duration::from_secs(600)));
        let (cache, issuer) = (KeyCache::new(&source), issuer(true));
        cache.key(&issuer, "old").await.unwrap();
        source.set(JWKS, jwks(&["new"])); // "old" revoked at the IdP
        advance(599).await;
        assert!(
            cache.key(&issuer, "old").await.is_ok(),
            "within its lifetime"
        );
        advance(1).await;
        assert_eq!(cache.key(&issuer, "old").await, Err(KeyError::UnknownKey));
        assert_eq!((source.fetches(DISCOVERY), source.fetches(JWKS)), (2, 2));
        assert!(cache.key(&issuer, "new").await.is_ok());
        assert_eq!(cache.key(&issuer, "old").await, Err(KeyError::UnknownKey));
        assert_eq!(source.fetches(JWKS), 2, "refused from the cache");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_kid_refetches_at_most_once_a_minute() {
        let source = publishing(&["old"]);
        let (cache, issuer) = (KeyCache::new(&source), issuer(false));
        cache.key(&issuer, "old").await.unwrap();
        // Rotation: the IdP now publishes "new"; a token with "new" refetches once.
        source.set(JWKS, jwks(&["old", "new"]));
        assert_eq!(cache.key(&issuer, "bogus").await, Err(KeyError::UnknownKey));
        assert_eq!(source.fetches(JWKS), 1, "fetched less than a minute ago");
        advance(61).await;
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

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_or_broken_jwks_is_unavailable_not_unknown() {
        let source = StaticJwks::new();
        let cache = KeyCache::new(&source);
        let err = cache.key(&issuer(false), "k").await.unwrap_err();
        assert!(matches!(err, KeyError::Unavailable(_)), "{err:?}");
        source.set(JWKS, json!({"no": "keys"}));
        advance(30).await;
        assert!(unavailable(cache.key(&issuer(false), "k").await).contains("no `keys` array"));
        assert_eq!(source.fetches(JWKS), 2, "once per 30 s");
        source.set(
            DISCOVERY,
            json!({"issuer": "https://evil.example.com", "jwks_uri": JWKS}),
        );
        advance(30).await;
        assert!(unavailable(cache.key(&issuer(true), "k").await).contains("another issuer"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_remembered_for_30_s_even_with_nothing_cached() {
        let source = publishing(&["k1"]);
        source.set_down(true);
        let (cache, issuer) = (KeyCache::new(&source), issuer(true));
        for _ in 0..20 {
            assert!(unavailable(cache.key(&issuer, "k1").await).contains("connection refused"));
        }
        advance(29).await;
        unavailable(cache.key(&issuer, "k1").await);
        assert_eq!((source.fetches(DISCOVERY), source.fetches(JWKS)), (1, 0));
        source.set_down(false);
        advance(1).await;
        assert!(
            cache.key(&issuer, "k1").await.is_ok(),
            "asked again after 30 s"
        );
        assert_eq!((source.fetches(DISCOVERY), source.fetches(JWKS)), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_fetch() {
        let source = publishing(&["k1"]);
        source.set_latency(Duration::from_secs(1));
        let (cache, issuer) = (KeyCache::new(&source), issuer(true));
        // Half valid, half forged with made-up kids, all at once on a cold cache.
        let kids: Vec<String> = (0..100)
            .map(|i| {
                if i % 2 == 0 {
                    "k1".into()
                } else {
                    format!("forged-{i}")
                }
            })
            .collect();
        let answers = join_all(kids.iter().map(|kid| cache.key(&issuer, kid))).await;
        for (kid, answer) in kids.iter().zip(&answers) {
            match kid.as_str() {
                "k1" => assert!(answer.is_ok(), "{answer:?}"),
                _ => assert_eq!(answer, &Err(KeyError::UnknownKey)),
            }
        }
        assert_eq!((source.fetches(DISCOVERY), source.fetches(JWKS)), (1, 1));

        // Expired: one refetch for 100 waiting requests.
        advance(3_600).await;
        let answers = join_all((0..100).map(|_| cache.key(&issuer, "k1"))).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!((source.fetches(DISCOVERY), source.fetches(JWKS)), (2, 2));

        // A slow IdP that is down: one attempt, then the expired keys serve.
        advance(3_600).await;
        source.set_down(true);
        let answers = join_all(kids.iter().map(|kid| cache.key(&issuer, kid))).await;
        assert!(answers.iter().step_by(2).all(Result::is_ok));
        assert!(
            answers
                .iter()
                .skip(1)
                .step_by(2)
                .all(|a| matches!(a, Err(KeyError::Unavailable(_))))
        );
        assert_eq!((source.fetches(DISCOVERY), source.fetches(JWKS)), (3, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_forged_flood_on_a_cold_cache_and_a_failing_idp_costs_one_fetch() {
        let source = publishing(&["k1"]);
        source.set_latency(Duration::from_secs(2));
        source.set_down(true);
        let (cache, issuer) = (KeyCache::new(&source), issuer(false));
        let kids: Vec<String> = (0..100).map(|i| format!("forged-{i}")).collect();
        let answers = join_all(kids.iter().map(|kid| cache.key(&issuer, kid))).await;
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Err(KeyError::Unavailable(_))))
        );
        assert_eq!(source.fetches(JWKS), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_serve_until_24_h_after_the_last_fetch_while_refetches_fail() {
        let source = publishing(&["k1"]);
        let (cache, issuer) = holding_k1_then_down(&source).await;
        advance(3_600).await;
        assert!(cache.key(&issuer, "k1").await.is_ok(), "expired, kept");
        assert_eq!(source.fetches(JWKS), 2);
        // A kid the expired set lacks: maybe published meanwhile, so 503.
        assert!(unavailable(cache.key(&issuer, "k2").await).contains("expired keys"));
        advance(30).await;
        assert!(cache.key(&issuer, "k1").await.is_ok());
        assert_eq!(source.fetches(JWKS), 3, "retried after 30 s");
        advance(86_400 - 3_630).await;
        let why = unavailable(cache.key(&issuer, "k1").await);
        assert!(
            why.contains("24 h") && why.contains("connection refused"),
            "{why}"
        );
        source.set_down(false);
        advance(30).await;
        assert!(
            cache.key(&issuer, "k1").await.is_ok(),
            "back once a fetch succeeds"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_unknown_kid_refetch_keeps_the_cached_keys() {
        let source = publishing(&["k1"]);
        let (cache, issuer) = holding_k1_then_down(&source).await;
        advance(61).await;
        unavailable(cache.key(&issuer, "k2").await);
        assert!(cache.key(&issuer, "k1").await.is_ok());
    }

    #[tokio::test]
    async fn a_discovered_jwks_uri_over_http_elsewhere_is_refused_unfetched() {
        use crate::credentials::url_rule::HTTPS_ONLY;
        let cases = [
            ("http://idp.example.com/keys", HTTPS_ONLY),
            ("http://127.0.0.2/keys", HTTPS_ONLY),
            (
                "http://127.0.0.1:80@idp.example.com/keys",
                "must not name a user or password",
            ),
            ("ftp://idp.example.com/keys", "must start with https://"),
        ];
        for (jwks_uri, rule) in cases {
            let source = StaticJwks::new();
            source.set(DISCOVERY, json!({"issuer": ISSUER, "jwks_uri": jwks_uri}));
            source.set(jwks_uri, jwks(&["k1"]));
            let cache = KeyCache::new(&source);
            let why = unavailable(cache.key(&issuer(true), "k1").await);
            assert!(
                why.contains(&format!(
                    "the discovery document's jwks_uri {jwks_uri} {rule}"
                )),
                "{why}"
            );
            assert_eq!(source.fetches(jwks_uri), 0, "{jwks_uri}");
        }
    }

    #[tokio::test]
    async fn loopback_http_and_https_with_a_query_are_fetched() {
        let b2c = "https://idp.example.com/discovery/v2.0/keys?p=b2c_1_signin";
        let cases = [
            (
                "http://127.0.0.1:8080/idp",
                "http://127.0.0.1:8080/idp/jwks.json",
            ),
            ("http://localhost:8080", "http://localhost:8080/jwks.json"),
            ("http://[::1]:8080", "http://[::1]:8080/jwks.json"),
            (ISSUER, b2c),
        ];
        for (issuer, jwks_uri) in cases {
            let source = StaticJwks::new();
            let discovery = format!("{issuer}/.well-known/openid-configuration");
            source.set(&discovery, json!({"issuer": issuer, "jwks_uri": jwks_uri}));
            source.set(jwks_uri, jwks(&["k1"]));
            let cache = KeyCache::new(&source);
            assert!(
                cache.key(&trusted(issuer, None), "k1").await.is_ok(),
                "{jwks_uri}"
            );
            assert_eq!(source.fetches(jwks_uri), 1);
        }
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
