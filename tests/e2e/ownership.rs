//! Many sources, one truth over time, end to end: the compiled bootstraps
//! (reconcile, idp-sync, the Cognito function, credential-exchange) behind
//! the mock Runtime API, sharing one ownership ledger in moto's DynamoDB
//! (the table template.yaml declares), a user pool and the sync queue in
//! moto, and the Chime fake; the CLI where an operator would act.
//!
//! - users of other sources (an issuer's, the feed's) survive ten reconcile
//!   cycles against a pool that lacks them;
//! - a pending deletion is cancelled when the user is back (enabled again
//!   in the pool; listed again in an export);
//! - a user created after a cycle began is not deleted by it;
//! - a redriven old `user.deleted` is refused as stale;
//! - a federated user's first sign-in creates the Chime user, and with
//!   Chime down the sign-in still succeeds and the user is handed off;
//! - the feed's breaker holds explicit deletions beyond its window, and
//!   `chime-sync held release` applies exactly those.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::Client as Cognito;
use aws_sdk_sqs::Client as Sqs;
use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, FaultConfig};
use chime_sync_aws::LedgerTable;
use chime_sync_core::UserId;
use chime_sync_core::ledger::{Source, records_of};
use serde_json::{Value, json};
use testkit::bins::cli;
use testkit::cognito::{SeededPool, client as cognito_client, seed_pool};
use testkit::credentials::keys::{jwks, now};
use testkit::credentials::{LocalIdp, LocalSts, TestKey};
use testkit::in_both_missing_user_modes;
use testkit::lambda::{
    CREDENTIAL_EXCHANGE, Function, IDP_SYNC, Lambda, POST_CONFIRMATION, RECONCILE,
};
use testkit::ledger::create_ledger_table;
use testkit::moto::{FifoQueues, Moto, create_fifo_with_dlq, depth, receive};
use testkit::pipeline::{chime_users, drain};
use testkit::process::ChildGuard;

const APP: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/3d1f0b2a-7c4e-4a9b-8e6d-5f2c1b0a9e8d";
const TABLE: &str = "chime-identity-sync-ledger";
const ROLE: &str = "arn:aws:iam::123456789012:role/chime-identity-sync-ChatUserRole-1AB2C3";

/// moto (pool, queue, ledger table), the Chime fake, and the bootstraps
/// sharing them.
struct Stack {
    moto: Moto,
    sqs: Sqs,
    queues: FifoQueues,
    ledger: LedgerTable,
    fake: FakeChimeHandle,
    pool: SeededPool,
    reconcile: Lambda,
    idp: Lambda,
}

impl Stack {
    async fn start(mode: chime_identity_fake::MissingAnswer, users: usize) -> Stack {
        let moto = Moto::start().await;
        let pool = seed_pool(&moto, "staff", users).await;
        let sqs = moto.sqs();
        let queues = create_fifo_with_dlq(&sqs, "sync", 5, 10).await;
        let ledger = create_ledger_table(&moto, TABLE).await;
        let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode))
            .await
            .expect("Chime fake");
        let reconcile_env = [
            ("USER_POOL_ID", pool.id.as_str()),
            ("SYNC_QUEUE_URL", queues.queue_url.as_str()),
        ];
        let idp_env = [
            ("DLQ_URL", queues.dlq_url.as_str()),
            ("FEED_DELETE_LIMIT", "5"),
            ("FEED_DELETE_LIMIT_PERCENT", "0"),
            // One group at a time: moto undoes a cancelled transaction by restoring the
            // whole table as it was when that transaction began, which also undoes the
            // writes of a concurrent request (DynamoDB's own transactions do not).
            ("MAX_CONCURRENT_GROUPS", "1"),
        ];
        let reconcile = start_with(&moto, &fake, RECONCILE, &reconcile_env).await;
        let idp = start_with(&moto, &fake, IDP_SYNC, &idp_env).await;
        Stack {
            moto,
            sqs,
            queues,
            ledger,
            fake,
            pool,
            reconcile,
            idp,
        }
    }

    /// One scheduled cycle, then the queue drained through idp-sync; the
    /// cycle's totals.
    async fn cycle(&self, n: u32) -> Value {
        let event = json!({"version": "0", "id": format!("0e0a3c1e-{n:04}-4000-8000-000000000001"),
            "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        let outcome = self.reconcile.invoke(&event).await;
        let response = outcome.response().clone();
        assert_eq!(response["done"], true, "{response}");
        drain(&self.sqs, &self.queues, &self.idp).await;
        assert_eq!(
            depth(&self.sqs, &self.queues.dlq_url).await,
            0,
            "nothing dead-lettered"
        );
        response["totals"].clone()
    }

    /// Send `bodies` to idp-sync as one batch (each its own FIFO group); the
    /// outcomes its log reports, in order.
    async fn feed(&self, bodies: &[Value]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let sub = b["user"]["sub"].as_str().unwrap_or("x").to_owned();
                json!({"messageId": format!("m-{i}-{}", b["eventId"].as_str().unwrap_or("")),
                       "receiptHandle": "r", "body": b.to_string(),
                       "attributes": {"MessageGroupId": sub, "ApproximateReceiveCount": "1",
                                      "SentTimestamp": "1", "SenderId": "x",
                                      "ApproximateFirstReceiveTimestamp": "1"},
                       "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                       "eventSourceARN": self.queues.queue_arn, "awsRegion": "us-east-1"})
            })
            .collect();
        self.idp
            .invoke(&json!({ "Records": records }))
            .await
            .response()
            .clone()
    }

    fn pending(&self, sub: &str) -> Option<bool> {
        chime_users(&self.fake)
            .get(sub)
            .map(|(_, pending)| *pending)
    }
}

/// What every bootstrap here gets: the AppInstance, the ledger table, and
/// moto and the fake as their endpoints; then `extra`.
fn stack_env(moto: &Moto, fake: &FakeChimeHandle, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("APP_INSTANCE_ARN", APP.to_owned()),
        ("LEDGER_TABLE", TABLE.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint_url().to_owned()),
        ("AWS_ENDPOINT_URL_SQS", moto.endpoint_url().to_owned()),
        (
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            moto.endpoint_url().to_owned(),
        ),
        ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", fake.endpoint_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

async fn start(function: Function, env: Vec<(String, String)>) -> Lambda {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Lambda::start(function, &pairs).await
}

/// `function` started with the stack's environment and `extra`.
async fn start_with(
    moto: &Moto,
    fake: &FakeChimeHandle,
    function: Function,
    extra: &[(&str, &str)],
) -> Lambda {
    start(function, stack_env(moto, fake, extra)).await
}

fn event(kind: &str, sub: &str, source: &str, at: &str, extra: Value) -> Value {
    let mut m = json!({"version": 1, "type": kind, "eventId": format!("{kind}-{sub}-{at}"),
                       "source": source, "occurredAt": at,
                       "user": {"sub": sub, "displayName": format!("User {}", &sub[..8])}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        m[k] = v;
    }
    m
}

const HR_ONLY: &str = "4a11ce00-0000-4000-8000-00000000a11c";
const OKTA_ONLY: &str = "0c7a0000-0000-4000-8000-0000000000c7";

/// A user of the credential exchange's Okta-like issuer: the exchange creates its Chime
/// user, owned by `issuer:okta`.
async fn sign_in_through_okta(stack: &Stack, sub: &str) {
    let key = TestKey::rsa("okta-1");
    let idp = LocalIdp::start(jwks(&[&key])).await;
    let sts = LocalSts::start().await;
    let issuers = json!({idp.issuer(): {"audiences": ["chat-web"], "key": "okta"}}).to_string();
    let sts_url = sts.endpoint_url();
    let env = [
        ("TRUSTED_ISSUERS", issuers.as_str()),
        ("CHAT_USER_ROLE_ARN", ROLE),
        ("AWS_ENDPOINT_URL_STS", sts_url.as_str()),
    ];
    let exchange = start_with(&stack.moto, &stack.fake, CREDENTIAL_EXCHANGE, &env).await;
    let token = key.sign(&json!({"iss": idp.issuer(), "aud": "chat-web", "sub": sub,
                                 "iat": now(), "exp": now() + 3600, "name": "Okta User"}));
    let request = crate::function_url::request(
        "POST",
        json!({"authorization": format!("Bearer {token}")}),
        None,
    );
    let answer = exchange.invoke(&request).await;
    assert_eq!(answer.response()["statusCode"], 200, "{}", exchange.log());
}

async fn owner(ledger: &LedgerTable, sub: &str) -> Option<Source> {
    let id = UserId::parse(sub).unwrap();
    records_of(ledger, std::slice::from_ref(&id))
        .await
        .unwrap()
        .get(&id)
        .and_then(|r| r.owner.clone())
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// An issuer's user and the feed's user are not in the pool; ten cycles later both are
/// still there, with nothing pending and the breaker never tripped. The pool's own user who
/// leaves the pool is scheduled for deletion in the first of them.
async fn users_of_other_sources_survive_ten_cycles_against_a_pool_that_lacks_them(mode) {
    let stack = Stack::start(mode, 6).await;
    let first = stack.cycle(1).await;
    assert_eq!(first["deletes"], 0, "{first}");
    let feed = stack.feed(&[event("user.created", HR_ONLY, "feed:workday", "2026-11-20T10:00:00Z", json!({}))]).await;
    assert_eq!(feed["batchItemFailures"], json!([]));
    sign_in_through_okta(&stack, OKTA_ONLY).await;
    assert_eq!(owner(&stack.ledger, HR_ONLY).await, Some(Source::feed(Some("workday")).unwrap()));
    assert_eq!(owner(&stack.ledger, OKTA_ONLY).await, Some(Source::issuer("okta").unwrap()));
    let leaver = stack.pool.active().next().expect("an active user").clone();
    assert_eq!(owner(&stack.ledger, &leaver.sub).await, Some(Source::pool()));
    testkit::cognito::delete_user(&cognito_client(&stack.moto), &stack.pool.id, &leaver.username).await;

    for n in 2..=11 {
        let t = stack.cycle(n).await;
        assert_eq!(t["withheld"], 0, "cycle {n}: {t}");
        let deletes = if n == 2 { 1 } else { 0 };
        assert_eq!(t["deletes"], deletes, "cycle {n}: {t}");
    }
    assert_eq!(stack.pending(HR_ONLY), Some(false));
    assert_eq!(stack.pending(OKTA_ONLY), Some(false));
    assert_eq!(stack.pending(&leaver.sub), Some(true), "the pool's own user is deleted");
    let log = stack.reconcile.log();
    assert!(log.contains("owned by feed:workday, kept") || log.contains("cycle-done"), "{log}");
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// A user disabled in the pool is scheduled for deletion; enabled again, the next cycle
/// cancels it (the ledger's mark and Chime's expiration). Then, through the CLI: Bob absent
/// from one export and present in the next ends with no pending deletion.
async fn a_pending_deletion_is_cancelled_when_the_user_is_back(mode) {
    let stack = Stack::start(mode, 6).await;
    stack.cycle(1).await;
    let user = stack.pool.active().find(|u| u.enabled).expect("an enabled user").clone();
    let cognito: Cognito = cognito_client(&stack.moto);
    cognito.admin_disable_user().user_pool_id(&stack.pool.id).username(&user.username).send().await.unwrap();
    let t = stack.cycle(2).await;
    assert_eq!(t["deletes"], 1, "{t}");
    assert_eq!(stack.pending(&user.sub), Some(true));
    cognito.admin_enable_user().user_pool_id(&stack.pool.id).username(&user.username).send().await.unwrap();
    let t = stack.cycle(3).await;
    assert_eq!((t["restores"].as_u64(), t["marked"].as_u64()), (Some(1), Some(1)), "{t}");
    assert_eq!(stack.pending(&user.sub), Some(false), "Chime's expiration is cleared");
    let id = UserId::parse(&user.sub).unwrap();
    let record = records_of(&stack.ledger, std::slice::from_ref(&id)).await.unwrap().remove(&id).unwrap();
    assert_eq!(record.deletion, None, "the ledger's mark is cleared");
    let t = stack.cycle(4).await;
    assert_eq!((t["restores"].as_u64(), t["marked"].as_u64()), (Some(0), Some(0)), "{t}");

    // The CLI, from exports: Bob absent, then present.
    let bob = "b0b00000-0000-4000-8000-000000000b0b";
    let line = |sub: &str, name: &str| json!({"sub": sub, "displayName": name}).to_string();
    let dir = std::env::temp_dir().join(format!("ownership-e2e-{}-{mode:?}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let with_bob = dir.join("with-bob.jsonl");
    let without_bob = dir.join("without-bob.jsonl");
    std::fs::write(&with_bob, [line(bob, "Bob"), line(HR_ONLY, "Ada")].join("\n")).unwrap();
    std::fs::write(&without_bob, line(HR_ONLY, "Ada")).unwrap();
    for (file, pending) in [(&with_bob, false), (&without_bob, true), (&with_bob, false)] {
        let (code, stdout, stderr) = chime_sync(&stack, &[
            "reconcile", "--users", file.to_str().unwrap(), "--source", "feed:hr",
            "--app-instance-arn", APP, "--ledger-table", TABLE, "--delete-missing", "--apply",
        ]).await;
        assert!(matches!(code, Some(0 | 2)), "{stdout}\n{stderr}");
        assert_eq!(stack.pending(bob), Some(pending), "{stdout}");
    }
}
}

/// `chime-sync` with a clean environment, pointed at moto and the fake.
/// `chime-sync held release --count <count> --apply`, to the stack's ledger and sync queue.
async fn held_release(stack: &Stack, count: &str) -> (Option<i32>, String, String) {
    let args = [
        "held",
        "release",
        "--ledger-table",
        TABLE,
        "--region",
        "us-east-1",
        "--sync-queue-url",
        &stack.queues.queue_url,
        "--count",
        count,
        "--apply",
    ];
    chime_sync(stack, &args).await
}

async fn chime_sync(stack: &Stack, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = cli();
    command
        .env("AWS_ENDPOINT_URL_DYNAMODB", stack.moto.endpoint_url())
        .env("AWS_ENDPOINT_URL_SQS", stack.moto.endpoint_url())
        .env(
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            stack.moto.endpoint_url(),
        )
        .env("AWS_ENDPOINT_URL_CLOUDFORMATION", stack.moto.endpoint_url())
        .env("AWS_ENDPOINT_URL_LAMBDA", stack.moto.endpoint_url())
        .env(
            "AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY",
            stack.fake.endpoint_url(),
        )
        .args(args);
    let process = ChildGuard::spawn("chime-sync".to_owned(), command).expect("spawn chime-sync");
    let status = process
        .wait_exit(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    (status.code(), process.stdout(), process.stderr())
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Chime lists a user the pool read missed, created after the cycle began: the cycle's
/// describe sees its creation time and keeps it.
async fn a_user_created_after_the_cycle_began_is_not_deleted(mode) {
    let stack = Stack::start(mode, 4).await;
    stack.cycle(1).await;
    // Chime's clock an hour ahead: what it creates now was created after any cycle began.
    stack.fake.advance_clock(Duration::from_secs(3600));
    let late = "1a7e0000-0000-4000-8000-0000000001a7";
    let confirm = json!({"version": "1", "triggerSource": "PostConfirmation_ConfirmSignUp",
        "region": "us-east-1", "userPoolId": stack.pool.id, "userName": "late",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown", "clientId": "c"},
        "request": {"userAttributes": {"sub": late, "name": "Late Comer",
                                       "cognito:user_status": "CONFIRMED"}},
        "response": {}});
    let trigger = start_with(&stack.moto, &stack.fake, POST_CONFIRMATION, &[
        ("SYNC_QUEUE_URL", stack.queues.queue_url.as_str()),
    ]).await;
    assert_eq!(trigger.invoke(&confirm).await.response(), &confirm);
    assert_eq!(owner(&stack.ledger, late).await, Some(Source::pool()));
    let t = stack.cycle(2).await;
    assert_eq!(t["deletes"], 0, "{t}");
    assert_eq!(stack.pending(late), Some(false));
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// A `user.deleted` redriven from the DLQ a day after a later `user.created`: refused as
/// stale, acknowledged, the user kept; counted `Stale`.
async fn a_redriven_old_deletion_is_refused_as_stale(mode) {
    let stack = Stack::start(mode, 1).await;
    let sub = "5ca1e000-0000-4000-8000-000000005ca1";
    let answer = stack.feed(&[
        event("user.created", sub, "feed", "2026-11-21T10:00:00Z", json!({})),
        event("user.deleted", sub, "feed", "2026-11-20T10:00:00Z", json!({})),
    ]).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "acknowledged, not retried");
    assert_eq!(stack.pending(sub), Some(false));
    assert_eq!(depth(&stack.sqs, &stack.queues.dlq_url).await, 0, "not dead-lettered");
    let log = stack.idp.log();
    assert!(log.contains(r#""outcome":"stale""#), "{log}");
}
}

/// A federated user's first sign-in (`TokenGeneration_HostedAuth`, as Cognito's trigger
/// reference shows the event) creates its Chime user, owned by the pool; the event comes
/// back unchanged. With Chime down the sign-in still succeeds and the user is handed off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_first_sign_in_creates_the_chime_user() {
    let stack = Stack::start(chime_identity_fake::MissingAnswer::Forbidden, 1).await;
    let trigger = start_with(
        &stack.moto,
        &stack.fake,
        POST_CONFIRMATION,
        &[("SYNC_QUEUE_URL", stack.queues.queue_url.as_str())],
    )
    .await;
    let sign_in = |sub: &str| {
        json!({"version": "1", "triggerSource": "TokenGeneration_HostedAuth",
        "region": "us-east-1", "userPoolId": stack.pool.id, "userName": format!("Google_{}", &sub[..8]),
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
        "request": {"userAttributes": {"sub": sub, "cognito:user_status": "EXTERNAL_PROVIDER",
            "identities": "[{\"userId\":\"1095\",\"providerName\":\"Google\",\"providerType\":\"Google\",\"issuer\":null,\"primary\":true,\"dateCreated\":1700000000000}]",
            "name": "Fed Erated"},
            "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null}},
        "response": {"claimsOverrideDetails": null}})
    };
    let first = "fede0000-0000-4000-8000-00000000fede";
    let event = sign_in(first);
    assert_eq!(trigger.invoke(&event).await.response(), &event);
    assert_eq!(stack.pending(first), Some(false), "the Chime user exists");
    assert_eq!(owner(&stack.ledger, first).await, Some(Source::pool()));

    stack
        .fake
        .set_faults(FaultConfig::none().with_service_unavailable_rate(1.0))
        .unwrap();
    let second = "fede0000-0000-4000-8000-0000000fede2";
    let event = sign_in(second);
    assert_eq!(
        trigger.invoke(&event).await.response(),
        &event,
        "the sign-in goes ahead"
    );
    let handed: Vec<String> = receive(&stack.sqs, &stack.queues.queue_url, 10, 1)
        .await
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect();
    assert!(
        handed
            .iter()
            .any(|b| b.contains(second) && b.contains(r#""source":"pool""#)),
        "{handed:?}"
    );
    stack.fake.set_faults(FaultConfig::none()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Twelve explicit deletions from the feed against a window of five: five applied, seven
/// held. `chime-sync held list` shows the seven; `held release --count 7 --apply` publishes
/// them, and idp-sync applies exactly those.
async fn the_feed_breaker_holds_deletions_and_a_release_applies_exactly_those() {
    let stack = Stack::start(chime_identity_fake::MissingAnswer::NotFound, 1).await;
    let subs: Vec<String> = (0..12)
        .map(|n| format!("de1e7e00-0000-4000-8000-{n:012}"))
        .collect();
    let created: Vec<Value> = subs
        .iter()
        .map(|s| event("user.created", s, "feed", "2026-11-20T10:00:00Z", json!({})))
        .collect();
    stack.feed(&created[..10]).await;
    stack.feed(&created[10..]).await;
    for chunk in subs.chunks(10) {
        let deleted: Vec<Value> = chunk
            .iter()
            .map(|s| event("user.deleted", s, "feed", "2026-11-21T10:00:00Z", json!({})))
            .collect();
        assert_eq!(stack.feed(&deleted).await["batchItemFailures"], json!([]));
    }
    let pending: BTreeSet<&String> = subs
        .iter()
        .filter(|s| stack.pending(s) == Some(true))
        .collect();
    assert_eq!(pending.len(), 5, "five deletions in the window");
    assert!(
        stack
            .idp
            .log()
            .contains(r#""outcome":"deletions-withheld""#),
        "the breaker's ERROR line"
    );

    let region = ["--ledger-table", TABLE, "--region", "us-east-1"];
    let (code, stdout, stderr) =
        chime_sync(&stack, &[&["held", "list"][..], &region].concat()).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("7 deletions held"), "{stdout}");
    let (code, _, stderr) = held_release(&stack, "6").await;
    assert_eq!(
        code,
        Some(1),
        "a count that does not cover them is refused: {stderr}"
    );
    assert!(stderr.contains("7 deletions are held"), "{stderr}");
    let (code, stdout, stderr) = held_release(&stack, "7").await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    drain(&stack.sqs, &stack.queues, &stack.idp).await;
    assert!(
        subs.iter().all(|s| stack.pending(s) == Some(true)),
        "{:?}",
        chime_users(&stack.fake)
    );
    let (_, stdout, _) = chime_sync(&stack, &[&["held", "list"][..], &region].concat()).await;
    assert!(stdout.contains("0 deletions held"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Chime users made before the ledger are owned by no source: a cycle keeps them even when the
/// pool no longer lists them. `chime-sync adopt` (a dry run, then `--apply`) makes the pool
/// their owner; from then on the pool's absence deletes them.
async fn users_that_predate_ownership_are_kept_until_adopted() {
    let stack = Stack::start(chime_identity_fake::MissingAnswer::Forbidden, 4).await;
    let directory = {
        let mut config =
            chime_sync_aws::ChimeConfig::new(chime_sync_core::AppInstanceArn::parse(APP).unwrap());
        config.endpoint_url = Some(stack.fake.endpoint_url());
        chime_sync_aws::ChimeDirectory::new(&stack.moto.sdk_config(), config)
    };
    for u in stack.pool.active() {
        let profile = chime_sync_core::UserProfile {
            id: UserId::parse(&u.sub).unwrap(),
            name: chime_sync_core::DisplayName::parse(&u.name).unwrap(),
            metadata: None,
        };
        chime_sync_core::Directory::create(&directory, &profile)
            .await
            .unwrap();
    }
    let leaver = stack.pool.active().next().unwrap().clone();
    let cognito = cognito_client(&stack.moto);
    let adopt = [
        "adopt",
        "--user-pool-id",
        &stack.pool.id,
        "--app-instance-arn",
        APP,
        "--ledger-table",
        TABLE,
    ];
    let (code, stdout, stderr) = chime_sync(&stack, &adopt).await;
    let listed = stack.pool.active().count();
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("Would adopt {listed} Chime users for pool")),
        "{stdout}"
    );
    assert_eq!(
        owner(&stack.ledger, &leaver.sub).await,
        None,
        "a dry run records nothing"
    );

    testkit::cognito::delete_user(&cognito, &stack.pool.id, &leaver.username).await;
    let t = stack.cycle(1).await;
    assert_eq!(t["deletes"], 0, "owned by no source: kept ({t})");
    assert_eq!(stack.pending(&leaver.sub), Some(false));

    // Adopt those the pool still lists, then the next user to leave is deleted.
    let (code, stdout, stderr) = chime_sync(&stack, &[&adopt[..], &["--apply"]].concat()).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    let second = stack.pool.active().nth(1).unwrap().clone();
    assert_eq!(
        owner(&stack.ledger, &second.sub).await,
        Some(Source::pool())
    );
    testkit::cognito::delete_user(&cognito, &stack.pool.id, &second.username).await;
    let t = stack.cycle(2).await;
    assert_eq!(t["deletes"], 1, "{t}");
    assert_eq!(stack.pending(&second.sub), Some(true));
    assert_eq!(
        stack.pending(&leaver.sub),
        Some(false),
        "never adopted: still kept"
    );
}

/// A CloudFormation stack in moto holding only a `ReconcileFunction` with `env`: what
/// `--stack-name` reads (moto runs no code; the function is never invoked through it).
async fn stack_with_reconcile_function(moto: &Moto, stack: &str, env: &[(String, String)]) {
    let variables: serde_json::Map<String, Value> =
        env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let template = json!({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {
        "ReconcileRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
        "ReconcileFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "provided.al2023", "Handler": "bootstrap",
            "Role": {"Fn::GetAtt": ["ReconcileRole", "Arn"]},
            "Code": {"ZipFile": "not run"},
            "Environment": {"Variables": variables}}}}});
    aws_sdk_cloudformation::Client::new(&moto.sdk_config())
        .create_stack()
        .stack_name(stack)
        .template_body(template.to_string())
        .send()
        .await
        .expect("moto creates the stack");
}

/// What a change is called in the CLI's plan and in the function's messages.
fn change_of(kind: &str, sub: &str) -> (String, String) {
    let verb = match kind {
        "user.created" | "create" => "create",
        "user.updated" | "update" | "restore" => "update",
        _ => "delete",
    };
    (verb.to_owned(), sub.to_owned())
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The review command plans what the function plans: the CLI, given only the stack's name,
/// reads the reconcile function's settings (pool, AppInstance, ledger, protected ids, limits)
/// and plans against the same pool, Chime and ledger; the set of changes equals what the
/// function, invoked on the same state, publishes.
async fn the_review_command_plans_exactly_what_the_function_would(mode) {
    let stack = Stack::start(mode, 8).await;
    stack.cycle(1).await;
    let cognito = cognito_client(&stack.moto);
    let active: Vec<_> = stack.pool.active().cloned().collect();
    // A change of each kind: two leave, one is protected, one is renamed in Chime, a new
    // user joins the pool.
    for gone in &active[..2] {
        testkit::cognito::delete_user(&cognito, &stack.pool.id, &gone.username).await;
    }
    testkit::cognito::delete_user(&cognito, &stack.pool.id, &active[2].username).await;
    testkit::cognito::add_user(&cognito, &stack.pool.id, &stack.pool.client_id, 90).await;
    let env = stack_env(&stack.moto, &stack.fake, &[
        ("USER_POOL_ID", stack.pool.id.as_str()),
        ("SYNC_QUEUE_URL", stack.queues.queue_url.as_str()),
        ("PROTECTED_USER_IDS", active[2].sub.as_str()),
        ("DELETE_LIMIT", "1"),
        ("DELETE_LIMIT_PERCENT", "0"),
    ]);
    stack_with_reconcile_function(&stack.moto, "chat-sync", &env).await;
    let reconcile = start(RECONCILE, env).await;

    let (code, stdout, stderr) = chime_sync(&stack, &[
        "reconcile", "--stack-name", "chat-sync", "--region", "us-east-1",
        "--delete-missing", "--output", "json",
    ]).await;
    assert_eq!(code, Some(3), "two deletions, one allowed: withheld\n{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(doc["schema"], "chime-sync.reconcile/1");
    assert!(doc["settingsFrom"].as_str().unwrap().contains("chat-sync"), "{doc}");
    let planned: BTreeSet<(String, String)> = doc["changes"].as_array().unwrap().iter()
        .chain(doc["withheldChanges"].as_array().unwrap())
        .map(|c| change_of(c["action"].as_str().unwrap(), c["sub"].as_str().unwrap()))
        .collect();

    let response = reconcile.invoke(&json!({"id": "plan-equals"})).await.response().clone();
    assert_eq!(response["totals"]["withheld"], 2, "{response}");
    let mut published = BTreeSet::new();
    for m in receive(&stack.sqs, &stack.queues.queue_url, 10, 1).await {
        let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        published.insert(change_of(body["type"].as_str().unwrap(), body["user"]["sub"].as_str().unwrap()));
    }
    // The function publishes no withheld deletion; they are the plan's all the same.
    for gone in &active[..2] {
        published.insert(("delete".to_owned(), gone.sub.clone()));
    }
    assert!(!planned.is_empty());
    assert_eq!(planned, published, "the CLI's plan is the function's");
}
}
