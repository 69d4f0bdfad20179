//! Teaching the SDK's standard retry strategy about Chime's throttling.
//!
//! Checked against the sources this workspace pins (aws-runtime 1.10.2,
//! aws-smithy-runtime 1.16.2, aws-sdk-chimesdkidentity 1.119.0):
//!
//! - `aws-runtime/src/retries/classifiers.rs`: `AwsErrorCodeClassifier` treats
//!   only the codes in `THROTTLING_ERRORS` (`Throttling`, `ThrottlingException`,
//!   `TooManyRequestsException`, …) and `TRANSIENT_ERRORS` (`RequestTimeout`,
//!   `RequestTimeoutException`) as retryable. `ThrottledClientException` is in
//!   neither list.
//! - `aws-smithy-runtime/src/client/retries/classifiers.rs`:
//!   `HttpStatusCodeClassifier` retries `TRANSIENT_ERROR_STATUS_CODES` =
//!   500, 502, 503, 504 — not 429. `TransientErrorClassifier` retries timeouts,
//!   I/O errors and unparseable responses. `ModeledAsRetryableClassifier` asks
//!   the error's `retryable_error_kind()`.
//! - `aws-sdk-chimesdkidentity/src/operation/*.rs`: every operation error's
//!   `retryable_error_kind()` returns `None` (Chime's model marks no error
//!   `@retryable`), and `config.rs` registers the status-code classifier above.
//!
//! So a 503 `ServiceUnavailableException` is retried out of the box, but a 429
//! `ThrottledClientException` — the error Chime answers when a TPS quota is hit —
//! fails on the first attempt. [`ChimeThrottlingClassifier`] closes that gap.
//! Backoff, jitter and the attempt limit stay the SDK's own (standard mode:
//! `rand(0..1) × initial_backoff × 2^(attempt-1)`, capped at `max_backoff`).
//!
//! [`ThrottledRetryCounter`] counts those retries for the `ThrottledRetries`
//! metric. The retries happen inside one SDK call, out of the handlers' sight,
//! so an interceptor sees them: after each attempt it notes whether the answer
//! was throttling (by the classifier's own `verdict`), and when the SDK
//! starts another attempt of the same operation after such an answer, that is
//! one throttled attempt retried. A throttled last attempt (attempts or budget
//! used up) is not a retry and is not counted: the call fails `Throttled`.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use chime_sync_core::metrics::ChimeCalls;

/// The response header restJson1 services name their error in; the SDK reads
/// the error code from it (everything before the first `:`).
pub(crate) const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// Classifies Chime's throttling (HTTP 429 or `ThrottledClientException`) as a
/// throttling error, and `ServiceFailureException` / `ServiceUnavailableException`
/// as transient, so the standard retry strategy retries them with backoff.
///
/// It looks at the raw HTTP response rather than the typed operation error so
/// that one classifier, registered once on the client config, covers every
/// operation. It runs after the SDK's own classifiers and only ever *adds* a
/// retry verdict: it never forbids one.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChimeThrottlingClassifier;

impl ChimeThrottlingClassifier {
    pub fn new() -> Self {
        Self
    }
}

/// What a failed response means for retrying, from its status and error code.
fn verdict(status: u16, error_type: Option<&str>) -> RetryAction {
    let code = error_type.map(|t| t.split(':').next().unwrap_or(t).trim());
    match (status, code) {
        (429, _) | (_, Some("ThrottledClientException")) => RetryAction::throttling_error(),
        (500 | 503, _) | (_, Some("ServiceFailureException" | "ServiceUnavailableException")) => {
            RetryAction::transient_error()
        }
        _ => RetryAction::NoActionIndicated,
    }
}

impl ClassifyRetry for ChimeThrottlingClassifier {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        // Only failed attempts are candidates; a successful one never is.
        if !matches!(ctx.output_or_error(), Some(Err(_))) {
            return RetryAction::NoActionIndicated;
        }
        let Some(response) = ctx.response() else {
            // No response (timeouts, I/O): TransientErrorClassifier decides.
            return RetryAction::NoActionIndicated;
        };
        verdict(
            response.status().as_u16(),
            response.headers().get(ERROR_TYPE_HEADER),
        )
    }

    fn name(&self) -> &'static str {
        "Chime throttling and service failures"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // Last word among the defaults, so our verdict on Chime's own codes stands.
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Counts throttled attempts the SDK retries into a [`ChimeCalls`].
#[derive(Debug, Clone)]
pub struct ThrottledRetryCounter {
    calls: Arc<ChimeCalls>,
}

impl ThrottledRetryCounter {
    pub fn new(calls: Arc<ChimeCalls>) -> Self {
        Self { calls }
    }
}

/// Whether the operation's last attempt was answered with throttling; kept in
/// the operation's own config bag, so concurrent calls never mix.
#[derive(Debug, Clone, Copy)]
struct LastAttemptThrottled(bool);

impl Storable for LastAttemptThrottled {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ThrottledRetryCounter {
    fn name(&self) -> &'static str {
        "Chime throttled-retry counter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<LastAttemptThrottled>()
            .is_some_and(|last| last.0)
        {
            self.calls.throttled_retry();
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let throttled = matches!(context.output_or_error(), Some(Err(_)))
            && context.response().is_some_and(|r| {
                verdict(r.status().as_u16(), r.headers().get(ERROR_TYPE_HEADER))
                    == RetryAction::throttling_error()
            });
        cfg.interceptor_state()
            .store_put(LastAttemptThrottled(throttled));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::interceptors::context::{Error, Input, Output};
    use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::retry::ErrorKind;

    use super::*;

    #[derive(Debug)]
    struct Failed;
    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failed")
        }
    }
    impl std::error::Error for Failed {}

    fn ctx(status: u16, error_type: Option<&str>, failed: bool) -> InterceptorContext {
        let mut ctx = InterceptorContext::new(Input::erase(()));
        let mut response =
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        if let Some(t) = error_type {
            response
                .headers_mut()
                .insert(ERROR_TYPE_HEADER, t.to_owned());
        }
        ctx.set_response(response);
        ctx.set_output_or_error(if failed {
            Err(OrchestratorError::operation(Error::erase(Failed)))
        } else {
            Ok(Output::erase(()))
        });
        ctx
    }

    fn classify(status: u16, error_type: Option<&str>) -> RetryAction {
        ChimeThrottlingClassifier.classify_retry(&ctx(status, error_type, true))
    }

    #[test]
    fn throttled_client_is_a_throttling_error() {
        let throttling = RetryAction::retryable_error(ErrorKind::ThrottlingError);
        assert_eq!(classify(429, Some("ThrottledClientException")), throttling);
        assert_eq!(classify(429, None), throttling);
        // The header may carry a namespace suffix after a colon.
        assert_eq!(
            classify(
                429,
                Some("ThrottledClientException:http://internal.amazon.com/")
            ),
            throttling
        );
        assert_eq!(classify(400, Some("ThrottledClientException")), throttling);
    }

    #[test]
    fn service_failures_are_transient() {
        let transient = RetryAction::retryable_error(ErrorKind::TransientError);
        assert_eq!(classify(500, Some("ServiceFailureException")), transient);
        assert_eq!(
            classify(503, Some("ServiceUnavailableException")),
            transient
        );
        assert_eq!(classify(503, None), transient);
    }

    #[test]
    fn client_errors_are_left_alone() {
        for (status, code) in [
            (400, "BadRequestException"),
            (400, "ResourceLimitExceededException"),
            (401, "UnauthorizedClientException"),
            (403, "ForbiddenException"),
            (404, "NotFoundException"),
            (409, "ConflictException"),
        ] {
            assert_eq!(
                classify(status, Some(code)),
                RetryAction::NoActionIndicated,
                "{code}"
            );
        }
    }

    #[test]
    fn successes_and_missing_responses_are_left_alone() {
        let ok = ctx(429, Some("ThrottledClientException"), false);
        assert_eq!(
            ChimeThrottlingClassifier.classify_retry(&ok),
            RetryAction::NoActionIndicated
        );
        let mut no_response = InterceptorContext::new(Input::erase(()));
        no_response.set_output_or_error(Err(OrchestratorError::operation(Error::erase(Failed))));
        assert_eq!(
            ChimeThrottlingClassifier.classify_retry(&no_response),
            RetryAction::NoActionIndicated
        );
    }

    #[test]
    fn runs_after_the_sdk_classifiers() {
        assert!(
            ChimeThrottlingClassifier.priority()
                > RetryClassifierPriority::transient_error_classifier()
        );
    }
}
