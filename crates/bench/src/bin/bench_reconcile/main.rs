//! `cargo run --release -p chime-sync-bench --bin bench-reconcile`: the scheduled
//! reconcile over 100,000 users, and the CLI's apply speed, written as a markdown
//! section spliced into BENCHMARKS.md between `<!-- bench-reconcile:start -->` and
//! `<!-- bench-reconcile:end -->` (appended when the markers are absent), so that
//! `chime-sync-bench`, which rewrites the rest of the file, keeps it.
//!
//! 1. The release `reconcile` bootstrap behind a mock Runtime API, as Lambda runs it,
//!    reading a user pool of 100,000 users from a Cognito `ListUsers` double that
//!    enforces Cognito's `UserList` quota (30 requests/s, `TooManyRequestsException`
//!    beyond), listing the Chime fake, and publishing to a counting SQS stand-in.
//!    Two scenarios: a steady state with drift (1,000 new, 1,000 renamed, 40 gone) and a
//!    first run against an empty Chime (every active user a create). Wall time from
//!    the event to the answer, every API call by kind, and the process's peak resident
//!    set (`VmHWM`).
//!    The steady state runs twice: with `LEDGER_TABLE=memory` (no ledger I/O: the cost
//!    before the ownership ledger) and with a ledger table on a counting DynamoDB stand-in
//!    that answers every call after `--ledger-latency-ms`, to show what the ledger's reads
//!    cost a cycle (the target: at most 5 % more wall time) and that they are batched
//!    (`BatchGetItem` for the plan's candidates only, never a call per unchanged user).
//!    The stand-in holds no records, so `UNOWNED_USERS=pool` keeps the plan as it was.
//! 2. idp-sync's cost of the ledger per message: batches of ten `user.created` applied
//!    in-process with the ledger in memory and on the stand-in, Chime and DynamoDB both
//!    answering after the same latency (the target: at most one extra round trip).
//! 3. The release `chime-sync reconcile --users … --apply` creating 2,000 users with the
//!    Chime fake answering each call after 50 ms (the target: at most 15 s).
//!
//! It builds nothing: build first with `cargo build --release -p reconcile -p chime-sync`.

mod dynamodb;
mod idp_sync;
mod render;
mod sqs;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, Operation};
use chime_sync_aws::{ChimeConfig, ChimeDirectory};
use chime_sync_bench::in_process::slow_chime;
use chime_sync_core::{AppInstanceArn, Directory, DisplayName, UserId, UserProfile};
use clap::Parser;
use serde_json::{Value, json};
use testkit::cognito_fake::{FakeCognito, USER_LIST_QUOTA_RPS, user};
use testkit::esm_driver::static_sdk_config;
use testkit::runtime_api::{AnswerKind, RuntimeApi};

const APP: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/bench-reconcile";
const POOL: &str = "us-east-1_BenchPool1";

/// Measure the reconcile function and the CLI's apply; write a markdown section.
#[derive(Debug, Parser)]
#[command(name = "bench-reconcile")]
struct Args {
    /// Users in the pool.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// The Cognito double's quota, requests/s (Cognito's UserList quota is 30).
    #[arg(long, default_value_t = USER_LIST_QUOTA_RPS)]
    quota: f64,
    /// Users the CLI creates.
    #[arg(long, default_value_t = 2_000)]
    cli_users: u32,
    /// The Chime fake's latency for the CLI measurement, ms.
    #[arg(long, default_value_t = 50)]
    cli_latency_ms: u64,
    /// Skip the first-run scenario (every active user a create).
    #[arg(long)]
    skip_first_run: bool,
    /// The DynamoDB stand-in's latency per call, ms: an assumed round trip to DynamoDB
    /// in the same Region, not a measurement of it. idp-sync's measurement gives the
    /// Chime fake the same latency.
    #[arg(long, default_value_t = 10)]
    ledger_latency_ms: u64,
    /// `user.created` messages idp-sync applies with each ledger (whole batches of ten).
    #[arg(long, default_value_t = 500)]
    idp_messages: usize,
    /// Skip idp-sync's per-message measurement.
    #[arg(long)]
    skip_idp_sync: bool,
    /// The markdown file to splice the section into (default: the workspace's
    /// BENCHMARKS.md); `-` only prints it.
    #[arg(long)]
    output: Option<PathBuf>,
}

fn sub(n: u32) -> String {
    format!(
        "{:02x}{n:06x}-0000-4000-8000-{n:012x}",
        (n.wrapping_mul(2_654_435_761) >> 24) & 0xff
    )
}

/// 5 % unconfirmed, 5 % disabled, the rest active in every active status.
fn pool_user(n: u32) -> Value {
    let (status, enabled) = match n % 20 {
        0 => ("UNCONFIRMED", true),
        1 => ("CONFIRMED", false),
        2..=4 => ("EXTERNAL_PROVIDER", true),
        5 => ("FORCE_CHANGE_PASSWORD", true),
        6 => ("RESET_REQUIRED", true),
        _ => ("CONFIRMED", true),
    };
    user(
        &format!("user{n}"),
        &sub(n),
        status,
        enabled,
        Some(&format!("User {n}")),
    )
}

fn active(n: u32) -> bool {
    n % 20 > 1
}

fn chime(fake: &FakeChimeHandle) -> Result<ChimeDirectory, String> {
    let app = AppInstanceArn::parse(APP).map_err(|e| e.to_string())?;
    let mut config = ChimeConfig::new(app);
    config.endpoint_url = Some(fake.endpoint_url());
    Ok(ChimeDirectory::new(&static_sdk_config(), config))
}

/// Create `users` (id, name) on the fake, 64 at a time.
async fn seed(fake: &FakeChimeHandle, users: Vec<(String, String)>) -> Result<(), String> {
    use futures_util::StreamExt;
    let directory = chime(fake)?;
    let directory = &directory;
    let failures = futures_util::stream::iter(users.into_iter().map(|(id, name)| async move {
        let profile = UserProfile {
            id: UserId::parse(&id).map_err(|e| e.to_string())?,
            name: DisplayName::parse(&name).map_err(|e| e.to_string())?,
            metadata: None,
        };
        directory.create(&profile).await.map_err(|e| e.to_string())
    }))
    .buffer_unordered(64)
    .filter_map(|r| async move { r.err() })
    .collect::<Vec<_>>()
    .await;
    match failures.first() {
        Some(e) => Err(format!(
            "seeding Chime failed {} times: {e}",
            failures.len()
        )),
        None => Ok(()),
    }
}

/// Where a reconcile run keeps its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LedgerMode {
    /// `LEDGER_TABLE=memory`: no ledger I/O, what a cycle cost before the ledger.
    Memory,
    /// A table on the counting DynamoDB stand-in.
    Table,
}

impl LedgerMode {
    fn variable(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Table => "chime-sync-bench-ledger",
        }
    }
}

/// One reconcile invocation, measured.
struct Measured {
    scenario: &'static str,
    ledger: LedgerMode,
    wall: Duration,
    peak_rss_kib: u64,
    list_users: u64,
    throttled: u64,
    chime_lists: u64,
    describes: u64,
    batches: u64,
    messages: u64,
    /// What the DynamoDB stand-in saw (nothing, with the ledger in memory).
    ledger_calls: dynamodb::Calls,
    totals: Value,
}

fn memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The services a reconcile run reads and writes.
struct Services<'a> {
    cognito: &'a FakeCognito,
    chime: &'a FakeChimeHandle,
    sqs: &'a sqs::CountingSqs,
    dynamodb: &'a dynamodb::CountingDynamoDb,
}

/// The bootstrap as Lambda starts it, its variables pointing at `services`.
/// `UNOWNED_USERS=pool`: the stand-in (and an empty memory ledger) owns no
/// user, and without it the 40 absences would be kept, not planned.
fn reconcile_command(
    bin: &Path,
    runtime_api: &str,
    services: &Services<'_>,
    ledger: LedgerMode,
) -> Command {
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "reconcile")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("APP_INSTANCE_ARN", APP)
        .env("USER_POOL_ID", POOL)
        .env("LEDGER_TABLE", ledger.variable())
        .env("UNOWNED_USERS", "pool")
        .env(
            "SYNC_QUEUE_URL",
            format!("{}/123456789012/sync.fifo", services.sqs.endpoint),
        )
        .env(
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            services.cognito.endpoint_url(),
        )
        .env(
            "AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY",
            services.chime.endpoint_url(),
        )
        .env("AWS_ENDPOINT_URL_SQS", &services.sqs.endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &services.dynamodb.endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

async fn reconcile_once(
    scenario: &'static str,
    ledger: LedgerMode,
    bin: &Path,
    cognito: &FakeCognito,
    fake: &FakeChimeHandle,
    ledger_latency: Duration,
) -> Result<Measured, String> {
    let sqs = sqs::CountingSqs::start().await.map_err(|e| e.to_string())?;
    let dynamodb = dynamodb::CountingDynamoDb::start(ledger_latency)
        .await
        .map_err(|e| e.to_string())?;
    fake.reset_counters();
    let before = cognito.counts();
    let event = json!({"version": "0", "id": format!("bench-{scenario}"), "detail-type": "Scheduled Event",
                       "source": "aws.events", "time": "2026-11-20T10:00:00Z", "detail": {}});
    let api = RuntimeApi::try_start("reconcile", Duration::from_secs(900))
        .await
        .map_err(|e| e.to_string())?;
    api.enqueue(&event);
    let services = Services {
        cognito,
        chime: fake,
        sqs: &sqs,
        dynamodb: &dynamodb,
    };
    let started = Instant::now();
    let mut child = reconcile_command(bin, &api.host_port(), &services, ledger)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let answer = api.next_answer(Duration::from_secs(960)).await;
    let wall = started.elapsed();
    let peak = memory_kib(child.id()).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    let body = match answer {
        Some(answer) if answer.kind == AnswerKind::Response => answer.body,
        Some(report) => {
            return Err(format!(
                "reconcile failed: {}",
                String::from_utf8_lossy(&report.body)
            ));
        }
        None => return Err("reconcile did not answer in 16 minutes".to_owned()),
    };
    let response: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let after = cognito.counts();
    let counters = fake.counters();
    Ok(Measured {
        scenario,
        ledger,
        wall,
        peak_rss_kib: peak,
        list_users: after.list_users - before.list_users,
        throttled: after.throttled - before.throttled,
        chime_lists: counters.attempts(Operation::ListAppInstanceUsers),
        describes: counters.attempts(Operation::DescribeAppInstanceUser),
        batches: sqs.counts.batch_calls.load(Ordering::Relaxed),
        messages: sqs.counts.messages.load(Ordering::Relaxed),
        ledger_calls: dynamodb.calls(),
        totals: response["totals"].clone(),
    })
}

/// The CLI creating `users` against a Chime that answers after `latency`.
async fn cli_apply(
    bin: &Path,
    users: u32,
    latency: Duration,
) -> Result<(Duration, String), String> {
    let fake = slow_chime(latency.as_millis() as u64).await?;
    let lines: String = (0..users)
        .map(|n| {
            format!(
                "{}\n",
                json!({"sub": sub(n), "displayName": format!("User {n}")})
            )
        })
        .collect();
    let file = std::env::temp_dir().join(format!("bench-reconcile-{}.jsonl", std::process::id()));
    std::fs::write(&file, lines).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let output = tokio::process::Command::new(bin)
        .args(["reconcile", "--users"])
        .arg(&file)
        .args([
            "--app-instance-arn",
            APP,
            "--endpoint-url",
            &fake.endpoint_url(),
            "--apply",
        ])
        .env_clear()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let wall = started.elapsed();
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("Applied "))
        .unwrap_or("(no summary)")
        .to_owned();
    if output.status.code() != Some(2) || fake.users().len() != users as usize {
        return Err(format!(
            "the CLI did not create the users ({:?}): {summary}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok((wall, summary))
}

/// The reconcile and CLI binaries next to this one, or how to build them.
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or("cannot find the release directory")?;
    let (reconcile, cli) = (bin_dir.join("reconcile"), bin_dir.join("chime-sync"));
    for bin in [&reconcile, &cli] {
        if !bin.is_file() {
            return Err(format!(
                "{} is missing; build it first:  cargo build --release -p reconcile -p chime-sync",
                bin.display()
            ));
        }
    }
    Ok((reconcile, cli))
}

/// The steady state's Chime: 1,000 active users missing, 1,000 renamed, 40 gone.
fn steady_chime(users: u32) -> Vec<(String, String)> {
    let active: Vec<u32> = (0..users).filter(|n| active(*n)).collect();
    let (missing, renamed) = (1_000.min(active.len()), 1_000.min(active.len() / 2));
    let mut present: Vec<(String, String)> = active[missing..]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                sub(*n),
                if i < renamed {
                    "Old name".to_owned()
                } else {
                    format!("User {n}")
                },
            )
        })
        .collect();
    present.extend((0..40).map(|n| (sub(users + 10 + n), "Gone".to_owned())));
    present
}

/// The reconcile scenarios: the steady state without and with ledger I/O (the same
/// Chime, which a run does not change: it only publishes), then a first run.
async fn reconcile_runs(args: &Args, reconcile: &Path) -> Result<Vec<Measured>, String> {
    let cognito = FakeCognito::start(args.quota)
        .await
        .map_err(|e| e.to_string())?;
    cognito.set_users(POOL, (0..args.users).map(pool_user).collect());
    let fake = FakeChime::start(FakeConfig::new().with_user_limit(args.users as usize + 1_000))
        .await
        .map_err(|e| e.to_string())?;
    let present = steady_chime(args.users);
    eprintln!("seeding Chime with {} users…", present.len());
    seed(&fake, present).await?;
    let latency = Duration::from_millis(args.ledger_latency_ms);
    let mut runs = Vec::new();
    for (scenario, ledger) in [
        ("steady state with drift", LedgerMode::Memory),
        ("steady state with drift", LedgerMode::Table),
    ] {
        eprintln!(
            "measuring the steady state, LEDGER_TABLE={}…",
            ledger.variable()
        );
        // A full Cognito bucket (one second of quota) for each run alike.
        tokio::time::sleep(Duration::from_secs(2)).await;
        runs.push(reconcile_once(scenario, ledger, reconcile, &cognito, &fake, latency).await?);
    }
    if !args.skip_first_run {
        fake.reset();
        eprintln!("measuring a first run against an empty Chime…");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let first = "first run, Chime empty";
        runs.push(
            reconcile_once(
                first,
                LedgerMode::Memory,
                reconcile,
                &cognito,
                &fake,
                latency,
            )
            .await?,
        );
    }
    Ok(runs)
}

async fn run(args: &Args) -> Result<String, String> {
    let took = Instant::now();
    let machine = render::machine();
    let (reconcile, cli) = binaries()?;
    let runs = reconcile_runs(args, &reconcile).await?;
    let idp = if args.skip_idp_sync {
        None
    } else {
        eprintln!("measuring idp-sync per message, with and without the ledger table…");
        Some(idp_sync::measure(args.idp_messages, args.ledger_latency_ms).await?)
    };
    eprintln!("measuring the CLI…");
    let cli = cli_apply(
        &cli,
        args.cli_users,
        Duration::from_millis(args.cli_latency_ms),
    )
    .await?;
    let results = render::Results {
        runs,
        idp,
        cli,
        machine,
        took: took.elapsed(),
    };
    Ok(render::render(args, &results))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench-reconcile: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(markdown) => {
            print!("{markdown}");
            let path = args.output.clone().unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md")
            });
            if path.as_os_str() == "-" {
                return ExitCode::SUCCESS;
            }
            let existing = std::fs::read_to_string(&path).unwrap_or_default();
            if let Err(e) = std::fs::write(&path, splice(&existing, &markdown)) {
                eprintln!("bench-reconcile: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("written between the markers in {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-reconcile: {e}");
            ExitCode::FAILURE
        }
    }
}

const START: &str = "<!-- bench-reconcile:start -->";
const END: &str = "<!-- bench-reconcile:end -->";

/// `existing` with the text between the markers replaced by `section`, or the
/// marked block appended when the markers are absent: the rest of the file
/// belongs to `chime-sync-bench`.
fn splice(existing: &str, section: &str) -> String {
    let block = format!("{START}\n{}\n{END}", section.trim_end());
    match (existing.find(START), existing.find(END)) {
        (Some(start), Some(end)) if start < end => format!(
            "{}{block}{}",
            &existing[..start],
            &existing[end + END.len()..]
        ),
        _ if existing.trim().is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", existing.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn splice_appends_the_block_once_then_replaces_only_its_inside() {
        let first = splice("# Benchmarks\n\nother rows\n", "## Reconcile\nold\n");
        assert_eq!(
            first,
            "# Benchmarks\n\nother rows\n\n<!-- bench-reconcile:start -->\n## Reconcile\nold\n<!-- bench-reconcile:end -->\n"
        );
        let edited = first.replace("other rows", "rewritten rows") + "tail\n";
        let second = splice(&edited, "## Reconcile\nnew");
        assert_eq!(
            second,
            "# Benchmarks\n\nrewritten rows\n\n<!-- bench-reconcile:start -->\n## Reconcile\nnew\n<!-- bench-reconcile:end -->\ntail\n"
        );
        assert_eq!(
            splice("", "x"),
            "<!-- bench-reconcile:start -->\nx\n<!-- bench-reconcile:end -->\n"
        );
    }
}
