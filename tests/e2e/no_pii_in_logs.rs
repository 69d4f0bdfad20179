//! No personal data in any log line, at any level: every function's compiled
//! bootstrap runs with `AWS_LAMBDA_LOG_LEVEL=TRACE` (the most it can be asked
//! to log) behind the mock Runtime API, is served events full of personal data
//! — well-formed, wrong-typed, not JSON at all (invalid UTF-8, a lone
//! surrogate, 10,000 levels of nesting) — and then every line it wrote, on
//! stdout and stderr, is searched for each item. The error reports it sends
//! back are searched too, and must be in our own format.
//!
//! The metric lines (CloudWatch's embedded metric format) are among the lines
//! searched, and are also validated against the specification, with the
//! function's name as their only dimension.
//!
//! At TRACE, `lambda_runtime` logs each raw event and the AWS SDK each request
//! body; `chime_sync_runtime::logging` keeps TRACE to our own crates. Without
//! that cap, or with serde's messages passed on, this test fails.
//!
//! The credential exchange is driven the same way with tokens whose claims hold
//! the personal data, and its log is also searched for every token and secret.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeConfig};
use chime_sync_core::replay::DEMO_APP_INSTANCE_ARN;
use serde_json::{Value, json};
use testkit::lambda::{IDP_SYNC, Lambda, POST_CONFIRMATION, PRE_SIGNUP, RECONCILE};
use testkit::moto::{Moto, create_fifo_with_dlq, depth};
use testkit::runtime_api::Outcome;
use testkit::{PII, cognito, emf};

const SUB: &str = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OTHER_SUB: &str = "6b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e";

fn attributes(sub: Option<&str>) -> Value {
    let mut attributes = json!({
        "email": PII[0], "email_verified": "true", "phone_number": PII[2],
        "name": PII[4], "given_name": "Alicia", "family_name": PII[5],
        "preferred_username": PII[6], "address": PII[7], "birthdate": PII[8],
        "custom:ssn": PII[9], "custom:alt_phone": PII[3],
    });
    if let Some(sub) = sub {
        attributes["sub"] = json!(sub);
        attributes["cognito:user_status"] = json!("CONFIRMED");
    }
    attributes
}

fn cognito(trigger: &str, attributes: Value) -> Value {
    json!({
        "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_aBcD3fGhI",
        "userName": PII[6], "triggerSource": trigger,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "4example7k2m9q3r5t8v1w6x0y"},
        "request": {"userAttributes": attributes, "clientMetadata": {"contact": PII[0]}},
        "response": {}
    })
}

/// Events that are not JSON, each with personal data inside.
fn malformed() -> Vec<Vec<u8>> {
    let mut invalid_utf8 = format!(
        r#"{{"triggerSource":"PreSignUp_SignUp","request":{{"userAttributes":{{"email":"{}"#,
        PII[0]
    )
    .into_bytes();
    invalid_utf8.extend(b"\xff\xfe\"}}}");
    let lone_surrogate = format!(
        r#"{{"request":{{"userAttributes":{{"name":"{}\ud800","email":"{}"}}}}}}"#,
        PII[4], PII[0]
    );
    let deep = format!(
        "{}{{\"email\":\"{}\"}}{}",
        "[".repeat(10_000),
        PII[0],
        "]".repeat(10_000)
    );
    vec![invalid_utf8, lone_surrogate.into_bytes(), deep.into_bytes()]
}

/// An SQS record of the sync queue.
fn record(message_id: &str, sub: &str, body: String) -> Value {
    json!({
        "messageId": message_id, "receiptHandle": format!("rh-{message_id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763632800000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1763632800001",
                       "MessageGroupId": sub, "MessageDeduplicationId": message_id},
        "messageAttributes": {}, "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pii.fifo", "awsRegion": "us-east-1"
    })
}

fn user_message(kind: &str, sub: &str) -> String {
    json!({"version": 1, "type": kind, "eventId": format!("e-{kind}"),
           "user": {"sub": sub, "displayName": PII[10],
                    "metadata": {"email": PII[11], "phone": PII[12], "note": PII[7]}}})
    .to_string()
}

/// Every line the function wrote (stdout and stderr) and every error report
/// it sent: none holds an item of [`PII`]; each log line is JSON; the
/// function really logged above INFO.
fn assert_no_pii(lambda: &Lambda, reports: &[Outcome]) {
    lambda.stop();
    let lines = lambda.log_lines();
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "{}: TRACE was asked for, yet nothing below INFO was logged:\n{}",
        lambda.function.binary,
        lambda.log()
    );
    assert!(
        lines.iter().any(|l| l["level"] == "TRACE"),
        "{}: our crates log at TRACE when asked to:\n{}",
        lambda.function.binary,
        lambda.log()
    );
    // The metric lines: valid EMF, one per invocation, the function's name
    // their only dimension, and not even a sub in them (they are counts).
    let metrics = emf::function_metrics(&lines, lambda.function.binary);
    assert_eq!(metrics.len(), lambda.api.seen().outcomes.len());
    for line in lines
        .iter()
        .filter(|l| emf::is_emf(l))
        .map(Value::to_string)
    {
        for sub in [SUB, OTHER_SUB] {
            assert!(!line.contains(sub), "a sub in a metric line: {line}");
        }
    }
    let stderr = lambda.process.stderr();
    for (n, line) in lines
        .iter()
        .map(Value::to_string)
        .chain(stderr.lines().map(str::to_owned))
        .enumerate()
    {
        for item in PII {
            assert!(
                !line.contains(item),
                "{} logged {item:?} in line {n}: {line}",
                lambda.function.binary
            );
        }
    }
    for report in reports {
        let text = match report {
            Outcome::Error(e) => {
                assert!(
                    !e.error_type.contains("lambda_runtime") && e.error_type.contains('.'),
                    "{}: not our error format: {e:?}",
                    lambda.function.binary
                );
                e.body.to_string()
            }
            Outcome::Response(_) => continue,
        };
        for item in PII {
            assert!(
                !text.contains(item),
                "{} answered with {item:?}: {text}",
                lambda.function.binary
            );
        }
    }
}

/// The three malformed payloads: each answered with our InvalidJson report.
async fn serve_malformed(lambda: &Lambda, kind: &str, reports: &mut Vec<Outcome>) {
    for (n, payload) in malformed().into_iter().enumerate() {
        let outcome = lambda.invoke_bytes(payload).await;
        let error = outcome.error();
        assert_eq!(
            error.error_type,
            format!("{kind}.InvalidJson"),
            "payload {n}: {error:?}"
        );
        assert!(
            error
                .error_message
                .starts_with("the event is not valid JSON: "),
            "payload {n}: {error:?}"
        );
        reports.push(outcome.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_signup_logs_no_personal_data_at_trace() {
    let lambda = Lambda::start(
        PRE_SIGNUP,
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("ALLOWED_EMAIL_DOMAINS", "example.com"),
            ("AUTO_VERIFY_EMAIL", "true"),
        ],
    )
    .await;
    let mut reports = Vec::new();
    for trigger in [
        "PreSignUp_SignUp",
        "PreSignUp_ExternalProvider",
        "PreSignUp_AdminCreateUser",
        "PreSignUp_NewFlow",
    ] {
        let outcome = lambda.invoke(&cognito(trigger, attributes(None))).await;
        assert!(
            matches!(outcome, Outcome::Response(_)),
            "{trigger}: {outcome:?}"
        );
    }
    let mut elsewhere = attributes(None);
    elsewhere["email"] = json!(PII[11]);
    reports.push(lambda.invoke(&cognito("PreSignUp_SignUp", elsewhere)).await);
    assert_eq!(
        reports[0].error().error_type,
        "SignUpRejected.EmailDomainNotAllowed"
    );
    serve_malformed(&lambda, "SignUpRejected", &mut reports).await;
    assert_no_pii(&lambda, &reports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_confirmation_logs_no_personal_data_at_trace() {
    let fake = FakeChime::start(FakeConfig::new()).await.expect("fake");
    let lambda = Lambda::start(
        POST_CONFIRMATION,
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            (
                "SYNC_QUEUE_URL",
                "http://127.0.0.1:9/123456789012/identity-sync.fifo",
            ),
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake.endpoint_url()),
        ],
    )
    .await;
    let mut reports = Vec::new();
    for trigger in [
        "PostConfirmation_ConfirmSignUp",
        "PostConfirmation_ConfirmSignUp",
        "PostConfirmation_ConfirmForgotPassword",
    ] {
        let outcome = lambda
            .invoke(&cognito(trigger, attributes(Some(SUB))))
            .await;
        assert!(
            matches!(outcome, Outcome::Response(_)),
            "{trigger}: {outcome:?}"
        );
    }
    let heal = cognito(
        "PostConfirmation_ConfirmForgotPassword",
        attributes(Some(OTHER_SUB)),
    );
    assert!(matches!(lambda.invoke(&heal).await, Outcome::Response(_)));
    assert_eq!(fake.users().len(), 2);
    // A sub of the wrong type, holding personal data.
    let mut wrong = attributes(None);
    wrong["sub"] = json!({"email": PII[13]});
    let outcome = lambda
        .invoke(&cognito("PostConfirmation_ConfirmSignUp", wrong))
        .await;
    assert_eq!(outcome.error().error_type, "ConfirmationFailed.WrongType");
    reports.push(outcome);
    serve_malformed(&lambda, "ConfirmationFailed", &mut reports).await;
    assert_no_pii(&lambda, &reports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_sync_logs_no_personal_data_at_trace() {
    let (moto, fake) = (
        Moto::start().await,
        FakeChime::start(FakeConfig::new()).await.expect("fake"),
    );
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "pii", 30, 5).await;
    let lambda = Lambda::start(
        IDP_SYNC,
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            ("DELETE_MODE", "immediate"),
            ("DLQ_URL", &queues.dlq_url),
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake.endpoint_url()),
            ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url()),
        ],
    )
    .await;
    let mut reports = Vec::new();
    let sns = json!({"Type": "Notification", "MessageId": "sns-1",
                     "TopicArn": "arn:aws:sns:us-east-1:123456789012:hr",
                     "Message": user_message("user.updated", OTHER_SUB)})
    .to_string();
    let batch = json!({"Records": [
        record("m1", SUB, user_message("user.created", SUB)),
        record("m2", SUB, user_message("user.updated", SUB)),
        record("m3", OTHER_SUB, sns),
        // Poison with personal data: not JSON, and an unknown type.
        record("m4", SUB, format!("{{\"email\": \"{}\", ", PII[0])),
        record("m5", SUB, json!({"version": 1, "type": PII[0], "user": {"sub": SUB}}).to_string()),
        record("m6", OTHER_SUB, user_message("user.deleted", OTHER_SUB)),
    ]});
    let outcome = lambda.invoke(&batch).await;
    assert_eq!(outcome, Outcome::Response(json!({"batchItemFailures": []})));
    assert_eq!(depth(&sqs, &queues.dlq_url).await, 2, "{}", moto.output());
    assert_eq!(fake.users().len(), 1);

    // Wrong-typed SQS fields whose values are personal data.
    let mut wrong_count = record("w1", SUB, user_message("user.created", SUB));
    wrong_count["messageAttributes"] = json!({"contact": {"dataType": "String", "stringValue": "x",
                                                          "binaryListValues": PII[13]}});
    let mut wrong_id = record("w2", SUB, user_message("user.created", SUB));
    wrong_id["messageId"] = json!({"email": PII[13]});
    for bad in [
        json!({"Records": [wrong_count]}),
        json!({"Records": [wrong_id]}),
        json!({"Records": PII[13]}),
    ] {
        let outcome = lambda.invoke(&bad).await;
        let error = outcome.error();
        assert_eq!(error.error_type, "IdpSyncFailed.InvalidEvent", "{error:?}");
        assert!(error.error_message.contains("at `Records"), "{error:?}");
        reports.push(outcome.clone());
    }
    serve_malformed(&lambda, "IdpSyncFailed", &mut reports).await;
    // Still serving after all of that.
    let outcome = lambda
        .invoke(&json!({"Records": [record("m7", SUB, user_message("user.deleted", SUB))]}))
        .await;
    assert_eq!(outcome, Outcome::Response(json!({"batchItemFailures": []})));
    assert!(fake.users().is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_no_pii(&lambda, &reports);
}

/// The reconcile function reads a pool whose users' attributes (and user
/// names) are personal data, publishes their creates (the display names go
/// into the queue's messages, never into a log line), and is served
/// malformed events and a continuation whose values are personal data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_logs_no_personal_data_at_trace() {
    use aws_sdk_cognitoidentityprovider::types::MessageActionType;
    let (moto, fake) = (
        Moto::start().await,
        FakeChime::start(FakeConfig::new()).await.expect("fake"),
    );
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "pii-reconcile", 30, 5).await;
    let cognito = cognito::client(&moto);
    let pool = cognito::create_pool(&cognito, "pii").await;
    let attribute = cognito::attribute;
    for (username, email, phone, name, handle) in [
        (PII[1], PII[0], PII[2], PII[4], PII[6]),
        ("bart", PII[11], PII[12], PII[10], PII[5]),
    ] {
        cognito
            .admin_create_user()
            .user_pool_id(&pool)
            .username(username)
            .message_action(MessageActionType::Suppress)
            .user_attributes(attribute("email", email))
            .user_attributes(attribute("phone_number", phone))
            .user_attributes(attribute("name", name))
            .user_attributes(attribute("preferred_username", handle))
            .user_attributes(attribute("address", PII[7]))
            .user_attributes(attribute("birthdate", PII[8]))
            .send()
            .await
            .expect("AdminCreateUser");
    }
    let lambda = Lambda::start(
        RECONCILE,
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            ("USER_POOL_ID", &pool),
            ("SYNC_QUEUE_URL", &queues.queue_url),
            (
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                moto.endpoint_url(),
            ),
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake.endpoint_url()),
            ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url()),
        ],
    )
    .await;
    let scheduled = json!({"version": "0", "id": "pii-cycle", "detail-type": "Scheduled Event",
                           "source": "aws.events", "detail": {}});
    let outcome = lambda.invoke(&scheduled).await;
    let Outcome::Response(answer) = &outcome else {
        panic!("{outcome:?}\n{}", lambda.log());
    };
    assert_eq!(answer["done"], true, "{answer}");
    assert_eq!(answer["totals"]["creates"], 2, "{answer}");
    assert_eq!(depth(&sqs, &queues.queue_url).await, 2, "{}", moto.output());

    let mut reports = Vec::new();
    for bad in [
        json!({"continuation": {"cycle": PII[0], "shards": PII[13]}}),
        json!({"continuation": PII[3]}),
    ] {
        let outcome = lambda.invoke(&bad).await;
        let error = outcome.error();
        assert_eq!(
            error.error_type, "ReconcileFailed.InvalidEvent",
            "{error:?}"
        );
        reports.push(outcome.clone());
    }
    serve_malformed(&lambda, "ReconcileFailed", &mut reports).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_no_pii(&lambda, &reports);
}

/// A Function URL event posting `body` to `/credentials`.
fn credentials_request(headers: Value, body: &str) -> Value {
    crate::function_url::request("POST", headers, Some(body))
}

/// The credential exchange at TRACE: tokens whose claims are full of personal
/// data (accepted, expired, for another audience, tampered), a body holding
/// some, a wrong-typed header, and the malformed payloads. Neither the
/// personal data nor any token, nor the secret or session token STS handed
/// back, may reach a log line or an error report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_exchange_logs_no_personal_data_or_token_at_trace() {
    use testkit::credentials::keys::{jwks, now, tampered};
    use testkit::credentials::{LocalIdp, LocalSts, TestKey};
    use testkit::lambda::{CREDENTIAL_EXCHANGE, SECRET_ACCESS_KEY};

    let key = TestKey::rsa("pii-rsa");
    let (idp, sts) = (
        LocalIdp::start(jwks(&[&key])).await,
        LocalSts::start().await,
    );
    let fake = FakeChime::start(FakeConfig::new()).await.expect("fake");
    let issuers = json!({idp.issuer(): {"audiences": ["chat-web"]}}).to_string();
    let lambda = Lambda::start(
        CREDENTIAL_EXCHANGE,
        &[
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
            ("TRUSTED_ISSUERS", &issuers),
            (
                "CHAT_USER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/ChatUserRole",
            ),
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake.endpoint_url()),
            ("AWS_ENDPOINT_URL_STS", &sts.endpoint_url()),
        ],
    )
    .await;
    let claims = |extra: Value| {
        let mut c = json!({"iss": idp.issuer(), "aud": "chat-web", "sub": SUB, "iat": now(),
                           "exp": now() + 3600, "email": PII[0], "name": PII[4],
                           "phone_number": PII[2], "preferred_username": PII[6],
                           "address": {"formatted": PII[7]}, "birthdate": PII[8]});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            c[k] = v;
        }
        c
    };
    let good = key.sign(&claims(json!({})));
    let tokens = [
        good.clone(),
        key.sign(&claims(json!({"exp": now() - 7200, "iat": now() - 10800}))),
        key.sign(&claims(json!({"aud": PII[11]}))),
        tampered(&good, &claims(json!({"sub": OTHER_SUB}))),
    ];
    let mut reports = Vec::new();
    let mut statuses = Vec::new();
    let mut secrets = vec![SECRET_ACCESS_KEY.to_owned()];
    for token in &tokens {
        let headers = json!({"authorization": format!("Bearer {token}")});
        let outcome = lambda
            .invoke(&credentials_request(
                headers,
                &format!("{{\"email\":\"{}\"}}", PII[0]),
            ))
            .await;
        let response = outcome.response();
        statuses.push(response["statusCode"].as_i64().unwrap_or_default());
        let body: Value = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        if let Some(token) = body["credentials"]["sessionToken"].as_str() {
            secrets.push(token.to_owned());
        }
        for item in PII
            .iter()
            .map(|s| (*s).to_owned())
            .chain(tokens.iter().cloned())
        {
            assert!(
                !response.to_string().contains(&item),
                "answered with {item:?}: {response}"
            );
        }
    }
    assert_eq!(statuses, [200, 401, 401, 401]);
    assert_eq!(fake.users().len(), 1);
    let wrong_header = credentials_request(json!({"authorization": {"email": PII[13]}}), "{}");
    reports.push(lambda.invoke(&wrong_header).await);
    serve_malformed(&lambda, "CredentialExchangeFailed", &mut reports).await;
    assert_no_pii(&lambda, &reports);
    let log = lambda.log();
    for secret in tokens.iter().chain(&secrets) {
        // Every part of a token, not only the whole: the payload alone is the
        // personal data.
        for part in secret.split('.').filter(|p| p.len() > 8) {
            assert!(
                !log.contains(part),
                "a token or secret part reached the log"
            );
        }
    }
}
