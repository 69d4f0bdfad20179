//! [`CognitoUserPool`]: the `UserPool` port over `aws-sdk-cognitoidentityprovider`
//! (`ListUsers` only).
//!
//! The client is built from the shared `SdkConfig` like the others, in the
//! pool's Region (the prefix of its id), and maps every SDK error into a
//! [`UserPoolError`] in one place, [`map_error`]:
//!
//! | Cognito's answer | `UserPoolError` | class |
//! |---|---|---|
//! | `TooManyRequestsException`, 429 | `Throttled` (the SDK retries it first) | retryable |
//! | `InternalErrorException`, 5xx, timeouts, I/O | `Unavailable`, `Timeout`, `Transport` | retryable |
//! | `NotAuthorizedException`, `AccessDeniedException`, AWS's authentication errors, 401/403 | `AccessDenied` | permanent for the run |
//! | `ResourceNotFoundException` | `PoolNotFound` | permanent |
//! | `InvalidParameterException`, `OperationNotEnabledException`, other 4xx | `Rejected` | permanent |

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::retry::RetryConfig;
use aws_sdk_cognitoidentityprovider::config::timeout::TimeoutConfig;
use aws_sdk_cognitoidentityprovider::config::{Builder as ClientConfigBuilder, Region};
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::UserType;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chime_sync_core::user_pool::PAGE_LIMIT;
use chime_sync_core::{PoolPage, PoolUser, UserPool, UserPoolError};
use serde_json::{Map, Value};
use thiserror::Error;

/// A user pool id, `REGION_ID` (`us-east-1_AbCdEf123`), checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPoolId(String);

/// A user pool id that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a user pool id (expected REGION_ID, e.g. us-east-1_AbCdEf123)")]
pub struct InvalidUserPoolId(pub String);

impl UserPoolId {
    /// Cognito's pattern `[\w-]+_[0-9a-zA-Z]+` (at most 55 characters), with a
    /// Region before the `_`.
    pub fn parse(raw: &str) -> Result<Self, InvalidUserPoolId> {
        let raw = raw.trim();
        let invalid = || InvalidUserPoolId(raw.to_owned());
        let (region, id) = raw.split_once('_').ok_or_else(invalid)?;
        let region_ok = !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && region.contains('-');
        let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
        if raw.len() > 55 || !region_ok || !id_ok {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pool's Region: the part before the `_`.
    pub fn region(&self) -> &str {
        self.0.split('_').next().unwrap_or_default()
    }
}

impl std::fmt::Display for UserPoolId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the Cognito client is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoConfig {
    pub user_pool_id: UserPoolId,
    /// An explicit endpoint (the CLI, tests). `None` keeps what the
    /// `SdkConfig` resolved (`AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`,
    /// `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Attempts per call, the first included (the SDK's standard retry, which
    /// counts `TooManyRequestsException` as throttling).
    pub max_attempts: u32,
    /// One call, retries included.
    pub operation_timeout: Duration,
}

impl CognitoConfig {
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(20);

    pub fn new(user_pool_id: UserPoolId) -> Self {
        Self {
            user_pool_id,
            endpoint_url: None,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
        }
    }
}

/// One Cognito user pool, read with `ListUsers`.
#[derive(Debug, Clone)]
pub struct CognitoUserPool {
    client: Client,
    pool: UserPoolId,
}

impl CognitoUserPool {
    pub fn new(sdk_config: &SdkConfig, cfg: CognitoConfig) -> Self {
        let mut builder = ClientConfigBuilder::from(sdk_config)
            .region(Region::new(cfg.user_pool_id.region().to_owned()))
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(cfg.operation_timeout)
                    .build(),
            );
        if let Some(url) = &cfg.endpoint_url {
            builder = builder.endpoint_url(url.clone());
        }
        // The workspace's one HTTPS stack, also for an SdkConfig assembled by hand.
        builder.set_http_client(crate::http::http_client_for(sdk_config));
        Self {
            client: Client::from_conf(builder.build()),
            pool: cfg.user_pool_id,
        }
    }

    pub fn user_pool_id(&self) -> &UserPoolId {
        &self.pool
    }
}

impl UserPool for CognitoUserPool {
    async fn list_users(
        &self,
        filter: Option<&str>,
        token: Option<String>,
    ) -> Result<PoolPage, UserPoolError> {
        let output = self
            .client
            .list_users()
            .user_pool_id(self.pool.as_str())
            .limit(PAGE_LIMIT)
            .set_filter(filter.map(str::to_owned))
            .set_pagination_token(token)
            .send()
            .await
            .map_err(|e| map_error(&e))?;
        Ok(PoolPage {
            users: output.users().iter().map(pool_user).collect(),
            next_token: output
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }
}

fn pool_user(user: &UserType) -> PoolUser {
    let attributes: Map<String, Value> = user
        .attributes()
        .iter()
        .filter_map(|a| Some((a.name().to_owned(), Value::String(a.value()?.to_owned()))))
        .collect();
    PoolUser {
        username: user.username().unwrap_or_default().to_owned(),
        status: user
            .user_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        enabled: user.enabled(),
        attributes,
        modified: user.user_last_modified_date().map(|d| {
            let ms = d.secs().saturating_mul(1000) + i64::from(d.subsec_nanos() / 1_000_000);
            chime_sync_core::ledger::At(u64::try_from(ms).unwrap_or(0))
        }),
    }
}

/// Authentication and authorization errors AWS answers with their own types.
const DENIALS: [&str; 8] = [
    "NotAuthorizedException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
];

/// The one place an SDK error becomes a [`UserPoolError`]; see the module table.
pub(crate) fn map_error<E>(err: &SdkError<E, HttpResponse>) -> UserPoolError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = || DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) => UserPoolError::Timeout,
        SdkError::DispatchFailure(f) if f.is_timeout() => UserPoolError::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            UserPoolError::Transport(detail())
        }
        SdkError::ResponseError(r) if r.raw().status().is_server_error() => {
            UserPoolError::Unavailable(detail())
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            let why = crate::service_error_text(Some(code), status, service.err().message());
            match code {
                "TooManyRequestsException" => UserPoolError::Throttled(why),
                "InternalErrorException" => UserPoolError::Unavailable(why),
                "ResourceNotFoundException" => UserPoolError::PoolNotFound(why),
                c if DENIALS.contains(&c) => UserPoolError::AccessDenied(why),
                _ => match status {
                    429 => UserPoolError::Throttled(why),
                    401 | 403 => UserPoolError::AccessDenied(why),
                    s if s >= 500 => UserPoolError::Unavailable(why),
                    _ => UserPoolError::Rejected(why),
                },
            }
        }
        _ => UserPoolError::Transport(detail()),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::error::ErrorMetadata;
    use aws_sdk_cognitoidentityprovider::operation::list_users::ListUsersError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use chime_sync_core::ErrorClass;

    use super::*;

    fn service(status: u16, code: &str) -> UserPoolError {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        map_error(&SdkError::service_error(ListUsersError::generic(meta), raw))
    }

    #[test]
    fn every_answer_has_its_class() {
        let cases = [
            (
                400,
                "TooManyRequestsException",
                "Throttled",
                ErrorClass::Retryable,
            ),
            (
                500,
                "InternalErrorException",
                "Unavailable",
                ErrorClass::Retryable,
            ),
            (503, "SomethingNew", "Unavailable", ErrorClass::Retryable),
            (429, "SomethingNew", "Throttled", ErrorClass::Retryable),
            (
                400,
                "NotAuthorizedException",
                "AccessDenied",
                ErrorClass::Permanent,
            ),
            (
                400,
                "AccessDeniedException",
                "AccessDenied",
                ErrorClass::Permanent,
            ),
            (403, "SomethingNew", "AccessDenied", ErrorClass::Permanent),
            (
                400,
                "ResourceNotFoundException",
                "PoolNotFound",
                ErrorClass::Permanent,
            ),
            (
                400,
                "InvalidParameterException",
                "Rejected",
                ErrorClass::Permanent,
            ),
        ];
        for (status, code, variant, class) in cases {
            let e = service(status, code);
            assert!(format!("{e:?}").starts_with(variant), "{code}: {e:?}");
            assert_eq!(e.class(), class, "{code}");
        }
    }

    #[test]
    fn pool_ids_are_checked_and_name_their_region() {
        let id = UserPoolId::parse(" eu-central-1_AbCd123 ").unwrap();
        assert_eq!(
            (id.as_str(), id.region()),
            ("eu-central-1_AbCd123", "eu-central-1")
        );
        for bad in [
            "",
            "pool",
            "us-east-1_",
            "_Ab",
            "US-EAST-1_Ab",
            "us-east-1_Ab-c",
            "useast1_Ab",
        ] {
            assert!(UserPoolId::parse(bad).is_err(), "{bad}");
        }
    }
}
