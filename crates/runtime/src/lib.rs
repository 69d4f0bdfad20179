//! What every Lambda entrypoint of chime-identity-sync shares, so that each
//! `main.rs` is only configuration, clients and `lambda_runtime::run`.
//!
//! - [`init_tracing`]: `lambda_runtime`'s subscriber settings (JSON lines
//!   when `AWS_LAMBDA_LOG_FORMAT=JSON`, which the SAM template sets;
//!   `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`), with TRACE kept to our own crates
//!   because other crates log raw events and request bodies there
//!   ([`logging`]).
//! - [`Incoming`]: the payload type of every function, read so that a
//!   malformed event is answered in our own error format, by path, without
//!   its values ([`event`]).
//! - [`report_init_error`]: `lambda_runtime` reports handler errors but not a
//!   configuration error found before `run`; without a report, Lambda only
//!   sees a crashed process. Posting to `/runtime/init/error` makes the
//!   console and the caller show our message (`Runtime.ConfigError`).
//! - [`deadline`]: the invocation deadline as a tokio instant, for budgets;
//!   none when the value cannot be a deadline (a local emulator's).
//! - [`require_lambda`]: outside Lambda, exit 2 with one line saying how to
//!   run the binary locally, instead of `lambda_runtime`'s panic.
//! - [`run_bootstrap`]: the async runtime every `main` runs on (one thread).
//! - [`start`] and [`init_step`]: the start-up every `main` shares
//!   (`require_lambda`, logging, configuration, clients), each failure
//!   reported once and turned into the exit status.
//! - [`exit_code`]: the end of `main`, with any error logged once.
//! - [`emit`]: an invocation's metrics, one embedded-metric-format object
//!   per line on stdout, where CloudWatch extracts them ([`metrics`]).

mod deadline;
mod environment;
pub mod math;

pub mod event;
pub mod logging;
pub mod metrics;

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use chime_sync_core::error::ErrorCode;
use chime_sync_core::metrics::{FunctionMetrics, Invocation, Metric};
use lambda_runtime_api_client::body::Body;

pub use deadline::deadline;
pub use environment::{NotInLambda, OUTSIDE_LAMBDA_EXIT, require_lambda};
pub use event::{EventError, Incoming};
pub use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
pub use logging::init_tracing;
pub use metrics::emit;

/// The error type Lambda shows for a start-up configuration error.
pub const CONFIG_ERROR_TYPE: &str = "Runtime.ConfigError";

/// The error a function reports for an event it cannot read:
/// `{kind}.InvalidJson` or `{kind}.InvalidEvent`, with a message that names
/// where and what was expected, never a value. Logged (at WARN, as the
/// decision it is) and counted (`InvalidEvent`) before it is returned.
pub fn unreadable(function: FunctionMetrics, error: &EventError) -> InvocationError {
    let source = function.source;
    tracing::warn!(source, outcome = "invalid-event", reason = error.code(), error = %error);
    emit(Invocation::new(function).decision(Metric::InvalidEvent));
    InvocationError::new(function, error)
}

/// An invocation's error on its way to Lambda: `errorType` is
/// `{error_kind}.{code}` (what operators filter on), `errorMessage` the
/// error's text (what a Cognito client sees inside
/// `UserLambdaValidationException`). Handlers answer
/// `Result<_, InvocationError>`; the one `From` below is how every function's
/// errors become lambda_runtime's `Diagnostic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationError {
    error_type: String,
    error_message: String,
}

impl InvocationError {
    pub fn new(function: FunctionMetrics, error: &impl ErrorCode) -> Self {
        Self {
            error_type: format!("{}.{}", function.error_kind, error.code()),
            error_message: error.to_string(),
        }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Diagnostic {
            error_type: error.error_type,
            error_message: error.error_message,
        }
    }
}

/// Run a bootstrap's `serve` (start-up, then `run`) to its end and return the
/// exit status it settled on: `Ok` when `run` ended, `Err` when start-up failed
/// (already reported).
///
/// One thread: a Lambda sandbox serves one invocation at a time, and the
/// concurrent calls of an invocation (a batch's Chime calls, a JWKS fetch) wait
/// on I/O, so a multi-thread runtime only adds start-up work (worker threads,
/// cgroup probing) and cross-thread wake-ups (docs/PERFORMANCE.md).
pub fn run_bootstrap(serve: impl Future<Output = Result<ExitCode, ExitCode>>) -> ExitCode {
    // A reference to our `pow` from code every bootstrap links, so the linker takes it from
    // this crate before it reaches glibc's libm whatever order it is given the libraries in
    // (without LTO, an archive member is only linked when it defines a missing symbol).
    std::hint::black_box(math::pow as extern "C" fn(f64, f64) -> f64);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            // Logging is not set up yet; nothing more useful to do if stderr is gone.
            let _ = writeln!(std::io::stderr(), "cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve) {
        Ok(code) | Err(code) => code,
    }
}

/// The start-up every bootstrap shares, before it builds its clients: refuse
/// to run outside Lambda ([`require_lambda`]), start logging, then read the
/// configuration. `Err` is the exit status for `main`, the error already
/// reported once ([`report_init_error`]).
pub async fn start<C, E: Display>(
    binary: &str,
    config: impl FnOnce() -> Result<C, E>,
) -> Result<C, ExitCode> {
    require_lambda(binary)?;
    init_tracing();
    init_step(config()).await
}

/// A later start-up step (an SDK configuration, a TLS set-up): its error is
/// reported as [`start`]'s are, and becomes the exit status for `main`.
pub async fn init_step<T, E: Display>(result: Result<T, E>) -> Result<T, ExitCode> {
    match result {
        Ok(value) => Ok(value),
        Err(e) => Err(report_init_error(e).await),
    }
}

/// How long the start-up error report may take. Lambda's own Runtime API
/// answers at once; an emulator that never answers (a `cargo lambda watch`
/// stuck on a bad build, a test mock) must not keep a process that cannot
/// start alive forever: the process exits with its error logged either way.
pub const INIT_ERROR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Report a start-up error to the Runtime API's `/init/error` and log it
/// (once), then hand back the failure exit status for `main` to return.
pub async fn report_init_error<E: Display>(error: E) -> ExitCode {
    let message = error.to_string();
    tracing::error!(outcome = "init-failed", error = %message);
    let posted = tokio::time::timeout(INIT_ERROR_TIMEOUT, post_init_error(&message)).await;
    let failed = match posted {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {INIT_ERROR_TIMEOUT:?}")),
    };
    if let Some(e) = failed {
        tracing::error!(error = %e, "could not report the start-up error to the Lambda Runtime API");
    }
    ExitCode::FAILURE
}

/// The exit status for what `run` returned. `run` ends only when the Runtime
/// API fails; that error is logged once (returning it from `main` would print
/// it a second time, as `Error: …` on stderr).
pub fn exit_code(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(outcome = "runtime-failed", error = %e);
            ExitCode::FAILURE
        }
    }
}

async fn post_init_error(message: &str) -> Result<(), Error> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set (not running inside Lambda?)")?;
    // Lambda sends host:port, cargo-lambda a URL with a path; read both as
    // lambda_runtime does.
    let base = environment::runtime_api_uri(&api)
        .ok_or_else(|| format!("AWS_LAMBDA_RUNTIME_API is `{api}`, not host:port"))?;
    let client = lambda_runtime_api_client::PooledClient::builder()
        .with_endpoint(base)
        .build();
    let body =
        serde_json::json!({"errorMessage": message, "errorType": CONFIG_ERROR_TYPE}).to_string();
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", CONFIG_ERROR_TYPE)
        .header("content-type", "application/json")
        .body(Body::from(body))?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("/init/error answered {}", response.status()).into());
    }
    Ok(())
}
