//! The guard on its own: what it leaves in a plan and why.

use std::collections::BTreeSet;

use super::*;
use crate::identity::AppInstanceArn;
use crate::ledger::memory::InMemoryLedger;
use crate::memory::{InMemoryDirectory, MissingAnswer};
use crate::planner::{PlanOptions, plan};
use crate::profile::{DisplayName, UserProfile};
use crate::provisioning::Provisioning;

fn id(n: u32) -> UserId {
    UserId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
}

fn profile(n: u32) -> UserProfile {
    UserProfile {
        id: id(n),
        name: DisplayName::parse(&format!("User {n}")).unwrap(),
        metadata: None,
    }
}

fn settings(unowned: UnownedPolicy) -> GuardSettings {
    GuardSettings {
        source: Source::pool(),
        unowned,
        describe_concurrency: 3,
    }
}

async fn chime(n: u32, missing: MissingAnswer) -> InMemoryDirectory {
    let d = InMemoryDirectory::new(
        AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/g").unwrap(),
    );
    d.set_missing_answer(missing);
    for i in 0..n {
        d.create(&profile(i)).await.unwrap();
    }
    d
}

async fn guarded(
    d: &InMemoryDirectory,
    ledger: &InMemoryLedger,
    unowned: UnownedPolicy,
    enough: usize,
) -> Guarded {
    let listed = crate::directory::list_all(d).await.unwrap();
    let by_id: BTreeMap<UserId, DirectoryUser> =
        listed.iter().map(|u| (u.id.clone(), u.clone())).collect();
    let desired = Sorted::default();
    let p = plan(
        desired.active.values(),
        &listed,
        PlanOptions {
            delete_missing: true,
            protected: &BTreeSet::new(),
        },
    );
    let observed = Observed {
        desired: &desired,
        chime: &by_id,
        began: At(At::now().0 + 1_000),
        prefix: "",
    };
    guard(p, observed, d, ledger, &settings(unowned), enough)
        .await
        .unwrap()
}

#[tokio::test]
async fn screening_stops_early_but_every_deletion_stays_counted() {
    for missing in MissingAnswer::BOTH {
        let d = chime(30, missing).await;
        let ledger = InMemoryLedger::new();
        let g = guarded(&d, &ledger, UnownedPolicy::OwnedBy(Source::pool()), 5).await;
        assert_eq!(g.plan.deletions(), 30, "{missing:?}: none dropped");
        assert_eq!(g.describes, 6, "two chunks of three: then more than enough");
        assert_eq!(g.undescribed, 24);
    }
}

#[tokio::test]
async fn deletions_under_way_gone_or_unreadable_are_left_out_and_named() {
    let d = chime(4, MissingAnswer::Forbidden).await;
    d.schedule_deletion(&id(0), 7, d.now()).await.unwrap();
    d.fail_next_for(
        id(1),
        [crate::error::DirectoryError::Throttled("429".into())],
    );
    let listed_before_delete = chime(0, MissingAnswer::NotFound).await;
    drop(listed_before_delete);
    let ledger = InMemoryLedger::new();
    let g = guarded(&d, &ledger, UnownedPolicy::OwnedBy(Source::pool()), 100).await;
    assert_eq!(g.plan.deletions(), 2);
    assert_eq!(g.kept.0["deletion already scheduled"], 1);
    assert_eq!(g.kept.0["not described (error), kept this time"], 1);
}

#[tokio::test]
async fn unowned_users_are_kept_by_default_and_counted() {
    let d = chime(3, MissingAnswer::NotFound).await;
    let ledger = InMemoryLedger::new();
    let g = guarded(&d, &ledger, UnownedPolicy::Keep, 100).await;
    assert_eq!(g.plan.deletions(), 0);
    assert_eq!(g.kept.0["owned by no source (predates ownership), kept"], 3);
    assert_eq!(
        g.describes, 0,
        "no describe for a user that is not ours to delete"
    );
}
