//! A first reconcile of a pool of thousands, drained under Chime faults: the
//! reconcile handler (the real `CognitoUserPool` against the quota-enforcing
//! Cognito fake, the real `ChimeDirectory` against the Chime fake) publishes
//! its plan to the SQS simulator, and idp-sync drains it through the
//! simulated event source mapping while about 30 % of Chime's answers are
//! faults (throttling, 500, 503, dropped connections, responses lost after
//! the change was applied). Chime ends equal to the pool's active users, and
//! a second reconcile publishes nothing.

use testkit::esm_driver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, FaultConfig, ScriptedFault};
use chime_sync_aws::{CognitoConfig, CognitoUserPool, UserPoolId};
use chime_sync_core::directory::DeleteMode;
use chime_sync_core::handlers::idp_sync::IdpSync;
use chime_sync_core::handlers::reconcile::{self, Reconcile, Settings, Start};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::ledger::{Source, UnownedPolicy};
use chime_sync_core::sync::SyncRules;
use chime_sync_core::{Directory, DisplayName, UserId, UserProfile};
use esm_driver::{Driver, chime_directory, drain, fake_users, static_sdk_config};
use sqs_sim::lambda::EventSourceMapping;
use sqs_sim::{QueueConfig, SimQueue, SplitMix64, Sqs, TokioClock};
use testkit::cognito_fake::{FakeCognito, USER_LIST_QUOTA_RPS, user};
use testkit::in_both_missing_user_modes;

const POOL: &str = "us-east-1_FaultRun1";
const QUEUE: &str = "sync.fifo";
const DLQ: &str = "sync-dlq.fifo";
const USERS: u32 = 2_000;
const GONE: u32 = 40;

fn sub(n: u32) -> String {
    format!("{:02x}{n:06x}-0000-4000-8000-{n:012x}", (n * 53) % 256)
}

/// Every fifth user inactive: unconfirmed or disabled.
fn status(n: u32) -> (&'static str, bool) {
    match n % 10 {
        1 => ("UNCONFIRMED", true),
        3 => ("CONFIRMED", false),
        5 => ("EXTERNAL_PROVIDER", true),
        7 => ("FORCE_CHANGE_PASSWORD", true),
        _ => ("CONFIRMED", true),
    }
}

fn active(n: u32) -> bool {
    let (status, enabled) = status(n);
    enabled && status != "UNCONFIRMED"
}

/// One second of faults: about 30 % of Chime's answers.
fn faults(seed: u64) -> FaultConfig {
    let mut rng = SplitMix64::new(seed);
    let script: Vec<ScriptedFault> = (0..4000)
        .map(|_| match rng.below(100) {
            0..10 => ScriptedFault::Throttle,
            10..16 => ScriptedFault::ServiceFailure,
            16..22 => ScriptedFault::ServiceUnavailable,
            22..27 => ScriptedFault::Drop,
            27..30 => ScriptedFault::ApplyThenDrop,
            _ => ScriptedFault::Pass,
        })
        .collect();
    FaultConfig::none()
        .with_script(script)
        .with_drop_rate(0.05)
        .with_service_failure_rate(0.08)
        .with_service_unavailable_rate(0.08)
        .with_lost_response_rate(0.05)
        .with_seed(seed)
}

async fn fault_phases(fake: &FakeChimeHandle) {
    for phase in 0u64.. {
        fake.set_faults(faults(0xFA17_0000 + phase))
            .expect("valid faults");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// These users predate ownership (made in Chime directly): the pool owns them.
fn settings() -> Settings {
    Settings {
        delete_mode: DeleteMode::Grace { days: 7 },
        unowned: UnownedPolicy::OwnedBy(Source::pool()),
        ..Settings::default()
    }
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_reconcile_drained_under_thirty_percent_faults_ends_equal_to_the_pool(mode) {
    let cognito = FakeCognito::start(USER_LIST_QUOTA_RPS).await.unwrap();
    cognito.set_users(
        POOL,
        (0..USERS)
            .map(|n| {
                let (status, enabled) = status(n);
                user(&format!("u{n}"), &sub(n), status, enabled, Some(&format!("User {n}")))
            })
            .collect(),
    );
    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode)).await.unwrap();
    let directory = chime_directory(&fake, |c| {
        c.operation_timeout = Duration::from_millis(500);
        c.max_attempts = 3;
        c.initial_backoff = Duration::from_millis(5);
        c.max_backoff = Duration::from_millis(40);
    });
    // Chime before: users gone from the pool, to be deleted.
    for n in 0..GONE {
        directory
            .create(&UserProfile {
                id: UserId::parse(&sub(100_000 + n)).unwrap(),
                name: DisplayName::parse("Gone").unwrap(),
                metadata: None,
            })
            .await
            .unwrap();
    }
    let sqs = Arc::new(Sqs::new(Arc::new(TokioClock::new()), 7));
    sqs.create_queue(QueueConfig::fifo(DLQ).with_content_based_deduplication(true)).unwrap();
    sqs.create_queue(
        QueueConfig::fifo(QUEUE)
            .with_visibility_timeout(Duration::from_secs(2))
            .with_redrive(DLQ, 50),
    )
    .unwrap();
    let pool = CognitoUserPool::new(
        &static_sdk_config(),
        CognitoConfig {
            endpoint_url: Some(cognito.endpoint_url()),
            ..CognitoConfig::new(UserPoolId::parse(POOL).unwrap())
        },
    );
    let ledger = InMemoryLedger::new();
    let deps = Reconcile {
        pool,
        directory,
        queue: SimQueue::new(sqs.clone(), QUEUE),
        ledger: &ledger,
        settings: settings(),
    };
    let start = Start::Fresh { cycle: "faults".into() };
    let report = reconcile::run(start, &deps, None).await.unwrap();
    let expected_active = (0..USERS).filter(|n| active(*n)).count() as u64;
    assert!(report.done);
    assert_eq!(
        (report.totals.creates, report.totals.deletes, report.totals.pool_users),
        (expected_active, u64::from(GONE), u64::from(USERS))
    );
    assert!(report.totals.cognito_calls >= 34, "{:?}", report.totals);
    assert_eq!(sqs.depth(QUEUE).unwrap().total() as u64, expected_active + u64::from(GONE));

    // idp-sync drains the queue while about 30 % of Chime's answers are faults.
    let idp = IdpSync {
        max_concurrent_groups: 10,
        deadline_margin: Duration::from_millis(100),
        rules: SyncRules {
            delete_mode: DeleteMode::Grace { days: 7 },
            unowned: settings().unowned,
            feed_breaker: None,
        },
        ..IdpSync::new(&deps.directory, SimQueue::new(sqs.clone(), DLQ), &ledger)
    };
    let driver = Driver {
        pollers: 4,
        function_timeout: Duration::from_millis(1500),
        visibility_timeout: Duration::from_secs(2),
        ..Driver::default()
    };
    let esm = EventSourceMapping::new(QUEUE);
    let drained = tokio::time::timeout(Duration::from_secs(600), async {
        tokio::select! {
            report = drain(&sqs, &esm, &idp, &driver) => report,
            () = fault_phases(&fake) => unreachable!("the fault phases never end"),
        }
    })
    .await
    .expect("the queue drained within 10 minutes");
    fake.set_faults(FaultConfig::none()).unwrap();
    let injected: u64 = fake
        .counters()
        .0
        .values()
        .map(|c| {
            let i = c.injected;
            i.throttled + i.service_failures + i.service_unavailable + i.dropped + i.lost_responses
        })
        .sum();
    let attempts = fake.counters().total_attempts();
    eprintln!(
        "drained {} messages in {} invocations; {injected} of {attempts} Chime requests faulted; outcomes {:?}",
        drained.messages_handled, drained.invocations, drained.outcomes
    );
    assert!(injected * 100 >= attempts * 20, "faults were injected: {injected} of {attempts}");
    assert_eq!(sqs.depth(DLQ).unwrap().total(), 0, "nothing dead-lettered: {:?}", drained.outcomes);

    let users = fake_users(&fake);
    let kept: BTreeMap<String, String> = users
        .iter()
        .filter(|(_, u)| u.expiration.is_none())
        .map(|(id, u)| (id.clone(), u.name.clone()))
        .collect();
    let expected: BTreeMap<String, String> = (0..USERS)
        .filter(|n| active(*n))
        .map(|n| (sub(n), format!("User {n}")))
        .collect();
    assert_eq!(kept, expected, "Chime equals the pool's active users");
    let pending: BTreeSet<String> = users
        .iter()
        .filter(|(_, u)| u.expiration.is_some())
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(pending, (0..GONE).map(|n| sub(100_000 + n)).collect());

    // A second reconcile finds nothing to publish.
    let before = sqs.stats(QUEUE).unwrap().sent;
    let again = reconcile::run(Start::Fresh { cycle: "again".into() }, &deps, None).await.unwrap();
    assert_eq!((again.totals.creates, again.totals.updates, again.totals.deletes), (0, 0, 0));
    assert_eq!(again.totals.pending, u64::from(GONE));
    assert_eq!(sqs.stats(QUEUE).unwrap().sent, before);
}
}
