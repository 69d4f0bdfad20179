//! Faults and load: idp-sync (the real handler, the real `ChimeDirectory` over
//! the real SDK) fed by a simulated SQS FIFO queue through a simulated Lambda
//! event source mapping, against the fake Chime with injected throttling,
//! 500/503, dropped connections and latency spikes past the per-call budget,
//! and with invocations killed mid-batch.
//!
//! The events are generated from a seed: creates, updates, deletes and
//! re-creates interleaved over many users (group = sub), a few sent twice by
//! their producer, some inside SNS or EventBridge envelopes, and a handful of
//! poison messages. A model applies each user's events in order; at the end
//! the fake must hold exactly the model's users with the model's names and
//! metadata, and the DLQ exactly the poison messages, each with its reason.
//!
//! Real time, kept short: Chime answers in about a millisecond except during
//! the latency spikes, the per-call budget is 200 ms, a visibility timeout is
//! 1 s. The seeds below make the events, the fault script and the kills
//! reproducible; the interleaving of concurrent requests is the scheduler's,
//! so counts vary a little from run to run, while the final state may not.

use testkit::esm_driver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chime_identity_fake::{
    FakeChime, FakeChimeHandle, FakeConfig, FaultConfig, InjectedCounts, ScriptedFault,
};
use chime_sync_core::handlers::idp_sync::{
    CODE_ATTRIBUTE, IdpSync, REASON_ATTRIBUTE, SOURCE_MESSAGE_ATTRIBUTE,
};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::{DisplayName, Metadata};
use esm_driver::{Counted, DrainReport, Driver, Kills, chime_directory, drain, fake_users};
use serde_json::{Value, json};
use sqs_sim::lambda::{EventSourceMapping, Invocation};
use sqs_sim::{QueueConfig, SendFaults, SendMessage, SimQueue, SplitMix64, Sqs, TokioClock};
use testkit::in_both_missing_user_modes;
use testkit::lambda::{Function, IDP_SYNC, Lambda};
use testkit::runtime_api::Outcome;

/// Seeds: the event stream, the Chime fault script, the kills, the DLQ send faults.
const EVENT_SEED: u64 = 0x5EED_0001;
const FAULT_SEED: u64 = 0x5EED_0002;
const KILL_SEED: u64 = 0x5EED_0003;
const DLQ_SEED: u64 = 0x5EED_0004;

const USERS: usize = 1_000;
const EVENTS: usize = 10_000;

const QUEUE: &str = "idp-sync.fifo";
const DLQ: &str = "idp-sync-dlq.fifo";

/// A user as the model expects it on Chime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    name: String,
    metadata: String,
}

/// One message to send.
#[derive(Debug, Clone)]
struct Outgoing {
    group: String,
    deduplication_id: String,
    body: String,
    /// For poison messages: the `ErrorCode` idp-sync must dead-letter it with.
    poison_code: Option<&'static str>,
}

struct Workload {
    messages: Vec<Outgoing>,
    /// Per sub: the state after its last event (`None`: must not exist).
    expected: BTreeMap<String, Option<Expected>>,
    /// The same, had every `user.created` of an existing user been a no-op:
    /// what a create that Chime treats as an idempotent replay leaves behind.
    /// Only used to explain a failure.
    if_creates_were_replays: BTreeMap<String, Option<Expected>>,
    /// Messages sent twice by their producer (FIFO deduplication drops the copy).
    resent: usize,
    kinds: BTreeMap<&'static str, usize>,
}

fn sub(n: usize) -> String {
    format!("{n:08x}-5eed-4f00-8a00-{:012x}", n * 7919)
}

const FIRST: [&str; 8] = [
    "Ada",
    "Grace",
    "Alan",
    "Zoë",
    "José",
    "Linus",
    "Ἀριστοτέλης",
    "李",
];
const LAST: [&str; 6] = ["Lovelace", "Hopper", "Turing", "Müller", "Ó Briain", "小龙"];
const DEPARTMENTS: [&str; 4] = ["R&D", "Sales", "Ops", "Legal"];

/// Wrap a schema-v1 message as it may arrive: raw, from SNS or from EventBridge.
fn envelope(rng: &mut SplitMix64, message: Value) -> String {
    match rng.below(10) {
        0 => json!({"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:hr",
                    "Message": message.to_string()})
        .to_string(),
        1 => json!({"version": "0", "id": "eb-1", "detail-type": message["type"], "source": "hr.directory",
                    "detail": message})
        .to_string(),
        _ => message.to_string(),
    }
}

/// The event stream and its model.
fn workload() -> Workload {
    let mut rng = SplitMix64::new(EVENT_SEED);
    let mut state: Vec<Option<Expected>> = vec![None; USERS];
    let mut replayed: Vec<Option<Expected>> = vec![None; USERS];
    let mut messages = Vec::with_capacity(EVENTS + 32);
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut resent = 0;
    // Every user gets at least one event: the first USERS events visit them in a shuffled order.
    let mut first_round: Vec<usize> = (0..USERS).collect();
    rng.shuffle(&mut first_round);
    for i in 0..EVENTS {
        let u = first_round
            .get(i)
            .copied()
            .unwrap_or_else(|| rng.below(USERS));
        let roll = rng.below(100);
        let (kind, label) = match &state[u] {
            None if roll < 75 => ("user.created", "create"),
            None if roll < 90 => ("user.updated", "update of a missing user"),
            None => ("user.deleted", "delete of a missing user"),
            Some(_) if roll < 55 => ("user.updated", "update"),
            Some(_) if roll < 75 => ("user.deleted", "delete"),
            Some(_) if roll < 90 => ("user.created", "create of an existing user, new name"),
            Some(_) => ("user.created", "create of an existing user, same name"),
        };
        *kinds.entry(label).or_default() += 1;
        let event_id = format!("evt-{i:05}");
        let mut user = json!({"sub": sub(u)});
        if kind == "user.deleted" {
            state[u] = None;
            replayed[u] = None;
        } else {
            let name = if label.ends_with("same name") {
                state[u].as_ref().map(|e| e.name.clone()).expect("exists")
            } else {
                format!(
                    "{} {} {i}",
                    FIRST[rng.below(FIRST.len())],
                    LAST[rng.below(LAST.len())]
                )
            };
            user["displayName"] = json!(name);
            let metadata = if rng.chance(0.8) {
                let m = json!({"department": DEPARTMENTS[rng.below(DEPARTMENTS.len())], "rev": i});
                user["metadata"] = m.clone();
                Metadata::from_json(&m)
                    .expect("valid metadata")
                    .as_str()
                    .to_owned()
            } else {
                // No metadata: an existing user keeps its own.
                state[u]
                    .as_ref()
                    .map(|e| e.metadata.clone())
                    .unwrap_or_default()
            };
            let keeps = |e: &Option<Expected>| e.as_ref().map(|e| e.metadata.clone());
            let replayed_metadata = if user.get("metadata").is_some() {
                metadata.clone()
            } else {
                keeps(&replayed[u]).unwrap_or_default()
            };
            let name = DisplayName::parse(&name)
                .expect("valid name")
                .as_str()
                .to_owned();
            if !(kind == "user.created" && replayed[u].is_some()) {
                replayed[u] = Some(Expected {
                    name: name.clone(),
                    metadata: replayed_metadata,
                });
            }
            state[u] = Some(Expected { name, metadata });
        }
        let message = json!({"version": 1, "type": kind, "eventId": event_id,
                             "occurredAt": "2026-11-20T10:00:00Z", "user": user});
        let out = Outgoing {
            group: sub(u),
            deduplication_id: event_id,
            body: envelope(&mut rng, message),
            poison_code: None,
        };
        if rng.chance(0.01) {
            // The producer retried the send: same deduplication id.
            messages.push(out.clone());
            resent += 1;
        }
        messages.push(out);
    }
    // Poison, slipped in between real events, mostly in real users' groups.
    let poison: Vec<(String, String, &'static str)> = vec![
        (sub(3), "{not json".into(), "InvalidJson"),
        (sub(5), json!({"version": 1, "type": "user.suspended", "user": {"sub": sub(5)}}).to_string(), "UnknownType"),
        ("EMP-0042".into(), json!({"version": 1, "type": "user.created", "user": {"sub": "EMP-0042", "displayName": "X"}}).to_string(), "InvalidUserId"),
        (sub(8), json!({"version": 2, "type": "user.created", "user": {"sub": sub(8), "displayName": "X"}}).to_string(), "UnsupportedVersion"),
        (sub(13), json!({"version": 1, "type": "user.updated", "user": {"sub": sub(13)}}).to_string(), "MissingField"),
        (sub(21), json!({"Type": "Notification", "Message": "{truncated"}).to_string(), "InvalidJson"),
        (sub(34), json!({"version": 1, "type": "user.created", "user": {"sub": sub(34), "displayName": "   "}}).to_string(), "InvalidDisplayName"),
        (sub(55), json!({"version": 1, "type": "user.created", "user": {"sub": sub(55), "displayName": "M", "metadata": "m".repeat(1025)}}).to_string(), "MetadataTooLong"),
        (sub(89), "[]".into(), "WrongType"),
        ("no-sub".into(), json!({"version": 1, "type": "user.deleted", "user": {}}).to_string(), "MissingField"),
        (sub(144), json!({"version": 1, "type": 7, "user": {"sub": sub(144)}}).to_string(), "WrongType"),
        (sub(233), json!({"detail-type": "user.created", "detail": "{oops"}).to_string(), "InvalidJson"),
    ];
    for (n, (group, body, code)) in poison.into_iter().enumerate() {
        let at = rng.below(messages.len());
        messages.insert(
            at,
            Outgoing {
                group,
                deduplication_id: format!("poison-{n}"),
                body,
                poison_code: Some(code),
            },
        );
    }
    let by_sub = |v: Vec<Option<Expected>>| {
        v.into_iter()
            .enumerate()
            .map(|(u, e)| (sub(u), e))
            .collect()
    };
    Workload {
        messages,
        expected: by_sub(state),
        if_creates_were_replays: by_sub(replayed),
        resent,
        kinds,
    }
}

/// The fault script of one phase: 11% throttled, 6% 500, 6% 503, 5% dropped,
/// 3% applied with the response lost; with the latency spikes about a third
/// of requests meet a fault.
fn fault_phase(seed: u64, spike: bool) -> FaultConfig {
    let mut rng = SplitMix64::new(seed);
    let script: Vec<ScriptedFault> = (0..4000)
        .map(|_| match rng.below(100) {
            0..11 => ScriptedFault::Throttle,
            11..17 => ScriptedFault::ServiceFailure,
            17..23 => ScriptedFault::ServiceUnavailable,
            23..28 => ScriptedFault::Drop,
            28..31 => ScriptedFault::ApplyThenDrop,
            _ => ScriptedFault::Pass,
        })
        .collect();
    // Past the script (never reached in a 1 s phase): 500, 503 and drops at the
    // same shares, at random (the fake throttles only by script or TPS quota).
    let config = FaultConfig::none()
        .with_script(script)
        .with_drop_rate(0.05)
        .with_service_failure_rate(0.06)
        .with_service_unavailable_rate(0.06)
        .with_lost_response_rate(0.03)
        .with_seed(seed);
    if spike {
        // Every request of the spike takes longer than the 200 ms budget.
        config.with_latency(250, 400)
    } else {
        config
    }
}

/// Alternate the fake between normal faults (1 s) and latency spikes
/// (30 ms) until dropped.
async fn fault_phases(fake: &FakeChimeHandle) {
    for phase in 0u64.. {
        let spike = phase % 2 == 1;
        fake.set_faults(fault_phase(FAULT_SEED.wrapping_add(phase), spike))
            .expect("valid faults");
        tokio::time::sleep(Duration::from_millis(if spike { 30 } else { 1000 })).await;
    }
}

fn injected_total(fake: &FakeChimeHandle) -> (InjectedCounts, u64) {
    let counters = fake.counters();
    let mut total = InjectedCounts::default();
    let mut attempts = 0;
    for c in counters.0.values() {
        attempts += c.attempts;
        total.delayed += c.injected.delayed;
        total.throttled += c.injected.throttled;
        total.service_failures += c.injected.service_failures;
        total.service_unavailable += c.injected.service_unavailable;
        total.dropped += c.injected.dropped;
        total.lost_responses += c.injected.lost_responses;
    }
    (total, attempts)
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_under_faults_end_in_exactly_the_model_state(mode) {
    let wall = std::time::Instant::now();
    let work = workload();
    let poison_count = work
        .messages
        .iter()
        .filter(|m| m.poison_code.is_some())
        .count();
    assert!(work.messages.len() - poison_count - work.resent >= EVENTS);

    // The queues, as in template.yaml but with timeouts scaled down: visibility
    // 1 s (longer than the 0.8 s function timeout, so a batch is never handed
    // out twice at once) and a generous maxReceiveCount (see the end).
    let sqs = Sqs::new(Arc::new(TokioClock::new()), EVENT_SEED);
    sqs.create_queue(QueueConfig::fifo(DLQ).with_content_based_deduplication(true))
        .unwrap();
    sqs.create_queue(
        QueueConfig::fifo(QUEUE)
            .with_visibility_timeout(Duration::from_secs(1))
            .with_redrive(DLQ, 50),
    )
    .unwrap();
    let mut poison_ids: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut deduplicated = 0;
    for m in &work.messages {
        let sent = sqs
            .send(
                QUEUE,
                SendMessage::new(m.body.clone())
                    .group(m.group.clone())
                    .deduplication_id(m.deduplication_id.clone()),
            )
            .unwrap();
        deduplicated += usize::from(sent.deduplicated);
        if let Some(code) = m.poison_code {
            poison_ids.insert(sent.message_id, code);
        }
    }
    assert_eq!(deduplicated, work.resent);

    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode))
        .await
        .unwrap();
    let directory = chime_directory(&fake, |c| {
        c.operation_timeout = Duration::from_millis(200);
        c.max_attempts = 3;
        c.initial_backoff = Duration::from_millis(5);
        c.max_backoff = Duration::from_millis(40);
    });
    // The DLQ itself fails some sends, before and after storing the message.
    let sqs = Arc::new(sqs);
    let dlq = SimQueue::new(sqs.clone(), DLQ);
    dlq.set_faults(SendFaults {
        fail_before_rate: 0.2,
        fail_after_rate: 0.2,
        seed: DLQ_SEED,
    });
    let deps = IdpSync {
        max_concurrent_groups: 10,
        deadline_margin: Duration::from_millis(100),
        ..IdpSync::new(Counted::new(directory), dlq, InMemoryLedger::new())
    };
    let driver = Driver {
        pollers: 6,
        function_timeout: Duration::from_millis(800),
        kills: Some(Kills {
            rate: 0.04,
            after_at_most: Duration::from_millis(40),
        }),
        seed: KILL_SEED,
        visibility_timeout: Duration::from_secs(1),
        idle_wait: Duration::from_millis(20),
    };
    let esm = EventSourceMapping::new(QUEUE);
    // A bound against hangs only: about a minute on two idle cores, several
    // on a loaded machine.
    let report: DrainReport = tokio::time::timeout(Duration::from_secs(600), async {
        tokio::select! {
            report = drain(&sqs, &esm, &deps, &driver) => report,
            () = fault_phases(&fake) => unreachable!("the fault phases never end"),
        }
    })
    .await
    .expect("the queue drained within 10 minutes");
    fake.set_faults(FaultConfig::none()).unwrap();
    let (injected, attempts) = injected_total(&fake);
    let queue_stats = sqs.stats(QUEUE).unwrap();
    let dlq_sends = deps.dlq.counts();

    let summary = format!(
        "fault run: {} messages ({} events over {} users, {} producer resends, {} poison), kinds {:?}\n\
         drained in {:.1?} by {} invocations: {} killed mid-batch, {} cut off at the timeout, {} messages handled, {} batches sharing a group with a running one ({} more after the holder overran its visibility timeout)\n\
         chime: {} calls by idp-sync, {} requests (≈{} SDK retries), injected {} throttled, {} 500, {} 503, {} dropped, {} applied with the response lost, {} delayed past the budget ({:.1}% of requests faulted)\n\
         outcomes: {:?}\n\
         queue: {} deliveries, {} redeliveries, {} deleted, {} moved to the DLQ by redrive; receives at delete {:?}\n\
         dlq sends: {:?}; wall {:.1?}",
        work.messages.len(),
        EVENTS,
        USERS,
        work.resent,
        poison_count,
        work.kinds,
        report.elapsed,
        report.invocations,
        report.killed,
        report.timed_out,
        report.messages_handled,
        report.groups_held_twice,
        report.groups_after_overrun,
        deps.directory.calls(),
        attempts,
        attempts.saturating_sub(deps.directory.calls()),
        injected.throttled,
        injected.service_failures,
        injected.service_unavailable,
        injected.dropped,
        injected.lost_responses,
        injected.delayed,
        100.0
            * (injected.throttled
                + injected.service_failures
                + injected.service_unavailable
                + injected.dropped
                + injected.lost_responses
                + injected.delayed) as f64
            / attempts.max(1) as f64,
        report.outcomes,
        queue_stats.deliveries,
        queue_stats.redeliveries,
        queue_stats.deleted,
        queue_stats.moved_to_dlq,
        report.receives_at_delete,
        dlq_sends,
        wall.elapsed(),
    );
    eprintln!("{summary}");

    // 1. The source queue is empty; the DLQ holds exactly the poison, each once,
    //    with the reason idp-sync gave it; nothing got there by redrive.
    assert_eq!(sqs.depth(QUEUE).unwrap().total(), 0);
    assert_eq!(
        queue_stats.moved_to_dlq, 0,
        "a real event exhausted maxReceiveCount\n{summary}"
    );
    let dead = sqs.messages(DLQ).unwrap();
    let mut seen = BTreeSet::new();
    for m in &dead {
        let source = m
            .message_attributes
            .get(SOURCE_MESSAGE_ATTRIBUTE)
            .unwrap_or_else(|| panic!("DLQ message without {SOURCE_MESSAGE_ATTRIBUTE}: {m:?}"));
        let code = poison_ids
            .get(source)
            .unwrap_or_else(|| panic!("DLQ message that is not injected poison: {m:?}\n{summary}"));
        assert_eq!(m.message_attributes[CODE_ATTRIBUTE], *code, "{m:?}");
        assert!(
            !m.message_attributes[REASON_ATTRIBUTE].trim().is_empty(),
            "{m:?}"
        );
        assert!(
            seen.insert(source.clone()),
            "poison {source} dead-lettered twice"
        );
    }
    assert_eq!(
        seen.len(),
        poison_ids.len(),
        "every poison message is in the DLQ"
    );

    // Two invocations never held one user's group at once.
    assert_eq!(report.groups_held_twice, 0, "{summary}");

    // 2. The faults really happened, at about the intended rate.
    let faulted = injected.throttled
        + injected.service_failures
        + injected.service_unavailable
        + injected.dropped
        + injected.lost_responses
        + injected.delayed;
    assert!(
        faulted * 100 >= attempts * 20,
        "fewer faults than intended\n{summary}"
    );
    for (what, n) in [
        ("throttled", injected.throttled),
        ("500", injected.service_failures),
        ("503", injected.service_unavailable),
        ("dropped", injected.dropped),
        ("lost responses", injected.lost_responses),
        ("delayed", injected.delayed),
        ("killed", report.killed),
        ("timed-out calls", report.outcome("failed/Timeout")),
        ("redeliveries", queue_stats.redeliveries),
    ] {
        assert!(n > 0, "no {what}\n{summary}");
    }

    // 3. Chime holds exactly the model: every user that should exist, with its
    //    last name and metadata, and none that should not.
    let users = fake_users(&fake);
    let have = |id: &str| {
        users.get(id).map(|u| Expected {
            name: u.name.clone(),
            metadata: u.metadata.clone().unwrap_or_default(),
        })
    };
    let wrong: Vec<String> = work
        .expected
        .iter()
        .filter(|(id, want)| have(id) != **want)
        .map(|(id, want)| format!("{id}: want {want:?}, have {:?}", have(id)))
        .collect();
    let unknown: Vec<&String> = users
        .keys()
        .filter(|id| !work.expected.contains_key(*id))
        .collect();
    // Tell a lost or stale update apart from the known create-replay bug.
    let explained_by_replays = work
        .expected
        .iter()
        .filter(|(id, want)| have(id) != **want && have(id) == work.if_creates_were_replays[*id])
        .count();
    assert!(
        wrong.is_empty() && unknown.is_empty(),
        "{} users differ from the model ({} of them exactly as if every `user.created` of an \
         existing user had been a no-op: see \
         a_create_of_an_existing_user_with_a_new_name_renames_it_on_the_wire), \
         {} unknown users on Chime; first: {:#?}\n{summary}",
        wrong.len(),
        explained_by_replays,
        unknown.len(),
        wrong.iter().take(10).collect::<Vec<_>>()
    );
    let present = work.expected.values().filter(|e| e.is_some()).count();
    assert_eq!(users.len(), present);
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// `user.created` is "create or heal" (docs/SCHEMA.md): a create of an existing
/// user with a new name or metadata must rename it, on the wire too. The fault
/// run caught this going wrong (217 of 1,000 users stale) while the
/// `ClientRequestToken` came from the sub alone: Chime answered the second
/// create as an idempotent replay of the first and the user kept its old name.
/// Fixed by a token that also digests the request (4abc4bf); this is the
/// one-user reproduction, through the queue and idp-sync.
async fn a_create_of_an_existing_user_with_a_new_name_renames_it_on_the_wire(mode) {
    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode))
        .await
        .unwrap();
    let sqs = Arc::new(Sqs::new(Arc::new(TokioClock::new()), 1));
    sqs.create_queue(QueueConfig::fifo(DLQ).with_content_based_deduplication(true))
        .unwrap();
    sqs.create_queue(QueueConfig::fifo(QUEUE).with_redrive(DLQ, 5))
        .unwrap();
    let user = sub(1);
    for (n, (name, department)) in [("Ada", "R&D"), ("Ada Lovelace", "Ops")]
        .into_iter()
        .enumerate()
    {
        let body = json!({"version": 1, "type": "user.created", "eventId": format!("e{n}"),
                          "user": {"sub": user, "displayName": name, "metadata": {"department": department}}});
        sqs.send(
            QUEUE,
            SendMessage::new(body.to_string())
                .group(user.clone())
                .deduplication_id(format!("e{n}")),
        )
        .unwrap();
    }
    let deps = IdpSync::new(
        chime_directory(&fake, |_| {}),
        SimQueue::new(sqs.clone(), DLQ),
        InMemoryLedger::new(),
    );
    let report = drain(
        &sqs,
        &EventSourceMapping::new(QUEUE),
        &deps,
        &Driver::default(),
    )
    .await;
    let users = fake_users(&fake);
    let have = &users[&user];
    assert_eq!(
        (have.name.as_str(), have.metadata.as_deref()),
        ("Ada Lovelace", Some(r#"{"department":"Ops"}"#)),
        "outcomes: {:?}",
        report.outcomes
    );
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// End to end: the compiled `idp-sync` bootstrap behind the mock Lambda
/// Runtime API, fed by the simulated event source mapping, and its process
/// killed (SIGKILL) in the middle of a batch, after some of the batch's Chime
/// calls went through. The killed invocation never answers, so the mapping
/// deletes nothing; the whole batch comes back after the visibility timeout
/// to a fresh process, and the final state is still exactly the model.
async fn killing_the_idp_sync_process_mid_batch_redelivers_the_whole_batch(mode) {
    // 40 ms per Chime call: a batch of one user's events takes long enough to
    // be killed in the middle.
    let fake =
        FakeChime::start(
            FakeConfig::new()
                .with_missing_user(mode)
                .with_faults(FaultConfig::none().with_latency(40, 40)),
        )
            .await
            .unwrap();
    let sqs = Sqs::new(Arc::new(TokioClock::new()), KILL_SEED);
    sqs.create_queue(QueueConfig::fifo(DLQ).with_content_based_deduplication(true))
        .unwrap();
    // Visibility 5 s, longer than the function timeout below.
    sqs.create_queue(
        QueueConfig::fifo(QUEUE)
            .with_visibility_timeout(Duration::from_secs(5))
            .with_redrive(DLQ, 5),
    )
    .unwrap();
    // Four users, eight events each, sent interleaved; the last event wins.
    let mut expected: BTreeMap<String, Option<Expected>> = BTreeMap::new();
    let script = [
        "user.created",
        "user.updated",
        "user.updated",
        "user.deleted",
        "user.created",
        "user.updated",
        "user.deleted",
        "user.created",
    ];
    for (step, kind) in script.iter().enumerate() {
        for (u, first_name) in FIRST.iter().enumerate().take(4) {
            let kind = if u == 3 && step == 7 {
                "user.deleted"
            } else {
                *kind
            };
            let id = sub(u);
            let mut user = json!({"sub": id});
            let state = if kind == "user.deleted" {
                None
            } else {
                let name = format!("{first_name} {step}");
                let metadata = json!({"department": DEPARTMENTS[step % 4], "rev": step});
                user["displayName"] = json!(name);
                user["metadata"] = metadata.clone();
                Some(Expected {
                    name,
                    metadata: metadata.to_string(),
                })
            };
            expected.insert(id.clone(), state);
            let event_id = format!("kill-{u}-{step}");
            let body = json!({"version": 1, "type": kind, "eventId": event_id, "user": user});
            sqs.send(
                QUEUE,
                SendMessage::new(body.to_string())
                    .group(id)
                    .deduplication_id(event_id),
            )
            .unwrap();
        }
    }
    let function = Function {
        timeout: Duration::from_secs(4),
        ..IDP_SYNC
    };
    let endpoint = fake.endpoint_url();
    let env = [
        ("APP_INSTANCE_ARN", esm_driver::APP_INSTANCE),
        ("DELETE_MODE", "immediate"),
        // Never used: nothing here is dead-lettered.
        (
            "DLQ_URL",
            "http://127.0.0.1:9/123456789012/fault-run-dlq.fifo",
        ),
        ("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", endpoint.as_str()),
    ];
    let esm = EventSourceMapping::new(QUEUE);

    // The first batch: kill the process once Chime has answered three of its calls.
    let first = Lambda::start(function, &env).await;
    first.api.wait_for_polls(1, Duration::from_secs(10)).await;
    let batch = esm.poll(&sqs).unwrap().expect("a first batch");
    let killed_ids: BTreeSet<String> = batch
        .messages
        .iter()
        .map(|m| m.message_id.clone())
        .collect();
    let request = first
        .api
        .enqueue(&serde_json::to_value(&batch.event).unwrap());
    let waiting = std::time::Instant::now();
    while fake.counters().0.values().map(|c| c.succeeded).sum::<u64>() < 3 {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the function made no Chime call"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.process.kill();
    assert!(first.process.try_status().is_some(), "the process is dead");
    let seen = first.api.seen();
    assert!(seen.handed_out.contains(&request));
    assert!(
        !seen.outcomes.contains_key(&request),
        "killed before it answered"
    );
    let settled = esm.complete(&sqs, &batch, &Invocation::Failed).unwrap();
    assert!(settled.deleted.is_empty());
    drop(first);

    // A fresh sandbox gets the rest, and the killed batch once it is visible again.
    let second = Lambda::start(function, &env).await;
    let mut redelivered = BTreeMap::new();
    let started = std::time::Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the queue did not drain"
        );
        let Some(batch) = esm.poll(&sqs).unwrap() else {
            if sqs.depth(QUEUE).unwrap().total() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        for m in &batch.messages {
            if killed_ids.contains(&m.message_id) {
                // The first delivery after the kill.
                redelivered
                    .entry(m.message_id.clone())
                    .or_insert(m.receive_count);
            }
        }
        let outcome = second
            .invoke_within(
                &serde_json::to_value(&batch.event).unwrap(),
                function.timeout + Duration::from_secs(5),
            )
            .await;
        let invocation = match outcome {
            Outcome::Response(body) => Invocation::Returned(body),
            Outcome::Error(_) => Invocation::Failed,
        };
        // On a loaded machine a batch may outrun its deadline: what it did not
        // finish comes back like anything else reported failed.
        esm.complete(&sqs, &batch, &invocation).unwrap();
    }
    assert_eq!(
        redelivered.keys().collect::<BTreeSet<_>>(),
        killed_ids.iter().collect::<BTreeSet<_>>(),
        "the whole killed batch came back"
    );
    assert!(
        redelivered.values().all(|count| *count == 2),
        "{redelivered:?}"
    );
    let users = fake_users(&fake);
    for (id, want) in &expected {
        let have = users.get(id).map(|u| Expected {
            name: u.name.clone(),
            metadata: u.metadata.clone().unwrap_or_default(),
        });
        assert_eq!(&have, want, "{id}");
    }
    assert_eq!(
        users.len(),
        expected.values().filter(|e| e.is_some()).count()
    );
    assert_eq!(sqs.depth(DLQ).unwrap().total(), 0);
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// On a standard queue SQS delivers at least once: here a third of the
/// deletes are missed by a replica, so those messages come back after being
/// handled. Creates are idempotent, so each user still exists exactly once.
async fn a_standard_queue_delivering_messages_twice_still_makes_each_user_once(mode) {
    const STD: &str = "idp-sync-standard";
    const STD_DLQ: &str = "idp-sync-standard-dlq";
    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode))
        .await
        .unwrap();
    let sqs = Arc::new(Sqs::new(Arc::new(TokioClock::new()), EVENT_SEED));
    sqs.create_queue(QueueConfig::standard(STD_DLQ)).unwrap();
    sqs.create_queue(
        QueueConfig::standard(STD)
            .with_visibility_timeout(Duration::from_secs(1))
            .with_redrive(STD_DLQ, 5)
            .with_duplicate_delivery_rate(0.3),
    )
    .unwrap();
    for n in 0..200 {
        let body = json!({"version": 1, "type": "user.created", "eventId": format!("s{n}"),
                          "user": {"sub": sub(n), "displayName": format!("User {n}")}});
        sqs.send(STD, SendMessage::new(body.to_string())).unwrap();
    }
    let deps = IdpSync::new(
        chime_directory(&fake, |_| {}),
        SimQueue::new(sqs.clone(), STD_DLQ),
        InMemoryLedger::new(),
    );
    let driver = Driver {
        pollers: 3,
        function_timeout: Duration::from_millis(800),
        ..Driver::default()
    };
    let report = drain(&sqs, &EventSourceMapping::new(STD), &deps, &driver).await;
    let stats = sqs.stats(STD).unwrap();
    assert!(stats.lost_deletes > 30, "{stats:?}");
    // Every lost delete brought its message back once more.
    assert!(stats.redeliveries >= stats.lost_deletes, "{stats:?}");
    let users = fake_users(&fake);
    assert_eq!(users.len(), 200);
    for n in 0..200 {
        assert_eq!(users[&sub(n)].name, format!("User {n}"));
    }
    assert!(sqs.messages(STD_DLQ).unwrap().is_empty());
    // The copies were applied again, as the idempotent replays they are.
    assert!(
        report.outcomes_starting("applied/") >= 200 + stats.lost_deletes,
        "{:?}",
        report.outcomes
    );
}
}
