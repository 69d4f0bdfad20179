//! The one guard between a plan and what a reconcile may do, for the
//! reconcile function and the `chime-sync reconcile` command alike: the
//! ownership and time rules ([`crate::ledger`]), pending deletions of users
//! who are back, and deletions that must not be counted (under way already,
//! created after the cycle began, gone since the listing). The breaker then
//! judges what is left ([`super::DeleteBreaker`]); the caller publishes or
//! applies it.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt};
use thiserror::Error;

use super::{Action, Plan};
use crate::directory::{Directory, DirectoryUser};
use crate::error::DirectoryError;
use crate::identity::UserId;
use crate::ledger::{
    self, At, Change, ChangeKind, Ledger, LedgerError, Marked, Source, UnownedPolicy, UserRecord,
};
use crate::schema::Origin;
use crate::user_pool::{LeftOutCounts, Sorted};

/// What the guard is configured with: the reconcile function's settings,
/// or the CLI's (which reads the same settings from the stack).
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// The source the desired list comes from (the pool, an HR export's
    /// publisher, LDAP): its absence deletes only what it owns.
    pub source: Source,
    pub unowned: UnownedPolicy,
    /// Describes in flight at once.
    pub describe_concurrency: usize,
}

/// What one reconcile pass observed: who should exist (with when each last
/// changed at the source, where it says), who does, and when the pass began.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub desired: &'a Sorted,
    /// Chime's users as listed, by id.
    pub chime: &'a BTreeMap<UserId, DirectoryUser>,
    /// When the pass (the cycle) began: what an absence is dated, and what
    /// a user created later is never deleted for.
    pub began: At,
    /// The id prefix of the pass's users (a shard's; empty for all).
    pub prefix: &'a str,
}

/// The plan after the guard, and what it left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guarded {
    pub plan: Plan,
    /// Changes the guard dropped, by reason ("owned by issuer:okta", …).
    pub kept: LeftOutCounts,
    /// Users with a deletion mark in this pass (pending, or done and not
    /// yet forgotten), and how many of them are back (restores planned).
    pub marked: usize,
    pub restores: usize,
    /// Deletions whose describe was skipped because more than the breaker
    /// could allow were found already: they stay in the plan and the count.
    pub undescribed: usize,
    pub describes: usize,
}

/// Why the guard could not decide: nothing of the pass goes ahead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardError {
    #[error("cannot read the ownership ledger: {0}")]
    Ledger(#[from] LedgerError),
}

/// The change the ledger is asked for, for `action` from `source`: creates
/// and updates dated by the desired user's last change at the source (where
/// it says), deletions as absences observed when the pass `began`.
pub fn change_for(action: &Action, source: &Source, desired: &Sorted, began: At) -> Change {
    let (kind, at) = match action {
        Action::Create(_) => (ChangeKind::Create, desired.modified_of(action.user_id())),
        Action::Update { .. } | Action::Restore { .. } => {
            (ChangeKind::Update, desired.modified_of(action.user_id()))
        }
        Action::Delete(_) => (ChangeKind::Absent, Some(began)),
    };
    Change {
        id: action.user_id().clone(),
        source: source.clone(),
        kind,
        at,
    }
}

/// The origin of the message that asks idp-sync for `action`.
pub fn origin_for(action: &Action, source: &Source, desired: &Sorted, began: At) -> Origin {
    let change = change_for(action, source, desired, began);
    Origin {
        absent: change.kind == ChangeKind::Absent,
        ..Origin::from(change.source, change.at)
    }
}

/// Apply the guard to `plan`. `enough` is how many deletions the breaker
/// could allow (with a release): once more are found, the rest are not
/// described, but they stay in the plan, and so in every count.
pub async fn guard<D: Directory, L: Ledger>(
    mut plan: Plan,
    observed: Observed<'_>,
    directory: &D,
    ledger: &L,
    settings: &GuardSettings,
    enough: usize,
) -> Result<Guarded, GuardError> {
    let marks = ledger::all_marked(ledger, Marked::Deletions, observed.prefix).await?;
    let ids: Vec<UserId> = plan.actions.iter().map(|a| a.user_id().clone()).collect();
    let mut records = ledger::records_of(ledger, &ids).await?;
    records.extend(marks.iter().cloned());
    let mut out = Guarded {
        marked: marks.len(),
        ..Guarded::default()
    };
    plan.actions.extend(restores(&plan, &marks, observed));
    let actions = std::mem::take(&mut plan.actions);
    for action in actions {
        let change = change_for(&action, &settings.source, observed.desired, observed.began);
        match ledger::judge(records.get(&change.id), &change, &settings.unowned) {
            Ok(()) => {
                out.restores += usize::from(matches!(action, Action::Restore { .. }));
                plan.actions.push(action);
            }
            Err(refusal) => out.kept.add(kept_reason(&refusal, &action), 1),
        }
    }
    screen(&mut plan, &mut out, observed, directory, settings, enough).await;
    out.plan = plan;
    Ok(out)
}

/// Marked users this pass lists as active and Chime still has, that no
/// action of the plan touches yet: each gets a restore (an update, which
/// clears the mark and the expiration).
fn restores(plan: &Plan, marks: &[(UserId, UserRecord)], observed: Observed<'_>) -> Vec<Action> {
    let planned: BTreeSet<&UserId> = plan.actions.iter().map(Action::user_id).collect();
    marks
        .iter()
        .filter(|(id, _)| !planned.contains(id))
        .filter_map(|(id, _)| {
            let want = observed.desired.active.get(id)?;
            let have = observed.chime.get(id)?;
            Some(Action::Restore {
                want: want.clone(),
                have: have.clone(),
            })
        })
        .collect()
}

fn kept_reason(refusal: &ledger::Refusal, action: &Action) -> String {
    match refusal {
        ledger::Refusal::NotOwner { owner: Some(o), .. } => format!("owned by {o}, kept"),
        ledger::Refusal::NotOwner { owner: None, .. } => {
            "owned by no source (predates ownership), kept".to_owned()
        }
        ledger::Refusal::Stale { .. } if action.verb() == "delete" => {
            "changed after this pass began, kept".to_owned()
        }
        ledger::Refusal::Stale { .. } => {
            format!("{} refused: changed later elsewhere", action.verb())
        }
    }
}

/// Describe each deletion: keep only users whose deletion is not under way,
/// that still exist, and that existed when the pass began. Describes run
/// `describe_concurrency` at a time; once more than `enough` are kept the
/// rest are not described, and stay in the plan as listed.
async fn screen<D: Directory>(
    plan: &mut Plan,
    out: &mut Guarded,
    observed: Observed<'_>,
    directory: &D,
    settings: &GuardSettings,
    enough: usize,
) {
    let deletions = plan.take_deletions();
    let width = settings.describe_concurrency.max(1);
    let mut kept: Vec<Action> = Vec::new();
    let mut chunks = deletions.chunks(width);
    for chunk in chunks.by_ref() {
        let described: Vec<_> = stream::iter(
            chunk
                .iter()
                .map(|action| async move { (action, directory.describe(action.user_id()).await) }),
        )
        .buffered(width)
        .collect()
        .await;
        for (action, result) in described {
            out.describes += 1;
            match screened(action, result, observed.began) {
                Ok(user) => kept.push(Action::Delete(user)),
                Err(reason) => out.kept.add(reason, 1),
            }
        }
        if kept.len() > enough {
            break;
        }
    }
    let undescribed: Vec<Action> = chunks.flatten().cloned().collect();
    out.undescribed = undescribed.len();
    plan.actions.extend(kept);
    plan.actions.extend(undescribed);
}

/// The described user to delete, or why not.
fn screened(
    action: &Action,
    result: Result<Option<DirectoryUser>, DirectoryError>,
    began: At,
) -> Result<DirectoryUser, &'static str> {
    match result {
        Ok(Some(user)) if user.deletion_pending() => Err("deletion already scheduled"),
        Ok(Some(user)) if user.created_at.is_some_and(|c| At::from_system(c) > began) => {
            Err("created after this pass began, kept")
        }
        Ok(Some(user)) => Ok(user),
        Ok(None) | Err(DirectoryError::PossiblyMissing(_)) => Err("gone since listed"),
        Err(e) => {
            tracing::warn!(source = "reconcile", sub = %action.user_id(), outcome = "not-screened", error = %e);
            Err("not described (error), kept this time")
        }
    }
}

#[cfg(test)]
mod tests;
