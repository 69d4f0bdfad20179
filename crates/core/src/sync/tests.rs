//! One change through the ledger and the directory, for each rule, in both
//! of the in-memory directory's missing-user answers.

use super::*;
use crate::identity::{AppInstanceArn, UserId};
use crate::ledger::memory::InMemoryLedger;
use crate::ledger::{LedgerError, Source};
use crate::memory::{InMemoryDirectory, MissingAnswer};
use crate::schema::parse_body;
use serde_json::json;

fn sub(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn directory(missing: MissingAnswer) -> InMemoryDirectory {
    let d = InMemoryDirectory::new(
        AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/s").unwrap(),
    );
    d.set_missing_answer(missing);
    d
}

fn message(
    kind: &str,
    n: u32,
    source: &str,
    at: Option<&str>,
    extra: serde_json::Value,
) -> IdpMessage {
    let mut m = json!({"version": 1, "type": kind, "source": source,
                       "user": {"sub": sub(n), "displayName": format!("User {n}")}});
    if let Some(at) = at {
        m["occurredAt"] = json!(at);
    }
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    parse_body(&m.to_string()).unwrap()
}

fn rules() -> SyncRules {
    SyncRules {
        delete_mode: DeleteMode::Immediate,
        ..SyncRules::default()
    }
}

async fn apply(
    d: &InMemoryDirectory,
    l: &InMemoryLedger,
    rules: &SyncRules,
    m: &IdpMessage,
) -> Result<SyncOutcome, SyncError> {
    apply_message(d, l, rules, &ChimeCount::default(), m, SystemTime::now()).await
}

const T1: &str = "2026-11-20T10:00:00Z";
const T2: &str = "2026-11-21T10:00:00Z";

#[tokio::test]
async fn a_redriven_old_deletion_is_stale_and_touches_nothing() {
    for missing in MissingAnswer::BOTH {
        let (d, l) = (directory(missing), InMemoryLedger::new());
        let created = message("user.created", 1, "feed", Some(T2), json!({}));
        assert_eq!(
            apply(&d, &l, &rules(), &created).await,
            Ok(SyncOutcome::Applied(Applied::Created))
        );
        let old = message("user.deleted", 1, "feed", Some(T1), json!({}));
        let before = d.calls();
        let outcome = apply(&d, &l, &rules(), &old).await.unwrap();
        assert!(
            matches!(outcome, SyncOutcome::Refused(Refusal::Stale { .. })),
            "{outcome:?}"
        );
        assert_eq!(outcome.as_str(), "stale");
        assert_eq!(d.calls(), before, "{missing:?}: no Chime call");
        assert_eq!(d.users().len(), 1);
    }
}

#[tokio::test]
async fn an_absence_deletes_only_what_its_source_owns() {
    for missing in MissingAnswer::BOTH {
        let (d, l) = (directory(missing), InMemoryLedger::new());
        for (n, source) in [(1, "feed:workday"), (2, "pool")] {
            let m = message("user.created", n, source, Some(T1), json!({}));
            apply(&d, &l, &rules(), &m).await.unwrap();
        }
        for n in [1, 2] {
            let m = message(
                "user.deleted",
                n,
                "pool",
                Some(T2),
                json!({"reason": "absent"}),
            );
            let outcome = apply(&d, &l, &rules(), &m).await.unwrap();
            let expected = if n == 1 { "not-owner" } else { "deleted" };
            assert_eq!(outcome.as_str(), expected, "{missing:?} user {n}");
        }
        let left: Vec<_> = d.users().iter().map(|u| u.id.to_string()).collect();
        assert_eq!(left, [sub(1)]);
    }
}

#[tokio::test]
async fn an_explicit_deletion_deletes_a_user_another_source_owns() {
    let (d, l) = (directory(MissingAnswer::NotFound), InMemoryLedger::new());
    let m = message("user.created", 1, "pool", Some(T1), json!({}));
    apply(&d, &l, &rules(), &m).await.unwrap();
    let m = message("user.deleted", 1, "feed", Some(T2), json!({}));
    assert_eq!(
        apply(&d, &l, &rules(), &m).await,
        Ok(SyncOutcome::Applied(Applied::Deleted))
    );
}

#[tokio::test]
async fn a_user_created_again_after_its_deletion_belongs_to_its_new_creator() {
    let (d, l) = (directory(MissingAnswer::NotFound), InMemoryLedger::new());
    let id = UserId::parse(&sub(1)).unwrap();
    let created = message("user.created", 1, "issuer:okta", Some(T1), json!({}));
    let deleted = message("user.deleted", 1, "feed", Some(T1), json!({}));
    for m in [&created, &deleted] {
        apply(&d, &l, &rules(), m).await.unwrap();
    }
    assert_eq!(
        l.get(&id).unwrap().owner,
        Some(Source::issuer("okta").unwrap())
    );
    let again = message("user.created", 1, "pool", Some(T2), json!({}));
    assert_eq!(
        apply(&d, &l, &rules(), &again).await,
        Ok(SyncOutcome::Applied(Applied::Created))
    );
    assert_eq!(l.get(&id).unwrap().owner, Some(Source::pool()));
}

#[tokio::test]
async fn the_feed_breaker_holds_deletions_beyond_its_window_and_a_release_passes() {
    let (d, l) = (directory(MissingAnswer::Forbidden), InMemoryLedger::new());
    let rules = SyncRules {
        feed_breaker: Some(FeedBreaker {
            limit: 2,
            percent: 0,
            window: Duration::from_secs(3600),
        }),
        ..rules()
    };
    for n in 1..=4 {
        apply(
            &d,
            &l,
            &rules,
            &message("user.created", n, "feed", Some(T1), json!({})),
        )
        .await
        .unwrap();
    }
    let mut outcomes = Vec::new();
    for n in 1..=4 {
        let m = message("user.deleted", n, "feed", Some(T2), json!({}));
        outcomes.push(apply(&d, &l, &rules, &m).await.unwrap().as_str());
    }
    assert_eq!(
        outcomes,
        ["deleted", "deleted", "deletion-held", "deletion-held"]
    );
    assert_eq!(d.users().len(), 2, "held deletions touch nothing");
    let held = crate::ledger::all_marked(&l, crate::ledger::Marked::Held, "")
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(
        held[0].1.held.as_ref().unwrap().occurred_at,
        Some(At::parse_rfc3339(T2).unwrap())
    );
    // Absences are not the feed breaker's to count (reconcile has its own).
    let m = message(
        "user.deleted",
        3,
        "feed",
        Some(T2),
        json!({"reason": "absent"}),
    );
    assert_eq!(apply(&d, &l, &rules, &m).await.unwrap().as_str(), "deleted");
    let released = message(
        "user.deleted",
        4,
        "feed",
        Some(T2),
        json!({"released": true}),
    );
    assert_eq!(
        apply(&d, &l, &rules, &released).await.unwrap().as_str(),
        "deleted"
    );
    assert!(d.users().is_empty());
    assert!(
        crate::ledger::all_marked(&l, crate::ledger::Marked::Held, "")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_breaker_allows_its_share_of_the_chime_users_reconcile_counted() {
    let (d, l) = (directory(MissingAnswer::NotFound), InMemoryLedger::new());
    l.set_chime_user_count(100).await.unwrap();
    let rules = SyncRules {
        feed_breaker: Some(FeedBreaker {
            limit: 1,
            percent: 3,
            window: Duration::from_secs(3600),
        }),
        ..rules()
    };
    let count = ChimeCount::default();
    let mut held = 0;
    for n in 1..=5 {
        let m = message("user.deleted", n, "feed", Some(T2), json!({}));
        let outcome = apply_message(&d, &l, &rules, &count, &m, SystemTime::now())
            .await
            .unwrap();
        held += usize::from(outcome == SyncOutcome::Held);
    }
    assert_eq!(held, 2, "3 % of 100 users: three pass");
}

#[tokio::test]
async fn a_ledger_failure_is_retryable_and_chime_is_not_called() {
    let (d, l) = (directory(MissingAnswer::NotFound), InMemoryLedger::new());
    l.fail_next([LedgerError::Throttled(
        "ProvisionedThroughputExceeded".into(),
    )]);
    let result = apply(
        &d,
        &l,
        &rules(),
        &message("user.created", 1, "feed", None, json!({})),
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(error.code(), "LedgerThrottled");
    assert_eq!(d.calls(), 0);
}

#[tokio::test]
async fn five_thousand_deletions_in_a_minute_hold_all_beyond_the_limit_and_a_release_applies_them()
{
    let (d, l) = (directory(MissingAnswer::Forbidden), InMemoryLedger::new());
    let rules = SyncRules {
        feed_breaker: Some(FeedBreaker::default()),
        ..rules()
    };
    // 5,000 feed users and 5,000 others; the last reconcile counted 10,000.
    for n in 1..=10_000 {
        let source = if n <= 5_000 { "feed" } else { "pool" };
        let m = message("user.created", n, source, Some(T1), json!({}));
        apply(&d, &l, &rules, &m).await.unwrap();
    }
    l.set_chime_user_count(10_000).await.unwrap();
    let count = ChimeCount::default();
    let allowed = FeedBreaker::default().allowed(Some(10_000));
    assert_eq!(allowed, 500, "max(50, 5 % of 10,000)");
    let started = SystemTime::now();
    let mut outcomes = std::collections::BTreeMap::new();
    for n in 1..=5_000 {
        let m = message("user.deleted", n, "feed", Some(T2), json!({}));
        let outcome = apply_message(&d, &l, &rules, &count, &m, started)
            .await
            .unwrap();
        *outcomes.entry(outcome.as_str()).or_insert(0) += 1;
    }
    assert_eq!(outcomes["deleted"], 500);
    assert_eq!(outcomes["deletion-held"], 4_500);
    assert_eq!(d.users().len(), 9_500);
    // The release: each held deletion published again, marked released.
    let held = crate::ledger::all_marked(&l, crate::ledger::Marked::Held, "")
        .await
        .unwrap();
    assert_eq!(held.len(), 4_500);
    for (id, record) in held {
        let h = record.held.unwrap();
        let origin = crate::schema::Origin {
            released: true,
            ..crate::schema::Origin::from(h.by, h.occurred_at)
        };
        let body =
            crate::schema::event_message(&IdentityEvent::Deprovision(id), "release", &origin);
        let m = parse_body(&body).unwrap();
        let outcome = apply_message(&d, &l, &rules, &count, &m, started)
            .await
            .unwrap();
        assert_eq!(outcome, SyncOutcome::Applied(Applied::Deleted));
    }
    let left: Vec<_> = d.users().iter().map(|u| u.id.to_string()).collect();
    assert_eq!(left.len(), 5_000, "exactly the feed's users went");
    assert!(left.iter().all(|id| id.as_str() > sub(5_000).as_str()));
}
