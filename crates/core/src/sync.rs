//! Applying one change to one user: the ledger's rules first
//! ([`crate::ledger`]), then Chime ([`Directory`]). Every writer goes
//! through here: idp-sync for each message, the CLI's `reconcile --apply`
//! and `held release`, so a rule cannot hold in one and not the other.
//!
//! One change is one guarded write to the ledger, then the Chime call it
//! allows. The ledger is written first, as the change intends: if Chime
//! then fails, the message is retried (the same write passes its guard
//! again) or dead-lettered (the ledger says more than Chime did, which the
//! next reconcile cycle sees and repairs). Chime is never written for a
//! change the ledger refused.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::warn;

use std::future::Future;

use futures_util::stream::{self, Stream, StreamExt};

use crate::directory::{Applied, DeleteMode, Directory};
use crate::error::{DirectoryError, SyncError};
use crate::ledger::{
    At, Change, ChangeKind, Counted, FeedBreaker, HeldDeletion, Ledger, Recorded, Refusal,
    UnownedPolicy,
};
use crate::planner::{self, Action};
use crate::provisioning::Provisioning;
use crate::rate::Pacer;
use crate::schema::{IdentityEvent, IdpMessage};

/// What a writer is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRules {
    pub delete_mode: DeleteMode,
    pub unowned: UnownedPolicy,
    /// The breaker on explicit deletions; `None` for writers an operator
    /// drives (the CLI), whose deletions are reviewed before they run.
    pub feed_breaker: Option<FeedBreaker>,
}

impl Default for SyncRules {
    fn default() -> Self {
        Self {
            delete_mode: DeleteMode::Immediate,
            unowned: UnownedPolicy::Keep,
            feed_breaker: None,
        }
    }
}

/// What applying a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Applied(Applied),
    /// The ledger's rules refused it: nothing was written.
    Refused(Refusal),
    /// The feed's breaker held this deletion back, for an operator's release.
    Held,
}

impl SyncOutcome {
    /// The log outcome.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied(a) => a.as_str(),
            Self::Refused(r) => r.code(),
            Self::Held => "deletion-held",
        }
    }
}

/// The Chime user count a feed breaker's percentage is of, read from the
/// ledger at most every [`CHIME_COUNT_TTL`] per sandbox (reconcile writes
/// it each cycle), so a message costs no extra read.
#[derive(Default)]
pub struct ChimeCount(Mutex<Option<(Instant, Option<u64>)>>);

/// How long a sandbox trusts the Chime user count it read.
pub const CHIME_COUNT_TTL: Duration = Duration::from_secs(600);

impl ChimeCount {
    async fn get<L: Ledger>(&self, ledger: &L) -> Option<u64> {
        let cached = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read_at, count)) = cached
            && read_at.elapsed() < CHIME_COUNT_TTL
        {
            return count;
        }
        // Unreadable: the breaker falls back to its absolute limit, which
        // only ever holds more deletions, never fewer.
        let count = ledger.chime_user_count().await.unwrap_or_else(|e| {
            warn!(source = "ledger", outcome = "chime-count-unread", error = %e);
            None
        });
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), count));
        count
    }
}

/// Apply one message: ledger, then Chime. `now` dates what the message does
/// not (a deletion without `occurredAt`) and a grace period.
pub async fn apply_message<D: Directory, L: Ledger>(
    directory: &D,
    ledger: &L,
    rules: &SyncRules,
    count: &ChimeCount,
    message: &IdpMessage,
    now: SystemTime,
) -> Result<SyncOutcome, SyncError> {
    let change = message.change();
    let breaker = breaker_for(rules, &change, message);
    let held = Held {
        event_id: message.event_id.as_deref(),
        breaker,
        count,
    };
    guarded(ledger, rules, &change, held, now, || async {
        match &message.event {
            IdentityEvent::Provision(p) | IdentityEvent::Update(p) => directory.upsert(p).await,
            IdentityEvent::Deprovision(id) => directory.remove(id, rules.delete_mode, now).await,
        }
    })
    .await
}

/// Apply one change a reconcile planned, deciding from the listed state
/// (no describe before a create): the ledger's guard first, then the Chime
/// call the planner chose. The CLI's `--apply` and `restore` use it, so
/// they keep the ledger's rules exactly as idp-sync does.
pub async fn apply_action<D: Directory, L: Ledger>(
    directory: &D,
    ledger: &L,
    rules: &SyncRules,
    change: &Change,
    action: &Action,
    now: SystemTime,
) -> Result<SyncOutcome, SyncError> {
    let count = ChimeCount::default();
    let held = Held {
        event_id: None,
        breaker: None,
        count: &count,
    };
    guarded(ledger, rules, change, held, now, || {
        planner::apply_one(directory, action, rules.delete_mode, now)
    })
    .await
}

/// How a reconcile's changes are applied.
#[derive(Clone, Copy)]
pub struct ApplyOptions<'a> {
    /// Changes in flight at once.
    pub concurrency: usize,
    /// Paces every change (its first call).
    pub pacer: &'a Pacer,
    pub rules: &'a SyncRules,
    /// What a grace counts from.
    pub now: SystemTime,
}

/// Apply each planned action with the change it asks the ledger for,
/// `options.concurrency` at a time under the pacer's rate, yielding each
/// result as it completes (a failure does not stop the rest).
pub fn apply_actions<'a, D: Directory, L: Ledger>(
    directory: &'a D,
    ledger: &'a L,
    actions: Vec<(Action, Change)>,
    options: ApplyOptions<'a>,
) -> impl Stream<Item = (Action, Result<SyncOutcome, SyncError>)> + 'a {
    stream::iter(actions.into_iter().map(move |(action, change)| async move {
        options.pacer.wait().await;
        let result = apply_action(
            directory,
            ledger,
            options.rules,
            &change,
            &action,
            options.now,
        )
        .await;
        (action, result)
    }))
    .buffer_unordered(options.concurrency.max(1))
}

/// What a held deletion needs: its event id, and the breaker it counts against.
struct Held<'a> {
    event_id: Option<&'a str>,
    breaker: Option<&'a FeedBreaker>,
    count: &'a ChimeCount,
}

/// The ledger's guarded write, then `chime` if it applied; a user created
/// again after its deletion belongs to its new creator.
async fn guarded<L, F, Fut>(
    ledger: &L,
    rules: &SyncRules,
    change: &Change,
    held: Held<'_>,
    now: SystemTime,
    chime: F,
) -> Result<SyncOutcome, SyncError>
where
    L: Ledger,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Applied, DirectoryError>>,
{
    let at_now = At::from_system(now);
    let recorded = match held.breaker {
        Some(breaker) => {
            let window = breaker.window(&change.source, at_now);
            let limit = breaker.allowed(held.count.get(ledger).await);
            match ledger
                .record_counted(change, &rules.unowned, at_now, &window, limit)
                .await?
            {
                Counted::Recorded(recorded) => recorded,
                Counted::WindowFull => {
                    return hold(ledger, held.event_id, change, at_now, limit).await;
                }
            }
        }
        None => ledger.record(change, &rules.unowned, at_now).await?,
    };
    let before = match recorded {
        Recorded::Applied { before } => before,
        Recorded::Refused(refusal) => return Ok(SyncOutcome::Refused(refusal)),
    };
    let applied = chime().await?;
    let previous_owner = before.and_then(|r| r.owner);
    if applied == Applied::Created
        && previous_owner
            .as_ref()
            .is_some_and(|owner| *owner != change.source)
    {
        ledger.set_owner(&change.id, &change.source).await?;
    }
    Ok(SyncOutcome::Applied(applied))
}

/// The breaker a change counts against: explicit deletions from a feed,
/// unless an operator released them. Absences have the reconcile
/// breaker of the cycle that observed them.
fn breaker_for<'r>(
    rules: &'r SyncRules,
    change: &Change,
    message: &IdpMessage,
) -> Option<&'r FeedBreaker> {
    let counted = change.kind == ChangeKind::Delete && !message.origin.released;
    rules.feed_breaker.as_ref().filter(|_| counted)
}

/// The window is full: keep the deletion for a release. idp-sync logs one
/// ERROR line per batch that held any (the line the breaker alarm's
/// runbook points to); each held user gets a WARN line here.
async fn hold<L: Ledger>(
    ledger: &L,
    event_id: Option<&str>,
    change: &Change,
    now: At,
    limit: u64,
) -> Result<SyncOutcome, SyncError> {
    let held = HeldDeletion {
        by: change.source.clone(),
        occurred_at: change.at,
        event_id: event_id.map(str::to_owned),
        held_at: now,
    };
    ledger.hold(&change.id, &held).await?;
    warn!(source = "idp-sync", sub = %change.id, feed = %change.source, outcome = "deletion-held",
          deletions_allowed = limit);
    Ok(SyncOutcome::Held)
}

#[cfg(test)]
mod tests;
