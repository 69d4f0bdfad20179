//! End to end with the compiled functions (docs/TESTING.md, "The ladder", 5): each bootstrap
//! binary (`target/debug/{pre-signup,post-confirmation,idp-sync}`) runs as
//! Lambda runs it, behind a mock Runtime API (crates/testkit/src/runtime_api.rs)
//! with Lambda's environment and static credentials, its Chime endpoint
//! pointed at the Chime fake (`AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`) and its
//! SQS endpoint at moto (`AWS_ENDPOINT_URL_SQS`).
//!
//! Every sample in a function's `events/` folder is served, in sorted order;
//! a sample with no expectation here fails the test, so new samples get
//! asserted end to end too. Asserted: each response body or error report
//! (exact), the final users on the fake, the queue messages in moto,
//! `/init/error` for bad configuration, and the logs (JSON lines, with sub
//! and outcome, without an email address or phone number from the samples).
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use chime_identity_fake::{
    FakeChime, FakeChimeHandle, FakeConfig, FaultConfig, MissingAnswer, Operation, ScriptedFault,
};
use chime_sync_core::handlers::idp_sync::dead_letter_deduplication_id;
use chime_sync_core::replay::{
    DEMO_ALLOWED_DOMAINS, DEMO_APP_INSTANCE_ARN, DEMO_DISPLAY_NAME_ATTRIBUTES,
};
use serde_json::{Value, json};
use testkit::bins::bootstrap;
use testkit::emf;
use testkit::in_both_missing_user_modes;
use testkit::lambda::{Function, IDP_SYNC, Lambda, POST_CONFIRMATION, PRE_SIGNUP, RECONCILE};
use testkit::moto::{
    FifoQueues, Moto, create_fifo_with_dlq, depth, hand_off_body, receive_n, string_attribute,
    system_attribute,
};
use testkit::process::ChildGuard;
use testkit::runtime_api::Outcome;
use testkit::samples::{ADA, ALAN, BARBARA, DONALD, GRACE, HEDY, KATHERINE, MARGARET, RADIA};
use testkit::{personal_data_in_samples, read_event, samples};

/// How long a process may take to report an init error and exit.
const INIT_WITHIN: Duration = Duration::from_secs(10);

async fn fake(mode: MissingAnswer) -> FakeChimeHandle {
    fake_with(mode, FaultConfig::none()).await
}

async fn fake_with(mode: MissingAnswer, faults: FaultConfig) -> FakeChimeHandle {
    FakeChime::start(
        FakeConfig::new()
            .with_missing_user(mode)
            .with_faults(faults),
    )
    .await
    .expect("start the Chime fake")
}

/// The fake's users as (id, name, metadata), ordered by id.
fn users(fake: &FakeChimeHandle) -> Vec<(String, String, Option<String>)> {
    fake.users()
        .into_iter()
        .map(|u| {
            assert_eq!(u.app_instance_arn, DEMO_APP_INSTANCE_ARN);
            assert_eq!(
                u.app_instance_user_arn,
                format!("{DEMO_APP_INSTANCE_ARN}/user/{}", u.app_instance_user_id)
            );
            (u.app_instance_user_id, u.name, u.metadata)
        })
        .collect()
}

fn user(id: &str, name: &str, metadata: Option<&str>) -> (String, String, Option<String>) {
    (id.to_owned(), name.to_owned(), metadata.map(str::to_owned))
}

/// A user whose metadata names their department, as the samples give it.
fn user_in(id: &str, name: &str, department: &str) -> (String, String, Option<String>) {
    let metadata = json!({ "department": department }).to_string();
    user(id, name, Some(&metadata))
}

/// A sync queue where nothing listens, for a test that never expects a hand-off.
const UNREACHABLE_QUEUE: &str = "http://127.0.0.1:9/123456789012/identity-sync.fifo";
/// A dead-letter queue where nothing listens, for a test that never expects a dead letter.
const UNREACHABLE_DLQ: &str = "http://127.0.0.1:9/123456789012/identity-sync-dlq.fifo";

/// The demo app instance and Chime at `chime_url`, then `own` and `extra`: a Chime-calling
/// function's environment.
fn with_chime<'a>(
    chime_url: &'a str,
    own: &[(&'a str, &'a str)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
        ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", chime_url),
    ];
    env.extend_from_slice(own);
    env.extend_from_slice(extra);
    env
}

/// post-confirmation's environment: [`with_chime`], hand-offs to `queue_url`.
fn post_confirmation_env<'a>(
    chime_url: &'a str,
    queue_url: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let own = [
        ("SYNC_QUEUE_URL", queue_url),
        ("DISPLAY_NAME_ATTRIBUTES", DEMO_DISPLAY_NAME_ATTRIBUTES),
    ];
    with_chime(chime_url, &own, extra)
}

/// idp-sync's environment: [`with_chime`], deletions at once (grace deletions are tested in
/// tests/e2e/reconcile.rs), dead letters to `dlq_url`.
fn idp_sync_env<'a>(
    chime_url: &'a str,
    dlq_url: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let own = [("DELETE_MODE", "immediate"), ("DLQ_URL", dlq_url)];
    with_chime(chime_url, &own, extra)
}

/// moto with the sync queue and its DLQ (this visibility timeout), and the fake as Chime.
async fn moto_queues_and_fake(
    mode: MissingAnswer,
    visibility_secs: u32,
) -> (Moto, aws_sdk_sqs::Client, FifoQueues, FakeChimeHandle) {
    let (moto, fake) = (Moto::start().await, fake(mode).await);
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "identity-sync", visibility_secs, 5).await;
    (moto, sqs, queues, fake)
}

/// Stop the function, then check its log: JSON lines, a decision line for
/// each `(sub, outcome)` in `decisions` (sub `None`: any line with that
/// outcome), one valid EMF metrics line per invocation answered (its only
/// dimension the function's name), and no email address or phone number from
/// the samples. The metric lines, for the caller to sum.
fn check_log(lambda: &Lambda, decisions: &[(Option<&str>, &str)]) -> Vec<Vec<emf::Published>> {
    lambda.stop();
    let lines = lambda.log_lines();
    let metrics = emf::function_metrics(&lines, lambda.function.binary);
    let answered = lambda.api.seen().outcomes.len();
    assert_eq!(
        metrics.len(),
        answered,
        "{}: one metrics line per invocation:\n{}",
        lambda.function.binary,
        lambda.log()
    );
    assert_eq!(emf::values(&metrics, "Decisions").len(), answered);
    let field = |line: &Value, name: &str| -> Option<String> {
        line.get("fields")
            .and_then(|f| f.get(name))
            .or_else(|| line.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    for (sub, outcome) in decisions {
        let found = lines.iter().any(|line| {
            field(line, "outcome").as_deref() == Some(outcome)
                && sub.is_none_or(|s| field(line, "sub").as_deref() == Some(s))
        });
        assert!(
            found,
            "{}: no log line with sub {sub:?} and outcome {outcome:?} in:\n{}",
            lambda.function.binary,
            lambda.log()
        );
    }
    let everything = format!("{}\n{}", lambda.process.stdout(), lambda.process.stderr());
    let pii = personal_data_in_samples();
    assert!(
        pii.len() >= 10,
        "the samples hold personal data to look for: {pii:?}"
    );
    for item in pii {
        assert!(
            !everything.contains(&item),
            "{} logged personal data ({item}):\n{everything}",
            lambda.function.binary
        );
    }
    metrics
}

/// The part of a file name after `events/{folder}/`.
fn file_name(relative: &str) -> &str {
    relative.rsplit('/').next().unwrap_or(relative)
}

// ---------------------------------------------------------------------------
// pre-signup
// ---------------------------------------------------------------------------

enum SignUp {
    /// The event comes back with `response` set to these three flags.
    Allowed { verify_email: bool },
    /// `/invocation/{id}/error` with `SignUpRejected.{code}` and this message.
    Rejected {
        code: &'static str,
        message: &'static str,
    },
}

/// With `DISPLAY_NAME_ATTRIBUTES` = the replay's policy (a real name, no
/// email local part).
const NO_NAME: &str = "We need a name to show in chat. Please provide preferred_username, name or given_name + family_name.";
const DOMAIN: &str = "Sign-ups with this email domain are not allowed.";

fn sign_up_expectation(file: &str) -> SignUp {
    let domain = SignUp::Rejected {
        code: "EmailDomainNotAllowed",
        message: DOMAIN,
    };
    let no_name = SignUp::Rejected {
        code: "NoDisplayName",
        message: NO_NAME,
    };
    match file {
        // Cognito ignores the flags for AdminCreateUser, so they stay false.
        "admin-create-user-allowed.json" => SignUp::Allowed {
            verify_email: false,
        },
        "admin-create-user-rejected-email-domain.json" => domain,
        "admin-create-user-rejected-no-display-name.json" => no_name,
        // `"response": {}` reads as all false, then the policy applies.
        "empty-response.json" => SignUp::Allowed { verify_email: true },
        "external-provider-allowed.json" => SignUp::Allowed { verify_email: true },
        "external-provider-rejected-email-domain.json" => domain,
        "external-provider-rejected-no-display-name.json" => no_name,
        "sign-up-allowed.json" => SignUp::Allowed { verify_email: true },
        "sign-up-rejected-email-domain.json" => domain,
        "sign-up-rejected-no-display-name.json" => no_name,
        // A PreSignUp source we do not know: the same checks (fail closed).
        "unknown-trigger-source.json" => SignUp::Allowed { verify_email: true },
        "unknown-trigger-source-rejected-email-domain.json" => domain,
        other => panic!("events/pre-signup/{other} has no expectation in tests/e2e/bootstrap.rs"),
    }
}

/// Every pre-signup sample through the real binary, with the replay's policy
/// (`ALLOWED_EMAIL_DOMAINS=example.com,example.org`, `AUTO_VERIFY_EMAIL=true`,
/// `DISPLAY_NAME_ATTRIBUTES=preferred_username,name,given_name family_name`).
/// pre-signup calls no AWS API, so it gets no endpoints at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_signup_answers_every_sample() {
    let lambda = Lambda::start(
        PRE_SIGNUP,
        &[
            ("ALLOWED_EMAIL_DOMAINS", DEMO_ALLOWED_DOMAINS),
            ("AUTO_VERIFY_EMAIL", "true"),
            ("DISPLAY_NAME_ATTRIBUTES", DEMO_DISPLAY_NAME_ATTRIBUTES),
        ],
    )
    .await;
    let files = samples("pre-signup");
    assert!(files.len() >= 10, "{files:?}");
    for relative in &files {
        let event = read_event(relative);
        let outcome = lambda.invoke(&event).await;
        match sign_up_expectation(file_name(relative)) {
            SignUp::Allowed { verify_email } => {
                let mut expected = event.clone();
                expected["response"] = json!({
                    "autoConfirmUser": false,
                    "autoVerifyEmail": verify_email,
                    "autoVerifyPhone": false,
                });
                assert_eq!(outcome, Outcome::Response(expected), "{relative}");
            }
            SignUp::Rejected { code, message } => {
                let report = outcome.error();
                assert_eq!(
                    report.error_type,
                    format!("SignUpRejected.{code}"),
                    "{relative}"
                );
                assert_eq!(report.error_message, message, "{relative}");
            }
        }
    }
    assert!(
        lambda.api.violations().is_empty(),
        "{:?}",
        lambda.api.violations()
    );
    check_log(&lambda, &[(None, "allowed"), (None, "rejected")]);
}

// ---------------------------------------------------------------------------
// post-confirmation
// ---------------------------------------------------------------------------

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// post-confirmation with the fake as Chime and moto as the sync queue:
/// users are created (or healed), a confirmation without sub is an error
/// report, and when Chime fails (503s) or hangs the user is handed to the
/// sync queue, grouped and deduplicated by sub, well inside Cognito's 5 s.
async fn post_confirmation_provisions_hands_off_and_reports_bad_events(mode) {
    let (moto, sqs, queues, fake) = moto_queues_and_fake(mode, 30).await;
    let chime_url = fake.endpoint_url();
    let env = post_confirmation_env(
        &chime_url,
        &queues.queue_url,
        &[("AWS_ENDPOINT_URL_SQS", moto.endpoint_url())],
    );
    let lambda = Lambda::start(POST_CONFIRMATION, &env).await;

    let files = samples("post-confirmation");
    let mut decisions: Vec<(Option<String>, &str)> = Vec::new();
    for relative in &files {
        let event = read_event(relative);
        match file_name(relative) {
            "confirm-sign-up-missing-sub.json" => {
                let report = lambda.invoke(&event).await.error().clone();
                assert_eq!(report.error_type, "ConfirmationFailed.MissingField");
                assert_eq!(
                    report.error_message,
                    "the confirmation event could not be read: missing field `request.userAttributes.sub`"
                );
                decisions.push((None, "invalid-event"));
            }
            "confirm-sign-up-chime-outage-hands-off.json" => {
                // Every Chime request answers 503: the SDK tries the describe
                // (the trigger reads first) 4 times, then hands off.
                fake.set_faults(FaultConfig::none().with_service_unavailable_rate(1.0))
                    .unwrap();
                let before = fake.counters().get(Operation::DescribeAppInstanceUser);
                let started = Instant::now();
                let outcome = lambda.invoke(&event).await;
                let took = started.elapsed();
                fake.set_faults(FaultConfig::none()).unwrap();
                assert_eq!(outcome, Outcome::Response(event.clone()), "{relative}");
                assert!(
                    took < Duration::from_secs(3),
                    "{relative}: answered after {took:?}"
                );
                let after = fake.counters().get(Operation::DescribeAppInstanceUser);
                assert_eq!(
                    after.attempts - before.attempts,
                    4,
                    "CHIME_MAX_ATTEMPTS defaults to 4"
                );
                assert_eq!(
                    after.injected.service_unavailable - before.injected.service_unavailable,
                    4
                );
                decisions.push((Some(HEDY.to_owned()), "handed-off"));
            }
            file @ ("confirm-sign-up-new-user.json"
            | "confirm-sign-up-user-from-idp.json"
            | "confirm-forgot-password-heals-missing-user.json") => {
                let outcome = lambda.invoke(&event).await;
                assert_eq!(
                    outcome,
                    Outcome::Response(event.clone()),
                    "{relative}: unchanged"
                );
                let sub = event["request"]["userAttributes"]["sub"].as_str().unwrap();
                assert!(
                    fake.users().iter().any(|u| u.app_instance_user_id == sub),
                    "{file}: {sub} is on the fake"
                );
                decisions.push((Some(sub.to_owned()), "created"));
            }
            other => panic!(
                "events/post-confirmation/{other} has no expectation in tests/e2e/bootstrap.rs"
            ),
        }
    }

    // Chime hangs: the binary gives Chime what the deadline leaves after the
    // hand-off reserve, hands off, and still answers inside the 4 s timeout.
    // Cognito's retry of Hedy's confirmation: SQS drops it as a duplicate.
    fake.set_faults(FaultConfig::none().with_latency(10_000, 10_000))
        .unwrap();
    let hedy = read_event("post-confirmation/confirm-sign-up-chime-outage-hands-off.json");
    let started = Instant::now();
    let outcome = lambda.invoke(&hedy).await;
    let took = started.elapsed();
    fake.set_faults(FaultConfig::none()).unwrap();
    assert_eq!(outcome, Outcome::Response(hedy.clone()));
    assert!(
        took >= Duration::from_secs(2) && took < POST_CONFIRMATION.timeout,
        "with a hanging Chime the answer came after {took:?}"
    );

    assert_eq!(
        users(&fake),
        vec![
            user(ADA, "Ada Lovelace", None),
            user(GRACE, "Grace Hopper", None),
            user(RADIA, "Radia Perlman", None),
        ]
    );

    // One hand-off message for Hedy, although two invocations handed off.
    assert_eq!(depth(&sqs, &queues.queue_url).await, 1, "{}", moto.output());
    let handed = receive_n(&sqs, &queues.queue_url, 1, Duration::from_secs(5)).await;
    let body = hand_off_body(&handed[0], HEDY);
    let dedup = format!("cognito-confirm-{HEDY}");
    assert_eq!(
        (
            &body["type"],
            &body["eventId"],
            &body["user"]["sub"],
            &body["user"]["displayName"]
        ),
        (
            &json!("user.created"),
            &json!(dedup),
            &json!(HEDY),
            &json!("Hedy Lamarr")
        )
    );

    assert!(
        lambda.api.violations().is_empty(),
        "{:?}",
        lambda.api.violations()
    );
    let decisions: Vec<(Option<&str>, &str)> =
        decisions.iter().map(|(s, o)| (s.as_deref(), *o)).collect();
    let metrics = check_log(&lambda, &decisions);
    // The 503 outage and the hang each handed one confirmation off.
    assert_eq!(emf::sum(&metrics, "HandedOff"), 2.0);
    assert_eq!(emf::sum(&metrics, "Created"), 3.0);
    assert_eq!(emf::sum(&metrics, "InvalidEvent"), 1.0);
    assert_eq!(emf::sum(&metrics, "Denied"), 0.0);
}
}

// ---------------------------------------------------------------------------
// idp-sync
// ---------------------------------------------------------------------------

/// The sample's SQS record ids, for expected failures.
const HEDY_CREATED: &str = "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a71";
const HEDY_UPDATED: &str = "c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a73";
const SOURCE_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:identity-sync.fifo";

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// idp-sync with the fake as Chime and moto's DLQ: the exact partial batch
/// responses, poison messages in the DLQ with their reasons, the final users.
///
/// `MAX_CONCURRENT_GROUPS=1` makes the groups of a batch run one after the
/// other, in order of first appearance, so a scripted burst of 503s lands on
/// Hedy's group (the fake has no per-user faults) and nowhere else.
async fn idp_sync_answers_partial_batch_responses_and_dead_letters_poison(mode) {
    let (moto, sqs, queues, fake) = moto_queues_and_fake(mode, 180).await;
    let chime_url = fake.endpoint_url();
    let env = idp_sync_env(
        &chime_url,
        &queues.dlq_url,
        &[
            ("MAX_CONCURRENT_GROUPS", "1"),
            ("CHIME_MAX_ATTEMPTS", "4"),
            ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url()),
        ],
    );
    let lambda = Lambda::start(IDP_SYNC, &env).await;

    // Not an SQS event: an error report, and the function keeps serving.
    let report = lambda
        .invoke(&json!({"Records": "not a list"}))
        .await
        .error()
        .clone();
    // In our own format, by path, never lambda_runtime's `DeserializeError`.
    assert_eq!(report.error_type, "IdpSyncFailed.InvalidEvent");
    assert_eq!(
        report.error_message,
        "the event could not be read: at `Records`: expected a sequence, found a string"
    );

    let files = samples("idp-sync");
    for relative in &files {
        let event = read_event(relative);
        let failures: &[&str] = match file_name(relative) {
            "empty-batch.json"
            | "eventbridge-wrapped-user-updated.json"
            | "poison-messages-dead-lettered.json"
            | "sns-wrapped-user-created.json"
            | "standard-batch-created-updated-deleted.json" => &[],
            "fifo-two-groups-one-failing.json" => {
                // Hedy's create (its describe: idp-sync reads first) gets 503 on
                // all 4 attempts; her update is blocked behind it.
                fake.set_faults(
                    FaultConfig::none().with_script([ScriptedFault::ServiceUnavailable; 4]),
                )
                .unwrap();
                &[HEDY_CREATED, HEDY_UPDATED]
            }
            other => panic!("events/idp-sync/{other} has no expectation in tests/e2e/bootstrap.rs"),
        };
        let outcome = lambda.invoke(&event).await;
        let expected = json!({
            "batchItemFailures": failures.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()
        });
        assert_eq!(outcome, Outcome::Response(expected), "{relative}");
        assert!(
            fake.faults().script.is_empty(),
            "{relative}: the scripted faults were used up"
        );
    }
    let describes = fake.counters().get(Operation::DescribeAppInstanceUser);
    assert_eq!(describes.injected.service_unavailable, 4);

    assert_eq!(
        users(&fake),
        vec![
            user(DONALD, "Donald Knuth", Some(r#"{"team":"TAOCP"}"#)),
            user_in(ALAN, "Alan Turing", "Cryptanalysis"),
            user_in(MARGARET, "Margaret Hamilton", "Apollo Guidance"),
            user_in(GRACE, "Grace Hopper", "Engineering"),
            user_in(BARBARA, "Barbara Liskov", "Programming Methodology"),
            user(KATHERINE, "Katherine Johnson", None),
        ]
    );

    // The DLQ: the five poison messages, each with its reason.
    let expected: BTreeMap<&str, (&str, &str, &str)> = BTreeMap::from([
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b81",
            (
                KATHERINE,
                "InvalidJson",
                "invalid JSON: EOF while parsing a string at line 1 column 115",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b82",
            (
                KATHERINE,
                "UnsupportedVersion",
                "unsupported schema version 2: this consumer reads version 1",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b84",
            (
                GRACE,
                "UnknownType",
                "unknown event type `user.suspended`: expected user.created, user.updated or user.deleted",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b85",
            (
                "EMP-004711",
                "InvalidUserId",
                "invalid user id (sub): it is not a Cognito sub (a UUID like 6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5)",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b86",
            ("hr-batch-20261120", "MissingField", "missing field `user`"),
        ),
    ]);
    let poison = read_event("idp-sync/poison-messages-dead-lettered.json");
    let bodies: BTreeMap<&str, &str> = poison["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["messageId"].as_str().unwrap(),
                r["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(depth(&sqs, &queues.dlq_url).await, 5, "{}", moto.output());
    let dead = receive_n(&sqs, &queues.dlq_url, 5, Duration::from_secs(10)).await;
    let mut seen = BTreeSet::new();
    for m in &dead {
        let id = string_attribute(m, "SourceMessageId").expect("SourceMessageId");
        let (group, code, reason) = expected
            .get(id)
            .unwrap_or_else(|| panic!("{id} should not be in the DLQ"));
        assert_eq!(string_attribute(m, "ErrorCode"), Some(*code), "{id}");
        assert_eq!(string_attribute(m, "FailureReason"), Some(*reason), "{id}");
        assert_eq!(
            string_attribute(m, "SourceQueueArn"),
            Some(SOURCE_QUEUE_ARN),
            "{id}"
        );
        assert_eq!(m.body(), Some(bodies[id]), "{id}");
        assert_eq!(
            system_attribute(m, MessageSystemAttributeName::MessageGroupId),
            Some(*group)
        );
        assert_eq!(
            system_attribute(m, MessageSystemAttributeName::MessageDeduplicationId),
            Some(dead_letter_deduplication_id(id, bodies[id]).as_str())
        );
        seen.insert(id.to_owned());
    }
    assert_eq!(seen.len(), 5, "{seen:?}");

    assert!(
        lambda.api.violations().is_empty(),
        "{:?}",
        lambda.api.violations()
    );
    check_log(
        &lambda,
        &[
            (Some(DONALD), "created"),
            (Some(DONALD), "updated"),
            (Some(HEDY), "failed, will retry (Unavailable)"),
            (Some(HEDY), "blocked behind its group"),
            (Some(KATHERINE), "created"),
            (None, "dead-lettered (InvalidJson)"),
            // Invalid, but its body names whose it was.
            (Some(GRACE), "dead-lettered (UnknownType)"),
            // A delete of a user who never existed, and an update of one who
            // did not exist yet, whatever Chime answers for a missing user.
            (Some("8e5a1c7d-3f9b-4d2e-a6c8-0b4f2d6e8a17"), "already-gone"),
            (Some(BARBARA), "created"),
        ],
    );
}
}

/// One SQS record as the event source mapping delivers it from the sync queue.
fn sqs_record(message_id: &str, sub: &str, body: &Value) -> Value {
    json!({
        "messageId": message_id, "receiptHandle": format!("rh-{message_id}"),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763632800000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1763632800001",
                       "MessageGroupId": sub, "MessageDeduplicationId": message_id},
        "messageAttributes": {}, "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs", "eventSourceARN": SOURCE_QUEUE_ARN, "awsRegion": "us-east-1"
    })
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// IAM denies DeleteAppInstanceUser (403 with IAM's message): the delete is
/// reported in `batchItemFailures` (SQS keeps it), the user stays, and the
/// log names the action as a deployment fault. Once the policy is fixed,
/// the redelivered message deletes the user.
async fn a_denied_delete_is_reported_failed_and_the_user_stays(mode) {
    let fake = fake_with(
        mode,
        FaultConfig::none().deny([Operation::DeleteAppInstanceUser]),
    )
    .await;
    // Never used: nothing here is dead-lettered.
    let chime_url = fake.endpoint_url();
    let lambda = Lambda::start(IDP_SYNC, &idp_sync_env(&chime_url, UNREACHABLE_DLQ, &[])).await;
    let created = json!({"version": 1, "type": "user.created", "eventId": "e-1",
                         "user": {"sub": ADA, "displayName": "Ada Lovelace"}});
    let deleted = json!({"version": 1, "type": "user.deleted", "eventId": "e-2", "user": {"sub": ADA}});
    let batch = |records: Vec<Value>| json!({ "Records": records });
    let outcome = lambda
        .invoke(&batch(vec![sqs_record("m-create", ADA, &created)]))
        .await;
    assert_eq!(outcome, Outcome::Response(json!({"batchItemFailures": []})));

    let delete = batch(vec![sqs_record("m-delete", ADA, &deleted)]);
    let outcome = lambda.invoke(&delete).await;
    assert_eq!(
        outcome,
        Outcome::Response(json!({"batchItemFailures": [{"itemIdentifier": "m-delete"}]}))
    );
    assert_eq!(users(&fake), vec![user(ADA, "Ada Lovelace", None)], "the user stays");
    let deletes = fake.counters().get(Operation::DeleteAppInstanceUser);
    assert_eq!((deletes.attempts, deletes.injected.denied), (1, 1), "a denial is not retried in the call");

    // The policy is fixed; SQS delivers the message again.
    fake.set_faults(FaultConfig::none()).unwrap();
    let outcome = lambda.invoke(&delete).await;
    assert_eq!(outcome, Outcome::Response(json!({"batchItemFailures": []})));
    assert!(fake.users().is_empty());

    let metrics = check_log(
        &lambda,
        &[
            (Some(ADA), "created"),
            (Some(ADA), "denied"),
            (Some(ADA), "failed, will retry (AccessDenied)"),
            (Some(ADA), "deleted"),
        ],
    );
    // What the Denied alarm watches: one denial, in the second invocation.
    assert_eq!(emf::values(&metrics, "Denied"), [0.0, 1.0, 0.0]);
    assert_eq!(emf::sum(&metrics, "Failed"), 1.0);
    assert_eq!(emf::sum(&metrics, "Deleted"), 1.0);
    let denial = lambda
        .log_lines()
        .into_iter()
        .find(|line| line.to_string().contains("\"denied\""))
        .expect("a denial line");
    let text = denial.to_string();
    for part in ["chime:DeleteAppInstanceUser", "deployment", "ERROR"] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The invocation deadline (`Lambda-Runtime-Deadline-Ms`) reaches the
/// handler: with a 2 s timeout and a Chime that takes 5 s per call, idp-sync
/// stops before the deadline and reports every message failed (each group's
/// first timed out, the rest blocked behind it) instead of being killed with
/// the whole batch unanswered.
async fn idp_sync_reports_unfinished_work_failed_before_the_deadline(mode) {
    let fake = fake_with(mode, FaultConfig::none().with_latency(5_000, 5_000)).await;
    let short = Function {
        timeout: Duration::from_secs(2),
        ..IDP_SYNC
    };
    // Never used: nothing here is dead-lettered.
    let chime_url = fake.endpoint_url();
    let lambda = Lambda::start(short, &idp_sync_env(&chime_url, UNREACHABLE_DLQ, &[])).await;
    let event = read_event("idp-sync/standard-batch-created-updated-deleted.json");
    let ids: Vec<&str> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6);
    // Wait until the function is ready, so the clock below measures the invocation.
    lambda.api.wait_for_polls(1, Duration::from_secs(10)).await;
    let started = Instant::now();
    let outcome = lambda.invoke_within(&event, short.timeout).await;
    let took = started.elapsed();
    let expected = json!({
        "batchItemFailures": ids.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()
    });
    assert_eq!(outcome, Outcome::Response(expected));
    assert!(took < short.timeout, "answered after {took:?}");
    assert!(fake.users().is_empty());
    check_log(&lambda, &[(Some(GRACE), "failed, will retry (Timeout)")]);
}
}

// ---------------------------------------------------------------------------
// start-up configuration
// ---------------------------------------------------------------------------

/// A missing or malformed variable, or a pair that is unsafe together, stops each function at init: it reports
/// `Runtime.ConfigError` to `/init/error` with a message naming the variable,
/// never asks for an event, and exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_reported_to_init_error() {
    let queue = UNREACHABLE_QUEUE;
    let cases = [
        (
            POST_CONFIRMATION,
            vec![("SYNC_QUEUE_URL", queue)],
            "APP_INSTANCE_ARN is required but not set",
        ),
        (
            IDP_SYNC,
            vec![("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN)],
            "DLQ_URL is required but not set",
        ),
        (
            PRE_SIGNUP,
            vec![("AUTO_CONFIRM", "yes")],
            "AUTO_CONFIRM must be true, false, 1 or 0, not `yes`",
        ),
        // Each value is valid, the pair is not: nothing would prove the allowed domain.
        (
            PRE_SIGNUP,
            vec![
                ("ALLOWED_EMAIL_DOMAINS", "corp.com"),
                ("AUTO_CONFIRM", "true"),
            ],
            "AUTO_CONFIRM=true cannot be combined with ALLOWED_EMAIL_DOMAINS: an auto-confirmed user",
        ),
    ];
    for (function, env, message) in cases {
        let lambda = Lambda::start(function, &env).await;
        let report = lambda.api.init_error(INIT_WITHIN).await;
        assert_eq!(
            report.error_type, "Runtime.ConfigError",
            "{}",
            function.binary
        );
        assert_eq!(
            report.header_error_type.as_deref(),
            Some("Runtime.ConfigError")
        );
        assert!(
            report.error_message.starts_with(message),
            "{}: {:?} should start with {message:?}",
            function.binary,
            report.error_message
        );
        let status = lambda
            .process
            .wait_exit(INIT_WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", lambda.process.output()));
        assert!(
            !status.success(),
            "{}: exit status {status}",
            function.binary
        );
        let seen = lambda.api.seen();
        assert_eq!(
            seen.next_polls, 0,
            "{}: asked for an event",
            function.binary
        );
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        check_log(&lambda, &[(None, "init-failed")]);
        // Printed once: the JSON log line, not again as `Error: …` on stderr.
        let everything = format!("{}\n{}", lambda.process.stdout(), lambda.process.stderr());
        assert_eq!(
            everything.matches(message).count(),
            1,
            "{}: the configuration error is printed once:\n{everything}",
            function.binary
        );
        assert!(
            !lambda.process.stderr().contains("Error:"),
            "{}",
            lambda.process.output()
        );
    }
}

/// Started by hand, outside Lambda, with a valid configuration: each binary
/// exits 2 with one line on stderr that says it is a Lambda bootstrap and
/// how to run it locally, instead of lambda_runtime's panic (exit 101,
/// `Missing AWS_LAMBDA_FUNCTION_NAME env var: NotPresent`). Nothing else is
/// printed: no log line, no IMDS warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_lambda_each_binary_exits_2_with_one_line_saying_how_to_run_it() {
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/identity-sync.fifo";
    let cases = [
        (PRE_SIGNUP, vec![]),
        (
            POST_CONFIRMATION,
            vec![
                ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
                ("SYNC_QUEUE_URL", queue),
            ],
        ),
        (
            IDP_SYNC,
            vec![
                ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
                ("DLQ_URL", queue),
            ],
        ),
        (
            RECONCILE,
            vec![
                ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN),
                ("SYNC_QUEUE_URL", queue),
                ("USER_POOL_ID", "us-east-1_AbCdEf123"),
            ],
        ),
    ];
    for (function, env) in cases {
        let mut command = std::process::Command::new(bootstrap(function.binary));
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env);
        let process = ChildGuard::spawn(format!("{} by hand", function.binary), command)
            .expect("spawn the bootstrap");
        let status = process
            .wait_exit(INIT_WITHIN)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
        assert_eq!(status.code(), Some(2), "{}", process.output());
        assert_eq!(process.stdout(), "", "{}", process.output());
        let stderr = process.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line:\n{stderr}");
        let bin = function.binary;
        assert!(
            lines[0].starts_with(&format!("{bin}: this is an AWS Lambda bootstrap")),
            "{stderr}"
        );
        assert!(lines[0].contains("AWS_LAMBDA_RUNTIME_API"), "{stderr}");
        assert!(
            lines[0].contains(&format!(
                "cargo lambda invoke {bin} --data-file events/{bin}/"
            )),
            "{stderr}"
        );
    }
}

/// A Runtime API that accepts the start-up error report and never answers
/// (a stuck emulator): the bootstrap still ends, within the report's own
/// timeout, with its error logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_up_error_report_that_is_never_answered_ends_within_its_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    // Accept and hold every connection; answer nothing.
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let mut command = std::process::Command::new(bootstrap(IDP_SYNC.binary));
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "idp-sync")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON");
    let started = Instant::now();
    let process = ChildGuard::spawn("idp-sync, init error unanswered".to_owned(), command)
        .expect("spawn the bootstrap");
    let limit = chime_sync_runtime::INIT_ERROR_TIMEOUT + Duration::from_secs(5);
    let status = process
        .wait_exit(limit)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    assert_ne!(status.code(), Some(0), "{}", process.output());
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
    let output = process.output();
    assert!(output.contains("APP_INSTANCE_ARN is required"), "{output}");
    assert!(
        output.contains("could not report the start-up error"),
        "{output}"
    );
    held.abort();
}

// ---------------------------------------------------------------------------
// a local emulator's deadline
// ---------------------------------------------------------------------------

/// What cargo-lambda's emulator sends as `Lambda-Runtime-Deadline-Ms`: a
/// duration (ten minutes), not an epoch time.
const EMULATOR_DEADLINE_MS: u64 = 600_000;

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Behind a Runtime API that sends `Lambda-Runtime-Deadline-Ms: 600000`,
/// as `cargo lambda watch` does, the functions ignore that deadline (it is
/// long past when read as an epoch time) and work within their configured
/// budgets: post-confirmation creates the user instead of handing it off
/// (or failing, with no queue to hand off to), idp-sync applies the batch
/// instead of failing every message with `Timeout`. Each logs one warning
/// per process, however many invocations follow.
async fn an_emulators_duration_deadline_is_ignored_with_one_warning(mode) {
    let fake = fake(mode).await;
    // Nothing listens at the queue: a hand-off would fail the invocation.
    let chime_url = fake.endpoint_url();
    let env = post_confirmation_env(&chime_url, UNREACHABLE_QUEUE, &[]);
    let confirm = Lambda::start(POST_CONFIRMATION, &env).await;
    confirm.api.send_deadline_header(EMULATOR_DEADLINE_MS);
    for relative in [
        "post-confirmation/confirm-sign-up-new-user.json",
        "post-confirmation/confirm-forgot-password-heals-missing-user.json",
    ] {
        let event = read_event(relative);
        assert_eq!(
            confirm.invoke(&event).await,
            Outcome::Response(event.clone()),
            "{relative}"
        );
    }
    assert_eq!(
        users(&fake),
        vec![
            user(ADA, "Ada Lovelace", None),
            user(RADIA, "Radia Perlman", None)
        ]
    );
    assert_one_deadline_warning(&confirm);
    check_log(
        &confirm,
        &[(Some(ADA), "created"), (Some(RADIA), "created")],
    );

    let sync = Lambda::start(IDP_SYNC, &idp_sync_env(&chime_url, UNREACHABLE_DLQ, &[])).await;
    sync.api.send_deadline_header(EMULATOR_DEADLINE_MS);
    for relative in [
        "idp-sync/standard-batch-created-updated-deleted.json",
        "idp-sync/empty-batch.json",
    ] {
        assert_eq!(
            sync.invoke(&read_event(relative)).await,
            Outcome::Response(json!({"batchItemFailures": []})),
            "{relative}"
        );
    }
    let names: Vec<(String, String)> = users(&fake)
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect();
    let expected = [
        (ADA, "Ada Lovelace"),
        (ALAN, "Alan Turing"),
        (GRACE, "Grace Hopper"),
        (RADIA, "Radia Perlman"),
    ]
    .map(|(id, name)| (id.to_owned(), name.to_owned()));
    assert_eq!(names, expected);
    assert_one_deadline_warning(&sync);
}
}

/// Stop the function; its log holds exactly one `deadline-ignored` warning.
fn assert_one_deadline_warning(lambda: &Lambda) {
    lambda.stop();
    let warnings: Vec<Value> = lambda
        .log_lines()
        .into_iter()
        .filter(|line| line.to_string().contains("deadline-ignored"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", lambda.log());
    assert_eq!(warnings[0]["level"], "WARN", "{}", warnings[0]);
}
