//! The ownership and time rules, one scenario per rule, against the
//! in-memory ledger (which is the rules' reference: the DynamoDB adapter's
//! tests replay the same matrix against moto).

use super::memory::InMemoryLedger;
use super::*;

fn id(n: u32) -> UserId {
    UserId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
}

fn change(n: u32, source: &Source, kind: ChangeKind, at: Option<u64>) -> Change {
    Change {
        id: id(n),
        source: source.clone(),
        kind,
        at: at.map(At),
    }
}

fn feed() -> Source {
    Source::feed(Some("workday")).unwrap()
}

fn okta() -> Source {
    Source::issuer("okta").unwrap()
}

const NOW: At = At(1_000_000);

async fn record(ledger: &InMemoryLedger, c: &Change) -> Recorded {
    ledger.record(c, &UnownedPolicy::Keep, NOW).await.unwrap()
}

#[test]
fn sources_parse_strictly() {
    for good in [
        "pool",
        "feed",
        "feed:workday",
        "issuer:okta",
        "scim",
        "ldap",
        "issuer:a.b_c-1",
    ] {
        assert_eq!(Source::parse(good).unwrap().as_str(), good);
    }
    for bad in [
        "",
        "Pool",
        "hr",
        "feed:",
        "issuer",
        "issuer:",
        "pool:x",
        "feed:Workday",
        "feed:a b",
        "scim:x",
    ] {
        assert!(Source::parse(bad).is_err(), "{bad:?}");
    }
    assert!(Source::feed(Some(&"x".repeat(41))).is_err());
    assert_eq!(Source::feed(None).unwrap().as_str(), "feed");
}

#[test]
fn timestamps_read_rfc3339_to_the_millisecond() {
    let at = At::parse_rfc3339("2026-11-20T10:00:00.123Z").unwrap();
    assert_eq!(at.0 % 1000, 123);
    assert_eq!(At::parse_rfc3339(&at.rfc3339()), Ok(at));
    assert!(At::parse_rfc3339("yesterday").is_err());
    assert_eq!(UnownedPolicy::parse("keep"), Ok(UnownedPolicy::Keep));
    assert_eq!(
        UnownedPolicy::parse("pool"),
        Ok(UnownedPolicy::OwnedBy(Source::pool()))
    );
    assert!(UnownedPolicy::parse("everyone").is_err());
}

#[tokio::test]
async fn creation_claims_and_a_later_creator_does_not_take_over() {
    let ledger = InMemoryLedger::new();
    record(&ledger, &change(1, &okta(), ChangeKind::Create, Some(10))).await;
    record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Create, Some(20)),
    )
    .await;
    let r = ledger.get(&id(1)).unwrap();
    assert_eq!(r.owner, Some(okta()));
    assert_eq!(r.changed_at, Some(At(20)));
}

#[tokio::test]
async fn absence_deletes_only_what_the_source_owns() {
    let ledger = InMemoryLedger::new();
    record(&ledger, &change(1, &feed(), ChangeKind::Create, Some(10))).await;
    record(&ledger, &change(2, &okta(), ChangeKind::Create, Some(10))).await;
    record(
        &ledger,
        &change(3, &Source::pool(), ChangeKind::Create, Some(10)),
    )
    .await;
    for n in [1, 2] {
        let refused = record(
            &ledger,
            &change(n, &Source::pool(), ChangeKind::Absent, Some(50)),
        )
        .await;
        assert!(
            matches!(&refused, Recorded::Refused(r @ Refusal::NotOwner { .. }) if r.code() == "not-owner"),
            "{refused:?}"
        );
        assert_eq!(ledger.get(&id(n)).unwrap().deletion, None);
    }
    let applied = record(
        &ledger,
        &change(3, &Source::pool(), ChangeKind::Absent, Some(50)),
    )
    .await;
    assert!(matches!(applied, Recorded::Applied { .. }));
    let mark = ledger.get(&id(3)).unwrap().deletion.unwrap();
    assert_eq!(
        (mark.by, mark.absence, mark.at),
        (Source::pool(), true, At(50))
    );
    assert_eq!(
        ledger.get(&id(3)).unwrap().changed_at,
        Some(At(10)),
        "an absence moves no clock"
    );
}

#[tokio::test]
async fn unowned_users_are_kept_unless_the_operator_names_their_source() {
    let ledger = InMemoryLedger::new();
    let absent = change(4, &Source::pool(), ChangeKind::Absent, Some(50));
    let refused = record(&ledger, &absent).await;
    assert!(
        matches!(&refused, Recorded::Refused(r) if r.code() == "unowned"),
        "{refused:?}"
    );
    let adopted = UnownedPolicy::OwnedBy(Source::pool());
    let applied = ledger.record(&absent, &adopted, NOW).await.unwrap();
    assert_eq!(applied, Recorded::Applied { before: None });
    let other = UnownedPolicy::OwnedBy(feed());
    assert!(
        judge(None, &absent, &other).is_err(),
        "only the named source"
    );
}

#[tokio::test]
async fn an_explicit_deletion_deletes_whoever_owns_the_user() {
    let ledger = InMemoryLedger::new();
    record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Create, Some(10)),
    )
    .await;
    let applied = record(&ledger, &change(1, &feed(), ChangeKind::Delete, Some(20))).await;
    assert!(matches!(applied, Recorded::Applied { .. }));
    let r = ledger.get(&id(1)).unwrap();
    assert_eq!(
        r.owner,
        Some(Source::pool()),
        "deleting does not change the owner"
    );
    assert_eq!(r.changed_at, Some(At(20)));
    assert!(!r.deletion.unwrap().absence);
}

#[tokio::test]
async fn an_older_change_never_overwrites_a_newer_one() {
    let ledger = InMemoryLedger::new();
    record(&ledger, &change(1, &feed(), ChangeKind::Create, Some(100))).await;
    // A user.deleted from yesterday, redriven from the DLQ.
    let stale = record(&ledger, &change(1, &feed(), ChangeKind::Delete, Some(50))).await;
    assert_eq!(
        stale,
        Recorded::Refused(Refusal::Stale {
            at: At(50),
            last: At(100)
        })
    );
    assert_eq!(ledger.get(&id(1)).unwrap().deletion, None);
    // The same instant applies (a redelivery of the newest change).
    let again = record(&ledger, &change(1, &feed(), ChangeKind::Update, Some(100))).await;
    assert!(matches!(again, Recorded::Applied { .. }));
    // No occurredAt: never stale, and the clock stays.
    let undated = record(&ledger, &change(1, &feed(), ChangeKind::Update, None)).await;
    assert!(matches!(undated, Recorded::Applied { .. }));
    assert_eq!(ledger.get(&id(1)).unwrap().changed_at, Some(At(100)));
}

#[tokio::test]
async fn an_absence_observed_before_a_later_change_is_refused() {
    let ledger = InMemoryLedger::new();
    // Confirmed at 70, while a cycle that began at 50 was reading.
    record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Create, Some(70)),
    )
    .await;
    let refused = record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Absent, Some(50)),
    )
    .await;
    assert!(
        matches!(refused, Recorded::Refused(Refusal::Stale { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_pending_deletion_is_cancelled_when_the_user_is_wanted_again() {
    let ledger = InMemoryLedger::new();
    record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Create, Some(10)),
    )
    .await;
    // Absent from the pool at 50, listed again with its old modification date.
    record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Absent, Some(50)),
    )
    .await;
    let back = record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Update, Some(10)),
    )
    .await;
    assert!(matches!(back, Recorded::Applied { .. }), "{back:?}");
    assert_eq!(ledger.get(&id(1)).unwrap().deletion, None);
    // HR deletes it at 60: the pool listing it unchanged since 10 is stale...
    record(&ledger, &change(1, &feed(), ChangeKind::Delete, Some(60))).await;
    let stale = record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Update, Some(10)),
    )
    .await;
    assert!(matches!(stale, Recorded::Refused(Refusal::Stale { .. })));
    assert!(ledger.get(&id(1)).unwrap().deletion.is_some());
    // ...but a pool user modified after the deletion (re-enabled at 80) is back.
    let back = record(
        &ledger,
        &change(1, &Source::pool(), ChangeKind::Update, Some(80)),
    )
    .await;
    assert!(matches!(back, Recorded::Applied { .. }));
    assert_eq!(ledger.get(&id(1)).unwrap().deletion, None);
}

#[tokio::test]
async fn a_sign_in_cancels_only_for_the_issuer_that_owns_the_user() {
    let ledger = InMemoryLedger::new();
    record(&ledger, &change(1, &okta(), ChangeKind::Create, Some(10))).await;
    record(
        &ledger,
        &change(2, &Source::pool(), ChangeKind::Create, Some(10)),
    )
    .await;
    for n in [1, 2] {
        record(&ledger, &change(n, &feed(), ChangeKind::Delete, Some(20))).await;
    }
    let refused = record(&ledger, &change(2, &okta(), ChangeKind::SignIn, Some(30))).await;
    assert!(matches!(
        refused,
        Recorded::Refused(Refusal::NotOwner { .. })
    ));
    let old_token = record(&ledger, &change(1, &okta(), ChangeKind::SignIn, Some(15))).await;
    assert!(
        matches!(old_token, Recorded::Refused(Refusal::Stale { .. })),
        "issued before the deletion"
    );
    let applied = record(&ledger, &change(1, &okta(), ChangeKind::SignIn, Some(30))).await;
    assert!(matches!(applied, Recorded::Applied { .. }));
    assert_eq!(ledger.get(&id(1)).unwrap().deletion, None);
    assert!(ledger.get(&id(2)).unwrap().deletion.is_some());
}

#[tokio::test]
async fn a_window_counts_applied_deletions_up_to_its_limit() {
    let ledger = InMemoryLedger::new();
    let breaker = FeedBreaker::default();
    let window = breaker.window(&feed(), At(3_600_000 * 5 + 17));
    assert_eq!(window.start, At(3_600_000 * 5));
    let mut outcomes = Vec::new();
    for n in 1..=4 {
        let c = change(n, &feed(), ChangeKind::Delete, Some(100));
        outcomes.push(
            ledger
                .record_counted(&c, &UnownedPolicy::Keep, NOW, &window, 3)
                .await
                .unwrap(),
        );
    }
    assert!(
        outcomes[..3]
            .iter()
            .all(|o| matches!(o, Counted::Recorded(Recorded::Applied { .. })))
    );
    assert_eq!(outcomes[3], Counted::WindowFull);
    assert_eq!(
        ledger.get(&id(4)),
        None,
        "nothing written for a full window"
    );
    let next = breaker.window(&feed(), At(3_600_000 * 6));
    let c = change(4, &feed(), ChangeKind::Delete, Some(100));
    assert!(matches!(
        ledger
            .record_counted(&c, &UnownedPolicy::Keep, NOW, &next, 3)
            .await
            .unwrap(),
        Counted::Recorded(_)
    ));
    assert_eq!(breaker.allowed(None), 50);
    assert_eq!(breaker.allowed(Some(10_000)), 500);
}

#[tokio::test]
async fn marked_users_page_in_id_order_by_prefix() {
    let ledger = InMemoryLedger::new().with_page_size(2);
    for n in 1..=5 {
        record(
            &ledger,
            &change(n, &Source::pool(), ChangeKind::Create, Some(1)),
        )
        .await;
        if n != 3 {
            record(
                &ledger,
                &change(n, &Source::pool(), ChangeKind::Absent, Some(5)),
            )
            .await;
        }
    }
    let all = all_marked(&ledger, Marked::Deletions, "").await.unwrap();
    let ids: Vec<_> = all.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(ids, [id(1), id(2), id(4), id(5)]);
    assert!(
        all_marked(&ledger, Marked::Deletions, "f")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        all_marked(&ledger, Marked::Held, "")
            .await
            .unwrap()
            .is_empty()
    );
    let many = records_of(&ledger, &(1..=250).map(id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(many.len(), 5);
}

#[tokio::test]
async fn records_expire_after_their_retention() {
    let ledger = InMemoryLedger::new();
    record(
        &ledger,
        &change(1, &feed(), ChangeKind::Delete, Some(1_000)),
    )
    .await;
    record(
        &ledger,
        &change(2, &feed(), ChangeKind::Create, Some(1_000)),
    )
    .await;
    ledger.expire(At(1_000 + MARK_RETENTION.as_millis() as u64 + 1));
    assert_eq!(ledger.get(&id(1)), None);
    assert!(ledger.get(&id(2)).is_some(), "no deletion asked: kept");
}
