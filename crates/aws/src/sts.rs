//! [`StsCredentialIssuer`]: the `CredentialIssuer` port over `aws-sdk-sts`.
//!
//! Built from the shared `SdkConfig` like every other client, so it gets the
//! same HTTPS client, credentials (the function's role) and endpoint
//! overrides (`AWS_ENDPOINT_URL_STS` for a local STS in tests).
//!
//! Retries are the SDK's standard ones: STS's `Throttling` code is in
//! aws-runtime's `THROTTLING_ERRORS` and 5xx are transient, so both are
//! retried with backoff within the operation timeout. What still fails is
//! mapped once, in [`map_error`], into the domain's [`IssueError`].

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_sts::Client;
use aws_sdk_sts::config::Builder as ClientConfigBuilder;
use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chime_sync_core::credentials::{
    AssumeRoleRequest, CredentialIssuer, IssueError, TemporaryCredentials,
};

/// STS `AssumeRole` on one role (the chat user role).
#[derive(Debug, Clone)]
pub struct StsCredentialIssuer {
    client: Client,
    role_arn: String,
}

impl StsCredentialIssuer {
    /// Attempts per call, the first included.
    pub const MAX_ATTEMPTS: u32 = 3;

    /// A client for `role_arn`; each call, retries included, ends within
    /// `operation_timeout`.
    pub fn new(
        sdk_config: &SdkConfig,
        role_arn: impl Into<String>,
        operation_timeout: Duration,
    ) -> Self {
        let mut builder = ClientConfigBuilder::from(sdk_config);
        builder.set_http_client(crate::http::http_client_for(sdk_config));
        let config = builder
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(Self::MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(100)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(operation_timeout)
                    .build(),
            )
            .build();
        Self::from_client(Client::from_conf(config), role_arn)
    }

    /// Wrap an already configured client (tests).
    pub fn from_client(client: Client, role_arn: impl Into<String>) -> Self {
        Self {
            client,
            role_arn: role_arn.into(),
        }
    }
}

impl CredentialIssuer for StsCredentialIssuer {
    async fn assume_role(
        &self,
        request: &AssumeRoleRequest,
    ) -> Result<TemporaryCredentials, IssueError> {
        let mut call = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&request.role_session_name)
            .source_identity(&request.source_identity)
            .duration_seconds(i32::try_from(request.duration.as_secs()).unwrap_or(i32::MAX));
        for (key, value) in &request.tags {
            let tag = Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| IssueError::Rejected(format!("session tag {key}: {e}")))?;
            call = call.tags(tag);
        }
        let output = call.send().await.map_err(|e| map_error(&e))?;
        let credentials = output
            .credentials()
            .ok_or_else(|| IssueError::Unavailable("AssumeRole answered no credentials".into()))?;
        Ok(TemporaryCredentials {
            access_key_id: credentials.access_key_id().to_owned(),
            secret_access_key: credentials.secret_access_key().to_owned(),
            session_token: credentials.session_token().to_owned(),
            expiration: SystemTime::try_from(*credentials.expiration()).map_err(|_| {
                IssueError::Unavailable("AssumeRole answered an unreadable expiration".into())
            })?,
        })
    }
}

/// The one place an STS error becomes an [`IssueError`].
///
/// - `Throttling`, `ThrottlingException`, `RequestLimitExceeded`, 429 → `Throttled`
/// - 5xx, timeouts, lost connections, unreadable responses → `Unavailable`
/// - `AccessDenied`, 403, and a request that could not be signed (no
///   credentials) → `Denied`: the function's role may not assume the chat
///   role with tags, which only a deployment fixes
/// - anything else (`RegionDisabledException`, `ValidationError`, ...) → `Rejected`
pub(crate) fn map_error<E>(err: &SdkError<E, HttpResponse>) -> IssueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = || DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            IssueError::Unavailable(detail())
        }
        SdkError::ConstructionFailure(_) => {
            IssueError::Denied(format!("could not build or sign the request: {}", detail()))
        }
        SdkError::ResponseError(_) => IssueError::Unavailable(detail()),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code();
            let message = service.err().message().unwrap_or("");
            let why = format!(
                "{} (HTTP {status}): {message}",
                code.unwrap_or("unknown error")
            );
            match (code, status) {
                (Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded"), _)
                | (_, 429) => IssueError::Throttled(why),
                (Some("AccessDenied" | "AccessDeniedException"), _) | (_, 401 | 403) => {
                    IssueError::Denied(why)
                }
                (_, s) if s >= 500 => IssueError::Unavailable(why),
                _ => IssueError::Rejected(why),
            }
        }
        // SdkError is non-exhaustive; an unknown kind is treated as transient.
        _ => IssueError::Unavailable(detail()),
    }
}
