//! The event source mapping against the Lambda documentation's rules for SQS
//! with `ReportBatchItemFailures`.

use std::sync::Arc;
use std::time::Duration;

use crate::lambda::{BatchFailure, EventSourceMapping, Invocation};
use crate::{ManualClock, QueueConfig, SendMessage, Sqs, attribute};
use serde_json::json;

const VT: Duration = Duration::from_secs(180);

fn setup() -> (Arc<ManualClock>, Sqs, EventSourceMapping) {
    let clock = Arc::new(ManualClock::new());
    let sqs = Sqs::new(clock.clone(), 11);
    sqs.create_queue(QueueConfig::fifo("dlq.fifo")).unwrap();
    sqs.create_queue(
        QueueConfig::fifo("sync.fifo")
            .with_visibility_timeout(VT)
            .with_redrive("dlq.fifo", 5),
    )
    .unwrap();
    for (group, body) in [("A", "a1"), ("A", "a2"), ("B", "b1")] {
        sqs.send(
            "sync.fifo",
            SendMessage::new(body)
                .group(group)
                .deduplication_id(body)
                .attribute("Source", "test"),
        )
        .unwrap();
    }
    (clock, sqs, EventSourceMapping::new("sync.fifo"))
}

fn ids(batch: &crate::lambda::Batch, picks: &[usize]) -> Vec<serde_json::Value> {
    picks
        .iter()
        .map(|i| json!({"itemIdentifier": batch.messages[*i].message_id}))
        .collect()
}

fn remaining(sqs: &Sqs) -> Vec<String> {
    sqs.messages("sync.fifo")
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[test]
fn records_look_like_what_lambda_sends() {
    let (_, sqs, esm) = setup();
    let batch = esm.poll(&sqs).unwrap().unwrap();
    assert_eq!(batch.len(), 3);
    let event = serde_json::to_value(&batch.event).unwrap();
    let r = &event["Records"][0];
    assert_eq!(r["eventSource"], "aws:sqs");
    assert_eq!(
        r["eventSourceARN"],
        "arn:aws:sqs:us-east-1:123456789012:sync.fifo"
    );
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["body"], "a1");
    assert_eq!(r["attributes"][attribute::MESSAGE_GROUP_ID], "A");
    assert_eq!(r["attributes"][attribute::APPROXIMATE_RECEIVE_COUNT], "1");
    assert_eq!(r["messageAttributes"]["Source"]["stringValue"], "test");
    assert_eq!(r["messageAttributes"]["Source"]["dataType"], "String");
    assert_eq!(r["messageId"], batch.messages[0].message_id.as_str());
    assert_eq!(
        r["receiptHandle"],
        batch.messages[0].receipt_handle.as_str()
    );
}

#[test]
fn a_clean_answer_deletes_the_whole_batch() {
    for answer in [
        json!({"batchItemFailures": []}),
        json!({}),
        json!(null),
        json!({"batchItemFailures": null}),
    ] {
        let (_, sqs, esm) = setup();
        let batch = esm.poll(&sqs).unwrap().unwrap();
        let done = esm
            .complete(&sqs, &batch, &Invocation::Returned(answer.clone()))
            .unwrap();
        assert_eq!(done.deleted.len(), 3, "{answer}");
        assert!(remaining(&sqs).is_empty(), "{answer}");
    }
}

#[test]
fn reported_failures_stay_and_come_back_the_rest_is_deleted() {
    let (clock, sqs, esm) = setup();
    let batch = esm.poll(&sqs).unwrap().unwrap();
    let answer = json!({"batchItemFailures": ids(&batch, &[1])});
    let done = esm
        .complete(&sqs, &batch, &Invocation::Returned(answer))
        .unwrap();
    assert_eq!(done.retried, [batch.messages[1].message_id.clone()]);
    assert_eq!(done.deleted.len(), 2);
    assert_eq!(remaining(&sqs), ["a2"]);
    assert!(
        esm.poll(&sqs).unwrap().is_none(),
        "in flight until the timeout"
    );
    clock.advance(VT);
    let again = esm.poll(&sqs).unwrap().unwrap();
    assert_eq!(again.messages[0].body, "a2");
    assert_eq!(again.messages[0].receive_count, 2);
}

#[test]
fn an_identifier_not_in_the_batch_or_empty_fails_the_whole_batch() {
    for answer in [
        json!({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}),
        json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
        json!({"batchItemFailures": [{"itemIdentifier": null}]}),
        json!({"batchItemFailures": "x"}),
        json!("not a batch response"),
    ] {
        let (clock, sqs, esm) = setup();
        let batch = esm.poll(&sqs).unwrap().unwrap();
        let done = esm
            .complete(&sqs, &batch, &Invocation::Returned(answer.clone()))
            .unwrap();
        assert!(
            matches!(done.batch_failure, Some(BatchFailure::InvalidResponse(_))),
            "{answer}"
        );
        assert!(done.deleted.is_empty());
        clock.advance(VT);
        assert_eq!(esm.poll(&sqs).unwrap().unwrap().len(), 3, "{answer}");
    }
}

#[test]
fn a_failed_or_killed_invocation_leaves_the_whole_batch_to_come_back() {
    let (clock, sqs, esm) = setup();
    let batch = esm.poll(&sqs).unwrap().unwrap();
    let done = esm.complete(&sqs, &batch, &Invocation::Failed).unwrap();
    assert_eq!(done.batch_failure, Some(BatchFailure::InvocationFailed));
    assert_eq!(done.retried.len(), 3);
    assert!(esm.poll(&sqs).unwrap().is_none());
    clock.advance(VT);
    let again = esm.poll(&sqs).unwrap().unwrap();
    let bodies: Vec<&str> = again.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["a1", "a2", "b1"], "in order, every group again");
}

#[test]
fn a_batch_answered_after_the_visibility_timeout_cannot_be_deleted_on_fifo() {
    let (clock, sqs, esm) = setup();
    let batch = esm.poll(&sqs).unwrap().unwrap();
    clock.advance(VT + Duration::from_secs(1));
    let done = esm
        .complete(&sqs, &batch, &Invocation::Returned(json!({})))
        .unwrap();
    assert_eq!(done.failed_deletes.len(), 3);
    assert!(done.failed_deletes[0].1.contains("expired"));
    assert_eq!(remaining(&sqs).len(), 3, "handled, yet delivered again");
}

#[test]
fn batch_size_bounds_the_receive() {
    let (_, sqs, esm) = setup();
    let esm = esm.with_batch_size(1);
    assert_eq!(esm.poll(&sqs).unwrap().unwrap().len(), 1);
    let err = EventSourceMapping::new("sync.fifo")
        .with_batch_size(11)
        .poll(&sqs)
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterValue");
}
