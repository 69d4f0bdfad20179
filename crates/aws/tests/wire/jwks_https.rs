//! The JWKS adapter (`HttpsJwksSource`: hyper + rustls with ring) against a
//! local IdP over HTTPS whose certificate a throw-away CA signed, trusted
//! through an `SSL_CERT_FILE`-style PEM file; and a whole token validation
//! over that path; the `Cache-Control` the answers carry, read off the wire.
//! (A bad `SSL_CERT_FILE` is `http`'s own test.)

use std::time::Duration;

use chime_sync_aws::http::rustls_client_config;
use chime_sync_aws::{HttpsJwksSource, RootSet, TrustRoots};
use chime_sync_core::credentials::token::validate;
use chime_sync_core::credentials::{JwksSource, KeyCache, TrustedIssuers};
use serde_json::json;
use testkit::credentials::keys::{jwks, now};
use testkit::credentials::{LocalIdp, TestCa, TestKey};

const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chime-sync-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn discovery_and_jwks_over_https_with_a_private_ca() {
    let (ca, key) = (TestCa::generate().unwrap(), TestKey::ec("ec-https"));
    let idp = LocalIdp::start_tls(jwks(&[&key]), &ca).await;
    assert!(idp.issuer().starts_with("https://localhost:"));
    let ca_file = temp_dir("jwks-https").join("test-ca.pem");
    ca.write_pem(&ca_file).unwrap();
    let source = HttpsJwksSource::new(
        rustls_client_config(&TrustRoots::from_pem_file(&ca_file).unwrap(), RootSet::Web).unwrap(),
        Duration::from_secs(10),
    );

    let discovery = source.get_json(&idp.discovery_url()).await.unwrap();
    assert_eq!(discovery.doc["jwks_uri"], json!(idp.jwks_uri()));

    // The whole validation over HTTPS: discovery, JWKS, signature, claims.
    let issuers =
        TrustedIssuers::parse(&json!({idp.issuer(): {"audiences": ["chat"]}}).to_string()).unwrap();
    let cache = KeyCache::new(source);
    let token = key.sign(&json!({"iss": idp.issuer(), "aud": "chat", "sub": SUB,
                                 "exp": now() + 3600}));
    let verified = validate(&token, &issuers, &cache).await.unwrap();
    assert_eq!(verified.user_id.as_str(), SUB);
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (2, 1));
}

#[tokio::test]
async fn a_server_the_roots_do_not_trust_is_refused() {
    let (ca, key) = (TestCa::generate().unwrap(), TestKey::ec("ec"));
    let idp = LocalIdp::start_tls(jwks(&[&key]), &ca).await;
    // Mozilla's roots: the throw-away CA is not among them.
    let source = web_source();
    let err = source.get_json(&idp.jwks_uri()).await.unwrap_err();
    assert!(err.reason.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(idp.jwks_fetches(), 0, "no request reached the server");
}

/// A JWKS source trusting the compiled-in web roots, with a 10 s timeout.
fn web_source() -> HttpsJwksSource {
    HttpsJwksSource::new(
        rustls_client_config(&TrustRoots::Compiled, RootSet::Web).unwrap(),
        Duration::from_secs(10),
    )
}

#[tokio::test]
async fn unreachable_missing_and_non_json_documents_are_errors() {
    let key = TestKey::ec("ec");
    let idp = LocalIdp::start(jwks(&[&key])).await;
    let source = web_source();
    let missing = source
        .get_json(&format!("{}/nope", idp.issuer()))
        .await
        .unwrap_err();
    assert_eq!(missing.reason, "HTTP 404");
    let port = testkit::credentials::serve::closed_port().await;
    let down = source
        .get_json(&format!("http://{port}/jwks.json"))
        .await
        .unwrap_err();
    assert!(down.reason.to_lowercase().contains("refused"), "{down}");
}

#[tokio::test]
async fn the_jwks_answer_carries_its_cache_control_max_age() {
    let key = TestKey::ec("ec");
    let idp = LocalIdp::start(jwks(&[&key])).await;
    let source = web_source();
    let cases = [
        (Some("public, max-age=600, must-revalidate"), Some(600)),
        (Some("max-age=86400"), Some(86_400)),
        (Some("no-store"), None),
        (Some("no-cache, max-age=600"), None),
        (None, None),
    ];
    for (cache_control, want) in cases {
        idp.set_cache_control(cache_control);
        let fetched = source.get_json(&idp.jwks_uri()).await.unwrap();
        assert_eq!(
            fetched.max_age,
            want.map(Duration::from_secs),
            "{cache_control:?}"
        );
        assert_eq!(fetched.doc, jwks(&[&key]));
    }
}
