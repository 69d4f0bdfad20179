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

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig};
use chime_sync_core::replay::DEMO_APP_INSTANCE_ARN;
use serde_json::{Value, json};
use testkit::credentials::keys::{hs256, jwks, now, tampered, unsigned};
use testkit::credentials::{LocalIdp, LocalSts, StsAnswer, TestCa, TestKey};
use testkit::emf;
use testkit::lambda::{CREDENTIAL_EXCHANGE, Lambda, SECRET_ACCESS_KEY};
use testkit::runtime_api::Outcome;
use testkit::samples::{ADA, ALAN, GRACE};

/// The key cache: lifetimes, the URL rule, a flood against slow IdPs.
mod keys;

const ROLE: &str = "arn:aws:iam::123456789012:role/chime-identity-sync-ChatUserRole-1AB2C3";
const ORIGIN: &str = "https://chat.example.com";

/// A Function URL event for `method /credentials` without a body.
fn request(method: &str, headers: Value) -> Value {
    crate::function_url::request(method, headers, None)
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
    fake: FakeChimeHandle,
    rsa: TestKey,
    ec: TestKey,
    down_issuer: String,
}

/// The bootstrap trusting `issuers`, with its own STS and Chime fake; fields
/// drop in order, the function first.
struct Exchange {
    lambda: Lambda,
    sts: LocalSts,
    fake: FakeChimeHandle,
}

/// Starts [`Exchange`] with `TRUSTED_ISSUERS` = `issuers` and `extra` settings.
async fn start_exchange(issuers: &Value, extra: &[(&str, &str)]) -> Exchange {
    let sts = LocalSts::start().await;
    let fake = FakeChime::start(FakeConfig::new())
        .await
        .expect("Chime fake");
    let (issuers, sts_url, fake_url) =
        (issuers.to_string(), sts.endpoint_url(), fake.endpoint_url());
    let mut env = vec![
        ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
        ("TRUSTED_ISSUERS", issuers.as_str()),
        ("CHAT_USER_ROLE_ARN", ROLE),
        ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", fake_url.as_str()),
        ("AWS_ENDPOINT_URL_STS", sts_url.as_str()),
    ];
    env.extend_from_slice(extra);
    let lambda = Lambda::start(CREDENTIAL_EXCHANGE, &env).await;
    Exchange { lambda, sts, fake }
}

async fn setup() -> Setup {
    let (ca, rsa, ec) = (
        TestCa::generate().expect("test CA"),
        TestKey::rsa("rsa-2026"),
        TestKey::ec("ec-2026"),
    );
    let idp = LocalIdp::start_tls(jwks(&[&rsa, &ec]), &ca).await;
    let dir = std::env::temp_dir().join(format!("e2e-credential-exchange-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("test-ca.pem");
    ca.write_pem(&ca_file).expect("write the test CA");
    let down = testkit::credentials::serve::closed_port().await;
    let down_issuer = format!("http://127.0.0.1:{}/down", down.port());
    let issuers = json!({
        idp.issuer(): {"audiences": ["chat-web"]},
        down_issuer.as_str(): {"audiences": ["chat-web"]},
    });
    let Exchange { lambda, sts, fake } = start_exchange(
        &issuers,
        &[
            ("ALLOWED_ORIGINS", ORIGIN),
            ("DISPLAY_NAME_ATTRIBUTES", "name,email:local"),
            ("SSL_CERT_FILE", ca_file.to_str().expect("UTF-8 path")),
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
    // Which issuer vouched: its key, by default the issuer URL's host.
    assert_eq!(
        (
            p["Tags.member.2.Key"].as_str(),
            p["Tags.member.2.Value"].as_str()
        ),
        ("Issuer", "localhost")
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

    // Ada again: the session issued to her is handed out again, no STS call.
    let token = s.rsa.sign(&claims(&s, ADA, json!({})));
    tokens.push(token.clone());
    let (status, again, _) = answer(&s.lambda.invoke(&post(&token)).await);
    assert_eq!((status, &again["credentials"]), (200, creds), "{again}");
    assert_eq!(s.sts.requests().len(), 3, "reused: no AssumeRole");

    // STS denied: 500, a clear log line, nothing about it in the body.
    s.sts.script([StsAnswer::AccessDenied]);
    let token = s
        .rsa
        .sign(&claims(&s, ALAN, json!({"name": "Alan Turing"})));
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
    // Every token that fails authentication is `invalid_token` to the client
    // (but an expired one); the reason is the log's and the metric's.
    let aud = |value: Value| {
        let mut c = claims(&s, ADA, json!({}));
        c["aud"] = value;
        post(&s.rsa.sign(&c))
    };
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
        (aud(json!(null)), 401, "malformed_audience"),
        (aud(json!([])), 401, "malformed_audience"),
        (aud(json!(5)), 401, "malformed_audience"),
        (
            aud(json!(["another-app", "chat-web"])),
            401,
            "wrong_authorized_party",
        ),
        (
            post(
                &s.rsa
                    .sign(&claims(&s, ADA, json!({"iat": now() + 3 * 365 * 86_400}))),
            ),
            401,
            "issued_in_future",
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
    let told_apart = [
        "token_expired",
        "jwks_unavailable",
        "missing_token",
        "duplicate_authorization",
    ];
    let mut want_reasons = Vec::new();
    for (event, want_status, want_reason) in refusals {
        if let Some(auth) = event["headers"]["authorization"].as_str() {
            tokens.push(auth.trim_start_matches("Bearer ").to_owned());
        }
        let (status, body, headers) = answer(&s.lambda.invoke(&event).await);
        let public = if told_apart.contains(&want_reason) {
            want_reason
        } else {
            want_reasons.push(want_reason.to_owned());
            "invalid_token"
        };
        assert_eq!(
            (status, body["error"].as_str()),
            (want_status, Some(public)),
            "{want_reason}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(headers["cache-control"], "no-store");
        if event["headers"]["origin"] == ORIGIN {
            let exposed = &headers["access-control-expose-headers"];
            assert_eq!(exposed, "Retry-After, WWW-Authenticate", "{want_reason}");
        }
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
    assert_eq!((metrics.len(), answered), (23, 23));
    for (name, want) in [
        ("Decisions", 23.0),
        ("CredentialsIssued", 3.0),
        ("Failed", 1.0),
        ("Denied", 1.0),
        ("Refused", 17.0),
        ("Unavailable", 1.0),
        ("Preflight", 1.0),
        ("Created", 3.0),
    ] {
        assert_eq!(emf::sum(&metrics, name), want, "{name}");
    }
    // Ada, Grace and Alan: describe and create each (Ada's second request
    // reused her session and called nobody).
    assert_eq!(emf::values(&metrics, "ChimeCallLatency").len(), 6);
    // Each refused token's precise reason, by the Reason dimension only.
    let mut reasons = emf::reasons(&lines, CREDENTIAL_EXCHANGE.binary);
    let mut every = want_reasons.clone();
    every.extend(["token_expired".to_owned(), "jwks_unavailable".to_owned()]);
    reasons.sort();
    every.sort();
    assert_eq!(reasons, every);
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

/// A Cognito `custom:` attribute as the user id: users can write their own
/// unless the app client forbids it, so the start-up refuses it until the
/// configuration says it is administrator-controlled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_writable_id_claim_is_refused_at_start_up() {
    let issuers = r#"{"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E":
        {"audiences": ["a"], "userIdClaim": "custom:chat_id"}}"#;
    let lambda = Lambda::start(
        CREDENTIAL_EXCHANGE,
        &[
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            ("TRUSTED_ISSUERS", issuers),
            ("CHAT_USER_ROLE_ARN", ROLE),
        ],
    )
    .await;
    let report = lambda.api.init_error(Duration::from_secs(10)).await;
    assert_eq!(report.error_type, "Runtime.ConfigError");
    assert!(
        report.error_message.contains("custom:chat_id")
            && report
                .error_message
                .contains("userIdClaimIsAdminControlled"),
        "{}",
        report.error_message
    );
}

/// Three issuers, one process: a second IdP's token naming the first's user
/// is refused (its administrator could mint any `sub`); a third's non-UUID
/// ids map to their UUID v5, never onto another's user; fractional times
/// pass; a loop of one user's valid requests makes one AssumeRole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_keep_to_their_own_users_and_a_loop_costs_one_session() {
    let keys = [
        TestKey::rsa("first"),
        TestKey::rsa("second"),
        TestKey::rsa("third"),
    ];
    let mut idps = Vec::new();
    for key in &keys {
        idps.push(LocalIdp::start(jwks(&[key])).await);
    }
    let issuers = json!({
        idps[0].issuer(): {"audiences": ["chat-web"], "key": "first"},
        idps[1].issuer(): {"audiences": ["chat-web"], "key": "second"},
        idps[2].issuer(): {"audiences": ["chat-web"], "key": "third", "userIdFormat": "uuid-v5"},
    });
    let Exchange { lambda, sts, fake } = start_exchange(&issuers, &[]).await;
    let token = |n: usize, sub: &str, extra: Value| {
        let mut c = json!({"iss": idps[n].issuer(), "aud": "chat-web", "sub": sub,
                           "iat": now(), "exp": now() + 3600, "name": "Ada Lovelace"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            c[k] = v;
        }
        keys[n].sign(&c)
    };
    // The first issuer's user, with fractional NumericDates (RFC 7519).
    let fractional = json!({"exp": now() as f64 + 3600.5, "iat": now() as f64 - 0.25});
    let ada = token(0, ADA, fractional);
    for _ in 0..100 {
        let (status, body, _) = answer(&lambda.invoke(&post(&ada)).await);
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        sts.requests().len(),
        1,
        "a hundred requests, one AssumeRole"
    );

    // The second issuer names Ada: not its user, refused before Chime and STS.
    let impostor = token(1, ADA, json!({}));
    let (status, body, _) = answer(&lambda.invoke(&post(&impostor)).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("identity_not_allowed")),
        "{body}"
    );
    assert_eq!(sts.requests().len(), 1);

    // The third's ids are UUID v5 in its own namespace: Ada's UUID as its
    // id is someone else, tagged as the third's.
    let okta_id = "00u1ab2cd3EF4gh5i6j7";
    let mapped = chime_sync_core::identity::derived_user_id(idps[2].issuer(), okta_id);
    for (sub, user) in [
        (okta_id.to_owned(), mapped.to_string()),
        (ADA.to_owned(), String::new()),
    ] {
        let (status, body, _) = answer(&lambda.invoke(&post(&token(2, &sub, json!({})))).await);
        assert_eq!(status, 200, "{body}");
        let arn = body["appInstanceUserArn"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!arn.ends_with(ADA), "{arn}");
        if !user.is_empty() {
            assert_eq!(arn, format!("{DEMO_APP_INSTANCE_ARN}/user/{user}"));
        }
    }
    let sent = sts.requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1].params["Tags.member.2.Value"], "third");
    assert_eq!(
        fake.users().len(),
        3,
        "Ada and the third issuer's two users"
    );
}
