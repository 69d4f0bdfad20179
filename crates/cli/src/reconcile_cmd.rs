//! `chime-sync reconcile` and `chime-sync restore`.
//!
//! `reconcile` reads who should exist ([`crate::inputs`]), lists Chime, and
//! prints the plan the reconcile function would publish: the same planner
//! and the same guard (`chime_sync_core::reconcile::guard`: ownership,
//! change times, pending deletions of users who are back, deletions under
//! way), then the mass-delete breaker. `--apply` carries it out itself,
//! each change through the ledger's rules as idp-sync applies them
//! (`chime_sync_core::sync`), `--concurrency` at a time under `--rate`,
//! deciding from the listed state (no describe before a create).
//!
//! `restore` cancels the pending (grace) deletions of every active user: the
//! undo of a wrongful mass deletion, within its grace period.
//!
//! Exit status: 0 in sync (nothing to do), 2 changes planned or applied, 1 an
//! error (a refusal, a failed change, withheld deletions under `--apply`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use chime_sync_aws::ConfiguredLedger;
use chime_sync_core::directory::{DeleteMode, Directory, DirectoryUser};
use chime_sync_core::ledger::{At, Change, UnownedPolicy};
use chime_sync_core::rate::Pacer;
use chime_sync_core::reconcile::guard::{self, GuardSettings, Guarded, Observed};
use chime_sync_core::reconcile::{self, Action, BreakerVerdict, DeleteBreaker, PlanOptions};
use chime_sync_core::sync::{self, ApplyOptions, SyncOutcome, SyncRules};
use chime_sync_core::{AppInstanceArn, SyncError, UserId};
use clap::{Args, ValueEnum, value_parser};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::inputs::{
    ChimeArgs, LedgerArgs, Loaded, Output, SourceArgs, counts_line, ledger_label, list_chime, load,
    open_ledger, terminal_bar,
};
use crate::out::outln;
use crate::{Chime, Failure, Status, aws_errors, chime_directory};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Grace,
    Immediate,
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    chime: ChimeArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Carry out the plan (default: only print it).
    #[arg(long)]
    apply: bool,
    /// Also delete Chime users that are not active in the source (and that it owns).
    #[arg(long)]
    delete_missing: bool,
    /// How deletions are made (as DELETE_MODE): grace lets Chime delete the user after
    /// --grace-days, undone by `restore`; immediate deletes at once.
    #[arg(long, value_enum, default_value_t = ModeArg::Grace)]
    delete_mode: ModeArg,
    /// Days before Chime deletes a user in grace mode (as DELETE_GRACE_DAYS).
    #[arg(long, default_value_t = 7, value_parser = value_parser!(u16).range(1..=365))]
    grace_days: u16,
    /// The breaker: at most max(this, --delete-limit-percent of the Chime users) deletions.
    #[arg(long, default_value_t = 50, value_name = "N")]
    delete_limit: usize,
    /// The breaker's share of the Chime users, in percent (as DELETE_LIMIT_PERCENT).
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u8).range(0..=100), value_name = "PERCENT")]
    delete_limit_percent: u8,
    /// Release the breaker for this many deletions (the number the plan shows).
    #[arg(long, value_name = "N")]
    allow_deletes: Option<usize>,
    /// Ids never deleted (as PROTECTED_USER_IDS), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    protected_user_ids: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    chime: ChimeArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Only say what would be restored.
    #[arg(long)]
    dry_run: bool,
    /// Restore also users whose deletion came after their last change at the source (an
    /// explicit `user.deleted` you are undoing); without it those are kept deleted.
    #[arg(long)]
    force: bool,
}

impl ReconcileArgs {
    fn mode(&self) -> DeleteMode {
        match self.delete_mode {
            ModeArg::Grace => DeleteMode::Grace {
                days: self.grace_days,
            },
            ModeArg::Immediate => DeleteMode::Immediate,
        }
    }
}

/// What a review found: the plan after the guard, and the breaker's verdict.
struct Review {
    loaded: Loaded,
    chime_users: usize,
    foreign: usize,
    guarded: Guarded,
    withheld: Vec<Action>,
    verdict: BreakerVerdict,
    began: At,
}

pub async fn reconcile(args: ReconcileArgs) -> Result<Status, Failure> {
    let json_out = args.chime.output == Output::Json;
    let loaded = load(&args.source, true).await?;
    let app_instance =
        AppInstanceArn::parse(&args.chime.app_instance_arn).map_err(|e| e.to_string())?;
    let (ledger, unowned) = open_ledger(&args.ledger, app_instance.region()).await?;
    let chime = chime_directory(app_instance, args.chime.endpoint_url.clone()).await?;
    let review = review(&args, loaded, &chime, &ledger, &unowned).await?;
    let breaker_line = breaker_line(&args, &review);
    if !json_out {
        print_review(&args, &review, &chime, &ledger);
    }
    if let Some(line) = &breaker_line {
        eprintln!("chime-sync: ERROR {line}");
    }
    let results = if args.apply {
        apply_review(&args, &review, &chime, &ledger, unowned).await
    } else {
        Vec::new()
    };
    finish(&args, &review, &chime, results, breaker_line)
}

/// List Chime, plan, guard, and judge the breaker.
async fn review(
    args: &ReconcileArgs,
    loaded: Loaded,
    chime: &Chime,
    ledger: &ConfiguredLedger,
    unowned: &UnownedPolicy,
) -> Result<Review, Failure> {
    let (current, foreign) = list_chime(&chime.directory).await.map_err(|e| {
        Failure::aws(
            format!("cannot list the users at {}", chime.endpoint),
            &e,
            "chime:ListAppInstanceUsers",
        )
    })?;
    let protected: BTreeSet<String> = args
        .protected_user_ids
        .iter()
        .map(|id| id.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty())
        .collect();
    let plan = reconcile::plan(
        loaded.sorted.active.values(),
        &current,
        PlanOptions {
            delete_missing: args.delete_missing,
            protected: &protected,
        },
    );
    let breaker = DeleteBreaker {
        limit: args.delete_limit,
        percent: args.delete_limit_percent,
    };
    let enough = breaker
        .allowed(current.len())
        .max(args.allow_deletes.unwrap_or(0));
    let began = At::now();
    let by_id: BTreeMap<UserId, DirectoryUser> =
        current.iter().map(|u| (u.id.clone(), u.clone())).collect();
    let observed = Observed {
        desired: &loaded.sorted,
        chime: &by_id,
        began,
        prefix: "",
    };
    let settings = GuardSettings {
        source: loaded.source.clone(),
        unowned: unowned.clone(),
        describe_concurrency: usize::from(args.chime.concurrency),
    };
    let mut guarded = guard::guard(plan, observed, &chime.directory, ledger, &settings, enough)
        .await
        .map_err(|e| e.to_string())?;
    guarded.kept.add("protected", guarded.plan.protected_kept);
    guarded.kept.add(
        "only in Chime, kept (no --delete-missing)",
        guarded.plan.extra_kept,
    );
    let verdict = breaker.judge(guarded.plan.deletions(), current.len(), args.allow_deletes);
    let withheld = if verdict.tripped() {
        guarded.plan.take_deletions()
    } else {
        Vec::new()
    };
    Ok(Review {
        loaded,
        chime_users: current.len(),
        foreign,
        guarded,
        withheld,
        verdict,
        began,
    })
}

fn breaker_line(args: &ReconcileArgs, review: &Review) -> Option<String> {
    let BreakerVerdict::Tripped { planned, allowed } = review.verdict else {
        return None;
    };
    Some(format!(
        "mass-delete breaker: {planned} deletions planned, at most {allowed} allowed \
         (max(--delete-limit {}, {}% of {} Chime users)); none {}. Review the plan, then \
         release them with --allow-deletes {planned}",
        args.delete_limit,
        args.delete_limit_percent,
        review.chime_users,
        if args.apply {
            "applied"
        } else {
            "would be applied"
        },
    ))
}

fn print_review(args: &ReconcileArgs, review: &Review, chime: &Chime, ledger: &ConfiguredLedger) {
    let (loaded, plan) = (&review.loaded, &review.guarded.plan);
    outln!(
        "{} users read from {} ({} active; left out: {}); {} users in Chime at {}; ownership \
         from {}",
        loaded.sorted.read,
        loaded.label,
        loaded.sorted.active.len(),
        counts_line(&loaded.sorted.left_out.0),
        review.chime_users,
        chime.endpoint,
        ledger_label(ledger),
    );
    let mut kept = review.guarded.kept.clone();
    kept.add("in Chime, not a sub (not ours)", review.foreign);
    outln!(
        "Plan: {} to create, {} to update, {} to restore, {} to delete{}, {} unchanged; \
         left out: {}",
        plan.count("create"),
        plan.count("update"),
        plan.count("restore"),
        plan.deletions(),
        if review.withheld.is_empty() {
            String::new()
        } else {
            format!(" ({} more withheld by the breaker)", review.withheld.len())
        },
        plan.unchanged,
        counts_line(&kept.0),
    );
    let mode = args.mode();
    for action in plan.actions.iter().chain(&review.withheld) {
        let held = if matches!(action, Action::Delete(_)) && review.verdict.tripped() {
            "  [withheld]"
        } else {
            ""
        };
        outln!("  {}{held}", plan_line(action, mode));
    }
}

/// Carry out the plan, each change through the ledger's rules.
async fn apply_review(
    args: &ReconcileArgs,
    review: &Review,
    chime: &Chime,
    ledger: &ConfiguredLedger,
    unowned: UnownedPolicy,
) -> Vec<(Action, Result<SyncOutcome, SyncError>)> {
    let plan = &review.guarded.plan;
    if plan.actions.is_empty() {
        return Vec::new();
    }
    let rules = SyncRules {
        delete_mode: args.mode(),
        unowned,
        feed_breaker: None,
    };
    let pacer = Pacer::new(f64::from(args.chime.rate));
    let json_out = args.chime.output == Output::Json;
    let bar = terminal_bar(Some(plan.actions.len() as u64)).filter(|_| !json_out);
    let actions = plan
        .actions
        .iter()
        .map(|a| {
            let change = guard::change_for(
                a,
                &review.loaded.source,
                &review.loaded.sorted,
                review.began,
            );
            (a.clone(), change)
        })
        .collect();
    let options = ApplyOptions {
        concurrency: usize::from(args.chime.concurrency),
        pacer: &pacer,
        rules: &rules,
        now: SystemTime::now(),
    };
    let mut applied = sync::apply_actions(&chime.directory, ledger, actions, options);
    let mut results = Vec::new();
    while let Some((action, result)) = applied.next().await {
        if !json_out {
            let line = result_line(&action, &result, args.mode());
            match &bar {
                Some(bar) => {
                    bar.println(line);
                    bar.inc(1);
                }
                None => outln!("{line}"),
            }
        }
        results.push((action, result));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    results
}

fn result_line(
    action: &Action,
    result: &Result<SyncOutcome, SyncError>,
    mode: DeleteMode,
) -> String {
    match result {
        Ok(outcome) => format!("{}  {}", outcome.as_str(), action.user_id()),
        Err(SyncError::Directory(e)) => format!(
            "failed  {}  {}: {}",
            action.verb(),
            action.user_id(),
            aws_errors::explain(e, action.iam_action(mode))
        ),
        Err(e) => format!("failed  {}  {}: {e}", action.verb(), action.user_id()),
    }
}

/// The summary (or the JSON document), and the exit status.
fn finish(
    args: &ReconcileArgs,
    review: &Review,
    chime: &Chime,
    results: Vec<(Action, Result<SyncOutcome, SyncError>)>,
    breaker_line: Option<String>,
) -> Result<Status, Failure> {
    let plan = &review.guarded.plan;
    let changes = !plan.actions.is_empty() || !review.withheld.is_empty();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.chime.output == Output::Json {
        outln!("{}", review_json(args, review, chime, &results, failed));
    } else if args.apply {
        let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in &results {
            let key = r.as_ref().map_or("failed", SyncOutcome::as_str);
            *by_outcome.entry(key.to_owned()).or_default() += 1;
        }
        outln!(
            "Applied {} changes: {}",
            results.len(),
            counts_line(&by_outcome)
        );
    } else if changes {
        outln!("Dry run: nothing changed. Run again with --apply to carry out the plan.");
    } else {
        outln!("In sync: nothing to change.");
    }
    if failed > 0 {
        return Err(format!("{failed} changes failed; run reconcile again to retry them").into());
    }
    if let Some(line) = breaker_line.filter(|_| args.apply) {
        return Err(Failure {
            line: format!("{line} (the other changes were applied)"),
            detail: None,
        });
    }
    Ok(if changes {
        Status::Changes
    } else {
        Status::Done
    })
}

fn review_json(
    args: &ReconcileArgs,
    review: &Review,
    chime: &Chime,
    results: &[(Action, Result<SyncOutcome, SyncError>)],
    failed: usize,
) -> Value {
    let plan = &review.guarded.plan;
    let shown: Vec<Value> = if args.apply {
        results
            .iter()
            .map(|(a, r)| change_json(a, Some(r)))
            .collect()
    } else {
        plan.actions.iter().map(|a| change_json(a, None)).collect()
    };
    json!({
        "source": review.loaded.label,
        "ownerSource": review.loaded.source.as_str(),
        "read": review.loaded.sorted.read,
        "active": review.loaded.sorted.active.len(),
        "chime": {"endpoint": chime.endpoint.url, "users": review.chime_users, "notSubs": review.foreign},
        "plan": {
            "create": plan.count("create"), "update": plan.count("update"),
            "restore": plan.count("restore"), "delete": plan.deletions(),
            "unchanged": plan.unchanged, "withheld": review.withheld.len(),
            "leftOut": review.guarded.kept.0, "marked": review.guarded.marked,
        },
        "breaker": verdict_json(review.verdict),
        "applied": args.apply,
        "changes": shown,
        "withheldChanges": review.withheld.iter().map(|a| change_json(a, None)).collect::<Vec<_>>(),
        "failed": failed,
        "cognito": review.loaded.pool.map(|s| json!({"calls": s.calls, "throttled": s.throttled})),
    })
}

/// One line of the plan: what changes, old → new.
fn plan_line(action: &Action, mode: DeleteMode) -> String {
    match action {
        Action::Create(p) => format!("create  {}  name {:?}", p.id, p.name.as_str()),
        Action::Update { want, have } | Action::Restore { want, have } => {
            let mut line = format!("{}  {}", action.verb(), want.id);
            if have.name != want.name.as_str() {
                line.push_str(&format!(
                    "  name {:?} → {:?}",
                    have.name,
                    want.name.as_str()
                ));
            }
            if let Some(m) = want
                .metadata
                .as_ref()
                .filter(|m| m.as_str() != have.metadata)
            {
                line.push_str(&format!(
                    "  metadata {:?} → {:?}",
                    have.metadata,
                    m.as_str()
                ));
            }
            if matches!(action, Action::Restore { .. }) {
                line.push_str("  (back in the source: its pending deletion is cancelled)");
            }
            line
        }
        Action::Delete(u) => match mode {
            DeleteMode::Immediate => format!("delete  {}  name {:?}", u.id, u.name),
            DeleteMode::Grace { days } => format!(
                "delete  {}  name {:?} (Chime deletes it in {days} days unless restored)",
                u.id, u.name
            ),
        },
    }
}

/// One change as `--output json` shows it.
fn change_json(action: &Action, result: Option<&Result<SyncOutcome, SyncError>>) -> Value {
    let (old_name, new_name, old_meta, new_meta) = match action {
        Action::Create(p) => (
            None,
            Some(p.name.as_str().to_owned()),
            None,
            p.metadata.as_ref().map(|m| m.as_str().to_owned()),
        ),
        Action::Update { want, have } | Action::Restore { want, have } => (
            Some(have.name.clone()),
            Some(want.name.as_str().to_owned()),
            Some(have.metadata.clone()),
            want.metadata.as_ref().map(|m| m.as_str().to_owned()),
        ),
        Action::Delete(u) => (Some(u.name.clone()), None, Some(u.metadata.clone()), None),
    };
    let mut change = json!({
        "action": action.verb(),
        "sub": action.user_id().as_str(),
        "name": {"old": old_name, "new": new_name},
        "metadata": {"old": old_meta, "new": new_meta},
    });
    match result {
        Some(Ok(outcome)) => change["outcome"] = json!(outcome.as_str()),
        Some(Err(e)) => change["error"] = json!(e.to_string()),
        None => {}
    }
    change
}

fn verdict_json(verdict: BreakerVerdict) -> Value {
    match verdict {
        BreakerVerdict::Within { allowed } => json!({"verdict": "within", "allowed": allowed}),
        BreakerVerdict::Released { allowed, released } => {
            json!({"verdict": "released", "allowed": allowed, "released": released})
        }
        BreakerVerdict::Tripped { planned, allowed } => {
            json!({"verdict": "tripped", "planned": planned, "allowed": allowed})
        }
    }
}

/// What restoring one user did.
enum Restored {
    Yes,
    NotPending,
    Kept(&'static str),
}

pub async fn restore(args: RestoreArgs) -> Result<Status, Failure> {
    let json_out = args.chime.output == Output::Json;
    let loaded = load(&args.source, false).await?;
    for why in loaded.sorted.unusable.iter().take(5) {
        eprintln!(
            "chime-sync: warning: {}: {why} (not restored)",
            loaded.label
        );
    }
    let app_instance =
        AppInstanceArn::parse(&args.chime.app_instance_arn).map_err(|e| e.to_string())?;
    let (ledger, unowned) = open_ledger(&args.ledger, app_instance.region()).await?;
    let chime = chime_directory(app_instance, args.chime.endpoint_url.clone()).await?;
    let (current, _) = list_chime(&chime.directory).await.map_err(|e| {
        Failure::aws(
            format!("cannot list the users at {}", chime.endpoint),
            &e,
            "chime:ListAppInstanceUsers",
        )
    })?;
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
    let pacer = Pacer::new(f64::from(args.chime.rate));
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
                (true, true) => Ok(Restored::Yes),
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
    .buffer_unordered(usize::from(args.chime.concurrency));
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
