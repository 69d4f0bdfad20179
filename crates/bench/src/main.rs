//! `target/release/chime-sync-bench` (built by `cargo build --release --workspace --bins`):
//! measures the release bootstrap binaries side by side with the naive floor, a no-SDK
//! reference and Node.js 20 equivalents, and writes `BENCHMARKS.md` at the workspace root.
//! It builds nothing: it checks that the release binaries, `bench/node`'s `node_modules` and
//! criterion's results are there and says how to make them if not (`scripts/bench.sh` makes
//! them all and runs it).
//!
//! 1. Cold start: exec → first response POSTed to a mock Runtime API, the Chime fake local,
//!    over HTTPS (a TLS front with a throw-away root CA) and over plain HTTP, interleaved.
//! 2. Peak RSS (`VmHWM`) and warm CPU per invocation over 1,000 invocations (HTTPS);
//!    stripped binary sizes, x86_64 as built here and arm64 as `sam build` leaves them.
//! 3. Per-event handler cost: criterion's results from `cargo bench -p chime-sync-core`.
//! 4. Batch concurrency: ten messages in ten FIFO groups, and in one, at 50 ms latency, on
//!    the functions' current_thread runtime over HTTPS.
//! 5. Backlog drain: 3,000 messages against a 100 TPS quota with 429 beyond it.

mod child;
mod criterion_results;
mod events;
mod fakes;
mod inproc;
mod preserve;
mod procs;
mod profile;
mod report;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

use crate::fakes::Fakes;
use crate::procs::{BOOTSTRAPS, Bootstrap, Role, Subject, Transport};
use crate::report::{ColdRow, LongRunRow, Machine, Report};
use crate::stats::Summary;

/// Measure chime-identity-sync and write BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "chime-sync-bench")]
struct Args {
    /// Cold starts measured per function (after two discarded warm-up starts).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Processes per function that each serve `--events` invocations for peak RSS and warm CPU.
    #[arg(long, default_value_t = 10)]
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
    /// Also measure our functions built another way, as LABEL=DIR (over HTTPS); e.g.
    /// `opt-level=3=target/variant-opt3/release` after
    /// `CARGO_PROFILE_RELEASE_OPT_LEVEL=3 cargo build --release --target-dir target/variant-opt3 -p pre-signup -p post-confirmation -p idp-sync`.
    #[arg(long, value_name = "LABEL=DIR")]
    variant: Vec<String>,
    /// Where `sam build` left the arm64 artifacts (`{dir}/{FunctionLogicalId}/bootstrap`).
    #[arg(long, value_name = "DIR", default_value = ".aws-sam/build")]
    arm64_dir: PathBuf,
    /// Instead of measuring, serve BOOTSTRAP one long run of `--events` invocations over
    /// HTTPS, started under the command after `--` (a profiler), and print its figures; e.g.
    /// `--profile post-confirmation --events 2000 -- valgrind --tool=callgrind`.
    #[arg(long, value_name = "BOOTSTRAP")]
    profile: Option<String>,
    /// The profiler command for `--profile` (after `--`); the bootstrap is appended to it.
    #[arg(last = true, value_name = "PROFILER")]
    profiler: Vec<String>,
}

/// Where the naive floor's own workspace (bench/bare-trigger) puts its release binary.
const NAIVE_FLOOR_DIR: &str = "target/bare-trigger/release";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory a bootstrap's release binary is in.
fn bin_dir_of(b: &Bootstrap, root: &Path, bin_dir: &Path) -> PathBuf {
    if b.own_workspace {
        root.join(NAIVE_FLOOR_DIR)
    } else {
        bin_dir.to_owned()
    }
}

/// What must exist before measuring, and the command that makes it.
fn preflight(root: &Path, bin_dir: &Path, node_dir: &Path) -> Result<PathBuf, String> {
    let missing: Vec<String> = BOOTSTRAPS
        .iter()
        .map(|b| bin_dir_of(b, root, bin_dir).join(b.name))
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the release binaries {} are missing.\n\
             Build them first:  bash scripts/bench.sh --build-only",
            missing.join(", ")
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
    let Some(bin_dir) = own_dir() else {
        eprintln!("cannot tell where this binary lives");
        return ExitCode::FAILURE;
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
    if let Some(name) = &args.profile {
        return exit_code(runtime.block_on(profile::run(
            name,
            &args.profiler,
            args.events,
            &root,
            &bin_dir,
        )));
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| root.join("BENCHMARKS.md"));
    let to_stdout = output.as_os_str() == "-";
    // Found before a run of many minutes, not after it.
    if !to_stdout
        && let Err(e) = previous_report(&output)
            .and_then(|old| preserve::check(&old).map_err(|e| format!("{}: {e}", output.display())))
    {
        eprintln!("chime-sync-bench: {e}");
        return ExitCode::from(2);
    }
    let node_dir = root.join("bench/node");
    let node = match preflight(&root, &bin_dir, &node_dir) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("chime-sync-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(measure(&args, &root, &bin_dir, &node_dir, &node));
    exit_code(report.and_then(|report| publish(&report, &output, to_stdout)))
}

/// The directory this binary is in: the release binaries it measures are beside it.
fn own_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
}

/// Success, or the failure said on stderr.
fn exit_code(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chime-sync-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Renders `report` and prints it (`to_stdout`) or writes it to `output`.
fn publish(report: &Report, output: &Path, to_stdout: bool) -> Result<(), String> {
    let text = report
        .render()
        .map_err(|e| format!("the report's template: {e}"))?;
    if to_stdout {
        print!("{text}");
    } else {
        write_report(output, &text)?;
        eprintln!("wrote {}", output.display());
    }
    Ok(())
}

/// The report about to be replaced (empty when there is none yet).
fn previous_report(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `text` to `path`, keeping the blocks another tool owns ([`preserve`]); the file is
/// read again now, as that tool may have written it during the run.
fn write_report(path: &Path, text: &str) -> Result<(), String> {
    let old = previous_report(path)?;
    let text = preserve::splice(&old, text).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where the measured processes' logs and the test roots go, emptied first.
fn log_dir(bin_dir: &Path) -> Result<PathBuf, String> {
    let log_dir = bin_dir.parent().unwrap_or(bin_dir).join("chime-sync-bench");
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    for entry in std::fs::read_dir(&log_dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(log_dir)
}

fn progress(what: &str) {
    eprintln!("[{:>7.1?}] {what}", started().elapsed());
}

fn started() -> &'static Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now)
}

/// Every measurement, in the order that keeps the slow, load-sensitive ones (cold starts,
/// long runs) first and interleaved, then the report of them all.
async fn measure(
    args: &Args,
    root: &Path,
    bin_dir: &Path,
    node_dir: &Path,
    node: &Path,
) -> Result<Report, String> {
    started();
    let load_before = Machine::load_average();
    let fakes = Fakes::start(&log_dir(bin_dir)?).await?;
    let subjects = subjects(args, root, bin_dir, node_dir, node)?;

    // 1. Cold starts, interleaved so drift in the machine's load hits every subject alike.
    progress("cold starts");
    let cold = cold_starts(&subjects, &fakes, args.runs).await?;

    // 2. Peak RSS and warm CPU after `events` invocations over HTTPS, interleaved as well.
    progress("long runs (peak RSS, warm CPU)");
    let long = long_runs(&subjects, &fakes, args.rss_runs, args.events).await?;
    let system_bundle = fakes.system_bundle.clone();
    fakes.shutdown().await;

    let sizes = binary_sizes(&subjects)?;
    let arm64 = report::Arm64::read(&root.join(&args.arm64_dir));

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
        long,
        sizes,
        arm64,
        system_bundle,
        per_event,
        concurrency,
        drain,
        root: root.to_owned(),
    })
}

/// What is measured: every bootstrap's release binary, the Node.js equivalents of those
/// that have one, and each `--variant` build of our functions.
fn subjects(
    args: &Args,
    root: &Path,
    bin_dir: &Path,
    node_dir: &Path,
    node: &Path,
) -> Result<Vec<Subject>, String> {
    let mut subjects: Vec<Subject> = BOOTSTRAPS
        .iter()
        .map(|b| Subject::rust(b, &bin_dir_of(b, root, bin_dir)))
        .collect();
    subjects.extend(
        BOOTSTRAPS
            .iter()
            .filter(|b| b.node)
            .map(|b| Subject::node(b, node, node_dir)),
    );
    for spec in &args.variant {
        // The label may hold `=` itself (`opt-level=3`): the directory follows the last one.
        let (label, dir) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("--variant {spec}: expected LABEL=DIR"))?;
        let dir = root.join(dir);
        for b in Bootstrap::by_role(Role::Function) {
            let s = Subject::rust_variant(b, label, &dir);
            if !s.program().is_file() {
                return Err(format!(
                    "--variant {spec}: {} is missing",
                    s.program().display()
                ));
            }
            subjects.push(s);
        }
    }
    Ok(subjects)
}

/// `runs` cold starts of every subject over HTTPS (and the profile's own builds over plain
/// HTTP beside them), after two discarded rounds; the rounds go through every case in turn
/// so that drift in the machine's load hits every subject alike.
async fn cold_starts(
    subjects: &[Subject],
    fakes: &Fakes,
    runs: usize,
) -> Result<Vec<ColdRow>, String> {
    let cold_cases: Vec<(usize, Transport)> = subjects
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let http = (s.variant.is_none() && s.bootstrap.plain_http_too())
                .then_some((i, Transport::Http));
            std::iter::once((i, Transport::Https)).chain(http)
        })
        .collect();
    let mut n = 0u64;
    let mut cold: Vec<Vec<procs::ColdStart>> = vec![Vec::new(); cold_cases.len()];
    for round in 0..runs + 2 {
        for (k, &(i, transport)) in cold_cases.iter().enumerate() {
            n += 1;
            let t = procs::cold_start(&subjects[i], &fakes.endpoints, transport, n).await?;
            if round >= 2 {
                cold[k].push(t);
            }
        }
    }
    cold_cases
        .iter()
        .zip(&cold)
        .map(|(&(subject, transport), c)| {
            let wall: Vec<Duration> = c.iter().map(|s| s.wall).collect();
            let cpu: Vec<Duration> = c.iter().map(|s| s.cpu).collect();
            match (
                Summary::of_durations_ms(&wall),
                Summary::of_durations_ms(&cpu),
            ) {
                (Some(summary), Some(cpu)) => Ok(ColdRow {
                    subject,
                    transport,
                    summary,
                    cpu,
                }),
                _ => Err("no cold starts".to_owned()),
            }
        })
        .collect()
}

/// `rss_runs` processes per subject, each serving `events` invocations over HTTPS, for
/// peak RSS and warm CPU; interleaved like the cold starts.
async fn long_runs(
    subjects: &[Subject],
    fakes: &Fakes,
    rss_runs: usize,
    events: usize,
) -> Result<Vec<LongRunRow>, String> {
    let mut long: Vec<Vec<procs::LongRun>> = vec![Vec::new(); subjects.len()];
    for run in 0..rss_runs {
        for (i, s) in subjects.iter().enumerate() {
            fakes.chime.reset();
            let base = 10_000_000 + (run as u64) * 100_000;
            long[i]
                .push(procs::long_run(s, &fakes.endpoints, Transport::Https, base, events).await?);
        }
        progress(&format!("long runs: {}/{rss_runs} done", run + 1));
    }
    long.iter()
        .map(|runs| LongRunRow::of(runs).ok_or_else(|| "no long runs".to_owned()))
        .collect()
}

/// The size of each of our (Rust) binaries as built here.
fn binary_sizes(subjects: &[Subject]) -> Result<Vec<(String, u64)>, String> {
    subjects
        .iter()
        .filter(|s| s.lang == procs::Lang::Rust)
        .map(|s| {
            std::fs::metadata(s.program())
                .map(|m| (s.label(), m.len()))
                .map_err(|e| format!("{}: {e}", s.program().display()))
        })
        .collect()
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
