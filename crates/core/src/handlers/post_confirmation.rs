//! The Cognito PostConfirmation trigger: creates the Chime user for a newly
//! confirmed sign-up, and heals a missing one on ConfirmForgotPassword.
//!
//! Cognito waits 5 s and retries on error or timeout, and the user stays
//! confirmed either way. So the Chime call gets a budget (2 s by default);
//! when Chime fails or is slow the work is handed to the sync queue as a
//! schema-v1 `user.created` message and the trigger still succeeds. Only when
//! both Chime and the queue fail does it return an error (Cognito retries).
//! Every path is idempotent: the create uses a token derived from the sub and
//! the hand-off a deduplication id derived from the sub.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use thiserror::Error;
use tokio::time::{Instant, timeout};
use tracing::{info, trace, warn};

use super::cognito::{trigger_source, user_attributes};
use crate::directory::{Applied, Directory};
use crate::error::{DirectoryError, InputError, QueueError};
use crate::identity::UserId;
use crate::metrics::{FunctionMetrics, Invocation, Metric};
use crate::profile::{DisplayName, DisplayNamePolicy, UserProfile};
use crate::queue::{OutgoingMessage, Queue};
use crate::schema::provision_message;

const SOURCE: &str = "post-confirmation";

/// What post-confirmation publishes ([`metrics`]).
pub const METRICS: FunctionMetrics = FunctionMetrics {
    source: SOURCE,
    metrics: &[
        Metric::Decisions,
        Metric::Created,
        Metric::AlreadyExists,
        Metric::Updated,
        Metric::HandedOff,
        Metric::HandOffFailed,
        Metric::PassedThrough,
        Metric::InvalidEvent,
        Metric::Denied,
        Metric::ThrottledRetries,
        Metric::ChimeCallLatency,
    ],
};

/// The Chime budget unless configured (`CHIME_BUDGET_MS`). With the
/// function's 4 s timeout (a second under Cognito's 5 s) it leaves the
/// [`HAND_OFF_RESERVE`] and half a second for the rest of the invocation, so
/// it is never cut short by the deadline.
pub const DEFAULT_CHIME_BUDGET: Duration = Duration::from_millis(2000);
/// Kept back from the Lambda deadline for the hand-off to the queue; also
/// the longest the send may take.
pub const HAND_OFF_RESERVE: Duration = Duration::from_millis(1500);

/// What the trigger needs: the directory, the sync queue and its budgets.
pub struct PostConfirmation<D, Q> {
    pub directory: D,
    pub sync_queue: Q,
    pub names: DisplayNamePolicy,
    /// Longest the Chime call may take before the work is handed off.
    pub chime_budget: Duration,
    /// Time kept back from the Lambda deadline for the hand-off send.
    pub hand_off_reserve: Duration,
}

impl<D, Q> PostConfirmation<D, Q> {
    pub fn new(directory: D, sync_queue: Q) -> Self {
        Self {
            directory,
            sync_queue,
            names: DisplayNamePolicy::default(),
            chime_budget: DEFAULT_CHIME_BUDGET,
            hand_off_reserve: HAND_OFF_RESERVE,
        }
    }
}

/// The PostConfirmation trigger sources Cognito documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationSource {
    ConfirmSignUp,
    ConfirmForgotPassword,
}

impl ConfirmationSource {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PostConfirmation_ConfirmSignUp" => Some(Self::ConfirmSignUp),
            "PostConfirmation_ConfirmForgotPassword" => Some(Self::ConfirmForgotPassword),
            _ => None,
        }
    }
}

/// What happened to the user (for logs, the CLI and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmationOutcome {
    Provisioned(Applied),
    /// Chime failed or was too slow; the queue will finish the job.
    HandedOff {
        chime_error: &'static str,
    },
    /// A trigger source we do not know: returned unchanged.
    PassedThrough,
}

/// Why the trigger failed. Cognito shows the text to the client, so it holds
/// no internals and no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfirmationError {
    #[error("the confirmation event could not be read: {0}")]
    InvalidEvent(InputError),
    #[error("the chat account could not be created or queued; please retry")]
    HandOffFailed {
        chime: DirectoryError,
        queue: QueueError,
    },
}

/// Handle one PostConfirmation event; returns it unchanged on success.
pub async fn handle<D: Directory, Q: Queue>(
    event: Value,
    deps: &PostConfirmation<D, Q>,
    deadline: Option<Instant>,
) -> Result<(Value, ConfirmationOutcome), ConfirmationError> {
    let Some(source) = trigger_source(&event).and_then(ConfirmationSource::parse) else {
        warn!(
            source = SOURCE,
            trigger = trigger_source(&event).unwrap_or("<missing>"),
            outcome = "passed-through",
            "unknown trigger source; event returned unchanged"
        );
        return Ok((event, ConfirmationOutcome::PassedThrough));
    };
    let attributes = user_attributes(&event);
    let sub = match attributes.get("sub") {
        Some(Value::String(s)) => UserId::parse(s),
        None | Some(Value::Null) => Err(InputError::MissingField("request.userAttributes.sub")),
        Some(_) => Err(InputError::WrongType {
            field: "request.userAttributes.sub",
            expected: "a string",
        }),
    }
    .map_err(|e| {
        warn!(
            source = SOURCE,
            outcome = "invalid-event",
            reason = e.code()
        );
        ConfirmationError::InvalidEvent(e)
    })?;
    // PreSignUp guarantees a name for new sign-ups; users from before the
    // trigger existed may have none, and the sub is a valid, non-personal name.
    let name = deps
        .names
        .derive(attributes)
        .or_else(|| DisplayName::parse(sub.as_str()).ok())
        .ok_or(ConfirmationError::InvalidEvent(
            InputError::InvalidDisplayName("no attribute yields a display name"),
        ))?;
    let profile = UserProfile {
        id: sub,
        name,
        metadata: None,
    };

    let budget = chime_budget(deps, deadline);
    trace!(source = SOURCE, sub = %profile.id, trigger = ?source, budget_ms = budget.as_millis() as u64, "calling Chime");
    let call = async {
        match source {
            // Reads first, so Cognito's retry of a confirmation that did
            // create the user logs `already-exists`, not `created`.
            ConfirmationSource::ConfirmSignUp => deps.directory.upsert(&profile).await,
            ConfirmationSource::ConfirmForgotPassword => {
                deps.directory.ensure_exists(&profile).await
            }
        }
    };
    let chime_error = match timeout(budget, call).await {
        Ok(Ok(applied)) => {
            info!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = applied.as_str());
            return Ok((event, ConfirmationOutcome::Provisioned(applied)));
        }
        Ok(Err(e)) => e,
        Err(_elapsed) => DirectoryError::Timeout,
    };

    let message = hand_off_message(&profile);
    let send = deps.sync_queue.send(message);
    let sent = match deadline {
        Some(d) => timeout_at_or_now(d, send).await,
        None => send.await,
    };
    match sent {
        Ok(()) => {
            warn!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = "handed-off",
                  chime_error = chime_error.code());
            Ok((
                event,
                ConfirmationOutcome::HandedOff {
                    chime_error: chime_error.code(),
                },
            ))
        }
        Err(queue) => {
            tracing::error!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = "failed",
                            chime_error = chime_error.code(), queue_error = %queue.message);
            Err(ConfirmationError::HandOffFailed {
                chime: chime_error,
                queue,
            })
        }
    }
}

/// The metrics of one invocation: the decision [`handle`] returned, and the
/// Chime calls it made (taken from `directory`).
pub fn metrics<D: Directory>(
    result: &Result<(Value, ConfirmationOutcome), ConfirmationError>,
    directory: &D,
) -> Invocation {
    let mut m = Invocation::new(METRICS);
    let chime_error = match result {
        Ok((_, ConfirmationOutcome::Provisioned(applied))) => {
            m.decision(applied.metric());
            None
        }
        Ok((_, ConfirmationOutcome::HandedOff { chime_error })) => {
            m.decision(Metric::HandedOff);
            Some(*chime_error)
        }
        Ok((_, ConfirmationOutcome::PassedThrough)) => {
            m.decision(Metric::PassedThrough);
            None
        }
        Err(ConfirmationError::InvalidEvent(_)) => {
            m.decision(Metric::InvalidEvent);
            None
        }
        Err(ConfirmationError::HandOffFailed { chime, .. }) => {
            m.decision(Metric::HandOffFailed);
            Some(chime.code())
        }
    };
    if chime_error == Some(DirectoryError::DENIED) {
        m.add(Metric::Denied, 1);
    }
    m.chime_calls(directory.take_call_stats());
    m
}

/// The Chime budget, shortened so that the hand-off still fits before the
/// Lambda deadline.
fn chime_budget<D, Q>(deps: &PostConfirmation<D, Q>, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            deps.chime_budget
                .min(left.saturating_sub(deps.hand_off_reserve))
        }
        None => deps.chime_budget,
    }
}

async fn timeout_at_or_now<F: Future<Output = Result<(), QueueError>>>(
    deadline: Instant,
    send: F,
) -> Result<(), QueueError> {
    tokio::time::timeout_at(deadline, send)
        .await
        .unwrap_or_else(|_| Err(QueueError::retryable("sync queue send timed out")))
}

/// The hand-off: group by sub (per-user order on FIFO), deduplicate by sub
/// (Cognito's retries of the same confirmation collapse into one message).
fn hand_off_message(profile: &UserProfile) -> OutgoingMessage {
    let event_id = format!("cognito-confirm-{}", profile.id);
    OutgoingMessage {
        body: provision_message(profile, &event_id, SystemTime::now()),
        group_id: profile.id.to_string(),
        deduplication_id: event_id,
        attributes: [("Source".to_owned(), SOURCE.to_owned())].into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::AppInstanceArn;
    use crate::memory::{InMemoryDirectory, InMemoryQueue, MissingAnswer};
    use crate::schema::{IdentityEvent, parse_body};

    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

    fn deps() -> PostConfirmation<InMemoryDirectory, InMemoryQueue> {
        let arn =
            AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/t").unwrap();
        PostConfirmation::new(InMemoryDirectory::new(arn), InMemoryQueue::new())
    }

    fn event(source: &str, attrs: Value) -> Value {
        json!({"version": "1", "region": "us-east-1", "userPoolId": "us-east-1_Ab12Cd34E",
               "userName": "ada", "triggerSource": source,
               "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
               "request": {"userAttributes": attrs}, "response": {}})
    }

    fn confirm() -> Value {
        event(
            "PostConfirmation_ConfirmSignUp",
            json!({"sub": SUB, "email": "ada@example.com", "name": "Ada Lovelace", "cognito:user_status": "CONFIRMED"}),
        )
    }

    #[tokio::test]
    async fn confirm_sign_up_creates_the_user_and_returns_the_event_unchanged() {
        let d = deps();
        let e = confirm();
        let (out, outcome) = handle(e.clone(), &d, None).await.unwrap();
        assert_eq!(out, e);
        assert_eq!(outcome, ConfirmationOutcome::Provisioned(Applied::Created));
        let users = d.directory.users();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].id.as_str(), SUB);
        assert_eq!(users[0].name, "Ada Lovelace");
        assert_eq!(users[0].metadata, "", "no PII in metadata");
    }

    #[tokio::test]
    async fn cognito_retries_yield_exactly_one_user() {
        let d = deps();
        for _ in 0..3 {
            handle(confirm(), &d, None).await.unwrap();
        }
        assert_eq!(d.directory.users().len(), 1);
        assert!(d.sync_queue.sent().is_empty());
    }

    #[tokio::test]
    async fn a_retried_confirmation_reports_the_user_it_found() {
        for missing in MissingAnswer::BOTH {
            let d = deps();
            d.directory.set_missing_answer(missing);
            let (_, first) = handle(confirm(), &d, None).await.unwrap();
            assert_eq!(first, ConfirmationOutcome::Provisioned(Applied::Created));
            let (_, again) = handle(confirm(), &d, None).await.unwrap();
            assert_eq!(
                again,
                ConfirmationOutcome::Provisioned(Applied::AlreadyProvisioned),
                "{missing:?}"
            );
        }
    }

    #[tokio::test]
    async fn forgot_password_heals_a_missing_user_directly_whatever_chime_answers() {
        for missing in MissingAnswer::BOTH {
            let d = deps();
            d.directory.set_missing_answer(missing);
            let e = event(
                "PostConfirmation_ConfirmForgotPassword",
                json!({"sub": SUB, "name": "Ada"}),
            );
            let (_, outcome) = handle(e, &d, None).await.unwrap();
            assert_eq!(
                outcome,
                ConfirmationOutcome::Provisioned(Applied::Created),
                "{missing:?}"
            );
            assert!(d.sync_queue.sent().is_empty(), "no hand-off");
        }
    }

    #[tokio::test]
    async fn forgot_password_heals_a_missing_user_and_leaves_an_existing_one() {
        let d = deps();
        let e = event(
            "PostConfirmation_ConfirmForgotPassword",
            json!({"sub": SUB, "name": "Ada"}),
        );
        let (_, outcome) = handle(e.clone(), &d, None).await.unwrap();
        assert_eq!(outcome, ConfirmationOutcome::Provisioned(Applied::Created));
        let renamed = event(
            "PostConfirmation_ConfirmForgotPassword",
            json!({"sub": SUB, "name": "Other"}),
        );
        let (_, outcome) = handle(renamed, &d, None).await.unwrap();
        assert_eq!(
            outcome,
            ConfirmationOutcome::Provisioned(Applied::AlreadyProvisioned)
        );
        assert_eq!(d.directory.users()[0].name, "Ada");
    }

    #[tokio::test]
    async fn chime_outage_hands_off_to_the_queue() {
        let d = deps();
        d.directory
            .fail_next([DirectoryError::Unavailable("503".into())]);
        let (out, outcome) = handle(confirm(), &d, None).await.unwrap();
        assert_eq!(out, confirm());
        assert_eq!(
            outcome,
            ConfirmationOutcome::HandedOff {
                chime_error: "Unavailable"
            }
        );
        let sent = d.sync_queue.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].group_id, SUB);
        assert_eq!(sent[0].deduplication_id, format!("cognito-confirm-{SUB}"));
        let parsed = parse_body(&sent[0].body).unwrap();
        let IdentityEvent::Provision(p) = parsed.event else {
            panic!("{parsed:?}")
        };
        assert_eq!((p.id.as_str(), p.name.as_str()), (SUB, "Ada Lovelace"));
        assert!(
            !sent[0].body.contains("example.com"),
            "no email in the hand-off"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_chime_is_cut_off_at_the_budget() {
        let mut d = deps();
        d.chime_budget = Duration::from_millis(3000);
        d.directory.set_latency(Duration::from_secs(10));
        let started = Instant::now();
        let (_, outcome) = handle(confirm(), &d, None).await.unwrap();
        assert_eq!(
            outcome,
            ConfirmationOutcome::HandedOff {
                chime_error: "Timeout"
            }
        );
        assert_eq!(started.elapsed(), Duration::from_millis(3000));
        assert_eq!(d.sync_queue.sent().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_shrinks_to_fit_the_lambda_deadline() {
        let d = deps();
        d.directory.set_latency(Duration::from_secs(10));
        let started = Instant::now();
        let deadline = started + Duration::from_millis(2500);
        let (_, outcome) = handle(confirm(), &d, Some(deadline)).await.unwrap();
        assert!(matches!(outcome, ConfirmationOutcome::HandedOff { .. }));
        // 2.5 s left minus the 1.5 s hand-off reserve.
        assert_eq!(started.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn fails_only_when_chime_and_queue_both_fail() {
        let d = deps();
        d.directory
            .fail_next([DirectoryError::Throttled("429".into())]);
        d.sync_queue.set_failing(Some(QueueError::retryable("503")));
        let err = handle(confirm(), &d, None).await.unwrap_err();
        assert!(matches!(err, ConfirmationError::HandOffFailed { .. }));
        assert!(
            !err.to_string().contains("429"),
            "no internals in the client message"
        );
    }

    /// What [`metrics`] makes of the next `handle` of `event`.
    async fn counted(
        d: &PostConfirmation<InMemoryDirectory, InMemoryQueue>,
        e: Value,
    ) -> Vec<(Metric, u64)> {
        metrics(&handle(e, d, None).await, &d.directory).counted()
    }

    #[tokio::test(start_paused = true)]
    async fn each_confirmation_is_one_decision_with_its_chime_calls_timed() {
        let d = deps();
        d.directory.set_latency(Duration::from_millis(30));
        let first = handle(confirm(), &d, None).await;
        let m = metrics(&first, &d.directory);
        assert_eq!(m.counted(), [(Metric::Decisions, 1), (Metric::Created, 1)]);
        // Describe (missing), then create: two calls of 30 ms.
        assert_eq!(m.latencies(), [Duration::from_millis(30); 2]);
        assert_eq!(
            counted(&d, confirm()).await,
            [(Metric::Decisions, 1), (Metric::AlreadyExists, 1)]
        );
        let unknown = event("PostConfirmation_Future", json!({"sub": SUB}));
        assert_eq!(
            counted(&d, unknown).await,
            [(Metric::Decisions, 1), (Metric::PassedThrough, 1)]
        );
        let no_sub = event("PostConfirmation_ConfirmSignUp", json!({"name": "Ada"}));
        assert_eq!(
            counted(&d, no_sub).await,
            [(Metric::Decisions, 1), (Metric::InvalidEvent, 1)]
        );
    }

    #[tokio::test]
    async fn a_hand_off_is_counted_and_a_denial_besides_it() {
        let d = deps();
        d.directory
            .fail_next([DirectoryError::Unavailable("503".into())]);
        assert_eq!(
            counted(&d, confirm()).await,
            [(Metric::Decisions, 1), (Metric::HandedOff, 1)]
        );
        d.directory.fail_next([DirectoryError::AccessDenied(
            "chime:DescribeAppInstanceUser".into(),
        )]);
        assert_eq!(
            counted(&d, confirm()).await,
            [
                (Metric::Decisions, 1),
                (Metric::HandedOff, 1),
                (Metric::Denied, 1)
            ]
        );
        d.directory.fail_next([DirectoryError::AccessDenied(
            "chime:DescribeAppInstanceUser".into(),
        )]);
        d.sync_queue.set_failing(Some(QueueError::retryable("503")));
        assert_eq!(
            counted(&d, confirm()).await,
            [
                (Metric::Decisions, 1),
                (Metric::HandOffFailed, 1),
                (Metric::Denied, 1)
            ]
        );
    }

    #[tokio::test]
    async fn missing_or_bad_sub_is_a_clear_error() {
        let d = deps();
        let no_sub = event("PostConfirmation_ConfirmSignUp", json!({"name": "Ada"}));
        let err = handle(no_sub, &d, None).await.unwrap_err();
        assert_eq!(
            err,
            ConfirmationError::InvalidEvent(InputError::MissingField("request.userAttributes.sub"))
        );
        let bad = event(
            "PostConfirmation_ConfirmSignUp",
            json!({"sub": "nope", "name": "Ada"}),
        );
        assert!(matches!(
            handle(bad, &d, None).await,
            Err(ConfirmationError::InvalidEvent(InputError::InvalidUserId(
                _
            )))
        ));
        assert_eq!(d.directory.calls(), 0);
    }

    #[tokio::test]
    async fn a_user_without_name_attributes_is_named_by_sub() {
        let d = deps();
        let e = event("PostConfirmation_ConfirmSignUp", json!({"sub": SUB}));
        handle(e, &d, None).await.unwrap();
        assert_eq!(d.directory.users()[0].name, SUB);
    }

    #[tokio::test]
    async fn unknown_sources_pass_through() {
        let d = deps();
        let e = event("PostConfirmation_Future", json!({"sub": SUB}));
        let (out, outcome) = handle(e.clone(), &d, None).await.unwrap();
        assert_eq!((out, outcome), (e, ConfirmationOutcome::PassedThrough));
        assert_eq!(d.directory.calls(), 0);
    }
}
