//! `cargo run --release -p chime-sync-bench`: measures the release bootstrap binaries
//! side by side with Node.js 20 equivalents and writes `BENCHMARKS.md` at the workspace
//! root. It builds nothing: it checks that the release binaries, `bench/node`'s
//! `node_modules` and criterion's results are there and says how to make them if not.
//!
//! 1. Cold start: exec → first response POSTed to a mock Runtime API, Chime fake local.
//! 2. Peak RSS (`VmHWM`) after 1,000 invocations; stripped binary sizes.
//! 3. Per-event handler cost: criterion's results from `cargo bench -p chime-sync-core`.
//! 4. Batch concurrency: ten messages in ten FIFO groups, and in one, at 50 ms latency.
//! 5. Backlog drain: 3,000 messages against a 100 TPS quota with 429 beyond it.

mod child;
mod criterion_results;
mod events;
mod inproc;
mod procs;
mod report;
mod runtime_api;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use chime_identity_fake::{FakeChime, FakeConfig};
use clap::Parser;

use crate::procs::{Endpoints, Kind, Subject};
use crate::report::{LongRunRow, Machine, Report};
use crate::stats::Summary;

/// Measure chime-identity-sync and write BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "chime-sync-bench")]
struct Args {
    /// Cold starts measured per function (after two discarded warm-up starts).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Processes per function that each serve `--events` invocations for peak RSS.
    #[arg(long, default_value_t = 20)]
    rss_runs: usize,
    /// Invocations each of those processes serves before its peak RSS is read.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// Fixed Chime latency for the batch-concurrency measurement, in ms.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Messages in the backlog drained under throttling.
    #[arg(long, default_value_t = 3000)]
    drain_messages: usize,
    /// The fake's TPS quota for the drain (429 beyond it).
    #[arg(long, default_value_t = 100.0)]
    drain_tps: f64,
    /// Where to write the report; `-` prints it instead.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Also measure the three function binaries built another way, as LABEL=DIR; e.g.
    /// `panic=abort=target/panic-abort/release` after
    /// `CARGO_PROFILE_RELEASE_PANIC=abort cargo build --release --target-dir target/panic-abort -p pre-signup -p post-confirmation -p idp-sync`.
    #[arg(long, value_name = "LABEL=DIR")]
    variant: Vec<String>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What must exist before measuring, and the command that makes it.
fn preflight(bin_dir: &Path, node_dir: &Path) -> Result<PathBuf, String> {
    let missing: Vec<&str> = [
        Kind::PreSignup,
        Kind::PostConfirmation,
        Kind::IdpSync,
        Kind::Bare,
    ]
    .iter()
    .map(|k| k.name())
    .filter(|name| !bin_dir.join(name).is_file())
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the release binaries {} are missing from {}.\n\
             Build them first:  cargo build --release --workspace --bins",
            missing.join(", "),
            bin_dir.display()
        ));
    }
    for needed in [
        "node_modules/aws-lambda-ric/dist/rapid-client.node",
        "node_modules/@aws-sdk/client-chime-sdk-identity/package.json",
        "node_modules/@aws-sdk/client-sqs/package.json",
    ] {
        if !node_dir.join(needed).exists() {
            return Err(format!(
                "{} is missing. Install the Node.js equivalents' pinned dependencies first:\n  \
                 npm ci --prefix bench/node\n\
                 (aws-lambda-ric builds a native addon: it needs g++, make, cmake, autoconf, \
                 automake and libtool)",
                node_dir.join(needed).display()
            ));
        }
    }
    let node = which("node").ok_or("node is not on PATH (Node.js 20 is needed)")?;
    Ok(node)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = workspace_root();
    let root = root.canonicalize().unwrap_or(root);
    let bin_dir = match std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
    {
        Some(dir) => dir,
        None => {
            eprintln!("cannot tell where this binary lives");
            return ExitCode::FAILURE;
        }
    };
    let node_dir = root.join("bench/node");
    let node = match preflight(&bin_dir, &node_dir) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("chime-sync-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(measure(&args, &root, &bin_dir, &node_dir, &node)) {
        Ok(report) => {
            let text = report.render();
            let output = args.output.unwrap_or_else(|| root.join("BENCHMARKS.md"));
            if output.as_os_str() == "-" {
                print!("{text}");
            } else if let Err(e) = std::fs::write(&output, text) {
                eprintln!("cannot write {}: {e}", output.display());
                return ExitCode::FAILURE;
            } else {
                eprintln!("wrote {}", output.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chime-sync-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    eprintln!("[{:>7.1?}] {what}", started().elapsed());
}

fn started() -> &'static Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now)
}

async fn measure(
    args: &Args,
    root: &Path,
    bin_dir: &Path,
    node_dir: &Path,
    node: &Path,
) -> Result<Report, String> {
    started();
    let load_before = Machine::load_average();
    let log_dir = bin_dir.parent().unwrap_or(bin_dir).join("chime-sync-bench");
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    for entry in std::fs::read_dir(&log_dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }

    let fake = FakeChime::start(FakeConfig::new())
        .await
        .map_err(|e| format!("Chime fake: {e}"))?;
    let endpoints = Endpoints {
        chime: fake.endpoint_url(),
        sqs: closed_port_url()?,
        log_dir: log_dir.clone(),
    };
    let mut subjects = vec![
        Subject::rust(Kind::PreSignup, bin_dir),
        Subject::rust(Kind::PostConfirmation, bin_dir),
        Subject::rust(Kind::IdpSync, bin_dir),
        Subject::rust(Kind::Bare, bin_dir),
        Subject::node(Kind::PostConfirmation, node, node_dir),
        Subject::node(Kind::IdpSync, node, node_dir),
    ];
    for spec in &args.variant {
        // The label may hold `=` itself (`panic=abort`): the directory follows the last one.
        let (label, dir) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("--variant {spec}: expected LABEL=DIR"))?;
        let dir = root.join(dir);
        for kind in [Kind::PreSignup, Kind::PostConfirmation, Kind::IdpSync] {
            let s = Subject::rust_variant(kind, label, &dir);
            if !s.program().is_file() {
                return Err(format!(
                    "--variant {spec}: {} is missing",
                    s.program().display()
                ));
            }
            subjects.push(s);
        }
    }

    // 1. Cold starts, interleaved so drift in the machine's load hits every subject alike.
    progress("cold starts");
    let mut n = 0u64;
    let mut cold: Vec<Vec<Duration>> = vec![Vec::new(); subjects.len()];
    for round in 0..args.runs + 2 {
        for (i, s) in subjects.iter().enumerate() {
            n += 1;
            let t = procs::cold_start(s, &endpoints, n).await?;
            if round >= 2 {
                cold[i].push(t);
            }
        }
    }
    let cold: Vec<Summary> = cold
        .iter()
        .map(|c| Summary::of_durations_ms(c).ok_or("no cold starts"))
        .collect::<Result<_, _>>()?;

    // 2. Peak RSS after `events` invocations, interleaved as well.
    progress("long runs (peak RSS)");
    let mut long: Vec<Vec<procs::LongRun>> = vec![Vec::new(); subjects.len()];
    for run in 0..args.rss_runs {
        for (i, s) in subjects.iter().enumerate() {
            fake.reset();
            let base = 10_000_000 + (run as u64) * 100_000;
            long[i].push(procs::long_run(s, &endpoints, base, args.events).await?);
        }
        progress(&format!("long runs: {}/{} done", run + 1, args.rss_runs));
    }
    fake.shutdown().await;
    let long_rows: Vec<LongRunRow> = long
        .iter()
        .map(|runs| LongRunRow::of(runs).ok_or("no long runs"))
        .collect::<Result<_, _>>()?;

    let sizes: Vec<(String, u64)> = subjects
        .iter()
        .filter(|s| s.lang == procs::Lang::Rust)
        .map(|s| {
            std::fs::metadata(s.program())
                .map(|m| (s.label(), m.len()))
                .map_err(|e| format!("{}: {e}", s.program().display()))
        })
        .collect::<Result<_, _>>()?;

    // 4. Batch concurrency.
    progress("batch concurrency");
    let concurrency = inproc::batch_concurrency(args.runs, args.latency_ms).await?;

    // 5. Backlog drain.
    progress("backlog drain");
    let redrive_after = template_max_receive_count(root)?;
    let drain = inproc::backlog_drain(args.drain_messages, args.drain_tps, redrive_after).await?;

    // 3. Criterion's per-event figures, measured separately by `cargo bench`.
    let criterion_dir = bin_dir.parent().unwrap_or(bin_dir).join("criterion");
    let per_event = report::PerEvent::read(&criterion_dir);

    progress("done");
    Ok(Report {
        machine: Machine::describe(root, node, node_dir, load_before),
        generated: SystemTime::now(),
        total: started().elapsed(),
        runs: args.runs,
        rss_runs: args.rss_runs,
        events: args.events,
        subjects,
        cold,
        long: long_rows,
        sizes,
        per_event,
        concurrency,
        drain,
        root: root.to_owned(),
    })
}

/// The sync queue's maxReceiveCount as template.yaml deploys it by default
/// (`SyncMaxReceiveCount`'s `Default`).
fn template_max_receive_count(root: &Path) -> Result<u32, String> {
    let path = root.join("template.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.split("\n  SyncMaxReceiveCount:")
        .nth(1)
        .and_then(|rest| {
            rest.lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("Default:"))
        })
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no SyncMaxReceiveCount Default in {}", path.display()))
}

/// `http://127.0.0.1:{port}` of a port nothing listens on.
fn closed_port_url() -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}
