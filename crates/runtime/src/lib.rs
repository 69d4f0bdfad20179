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
//! - [`deadline`]: the invocation deadline as a tokio instant, for budgets.

pub mod event;
pub mod logging;

use std::fmt::Display;

use lambda_runtime::Context;
use lambda_runtime_api_client::body::Body;
use tokio::time::Instant;

pub use event::{EventError, Incoming};
pub use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
pub use logging::init_tracing;

/// The error type Lambda shows for a start-up configuration error.
pub const CONFIG_ERROR_TYPE: &str = "Runtime.ConfigError";

/// The error a function reports for an event it cannot read:
/// `{kind}.InvalidJson` or `{kind}.InvalidEvent`, with a message that names
/// where and what was expected, never a value. Logged (at WARN, as the
/// decision it is) before it is returned.
pub fn unreadable(kind: &str, source: &str, error: &EventError) -> Diagnostic {
    tracing::warn!(source, outcome = "invalid-event", reason = error.code(), error = %error);
    diagnostic(kind, error.code(), error)
}

/// The invocation's deadline as a tokio instant.
pub fn deadline(context: &Context) -> Instant {
    chime_sync_core::handlers::deadline_from_epoch_ms(context.deadline)
}

/// An invocation error as Lambda reports it: `errorType` is `{kind}.{code}`
/// (what operators filter on), `errorMessage` the error's text (what a
/// Cognito client sees inside `UserLambdaValidationException`).
pub fn diagnostic(kind: &str, code: &str, error: impl Display) -> Diagnostic {
    Diagnostic {
        error_type: format!("{kind}.{code}"),
        error_message: error.to_string(),
    }
}

/// Report a start-up error to the Runtime API's `/init/error`, log it, and
/// hand it back for `main` to return (the process then exits non-zero).
pub async fn report_init_error<E: Display>(error: E) -> Error {
    let message = error.to_string();
    tracing::error!(outcome = "init-failed", error = %message);
    if let Err(e) = post_init_error(&message).await {
        tracing::error!(error = %e, "could not report the start-up error to the Lambda Runtime API");
    }
    message.into()
}

async fn post_init_error(message: &str) -> Result<(), Error> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set (not running inside Lambda?)")?;
    let base: http::Uri = format!("http://{api}").parse()?;
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
