//! `chime-sync reconcile`.
//!
//! Reads who should exist ([`crate::inputs`]), lists Chime, and plans what
//! the reconcile function would publish: the same planner and the same
//! guard (`chime_sync_core::planner::guard`: ownership, change times,
//! pending deletions of users who are back, deletions under way), then the
//! mass-delete breaker. `--stack-name` takes every setting from the deployed
//! function ([`crate::settings`]), so a review plans what the function
//! plans. `--apply` carries the plan out, each change through the ledger's
//! rules as idp-sync applies them (`chime_sync_core::sync`), `--concurrency`
//! at a time under `--rate`, deciding from the listed state.
//!
//! The plan's lines come first and its summary last, so the summary is what
//! a terminal still shows; `--plan-file` puts the lines in a file instead.
//! Exit status ([`crate::Status`]): 0 in sync (nothing to change, no
//! deletion pending), 2 changes planned or applied, or deletions pending,
//! 3 deletions withheld by the breaker (released with `--allow-deletes N`),
//! 1 an error. The same with or without a pipe.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use chime_sync_core::directory::{DeleteMode, DirectoryUser};
use chime_sync_core::ledger::At;
use chime_sync_core::planner::guard::{self, GuardSettings, Guarded, Observed};
use chime_sync_core::planner::{self, Action, BreakerVerdict, DeleteBreaker, PlanOptions};
use chime_sync_core::rate::Pacer;
use chime_sync_core::sync::{self, ApplyOptions, SyncOutcome, SyncRules};
use chime_sync_core::{SyncError, UserId};
use clap::{Args, ValueEnum, value_parser};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::inputs::{
    Output, TargetArgs, counts_line, ledger_label, list_chime_users, terminal_bar,
};
use crate::out::outln;
use crate::settings::{self, Flags, Settings};
use crate::{Chime, Failure, Status, aws_errors, chime_directory};

/// The version of `--output json`'s document; a change that removes or
/// renames a field bumps it (CHANGELOG.md).
pub const JSON_SCHEMA: &str = "chime-sync.reconcile/1";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Grace,
    Immediate,
}

const FUNCTION_ARGS: [&str; 2] = ["stack_name", "function_name"];

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Carry out the plan (default: only print it).
    #[arg(long)]
    apply: bool,
    /// Also delete Chime users that are not active in the source (and that it owns).
    /// Implied by --stack-name and --function-name: the function always plans them.
    #[arg(long)]
    delete_missing: bool,
    /// How deletions are made (as DELETE_MODE): grace lets Chime delete the user after
    /// --grace-days, undone by `restore`; immediate deletes at once.
    #[arg(long, value_enum, default_value_t = ModeArg::Grace, conflicts_with_all = FUNCTION_ARGS)]
    delete_mode: ModeArg,
    /// Days before Chime deletes a user in grace mode (as DELETE_GRACE_DAYS).
    #[arg(long, default_value_t = 7, value_parser = value_parser!(u16).range(1..=365),
          conflicts_with_all = FUNCTION_ARGS)]
    grace_days: u16,
    /// The breaker: at most max(this, --delete-limit-percent of the Chime users) deletions
    /// (as DELETE_LIMIT).
    #[arg(long, default_value_t = 50, value_name = "N", conflicts_with_all = FUNCTION_ARGS)]
    delete_limit: usize,
    /// The breaker's share of the Chime users, in percent (as DELETE_LIMIT_PERCENT).
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u8).range(0..=100),
          value_name = "PERCENT", conflicts_with_all = FUNCTION_ARGS)]
    delete_limit_percent: u8,
    /// Release the breaker for this many deletions (the number the plan shows).
    #[arg(long, value_name = "N")]
    allow_deletes: Option<usize>,
    /// Ids never deleted (as PROTECTED_USER_IDS), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "IDS", conflicts_with_all = FUNCTION_ARGS)]
    protected_user_ids: Vec<String>,
    /// Write the plan's lines to this file instead of the terminal (the summary still
    /// prints): for plans longer than a screen.
    #[arg(long, value_name = "FILE")]
    plan_file: Option<PathBuf>,
}

impl ReconcileArgs {
    fn flags(&self) -> Flags<'_> {
        Flags {
            ledger: &self.target.ledger,
            protected: &self.protected_user_ids,
            breaker: DeleteBreaker {
                limit: self.delete_limit,
                percent: self.delete_limit_percent,
            },
            mode: match self.delete_mode {
                ModeArg::Grace => DeleteMode::Grace {
                    days: self.grace_days,
                },
                ModeArg::Immediate => DeleteMode::Immediate,
            },
        }
    }
}

/// What a review found: the plan after the guard, and the breaker's verdict.
struct Review {
    settings: Settings,
    chime_users: usize,
    foreign: usize,
    guarded: Guarded,
    withheld: Vec<Action>,
    verdict: BreakerVerdict,
    began: At,
}

impl Review {
    /// Deletions under way: marks in the ledger, less those being cancelled,
    /// and deletions Chime has scheduled that the ledger does not know of.
    fn pending(&self) -> usize {
        let scheduled = self
            .guarded
            .kept
            .0
            .get("deletion already scheduled")
            .copied();
        (self.guarded.marked - self.guarded.restores).max(scheduled.unwrap_or(0))
    }

    fn status(&self, apply: bool) -> Status {
        let plan = &self.guarded.plan;
        if self.verdict.tripped() {
            Status::Withheld
        } else if !plan.actions.is_empty() || self.pending() > 0 {
            Status::Changes
        } else {
            let _ = apply;
            Status::Done
        }
    }
}

pub async fn reconcile(args: ReconcileArgs) -> Result<Status, Failure> {
    if args.plan_file.is_some() && args.target.chime.output == Output::Json {
        return Err(
            "--plan-file writes the text plan; with --output json the plan is the \
                    document's `changes`: drop one of them"
                .to_owned()
                .into(),
        );
    }
    let settings = settings::resolve(&args.target, args.flags(), true).await?;
    let chime = chime_directory(
        settings.app_instance.clone(),
        args.target.chime.endpoint_url.clone(),
    )
    .await?;
    let review = review(&args, settings, &chime).await?;
    let json_out = args.target.chime.output == Output::Json;
    if !json_out {
        print_plan(&args, &review)?;
    }
    let results = if args.apply {
        apply_review(&args, &review, &chime).await
    } else {
        Vec::new()
    };
    finish(&args, &review, &chime, results)
}

/// List Chime, plan, guard, and judge the breaker.
async fn review(
    args: &ReconcileArgs,
    settings: Settings,
    chime: &Chime,
) -> Result<Review, Failure> {
    let (current, foreign) = list_chime_users(chime).await?;
    let plan = planner::plan(
        settings.loaded.sorted.active.values(),
        &current,
        PlanOptions {
            delete_missing: args.delete_missing || settings.deployed,
            protected: &settings.protected,
        },
    );
    let enough = settings
        .breaker
        .allowed(current.len())
        .max(args.allow_deletes.unwrap_or(0));
    let began = At::now();
    let by_id: BTreeMap<UserId, DirectoryUser> =
        current.iter().map(|u| (u.id.clone(), u.clone())).collect();
    let observed = Observed {
        desired: &settings.loaded.sorted,
        chime: &by_id,
        began,
        prefix: "",
    };
    let guard_settings = GuardSettings {
        source: settings.loaded.source.clone(),
        unowned: settings.unowned.clone(),
        describe_concurrency: usize::from(args.target.chime.concurrency),
    };
    let ledger = &settings.ledger;
    let mut guarded = guard::guard(
        plan,
        observed,
        &chime.directory,
        ledger,
        &guard_settings,
        enough,
    )
    .await
    .map_err(|e| e.to_string())?;
    guarded.kept.add("protected", guarded.plan.protected_kept);
    guarded.kept.add(
        "only in Chime, kept (no --delete-missing)",
        guarded.plan.extra_kept,
    );
    let verdict =
        settings
            .breaker
            .judge(guarded.plan.deletions(), current.len(), args.allow_deletes);
    let withheld = if verdict.tripped() {
        guarded.plan.take_deletions()
    } else {
        Vec::new()
    };
    Ok(Review {
        settings,
        chime_users: current.len(),
        foreign,
        guarded,
        withheld,
        verdict,
        began,
    })
}

/// The plan's lines: to `--plan-file`, or to the terminal before the summary.
fn print_plan(args: &ReconcileArgs, review: &Review) -> Result<(), Failure> {
    let mode = review.settings.mode;
    let tripped = review.verdict.tripped();
    let lines = review
        .guarded
        .plan
        .actions
        .iter()
        .chain(&review.withheld)
        .map(|action| {
            let held = matches!(action, Action::Delete(_)) && tripped;
            format!(
                "  {}{}",
                plan_line(action, mode),
                if held { "  [withheld]" } else { "" }
            )
        });
    match &args.plan_file {
        None => {
            for line in lines {
                outln!("{line}");
            }
        }
        Some(path) => {
            let write = || -> std::io::Result<usize> {
                let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                let mut n = 0;
                for line in lines {
                    writeln!(file, "{}", line.trim_start())?;
                    n += 1;
                }
                file.flush()?;
                Ok(n)
            };
            let n = write().map_err(|e| format!("--plan-file {}: {e}", path.display()))?;
            outln!("The plan's {n} lines are in {}", path.display());
        }
    }
    Ok(())
}

/// Carry out the plan, each change through the ledger's rules.
async fn apply_review(
    args: &ReconcileArgs,
    review: &Review,
    chime: &Chime,
) -> Vec<(Action, Result<SyncOutcome, SyncError>)> {
    let plan = &review.guarded.plan;
    if plan.actions.is_empty() {
        return Vec::new();
    }
    let settings = &review.settings;
    let rules = SyncRules {
        delete_mode: settings.mode,
        unowned: settings.unowned.clone(),
        feed_breaker: None,
    };
    let pacer = Pacer::new(f64::from(args.target.chime.rate));
    let json_out = args.target.chime.output == Output::Json;
    let bar = terminal_bar(Some(plan.actions.len() as u64)).filter(|_| !json_out);
    let actions = plan
        .actions
        .iter()
        .map(|a| {
            let change = guard::change_for(
                a,
                &settings.loaded.source,
                &settings.loaded.sorted,
                review.began,
            );
            (a.clone(), change)
        })
        .collect();
    let options = ApplyOptions {
        concurrency: usize::from(args.target.chime.concurrency),
        pacer: &pacer,
        rules: &rules,
        now: SystemTime::now(),
    };
    let mut applied = sync::apply_actions(&chime.directory, &settings.ledger, actions, options);
    let mut results = Vec::new();
    while let Some((action, result)) = applied.next().await {
        if !json_out {
            let line = result_line(&action, &result, settings.mode);
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
) -> Result<Status, Failure> {
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.target.chime.output == Output::Json {
        outln!("{}", review_json(args, review, chime, &results, failed));
    } else {
        for line in summary(args, review, chime, &results) {
            outln!("{line}");
        }
    }
    if let Some(line) = breaker_line(args, review) {
        eprintln!("chime-sync: ERROR {line}");
    }
    if failed > 0 {
        return Err(format!("{failed} changes failed; run reconcile again to retry them").into());
    }
    Ok(review.status(args.apply))
}

/// The summary's lines: what was read, the plan's counts, what is pending,
/// and what happens next.
fn summary(
    args: &ReconcileArgs,
    review: &Review,
    chime: &Chime,
    results: &[(Action, Result<SyncOutcome, SyncError>)],
) -> Vec<String> {
    let (loaded, plan) = (&review.settings.loaded, &review.guarded.plan);
    let mut kept = review.guarded.kept.clone();
    kept.add("in Chime, not a sub (not ours)", review.foreign);
    let mut lines = vec![
        format!(
            "Read {} users from {} ({} active; left out: {}).",
            loaded.sorted.read,
            loaded.label,
            loaded.sorted.active.len(),
            counts_line(&loaded.sorted.left_out.0),
        ),
        format!("Chime: {} users at {}.", review.chime_users, chime.endpoint),
        format!("Settings from {}.", review.settings.origin),
        format!("Ownership from {}.", ledger_label(&review.settings.ledger)),
        format!(
            "Plan: {} to create, {} to update, {} to restore, {} to delete{}, {} unchanged; \
             left out: {}.",
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
        ),
    ];
    let pending = review.pending();
    if pending > 0 || plan.count("restore") > 0 {
        lines.push(format!(
            "Pending: {pending} scheduled for deletion; {} back in the source: cancelling.",
            plan.count("restore")
        ));
    }
    lines.push(next_step(args, review, results, pending));
    lines
}

fn next_step(
    args: &ReconcileArgs,
    review: &Review,
    results: &[(Action, Result<SyncOutcome, SyncError>)],
    pending: usize,
) -> String {
    let changes = !review.guarded.plan.actions.is_empty() || !review.withheld.is_empty();
    if args.apply {
        let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in results {
            let key = r.as_ref().map_or("failed", SyncOutcome::as_str);
            *by_outcome.entry(key.to_owned()).or_default() += 1;
        }
        format!(
            "Applied {} changes: {}.",
            results.len(),
            counts_line(&by_outcome)
        )
    } else if changes {
        "Dry run: nothing changed. Run again with --apply to carry out the plan.".to_owned()
    } else if pending > 0 {
        format!(
            "Nothing to change, but {pending} deletions are pending (Chime deletes each at the \
             end of its grace; `chime-sync restore` cancels them)."
        )
    } else if review.settings.ledger.is_memory() {
        // Pending deletions are the ledger's marks: without one, none can be
        // seen, so "none pending" would be a claim this run cannot make.
        "In sync: nothing to change. Pending deletions are not known without a ledger \
         (--ledger-table or --stack-name); `chime-sync restore --dry-run` lists them from Chime."
            .to_owned()
    } else {
        "In sync: nothing to change, no deletion pending.".to_owned()
    }
}

fn breaker_line(args: &ReconcileArgs, review: &Review) -> Option<String> {
    let BreakerVerdict::Tripped { planned, allowed } = review.verdict else {
        return None;
    };
    let breaker = review.settings.breaker;
    Some(format!(
        "mass-delete breaker: {planned} deletions planned, at most {allowed} allowed \
         (max({}, {}% of {} Chime users)); none {}. Review the plan, then release them with \
         --allow-deletes {planned}",
        breaker.limit,
        breaker.percent,
        review.chime_users,
        if args.apply {
            "applied (the other changes were)"
        } else {
            "would be applied"
        },
    ))
}

fn review_json(
    args: &ReconcileArgs,
    review: &Review,
    chime: &Chime,
    results: &[(Action, Result<SyncOutcome, SyncError>)],
    failed: usize,
) -> Value {
    let (loaded, plan) = (&review.settings.loaded, &review.guarded.plan);
    let shown: Vec<Value> = if args.apply {
        results
            .iter()
            .map(|(a, r)| change_json(a, Some(r)))
            .collect()
    } else {
        plan.actions.iter().map(|a| change_json(a, None)).collect()
    };
    json!({
        "schema": JSON_SCHEMA,
        "status": if failed > 0 { Status::Failed.code() } else { review.status(args.apply).code() },
        "source": loaded.label,
        "ownerSource": loaded.source.as_str(),
        "settingsFrom": review.settings.origin,
        "read": loaded.sorted.read,
        "active": loaded.sorted.active.len(),
        "chime": {"endpoint": chime.endpoint.url, "users": review.chime_users, "notSubs": review.foreign},
        "plan": {
            "create": plan.count("create"), "update": plan.count("update"),
            "restore": plan.count("restore"), "delete": plan.deletions(),
            "unchanged": plan.unchanged, "withheld": review.withheld.len(),
            "leftOut": review.guarded.kept.0, "pending": review.pending(),
        },
        "breaker": verdict_json(review.verdict),
        "applied": args.apply,
        "changes": shown,
        "withheldChanges": review.withheld.iter().map(|a| change_json(a, None)).collect::<Vec<_>>(),
        "failed": failed,
        "cognito": loaded.pool.map(|s| json!({"calls": s.calls, "throttled": s.throttled})),
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
                line.push_str("  (back: its pending deletion is cancelled)");
            }
            line
        }
        Action::Delete(u) => match mode {
            DeleteMode::Immediate => format!("delete  {}  name {:?}", u.id, u.name),
            DeleteMode::Grace { days } => format!(
                "delete  {}  name {:?} (in {days} days unless restored)",
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
