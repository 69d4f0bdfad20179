//! End to end with the compiled `credential-exchange` bootstrap behind the
//! mock Lambda Runtime API, served Function URL events, and talking to:
//!
//! - a local IdP over **HTTPS** (OIDC discovery + JWKS) whose certificate a
//!   throw-away CA signed, trusted through `SSL_CERT_FILE`, with RSA and EC
//!   keys generated for this test;
//! - a local STS (`AWS_ENDPOINT_URL_STS`) that records every `AssumeRole`
//!   and answers in STS's XML, so the tag, `SourceIdentity` and
//!   `DurationSeconds` the real `aws-sdk-sts` client sent are asserted;
//! - the Chime fake (`AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`).
//!
//! Every case is asserted on status, body and the STS requests sent. The
//! log is then searched for every token, secret and session token seen.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeConfig};
use chime_identity_sync::emf;
use chime_identity_sync::lambda::{CREDENTIAL_EXCHANGE, Lambda, SECRET_ACCESS_KEY};
use chime_identity_sync::runtime_api::Outcome;
use chime_sync_core::replay::DEMO_APP_INSTANCE_ARN;
use credential_testkit::keys::{hs256, jwks, now, tampered, unsigned};
use credential_testkit::{LocalIdp, LocalSts, StsAnswer, TestCa, TestKey};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/chime-identity-sync-ChatUserRole-1AB2C3";
const ADA: &str = "1d4f6a8c-2b3e-4c5d-9e7f-8a0b1c2d3e4f";
const GRACE: &str = "9b2e4f60-7c1d-4e3a-9f5b-2d8c6a1e0b47";
const ORIGIN: &str = "https://chat.example.com";

/// A Function URL event (payload format 2.0) for `method /credentials`.
fn request(method: &str, headers: Value) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/credentials", "rawQueryString": "",
        "headers": headers, "isBase64Encoded": false,
        "requestContext": {
            "accountId": "anonymous", "apiId": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
            "domainName": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws",
            "domainPrefix": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6", "requestId": "req-1",
            "routeKey": "$default", "stage": "$default", "time": "20/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_168_800_000_i64,
            "http": {"method": method, "path": "/credentials", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"}
        }
    })
}

fn post(token: &str) -> Value {
    request(
        "POST",
        json!({"authorization": format!("Bearer {token}"), "origin": ORIGIN,
               "content-type": "application/json"}),
    )
}

/// Status, parsed body and headers of a Function URL response.
fn answer(outcome: &Outcome) -> (i64, Value, Value) {
    let r = outcome.response();
    let body = r["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).expect("JSON body"))
        .unwrap_or(Value::Null);
    (
        r["statusCode"].as_i64().expect("statusCode"),
        body,
        r["headers"].clone(),
    )
}

struct Setup {
    lambda: Lambda,
    idp: LocalIdp,
    sts: LocalSts,
    fake: chime_identity_fake::FakeChimeHandle,
    rsa: TestKey,
    ec: TestKey,
    down_issuer: String,
}

async fn setup() -> Setup {
    let (ca, rsa, ec) = (
        TestCa::new(),
        TestKey::rsa("rsa-2026"),
        TestKey::ec("ec-2026"),
    );
    let idp = LocalIdp::start_tls(jwks(&[&rsa, &ec]), &ca).await;
    let sts = LocalSts::start().await;
    let fake = FakeChime::start(FakeConfig::new())
        .await
        .expect("Chime fake");
    let dir = std::env::temp_dir().join(format!("e2e-credential-exchange-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = ca.write_ca(&dir);
    let down = credential_testkit::serve::closed_port().await;
    let down_issuer = format!("http://127.0.0.1:{}/down", down.port());
    let issuers = json!({
        idp.issuer(): {"audiences": ["chat-web"]},
        down_issuer.as_str(): {"audiences": ["chat-web"]},
    })
    .to_string();
    let lambda = Lambda::start(
        CREDENTIAL_EXCHANGE,
        &[
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            ("TRUSTED_ISSUERS", &issuers),
            ("CHAT_USER_ROLE_ARN", ROLE),
            ("ALLOWED_ORIGINS", ORIGIN),
            ("DISPLAY_NAME_ATTRIBUTES", "name,email:local"),
            ("SSL_CERT_FILE", ca_file.to_str().expect("UTF-8 path")),
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake.endpoint_url()),
            ("AWS_ENDPOINT_URL_STS", &sts.endpoint_url()),
        ],
    )
    .await;
    Setup {
        lambda,
        idp,
        sts,
        fake,
        rsa,
        ec,
        down_issuer,
    }
}

fn claims(s: &Setup, sub: &str, extra: Value) -> Value {
    let mut c = json!({"iss": s.idp.issuer(), "aud": "chat-web", "sub": sub, "iat": now(),
                       "exp": now() + 3600, "name": "Ada Lovelace",
                       "email": "ada.lovelace@example.com"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        c[k] = v;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_exchanges_tokens_for_scoped_credentials() {
    let s = setup().await;
    let mut seen_secrets: Vec<String> = vec![SECRET_ACCESS_KEY.to_owned()];
    let mut tokens = Vec::new();

    // A valid RS256 token: Chime user created, STS called with the tag.
    let token = s.rsa.sign(&claims(&s, ADA, json!({"exp": now() + 1800})));
    tokens.push(token.clone());
    let (status, body, headers) = answer(&s.lambda.invoke(&post(&token)).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(body["appInstanceArn"], DEMO_APP_INSTANCE_ARN);
    assert_eq!(
        body["appInstanceUserArn"],
        format!("{DEMO_APP_INSTANCE_ARN}/user/{ADA}")
    );
    assert_eq!(body["region"], "us-east-1");
    let creds = &body["credentials"];
    assert!(
        creds["accessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIALOCALSTS")
    );
    for k in ["secretAccessKey", "sessionToken"] {
        seen_secrets.push(creds[k].as_str().unwrap().to_owned());
    }
    let sent = s.sts.requests();
    assert_eq!(sent.len(), 1);
    let p = &sent[0].params;
    assert_eq!(p["RoleArn"], ROLE);
    assert_eq!(p["RoleSessionName"], ADA);
    assert_eq!(
        (
            p["Tags.member.1.Key"].as_str(),
            p["Tags.member.1.Value"].as_str()
        ),
        ("UserUUID", ADA)
    );
    assert_eq!(p["SourceIdentity"], ADA);
    let duration: u64 = p["DurationSeconds"].parse().unwrap();
    assert!(
        (1790..=1800).contains(&duration),
        "min(3600, token lifetime): {duration}"
    );
    let users = s.fake.users();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (
            users[0].app_instance_user_id.as_str(),
            users[0].name.as_str()
        ),
        (ADA, "Ada Lovelace")
    );

    // ES256, an upper-case sub folded as provisioning folds it; STS throttled
    // once and retried by the SDK.
    s.sts.script([StsAnswer::Throttling]);
    let token = s.ec.sign(&claims(
        &s,
        &GRACE.to_uppercase(),
        json!({"name": "Grace Hopper"}),
    ));
    tokens.push(token.clone());
    let (status, body, _) = answer(&s.lambda.invoke(&post(&token)).await);
    assert_eq!(status, 200, "{body}");
    for k in ["secretAccessKey", "sessionToken"] {
        seen_secrets.push(body["credentials"][k].as_str().unwrap().to_owned());
    }
    let sent = s.sts.requests();
    assert_eq!(sent.len(), 3, "first + throttled + retry");
    assert_eq!(sent[2].params["Tags.member.1.Value"], GRACE);
    assert_eq!(sent[2].params["DurationSeconds"], "3600");
    assert_eq!(s.fake.users().len(), 2);

    // STS denied: 500, a clear log line, nothing about it in the body.
    s.sts.script([StsAnswer::AccessDenied]);
    let token = s.rsa.sign(&claims(&s, ADA, json!({})));
    tokens.push(token.clone());
    let (status, body, _) = answer(&s.lambda.invoke(&post(&token)).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("sts_denied")),
        "{body}"
    );
    assert_eq!(s.sts.requests().len(), 4, "a denial is not retried");

    // Refusals: status and error code; none reaches STS.
    let c = claims(&s, ADA, json!({}));
    let stranger = TestKey::rsa("not-published");
    let refusals: Vec<(Value, i64, &str)> = vec![
        (
            post(&s.rsa.sign(&claims(&s, ADA, json!({"exp": now() - 300})))),
            401,
            "token_expired",
        ),
        (
            post(&s.rsa.sign(&claims(&s, ADA, json!({"nbf": now() + 600})))),
            401,
            "token_not_yet_valid",
        ),
        (
            post(
                &s.rsa
                    .sign(&claims(&s, ADA, json!({"iss": "https://evil.example.com"}))),
            ),
            401,
            "untrusted_issuer",
        ),
        (
            post(&s.rsa.sign(&claims(&s, ADA, json!({"aud": "another-app"})))),
            401,
            "wrong_audience",
        ),
        (
            post(&unsigned(&c, "rsa-2026")),
            401,
            "algorithm_not_allowed",
        ),
        (
            post(&hs256(&c, "rsa-2026", &s.rsa.public_key_der())),
            401,
            "algorithm_not_allowed",
        ),
        (post(&stranger.sign(&c)), 401, "unknown_key"),
        (
            post(&tampered(&s.rsa.sign(&c), &claims(&s, GRACE, json!({})))),
            401,
            "invalid_signature",
        ),
        (
            post(
                &s.rsa
                    .sign(&claims(&s, ADA, json!({"pad": "x".repeat(17_000)}))),
            ),
            401,
            "token_too_large",
        ),
        (
            post(&s.rsa.sign(&claims(&s, "ada@example.com", json!({})))),
            401,
            "invalid_user_id",
        ),
        (
            request("POST", json!({"origin": ORIGIN})),
            401,
            "missing_token",
        ),
        (
            request(
                "POST",
                json!({"authorization": format!("Bearer {0},Bearer {0}", s.rsa.sign(&c))}),
            ),
            400,
            "duplicate_authorization",
        ),
        (
            post(&s.rsa.sign(
                &json!({"iss": s.down_issuer, "aud": "chat-web", "sub": ADA, "exp": now() + 3600}),
            )),
            503,
            "jwks_unavailable",
        ),
    ];
    for (event, want_status, want_code) in refusals {
        if let Some(auth) = event["headers"]["authorization"].as_str() {
            tokens.push(auth.trim_start_matches("Bearer ").to_owned());
        }
        let (status, body, headers) = answer(&s.lambda.invoke(&event).await);
        assert_eq!(
            (status, body["error"].as_str()),
            (want_status, Some(want_code)),
            "{body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(headers["cache-control"], "no-store");
    }
    assert_eq!(s.sts.requests().len(), 4, "no refusal reached STS");
    // The unknown kid made one JWKS refetch at most (the keys were fetched
    // for the first token less than a minute before).
    assert_eq!(s.idp.jwks_fetches(), 1);

    // CORS preflight.
    let preflight = request(
        "OPTIONS",
        json!({"origin": ORIGIN, "access-control-request-method": "POST",
               "access-control-request-headers": "authorization,content-type"}),
    );
    let (status, _, headers) = answer(&s.lambda.invoke(&preflight).await);
    assert_eq!(status, 204);
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-methods"], "POST, OPTIONS");

    assert!(
        s.lambda.api.violations().is_empty(),
        "{:?}",
        s.lambda.api.violations()
    );

    // The log: JSON lines with issuer, sub and outcome; never a token, a
    // secret, a session token or an email address.
    s.lambda.stop();
    let lines = s.lambda.log_lines();
    // Refused tokens are logged with the trusted issuer they claim, no sub.
    let decided = |outcome: &str, sub: &str| {
        lines.iter().any(|l| {
            let f = l.get("fields").unwrap_or(l);
            f["outcome"] == outcome && f["sub"] == sub && f["issuer"] == s.idp.issuer()
        })
    };
    assert!(decided("credentials-issued", ADA), "{}", s.lambda.log());
    assert!(decided("credentials-issued", GRACE), "{}", s.lambda.log());
    assert!(decided("token_expired", "-"), "{}", s.lambda.log());
    let log = format!(
        "{}\n{}",
        s.lambda.process.stdout(),
        s.lambda.process.stderr()
    );
    assert!(
        log.contains("sts:AssumeRole and sts:TagSession"),
        "the STS denial is explained in the log:\n{log}"
    );
    for secret in tokens.iter().chain(&seen_secrets) {
        // Any token part long enough to identify it (the signature especially).
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert!(
                !log.contains(part),
                "the log holds a token or secret part `{part}`:\n{log}"
            );
        }
    }
    assert!(!log.contains("ada.lovelace@example.com") && !log.contains("Ada Lovelace"));

    // The metric lines: valid EMF, one per request, the function's name as
    // the only dimension; what each request ended in.
    let metrics = emf::function_metrics(&lines, CREDENTIAL_EXCHANGE.binary);
    let answered = s.lambda.api.seen().outcomes.len();
    assert_eq!((metrics.len(), answered), (17, 17));
    for (name, want) in [
        ("Decisions", 17.0),
        ("CredentialsIssued", 2.0),
        ("Failed", 1.0),
        ("Denied", 1.0),
        ("Refused", 12.0),
        ("Unavailable", 1.0),
        ("Preflight", 1.0),
        ("Created", 2.0),
        ("AlreadyExists", 1.0),
    ] {
        assert_eq!(emf::sum(&metrics, name), want, "{name}");
    }
    // Ada and Grace: describe and create each; the denied request: a describe.
    assert_eq!(emf::values(&metrics, "ChimeCallLatency").len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trusted_issuers_are_reported_to_init_error() {
    let lambda = Lambda::start(
        CREDENTIAL_EXCHANGE,
        &[
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            (
                "TRUSTED_ISSUERS",
                r#"{"http://idp.example.com": {"audiences": ["a"]}}"#,
            ),
            ("CHAT_USER_ROLE_ARN", ROLE),
        ],
    )
    .await;
    let report = lambda.api.init_error(Duration::from_secs(10)).await;
    assert_eq!(report.error_type, "Runtime.ConfigError");
    assert!(
        report.error_message.starts_with(
            "TRUSTED_ISSUERS issuer http://idp.example.com: the issuer URL must start with https://"
        ),
        "{}",
        report.error_message
    );
}
