//! `chime-sync restore`: cancel the pending (grace) deletions of every
//! active user — the undo of a wrongful mass deletion, within its grace
//! period — through the ledger's rules, as idp-sync would apply them: a
//! user a later change deleted (an explicit `user.deleted` newer than the
//! user's last change at the source) is kept deleted unless `--force`.
//!
//! Exit status: 0 nothing to restore, 2 users restored (or, with
//! `--dry-run`, to restore), 1 an error.

use std::collections::BTreeMap;
use std::time::SystemTime;

use chime_sync_aws::ConfiguredLedger;
use chime_sync_core::ledger::Ledger as _;
use chime_sync_core::ledger::{At, Change};
use chime_sync_core::planner::Action;
use chime_sync_core::planner::guard;
use chime_sync_core::rate::Pacer;
use chime_sync_core::sync::{self, SyncOutcome, SyncRules};
use chime_sync_core::{Directory, SyncError, UserId};
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;

use crate::inputs::{Loaded, Output, TargetArgs, list_chime_users, terminal_bar};
use crate::out::outln;
use crate::settings::{self, Flags};
use crate::{Chime, Failure, Status, aws_errors, chime_directory};

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Only say what would be restored.
    #[arg(long)]
    dry_run: bool,
    /// Restore also users whose deletion came after their last change at the source (an
    /// explicit `user.deleted` you are undoing); without it those are kept deleted.
    #[arg(long)]
    force: bool,
}

/// What restoring one user did.
enum Restored {
    Yes,
    NotPending,
    Kept(&'static str),
}

pub async fn restore(args: RestoreArgs) -> Result<Status, Failure> {
    let json_out = args.target.chime.output == Output::Json;
    let flags = Flags::without_deletions(&args.target.ledger);
    let settings = settings::resolve(&args.target, flags, false).await?;
    let (loaded, ledger, unowned) = (settings.loaded, settings.ledger, settings.unowned);
    for why in loaded.sorted.unusable.iter().take(5) {
        eprintln!(
            "chime-sync: warning: {}: {why} (not restored)",
            loaded.label
        );
    }
    let chime = chime_directory(
        settings.app_instance,
        args.target.chime.endpoint_url.clone(),
    )
    .await?;
    let (current, _) = list_chime_users(&chime).await?;
    let in_chime: BTreeMap<_, _> = current.into_iter().map(|u| (u.id.clone(), u)).collect();
    let candidates: Vec<(Action, Change)> = loaded
        .sorted
        .active
        .values()
        .filter_map(|want| {
            let have = in_chime.get(&want.id)?.clone();
            let action = Action::Restore {
                want: want.clone(),
                have,
            };
            let mut change = guard::change_for(&action, &loaded.source, &loaded.sorted, At::now());
            if args.force {
                change.at = Some(At::now());
            }
            Some((action, change))
        })
        .collect();
    let missing = loaded.sorted.active.len() - candidates.len();
    let rules = SyncRules {
        unowned,
        ..SyncRules::default()
    };
    let outcomes = restore_each(&args, &chime, &ledger, &rules, candidates, json_out).await;
    report_restore(&args, &loaded, missing, outcomes, json_out)
}

/// Describe each candidate; restore those whose deletion is pending, through
/// the ledger's rules.
async fn restore_each(
    args: &RestoreArgs,
    chime: &Chime,
    ledger: &ConfiguredLedger,
    rules: &SyncRules,
    candidates: Vec<(Action, Change)>,
    json_out: bool,
) -> Vec<(UserId, Result<Restored, SyncError>)> {
    let pacer = Pacer::new(f64::from(args.target.chime.rate));
    let bar = terminal_bar(Some(candidates.len() as u64)).filter(|_| !json_out);
    let directory = &chime.directory;
    let dry_run = args.dry_run;
    let mut checked = futures_util::stream::iter(candidates.into_iter().map(|(action, change)| {
        let pacer = &pacer;
        async move {
            pacer.wait().await;
            let id = action.user_id().clone();
            let pending = match directory.describe(&id).await {
                Ok(Some(user)) => user.deletion_pending(),
                Ok(None) | Err(chime_sync_core::DirectoryError::PossiblyMissing(_)) => false,
                Err(e) => return (id, Err(SyncError::from(e))),
            };
            let outcome = match (pending, dry_run) {
                (false, _) => Ok(Restored::NotPending),
                (true, true) => would_restore(ledger, rules, &change).await,
                (true, false) => sync::apply_action(
                    directory,
                    ledger,
                    rules,
                    &change,
                    &action,
                    SystemTime::now(),
                )
                .await
                .map(|o| match o {
                    SyncOutcome::Refused(r) => Restored::Kept(r.code()),
                    _ => Restored::Yes,
                }),
            };
            (id, outcome)
        }
    }))
    .buffer_unordered(usize::from(args.target.chime.concurrency));
    let mut out = Vec::new();
    while let Some((id, outcome)) = checked.next().await {
        let line = match &outcome {
            Ok(Restored::Yes) => Some(format!(
                "{}  {id}",
                if dry_run { "would restore" } else { "restored" }
            )),
            Ok(Restored::Kept(why)) => Some(format!("kept deleted ({why})  {id}")),
            Ok(Restored::NotPending) => None,
            Err(SyncError::Directory(e)) => Some(format!(
                "failed  {id}: {}",
                aws_errors::explain(e, "chime:PutAppInstanceUserExpirationSettings")
            )),
            Err(e) => Some(format!("failed  {id}: {e}")),
        };
        if let Some(bar) = &bar {
            if let Some(line) = &line {
                bar.println(line);
            }
            bar.inc(1);
        } else if let Some(line) = line.filter(|_| !json_out) {
            outln!("{line}");
        }
        out.push((id, outcome));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    out
}

/// A dry run's verdict: what the ledger's rules would say to the restore,
/// without recording it.
async fn would_restore(
    ledger: &ConfiguredLedger,
    rules: &SyncRules,
    change: &Change,
) -> Result<Restored, SyncError> {
    let records = ledger
        .get_many(std::slice::from_ref(&change.id))
        .await
        .map_err(SyncError::Ledger)?;
    let record = records.first().map(|(_, r)| r);
    Ok(
        match chime_sync_core::ledger::judge(record, change, &rules.unowned) {
            Ok(()) => Restored::Yes,
            Err(refusal) => Restored::Kept(refusal.code()),
        },
    )
}

fn report_restore(
    args: &RestoreArgs,
    loaded: &Loaded,
    missing: usize,
    outcomes: Vec<(UserId, Result<Restored, SyncError>)>,
    json_out: bool,
) -> Result<Status, Failure> {
    let restored: Vec<String> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Ok(Restored::Yes)))
        .map(|(id, _)| id.to_string())
        .collect();
    let kept = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Ok(Restored::Kept(_))))
        .count();
    let not_pending = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Ok(Restored::NotPending)))
        .count();
    let failures = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    if json_out {
        outln!(
            "{}",
            json!({
                "schema": "chime-sync.restore/1",
                "source": loaded.label, "active": loaded.sorted.active.len(),
                "restored": restored, "dryRun": args.dry_run, "notPending": not_pending,
                "keptDeleted": kept, "missingInChime": missing, "failed": failures,
            })
        );
    } else {
        outln!(
            "{} {} of {} active users ({} had no pending deletion; {} kept deleted by a later \
             change (--force restores them); {} are not in Chime: `reconcile --apply` creates them)",
            if args.dry_run {
                "Would restore"
            } else {
                "Restored"
            },
            restored.len(),
            loaded.sorted.active.len(),
            not_pending,
            kept,
            missing
        );
    }
    if failures > 0 {
        return Err(format!("{failures} users could not be restored; run restore again").into());
    }
    Ok(if restored.is_empty() {
        Status::Done
    } else {
        Status::Changes
    })
}
