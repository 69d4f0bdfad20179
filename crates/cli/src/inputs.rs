//! What the reconcile, restore and adopt commands read: who should exist
//! (the user pool live, `list-users` export pages, or an HR export of JSON
//! lines), Chime's users, and the ownership ledger.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use chime_sync_aws::config::LEDGER_TIMEOUT;
use chime_sync_aws::{CognitoConfig, CognitoUserPool, ConfiguredLedger, LedgerTable, UserPoolId};
use chime_sync_core::directory::{Directory, DirectoryUser};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::ledger::{Source, UnownedPolicy};
use chime_sync_core::planner;
use chime_sync_core::rate::Pacer;
use chime_sync_core::user_pool::{self, ActivePolicy, LIST_USERS_QUOTA_RPS, ReadStats, Sorted};
use chime_sync_core::{DirectoryError, DisplayNamePolicy};
use clap::{ArgGroup, Args, ValueEnum, value_parser};
use indicatif::{ProgressBar, ProgressStyle};

use crate::deployed::DeployedArgs;
use crate::{Chime, Failure, aws_errors, sdk_config, show_paths};

/// What adopt, reconcile and restore work on: the deployed function's settings when
/// `deployed` names one, else a source, a Chime AppInstance and a ledger named by flags.
#[derive(Args, Debug)]
pub struct TargetArgs {
    #[command(flatten)]
    pub deployed: DeployedArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub chime: ChimeArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

/// Where the users who should exist come from (exactly one).
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("input").args(["cognito_export", "users", "user_pool_id"])))]
pub struct SourceArgs {
    /// Output of `aws cognito-idp list-users --user-pool-id ID --output json`. Repeat it for
    /// several pages, or put the pages one after another in one file; the last page must end
    /// the listing (no PaginationToken/NextToken).
    #[arg(long, value_name = "FILE")]
    cognito_export: Vec<PathBuf>,
    /// JSON lines of schema-v1 user objects: {"sub", "displayName", "metadata"?}.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// The source --users comes from, as its users are owned in the ledger: feed (the
    /// default), feed:PUBLISHER, scim or ldap. A pool export or the live pool is `pool`.
    #[arg(long, value_name = "SOURCE", requires = "users")]
    source: Option<String>,
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
    #[arg(long, value_name = "ORDER")]
    display_name_attributes: Option<String>,
}

impl SourceArgs {
    /// Whether the flags say how to sort the users (as the function's
    /// settings also would).
    pub fn sorts_its_own_users(&self) -> bool {
        self.active_statuses != ActivePolicy::DEFAULT || self.display_name_attributes.is_some()
    }
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
    /// The AppInstance whose users are reconciled (its Region is every client's). Not with
    /// --stack-name or --function-name, which take the function's.
    #[arg(long, value_name = "ARN")]
    pub app_instance_arn: Option<String>,
    /// A Chime SDK Identity endpoint other than AWS's (the local fake).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Changes (or describes) in flight at once.
    #[arg(long, default_value_t = 8, value_parser = value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// At most this many changes (or describes) started per second.
    #[arg(long, default_value_t = 200, value_parser = value_parser!(u32).range(1..=10_000))]
    pub rate: u32,
    /// `text` for a person (a progress bar on a terminal), `json` for automation.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The ownership ledger, as the stack's functions read it.
#[derive(Args, Debug)]
pub struct LedgerArgs {
    /// The stack's ledger table (its LedgerTableName output). Without it nothing is recorded,
    /// so every Chime user reads as owned by no source: no absence deletes one unless
    /// --unowned names the input's source.
    #[arg(long, value_name = "TABLE")]
    pub ledger_table: Option<String>,
    /// Users owned by no source (made before ownership was recorded): `keep` (the
    /// default), or the source that owns them (`pool`), as UNOWNED_USERS.
    #[arg(long, value_name = "keep|SOURCE", default_value = "keep")]
    pub unowned: String,
}

/// Who should exist, and where that was read.
pub struct Loaded {
    pub sorted: Sorted,
    pub label: String,
    pub pool: Option<ReadStats>,
    /// The source the input stands for, whose users' absence may delete.
    pub source: Source,
}

fn refused(label: &str, refusal: impl std::fmt::Display) -> Failure {
    format!("{label}: {refusal}").into()
}

/// What the deployed reconcile function reads, when the CLI takes its
/// settings (`--stack-name`): its pool and how it sorts the pool's users.
pub struct FromFunction<'a> {
    pub pool: &'a UserPoolId,
    pub active: &'a ActivePolicy,
    pub names: &'a DisplayNamePolicy,
}

/// Read the source; with `complete`, refuse input that may be partial.
/// With `function`, the input is the function's pool, sorted as it sorts.
pub async fn load(
    source: &SourceArgs,
    complete: bool,
    function: Option<FromFunction<'_>>,
) -> Result<Loaded, Failure> {
    let loaded = match function {
        Some(f) => {
            if source.cognito_export.len() + usize::from(source.users.is_some()) > 0
                || source.user_pool_id.is_some()
            {
                return Err(
                    "--stack-name and --function-name read the function's pool: pass \
                            no --user-pool-id, --cognito-export or --users"
                        .into(),
                );
            }
            read_pool(source, f.pool, f.active, f.names).await?
        }
        None => load_input(source).await?,
    };
    if complete {
        planner::check_complete(&loaded.sorted).map_err(|r| refused(&loaded.label, r))?;
    }
    Ok(loaded)
}

/// The input the flags name.
async fn load_input(source: &SourceArgs) -> Result<Loaded, Failure> {
    let active = ActivePolicy::parse(&source.active_statuses)
        .map_err(|e| format!("--active-statuses: {e}"))?;
    let names = match &source.display_name_attributes {
        Some(spec) => DisplayNamePolicy::parse(spec).map_err(|e| e.to_string())?,
        None => DisplayNamePolicy::default(),
    };
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
    };
    if let Some(id) = &source.user_pool_id {
        let pool_id = UserPoolId::parse(id).map_err(|e| format!("--user-pool-id: {e}"))?;
        return read_pool(source, &pool_id, &active, &names).await;
    }
    if let Some(path) = &source.users {
        let label = path.display().to_string();
        let source = match &source.source {
            None => Source::feed(None),
            Some(raw) => Source::parse(raw),
        }
        .map_err(|e| format!("--source: {e}"))?;
        return Ok(Loaded {
            sorted: planner::from_user_lines(&read(path)?).map_err(|r| refused(&label, r))?,
            label,
            pool: None,
            source,
        });
    }
    if source.cognito_export.is_empty() {
        return Err(
            "name who should exist: --user-pool-id, --cognito-export or --users \
                    (or --stack-name, to read the deployed function's pool)"
                .into(),
        );
    }
    let label = show_paths(&source.cognito_export);
    let mut pages = Vec::new();
    for path in &source.cognito_export {
        pages.extend(
            planner::json_values(&read(path)?)
                .map_err(|r| refused(&path.display().to_string(), r))?,
        );
    }
    Ok(Loaded {
        sorted: planner::from_cognito_pages(&pages, &active, &names)
            .map_err(|r| refused(&label, r))?,
        label,
        pool: None,
        source: Source::pool(),
    })
}

async fn read_pool(
    source: &SourceArgs,
    pool_id: &UserPoolId,
    active: &ActivePolicy,
    names: &DisplayNamePolicy,
) -> Result<Loaded, Failure> {
    let pool_id = pool_id.clone();
    let label = format!("the user pool {pool_id}");
    let local = source.cognito_endpoint_url.is_some()
        || local_endpoint_set(&["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"]);
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
        source: Source::pool(),
    })
}

/// Whether a local endpoint is configured for the service or for all.
fn local_endpoint_set(service_variables: &[&str]) -> bool {
    service_variables
        .iter()
        .chain(&["AWS_ENDPOINT_URL"])
        .any(|v| std::env::var_os(v).is_some_and(|u| !u.is_empty()))
}

/// The ledger the stack's functions keep (`--ledger-table`), or an empty
/// one in memory; and the unowned policy.
pub async fn open_ledger(
    args: &LedgerArgs,
    region: &str,
) -> Result<(ConfiguredLedger, UnownedPolicy), Failure> {
    let unowned = UnownedPolicy::parse(&args.unowned).map_err(|e| format!("--unowned: {e}"))?;
    let ledger = match &args.ledger_table {
        Some(table) => {
            let sdk =
                sdk_config(region, local_endpoint_set(&["AWS_ENDPOINT_URL_DYNAMODB"])).await?;
            ConfiguredLedger::Table(LedgerTable::new(&sdk, table, LEDGER_TIMEOUT))
        }
        None => ConfiguredLedger::Memory(InMemoryLedger::new()),
    };
    Ok((ledger, unowned))
}

/// Where ownership was read, for the summary.
pub fn ledger_label(ledger: &ConfiguredLedger) -> String {
    match ledger {
        ConfiguredLedger::Table(t) => format!("the ledger table {}", t.table()),
        ConfiguredLedger::Memory(_) => {
            "no ledger (no --ledger-table): every user reads as owned by no source".to_owned()
        }
    }
}

/// A progress bar (or a spinner, without a length) when standard output is
/// a terminal; `None` otherwise (plain lines instead).
pub fn terminal_bar(len: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} ETA {eta} {msg}")
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

/// [`list_chime`] for a command: a failure names the endpoint and the IAM action, as every
/// command that lists Chime says it.
pub async fn list_chime_users(chime: &Chime) -> Result<(Vec<DirectoryUser>, usize), Failure> {
    list_chime(&chime.directory).await.map_err(|e| {
        Failure::aws(
            format!("cannot list the users at {}", chime.endpoint),
            &e,
            "chime:ListAppInstanceUsers",
        )
    })
}

/// `3 created, 1 updated`, or `none`.
pub fn counts_line(counts: &std::collections::BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect::<Vec<_>>()
        .join(", ")
}
