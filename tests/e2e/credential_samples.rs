//! The credential-exchange samples in `events/credential-exchange/`: Function
//! URL events whose tokens the demo keys signed. The replay validates them
//! against the embedded JWKS (`chime_sync_core::replay::DEMO_JWKS`).
//!
//! `cargo test --test credential_samples -- --ignored` rewrites the samples
//! (run it when a sample's claims must change); the other test keeps the
//! embedded JWKS and the demo keys that signed the samples in step.

use chime_sync_core::replay::{
    DEMO_COGNITO_ISSUER, DEMO_JWKS, DEMO_OIDC_ISSUER, DEMO_ORIGIN, OUTAGE_SUB,
};
use serde_json::{Value, json};
use testkit::credentials::keys::{TestKey, jwks, unsigned};
use testkit::events_dir;

use crate::function_url::request;

/// Annie Easley: a Cognito user (ID token).
const ANNIE: &str = "4a7c1e9b-3d5f-4b2a-8c6e-0f1d3b5a7c92";
/// Mary Jackson: a user of the generic OIDC provider.
const MARY: &str = "b6e2d8f4-1a3c-4e5b-9d7f-2c4a6e8b0d13";
/// 2026-11-20T10:00:00Z and 2100-01-01T00:00:00Z: the samples stay valid.
const IAT: u64 = 1_795_168_800;
const EXP: u64 = 4_102_444_800;

#[test]
fn the_embedded_jwks_publishes_the_keys_that_signed_the_samples() {
    let embedded: Value = serde_json::from_str(DEMO_JWKS).unwrap();
    assert_eq!(embedded, jwks(&[&TestKey::demo_rsa(), &TestKey::demo_ec()]));
}

fn post(authorization: Option<String>) -> Value {
    let mut headers = json!({"content-type": "application/json", "origin": DEMO_ORIGIN,
                             "host": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws",
                             "x-forwarded-proto": "https", "x-amzn-trace-id": "Root=1-673dbe60-0123456789abcdef01234567"});
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    request("POST", headers, Some("{}"))
}

fn cognito(sub: &str, extra: Value) -> Value {
    let mut c = json!({"iss": DEMO_COGNITO_ISSUER, "aud": "demo-app-client", "token_use": "id",
                       "sub": sub, "cognito:username": sub, "auth_time": IAT, "iat": IAT,
                       "exp": EXP, "name": "Annie Easley"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(&k);
        } else {
            c[k] = v;
        }
    }
    c
}

fn oidc(sub: &str, extra: Value) -> Value {
    let mut c = json!({"iss": DEMO_OIDC_ISSUER, "aud": "chat-web", "sub": sub, "iat": IAT,
                       "exp": EXP, "given_name": "Mary", "family_name": "Jackson",
                       "scope": "openid profile"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        c[k] = v;
    }
    c
}

#[test]
#[ignore = "rewrites events/credential-exchange/; run on purpose"]
fn regenerate_samples() {
    let (rsa, ec) = (TestKey::demo_rsa(), TestKey::demo_ec());
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let samples = [
        ("cognito-id-token-rs256.json", post(bearer(rsa.sign(&cognito(ANNIE, json!({})))))),
        ("oidc-token-es256.json", post(bearer(ec.sign(&oidc(MARY, json!({})))))),
        (
            "preflight-allowed-origin.json",
            request(
                "OPTIONS",
                json!({"origin": DEMO_ORIGIN, "access-control-request-method": "POST",
                       "access-control-request-headers": "authorization,content-type"}),
                None,
            ),
        ),
        ("expired-token.json", post(bearer(rsa.sign(&cognito(ANNIE, json!({"exp": 1_700_000_000, "iat": 1_699_996_400})))))),
        ("wrong-audience.json", post(bearer(ec.sign(&oidc(MARY, json!({"aud": "another-app"})))))),
        (
            "cognito-access-token-where-id-token-expected.json",
            post(bearer(rsa.sign(&cognito(ANNIE, json!({"aud": null, "client_id": "demo-app-client",
                                                         "token_use": "access", "scope": "aws.cognito.signin.user.admin",
                                                         "name": null}))))),
        ),
        ("alg-none.json", post(bearer(unsigned(&cognito(ANNIE, json!({})), "demo-rsa-2026")))),
        ("missing-authorization.json", post(None)),
        (
            "duplicate-authorization.json",
            post(Some(format!(
                "Bearer {0},Bearer {0}",
                rsa.sign(&cognito(ANNIE, json!({})))
            ))),
        ),
        ("chime-outage-user.json", post(bearer(ec.sign(&oidc(OUTAGE_SUB, json!({"given_name": "Hedy", "family_name": "Lamarr"})))))),
    ];
    let dir = events_dir().join("credential-exchange");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, event) in samples {
        let text = serde_json::to_string_pretty(&event).unwrap() + "\n";
        std::fs::write(dir.join(name), text).unwrap();
    }
}
