//! Keeps the SQS simulator honest: the same 200-event run of idp-sync through
//! the simulator (`sqs-sim`) and through moto's SQS server, with the same
//! deterministic failures, must show the same protocol-level facts — the ones
//! the fault tests rely on:
//!
//! - a message reported failed is delivered again, with
//!   `ApproximateReceiveCount` one higher each time;
//! - a message handled successfully is deleted and never delivered again;
//! - a message still failing after `maxReceiveCount` receives is moved to the
//!   DLQ, after exactly that many receives;
//! - records carry the FIFO system attributes, message attributes (the
//!   `FailureReason` of what idp-sync dead-letters) survive the round trip,
//!   and a resent deduplication id is dropped.
//!
//! Ordering within a group is *not* compared: moto's FIFO ordering is not
//! strict (docs/ARCHITECTURE.md, "Testing"); the simulator's follows the SQS documentation and is
//! tested against it in `crates/sqs-sim/tests`.

use testkit::esm_driver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use chime_sync_aws::SqsQueue;
use chime_sync_core::handlers::idp_sync::{self, CODE_ATTRIBUTE, IdpSync, REASON_ATTRIBUTE};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::memory::InMemoryDirectory;
use chime_sync_core::{AppInstanceArn, DirectoryError, Queue, UserId};
use esm_driver::{APP_INSTANCE, record_from_sdk};
use serde_json::json;
use sqs_sim::lambda::EventSourceMapping;
use sqs_sim::{ManualClock, QueueConfig, SendMessage, SimQueue, SplitMix64, Sqs, attribute};
use testkit::moto::{self, Moto};

const SEED: u64 = 0x5EED_0010;
const USERS: usize = 40;
const EVENTS: usize = 200;
const MAX_RECEIVE_COUNT: u32 = 3;
const VISIBILITY_SECS: u32 = 1;

fn sub(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{:012x}", n + 1)
}

/// Users whose first directory call fails (throttled) and users whose calls
/// always fail (their messages must end in the DLQ by redrive).
fn flaky(n: usize) -> bool {
    n % 5 == 1
}
fn stuck(n: usize) -> bool {
    n == 7 || n == 23
}

/// The in-memory directory, failing by user so that both runs fail the same
/// messages whatever order the queue delivers them in.
fn faulty() -> InMemoryDirectory {
    let directory = InMemoryDirectory::new(AppInstanceArn::parse(APP_INSTANCE).unwrap());
    for n in 0..USERS {
        let id = UserId::parse(&sub(n)).unwrap();
        if stuck(n) {
            directory.fail_always_for(id, DirectoryError::Unavailable("stuck user".into()));
        } else if flaky(n) {
            directory.fail_next_for(id, [DirectoryError::Throttled("first call".into())]);
        }
    }
    directory
}

/// The messages to send: (group, deduplication id, body, message attribute).
fn workload() -> Vec<(String, String, String)> {
    let mut rng = SplitMix64::new(SEED);
    let mut out = Vec::new();
    for i in 0..EVENTS {
        let u = if i < USERS { i } else { rng.below(USERS) };
        let kind = ["user.created", "user.updated", "user.deleted"]
            [if i < USERS { 0 } else { rng.below(3) }];
        let mut user = json!({"sub": sub(u)});
        if kind != "user.deleted" {
            user["displayName"] = json!(format!("User {u} v{i}"));
        }
        let body = json!({"version": 1, "type": kind, "eventId": format!("e{i}"), "user": user});
        out.push((sub(u), format!("e{i}"), body.to_string()));
    }
    for (n, body) in [
        "{oops",
        "[]",
        r#"{"version":1,"type":"user.renamed","user":{}}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let at = rng.below(out.len());
        out.insert(at, (sub(n * 11), format!("poison-{n}"), body.to_owned()));
    }
    out
}

/// One delivery of one message.
#[derive(Debug, Clone)]
struct Delivery {
    body: String,
    receipt_handle: String,
    attributes: BTreeMap<String, String>,
    record: aws_lambda_events::event::sqs::SqsMessage,
}

/// A DLQ message.
#[derive(Debug, Clone)]
struct Dead {
    body: String,
    attributes: BTreeMap<String, String>,
}

/// What the run needs from a queue service.
trait Backend {
    /// Send (group, deduplication id, body) messages, in batches where it can.
    async fn send_all(&self, messages: &[(String, String, String)]);
    async fn receive(&self) -> Vec<Delivery>;
    async fn delete_all(&self, receipt_handles: &[String]);
    async fn depth(&self) -> u64;
    /// Nothing visible but messages in flight: let the visibility timeout pass.
    async fn wait(&self);
    async fn dead_letters(&self) -> Vec<Dead>;
}

struct SimBackend {
    sqs: Arc<Sqs>,
    clock: Arc<ManualClock>,
}

const SIM_QUEUE: &str = "cross-check.fifo";
const SIM_DLQ: &str = "cross-check-dlq.fifo";

impl Backend for SimBackend {
    async fn send_all(&self, messages: &[(String, String, String)]) {
        for (group, dedup, body) in messages {
            self.sqs
                .send(
                    SIM_QUEUE,
                    SendMessage::new(body.as_str())
                        .group(group.as_str())
                        .deduplication_id(dedup.as_str()),
                )
                .unwrap();
        }
    }
    async fn receive(&self) -> Vec<Delivery> {
        let Some(batch) = EventSourceMapping::new(SIM_QUEUE).poll(&self.sqs).unwrap() else {
            return Vec::new();
        };
        batch
            .messages
            .iter()
            .zip(batch.event.records)
            .map(|(m, record)| Delivery {
                body: m.body.clone(),
                receipt_handle: m.receipt_handle.clone(),
                attributes: m.attributes.clone(),
                record,
            })
            .collect()
    }
    async fn delete_all(&self, receipt_handles: &[String]) {
        for handle in receipt_handles {
            self.sqs.delete(SIM_QUEUE, handle).unwrap();
        }
    }
    async fn depth(&self) -> u64 {
        self.sqs.depth(SIM_QUEUE).unwrap().total() as u64
    }
    async fn wait(&self) {
        self.clock
            .advance(Duration::from_secs(u64::from(VISIBILITY_SECS)));
    }
    async fn dead_letters(&self) -> Vec<Dead> {
        self.sqs
            .messages(SIM_DLQ)
            .unwrap()
            .into_iter()
            .map(|m| Dead {
                body: m.body,
                attributes: m.message_attributes,
            })
            .collect()
    }
}

struct MotoBackend {
    sqs: aws_sdk_sqs::Client,
    queues: moto::FifoQueues,
}

impl Backend for MotoBackend {
    async fn send_all(&self, messages: &[(String, String, String)]) {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (group, dedup, body))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(group)
                        .message_deduplication_id(dedup)
                        .build()
                        .expect("a complete entry")
                })
                .collect();
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queues.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("SendMessageBatch");
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }
    async fn receive(&self) -> Vec<Delivery> {
        moto::receive(&self.sqs, &self.queues.queue_url, 10, 0)
            .await
            .iter()
            .map(|m| Delivery {
                body: m.body().unwrap_or_default().to_owned(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                attributes: moto::attribute_map(m).into_iter().collect(),
                record: record_from_sdk(m, &self.queues.queue_arn, moto::REGION),
            })
            .collect()
    }
    async fn delete_all(&self, receipt_handles: &[String]) {
        if receipt_handles.is_empty() {
            return;
        }
        let entries = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .expect("a complete entry")
            })
            .collect();
        let out = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queues.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("DeleteMessageBatch");
        assert!(out.failed().is_empty(), "{:?}", out.failed());
    }
    async fn depth(&self) -> u64 {
        moto::depth(&self.sqs, &self.queues.queue_url).await
    }
    async fn wait(&self) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    async fn dead_letters(&self) -> Vec<Dead> {
        // The DLQ is FIFO too: a group's next message comes only once the one
        // before is deleted, so read it by receiving and deleting.
        let mut dead = Vec::new();
        let started = std::time::Instant::now();
        while moto::depth(&self.sqs, &self.queues.dlq_url).await > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the DLQ did not drain"
            );
            for m in moto::receive(&self.sqs, &self.queues.dlq_url, 10, 1).await {
                dead.push(Dead {
                    body: m.body().unwrap_or_default().to_owned(),
                    attributes: m
                        .message_attributes()
                        .map(|a| {
                            a.iter()
                                .filter_map(|(k, v)| {
                                    v.string_value().map(|s| (k.clone(), s.to_owned()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                self.sqs
                    .delete_message()
                    .queue_url(&self.queues.dlq_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage on the DLQ");
            }
        }
        dead
    }
}

/// The protocol facts one run showed.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    /// Messages sent, and sends dropped as duplicates.
    enqueued: usize,
    deduplicated: usize,
    /// Bodies deleted after successful handling, and how many.
    handled: BTreeSet<String>,
    /// Bodies in the DLQ that idp-sync forwarded (with their ErrorCode).
    forwarded: BTreeMap<String, String>,
    /// Bodies in the DLQ by redrive, and how often each was delivered.
    redriven: BTreeMap<String, u32>,
    /// Violations of the facts listed in the module documentation.
    violations: Vec<String>,
    /// System attributes every delivery carried.
    attributes_on_every_delivery: BTreeSet<String>,
}

async fn run<B: Backend, Q: Queue>(backend: &B, dlq: Q) -> Facts {
    let messages = workload();
    // Producer retries of every 50th message: same deduplication id, must be dropped.
    let resends: Vec<_> = messages.iter().step_by(50).cloned().collect();
    backend.send_all(&messages).await;
    backend.send_all(&resends).await;
    let sends = messages.len() + resends.len();
    let enqueued = usize::try_from(backend.depth().await).unwrap();
    let deduplicated = sends - enqueued;
    let deps = IdpSync::new(faulty(), dlq, InMemoryLedger::new());
    let mut deliveries: BTreeMap<String, u32> = BTreeMap::new();
    let mut handled = BTreeSet::new();
    let mut violations = Vec::new();
    let mut common: Option<BTreeSet<String>> = None;
    let started = std::time::Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run did not drain"
        );
        let batch = backend.receive().await;
        if batch.is_empty() {
            if backend.depth().await == 0 {
                break;
            }
            backend.wait().await;
            continue;
        }
        for d in &batch {
            let seen = deliveries.entry(d.body.clone()).or_default();
            *seen += 1;
            let count: u32 = d.attributes[attribute::APPROXIMATE_RECEIVE_COUNT]
                .parse()
                .unwrap();
            if count != *seen {
                violations.push(format!(
                    "delivery {seen} of {} says ApproximateReceiveCount {count}",
                    d.body
                ));
            }
            if handled.contains(&d.body) {
                violations.push(format!("{} delivered again after it was deleted", d.body));
            }
            let keys: BTreeSet<String> = d.attributes.keys().cloned().collect();
            common = Some(match common {
                None => keys,
                Some(c) => c.intersection(&keys).cloned().collect(),
            });
        }
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(|d| d.record.clone()).collect();
        let response = idp_sync::handle(&event, &deps, None).await.response();
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let mut done = Vec::new();
        for d in &batch {
            if !failed.contains(d.record.message_id.as_deref().unwrap_or_default()) {
                done.push(d.receipt_handle.clone());
                handled.insert(d.body.clone());
            }
        }
        backend.delete_all(&done).await;
    }
    let mut forwarded = BTreeMap::new();
    let mut redriven = BTreeMap::new();
    for dead in backend.dead_letters().await {
        match dead.attributes.get(CODE_ATTRIBUTE) {
            Some(code) => {
                if dead
                    .attributes
                    .get(REASON_ATTRIBUTE)
                    .is_none_or(|r| r.is_empty())
                {
                    violations.push(format!("{} forwarded without a reason", dead.body));
                }
                forwarded.insert(dead.body, code.clone());
            }
            None => {
                let times = deliveries.get(&dead.body).copied().unwrap_or(0);
                if times != MAX_RECEIVE_COUNT {
                    violations.push(format!(
                        "{} redriven after {times} deliveries, not {MAX_RECEIVE_COUNT}",
                        dead.body
                    ));
                }
                redriven.insert(dead.body, times);
            }
        }
    }
    for (body, times) in &deliveries {
        let settled = handled.contains(body) || redriven.contains_key(body);
        if !settled {
            violations.push(format!(
                "{body} neither deleted nor in the DLQ after {times} deliveries"
            ));
        }
    }
    Facts {
        enqueued,
        deduplicated,
        handled,
        forwarded,
        redriven,
        violations,
        attributes_on_every_delivery: common.unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_and_moto_agree_on_redelivery_deletion_redrive_and_attributes() {
    let clock = Arc::new(ManualClock::new());
    let sqs = Arc::new(Sqs::new(clock.clone(), SEED));
    sqs.create_queue(QueueConfig::fifo(SIM_DLQ)).unwrap();
    sqs.create_queue(
        QueueConfig::fifo(SIM_QUEUE)
            .with_visibility_timeout(Duration::from_secs(u64::from(VISIBILITY_SECS)))
            .with_redrive(SIM_DLQ, MAX_RECEIVE_COUNT),
    )
    .unwrap();
    let sim = run(
        &SimBackend {
            sqs: sqs.clone(),
            clock,
        },
        SimQueue::new(sqs.clone(), SIM_DLQ),
    )
    .await;

    let moto = Moto::start().await;
    let client = moto.sqs();
    let queues =
        moto::create_fifo_with_dlq(&client, "cross-check", VISIBILITY_SECS, MAX_RECEIVE_COUNT)
            .await;
    let dlq = SqsQueue::from_client(client.clone(), queues.dlq_url.clone());
    let moto_facts = run(
        &MotoBackend {
            sqs: client,
            queues,
        },
        dlq,
    )
    .await;

    assert!(
        sim.violations.is_empty(),
        "simulator: {:#?}",
        sim.violations
    );
    assert!(
        moto_facts.violations.is_empty(),
        "moto: {:#?}",
        moto_facts.violations
    );
    // Both saw the same sends, deletions, forwards and redrives.
    assert_eq!(sim.enqueued, EVENTS + 3);
    assert_eq!(sim.deduplicated, moto_facts.deduplicated);
    assert_eq!(sim.enqueued, moto_facts.enqueued);
    assert_eq!(sim.forwarded.len(), 3, "the poison: {:?}", sim.forwarded);
    assert_eq!(sim.forwarded, moto_facts.forwarded);
    assert!(
        !sim.redriven.is_empty(),
        "the stuck users' messages are redriven"
    );
    assert_eq!(sim.redriven, moto_facts.redriven);
    assert_eq!(sim.handled, moto_facts.handled);
    // The attributes the consumer reads are on every record of both.
    for name in [
        attribute::MESSAGE_GROUP_ID,
        attribute::MESSAGE_DEDUPLICATION_ID,
        attribute::SEQUENCE_NUMBER,
        attribute::APPROXIMATE_RECEIVE_COUNT,
        attribute::SENT_TIMESTAMP,
        attribute::APPROXIMATE_FIRST_RECEIVE_TIMESTAMP,
        attribute::SENDER_ID,
    ] {
        assert!(
            sim.attributes_on_every_delivery.contains(name),
            "simulator lacks {name}"
        );
        assert!(
            moto_facts.attributes_on_every_delivery.contains(name),
            "moto lacks {name}"
        );
    }
    // Keep the attribute-name constants honest against the SDK's.
    assert_eq!(
        MessageSystemAttributeName::MessageGroupId.as_str(),
        attribute::MESSAGE_GROUP_ID
    );
}
