//! BENCHMARKS.md: every figure next to its target, how it was measured, and where a
//! target is missed.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::criterion_results::{self, BenchResult};
use crate::inproc::{Concurrency, Drain};
use crate::procs::{BOOTSTRAPS, Bootstrap, Lang, LongRun, Role, Subject, Transport};
use crate::stats::Summary;

/// Targets (docs/PERFORMANCE.md says where each comes from). Never weakened here: a miss is
/// reported.
/// Cold start over HTTPS, at most this share of the naive floor's (both medians).
const NAIVE_FLOOR_SHARE: f64 = 0.35;
/// Cold start over HTTPS, at least this many times faster than the Node.js equivalent.
const NODE_SPEEDUP: f64 = 13.0;
const PEAK_RSS_MB: f64 = 8.0;
const BINARY_MB: f64 = 8.0;
/// Warm CPU per one-call invocation, at most this many times the no-SDK reference's.
const WARM_CPU_VS_NO_SDK: f64 = 1.2;
const PER_EVENT_MS: f64 = 0.1;
const TEN_GROUPS_RT: f64 = 1.5;
const DRAIN_SHARE: f64 = 0.9;

/// One cold-start series: a subject over one transport.
pub struct ColdRow {
    /// Index into `Report::subjects`.
    pub subject: usize,
    pub transport: Transport,
    pub summary: Summary,
    /// CPU time the process had used when its first response arrived, ms.
    pub cpu: Summary,
}

/// The arm64 bootstrap binaries `sam build` left (`.aws-sam/build/{LogicalId}/bootstrap`),
/// checked to be AArch64 ELF files.
pub struct Arm64 {
    pub dir: std::path::PathBuf,
    /// (function name, logical id, size in bytes or why it is not there).
    pub rows: Vec<(&'static str, &'static str, Result<u64, String>)>,
}

impl Arm64 {
    pub fn read(dir: &Path) -> Arm64 {
        let rows = BOOTSTRAPS
            .iter()
            .filter_map(|b| Some((b.name, b.sam_function?)))
            .map(|(name, id)| {
                let path = dir.join(id).join("bootstrap");
                let size = std::fs::read(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))
                    .and_then(|bytes| {
                        // ELF64 e_machine (offset 18, little-endian): 183 = EM_AARCH64.
                        let machine = bytes.get(18..20).map(|m| u16::from_le_bytes([m[0], m[1]]));
                        if bytes.starts_with(b"\x7fELF") && machine == Some(183) {
                            Ok(bytes.len() as u64)
                        } else {
                            Err(format!("{} is not an arm64 ELF binary", path.display()))
                        }
                    });
                (name, id, size)
            })
            .collect();
        Arm64 {
            dir: dir.to_owned(),
            rows,
        }
    }

    fn size_mb(&self, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|(n, ..)| *n == name)
            .and_then(|(_, _, r)| r.as_ref().ok())
            .map(|b| *b as f64 / 1e6)
    }
}

pub struct Machine {
    nproc: usize,
    cpu: String,
    memory: String,
    kernel: String,
    load_before: String,
    load_after: String,
    rustc: String,
    node: String,
    ric: String,
    js_chime: String,
    js_sqs: String,
    rust_chime: String,
    rust_lambda: String,
    profile: Vec<String>,
    sources: String,
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn command_output(program: &Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `"version"` of an installed npm package.
fn npm_version(node_dir: &Path, package: &str) -> String {
    let text = read(
        node_dir
            .join("node_modules")
            .join(package)
            .join("package.json"),
    );
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The locked version of a crate, from Cargo.lock.
fn locked_version(root: &Path, krate: &str) -> String {
    let lock = read(root.join("Cargo.lock"));
    let needle = format!("name = \"{krate}\"\n");
    lock.find(&needle)
        .and_then(|at| lock[at + needle.len()..].lines().next())
        .and_then(|line| line.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Machine {
    pub fn load_average() -> String {
        read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn describe(root: &Path, node: &Path, node_dir: &Path, load_before: String) -> Machine {
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".to_owned());
        let manifest = read(root.join("Cargo.toml"));
        let profile = manifest
            .split("[profile.release]")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| !l.starts_with('['))
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            memory,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_before,
            load_after: Self::load_average(),
            rustc: command_output(Path::new("rustc"), "-V"),
            node: command_output(node, "--version"),
            ric: npm_version(node_dir, "aws-lambda-ric"),
            js_chime: npm_version(node_dir, "@aws-sdk/client-chime-sdk-identity"),
            js_sqs: npm_version(node_dir, "@aws-sdk/client-sqs"),
            rust_chime: locked_version(root, "aws-sdk-chimesdkidentity"),
            rust_lambda: locked_version(root, "lambda_runtime"),
            profile,
            sources: sources(root),
        }
    }
}

/// The commit the measured binaries were built from, and whether the tree differed.
fn sources(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            let changed = git(&["status", "--porcelain", "--untracked-files=no"])
                .map_or(0, |s| s.lines().count());
            if changed == 0 {
                format!("commit {commit}")
            } else {
                format!(
                    "commit {commit} with {changed} tracked file{} changed in the work tree",
                    if changed == 1 { "" } else { "s" }
                )
            }
        }
        None => "unknown (not a git checkout)".to_owned(),
    }
}

/// Peak RSS and warm speed of one subject over its long runs.
pub struct LongRunRow {
    peak_mb: Summary,
    end_rss_mb: Summary,
    end_anon_mb: Summary,
    end_file_mb: Summary,
    warm_ms_per_invocation: Summary,
    /// CPU time (all threads) per warm invocation, ms.
    cpu_ms_per_invocation: Summary,
    invocations: usize,
}

impl LongRunRow {
    pub fn of(runs: &[LongRun]) -> Option<LongRunRow> {
        let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
        Some(LongRunRow {
            peak_mb: Summary::of(&runs.iter().map(|r| mb(r.peak_kib)).collect::<Vec<_>>())?,
            end_rss_mb: Summary::of(&runs.iter().map(|r| mb(r.rss_kib)).collect::<Vec<_>>())?,
            end_anon_mb: Summary::of(&runs.iter().map(|r| mb(r.anon_kib)).collect::<Vec<_>>())?,
            end_file_mb: Summary::of(&runs.iter().map(|r| mb(r.file_kib)).collect::<Vec<_>>())?,
            warm_ms_per_invocation: Summary::of(
                &runs
                    .iter()
                    .map(|r| r.warm.as_secs_f64() * 1e3 / (r.invocations.max(2) - 1) as f64)
                    .collect::<Vec<_>>(),
            )?,
            cpu_ms_per_invocation: Summary::of(
                &runs
                    .iter()
                    .map(|r| r.warm_cpu_ns as f64 / 1e6 / (r.invocations.max(2) - 1) as f64)
                    .collect::<Vec<_>>(),
            )?,
            invocations: runs.first()?.invocations,
        })
    }
}

/// The criterion results BENCHMARKS.md shows.
pub struct PerEvent {
    rows: Vec<(&'static str, &'static str, u32, Result<BenchResult, String>)>,
}

const PER_EVENT_BENCHES: [(&str, &str, u32); 8] = [
    ("pre_signup", "pre-signup: one PreSignUp_SignUp event", 1),
    (
        "post_confirmation",
        "post-confirmation: one ConfirmSignUp event",
        1,
    ),
    (
        "sign_in_not_federated",
        "post-confirmation: a sign-in of a pool user (not federated: nothing to do)",
        1,
    ),
    (
        "sign_in_federated_known",
        "post-confirmation: a federated user's sign-in, Chime user and owner known",
        1,
    ),
    (
        "idp_sync_batch_of_10",
        "idp-sync: a batch of 10 (raw, SNS, EventBridge; 10 groups), per message",
        10,
    ),
    (
        "credential_exchange",
        "credential-exchange: one warm POST /credentials (keys cached, user exists, no session kept, STS left out)",
        1,
    ),
    (
        "credential_exchange_session_reused",
        "credential-exchange: the same, the user's session kept (no STS call)",
        1,
    ),
    (
        "token_validate",
        "credential-exchange: the token check alone (RS256, cached keys)",
        1,
    ),
];

impl PerEvent {
    pub fn read(criterion_dir: &Path) -> PerEvent {
        let mut rows = Vec::new();
        for group in ["per_event", "per_event_json_logs"] {
            for (bench, label, per) in PER_EVENT_BENCHES {
                rows.push((
                    group,
                    label,
                    per,
                    criterion_results::read(criterion_dir, group, bench),
                ));
            }
        }
        PerEvent { rows }
    }

    /// Per event, in ms, of `bench` in `group` (JSON logs on when `logs`).
    fn per_event_ms(&self, logs: bool, index: usize) -> Option<(f64, Summary, SystemTime)> {
        let group = if logs {
            "per_event_json_logs"
        } else {
            "per_event"
        };
        let (_, _, per, result) = self.rows.iter().filter(|(g, ..)| *g == group).nth(index)?;
        let r = result.as_ref().ok()?;
        let scale = |ns: f64| ns / 1e6 / f64::from(*per);
        let s = r.samples;
        Some((
            scale(r.median_ns),
            Summary {
                n: s.n,
                min: scale(s.min),
                p10: scale(s.p10),
                median: scale(s.median),
                p90: scale(s.p90),
                max: scale(s.max),
            },
            r.measured,
        ))
    }
}

pub struct Report {
    pub machine: Machine,
    pub generated: SystemTime,
    pub total: Duration,
    pub runs: usize,
    pub rss_runs: usize,
    pub events: usize,
    pub subjects: Vec<Subject>,
    pub cold: Vec<ColdRow>,
    pub long: Vec<LongRunRow>,
    pub sizes: Vec<(String, u64)>,
    pub arm64: Arm64,
    /// The system CA bundle the naive floor was given (with the test root), if one was found.
    pub system_bundle: Option<std::path::PathBuf>,
    pub per_event: PerEvent,
    pub concurrency: Concurrency,
    pub drain: Drain,
    pub root: std::path::PathBuf,
}

/// Writes one summary row with its verdict in the last column; a target not met is also
/// recorded among the misses (explained at the end of the report).
fn judge(
    out: &mut String,
    misses: &mut Vec<String>,
    met: bool,
    miss: String,
    row: std::fmt::Arguments,
) {
    if !met {
        misses.push(miss);
    }
    let _ = writeln!(out, "{row} {} |", verdict(met));
}

fn verdict(met: bool) -> &'static str {
    if met { "✅ met" } else { "❌ **missed**" }
}

fn ms(s: &Summary) -> String {
    format!("{:.1} ms ({:.1}–{:.1})", s.median, s.p10, s.p90)
}

fn date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Report {
    /// The subject as built by the workspace's profile (no `--variant`).
    fn index(&self, name: &str, lang: Lang) -> Option<usize> {
        self.subjects
            .iter()
            .position(|s| s.name() == name && s.lang == lang && s.variant.is_none())
    }

    fn cold_of(&self, subject: usize, transport: Transport) -> Option<&Summary> {
        self.cold
            .iter()
            .find(|c| c.subject == subject && c.transport == transport)
            .map(|c| &c.summary)
    }

    fn cold(&self, name: &str, lang: Lang, transport: Transport) -> Option<&Summary> {
        self.cold_of(self.index(name, lang)?, transport)
    }

    fn long(&self, name: &str, lang: Lang) -> Option<&LongRunRow> {
        self.index(name, lang).map(|i| &self.long[i])
    }

    fn role_name(role: Role) -> Option<&'static str> {
        Bootstrap::by_role(role).next().map(|b| b.name)
    }

    fn size_mb(&self, name: &str) -> Option<f64> {
        let label = self.subjects[self.index(name, Lang::Rust)?].label();
        self.sizes
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, bytes)| *bytes as f64 / 1e6)
    }

    /// Each `--variant` binary next to the profile's own, measured in the same run.
    fn render_variants(&self, out: &mut String) {
        let variants: Vec<usize> = (0..self.subjects.len())
            .filter(|&i| self.subjects[i].variant.is_some())
            .collect();
        if variants.is_empty() {
            return;
        }
        let mut labels: Vec<String> = self
            .subjects
            .iter()
            .filter_map(|s| {
                let dir = s.program().parent()?;
                let dir = dir.strip_prefix(&self.root).unwrap_or(dir);
                Some(format!(
                    "`{}` from `{}`",
                    s.variant.as_deref()?,
                    dir.display()
                ))
            })
            .collect();
        labels.dedup();
        let _ = writeln!(
            out,
            "\nMeasured in the same run, the same functions built another way (`--variant`: {}; \
             the commands are under Rerun), over HTTPS:\n",
            labels.join(", ")
        );
        let _ = writeln!(
            out,
            "| function | binary | cold start median | peak RSS median | warm CPU per invocation | as built by the profile |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        let size = |label: &str| {
            self.sizes
                .iter()
                .find(|(l, _)| l == label)
                .map_or(0.0, |(_, b)| *b as f64 / 1e6)
        };
        for i in variants {
            let s = &self.subjects[i];
            let Some(base) = self.index(s.name(), Lang::Rust) else {
                continue;
            };
            let b = &self.subjects[base];
            let cold = |i| {
                self.cold_of(i, Transport::Https)
                    .map_or(f64::NAN, |c| c.median)
            };
            let _ = writeln!(
                out,
                "| {} | {:.2} MB | {:.1} ms | {:.1} MB | {:.3} ms | {:.2} MB, {:.1} ms, {:.1} MB, {:.3} ms |",
                s.label(),
                size(&s.label()),
                cold(i),
                self.long[i].peak_mb.median,
                self.long[i].cpu_ms_per_invocation.median,
                size(&b.label()),
                cold(base),
                self.long[base].peak_mb.median,
                self.long[base].cpu_ms_per_invocation.median
            );
        }
    }

    pub fn render(&self) -> String {
        let mut misses: Vec<String> = Vec::new();
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `chime-sync-bench` on {} after a {:.0} s run; every figure below comes from \
             that one run, except the per-event handler cost, which criterion measured separately \
             (section 3 says when). How to rerun it is at the end.\n",
            date(self.generated),
            self.total.as_secs_f64()
        );

        // Summary table.
        let _ = writeln!(out, "## Figures and targets\n");
        let _ = writeln!(
            out,
            "Medians, with p10–p90 in brackets; full distributions below. MB = 10⁶ bytes. Cold \
             starts are over HTTPS (a local TLS fake whose throw-away root the clients trust), as \
             in production; the plain-HTTP figures are in section 1, labelled.\n"
        );
        let _ = writeln!(out, "| # | figure | target | Rust | reference | |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        let https = Transport::Https;
        let naive = Self::role_name(Role::NaiveFloor);
        let no_sdk = Self::role_name(Role::NoSdk);
        let ours: Vec<&Bootstrap> = Bootstrap::by_role(Role::Function).collect();
        if let Some(floor) = naive.and_then(|n| self.cold(n, Lang::Rust, https)) {
            for b in ours.iter().filter(|b| b.calls_chime()) {
                let Some(r) = self.cold(b.name, Lang::Rust, https) else {
                    continue;
                };
                let share = r.median / floor.median;
                let met = share <= NAIVE_FLOOR_SHARE;
                judge(
                    &mut out,
                    &mut misses,
                    met,
                    format!("cold start of {} against the naive floor", b.name),
                    format_args!(
                        "| 1 | cold start over HTTPS, {} (exec → first response) | ≤ {NAIVE_FLOOR_SHARE}× the naive floor | {} = {share:.2}× | naive floor {} |",
                        b.name,
                        ms(r),
                        ms(floor),
                    ),
                );
            }
            if let Some(p) = ours
                .iter()
                .find(|b| !b.calls_chime())
                .and_then(|b| self.cold(b.name, Lang::Rust, https).map(|c| (b.name, c)))
            {
                let _ = writeln!(
                    out,
                    "| 1 | cold start, {} (no AWS call) | (none; shown for scale) | {} = {:.2}× | naive floor {} | |",
                    p.0,
                    ms(p.1),
                    p.1.median / floor.median,
                    ms(floor)
                );
            }
        }
        for b in ours.iter().filter(|b| b.node) {
            if let (Some(r), Some(n)) = (
                self.cold(b.name, Lang::Rust, https),
                self.cold(b.name, Lang::Node, https),
            ) {
                let speedup = n.median / r.median;
                let met = speedup >= NODE_SPEEDUP;
                judge(
                    &mut out,
                    &mut misses,
                    met,
                    format!("cold start of {} against Node.js", b.name),
                    format_args!(
                        "| 1 | cold start over HTTPS, {} vs its Node.js 20 equivalent | ≥ {NODE_SPEEDUP:.0}× faster | {} = {speedup:.1}× faster | Node.js {} |",
                        b.name,
                        ms(r),
                        ms(n),
                    ),
                );
            }
        }
        for b in &ours {
            if let Some(r) = self.long(b.name, Lang::Rust) {
                let node = self.long(b.name, Lang::Node).map_or("—".to_owned(), |n| {
                    format!("Node.js {:.1} MB", n.peak_mb.median)
                });
                judge(
                    &mut out,
                    &mut misses,
                    r.peak_mb.max <= PEAK_RSS_MB,
                    format!("peak RSS of {}", b.name),
                    format_args!(
                        "| 2 | peak RSS after {} invocations over HTTPS, {} | ≤ {PEAK_RSS_MB:.0} MB (every run) | {:.1} MB (max {:.1}) | {node} |",
                        r.invocations, b.name, r.peak_mb.median, r.peak_mb.max,
                    ),
                );
            }
        }
        for b in &ours {
            if let Some(mb) = self.size_mb(b.name) {
                let naive_mb = naive
                    .and_then(|n| self.size_mb(n))
                    .map_or("—".to_owned(), |m| format!("naive floor {m:.2} MB"));
                judge(
                    &mut out,
                    &mut misses,
                    mb <= BINARY_MB,
                    format!("binary size of {}", b.name),
                    format_args!(
                        "| 2 | stripped release binary, x86_64, {} | ≤ {BINARY_MB:.0} MB | {mb:.2} MB | {naive_mb} |",
                        b.name,
                    ),
                );
            }
            match (self.arm64.size_mb(b.name), self.size_mb(b.name)) {
                (Some(arm), Some(x86)) => {
                    let met = arm < x86 && arm <= BINARY_MB;
                    judge(
                        &mut out,
                        &mut misses,
                        met,
                        format!("arm64 size of {}", b.name),
                        format_args!(
                            "| 2 | arm64 `sam build` artifact, {} | smaller than x86_64 (and ≤ {BINARY_MB:.0} MB) | {arm:.2} MB | x86_64 {x86:.2} MB |",
                            b.name,
                        ),
                    );
                }
                _ => {
                    misses.push(format!("arm64 size of {} (not measured)", b.name));
                    let _ = writeln!(
                        out,
                        "| 2 | arm64 `sam build` artifact, {} | smaller than x86_64 | not measured: no arm64 `bootstrap` under `{}` | — | ❌ **missing** |",
                        b.name,
                        self.arm64
                            .dir
                            .strip_prefix(&self.root)
                            .unwrap_or(&self.arm64.dir)
                            .display()
                    );
                }
            }
        }
        if let Some(reference) = no_sdk.and_then(|n| self.long(n, Lang::Rust)) {
            for b in ours
                .iter()
                .filter(|b| b.workload == crate::procs::Workload::Confirmation)
            {
                let Some(r) = self.long(b.name, Lang::Rust) else {
                    continue;
                };
                let ratio = r.cpu_ms_per_invocation.median / reference.cpu_ms_per_invocation.median;
                let met = ratio <= WARM_CPU_VS_NO_SDK;
                judge(
                    &mut out,
                    &mut misses,
                    met,
                    format!("warm CPU of {}", b.name),
                    format_args!(
                        "| 2 | warm CPU per one-call invocation over HTTPS, {} | ≤ {WARM_CPU_VS_NO_SDK}× the no-SDK reference | {:.3} ms = {ratio:.2}× | no-SDK {:.3} ms |",
                        b.name,
                        r.cpu_ms_per_invocation.median,
                        reference.cpu_ms_per_invocation.median,
                    ),
                );
            }
        }
        for (i, (_, label, _)) in PER_EVENT_BENCHES.iter().enumerate() {
            match (
                self.per_event.per_event_ms(false, i),
                self.per_event.per_event_ms(true, i),
            ) {
                (Some((bare, ..)), Some((logged, ..))) => {
                    let met = bare.max(logged) < PER_EVENT_MS;
                    judge(
                        &mut out,
                        &mut misses,
                        met,
                        format!("per-event overhead of {label}"),
                        format_args!(
                            "| 3 | per-event handler cost, {label} | < {PER_EVENT_MS} ms | {:.1} µs ({:.1} µs with JSON logs) | — |",
                            bare * 1e3,
                            logged * 1e3,
                        ),
                    );
                }
                _ => {
                    misses.push(format!("per-event overhead of {label} (not measured)"));
                    let _ = writeln!(
                        out,
                        "| 3 | per-event handler cost, {label} | < {PER_EVENT_MS} ms | not measured: run `cargo bench -p chime-sync-core --bench handlers` first | — | ❌ **missing** |"
                    );
                }
            }
        }
        let c = &self.concurrency;
        let ten_ratio = c.ten_groups.median / c.round_trip.median;
        let ten_met = ten_ratio <= TEN_GROUPS_RT;
        judge(
            &mut out,
            &mut misses,
            ten_met,
            "batch of ten groups".to_owned(),
            format_args!(
                "| 4 | batch of 10 messages in 10 FIFO groups, {} ms Chime latency | ≤ {TEN_GROUPS_RT}× one round trip ({}) | {} = {ten_ratio:.2}× | — |",
                c.latency_ms,
                ms(&c.round_trip),
                ms(&c.ten_groups),
            ),
        );
        let one_ratio = c.one_group.median / c.round_trip.median;
        let one_met = c.one_group_in_order && (9.0..=11.5).contains(&one_ratio);
        judge(
            &mut out,
            &mut misses,
            one_met,
            "batch of one group".to_owned(),
            format_args!(
                "| 4 | batch of 10 messages in 1 FIFO group, {} ms latency | in order, ≈ 10 round trips | {} = {one_ratio:.2} round trips, {} | — |",
                c.latency_ms,
                ms(&c.one_group),
                if c.one_group_in_order {
                    "in order in every run"
                } else {
                    "**out of order**"
                },
            ),
        );
        let d = &self.drain;
        let share = d.sustained_rate / d.tps_limit;
        let drain_met = share >= DRAIN_SHARE && d.dead_lettered == 0 && d.redriven == 0;
        if share < DRAIN_SHARE {
            misses.push("backlog drain rate".to_owned());
        }
        if d.dead_lettered + d.redriven > 0 {
            misses.push("backlog drain: messages to the DLQ".to_owned());
        }
        let _ = writeln!(
            out,
            "| 5 | backlog drain, {} messages, {:.0} TPS quota, 429 beyond | ≥ {:.0} % of the quota, 0 to the DLQ, retries counted | {:.1} msg/s beyond the initial bucket = {:.1} % of the quota; {} to the DLQ; {} SDK retries, {} redeliveries | — | {} |",
            d.messages,
            d.tps_limit,
            DRAIN_SHARE * 100.0,
            d.sustained_rate,
            share * 100.0,
            d.dead_lettered + d.redriven,
            d.http_attempts.saturating_sub(d.calls as u64),
            d.redelivered,
            verdict(drain_met)
        );

        // Machine.
        let _ = writeln!(out, "\n## Machine and versions\n");
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(out, "| date | {} |", date(self.generated));
        let _ = writeln!(out, "| CPU | {} × {} (`nproc`) |", m.nproc, m.cpu);
        let _ = writeln!(out, "| memory | {} |", m.memory);
        let _ = writeln!(out, "| kernel | Linux {} |", m.kernel);
        let _ = writeln!(
            out,
            "| load average (1, 5, 15 min) | {} at the start, {} at the end |",
            m.load_before, m.load_after
        );
        let _ = writeln!(out, "| sources | {} |", m.sources);
        let _ = writeln!(out, "| Rust | {} |", m.rustc);
        let _ = writeln!(
            out,
            "| Rust crates | lambda_runtime {}, aws-sdk-chimesdkidentity {} |",
            m.rust_lambda, m.rust_chime
        );
        let _ = writeln!(out, "| Node.js | {} |", m.node);
        let _ = writeln!(
            out,
            "| npm packages (bench/node/package-lock.json) | aws-lambda-ric {}, @aws-sdk/client-chime-sdk-identity {}, @aws-sdk/client-sqs {} |",
            m.ric, m.js_chime, m.js_sqs
        );

        let _ = writeln!(out, "\n## Build profile\n");
        let _ = writeln!(
            out,
            "`[profile.release]` of the workspace's Cargo.toml, as read at the time of the run:\n"
        );
        let _ = writeln!(out, "```toml\n{}\n```\n", m.profile.join("\n"));
        let _ = writeln!(out, "{PANIC_NOTE}");
        self.render_variants(&mut out);

        // Methods and distributions.
        let _ = writeln!(out, "\n## 1. Cold start\n");
        let _ = writeln!(out, "{COLD_METHOD}\n");
        let bundle = match &self.system_bundle {
            Some(path) => format!("the system bundle `{}`", path.display()),
            None => "no system bundle (none was found)".to_owned(),
        };
        let _ = writeln!(
            out,
            "Over HTTPS the naive floor's `SSL_CERT_FILE` was {bundle} with the test root \
             appended.\n"
        );
        let _ = writeln!(
            out,
            "{} measured starts per row (after two discarded warm-up starts each), all rows \
             interleaved in one loop.\n",
            self.runs
        );
        let _ = writeln!(
            out,
            "| bootstrap | transport | median | p10 | p90 | min | max | CPU until the answer, median (p10–p90) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for c in &self.cold {
            let s = &c.summary;
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms ({:.1}–{:.1}) |",
                self.subjects[c.subject].label(),
                c.transport.label(),
                s.median,
                s.p10,
                s.p90,
                s.min,
                s.max,
                c.cpu.median,
                c.cpu.p10,
                c.cpu.p90
            );
        }
        let _ = writeln!(
            out,
            "\nThe last column is the CPU time of all the process's threads \
             (`/proc/{{pid}}/task/*/schedstat`) read when the first response arrived: less \
             sensitive than wall time to other load on the machine.\n"
        );

        let _ = writeln!(out, "\n## 2. Peak memory, warm CPU and binary size\n");
        let _ = writeln!(out, "{RSS_METHOD}\n");
        let _ = writeln!(
            out,
            "{} processes per bootstrap, each serving {} invocations over HTTPS.\n",
            self.rss_runs, self.events
        );
        let _ = writeln!(
            out,
            "| bootstrap | peak RSS (VmHWM) median | min–max | RSS at the end (anonymous + file-backed) | warm CPU per invocation, median (p10–p90) | warm time per invocation, median (p10–p90) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for (s, l) in self.subjects.iter().zip(&self.long) {
            let _ = writeln!(
                out,
                "| {} | {:.1} MB | {:.1}–{:.1} MB | {:.1} MB ({:.1} + {:.1}) | {:.3} ms ({:.3}–{:.3}) | {:.3} ms ({:.3}–{:.3}) |",
                s.label(),
                l.peak_mb.median,
                l.peak_mb.min,
                l.peak_mb.max,
                l.end_rss_mb.median,
                l.end_anon_mb.median,
                l.end_file_mb.median,
                l.cpu_ms_per_invocation.median,
                l.cpu_ms_per_invocation.p10,
                l.cpu_ms_per_invocation.p90,
                l.warm_ms_per_invocation.median,
                l.warm_ms_per_invocation.p10,
                l.warm_ms_per_invocation.p90
            );
        }
        let _ = writeln!(
            out,
            "\n| binary (stripped, x86_64, as built here) | bytes | MB |"
        );
        let _ = writeln!(out, "|---|---|---|");
        for (name, bytes) in &self.sizes {
            let _ = writeln!(out, "| {name} | {bytes} | {:.2} |", *bytes as f64 / 1e6);
        }
        let _ = writeln!(out, "\n{ARM64_METHOD}\n");
        let _ = writeln!(out, "| function | `sam build` artifact | bytes | MB |");
        let _ = writeln!(out, "|---|---|---|---|");
        for (name, id, size) in &self.arm64.rows {
            match size {
                Ok(bytes) => {
                    let _ = writeln!(
                        out,
                        "| {name} | `{id}/bootstrap` | {bytes} | {:.2} |",
                        *bytes as f64 / 1e6
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "| {name} | `{id}/bootstrap` | not measured: {e} | |");
                }
            }
        }

        let _ = writeln!(out, "\n## 3. Per-event handler cost\n");
        let _ = writeln!(out, "{PER_EVENT_METHOD}\n");
        let _ = writeln!(
            out,
            "| benchmark | logs | per event: criterion median [95 % CI] | per-sample spread p10–p90 (min–max) | measured |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for (group, label, per, result) in &self.per_event.rows {
            let logs = if *group == "per_event" {
                "off"
            } else {
                "JSON, INFO"
            };
            match result {
                Ok(r) => {
                    let us = |ns: f64| ns / 1e3 / f64::from(*per);
                    let _ = writeln!(
                        out,
                        "| {label} | {logs} | {:.2} µs [{:.2}–{:.2}] | {:.2}–{:.2} µs ({:.2}–{:.2}) | {} |",
                        us(r.median_ns),
                        us(r.ci_ns.0),
                        us(r.ci_ns.1),
                        us(r.samples.p10),
                        us(r.samples.p90),
                        us(r.samples.min),
                        us(r.samples.max),
                        date(r.measured)
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "| {label} | {logs} | not measured ({e}) | | |");
                }
            }
        }

        let _ = writeln!(out, "\n## 4. Batch concurrency\n");
        let _ = writeln!(out, "{CONCURRENCY_METHOD}\n");
        let _ = writeln!(
            out,
            "| batch | median | p10 | p90 | min | max | round trips |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for (label, s) in [
            ("1 message (one round trip)", &c.round_trip),
            ("10 messages, 10 groups", &c.ten_groups),
            ("10 messages, 1 group", &c.one_group),
        ] {
            let _ = writeln!(
                out,
                "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} |",
                s.median,
                s.p10,
                s.p90,
                s.min,
                s.max,
                s.median / c.round_trip.median
            );
        }
        let _ = writeln!(
            out,
            "\nIn every ten-group run at least {} Chime calls were in flight at once; every one-group \
             run made {} calls, {}.",
            c.ten_groups_min_peak_overlap,
            c.one_group_calls,
            if c.one_group_in_order {
                "each starting after the previous one ended, in batch order"
            } else {
                "**not** all one after the other in batch order"
            }
        );
        let _ = writeln!(
            out,
            "\nThe handler made {} Chime calls in all (warm-up included); the fake saw {} HTTP \
             requests, so the SDK retried {} times.",
            c.calls,
            c.http_attempts,
            c.http_attempts.saturating_sub(c.calls as u64)
        );

        let _ = writeln!(out, "\n## 5. Backlog drain under throttling\n");
        let _ = writeln!(out, "{DRAIN_METHOD}\n");
        let _ = writeln!(out, "| | |\n|---|---|");
        let _ = writeln!(
            out,
            "| messages | {} (creates of distinct users, one FIFO group each) |",
            d.messages
        );
        let _ = writeln!(
            out,
            "| quota | {:.0} TPS on CreateAppInstanceUser, bucket of {} |",
            d.tps_limit, d.burst
        );
        let _ = writeln!(out, "| drained in | {:.2} s |", d.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "| achieved rate | {:.1} messages/s overall; {:.1} messages/s = {:.1} % of the quota without the {} messages the full bucket let through at the start |",
            d.rate,
            d.sustained_rate,
            share * 100.0,
            d.burst
        );
        let _ = writeln!(
            out,
            "| messages applied per whole second | median {:.0} (p10–p90 {:.0}–{:.0}, min–max {:.0}–{:.0}, {} s) |",
            d.per_second.median,
            d.per_second.p10,
            d.per_second.p90,
            d.per_second.min,
            d.per_second.max,
            d.per_second.n
        );
        let _ = writeln!(
            out,
            "| handler invocations (batches of ≤ 10) | {} |",
            d.invocations
        );
        let _ = writeln!(
            out,
            "| CreateAppInstanceUser calls by the handler | {} |",
            d.calls
        );
        let _ = writeln!(
            out,
            "| HTTP attempts the fake saw | {} ({} answered 429 ThrottledClientException) |",
            d.http_attempts, d.throttled
        );
        let _ = writeln!(
            out,
            "| SDK retries (attempts − calls) | {} |",
            d.http_attempts.saturating_sub(d.calls as u64)
        );
        let _ = writeln!(
            out,
            "| messages reported failed and redelivered | {} (highest receive count {}; {} message{} received more than 5 times) |",
            d.redelivered,
            d.max_receive_count,
            d.over_five_receives,
            if d.over_five_receives == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "| to the DLQ | {} sent by the handler, {} moved by SQS after {} receives (template.yaml's default maxReceiveCount) |",
            d.dead_lettered, d.redriven, d.redrive_after
        );
        let _ = writeln!(out, "| users in the fake at the end | {} |", d.users_at_end);

        let _ = writeln!(out, "\n## Where a target is missed\n");
        if misses.is_empty() {
            let _ = writeln!(out, "No target was missed in this run.");
        } else {
            // Misses with the same cause share one paragraph.
            let mut grouped: Vec<(Vec<&str>, String)> = Vec::new();
            for miss in &misses {
                let why = self.explain(miss);
                match grouped.iter_mut().find(|(_, w)| *w == why) {
                    Some((names, _)) => names.push(miss),
                    None => grouped.push((vec![miss], why)),
                }
            }
            for (names, why) in grouped {
                let _ = writeln!(out, "- **{}**: {why}", names.join("; "));
            }
        }

        let _ = writeln!(out, "\n## The Node.js equivalents\n");
        let _ = writeln!(out, "{NODE_NOTE}");
        let _ = writeln!(out, "\n## Fuzzing\n");
        let _ = writeln!(
            out,
            "The long property-test run (≥ 100,000 cases over SQS bodies, envelopes and Cognito \
             events) is recorded in [docs/fuzz-results.md](docs/fuzz-results.md)."
        );
        let _ = writeln!(out, "\n## Rerun\n");
        let _ = writeln!(out, "{RERUN}");
        out
    }
}

/// Why a target can be missed and what would close it; written for the misses seen on
/// the machine these figures come from.
impl Report {
    fn explain(&self, miss: &str) -> String {
        explain(miss).to_owned()
    }
}

fn explain(miss: &str) -> &'static str {
    if miss.contains("naive floor") {
        NAIVE_FLOOR_MISS
    } else if miss.contains("Node.js") {
        NODE_MISS
    } else if miss.starts_with("peak RSS") {
        RSS_MISS
    } else if miss.starts_with("arm64") && miss.contains("not measured") {
        ARM64_MISSING
    } else if miss.starts_with("binary size") || miss.starts_with("arm64") {
        BINARY_MISS
    } else if miss.starts_with("warm CPU") {
        WARM_CPU_MISS
    } else if miss.contains("not measured") {
        "criterion's results were not found under target/criterion: run \
         `cargo bench -p chime-sync-core --bench handlers`, then this command again."
    } else if miss.starts_with("per-event") {
        PER_EVENT_MISS
    } else if miss.starts_with("batch") {
        BATCH_MISS
    } else if miss.contains("DLQ") {
        DRAIN_DLQ_MISS
    } else {
        DRAIN_MISS
    }
}

const PANIC_NOTE: &str = "`panic = \"unwind\"` is kept on purpose: `lambda_runtime` runs each \
invocation under `catch_unwind`, so a handler panic is reported to the Runtime API as that \
invocation's error and the sandbox keeps serving. With `abort` the process dies, Lambda throws \
the sandbox away, the batch comes back after the visibility timeout and the next invocation \
pays a cold start. `cargo lambda build --release` passes `panic=\"abort\"` unless the profile \
names a value, which is why Cargo.toml spells it out. The unwind tables cost some binary size \
(about 1 MB when last measured); the size rows include them.";

const COLD_METHOD: &str = "Exec of the process → the instant its first `POST \
/runtime/invocation/{id}/response` reached a mock Lambda Runtime API (the arrival instant is \
taken in the mock's request handler, in this process). The event is queued before the exec, \
so the first `GET …/next` is answered at once. Each start gets a fresh mock on 127.0.0.1 \
(`TCP_NODELAY` set), the environment Lambda sets (static credentials, region, \
`AWS_LAMBDA_LOG_FORMAT=JSON`, no config files, IMDS off) and \
`AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY` pointing at the Chime fake running in this process \
without faults: over **HTTPS**, at its TLS front (`chime_identity_fake::TlsFront`, rustls, \
an ECDSA P-256 certificate from a throw-away root CA made for this run), which relays each \
connection to the fake; over **plain HTTP**, at the fake itself. Over HTTPS our functions and \
the no-SDK reference trust the test root through `SSL_CERT_FILE` (which replaces their \
compiled-in roots, reading one PEM file); the naive floor, which loads the system's root \
store through rustls-native-certs, gets the system bundle plus the test root as \
`SSL_CERT_FILE`, so it parses the whole bundle as in production (without the directory scan \
it would also make there); Node.js gets `NODE_EXTRA_CA_CERTS`. stdout/stderr are appended to \
a file under `target/chime-sync-bench/`. The first event is about a new user: a \
ConfirmSignUp (post-confirmation and the no-SDK reference, which read first: \
DescribeAppInstanceUser answers 404, then CreateAppInstanceUser; the naive floor only \
creates), a batch of one `user.created` message (idp-sync: Describe, then Create) and a \
sign-up (pre-signup: no call). credential-exchange gets a Function URL `POST /credentials` \
with an RS256 token of a local OIDC issuer served over HTTPS (its own throw-away root, in the \
same `SSL_CERT_FILE`): its first answer includes fetching the issuer's discovery document and \
JWKS, Describe and Create of the user, and STS AssumeRole against a local STS behind a TLS \
front (`AWS_ENDPOINT_URL_STS`). Every answer is checked (the event back unchanged, an empty \
`batchItemFailures`, `autoVerifyEmail` set, a 200 carrying credentials). \
credential-exchange's issuer is HTTPS whatever the transport, so it has no plain-HTTP row. The page cache is warm (two discarded starts per row first), as it \
is for repeated cold starts on one Lambda host; the download and unpacking of the code \
package that a real cold start may include is not part of any figure. Rust binaries run from \
`target/release` (the naive floor from `target/bare-trigger/release`); Node.js runs \
`node node_modules/aws-lambda-ric/bin/index.mjs {name}.handler` in `bench/node`.\n\n\
The **naive floor** is `bench/bare-trigger`, its own small workspace: lambda_runtime + \
aws-config + the Chime client with the SDK's default HTTPS client (rustls on AWS-LC, the \
system root store), aws-config's default chains, tokio's multi-thread runtime, release with \
LTO, one codegen unit, opt-level 3 and strip: what the SDK's defaults give a newcomer. The \
**no-SDK reference** (`bench-no-sdk-trigger`) makes post-confirmation's calls (Describe, \
Create when missing) with hyper and rustls directly, on the same TLS stack, runtime and \
kept-alive connection (`TCP_NODELAY`) as our functions, each request SigV4-signed with \
`aws-sigv4` (the SDK's own signer) as the SDK signs it; it neither retries, validates nor \
logs.";

const RSS_METHOD: &str = "One process per run serves the invocations back to back from a \
mock Runtime API over HTTPS, then `VmHWM` (the kernel's peak resident set for the process) and \
`VmRSS` are read from `/proc/{pid}/status` before it is killed. The fake's users are cleared \
before each run. post-confirmation and the no-SDK reference get ConfirmForgotPassword events \
of one user, whom the first invocation creates: every warm invocation is exactly one signed \
DescribeAppInstanceUser, the one-call invocation the warm-CPU target compares. The naive \
floor, which only creates, confirms a new user per invocation (one CreateAppInstanceUser). \
credential-exchange gets `POST /credentials` with tokens of one user: every warm request is \
a token check against the cached keys, one Describe and one STS AssumeRole. idp-sync gets batches of 10 messages in 10 FIFO groups — 5 \
creates, 3 renames and 2 deletes of the previous batch's users, 13 Chime calls at steady \
state; pre-signup gets sign-ups. Node.js's `aws-lambda-ric` runs in the one `node` process, \
so its figure is the whole runtime's too. **Warm CPU per invocation** is the CPU time of all \
the process's threads (the first field of `/proc/{pid}/task/*/schedstat`, ns) from the \
first answer to the last, divided by the invocations in between; the Chime fake and the mock \
run in this process, so their CPU is not counted. The warm time per invocation is (last \
answer − first answer) / (invocations − 1), with the Chime fake answering at once.";

const PER_EVENT_METHOD: &str = "`cargo bench -p chime-sync-core --bench handlers` \
(crates/core/benches/handlers.rs, criterion 0.8, 100 samples each, built with the release \
profile and so at its opt-level) runs each handler with \
`InMemoryDirectory` and `InMemoryQueue`: reading the event from its JSON bytes as \
`lambda_runtime` does, validation, display names, envelope unwrapping, grouping and \
ordering, the directory calls, and writing the response to JSON bytes. Every iteration \
gets a fresh, empty directory (set up outside the timed part), so every user takes the \
create path. The `JSON, INFO` rows install a `tracing_subscriber` JSON formatter at INFO \
writing to a sink, as the functions log with `AWS_LAMBDA_LOG_FORMAT=JSON` (the write to \
stdout itself is not included). The idp-sync figures are a batch of ten divided by ten. \
credential-exchange is measured warm, as a sandbox serves its second request on: the \
issuer's keys cached, the user already in the directory, STS replaced by a double that makes \
up credentials (STS's own time is not ours to measure); `the token check alone` is \
`token::validate` (header, claims, the RS256 signature with ring) against the cached keys. \
This binary copies the figures from `target/criterion/*/*/new/`; the date column says \
when criterion wrote them.";

const CONCURRENCY_METHOD: &str = "`idp_sync::handle` in this process, with the real \
`ChimeDirectory` (aws-sdk-chimesdkidentity, our retry classifier, our HTTPS stack, the \
configuration `IdpSyncConfig` reads from the environment, `MAX_CONCURRENT_GROUPS` 10) on a \
tokio current_thread runtime of its own thread, as the function runs, against the Chime \
fake's TLS front with a fixed latency on every request. Every message is a `user.created` of a new user: \
a DescribeAppInstanceUser that finds no user, then a CreateAppInstanceUser (the handler reads \
first). One round trip is the median of a batch of one message through the same handler (so \
two calls). The one-group batch puts ten users' creates under one `MessageGroupId`; a \
directory wrapper records each call's start and end to check that the users come in batch \
order, each call after the previous one ended, and the overlap of the ten-group batch. A discarded ten-group batch first opens \
the connections the client keeps pooled (ten TLS handshakes). The three batches alternate, \
once per run.";

const DRAIN_METHOD: &str = "A simulated queue drained by repeated `idp_sync::handle` calls \
over batches of ten, one after the other (one consumer), with the real `ChimeDirectory` as \
configured from the environment (4 attempts per call, backoff from 100 ms with full jitter \
capped at 2 s, a 5 s budget per call) against the fake with a token-bucket TPS quota on \
CreateAppInstanceUser (429 ThrottledClientException without a token). A message reported \
failed goes to the back of the queue with its receive count raised (redelivery; SQS's \
visibility timeout is not waited for), until it has been received maxReceiveCount times \
(template.yaml's default, read from it), when SQS would move it to the DLQ instead. The \
table also counts the messages received more than 5 times, the smallest maxReceiveCount the \
template allows. Retries are counted from the fake's counters: every HTTP \
attempt, the 429s among them, and attempts − handler calls = the SDK's own retries. The \
rate is applied messages / wall time from the first batch to the last answer; the bucket \
starts full, so the first second exceeds the quota, and the target is judged on the rate \
without those first `burst` messages. The spread is over the count of messages applied in \
each whole second.";

const ARM64_METHOD: &str = "The arm64 sizes are the `bootstrap` files `sam build` leaves \
under `.aws-sam/build/{LogicalId}/` (what `sam deploy` zips and uploads), checked to be \
AArch64 ELF binaries. `sam build` runs `cargo lambda build --release --arm64 --bin {name}` \
at the root with the workspace's release profile; `scripts/bench.sh` says how it is run here \
and with which toolchain.";

const NODE_NOTE: &str = "`bench/node/post-confirmation.mjs` and `bench/node/idp-sync.mjs` \
(with `shared.mjs`) do the same work as the Rust functions: the same environment variables, \
the same validation and display-name rules, the same Chime calls in the same order \
(Describe first; CreateAppInstanceUser with ClientRequestToken `sync-{sub}` when missing, \
Update on a rename; Delete with 404 as success), per-call budgets, FIFO grouping with \
`MAX_CONCURRENT_GROUPS`, the DLQ and the hand-off through `@aws-sdk/client-sqs`, and a JSON \
log line per decision. The SDK clients are built at module load, as the public samples do; \
over HTTPS Node.js trusts the test root through `NODE_EXTRA_CA_CERTS`, on top of its own \
bundled roots. \
They run under the **official runtime interface client, `aws-lambda-ric`**, installed from \
npm by `npm ci` (its native addon builds here with g++, make, cmake, autoconf, automake and \
libtool); version 3.3.0, because 4.x requires Node.js 22. The modules are not bundled or \
minified (no esbuild), as in the public samples; bundling would shorten Node.js's module \
loading.";

const RERUN: &str = "```sh\n\
bash scripts/bench.sh            # builds what is measured, then runs chime-sync-bench\n\
```\n\n\
`scripts/bench.sh` builds the functions, the no-SDK reference and this tool \
(`cargo build --release --workspace --bins`), the naive floor in its own workspace \
(`bench/bare-trigger`), the functions at opt-level \"s\" (the `--variant` rows), the \
arm64 artifacts with `sam build` when it can, runs criterion (`cargo bench -p chime-sync-core \
--bench handlers`) and `npm ci --prefix bench/node`, then `target/release/chime-sync-bench \
--variant opt-level=s=target/variant-opts/release`. `--build-only` stops before measuring; \
`chime-sync-bench --help` lists the knobs (runs, events per long run, latency, drain size and \
quota, `--output -` to print instead of writing). Run it on a quiet machine: the report \
gives the load average at the start and the end.";

const PER_EVENT_MISS: &str = "the handler cost is JSON parsing and building the profile; \
what would close it is parsing the event into borrowed typed structs instead of a `Value` \
tree.";

const BATCH_MISS: &str = "groups run through `buffer_unordered(MAX_CONCURRENT_GROUPS)`; a \
miss means the client serialised requests (e.g. a connection pool limit) or the machine was \
busy. What would close it: raising the SDK client's pool size, or rerunning when `uptime` \
shows no other load.";

const DRAIN_DLQ_MISS: &str = "a message is redelivered when all of its call's attempts \
(4, with backoff from 100 ms) met a 429; against a quota that ten concurrent groups keep \
exhausted, a few messages lose that race several times in a row. What would close it: a \
client-side rate limiter (or the SDK's adaptive retry mode, which adds one) so calls wait for \
the quota instead of spending attempts on 429s, more attempts per call within the budget \
(`CHIME_MAX_ATTEMPTS`), or several concurrent consumers as Lambda runs them.";

const DRAIN_MISS: &str = "with one consumer a batch ends when its slowest message does, so \
backoff sleeps near the end of a batch leave the quota idle. What would close it: several \
concurrent consumers (Lambda runs one per active message group, up to the function's \
concurrency), or a client-side rate limiter that spaces calls at the quota instead of \
discovering it through 429s.";

const NAIVE_FLOOR_MISS: &str = "the functions start more than the naive floor minus the TLS \
and SDK defaults they avoid: reading and validating every variable, two SDK clients, the JSON \
logger. Compare the plain-HTTP rows of section 1 to see whether the handshake or the rest \
grew; docs/PERFORMANCE.md lists what each change bought.";

const NODE_MISS: &str = "Node.js's start is dominated by loading the SDK modules and the \
first TLS handshake in OpenSSL; ours by exec, the dynamic loader and one rustls handshake. A \
miss means the Rust start grew: compare with the naive floor and the no-SDK reference.";

const RSS_MISS: &str = "most of each function's resident set is code: the file-backed \
pages of the binary and glibc (the second number in section 2's \"RSS at the end\"), which \
the kernel maps in around every page the code touches (fault-around, 64 KiB). For idp-sync, \
/proc/{pid}/smaps during a long run read: the binary 5.2 MiB, glibc 1.4 MiB, the heap 1.4 \
MiB, the stack 0.2 MiB. Its heap is larger than post-confirmation's because ten message \
groups run at once, each with a pooled TLS connection and an SDK operation in flight: about \
95 KiB a group (`MAX_CONCURRENT_GROUPS=1` measured 0.84 MiB less at peak, 5 groups 0.5 MiB \
less; one run each). glibc's malloc tunables (`trim_threshold` 64 KiB, `top_pad` 0) measured 0.28 MiB \
less, not enough to close the gap, for a trim system call on more frees. What would close \
it: less code (two SDK clients with their orchestrator, endpoint rules and SigV4; opt-level \
is already \"z\", see the variant rows), or fewer concurrent groups, which the batch \
target (ten groups in about one round trip) rules out.";

const BINARY_MISS: &str = "AArch64's fixed-width instructions make the same code larger \
than x86-64's; the naive floor's x86-64 build was the bigger one only because of AWS-LC's \
x86 assembly (its AVX-512 AES-GCM alone is ~0.7 MB), which ring does not carry. The functions \
that link the SDK are still smaller on arm64; pre-signup, which links no TLS at all, is not. \
The arm64 artifacts are built by Debian's rustc 1.96 (rustup cannot download the aarch64 \
standard library here), the x86_64 ones by rustup's rustc 1.95: close, not the same compiler.";

const ARM64_MISSING: &str = "`sam build` did not leave arm64 artifacts under .aws-sam/build \
(it needs the aarch64-unknown-linux-gnu standard library and a cross linker, or Zig); \
scripts/bench.sh says what it found missing.";

const WARM_CPU_MISS: &str = "both make the same signed DescribeAppInstanceUser over \
the same TLS stack and kept-alive connection, so the difference is what the SDK and our code \
add per call. A callgrind profile of the warm invocation (`bash scripts/callgrind.sh`; \
docs/PERFORMANCE.md, \"Warm CPU per call\") puts most of it in the SDK: per operation it \
merges the client's runtime plugins into a config bag, builds the user-agent header, runs its \
interceptors, retry and timeout bookkeeping, signs more headers than the reference and \
deserializes the response (the endpoint comes from the resolver's cache); our share is the \
validation, the JSON decision log line and the EMF metrics line. The SDK's call alone costs \
more instructions than the whole 1.2× budget, so no change of ours can meet the target: that \
takes not using the SDK for the hot call (a hand-built signed request), which this project \
does not do: the SDK's retries, error model and signing are what the functions rely on.";
