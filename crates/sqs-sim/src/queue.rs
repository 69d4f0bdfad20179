//! The queues: what SQS does on SendMessage, ReceiveMessage, DeleteMessage and
//! ChangeMessageVisibility, for FIFO and standard queues, with redrive to a
//! dead-letter queue. The rules, each from the SQS Developer Guide or API
//! Reference, are listed on [`Sqs`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::SimError;
use crate::rng::SplitMix64;

/// `MaxNumberOfMessages` is 1..=10.
pub const MAX_RECEIVE_BATCH: usize = 10;
/// The FIFO deduplication interval.
pub const DEDUPLICATION_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The longest visibility timeout SQS accepts.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// SQS's default visibility timeout.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body accepted (the classic 256 KiB message size limit).
pub const MAX_BODY_BYTES: usize = 262_144;
/// At most this many message attributes per message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// `maxReceiveCount` is 1..=1000.
pub const MAX_MAX_RECEIVE_COUNT: u32 = 1000;

/// The system attribute names a received message carries.
pub mod attribute {
    pub const APPROXIMATE_RECEIVE_COUNT: &str = "ApproximateReceiveCount";
    pub const APPROXIMATE_FIRST_RECEIVE_TIMESTAMP: &str = "ApproximateFirstReceiveTimestamp";
    pub const SENT_TIMESTAMP: &str = "SentTimestamp";
    pub const SENDER_ID: &str = "SenderId";
    pub const MESSAGE_GROUP_ID: &str = "MessageGroupId";
    pub const MESSAGE_DEDUPLICATION_ID: &str = "MessageDeduplicationId";
    pub const SEQUENCE_NUMBER: &str = "SequenceNumber";
    pub const DEAD_LETTER_QUEUE_SOURCE_ARN: &str = "DeadLetterQueueSourceArn";
}

/// The `SenderId` every simulated message carries.
pub const SENDER_ID: &str = "AIDASQSSIMULATOR0001";

/// Where a queue sends messages received `max_receive_count` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// Name of the dead-letter queue (same account and region).
    pub dead_letter_queue: String,
    /// Receives before the next receive moves the message instead (1..=1000).
    pub max_receive_count: u32,
}

/// A queue's attributes, as CreateQueue takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The queue name; a FIFO queue's ends in `.fifo`.
    pub name: String,
    /// `FifoQueue`.
    pub fifo: bool,
    /// `VisibilityTimeout`: how long a received message stays hidden.
    pub visibility_timeout: Duration,
    /// `ContentBasedDeduplication` (FIFO only): the body stands in for a
    /// missing `MessageDeduplicationId`.
    pub content_based_deduplication: bool,
    /// `RedrivePolicy`.
    pub redrive: Option<RedrivePolicy>,
    /// Standard queues only: the share of deletes that one replica misses, so
    /// the message is delivered once more after its visibility timeout (SQS
    /// standard queues deliver at least once). 0 by default.
    pub duplicate_delivery_rate: f64,
}

impl QueueConfig {
    /// A FIFO queue (`name` must end in `.fifo`) with SQS's defaults:
    /// 30 s visibility timeout, no content-based deduplication, no redrive.
    pub fn fifo(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            fifo: true,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            content_based_deduplication: false,
            redrive: None,
            duplicate_delivery_rate: 0.0,
        }
    }

    /// A standard queue with SQS's defaults.
    pub fn standard(name: impl Into<String>) -> Self {
        Self {
            fifo: false,
            ..Self::fifo(name)
        }
    }

    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    pub fn with_content_based_deduplication(mut self, on: bool) -> Self {
        self.content_based_deduplication = on;
        self
    }

    pub fn with_redrive(
        mut self,
        dead_letter_queue: impl Into<String>,
        max_receive_count: u32,
    ) -> Self {
        self.redrive = Some(RedrivePolicy {
            dead_letter_queue: dead_letter_queue.into(),
            max_receive_count,
        });
        self
    }

    pub fn with_duplicate_delivery_rate(mut self, rate: f64) -> Self {
        self.duplicate_delivery_rate = rate;
        self
    }
}

/// A SendMessage request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendMessage {
    pub body: String,
    /// `MessageGroupId`: required on FIFO queues; on a standard queue it only
    /// labels the message (fair queues), with no ordering or locking.
    pub group_id: Option<String>,
    /// `MessageDeduplicationId`: FIFO queues only.
    pub deduplication_id: Option<String>,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
}

impl SendMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    pub fn group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    pub fn deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// What SendMessage answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    /// FIFO queues: the message's `SequenceNumber`.
    pub sequence_number: Option<String>,
    /// A FIFO send whose deduplication id was seen within the interval:
    /// accepted, not enqueued again (`message_id` is the original's).
    pub deduplicated: bool,
}

/// One message as ReceiveMessage returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, `MessageGroupId`, …).
    pub attributes: BTreeMap<String, String>,
    /// String message attributes, as sent.
    pub message_attributes: BTreeMap<String, String>,
    /// `ApproximateReceiveCount`, this receive included.
    pub receive_count: u32,
}

impl ReceivedMessage {
    pub fn group_id(&self) -> Option<&str> {
        self.attributes
            .get(attribute::MESSAGE_GROUP_ID)
            .map(String::as_str)
    }
}

/// What DeleteMessage did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The message is gone.
    Deleted,
    /// Standard queue, not the latest receipt handle: SQS answers success but
    /// the message stays ("the request succeeds, but the message might not be
    /// deleted").
    Ignored,
    /// The message was deleted already (or moved to the DLQ).
    AlreadyGone,
}

/// One stored message, for assertions (e.g. what a DLQ holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub message_id: String,
    pub body: String,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sequence_number: Option<String>,
    pub message_attributes: BTreeMap<String, String>,
    pub receive_count: u32,
    pub in_flight: bool,
    /// Set on messages the redrive policy moved here.
    pub dead_letter_source_arn: Option<String>,
}

/// `ApproximateNumberOfMessages` and `…NotVisible`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub visible: usize,
    pub in_flight: usize,
}

impl QueueDepth {
    pub fn total(&self) -> usize {
        self.visible + self.in_flight
    }
}

/// What happened to one queue so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Messages enqueued by SendMessage.
    pub sent: u64,
    /// FIFO sends dropped as duplicates within the deduplication interval.
    pub deduplicated: u64,
    /// Messages handed out by ReceiveMessage.
    pub deliveries: u64,
    /// Of those, deliveries of a message received before.
    pub redeliveries: u64,
    /// Messages removed by DeleteMessage.
    pub deleted: u64,
    /// Deletes answered success without deleting (standard, stale handle).
    pub ignored_deletes: u64,
    /// Deletes refused because the receipt handle had expired (FIFO).
    pub expired_deletes: u64,
    /// Messages moved from here to the dead-letter queue.
    pub moved_to_dlq: u64,
    /// Messages moved here by another queue's redrive policy.
    pub received_from_redrive: u64,
    /// Standard queues: deletes a replica missed (duplicate deliveries).
    pub lost_deletes: u64,
}

/// The simulated SQS of one account and region.
///
/// Rules it implements (SQS Developer Guide and API Reference):
/// - **Visibility timeout**: a received message is hidden for the queue's
///   `VisibilityTimeout` (or the receive's override) and comes back unless
///   deleted; each receive increments `ApproximateReceiveCount` and issues a
///   new receipt handle. ChangeMessageVisibility restarts the timeout from now
///   (0 makes the message visible at once) and needs a message in flight.
/// - **DeleteMessage** needs the latest receipt handle. On a FIFO queue an
///   older or expired handle is refused ("The receipt handle has expired"); on a
///   standard queue the latest handle deletes even after it expired, and an
///   older one is answered with success without deleting.
/// - **Redrive**: a message already received `maxReceiveCount` times is moved
///   to the dead-letter queue when a receive would deliver it again, keeping
///   its id, body and attributes and gaining `DeadLetterQueueSourceArn`. A
///   FIFO queue's DLQ must be FIFO, a standard queue's standard. The FIFO
///   enqueue time is reset by the move, the standard one is kept.
/// - **FIFO**: `MessageGroupId` is required. Messages of a group are delivered
///   in send order, and while any message of a group is in flight no other
///   message of that group is delivered. A receive returns as many messages
///   of one group as it can, then fills up from other available groups
///   (oldest first). A send whose `MessageDeduplicationId` (or, with
///   content-based deduplication, body) was seen in the last 5 minutes is
///   accepted but not enqueued, even if the first copy was already deleted.
/// - **Standard**: no order (the simulator picks messages with the seeded
///   generator), no deduplication (`MessageDeduplicationId` is refused), and
///   optionally at-least-once duplicates (`duplicate_delivery_rate`).
/// - **Batches**: ReceiveMessage returns 1..=10 messages; it behaves like a
///   long poll over all of the queue (no short-poll sampling of a subset).
///
/// Not modelled: delays (`DelaySeconds`), message retention, long-poll
/// waiting (a receive answers at once), `ReceiveRequestAttemptId`, quotas
/// and throttling of SQS itself.
///
/// Everything is a function of the clock readings and the seed: same
/// readings, same calls, same seed → same results.
pub struct Sqs {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    region: String,
    account: String,
    /// Epoch milliseconds of the clock's zero (for `SentTimestamp` etc.).
    epoch_ms: u64,
}

struct State {
    queues: BTreeMap<String, QueueState>,
    rng: SplitMix64,
    next_seq: u64,
}

struct QueueState {
    config: QueueConfig,
    arn: String,
    messages: BTreeMap<u64, Message>,
    /// FIFO: sequence numbers per group, in send order.
    groups: BTreeMap<String, BTreeSet<u64>>,
    /// Messages in flight, by when they become visible again. Entries whose
    /// time has come are dropped by [`QueueState::expire`] before every use,
    /// so this is exactly the set of messages in flight.
    in_flight: BTreeSet<(Duration, u64)>,
    /// FIFO: messages in flight per group (a group listed here is locked).
    locked: BTreeMap<String, usize>,
    /// FIFO: deduplication key → (when first sent, its message id, its sequence number).
    dedup: BTreeMap<String, (Duration, String, u64)>,
    /// The same keys in the order they were sent, to expire them cheaply.
    dedup_order: VecDeque<(Duration, String)>,
    stats: QueueStats,
}

#[derive(Debug, Clone)]
struct Message {
    seq: u64,
    id: String,
    body: String,
    group: Option<String>,
    dedup: Option<String>,
    attributes: BTreeMap<String, String>,
    sent_at: Duration,
    first_received_at: Option<Duration>,
    receive_count: u32,
    /// Hidden until then (only meaningful once received).
    visible_at: Duration,
    /// The latest receipt handle.
    receipt: Option<String>,
    dead_letter_source_arn: Option<String>,
    /// Standard queues: a delete was already lost once for this message.
    delete_lost: bool,
}

impl Message {
    /// A message as SendMessage stores it: never received, visible at once.
    fn sent(seq: u64, id: String, message: SendMessage, now: Duration) -> Self {
        Self {
            seq,
            id,
            body: message.body,
            group: message.group_id,
            dedup: message.deduplication_id,
            attributes: message.attributes,
            sent_at: now,
            first_received_at: None,
            receive_count: 0,
            visible_at: now,
            receipt: None,
            dead_letter_source_arn: None,
            delete_lost: false,
        }
    }

    fn in_flight(&self, now: Duration) -> bool {
        self.receipt.is_some() && self.visible_at > now
    }

    /// The system attributes a receive answers with; times are epoch
    /// milliseconds, as SQS writes them, counted from `epoch_ms`.
    fn system_attributes(
        &self,
        fifo: bool,
        first_received_at: Duration,
        epoch_ms: u64,
    ) -> BTreeMap<String, String> {
        let millis = |d: Duration| (epoch_ms + d.as_millis() as u64).to_string();
        let mut attributes = BTreeMap::from([
            (
                attribute::APPROXIMATE_RECEIVE_COUNT.to_owned(),
                self.receive_count.to_string(),
            ),
            (
                attribute::APPROXIMATE_FIRST_RECEIVE_TIMESTAMP.to_owned(),
                millis(first_received_at),
            ),
            (attribute::SENT_TIMESTAMP.to_owned(), millis(self.sent_at)),
            (attribute::SENDER_ID.to_owned(), SENDER_ID.to_owned()),
        ]);
        if let Some(group) = &self.group {
            attributes.insert(attribute::MESSAGE_GROUP_ID.to_owned(), group.clone());
        }
        if fifo {
            if let Some(dedup) = &self.dedup {
                attributes.insert(
                    attribute::MESSAGE_DEDUPLICATION_ID.to_owned(),
                    dedup.clone(),
                );
            }
            attributes.insert(
                attribute::SEQUENCE_NUMBER.to_owned(),
                sequence_number(self.seq),
            );
        }
        if let Some(source) = &self.dead_letter_source_arn {
            attributes.insert(
                attribute::DEAD_LETTER_QUEUE_SOURCE_ARN.to_owned(),
                source.clone(),
            );
        }
        attributes
    }
}

/// 2026-01-01T00:00:00Z: a fixed epoch so timestamps are deterministic too.
const DEFAULT_EPOCH_MS: u64 = 1_767_225_600_000;

impl Sqs {
    /// An empty SQS in `us-east-1`, account `123456789012`, reading time from
    /// `clock` and making its random choices from `seed`.
    pub fn new(clock: Arc<dyn Clock>, seed: u64) -> Self {
        Self {
            clock,
            state: Mutex::new(State {
                queues: BTreeMap::new(),
                rng: SplitMix64::new(seed),
                next_seq: 1,
            }),
            region: "us-east-1".to_owned(),
            account: "123456789012".to_owned(),
            epoch_ms: DEFAULT_EPOCH_MS,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The clock's current reading.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// `arn:aws:sqs:{region}:{account}:{name}`.
    pub fn queue_arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account)
    }

    /// `https://sqs.{region}.amazonaws.com/{account}/{name}`.
    pub fn queue_url(&self, name: &str) -> String {
        format!(
            "https://sqs.{}.amazonaws.com/{}/{name}",
            self.region, self.account
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// CreateQueue. Creating an existing queue with the same attributes is a
    /// no-op, with other attributes `QueueAlreadyExists`. A redrive target
    /// must exist already and be of the same kind.
    pub fn create_queue(&self, config: QueueConfig) -> Result<(), SimError> {
        validate_queue_name(&config.name, config.fifo)?;
        if config.visibility_timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(SimError::InvalidAttributeValue(format!(
                "VisibilityTimeout must be at most {} seconds",
                MAX_VISIBILITY_TIMEOUT.as_secs()
            )));
        }
        if config.content_based_deduplication && !config.fifo {
            return Err(SimError::InvalidAttributeValue(
                "ContentBasedDeduplication is only valid for FIFO queues".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.duplicate_delivery_rate)
            || (config.fifo && config.duplicate_delivery_rate > 0.0)
        {
            return Err(SimError::InvalidAttributeValue(
                "duplicate_delivery_rate is a share (0..=1) and only for standard queues".into(),
            ));
        }
        let mut state = self.lock();
        if let Some(redrive) = &config.redrive {
            if !(1..=MAX_MAX_RECEIVE_COUNT).contains(&redrive.max_receive_count) {
                return Err(SimError::InvalidAttributeValue(format!(
                    "maxReceiveCount must be 1..={MAX_MAX_RECEIVE_COUNT}"
                )));
            }
            let Some(dlq) = state.queues.get(&redrive.dead_letter_queue) else {
                return Err(SimError::InvalidAttributeValue(format!(
                    "deadLetterTargetArn: the queue `{}` does not exist",
                    redrive.dead_letter_queue
                )));
            };
            if dlq.config.fifo != config.fifo {
                return Err(SimError::InvalidAttributeValue(
                    "the dead-letter queue of a FIFO queue must be a FIFO queue, and of a standard queue a standard queue".into(),
                ));
            }
            if redrive.dead_letter_queue == config.name {
                return Err(SimError::InvalidAttributeValue(
                    "a queue cannot be its own dead-letter queue".into(),
                ));
            }
        }
        if let Some(existing) = state.queues.get(&config.name) {
            return if existing.config == config {
                Ok(())
            } else {
                Err(SimError::QueueAlreadyExists(config.name))
            };
        }
        let arn = self.queue_arn(&config.name);
        state.queues.insert(
            config.name.clone(),
            QueueState {
                config,
                arn,
                messages: BTreeMap::new(),
                groups: BTreeMap::new(),
                in_flight: BTreeSet::new(),
                locked: BTreeMap::new(),
                dedup: BTreeMap::new(),
                dedup_order: VecDeque::new(),
                stats: QueueStats::default(),
            },
        );
        Ok(())
    }

    /// SendMessage.
    pub fn send(&self, queue: &str, message: SendMessage) -> Result<Sent, SimError> {
        let now = self.clock.now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let q = queue_mut(&mut state.queues, queue)?;
        validate_message(&message)?;
        let dedup_key = deduplication_key(&q.config, &message)?;
        if let Some(key) = &dedup_key
            && let Some(first) = q.sent_before(key, now)
        {
            return Ok(first);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let id = message_id(&mut state.rng);
        if let Some(key) = dedup_key {
            q.dedup_order.push_back((now, key.clone()));
            q.dedup.insert(key, (now, id.clone(), seq));
        }
        let fifo = q.config.fifo;
        q.insert(Message::sent(seq, id.clone(), message, now));
        q.stats.sent += 1;
        Ok(Sent {
            message_id: id,
            sequence_number: fifo.then(|| sequence_number(seq)),
            deduplicated: false,
        })
    }

    /// ReceiveMessage of up to `max` (1..=10) messages with the queue's
    /// visibility timeout.
    pub fn receive(&self, queue: &str, max: usize) -> Result<Vec<ReceivedMessage>, SimError> {
        self.receive_with_visibility(queue, max, None)
    }

    /// ReceiveMessage with an explicit `VisibilityTimeout` for this receive.
    pub fn receive_with_visibility(
        &self,
        queue: &str,
        max: usize,
        visibility_timeout: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, SimError> {
        if !(1..=MAX_RECEIVE_BATCH).contains(&max) {
            return Err(SimError::InvalidParameterValue(format!(
                "MaxNumberOfMessages must be 1..={MAX_RECEIVE_BATCH}, got {max}"
            )));
        }
        if let Some(timeout) = visibility_timeout {
            validate_visibility_timeout(timeout)?;
        }
        let now = self.clock.now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let q = queue_mut(&mut state.queues, queue)?;
        q.expire(now);
        let timeout = visibility_timeout.unwrap_or(q.config.visibility_timeout);
        let redrive = q.config.redrive.clone();
        let mut delivered = Vec::new();
        if q.config.fifo {
            // Rounds, because a message moved to the DLQ frees its slot in the batch.
            loop {
                let candidates = state.queues[queue].fifo_candidates(max - delivered.len());
                if candidates.is_empty() {
                    break;
                }
                for seq in candidates {
                    if let Some(m) =
                        self.deliver_or_redrive(state, queue, seq, redrive.as_ref(), now, timeout)?
                    {
                        delivered.push(m);
                    }
                }
                if delivered.len() == max {
                    break;
                }
            }
        } else {
            let mut visible: Vec<u64> = q
                .messages
                .values()
                .filter(|m| !m.in_flight(now))
                .map(|m| m.seq)
                .collect();
            state.rng.shuffle(&mut visible);
            for seq in visible {
                if delivered.len() == max {
                    break;
                }
                if let Some(m) =
                    self.deliver_or_redrive(state, queue, seq, redrive.as_ref(), now, timeout)?
                {
                    delivered.push(m);
                }
            }
        }
        Ok(delivered)
    }

    /// Deliver message `seq` of `queue`, or move it to the DLQ when it has
    /// been received `maxReceiveCount` times already (`None` then).
    fn deliver_or_redrive(
        &self,
        state: &mut State,
        queue: &str,
        seq: u64,
        redrive: Option<&RedrivePolicy>,
        now: Duration,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, SimError> {
        if let Some(redrive) = redrive
            && state.queues[queue].messages[&seq].receive_count >= redrive.max_receive_count
        {
            move_to_dead_letter_queue(state, queue, seq, redrive, now)?;
            return Ok(None);
        }
        self.deliver(state, queue, seq, now, timeout)
    }

    /// Receive message `seq` of `queue`: count the receive, hide the message
    /// for `timeout` with a fresh receipt handle (FIFO: locking its group),
    /// and answer it with the system attributes SQS adds.
    fn deliver(
        &self,
        state: &mut State,
        queue: &str,
        seq: u64,
        now: Duration,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, SimError> {
        let nonce = state.rng.next_u64();
        let q = queue_mut(&mut state.queues, queue)?;
        let fifo = q.config.fifo;
        let Some(m) = q.messages.get_mut(&seq) else {
            return Ok(None);
        };
        m.receive_count += 1;
        let first_received_at = *m.first_received_at.get_or_insert(now);
        m.visible_at = now.saturating_add(timeout);
        let visible_at = m.visible_at;
        let group = m.group.clone();
        let handle = format!("{queue}#{seq}#{}#{nonce:016x}", m.receive_count);
        m.receipt = Some(handle.clone());
        let received = ReceivedMessage {
            message_id: m.id.clone(),
            receipt_handle: handle,
            body: m.body.clone(),
            attributes: m.system_attributes(fifo, first_received_at, self.epoch_ms),
            message_attributes: m.attributes.clone(),
            receive_count: m.receive_count,
        };
        if visible_at > now {
            q.in_flight.insert((visible_at, seq));
            if fifo && let Some(group) = group {
                *q.locked.entry(group).or_default() += 1;
            }
        }
        q.stats.deliveries += 1;
        if received.receive_count > 1 {
            q.stats.redeliveries += 1;
        }
        Ok(Some(received))
    }

    /// DeleteMessage.
    pub fn delete(&self, queue: &str, receipt_handle: &str) -> Result<Deleted, SimError> {
        let now = self.clock.now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let q = queue_mut(&mut state.queues, queue)?;
        let seq = parse_receipt(queue, receipt_handle)?;
        q.expire(now);
        let Some(m) = q.messages.get(&seq) else {
            return Ok(Deleted::AlreadyGone);
        };
        let latest = m.receipt.as_deref() == Some(receipt_handle);
        if q.config.fifo {
            if !latest || !m.in_flight(now) {
                q.stats.expired_deletes += 1;
                return Err(SimError::ReceiptHandleExpired(receipt_handle.to_owned()));
            }
        } else if !latest {
            q.stats.ignored_deletes += 1;
            return Ok(Deleted::Ignored);
        }
        if !q.config.fifo && !m.delete_lost && state.rng.chance(q.config.duplicate_delivery_rate) {
            // One replica missed the delete: the client hears success, and the
            // message comes back once its visibility timeout is over.
            if let Some(m) = q.messages.get_mut(&seq) {
                m.delete_lost = true;
            }
            q.stats.lost_deletes += 1;
            return Ok(Deleted::Deleted);
        }
        q.remove(seq);
        q.stats.deleted += 1;
        Ok(Deleted::Deleted)
    }

    /// ChangeMessageVisibility: hide the message for `timeout` from now.
    pub fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), SimError> {
        validate_visibility_timeout(timeout)?;
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state.queues, queue)?;
        let seq = parse_receipt(queue, receipt_handle)?;
        q.expire(now);
        let fifo = q.config.fifo;
        let Some(m) = q.messages.get_mut(&seq) else {
            return Err(SimError::ReceiptHandleIsInvalid(receipt_handle.to_owned()));
        };
        let latest = m.receipt.as_deref() == Some(receipt_handle);
        if fifo && !latest {
            return Err(SimError::ReceiptHandleExpired(receipt_handle.to_owned()));
        }
        if !latest || !m.in_flight(now) {
            return Err(SimError::MessageNotInflight);
        }
        let old = m.visible_at;
        m.visible_at = now.saturating_add(timeout);
        let new = m.visible_at;
        q.in_flight.remove(&(old, seq));
        q.in_flight.insert((new, seq));
        q.expire(now);
        Ok(())
    }

    /// PurgeQueue.
    pub fn purge(&self, queue: &str) -> Result<(), SimError> {
        let mut state = self.lock();
        let q = queue_mut(&mut state.queues, queue)?;
        q.messages.clear();
        q.groups.clear();
        q.in_flight.clear();
        q.locked.clear();
        Ok(())
    }

    /// `ApproximateNumberOfMessages` / `…NotVisible` (exact here).
    pub fn depth(&self, queue: &str) -> Result<QueueDepth, SimError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state.queues, queue)?;
        q.expire(now);
        let in_flight = q.in_flight.len();
        Ok(QueueDepth {
            visible: q.messages.len() - in_flight,
            in_flight,
        })
    }

    /// When the next in-flight message of `queue` becomes visible again
    /// (`None` when nothing is in flight): how long a driver with nothing
    /// visible has to wait, or how far to advance a manual clock.
    pub fn next_visible_at(&self, queue: &str) -> Result<Option<Duration>, SimError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let q = queue_mut(&mut state.queues, queue)?;
        q.expire(now);
        Ok(q.in_flight.first().map(|(at, _)| *at))
    }

    /// Every message the queue holds, in sequence order (a snapshot for assertions).
    pub fn messages(&self, queue: &str) -> Result<Vec<StoredMessage>, SimError> {
        let now = self.clock.now();
        let state = self.lock();
        let q = queue_ref(&state.queues, queue)?;
        Ok(q.messages
            .values()
            .map(|m| StoredMessage {
                message_id: m.id.clone(),
                body: m.body.clone(),
                group_id: m.group.clone(),
                deduplication_id: m.dedup.clone(),
                sequence_number: q.config.fifo.then(|| sequence_number(m.seq)),
                message_attributes: m.attributes.clone(),
                receive_count: m.receive_count,
                in_flight: m.in_flight(now),
                dead_letter_source_arn: m.dead_letter_source_arn.clone(),
            })
            .collect())
    }

    /// The queue's counters.
    pub fn stats(&self, queue: &str) -> Result<QueueStats, SimError> {
        let state = self.lock();
        queue_ref(&state.queues, queue).map(|q| q.stats)
    }

    /// The queue's configuration.
    pub fn config(&self, queue: &str) -> Result<QueueConfig, SimError> {
        let state = self.lock();
        queue_ref(&state.queues, queue).map(|q| q.config.clone())
    }
}

impl QueueState {
    /// A FIFO send whose deduplication key was sent within the interval: SQS
    /// answers with the first message's id and sequence number and keeps no
    /// second copy.
    fn sent_before(&mut self, key: &str, now: Duration) -> Option<Sent> {
        self.expire_deduplication(now);
        let (_, id, seq) = self.dedup.get(key)?;
        let first = Sent {
            message_id: id.clone(),
            sequence_number: Some(sequence_number(*seq)),
            deduplicated: true,
        };
        self.stats.deduplicated += 1;
        Some(first)
    }

    fn insert(&mut self, m: Message) {
        if self.config.fifo
            && let Some(group) = &m.group
        {
            self.groups.entry(group.clone()).or_default().insert(m.seq);
        }
        self.messages.insert(m.seq, m);
    }

    /// Forget in-flight entries whose visibility timeout is over.
    fn expire(&mut self, now: Duration) {
        while let Some(&(at, seq)) = self.in_flight.first() {
            if at > now {
                break;
            }
            self.in_flight.pop_first();
            self.unlock(seq);
        }
    }

    /// One fewer message of `seq`'s group in flight.
    fn unlock(&mut self, seq: u64) {
        let Some(group) = self.messages.get(&seq).and_then(|m| m.group.as_ref()) else {
            return;
        };
        if let Some(n) = self.locked.get_mut(group) {
            *n -= 1;
            if *n == 0 {
                self.locked.remove(group);
            }
        }
    }

    /// FIFO: up to `room` messages to deliver: the groups with nothing in
    /// flight, oldest head first, each with as many of its messages as fit.
    fn fifo_candidates(&self, room: usize) -> Vec<u64> {
        let mut picked: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        for m in self.messages.values() {
            if out.len() >= room {
                break;
            }
            let Some(group) = m.group.as_deref() else {
                continue;
            };
            if self.locked.contains_key(group) || !picked.insert(group) {
                continue;
            }
            let seqs = &self.groups[group];
            out.extend(seqs.iter().take(room - out.len()));
        }
        out
    }

    /// Drop deduplication keys older than the interval.
    fn expire_deduplication(&mut self, now: Duration) {
        while let Some((at, _)) = self.dedup_order.front() {
            if now < at.saturating_add(DEDUPLICATION_INTERVAL) {
                break;
            }
            let Some((at, key)) = self.dedup_order.pop_front() else {
                break;
            };
            if self.dedup.get(&key).is_some_and(|(sent, _, _)| *sent == at) {
                self.dedup.remove(&key);
            }
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Message> {
        if let Some(m) = self.messages.get(&seq)
            && self.in_flight.remove(&(m.visible_at, seq))
        {
            self.unlock(seq);
        }
        let m = self.messages.remove(&seq)?;
        if let Some(group) = &m.group
            && let Some(seqs) = self.groups.get_mut(group)
        {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.groups.remove(group);
            }
        }
        Some(m)
    }
}

/// A FIFO `SequenceNumber`: 20 decimal digits, growing within the account.
/// The queue named `name`; every action on a queue that does not exist
/// answers `QueueDoesNotExist` alike.
fn queue_ref<'a>(
    queues: &'a BTreeMap<String, QueueState>,
    name: &str,
) -> Result<&'a QueueState, SimError> {
    queues
        .get(name)
        .ok_or_else(|| SimError::QueueDoesNotExist(name.to_owned()))
}

/// [`queue_ref`], to change the queue. It takes the map rather than the whole
/// state so that the caller can still draw sequence numbers and random
/// choices from the state while holding the queue.
fn queue_mut<'a>(
    queues: &'a mut BTreeMap<String, QueueState>,
    name: &str,
) -> Result<&'a mut QueueState, SimError> {
    queues
        .get_mut(name)
        .ok_or_else(|| SimError::QueueDoesNotExist(name.to_owned()))
}

/// Move message `seq` of `queue`, received `maxReceiveCount` times, to the
/// dead-letter queue `redrive` names: it gets a new sequence number there,
/// is visible at once and remembers its source queue's ARN; SQS keeps a
/// standard message's `SentTimestamp` but a FIFO one's is the move's time.
fn move_to_dead_letter_queue(
    state: &mut State,
    queue: &str,
    seq: u64,
    redrive: &RedrivePolicy,
    now: Duration,
) -> Result<(), SimError> {
    let source = queue_mut(&mut state.queues, queue)?;
    // The caller picked `seq` from this queue under the same lock.
    let Some(mut moved) = source.remove(seq) else {
        return Ok(());
    };
    source.stats.moved_to_dlq += 1;
    let source_arn = source.arn.clone();
    let dlq = queue_mut(&mut state.queues, &redrive.dead_letter_queue)?;
    moved.seq = state.next_seq;
    state.next_seq += 1;
    moved.receipt = None;
    moved.visible_at = now;
    moved.dead_letter_source_arn = Some(source_arn);
    if dlq.config.fifo {
        moved.sent_at = now;
    }
    dlq.insert(moved);
    dlq.stats.received_from_redrive += 1;
    Ok(())
}

/// What SendMessage checks of a message whatever the queue: a body of
/// 1..=256 KiB, valid message attributes and a valid group id.
fn validate_message(message: &SendMessage) -> Result<(), SimError> {
    if message.body.is_empty() {
        return Err(SimError::InvalidParameterValue(
            "the message body must be at least one character".into(),
        ));
    }
    if message.body.len() > MAX_BODY_BYTES {
        return Err(SimError::InvalidParameterValue(format!(
            "the message body must be at most {MAX_BODY_BYTES} bytes"
        )));
    }
    validate_attributes(&message.attributes)?;
    if let Some(group) = &message.group_id {
        validate_id("MessageGroupId", group)?;
    }
    Ok(())
}

/// The key a FIFO queue deduplicates `message` by (`None` on a standard
/// queue): its `MessageDeduplicationId`, or with content-based
/// deduplication its body. A FIFO message needs a group id and one of the
/// two; a standard one may not carry a deduplication id.
fn deduplication_key(
    config: &QueueConfig,
    message: &SendMessage,
) -> Result<Option<String>, SimError> {
    if !config.fifo {
        if message.deduplication_id.is_some() {
            return Err(SimError::InvalidParameterValue(
                "the request includes a parameter that is not valid for this queue type: MessageDeduplicationId".into(),
            ));
        }
        return Ok(None);
    }
    if message.group_id.is_none() {
        return Err(SimError::MissingParameter(
            "the request must contain the parameter MessageGroupId".into(),
        ));
    }
    match (&message.deduplication_id, config.content_based_deduplication) {
        (Some(id), _) => {
            validate_id("MessageDeduplicationId", id)?;
            Ok(Some(format!("id:{id}")))
        }
        (None, true) => Ok(Some(format!("body:{}", message.body))),
        (None, false) => Err(SimError::InvalidParameterValue(
            "the queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
        )),
    }
}

/// A `VisibilityTimeout`, on a receive or a change, is at most 12 hours.
fn validate_visibility_timeout(timeout: Duration) -> Result<(), SimError> {
    if timeout > MAX_VISIBILITY_TIMEOUT {
        return Err(SimError::InvalidParameterValue(
            "VisibilityTimeout must be at most 12 hours".into(),
        ));
    }
    Ok(())
}

fn sequence_number(seq: u64) -> String {
    format!("{seq:020}")
}

/// A message id shaped like SQS's (a version-4 UUID), from the seeded generator.
fn message_id(rng: &mut SplitMix64) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// The sequence number a receipt handle of `queue` names.
fn parse_receipt(queue: &str, handle: &str) -> Result<u64, SimError> {
    let invalid = || SimError::ReceiptHandleIsInvalid(handle.to_owned());
    let mut parts = handle.split('#');
    if parts.next() != Some(queue) {
        return Err(invalid());
    }
    let seq = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    let count_ok = parts.next().is_some_and(|c| c.parse::<u32>().is_ok());
    let nonce_ok = parts.next().is_some_and(|n| n.len() == 16);
    if !count_ok || !nonce_ok || parts.next().is_some() {
        return Err(invalid());
    }
    Ok(seq)
}

/// Queue names: 1–80 characters of alphanumerics, `-` and `_`; a FIFO
/// queue's name ends in `.fifo` (counted in the 80).
fn validate_queue_name(name: &str, fifo: bool) -> Result<(), SimError> {
    let stem = match (fifo, name.strip_suffix(".fifo")) {
        (true, Some(stem)) => stem,
        (true, None) => {
            return Err(SimError::InvalidAttributeValue(
                "the name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(SimError::InvalidAttributeValue(
                "a queue whose name ends in .fifo must be a FIFO queue".into(),
            ));
        }
        (false, None) => name,
    };
    let ok = !stem.is_empty()
        && name.len() <= 80
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SimError::InvalidParameterValue(format!(
            "`{name}`: queue names are 1 to 80 alphanumeric characters, hyphens or underscores"
        )))
    }
}

/// Group and deduplication ids: 1–128 characters of alphanumerics and punctuation.
fn validate_id(field: &str, id: &str) -> Result<(), SimError> {
    if (1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(SimError::InvalidParameterValue(format!(
            "{field} must be 1 to 128 characters of alphanumerics and punctuation"
        )))
    }
}

/// Message attributes: at most 10, names of 1–256 characters not starting
/// with `AWS.` or `Amazon.`, values non-empty.
fn validate_attributes(attributes: &BTreeMap<String, String>) -> Result<(), SimError> {
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(SimError::InvalidParameterValue(format!(
            "at most {MAX_MESSAGE_ATTRIBUTES} message attributes"
        )));
    }
    for (name, value) in attributes {
        let reserved = name.to_ascii_lowercase().starts_with("aws.")
            || name.to_ascii_lowercase().starts_with("amazon.");
        let name_ok = (1..=256).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..");
        if reserved || !name_ok {
            return Err(SimError::InvalidParameterValue(format!(
                "message attribute name `{name}` is not valid"
            )));
        }
        if value.is_empty() {
            return Err(SimError::InvalidParameterValue(format!(
                "message attribute `{name}` must contain a non-empty value of type String"
            )));
        }
    }
    Ok(())
}
