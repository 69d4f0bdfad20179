//! Writing an invocation's metrics: one EMF object per line on stdout.
//!
//! CloudWatch Logs extracts embedded-metric-format metrics from a log event
//! that *is* the EMF object, with `_aws` among its top-level members. The
//! tracing subscriber cannot write that: its JSON lines nest every field
//! under `fields`, and a field is a scalar, never an object. So the object
//! is written here, as its own line, straight to stdout, where a
//! `provided.al2023` function's log lines go; with the Text log format and
//! with the JSON one alike, the line reaches CloudWatch Logs as written
//! (docs/ARCHITECTURE.md, "Metrics"). Its `level` is `INFO`, which Lambda's
//! JSON log format reads to file (and filter) it.
//!
//! The line is written whatever `RUST_LOG` says: metrics are not a log level's
//! business. The one dimension is the function's name, from
//! `AWS_LAMBDA_FUNCTION_NAME` (Lambda always sets it).

use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

use chime_sync_core::metrics::{Emf, Invocation};

/// Write `invocation`'s metrics to stdout, as this function's.
pub fn emit(invocation: &Invocation) {
    let name = function_name().unwrap_or(invocation.function().source);
    let now = SystemTime::now();
    emit_emf(&invocation.emf(name, now));
    if let Some(by_reason) = invocation.reason_emf(name, now) {
        emit_emf(&by_reason);
    }
}

/// Write any EMF document to stdout (what a metric outside [`Invocation`]
/// uses). A document CloudWatch would reject is not written; the reason is
/// logged instead.
pub fn emit_emf(emf: &Emf) {
    // Nothing more useful to do if stdout is gone.
    let _ = write(emf, &mut std::io::stdout().lock());
}

/// Write `emf`'s lines to `out`, in one go per line so nothing interleaves
/// with the log lines around them.
pub fn write(emf: &Emf, out: &mut impl Write) -> std::io::Result<()> {
    match emf.lines() {
        Ok(lines) => {
            for line in lines {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            out.flush()
        }
        Err(e) => {
            tracing::warn!(outcome = "metrics-dropped", error = %e, "metrics not written");
            Ok(())
        }
    }
}

/// `AWS_LAMBDA_FUNCTION_NAME`, read once.
fn function_name() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|n| !n.is_empty())
    })
    .as_deref()
}

#[cfg(test)]
mod tests {
    use chime_sync_core::handlers::post_confirmation;
    use chime_sync_core::metrics::Metric;
    use serde_json::Value;

    use super::*;

    #[test]
    fn each_document_is_one_line_of_json() {
        let mut inv = Invocation::new(post_confirmation::METRICS);
        inv.decision(Metric::Created);
        let mut out = Vec::new();
        write(
            &inv.emf("stack-PostConfirmation-1", SystemTime::now()),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(doc["Created"], 1);
        assert_eq!(doc["FunctionName"], "stack-PostConfirmation-1");
    }

    #[test]
    fn a_document_cloudwatch_would_reject_writes_nothing() {
        let mut out = Vec::new();
        let bad = Emf::new("ChimeIdentitySync", SystemTime::now()).dimension("FunctionName", "");
        write(&bad, &mut out).unwrap();
        assert!(out.is_empty());
    }
}
