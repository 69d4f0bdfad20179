//! [`ChimeDirectory`]: the `Directory` port over `aws-sdk-chimesdkidentity`.
//!
//! Everything that can go wrong on the wire is turned into a
//! [`DirectoryError`] by one function, [`map_error`], so the handlers decide
//! from one classification (retryable or permanent) and never see the SDK.
//!
//! ## A missing user
//! Chime's Smithy model lists no `NotFoundException` for the user operations,
//! so the SDK surfaces one as an unmodelled error whose code is still
//! `NotFoundException` (HTTP 404). [`map_error`] matches on the error *code*
//! (falling back to the HTTP status), which covers both the modelled and the
//! unmodelled case. `ForbiddenException` (403) is deliberately **not** read as
//! "missing": an IAM denial looks the same, and reading it as "already gone"
//! would make a mis-deployed function silently acknowledge every deletion. A
//! 403 stays `AccessDenied`, which is retryable, so the message waits in the
//! queue (and reaches the DLQ by redrive) where an operator sees it.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_chimesdkidentity::Client;
use aws_sdk_chimesdkidentity::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_chimesdkidentity::config::timeout::TimeoutConfig;
use aws_sdk_chimesdkidentity::config::{Builder as ClientConfigBuilder, Region};
use aws_sdk_chimesdkidentity::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_chimesdkidentity::types::AppInstanceUserSummary;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chime_sync_core::{
    AppInstanceArn, Directory, DirectoryError, DirectoryPage, DirectoryUser, UserId, UserProfile,
};
use tracing::debug;

use crate::retry::ChimeThrottlingClassifier;

/// `ListAppInstanceUsers` page size: Chime's maximum, so a reconcile makes as
/// few calls as possible.
pub const PAGE_SIZE: i32 = 50;

/// How the Chime client is built: which AppInstance, where, and how hard it
/// tries before giving up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChimeConfig {
    /// The AppInstance every user lives in; its region is the client's region.
    pub app_instance: AppInstanceArn,
    /// An explicit endpoint (the CLI's `--endpoint-url`, tests). `None` keeps
    /// whatever the `SdkConfig` resolved, which already honours
    /// `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY` and `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Attempts per call, the first included (SDK standard retry mode).
    pub max_attempts: u32,
    /// The whole call, retries and backoff included, ends within this budget.
    /// It is what keeps retries inside the Lambda (and Cognito) deadline.
    pub operation_timeout: Duration,
    /// Optional cap per attempt, so one hung attempt leaves room for another.
    pub attempt_timeout: Option<Duration>,
    /// Base of the SDK's exponential backoff with full jitter.
    pub initial_backoff: Duration,
    /// Cap of one backoff sleep.
    pub max_backoff: Duration,
}

impl ChimeConfig {
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(3000);
    /// Short, because every caller has a deadline of a few seconds: with four
    /// attempts the sleeps add up to at most 0.1 + 0.2 + 0.4 s.
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(2);

    /// Defaults for `app_instance`: 4 attempts within 3 s, 100 ms backoff base.
    pub fn new(app_instance: AppInstanceArn) -> Self {
        Self {
            app_instance,
            endpoint_url: None,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            attempt_timeout: None,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
        }
    }
}

/// The Chime SDK Identity directory of one AppInstance.
///
/// Cheap to clone (the SDK client is reference-counted); build it once per
/// Lambda sandbox, outside the handler.
#[derive(Debug, Clone)]
pub struct ChimeDirectory {
    client: Client,
    app_instance: AppInstanceArn,
}

impl ChimeDirectory {
    /// A client for `cfg.app_instance`, in the AppInstance's region whatever
    /// the environment says (Chime rejects calls for an AppInstance made in
    /// another region), with the retry classifier for Chime's 429 added.
    pub fn new(sdk_config: &SdkConfig, cfg: ChimeConfig) -> Self {
        let client = Client::from_conf(client_config(sdk_config, &cfg).build());
        Self {
            client,
            app_instance: cfg.app_instance,
        }
    }

    /// The underlying SDK client, for calls this port does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The SDK client configuration `ChimeDirectory::new` builds; separate so the
/// tests can inspect it.
fn client_config(sdk_config: &SdkConfig, cfg: &ChimeConfig) -> ClientConfigBuilder {
    let retry = RetryConfig::standard()
        .with_max_attempts(cfg.max_attempts.max(1))
        .with_initial_backoff(cfg.initial_backoff)
        .with_max_backoff(cfg.max_backoff);
    let mut timeouts = TimeoutConfig::builder().operation_timeout(cfg.operation_timeout);
    if let Some(attempt) = cfg.attempt_timeout {
        timeouts = timeouts.operation_attempt_timeout(attempt);
    }
    let mut builder = ClientConfigBuilder::from(sdk_config);
    builder.set_http_client(crate::http::http_client_for(sdk_config));
    builder = builder
        .region(Region::new(cfg.app_instance.region().to_owned()))
        .retry_config(retry)
        .timeout_config(timeouts.build())
        // Its own retry quota: the SDK's default one is process-wide and
        // shared by every client of the same service.
        .retry_partition(
            RetryPartition::custom("chime-sync")
                .token_bucket(TokenBucket::default())
                .build(),
        )
        .retry_classifier(ChimeThrottlingClassifier::new());
    if let Some(url) = &cfg.endpoint_url {
        builder = builder.endpoint_url(url.clone());
    }
    builder
}

/// Which call failed: a few error codes mean different things per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Describe,
    Update,
    Delete,
    List,
}

/// The one place an SDK error becomes a [`DirectoryError`].
///
/// - `ThrottledClientException`, 429 → `Throttled`
/// - `ServiceFailureException`, `ServiceUnavailableException`, any 5xx, an
///   unreadable response → `Unavailable`
/// - the SDK's operation or attempt timeout, a connect/read timeout → `Timeout`
/// - connection and I/O failures, a request that could not be built or
///   signed (credentials) → `Transport`
/// - `UnauthorizedClientException`, `ForbiddenException`, 401, 403 → `AccessDenied`
/// - `BadRequestException`, other 4xx → `Rejected`
/// - `ResourceLimitExceededException` → `LimitExceeded`
/// - `NotFoundException`, 404 → `NotFound` on a user (describe, update,
///   delete); on create and list it is the AppInstance that is missing, a
///   deployment fault → `AccessDenied` (retryable, with the hint to check the ARN)
/// - `ConflictException`, 409 → `AlreadyExists` on create; on update or
///   delete it is a concurrent change → `Unavailable` (retry)
pub(crate) fn map_error<E>(op: Op, err: &SdkError<E, HttpResponse>) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::TimeoutError(_) => DirectoryError::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => DirectoryError::Timeout,
        SdkError::DispatchFailure(_) => DirectoryError::Transport(detail(err)),
        SdkError::ConstructionFailure(_) => DirectoryError::Transport(format!(
            "could not build or sign the request: {}",
            detail(err)
        )),
        SdkError::ResponseError(response) if response.raw().status().is_server_error() => {
            DirectoryError::Unavailable(detail(err))
        }
        SdkError::ResponseError(_) => DirectoryError::Transport(detail(err)),
        SdkError::ServiceError(service) => from_service_error(
            op,
            service.raw().status().as_u16(),
            service.err().code(),
            service.err().message(),
        ),
        // SdkError is non-exhaustive; an unknown kind is treated as transient.
        _ => DirectoryError::Transport(detail(err)),
    }
}

fn detail<E: std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> String {
    DisplayErrorContext(err).to_string()
}

/// A modelled or unmodelled service error, by code first, then by status.
fn from_service_error(
    op: Op,
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
) -> DirectoryError {
    let why = match (code, message) {
        (Some(c), Some(m)) => format!("{c} (HTTP {status}): {m}"),
        (Some(c), None) => format!("{c} (HTTP {status})"),
        (None, Some(m)) => format!("HTTP {status}: {m}"),
        (None, None) => format!("HTTP {status}"),
    };
    let by_code = match code {
        Some("ThrottledClientException") => Some(Kind::Throttled),
        Some("ServiceFailureException" | "ServiceUnavailableException") => Some(Kind::Unavailable),
        Some("UnauthorizedClientException" | "ForbiddenException" | "AccessDeniedException") => {
            Some(Kind::Denied)
        }
        Some("BadRequestException") => Some(Kind::Rejected),
        Some("ResourceLimitExceededException") => Some(Kind::Limit),
        Some("NotFoundException") => Some(Kind::NotFound),
        Some("ConflictException") => Some(Kind::Conflict),
        _ => None,
    };
    let kind = by_code.unwrap_or(match status {
        429 => Kind::Throttled,
        401 | 403 => Kind::Denied,
        404 => Kind::NotFound,
        408 => Kind::Timeout,
        409 => Kind::Conflict,
        s if s >= 500 => Kind::Unavailable,
        _ => Kind::Rejected,
    });
    match (kind, op) {
        (Kind::Throttled, _) => DirectoryError::Throttled(why),
        (Kind::Unavailable, _) => DirectoryError::Unavailable(why),
        (Kind::Timeout, _) => DirectoryError::Timeout,
        (Kind::Denied, _) => DirectoryError::AccessDenied(why),
        (Kind::Rejected, _) => DirectoryError::Rejected(why),
        (Kind::Limit, _) => DirectoryError::LimitExceeded(why),
        (Kind::NotFound, Op::Describe | Op::Update | Op::Delete) => DirectoryError::NotFound,
        (Kind::NotFound, Op::Create | Op::List) => {
            DirectoryError::AccessDenied(format!("the AppInstance was not found: {why}"))
        }
        (Kind::Conflict, Op::Create) => DirectoryError::AlreadyExists,
        (Kind::Conflict, _) => {
            DirectoryError::Unavailable(format!("concurrent change to the user: {why}"))
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Throttled,
    Unavailable,
    Timeout,
    Denied,
    Rejected,
    Limit,
    NotFound,
    Conflict,
}

impl Directory for ChimeDirectory {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        &self.app_instance
    }

    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        let metadata = user
            .metadata
            .as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| m.as_str().to_owned());
        self.client
            .create_app_instance_user()
            .app_instance_arn(self.app_instance.as_str())
            .app_instance_user_id(user.id.as_str())
            .name(user.name.as_str())
            .set_metadata(metadata)
            // Deterministic, so every retry of this create is the same request.
            .client_request_token(user.client_request_token())
            .send()
            .await
            .map_err(|e| map_error(Op::Create, &e))?;
        debug!(sub = %user.id, "chime user created");
        Ok(())
    }

    async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
        let arn = self.app_instance.user_arn(id);
        let output = match self
            .client
            .describe_app_instance_user()
            .app_instance_user_arn(&arn)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                return match map_error(Op::Describe, &e) {
                    DirectoryError::NotFound => Ok(None),
                    other => Err(other),
                };
            }
        };
        let user = output.app_instance_user();
        Ok(Some(DirectoryUser {
            id: id.clone(),
            arn: user
                .and_then(|u| u.app_instance_user_arn())
                .map_or(arn, str::to_owned),
            name: user.and_then(|u| u.name()).unwrap_or_default().to_owned(),
            metadata: user
                .and_then(|u| u.metadata())
                .unwrap_or_default()
                .to_owned(),
        }))
    }

    async fn update(&self, id: &UserId, name: &str, metadata: &str) -> Result<(), DirectoryError> {
        self.client
            .update_app_instance_user()
            .app_instance_user_arn(self.app_instance.user_arn(id))
            .name(name)
            .metadata(metadata)
            .send()
            .await
            .map_err(|e| map_error(Op::Update, &e))?;
        Ok(())
    }

    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.client
            .delete_app_instance_user()
            .app_instance_user_arn(self.app_instance.user_arn(id))
            .send()
            .await
            .map_err(|e| map_error(Op::Delete, &e))?;
        Ok(())
    }

    async fn list(&self, next_token: Option<String>) -> Result<DirectoryPage, DirectoryError> {
        let output = self
            .client
            .list_app_instance_users()
            .app_instance_arn(self.app_instance.as_str())
            .max_results(PAGE_SIZE)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| map_error(Op::List, &e))?;
        Ok(DirectoryPage {
            users: output
                .app_instance_users()
                .iter()
                .filter_map(|summary| directory_user(&self.app_instance, summary))
                .collect(),
            next_token: output.next_token().map(str::to_owned),
        })
    }
}

/// A listed user, or `None` (with a debug line) when its id is not a Cognito
/// sub: users made by hand or by other tools share the AppInstance, and this
/// system neither owns nor touches them. The id itself is not logged: such ids
/// are often email addresses.
fn directory_user(
    app_instance: &AppInstanceArn,
    summary: &AppInstanceUserSummary,
) -> Option<DirectoryUser> {
    let arn = summary.app_instance_user_arn()?;
    let Some(id) = app_instance.user_id_from_arn(arn) else {
        debug!("skipping a listed Chime user whose id is not a Cognito sub");
        return None;
    };
    Some(DirectoryUser {
        id,
        arn: arn.to_owned(),
        name: summary.name().unwrap_or_default().to_owned(),
        metadata: summary.metadata().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_chimesdkidentity::config::Credentials;
    use aws_sdk_chimesdkidentity::config::retry::ClassifyRetry;
    use aws_sdk_chimesdkidentity::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_chimesdkidentity::operation::create_app_instance_user::CreateAppInstanceUserError;
    use aws_sdk_chimesdkidentity::operation::describe_app_instance_user::DescribeAppInstanceUserError;
    use aws_sdk_chimesdkidentity::types::error::ThrottledClientException;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use chime_sync_core::ErrorClass;

    use super::*;

    const ARN: &str = "arn:aws:chime:eu-central-1:123456789012:app-instance/abcd-1234";
    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    /// A service error as the SDK produces it for an unmodelled code, and the
    /// mapping of it for `op`.
    fn service(op: Op, status: u16, code: Option<&str>) -> DirectoryError {
        let mut meta = ErrorMetadata::builder().message("details");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let err = CreateAppInstanceUserError::generic(meta.build());
        map_error(op, &SdkError::service_error(err, response(status)))
    }

    #[test]
    fn every_chime_error_code_has_its_directory_error() {
        let cases = [
            (429, "ThrottledClientException", "Throttled"),
            (500, "ServiceFailureException", "Unavailable"),
            (503, "ServiceUnavailableException", "Unavailable"),
            (401, "UnauthorizedClientException", "AccessDenied"),
            (403, "ForbiddenException", "AccessDenied"),
            (400, "BadRequestException", "Rejected"),
            (400, "ResourceLimitExceededException", "LimitExceeded"),
            (404, "NotFoundException", "NotFound"),
            (409, "ConflictException", "AlreadyExists"),
        ];
        for (status, code, expected) in cases {
            let op = if code == "NotFoundException" {
                Op::Delete
            } else {
                Op::Create
            };
            let mapped = service(op, status, Some(code));
            assert_eq!(mapped.code(), expected, "{code} gave {mapped:?}");
        }
    }

    #[test]
    fn the_code_wins_over_the_status() {
        // ResourceLimitExceeded and BadRequest share 400; the code tells them apart.
        assert!(matches!(
            service(Op::Create, 400, Some("ResourceLimitExceededException")),
            DirectoryError::LimitExceeded(_)
        ));
        assert!(matches!(
            service(Op::Create, 400, Some("ThrottledClientException")),
            DirectoryError::Throttled(_)
        ));
    }

    #[test]
    fn without_a_code_the_status_decides() {
        use DirectoryError as D;
        assert!(matches!(service(Op::Update, 429, None), D::Throttled(_)));
        assert!(matches!(service(Op::Update, 502, None), D::Unavailable(_)));
        assert!(matches!(service(Op::Update, 504, None), D::Unavailable(_)));
        assert!(matches!(service(Op::Update, 403, None), D::AccessDenied(_)));
        assert_eq!(service(Op::Update, 404, None), D::NotFound);
        assert_eq!(service(Op::Update, 408, None), D::Timeout);
        assert!(matches!(service(Op::Update, 422, None), D::Rejected(_)));
        assert!(matches!(
            service(Op::Update, 418, Some("SomethingNew")),
            D::Rejected(_)
        ));
    }

    #[test]
    fn not_found_means_the_user_only_for_user_calls() {
        for op in [Op::Describe, Op::Update, Op::Delete] {
            assert_eq!(
                service(op, 404, Some("NotFoundException")),
                DirectoryError::NotFound
            );
        }
        for op in [Op::Create, Op::List] {
            let e = service(op, 404, Some("NotFoundException"));
            assert!(matches!(e, DirectoryError::AccessDenied(_)), "{e:?}");
            assert_eq!(e.class(), ErrorClass::Retryable);
        }
    }

    #[test]
    fn conflict_is_already_exists_only_on_create() {
        assert_eq!(
            service(Op::Create, 409, Some("ConflictException")),
            DirectoryError::AlreadyExists
        );
        for op in [Op::Update, Op::Delete] {
            let e = service(op, 409, Some("ConflictException"));
            assert!(matches!(e, DirectoryError::Unavailable(_)), "{e:?}");
            assert_eq!(e.class(), ErrorClass::Retryable);
        }
    }

    #[test]
    fn forbidden_is_never_read_as_missing() {
        for op in [Op::Describe, Op::Delete] {
            assert!(matches!(
                service(op, 403, Some("ForbiddenException")),
                DirectoryError::AccessDenied(_)
            ));
        }
    }

    #[test]
    fn modelled_errors_map_like_unmodelled_ones() {
        let modelled = DescribeAppInstanceUserError::ThrottledClientException(
            ThrottledClientException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ThrottledClientException")
                        .message("slow down")
                        .build(),
                )
                .build(),
        );
        let e = map_error(
            Op::Describe,
            &SdkError::service_error(modelled, response(429)),
        );
        assert_eq!(
            e,
            DirectoryError::Throttled("ThrottledClientException (HTTP 429): slow down".into())
        );
    }

    #[test]
    fn timeouts_and_transport_failures() {
        type E = SdkError<CreateAppInstanceUserError, HttpResponse>;
        let op_timeout: E = SdkError::timeout_error("operation timeout (all attempts) elapsed");
        assert_eq!(map_error(Op::Create, &op_timeout), DirectoryError::Timeout);
        let connect_timeout: E =
            SdkError::dispatch_failure(ConnectorError::timeout("connect".into()));
        assert_eq!(
            map_error(Op::Create, &connect_timeout),
            DirectoryError::Timeout
        );
        let io: E = SdkError::dispatch_failure(ConnectorError::io("connection reset".into()));
        let mapped = map_error(Op::Create, &io);
        assert!(matches!(&mapped, DirectoryError::Transport(m) if m.contains("connection reset")));
        assert_eq!(mapped.class(), ErrorClass::Retryable);
        let unsigned: E = SdkError::construction_failure("no credentials");
        assert!(matches!(
            map_error(Op::Create, &unsigned),
            DirectoryError::Transport(_)
        ));
        let garbled: E = SdkError::response_error("bad json", response(502));
        assert!(matches!(
            map_error(Op::Create, &garbled),
            DirectoryError::Unavailable(_)
        ));
        let garbled_ok: E = SdkError::response_error("bad json", response(200));
        assert!(matches!(
            map_error(Op::Create, &garbled_ok),
            DirectoryError::Transport(_)
        ));
    }

    fn sdk_config(region: &str) -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new(region.to_owned()))
            .credentials_provider(
                aws_sdk_chimesdkidentity::config::SharedCredentialsProvider::new(Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                )),
            )
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    #[test]
    fn client_uses_the_app_instance_region_and_our_retry_settings() {
        let mut cfg = ChimeConfig::new(AppInstanceArn::parse(ARN).unwrap());
        cfg.max_attempts = 5;
        cfg.operation_timeout = Duration::from_millis(1234);
        cfg.attempt_timeout = Some(Duration::from_millis(400));
        let conf = client_config(&sdk_config("us-east-1"), &cfg).build();
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-central-1"));
        let retry = conf.retry_config().unwrap();
        assert_eq!(retry.max_attempts(), 5);
        assert_eq!(retry.initial_backoff(), Duration::from_millis(100));
        let timeouts = conf.timeout_config().unwrap();
        assert_eq!(
            timeouts.operation_timeout(),
            Some(Duration::from_millis(1234))
        );
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_millis(400))
        );
        assert!(
            conf.retry_classifiers()
                .any(|c| c.name() == ChimeThrottlingClassifier.name())
        );
    }

    #[test]
    fn listed_users_that_are_not_subs_are_skipped() {
        let app = AppInstanceArn::parse(ARN).unwrap();
        let ours = AppInstanceUserSummary::builder()
            .app_instance_user_arn(format!("{ARN}/user/{SUB}"))
            .name("Ada")
            .build();
        let by_hand = AppInstanceUserSummary::builder()
            .app_instance_user_arn(format!("{ARN}/user/back-end-worker"))
            .name("worker")
            .build();
        let user = directory_user(&app, &ours).unwrap();
        assert_eq!(user.id.as_str(), SUB);
        assert_eq!(user.name, "Ada");
        assert_eq!(user.metadata, "");
        assert_eq!(directory_user(&app, &by_hand), None);
    }
}
