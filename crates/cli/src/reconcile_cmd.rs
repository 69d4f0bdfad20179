//! `chime-sync reconcile` and `chime-sync restore`.
//!
//! `reconcile` reads who should exist (the user pool live, `list-users`
//! export pages, or an HR export of JSON lines), lists Chime, and prints the
//! plan the reconcile function would publish (the same planner); `--apply`
//! carries it out itself, `--concurrency` changes at a time under `--rate`,
//! deciding from the listed state (no describe before a create). Input that
//! may be partial is refused before anything is planned, and the mass-delete
//! breaker withholds deletions beyond `max(--delete-limit,
//! --delete-limit-percent of the Chime users)` until `--allow-deletes N`.
//!
//! `restore` cancels the pending (grace) deletions of every active user: the
//! undo of a wrongful mass deletion, within its grace period.
//!
//! Exit status: 0 in sync (nothing to do), 2 changes planned or applied, 1 an
//! error (a refusal, a failed change, withheld deletions under `--apply`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chime_sync_aws::{CognitoConfig, CognitoUserPool, UserPoolId};
use chime_sync_core::directory::{Applied, DeleteMode, Directory, DirectoryUser};
use chime_sync_core::rate::Pacer;
use chime_sync_core::reconcile::{
    self, Action, ApplyOptions, BreakerVerdict, DeleteBreaker, PlanOptions,
};
use chime_sync_core::user_pool::{self, ActivePolicy, LIST_USERS_QUOTA_RPS, ReadStats, Sorted};
use chime_sync_core::{AppInstanceArn, DirectoryError, DisplayNamePolicy};
use clap::{ArgGroup, Args, ValueEnum, value_parser};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::out::outln;
use crate::{Failure, Status, aws_errors, chime_directory, sdk_config, show_paths};

/// Where the users who should exist come from (exactly one).
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["cognito_export", "users", "user_pool_id"])))]
pub struct SourceArgs {
    /// Output of `aws cognito-idp list-users --user-pool-id ID --output json`. Repeat it for
    /// several pages, or put the pages one after another in one file; the last page must end
    /// the listing (no PaginationToken/NextToken).
    #[arg(long, value_name = "FILE")]
    cognito_export: Vec<PathBuf>,
    /// JSON lines of schema-v1 user objects: {"sub", "displayName", "metadata"?}.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Read the user pool live (cognito-idp:ListUsers), paced under its quota.
    #[arg(long, value_name = "ID")]
    user_pool_id: Option<String>,
    /// Cognito endpoint for --user-pool-id (default: AWS's, or AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER).
    #[arg(long, value_name = "URL")]
    cognito_endpoint_url: Option<String>,
    /// Percent of Cognito's ListUsers quota (30 requests/s per account and Region) to use.
    #[arg(long, default_value_t = 50, value_parser = value_parser!(u8).range(1..=100))]
    pool_quota_percent: u8,
    /// Cognito statuses that count as active (as ACTIVE_USER_STATUSES); disabled users never do.
    #[arg(long, value_name = "STATUSES", default_value = ActivePolicy::DEFAULT)]
    active_statuses: String,
    /// Attribute order for display names (as DISPLAY_NAME_ATTRIBUTES).
    #[arg(long)]
    display_name_attributes: Option<String>,
}

/// Output format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Where Chime is, and how hard to push it.
#[derive(Args, Debug)]
pub struct ChimeArgs {
    #[arg(long)]
    app_instance_arn: String,
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Changes (or describes) in flight at once.
    #[arg(long, default_value_t = 8, value_parser = value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// At most this many changes (or describes) started per second.
    #[arg(long, default_value_t = 200, value_parser = value_parser!(u32).range(1..=10_000))]
    rate: u32,
    /// `text` for a person (a progress bar on a terminal), `json` for automation.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

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
    /// Carry out the plan (default: only print it).
    #[arg(long)]
    apply: bool,
    /// Also delete Chime users that are not active in the source.
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
    #[arg(long, default_value_t = 50)]
    delete_limit: usize,
    #[arg(long, default_value_t = 5, value_parser = value_parser!(u8).range(0..=100))]
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
    /// Only say what would be restored.
    #[arg(long)]
    dry_run: bool,
}

/// Who should exist, and where that was read.
struct Loaded {
    sorted: Sorted,
    label: String,
    pool: Option<ReadStats>,
}

fn refused(label: &str, refusal: impl std::fmt::Display) -> Failure {
    format!("{label}: {refusal}").into()
}

/// Read the source; with `complete`, refuse input that may be partial.
async fn load(source: &SourceArgs, complete: bool) -> Result<Loaded, Failure> {
    let active = ActivePolicy::parse(&source.active_statuses)
        .map_err(|e| format!("--active-statuses: {e}"))?;
    let names = match &source.display_name_attributes {
        Some(spec) => DisplayNamePolicy::parse(spec).map_err(|e| e.to_string())?,
        None => DisplayNamePolicy::default(),
    };
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
    };
    let loaded = if let Some(id) = &source.user_pool_id {
        read_pool(source, id, &active, &names).await?
    } else if let Some(path) = &source.users {
        let label = path.display().to_string();
        Loaded {
            sorted: reconcile::from_user_lines(&read(path)?).map_err(|r| refused(&label, r))?,
            label,
            pool: None,
        }
    } else {
        let label = show_paths(&source.cognito_export);
        let mut pages = Vec::new();
        for path in &source.cognito_export {
            pages.extend(
                reconcile::json_values(&read(path)?)
                    .map_err(|r| refused(&path.display().to_string(), r))?,
            );
        }
        Loaded {
            sorted: reconcile::from_cognito_pages(&pages, &active, &names)
                .map_err(|r| refused(&label, r))?,
            label,
            pool: None,
        }
    };
    if complete {
        reconcile::check_complete(&loaded.sorted).map_err(|r| refused(&loaded.label, r))?;
    }
    Ok(loaded)
}

async fn read_pool(
    source: &SourceArgs,
    id: &str,
    active: &ActivePolicy,
    names: &DisplayNamePolicy,
) -> Result<Loaded, Failure> {
    let pool_id = UserPoolId::parse(id).map_err(|e| format!("--user-pool-id: {e}"))?;
    let label = format!("the user pool {pool_id}");
    let local = source.cognito_endpoint_url.is_some()
        || [
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            "AWS_ENDPOINT_URL",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|u| !u.is_empty()));
    let sdk = sdk_config(pool_id.region(), local).await?;
    let pool = CognitoUserPool::new(
        &sdk,
        CognitoConfig {
            endpoint_url: source.cognito_endpoint_url.clone(),
            ..CognitoConfig::new(pool_id)
        },
    );
    let pacer = Pacer::new(LIST_USERS_QUOTA_RPS * f64::from(source.pool_quota_percent) / 100.0);
    let spinner = terminal_bar(None);
    let mut stats = ReadStats::default();
    let mut sorted = Sorted::default();
    user_pool::read_users(&pool, None, &pacer, None, &mut stats, |page| {
        sorted.add(page, active, names);
        if let Some(bar) = &spinner {
            bar.set_message(format!("reading {label}: {} users", sorted.read));
        }
    })
    .await
    .map_err(|e| Failure {
        line: format!("cannot read {label}: {}", aws_errors::explain_pool(&e)),
        detail: Some(e.to_string()),
    })?;
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    Ok(Loaded {
        sorted,
        label,
        pool: Some(stats),
    })
}

/// A progress bar (or a spinner, without a length) when standard output is
/// a terminal; `None` otherwise (plain lines instead).
fn terminal_bar(len: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// Chime's users whose id is a sub, and how many others it listed.
async fn list_chime<D: Directory>(
    directory: &D,
) -> Result<(Vec<DirectoryUser>, usize), DirectoryError> {
    let (mut users, mut foreign, mut token) = (Vec::new(), 0, None);
    loop {
        let page = directory.list(token).await?;
        users.extend(page.users);
        foreign += page.foreign;
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok((users, foreign)),
        }
    }
}

fn counts_line(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of the plan: what changes, old → new.
fn plan_line(action: &Action, mode: DeleteMode) -> String {
    match action {
        Action::Create(p) => format!("create  {}  name {:?}", p.id, p.name.as_str()),
        Action::Update { want, have } => {
            let mut line = format!("update  {}", want.id);
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
fn change_json(action: &Action, result: Option<&Result<Applied, DirectoryError>>) -> Value {
    let (old_name, new_name, old_meta, new_meta) = match action {
        Action::Create(p) => (
            None,
            Some(p.name.as_str().to_owned()),
            None,
            p.metadata.as_ref().map(|m| m.as_str().to_owned()),
        ),
        Action::Update { want, have } => (
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
        Some(Ok(applied)) => change["outcome"] = json!(applied.as_str()),
        Some(Err(e)) => change["error"] = json!(e.to_string()),
        None => {}
    }
    change
}

pub async fn reconcile(args: ReconcileArgs) -> Result<Status, Failure> {
    let json_out = args.chime.output == Output::Json;
    let mode = match args.delete_mode {
        ModeArg::Grace => DeleteMode::Grace {
            days: args.grace_days,
        },
        ModeArg::Immediate => DeleteMode::Immediate,
    };
    let loaded = load(&args.source, true).await?;
    let app_instance =
        AppInstanceArn::parse(&args.chime.app_instance_arn).map_err(|e| e.to_string())?;
    let chime = chime_directory(app_instance, args.chime.endpoint_url.clone()).await?;
    let (current, foreign) = list_chime(&chime.directory).await.map_err(|e| {
        Failure::aws(
            format!("cannot list the users at {}", chime.endpoint),
            &e,
            "chime:ListAppInstanceUsers",
        )
    })?;
    let protected = args
        .protected_user_ids
        .iter()
        .map(|id| id.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty())
        .collect();
    let mut plan = reconcile::plan(
        loaded.sorted.active.values(),
        &current,
        PlanOptions {
            delete_missing: args.delete_missing,
            protected: &protected,
        },
    );
    let mut left_out = loaded.sorted.left_out.clone();
    left_out.add("protected", plan.protected_kept);
    left_out.add("only in Chime, kept (no --delete-missing)", plan.extra_kept);
    left_out.add("in Chime, not a sub (not ours)", foreign);

    let breaker = DeleteBreaker {
        limit: args.delete_limit,
        percent: args.delete_limit_percent,
    };
    let allowed = breaker.allowed(current.len());
    if matches!(mode, DeleteMode::Grace { .. }) && plan.deletions() > 0 {
        let enough = allowed.max(args.allow_deletes.unwrap_or(0));
        let screening = reconcile::screen_deletions(
            &chime.directory,
            &mut plan,
            usize::from(args.chime.concurrency),
            enough,
        )
        .await;
        left_out.add("deletion already scheduled", screening.pending);
        left_out.add("gone since listed", screening.gone);
        left_out.add(
            "not described (error): not deleted now",
            screening.unchecked,
        );
    }
    let verdict = breaker.judge(plan.deletions(), current.len(), args.allow_deletes);
    let withheld = if verdict.tripped() {
        plan.take_deletions()
    } else {
        Vec::new()
    };

    let summary = format!(
        "{} users read from {} ({} active; left out: {}); {} users in Chime at {}",
        loaded.sorted.read,
        loaded.label,
        loaded.sorted.active.len(),
        counts_line(&loaded.sorted.left_out.0),
        current.len(),
        chime.endpoint,
    );
    let plan_counts = format!(
        "Plan: {} to create, {} to update, {} to delete{}, {} unchanged; left out: {}",
        plan.count("create"),
        plan.count("update"),
        plan.deletions(),
        if withheld.is_empty() {
            String::new()
        } else {
            format!(" ({} more withheld by the breaker)", withheld.len())
        },
        plan.unchanged,
        counts_line(&left_out.0),
    );
    let breaker_line = match verdict {
        BreakerVerdict::Tripped { planned, allowed } => Some(format!(
            "mass-delete breaker: {planned} deletions planned, at most {allowed} allowed \
             (max(--delete-limit {}, {}% of {} Chime users)); none {}. Review the plan, then \
             release them with --allow-deletes {planned}",
            args.delete_limit,
            args.delete_limit_percent,
            current.len(),
            if args.apply {
                "applied"
            } else {
                "would be applied"
            },
        )),
        _ => None,
    };
    if !json_out {
        outln!("{summary}");
        outln!("{plan_counts}");
        for action in plan.actions.iter().chain(&withheld) {
            let held = if matches!(action, Action::Delete(_)) && verdict.tripped() {
                "  [withheld]"
            } else {
                ""
            };
            outln!("  {}{held}", plan_line(action, mode));
        }
    }
    if let Some(line) = &breaker_line {
        eprintln!("chime-sync: ERROR {line}");
    }
    let changes = !plan.actions.is_empty() || !withheld.is_empty();

    let mut results: Vec<(Action, Result<Applied, DirectoryError>)> = Vec::new();
    if args.apply && !plan.actions.is_empty() {
        let pacer = Pacer::new(f64::from(args.chime.rate));
        let bar = if json_out {
            None
        } else {
            terminal_bar(Some(plan.actions.len() as u64))
        };
        let mut applied = reconcile::apply(
            &chime.directory,
            plan.actions.clone(),
            ApplyOptions {
                concurrency: usize::from(args.chime.concurrency),
                pacer: &pacer,
                delete_mode: mode,
                now: SystemTime::now(),
            },
        );
        while let Some((action, result)) = applied.next().await {
            if !json_out {
                let line = match &result {
                    Ok(a) => format!("{}  {}", a.as_str(), action.user_id()),
                    Err(e) => format!(
                        "failed  {}  {}: {}",
                        action.verb(),
                        action.user_id(),
                        aws_errors::explain(e, action.iam_action(mode))
                    ),
                };
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
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if json_out {
        let shown: Vec<Value> = if args.apply {
            results
                .iter()
                .map(|(a, r)| change_json(a, Some(r)))
                .collect()
        } else {
            plan.actions.iter().map(|a| change_json(a, None)).collect()
        };
        let document = json!({
            "source": loaded.label,
            "read": loaded.sorted.read,
            "active": loaded.sorted.active.len(),
            "chime": {"endpoint": chime.endpoint.url, "users": current.len(), "notSubs": foreign},
            "plan": {
                "create": plan.count("create"), "update": plan.count("update"),
                "delete": plan.deletions(), "unchanged": plan.unchanged,
                "withheld": withheld.len(), "leftOut": left_out.0,
            },
            "breaker": verdict_json(verdict),
            "applied": args.apply,
            "changes": shown,
            "withheldChanges": withheld.iter().map(|a| change_json(a, None)).collect::<Vec<_>>(),
            "failed": failed,
            "cognito": loaded.pool.map(|s| json!({"calls": s.calls, "throttled": s.throttled})),
        });
        outln!("{document}");
    } else if args.apply {
        let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in &results {
            *by_outcome
                .entry(
                    r.as_ref()
                        .map_or("failed".to_owned(), |a| a.as_str().to_owned()),
                )
                .or_default() += 1;
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
    let chime = chime_directory(app_instance, args.chime.endpoint_url.clone()).await?;
    let (current, _) = list_chime(&chime.directory).await.map_err(|e| {
        Failure::aws(
            format!("cannot list the users at {}", chime.endpoint),
            &e,
            "chime:ListAppInstanceUsers",
        )
    })?;
    let in_chime: BTreeMap<_, _> = current.iter().map(|u| (u.id.clone(), u)).collect();
    let candidates: Vec<_> = loaded
        .sorted
        .active
        .keys()
        .filter(|id| in_chime.contains_key(*id))
        .cloned()
        .collect();
    let missing = loaded.sorted.active.len() - candidates.len();
    let pacer = Pacer::new(f64::from(args.chime.rate));
    let bar = if json_out {
        None
    } else {
        terminal_bar(Some(candidates.len() as u64))
    };
    let directory = &chime.directory;
    let dry_run = args.dry_run;
    let mut checked = futures_util::stream::iter(candidates.into_iter().map(|id| {
        let pacer = &pacer;
        async move {
            pacer.wait().await;
            let outcome = match directory.describe(&id).await {
                Ok(Some(user)) if user.deletion_pending() && dry_run => Ok(Some(Applied::Restored)),
                Ok(Some(user)) if user.deletion_pending() => {
                    directory.clear_expiration(&id).await.map(Some)
                }
                Ok(_) | Err(DirectoryError::PossiblyMissing(_)) => Ok(None),
                Err(e) => Err(e),
            };
            (id, outcome)
        }
    }))
    .buffer_unordered(usize::from(args.chime.concurrency));
    let (mut restored, mut not_pending, mut failures) = (Vec::new(), 0usize, Vec::new());
    while let Some((id, outcome)) = checked.next().await {
        let line = match outcome {
            Ok(Some(Applied::Restored)) => {
                restored.push(id.to_string());
                Some(format!(
                    "{}  {id}",
                    if dry_run { "would restore" } else { "restored" }
                ))
            }
            Ok(_) => {
                not_pending += 1;
                None
            }
            Err(e) => {
                let line = format!(
                    "failed  {id}: {}",
                    aws_errors::explain(&e, "chime:PutAppInstanceUserExpirationSettings")
                );
                failures.push(line.clone());
                Some(line)
            }
        };
        if let Some(bar) = &bar {
            if let Some(line) = &line {
                bar.println(line);
            }
            bar.inc(1);
        } else if let Some(line) = line.filter(|_| !json_out) {
            outln!("{line}");
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json_out {
        outln!(
            "{}",
            json!({
                "source": loaded.label, "active": loaded.sorted.active.len(),
                "restored": restored, "dryRun": dry_run, "notPending": not_pending,
                "missingInChime": missing, "failed": failures.len(),
            })
        );
    } else {
        outln!(
            "{} {} of {} active users ({} had no pending deletion; {} are not in Chime: \
             `reconcile --apply` creates them)",
            if dry_run { "Would restore" } else { "Restored" },
            restored.len(),
            loaded.sorted.active.len(),
            not_pending,
            missing
        );
    }
    if !failures.is_empty() {
        return Err(format!(
            "{} users could not be restored; run restore again",
            failures.len()
        )
        .into());
    }
    Ok(if restored.is_empty() {
        Status::Done
    } else {
        Status::Changes
    })
}
