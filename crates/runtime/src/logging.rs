//! The functions' log subscriber: `lambda_runtime`'s defaults, with the
//! libraries that log payloads capped below TRACE.
//!
//! Like `lambda_runtime::tracing::init_default_subscriber` (checked in
//! lambda_runtime_api_client 1.1.1's `tracing.rs`), it writes JSON lines when
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, takes the level from `AWS_LAMBDA_LOG_LEVEL`,
//! else `RUST_LOG`, else INFO, and honours `RUST_LOG` directives.
//!
//! Unlike it, TRACE applies only to this workspace's own crates. At TRACE,
//! other crates log what we must never log:
//! - `lambda_runtime` (1.5.0, `layers/api_response.rs`, target
//!   `lambda_runtime::layers::api_response`) logs every raw event, emails,
//!   phone numbers and names included ("raw JSON event received from
//!   Lambda"); and when the event is not UTF-8, that very log call fails and
//!   ends the runtime loop;
//! - the AWS SDK (`aws_smithy_runtime`'s orchestrator, `aws_sigv4`'s signer)
//!   logs each request with its body: display names for Chime, the hand-off
//!   message for SQS.
//!
//! So a TRACE event or span from any other crate is dropped, whatever the
//! level or `RUST_LOG` asks for; DEBUG and above pass as configured. Our
//! crates log the sub, the source and the outcome, never personal data.

use std::str::FromStr;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The crates (log targets) allowed to log at TRACE: this workspace's.
pub const TRACE_TARGETS: [&str; 8] = [
    "chime_sync_core",
    "chime_sync_aws",
    "chime_sync_runtime",
    "pre_signup",
    "post_confirmation",
    "idp_sync",
    "credential_exchange",
    "reconcile",
];

/// Whether a span or event may be logged at all: anything up to DEBUG, and
/// TRACE only from [`TRACE_TARGETS`].
pub fn payload_safe(metadata: &Metadata<'_>) -> bool {
    *metadata.level() < Level::TRACE || is_ours(metadata.target())
}

fn is_ours(target: &str) -> bool {
    TRACE_TARGETS.iter().any(|ours| {
        target
            .strip_prefix(ours)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The level filter `RUST_LOG` asks for, read as `EnvFilter::from_env_lossy` reads it, but
/// for `target=level` and `level` directives only: the comma-separated directives that parse
/// are kept, those that do not are ignored, and `default` applies when none is left.
///
/// Why not `EnvFilter`: its span and field directives (`[span{field=value}]`) bring a regex
/// engine, a sizeable part of each binary (measured in docs/PERFORMANCE.md, "Peak RSS"), for
/// a feature nobody configures in a Lambda. `Targets` reads the same `target=level` directives.
fn directives(rust_log: Option<&str>, default: LevelFilter) -> Targets {
    let parsed: Vec<Targets> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .filter_map(|directive| Targets::from_str(directive).ok())
        .collect();
    if parsed.is_empty() {
        return Targets::new().with_default(default);
    }
    parsed.into_iter().fold(Targets::new(), |all, one| {
        let all = match one.default_level() {
            Some(level) => all.with_default(level),
            None => all,
        };
        all.with_targets(one)
    })
}

/// Install the subscriber (call once, first thing in `main`).
pub fn init_tracing() {
    init_with_writer(std::io::stdout);
}

/// [`init_tracing`] writing to `writer`.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| LevelFilter::from_str(&l).ok())
        .unwrap_or(LevelFilter::INFO);
    let filter =
        directives(std::env::var("RUST_LOG").ok().as_deref(), level).and(filter_fn(payload_safe));
    let layer = fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let layer = if json {
        layer.json().with_filter(filter).boxed()
    } else {
        layer.with_filter(filter).boxed()
    };
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives_as_env_filter_reads_them() {
        let info = LevelFilter::INFO;
        // Unset or empty: the default level for every crate.
        for unset in [None, Some(""), Some(" , ")] {
            let filter = directives(unset, info);
            assert!(filter.would_enable("hyper", &Level::INFO), "{unset:?}");
            assert!(!filter.would_enable("hyper", &Level::DEBUG), "{unset:?}");
        }
        // A bare level replaces the default.
        let filter = directives(Some("debug"), info);
        assert!(filter.would_enable("aws_smithy_runtime", &Level::DEBUG));
        // Targets only: what is not named is off, as with EnvFilter.
        let filter = directives(Some("idp_sync=debug,chime_sync_aws=trace"), info);
        assert!(filter.would_enable("idp_sync", &Level::DEBUG));
        assert!(filter.would_enable("chime_sync_aws::chime", &Level::TRACE));
        assert!(!filter.would_enable("idp_sync", &Level::TRACE));
        assert!(!filter.would_enable("hyper", &Level::ERROR));
        // Mixed, in any order, and a directive that does not parse is ignored.
        let filter = directives(Some("idp_sync=trace,hyper=loud,warn"), info);
        assert!(filter.would_enable("idp_sync", &Level::TRACE));
        assert!(filter.would_enable("hyper", &Level::WARN));
        assert!(!filter.would_enable("hyper", &Level::INFO));
        // Nothing parses: the default.
        let filter = directives(Some("idp_sync=loud,chime_sync_aws=12"), LevelFilter::WARN);
        assert!(filter.would_enable("idp_sync", &Level::WARN));
        assert!(!filter.would_enable("idp_sync", &Level::INFO));
    }

    #[test]
    fn trace_is_ours_only() {
        let allowed = [
            "chime_sync_core",
            "chime_sync_core::handlers::idp_sync",
            "chime_sync_aws::chime",
            "idp_sync",
        ];
        let capped = [
            "lambda_runtime::layers::api_response",
            "lambda_runtime",
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
            "hyper_util::client::legacy::pool",
            "chime_sync_core_extra",
            "idp_sync2",
        ];
        for target in allowed {
            assert!(is_ours(target), "{target}");
        }
        for target in capped {
            assert!(!is_ours(target), "{target}");
        }
    }
}
