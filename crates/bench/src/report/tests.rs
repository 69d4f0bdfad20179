//! The report rendered from fixed inputs, compared byte for byte with the files under
//! `crates/bench/testdata/` (rendered before the prose moved into the template). Set
//! `BLESS_REPORT=1` to rewrite them after an intended change of the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;
use crate::inproc::{Concurrency, Drain};

const ROOT: &str = "/work/checkout";

fn summary(median: f64) -> Summary {
    Summary {
        n: 20,
        min: median * 0.8,
        p10: median * 0.9,
        median,
        p90: median * 1.1,
        max: median * 1.25,
    }
}

fn machine() -> Machine {
    Machine {
        nproc: 2,
        cpu: "Example CPU @ 2.10GHz".to_owned(),
        memory: "7.8 GiB".to_owned(),
        kernel: "6.1.0-example".to_owned(),
        load_before: "0.10 0.20 0.30".to_owned(),
        load_after: "0.40 0.50 0.60".to_owned(),
        rustc: "rustc 1.95.0 (example)".to_owned(),
        node: "v20.0.0".to_owned(),
        ric: "3.3.0".to_owned(),
        js_chime: "3.600.0".to_owned(),
        js_sqs: "3.601.0".to_owned(),
        rust_chime: "1.119.0".to_owned(),
        rust_lambda: "1.5.0".to_owned(),
        profile: vec![
            "opt-level = \"z\"".to_owned(),
            "lto = true".to_owned(),
            "panic = \"unwind\"".to_owned(),
        ],
        sources: "commit abc1234 with 2 tracked files changed in the work tree".to_owned(),
    }
}

fn subjects(variants: bool) -> Vec<Subject> {
    let root = Path::new(ROOT);
    let mut subjects: Vec<Subject> = BOOTSTRAPS
        .iter()
        .map(|b| {
            let dir = if b.own_workspace {
                root.join("target/bare-trigger/release")
            } else {
                root.join("target/release")
            };
            Subject::rust(b, &dir)
        })
        .collect();
    subjects.extend(
        BOOTSTRAPS
            .iter()
            .filter(|b| b.node)
            .map(|b| Subject::node(b, Path::new("/usr/bin/node"), &root.join("bench/node"))),
    );
    if variants {
        for b in Bootstrap::by_role(Role::Function) {
            let dir = root.join("target/variant-opts/release");
            subjects.push(Subject::rust_variant(b, "opt-level=s", &dir));
        }
    }
    subjects
}

/// Cold-start median in ms by label; `missed` makes some of them miss their targets.
fn cold_ms(s: &Subject, missed: bool) -> f64 {
    let base = match (s.name(), s.lang) {
        ("bench-bare-trigger", _) => 100.0,
        ("bench-no-sdk-trigger", _) => 25.0,
        ("pre-signup", _) => 9.5,
        ("post-confirmation", Lang::Rust) => 30.0,
        ("post-confirmation", Lang::Node) => 520.0,
        ("idp-sync", Lang::Rust) => 31.25,
        ("idp-sync", Lang::Node) => {
            if missed {
                300.0
            } else {
                450.0
            }
        }
        ("credential-exchange", _) => {
            if missed {
                40.5
            } else {
                33.0
            }
        }
        _ => 50.0,
    };
    if s.variant.is_some() {
        base * 0.9
    } else {
        base
    }
}

fn cold(subjects: &[Subject], missed: bool) -> Vec<ColdRow> {
    let mut rows = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let ms = cold_ms(s, missed);
        rows.push(ColdRow {
            subject: i,
            transport: Transport::Https,
            summary: summary(ms),
            cpu: summary(ms / 3.0),
        });
        if s.variant.is_none() && s.bootstrap.plain_http_too() {
            rows.push(ColdRow {
                subject: i,
                transport: Transport::Http,
                summary: summary(ms * 0.75),
                cpu: summary(ms / 4.0),
            });
        }
    }
    rows
}

fn long(subjects: &[Subject], missed: bool) -> Vec<LongRunRow> {
    subjects
        .iter()
        .map(|s| {
            let (peak, cpu) = match (s.name(), s.lang) {
                (_, Lang::Node) => (62.5, 1.75),
                ("bench-no-sdk-trigger", _) => (4.25, 0.1),
                ("post-confirmation", _) => (5.5, if missed { 0.15 } else { 0.11 }),
                ("idp-sync", _) => (if missed { 8.25 } else { 6.75 }, 0.9),
                _ => (5.0, 0.3),
            };
            LongRunRow {
                peak_mb: summary(peak / 1.25),
                end_rss_mb: summary(peak * 0.75),
                end_anon_mb: summary(peak * 0.25),
                end_file_mb: summary(peak * 0.5),
                warm_ms_per_invocation: summary(cpu * 1.5),
                cpu_ms_per_invocation: summary(cpu),
                invocations: 1000,
            }
        })
        .collect()
}

fn sizes(subjects: &[Subject], missed: bool) -> Vec<(String, u64)> {
    subjects
        .iter()
        .filter(|s| s.lang == Lang::Rust)
        .map(|s| {
            let bytes = match s.name() {
                "pre-signup" => 1_234_567,
                "idp-sync" if missed => 8_123_456,
                "bench-bare-trigger" => 9_876_543,
                _ => 4_567_890,
            };
            let bytes = if s.variant.is_some() {
                bytes - 100_000
            } else {
                bytes
            };
            (s.label(), bytes)
        })
        .collect()
}

fn arm64(missed: bool) -> Arm64 {
    let rows = BOOTSTRAPS
        .iter()
        .filter_map(|b| Some((b.name, b.sam_function?)))
        .map(|(name, id)| {
            let size = match name {
                "pre-signup" if missed => Ok(1_300_000),
                "pre-signup" => Ok(1_200_000),
                "idp-sync" if missed => Err(format!(
                    "{ROOT}/.aws-sam/build/{id}/bootstrap: No such file or directory (os error 2)"
                )),
                _ => Ok(4_000_000),
            };
            (name, id, size)
        })
        .collect();
    Arm64 {
        dir: PathBuf::from(ROOT).join(".aws-sam/build"),
        rows,
    }
}

fn per_event(missed: bool) -> PerEvent {
    let measured = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let mut rows = Vec::new();
    for (g, group) in ["per_event", "per_event_json_logs"].into_iter().enumerate() {
        for (i, (bench, label, per)) in PER_EVENT_BENCHES.into_iter().enumerate() {
            let ns = 2_000.0 * f64::from(per) * (1.0 + i as f64 / 4.0) * (1.0 + g as f64);
            let ns = if missed && bench == "credential_exchange" {
                ns * 80.0
            } else {
                ns
            };
            let result = if missed && g == 1 && bench == "token_validate" {
                Err(
                    "target/criterion/per_event_json_logs/token_validate/new/estimates.json: \
                     No such file or directory (os error 2)"
                        .to_owned(),
                )
            } else {
                Ok(BenchResult {
                    median_ns: ns,
                    ci_ns: (ns * 0.97, ns * 1.04),
                    samples: summary(ns),
                    measured,
                })
            };
            rows.push((group, label, per, result));
        }
    }
    PerEvent { rows }
}

fn concurrency(missed: bool) -> Concurrency {
    Concurrency {
        latency_ms: 50,
        round_trip: summary(101.5),
        ten_groups: summary(if missed { 180.0 } else { 120.5 }),
        ten_groups_min_peak_overlap: if missed { 3 } else { 10 },
        one_group: summary(1010.0),
        one_group_in_order: !missed,
        one_group_calls: 20,
        calls: 1240,
        http_attempts: 1241,
    }
}

fn drain(missed: bool) -> Drain {
    Drain {
        messages: 3000,
        tps_limit: 100.0,
        burst: 100,
        elapsed: Duration::from_millis(31_250),
        rate: 96.0,
        sustained_rate: if missed { 85.25 } else { 92.8 },
        per_second: summary(95.0),
        invocations: 340,
        redelivered: if missed { 12 } else { 0 },
        max_receive_count: if missed { 7 } else { 1 },
        dead_lettered: usize::from(missed),
        redrive_after: 5,
        redriven: if missed { 2 } else { 0 },
        over_five_receives: if missed { 1 } else { 0 },
        calls: 3050,
        http_attempts: 3400,
        throttled: 350,
        users_at_end: 3000,
    }
}

fn report(missed: bool) -> Report {
    let subjects = subjects(missed);
    Report {
        machine: machine(),
        generated: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_515_200),
        total: Duration::from_millis(3_012_400),
        runs: 20,
        rss_runs: 10,
        events: 1000,
        cold: cold(&subjects, missed),
        long: long(&subjects, missed),
        sizes: sizes(&subjects, missed),
        arm64: arm64(missed),
        system_bundle: missed.then(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
        per_event: per_event(missed),
        concurrency: concurrency(missed),
        drain: drain(missed),
        root: PathBuf::from(ROOT),
        subjects,
    }
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn assert_golden(name: &str, rendered: &str) {
    let path = golden_path(name);
    if std::env::var_os("BLESS_REPORT").is_some() {
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap();
    if rendered != golden {
        let line = rendered
            .lines()
            .zip(golden.lines())
            .position(|(a, b)| a != b)
            .map_or("the length".to_owned(), |i| format!("line {}", i + 1));
        panic!(
            "the report differs from {} at {line}:\n--- rendered\n{rendered}",
            path.display()
        );
    }
}

#[test]
fn every_target_met_renders_as_the_golden_file() {
    assert_golden("report-all-met.md", &report(false).render().unwrap());
}

#[test]
fn misses_variants_and_missing_measurements_render_as_the_golden_file() {
    assert_golden("report-misses.md", &report(true).render().unwrap());
}
