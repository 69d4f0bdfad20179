//! The simulator on the wire: SQS's JSON protocol (`awsJson1_0`, as the AWS
//! SDKs speak it) for the calls the functions make, `SendMessage` and
//! `SendMessageBatch`, so a real `aws-sdk-sqs` client can send to [`Sqs`].
//!
//! It is what `chime-sync serve-fake` answers SQS with in the local loop: the
//! functions' sends land in the simulator, and a batch of them is handed out
//! as the `SqsEvent` the event source mapping would deliver. The end-to-end
//! tests use moto's SQS; this adapter is for a machine without it.
//!
//! | request (`X-Amz-Target`) | answer |
//! |---|---|
//! | `AmazonSQS.SendMessage` | `{MessageId, SequenceNumber?}` |
//! | `AmazonSQS.SendMessageBatch` (1 to 10 entries) | `{Successful: [...], Failed: [...]}`, each entry on its own |
//! | a queue URL whose last segment names no queue | 400 `QueueDoesNotExist` |
//! | anything else | 400 `UnsupportedOperation` |
//!
//! Errors carry `{"__type", "message"}` and the `x-amzn-query-error` header,
//! as SQS's JSON protocol does.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::SimError;
use crate::lambda::EventSourceMapping;
use crate::queue::{SendMessage, Sent, Sqs};

/// The `X-Amz-Target` prefix of SQS's JSON protocol.
pub const TARGET_PREFIX: &str = "AmazonSQS.";

/// SQS's most entries in one `SendMessageBatch`.
const MAX_BATCH_ENTRIES: usize = 10;

/// A simulator answering SQS's JSON protocol.
#[derive(Clone)]
pub struct SqsEndpoint {
    sqs: Arc<Sqs>,
}

impl SqsEndpoint {
    pub fn new(sqs: Arc<Sqs>) -> Self {
        Self { sqs }
    }

    pub fn sqs(&self) -> &Sqs {
        &self.sqs
    }

    /// Answer one request (`POST /`, its target in `X-Amz-Target`).
    pub fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return client_error("InvalidParameterValue", "the request body is not JSON");
        };
        let Some(queue) = queue_name(&request) else {
            return client_error("MissingParameter", "QueueUrl is required");
        };
        match target.strip_prefix(TARGET_PREFIX) {
            Some("SendMessage") => match self.send(queue, &request) {
                Ok(sent) => json_response(&sent_json(&sent)),
                Err(e) => sim_error(&e),
            },
            Some("SendMessageBatch") => self.send_batch(queue, &request),
            _ => client_error(
                "UnsupportedOperation",
                &format!("the local SQS answers SendMessage and SendMessageBatch, not {target}"),
            ),
        }
    }

    /// Hand out up to ten visible messages of `queue` as the `SqsEvent` the
    /// event source mapping would deliver, deleting them: the caller invokes
    /// the function by hand, so nothing would settle them later.
    pub fn take_batch(&self, queue: &str) -> Result<Value, SimError> {
        let mapping = EventSourceMapping::new(queue);
        let Some(batch) = mapping.poll(&self.sqs)? else {
            return Ok(json!({"Records": []}));
        };
        for message in &batch.messages {
            self.sqs.delete(queue, &message.receipt_handle)?;
        }
        Ok(serde_json::to_value(&batch.event).unwrap_or(Value::Null))
    }

    fn send(&self, queue: &str, entry: &Value) -> Result<Sent, SimError> {
        self.sqs.send(queue, message(entry)?)
    }

    fn send_batch(&self, queue: &str, request: &Value) -> Response {
        let entries = request["Entries"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() || entries.len() > MAX_BATCH_ENTRIES {
            let code = if entries.is_empty() {
                "EmptyBatchRequest"
            } else {
                "TooManyEntriesInBatchRequest"
            };
            return client_error(code, "a batch has 1 to 10 entries");
        }
        let (mut successful, mut failed) = (Vec::new(), Vec::new());
        for entry in &entries {
            let id = entry["Id"].as_str().unwrap_or_default();
            match self.send(queue, entry) {
                Ok(sent) => {
                    let mut done = sent_json(&sent);
                    done["Id"] = json!(id);
                    successful.push(done);
                }
                Err(SimError::QueueDoesNotExist(_)) => {
                    return sim_error(&SimError::QueueDoesNotExist(queue.to_owned()));
                }
                Err(e) => failed.push(json!({
                    "Id": id, "SenderFault": true, "Code": e.code(), "Message": e.to_string(),
                })),
            }
        }
        json_response(&json!({"Successful": successful, "Failed": failed}))
    }
}

/// The queue a request names: the last path segment of its `QueueUrl`.
fn queue_name(request: &Value) -> Option<&str> {
    request["QueueUrl"]
        .as_str()
        .and_then(|url| url.trim_end_matches('/').rsplit('/').next())
        .filter(|name| !name.is_empty())
}

/// One entry (or a `SendMessage` request) as the simulator's message.
fn message(entry: &Value) -> Result<SendMessage, SimError> {
    let body = entry["MessageBody"]
        .as_str()
        .ok_or_else(|| SimError::MissingParameter("MessageBody".to_owned()))?;
    let mut message = SendMessage::new(body);
    if let Some(group) = entry["MessageGroupId"].as_str() {
        message = message.group(group);
    }
    if let Some(dedup) = entry["MessageDeduplicationId"].as_str() {
        message = message.deduplication_id(dedup);
    }
    let attributes: BTreeMap<String, Value> = entry["MessageAttributes"]
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    for (name, value) in attributes {
        match value["StringValue"].as_str() {
            Some(text) => message = message.attribute(name, text),
            None => {
                return Err(SimError::InvalidParameterValue(format!(
                    "message attribute {name}: the local SQS keeps String attributes only"
                )));
            }
        }
    }
    Ok(message)
}

fn sent_json(sent: &Sent) -> Value {
    let mut answer = json!({"MessageId": sent.message_id});
    if let Some(sequence) = &sent.sequence_number {
        answer["SequenceNumber"] = json!(sequence);
    }
    answer
}

fn json_response(body: &Value) -> Response {
    (
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn sim_error(error: &SimError) -> Response {
    client_error(error.code(), &error.to_string())
}

/// A sender's error in SQS's JSON shape; the query-compatible header carries
/// the legacy code the SDKs map (`AWS.SimpleQueueService.NonExistentQueue`).
fn client_error(code: &str, message: &str) -> Response {
    let legacy = match code {
        "QueueDoesNotExist" => "AWS.SimpleQueueService.NonExistentQueue",
        other => other,
    };
    let mut response = (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message}).to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("{legacy};Sender")) {
        response.headers_mut().insert("x-amzn-query-error", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::queue::QueueConfig;

    fn endpoint() -> SqsEndpoint {
        let sqs = Sqs::new(Arc::new(ManualClock::new()), 7);
        sqs.create_queue(QueueConfig::fifo("sync.fifo"))
            .expect("create");
        SqsEndpoint::new(Arc::new(sqs))
    }

    fn target(op: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&format!("AmazonSQS.{op}")).expect("header"),
        );
        headers
    }

    async fn body(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn a_batch_keeps_each_entry_apart_and_hands_out_as_a_lambda_event() {
        let sqs = endpoint();
        let request = json!({
            "QueueUrl": "http://127.0.0.1:4566/123456789012/sync.fifo",
            "Entries": [
                {"Id": "0", "MessageBody": "a", "MessageGroupId": "u1", "MessageDeduplicationId": "d1",
                 "MessageAttributes": {"source": {"DataType": "String", "StringValue": "pool"}}},
                {"Id": "1", "MessageBody": "b", "MessageDeduplicationId": "d2"},
            ]
        });
        let (status, answer) =
            body(sqs.answer(&target("SendMessageBatch"), request.to_string().as_bytes())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["Successful"][0]["Id"], "0");
        assert_eq!(answer["Failed"][0]["Id"], "1", "no group on a FIFO queue");
        assert_eq!(answer["Failed"][0]["Code"], "MissingParameter");
        let event = sqs.take_batch("sync.fifo").expect("batch");
        assert_eq!(event["Records"][0]["body"], "a");
        assert_eq!(
            event["Records"][0]["messageAttributes"]["source"]["stringValue"],
            "pool"
        );
        let empty = sqs.take_batch("sync.fifo").expect("batch");
        assert_eq!(empty["Records"], json!([]), "a handed-out batch is gone");
    }

    #[tokio::test]
    async fn an_unknown_queue_or_operation_is_named_in_the_error() {
        let sqs = endpoint();
        let request = json!({"QueueUrl": "https://sqs.example/1/nope.fifo", "MessageBody": "x"});
        let response = sqs.answer(&target("SendMessage"), request.to_string().as_bytes());
        assert_eq!(
            response.headers()["x-amzn-query-error"],
            "AWS.SimpleQueueService.NonExistentQueue;Sender"
        );
        let (status, answer) = body(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("nope.fifo"))
        );
        let (_, answer) =
            body(sqs.answer(&target("ReceiveMessage"), request.to_string().as_bytes())).await;
        assert_eq!(answer["__type"], "com.amazonaws.sqs#UnsupportedOperation");
    }
}
