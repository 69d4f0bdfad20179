//! The reconcile function's handler against the in-memory pool, directory,
//! ledger and queue; the published messages are applied as idp-sync applies
//! them ([`crate::sync`]), so "Chime equals the pool's active users" is
//! checked end to end in memory. Most tests here predate ownership and run
//! with `UNOWNED_USERS=pool` (what every deployment did before); the
//! ownership scenarios are in `ownership.rs`.

mod ownership;

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::identity::AppInstanceArn;
use crate::ledger::memory::InMemoryLedger;
use crate::memory::{InMemoryDirectory, InMemoryQueue, InMemoryUserPool};
use crate::profile::{DisplayName, UserProfile};
use crate::schema::parse_body;
use crate::sync::{self, ChimeCount, SyncRules};
use crate::user_pool::PoolUser;

fn sub(n: u32) -> String {
    // Spread over the 256 two-digit prefixes.
    format!("{:02x}{n:06x}-0000-4000-8000-{n:012x}", (n * 37) % 256)
}

fn id(n: u32) -> UserId {
    UserId::parse(&sub(n)).unwrap()
}

fn pool_user(n: u32, status: &str, enabled: bool) -> PoolUser {
    PoolUser::from_json(
        &json!({"Username": format!("user{n}"), "UserStatus": status, "Enabled": enabled,
        "Attributes": [{"Name": "sub", "Value": sub(n)}, {"Name": "name", "Value": format!("User {n}")}]}),
    )
}

/// A pool of `n` users: every fifth inactive (unconfirmed, disabled, …).
fn pool(n: u32) -> Vec<PoolUser> {
    (0..n)
        .map(|i| match i % 10 {
            1 => pool_user(i, "UNCONFIRMED", true),
            3 => pool_user(i, "CONFIRMED", false),
            5 => pool_user(i, "EXTERNAL_PROVIDER", true),
            7 => pool_user(i, "FORCE_CHANGE_PASSWORD", true),
            9 => pool_user(i, "RESET_REQUIRED", true),
            _ => pool_user(i, "CONFIRMED", true),
        })
        .collect()
}

fn active(n: u32) -> bool {
    !matches!(n % 10, 1 | 3)
}

fn directory() -> InMemoryDirectory {
    InMemoryDirectory::new(
        AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/t").unwrap(),
    )
}

type Deps = Reconcile<InMemoryUserPool, InMemoryDirectory, InMemoryQueue, InMemoryLedger>;

/// Settings as these tests mean them: unowned users are the pool's.
fn legacy(settings: Settings) -> Settings {
    Settings {
        unowned: UnownedPolicy::OwnedBy(Source::pool()),
        ..settings
    }
}

fn deps(users: Vec<PoolUser>, settings: Settings) -> Deps {
    Reconcile {
        pool: InMemoryUserPool::new(users),
        directory: directory(),
        queue: InMemoryQueue::new(),
        ledger: InMemoryLedger::new(),
        settings: Settings {
            pool_rate: 1000.0,
            ..legacy(settings)
        },
    }
}

/// Settings that delete at once, the others their defaults.
fn immediate() -> Settings {
    Settings {
        delete_mode: DeleteMode::Immediate,
        ..Settings::default()
    }
}

/// [`deps`] deleting at once, reading one ListUsers call a second with a 1 s margin: a pool
/// of `users` that takes several invocations.
fn slow_reading(users: u32, shards: ShardSetting) -> Deps {
    let deps = deps(
        pool(users),
        Settings {
            shards,
            read_margin: Duration::from_secs(1),
            ..immediate()
        },
    );
    Reconcile {
        settings: Settings {
            pool_rate: 1.0,
            ..deps.settings
        },
        ..deps
    }
}

async fn create(d: &InMemoryDirectory, n: u32, name: &str) {
    d.create(&UserProfile {
        id: id(n),
        name: DisplayName::parse(name).unwrap(),
        metadata: None,
    })
    .await
    .unwrap();
}

fn fresh() -> Start {
    Start::Fresh {
        cycle: "c1".to_owned(),
    }
}

/// Apply every message sent since `sent_before` as idp-sync applies them.
async fn drain(deps: &Deps, sent_before: usize, mode: DeleteMode) -> Vec<(String, String)> {
    let rules = SyncRules {
        delete_mode: mode,
        unowned: deps.settings.unowned.clone(),
        feed_breaker: None,
    };
    let mut changes = Vec::new();
    for m in deps.queue.sent().into_iter().skip(sent_before) {
        let message = parse_body(&m.body).unwrap();
        assert_eq!(
            m.group_id,
            message.event.user_id().to_string(),
            "group = sub"
        );
        assert_eq!(m.deduplication_id, message.event_id.clone().unwrap());
        let outcome = sync::apply_message(
            &deps.directory,
            &deps.ledger,
            &rules,
            &ChimeCount::default(),
            &message,
            SystemTime::now(),
        )
        .await
        .unwrap();
        changes.push((
            message.event.type_name().to_owned(),
            message.event.user_id().to_string(),
        ));
        let _ = outcome;
    }
    changes
}

fn chime_ids(d: &InMemoryDirectory) -> Vec<String> {
    d.users()
        .into_iter()
        .filter(|u| !u.deletion_pending())
        .map(|u| u.id.to_string())
        .collect()
}

fn expected_ids(n: u32, extra: &[u32]) -> Vec<String> {
    let mut ids: Vec<String> = (0..n)
        .filter(|i| active(*i))
        .chain(extra.iter().copied())
        .map(sub)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(start_paused = true)]
async fn a_run_converges_chime_on_the_pool_and_a_second_publishes_nothing() {
    for mode in [DeleteMode::Immediate, DeleteMode::Grace { days: 7 }] {
        for shards in [
            ShardSetting::Fixed(1),
            ShardSetting::Fixed(16),
            ShardSetting::Fixed(256),
        ] {
            let deps = deps(
                pool(400),
                Settings {
                    delete_mode: mode,
                    shards,
                    protected: BTreeSet::from([sub(9001)]),
                    ..Settings::default()
                },
            );
            // Chime: a stale name, a disabled user, users gone from the pool, a protected one.
            create(&deps.directory, 0, "Old name").await;
            create(&deps.directory, 3, "User 3").await;
            for gone in [5000, 5001, 9001] {
                create(&deps.directory, gone, "Gone").await;
            }
            let report = run(fresh(), &deps, None).await.unwrap();
            assert!(report.done, "{mode:?} {shards:?}");
            let t = report.totals;
            assert_eq!(
                (t.creates, t.updates, t.deletes),
                (319, 1, 3),
                "{mode:?} {shards:?}: {t:?}"
            );
            assert_eq!(t.pool_users, 400);
            assert_eq!(t.protected, 1);
            assert_eq!(report.left_out["status UNCONFIRMED"], 40);
            assert_eq!(report.left_out["disabled"], 40);
            let changes = drain(&deps, 0, mode).await;
            assert_eq!(changes.len(), 323);
            assert_eq!(
                chime_ids(&deps.directory),
                expected_ids(400, &[9001]),
                "{mode:?} {shards:?}"
            );
            assert_eq!(
                deps.directory
                    .users()
                    .iter()
                    .find(|u| u.id == id(0))
                    .unwrap()
                    .name,
                "User 0"
            );

            let sent = deps.queue.sent().len();
            let again = run(Start::Fresh { cycle: "c2".into() }, &deps, None)
                .await
                .unwrap();
            assert_eq!(
                deps.queue.sent().len(),
                sent,
                "{mode:?} {shards:?}: {:?}",
                again.totals
            );
            if let DeleteMode::Grace { .. } = mode {
                assert_eq!(
                    again.totals.pending, 3,
                    "scheduled deletions are not planned again"
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_withholds_every_deletion_above_its_limit_and_publishes_the_rest() {
    for (gone, withheld) in [(50, 0), (51, 51)] {
        let deps = deps(pool(20), immediate());
        for n in 0..gone {
            create(&deps.directory, 10_000 + n, "Gone").await;
        }
        let report = run(fresh(), &deps, None).await.unwrap();
        let t = report.totals;
        assert_eq!(
            (t.deletes_planned, t.withheld),
            (u64::from(gone), withheld),
            "{t:?}"
        );
        assert_eq!(t.creates, 16, "creates are published either way");
        let deleted = deps
            .queue
            .sent()
            .iter()
            .filter(|m| m.body.contains("user.deleted"))
            .count();
        assert_eq!(deleted as u64, u64::from(gone) - withheld);
    }
}

#[test]
fn the_breaker_message_names_the_counts_and_the_release() {
    let message = breaker_message(120, 120, 50, 1000);
    assert!(
        message.contains("120 deletions planned, at most 50 allowed"),
        "{message}"
    );
    assert!(message.contains("of 1000 Chime users"), "{message}");
    assert!(message.contains("--allow-deletes N"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn an_invocation_counts_what_it_published_and_withheld_beyond_where_it_began() {
    let deps = deps(pool(20), immediate());
    for n in 0..51 {
        create(&deps.directory, 10_000 + n, "Gone").await;
    }
    let result = run(fresh(), &deps, None).await;
    let m = metrics(&Totals::default(), &result, &deps.directory);
    assert_eq!(
        (
            m.count(Metric::CreatesPublished),
            m.count(Metric::DeletesPublished),
            m.count(Metric::DeletionsWithheld),
            m.count(Metric::Failed),
        ),
        (16, 0, 51, 0)
    );
    // A continuation's figures are what this invocation added.
    let before = Totals {
        creates: 10,
        withheld: 51,
        ..Totals::default()
    };
    let m = metrics(&before, &result, &deps.directory);
    assert_eq!(
        (
            m.count(Metric::CreatesPublished),
            m.count(Metric::DeletionsWithheld)
        ),
        (6, 0)
    );
    let failed: Result<RunReport, ReconcileError> =
        Err(ReconcileError::BadContinuation("x".to_owned()));
    let m = metrics(&Totals::default(), &failed, &deps.directory);
    assert_eq!(m.count(Metric::Failed), 1);
    let doc = m.emf("stack-Reconcile-1", UNIX_EPOCH).documents().unwrap();
    assert_eq!(
        doc[0]["DeletionsWithheld"], 0,
        "declared counts are published at zero"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unusable_or_empty_listing_deletes_nothing() {
    let mut users = pool(10);
    users.push(PoolUser::from_json(
        &json!({"Username": "x", "UserStatus": "CONFIRMED", "Enabled": true, "Attributes": []}),
    ));
    let deps = deps(users, immediate());
    create(&deps.directory, 7777, "Gone").await;
    let t = run(fresh(), &deps, None).await.unwrap().totals;
    assert_eq!((t.creates, t.deletes, t.refused), (8, 0, 1), "{t:?}");

    let empty = self::deps(Vec::new(), immediate());
    create(&empty.directory, 7777, "Kept").await;
    let t = run(fresh(), &empty, None).await.unwrap().totals;
    assert_eq!((t.deletes, t.refused), (0, 1));
    assert!(empty.queue.sent().is_empty());
}

/// Run to the end, invocation after invocation, each with `budget` before
/// its deadline; the number of invocations.
async fn run_to_the_end(deps: &Deps, budget: Duration) -> (u32, Vec<RunReport>) {
    let mut start = fresh();
    let mut reports = Vec::new();
    for invocation in 1..=200 {
        let report = run(start, deps, Some(Instant::now() + budget))
            .await
            .unwrap();
        let done = report.done;
        let next = report.continuation.clone();
        // The continuation goes through JSON, as through the state machine.
        let answer = serde_json::to_value(&report).unwrap();
        reports.push(report);
        if done {
            return (invocation, reports);
        }
        assert_eq!(answer["done"], false);
        start = start_from(&answer, SystemTime::now()).unwrap();
        assert_eq!(start, Start::Continue(Box::new(next.unwrap())));
    }
    panic!("did not finish in 200 invocations");
}

#[tokio::test(start_paused = true)]
async fn a_pool_larger_than_an_invocation_continues_where_it_stopped() {
    // 16 shards, one ListUsers call a second: about 16 s of reading; each
    // invocation has 5 s before its margin.
    let deps = slow_reading(600, ShardSetting::Fixed(16));
    for gone in [6000, 6001] {
        create(&deps.directory, gone, "Gone").await;
    }
    let (invocations, reports) = run_to_the_end(&deps, Duration::from_secs(6)).await;
    assert!(invocations >= 3, "{invocations}");
    let last = reports.last().unwrap();
    assert_eq!(last.shards_done, 16);
    assert_eq!(
        (
            last.totals.creates,
            last.totals.deletes,
            last.totals.pool_users
        ),
        (480, 2, 600)
    );
    drain(&deps, 0, DeleteMode::Immediate).await;
    assert_eq!(chime_ids(&deps.directory), expected_ids(600, &[]));
    // Every change published once, though the cycle took several invocations.
    let mut dedup: Vec<String> = deps
        .queue
        .sent()
        .iter()
        .map(|m| m.deduplication_id.clone())
        .collect();
    let before = dedup.len();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), before);
}

#[tokio::test(start_paused = true)]
async fn auto_starts_unsharded_and_reshards_a_pool_that_does_not_fit() {
    let deps = slow_reading(1200, ShardSetting::Auto);
    // Unsharded, 1,200 users take 20 calls: more than 10 s.
    let (_, reports) = run_to_the_end(&deps, Duration::from_secs(11)).await;
    assert_eq!(reports[0].continuation.as_ref().unwrap().shards, 16);
    assert_eq!(reports[0].shards_done, 0);
    let last = reports.last().unwrap();
    assert_eq!((last.shards, last.totals.creates), (16, 960));
}

#[tokio::test(start_paused = true)]
async fn throttling_slows_the_read_and_the_run_still_finishes() {
    let deps = deps(pool(300), immediate());
    deps.pool.throttle_next(4);
    let report = run(fresh(), &deps, None).await.unwrap();
    assert!(report.done);
    assert_eq!(report.totals.cognito_throttled, 4);
    assert_eq!(report.totals.cognito_calls, 9);
    assert_eq!(report.totals.creates, 240);
}

/// A directory that lists newest first: not in id order.
struct Reversed(InMemoryDirectory);

impl Directory for Reversed {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        self.0.app_instance_arn()
    }
    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        self.0.create(user).await
    }
    async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.0.describe(id).await
    }
    async fn update(&self, id: &UserId, n: &str, m: &str) -> Result<(), DirectoryError> {
        self.0.update(id, n, m).await
    }
    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.0.delete(id).await
    }
    async fn list(
        &self,
        _: Option<String>,
    ) -> Result<crate::directory::DirectoryPage, DirectoryError> {
        let mut users: Vec<DirectoryUser> = self.0.users();
        users.reverse();
        Ok(crate::directory::DirectoryPage {
            users,
            next_token: None,
            foreign: 0,
        })
    }
    async fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<crate::directory::Expiration>,
    ) -> Result<Option<crate::directory::Expiration>, DirectoryError> {
        self.0.put_expiration(id, expiration).await
    }
    fn take_call_stats(&self) -> crate::metrics::CallStats {
        self.0.take_call_stats()
    }
}

#[tokio::test(start_paused = true)]
async fn a_sharded_run_stops_when_chime_lists_out_of_order_and_an_unsharded_one_does_not_care() {
    for shards in [1, 16] {
        let deps = Reconcile {
            pool: InMemoryUserPool::new(pool(20)),
            directory: Reversed(directory()),
            queue: InMemoryQueue::new(),
            ledger: InMemoryLedger::new(),
            settings: Settings {
                shards: ShardSetting::Fixed(shards),
                delete_mode: DeleteMode::Immediate,
                pool_rate: 1000.0,
                ..Settings::default()
            },
        };
        for n in [0, 2, 4, 6] {
            create(&deps.directory.0, n, &format!("User {n}")).await;
        }
        let result = run(fresh(), &deps, None).await;
        if shards == 1 {
            assert_eq!(result.unwrap().totals.creates, 12);
        } else {
            assert!(
                matches!(result, Err(ReconcileError::OutOfOrder { .. })),
                "{result:?}"
            );
        }
    }
}

#[test]
fn an_invocation_event_starts_or_continues_a_cycle() {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let scheduled = json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-20T10:00:00Z", "detail": {}});
    let Start::Fresh { cycle } = start_from(&scheduled, now).unwrap() else {
        panic!()
    };
    assert_eq!(cycle.len(), 12);
    assert_eq!(
        start_from(&scheduled, now).unwrap(),
        Start::Fresh {
            cycle: cycle.clone()
        },
        "stable"
    );
    assert!(matches!(
        start_from(&json!({}), now).unwrap(),
        Start::Fresh { .. }
    ));
    let c = Continuation::fresh("c".into(), At(1_800_000_000_000), 16);
    let event = json!({"done": false, "continuation": c});
    assert_eq!(
        start_from(&event, now).unwrap(),
        Start::Continue(Box::new(c))
    );
    assert!(start_from(&json!({"continuation": {"shards": "x"}}), now).is_err());
}
