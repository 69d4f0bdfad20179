//! `serve-fake`'s local loop: beside the Chime fake, on the same port, the
//! other services the five functions call, so each can run under
//! `cargo lambda watch` on a machine without an AWS account:
//!
//! - Cognito's `ListUsers` (a demo pool, for reconcile),
//! - STS's `AssumeRole` (for the credential exchange),
//! - SQS's `SendMessage`/`SendMessageBatch` into a simulated `sync.fifo` and
//!   its DLQ, a batch of which `POST /_local/queues/{name}/batch` hands out
//!   as the event idp-sync would get,
//! - an OIDC identity provider at `/idp` (discovery and JWKS) whose demo key
//!   signs the token of the credential exchange's sample request.
//!
//! Each is the workspace's one fake of that service (the Cognito fake, the
//! credential test kit's STS and IdP, the SQS simulator), answered through
//! one dispatcher on `POST /`: `X-Amz-Target` names Cognito's and SQS's
//! JSON operations; STS's query protocol has none. The demo key is published
//! on purpose; the issuer is trusted only by the environment printed here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chime_sync_core::replay::{DEMO_APP_INSTANCE_ARN, DEMO_POOL, DEMO_POOL_ID};
use serde_json::{Value, json};
use sqs_sim::wire::{SqsEndpoint, TARGET_PREFIX as SQS_TARGET};
use sqs_sim::{QueueConfig, Sqs, TokioClock};
use testkit::cognito_fake::CognitoPools;
use testkit::credentials::TestKey;
use testkit::credentials::keys::jwks;
use testkit::credentials::sts::StsEndpoint;

/// The audience of the demo token, and the only one the printed
/// `TRUSTED_ISSUERS` accepts.
const AUDIENCE: &str = "local-chat";
/// The role whose sessions the local STS hands out (any role ARN will do).
const CHAT_USER_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/chime-sync-local-chat-user";
/// The queues the functions send to, as the stack names them.
const SYNC_QUEUE: &str = "sync.fifo";
const DEAD_LETTER_QUEUE: &str = "sync-dlq.fifo";
/// The account in the local queue URLs.
const ACCOUNT: &str = "123456789012";
/// How long the demo token is good for: a working day of local runs.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The local services, ready to be served beside the Chime fake.
pub(crate) struct LocalLoop {
    origin: String,
    /// The demo key: its JWKS is the local issuer's, and it signs the demo token.
    key: TestKey,
    cognito: CognitoPools,
    sts: StsEndpoint,
    sqs: SqsEndpoint,
}

#[derive(Clone)]
struct Services {
    cognito: CognitoPools,
    sts: StsEndpoint,
    sqs: SqsEndpoint,
}

impl LocalLoop {
    /// The services of a server reached at `origin` (`http://127.0.0.1:4566`).
    pub(crate) fn new(origin: &str) -> Result<Self, String> {
        let cognito = CognitoPools::new(testkit::cognito_fake::USER_LIST_QUOTA_RPS);
        cognito.set_users(DEMO_POOL_ID, demo_pool());
        let sqs = Sqs::new(Arc::new(TokioClock::new()), 2026);
        sqs.create_queue(QueueConfig::fifo(DEAD_LETTER_QUEUE))
            .and_then(|()| {
                sqs.create_queue(QueueConfig::fifo(SYNC_QUEUE).with_redrive(DEAD_LETTER_QUEUE, 5))
            })
            .map_err(|e| format!("cannot create the local queues: {e}"))?;
        Ok(Self {
            origin: origin.to_owned(),
            key: TestKey::try_demo_rsa()?,
            cognito,
            sts: StsEndpoint::new(),
            sqs: SqsEndpoint::new(Arc::new(sqs)),
        })
    }

    /// What the Chime fake answers for every request that is not Chime's.
    pub(crate) fn router(&self) -> Router {
        let services = Services {
            cognito: self.cognito.clone(),
            sts: self.sts.clone(),
            sqs: self.sqs.clone(),
        };
        let aws = Router::new()
            .route("/", post(dispatch))
            .route("/_local/queues/{queue}/batch", post(take_batch))
            .with_state(services);
        aws.merge(testkit::credentials::idp::publisher(
            &self.origin,
            jwks(&[&self.key]),
        ))
    }

    /// The environment every function needs to run against these services
    /// and the Chime fake, one `NAME=value` a line (`cargo lambda watch
    /// --env-file`).
    pub(crate) fn lambda_env(&self) -> Vec<(&'static str, String)> {
        let origin = &self.origin;
        let queue = |name: &str| format!("{origin}/{ACCOUNT}/{name}");
        vec![
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
            ("AWS_ENDPOINT_URL", origin.clone()),
            ("APP_INSTANCE_ARN", DEMO_APP_INSTANCE_ARN.to_owned()),
            ("SYNC_QUEUE_URL", queue(SYNC_QUEUE)),
            ("DLQ_URL", queue(DEAD_LETTER_QUEUE)),
            ("USER_POOL_ID", DEMO_POOL_ID.to_owned()),
            (
                "TRUSTED_ISSUERS",
                json!({ self.issuer(): {"audiences": [AUDIENCE]} }).to_string(),
            ),
            ("CHAT_USER_ROLE_ARN", CHAT_USER_ROLE_ARN.to_owned()),
            ("LEDGER_TABLE", "memory".to_owned()),
        ]
    }

    fn issuer(&self) -> String {
        format!("{}/idp", self.origin)
    }

    /// An ID token of the demo user (Annie Easley), signed by the demo key,
    /// good for [`TOKEN_LIFETIME`].
    pub(crate) fn demo_token(&self) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.key.try_sign(&json!({
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "sub": "4a7c1e9b-3d5f-4b2a-8c6e-0f1d3b5a7c92",
            "name": "Annie Easley",
            "iat": now,
            "exp": now + TOKEN_LIFETIME.as_secs(),
        }))
    }

    /// Write `lambda.env` and `credential-exchange.json` (a Function URL
    /// request bearing [`LocalLoop::demo_token`]) into `dir`.
    pub(crate) fn write_files(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let env: String = self
            .lambda_env()
            .iter()
            .map(|(name, value)| format!("{name}={}\n", env_file_value(value)))
            .collect();
        let request = function_url_request(&self.demo_token()?);
        let files = [
            (dir.join("lambda.env"), env),
            (
                dir.join("credential-exchange.json"),
                format!("{request:#}\n"),
            ),
        ];
        for (path, text) in &files {
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(files.into_iter().map(|(path, _)| path).collect())
    }
}

/// A value as dotenv files (cargo lambda's `--env-file`) read it: JSON's
/// quotes and braces inside single quotes, which take everything literally.
fn env_file_value(value: &str) -> String {
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
    {
        value.to_owned()
    } else {
        format!("'{value}'")
    }
}

/// `POST /`: Cognito and SQS by their `X-Amz-Target`, STS otherwise.
async fn dispatch(State(services): State<Services>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target.starts_with("AWSCognitoIdentityProviderService.") {
        services.cognito.answer(&headers, &body)
    } else if target.starts_with(SQS_TARGET) {
        services.sqs.answer(&headers, &body)
    } else {
        services.sts.answer(&headers, &body)
    }
}

/// `POST /_local/queues/{queue}/batch`: up to ten messages as an `SqsEvent`.
async fn take_batch(State(services): State<Services>, UrlPath(queue): UrlPath<String>) -> Response {
    match services.sqs.take_batch(&queue) {
        Ok(event) => axum::Json(event).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    }
}

/// The replay's demo pool, as `ListUsers` shows it.
fn demo_pool() -> Vec<Value> {
    DEMO_POOL
        .iter()
        .map(|(username, sub, name)| {
            testkit::cognito_fake::user(username, sub, "CONFIRMED", true, Some(name))
        })
        .collect()
}

/// A Lambda Function URL request (payload 2.0) for `POST /credentials`.
fn function_url_request(token: &str) -> Value {
    let host = "local.lambda-url.us-east-1.on.aws";
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/credentials",
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {token}"),
            "content-type": "application/json",
            "host": host,
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": "POST",
                "path": "/credentials",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "chime-sync-local-loop",
            },
            "requestId": "00000000-0000-4000-8000-000000000001",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1_767_225_600_000_u64,
        },
        "body": "{}",
        "isBase64Encoded": false,
    })
}
