//! `chime-sync-bench --profile BOOTSTRAP --events N -- PROFILER...`: one long run of a
//! bootstrap, exactly as section 2 of BENCHMARKS.md serves it (over HTTPS, the same events,
//! the same fakes), started under a profiler, e.g.
//!
//! ```sh
//! chime-sync-bench --profile post-confirmation --events 2000 -- \
//!   valgrind --tool=callgrind --callgrind-out-file=target/post-confirmation.callgrind
//! ```
//!
//! Callgrind counts instructions whatever else the machine runs, so two runs of different
//! lengths give the instructions of one warm invocation by difference (docs/PERFORMANCE.md).
//! The profiler gets SIGTERM at the end and time to write its output.

use std::path::Path;

use crate::fakes::Fakes;
use crate::procs::{self, BOOTSTRAPS, Subject, Transport};

pub async fn run(
    name: &str,
    profiler: &[String],
    events: usize,
    root: &Path,
    bin_dir: &Path,
) -> Result<(), String> {
    let bootstrap = BOOTSTRAPS.iter().find(|b| b.name == name).ok_or_else(|| {
        let names: Vec<&str> = BOOTSTRAPS.iter().map(|b| b.name).collect();
        format!("--profile {name}: not one of {}", names.join(", "))
    })?;
    let fakes = Fakes::start(&crate::log_dir(bin_dir)?).await?;
    let subject =
        Subject::rust(bootstrap, &crate::bin_dir_of(bootstrap, root, bin_dir)).under(profiler)?;
    let run = procs::long_run(
        &subject,
        &fakes.endpoints,
        Transport::Https,
        10_000_000,
        events,
    )
    .await?;
    let warm = (run.invocations.max(2) - 1) as f64;
    println!(
        "{name}: {} invocations; warm CPU {:.3} ms and {:.3} ms wall per invocation (under the \
         profiler); peak RSS {} KiB; log {}",
        run.invocations,
        run.warm_cpu_ns as f64 / 1e6 / warm,
        run.warm.as_secs_f64() * 1e3 / warm,
        run.peak_kib,
        subject.log_path(&fakes.endpoints).display()
    );
    fakes.shutdown().await;
    Ok(())
}
