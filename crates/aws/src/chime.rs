//! [`ChimeDirectory`]: the `Directory` port over `aws-sdk-chimesdkidentity`.
//!
//! Everything that can go wrong on the wire is turned into a
//! [`DirectoryError`] by one function, [`map_error`], so the handlers decide
//! from one classification (retryable or permanent) and never see the SDK.
//!
//! ## A missing user, a denied call: one classification
//! Chime's Smithy model lists no `NotFoundException` for Describe, Update or
//! Delete of an AppInstanceUser; it lists `ForbiddenException` (403), and
//! Chime messaging answers an unknown user ARN with `403 Forbidden: An invalid
//! app instance user ARN was supplied…`. Operators also report `404
//! NotFoundException`. What Chime answers is not documented, so both are
//! handled. An IAM denial is a 403 as well (`AccessDeniedException` or
//! `ForbiddenException`), but its message is IAM's: `User: arn:aws:sts::…
//! is not authorized to perform: chime:<Action> on resource: …` (SCP and
//! permission-boundary denials say so in the same sentence).
//!
//! Only an answer that carries `X-Amzn-Errortype` is read as Chime's (or
//! AWS's) answer about the request; anything else on the path (a proxy's HTML
//! 400 or 403, a truncated response) is retryable, whatever its status.
//!
//! | Chime's answer | Create | Describe | Update, PutExpiration | Delete | List |
//! |---|---|---|---|---|---|
//! | 2xx | created | the user | updated | deleted | a page |
//! | 404 `NotFoundException` | denied (no such AppInstance) | missing: `Ok(None)` | `NotFound` | `NotFound` | denied (no such AppInstance) |
//! | 401, `UnauthorizedClientException`, `AccessDeniedException`, AWS's authentication errors (`UnrecognizedClientException`, `InvalidSignatureException`, `ExpiredTokenException`, …), a 403 whose message is IAM's or an authentication failure | denied | denied | denied | denied | denied |
//! | any other 403 `ForbiddenException` | denied | `PossiblyMissing` | `PossiblyMissing` | `PossiblyMissing` | denied |
//! | 409 `ConflictException` | `AlreadyExists` | — | concurrent change: retryable | concurrent change: retryable | — |
//! | 400 `BadRequestException` (or another type AWS names) | rejected: permanent | rejected | rejected | rejected | rejected |
//! | 400 `ResourceLimitExceededException` | limit: permanent | — | — | — | — |
//! | any 4xx without `X-Amzn-Errortype` | retryable | retryable | retryable | retryable | retryable |
//! | 429, `ThrottledClientException` | throttled (the SDK retries, [`crate::retry`]) | throttled | throttled | throttled | throttled |
//! | 5xx, timeouts, I/O | retryable | retryable | retryable | retryable | retryable |
//!
//! `PutAppInstanceUserExpirationSettings` (grace deletions) is a call on one user like
//! Update. Asked to remove a user's settings (the request without `ExpirationSettings`),
//! Chime's answer is not documented; a `BadRequestException` to it is `Rejected`, which the
//! port's `clear_expiration` settles with the longest expiration instead.
//!
//! "Denied" is `AccessDenied`: retryable (it is the deployment's fault, not the
//! message's: the message waits in the queue and reaches the DLQ by redrive),
//! and logged at ERROR as a deployment fault that names the action.
//!
//! `PossiblyMissing` is settled by a second call, in the domain service over
//! the `Directory` port (`chime_sync_core::provisioning`), so every adapter
//! shares it. What the handlers end up with:
//!
//! | operation (who calls it) | first answer | second call | outcome |
//! |---|---|---|---|
//! | delete (`user.deleted`, `reconcile --delete-missing`) | 204 | — | deleted |
//! | delete | 404 | — | already gone (success) |
//! | delete | other 403 | Describe answers 404 or another non-IAM 403 | already gone (success) |
//! | delete | other 403 | Describe returns the user | refused: retryable; the user stays |
//! | delete | denied | — | denied: retryable; the user stays |
//! | describe (`user.created`, `user.updated`, ConfirmSignUp, reconcile: upsert) | the user | Update if name or metadata differ | updated / already-exists |
//! | describe (upsert) | 404 | Create | created (a Conflict is resolved by describing again) |
//! | describe (upsert) | other 403 | Create, same deterministic token | 201: created; 409: refused, retryable; denied: denied |
//! | describe (heal: ConfirmForgotPassword) | other 403 | Create, same token | 201: created; 409: already-exists; denied: denied |
//! | update (after a describe found the user) | 404 | Create | created |
//! | update | other 403 | Create, same token | 201: created; 409: refused, retryable; denied: denied |
//! | any | denied | — | denied: retryable, logged as a deployment fault |
//!
//! Two decisions the issue tracker did not make for us: only
//! `ForbiddenException` can mean "missing" (AWS's authentication errors are
//! 403s too, with their own types, and a delete must never be acknowledged
//! because the credentials expired), and a 403 whose message reads like an
//! authentication failure (`security token`, `signature`, `authorization
//! failed`, `access denied`, `explicit deny`, …) counts as denied even when
//! its type is `ForbiddenException`.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_chimesdkidentity::Client;
use aws_sdk_chimesdkidentity::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_chimesdkidentity::config::timeout::TimeoutConfig;
use aws_sdk_chimesdkidentity::config::{Builder as ClientConfigBuilder, Region};
use aws_sdk_chimesdkidentity::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_chimesdkidentity::types::{
    AppInstanceUserSummary, ExpirationCriterion, ExpirationSettings,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chime_sync_core::directory::Expiration;
use chime_sync_core::metrics::{CallStats, ChimeCalls};
use chime_sync_core::{
    AppInstanceArn, Directory, DirectoryError, DirectoryPage, DirectoryUser, UserId, UserProfile,
};
use tracing::{debug, error};

use crate::retry::{ChimeThrottlingClassifier, ThrottledRetryCounter};

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
///
/// It times every call and counts the throttled attempts the SDK retried
/// ([`ThrottledRetryCounter`]), for the invocation's metrics
/// ([`Directory::take_call_stats`]); clones share the figures.
#[derive(Debug, Clone)]
pub struct ChimeDirectory {
    client: Client,
    app_instance: AppInstanceArn,
    calls: Arc<ChimeCalls>,
}

impl ChimeDirectory {
    /// A client for `cfg.app_instance`, in the AppInstance's region whatever
    /// the environment says (Chime rejects calls for an AppInstance made in
    /// another region), with the retry classifier for Chime's 429 added.
    pub fn new(sdk_config: &SdkConfig, cfg: ChimeConfig) -> Self {
        let calls = Arc::new(ChimeCalls::new());
        let client = Client::from_conf(client_config(sdk_config, &cfg, &calls).build());
        Self {
            client,
            app_instance: cfg.app_instance,
            calls,
        }
    }

    /// The underlying SDK client, for calls this port does not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The SDK client configuration `ChimeDirectory::new` builds; separate so the
/// tests can inspect it.
fn client_config(
    sdk_config: &SdkConfig,
    cfg: &ChimeConfig,
    calls: &Arc<ChimeCalls>,
) -> ClientConfigBuilder {
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
        .retry_classifier(ChimeThrottlingClassifier::new())
        .interceptor(ThrottledRetryCounter::new(calls.clone()));
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
    PutExpiration,
}

impl Op {
    /// The IAM action of the call, as IAM's messages and our logs name it.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Self::Create => "chime:CreateAppInstanceUser",
            Self::Describe => "chime:DescribeAppInstanceUser",
            Self::Update => "chime:UpdateAppInstanceUser",
            Self::Delete => "chime:DeleteAppInstanceUser",
            Self::List => "chime:ListAppInstanceUsers",
            Self::PutExpiration => "chime:PutAppInstanceUserExpirationSettings",
        }
    }

    /// Calls on one existing user, where a 403 may mean "no such user".
    fn on_one_user(self) -> bool {
        matches!(
            self,
            Self::Describe | Self::Update | Self::Delete | Self::PutExpiration
        )
    }
}

/// The one place an SDK error becomes a [`DirectoryError`]; the table in the
/// module documentation says what each answer becomes.
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
            Answer {
                status: service.raw().status().as_u16(),
                error_type: service
                    .raw()
                    .headers()
                    .get(crate::retry::ERROR_TYPE_HEADER)
                    .map(error_type_code),
                code: service.err().code(),
                message: service.err().message(),
            },
        ),
        // SdkError is non-exhaustive; an unknown kind is treated as transient.
        _ => DirectoryError::Transport(detail(err)),
    }
}

fn detail<E: std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> String {
    DisplayErrorContext(err).to_string()
}

/// `X-Amzn-Errortype`'s error name: the part before a `:` (AWS may append a
/// namespace URL).
fn error_type_code(header: &str) -> &str {
    header.split(':').next().unwrap_or(header).trim()
}

/// An error response, as far as the classification needs it.
#[derive(Debug, Clone, Copy)]
struct Answer<'a> {
    status: u16,
    /// `X-Amzn-Errortype`, when the response has it: only then is the
    /// answer Chime's (or AWS's) about the request.
    error_type: Option<&'a str>,
    /// The code the SDK read (header first, then the body).
    code: Option<&'a str>,
    message: Option<&'a str>,
}

impl Answer<'_> {
    fn why(&self) -> String {
        crate::service_error_text(self.code, self.status, self.message)
    }
}

/// Authentication and authorization errors AWS answers with their own
/// types, before the request reaches Chime.
const DENIAL_TYPES: [&str; 11] = [
    "AccessDeniedException",
    "UnauthorizedClientException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
];

/// Whether a 403's message is IAM's authorization failure (`… is not
/// authorized to perform: chime:…`, with or without `because no
/// identity-based policy allows…`, `with an explicit deny in a service
/// control policy`, `…permissions boundary…`) or an authentication failure.
/// Chime's "invalid app instance user ARN" is none of these.
pub(crate) fn is_denial_message(message: &str) -> bool {
    const SIGNS: [&str; 11] = [
        "not authorized",
        "explicit deny",
        "identity-based policy",
        "permissions boundary",
        "service control policy",
        "session policy",
        "security token",
        "signature",
        "authorization failed",
        "access denied",
        "credential",
    ];
    let message = message.to_ascii_lowercase();
    SIGNS.iter().any(|sign| message.contains(sign))
}

/// What an error response means; see the table in the module documentation.
fn from_service_error(op: Op, answer: Answer<'_>) -> DirectoryError {
    let why = answer.why();
    let Some(error_type) = answer.error_type else {
        return not_chimes_answer(answer.status, why);
    };
    let denied = || {
        DirectoryError::AccessDenied(format!(
            "{} denied: {why}; check the function's IAM policy (and any SCP or permission \
             boundary) and APP_INSTANCE_ARN",
            op.action()
        ))
    };
    match error_type {
        "ThrottledClientException" => DirectoryError::Throttled(why),
        "ServiceFailureException" | "ServiceUnavailableException" => {
            DirectoryError::Unavailable(why)
        }
        t if DENIAL_TYPES.contains(&t) => denied(),
        "ForbiddenException" => {
            if answer.message.is_some_and(is_denial_message) || !op.on_one_user() {
                denied()
            } else {
                DirectoryError::PossiblyMissing(why)
            }
        }
        "NotFoundException" if op.on_one_user() => DirectoryError::NotFound,
        "NotFoundException" => DirectoryError::AccessDenied(format!(
            "the AppInstance was not found (check APP_INSTANCE_ARN): {why}"
        )),
        "ConflictException" if op == Op::Create => DirectoryError::AlreadyExists,
        "ConflictException" => {
            DirectoryError::Unavailable(format!("concurrent change to the user: {why}"))
        }
        "BadRequestException" => DirectoryError::Rejected(why),
        "ResourceLimitExceededException" => DirectoryError::LimitExceeded(why),
        // A type we do not know: the status decides.
        _ => match answer.status {
            429 => DirectoryError::Throttled(why),
            401 | 403 => denied(),
            408 => DirectoryError::Timeout,
            409 if op == Op::Create => DirectoryError::AlreadyExists,
            s if s >= 500 => DirectoryError::Unavailable(why),
            // A 404 of another type (`UnknownOperationException`): the endpoint
            // is wrong, which is no answer about the user.
            404 => DirectoryError::Transport(format!(
                "the endpoint does not serve {}: {why}",
                op.action()
            )),
            _ => DirectoryError::Rejected(why),
        },
    }
}

/// A response without `X-Amzn-Errortype` did not come from Chime: an HTML
/// page from a proxy or a load balancer, a broken connection. Nothing in it
/// is about the message, so everything is retryable (SQS's maxReceiveCount
/// still bounds it); 401/403 count as denied, to point at the deployment.
fn not_chimes_answer(status: u16, why: String) -> DirectoryError {
    match status {
        429 => DirectoryError::Throttled(why),
        408 => DirectoryError::Timeout,
        401 | 403 => DirectoryError::AccessDenied(format!(
            "HTTP {status} without X-Amzn-Errortype (not from Chime; a proxy?): {why}"
        )),
        s if s >= 500 => DirectoryError::Unavailable(why),
        _ => DirectoryError::Transport(format!(
            "HTTP {status} without X-Amzn-Errortype: not an answer from Chime (a proxy or a \
             broken connection?): {why}"
        )),
    }
}

/// Map a failed call and, for a denial, log it as the deployment fault it is
/// (naming the action, so the fix is obvious from the log line alone).
fn failed<E>(op: Op, sub: Option<&UserId>, err: &SdkError<E, HttpResponse>) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mapped = map_error(op, err);
    match &mapped {
        DirectoryError::AccessDenied(why) => error!(
            source = "chime",
            outcome = "denied",
            fault = "deployment",
            action = op.action(),
            sub = sub.map(UserId::as_str).unwrap_or("-"),
            error = %why,
            "Chime denied {}: a deployment fault, retried until fixed", op.action()
        ),
        DirectoryError::PossiblyMissing(why) => debug!(
            action = op.action(),
            sub = sub.map(UserId::as_str).unwrap_or("-"),
            error = %why,
            "Chime answered 403 for the user: missing or refused; settling with a second call"
        ),
        _ => {}
    }
    mapped
}

impl Directory for ChimeDirectory {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        &self.app_instance
    }

    fn take_call_stats(&self) -> CallStats {
        self.calls.take()
    }

    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        let _timed = self.calls.time();
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
            .map_err(|e| failed(Op::Create, Some(&user.id), &e))?;
        debug!(sub = %user.id, "chime user created");
        Ok(())
    }

    async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
        let _timed = self.calls.time();
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
                return match failed(Op::Describe, Some(id), &e) {
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
            created_at: user
                .and_then(|u| u.created_timestamp())
                .and_then(|t| std::time::SystemTime::try_from(*t).ok()),
            expiration: user
                .and_then(|u| u.expiration_settings())
                .and_then(expiration_from),
        }))
    }

    async fn update(&self, id: &UserId, name: &str, metadata: &str) -> Result<(), DirectoryError> {
        let _timed = self.calls.time();
        self.client
            .update_app_instance_user()
            .app_instance_user_arn(self.app_instance.user_arn(id))
            .name(name)
            .metadata(metadata)
            .send()
            .await
            .map_err(|e| failed(Op::Update, Some(id), &e))?;
        Ok(())
    }

    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        let _timed = self.calls.time();
        self.client
            .delete_app_instance_user()
            .app_instance_user_arn(self.app_instance.user_arn(id))
            .send()
            .await
            .map_err(|e| failed(Op::Delete, Some(id), &e))?;
        Ok(())
    }

    async fn list(&self, next_token: Option<String>) -> Result<DirectoryPage, DirectoryError> {
        let _timed = self.calls.time();
        let output = self
            .client
            .list_app_instance_users()
            .app_instance_arn(self.app_instance.as_str())
            .max_results(PAGE_SIZE)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| failed(Op::List, None, &e))?;
        let listed = output.app_instance_users();
        let users: Vec<DirectoryUser> = listed
            .iter()
            .filter_map(|summary| directory_user(&self.app_instance, summary))
            .collect();
        Ok(DirectoryPage {
            foreign: listed.len() - users.len(),
            users,
            next_token: output.next_token().map(str::to_owned),
        })
    }

    async fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<Expiration>,
    ) -> Result<Option<Expiration>, DirectoryError> {
        let settings = expiration
            .map(|e| {
                ExpirationSettings::builder()
                    .expiration_days(i32::from(e.days))
                    .expiration_criterion(ExpirationCriterion::CreatedTimestamp)
                    .build()
            })
            .transpose()
            .map_err(|e| DirectoryError::Rejected(format!("expiration settings: {e}")))?;
        let output = self
            .client
            .put_app_instance_user_expiration_settings()
            .app_instance_user_arn(self.app_instance.user_arn(id))
            .set_expiration_settings(settings)
            .send()
            .await
            .map_err(|e| failed(Op::PutExpiration, Some(id), &e))?;
        Ok(output.expiration_settings().and_then(expiration_from))
    }
}

/// Chime's settings as the port's [`Expiration`]. The criterion is always
/// `CREATED_TIMESTAMP` (Chime has no other); days outside 1–5475 cannot
/// come from Chime and are read as none.
fn expiration_from(settings: &ExpirationSettings) -> Option<Expiration> {
    u16::try_from(settings.expiration_days())
        .ok()
        .filter(|d| (1..=chime_sync_core::directory::MAX_EXPIRATION_DAYS).contains(d))
        .map(|days| Expiration { days })
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
    Some(DirectoryUser::listed(
        id,
        arn.to_owned(),
        summary.name().unwrap_or_default().to_owned(),
        summary.metadata().unwrap_or_default().to_owned(),
    ))
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

    /// A service error as the SDK produces it for an unmodelled code, with
    /// `X-Amzn-Errortype` set to `code` (as Chime sends it), and its mapping.
    fn service(op: Op, status: u16, code: Option<&str>) -> DirectoryError {
        answered(op, status, code, code, "details")
    }

    /// The same with each part chosen: the header (`None`: not sent), the
    /// code the SDK read, and the message.
    fn answered(
        op: Op,
        status: u16,
        header: Option<&str>,
        code: Option<&str>,
        message: &str,
    ) -> DirectoryError {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let mut raw = response(status);
        if let Some(header) = header {
            raw.headers_mut()
                .insert(crate::retry::ERROR_TYPE_HEADER, header.to_owned());
        }
        let err = CreateAppInstanceUserError::generic(meta.build());
        map_error(op, &SdkError::service_error(err, raw))
    }

    const ONE_USER: [Op; 4] = [Op::Describe, Op::Update, Op::Delete, Op::PutExpiration];
    const ALL: [Op; 6] = [
        Op::Create,
        Op::Describe,
        Op::Update,
        Op::Delete,
        Op::List,
        Op::PutExpiration,
    ];
    const CHIME_MISSING: &str =
        "An invalid app instance user ARN was supplied for the input parameter.";

    /// IAM's messages for an identity policy, an SCP, a permission boundary,
    /// a session policy, and the older short form.
    fn iam_messages(action: &str) -> Vec<String> {
        let who = "User: arn:aws:sts::123456789012:assumed-role/sync-role/sync";
        let on =
            format!("{who} is not authorized to perform: {action} on resource: {ARN}/user/{SUB}");
        vec![
            format!("{on} because no identity-based policy allows the {action} action"),
            format!("{on} with an explicit deny in a service control policy"),
            format!("{on} because no permissions boundary allows the {action} action"),
            format!("{on} because no session policy allows the {action} action"),
            on,
        ]
    }

    #[test]
    fn every_chime_error_code_has_its_directory_error() {
        let cases = [
            (429, "ThrottledClientException", "Throttled"),
            (500, "ServiceFailureException", "Unavailable"),
            (503, "ServiceUnavailableException", "Unavailable"),
            (401, "UnauthorizedClientException", "AccessDenied"),
            (403, "ForbiddenException", "AccessDenied"),
            (403, "AccessDeniedException", "AccessDenied"),
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
        // AWS may append a namespace to the header.
        assert_eq!(
            answered(
                Op::Delete,
                404,
                Some("NotFoundException:http://internal.amazon.com/coral/"),
                Some("NotFoundException"),
                "gone"
            ),
            DirectoryError::NotFound
        );
    }

    #[test]
    fn an_unknown_error_type_is_judged_by_its_status() {
        use DirectoryError as D;
        let odd = |op, status| service(op, status, Some("SomethingNew"));
        assert!(matches!(odd(Op::Update, 429), D::Throttled(_)));
        assert!(matches!(odd(Op::Update, 502), D::Unavailable(_)));
        assert!(matches!(odd(Op::Update, 403), D::AccessDenied(_)));
        assert_eq!(odd(Op::Update, 408), D::Timeout);
        assert!(matches!(odd(Op::Update, 422), D::Rejected(_)));
        assert!(matches!(odd(Op::Update, 418), D::Rejected(_)));
        // A 404 that is not NotFoundException (the fake's unknown path, a wrong
        // endpoint) says nothing about the user: retryable, never "gone".
        let wrong_endpoint = service(Op::Delete, 404, Some("UnknownOperationException"));
        assert!(
            matches!(wrong_endpoint, D::Transport(_)),
            "{wrong_endpoint:?}"
        );
    }

    #[test]
    fn without_x_amzn_errortype_nothing_is_the_messages_fault() {
        // A proxy's HTML 400, a load balancer's 403 or 404: not Chime's answer.
        for op in ALL {
            for status in [400, 404, 409, 413, 422] {
                let e = answered(op, status, None, None, "<html>Bad Request</html>");
                assert_eq!(e.class(), ErrorClass::Retryable, "{op:?} {status}: {e:?}");
                assert!(
                    !matches!(e, DirectoryError::NotFound | DirectoryError::AlreadyExists),
                    "{op:?} {status}: {e:?}"
                );
            }
            // Even when the SDK found a code in the body.
            let e = answered(op, 400, None, Some("BadRequestException"), "from a body");
            assert_eq!(e.class(), ErrorClass::Retryable, "{op:?}: {e:?}");
            for status in [401, 403] {
                let e = answered(op, status, None, None, "<html>Forbidden</html>");
                assert!(matches!(e, DirectoryError::AccessDenied(_)), "{e:?}");
            }
            assert!(matches!(
                answered(op, 429, None, None, ""),
                DirectoryError::Throttled(_)
            ));
            assert!(matches!(
                answered(op, 502, None, None, ""),
                DirectoryError::Unavailable(_)
            ));
        }
        // With Chime's error type, a 400 is the request's fault: permanent.
        assert_eq!(
            service(Op::Update, 400, Some("BadRequestException")).class(),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn not_found_means_the_user_only_for_user_calls() {
        for op in ONE_USER {
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
    fn chimes_403_for_a_missing_user_is_possibly_missing_on_one_user_calls_only() {
        for op in ONE_USER {
            for message in [CHIME_MISSING, "", "Forbidden"] {
                let e = answered(
                    op,
                    403,
                    Some("ForbiddenException"),
                    Some("ForbiddenException"),
                    message,
                );
                assert!(
                    matches!(&e, DirectoryError::PossiblyMissing(m) if m.contains(message)),
                    "{op:?} {message:?}: {e:?}"
                );
                assert_eq!(e.class(), ErrorClass::Retryable, "never permanent");
            }
        }
        for op in [Op::Create, Op::List] {
            let e = answered(
                op,
                403,
                Some("ForbiddenException"),
                Some("ForbiddenException"),
                CHIME_MISSING,
            );
            assert!(
                matches!(e, DirectoryError::AccessDenied(_)),
                "{op:?}: {e:?}"
            );
        }
    }

    #[test]
    fn iams_denials_are_denied_whatever_their_type_and_name_the_action() {
        for op in ALL {
            for message in iam_messages(op.action()) {
                for error_type in ["ForbiddenException", "AccessDeniedException"] {
                    let e = answered(op, 403, Some(error_type), Some(error_type), &message);
                    match &e {
                        DirectoryError::AccessDenied(why) => {
                            assert!(why.starts_with(op.action()), "{why}");
                            assert!(why.contains("IAM"), "{why}");
                        }
                        other => panic!("{op:?} {error_type} {message}: {other:?}"),
                    }
                    assert_eq!(e.class(), ErrorClass::Retryable);
                }
            }
        }
    }

    #[test]
    fn authentication_failures_are_denied_never_missing() {
        let cases = [
            (401, "UnauthorizedClientException", "Unauthorized"),
            (
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            (
                403,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
            (
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            ),
            (
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            // Chime's own type with an authentication message (aws/amazon-chime-sdk-js#647).
            (403, "ForbiddenException", "AWS authorization failed"),
            (403, "ForbiddenException", "Access denied"),
        ];
        for op in ONE_USER {
            for (status, error_type, message) in cases {
                let e = answered(op, status, Some(error_type), Some(error_type), message);
                assert!(
                    matches!(e, DirectoryError::AccessDenied(_)),
                    "{op:?} {error_type} {message}: {e:?}"
                );
            }
        }
        assert!(!is_denial_message(CHIME_MISSING));
    }

    #[test]
    fn conflict_is_already_exists_only_on_create() {
        assert_eq!(
            service(Op::Create, 409, Some("ConflictException")),
            DirectoryError::AlreadyExists
        );
        for op in [Op::Update, Op::Delete, Op::PutExpiration] {
            let e = service(op, 409, Some("ConflictException"));
            assert!(matches!(e, DirectoryError::Unavailable(_)), "{e:?}");
            assert_eq!(e.class(), ErrorClass::Retryable);
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
        let conf = client_config(&sdk_config("us-east-1"), &cfg, &Arc::default()).build();
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
