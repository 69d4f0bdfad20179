//! The sync pipeline as the end-to-end tests drive it: messages received
//! from moto's FIFO queue handed to the idp-sync bootstrap as the event
//! source mapping hands them, and Chime (the fake) read back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message};
use chime_identity_fake::FakeChimeHandle;
use serde_json::{Value, json};

use crate::lambda::Lambda;
use crate::moto::{FifoQueues, attribute_map, depth, receive};

/// A message received from moto as the event source mapping hands it to the function.
pub fn record(m: &Message, queue_arn: &str) -> Value {
    json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
           "attributes": attribute_map(m), "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
           "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"})
}

/// Drain the sync queue through idp-sync as the event source mapping does: batches of up
/// to ten, the messages the partial batch response does not list deleted, the others left
/// to come back. Returns (invocations, messages applied).
pub async fn drain(sqs: &Sqs, queues: &FifoQueues, idp: &Lambda) -> (usize, usize) {
    let until = Instant::now() + Duration::from_secs(600);
    let (mut invocations, mut applied) = (0, 0);
    loop {
        assert!(
            Instant::now() < until,
            "the queue did not drain in 10 minutes"
        );
        let messages = receive(sqs, &queues.queue_url, 10, 1).await;
        if messages.is_empty() {
            if depth(sqs, &queues.queue_url).await == 0 {
                return (invocations, applied);
            }
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| record(m, &queues.queue_arn))
            .collect();
        let outcome = idp.invoke(&json!({ "Records": records })).await;
        invocations += 1;
        let failed: BTreeSet<String> = outcome.response()["batchItemFailures"]
            .as_array()
            .expect("a partial batch response")
            .iter()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
            .collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("an entry")
            })
            .collect();
        applied += done.len();
        if !done.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&queues.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .expect("DeleteMessageBatch");
        }
    }
}

/// The fake's users: id → (name, deletion pending).
pub fn chime_users(fake: &FakeChimeHandle) -> BTreeMap<String, (String, bool)> {
    fake.users()
        .into_iter()
        .map(|u| {
            let pending = u.expiration.as_ref().is_some_and(|e| e.days < 5475);
            (u.app_instance_user_id, (u.name, pending))
        })
        .collect()
}
