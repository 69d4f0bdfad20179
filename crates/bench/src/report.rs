//! BENCHMARKS.md: every figure next to its target, how it was measured, and where a
//! target is missed.
//!
//! The text is `crates/bench/templates/BENCHMARKS.md.tmpl` (with `variants.md.tmpl` and
//! `misses.md` beside it); this module computes the tables and figures that fill its
//! `{{name}}` placeholders ([`template`]), and [`targets`] judges each figure against its
//! target.

mod targets;
mod template;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::criterion_results::{self, BenchResult};
use crate::inproc::{Concurrency, Drain};
use crate::procs::{BOOTSTRAPS, Bootstrap, Lang, LongRun, Role, Subject, Transport};
use crate::stats::Summary;

pub use template::TemplateError;
use template::Values;

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

/// The report's text, with `{{name}}` placeholders for what a run measures.
const REPORT: &str = include_str!("../templates/BENCHMARKS.md.tmpl");
const REPORT_NAME: &str = "crates/bench/templates/BENCHMARKS.md.tmpl";
/// The paragraph and table of the `--variant` builds, in the report only when there are any.
const VARIANTS: &str = include_str!("../templates/variants.md.tmpl");
const VARIANTS_NAME: &str = "crates/bench/templates/variants.md.tmpl";
/// Why each target can be missed and what would close it, one `key: text` line each.
const MISSES: &str = include_str!("../templates/misses.md");
const MISSES_NAME: &str = "crates/bench/templates/misses.md";

fn ms(s: &Summary) -> String {
    format!("{:.1} ms ({:.1}–{:.1})", s.median, s.p10, s.p90)
}

fn date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Table rows, one a line; the template puts the line end after the last.
fn lines(rows: impl IntoIterator<Item = String>) -> String {
    rows.into_iter().collect::<Vec<_>>().join("\n")
}

impl Machine {
    fn values(&self) -> Values {
        vec![
            ("nproc", self.nproc.to_string()),
            ("cpu", self.cpu.clone()),
            ("memory", self.memory.clone()),
            ("kernel", self.kernel.clone()),
            ("load_before", self.load_before.clone()),
            ("load_after", self.load_after.clone()),
            ("sources", self.sources.clone()),
            ("rustc", self.rustc.clone()),
            ("rust_lambda", self.rust_lambda.clone()),
            ("rust_chime", self.rust_chime.clone()),
            ("node", self.node.clone()),
            ("ric", self.ric.clone()),
            ("js_chime", self.js_chime.clone()),
            ("js_sqs", self.js_sqs.clone()),
            ("profile", self.profile.join("\n")),
        ]
    }
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

    /// BENCHMARKS.md: `templates/BENCHMARKS.md.tmpl` filled with this run's figures.
    pub fn render(&self) -> Result<String, TemplateError> {
        let targets = self.targets();
        let mut values = vec![
            ("generated", date(self.generated)),
            ("total_s", format!("{:.0}", self.total.as_secs_f64())),
            ("summary_rows", lines(targets.rows)),
            ("variants", self.variants()?),
            ("misses", self.misses(&targets.misses)?),
        ];
        values.extend(self.machine.values());
        values.extend(self.cold_values());
        values.extend(self.memory_and_size_values());
        values.push(("per_event_rows", self.per_event_rows()));
        values.extend(self.concurrency_values());
        values.extend(self.drain_values());
        template::fill(REPORT_NAME, REPORT, &values)
    }

    /// Each `--variant` binary next to the profile's own, measured in the same run; empty
    /// when there is none.
    fn variants(&self) -> Result<String, TemplateError> {
        let variants: Vec<usize> = (0..self.subjects.len())
            .filter(|&i| self.subjects[i].variant.is_some())
            .collect();
        if variants.is_empty() {
            return Ok(String::new());
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
        let rows = variants.into_iter().filter_map(|i| {
            let base = self.index(self.subjects[i].name(), Lang::Rust)?;
            Some(self.variant_row(i, base))
        });
        let values = vec![("labels", labels.join(", ")), ("rows", lines(rows))];
        template::fill(VARIANTS_NAME, VARIANTS, &values)
    }

    /// Subject `i` (a `--variant` build) beside `base`, the same function as the profile
    /// builds it.
    fn variant_row(&self, i: usize, base: usize) -> String {
        let size = |s: &Subject| {
            let label = s.label();
            self.sizes
                .iter()
                .find(|(l, _)| *l == label)
                .map_or(0.0, |(_, b)| *b as f64 / 1e6)
        };
        let cold = |i| {
            self.cold_of(i, Transport::Https)
                .map_or(f64::NAN, |c| c.median)
        };
        let (s, b) = (&self.subjects[i], &self.subjects[base]);
        format!(
            "| {} | {:.2} MB | {:.1} ms | {:.1} MB | {:.3} ms | {:.2} MB, {:.1} ms, {:.1} MB, {:.3} ms |",
            s.label(),
            size(s),
            cold(i),
            self.long[i].peak_mb.median,
            self.long[i].cpu_ms_per_invocation.median,
            size(b),
            cold(base),
            self.long[base].peak_mb.median,
            self.long[base].cpu_ms_per_invocation.median
        )
    }

    /// Section 1: every cold-start series.
    fn cold_values(&self) -> Values {
        let bundle = match &self.system_bundle {
            Some(path) => format!("the system bundle `{}`", path.display()),
            None => "no system bundle (none was found)".to_owned(),
        };
        let rows = self.cold.iter().map(|c| {
            let s = &c.summary;
            format!(
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
            )
        });
        vec![
            ("naive_floor_bundle", bundle),
            ("runs", self.runs.to_string()),
            ("cold_rows", lines(rows)),
        ]
    }

    /// Section 2: peak memory and warm CPU of every subject, binary sizes.
    fn memory_and_size_values(&self) -> Values {
        let long_rows = self.subjects.iter().zip(&self.long).map(|(s, l)| {
            format!(
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
            )
        });
        let size_rows = self
            .sizes
            .iter()
            .map(|(name, bytes)| format!("| {name} | {bytes} | {:.2} |", *bytes as f64 / 1e6));
        let arm64_rows = self.arm64.rows.iter().map(|(name, id, size)| match size {
            Ok(bytes) => format!(
                "| {name} | `{id}/bootstrap` | {bytes} | {:.2} |",
                *bytes as f64 / 1e6
            ),
            Err(e) => format!("| {name} | `{id}/bootstrap` | not measured: {e} | |"),
        });
        vec![
            ("rss_runs", self.rss_runs.to_string()),
            ("events", self.events.to_string()),
            ("long_rows", lines(long_rows)),
            ("size_rows", lines(size_rows)),
            ("arm64_rows", lines(arm64_rows)),
        ]
    }

    /// Section 3: criterion's figures, per event.
    fn per_event_rows(&self) -> String {
        lines(self.per_event.rows.iter().map(|(group, label, per, result)| {
            let logs = if *group == "per_event" {
                "off"
            } else {
                "JSON, INFO"
            };
            let Ok(r) = result else {
                let e = result.as_ref().err().map_or("", String::as_str);
                return format!("| {label} | {logs} | not measured ({e}) | | |");
            };
            let us = |ns: f64| ns / 1e3 / f64::from(*per);
            format!(
                "| {label} | {logs} | {:.2} µs [{:.2}–{:.2}] | {:.2}–{:.2} µs ({:.2}–{:.2}) | {} |",
                us(r.median_ns),
                us(r.ci_ns.0),
                us(r.ci_ns.1),
                us(r.samples.p10),
                us(r.samples.p90),
                us(r.samples.min),
                us(r.samples.max),
                date(r.measured)
            )
        }))
    }

    /// Section 4: the three batches and how their calls overlapped.
    fn concurrency_values(&self) -> Values {
        let c = &self.concurrency;
        let rows = [
            ("1 message (one round trip)", &c.round_trip),
            ("10 messages, 10 groups", &c.ten_groups),
            ("10 messages, 1 group", &c.one_group),
        ]
        .into_iter()
        .map(|(label, s)| {
            format!(
                "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} |",
                s.median,
                s.p10,
                s.p90,
                s.min,
                s.max,
                s.median / c.round_trip.median
            )
        });
        let order = if c.one_group_in_order {
            "each starting after the previous one ended, in batch order"
        } else {
            "**not** all one after the other in batch order"
        };
        vec![
            ("concurrency_rows", lines(rows)),
            (
                "ten_groups_min_peak_overlap",
                c.ten_groups_min_peak_overlap.to_string(),
            ),
            ("one_group_calls", c.one_group_calls.to_string()),
            ("one_group_order", order.to_owned()),
            ("calls", c.calls.to_string()),
            ("http_attempts", c.http_attempts.to_string()),
            (
                "sdk_retries",
                c.http_attempts.saturating_sub(c.calls as u64).to_string(),
            ),
        ]
    }

    /// Section 5: the backlog drain's figures.
    fn drain_values(&self) -> Values {
        let d = &self.drain;
        let p = &d.per_second;
        let over_five = format!(
            "{} message{}",
            d.over_five_receives,
            if d.over_five_receives == 1 { "" } else { "s" }
        );
        vec![
            ("drain_messages", d.messages.to_string()),
            ("drain_tps", format!("{:.0}", d.tps_limit)),
            ("drain_burst", d.burst.to_string()),
            ("drain_elapsed_s", format!("{:.2}", d.elapsed.as_secs_f64())),
            ("drain_rate", format!("{:.1}", d.rate)),
            ("drain_sustained_rate", format!("{:.1}", d.sustained_rate)),
            (
                "drain_share_pct",
                format!("{:.1}", d.sustained_rate / d.tps_limit * 100.0),
            ),
            ("per_second_median", format!("{:.0}", p.median)),
            ("per_second_p10", format!("{:.0}", p.p10)),
            ("per_second_p90", format!("{:.0}", p.p90)),
            ("per_second_min", format!("{:.0}", p.min)),
            ("per_second_max", format!("{:.0}", p.max)),
            ("per_second_n", p.n.to_string()),
            ("drain_invocations", d.invocations.to_string()),
            ("drain_calls", d.calls.to_string()),
            ("drain_http_attempts", d.http_attempts.to_string()),
            ("drain_throttled", d.throttled.to_string()),
            (
                "drain_sdk_retries",
                d.http_attempts.saturating_sub(d.calls as u64).to_string(),
            ),
            ("drain_redelivered", d.redelivered.to_string()),
            ("drain_max_receive_count", d.max_receive_count.to_string()),
            ("drain_over_five_receives", over_five),
            ("drain_dead_lettered", d.dead_lettered.to_string()),
            ("drain_redriven", d.redriven.to_string()),
            ("drain_redrive_after", d.redrive_after.to_string()),
            ("drain_users_at_end", d.users_at_end.to_string()),
        ]
    }

    /// The targets missed, those with the same cause sharing one explanation; or the line
    /// saying none was.
    fn misses(&self, misses: &[String]) -> Result<String, TemplateError> {
        if misses.is_empty() {
            return template::line(MISSES_NAME, MISSES, "none").map(str::to_owned);
        }
        let mut grouped: Vec<(Vec<&str>, &str)> = Vec::new();
        for miss in misses {
            let why = template::line(MISSES_NAME, MISSES, targets::explain(miss))?;
            match grouped.iter_mut().find(|(_, w)| *w == why) {
                Some((names, _)) => names.push(miss),
                None => grouped.push((vec![miss], why)),
            }
        }
        Ok(lines(grouped.into_iter().map(|(names, why)| {
            format!("- **{}**: {why}", names.join("; "))
        })))
    }
}

#[cfg(test)]
mod tests;
