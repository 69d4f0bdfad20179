//! The credential-exchange function: `POST /credentials` through a Lambda
//! Function URL, with `Authorization: Bearer <JWT>` from a trusted issuer,
//! answers temporary AWS credentials that may act only as the caller's own
//! Chime AppInstanceUser.
//!
//! 1. Read the request (Function URL event); answer CORS preflights for the
//!    configured origins.
//! 2. Validate the token ([`crate::credentials::token`]).
//! 3. Ensure the Chime user exists (optional, on by default), with the same
//!    `Provisioning::ensure_exists` post-confirmation uses; a user it creates is
//!    owned by the issuer's source in the ledger, and a pending deletion of
//!    a user that source owns is cancelled ([`crate::ledger`]: a sign-in).
//! 4. STS `AssumeRole` on the chat role, tagged `UserUUID = <id>`, for
//!    min(configured maximum, the token's remaining lifetime), at least 900 s.
//!
//! | answer | when |
//! |---|---|
//! | 200 | credentials, `Cache-Control: no-store` |
//! | 204 | CORS preflight from an allowed origin |
//! | 400 | malformed event, body or headers (duplicate `Authorization`) |
//! | 401 | token missing or refused, or expiring within 900 s |
//! | 403 | preflight from an origin not allowed |
//! | 404, 405 | another path, another method |
//! | 500 | STS denied, Chime denied or refused: a deployment fault |
//! | 503 | the issuer's JWKS, Chime or STS unavailable or throttled |
//!
//! Every error body is `{"error": code, "message": text}` and never echoes
//! the token. Logged per request: issuer, sub and outcome, nothing else from
//! the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tracing::{error, info, trace, warn};

use crate::credentials::keys::{JwksSource, KeyCache};
use crate::credentials::sessions::{CachedSession, SessionCache};
use crate::credentials::sts::{
    AssumeRoleRequest, CredentialIssuer, IssueError, TemporaryCredentials,
};
use crate::credentials::token::{self, TokenError, VerifiedToken};
use crate::credentials::{MAX_SESSION, MIN_SESSION, TrustedIssuer, TrustedIssuers};
use crate::directory::{Applied, Directory};
use crate::error::DirectoryError;
use crate::identity::UserId;
use crate::ledger::{self, At, Change, ChangeKind, Ledger, UnownedPolicy, UserRecord};
use crate::metrics::{FunctionMetrics, Invocation, Metric};
use crate::profile::{DisplayName, DisplayNamePolicy, UserProfile};
use crate::provisioning::Provisioning;

const SOURCE: &str = "credential-exchange";

/// What credential-exchange publishes ([`metrics`]): one decision per
/// request, and what ensuring the Chime user did.
pub const METRICS: FunctionMetrics = FunctionMetrics {
    source: SOURCE,
    error_kind: "CredentialExchangeFailed",
    metrics: &[
        Metric::Decisions,
        Metric::CredentialsIssued,
        Metric::Preflight,
        Metric::Refused,
        Metric::Unavailable,
        Metric::Failed,
        Metric::InvalidEvent,
        Metric::Denied,
        Metric::Created,
        Metric::Updated,
        Metric::AlreadyExists,
        Metric::ThrottledRetries,
        Metric::ChimeCallLatency,
    ],
};
/// The one path this function serves.
pub const PATH: &str = "/credentials";

/// What the handler needs: the directory, the issuers' keys, STS, and policy.
pub struct CredentialExchange<D, S, C, L> {
    pub directory: D,
    /// Who owns each user: the issuer's source for the users it creates.
    pub ledger: L,
    pub keys: KeyCache<S>,
    pub sts: C,
    pub issuers: TrustedIssuers,
    /// Origins allowed to call from a browser (`ALLOWED_ORIGINS`), exactly as
    /// browsers send them (`https://chat.example.com`).
    pub allowed_origins: Vec<String>,
    /// Create the Chime user when missing (`ENSURE_CHIME_USER`, default true).
    pub ensure_user: bool,
    /// Display name from the token's claims (`DISPLAY_NAME_ATTRIBUTES`).
    pub names: DisplayNamePolicy,
    /// Longest session handed out (`MAX_SESSION_SECONDS`, 900–3600).
    pub max_session: Duration,
    /// Sessions issued in this sandbox, handed out again to the same user.
    pub sessions: SessionCache,
}

impl<D, S: JwksSource, C, L> CredentialExchange<D, S, C, L> {
    /// Defaults: no browser origins, ensure the user, one-hour sessions.
    pub fn new(directory: D, ledger: L, jwks: S, sts: C, issuers: TrustedIssuers) -> Self {
        Self {
            directory,
            ledger,
            keys: KeyCache::new(jwks),
            sts,
            issuers,
            allowed_origins: Vec::new(),
            ensure_user: true,
            names: DisplayNamePolicy::default(),
            max_session: MAX_SESSION,
            sessions: SessionCache::new(),
        }
    }
}

/// What happened, for the log, the replay table and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeOutcome {
    pub status: u16,
    /// `credentials-issued`, `preflight`, or the error code of the body.
    pub code: &'static str,
    pub issuer: Option<String>,
    pub user: Option<UserId>,
    /// What ensuring the Chime user did, when it ran.
    pub chime_user: Option<Applied>,
    /// `DurationSeconds` of the session issued.
    pub session: Option<Duration>,
    /// The session was one issued earlier in this sandbox ([`SessionCache`]).
    pub reused: bool,
    /// Why a token was refused, precisely ([`TokenError::code`]): for the
    /// log and the metric's `Reason` dimension, never the client.
    pub reason: Option<&'static str>,
    /// The answer is a denial by IAM (of the Chime call or of `AssumeRole`):
    /// a deployment fault.
    pub denied: bool,
}

/// The metrics of one request: its outcome, what ensuring the Chime user did,
/// and the Chime calls made (taken from `directory`).
pub fn metrics<D: Directory>(outcome: &ExchangeOutcome, directory: &D) -> Invocation {
    let mut m = Invocation::new(METRICS);
    m.decision(match (outcome.status, outcome.code) {
        (_, MALFORMED_REQUEST) => Metric::InvalidEvent,
        (200, _) => Metric::CredentialsIssued,
        (204, _) => Metric::Preflight,
        (503, _) => Metric::Unavailable,
        (500.., _) => Metric::Failed,
        _ => Metric::Refused,
    });
    if let Some(applied) = outcome.chime_user {
        m.add(applied.metric(), 1);
    }
    if outcome.denied {
        m.add(Metric::Denied, 1);
    }
    if let Some(reason) = outcome.reason {
        m.refused_for(reason);
    }
    m.chime_calls(directory.take_call_stats());
    m
}

/// The code of an invocation that is not a Function URL event.
const MALFORMED_REQUEST: &str = "malformed_request";

/// A refusal: status, stable code, message for the client.
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
    /// IAM refused a call we make: the deployment's fault.
    denied: bool,
    /// The precise reason of a token refusal ([`ExchangeOutcome::reason`]).
    reason: Option<&'static str>,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            denied: false,
            reason: None,
        }
    }

    fn denied(self, denied: bool) -> Self {
        Self { denied, ..self }
    }
}

/// Handle one Function URL invocation. Never fails: every problem is an
/// HTTP answer.
pub async fn handle<D: Directory, S: JwksSource, C: CredentialIssuer, L: Ledger>(
    event: Value,
    deps: &CredentialExchange<D, S, C, L>,
) -> (LambdaFunctionUrlResponse, ExchangeOutcome) {
    let mut outcome = ExchangeOutcome {
        status: 0,
        code: "",
        issuer: None,
        user: None,
        chime_user: None,
        session: None,
        reused: false,
        reason: None,
        denied: false,
    };
    let request: LambdaFunctionUrlRequest = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(_) => {
            let refusal = Refusal::new(
                400,
                MALFORMED_REQUEST,
                "the request is not a Lambda Function URL event",
            );
            return (
                refusal_response(&refusal, None),
                refusal_outcome(outcome, &refusal),
            );
        }
    };
    let origin = allowed_origin(&request.headers, &deps.allowed_origins);
    let method = request
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or("")
        .to_ascii_uppercase();
    let path = request.raw_path.as_deref().unwrap_or("");

    let result = if path != PATH && path != "/credentials/" {
        Err(Refusal::new(
            404,
            "not_found",
            format!("only POST {PATH} is served here"),
        ))
    } else if method == "OPTIONS" {
        return preflight(&request.headers, origin, outcome);
    } else if method != "POST" {
        Err(Refusal::new(
            405,
            "method_not_allowed",
            format!("use POST {PATH}"),
        ))
    } else {
        exchange(&request, deps, &mut outcome).await
    };
    answer(result, outcome, origin)
}

/// The HTTP answer to a request that reached a route, and its log line: issued
/// credentials, or the refusal (a warning when it is our fault, 5xx).
fn answer(
    result: Result<Value, Refusal>,
    mut outcome: ExchangeOutcome,
    origin: Option<&str>,
) -> (LambdaFunctionUrlResponse, ExchangeOutcome) {
    match result {
        Ok(body) => {
            outcome.status = 200;
            outcome.code = "credentials-issued";
            info!(source = SOURCE, issuer = outcome.issuer.as_deref().unwrap_or("-"),
                  sub = %display_user(&outcome), outcome = outcome.code,
                  chime_user = outcome.chime_user.map_or("not-checked", Applied::as_str),
                  session_seconds = outcome.session.map_or(0, |d| d.as_secs()),
                  reused = outcome.reused);
            (json_response(200, &body, origin), outcome)
        }
        Err(refusal) => {
            let outcome = refusal_outcome(outcome, &refusal);
            if refusal.status >= 500 {
                // The detail was logged where the failure was met.
                warn!(source = SOURCE, issuer = outcome.issuer.as_deref().unwrap_or("-"),
                      sub = %display_user(&outcome), outcome = refusal.code, status = refusal.status);
            } else {
                info!(source = SOURCE, issuer = outcome.issuer.as_deref().unwrap_or("-"),
                      sub = %display_user(&outcome), outcome = refusal.code,
                      reason = refusal.reason.unwrap_or(refusal.code), status = refusal.status);
            }
            (refusal_response(&refusal, origin), outcome)
        }
    }
}

fn refusal_outcome(mut outcome: ExchangeOutcome, refusal: &Refusal) -> ExchangeOutcome {
    outcome.status = refusal.status;
    outcome.code = refusal.code;
    outcome.denied = refusal.denied;
    outcome.reason = refusal.reason;
    outcome
}

fn display_user(outcome: &ExchangeOutcome) -> String {
    outcome
        .user
        .as_ref()
        .map_or_else(|| "-".to_owned(), UserId::to_string)
}

/// Steps 2–4 for a `POST /credentials`.
async fn exchange<D: Directory, S: JwksSource, C: CredentialIssuer, L: Ledger>(
    request: &LambdaFunctionUrlRequest,
    deps: &CredentialExchange<D, S, C, L>,
    outcome: &mut ExchangeOutcome,
) -> Result<Value, Refusal> {
    check_body(request)?;
    let bearer = bearer_token(&request.headers)?;
    let verified = match token::validate(bearer, &deps.issuers, &deps.keys).await {
        Ok(verified) => verified,
        Err(e) => {
            outcome.issuer = token::claimed_issuer(bearer, &deps.issuers).map(|i| i.issuer.clone());
            return Err(token_refusal(&e));
        }
    };
    outcome.issuer = Some(verified.issuer.clone());
    outcome.user = Some(verified.user_id.clone());
    trace!(source = SOURCE, issuer = %verified.issuer, sub = %verified.user_id, "token verified");
    let issuer = deps
        .issuers
        .get(&verified.issuer)
        .ok_or_else(|| Refusal::new(500, "exchange_failed", "the issuer is not configured"))?;

    let remaining = Duration::from_secs(verified.expires_at.saturating_sub(now_seconds()));
    if remaining < MIN_SESSION {
        return Err(Refusal::new(
            401,
            "token_about_to_expire",
            "the token expires within 900 seconds, the shortest session STS issues; sign in again",
        ));
    }
    let token_expiry = UNIX_EPOCH + Duration::from_secs(verified.expires_at);
    let now = SystemTime::now();
    if let Some(reused) = deps
        .sessions
        .reusable(&issuer.key, &verified.user_id, token_expiry, now)
    {
        outcome.session = Some(reused.duration);
        outcome.reused = true;
        return Ok(credentials_body(deps, &verified, &reused.credentials));
    }
    let record = check_identity(deps, issuer, &verified).await?;
    if deps.ensure_user {
        let applied = ensure_chime_user(deps, issuer, &verified, record.as_ref()).await?;
        outcome.chime_user = Some(applied);
    }
    let session = deps
        .max_session
        .clamp(MIN_SESSION, MAX_SESSION)
        .min(remaining);
    let sts_request = AssumeRoleRequest::for_user(&verified.user_id, &issuer.key, session);
    let credentials = deps
        .sts
        .assume_role(&sts_request)
        .await
        .map_err(|e| sts_refusal(&e, &verified))?;
    outcome.session = Some(session);
    let body = credentials_body(deps, &verified, &credentials);
    let cached = CachedSession {
        credentials,
        duration: session,
    };
    deps.sessions
        .keep(&issuer.key, &verified.user_id, cached, SystemTime::now());
    Ok(body)
}

fn credentials_body<D: Directory, S, C, L>(
    deps: &CredentialExchange<D, S, C, L>,
    verified: &VerifiedToken,
    credentials: &TemporaryCredentials,
) -> Value {
    let app_instance = deps.directory.app_instance_arn();
    json!({
        "credentials": {
            "accessKeyId": credentials.access_key_id,
            "secretAccessKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
            "expiration": humantime::format_rfc3339_seconds(credentials.expiration).to_string(),
        },
        "appInstanceArn": app_instance.as_str(),
        "appInstanceUserArn": app_instance.user_arn(&verified.user_id),
        "region": app_instance.region(),
    })
}

/// The user's ledger record, once `issuer` may act for the user: a user
/// another sign-in source owns (the pool, another issuer) is refused unless
/// the issuer shares that source's users (`sharesUsersWith`), so one
/// identity provider's administrator cannot mint credentials for another's
/// users. A check that cannot be made refuses (503): the ledger being down
/// must not open that door.
async fn check_identity<D, S, C, L: Ledger>(
    deps: &CredentialExchange<D, S, C, L>,
    issuer: &TrustedIssuer,
    verified: &VerifiedToken,
) -> Result<Option<UserRecord>, Refusal> {
    let records = deps
        .ledger
        .get_many(std::slice::from_ref(&verified.user_id))
        .await
        .map_err(|e| {
            error!(source = SOURCE, issuer = %issuer.key, sub = %verified.user_id,
                   outcome = "ownership_unavailable", error = %e);
            Refusal::new(
                503,
                "ownership_unavailable",
                "the user's identity cannot be checked right now; retry shortly",
            )
        })?;
    let record = records.into_iter().next().map(|(_, r)| r);
    if let Some(owner) = record.as_ref().and_then(|r| r.owner.as_ref())
        && !issuer.may_act_for(owner)
    {
        warn!(source = SOURCE, issuer = %issuer.key, sub = %verified.user_id,
              outcome = "identity_not_allowed", owner = owner.as_str());
        return Err(Refusal::new(
            403,
            "identity_not_allowed",
            "this identity provider may not act for this user",
        ));
    }
    Ok(record)
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The body is optional; when sent it must be a JSON object (its content is
/// not used yet, so clients can add fields later without breaking).
fn check_body(request: &LambdaFunctionUrlRequest) -> Result<(), Refusal> {
    let body = request.body.as_deref().unwrap_or("").trim();
    if body.is_empty() {
        return Ok(());
    }
    let bad = || {
        Refusal::new(
            400,
            "malformed_body",
            "the body must be empty or a JSON object (Content-Type: application/json)",
        )
    };
    if request.is_base64_encoded {
        return Err(bad());
    }
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(bad()),
    }
}

/// The bearer token of the one `Authorization` header.
///
/// Function URLs join repeated headers with commas, and a JWT has none, so a
/// comma means two `Authorization` headers: ambiguous, refused as 400.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
    let mut values = headers.get_all("authorization").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        if headers.contains_key("authorization") {
            return Err(duplicate_authorization());
        }
        return Err(Refusal::new(
            401,
            "missing_token",
            "send the identity provider's token as Authorization: Bearer <JWT>",
        ));
    };
    let value = value.to_str().map_err(|_| {
        Refusal::new(
            400,
            "malformed_header",
            "the Authorization header is not ASCII",
        )
    })?;
    if value.contains(',') {
        return Err(duplicate_authorization());
    }
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::new(
            401,
            "invalid_authorization",
            "the Authorization header must use the Bearer scheme: Authorization: Bearer <JWT>",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Refusal::new(
            401,
            "missing_token",
            "the Authorization header has no token after Bearer",
        ));
    }
    Ok(token)
}

fn duplicate_authorization() -> Refusal {
    Refusal::new(
        400,
        "duplicate_authorization",
        "send exactly one Authorization header",
    )
}

fn token_refusal(e: &TokenError) -> Refusal {
    match e {
        TokenError::KeysUnavailable(detail) => {
            error!(source = SOURCE, outcome = "jwks_unavailable", detail = %detail,
                   "cannot fetch the issuer's signing keys");
            Refusal {
                reason: Some(e.code()),
                ..Refusal::new(
                    503,
                    e.public_code(),
                    "the identity provider's signing keys cannot be fetched right now; retry \
                     shortly",
                )
            }
        }
        TokenError::Expired => Refusal {
            reason: Some(e.code()),
            ..Refusal::new(401, e.public_code(), e.to_string())
        },
        _ => Refusal {
            reason: Some(e.code()),
            ..Refusal::new(
                401,
                e.public_code(),
                "the token is not valid for this service",
            )
        },
    }
}

/// Create the Chime user if missing (the same domain code as
/// post-confirmation) and record the issuer's source as its owner; cancel a
/// pending deletion of a user that source owns. Recording is best effort:
/// a sign-in is never refused because the owner could not be written (an
/// unrecorded user is owned by no source, which no absence deletes).
async fn ensure_chime_user<D: Directory, S, C, L: Ledger>(
    deps: &CredentialExchange<D, S, C, L>,
    issuer: &TrustedIssuer,
    verified: &VerifiedToken,
    record: Option<&UserRecord>,
) -> Result<Applied, Refusal> {
    // The sub is a valid, non-personal name when no claim yields one.
    let name = deps
        .names
        .derive(&verified.claims)
        .or_else(|| DisplayName::parse(verified.user_id.as_str()).ok())
        .ok_or_else(|| Refusal::new(500, "chime_user_failed", "no display name"))?;
    let profile = UserProfile {
        id: verified.user_id.clone(),
        name,
        metadata: None,
    };
    let source = issuer.source.clone();
    let change = |kind| Change {
        id: profile.id.clone(),
        source: source.clone(),
        kind,
        at: Some(
            verified
                .issued_at
                .map_or_else(At::now, |s| At(s.saturating_mul(1000))),
        ),
    };
    let result = match deps.directory.ensure_exists_described(&profile).await {
        Ok((_, Some(user))) if user.deletion_pending() => {
            restore_if_owned(deps, &change(ChangeKind::SignIn), record).await
        }
        Ok((applied, _)) => Ok(applied),
        Err(e) => Err(e),
    };
    let applied = result.map_err(|e| chime_refusal(&e, verified))?;
    if applied == Applied::Created {
        // A claim, not a change of the user: it moves no clock.
        let claim = Change {
            at: None,
            ..change(ChangeKind::Create)
        };
        record_best_effort(deps, &claim).await;
    }
    Ok(applied)
}

/// A sign-in through the source that owns the user cancels its pending
/// deletion: the ledger's rules decide ([`ledger::judge`]), Chime is
/// restored, then the ledger records it. Anyone else's sign-in leaves the
/// deletion as it is (the credentials are still issued: the user exists).
async fn restore_if_owned<D: Directory, S, C, L: Ledger>(
    deps: &CredentialExchange<D, S, C, L>,
    change: &Change,
    record: Option<&UserRecord>,
) -> Result<Applied, DirectoryError> {
    if let Err(refusal) = ledger::judge(record, change, &UnownedPolicy::Keep) {
        info!(source = SOURCE, sub = %change.id, outcome = "deletion-kept", reason = refusal.code());
        return Ok(Applied::AlreadyProvisioned);
    }
    let restored = deps.directory.clear_expiration(&change.id).await?;
    record_best_effort(deps, change).await;
    Ok(restored)
}

async fn record_best_effort<D, S, C, L: Ledger>(
    deps: &CredentialExchange<D, S, C, L>,
    change: &Change,
) {
    if let Err(e) = deps
        .ledger
        .record(change, &UnownedPolicy::Keep, At::now())
        .await
    {
        warn!(source = SOURCE, sub = %change.id, outcome = "ledger-not-recorded",
              change = change.kind.as_str(), error = %e);
    }
}

fn chime_refusal(e: &DirectoryError, verified: &VerifiedToken) -> Refusal {
    let (status, code, message) = match e {
        DirectoryError::Throttled(_)
        | DirectoryError::Unavailable(_)
        | DirectoryError::Timeout
        | DirectoryError::Transport(_) => (
            503,
            "chime_unavailable",
            "the chat service is unavailable right now; retry shortly",
        ),
        _ => (
            500,
            "chime_user_failed",
            "the chat user could not be provisioned; the operators have been told",
        ),
    };
    error!(source = SOURCE, issuer = %verified.issuer, sub = %verified.user_id,
           outcome = code, chime_error = e.code(), detail = %e, "ensuring the Chime user failed");
    Refusal::new(status, code, message).denied(e.code() == DirectoryError::DENIED)
}

fn sts_refusal(e: &IssueError, verified: &VerifiedToken) -> Refusal {
    match e {
        IssueError::Throttled(_) | IssueError::Unavailable(_) => {
            warn!(source = SOURCE, issuer = %verified.issuer, sub = %verified.user_id,
                  outcome = "sts_unavailable", sts_error = e.code(), detail = %e);
            Refusal::new(
                503,
                "sts_unavailable",
                "AWS STS is unavailable or throttling right now; retry shortly",
            )
        }
        IssueError::Denied(_) | IssueError::Rejected(_) => {
            error!(source = SOURCE, issuer = %verified.issuer, sub = %verified.user_id,
                   outcome = "sts_denied", sts_error = e.code(), detail = %e,
                   "STS refused AssumeRole on the chat user role: its trust policy must let this \
                    function's role call sts:AssumeRole and sts:TagSession with the UserUUID tag");
            Refusal::new(
                500,
                "sts_denied",
                "credentials could not be issued; the operators have been told",
            )
            .denied(true)
        }
    }
}

/// The `Origin` header, when it is one of the allowed origins.
fn allowed_origin<'a>(headers: &HeaderMap, allowed: &'a [String]) -> Option<&'a str> {
    let origin = headers.get("origin")?.to_str().ok()?;
    allowed
        .iter()
        .find(|a| a.as_str() == origin)
        .map(String::as_str)
}

/// Answer a CORS preflight: 204 with the CORS headers for an allowed origin,
/// 403 otherwise.
fn preflight(
    headers: &HeaderMap,
    origin: Option<&str>,
    mut outcome: ExchangeOutcome,
) -> (LambdaFunctionUrlResponse, ExchangeOutcome) {
    let asks_post = headers
        .get("access-control-request-method")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
    let Some(origin) = origin.filter(|_| asks_post) else {
        let refusal = Refusal::new(
            403,
            "origin_not_allowed",
            "this origin may not call the credential exchange from a browser",
        );
        info!(
            source = SOURCE,
            outcome = refusal.code,
            status = refusal.status
        );
        return (
            refusal_response(&refusal, None),
            refusal_outcome(outcome, &refusal),
        );
    };
    outcome.status = 204;
    outcome.code = "preflight";
    info!(source = SOURCE, outcome = outcome.code, status = 204);
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = 204;
    set_headers(
        &mut response.headers,
        &[
            ("access-control-allow-methods", "POST, OPTIONS"),
            (
                "access-control-allow-headers",
                "authorization, content-type",
            ),
            ("access-control-max-age", "600"),
            ("cache-control", "no-store"),
        ],
    );
    cors(&mut response.headers, Some(origin));
    (response, outcome)
}

fn refusal_response(refusal: &Refusal, origin: Option<&str>) -> LambdaFunctionUrlResponse {
    let body = json!({"error": refusal.code, "message": refusal.message});
    let mut response = json_response(refusal.status, &body, origin);
    match refusal.status {
        401 => {
            let challenge = format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                refusal.code
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers.insert("www-authenticate", v);
            }
        }
        405 => set_headers(&mut response.headers, &[("allow", "POST, OPTIONS")]),
        503 => set_headers(&mut response.headers, &[("retry-after", "1")]),
        _ => {}
    }
    response
}

fn json_response(status: u16, body: &Value, origin: Option<&str>) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status);
    response.body = Some(body.to_string());
    set_headers(
        &mut response.headers,
        &[
            ("content-type", "application/json"),
            // Credentials (and refusals of them) must never sit in a cache.
            ("cache-control", "no-store"),
        ],
    );
    cors(&mut response.headers, origin);
    response
}

fn cors(headers: &mut HeaderMap, origin: Option<&str>) {
    if let Some(origin) = origin
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        headers.insert("access-control-allow-origin", v);
        // A browser hides every other response header from the page: a
        // client needs these two to back off and to tell why it was refused.
        set_headers(
            headers,
            &[(
                "access-control-expose-headers",
                "Retry-After, WWW-Authenticate",
            )],
        );
    }
    // Caches must key on Origin whenever the answer depends on it.
    set_headers(headers, &[("vary", "Origin")]);
}

fn set_headers(headers: &mut HeaderMap, pairs: &[(&'static str, &'static str)]) {
    for (name, value) in pairs {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use testkit::credentials::keys::{self, TestKey, hs256, now, tampered, unsigned};

    use super::*;
    use crate::credentials::memory::{InMemoryCredentialIssuer, StaticJwks};
    use crate::identity::AppInstanceArn;
    use crate::ledger::memory::InMemoryLedger;
    use crate::memory::InMemoryDirectory;

    const ISSUER: &str = "https://idp.example.com/tenant";
    const COGNITO: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E";
    const JWKS: &str = "https://idp.example.com/tenant/keys";
    const COGNITO_JWKS: &str =
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E/.well-known/jwks.json";
    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";
    const ARN: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/demo";

    type Deps =
        CredentialExchange<InMemoryDirectory, StaticJwks, InMemoryCredentialIssuer, InMemoryLedger>;

    struct World {
        rsa: TestKey,
        ec: TestKey,
        deps: Deps,
    }

    /// The OIDC issuer's discovery document and keys (RSA and EC), and the pool's (RSA).
    fn publishing(rsa: &TestKey, ec: &TestKey) -> StaticJwks {
        let jwks = StaticJwks::new();
        jwks.set(
            &format!("{ISSUER}/.well-known/openid-configuration"),
            json!({"issuer": ISSUER, "jwks_uri": JWKS}),
        );
        jwks.set(JWKS, keys::jwks(&[rsa, ec]));
        jwks.set(COGNITO_JWKS, keys::jwks(&[rsa]));
        jwks
    }

    /// The OIDC issuer with these settings, and the Cognito pool.
    fn issuers(okta: Value) -> TrustedIssuers {
        TrustedIssuers::parse(
            &json!({
                ISSUER: okta,
                COGNITO: {"audiences": ["client-1"], "tokenUse": "id", "jwksUri": COGNITO_JWKS,
                          "source": "pool"},
            })
            .to_string(),
        )
        .unwrap()
    }

    fn world() -> World {
        let (rsa, ec) = (TestKey::rsa("rsa-1"), TestKey::ec("ec-1"));
        let jwks = publishing(&rsa, &ec);
        let issuers = issuers(json!({"audiences": ["chat-app"], "key": "okta"}));
        let directory = InMemoryDirectory::new(AppInstanceArn::parse(ARN).unwrap());
        let mut deps = CredentialExchange::new(
            directory,
            InMemoryLedger::new(),
            jwks,
            InMemoryCredentialIssuer::new(),
            issuers,
        );
        deps.allowed_origins = vec!["https://chat.example.com".into()];
        World { rsa, ec, deps }
    }

    fn claims(extra: Value) -> Value {
        let mut c = json!({"iss": ISSUER, "aud": "chat-app", "sub": SUB, "iat": now(),
                           "exp": now() + 3600, "name": "Ada Lovelace",
                           "email": "ada@example.com"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(&k);
            } else {
                c[k] = v;
            }
        }
        c
    }

    fn event(method: &str, headers: Value, body: Option<&str>) -> Value {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/credentials",
               "rawQueryString": "", "headers": headers, "isBase64Encoded": false,
               "body": body,
               "requestContext": {"accountId": "anonymous", "apiId": "abc",
                   "domainName": "abc.lambda-url.us-east-1.on.aws", "domainPrefix": "abc",
                   "requestId": "r-1", "routeKey": "$default", "stage": "$default",
                   "time": "20/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_168_800_000_i64,
                   "http": {"method": method, "path": "/credentials", "protocol": "HTTP/1.1",
                            "sourceIp": "203.0.113.7", "userAgent": "test"}},
               "someFieldAwsAddsLater": {"x": 1}})
    }

    fn post(token: &str) -> Value {
        event(
            "POST",
            json!({"authorization": format!("Bearer {token}"), "content-type": "application/json",
                   "origin": "https://chat.example.com"}),
            Some("{}"),
        )
    }

    struct Answer {
        status: i64,
        body: Value,
        headers: HeaderMap,
        outcome: ExchangeOutcome,
    }

    async fn call(deps: &Deps, event: Value) -> Answer {
        let (response, outcome) = handle(event, deps).await;
        assert_eq!(response.status_code, i64::from(outcome.status));
        Answer {
            status: response.status_code,
            body: response
                .body
                .as_deref()
                .map(|b| serde_json::from_str(b).unwrap())
                .unwrap_or(Value::Null),
            headers: response.headers,
            outcome,
        }
    }

    fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
        a.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A refusal: status, error code, message fragment; no STS call; no token echoed.
    ///
    /// `code` is the precise reason: for a token that fails authentication
    /// the client sees only `invalid_token` and a fixed message, and the
    /// reason is the outcome's (the log's and the metric's); otherwise it is
    /// the body's `error`, and `says` a fragment of its message.
    async fn refused(w: &World, event: Value, status: i64, code: &str, says: &str) {
        let token_text = event.to_string();
        let a = call(&w.deps, event).await;
        let public = a.body["error"].as_str().unwrap_or_default();
        let message = a.body["message"].as_str().unwrap();
        if public == "invalid_token" {
            assert_eq!(
                (a.status, a.outcome.reason),
                (status, Some(code)),
                "{}",
                a.body
            );
            assert_eq!(message, "the token is not valid for this service");
            assert_eq!(a.outcome.code, "invalid_token");
        } else {
            assert_eq!((a.status, public), (status, code), "{}", a.body);
            assert!(message.contains(says), "{code}: {message}");
        }
        assert_eq!(header(&a, "cache-control"), Some("no-store"));
        assert!(
            w.deps.sts.requests().is_empty(),
            "{code}: STS must not be called"
        );
        // No part of the token (its signature, the longest part) is echoed.
        let body = a.body.to_string();
        for part in token_text.split(['.', ' ', '"']).filter(|p| p.len() > 20) {
            assert!(!body.contains(part), "{code}: body echoes the token");
        }
    }

    /// [`refused`] for a POST of a token of [`claims`] with `extra`, signed by the RSA key.
    async fn refused_claims(w: &World, extra: Value, status: i64, code: &str, says: &str) {
        refused(w, post(&w.rsa.sign(&claims(extra))), status, code, says).await;
    }

    /// [`refused`] for each `(event, status, code, message fragment)`.
    async fn refused_each(w: &World, cases: Vec<(Value, i64, &str, &str)>) {
        for (event, status, code, says) in cases {
            refused(w, event, status, code, says).await;
        }
    }

    #[tokio::test]
    async fn a_valid_rs256_token_gets_credentials_for_its_own_user() {
        let mut w = world();
        let a = call(&w.deps, post(&w.rsa.sign(&claims(json!({}))))).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(header(&a, "cache-control"), Some("no-store"));
        assert_eq!(header(&a, "content-type"), Some("application/json"));
        assert_eq!(
            header(&a, "access-control-allow-origin"),
            Some("https://chat.example.com")
        );
        let c = &a.body["credentials"];
        assert!(
            c["accessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIASTSDOUBLE")
        );
        assert_eq!(c["secretAccessKey"], "sts-double-secret-1");
        assert_eq!(c["sessionToken"], "sts-double-session-token-1");
        assert!(c["expiration"].as_str().unwrap().ends_with('Z'));
        assert_eq!(a.body["appInstanceArn"], ARN);
        assert_eq!(a.body["appInstanceUserArn"], format!("{ARN}/user/{SUB}"));
        assert_eq!(a.body["region"], "us-east-1");
        let sent = w.deps.sts.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0],
            AssumeRoleRequest::for_user(&UserId::parse(SUB).unwrap(), "okta", MAX_SESSION)
        );
        let users = w.deps.directory.users();
        assert_eq!((users.len(), users[0].name.as_str()), (1, "Ada Lovelace"));
        assert_eq!(a.outcome.chime_user, Some(Applied::Created));
        // A second exchange reuses the session: no STS call, no Chime call.
        let again = call(&w.deps, post(&w.rsa.sign(&claims(json!({}))))).await;
        assert!(again.outcome.reused);
        assert_eq!(again.body["credentials"], a.body["credentials"]);
        assert_eq!(w.deps.sts.requests().len(), 1);
        // With no session kept (a new sandbox) the user is found, not created.
        w.deps.sessions = SessionCache::new();
        let other = call(&w.deps, post(&w.rsa.sign(&claims(json!({}))))).await;
        assert_eq!(other.outcome.chime_user, Some(Applied::AlreadyProvisioned));
        assert_eq!(w.deps.directory.users().len(), 1);
    }

    #[tokio::test]
    async fn a_valid_es256_token_gets_credentials() {
        let w = world();
        let a = call(
            &w.deps,
            post(&w.ec.sign(&claims(json!({"sub": SUB.to_uppercase()})))),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        // Upper-case subs are folded as provisioning folds them.
        assert_eq!(w.deps.sts.requests()[0].source_identity, SUB);
    }

    #[tokio::test]
    async fn the_session_lasts_no_longer_than_the_token() {
        let w = world();
        let a = call(
            &w.deps,
            post(&w.rsa.sign(&claims(json!({"exp": now() + 1800})))),
        )
        .await;
        assert_eq!(a.status, 200);
        let d = w.deps.sts.requests()[0].duration.as_secs();
        assert!((1790..=1800).contains(&d), "{d}");
        refused(
            &world_sharing(&w),
            post(&w.rsa.sign(&claims(json!({"exp": now() + 600})))),
            401,
            "token_about_to_expire",
            "900 seconds",
        )
        .await;
    }

    #[tokio::test]
    async fn expired_and_immature_tokens_are_refused_with_60_s_leeway() {
        let w = world();
        let within = post(&w.rsa.sign(&claims(json!({"nbf": now() + 30}))));
        // nbf 30 s ahead is within the leeway; the token is accepted.
        assert_eq!(call(&w.deps, within).await.status, 200);
        let w = world();
        refused_each(
            &w,
            vec![
                (
                    post(&w.rsa.sign(&claims(json!({"exp": now() - 120})))),
                    401,
                    "token_expired",
                    "expired",
                ),
                (
                    post(&w.rsa.sign(&claims(json!({"nbf": now() + 300})))),
                    401,
                    "token_not_yet_valid",
                    "not valid yet",
                ),
                (
                    post(&w.rsa.sign(&claims(json!({"nbf": "0"})))),
                    401,
                    "missing_claim",
                    "nbf",
                ),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn wrong_issuer_and_audience_are_refused() {
        let w = world();
        refused(
            &w,
            post(
                &w.rsa
                    .sign(&claims(json!({"iss": "https://evil.example.com"}))),
            ),
            401,
            "untrusted_issuer",
            "issuer",
        )
        .await;
        refused_claims(
            &w,
            json!({"aud": "another-app"}),
            401,
            "wrong_audience",
            "aud",
        )
        .await;
        refused_claims(&w, json!({"iss": null}), 401, "missing_claim", "iss").await;
    }

    #[tokio::test]
    async fn cognito_token_use_and_client_id_are_checked() {
        let w = world();
        let id_token = claims(json!({"iss": COGNITO, "aud": "client-1", "token_use": "id"}));
        assert_eq!(
            call(&w.deps, post(&w.rsa.sign(&id_token))).await.status,
            200
        );
        let access_token = claims(json!({"iss": COGNITO, "aud": null, "client_id": "client-1",
                                        "token_use": "access"}));
        refused(
            &world_sharing(&w),
            post(&w.rsa.sign(&access_token)),
            401,
            "wrong_token_use",
            "token_use must be `id`",
        )
        .await;
        let other_client = claims(json!({"iss": COGNITO, "aud": null, "client_id": "client-2",
                                        "token_use": "id"}));
        refused(
            &world_sharing(&w),
            post(&w.rsa.sign(&other_client)),
            401,
            "wrong_audience",
            "client_id",
        )
        .await;
    }

    /// A fresh world (no STS requests yet) trusting the same keys.
    fn world_sharing(w: &World) -> World {
        let mut fresh = world();
        fresh.deps.keys = KeyCache::new(publishing(&w.rsa, &w.ec));
        fresh
    }

    #[tokio::test]
    async fn forged_algorithms_are_refused() {
        let w = world();
        let c = claims(json!({}));
        // (token, message fragment): each refused as algorithm_not_allowed.
        let mut forged = vec![(unsigned(&c, "rsa-1"), "not allowed")];
        // Alg confusion: HS256 with the RSA public key as the HMAC secret.
        for secret in [w.rsa.public_key_der(), w.rsa.jwk().to_string().into_bytes()] {
            forged.push((hs256(&c, "rsa-1", &secret), "not allowed"));
        }
        // The header may not pick another algorithm than the key's.
        let rs384 = w
            .rsa
            .sign_with_header(&json!({"alg": "RS384", "kid": "rsa-1"}), &c);
        forged.push((rs384, "issuer's key"));
        let cross = w
            .rsa
            .sign_with_header(&json!({"alg": "RS256", "kid": "ec-1"}), &c);
        forged.push((cross, "not allowed"));
        for (token, says) in forged {
            refused(&w, post(&token), 401, "algorithm_not_allowed", says).await;
        }
    }

    #[tokio::test]
    async fn an_unknown_kid_is_refused_after_at_most_one_fetch() {
        let w = world();
        assert_eq!(
            call(&w.deps, post(&w.rsa.sign(&claims(json!({})))))
                .await
                .status,
            200
        );
        assert_eq!(w.deps.keys.source().fetches(JWKS), 1);
        // A key the IdP does not publish: the cache was filled just now, so the
        // refetch waits for the minute to pass (tested with paused time in keys.rs).
        let stranger = TestKey::rsa("rsa-unknown");
        let fresh = world_sharing(&w);
        for after in [
            "cold cache: one fetch, no retry",
            "within the minute: no refetch",
        ] {
            let token = stranger.sign(&claims(json!({})));
            refused(&fresh, post(&token), 401, "unknown_key", "kid").await;
            assert_eq!(fresh.deps.keys.source().fetches(JWKS), 1, "{after}");
        }
    }

    #[tokio::test]
    async fn tampered_oversized_and_garbled_tokens_are_refused() {
        let w = world();
        let good = w.rsa.sign(&claims(json!({})));
        let other = tampered(
            &good,
            &claims(json!({"sub": "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"})),
        );
        refused(&w, post(&other), 401, "invalid_signature", "signature").await;
        let big = w.rsa.sign(&claims(json!({"padding": "x".repeat(17_000)})));
        refused(&w, post(&big), 401, "token_too_large", "16384").await;
        refused(&w, post("not-a-jwt"), 401, "malformed_token", "three").await;
        refused(&w, post("a.b.c"), 401, "malformed_token", "base64url").await;
    }

    #[tokio::test]
    async fn missing_duplicate_and_other_authorization_headers() {
        let w = world();
        let token = w.rsa.sign(&claims(json!({})));
        refused(
            &w,
            event("POST", json!({}), None),
            401,
            "missing_token",
            "Bearer",
        )
        .await;
        let twice = json!({"authorization": format!("Bearer {token},Bearer {token}")});
        refused(
            &w,
            event("POST", twice, None),
            400,
            "duplicate_authorization",
            "exactly one",
        )
        .await;
        let basic = json!({"authorization": "Basic YWRhOnNlY3JldA=="});
        refused_each(
            &w,
            vec![
                (
                    event("POST", basic, None),
                    401,
                    "invalid_authorization",
                    "Bearer",
                ),
                (
                    event("POST", json!({"authorization": "Bearer "}), None),
                    401,
                    "missing_token",
                    "no token",
                ),
            ],
        )
        .await;
        let a = call(&w.deps, event("POST", json!({}), None)).await;
        assert!(
            header(&a, "www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }

    #[tokio::test]
    async fn malformed_requests_are_400_and_other_routes_404_405() {
        let w = world();
        let token = w.rsa.sign(&claims(json!({})));
        let auth = json!({"authorization": format!("Bearer {token}")});
        refused_each(
            &w,
            vec![
                (
                    json!({"rawPath": "/credentials"}),
                    400,
                    "malformed_request",
                    "Function URL",
                ),
                (
                    event("POST", auth.clone(), Some("[1,2]")),
                    400,
                    "malformed_body",
                    "JSON object",
                ),
                (
                    event("POST", auth.clone(), Some("{not json")),
                    400,
                    "malformed_body",
                    "JSON object",
                ),
                (
                    event("GET", auth.clone(), None),
                    405,
                    "method_not_allowed",
                    "POST",
                ),
            ],
        )
        .await;
        let mut elsewhere = event("POST", auth, None);
        elsewhere["rawPath"] = json!("/admin");
        refused(&w, elsewhere, 404, "not_found", "/credentials").await;
    }

    #[tokio::test]
    async fn jwks_down_is_503_not_401() {
        let w = world();
        w.deps.keys.source().set_down(true);
        refused_claims(&w, json!({}), 503, "jwks_unavailable", "retry").await;
    }

    #[tokio::test]
    async fn a_user_id_that_is_not_a_chime_id_is_refused() {
        let w = world();
        refused_each(
            &w,
            vec![
                (
                    post(&w.rsa.sign(&claims(json!({"sub": "ada@example.com"})))),
                    401,
                    "invalid_user_id",
                    "UUID",
                ),
                (
                    post(&w.rsa.sign(&claims(json!({"sub": null})))),
                    401,
                    "missing_claim",
                    "sub",
                ),
            ],
        )
        .await;
        assert!(w.deps.directory.users().is_empty());
    }

    #[tokio::test]
    async fn sts_throttled_is_503_and_denied_is_500() {
        let w = world();
        w.deps
            .sts
            .fail_next([IssueError::Throttled("Rate exceeded".into())]);
        let a = call(&w.deps, post(&w.rsa.sign(&claims(json!({}))))).await;
        assert_eq!(
            (a.status, a.body["error"].as_str()),
            (503, Some("sts_unavailable"))
        );
        assert_eq!(header(&a, "retry-after"), Some("1"));
        w.deps.sts.fail_next([IssueError::Denied(
            "not authorized to perform: sts:TagSession".into(),
        )]);
        let a = call(&w.deps, post(&w.rsa.sign(&claims(json!({}))))).await;
        assert_eq!(
            (a.status, a.body["error"].as_str()),
            (500, Some("sts_denied"))
        );
        assert!(
            !a.body.to_string().contains("TagSession"),
            "internals stay in the log"
        );
        assert_eq!(w.deps.sts.requests().len(), 2);
    }

    #[tokio::test]
    async fn each_answer_is_one_decision_and_a_denial_is_counted_besides() {
        let w = world();
        let counted = |a: &Answer| metrics(&a.outcome, &w.deps.directory).counted();
        let ok = || post(&w.rsa.sign(&claims(json!({}))));
        let first = call(&w.deps, ok()).await;
        assert_eq!(
            counted(&first),
            [
                (Metric::Decisions, 1),
                (Metric::Created, 1),
                (Metric::CredentialsIssued, 1)
            ]
        );
        // Each call from a fresh sandbox (no session kept).
        w.deps.sessions.clear();
        let again = call(&w.deps, ok()).await;
        let m = metrics(&again.outcome, &w.deps.directory);
        assert_eq!(m.count(Metric::AlreadyExists), 1);
        assert_eq!(m.latencies().len(), 1, "one describe");
        w.deps.sessions.clear();
        w.deps
            .sts
            .fail_next([IssueError::Denied("not authorized".into())]);
        let sts_denied = call(&w.deps, ok()).await;
        let m = metrics(&sts_denied.outcome, &w.deps.directory);
        assert_eq!((m.count(Metric::Failed), m.count(Metric::Denied)), (1, 1));
        w.deps
            .directory
            .fail_next([DirectoryError::AccessDenied("403".into())]);
        let chime_denied = call(&w.deps, ok()).await;
        assert_eq!(
            counted(&chime_denied),
            [
                (Metric::Decisions, 1),
                (Metric::Failed, 1),
                (Metric::Denied, 1)
            ]
        );
        w.deps
            .directory
            .fail_next([DirectoryError::Throttled("429".into())]);
        let unavailable = call(&w.deps, ok()).await;
        assert_eq!(
            counted(&unavailable),
            [(Metric::Decisions, 1), (Metric::Unavailable, 1)]
        );
        let expired = call(
            &w.deps,
            post(&w.rsa.sign(&claims(json!({"exp": now() - 3600})))),
        )
        .await;
        assert_eq!(
            counted(&expired),
            [(Metric::Decisions, 1), (Metric::Refused, 1)]
        );
        let not_an_event = call(&w.deps, json!({"rawPath": "/credentials"})).await;
        assert_eq!(
            counted(&not_an_event),
            [(Metric::Decisions, 1), (Metric::InvalidEvent, 1)]
        );
    }

    #[tokio::test]
    async fn chime_trouble_is_503_or_500_and_skips_sts() {
        let w = world();
        w.deps
            .directory
            .fail_next([DirectoryError::Unavailable("503".into())]);
        refused_claims(&w, json!({}), 503, "chime_unavailable", "retry").await;
        w.deps
            .directory
            .fail_next([DirectoryError::AccessDenied("403".into())]);
        refused_claims(&w, json!({}), 500, "chime_user_failed", "operators").await;
    }

    #[tokio::test]
    async fn ensuring_the_user_can_be_switched_off() {
        let mut w = world();
        w.deps.ensure_user = false;
        let a = call(&w.deps, post(&w.rsa.sign(&claims(json!({}))))).await;
        assert_eq!(a.status, 200);
        assert_eq!(w.deps.directory.calls(), 0);
        assert_eq!(a.outcome.chime_user, None);
    }

    #[tokio::test]
    async fn cors_preflight_for_allowed_origins_only() {
        let w = world();
        let preflight = |origin: &str| {
            event(
                "OPTIONS",
                json!({"origin": origin, "access-control-request-method": "POST",
                                    "access-control-request-headers": "authorization"}),
                None,
            )
        };
        let a = call(&w.deps, preflight("https://chat.example.com")).await;
        assert_eq!(a.status, 204);
        assert_eq!(
            header(&a, "access-control-allow-origin"),
            Some("https://chat.example.com")
        );
        assert_eq!(
            header(&a, "access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
        assert!(
            header(&a, "access-control-allow-headers")
                .unwrap()
                .contains("authorization")
        );
        assert_eq!(header(&a, "vary"), Some("Origin"));
        refused(
            &w,
            preflight("https://evil.example.com"),
            403,
            "origin_not_allowed",
            "origin",
        )
        .await;
        // A POST from another origin still works (CORS is the browser's check),
        // but carries no allow-origin header.
        let mut other = post(&w.rsa.sign(&claims(json!({}))));
        other["headers"]["origin"] = json!("https://evil.example.com");
        let a = call(&w.deps, other).await;
        assert_eq!(a.status, 200);
        assert_eq!(header(&a, "access-control-allow-origin"), None);
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn logs_hold_issuer_sub_and_outcome_never_tokens_or_secrets() {
        let w = world();
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(logs.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let token = w.rsa.sign(&claims(json!({})));
        assert_eq!(call(&w.deps, post(&token)).await.status, 200);
        let expired = w.rsa.sign(&claims(json!({"exp": now() - 300})));
        assert_eq!(call(&w.deps, post(&expired)).await.status, 401);
        w.deps.sessions.clear();
        w.deps
            .sts
            .fail_next([IssueError::Denied("AccessDenied".into())]);
        assert_eq!(call(&w.deps, post(&token)).await.status, 500);
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains(r#""outcome":"credentials-issued""#), "{text}");
        assert!(text.contains(&format!(r#""sub":"{SUB}""#)), "{text}");
        assert!(text.contains(&format!(r#""issuer":"{ISSUER}""#)), "{text}");
        assert!(text.contains("sts:AssumeRole and sts:TagSession"), "{text}");
        for secret in [
            token.as_str(),
            expired.as_str(),
            token.rsplit('.').next().unwrap(),
            "sts-double-secret",
            "sts-double-session-token",
            "ada@example.com",
            "Ada Lovelace",
        ] {
            assert!(!text.contains(secret), "the log holds {secret}:\n{text}");
        }
    }

    fn user_id() -> UserId {
        UserId::parse(SUB).unwrap()
    }

    #[tokio::test]
    async fn a_user_the_exchange_creates_is_owned_by_the_issuers_source() {
        let w = world();
        let token = w.rsa.sign(&claims(json!({})));
        let a = call(&w.deps, post(&token)).await;
        assert_eq!(
            (a.status, a.outcome.chime_user),
            (200, Some(Applied::Created))
        );
        let record = w.deps.ledger.get(&user_id()).unwrap();
        assert_eq!(record.owner, Some(ledger::Source::issuer("okta").unwrap()));
        // A second sign-in (in another sandbox: no session kept) finds the
        // user and writes nothing: one read, whose user this is.
        w.deps.sessions.clear();
        let calls = w.deps.ledger.calls();
        let a = call(&w.deps, post(&token)).await;
        assert_eq!(a.outcome.chime_user, Some(Applied::AlreadyProvisioned));
        assert_eq!(w.deps.ledger.calls(), calls + 1);
    }

    #[tokio::test]
    async fn a_sign_in_cancels_a_pending_deletion_only_for_the_owning_issuer() {
        for (owner, cancelled) in [
            (ledger::Source::issuer("okta").unwrap(), true),
            (ledger::Source::pool(), false),
        ] {
            // The pool's users only for an issuer told it shares them.
            let w = world_with(json!({"sharesUsersWith": ["pool"]}));
            let profile = UserProfile {
                id: user_id(),
                name: DisplayName::parse("Ada").unwrap(),
                metadata: None,
            };
            w.deps.directory.create(&profile).await.unwrap();
            let deleted_at = At((now() - 600) * 1000);
            w.deps.ledger.put(
                user_id(),
                ledger::UserRecord {
                    owner: Some(owner.clone()),
                    changed_at: Some(deleted_at),
                    deletion: Some(ledger::DeletionMark {
                        by: owner.clone(),
                        absence: false,
                        at: deleted_at,
                    }),
                    held: None,
                },
            );
            let d = &w.deps.directory;
            d.schedule_deletion(&user_id(), 7, d.now()).await.unwrap();
            let token = w.rsa.sign(&claims(json!({})));
            let a = call(&w.deps, post(&token)).await;
            assert_eq!(
                a.status, 200,
                "{owner}: the user exists, credentials are issued"
            );
            let pending = d.users()[0].deletion_pending();
            assert_eq!(!pending, cancelled, "{owner}");
            let mark = w.deps.ledger.get(&user_id()).unwrap().deletion;
            assert_eq!(mark.is_none(), cancelled, "{owner}");
            let want = if cancelled {
                Applied::Restored
            } else {
                Applied::AlreadyProvisioned
            };
            assert_eq!(a.outcome.chime_user, Some(want));
        }
    }

    /// Whose user this is cannot be checked: refused (503), never skipped,
    /// since skipping would let any issuer act as anyone while the ledger
    /// is down. Nothing is created or asked of STS.
    #[tokio::test]
    async fn the_ledger_down_refuses_rather_than_skip_the_identity_check() {
        let w = world();
        w.deps
            .ledger
            .fail_next([ledger::LedgerError::Unavailable("503".into())]);
        let token = w.rsa.sign(&claims(json!({})));
        let a = call(&w.deps, post(&token)).await;
        assert_eq!(
            (a.status, a.body["error"].as_str()),
            (503, Some("ownership_unavailable"))
        );
        assert_eq!(header(&a, "retry-after"), Some("1"));
        assert!(w.deps.directory.users().is_empty());
        assert!(w.deps.sts.requests().is_empty());
    }

    // -- Issue 20: the attack matrix in core ------------------------------

    /// `claims()` with `key` set to `value`, `null` included.
    fn claims_raw(key: &str, value: Value) -> Value {
        let mut c = claims(json!({}));
        c[key] = value;
        c
    }

    /// [`world`] with these settings added to the OIDC issuer's.
    fn world_with(settings: Value) -> World {
        let mut w = world();
        let mut okta = json!({"audiences": ["chat-app"], "key": "okta"});
        for (k, v) in settings.as_object().cloned().unwrap_or_default() {
            okta[k] = v;
        }
        w.deps.issuers = issuers(okta);
        w
    }

    #[tokio::test]
    async fn an_audience_of_the_wrong_shape_is_refused_not_skipped() {
        let w = world();
        for aud in [
            json!(null),
            json!([]),
            json!(5),
            json!(""),
            json!([5]),
            json!({}),
        ] {
            let token = w.rsa.sign(&claims_raw("aud", aud.clone()));
            refused(&w, post(&token), 401, "malformed_audience", "").await;
        }
    }

    #[tokio::test]
    async fn several_audiences_need_this_application_as_azp() {
        let w = world();
        let both = json!(["other-app", "chat-app"]);
        let token = w.rsa.sign(&claims_raw("aud", both.clone()));
        refused(&w, post(&token), 401, "wrong_authorized_party", "").await;
        let other = claims(json!({"aud": both.clone(), "azp": "other-app"}));
        refused(
            &w,
            post(&w.rsa.sign(&other)),
            401,
            "wrong_authorized_party",
            "",
        )
        .await;
        let single_wrong = claims(json!({"azp": "other-app"}));
        refused(
            &w,
            post(&w.rsa.sign(&single_wrong)),
            401,
            "wrong_authorized_party",
            "",
        )
        .await;
        let ok = claims(json!({"aud": both, "azp": "chat-app"}));
        assert_eq!(call(&w.deps, post(&w.rsa.sign(&ok))).await.status, 200);
    }

    #[tokio::test]
    async fn configured_authorized_parties_are_required_of_every_token() {
        let w = world_with(json!({"authorizedParties": ["chat-web"]}));
        refused_claims(&w, json!({}), 401, "wrong_authorized_party", "").await;
        let ok = claims(json!({"azp": "chat-web"}));
        assert_eq!(call(&w.deps, post(&w.rsa.sign(&ok))).await.status, 200);
    }

    #[tokio::test]
    async fn times_may_be_fractional_but_iat_not_in_the_future() {
        let w = world();
        let future = claims(json!({"iat": now() + 3 * 365 * 86_400}));
        refused(&w, post(&w.rsa.sign(&future)), 401, "issued_in_future", "").await;
        let nbf = claims(json!({"nbf": now() as f64 + 600.5}));
        refused(&w, post(&w.rsa.sign(&nbf)), 401, "token_not_yet_valid", "").await;
        let text = claims(json!({"exp": "tomorrow"}));
        refused(&w, post(&w.rsa.sign(&text)), 401, "missing_claim", "").await;
        let float = claims(json!({"exp": now() as f64 + 3600.25, "iat": now() as f64 - 0.5}));
        let a = call(&w.deps, post(&w.rsa.sign(&float))).await;
        assert_eq!(
            a.status, 200,
            "RFC 7519 NumericDates need not be integers: {}",
            a.body
        );
    }

    #[tokio::test]
    async fn token_types_are_checked_when_configured() {
        let w = world_with(json!({"tokenTypes": ["at+jwt"]}));
        let header = |typ: &str| json!({"alg": "RS256", "kid": "rsa-1", "typ": typ});
        let token = w.rsa.sign_with_header(&header("JWT"), &claims(json!({})));
        refused(&w, post(&token), 401, "wrong_token_type", "").await;
        let token = w
            .rsa
            .sign_with_header(&header("application/AT+JWT"), &claims(json!({})));
        assert_eq!(call(&w.deps, post(&token)).await.status, 200);
    }

    #[tokio::test]
    async fn a_non_uuid_user_id_maps_to_its_uuid_v5_and_the_issuer_is_tagged() {
        let w = world_with(json!({"userIdFormat": "uuid-v5"}));
        let a = call(
            &w.deps,
            post(&w.rsa.sign(&claims(json!({"sub": "00u1ab2cd3EF4gh5i6j7"})))),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let id = crate::identity::derived_user_id(ISSUER, "00u1ab2cd3EF4gh5i6j7");
        assert_eq!(a.body["appInstanceUserArn"], format!("{ARN}/user/{id}"));
        assert_eq!(
            w.deps.sts.requests()[0].tags,
            vec![
                ("UserUUID".to_owned(), id.to_string()),
                ("Issuer".to_owned(), "okta".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn an_issuer_acts_only_for_users_it_may_vouch_for() {
        let w = world();
        let id = UserId::parse(SUB).unwrap();
        w.deps
            .ledger
            .set_owner(&id, &ledger::Source::pool())
            .await
            .unwrap();
        let token = w.rsa.sign(&claims(json!({})));
        refused(
            &w,
            post(&token),
            403,
            "identity_not_allowed",
            "may not act for this user",
        )
        .await;
        // Told to share the pool's users, it may; the feed's users it always may.
        let shared = world_with(json!({"sharesUsersWith": ["pool"]}));
        shared
            .deps
            .ledger
            .set_owner(&id, &ledger::Source::pool())
            .await
            .unwrap();
        let token = shared.rsa.sign(&claims(json!({})));
        assert_eq!(call(&shared.deps, post(&token)).await.status, 200);
        let fed = world();
        let feed = ledger::Source::feed(None).unwrap();
        fed.deps.ledger.set_owner(&id, &feed).await.unwrap();
        let token = fed.rsa.sign(&claims(json!({})));
        assert_eq!(call(&fed.deps, post(&token)).await.status, 200);
    }

    #[tokio::test]
    async fn the_same_user_gets_the_same_session_until_it_runs_short() {
        let w = world();
        let token = w.rsa.sign(&claims(json!({})));
        for _ in 0..100 {
            assert_eq!(call(&w.deps, post(&token)).await.status, 200);
        }
        assert_eq!(
            w.deps.sts.requests().len(),
            1,
            "one AssumeRole for a hundred requests"
        );
        // A token that expires before the cached session does: a shorter one.
        let shorter = w.rsa.sign(&claims(json!({"exp": now() + 1800})));
        let a = call(&w.deps, post(&shorter)).await;
        assert!(!a.outcome.reused);
        assert_eq!(w.deps.sts.requests().len(), 2);
    }

    #[tokio::test]
    async fn browsers_may_read_the_headers_that_say_why_and_when() {
        let w = world();
        let a = call(&w.deps, post("not.a.jwt")).await;
        assert_eq!(
            header(&a, "access-control-expose-headers"),
            Some("Retry-After, WWW-Authenticate")
        );
    }
}
