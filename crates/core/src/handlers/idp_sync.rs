//! The idp-sync SQS consumer: applies schema-v1 user events from the IdP
//! queue and answers with a partial batch response.
//!
//! Batch bookkeeping (grouping, ordering, failure reporting) is kept apart
//! from the per-message work. Rules:
//! - Messages of one group run in batch order; once one fails with a
//!   retryable error it and every later message of its group are reported
//!   failed, so SQS redelivers them in order. The group is the FIFO
//!   `MessageGroupId`; on a standard queue it is the sub (or the message id
//!   for unparseable messages), so one user's events in a batch still apply
//!   in order.
//! - Different groups run concurrently, at most `max_concurrent_groups` at once.
//! - Permanent failures (the message itself is bad) are sent to the DLQ with
//!   the reason and reported handled, so they neither block their group nor
//!   come back; if that send fails they are reported failed.
//! - Work that cannot finish before the Lambda deadline is reported failed
//!   instead of being cut off with the whole batch.

use std::collections::HashMap;
use std::time::Duration;

pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use futures_util::stream;
use tokio::time::Instant;
use tracing::{info, trace, warn};

use crate::directory::{Applied, Directory};
use crate::error::{DirectoryError, ErrorClass, SyncError};
use crate::identity::UserId;
use crate::ledger::{Ledger, Refusal};
use crate::metrics::{FunctionMetrics, Invocation, Metric};
use crate::queue::{OutgoingMessage, Queue, fnv1a64, sqs_id, sqs_text};
use crate::schema::{Envelope, IdpMessage, parse_body, sub_hint};
use crate::sync::{self, ChimeCount, SyncOutcome, SyncRules};

const SOURCE: &str = "idp-sync";

/// What idp-sync publishes ([`metrics`]): one decision per message, counted by outcome.
pub const METRICS: FunctionMetrics = FunctionMetrics {
    source: SOURCE,
    error_kind: "IdpSyncFailed",
    metrics: &[
        Metric::Decisions,
        Metric::Created,
        Metric::Updated,
        Metric::AlreadyExists,
        Metric::Deleted,
        Metric::AlreadyGone,
        Metric::DeletionScheduled,
        Metric::DeletionAlreadyScheduled,
        Metric::Restored,
        Metric::Stale,
        Metric::NotOwned,
        Metric::DeletionsWithheld,
        Metric::DeadLettered,
        Metric::Failed,
        Metric::Blocked,
        Metric::InvalidEvent,
        Metric::Denied,
        Metric::ThrottledRetries,
        Metric::ChimeCallLatency,
    ],
};

/// DLQ message attributes, so an operator sees why without reading logs.
pub const REASON_ATTRIBUTE: &str = "FailureReason";
pub const CODE_ATTRIBUTE: &str = "ErrorCode";
pub const SOURCE_MESSAGE_ATTRIBUTE: &str = "SourceMessageId";
/// What the DLQ copy of a message without a body says (SQS refuses empty bodies).
pub const EMPTY_BODY: &str = "(the original message had no body)";
/// SQS allows 256 KiB per attribute; a reason never needs more than this.
const MAX_REASON_CHARS: usize = 1000;

/// What the consumer needs: the directory, the ledger, the DLQ and its limits.
pub struct IdpSync<D, Q, L> {
    pub directory: D,
    pub dlq: Q,
    /// Ownership, change times, deletion marks ([`crate::ledger`]).
    pub ledger: L,
    pub max_concurrent_groups: usize,
    /// Time kept back before the Lambda deadline to send the response.
    pub deadline_margin: Duration,
    /// How `user.deleted` is carried out, what becomes of users nobody
    /// owns, and the feed's breaker. [`IdpSync::new`] deletes at once and
    /// has no breaker; the deployed function takes `DELETE_MODE` (default: a
    /// grace period) and the `FEED_DELETE_*` settings.
    pub rules: SyncRules,
    /// The Chime user count the breaker's percentage is of (cached).
    pub chime_count: ChimeCount,
}

impl<D, Q, L> IdpSync<D, Q, L> {
    pub fn new(directory: D, dlq: Q, ledger: L) -> Self {
        Self {
            directory,
            dlq,
            ledger,
            max_concurrent_groups: 10,
            deadline_margin: Duration::from_millis(500),
            rules: SyncRules::default(),
            chime_count: ChimeCount::default(),
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    Applied(Applied),
    /// The ownership and time rules refused it: acknowledged, nothing written.
    Refused(Refusal),
    /// The feed's breaker held this deletion for an operator's release:
    /// acknowledged, kept in the ledger.
    Held,
    /// Permanently bad: sent to the DLQ with this reason code, reported handled.
    DeadLettered {
        code: &'static str,
    },
    /// Retryable failure: reported failed, SQS redelivers it.
    Failed {
        code: &'static str,
    },
    /// Not attempted because an earlier message of its group failed.
    Blocked,
}

impl MessageOutcome {
    /// Whether SQS must deliver this message again.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Blocked)
    }

    /// The metric counting this outcome.
    pub fn metric(&self) -> Metric {
        match self {
            Self::Applied(a) => a.metric(),
            Self::Refused(Refusal::Stale { .. }) => Metric::Stale,
            Self::Refused(Refusal::NotOwner { .. }) => Metric::NotOwned,
            Self::Held => Metric::DeletionsWithheld,
            Self::DeadLettered { .. } => Metric::DeadLettered,
            Self::Failed { .. } => Metric::Failed,
            Self::Blocked => Metric::Blocked,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Applied(a) => a.as_str().to_owned(),
            Self::Refused(r) => r.code().to_owned(),
            Self::Held => "deletion-held".to_owned(),
            Self::DeadLettered { code } => format!("dead-lettered ({code})"),
            Self::Failed { code } => format!("failed, will retry ({code})"),
            Self::Blocked => "blocked behind its group".to_owned(),
        }
    }
}

/// One message's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageReport {
    pub message_id: String,
    pub sub: Option<UserId>,
    pub event_type: Option<&'static str>,
    pub envelope: Option<Envelope>,
    pub outcome: MessageOutcome,
}

/// The results of one batch, in batch order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchReport {
    pub messages: Vec<MessageReport>,
}

impl BatchReport {
    /// The partial batch response Lambda hands back to SQS.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .messages
            .iter()
            .filter(|m| m.outcome.is_failure())
            .map(|m| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = m.message_id.clone();
                failure
            })
            .collect();
        response
    }
}

/// The metrics of one batch: a decision per message, the denials among
/// them, and the Chime calls made (taken from `directory`).
pub fn metrics<D: Directory>(report: &BatchReport, directory: &D) -> Invocation {
    let mut m = Invocation::new(METRICS);
    for message in &report.messages {
        m.decision(message.outcome.metric());
        if matches!(message.outcome, MessageOutcome::Failed { code } if code == DirectoryError::DENIED)
        {
            m.add(Metric::Denied, 1);
        }
    }
    m.chime_calls(directory.take_call_stats());
    m
}

/// Handle one SQS batch.
///
/// `user.created` and `user.updated` both read first ([`Provisioning::upsert`](crate::provisioning::Provisioning::upsert)):
/// a redelivered or replayed create then reports the user it found
/// (`already-exists`, `updated`) instead of `created`, which Chime's
/// idempotent answer to a repeated create could not tell apart. It costs a
/// read for a new user and saves a conflicting write for an existing one,
/// and it shows a pending grace deletion, which the event cancels
/// (`restored`): the user is wanted again. `user.deleted` deletes as
/// `DELETE_MODE` says. The ledger's rules come first ([`sync`]).
pub async fn handle<D: Directory, Q: Queue, L: Ledger>(
    event: &SqsEvent,
    deps: &IdpSync<D, Q, L>,
    deadline: Option<Instant>,
) -> BatchReport {
    let parsed: Vec<Parsed<'_>> = event
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| Parsed::new(index, record))
        .collect();
    let work_deadline = deadline.map(|d| d.checked_sub(deps.deadline_margin).unwrap_or(d));
    // The group futures are made up front (they start when polled, at most
    // `max_concurrent_groups` at once): a closure over borrowed groups inside
    // the stream would make this future !Send (a higher-ranked lifetime the
    // compiler cannot prove general), and Lambda runtimes may spawn it.
    let work: Vec<_> = groups(&parsed)
        .into_iter()
        .map(|group| run_group(group, deps, work_deadline))
        .collect();
    let results: Vec<Vec<(usize, MessageReport)>> = stream::iter(work)
        .buffer_unordered(deps.max_concurrent_groups.max(1))
        .collect()
        .await;
    let mut reports: Vec<(usize, MessageReport)> = results.into_iter().flatten().collect();
    reports.sort_by_key(|(index, _)| *index);
    let report = BatchReport {
        messages: reports.into_iter().map(|(_, r)| r).collect(),
    };
    report_held(&report);
    report
}

/// The feed breaker's one ERROR line per batch that held deletions: the
/// line the breaker alarm's runbook points to (each held user has its own
/// WARN line).
fn report_held(report: &BatchReport) {
    let held = report
        .messages
        .iter()
        .filter(|m| m.outcome == MessageOutcome::Held)
        .count();
    if held > 0 {
        tracing::error!(
            source = SOURCE,
            outcome = "deletions-withheld",
            withheld = held,
            "feed breaker: {held} deletions in this batch are held, beyond what this window \
             allows; review with `chime-sync held list`, release with `chime-sync held release`"
        );
    }
}

/// One record with its parse result and group key.
struct Parsed<'a> {
    index: usize,
    record: &'a SqsMessage,
    message_id: String,
    group: String,
    /// The sub: validated, or read best-effort from an invalid message.
    sub: Option<UserId>,
    message: Result<IdpMessage, crate::error::InputError>,
}

impl<'a> Parsed<'a> {
    fn new(index: usize, record: &'a SqsMessage) -> Self {
        let message_id = record.message_id.clone().unwrap_or_else(|| {
            warn!(
                source = SOURCE,
                index, "record without messageId; it cannot be reported individually"
            );
            format!("missing-message-id-{index}")
        });
        let body = record.body.as_deref().unwrap_or("");
        let message = parse_body(body);
        let sub = match &message {
            Ok(m) => Some(m.event.user_id().clone()),
            Err(_) => sub_hint(body),
        };
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .or_else(|| sub.as_ref().map(UserId::to_string))
            .unwrap_or_else(|| message_id.clone());
        Self {
            index,
            record,
            message_id,
            group,
            sub,
            message,
        }
    }
}

/// Records grouped by key, groups in order of first appearance, records in batch order.
fn groups<'p, 'a>(parsed: &'p [Parsed<'a>]) -> Vec<Vec<&'p Parsed<'a>>> {
    let mut position: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<&Parsed<'a>>> = Vec::new();
    for p in parsed {
        let at = *position.entry(p.group.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(p);
    }
    groups
}

async fn run_group<D: Directory, Q: Queue, L: Ledger>(
    group: Vec<&Parsed<'_>>,
    deps: &IdpSync<D, Q, L>,
    deadline: Option<Instant>,
) -> Vec<(usize, MessageReport)> {
    let mut blocked = false;
    let mut out = Vec::with_capacity(group.len());
    for p in group {
        let outcome = if blocked {
            MessageOutcome::Blocked
        } else {
            run_message(p, deps, deadline).await
        };
        blocked = outcome.is_failure();
        let sub = p.sub.clone();
        let (event_type, envelope) = match &p.message {
            Ok(m) => (Some(m.event.type_name()), Some(m.envelope)),
            Err(_) => (None, None),
        };
        let level_warn = !matches!(outcome, MessageOutcome::Applied(_));
        let sub_text = sub.as_ref().map(UserId::as_str).unwrap_or("-");
        let label = outcome.label();
        if level_warn {
            warn!(source = SOURCE, sub = sub_text, message_id = %p.message_id, event_type = event_type.unwrap_or("-"),
                  envelope = envelope.map(Envelope::as_str).unwrap_or("-"), outcome = %label);
        } else {
            info!(source = SOURCE, sub = sub_text, message_id = %p.message_id, event_type = event_type.unwrap_or("-"),
                  envelope = envelope.map(Envelope::as_str).unwrap_or("-"), outcome = %label);
        }
        out.push((
            p.index,
            MessageReport {
                message_id: p.message_id.clone(),
                sub,
                event_type,
                envelope,
                outcome,
            },
        ));
    }
    out
}

async fn run_message<D: Directory, Q: Queue, L: Ledger>(
    p: &Parsed<'_>,
    deps: &IdpSync<D, Q, L>,
    deadline: Option<Instant>,
) -> MessageOutcome {
    let message = match &p.message {
        Ok(m) => m,
        Err(e) => return dead_letter(p, deps, &SyncError::from(e.clone())).await,
    };
    trace!(source = SOURCE, message_id = %p.message_id, sub = %message.event.user_id(),
           event_type = message.event.type_name(), "applying");
    let apply = sync::apply_message(
        &deps.directory,
        &deps.ledger,
        &deps.rules,
        &deps.chime_count,
        message,
        std::time::SystemTime::now(),
    );
    let applied = match deadline {
        Some(d) if Instant::now() >= d => Err(SyncError::from(DirectoryError::Timeout)),
        Some(d) => tokio::time::timeout_at(d, apply)
            .await
            .unwrap_or(Err(SyncError::from(DirectoryError::Timeout))),
        None => apply.await,
    };
    match applied {
        Ok(SyncOutcome::Applied(a)) => MessageOutcome::Applied(a),
        Ok(SyncOutcome::Refused(r)) => MessageOutcome::Refused(r),
        Ok(SyncOutcome::Held) => MessageOutcome::Held,
        Err(e) => match e.class() {
            ErrorClass::Retryable => MessageOutcome::Failed { code: e.code() },
            ErrorClass::Permanent => dead_letter(p, deps, &e).await,
        },
    }
}

/// The DLQ deduplication id of a poison message: its SQS message id, then a
/// digest of its body (at most 128 characters, as SQS allows).
///
/// The message id survives redelivery, so a re-run forwards a message once;
/// but it is not unique within a batch (a duplicate delivery shares it, and
/// so may a hand-made event), and with the id alone SQS dropped the second
/// of two different poison messages as a duplicate of the first. With the
/// digest, different messages both reach the DLQ; the same one, still once.
pub fn dead_letter_deduplication_id(message_id: &str, body: &str) -> String {
    let id: String = sqs_id(message_id).chars().take(128 - 17).collect();
    format!("{id}-{:016x}", fnv1a64(&[body.as_bytes()]))
}

/// Send a permanently failed message to the DLQ with its reason.
async fn dead_letter<D, Q: Queue, L>(
    p: &Parsed<'_>,
    deps: &IdpSync<D, Q, L>,
    error: &SyncError,
) -> MessageOutcome {
    // The reason may quote the message (an unknown type, a version) or Chime's
    // answer; SQS refuses the whole send over one character it does not take.
    let reason: String = sqs_text(&error.to_string())
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    let mut attributes = std::collections::BTreeMap::from([
        (REASON_ATTRIBUTE.to_owned(), reason),
        (CODE_ATTRIBUTE.to_owned(), error.code().to_owned()),
        (SOURCE_MESSAGE_ATTRIBUTE.to_owned(), p.message_id.clone()),
    ]);
    if let Some(arn) = &p.record.event_source_arn {
        attributes.insert("SourceQueueArn".to_owned(), arn.clone());
    }
    let message = OutgoingMessage {
        // SQS refuses an empty body; the attributes say what went wrong.
        body: p
            .record
            .body
            .clone()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| EMPTY_BODY.to_owned()),
        group_id: sqs_id(&p.group),
        deduplication_id: dead_letter_deduplication_id(
            &p.message_id,
            p.record.body.as_deref().unwrap_or(""),
        ),
        attributes,
    };
    match deps.dlq.send(message).await {
        Ok(()) => MessageOutcome::DeadLettered { code: error.code() },
        Err(e) => {
            warn!(source = SOURCE, message_id = %p.message_id, outcome = "dlq-send-failed", error = %e.message);
            MessageOutcome::Failed {
                code: "DlqSendFailed",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::error::QueueError;
    use crate::identity::AppInstanceArn;
    use crate::ledger::memory::InMemoryLedger;
    use crate::memory::{InMemoryDirectory, InMemoryQueue, MissingAnswer};

    fn sub(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn deps() -> IdpSync<InMemoryDirectory, InMemoryQueue, InMemoryLedger> {
        let arn =
            AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/t").unwrap();
        IdpSync::new(
            InMemoryDirectory::new(arn),
            InMemoryQueue::new(),
            InMemoryLedger::new(),
        )
    }

    fn body(kind: &str, n: u32, name: &str) -> String {
        json!({"version": 1, "type": kind, "eventId": format!("e-{n}-{kind}"),
               "user": {"sub": sub(n), "displayName": name}})
        .to_string()
    }

    /// An SQS event; `fifo` adds MessageGroupId = the given group.
    fn batch(messages: &[(&str, String, Option<String>)]) -> SqsEvent {
        let records: Vec<Value> = messages
            .iter()
            .map(|(id, body, group)| {
                let mut attributes = json!({"ApproximateReceiveCount": "1", "SentTimestamp": "1",
                    "SenderId": "x", "ApproximateFirstReceiveTimestamp": "1"});
                if let Some(g) = group {
                    attributes["MessageGroupId"] = json!(g);
                    attributes["MessageDeduplicationId"] = json!(id);
                }
                json!({"messageId": id, "receiptHandle": "r", "body": body, "attributes": attributes,
                       "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sync.fifo", "awsRegion": "us-east-1"})
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn failed_ids(report: &BatchReport) -> Vec<String> {
        report
            .response()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    #[tokio::test]
    async fn applies_created_updated_deleted() {
        let d = deps();
        let event = batch(&[
            ("m1", body("user.created", 1, "Ada"), None),
            ("m2", body("user.created", 2, "Bob"), None),
            ("m3", body("user.updated", 1, "Ada Lovelace"), None),
            ("m4", body("user.deleted", 2, ""), None),
        ]);
        let report = handle(&event, &d, None).await;
        let outcomes: Vec<_> = report.messages.iter().map(|m| m.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            vec![
                MessageOutcome::Applied(Applied::Created),
                MessageOutcome::Applied(Applied::Created),
                MessageOutcome::Applied(Applied::Updated),
                MessageOutcome::Applied(Applied::Deleted),
            ]
        );
        assert!(failed_ids(&report).is_empty());
        let users = d.directory.users();
        assert_eq!(users.len(), 1);
        assert_eq!(
            (users[0].id.to_string(), users[0].name.as_str()),
            (sub(1), "Ada Lovelace")
        );
    }

    #[tokio::test]
    async fn a_failure_blocks_the_rest_of_its_fifo_group_only() {
        let d = deps();
        // Group A: m1 fails (throttled), m2 and m3 must not run. Group B runs.
        d.directory
            .fail_next([DirectoryError::Throttled("429".into())]);
        let event = batch(&[
            ("m1", body("user.created", 1, "Ada"), Some(sub(1))),
            ("m2", body("user.updated", 1, "Ada L"), Some(sub(1))),
            ("m3", body("user.deleted", 1, ""), Some(sub(1))),
            ("m4", body("user.created", 2, "Bob"), Some(sub(2))),
        ]);
        let mut d = d;
        d.max_concurrent_groups = 1; // deterministic: group A first takes the injected failure
        let report = handle(&event, &d, None).await;
        assert_eq!(failed_ids(&report), vec!["m1", "m2", "m3"]);
        assert_eq!(report.messages[1].outcome, MessageOutcome::Blocked);
        assert_eq!(
            report.messages[3].outcome,
            MessageOutcome::Applied(Applied::Created)
        );
        let users = d.directory.users();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].id.to_string(), sub(2));
    }

    #[tokio::test]
    async fn poison_messages_go_to_the_dlq_with_a_reason_and_do_not_block() {
        let d = deps();
        let event = batch(&[
            ("p1", "{not json".to_owned(), Some(sub(1))),
            ("m2", body("user.created", 1, "Ada"), Some(sub(1))),
            ("p3", json!({"version": 1, "type": "user.frozen", "user": {"sub": sub(2)}}).to_string(), Some(sub(2))),
            ("p4", json!({"version": 1, "type": "user.created", "user": {"sub": "bad", "displayName": "X"}}).to_string(), Some("g".into())),
        ]);
        let report = handle(&event, &d, None).await;
        assert!(failed_ids(&report).is_empty());
        assert_eq!(
            report.messages[0].outcome,
            MessageOutcome::DeadLettered {
                code: "InvalidJson"
            }
        );
        assert_eq!(
            report.messages[1].outcome,
            MessageOutcome::Applied(Applied::Created)
        );
        assert_eq!(
            report.messages[2].outcome,
            MessageOutcome::DeadLettered {
                code: "UnknownType"
            }
        );
        assert_eq!(
            report.messages[3].outcome,
            MessageOutcome::DeadLettered {
                code: "InvalidUserId"
            }
        );
        let sent = d.dlq.sent();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].body, "{not json");
        assert_eq!(
            sent[0].deduplication_id,
            dead_letter_deduplication_id("p1", "{not json")
        );
        assert_eq!(sent[0].group_id, sub(1));
        assert!(sent[0].attributes[REASON_ATTRIBUTE].starts_with("invalid JSON"));
        assert_eq!(sent[1].attributes[CODE_ATTRIBUTE], "UnknownType");
        assert_eq!(sent[2].attributes[SOURCE_MESSAGE_ATTRIBUTE], "p4");
        assert_eq!(
            sent[2].attributes["SourceQueueArn"],
            "arn:aws:sqs:us-east-1:123456789012:sync.fifo"
        );
    }

    #[tokio::test]
    async fn dlq_reasons_hold_only_characters_sqs_accepts() {
        // Found by tests/fuzz.rs: the reason quoted the raw `type`, SQS would
        // refuse the DLQ send, and the poison message would block its group.
        let d = deps();
        let event = batch(&[(
            "p1",
            json!({"version": 1, "type": "x\u{1}y\u{fffe}", "user": {"sub": sub(1)}}).to_string(),
            Some(sub(1)),
        )]);
        let report = handle(&event, &d, None).await;
        assert!(failed_ids(&report).is_empty());
        let reason = &d.dlq.sent()[0].attributes[REASON_ATTRIBUTE];
        assert!(reason.chars().all(crate::queue::is_sqs_char), "{reason:?}");
        assert!(reason.contains("x\u{fffd}y\u{fffd}"), "{reason:?}");
    }

    #[tokio::test]
    async fn a_message_without_a_body_is_dead_lettered_with_a_body_sqs_accepts() {
        let d = deps();
        let report = handle(&batch(&[("e1", String::new(), Some("g".into()))]), &d, None).await;
        assert_eq!(
            report.messages[0].outcome,
            MessageOutcome::DeadLettered {
                code: "InvalidJson"
            }
        );
        assert_eq!(d.dlq.sent()[0].body, EMPTY_BODY);
    }

    #[tokio::test]
    async fn a_failed_dlq_send_reports_the_message_failed() {
        let d = deps();
        d.dlq.set_failing(Some(QueueError::retryable("503")));
        let event = batch(&[
            ("p1", "[]".to_owned(), Some("g".into())),
            ("m2", body("user.created", 1, "Ada"), Some("g".into())),
            ("m3", body("user.created", 2, "Bob"), Some("h".into())),
        ]);
        let report = handle(&event, &d, None).await;
        assert_eq!(failed_ids(&report), vec!["p1", "m2"]);
        assert_eq!(
            report.messages[2].outcome,
            MessageOutcome::Applied(Applied::Created)
        );
    }

    #[tokio::test]
    async fn permanent_directory_errors_are_dead_lettered() {
        let d = deps();
        d.directory
            .fail_next([DirectoryError::LimitExceeded("100000 users".into())]);
        let event = batch(&[("m1", body("user.created", 1, "Ada"), None)]);
        let report = handle(&event, &d, None).await;
        assert_eq!(
            report.messages[0].outcome,
            MessageOutcome::DeadLettered {
                code: "LimitExceeded"
            }
        );
        assert!(failed_ids(&report).is_empty());
        assert_eq!(d.dlq.sent().len(), 1);
    }

    #[tokio::test]
    async fn standard_queue_messages_of_one_user_still_apply_in_order() {
        let d = deps();
        let event = batch(&[
            ("m1", body("user.created", 1, "Ada"), None),
            ("m2", body("user.deleted", 1, ""), None),
            ("m3", body("user.created", 1, "Ada again"), None),
        ]);
        let report = handle(&event, &d, None).await;
        assert!(failed_ids(&report).is_empty());
        assert_eq!(d.directory.users()[0].name, "Ada again");
    }

    #[tokio::test]
    async fn an_empty_batch_is_fine() {
        let report = handle(&SqsEvent::default(), &deps(), None).await;
        assert!(report.messages.is_empty());
        assert!(report.response().batch_item_failures.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn groups_run_concurrently_within_the_bound() {
        let d = deps();
        d.directory.set_latency(Duration::from_millis(50));
        let messages: Vec<_> = (0..10)
            .map(|n| (format!("m{n}"), body("user.created", n, "U"), Some(sub(n))))
            .collect();
        let refs: Vec<(&str, String, Option<String>)> = messages
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.clone(), c.clone()))
            .collect();
        // Each new user is one describe and one create: two calls, 100 ms.
        let started = Instant::now();
        handle(&batch(&refs), &d, None).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(100),
            "ten groups take as long as one"
        );
        let mut d = deps();
        d.max_concurrent_groups = 5;
        d.directory.set_latency(Duration::from_millis(50));
        let started = Instant::now();
        handle(&batch(&refs), &d, None).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "bound of five: two waves"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_is_reported_failed_not_lost() {
        let mut d = deps();
        d.deadline_margin = Duration::from_millis(100);
        d.directory.set_latency(Duration::from_secs(2));
        let event = batch(&[
            ("m1", body("user.created", 1, "Ada"), Some("g".into())),
            ("m2", body("user.created", 2, "Bob"), Some("g".into())),
        ]);
        let deadline = Instant::now() + Duration::from_secs(1);
        let report = handle(&event, &d, Some(deadline)).await;
        assert_eq!(
            report.messages[0].outcome,
            MessageOutcome::Failed { code: "Timeout" }
        );
        assert_eq!(failed_ids(&report), vec!["m1", "m2"]);
        assert!(Instant::now() <= deadline);
    }

    /// `handle`'s future is `Send`, so a runtime may spawn it: proven by
    /// spawning it on a multi-thread runtime (it would not compile otherwise).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_handler_future_can_be_spawned() {
        let deps = std::sync::Arc::new(deps());
        let event = batch(&[("m1", body("user.created", 1, "Ada"), None)]);
        let spawned = tokio::spawn({
            let deps = deps.clone();
            async move { handle(&event, &*deps, None).await }
        });
        let report = spawned.await.unwrap();
        assert_eq!(
            report.messages[0].outcome,
            MessageOutcome::Applied(Applied::Created)
        );
    }

    fn deps_answering(
        missing: MissingAnswer,
    ) -> IdpSync<InMemoryDirectory, InMemoryQueue, InMemoryLedger> {
        let d = deps();
        d.directory.set_missing_answer(missing);
        d
    }

    #[tokio::test]
    async fn update_of_a_missing_user_creates_and_delete_of_a_gone_one_succeeds() {
        for missing in MissingAnswer::BOTH {
            let d = deps_answering(missing);
            let event = batch(&[
                ("m1", body("user.updated", 1, "Ada"), Some(sub(1))),
                ("m2", body("user.deleted", 2, ""), Some(sub(2))),
            ]);
            let report = handle(&event, &d, None).await;
            assert!(failed_ids(&report).is_empty(), "{missing:?}: {report:?}");
            assert_eq!(
                report.messages[0].outcome,
                MessageOutcome::Applied(Applied::Created)
            );
            assert_eq!(
                report.messages[1].outcome,
                MessageOutcome::Applied(Applied::AlreadyGone)
            );
            assert!(d.dlq.sent().is_empty());
            assert_eq!(d.directory.users().len(), 1);
        }
    }

    #[tokio::test]
    async fn a_replayed_create_reports_the_user_it_found() {
        for missing in MissingAnswer::BOTH {
            let d = deps_answering(missing);
            let event = batch(&[("m1", body("user.created", 1, "Ada"), Some(sub(1)))]);
            let first = handle(&event, &d, None).await;
            assert_eq!(first.messages[0].outcome.label(), "created");
            // SQS redelivers it (or the producer sends it again).
            let again = handle(&event, &d, None).await;
            assert_eq!(
                again.messages[0].outcome,
                MessageOutcome::Applied(Applied::AlreadyProvisioned),
                "{missing:?}"
            );
            assert_eq!(again.messages[0].outcome.label(), "already-exists");
        }
    }

    #[tokio::test]
    async fn a_denied_delete_is_reported_failed_and_the_user_stays() {
        for missing in MissingAnswer::BOTH {
            let d = deps_answering(missing);
            handle(
                &batch(&[("m1", body("user.created", 1, "Ada"), Some(sub(1)))]),
                &d,
                None,
            )
            .await;
            let id = UserId::parse(&sub(1)).unwrap();
            d.directory.fail_next_for(
                id,
                [DirectoryError::AccessDenied(
                    "chime:DeleteAppInstanceUser denied".into(),
                )],
            );
            let report = handle(
                &batch(&[("m2", body("user.deleted", 1, ""), Some(sub(1)))]),
                &d,
                None,
            )
            .await;
            assert_eq!(failed_ids(&report), vec!["m2"], "{missing:?}");
            assert_eq!(
                report.messages[0].outcome,
                MessageOutcome::Failed {
                    code: "AccessDenied"
                }
            );
            assert_eq!(d.directory.users().len(), 1, "the user stays");
            assert!(d.dlq.sent().is_empty());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_one_decision_per_message_with_denials_besides() {
        let mut d = deps_answering(MissingAnswer::Forbidden);
        d.max_concurrent_groups = 1; // deterministic: the injected denial meets m5
        d.directory.set_latency(Duration::from_millis(20));
        handle(
            &batch(&[("m0", body("user.created", 2, "Bob"), Some(sub(2)))]),
            &d,
            None,
        )
        .await;
        d.directory.take_call_stats();
        d.directory.fail_next_for(
            UserId::parse(&sub(3)).unwrap(),
            [DirectoryError::AccessDenied(
                "chime:DeleteAppInstanceUser".into(),
            )],
        );
        let event = batch(&[
            ("m1", body("user.created", 1, "Ada"), Some(sub(1))),
            ("m2", body("user.updated", 1, "Ada L"), Some(sub(1))),
            ("m3", body("user.created", 2, "Bob"), Some(sub(2))),
            ("m4", body("user.deleted", 2, ""), Some(sub(2))),
            ("m5", body("user.deleted", 3, ""), Some(sub(3))),
            ("m6", body("user.created", 3, "Cy"), Some(sub(3))),
            ("p7", "{not json".to_owned(), Some(sub(4))),
            ("m8", body("user.deleted", 5, ""), Some(sub(5))),
        ]);
        let report = handle(&event, &d, None).await;
        let m = metrics(&report, &d.directory);
        assert_eq!(
            m.counted(),
            [
                (Metric::Decisions, 8),
                (Metric::Created, 1),
                (Metric::Updated, 1),
                (Metric::AlreadyExists, 1),
                (Metric::Deleted, 1),
                (Metric::AlreadyGone, 1),
                (Metric::DeadLettered, 1),
                (Metric::Failed, 1),
                (Metric::Blocked, 1),
                (Metric::Denied, 1),
            ]
        );
        // Every Chime call timed, at the injected 20 ms: m1 describe+create,
        // m2 describe+update, m3 describe, m4 delete, m5 delete (denied),
        // m8 delete (403) + describe (403): nine calls.
        assert_eq!(m.latencies(), [Duration::from_millis(20); 9]);
        assert!(d.directory.take_call_stats().latencies.is_empty(), "taken");
    }

    #[tokio::test]
    async fn two_poison_messages_sharing_a_message_id_both_reach_the_dlq() {
        let d = deps();
        let event = batch(&[
            ("same", "{not json".to_owned(), Some("g".into())),
            ("same", "[]".to_owned(), Some("g".into())),
        ]);
        let report = handle(&event, &d, None).await;
        assert!(failed_ids(&report).is_empty());
        let sent = d.dlq.sent();
        assert_eq!(sent.len(), 2);
        assert_ne!(
            sent[0].deduplication_id, sent[1].deduplication_id,
            "SQS would drop the second as a duplicate"
        );
        // The same message delivered again keeps its id: forwarded once.
        handle(
            &batch(&[("same", "[]".to_owned(), Some("g".into()))]),
            &d,
            None,
        )
        .await;
        assert_eq!(d.dlq.sent()[2].deduplication_id, sent[1].deduplication_id);
        for m in d.dlq.sent() {
            assert!(
                m.deduplication_id.starts_with("same-"),
                "{}",
                m.deduplication_id
            );
            assert!(m.deduplication_id.len() <= 128);
        }
        let long = dead_letter_deduplication_id(&"x".repeat(300), "b");
        assert_eq!(long.len(), 128);
    }
}
