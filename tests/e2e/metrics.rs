//! The metric lines, read as CloudWatch reads them: every EMF object the
//! functions write is checked against the embedded metric format
//! specification by an independent validator (crates/testkit/src/emf.rs, itself
//! tested here against the specification's example and each of its rules),
//! and no dimension holds anything but the function's name.
//!
//! Here the real handlers are driven in-process, with the in-memory ports,
//! by events full of personal data (emails, phone numbers, names, addresses
//! in Cognito attributes, IdP display names and metadata, token claims), and
//! their metrics are written as the Lambda entrypoints write them
//! (`chime_sync_runtime::metrics`). The compiled bootstraps are checked the
//! same way in tests/e2e/no_pii_in_logs.rs, tests/e2e/bootstrap.rs and
//! tests/e2e/credential_exchange/mod.rs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chime_sync_core::credentials::TrustedIssuers;
use chime_sync_core::credentials::memory::{InMemoryCredentialIssuer, StaticJwks};
use chime_sync_core::handlers::credential_exchange::{self, CredentialExchange};
use chime_sync_core::handlers::idp_sync::{self, IdpSync, SqsEvent};
use chime_sync_core::handlers::post_confirmation::{self, PostConfirmation};
use chime_sync_core::handlers::pre_signup::{self, SignUpPolicy};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::memory::{InMemoryDirectory, InMemoryQueue};
use chime_sync_core::metrics::{FUNCTION_DIMENSION, Invocation, Metric, NAMESPACE};
use chime_sync_core::{AppInstanceArn, DirectoryError, UserId};
use serde_json::{Value, json};
use testkit::PII;
use testkit::credentials::TestKey;
use testkit::credentials::keys::{jwks, now};
use testkit::emf::{self, Published, validate};

const ARN: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/demo";
const SUB: &str = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OTHER_SUB: &str = "6b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e";
const ISSUER: &str = "https://idp.example.com/tenant";

/// The lines the entrypoint would write for `invocation`, as `function_name`.
fn written(invocation: &Invocation, function_name: &str) -> Vec<String> {
    let mut out = Vec::new();
    chime_sync_runtime::metrics::write(&invocation.emf(function_name, SystemTime::now()), &mut out)
        .expect("write to memory");
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Each line: valid EMF, in our namespace, one dimension (the function's
/// name), no personal data and no sub anywhere in it; its metrics.
fn read(lines: &[String], function_name: &str) -> Vec<Vec<Published>> {
    assert!(!lines.is_empty(), "{function_name}: no metric line");
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let published = emf::function_metrics(&parsed, function_name);
    assert_eq!(published.len(), lines.len(), "every line is EMF");
    for (line, metrics) in lines.iter().zip(&published) {
        for item in PII.iter().chain(&[SUB, OTHER_SUB]) {
            assert!(!line.contains(item), "{function_name}: {item:?} in {line}");
        }
        for m in metrics {
            assert_eq!(m.namespace, NAMESPACE);
            assert!(
                Metric::ALL.iter().any(|known| known.name() == m.name),
                "{}",
                m.name
            );
        }
    }
    published
}

fn attributes(sub: Option<&str>) -> Value {
    let mut a = json!({"email": PII[0], "email_verified": "true", "phone_number": PII[2],
                       "name": PII[4], "family_name": PII[5], "preferred_username": PII[6],
                       "address": PII[7], "custom:ssn": PII[9]});
    if let Some(sub) = sub {
        a["sub"] = json!(sub);
    }
    a
}

fn cognito(trigger: &str, attributes: Value) -> Value {
    json!({"version": "1", "region": "us-east-1", "userPoolId": "us-east-1_aBcD3fGhI",
           "userName": PII[6], "triggerSource": trigger,
           "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
           "request": {"userAttributes": attributes, "clientMetadata": {"contact": PII[0]}},
           "response": {}})
}

#[test]
fn pre_signup_counts_decisions_and_nothing_personal() {
    let policy = SignUpPolicy {
        allowed_email_domains: vec!["example.com".into()],
        ..SignUpPolicy::default()
    };
    let mut other_domain = attributes(None);
    other_domain["email"] = json!(PII[11]);
    let events = [
        cognito("PreSignUp_SignUp", attributes(None)),
        cognito("PreSignUp_ExternalProvider", attributes(None)),
        cognito("PreSignUp_SignUp", other_domain),
        cognito("CustomMessage_SignUp", attributes(None)),
    ];
    let mut lines = Vec::new();
    for e in events {
        let result = pre_signup::handle(e, &policy);
        lines.extend(written(&pre_signup::metrics(&result), "stack-PreSignUp-A1"));
    }
    let m = read(&lines, "stack-PreSignUp-A1");
    assert_eq!(m.len(), 4, "one line per invocation");
    assert_eq!(emf::sum(&m, "Decisions"), 4.0);
    assert_eq!(emf::sum(&m, "Allowed"), 2.0);
    assert_eq!(emf::sum(&m, "Rejected"), 1.0);
    assert_eq!(emf::sum(&m, "PassedThrough"), 1.0);
    // pre-signup calls no AWS API: no Chime metric at all.
    assert!(emf::values(&m, "ChimeCallLatency").is_empty());
}

/// The test app instance's directory, a queue and a ledger, all in memory.
fn in_memory() -> (InMemoryDirectory, InMemoryQueue, InMemoryLedger) {
    let arn = AppInstanceArn::parse(ARN).unwrap();
    (
        InMemoryDirectory::new(arn),
        InMemoryQueue::new(),
        InMemoryLedger::new(),
    )
}

#[tokio::test(start_paused = true)]
async fn post_confirmation_counts_creations_hand_offs_and_denials() {
    let (directory, queue, ledger) = in_memory();
    let deps = PostConfirmation::new(directory, queue, ledger);
    deps.directory.set_latency(Duration::from_millis(25));
    let confirm = |sub| cognito("PostConfirmation_ConfirmSignUp", attributes(Some(sub)));
    let mut lines = Vec::new();
    let mut run = async |event: Value| {
        let result = post_confirmation::handle(event, &deps, None).await;
        lines.extend(written(
            &post_confirmation::metrics(&result, &deps.directory),
            "stack-PostConfirmation-B2",
        ));
    };
    run(confirm(SUB)).await;
    run(confirm(SUB)).await;
    deps.directory
        .fail_next([DirectoryError::Unavailable("503".into())]);
    run(confirm(OTHER_SUB)).await;
    deps.directory
        .fail_next([DirectoryError::AccessDenied(format!(
            "chime:DescribeAppInstanceUser on {ARN}/user/{OTHER_SUB}"
        ))]);
    run(confirm(OTHER_SUB)).await;
    let mut wrong = attributes(None);
    wrong["sub"] = json!({"email": PII[0]});
    run(cognito("PostConfirmation_ConfirmSignUp", wrong)).await;

    let m = read(&lines, "stack-PostConfirmation-B2");
    assert_eq!(m.len(), 5);
    for (name, want) in [
        ("Decisions", 5.0),
        ("Created", 1.0),
        ("AlreadyExists", 1.0),
        ("HandedOff", 2.0),
        ("Denied", 1.0),
        ("InvalidEvent", 1.0),
        ("HandOffFailed", 0.0),
        ("ThrottledRetries", 0.0),
    ] {
        assert_eq!(emf::sum(&m, name), want, "{name}");
    }
    // describe + create, describe, describe (503), describe (denied): 5 calls of 25 ms.
    assert_eq!(emf::values(&m, "ChimeCallLatency"), [25.0; 5]);
    let unit = |name: &str| {
        m.iter()
            .flatten()
            .find(|p| p.name == name)
            .map(|p| p.unit.clone())
    };
    assert_eq!(unit("ChimeCallLatency").as_deref(), Some("Milliseconds"));
    assert_eq!(unit("HandedOff").as_deref(), Some("Count"));
}

#[tokio::test]
async fn idp_sync_counts_one_decision_per_message() {
    let (directory, queue, ledger) = in_memory();
    let deps = IdpSync::new(directory, queue, ledger);
    let message = |kind: &str, sub: &str| {
        json!({"version": 1, "type": kind, "eventId": format!("e-{kind}"),
               "user": {"sub": sub, "displayName": PII[10],
                        "metadata": {"email": PII[11], "phone": PII[12], "address": PII[7]}}})
        .to_string()
    };
    let record = |id: &str, sub: &str, body: String| {
        json!({"messageId": id, "receiptHandle": "r", "body": body,
               "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1",
                              "SenderId": "x", "ApproximateFirstReceiveTimestamp": "1",
                              "MessageGroupId": sub, "MessageDeduplicationId": id},
               "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sync.fifo",
               "awsRegion": "us-east-1"})
    };
    deps.directory.fail_next_for(
        UserId::parse(OTHER_SUB).unwrap(),
        [DirectoryError::AccessDenied(
            "chime:CreateAppInstanceUser".into(),
        )],
    );
    let batch: SqsEvent = serde_json::from_value(json!({"Records": [
        record("m1", SUB, message("user.created", SUB)),
        record("m2", SUB, message("user.updated", SUB)),
        record("m3", OTHER_SUB, message("user.created", OTHER_SUB)),
        record("m4", OTHER_SUB, message("user.deleted", OTHER_SUB)),
        record("p5", SUB, format!("{{\"email\": \"{}\", ", PII[0])),
        record("p6", SUB, json!({"version": 1, "type": PII[0], "user": {"sub": SUB}}).to_string()),
    ]}))
    .unwrap();
    let report = idp_sync::handle(&batch, &deps, None).await;
    let lines = written(
        &idp_sync::metrics(&report, &deps.directory),
        "stack-IdpSync-C3",
    );
    let m = read(&lines, "stack-IdpSync-C3");
    assert_eq!(m.len(), 1, "one line per batch");
    for (name, want) in [
        ("Decisions", 6.0),
        ("Created", 1.0),
        ("AlreadyExists", 1.0),
        ("Failed", 1.0),
        ("Blocked", 1.0),
        ("DeadLettered", 2.0),
        ("Denied", 1.0),
        ("Deleted", 0.0),
    ] {
        assert_eq!(emf::sum(&m, name), want, "{name}");
    }
}

#[tokio::test]
async fn credential_exchange_counts_issued_refused_and_denied() {
    let rsa = TestKey::rsa("rsa-1");
    let keys = StaticJwks::new();
    keys.set(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/keys")}),
    );
    keys.set(&format!("{ISSUER}/keys"), jwks(&[&rsa]));
    let issuers =
        TrustedIssuers::parse(&json!({ISSUER: {"audiences": ["chat"]}}).to_string()).unwrap();
    let deps = CredentialExchange::new(
        InMemoryDirectory::new(AppInstanceArn::parse(ARN).unwrap()),
        InMemoryLedger::new(),
        keys,
        InMemoryCredentialIssuer::new(),
        issuers,
    );
    let token = |exp: u64| {
        rsa.sign(
            &json!({"iss": ISSUER, "aud": "chat", "sub": SUB, "iat": now(), "exp": exp,
                         "name": PII[4], "email": PII[0], "phone_number": PII[2]}),
        )
    };
    let post = |token: String| {
        crate::function_url::request(
            "POST",
            json!({"authorization": format!("Bearer {token}")}),
            None,
        )
    };
    let mut lines = Vec::new();
    let mut tokens = Vec::new();
    for (exp, denied) in [
        (now() + 3600, false),
        (now() - 3600, false),
        (now() + 3600, true),
    ] {
        if denied {
            // A new sandbox: no session kept from the first request.
            deps.sessions.clear();
            deps.sts
                .fail_next([chime_sync_core::credentials::IssueError::Denied(
                    "not authorized to perform: sts:TagSession".into(),
                )]);
        }
        let t = token(exp);
        tokens.push(t.clone());
        let (_, outcome) = credential_exchange::handle(post(t), &deps).await;
        lines.extend(written(
            &credential_exchange::metrics(&outcome, &deps.directory),
            "stack-CredentialExchange-D4",
        ));
    }
    let m = read(&lines, "stack-CredentialExchange-D4");
    for (name, want) in [
        ("Decisions", 3.0),
        ("CredentialsIssued", 1.0),
        ("Refused", 1.0),
        ("Failed", 1.0),
        ("Denied", 1.0),
        ("Created", 1.0),
        ("AlreadyExists", 1.0),
    ] {
        assert_eq!(emf::sum(&m, name), want, "{name}");
    }
    for line in &lines {
        for t in &tokens {
            for part in t.split('.').filter(|p| p.len() >= 16) {
                assert!(!line.contains(part), "a token part in {line}");
            }
        }
    }
}

#[test]
fn every_function_declares_what_it_publishes_and_alarms_can_rely_on() {
    let functions = [
        pre_signup::METRICS,
        post_confirmation::METRICS,
        idp_sync::METRICS,
        credential_exchange::METRICS,
    ];
    for f in functions {
        assert!(f.publishes(Metric::Decisions), "{}", f.source);
        assert!(
            f.publishes(Metric::InvalidEvent),
            "{}: unreadable events are counted",
            f.source
        );
        // An empty invocation still validates and publishes every declared count as 0.
        let lines = written(&Invocation::new(f), "fn");
        let m = read(&lines, "fn");
        for metric in f.metrics.iter().filter(|m| **m != Metric::ChimeCallLatency) {
            assert_eq!(
                emf::values(&m, metric.name()),
                [0.0],
                "{}: {}",
                f.source,
                metric.name()
            );
        }
    }
    for f in &functions[1..] {
        for metric in [
            Metric::Denied,
            Metric::ThrottledRetries,
            Metric::ChimeCallLatency,
        ] {
            assert!(
                f.publishes(metric),
                "{} calls Chime: {}",
                f.source,
                metric.name()
            );
        }
    }
    assert_eq!(FUNCTION_DIMENSION, "FunctionName");
}

/// A line of more than 100 latencies (a reconcile-sized invocation) is split
/// into documents the specification allows, and every value is kept once.
#[test]
fn an_invocation_with_many_calls_splits_into_valid_documents() {
    let mut inv = Invocation::new(idp_sync::METRICS);
    inv.decision(Metric::Created);
    inv.chime_calls(chime_sync_core::metrics::CallStats {
        throttled_retries: 1,
        latencies: (1..=250).map(Duration::from_millis).collect(),
    });
    let lines = written(&inv, "stack-IdpSync-C3");
    assert_eq!(lines.len(), 3);
    let m = read(&lines, "stack-IdpSync-C3");
    let latencies = emf::values(&m, "ChimeCallLatency");
    assert_eq!(latencies, (1..=250).map(f64::from).collect::<Vec<_>>());
    assert_eq!(
        emf::sum(&m, "Decisions"),
        1.0,
        "counts once, not per document"
    );
}

// ---------------------------------------------------------------------------
// The validator itself, against the specification
// ---------------------------------------------------------------------------

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn valid() -> Value {
    json!({"_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{
               "Namespace": "lambda-function-metrics", "Dimensions": [["functionVersion"]],
               "Metrics": [{"Name": "time", "Unit": "Milliseconds"}]}]},
           "functionVersion": "$LATEST", "time": 100,
           "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"})
}

fn broken(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut doc = valid();
    edit(&mut doc);
    validate(&doc.to_string()).expect_err("must be refused")
}

#[test]
fn the_specifications_example_is_valid() {
    let published = validate(&valid().to_string()).unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].name, "time");
    assert_eq!(
        published[0].dimension_sets,
        [vec![("functionVersion".to_owned(), "$LATEST".to_owned())]]
    );
    assert_eq!(published[0].values, [100.0]);
}

#[test]
fn each_rule_of_the_specification_is_checked() {
    fn d(v: &mut Value) -> &mut Value {
        &mut v["_aws"]["CloudWatchMetrics"][0]
    }
    type Edit = Box<dyn FnOnce(&mut Value)>;
    // Each edit breaks one rule; the error must name that rule.
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| v["time"] = json!("100")), "metric `time`"),
        (Box::new(|v| v["time"] = json!([])), "metric `time`"),
        (
            Box::new(|v| v["time"] = json!(vec![1; 101])),
            "metric `time`",
        ),
        (Box::new(|v| v["time"] = json!([1, "2"])), "metric `time`"),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("time");
            }),
            "metric `time`",
        ),
        (
            Box::new(|v| v["functionVersion"] = json!(7)),
            "dimension `functionVersion`",
        ),
        (
            Box::new(|v| v["functionVersion"] = json!("caf\u{e9}")),
            "dimension `functionVersion`",
        ),
        (
            Box::new(|v| v["functionVersion"] = json!(" ")),
            "dimension `functionVersion`",
        ),
        (
            Box::new(|v| v["_aws"]["Timestamp"] = json!("now")),
            "Timestamp` is not an integer",
        ),
        (
            Box::new(|v| v["_aws"]["Timestamp"] = json!(1)),
            "outside what CloudWatch accepts",
        ),
        (Box::new(|v| v["_aws"]["Extra"] = json!(1)), "`Extra`"),
        (Box::new(|v| d(v)["Namespace"] = json!("")), "Namespace"),
        (Box::new(|v| d(v)["Extra"] = json!(1)), "`Extra`"),
        (
            Box::new(|v| d(v)["Metrics"][0]["Unit"] = json!("Parsecs")),
            "not a CloudWatch unit",
        ),
        (
            Box::new(|v| d(v)["Metrics"][0]["StorageResolution"] = json!(5)),
            "not 1 or 60",
        ),
        (
            Box::new(|v| d(v)["Metrics"][0]["Extra"] = json!(1)),
            "`Extra`",
        ),
        (
            Box::new(|v| d(v)["Metrics"] = json!(vec![json!({"Name": "time"}); 101])),
            "more than 100",
        ),
        (
            Box::new(|v| {
                let keys: Vec<String> = (0..31).map(|n| format!("D{n}")).collect();
                for k in &keys {
                    v[k] = json!("x");
                }
                d(v)["Dimensions"] = json!([keys]);
            }),
            "more than 30",
        ),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("_aws");
            }),
            "no `_aws`",
        ),
    ];
    for (n, (edit, rule)) in cases.into_iter().enumerate() {
        let errors = broken(edit);
        assert!(
            errors.iter().any(|e| e.contains(rule)),
            "case {n}: expected an error about {rule:?}, got {errors:?}"
        );
    }
    // Nested targets do not count: "A.a" is a root member's name.
    let mut nested = valid();
    d(&mut nested)["Metrics"][0]["Name"] = json!("A.a");
    nested["A"] = json!({"a": 1});
    assert!(validate(&nested.to_string()).is_err());
    nested["A.a"] = json!(1);
    assert!(validate(&nested.to_string()).is_ok());
    // Trailing data after the object.
    assert!(validate(&format!("{} x", valid())).is_err());
    assert!(validate("[1]").is_err());
}
