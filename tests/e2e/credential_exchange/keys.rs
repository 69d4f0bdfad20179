//! The credential exchange's key cache end to end: the compiled
//! `credential-exchange` bootstrap behind the mock Lambda Runtime API, local
//! IdPs over plain HTTP on 127.0.0.1 (the loopback the URL rule allows), the
//! local STS and the Chime fake. What only the real binary shows:
//!
//! - it reads `Cache-Control: max-age` off the wire and keeps the keys that
//!   long, bounded to 5 min to 24 h, without a fetch per request (the expiry
//!   itself, minutes to hours away, is tested in paused time in
//!   `crates/core/src/credentials/keys.rs`);
//! - it refuses a discovery document's `jwks_uri` over plain HTTP to another
//!   host (503) without connecting to it;
//! - a flood of forged tokens naming trusted issuers whose IdPs answer after
//!   2 s costs one discovery and one JWKS request per issuer per interval,
//!   whether the JWKS is good or broken.
//!
//! A module of tests/e2e/credential_exchange/mod.rs, whose event and answer
//! helpers it uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::credentials::keys::{jwks, now};
use testkit::credentials::{LocalIdp, TestKey};
use testkit::lambda::Lambda;

use super::{Exchange, ORIGIN, answer, post, start_exchange};

const AUDIENCE: &str = "chat-web";

/// The bootstrap trusting `idps` (each its own ledger `key`: they share a host).
async fn start(idps: &[&LocalIdp]) -> Exchange {
    let issuers: serde_json::Map<String, Value> = idps
        .iter()
        .enumerate()
        .map(|(i, idp)| {
            let settings = json!({"audiences": [AUDIENCE], "key": format!("idp-{i}")});
            (idp.issuer().to_owned(), settings)
        })
        .collect();
    start_exchange(&Value::Object(issuers), &[("ALLOWED_ORIGINS", ORIGIN)]).await
}

/// Claims of a token `idp` might issue for `sub`, valid for an hour.
fn claims(idp: &LocalIdp, sub: &str) -> Value {
    json!({"iss": idp.issuer(), "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 3600})
}

/// The `fields` of every log line whose `outcome` is `outcome`.
fn logged(lambda: &Lambda, outcome: &str) -> Vec<Value> {
    lambda
        .log_lines()
        .into_iter()
        .map(|l| l.get("fields").cloned().unwrap_or(l))
        .filter(|f| f["outcome"] == outcome)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_kept_for_the_bounded_max_age_their_jwks_answer_gives() {
    let key = TestKey::ec("ec-2026");
    // (the JWKS answer's Cache-Control, the lifetime the function gives the keys)
    let cases = [
        (Some("public, max-age=600, must-revalidate"), 600),
        (Some("max-age=30"), 300),
        (Some("max-age=604800"), 86_400),
        (Some("no-store"), 3_600),
        (None, 3_600),
    ];
    let mut idps = Vec::new();
    for (cache_control, _) in cases {
        let idp = LocalIdp::start(jwks(&[&key])).await;
        idp.set_cache_control(cache_control);
        idps.push(idp);
    }
    let s = start(&idps.iter().collect::<Vec<_>>()).await;

    for (i, idp) in idps.iter().enumerate() {
        let sub = format!("6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f{i}");
        for _ in 0..3 {
            let (status, body, _) =
                answer(&s.lambda.invoke(&post(&key.sign(&claims(idp, &sub)))).await);
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(
            (idp.discovery_fetches(), idp.jwks_fetches()),
            (1, 1),
            "{i}: fetched once for three requests"
        );
    }
    // Revoked at the IdP: still trusted until the lifetime it gave is over.
    let revoked = &idps[0];
    revoked.set_jwks(jwks(&[&TestKey::ec("ec-2027")]));
    let sub = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f0";
    let (status, body, _) = answer(
        &s.lambda
            .invoke(&post(&key.sign(&claims(revoked, sub))))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(revoked.jwks_fetches(), 1, "no fetch within the 600 s");

    s.lambda.stop();
    let fetched = logged(&s.lambda, "keys-fetched");
    for (idp, (cache_control, lifetime)) in idps.iter().zip(cases) {
        let line = fetched
            .iter()
            .find(|f| f["issuer"] == idp.issuer())
            .unwrap_or_else(|| panic!("no keys-fetched line for {}", idp.issuer()));
        assert_eq!(line["lifetime_s"], lifetime, "{cache_control:?}: {line}");
        assert_eq!(line["keys"], 1);
    }
    assert_eq!(fetched.len(), cases.len(), "one fetch per issuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_over_plain_http_to_another_host_is_refused_unfetched() {
    // A host the URL rule refuses (only 127.0.0.1, localhost and [::1] may be
    // plain HTTP) that is still local, so a connection to it would be seen.
    let trap = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2 (loopback, but not a host the rule allows)");
    let trap_port = trap.local_addr().expect("trap address").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let _trap = tokio::spawn(async move {
        while trap.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let key = TestKey::ec("ec-2026");
    let idp = LocalIdp::start(jwks(&[&key])).await;
    let jwks_uri = format!("http://127.0.0.2:{trap_port}/idp/jwks.json");
    idp.set_discovered_jwks_uri(&jwks_uri);
    let s = start(&[&idp]).await;

    for _ in 0..3 {
        let token = key.sign(&claims(&idp, "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5"));
        let (status, body, _) = answer(&s.lambda.invoke(&post(&token)).await);
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("jwks_unavailable")),
            "{body}"
        );
    }
    assert_eq!(connections.load(Ordering::Relaxed), 0, "never fetched");
    assert_eq!(
        (idp.discovery_fetches(), idp.jwks_fetches()),
        (1, 0),
        "the failure is remembered: one discovery for three requests"
    );

    s.lambda.stop();
    // The error line with the detail (the per-request line has none).
    let details: Vec<String> = logged(&s.lambda, "jwks_unavailable")
        .iter()
        .filter_map(|f| f["detail"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(details.len(), 3, "{}", s.lambda.log());
    let detail = &details[0];
    assert!(
        detail.contains(&format!(
            "the discovery document's jwks_uri {jwks_uri} must start with https:// \
             (http:// only for 127.0.0.1, localhost or [::1])"
        )),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_tokens_costs_one_fetch_per_issuer_per_interval() {
    let (key, forger) = (TestKey::ec("ec-2026"), TestKey::ec("forger"));
    let slow = LocalIdp::start(jwks(&[&key])).await;
    let broken = LocalIdp::start(json!({"not": "a JWKS"})).await;
    for idp in [&slow, &broken] {
        idp.set_latency(Duration::from_secs(2));
    }
    let s = start(&[&slow, &broken]).await;

    // 200 tokens signed by a key no IdP publishes, under random kids, half
    // naming each issuer; all queued at once.
    let salt = now();
    let started = Instant::now();
    let ids: Vec<(bool, String)> = (0..200)
        .map(|i| {
            let idp = if i % 2 == 0 { &slow } else { &broken };
            let header = json!({"alg": "ES256", "typ": "JWT", "kid": format!("forged-{salt}-{i}")});
            let token = forger.sign_with_header(
                &header,
                &claims(idp, "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5"),
            );
            (i % 2 == 0, s.lambda.api.enqueue(&post(&token)))
        })
        .collect();
    for (to_slow, id) in &ids {
        let (status, body, _) = answer(&s.lambda.api.outcome(id, Duration::from_secs(30)).await);
        let want = if *to_slow {
            // The precise reason (unknown_key) is for the log only.
            (401, Some("invalid_token"))
        } else {
            (503, Some("jwks_unavailable"))
        };
        assert_eq!((status, body["error"].as_str()), want, "{body}");
    }
    // One fetch per issuer per interval: a minute for unknown kids on good
    // keys, 30 s after a failure. Allow for a slow machine taking longer.
    let elapsed = started.elapsed().as_secs();
    let (per_minute, per_30_s) = (1 + elapsed / 60, 1 + elapsed / 30);
    for (idp, most) in [(&slow, per_minute), (&broken, per_30_s)] {
        let fetches = (idp.discovery_fetches(), idp.jwks_fetches());
        assert!(
            fetches.0 >= 1 && fetches.0 <= most as usize && fetches.1 <= most as usize,
            "{}: {fetches:?} in {elapsed} s",
            idp.issuer()
        );
    }
    assert!(
        s.lambda.api.violations().is_empty(),
        "{:?}",
        s.lambda.api.violations()
    );
}
