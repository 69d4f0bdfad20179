//! The Cognito function: the PostConfirmation trigger, which creates the
//! Chime user for a newly confirmed sign-up and heals a missing one on
//! ConfirmForgotPassword, and the sign-in triggers (pre token generation,
//! post authentication), which create it for a federated user (SAML, OIDC,
//! social) at sign-in.
//!
//! Cognito waits 5 s and retries on error or timeout, and the user stays
//! confirmed either way. So the Chime call gets a budget (2 s by default);
//! when Chime fails or is slow the work is handed to the sync queue as a
//! schema-v1 `user.created` message and the trigger still succeeds. Only when
//! both Chime and the queue fail does a confirmation return an error
//! (Cognito retries); a sign-in never fails on our account: an error there
//! would refuse the user's sign-in, and the hand-off or the next reconcile
//! covers what is left. Every path is idempotent: the create uses a token
//! derived from the sub and the hand-off a deduplication id derived from it.
//!
//! ## Federated users
//! Which triggers a federated user's first sign-in fires is documented two
//! ways: Cognito's current trigger-source table lists PreSignUp, then
//! PostConfirmation (`PostConfirmation_ConfirmSignUp`), then pre token
//! generation (`TokenGeneration_HostedAuth`); earlier revisions said that
//! neither post authentication nor pre token generation fire "at first
//! sign-in". Later sign-ins fire post authentication and pre token
//! generation. So this function handles every one of them: a federated
//! user gets its Chime user at whichever fires first, at the cost of one
//! Describe at each later sign-in. Sign-ins of users who are not federated
//! are left alone: their confirmation made their Chime user.
//!
//! The user is owned by the pool ([`crate::ledger`]): the ledger is written
//! beside the Chime call, and if the ledger write fails the user is handed
//! off, so idp-sync records it.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use thiserror::Error;
use tokio::time::{Instant, timeout};
use tracing::{info, trace, warn};

use super::cognito::{attribute, trigger_source, user_attributes};
use crate::directory::{Applied, Directory};
use crate::error::{DirectoryError, ErrorCode, InputError, QueueError};
use crate::identity::UserId;
use crate::ledger::{At, Change, ChangeKind, Ledger, LedgerError, Source, UnownedPolicy};
use crate::metrics::{FunctionMetrics, Invocation, Metric};
use crate::profile::{DisplayName, DisplayNamePolicy, UserProfile};
use crate::provisioning::Provisioning;
use crate::queue::{OutgoingMessage, Queue};
use crate::schema::{Origin, provision_message};

const SOURCE: &str = "post-confirmation";

/// What post-confirmation publishes ([`metrics`]).
pub const METRICS: FunctionMetrics = FunctionMetrics {
    source: SOURCE,
    error_kind: "ConfirmationFailed",
    metrics: &[
        Metric::Decisions,
        Metric::Created,
        Metric::AlreadyExists,
        Metric::Updated,
        Metric::HandedOff,
        Metric::HandOffFailed,
        Metric::PassedThrough,
        Metric::NotFederated,
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
/// The Chime budget at a sign-in unless configured (`SIGN_IN_BUDGET_MS`):
/// a sign-in waits on it, and a Describe takes tens of milliseconds.
pub const DEFAULT_SIGN_IN_BUDGET: Duration = Duration::from_millis(800);

/// What the trigger needs: the directory, the ledger, the sync queue and
/// its budgets.
pub struct PostConfirmation<D, Q, L> {
    pub directory: D,
    pub sync_queue: Q,
    pub ledger: L,
    pub names: DisplayNamePolicy,
    /// Longest the Chime call may take before the work is handed off.
    pub chime_budget: Duration,
    /// The same at a federated user's sign-in.
    pub sign_in_budget: Duration,
    /// Time kept back from the Lambda deadline for the hand-off send.
    pub hand_off_reserve: Duration,
}

impl<D, Q, L> PostConfirmation<D, Q, L> {
    pub fn new(directory: D, sync_queue: Q, ledger: L) -> Self {
        Self {
            directory,
            sync_queue,
            ledger,
            names: DisplayNamePolicy::default(),
            chime_budget: DEFAULT_CHIME_BUDGET,
            sign_in_budget: DEFAULT_SIGN_IN_BUDGET,
            hand_off_reserve: HAND_OFF_RESERVE,
        }
    }
}

/// The trigger sources this function handles (Cognito's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationSource {
    /// `PostConfirmation_ConfirmSignUp` (also a federated first sign-in,
    /// by Cognito's current table).
    ConfirmSignUp,
    /// `PostConfirmation_ConfirmForgotPassword`.
    ConfirmForgotPassword,
    /// `TokenGeneration_HostedAuth`, `TokenGeneration_Authentication`,
    /// `PostAuthentication_Authentication`: a sign-in.
    SignIn,
}

impl ConfirmationSource {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PostConfirmation_ConfirmSignUp" => Some(Self::ConfirmSignUp),
            "PostConfirmation_ConfirmForgotPassword" => Some(Self::ConfirmForgotPassword),
            "TokenGeneration_HostedAuth"
            | "TokenGeneration_Authentication"
            | "PostAuthentication_Authentication" => Some(Self::SignIn),
            _ => None,
        }
    }
}

/// Whether the event's user signed in through a third-party IdP: its
/// status is `EXTERNAL_PROVIDER`, or it has the `identities` attribute
/// Cognito keeps for federated users.
pub fn is_federated(attributes: &serde_json::Map<String, Value>) -> bool {
    attribute(attributes, "cognito:user_status") == Some("EXTERNAL_PROVIDER")
        || attribute(attributes, "identities").is_some_and(|i| !i.trim().is_empty())
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
    /// A sign-in of a user who is not federated: its confirmation made its
    /// Chime user, so nothing is called.
    NotFederated,
    /// A federated sign-in whose user could be neither made nor handed off:
    /// the sign-in goes ahead, the next reconcile cycle makes the user.
    LeftToReconcile {
        chime_error: &'static str,
    },
    /// A sign-in event that could not be read: the sign-in goes ahead.
    Unreadable(InputError),
}

impl ConfirmationOutcome {
    /// What the replay and the CLI print.
    pub fn label(&self) -> String {
        match self {
            Self::Provisioned(applied) => applied.as_str().to_owned(),
            Self::HandedOff { chime_error } => {
                format!("handed off to the sync queue ({chime_error})")
            }
            Self::LeftToReconcile { chime_error } => {
                format!("left to reconcile: Chime and the queue failed ({chime_error})")
            }
            Self::PassedThrough => "passed through (a trigger source not handled)".to_owned(),
            Self::NotFederated => "not federated: nothing to do at sign-in".to_owned(),
            Self::Unreadable(e) => format!("unreadable sign-in event, sign-in goes ahead: {e}"),
        }
    }
}

/// What kept the Chime user from being made within the budget: Chime, or
/// the ledger that records its owner. Either way the user is handed off.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Missed {
    #[error(transparent)]
    Chime(#[from] DirectoryError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Missed {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Chime(e) => e.code(),
            Self::Ledger(e) => e.code(),
        }
    }
}

/// Why the trigger failed. Cognito shows the text to the client, so it holds
/// no internals and no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfirmationError {
    #[error("the confirmation event could not be read: {0}")]
    InvalidEvent(InputError),
    #[error("the chat account could not be created or queued; please retry")]
    HandOffFailed { chime: Missed, queue: QueueError },
}

impl ErrorCode for ConfirmationError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidEvent(input) => input.code(),
            Self::HandOffFailed { .. } => "HandOffFailed",
        }
    }
}

/// Handle one event; returns it unchanged on success. A sign-in is never
/// refused on our account (see the module's documentation).
pub async fn handle<D: Directory, Q: Queue, L: Ledger>(
    event: Value,
    deps: &PostConfirmation<D, Q, L>,
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
    if source == ConfirmationSource::SignIn && !is_federated(attributes) {
        trace!(source = SOURCE, trigger = ?source, outcome = "not-federated");
        return Ok((event, ConfirmationOutcome::NotFederated));
    }
    let profile = match profile_of(attributes, &deps.names) {
        Ok(profile) => profile,
        Err(e) => {
            warn!(source = SOURCE, trigger = ?source, outcome = "invalid-event", reason = e.code());
            if source == ConfirmationSource::SignIn {
                return Ok((event, ConfirmationOutcome::Unreadable(e)));
            }
            return Err(ConfirmationError::InvalidEvent(e));
        }
    };
    let budget = chime_budget(deps, source, deadline);
    trace!(source = SOURCE, sub = %profile.id, trigger = ?source, budget_ms = budget.as_millis() as u64, "calling Chime");
    let missed = match timeout(budget, provision(deps, &profile, source)).await {
        Ok(Ok(applied)) => {
            info!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = applied.as_str());
            return Ok((event, ConfirmationOutcome::Provisioned(applied)));
        }
        Ok(Err(e)) => e,
        Err(_elapsed) => Missed::Chime(DirectoryError::Timeout),
    };
    hand_off(event, deps, &profile, source, missed, deadline).await
}

/// The user's Chime profile: its sub, and a name by the attribute order
/// (else the sub: PreSignUp guarantees a name for new sign-ups, but users
/// from before the trigger existed may have none, and the sub is a valid,
/// non-personal name).
fn profile_of(
    attributes: &serde_json::Map<String, Value>,
    names: &DisplayNamePolicy,
) -> Result<UserProfile, InputError> {
    let id = match attributes.get("sub") {
        Some(Value::String(s)) => UserId::parse(s),
        None | Some(Value::Null) => Err(InputError::MissingField("request.userAttributes.sub")),
        Some(_) => Err(InputError::WrongType {
            field: "request.userAttributes.sub",
            expected: "a string",
        }),
    }?;
    let name = names
        .derive(attributes)
        .or_else(|| DisplayName::parse(id.as_str()).ok())
        .ok_or(InputError::InvalidDisplayName(
            "no attribute yields a display name",
        ))?;
    Ok(UserProfile {
        id,
        name,
        metadata: None,
    })
}

/// The Chime user, and its owner in the ledger (the pool). A confirmation
/// writes both at once; a password reset or a sign-in records the owner
/// only when it made the user (a password reset is no change to the user,
/// and a known user's sign-in costs one Describe and nothing else).
async fn provision<D: Directory, Q, L: Ledger>(
    deps: &PostConfirmation<D, Q, L>,
    profile: &UserProfile,
    source: ConfirmationSource,
) -> Result<Applied, Missed> {
    // A trigger's event says nothing of when the user changed: the claim
    // moves no clock (a user made while a reconcile cycle reads is kept by
    // its creation time, which the cycle's describe sees).
    let claim = Change {
        id: profile.id.clone(),
        source: Source::pool(),
        kind: ChangeKind::Create,
        at: None,
    };
    let record = || deps.ledger.record(&claim, &UnownedPolicy::Keep, At::now());
    match source {
        // Reads first, so Cognito's retry of a confirmation that did create
        // the user logs `already-exists`, not `created`.
        ConfirmationSource::ConfirmSignUp => {
            let (applied, recorded) = tokio::join!(deps.directory.upsert(profile), record());
            recorded?;
            Ok(applied?)
        }
        ConfirmationSource::ConfirmForgotPassword | ConfirmationSource::SignIn => {
            let applied = deps.directory.ensure_exists(profile).await?;
            if applied == Applied::Created {
                record().await?;
            }
            Ok(applied)
        }
    }
}

/// Chime (or the ledger) missed: hand the user to the sync queue. When the
/// queue fails too, a confirmation fails (Cognito retries it) and a sign-in
/// goes ahead (the next reconcile cycle creates the user).
async fn hand_off<D, Q: Queue, L>(
    event: Value,
    deps: &PostConfirmation<D, Q, L>,
    profile: &UserProfile,
    source: ConfirmationSource,
    missed: Missed,
    deadline: Option<Instant>,
) -> Result<(Value, ConfirmationOutcome), ConfirmationError> {
    let send = deps.sync_queue.send(hand_off_message(profile));
    let sent = match deadline {
        Some(d) => timeout_at_or_now(d, send).await,
        None => send.await,
    };
    let chime_error = missed.code();
    match sent {
        Ok(()) => {
            warn!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = "handed-off", chime_error);
            Ok((event, ConfirmationOutcome::HandedOff { chime_error }))
        }
        Err(queue) if source == ConfirmationSource::SignIn => {
            tracing::error!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = "left-to-reconcile",
                            chime_error, queue_error = %queue.message);
            Ok((event, ConfirmationOutcome::LeftToReconcile { chime_error }))
        }
        Err(queue) => {
            tracing::error!(source = SOURCE, sub = %profile.id, trigger = ?source, outcome = "failed",
                            chime_error, queue_error = %queue.message);
            Err(ConfirmationError::HandOffFailed {
                chime: missed,
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
    let (outcome, chime_error) = match result {
        Ok((_, ConfirmationOutcome::Provisioned(applied))) => (applied.metric(), None),
        Ok((_, ConfirmationOutcome::HandedOff { chime_error })) => {
            (Metric::HandedOff, Some(*chime_error))
        }
        Ok((_, ConfirmationOutcome::LeftToReconcile { chime_error })) => {
            (Metric::HandOffFailed, Some(*chime_error))
        }
        Ok((_, ConfirmationOutcome::PassedThrough)) => (Metric::PassedThrough, None),
        Ok((_, ConfirmationOutcome::NotFederated)) => (Metric::NotFederated, None),
        Ok((_, ConfirmationOutcome::Unreadable(_))) | Err(ConfirmationError::InvalidEvent(_)) => {
            (Metric::InvalidEvent, None)
        }
        Err(ConfirmationError::HandOffFailed { chime, .. }) => {
            (Metric::HandOffFailed, Some(chime.code()))
        }
    };
    m.decision(outcome);
    if chime_error == Some(DirectoryError::DENIED) {
        m.add(Metric::Denied, 1);
    }
    m.chime_calls(directory.take_call_stats());
    m
}

/// The Chime budget of `source`, shortened so that the hand-off still fits
/// before the Lambda deadline.
fn chime_budget<D, Q, L>(
    deps: &PostConfirmation<D, Q, L>,
    source: ConfirmationSource,
    deadline: Option<Instant>,
) -> Duration {
    let budget = match source {
        ConfirmationSource::SignIn => deps.sign_in_budget,
        _ => deps.chime_budget,
    };
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            budget.min(left.saturating_sub(deps.hand_off_reserve))
        }
        None => budget,
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
    let origin = Origin::from(Source::pool(), Some(At::from_system(SystemTime::now())));
    OutgoingMessage {
        body: provision_message(profile, &event_id, &origin),
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
    use crate::ledger::memory::InMemoryLedger;
    use crate::memory::{InMemoryDirectory, InMemoryQueue, MissingAnswer};
    use crate::schema::{IdentityEvent, parse_body};

    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

    fn deps() -> PostConfirmation<InMemoryDirectory, InMemoryQueue, InMemoryLedger> {
        let arn =
            AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/t").unwrap();
        PostConfirmation::new(
            InMemoryDirectory::new(arn),
            InMemoryQueue::new(),
            InMemoryLedger::new(),
        )
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

    /// A `ConfirmForgotPassword` trigger for the user `SUB` named `name`.
    fn forgot_password(name: &str) -> Value {
        event(
            "PostConfirmation_ConfirmForgotPassword",
            json!({"sub": SUB, "name": name}),
        )
    }

    #[tokio::test]
    async fn forgot_password_heals_a_missing_user_directly_whatever_chime_answers() {
        for missing in MissingAnswer::BOTH {
            let d = deps();
            d.directory.set_missing_answer(missing);
            let e = forgot_password("Ada");
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
        let e = forgot_password("Ada");
        let (_, outcome) = handle(e.clone(), &d, None).await.unwrap();
        assert_eq!(outcome, ConfirmationOutcome::Provisioned(Applied::Created));
        let renamed = forgot_password("Other");
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
        d: &PostConfirmation<InMemoryDirectory, InMemoryQueue, InMemoryLedger>,
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
