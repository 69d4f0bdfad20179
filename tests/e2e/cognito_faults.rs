//! The Cognito path under faults: post-confirmation (the real handler, the real
//! `ChimeDirectory` over the SDK, against the fake Chime) while Chime is down,
//! drops connections or is slower than its budget. It must hand the user off to
//! the sync queue and return within the budget; replayed three times, as
//! Cognito retries, it must still end in exactly one Chime user once Chime is
//! healthy and idp-sync has drained the queue.
//!
//! Timing is asserted in paused tokio time (the fake, the SDK's timeouts and
//! backoff, and the queue's clock all run on it), so the bounds are exact and
//! a slow machine cannot fail them. The one test against moto's SQS server runs
//! in real time and only checks loose bounds.

use testkit::esm_driver;

use std::sync::Arc;
use std::time::Duration;

use chime_identity_fake::{
    FakeChime, FakeChimeHandle, FakeConfig, FaultConfig, MissingAnswer, Operation,
};
use chime_sync_aws::{ChimeDirectory, SqsQueue, config};
use chime_sync_core::handlers::idp_sync::{self, IdpSync};
use chime_sync_core::handlers::post_confirmation::{self, ConfirmationOutcome, PostConfirmation};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::{Applied, Queue};
use esm_driver::{Driver, chime_directory, drain, fake_users, record_from_sdk};
use sqs_sim::lambda::EventSourceMapping;
use sqs_sim::{QueueConfig, SendFaults, SimQueue, Sqs, TokioClock};
use testkit::in_both_missing_user_modes;
use testkit::moto::{self, Moto};
use testkit::read_event;
use tokio::time::Instant;

const SAMPLE: &str = "post-confirmation/confirm-sign-up-new-user.json";
const SUB: &str = "1d4f6a8c-2b3e-4c5d-9e7f-8a0b1c2d3e4f";
const NAME: &str = "Ada Lovelace";

/// post-confirmation's timeout (template.yaml), default Chime budget and
/// hand-off reserve, as the function's configuration has them.
const FUNCTION_TIMEOUT: Duration = config::POST_CONFIRMATION_TIMEOUT;
const CHIME_BUDGET: Duration = config::DEFAULT_POST_CONFIRMATION_BUDGET;
const HAND_OFF_RESERVE: Duration = config::POST_CONFIRMATION_QUEUE_TIMEOUT;
/// Cognito waits this long before it retries a trigger.
const COGNITO_RETRY_AFTER: Duration = Duration::from_secs(5);

const SYNC: &str = "chime-sync.fifo";
const DLQ: &str = "chime-sync-dlq.fifo";

/// The fake, the simulated queues and both handlers over one `ChimeDirectory`.
struct World {
    fake: FakeChimeHandle,
    sqs: Arc<Sqs>,
    trigger: PostConfirmation<ChimeDirectory, Arc<SimQueue>, InMemoryLedger>,
    sync: Arc<SimQueue>,
    idp_sync: IdpSync<ChimeDirectory, SimQueue, InMemoryLedger>,
}

async fn world(mode: MissingAnswer, faults: FaultConfig) -> World {
    let fake = FakeChime::start(
        FakeConfig::new()
            .with_missing_user(mode)
            .with_faults(faults),
    )
    .await
    .expect("the fake starts");
    let sqs = Arc::new(Sqs::new(Arc::new(TokioClock::new()), 5));
    sqs.create_queue(QueueConfig::fifo(DLQ).with_content_based_deduplication(true))
        .unwrap();
    sqs.create_queue(
        QueueConfig::fifo(SYNC)
            .with_visibility_timeout(Duration::from_secs(180))
            .with_redrive(DLQ, 5),
    )
    .unwrap();
    // The SDK defaults the functions use: 4 attempts, 100 ms backoff base,
    // the operation bounded by the budget.
    let directory = chime_directory(&fake, |c| c.operation_timeout = CHIME_BUDGET);
    let sync = Arc::new(SimQueue::new(sqs.clone(), SYNC));
    let trigger = PostConfirmation {
        chime_budget: CHIME_BUDGET,
        hand_off_reserve: HAND_OFF_RESERVE,
        ..PostConfirmation::new(directory.clone(), sync.clone(), InMemoryLedger::new())
    };
    let idp_sync = IdpSync::new(
        directory,
        SimQueue::new(sqs.clone(), DLQ),
        InMemoryLedger::new(),
    );
    World {
        fake,
        sqs,
        trigger,
        sync,
        idp_sync,
    }
}

impl World {
    /// idp-sync drains the sync queue as the event source mapping would.
    async fn drain(&self) -> esm_driver::DrainReport {
        drain(
            &self.sqs,
            &EventSourceMapping::new(SYNC),
            &self.idp_sync,
            &Driver::default(),
        )
        .await
    }

    /// Chime heals (no more faults), then idp-sync drains the sync queue.
    async fn heal_and_drain(&self) -> esm_driver::DrainReport {
        self.fake.set_faults(FaultConfig::none()).unwrap();
        self.drain().await
    }
}

/// One invocation as Lambda makes it: a deadline `FUNCTION_TIMEOUT` away.
/// Returns the outcome and the (tokio) time it took.
async fn confirm<D: chime_sync_core::Directory, Q: Queue>(
    trigger: &PostConfirmation<D, Q, InMemoryLedger>,
) -> (Result<ConfirmationOutcome, String>, Duration) {
    confirm_with(trigger, Some(FUNCTION_TIMEOUT)).await
}

/// One invocation with this much time left (`None`: no Lambda deadline, only
/// the Chime budget).
async fn confirm_with<D: chime_sync_core::Directory, Q: Queue>(
    trigger: &PostConfirmation<D, Q, InMemoryLedger>,
    time_left: Option<Duration>,
) -> (Result<ConfirmationOutcome, String>, Duration) {
    let event = read_event(SAMPLE);
    let started = Instant::now();
    let deadline = time_left.map(|left| started + left);
    let result = post_confirmation::handle(event.clone(), trigger, deadline).await;
    let took = started.elapsed();
    let result = result
        .map(|(returned, outcome)| {
            assert_eq!(returned, event, "the trigger returns the event unchanged");
            outcome
        })
        .map_err(|e| e.to_string());
    (result, took)
}

/// Three confirmations, `COGNITO_RETRY_AFTER` apart, each handed off within
/// the budget; then Chime heals and idp-sync drains the queue.
async fn outage_then_recovery(mode: MissingAnswer, faults: FaultConfig, expect_codes: &[&str]) {
    let w = world(mode, faults).await;
    for attempt in 1..=3 {
        let (outcome, took) = confirm(&w.trigger).await;
        match outcome {
            Ok(ConfirmationOutcome::HandedOff { chime_error }) => assert!(
                expect_codes.contains(&chime_error),
                "attempt {attempt}: handed off after {chime_error}, expected one of {expect_codes:?}"
            ),
            other => panic!("attempt {attempt}: expected a hand-off, got {other:?}"),
        }
        assert!(took <= CHIME_BUDGET, "attempt {attempt} took {took:?}");
        tokio::time::sleep(COGNITO_RETRY_AFTER).await;
    }
    // Each confirmation reads first: the describe is what met the outage.
    assert!(
        w.fake
            .counters()
            .attempts(Operation::DescribeAppInstanceUser)
            >= 3
    );
    assert!(fake_users(&w.fake).is_empty());
    // Three hand-offs, one message: same deduplication id each time.
    let queued = w.sqs.messages(SYNC).unwrap();
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0].group_id.as_deref(), Some(SUB));
    assert_eq!(w.sync.counts().deduplicated, 2);

    let report = w.heal_and_drain().await;
    assert_eq!(
        report.outcome("applied/created"),
        1,
        "{:?}",
        report.outcomes
    );
    let users = fake_users(&w.fake);
    assert_eq!(users.len(), 1);
    assert_eq!(users[SUB].name, NAME);
    assert!(w.sqs.messages(DLQ).unwrap().is_empty());

    // A fourth, late retry with Chime healthy: the trigger reads first, finds
    // the user the queue made and says so (`already-exists`); still one user.
    let (outcome, _) = confirm(&w.trigger).await;
    assert_eq!(
        outcome,
        Ok(ConfirmationOutcome::Provisioned(
            Applied::AlreadyProvisioned
        ))
    );
    assert_eq!(fake_users(&w.fake).len(), 1);
}

in_both_missing_user_modes! {
#[tokio::test(start_paused = true)]
async fn chime_answering_503_hands_off_within_the_budget_and_ends_in_one_user(mode) {
    // The SDK retries the 503 with backoff (4 attempts, at most 0.7 s of
    // sleeps), then gives up well within the budget.
    outage_then_recovery(
        mode,
        FaultConfig::none().with_service_unavailable_rate(1.0),
        &["Unavailable"],
    )
    .await;
}
}
in_both_missing_user_modes! {
#[tokio::test(start_paused = true)]
async fn chime_dropping_connections_hands_off_within_the_budget_and_ends_in_one_user(mode) {
    outage_then_recovery(mode, FaultConfig::none().with_drop_rate(1.0), &["Transport"]).await;
}
}
in_both_missing_user_modes! {
#[tokio::test(start_paused = true)]
async fn chime_slower_than_its_budget_is_cut_off_at_the_budget_and_ends_in_one_user(mode) {
    let w = world(mode, FaultConfig::none().with_latency(10_000, 10_000)).await;
    for _ in 0..3 {
        let (outcome, took) = confirm(&w.trigger).await;
        assert_eq!(
            outcome,
            Ok(ConfirmationOutcome::HandedOff {
                chime_error: "Timeout"
            })
        );
        // The default budget is used in full: the deadline does not shorten it.
        assert_eq!(took, CHIME_BUDGET, "cut off exactly at the budget");
        tokio::time::sleep(COGNITO_RETRY_AFTER).await;
    }
    // The requests Chime was still sitting on were abandoned, not applied late.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(fake_users(&w.fake).is_empty());
    assert_eq!(w.sqs.messages(SYNC).unwrap().len(), 1);

    w.heal_and_drain().await;
    let users = fake_users(&w.fake);
    assert_eq!((users.len(), users[SUB].name.as_str()), (1, NAME));
}
}
in_both_missing_user_modes! {
#[tokio::test(start_paused = true)]
async fn the_budget_shrinks_to_leave_the_hand_off_its_reserve_before_the_deadline(mode) {
    let w = world(mode, FaultConfig::none().with_latency(10_000, 10_000)).await;
    let event = read_event(SAMPLE);
    // Only 2.5 s left of the invocation: 1 s for Chime, 1.5 s kept for the hand-off.
    let started = Instant::now();
    let (_, outcome) = post_confirmation::handle(
        event,
        &w.trigger,
        Some(started + Duration::from_millis(2500)),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        ConfirmationOutcome::HandedOff {
            chime_error: "Timeout"
        }
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(2500) - HAND_OFF_RESERVE
    );
}
}
in_both_missing_user_modes! {
#[tokio::test(start_paused = true)]
async fn a_hand_off_and_a_later_direct_create_still_make_one_user(mode) {
    // Attempt 1: Chime slow, handed off. Attempt 2: Chime healthy, created
    // directly. Then idp-sync applies the hand-off: the same create again.
    let w = world(mode, FaultConfig::none().with_latency(10_000, 10_000)).await;
    let (outcome, _) = confirm(&w.trigger).await;
    assert!(matches!(outcome, Ok(ConfirmationOutcome::HandedOff { .. })));
    w.fake.set_faults(FaultConfig::none()).unwrap();
    tokio::time::sleep(COGNITO_RETRY_AFTER).await;
    let (outcome, _) = confirm(&w.trigger).await;
    assert_eq!(
        outcome,
        Ok(ConfirmationOutcome::Provisioned(Applied::Created))
    );
    let report = w.drain().await;
    assert_eq!(report.deleted, 1);
    let users = fake_users(&w.fake);
    assert_eq!((users.len(), users[SUB].name.as_str()), (1, NAME));
}
}
in_both_missing_user_modes! {
#[tokio::test(start_paused = true)]
async fn an_ambiguous_hand_off_failure_is_retried_by_cognito_and_deduplicated(mode) {
    // Chime down, and the queue stores the hand-off but its answer is lost:
    // the trigger fails, Cognito retries, the second hand-off is a duplicate.
    let w = world(mode, FaultConfig::none().with_service_unavailable_rate(1.0)).await;
    w.sync.set_faults(SendFaults {
        fail_after_rate: 1.0,
        ..SendFaults::default()
    });
    let (outcome, took) = confirm(&w.trigger).await;
    let err = outcome.expect_err("Chime and the queue both failed");
    assert!(
        !err.contains("injected"),
        "no internals for the client: {err}"
    );
    assert!(took <= FUNCTION_TIMEOUT);
    w.sync.set_faults(SendFaults::default());
    tokio::time::sleep(COGNITO_RETRY_AFTER).await;
    let (outcome, _) = confirm(&w.trigger).await;
    assert!(matches!(outcome, Ok(ConfirmationOutcome::HandedOff { .. })));
    assert_eq!(w.sqs.messages(SYNC).unwrap().len(), 1);
    w.heal_and_drain().await;
    assert_eq!(fake_users(&w.fake).len(), 1);
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The same hand-off through the real SQS adapter and moto's SQS server: its
/// FIFO deduplication turns three hand-offs into one message, and idp-sync
/// makes one user of it. Real time, so no Lambda deadline here (the deadline
/// logic is pinned in paused time above) and only a loose bound on the time.
async fn against_moto_three_hand_offs_are_one_message_and_one_user(mode) {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let queues = moto::create_fifo_with_dlq(&sqs, "cognito-faults", 30, 5).await;
    let fake = FakeChime::start(
        FakeConfig::new()
            .with_missing_user(mode)
            .with_faults(FaultConfig::none().with_service_unavailable_rate(1.0)),
    )
    .await
    .unwrap();
    let directory = chime_directory(&fake, |c| c.operation_timeout = CHIME_BUDGET);
    let trigger = PostConfirmation {
        chime_budget: CHIME_BUDGET,
        ..PostConfirmation::new(
            directory.clone(),
            SqsQueue::from_client(sqs.clone(), queues.queue_url.clone()),
            InMemoryLedger::new(),
        )
    };
    for attempt in 1..=3 {
        let (outcome, took) = confirm_with(&trigger, None).await;
        assert!(
            matches!(outcome, Ok(ConfirmationOutcome::HandedOff { .. })),
            "attempt {attempt}: {outcome:?}"
        );
        assert!(
            took < CHIME_BUDGET + Duration::from_secs(5),
            "attempt {attempt} took {took:?}"
        );
    }
    assert_eq!(moto::depth(&sqs, &queues.queue_url).await, 1);

    fake.set_faults(FaultConfig::none()).unwrap();
    let received = moto::receive_n(&sqs, &queues.queue_url, 1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = received
        .iter()
        .map(|m| record_from_sdk(m, &queues.queue_arn, moto::REGION))
        .collect();
    let deps = IdpSync::new(
        directory,
        SqsQueue::from_client(sqs.clone(), queues.dlq_url.clone()),
        InMemoryLedger::new(),
    );
    let report = idp_sync::handle(&event, &deps, None).await;
    assert!(
        report.response().batch_item_failures.is_empty(),
        "{report:?}"
    );
    for m in &received {
        sqs.delete_message()
            .queue_url(&queues.queue_url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .expect("DeleteMessage");
    }
    assert_eq!(moto::depth(&sqs, &queues.queue_url).await, 0);
    assert_eq!(moto::depth(&sqs, &queues.dlq_url).await, 0);
    let users = fake_users(&fake);
    assert_eq!((users.len(), users[SUB].name.as_str()), (1, NAME));
}
}
