//! An in-process simulator of Amazon SQS, FIFO and standard, and of the
//! Lambda event source mapping that feeds a function from a queue.
//!
//! Built for fault and load tests of queue consumers: thousands of messages,
//! failures and killed invocations, in milliseconds and deterministically.
//! [`Sqs`] holds the queues and implements the delivery rules that matter to
//! a consumer (visibility timeout, redelivery, receipt handles, `maxReceiveCount`
//! redrive to a DLQ, FIFO per-group order, in-flight group locking and
//! deduplication); its documentation lists them with what is left out.
//! [`lambda::EventSourceMapping`] turns received messages into the
//! `SqsEvent` a function gets and settles the batch from its answer
//! (partial batch responses, whole-batch failure on error, timeout or kill).
//!
//! Time comes from an injectable [`Clock`]: [`ManualClock`] for unit tests
//! that jump over timeouts, [`TokioClock`] for runs in real (or paused tokio)
//! time. Random choices (message ids, standard-queue order, duplicate
//! deliveries) come from a seed. Moto's SQS server cross-checks the protocol
//! facts in the workspace's `tests/e2e/sim_vs_moto.rs`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sqs_sim::{ManualClock, QueueConfig, SendMessage, Sqs};
//!
//! let clock = Arc::new(ManualClock::new());
//! let sqs = Sqs::new(clock.clone(), 42);
//! sqs.create_queue(QueueConfig::fifo("dlq.fifo"))?;
//! sqs.create_queue(
//!     QueueConfig::fifo("jobs.fifo")
//!         .with_visibility_timeout(Duration::from_secs(30))
//!         .with_redrive("dlq.fifo", 2),
//! )?;
//! sqs.send("jobs.fifo", SendMessage::new("a").group("g").deduplication_id("1"))?;
//! sqs.send("jobs.fifo", SendMessage::new("b").group("g").deduplication_id("2"))?;
//! // One group: both come in order, and the group is locked while they are in flight.
//! let batch = sqs.receive("jobs.fifo", 10)?;
//! assert_eq!(batch.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["a", "b"]);
//! assert!(sqs.receive("jobs.fifo", 10)?.is_empty());
//! sqs.delete("jobs.fifo", &batch[1].receipt_handle)?;
//! // `a` was not deleted: it is back after the visibility timeout.
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(sqs.receive("jobs.fifo", 10)?[0].receive_count, 2);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "chime-sync")]
mod chime_sync;
mod clock;
mod error;
pub mod lambda;
mod queue;
mod rng;
#[cfg(feature = "wire")]
pub mod wire;

#[cfg(feature = "chime-sync")]
pub use chime_sync::{SendCounts, SendFaults, SimQueue};
pub use clock::{Clock, ManualClock, TokioClock};
pub use error::SimError;
pub use queue::{
    DEDUPLICATION_INTERVAL, DEFAULT_VISIBILITY_TIMEOUT, Deleted, MAX_RECEIVE_BATCH,
    MAX_VISIBILITY_TIMEOUT, QueueConfig, QueueDepth, QueueStats, ReceivedMessage, RedrivePolicy,
    SENDER_ID, SendMessage, Sent, Sqs, StoredMessage, attribute,
};
pub use rng::SplitMix64;

#[cfg(test)]
mod tests;
