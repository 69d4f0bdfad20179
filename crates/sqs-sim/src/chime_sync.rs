//! [`SimQueue`]: a simulated queue behind chime-sync-core's `Queue` port, so
//! the real handlers send to it exactly as they send to SQS (post-confirmation's
//! hand-off to the sync queue, idp-sync's dead-lettering).
//!
//! It maps an `OutgoingMessage` the way `chime_sync_aws::SqsQueue` does: the
//! FIFO fields only on a FIFO queue, empty attribute values dropped (SQS
//! refuses them). It can also fail sends on purpose, before or after the
//! message is stored; a failure after storing is the ambiguous case (a
//! timeout on a send that SQS did apply) that deduplication ids exist for.

use std::sync::{Arc, Mutex};

use chime_sync_core::{OutgoingMessage, Queue, QueueError};

use crate::queue::{SendMessage, Sent, Sqs};
use crate::rng::SplitMix64;

/// Injected send failures (both answered as retryable `QueueError`s).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SendFaults {
    /// Share of sends that fail without storing the message.
    pub fail_before_rate: f64,
    /// Share of sends that store the message and still report failure.
    pub fail_after_rate: f64,
    pub seed: u64,
}

/// What a [`SimQueue`] was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendCounts {
    pub attempts: u64,
    /// Stored (or dropped as duplicates) and reported success.
    pub succeeded: u64,
    pub failed_before: u64,
    pub failed_after: u64,
    /// Accepted but not stored again: FIFO deduplication.
    pub deduplicated: u64,
}

struct Faults {
    config: SendFaults,
    rng: SplitMix64,
    counts: SendCounts,
}

/// One simulated queue as a `Queue`.
pub struct SimQueue {
    sqs: Arc<Sqs>,
    queue: String,
    fifo: bool,
    faults: Mutex<Faults>,
}

impl SimQueue {
    /// Sends to `queue` of `sqs` (which must exist).
    pub fn new(sqs: Arc<Sqs>, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        let fifo = sqs.config(&queue).map(|c| c.fifo).unwrap_or(false);
        Self {
            sqs,
            queue,
            fifo,
            faults: Mutex::new(Faults {
                config: SendFaults::default(),
                rng: SplitMix64::new(0),
                counts: SendCounts::default(),
            }),
        }
    }

    /// Fail sends on purpose from now on.
    pub fn set_faults(&self, config: SendFaults) {
        let mut f = self.lock();
        f.rng = SplitMix64::new(config.seed);
        f.config = config;
    }

    pub fn counts(&self) -> SendCounts {
        self.lock().counts
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self, message: OutgoingMessage) -> SendMessage {
        let mut request = SendMessage::new(message.body);
        if self.fifo {
            request = request
                .group(message.group_id)
                .deduplication_id(message.deduplication_id);
        }
        for (name, value) in message.attributes {
            if !value.is_empty() {
                request = request.attribute(name, value);
            }
        }
        request
    }
}

impl Queue for SimQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        let (before, after) = {
            let mut f = self.lock();
            f.counts.attempts += 1;
            let before = f.rng.next_f64() < f.config.fail_before_rate;
            let after = f.rng.next_f64() < f.config.fail_after_rate;
            (before, after)
        };
        if before {
            self.lock().counts.failed_before += 1;
            return Err(QueueError::retryable(
                "injected: SQS did not answer (message not stored)",
            ));
        }
        let sent: Sent = self
            .sqs
            .send(&self.queue, self.request(message))
            .map_err(|e| QueueError::permanent(e.to_string()))?;
        let mut f = self.lock();
        if sent.deduplicated {
            f.counts.deduplicated += 1;
        }
        if after {
            f.counts.failed_after += 1;
            return Err(QueueError::retryable(
                "injected: SQS stored the message but the answer was lost",
            ));
        }
        f.counts.succeeded += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{ManualClock, QueueConfig};

    fn message(dedup: &str) -> OutgoingMessage {
        OutgoingMessage {
            body: format!("body of {dedup}"),
            group_id: "sub-1".into(),
            deduplication_id: dedup.into(),
            attributes: BTreeMap::from([
                ("FailureReason".to_owned(), "why".to_owned()),
                ("Empty".to_owned(), String::new()),
            ]),
        }
    }

    fn sqs() -> Arc<Sqs> {
        let sqs = Arc::new(Sqs::new(Arc::new(ManualClock::new()), 1));
        sqs.create_queue(QueueConfig::fifo("q.fifo")).unwrap();
        sqs.create_queue(QueueConfig::standard("std")).unwrap();
        sqs
    }

    #[tokio::test]
    async fn sends_like_the_sqs_adapter_and_deduplicates_on_fifo() {
        let sqs = sqs();
        let q = SimQueue::new(sqs.clone(), "q.fifo");
        q.send(message("d1")).await.unwrap();
        q.send(message("d1")).await.unwrap();
        let stored = sqs.messages("q.fifo").unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].group_id.as_deref(), Some("sub-1"));
        assert_eq!(stored[0].deduplication_id.as_deref(), Some("d1"));
        assert_eq!(
            stored[0].message_attributes.keys().collect::<Vec<_>>(),
            ["FailureReason"],
            "empty values dropped, as SqsQueue does"
        );
        assert_eq!(q.counts().deduplicated, 1);
        let standard = SimQueue::new(sqs.clone(), "std");
        standard.send(message("d1")).await.unwrap();
        assert_eq!(sqs.messages("std").unwrap()[0].deduplication_id, None);
    }

    #[tokio::test]
    async fn injected_failures_before_and_after_storing() {
        let sqs = sqs();
        let q = SimQueue::new(sqs.clone(), "q.fifo");
        q.set_faults(SendFaults {
            fail_before_rate: 1.0,
            ..SendFaults::default()
        });
        assert!(q.send(message("a")).await.is_err());
        assert!(sqs.messages("q.fifo").unwrap().is_empty());
        q.set_faults(SendFaults {
            fail_after_rate: 1.0,
            ..SendFaults::default()
        });
        let err = q.send(message("a")).await.unwrap_err();
        assert_eq!(err.class, chime_sync_core::ErrorClass::Retryable);
        q.set_faults(SendFaults::default());
        // The retry with the same deduplication id is not stored twice.
        q.send(message("a")).await.unwrap();
        assert_eq!(sqs.messages("q.fifo").unwrap().len(), 1);
        let c = q.counts();
        assert_eq!(
            (
                c.attempts,
                c.failed_before,
                c.failed_after,
                c.succeeded,
                c.deduplicated
            ),
            (3, 1, 1, 1, 1)
        );
    }
}
