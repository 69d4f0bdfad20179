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

/// SQS's largest batch (`SendMessageBatch`: at most 10 entries).
pub const MAX_BATCH: usize = 10;

/// Sends messages to one queue.
pub trait Queue: Send + Sync {
    fn send(&self, message: OutgoingMessage)
    -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Send up to [`MAX_BATCH`] messages, answering each one's result in
    /// order. One message at a time unless the adapter has a batch call
    /// (the SQS adapter uses `SendMessageBatch`: one request for ten).
    fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> impl Future<Output = Vec<Result<(), QueueError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(messages.len());
            for message in messages {
                results.push(self.send(message).await);
            }
            results
        }
    }
}

/// A reference or an `Arc` to a queue is a queue too (handlers share one).
macro_rules! forward_queue {
    ($wrapper:ty) => {
        impl<T: Queue + ?Sized> Queue for $wrapper {
            fn send(
                &self,
                message: OutgoingMessage,
            ) -> impl Future<Output = Result<(), QueueError>> + Send {
                (**self).send(message)
            }

            fn send_batch(
                &self,
                messages: Vec<OutgoingMessage>,
            ) -> impl Future<Output = Vec<Result<(), QueueError>>> + Send {
                (**self).send_batch(messages)
            }
        }
    };
}

forward_queue!(&T);
forward_queue!(std::sync::Arc<T>);

/// FNV-1a over `parts`, 64 bits: a stable digest for ids derived from
/// content (request tokens, deduplication ids). Not for security: it only
/// has to tell different content apart, the same on every run and release.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
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

/// Whether SQS accepts `c` in a message body or a String attribute value:
/// `#x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000–#x10FFFF`.
/// A send holding any other character is refused as a whole.
pub fn is_sqs_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// Text for a String message attribute: characters SQS refuses (controls,
/// the noncharacters U+FFFE and U+FFFF) become U+FFFD.
pub fn sqs_text(raw: &str) -> String {
    raw.chars()
        .map(|c| if is_sqs_char(c) { c } else { '\u{fffd}' })
        .collect()
}

/// A JSON text made fit for an SQS message body without changing what it
/// says: a character SQS refuses can only stand inside a JSON string (serde
/// writes control characters escaped already), where `\uXXXX` is the same
/// character to any reader.
pub fn sqs_json(json: String) -> String {
    if json.chars().all(is_sqs_char) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_sqs_char(c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_text_replaces_what_sqs_refuses() {
        assert_eq!(
            sqs_text("a\tb\u{1}c\u{fffe}\u{ffff}😀"),
            "a\tb\u{fffd}c\u{fffd}\u{fffd}😀"
        );
        assert_eq!(sqs_text("unknown event type `x`"), "unknown event type `x`");
    }

    #[test]
    fn sqs_json_escapes_what_sqs_refuses_and_keeps_the_meaning() {
        let value = serde_json::json!({"name": "a\u{fffe}b\u{ffff}\u{1}😀"});
        let text = sqs_json(value.to_string());
        assert!(text.chars().all(is_sqs_char), "{text}");
        assert!(
            text.contains("\\ufffe") && text.contains("\\uffff"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn sqs_ids_are_clamped_to_what_sqs_accepts() {
        assert_eq!(sqs_id("abc-123"), "abc-123");
        assert_eq!(sqs_id("a b\u{e9}"), "a_b_");
        assert_eq!(sqs_id(&"x".repeat(300)).len(), 128);
        assert_eq!(sqs_id(""), "_");
    }
}
