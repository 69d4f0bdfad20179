//! The scheduled reconcile end to end: the compiled `reconcile` bootstrap
//! behind the mock Runtime API, reading a user pool in moto's cognito-idp
//! (users in every status, federated and admin-created ones included) and the
//! Chime fake, publishing to a FIFO queue in moto's SQS, drained by the
//! compiled `idp-sync` bootstrap as the event source mapping drains it. Then
//! the CLI releases the breaker and `restore` undoes a mass deletion, on the
//! fake's clock.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use aws_sdk_sqs::Client as Sqs;
use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig};
use chime_sync_aws::{ChimeConfig, ChimeDirectory};
use chime_sync_core::{AppInstanceArn, Directory, DisplayName, UserId, UserProfile};
use serde_json::{Value, json};
use testkit::bins::cli;
use testkit::cognito::{SeededPool, seed_file, seed_pool, seeded_pool};
use testkit::emf;
use testkit::in_both_missing_user_modes;
use testkit::lambda::{IDP_SYNC, Lambda, RECONCILE};
use testkit::moto::{FifoQueues, Moto, create_fifo_with_dlq, depth};
use testkit::pipeline::{chime_users, drain};
use testkit::process::ChildGuard;

const APP: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/7c0f2b4e-5d1a-4e8b-9f3c-2a6d8e0b1c4f";
const PROTECTED: &str = "0badc0de-0000-4000-8000-00000000b0b0";
const DAY: Duration = Duration::from_secs(86_400);

/// The schedule's event, as EventBridge (or the state machine, passing it on) delivers it.
fn scheduled_event(id: &str) -> Value {
    json!({"version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-11-20T10:00:00Z", "region": "us-east-1",
           "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile"], "detail": {}})
}

/// Chime as the tests reach it in-process (to set the scene and read it back).
fn chime(fake: &FakeChimeHandle) -> ChimeDirectory {
    let mut config = ChimeConfig::new(AppInstanceArn::parse(APP).unwrap());
    config.endpoint_url = Some(fake.endpoint_url());
    ChimeDirectory::new(&chime_identity_sync_sdk(), config)
}

fn chime_identity_sync_sdk() -> aws_config::SdkConfig {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .build()
}

async fn put(d: &ChimeDirectory, id: &str, name: &str) {
    d.create(&UserProfile {
        id: UserId::parse(id).unwrap(),
        name: DisplayName::parse(name).unwrap(),
        metadata: None,
    })
    .await
    .unwrap();
}

fn gone_sub(n: usize) -> String {
    format!("90de{n:04x}-0000-4000-8000-{n:012}")
}

/// The reconcile bootstrap, reading `pool` in moto and Chime at the fake.
async fn reconcile_lambda(
    moto: &Moto,
    fake: &FakeChimeHandle,
    pool: &str,
    queues: &FifoQueues,
    extra: &[(&str, &str)],
) -> Lambda {
    let mut env = vec![
        ("APP_INSTANCE_ARN", APP),
        ("USER_POOL_ID", pool),
        ("SYNC_QUEUE_URL", queues.queue_url.as_str()),
        ("PROTECTED_USER_IDS", PROTECTED),
        // The Chime users here are made directly, before any ledger: the pool owns them.
        ("UNOWNED_USERS", "pool"),
        (
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            moto.endpoint_url(),
        ),
        ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url()),
    ];
    let fake_url = fake.endpoint_url();
    env.push(("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake_url));
    env.extend_from_slice(extra);
    Lambda::start(RECONCILE, &env).await
}

async fn idp_sync_lambda(moto: &Moto, fake: &FakeChimeHandle, queues: &FifoQueues) -> Lambda {
    Lambda::start(
        IDP_SYNC,
        &[
            ("APP_INSTANCE_ARN", APP),
            ("DLQ_URL", &queues.dlq_url),
            ("UNOWNED_USERS", "pool"),
            ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &fake.endpoint_url()),
            ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url()),
        ],
    )
    .await
}

/// Every message in the sync queue now, without consuming them for long.
async fn queued(sqs: &Sqs, queues: &FifoQueues) -> u64 {
    depth(sqs, &queues.queue_url).await
}

fn totals(response: &Value) -> &Value {
    assert_eq!(
        response["done"], true,
        "one invocation finishes: {response}"
    );
    &response["totals"]
}

fn expected_active(pool: &SeededPool) -> BTreeMap<String, String> {
    pool.active()
        .map(|u| (u.sub.clone(), u.name.clone()))
        .collect()
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// 2,400 users in every status; Chime starts with most of the active ones (a few renamed),
/// users gone from the pool, disabled ones, a protected id and ids that are not subs. One
/// scheduled invocation publishes the plan (a few hundred changes: moto's FIFO queue slows
/// down badly with thousands of messages in distinct groups; the first run of a pool with
/// thousands of creates is shown through the SQS simulator in tests/e2e/reconcile_faults.rs); after idp-sync drains the queue, Chime holds
/// exactly the pool's active users (plus what is protected or not ours), the deleted ones
/// pending their grace expiry. A second run publishes nothing. After the grace, Chime has
/// deleted them; a third run publishes nothing either.
async fn chime_converges_on_the_pools_active_users_through_the_queue(mode) {
    // 2,400 users made in moto before it serves (through the backend operations the API
    // runs; the smaller test below makes its users through the API itself).
    let moto = Moto::start_with_seeded_pools(&seed_file(&[("staff", 2_400)])).await;
    let pool = seeded_pool(&moto, "staff", 2_400).await;
    let statuses: BTreeSet<&str> = pool.users.iter().map(|u| u.status).collect();
    assert_eq!(statuses.len(), 5, "every status: {statuses:?}");
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "sync", 5, 10).await;
    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode)).await.unwrap();
    let d = chime(&fake);

    let active: Vec<_> = pool.active().collect();
    let inactive: Vec<_> = pool.users.iter().filter(|u| !u.active()).collect();
    let present = active.len() - 120;
    for u in &active[..present - 20] {
        put(&d, &u.sub, &u.name).await;
    }
    for u in &active[present - 20..present] {
        put(&d, &u.sub, "Old name").await;
    }
    for u in &inactive[..10] {
        put(&d, &u.sub, &u.name).await;
    }
    for n in 0..40 {
        put(&d, &gone_sub(n), "Gone").await;
    }
    put(&d, PROTECTED, "Protected").await;
    // Not subs: users this system does not own, made by hand or by other tools.
    for foreign in ["backend-worker", "support.bot"] {
        d.client()
            .create_app_instance_user()
            .app_instance_arn(APP)
            .app_instance_user_id(foreign)
            .name(foreign)
            .client_request_token(format!("by-hand-{}", foreign.len()))
            .send()
            .await
            .unwrap();
    }

    let reconcile = reconcile_lambda(&moto, &fake, &pool.id, &queues, &[]).await;
    let first = reconcile.invoke(&scheduled_event("0e0a3c1e-0001-4000-8000-000000000001")).await;
    let t = totals(first.response()).clone();
    assert_eq!(
        (t["poolUsers"].as_u64(), t["creates"].as_u64(), t["updates"].as_u64(), t["deletes"].as_u64()),
        (Some(2_400), Some(120), Some(20), Some(50)),
        "{t}"
    );
    assert_eq!(t["withheld"], 0, "50 deletions: exactly the breaker's limit, allowed");
    assert_eq!((t["protected"].as_u64(), t["foreign"].as_u64()), (Some(1), Some(2)));
    assert!(t["cognitoCalls"].as_u64().unwrap() >= 40, "{t}");

    let idp = idp_sync_lambda(&moto, &fake, &queues).await;
    let (invocations, applied) = drain(&sqs, &queues, &idp).await;
    assert_eq!(applied, 120 + 20 + 50, "{invocations} invocations");
    assert_eq!(depth(&sqs, &queues.dlq_url).await, 0, "nothing dead-lettered");

    let expected = expected_active(&pool);
    let after = chime_users(&fake);
    let kept: BTreeMap<String, String> = after
        .iter()
        .filter(|(id, (_, pending))| !pending && id.len() == 36 && id.as_str() != PROTECTED)
        .map(|(id, (name, _))| (id.clone(), name.clone()))
        .collect();
    assert_eq!(kept, expected, "Chime's users and names are the pool's active users");
    let pending: BTreeSet<&String> = after.iter().filter(|(_, (_, p))| *p).map(|(id, _)| id).collect();
    assert_eq!(pending.len(), 50, "the deleted users wait for their grace expiry");
    for untouched in [PROTECTED, "backend-worker", "support.bot"] {
        assert!(after.get(untouched).is_some_and(|(_, p)| !p), "{untouched} is never deleted");
    }

    // A second run: nothing to publish (the scheduled deletions are seen and left to Chime).
    let second = reconcile.invoke(&scheduled_event("0e0a3c1e-0002-4000-8000-000000000002")).await;
    let t = totals(second.response()).clone();
    assert_eq!((t["creates"].as_u64(), t["updates"].as_u64(), t["deletes"].as_u64(), t["pending"].as_u64()),
        (Some(0), Some(0), Some(0), Some(50)), "{t}");
    assert_eq!(queued(&sqs, &queues).await, 0, "a second run publishes nothing");

    // The grace passes: Chime deletes them.
    assert_eq!(fake.advance_clock(DAY * 9).len(), 50);
    let after = chime_users(&fake);
    assert_eq!(after.len(), expected.len() + 3);
    let third = reconcile.invoke(&scheduled_event("0e0a3c1e-0003-4000-8000-000000000003")).await;
    let t = totals(third.response()).clone();
    assert_eq!((t["creates"].as_u64(), t["deletes"].as_u64(), t["pending"].as_u64()), (Some(0), Some(0), Some(0)));
    assert_eq!(queued(&sqs, &queues).await, 0);

    reconcile.stop();
    let lines = reconcile.log_lines();
    assert!(lines.iter().any(|l| l.to_string().contains("cycle-done")), "{}", reconcile.log());
    assert!(!reconcile.log().contains("@example.com"), "no email address is logged");
}
}

/// `chime-sync` with a clean environment, pointed at moto and the fake.
fn chime_sync(moto: &Moto, fake: &FakeChimeHandle, args: &[&str]) -> Command {
    let mut command = cli();
    command
        .env(
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            moto.endpoint_url(),
        )
        .env("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", fake.endpoint_url())
        .args(args);
    // The Chime users here predate any ledger: the pool owns them.
    if matches!(args.first(), Some(&"reconcile" | &"restore")) {
        command.args(["--unowned", "pool"]);
    }
    command
}

/// Run a command to completion (at most 120 s): (exit code, stdout, stderr).
async fn run_cli(name: &str, command: Command) -> (Option<i32>, String, String) {
    let process = ChildGuard::spawn(name.to_owned(), command).expect("spawn chime-sync");
    let status = process
        .wait_exit(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    (status.code(), process.stdout(), process.stderr())
}

/// An SQS event of schema-v1 messages (one per user, its own group).
fn sqs_event(messages: &[(String, Value)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, (sub, body))| {
            json!({"messageId": format!("m-{i}"), "receiptHandle": format!("rh-{i}"),
                   "body": body.to_string(),
                   "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763632800000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1763632800001",
                       "MessageGroupId": sub, "MessageDeduplicationId": format!("d-{i}")},
                   "messageAttributes": {}, "md5OfBody": "00000000000000000000000000000000",
                   "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sync.fifo",
                   "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The breaker: 51 users gone from the pool is one more than a cycle may delete. The
/// function publishes none of them and logs one ERROR line carrying the metric; the CLI
/// refuses too, until `--allow-deletes 51` releases them (grace deletions). A rehire before
/// the grace ends keeps its user. A broken feed then deletes 30 active users: `restore`
/// cancels every one, and after the grace only the 50 released deletions are gone.
async fn the_breaker_trips_releases_with_the_flag_and_restore_undoes_a_mass_deletion(mode) {
    let moto = Moto::start_with_federated_users().await;
    let pool = seed_pool(&moto, "small", 120).await;
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "sync", 5, 10).await;
    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode)).await.unwrap();
    let d = chime(&fake);
    let active: Vec<_> = pool.active().cloned().collect();
    for u in &active {
        put(&d, &u.sub, &u.name).await;
    }
    for n in 0..51 {
        put(&d, &gone_sub(n), "Gone").await;
    }

    // The function: every deletion withheld, one ERROR line with the metric.
    let reconcile = reconcile_lambda(&moto, &fake, &pool.id, &queues, &[]).await;
    let response = reconcile.invoke(&scheduled_event("b0000000-0000-4000-8000-000000000001")).await;
    let t = totals(response.response()).clone();
    assert_eq!((t["deletesPlanned"].as_u64(), t["withheld"].as_u64(), t["deletes"].as_u64()), (Some(51), Some(51), Some(0)), "{t}");
    assert_eq!(queued(&sqs, &queues).await, 0, "no deletion published");
    reconcile.stop();
    let lines = reconcile.log_lines();
    let errors: Vec<&Value> = lines
        .iter()
        .filter(|l| l.to_string().contains("deletions-withheld"))
        .collect();
    assert_eq!(errors.len(), 1, "one ERROR line with the counts:\n{}", reconcile.log());
    assert_eq!(errors[0]["level"], "ERROR");
    assert!(errors[0].to_string().contains("51 deletions planned, at most 50 allowed"), "{}", errors[0]);
    // The metric, in the invocation's metrics line, as the alarm reads it.
    let published = emf::function_metrics(&lines, RECONCILE.binary);
    assert_eq!(emf::sum(&published, "DeletionsWithheld"), 51.0, "{}", reconcile.log());
    assert_eq!(emf::sum(&published, "DeletesPublished"), 0.0);
    // The CLI refuses as well...
    let args = ["reconcile", "--user-pool-id", &pool.id, "--app-instance-arn", APP, "--delete-missing", "--apply"];
    let (code, stdout, stderr) = run_cli("reconcile --apply", chime_sync(&moto, &fake, &args)).await;
    assert_eq!(code, Some(3), "3: deletions withheld\n{stdout}\n{stderr}");
    assert!(stderr.contains("mass-delete breaker: 51 deletions planned, at most 50 allowed"), "{stderr}");
    assert!(stderr.contains("--allow-deletes 51"), "{stderr}");
    assert!(chime_users(&fake).values().all(|(_, pending)| !pending), "nothing deleted");
    // ...until the operator releases exactly these deletions.
    let mut release = args.to_vec();
    release.extend(["--allow-deletes", "51"]);
    let (code, stdout, stderr) = run_cli("reconcile --allow-deletes", chime_sync(&moto, &fake, &release)).await;
    assert_eq!(code, Some(2), "changes applied\n{stdout}\n{stderr}");
    assert!(stdout.contains("Applied 51 changes: 51 deletion-scheduled"), "{stdout}");
    let pending: BTreeSet<String> = chime_users(&fake).into_iter().filter(|(_, (_, p))| *p).map(|(id, _)| id).collect();
    assert_eq!(pending, (0..51).map(gone_sub).collect());

    // The scheduled deletions are not planned again: the function is quiet now.
    let reconcile = reconcile_lambda(&moto, &fake, &pool.id, &queues, &[]).await;
    let response = reconcile.invoke(&scheduled_event("b0000000-0000-4000-8000-000000000002")).await;
    let t = totals(response.response()).clone();
    assert_eq!((t["withheld"].as_u64(), t["pending"].as_u64(), t["deletes"].as_u64()), (Some(0), Some(51), Some(0)), "{t}");

    // A rehire of one of them before the grace ends (user.created through idp-sync).
    let idp = idp_sync_lambda(&moto, &fake, &queues).await;
    let rehired = gone_sub(0);
    let created = json!({"version": 1, "type": "user.created", "eventId": "rehire",
                         "user": {"sub": rehired, "displayName": "Back Again"}});
    let outcome = idp.invoke(&sqs_event(&[(rehired.clone(), created)])).await;
    assert_eq!(outcome.response()["batchItemFailures"], json!([]));

    // A broken feed deletes 30 active users (grace deletions, through idp-sync)...
    let victims: Vec<String> = active.iter().take(30).map(|u| u.sub.clone()).collect();
    for chunk in victims.chunks(10) {
        let messages: Vec<(String, Value)> = chunk
            .iter()
            .map(|sub| (sub.clone(), json!({"version": 1, "type": "user.deleted", "user": {"sub": sub}})))
            .collect();
        let outcome = idp.invoke(&sqs_event(&messages)).await;
        assert_eq!(outcome.response()["batchItemFailures"], json!([]));
    }
    assert!(victims.iter().all(|v| chime_users(&fake)[v].1), "30 deletions pending");
    // ...and `restore` cancels every one.
    let restore = ["restore", "--user-pool-id", &pool.id, "--app-instance-arn", APP];
    let (code, stdout, stderr) = run_cli("restore", chime_sync(&moto, &fake, &restore)).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("Restored 30 of {} active users", active.len())), "{stdout}");

    // The grace passes.
    let expired: BTreeSet<String> = fake
        .advance_clock(DAY * 9)
        .into_iter()
        .map(|u| u.app_instance_user_id)
        .collect();
    assert_eq!(expired, (1..51).map(gone_sub).collect(), "the released deletions, not the rehire");
    let after = chime_users(&fake);
    assert_eq!(after[&rehired].0, "Back Again");
    let active_subs: BTreeSet<String> = active.iter().map(|u| u.sub.clone()).collect();
    let kept: BTreeSet<String> = after.keys().filter(|id| **id != rehired).cloned().collect();
    assert_eq!(kept, active_subs, "every restored user survives the grace");
}
}
