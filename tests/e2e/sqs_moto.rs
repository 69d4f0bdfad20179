//! The queue rung of the testing ladder (docs/TESTING.md, "The ladder", 4): the real
//! `aws-sdk-sqs` client, through `chime_sync_aws::SqsQueue` and the real
//! handlers, against moto's SQS server.
//!
//! - post-confirmation's hand-off arrives grouped and deduplicated by sub,
//!   and a repeated hand-off (Cognito retrying) is dropped by SQS;
//! - idp-sync's dead-lettering arrives in the DLQ with its reason attributes;
//! - the event source mapping's loop (receive → handler → delete the
//!   succeeded ids) redelivers exactly the reported failures;
//! - a message failing `maxReceiveCount` times is moved to the DLQ by redrive.
//!
//! moto's FIFO ordering is not strict (§7), so nothing here asserts the
//! order in which moto hands messages out; the per-group order rules are
//! proven against the SQS documentation in the handler's unit tests.
//!
//! Each test starts its own moto server (a few seconds, mostly Python
//! start-up) so tests share no queues and can run in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
};
use chime_sync_aws::SqsQueue;
use chime_sync_core::handlers::idp_sync::{
    self, IdpSync, MessageOutcome, SqsEvent, dead_letter_deduplication_id,
};
use chime_sync_core::handlers::post_confirmation::{self, ConfirmationOutcome, PostConfirmation};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::memory::InMemoryDirectory;
use chime_sync_core::replay::DEMO_APP_INSTANCE_ARN;
use chime_sync_core::{AppInstanceArn, Applied, Directory, DirectoryError, UserId};
use serde_json::{Value, json};
use testkit::moto::{
    self, FifoQueues, Moto, create_fifo_with_dlq, depth, hand_off_body, receive, receive_n,
    string_attribute, system_attribute,
};
use testkit::read_event;

const HEDY: &str = "0000dead-0000-4000-8000-000000000503";
const KATHERINE: &str = "d4e8f1a2-3b6c-4d9e-a5f7-0c2b4e6d8f13";

fn directory() -> InMemoryDirectory {
    InMemoryDirectory::new(AppInstanceArn::parse(DEMO_APP_INSTANCE_ARN).unwrap())
}

fn sub(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A schema-v1 message body.
fn body(kind: &str, sub: &str, name: &str, metadata: Option<Value>) -> String {
    let mut user = json!({"sub": sub, "displayName": name});
    if let Some(m) = metadata {
        user["metadata"] = m;
    }
    json!({"version": 1, "type": kind, "eventId": format!("{kind}-{sub}"), "user": user})
        .to_string()
}

async fn send(sqs: &Client, url: &str, body: &str, group: &str, dedup: &str) -> String {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(group)
        .message_deduplication_id(dedup)
        .message_attributes(
            "Origin",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("sqs_moto test")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(moto::sdk_panic("SendMessage"))
        .message_id
        .expect("SendMessage returns a MessageId")
}

/// The SQS event Lambda's event source mapping builds from received messages
/// (field names and shapes as in AWS's SQS event samples).
fn sqs_event(messages: &[Message], queue_arn: &str) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let message_attributes: BTreeMap<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({"stringValue": v.string_value(), "stringListValues": [],
                                       "binaryListValues": [], "dataType": v.data_type()}),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": moto::attribute_map(m),
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": moto::REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SqsEvent")
}

fn receive_count(m: &Message) -> u32 {
    system_attribute(m, MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "message {:?} has no ApproximateReceiveCount",
                m.message_id()
            )
        })
}

/// DeleteMessageBatch of `messages`; every entry must succeed.
async fn delete(sqs: &Client, url: &str, messages: &[&Message]) {
    if messages.is_empty() {
        return;
    }
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().expect("a receipt handle"))
                .build()
                .unwrap()
        })
        .collect();
    let out = sqs
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap_or_else(moto::sdk_panic("DeleteMessageBatch"));
    assert!(
        out.failed().is_empty(),
        "DeleteMessageBatch failures: {:?}",
        out.failed()
    );
    assert_eq!(out.successful().len(), messages.len());
}

/// One poll of the event source mapping: receive a batch (≤ 10, waiting up
/// to 1 s), hand it to idp-sync, delete what it did not report failed.
struct Poll {
    received: Vec<Message>,
    failed: BTreeSet<String>,
    report: idp_sync::BatchReport,
}

async fn poll_once<D: Directory>(
    sqs: &Client,
    queues: &FifoQueues,
    deps: &IdpSync<D, SqsQueue, InMemoryLedger>,
) -> Poll {
    let received = receive(sqs, &queues.queue_url, 10, 1).await;
    let event = sqs_event(&received, &queues.queue_arn);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let report = idp_sync::handle(&event, deps, Some(deadline)).await;
    let failed: BTreeSet<String> = report
        .response()
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let ids: BTreeSet<String> = received
        .iter()
        .map(|m| m.message_id().unwrap().to_owned())
        .collect();
    // Listing an id that is not in the batch makes Lambda fail the whole batch.
    assert!(
        failed.is_subset(&ids),
        "failures {failed:?} not all in the batch {ids:?}"
    );
    let succeeded: Vec<&Message> = received
        .iter()
        .filter(|m| !failed.contains(m.message_id().unwrap()))
        .collect();
    delete(sqs, &queues.queue_url, &succeeded).await;
    Poll {
        received,
        failed,
        report,
    }
}

/// A directory whose calls about one user fail (retryably) a given number of
/// times, then work: a user whose Chime calls are throttled for a while.
fn failing_for(user: &str, failures: usize) -> InMemoryDirectory {
    let chime = directory();
    chime.fail_next_for(
        UserId::parse(user).unwrap(),
        (0..failures).map(|_| DirectoryError::Throttled("injected by the test".into())),
    );
    chime
}

fn users(directory: &InMemoryDirectory) -> Vec<(String, String, String)> {
    directory
        .users()
        .into_iter()
        .map(|u| (u.id.to_string(), u.name, u.metadata))
        .collect()
}

// ---------------------------------------------------------------------------

/// Chime fails, post-confirmation hands the user to the sync queue: the
/// message is grouped by sub and deduplicated by `cognito-confirm-{sub}`, so
/// Cognito's retry of the same confirmation is dropped by SQS; and the
/// message is one idp-sync applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_confirmation_hand_off_is_grouped_and_deduplicated_by_sub() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "identity-sync", 30, 5).await;
    let queue = SqsQueue::new(
        &moto.sdk_config(),
        &queues.queue_url,
        Some(Duration::from_millis(1500)),
    );
    assert!(queue.is_fifo());
    let chime = directory();
    let deps = PostConfirmation::new(&chime, &queue, InMemoryLedger::new());
    let event = read_event("post-confirmation/confirm-sign-up-chime-outage-hands-off.json");

    // The confirmation, and Cognito's retry of it: Chime fails both times.
    for attempt in 1..=2 {
        chime.fail_next([DirectoryError::Unavailable("simulated 503".into())]);
        let (answer, outcome) = post_confirmation::handle(event.clone(), &deps, None)
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        assert_eq!(
            answer, event,
            "attempt {attempt}: the event comes back unchanged"
        );
        assert_eq!(
            outcome,
            ConfirmationOutcome::HandedOff {
                chime_error: "Unavailable"
            },
            "attempt {attempt}"
        );
    }
    assert!(chime.users().is_empty());

    // SQS kept one message: the second send had the same deduplication id.
    assert_eq!(depth(&sqs, &queues.queue_url).await, 1, "{}", moto.output());
    let received = receive_n(&sqs, &queues.queue_url, 1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let m = &received[0];
    let sent = hand_off_body(m, HEDY);
    let dedup = format!("cognito-confirm-{HEDY}");
    assert_eq!(sent["version"], 1);
    assert_eq!(sent["type"], "user.created");
    assert_eq!(sent["eventId"], dedup.as_str());
    assert_eq!(sent["user"]["sub"], HEDY);
    assert_eq!(sent["user"]["displayName"], "Hedy Lamarr");
    let serialized = m.body().unwrap();
    assert!(
        !serialized.contains('@'),
        "the hand-off carries no email address: {serialized}"
    );

    // The hand-off is what idp-sync consumes: it creates the user.
    let dlq = SqsQueue::new(
        &moto.sdk_config(),
        &queues.dlq_url,
        Some(Duration::from_secs(5)),
    );
    let idp = IdpSync::new(directory(), dlq, InMemoryLedger::new());
    let report = idp_sync::handle(&sqs_event(&received, &queues.queue_arn), &idp, None).await;
    assert_eq!(
        report.messages[0].outcome,
        MessageOutcome::Applied(Applied::Created)
    );
    assert_eq!(
        users(&idp.directory),
        vec![(HEDY.to_owned(), "Hedy Lamarr".to_owned(), String::new())]
    );
}

/// Poison messages go to the DLQ with `FailureReason`, `ErrorCode`,
/// `SourceMessageId` and `SourceQueueArn`, in their group, deduplicated by
/// their SQS message id; the valid message sharing their group is applied,
/// and every message of the batch is deleted from the source queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_sync_dead_letters_poison_messages_with_their_reason() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "hr-events", 30, 5).await;

    // The poison sample's records, sent as the HR connector sent them.
    let sample = read_event("idp-sync/poison-messages-dead-lettered.json");
    let records = sample["Records"].as_array().unwrap();
    let mut sent: BTreeMap<String, (String, String)> = BTreeMap::new(); // moto id -> (body, group)
    let mut sample_ids: BTreeMap<String, String> = BTreeMap::new(); // moto id -> sample id
    for record in records {
        let body = record["body"].as_str().unwrap();
        let group = record["attributes"]["MessageGroupId"].as_str().unwrap();
        let dedup = record["attributes"]["MessageDeduplicationId"]
            .as_str()
            .unwrap();
        let id = send(&sqs, &queues.queue_url, body, group, dedup).await;
        sent.insert(id.clone(), (body.to_owned(), group.to_owned()));
        sample_ids.insert(id, record["messageId"].as_str().unwrap().to_owned());
    }

    let received = receive_n(
        &sqs,
        &queues.queue_url,
        records.len(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(received.len(), records.len(), "{}", moto.output());
    let dlq = SqsQueue::new(
        &moto.sdk_config(),
        &queues.dlq_url,
        Some(Duration::from_secs(5)),
    );
    let deps = IdpSync::new(directory(), dlq, InMemoryLedger::new());
    let event = sqs_event(&received, &queues.queue_arn);
    let report = idp_sync::handle(&event, &deps, None).await;
    assert!(
        report.response().batch_item_failures.is_empty(),
        "{report:?}"
    );
    delete(
        &sqs,
        &queues.queue_url,
        &received.iter().collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(depth(&sqs, &queues.queue_url).await, 0);
    assert_eq!(
        users(&deps.directory),
        vec![(
            KATHERINE.to_owned(),
            "Katherine Johnson".to_owned(),
            String::new()
        )]
    );

    // Expected per sample message id: (ErrorCode, FailureReason).
    let expected: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b81",
            (
                "InvalidJson",
                "invalid JSON: EOF while parsing a string at line 1 column 115",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b82",
            (
                "UnsupportedVersion",
                "unsupported schema version 2: this consumer reads version 1",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b84",
            (
                "UnknownType",
                "unknown event type `user.suspended`: expected user.created, user.updated or user.deleted",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b85",
            (
                "InvalidUserId",
                "invalid user id (sub): it is not a Cognito sub (a UUID like 6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5)",
            ),
        ),
        (
            "d0a6f4b8-5c7e-4f9a-8b1c-3d4e5f6a7b86",
            ("MissingField", "missing field `user`"),
        ),
    ]);
    assert_eq!(depth(&sqs, &queues.dlq_url).await, 5, "{}", moto.output());
    let dead = receive_n(&sqs, &queues.dlq_url, 5, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 5);
    let mut seen = BTreeSet::new();
    for m in &dead {
        let source_id = string_attribute(m, "SourceMessageId")
            .expect("SourceMessageId")
            .to_owned();
        let sample_id = sample_ids[&source_id].as_str();
        let (code, reason) = expected
            .get(sample_id)
            .unwrap_or_else(|| panic!("{sample_id} should not be in the DLQ"));
        let (body, group) = &sent[&source_id];
        assert_eq!(string_attribute(m, "ErrorCode"), Some(*code), "{sample_id}");
        assert_eq!(
            string_attribute(m, "FailureReason"),
            Some(*reason),
            "{sample_id}"
        );
        assert_eq!(
            string_attribute(m, "SourceQueueArn"),
            Some(queues.queue_arn.as_str())
        );
        assert_eq!(
            m.body(),
            Some(body.as_str()),
            "{sample_id}: the body is forwarded as it was"
        );
        assert_eq!(
            system_attribute(m, MessageSystemAttributeName::MessageGroupId),
            Some(group.as_str())
        );
        assert_eq!(
            system_attribute(m, MessageSystemAttributeName::MessageDeduplicationId),
            Some(dead_letter_deduplication_id(&source_id, body).as_str()),
            "{sample_id}: deduplicated by its SQS message id and body"
        );
        seen.insert(sample_id);
    }
    assert_eq!(seen, expected.keys().copied().collect());
}

/// The event source mapping's loop: failures reported in the batch response
/// come back after the visibility timeout; everything else is deleted and
/// never seen again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_batch_items_are_redelivered_and_the_others_deleted() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    // Visibility timeout 1 s: redelivery within a second or two.
    let queues = create_fifo_with_dlq(&sqs, "redelivery", 1, 5).await;
    let (ada, bob, carol, dave) = (sub(1), sub(2), sub(3), sub(4));
    let team = json!({"team": "Ops"});
    // Dave's create and update carry the same name, and only the update has
    // metadata, so his final state does not depend on the (non-strict) order
    // in which moto redelivers them.
    let messages = [
        (body("user.created", &ada, "Ada", None), ada.clone()),
        (body("user.created", &dave, "Dave", None), dave.clone()),
        (body("user.created", &bob, "Bob", None), bob.clone()),
        (
            body("user.updated", &dave, "Dave", Some(team.clone())),
            dave.clone(),
        ),
        (body("user.created", &carol, "Carol", None), carol.clone()),
    ];
    let mut of_dave = BTreeSet::new();
    for (i, (body, group)) in messages.iter().enumerate() {
        let id = send(&sqs, &queues.queue_url, body, group, &format!("m{i}")).await;
        if *group == dave {
            of_dave.insert(id);
        }
    }

    // Dave's first Chime call is throttled; everything else works.
    let chime = failing_for(&dave, 1);
    let dlq = SqsQueue::new(
        &moto.sdk_config(),
        &queues.dlq_url,
        Some(Duration::from_secs(5)),
    );
    let deps = IdpSync::new(&chime, dlq, InMemoryLedger::new());

    let mut deliveries: BTreeMap<String, Vec<u32>> = BTreeMap::new(); // id -> receive counts
    let mut reported_failed: BTreeSet<String> = BTreeSet::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(40);
    while deleted.len() < messages.len() {
        assert!(
            Instant::now() < until,
            "not every message was handled within 40 s: deleted {deleted:?}, deliveries {deliveries:?}\n{}",
            moto.output()
        );
        let poll = poll_once(&sqs, &queues, &deps).await;
        for m in &poll.received {
            let id = m.message_id().unwrap().to_owned();
            assert!(
                !deleted.contains(&id),
                "{id} came back after it was deleted"
            );
            deliveries
                .entry(id.clone())
                .or_default()
                .push(receive_count(m));
            if !poll.failed.contains(&id) {
                deleted.insert(id);
            }
        }
        for r in &poll.report.messages {
            if r.outcome.is_failure() {
                assert_eq!(
                    r.sub.as_ref().map(UserId::to_string),
                    Some(dave.clone()),
                    "{r:?}"
                );
            }
        }
        reported_failed.extend(poll.failed);
    }

    assert_eq!(chime.injected_failures(), 1);
    assert!(
        !reported_failed.is_empty(),
        "Dave's throttled call was reported failed"
    );
    assert!(reported_failed.is_subset(&of_dave));
    for (id, counts) in &deliveries {
        if reported_failed.contains(id) {
            // Redelivered by SQS after the visibility timeout, then deleted.
            assert!(
                counts.len() >= 2 && counts.windows(2).all(|w| w[1] > w[0]),
                "{id}: {counts:?}"
            );
        } else {
            assert_eq!(
                counts,
                &vec![1],
                "{id} was handled on its first delivery and deleted"
            );
        }
    }
    assert_eq!(deliveries.len(), messages.len());
    assert_eq!(depth(&sqs, &queues.queue_url).await, 0);
    assert_eq!(depth(&sqs, &queues.dlq_url).await, 0);
    assert_eq!(
        users(&chime),
        vec![
            (ada, "Ada".to_owned(), String::new()),
            (bob, "Bob".to_owned(), String::new()),
            (carol, "Carol".to_owned(), String::new()),
            (dave, "Dave".to_owned(), team.to_string()),
        ]
    );
}

/// A message whose user's Chime calls keep failing is received
/// `maxReceiveCount` (5) times, reported failed each time, and then moved to
/// the DLQ by SQS's redrive: unchanged, and without our `FailureReason`
/// (this is redrive, not idp-sync's own dead-lettering).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failing_max_receive_count_times_is_redriven_to_the_dlq() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let queues = create_fifo_with_dlq(&sqs, "redrive", 1, 5).await;
    let (stuck, fine) = (sub(7), sub(8));
    let stuck_body = body("user.created", &stuck, "Stuck", None);
    let stuck_id = send(&sqs, &queues.queue_url, &stuck_body, &stuck, "stuck").await;
    let fine_id = send(
        &sqs,
        &queues.queue_url,
        &body("user.created", &fine, "Fine", None),
        &fine,
        "fine",
    )
    .await;

    let chime = directory();
    chime.fail_always_for(
        UserId::parse(&stuck).unwrap(),
        DirectoryError::Unavailable("simulated outage".into()),
    );
    let dlq = SqsQueue::new(
        &moto.sdk_config(),
        &queues.dlq_url,
        Some(Duration::from_secs(5)),
    );
    let deps = IdpSync::new(&chime, dlq, InMemoryLedger::new());

    let mut stuck_counts = Vec::new();
    let mut fine_deliveries = 0;
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(
            Instant::now() < until,
            "the stuck message was not redriven within 40 s (receive counts {stuck_counts:?})\n{}",
            moto.output()
        );
        let poll = poll_once(&sqs, &queues, &deps).await;
        for m in &poll.received {
            let id = m.message_id().unwrap();
            if id == stuck_id {
                assert!(
                    poll.failed.contains(id),
                    "the stuck message is reported failed"
                );
                stuck_counts.push(receive_count(m));
            } else {
                assert_eq!(id, fine_id);
                assert!(!poll.failed.contains(id));
                fine_deliveries += 1;
            }
        }
        if poll.received.is_empty() && depth(&sqs, &queues.queue_url).await == 0 {
            break;
        }
    }
    assert_eq!(fine_deliveries, 1);
    assert_eq!(
        stuck_counts,
        vec![1, 2, 3, 4, 5],
        "received maxReceiveCount times, then redriven"
    );

    let dead = receive_n(&sqs, &queues.dlq_url, 1, Duration::from_secs(5)).await;
    assert_eq!(dead.len(), 1, "{}", moto.output());
    let m = &dead[0];
    assert_eq!(m.body(), Some(stuck_body.as_str()));
    assert_eq!(
        system_attribute(m, MessageSystemAttributeName::MessageGroupId),
        Some(stuck.as_str())
    );
    assert_eq!(string_attribute(m, "FailureReason"), None);
    assert_eq!(
        string_attribute(m, "Origin"),
        Some("sqs_moto test"),
        "message attributes survive redrive"
    );
    assert_eq!(
        users(&chime),
        vec![(fine, "Fine".to_owned(), String::new())]
    );
}
