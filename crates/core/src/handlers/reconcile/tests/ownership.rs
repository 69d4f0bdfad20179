//! The ownership and time scenarios of the reconcile function: users of
//! other sources survive the pool's absence, pending deletions of users who
//! are back are cancelled, users created while a cycle reads are not
//! deleted, and a continuation cannot widen the breaker.

use super::*;
use crate::ledger::{Change, ChangeKind, Ledger};

/// Deps whose unowned users are kept (the default of a deployment).
fn owned_deps(users: Vec<PoolUser>) -> Deps {
    let mut deps = deps(
        users,
        Settings {
            delete_mode: DeleteMode::Grace { days: 7 },
            ..Settings::default()
        },
    );
    deps.settings.unowned = UnownedPolicy::Keep;
    deps
}

/// A Chime user made by `source`, recorded in the ledger as its owner.
async fn made_by(deps: &Deps, n: u32, source: &Source) {
    create(&deps.directory, n, &format!("User {n}")).await;
    let change = Change {
        id: id(n),
        source: source.clone(),
        kind: ChangeKind::Create,
        at: Some(At(1_000)),
    };
    deps.ledger
        .record(&change, &UnownedPolicy::Keep, At(1_000))
        .await
        .unwrap();
}

fn pending(deps: &Deps, n: u32) -> (bool, bool) {
    let chime = deps
        .directory
        .users()
        .iter()
        .find(|u| u.id == id(n))
        .is_some_and(|u| u.deletion_pending());
    let marked = deps
        .ledger
        .get(&id(n))
        .is_some_and(|r| r.deletion.is_some());
    (chime, marked)
}

async fn cycle(deps: &Deps, name: &str) -> RunReport {
    let sent = deps.queue.sent().len();
    let start = Start::Fresh {
        cycle: name.to_owned(),
    };
    let report = run(start, deps, None).await.unwrap();
    drain(deps, sent, deps.settings.delete_mode).await;
    report
}

#[tokio::test(start_paused = true)]
async fn users_of_other_sources_survive_ten_cycles_against_a_pool_that_lacks_them() {
    let deps = owned_deps(pool(20));
    made_by(&deps, 900, &Source::issuer("okta").unwrap()).await;
    made_by(&deps, 901, &Source::feed(Some("workday")).unwrap()).await;
    made_by(&deps, 902, &Source::pool()).await; // gone from the pool
    create(&deps.directory, 903, "Before ownership").await; // no record at all
    for n in 1..=10 {
        let report = cycle(&deps, &format!("c{n}")).await;
        if n == 1 {
            assert_eq!(report.totals.deletes, 1, "{:?}", report.left_out);
            assert_eq!(report.left_out["owned by issuer:okta, kept"], 1);
            assert_eq!(report.left_out["owned by feed:workday, kept"], 1);
            assert_eq!(
                report.left_out["owned by no source (predates ownership), kept"],
                1
            );
        } else {
            assert_eq!(report.totals.deletes, 0, "cycle {n}: {:?}", report.totals);
            assert_eq!(report.totals.withheld, 0);
        }
    }
    for n in [900, 901, 903] {
        assert_eq!(pending(&deps, n), (false, false), "user {n}");
    }
    assert_eq!(pending(&deps, 902), (true, true), "the pool's own user");
}

#[tokio::test(start_paused = true)]
async fn a_user_absent_then_present_ends_with_no_pending_deletion() {
    let users = pool(20);
    let deps = owned_deps(users.clone());
    cycle(&deps, "c0").await; // creates the pool's users, owned by the pool
    let bob = 4;
    let without_bob: Vec<PoolUser> = users
        .iter()
        .filter(|u| u.sub() != Some(sub(bob).as_str()))
        .cloned()
        .collect();
    deps.pool.set_users(without_bob);
    assert_eq!(cycle(&deps, "c1").await.totals.deletes, 1);
    assert_eq!(pending(&deps, bob), (true, true));
    deps.pool.set_users(users);
    let report = cycle(&deps, "c2").await;
    assert_eq!(
        (report.totals.restores, report.totals.marked),
        (1, 1),
        "{:?}",
        report.totals
    );
    assert_eq!(pending(&deps, bob), (false, false));
    let again = cycle(&deps, "c3").await;
    assert_eq!((again.totals.restores, again.totals.marked), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_disabled_user_enabled_again_has_its_deletion_cancelled() {
    let deps = owned_deps(pool(20));
    cycle(&deps, "c0").await;
    let mut users = pool(20);
    users[6].enabled = false;
    deps.pool.set_users(users.clone());
    cycle(&deps, "c1").await;
    assert_eq!(pending(&deps, 6), (true, true));
    users[6].enabled = true;
    deps.pool.set_users(users);
    assert_eq!(cycle(&deps, "c2").await.totals.restores, 1);
    assert_eq!(pending(&deps, 6), (false, false));
}

#[tokio::test(start_paused = true)]
async fn a_user_confirmed_while_the_cycle_reads_is_not_deleted() {
    let deps = owned_deps(pool(10));
    cycle(&deps, "c0").await;
    // Confirmed after the cycle began: Chime lists it, the pool read missed
    // it. Without a record (the describe shows its creation time)...
    deps.directory.advance_clock(Duration::from_secs(3600));
    create(&deps.directory, 950, "New").await;
    deps.ledger
        .set_owner(&id(950), &Source::pool())
        .await
        .unwrap();
    // ...and with the one post-confirmation writes (its change time).
    made_by(&deps, 951, &Source::pool()).await;
    let later = Change {
        id: id(951),
        source: Source::pool(),
        kind: ChangeKind::Create,
        at: Some(At(At::now().0 + 3_600_000)),
    };
    deps.ledger
        .record(&later, &UnownedPolicy::Keep, At::now())
        .await
        .unwrap();
    let report = cycle(&deps, "c1").await;
    assert_eq!(report.totals.deletes, 0, "{:?}", report.left_out);
    assert_eq!(report.left_out["created after this pass began, kept"], 1);
    assert_eq!(report.left_out["changed after this pass began, kept"], 1);
    assert_eq!(
        (pending(&deps, 950), pending(&deps, 951)),
        ((false, false), (false, false))
    );
}

#[tokio::test(start_paused = true)]
async fn a_forged_continuation_cannot_raise_the_deletions_allowed() {
    let deps = owned_deps(pool(20));
    for n in 0..200 {
        made_by(&deps, 20_000 + n, &Source::pool()).await;
    }
    let fresh = run(fresh(), &deps, None).await.unwrap();
    assert_eq!(
        (fresh.totals.deletes_planned, fresh.totals.withheld),
        (200, 200)
    );
    let mut forged = serde_json::to_value(Continuation::fresh("f".into(), At::now(), 1)).unwrap();
    forged["totals"]["chimeUsers"] = json!(1_000_000_000_000u64);
    forged["tripped"] = json!(false);
    let start = start_from(&json!({ "continuation": forged }), SystemTime::now()).unwrap();
    let report = run(start, &deps, None).await.unwrap();
    assert_eq!(report.totals.withheld, 200, "{:?}", report.totals);
    assert_eq!(report.totals.deletes, 0);
    assert_eq!(
        report.totals.allowed, 50,
        "allowed by the users this invocation listed"
    );
    // A continuation carrying more than a page, or a cycle from the future,
    // is refused outright.
    let mut carried = serde_json::to_value(Continuation::fresh("f".into(), At::now(), 16)).unwrap();
    carried["carried"] = json!(
        (0..51)
            .map(|n| json!({"id": sub(n), "name": "x", "metadata": ""}))
            .collect::<Vec<_>>()
    );
    let start = start_from(&json!({ "continuation": carried }), SystemTime::now()).unwrap();
    assert!(matches!(
        run(start, &deps, None).await,
        Err(ReconcileError::BadContinuation(_))
    ));
    let future = Continuation::fresh("f".into(), At(At::now().0 + 86_400_000), 1);
    let result = run(Start::Continue(Box::new(future)), &deps, None).await;
    assert!(matches!(result, Err(ReconcileError::BadContinuation(_))));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_counts_every_deletion_the_listing_plans() {
    // 1,000 of 2,000 users missing from the pool: the count is 1,000, not
    // the limit plus one, and every one of them is withheld.
    let users: Vec<PoolUser> = (0..1000).map(|n| pool_user(n, "CONFIRMED", true)).collect();
    let deps = owned_deps(users);
    for n in 0..2000 {
        made_by(&deps, n, &Source::pool()).await;
    }
    let report = run(fresh(), &deps, None).await.unwrap();
    let t = report.totals;
    assert_eq!(
        (t.deletes_planned, t.withheld, t.deletes),
        (1000, 1000, 0),
        "{t:?}"
    );
    assert_eq!(t.allowed, 100);
    assert!(
        t.describes < 1000,
        "screening stopped early: {}",
        t.describes
    );
    let message = breaker_message(t.deletes_planned, t.withheld, t.allowed, t.chime_users);
    assert!(
        message.contains("1000 deletions planned, at most 100 allowed"),
        "{message}"
    );
}
