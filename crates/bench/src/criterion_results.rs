//! The per-event figures of `cargo bench -p chime-sync-core --bench handlers`, read from
//! criterion's files (`target/criterion/{group}/{bench}/new/`) so BENCHMARKS.md shows
//! them without this binary building or running anything itself.

use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;

use crate::stats::Summary;

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Samples {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// One benchmark's result, in nanoseconds per iteration.
pub struct BenchResult {
    /// Criterion's median estimate and its 95 % confidence interval.
    pub median_ns: f64,
    pub ci_ns: (f64, f64),
    /// The spread of the per-iteration mean over criterion's samples.
    pub samples: Summary,
    pub measured: SystemTime,
}

/// The result of `{group}/{bench}`, or why there is none.
pub fn read(criterion_dir: &Path, group: &str, bench: &str) -> Result<BenchResult, String> {
    let dir = criterion_dir.join(group).join(bench).join("new");
    let estimates_path = dir.join("estimates.json");
    let text = std::fs::read_to_string(&estimates_path)
        .map_err(|e| format!("{}: {e}", estimates_path.display()))?;
    let estimates: Estimates =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", estimates_path.display()))?;
    let sample_path = dir.join("sample.json");
    let text = std::fs::read_to_string(&sample_path)
        .map_err(|e| format!("{}: {e}", sample_path.display()))?;
    let samples: Samples =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", sample_path.display()))?;
    let per_iter: Vec<f64> = samples
        .times
        .iter()
        .zip(&samples.iters)
        .filter(|(_, n)| **n > 0.0)
        .map(|(t, n)| t / n)
        .collect();
    let measured = std::fs::metadata(&estimates_path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(BenchResult {
        median_ns: estimates.median.point_estimate,
        ci_ns: (
            estimates.median.confidence_interval.lower_bound,
            estimates.median.confidence_interval.upper_bound,
        ),
        samples: Summary::of(&per_iter)
            .ok_or_else(|| format!("{}: no samples", sample_path.display()))?,
        measured,
    })
}
