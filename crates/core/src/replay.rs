//! Replaying sample events (`events/`) through the real handlers.
//!
//! One engine serves the CLI (`chime-sync replay`) and the replay tests, so
//! what a newcomer sees is exactly what the tests assert. The function an
//! event is for is read from its shape (`Records` → idp-sync, `triggerSource`
//! prefix → the Cognito triggers), so any AWS-shaped file can be replayed.
//!
//! The embedded setup ([`Replay::embedded`]) uses an in-memory directory in
//! which one well-known sub ([`OUTAGE_SUB`]) always gets `ServiceUnavailable`,
//! so the samples can show the hand-off and the blocked-group paths without
//! a network.
//!
//! A scheduled event (`events/reconcile/`) runs a reconcile cycle against an
//! embedded user pool ([`DEMO_POOL`], the same pool `chime-sync serve-fake`
//! serves), publishing what it plans to the in-memory sync queue.
//!
//! Credential-exchange samples (Function URL events) are validated against an
//! **embedded JWKS** ([`DEMO_JWKS`], the public halves of two demo keys that
//! signed the sample tokens) and answered by an **STS double** that records
//! the request and hands out obviously fake credentials: no IdP, no AWS.

use std::path::{Path, PathBuf};

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;
use thiserror::Error;

use crate::credentials::memory::{InMemoryCredentialIssuer, StaticJwks};
use crate::credentials::{JwksLocation, TokenUse, TrustedIssuer, TrustedIssuers, UserIdFormat};
use crate::directory::Directory;
use crate::error::DirectoryError;
use crate::handlers::cognito::{trigger_source, user_attributes};
use crate::handlers::credential_exchange::{self, CredentialExchange};
use crate::handlers::idp_sync::{self, IdpSync};
use crate::handlers::post_confirmation::{self, PostConfirmation};
use crate::handlers::pre_signup::{self, SignUpDecision, SignUpPolicy};
use crate::handlers::reconcile::{self, Reconcile};
use crate::identity::{AppInstanceArn, UserId};
use crate::ledger::Source;
use crate::ledger::memory::InMemoryLedger;
use crate::memory::{InMemoryDirectory, InMemoryQueue, InMemoryUserPool};
use crate::profile::DisplayNamePolicy;
use crate::user_pool::PoolUser;

/// The AppInstance of the embedded directory.
pub const DEMO_APP_INSTANCE_ARN: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/demo-app-instance";
/// The sub whose Chime calls always fail with ServiceUnavailable in the embedded directory.
pub const OUTAGE_SUB: &str = "0000dead-0000-4000-8000-000000000503";
/// The sign-up policy of the replay: `ALLOWED_EMAIL_DOMAINS=example.com,example.org`,
/// `AUTO_VERIFY_EMAIL=true`, `AUTO_CONFIRM=false`.
pub const DEMO_ALLOWED_DOMAINS: &str = "example.com,example.org";
/// The display-name policy of the replay: a pool that wants a real name, so
/// the email's local part is not a fallback and a nameless sign-up is refused.
pub const DEMO_DISPLAY_NAME_ATTRIBUTES: &str = "preferred_username,name,given_name family_name";
/// The replay's trusted issuers: a Cognito user pool (ID tokens of one app
/// client) and a generic OIDC provider. Both publish [`DEMO_JWKS`].
pub const DEMO_COGNITO_ISSUER: &str =
    "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_DEMO12345";
pub const DEMO_OIDC_ISSUER: &str = "https://idp.example.com/oauth2/demo";
/// The user pool of the sample Cognito events, which the replay's reconcile
/// reads and `chime-sync serve-fake` serves.
pub const DEMO_POOL_ID: &str = "us-east-1_aBcD3fGhI";
/// Its users (username, sub, name), all confirmed and enabled: those the
/// samples confirm (Ada, Radia) or sign in with a pool token (Annie), and
/// Dorothy, created by an administrator and so in no trigger's sample:
/// reconcile is what gives her a Chime user.
pub const DEMO_POOL: [(&str, &str, &str); 4] = [
    (
        "ada",
        "1d4f6a8c-2b3e-4c5d-9e7f-8a0b1c2d3e4f",
        "Ada Lovelace",
    ),
    (
        "radia",
        "e8b4c0d6-9a2f-4e5b-b1c7-3f6a8d0e2b59",
        "Radia Perlman",
    ),
    (
        "annie",
        "4a7c1e9b-3d5f-4b2a-8c6e-0f1d3b5a7c92",
        "Annie Easley",
    ),
    (
        "dorothy",
        "f3a9c5e1-7b2d-4c8e-9a6f-1d3b5e7c9a20",
        "Dorothy Vaughan",
    ),
];

/// [`DEMO_POOL`] as `ListUsers` shows it.
pub fn demo_pool_users() -> Vec<PoolUser> {
    DEMO_POOL
        .iter()
        .map(|(username, sub, name)| {
            PoolUser::from_json(&serde_json::json!({
                "Username": username, "UserStatus": "CONFIRMED", "Enabled": true,
                "Attributes": [{"Name": "sub", "Value": sub}, {"Name": "name", "Value": name}],
            }))
        })
        .collect()
}

/// The browser origin the replay allows (CORS).
pub const DEMO_ORIGIN: &str = "https://chat.example.com";
/// The embedded JWKS: public keys of the demo RSA and EC keys that signed the
/// tokens in `events/credential-exchange/`. Demo keys, published on purpose:
/// never trust them outside the replay.
pub const DEMO_JWKS: &str = r#"{"keys":[{"alg":"RS256","e":"AQAB","kid":"demo-rsa-2026","kty":"RSA","n":"tcNpRIY4mA13wjp-5TW6nOLvXDxiR8pvOyk-WxWkxjgRkRnxOd_knq3OPnAnA-k4sfE2OPOEixOhD3SIv8IuvCDkch89StEHAtK8Y3CZv2Jii7c7ae3Il7GjfvveNTsKcEN-3hsPPNQ_dIAhZX0W6PXP6-UkXUEY37eOm_yeS0vcfudXw2EUqH82EnRQE8ahRw-Cn8ZBPLBbuK4ptN_ewJDfaSkcWKzx3EC_7_q_fMkBezlu91Udw40vyXo0R5A36ztn13BCz8mkFxGXRTDBd3Er32qX8-jNAIEv_gya768eqjAR3I6_3sdzxq7ISBOS0SPYoWAsw5iGbZA5ydWqXw","use":"sig"},{"alg":"ES256","crv":"P-256","kid":"demo-ec-2026","kty":"EC","use":"sig","x":"Y2EqjF5Ey1FGQ5hfS7doKBC9guXz5oPWnRe3A_DzEIc","y":"4p6vHAT5r5mK8xjw0jbidoEixLXFKu-koBphRBUSD04"}]}"#;

/// Which Lambda function an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    PreSignUp,
    PostConfirmation,
    IdpSync,
    CredentialExchange,
    Reconcile,
}

impl Function {
    /// Tell the function from the event's shape.
    pub fn detect(event: &Value) -> Option<Self> {
        if event.get("Records").is_some_and(Value::is_array) {
            return Some(Self::IdpSync);
        }
        if event.pointer("/requestContext/http").is_some() {
            return Some(Self::CredentialExchange);
        }
        if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return Some(Self::Reconcile);
        }
        let source = trigger_source(event)?;
        if source.starts_with("PreSignUp_") {
            Some(Self::PreSignUp)
        } else if [
            "PostConfirmation_",
            "TokenGeneration_",
            "PostAuthentication_",
        ]
        .iter()
        .any(|prefix| source.starts_with(prefix))
        {
            Some(Self::PostConfirmation)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreSignUp => "pre-signup",
            Self::PostConfirmation => "post-confirmation",
            Self::IdpSync => "idp-sync",
            Self::CredentialExchange => "credential-exchange",
            Self::Reconcile => "reconcile",
        }
    }
}

/// One line of the replay table: an event (or one SQS record) and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub event: String,
    pub source: String,
    pub outcome: String,
    pub user: Option<String>,
}

/// The result of replaying one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub function: Function,
    /// What the function answered: the response payload, or the error message
    /// Lambda would report.
    pub response: Result<Value, String>,
    pub rows: Vec<Row>,
}

/// Why an event could not be replayed at all.
#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("{path}: cannot read: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: not valid JSON: {error}")]
    InvalidJson {
        path: String,
        error: serde_json::Error,
    },
    #[error(
        "{path}: cannot tell which function this event is for (no Records, no known triggerSource prefix)"
    )]
    UnknownFunction { path: String },
    #[error("{path}: not an SQS event: {error}")]
    InvalidSqsEvent {
        path: String,
        error: serde_json::Error,
    },
}

/// The handlers wired to one directory, two recording queues, and the
/// credential exchange's embedded JWKS and STS double.
pub struct Replay<D> {
    pub directory: D,
    /// Who owns each user, and the deletions under way.
    pub ledger: InMemoryLedger,
    pub sync_queue: InMemoryQueue,
    pub dlq: InMemoryQueue,
    /// [`DEMO_POOL`], for reconcile.
    pub pool: InMemoryUserPool,
    pub sign_up: SignUpPolicy,
    pub names: DisplayNamePolicy,
    /// Serves [`DEMO_JWKS`] for both demo issuers.
    pub jwks: StaticJwks,
    /// Records every AssumeRole; answers fake credentials.
    pub sts: InMemoryCredentialIssuer,
    pub issuers: TrustedIssuers,
}

impl Replay<InMemoryDirectory> {
    /// The embedded in-memory setup of the CLI's default run and the tests.
    pub fn embedded() -> Result<Self, crate::error::InputError> {
        let directory = InMemoryDirectory::new(AppInstanceArn::parse(DEMO_APP_INSTANCE_ARN)?);
        directory.fail_always_for(
            UserId::parse(OUTAGE_SUB)?,
            DirectoryError::Unavailable("simulated Chime outage for this user".into()),
        );
        Ok(Self::new(directory))
    }
}

impl<D: Directory> Replay<D> {
    pub fn new(directory: D) -> Self {
        let names = DisplayNamePolicy::parse(DEMO_DISPLAY_NAME_ATTRIBUTES).unwrap_or_default();
        Self {
            directory,
            ledger: InMemoryLedger::new(),
            sync_queue: InMemoryQueue::new(),
            dlq: InMemoryQueue::new(),
            pool: InMemoryUserPool::new(demo_pool_users()),
            sign_up: SignUpPolicy {
                names: names.clone(),
                allowed_email_domains: SignUpPolicy::parse_domains(DEMO_ALLOWED_DOMAINS),
                auto_verify_email: true,
                ..SignUpPolicy::default()
            },
            names,
            jwks: demo_jwks(),
            sts: InMemoryCredentialIssuer::new(),
            issuers: demo_issuers(),
        }
    }

    /// Replay one file.
    pub async fn file(&self, path: &Path) -> Result<Replayed, ReplayError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ReplayError::Io {
            path: shown.clone(),
            error,
        })?;
        let event: Value =
            serde_json::from_str(&text).map_err(|error| ReplayError::InvalidJson {
                path: shown.clone(),
                error,
            })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(shown);
        self.event(&name, event).await
    }

    /// One reconcile cycle over [`DEMO_POOL`], its plan published to the
    /// sync queue: what the row says.
    async fn reconcile_cycle(&self, event: &Value) -> String {
        let deps = Reconcile {
            pool: &self.pool,
            directory: &self.directory,
            queue: &self.sync_queue,
            ledger: &self.ledger,
            settings: reconcile::Settings {
                names: self.names.clone(),
                ..reconcile::Settings::default()
            },
        };
        let start = reconcile::fresh_cycle(event, std::time::SystemTime::now());
        match reconcile::run(start, &deps, None).await {
            Ok(report) => {
                let t = report.totals;
                format!(
                    "{} pool users read; published {} creates, {} updates, {} deletions",
                    t.pool_users, t.creates, t.updates, t.deletes
                )
            }
            Err(e) => format!("error: {e}"),
        }
    }

    /// Replay one event, named `name` in the rows.
    pub async fn event(&self, name: &str, event: Value) -> Result<Replayed, ReplayError> {
        let function = Function::detect(&event).ok_or_else(|| ReplayError::UnknownFunction {
            path: name.to_owned(),
        })?;
        let row = Row {
            event: name.to_owned(),
            source: trigger_source(&event).unwrap_or("-").to_owned(),
            outcome: String::new(),
            user: None,
        };
        let (response, rows) = match function {
            Function::PreSignUp => self.pre_signup_event(event, row),
            Function::PostConfirmation => self.post_confirmation_event(event, row).await,
            Function::CredentialExchange => self.credential_exchange_event(event, row).await,
            Function::Reconcile => {
                let outcome = self.reconcile_cycle(&event).await;
                (Ok(Value::Null), vec![Row { outcome, ..row }])
            }
            Function::IdpSync => self.idp_sync_event(name, event).await?,
        };
        Ok(Replayed {
            function,
            response,
            rows,
        })
    }

    fn pre_signup_event(&self, event: Value, row: Row) -> (Result<Value, String>, Vec<Row>) {
        let (response, outcome) = match pre_signup::handle(event, &self.sign_up) {
            Ok((
                out,
                SignUpDecision::Allowed {
                    auto_confirmed,
                    email_verified,
                },
            )) => (
                Ok(out),
                format!("allowed (auto-confirm {auto_confirmed}, email verified {email_verified})"),
            ),
            Ok((out, SignUpDecision::PassedThrough)) => {
                (Ok(out), "passed through (not a PreSignUp event)".into())
            }
            Err(e) => (Err(e.to_string()), format!("rejected: {e}")),
        };
        (response, vec![Row { outcome, ..row }])
    }

    async fn post_confirmation_event(
        &self,
        event: Value,
        row: Row,
    ) -> (Result<Value, String>, Vec<Row>) {
        let user = user_attributes(&event)
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let deps = PostConfirmation {
            names: self.names.clone(),
            ..PostConfirmation::new(&self.directory, &self.sync_queue, &self.ledger)
        };
        let (response, outcome) = match post_confirmation::handle(event, &deps, None).await {
            Ok((out, outcome)) => (Ok(out), outcome.label()),
            Err(e) => (Err(e.to_string()), format!("error: {e}")),
        };
        (
            response,
            vec![Row {
                outcome,
                user,
                ..row
            }],
        )
    }

    async fn credential_exchange_event(
        &self,
        event: Value,
        row: Row,
    ) -> (Result<Value, String>, Vec<Row>) {
        let deps = CredentialExchange {
            allowed_origins: vec![DEMO_ORIGIN.to_owned()],
            names: self.names.clone(),
            ..CredentialExchange::new(
                &self.directory,
                &self.ledger,
                &self.jwks,
                &self.sts,
                self.issuers.clone(),
            )
        };
        let (response, outcome) = credential_exchange::handle(event, &deps).await;
        let mut text = format!("{} {}", outcome.status, outcome.code);
        // The precise reason the client is not told, for the reader.
        if let Some(reason) = outcome.reason.filter(|r| *r != outcome.code) {
            text.push_str(&format!(" ({reason})"));
        }
        match outcome.session {
            Some(_) if outcome.reused => {
                text.push_str(" (the session issued earlier, reused: no STS call)");
            }
            Some(session) => text.push_str(&format!(
                " (chat user {}; STS double: {} s session tagged UserUUID and Issuer)",
                outcome.chime_user.map_or("not checked", |a| a.as_str()),
                session.as_secs()
            )),
            None => {}
        }
        let row = Row {
            source: "function-url".to_owned(),
            outcome: text,
            user: outcome.user.as_ref().map(UserId::to_string),
            ..row
        };
        (
            serde_json::to_value(&response).map_err(|e| e.to_string()),
            vec![row],
        )
    }

    /// One row per message of the batch (`{name}#{message id}`).
    async fn idp_sync_event(
        &self,
        name: &str,
        event: Value,
    ) -> Result<(Result<Value, String>, Vec<Row>), ReplayError> {
        let sqs: SqsEvent =
            serde_json::from_value(event).map_err(|error| ReplayError::InvalidSqsEvent {
                path: name.to_owned(),
                error,
            })?;
        let deps = IdpSync::new(&self.directory, &self.dlq, &self.ledger);
        let report = idp_sync::handle(&sqs, &deps, None).await;
        let mut rows: Vec<Row> = report
            .messages
            .iter()
            .map(|m| Row {
                event: format!("{name}#{}", m.message_id),
                source: match (m.envelope, m.event_type) {
                    (Some(env), Some(kind)) => format!("sqs/{} {kind}", env.as_str()),
                    _ => "sqs".to_owned(),
                },
                outcome: m.outcome.label(),
                user: m.sub.as_ref().map(UserId::to_string),
            })
            .collect();
        if rows.is_empty() {
            rows.push(Row {
                event: name.to_owned(),
                source: "sqs".to_owned(),
                outcome: "empty batch, nothing to do".to_owned(),
                user: None,
            });
        }
        let response = serde_json::to_value(report.response()).map_err(|e| e.to_string());
        Ok((response, rows))
    }
}

/// The embedded JWKS at both demo issuers' discovery and JWKS URLs.
fn demo_jwks() -> StaticJwks {
    let jwks = StaticJwks::new();
    let keys: Value = serde_json::from_str(DEMO_JWKS).unwrap_or(Value::Null);
    for issuer in [DEMO_COGNITO_ISSUER, DEMO_OIDC_ISSUER] {
        let jwks_uri = format!("{issuer}/.well-known/jwks.json");
        jwks.set(
            &format!("{issuer}/.well-known/openid-configuration"),
            serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri}),
        );
        jwks.set(&jwks_uri, keys.clone());
    }
    jwks
}

/// `TRUSTED_ISSUERS` of the replay: the demo pool's ID tokens for client
/// `demo-app-client`, and the OIDC provider's tokens for `chat-web`. The two
/// front the same people (as a company's IdP and its user pool may), so the
/// OIDC issuer shares the pool's users (`sharesUsersWith: ["pool"]`).
fn demo_issuers() -> TrustedIssuers {
    let issuer = |iss: &str, audience: &str, token_use, source: Source| TrustedIssuer {
        issuer: iss.to_owned(),
        audiences: vec![audience.to_owned()],
        user_id_claim: "sub".to_owned(),
        token_use,
        jwks: JwksLocation::Discovery(format!("{iss}/.well-known/openid-configuration")),
        key: source.as_str().trim_start_matches("issuer:").to_owned(),
        source,
        user_id_format: UserIdFormat::Uuid,
        shares_users_with: vec![Source::pool()],
        authorized_parties: Vec::new(),
        token_types: Vec::new(),
    };
    let oidc = Source::issuer("demo-oidc").unwrap_or_else(|_| Source::pool());
    TrustedIssuers::from_issuers([
        issuer(
            DEMO_COGNITO_ISSUER,
            "demo-app-client",
            Some(TokenUse::Id),
            Source::pool(),
        ),
        issuer(DEMO_OIDC_ISSUER, "chat-web", None, oidc),
    ])
}

/// The `.json` files named by `paths` (folders searched recursively), sorted
/// so that a replay is always in the same order.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReplayError> {
    let mut files = Vec::new();
    for path in paths {
        collect_into(path, &mut files)?;
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect_into(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), ReplayError> {
    let io = |error| ReplayError::Io {
        path: path.display().to_string(),
        error,
    };
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            collect_into(&entry.map_err(io)?.path(), files)?;
        }
    } else if path.is_file() {
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path.to_owned());
        }
    } else {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or folder",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn detects_functions_by_shape() {
        assert_eq!(
            Function::detect(&json!({"Records": []})),
            Some(Function::IdpSync)
        );
        assert_eq!(
            Function::detect(&json!({"triggerSource": "PreSignUp_New"})),
            Some(Function::PreSignUp)
        );
        assert_eq!(
            Function::detect(&json!({"triggerSource": "PostConfirmation_ConfirmSignUp"})),
            Some(Function::PostConfirmation)
        );
        assert_eq!(
            Function::detect(&json!({"rawPath": "/credentials",
                                     "requestContext": {"http": {"method": "POST"}}})),
            Some(Function::CredentialExchange)
        );
        assert_eq!(
            Function::detect(&json!({"triggerSource": "CustomMessage_SignUp"})),
            None
        );
        assert_eq!(Function::detect(&json!([1])), None);
    }

    #[tokio::test]
    async fn the_outage_sub_hands_off_and_others_provision() {
        let replay = Replay::embedded().unwrap();
        let confirm = |sub: &str| {
            json!({"triggerSource": "PostConfirmation_ConfirmSignUp", "userPoolId": "p", "userName": "u",
                   "request": {"userAttributes": {"sub": sub, "name": "N"}}, "response": {}})
        };
        let down = replay.event("down", confirm(OUTAGE_SUB)).await.unwrap();
        assert!(
            down.rows[0].outcome.starts_with("handed off"),
            "{:?}",
            down.rows
        );
        let up = replay
            .event("up", confirm("6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5"))
            .await
            .unwrap();
        assert_eq!(up.rows[0].outcome, "created");
        assert_eq!(replay.sync_queue.sent().len(), 1);
        assert_eq!(replay.directory.users().len(), 1);
    }

    #[tokio::test]
    async fn unknown_shapes_are_a_clear_error() {
        let replay = Replay::embedded().unwrap();
        let err = replay
            .event("x.json", json!({"hello": 1}))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("x.json: cannot tell which function"),
            "{err}"
        );
        let err = replay
            .event("y.json", json!({"Records": [{"messageId": 5}]}))
            .await
            .unwrap_err();
        assert!(matches!(err, ReplayError::InvalidSqsEvent { .. }), "{err}");
    }

    #[test]
    fn missing_paths_are_named() {
        let err = collect_files(&[PathBuf::from("/no/such/events")]).unwrap_err();
        assert!(err.to_string().contains("/no/such/events"), "{err}");
    }
}
