//! The Lambda event source mapping for SQS, as far as a consumer can tell:
//! receive a batch, hand it to the function as an `SqsEvent`, then delete
//! what the function did not report failed.
//!
//! Rules (AWS Lambda Developer Guide, "Using Lambda with Amazon SQS" and
//! "Handling errors for an SQS event source"), with `ReportBatchItemFailures`
//! on:
//! - The function succeeds with no `batchItemFailures` (absent, null or an
//!   empty list, or an empty/null response): every message is deleted.
//! - It lists failures: the others are deleted; the listed ones stay in
//!   flight and come back after the visibility timeout.
//! - A listed `itemIdentifier` that is empty, null or not a message id of the
//!   batch, or a response that is not a batch response: the whole batch
//!   counts as failed and nothing is deleted.
//! - The function errors, times out, or its sandbox dies: nothing is deleted;
//!   the whole batch comes back after the visibility timeout.
//!
//! Redrive to the DLQ is the queue's business ([`crate::Sqs`]), as with the
//! real mapping.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use serde_json::Value;

use crate::error::SimError;
use crate::queue::{Deleted, ReceivedMessage, Sqs};

/// The mapping of one queue to one function.
#[derive(Debug, Clone)]
pub struct EventSourceMapping {
    /// The source queue's name.
    pub queue: String,
    /// `BatchSize`: 1..=10 (larger sizes need a batching window; not modelled).
    pub batch_size: usize,
}

/// One batch handed to the function.
#[derive(Debug, Clone)]
pub struct Batch {
    /// What the function receives.
    pub event: SqsEvent,
    /// The messages as received (receipt handles, receive counts).
    pub messages: Vec<ReceivedMessage>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn message_ids(&self) -> Vec<&str> {
        self.messages
            .iter()
            .map(|m| m.message_id.as_str())
            .collect()
    }
}

/// How an invocation ended, from the mapping's point of view.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function returned this JSON (normally an `SqsBatchResponse`).
    Returned(Value),
    /// The function reported an error, timed out, or its process died.
    Failed,
}

impl Invocation {
    /// The function returned `response`.
    pub fn returned(response: &SqsBatchResponse) -> Self {
        Self::Returned(serde_json::to_value(response).unwrap_or(Value::Null))
    }
}

/// Why a whole batch was left to come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchFailure {
    /// The invocation failed (error, timeout, killed).
    InvocationFailed,
    /// The response listed an identifier that is empty or not in the batch, or
    /// was not a batch response at all.
    InvalidResponse(String),
}

/// What the mapping did with a finished batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    /// Message ids deleted.
    pub deleted: Vec<String>,
    /// Message ids left in flight to come back.
    pub retried: Vec<String>,
    /// Set when the whole batch was left to come back.
    pub batch_failure: Option<BatchFailure>,
    /// Deletes SQS refused or ignored (e.g. a FIFO receipt handle that expired
    /// because the invocation outlived the visibility timeout): those messages
    /// come back although the function handled them.
    pub failed_deletes: Vec<(String, String)>,
}

impl EventSourceMapping {
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            batch_size: 10,
        }
    }

    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// One poll: receive up to `batch_size` messages and build the event;
    /// `None` when nothing is visible.
    pub fn poll(&self, sqs: &Sqs) -> Result<Option<Batch>, SimError> {
        let messages = sqs.receive(&self.queue, self.batch_size)?;
        if messages.is_empty() {
            return Ok(None);
        }
        let arn = sqs.queue_arn(&self.queue);
        let records = messages
            .iter()
            .map(|m| record(m, &arn, sqs.region()))
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        Ok(Some(Batch { event, messages }))
    }

    /// Settle a batch after its invocation, as the mapping does.
    pub fn complete(
        &self,
        sqs: &Sqs,
        batch: &Batch,
        invocation: &Invocation,
    ) -> Result<Completion, SimError> {
        let failed = match invocation {
            Invocation::Failed => Err(BatchFailure::InvocationFailed),
            Invocation::Returned(value) => failed_items(value, batch),
        };
        let all_ids = || {
            batch
                .messages
                .iter()
                .map(|m| m.message_id.clone())
                .collect()
        };
        let failed = match failed {
            Ok(failed) => failed,
            Err(why) => {
                return Ok(Completion {
                    retried: all_ids(),
                    batch_failure: Some(why),
                    ..Completion::default()
                });
            }
        };
        let mut completion = Completion::default();
        for m in &batch.messages {
            if failed.contains(m.message_id.as_str()) {
                completion.retried.push(m.message_id.clone());
                continue;
            }
            match sqs.delete(&self.queue, &m.receipt_handle) {
                Ok(Deleted::Deleted | Deleted::AlreadyGone) => {
                    completion.deleted.push(m.message_id.clone())
                }
                Ok(Deleted::Ignored) => completion.failed_deletes.push((
                    m.message_id.clone(),
                    "stale receipt handle: not deleted".to_owned(),
                )),
                Err(
                    e @ (SimError::ReceiptHandleExpired(_) | SimError::ReceiptHandleIsInvalid(_)),
                ) => {
                    completion
                        .failed_deletes
                        .push((m.message_id.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(completion)
    }
}

/// The ids a batch response lists, or why the response fails the whole batch.
fn failed_items<'b>(response: &Value, batch: &'b Batch) -> Result<BTreeSet<&'b str>, BatchFailure> {
    let ids: HashMap<&str, &'b str> = batch
        .messages
        .iter()
        .map(|m| (m.message_id.as_str(), m.message_id.as_str()))
        .collect();
    let invalid = |why: &str| BatchFailure::InvalidResponse(why.to_owned());
    let failures = match response {
        Value::Null => return Ok(BTreeSet::new()),
        Value::Object(obj) => match obj.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(BTreeSet::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(invalid("batchItemFailures is not a list")),
        },
        _ => return Err(invalid("the response is not a batch response object")),
    };
    let mut out = BTreeSet::new();
    for item in failures {
        let id = item.get("itemIdentifier").and_then(Value::as_str);
        match id {
            None | Some("") => return Err(invalid("an itemIdentifier is null or empty")),
            Some(id) => match ids.get(id) {
                Some(known) => {
                    out.insert(*known);
                }
                None => {
                    return Err(invalid(&format!(
                        "itemIdentifier `{id}` is not in the batch"
                    )));
                }
            },
        }
    }
    Ok(out)
}

/// One record of the event, shaped as Lambda sends it.
pub fn record(m: &ReceivedMessage, queue_arn: &str, region: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = Some(m.message_id.clone());
    r.receipt_handle = Some(m.receipt_handle.clone());
    r.body = Some(m.body.clone());
    r.attributes = m.attributes.clone().into_iter().collect();
    r.message_attributes = m
        .message_attributes
        .iter()
        .map(|(k, v)| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some(v.clone());
            a.data_type = Some("String".to_owned());
            (k.clone(), a)
        })
        .collect();
    r.event_source = Some("aws:sqs".to_owned());
    r.event_source_arn = Some(queue_arn.to_owned());
    r.aws_region = Some(region.to_owned());
    r
}

/// String message attributes of a record, as a sorted map.
pub fn string_attributes(record: &SqsMessage) -> BTreeMap<String, String> {
    record
        .message_attributes
        .iter()
        .filter_map(|(k, v)| v.string_value.clone().map(|s| (k.clone(), s)))
        .collect()
}
