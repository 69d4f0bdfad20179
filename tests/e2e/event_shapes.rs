//! The samples in `events/` are AWS-shaped: each deserialises into the strict
//! `aws_lambda_events` 1.2.1 type of its function, except the two samples that
//! exist to show our triggers are more tolerant than those types
//! (docs/ARCHITECTURE.md, "Cognito triggers"):
//! for those, this test proves that `aws_lambda_events` refuses them, for
//! exactly the documented reason, and that our handlers accept them.
//!
//! It also pins down which fields `aws_lambda_events` demands (so a sample
//! cannot quietly lack one) and checks the fields AWS always sends that the
//! types leave optional (so the samples stay realistic).

use std::path::PathBuf;

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPostConfirmationTriggerSource,
    CognitoEventUserPoolsPreSignup, CognitoEventUserPoolsPreSignupTriggerSource,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::sqs::SqsEvent;
use chime_sync_core::replay::{Replay, collect_files};
use serde_json::{Value, json};
use testkit::{events_dir, events_relative};

/// Samples `aws_lambda_events` must refuse and our handlers must accept.
const UNKNOWN_TRIGGER_SOURCE: &str = "pre-signup/unknown-trigger-source.json";
const UNKNOWN_TRIGGER_SOURCE_REJECTED: &str =
    "pre-signup/unknown-trigger-source-rejected-email-domain.json";
const EMPTY_RESPONSE: &str = "pre-signup/empty-response.json";
const TOLERANT: &[&str] = &[
    UNKNOWN_TRIGGER_SOURCE,
    UNKNOWN_TRIGGER_SOURCE_REJECTED,
    EMPTY_RESPONSE,
];

/// The function a sample is for, from its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PreSignUp,
    PostConfirmation,
    IdpSync,
    CredentialExchange,
    /// The schedule's event, which starts the reconcile state machine.
    Reconcile,
}

fn kind(rel: &str) -> Kind {
    match rel.split('/').next() {
        Some("pre-signup") => Kind::PreSignUp,
        Some("post-confirmation") => Kind::PostConfirmation,
        Some("idp-sync") => Kind::IdpSync,
        Some("credential-exchange") => Kind::CredentialExchange,
        Some("reconcile") => Kind::Reconcile,
        _ => panic!(
            "events/{rel}: samples live in pre-signup/, post-confirmation/, idp-sync/, \
             credential-exchange/ or reconcile/"
        ),
    }
}

/// Deserialise into the `aws_lambda_events` type of `kind`; the error as text.
fn strict(kind: Kind, event: &Value) -> Result<(), String> {
    let result = match kind {
        Kind::PreSignUp => {
            serde_json::from_value::<CognitoEventUserPoolsPreSignup>(event.clone()).map(drop)
        }
        Kind::PostConfirmation => {
            serde_json::from_value::<CognitoEventUserPoolsPostConfirmation>(event.clone()).map(drop)
        }
        Kind::IdpSync => serde_json::from_value::<SqsEvent>(event.clone()).map(drop),
        Kind::CredentialExchange => {
            serde_json::from_value::<LambdaFunctionUrlRequest>(event.clone()).map(drop)
        }
        Kind::Reconcile => serde_json::from_value::<EventBridgeEvent>(event.clone()).map(drop),
    };
    result.map_err(|e| e.to_string())
}

fn samples() -> Vec<(String, Value)> {
    let samples: Vec<(String, Value)> = collect_files(&[events_dir()])
        .expect("events/ is readable")
        .into_iter()
        .map(|path| {
            let rel = events_relative(&path);
            let text = std::fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
            (rel, value)
        })
        .collect();
    assert!(!samples.is_empty(), "no samples in events/");
    samples
}

fn sample(rel: &str) -> Value {
    let path: PathBuf = events_dir().join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn every_sample_deserialises_into_its_aws_lambda_events_type() {
    for (rel, event) in samples() {
        if TOLERANT.contains(&rel.as_str()) {
            continue;
        }
        match kind(&rel) {
            Kind::PreSignUp => {
                let parsed: CognitoEventUserPoolsPreSignup = serde_json::from_value(event.clone())
                    .unwrap_or_else(|e| panic!("{rel}: aws_lambda_events refuses it: {e}"));
                let header = &parsed.cognito_event_user_pools_header;
                assert!(
                    matches!(
                        header.trigger_source,
                        Some(
                            CognitoEventUserPoolsPreSignupTriggerSource::SignUp
                                | CognitoEventUserPoolsPreSignupTriggerSource::AdminCreateUser
                                | CognitoEventUserPoolsPreSignupTriggerSource::ExternalProvider
                        )
                    ),
                    "{rel}: {:?}",
                    header.trigger_source
                );
                assert!(!parsed.request.user_attributes.is_empty(), "{rel}");
            }
            Kind::PostConfirmation => {
                let parsed: CognitoEventUserPoolsPostConfirmation =
                    serde_json::from_value(event.clone())
                        .unwrap_or_else(|e| panic!("{rel}: aws_lambda_events refuses it: {e}"));
                assert!(
                    matches!(
                        parsed.cognito_event_user_pools_header.trigger_source,
                        Some(
                            CognitoEventUserPoolsPostConfirmationTriggerSource::ConfirmSignUp
                                | CognitoEventUserPoolsPostConfirmationTriggerSource::ConfirmForgotPassword
                        )
                    ),
                    "{rel}"
                );
                assert!(!parsed.request.user_attributes.is_empty(), "{rel}");
            }
            Kind::CredentialExchange => {
                let parsed: LambdaFunctionUrlRequest = serde_json::from_value(event.clone())
                    .unwrap_or_else(|e| panic!("{rel}: aws_lambda_events refuses it: {e}"));
                assert_eq!(parsed.raw_path.as_deref(), Some("/credentials"), "{rel}");
                assert!(
                    matches!(
                        parsed.request_context.http.method.as_deref(),
                        Some("POST" | "OPTIONS")
                    ),
                    "{rel}"
                );
            }
            Kind::IdpSync => {
                let parsed: SqsEvent = serde_json::from_value(event.clone())
                    .unwrap_or_else(|e| panic!("{rel}: aws_lambda_events refuses it: {e}"));
                assert_eq!(
                    parsed.records.len(),
                    event["Records"].as_array().map_or(0, Vec::len),
                    "{rel}"
                );
                for record in &parsed.records {
                    assert!(
                        record.message_id.is_some() && record.body.is_some(),
                        "{rel}: {record:?}"
                    );
                }
            }
            Kind::Reconcile => {
                let parsed: EventBridgeEvent = serde_json::from_value(event.clone())
                    .unwrap_or_else(|e| panic!("{rel}: aws_lambda_events refuses it: {e}"));
                assert_eq!(parsed.detail_type, "Scheduled Event", "{rel}");
                assert!(parsed.id.is_some(), "{rel}");
            }
        }
    }
}

/// docs/ARCHITECTURE.md, "Cognito triggers": a trigger source AWS adds later, and `"response": {}`, make
/// `aws_lambda_events` fail; a trigger built on it would fail every sign-up.
/// Ours reads the event as JSON and accepts both.
#[tokio::test]
async fn tolerant_samples_are_refused_by_aws_lambda_events_and_accepted_by_our_handler() {
    let replay = Replay::embedded().unwrap();

    // An unknown trigger source: the enum has no catch-all variant.
    let unknown = sample(UNKNOWN_TRIGGER_SOURCE);
    let err = strict(Kind::PreSignUp, &unknown).expect_err("aws_lambda_events should refuse it");
    assert!(
        err.contains("unknown variant `PreSignUp_PasswordlessSignUp`"),
        "{err}"
    );
    let mut known = unknown.clone();
    known["triggerSource"] = json!("PreSignUp_SignUp");
    assert_eq!(
        strict(Kind::PreSignUp, &known),
        Ok(()),
        "the trigger source must be the only reason"
    );
    let replayed = replay
        .file(&events_dir().join(UNKNOWN_TRIGGER_SOURCE))
        .await
        .unwrap();
    let mut answered = unknown.clone();
    answered["response"]["autoVerifyEmail"] = json!(true);
    assert_eq!(
        replayed.response,
        Ok(answered),
        "checked and answered like a sign-up"
    );
    assert_eq!(
        replayed.rows[0].outcome,
        "allowed (auto-confirm false, email verified true)"
    );
    // Fail closed: the same unknown source with a forbidden domain is refused.
    let rejected = sample(UNKNOWN_TRIGGER_SOURCE_REJECTED);
    assert!(strict(Kind::PreSignUp, &rejected).is_err());
    let replayed = replay
        .file(&events_dir().join(UNKNOWN_TRIGGER_SOURCE_REJECTED))
        .await
        .unwrap();
    assert_eq!(
        replayed.response,
        Err("Sign-ups with this email domain are not allowed.".to_owned())
    );

    // `"response": {}`: the three booleans are required fields.
    let empty = sample(EMPTY_RESPONSE);
    assert_eq!(empty["response"], json!({}));
    let err = strict(Kind::PreSignUp, &empty).expect_err("aws_lambda_events should refuse it");
    assert!(err.contains("missing field `autoConfirmUser`"), "{err}");
    let mut filled = empty.clone();
    filled["response"] =
        json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false});
    assert_eq!(
        strict(Kind::PreSignUp, &filled),
        Ok(()),
        "the empty response must be the only reason"
    );
    let replayed = replay
        .file(&events_dir().join(EMPTY_RESPONSE))
        .await
        .unwrap();
    let mut answered = empty;
    answered["response"] =
        json!({"autoConfirmUser": false, "autoVerifyEmail": true, "autoVerifyPhone": false});
    assert_eq!(replayed.response, Ok(answered));
}

/// Exactly the fields `aws_lambda_events` 1.2.1 demands, found by removing
/// each field of a valid sample in turn. Everything else (even `triggerSource`,
/// `userName`, `messageId`, `body`) is optional to it.
#[test]
fn aws_lambda_events_demands_exactly_these_fields() {
    // PreSignup: the `callerContext`, `request` and `response` objects, and the
    // three response booleans, which must not be null either.
    let pre = sample("pre-signup/sign-up-allowed.json");
    assert_eq!(
        required_keys(Kind::PreSignUp, &pre, ""),
        ["callerContext", "request", "response"]
    );
    assert_eq!(
        required_keys(Kind::PreSignUp, &pre, "/response"),
        ["autoConfirmUser", "autoVerifyEmail", "autoVerifyPhone"]
    );
    for path in ["/request", "/callerContext"] {
        assert!(
            required_keys(Kind::PreSignUp, &pre, path).is_empty(),
            "{path}"
        );
    }
    for flag in ["autoConfirmUser", "autoVerifyEmail", "autoVerifyPhone"] {
        let mut nulled = pre.clone();
        nulled["response"][flag] = Value::Null;
        let err = strict(Kind::PreSignUp, &nulled).expect_err(flag);
        assert!(err.contains("expected a boolean"), "{flag}: {err}");
    }
    // Attribute values are strings (Cognito sends "true", not true).
    let mut typed = pre.clone();
    typed["request"]["userAttributes"]["email_verified"] = json!(true);
    assert!(strict(Kind::PreSignUp, &typed).is_err());

    // PostConfirmation: the same three objects; any `response` object will do.
    let post = sample("post-confirmation/confirm-sign-up-new-user.json");
    assert_eq!(
        required_keys(Kind::PostConfirmation, &post, ""),
        ["callerContext", "request", "response"]
    );
    for path in ["/request", "/callerContext"] {
        assert!(
            required_keys(Kind::PostConfirmation, &post, path).is_empty(),
            "{path}"
        );
    }

    // SqsEvent: only `Records`; every field of a record is optional.
    let sqs = sample("idp-sync/fifo-two-groups-one-failing.json");
    assert_eq!(required_keys(Kind::IdpSync, &sqs, ""), ["Records"]);
    let record = &sqs["Records"][0];
    for key in record.as_object().unwrap().keys() {
        let mut without = sqs.clone();
        without["Records"][0].as_object_mut().unwrap().remove(key);
        assert_eq!(strict(Kind::IdpSync, &without), Ok(()), "Records[0].{key}");
    }
}

/// The keys of the object at JSON pointer `at` whose removal makes
/// `aws_lambda_events` refuse the event.
fn required_keys(kind: Kind, event: &Value, at: &str) -> Vec<String> {
    assert_eq!(strict(kind, event), Ok(()));
    let object = event.pointer(at).and_then(Value::as_object).expect(at);
    object
        .keys()
        .filter(|key| {
            let mut without = event.clone();
            let parent = without.pointer_mut(at).and_then(Value::as_object_mut);
            parent.expect(at).remove(*key);
            strict(kind, &without).is_err()
        })
        .cloned()
        .collect()
}

/// Fields AWS always sends that `aws_lambda_events` leaves optional, and the
/// conventions of the samples (fake account, lower-case UUID subs, example domains).
#[test]
fn samples_carry_what_aws_sends() {
    for (rel, event) in samples() {
        match kind(&rel) {
            Kind::PreSignUp | Kind::PostConfirmation => check_cognito(&rel, &event),
            Kind::IdpSync => check_sqs(&rel, &event),
            Kind::CredentialExchange => check_function_url(&rel, &event),
            Kind::Reconcile => check_scheduled(&rel, &event),
        }
        check_conventions(&rel, &event);
    }
}

/// What EventBridge's scheduled event always carries (the state machine's
/// input, which reconcile names its cycle after by `id`).
fn check_scheduled(rel: &str, event: &Value) {
    assert_eq!(event["detail-type"], "Scheduled Event", "{rel}");
    assert_eq!(event["source"], "aws.events", "{rel}");
    assert_eq!(event["version"], "0", "{rel}");
    assert!(
        event["id"].as_str().is_some_and(|id| id.len() == 36),
        "{rel}: id"
    );
    assert!(
        event["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{rel}: time"
    );
    assert!(
        event["resources"].as_array().is_some_and(|r| r.len() == 1),
        "{rel}: resources"
    );
    assert_eq!(event["detail"], serde_json::json!({}), "{rel}: detail");
}

/// What a Function URL event (payload format 2.0) always carries.
fn check_function_url(rel: &str, event: &Value) {
    for key in [
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "isBase64Encoded",
    ] {
        assert!(event.get(key).is_some(), "{rel}: no {key}");
    }
    assert_eq!(event["version"], "2.0", "{rel}");
    for key in [
        "accountId",
        "apiId",
        "domainName",
        "requestId",
        "timeEpoch",
        "http",
    ] {
        assert!(
            event["requestContext"].get(key).is_some(),
            "{rel}: no requestContext.{key}"
        );
    }
    // Function URLs lower-case header names and join repeated headers with commas.
    for name in event["headers"].as_object().expect("headers").keys() {
        assert_eq!(name, &name.to_ascii_lowercase(), "{rel}: header {name}");
    }
}

fn check_cognito(rel: &str, event: &Value) {
    for key in [
        "version",
        "triggerSource",
        "region",
        "userPoolId",
        "userName",
    ] {
        assert!(event[key].is_string(), "{rel}: {key}");
    }
    assert_eq!(event["version"], "1", "{rel}");
    assert_eq!(event["region"], "us-east-1", "{rel}");
    assert!(
        event["userPoolId"]
            .as_str()
            .unwrap()
            .starts_with("us-east-1_"),
        "{rel}"
    );
    for key in ["awsSdkVersion", "clientId"] {
        assert!(
            event["callerContext"][key].is_string(),
            "{rel}: callerContext.{key}"
        );
    }
    assert!(event["request"]["userAttributes"].is_object(), "{rel}");
    assert!(event["response"].is_object(), "{rel}");
    let source = event["triggerSource"].as_str().unwrap();
    let prefix = match kind(rel) {
        Kind::PreSignUp => "PreSignUp_",
        _ => "PostConfirmation_",
    };
    assert!(source.starts_with(prefix), "{rel}: {source}");
    if kind(rel) == Kind::PreSignUp {
        assert!(
            event["request"].get("validationData").is_some(),
            "{rel}: Cognito sends validationData (null when empty)"
        );
        assert!(
            event["request"]["userAttributes"].get("sub").is_none(),
            "{rel}: PreSignUp events carry no sub"
        );
    }
    if source == "PreSignUp_AdminCreateUser" {
        assert_eq!(
            event["callerContext"]["clientId"], "CLIENT_ID_NOT_APPLICABLE",
            "{rel}"
        );
    }
}

fn check_sqs(rel: &str, event: &Value) {
    for record in event["Records"].as_array().expect("Records") {
        let id = record["messageId"].as_str().unwrap_or("?");
        let at = format!("{rel}#{id}");
        for key in [
            "messageId",
            "receiptHandle",
            "body",
            "md5OfBody",
            "eventSourceARN",
        ] {
            assert!(record[key].is_string(), "{at}: {key}");
        }
        assert_eq!(record["eventSource"], "aws:sqs", "{at}");
        assert_eq!(record["awsRegion"], "us-east-1", "{at}");
        assert!(record["messageAttributes"].is_object(), "{at}");
        let md5 = record["md5OfBody"].as_str().unwrap();
        assert!(
            md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()),
            "{at}: md5OfBody"
        );
        let arn = record["eventSourceARN"].as_str().unwrap();
        assert!(
            arn.starts_with("arn:aws:sqs:us-east-1:123456789012:"),
            "{at}: {arn}"
        );
        let attributes = &record["attributes"];
        for key in [
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        ] {
            assert!(attributes[key].is_string(), "{at}: attributes.{key}");
        }
        let fifo_keys = ["SequenceNumber", "MessageGroupId", "MessageDeduplicationId"];
        for key in fifo_keys {
            assert_eq!(
                attributes[key].is_string(),
                arn.ends_with(".fifo"),
                "{at}: attributes.{key} is there exactly on FIFO queues"
            );
        }
        if let Ok(body) = serde_json::from_str::<Value>(record["body"].as_str().unwrap()) {
            check_envelope(&at, &body);
        }
    }
}

/// SNS notifications and EventBridge events carry all their envelope fields.
fn check_envelope(at: &str, body: &Value) {
    if body["Type"] == "Notification" {
        for key in [
            "Type",
            "MessageId",
            "TopicArn",
            "Message",
            "Timestamp",
            "SignatureVersion",
            "Signature",
            "SigningCertURL",
            "UnsubscribeURL",
        ] {
            assert!(body[key].is_string(), "{at}: SNS {key}");
        }
        let inner: Value = serde_json::from_str(body["Message"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{at}: SNS Message is a JSON string: {e}"));
        assert_eq!(inner["version"], 1, "{at}");
    } else if body.get("detail-type").is_some() {
        for key in [
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
        ] {
            assert!(body[key].is_string(), "{at}: EventBridge {key}");
        }
        assert!(body["resources"].is_array(), "{at}: EventBridge resources");
        assert!(body["detail"].is_object(), "{at}: EventBridge detail");
        assert_eq!(body["account"], "123456789012", "{at}");
    }
}

/// Fake account, lower-case UUID subs, emails only at example domains.
fn check_conventions(rel: &str, event: &Value) {
    fn walk(rel: &str, key: &str, value: &Value) {
        match value {
            Value::String(s) => {
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
                {
                    walk(rel, key, &inner);
                    return;
                }
                if s.starts_with("arn:") {
                    let account = s.split(':').nth(4).unwrap_or_default();
                    assert!(
                        account.is_empty() || account == "123456789012",
                        "{rel}: {s}"
                    );
                }
                if key == "sub" && s.len() == 36 {
                    assert_eq!(s, &s.to_ascii_lowercase(), "{rel}: subs are lower case");
                }
                if let Some((_, domain)) = s.rsplit_once('@') {
                    assert!(
                        ["example.com", "example.org", "example.net"].contains(&domain),
                        "{rel}: {s}"
                    );
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(rel, key, v)),
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(rel, k, v)),
            _ => {}
        }
    }
    walk(rel, "", event);
}
