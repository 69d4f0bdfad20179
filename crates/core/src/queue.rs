//! The `Queue` port: sending one message to SQS (the sync queue for
//! post-confirmation's hand-off, the DLQ for idp-sync's poison messages).

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::QueueError;

/// A message to send. FIFO fields are always filled in; an adapter for a
/// standard queue drops them, because SQS rejects them there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    /// FIFO `MessageGroupId`: the sub, so one user's messages stay in order.
    pub group_id: String,
    /// FIFO `MessageDeduplicationId`: derived from what the message is about,
    /// so a retried send within SQS's five-minute window is dropped, not doubled.
    pub deduplication_id: String,
    /// String message attributes (e.g. `FailureReason` on DLQ sends).
    pub attributes: BTreeMap<String, String>,
}

/// Sends messages to one queue.
pub trait Queue: Send + Sync {
    fn send(&self, message: OutgoingMessage)
    -> impl Future<Output = Result<(), QueueError>> + Send;
}

impl<T: Queue + ?Sized> Queue for &T {
    fn send(
        &self,
        message: OutgoingMessage,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).send(message)
    }
}

impl<T: Queue + ?Sized> Queue for std::sync::Arc<T> {
    fn send(
        &self,
        message: OutgoingMessage,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).send(message)
    }
}

/// SQS limits a deduplication or group id to 128 characters of
/// alphanumerics and punctuation; anything else becomes `_`.
pub fn sqs_id(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(128)
        .collect();
    if cleaned.is_empty() {
        "_".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_ids_are_clamped_to_what_sqs_accepts() {
        assert_eq!(sqs_id("abc-123"), "abc-123");
        assert_eq!(sqs_id("a b\u{e9}"), "a_b_");
        assert_eq!(sqs_id(&"x".repeat(300)).len(), 128);
        assert_eq!(sqs_id(""), "_");
    }
}
