//! The DynamoDB ledger (`chime_sync_aws::LedgerTable`) against moto's
//! DynamoDB, in the table template.yaml declares, judged against the
//! in-memory ledger, which is the rules' reference: the same changes, in
//! the same order, must give the same answers and leave the same records.
//! This is what proves the translation of a change's guard and effects into
//! DynamoDB's condition and update expressions.

use chime_sync_core::UserId;
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::ledger::{
    At, Change, ChangeKind, Counted, FeedBreaker, HeldDeletion, Ledger, Marked, Recorded, Source,
    UnownedPolicy, all_marked, records_of,
};
use testkit::ledger::create_ledger_table;
use testkit::moto::Moto;

fn id(n: u32) -> UserId {
    UserId::parse(&format!("{:02x}000000-0000-4000-8000-{n:012}", n % 7)).unwrap()
}

/// A small deterministic generator (the same sequence every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn sources() -> Vec<Source> {
    vec![
        Source::pool(),
        Source::feed(Some("workday")).unwrap(),
        Source::issuer("okta").unwrap(),
        Source::scim(),
    ]
}

fn random_change(rng: &mut Rng, users: u32) -> (Change, UnownedPolicy) {
    let kinds = [
        ChangeKind::Create,
        ChangeKind::Update,
        ChangeKind::Delete,
        ChangeKind::Absent,
        ChangeKind::SignIn,
    ];
    let kind = kinds[rng.next(kinds.len() as u64) as usize];
    let source = sources()[rng.next(4) as usize].clone();
    let at = match (kind, rng.next(4)) {
        (ChangeKind::Absent, _) => Some(At(1_000 + rng.next(100) * 10)),
        (_, 0) => None,
        _ => Some(At(1_000 + rng.next(100) * 10)),
    };
    let unowned = if rng.next(3) == 0 {
        UnownedPolicy::OwnedBy(Source::pool())
    } else {
        UnownedPolicy::Keep
    };
    let change = Change {
        id: id(rng.next(u64::from(users)) as u32),
        source,
        kind,
        at,
    };
    (change, unowned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_answers_every_change_as_the_rules_do() {
    let moto = Moto::start().await;
    let table = create_ledger_table(&moto, "ledger-matrix").await;
    let memory = InMemoryLedger::new();
    let mut rng = Rng(0x5eed);
    let now = At(2_000_000);
    let (mut applied, mut refused) = (0, 0);
    for step in 0..400 {
        let (change, unowned) = random_change(&mut rng, 12);
        let want = memory.record(&change, &unowned, now).await.unwrap();
        let got = table.record(&change, &unowned, now).await.unwrap();
        match (&want, &got) {
            (Recorded::Applied { .. }, Recorded::Applied { .. }) => applied += 1,
            (Recorded::Refused(a), Recorded::Refused(b)) if a == b => refused += 1,
            _ => {
                panic!("step {step}: {change:?} under {unowned:?}: memory {want:?}, table {got:?}")
            }
        }
        assert_eq!(got, want, "step {step}: {change:?}");
    }
    assert!(
        applied > 50 && refused > 50,
        "both kinds exercised: {applied} / {refused}"
    );
    let ids: Vec<UserId> = (0..12).map(id).collect();
    assert_eq!(
        records_of(&table, &ids).await.unwrap(),
        records_of(&memory, &ids).await.unwrap()
    );
    for prefix in ["", "00", "03"] {
        assert_eq!(
            all_marked(&table, Marked::Deletions, prefix).await.unwrap(),
            all_marked(&memory, Marked::Deletions, prefix)
                .await
                .unwrap(),
            "prefix {prefix:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_counts_atomically_and_held_deletions_are_listed() {
    let moto = Moto::start().await;
    let table = create_ledger_table(&moto, "ledger-window").await;
    let breaker = FeedBreaker::default();
    let feed = Source::feed(None).unwrap();
    let window = breaker.window(&feed, At(7_200_000));
    let mut outcomes = Vec::new();
    for n in 0..5 {
        let delete = Change {
            id: id(n),
            source: feed.clone(),
            kind: ChangeKind::Delete,
            at: Some(At(5_000)),
        };
        outcomes.push(
            table
                .record_counted(&delete, &UnownedPolicy::Keep, At(7_200_000), &window, 3)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", moto.output())),
        );
    }
    assert_eq!(
        outcomes,
        [
            Counted::Recorded(Recorded::Applied { before: None }),
            Counted::Recorded(Recorded::Applied { before: None }),
            Counted::Recorded(Recorded::Applied { before: None }),
            Counted::WindowFull,
            Counted::WindowFull,
        ]
    );
    // A refused deletion is not counted: a stale one in a fresh window.
    let next = breaker.window(&feed, At(10_800_000));
    let stale = Change {
        id: id(0),
        source: feed.clone(),
        kind: ChangeKind::Delete,
        at: Some(At(10)),
    };
    let refused = table
        .record_counted(&stale, &UnownedPolicy::Keep, At(10_800_000), &next, 1)
        .await
        .unwrap();
    assert!(
        matches!(refused, Counted::Recorded(Recorded::Refused(_))),
        "{refused:?}"
    );
    let fresh = Change {
        at: Some(At(9_000)),
        ..stale
    };
    assert!(matches!(
        table
            .record_counted(&fresh, &UnownedPolicy::Keep, At(10_800_000), &next, 1)
            .await
            .unwrap(),
        Counted::Recorded(Recorded::Applied { .. })
    ));
    for n in [3, 4] {
        let held = HeldDeletion {
            by: feed.clone(),
            occurred_at: Some(At(5_000)),
            event_id: Some(format!("e-{n}")),
            held_at: At(7_200_000),
        };
        table.hold(&id(n), &held).await.unwrap();
    }
    let held = all_marked(&table, Marked::Held, "").await.unwrap();
    assert_eq!(
        held.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
        [id(3), id(4)]
    );
    assert_eq!(
        held[0].1.held.as_ref().unwrap().event_id.as_deref(),
        Some("e-3")
    );
    assert_eq!(table.chime_user_count().await.unwrap(), None);
    table.set_chime_user_count(1234).await.unwrap();
    assert_eq!(table.chime_user_count().await.unwrap(), Some(1234));
}
