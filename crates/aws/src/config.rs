//! Start-up configuration of the functions, from environment variables.
//! What each variable defaults to and accepts is stated once, in [`spec`];
//! [`reference`] describes them and generates docs/SETTINGS.md.
//!
//! Every variable is read and validated once, before the Lambda runtime
//! starts, so a typo stops the function at init (`/init/error`, visible in
//! the console and in CloudWatch) instead of failing every user later. Each
//! error names the variable at fault.
//!
//! Values are read through a lookup closure (`Fn(&str) -> Option<String>`):
//! `from_env()` passes the process environment, tests pass a map, and nobody
//! mutates the process environment. A variable set to an empty or blank value
//! counts as unset, so a template can pass `""` for "use the default".
//!
//! Endpoints are **not** configured here: aws-config already reads
//! `AWS_ENDPOINT_URL` (all services), `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`
//! and `AWS_ENDPOINT_URL_SQS` (one service each: the SDK upper-cases the
//! service id "Chime SDK Identity"/"SQS" and replaces spaces with `_`, see
//! aws-runtime's `env_config.rs`). Point those at the local fakes.

use std::time::Duration;

use std::collections::BTreeSet;

use chime_sync_core::credentials::{IssuerConfigError, MAX_SESSION, MIN_SESSION, TrustedIssuers};
use chime_sync_core::directory::{DeleteMode, MAX_EXPIRATION_DAYS};
use chime_sync_core::handlers::post_confirmation;
use chime_sync_core::handlers::reconcile::{self, SHARD_COUNTS, ShardSetting};
use chime_sync_core::ledger::{FeedBreaker, UnownedPolicy};
use chime_sync_core::planner::DeleteBreaker;
use chime_sync_core::profile::EmptyNamePolicy;
use chime_sync_core::sync::SyncRules;
use chime_sync_core::user_pool::{ActivePolicy, ActivePolicyError, LIST_USERS_QUOTA_RPS};
use chime_sync_core::{AppInstanceArn, DisplayNamePolicy, InputError};
use thiserror::Error;

use crate::chime::ChimeConfig;
use crate::cognito::{CognitoConfig, InvalidUserPoolId, UserPoolId};

pub mod reference;

pub const APP_INSTANCE_ARN: &str = "APP_INSTANCE_ARN";
pub const SYNC_QUEUE_URL: &str = "SYNC_QUEUE_URL";
pub const DLQ_URL: &str = "DLQ_URL";
pub const CHIME_BUDGET_MS: &str = "CHIME_BUDGET_MS";
pub const CHIME_MAX_ATTEMPTS: &str = "CHIME_MAX_ATTEMPTS";
pub const MAX_CONCURRENT_GROUPS: &str = "MAX_CONCURRENT_GROUPS";
pub const DISPLAY_NAME_ATTRIBUTES: &str = "DISPLAY_NAME_ATTRIBUTES";
pub const ALLOWED_EMAIL_DOMAINS: &str = "ALLOWED_EMAIL_DOMAINS";
pub const AUTO_CONFIRM: &str = "AUTO_CONFIRM";
pub const AUTO_VERIFY_EMAIL: &str = "AUTO_VERIFY_EMAIL";
pub const TRUSTED_ISSUERS: &str = "TRUSTED_ISSUERS";
pub const CHAT_USER_ROLE_ARN: &str = "CHAT_USER_ROLE_ARN";
pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
pub const ENSURE_CHIME_USER: &str = "ENSURE_CHIME_USER";
pub const MAX_SESSION_SECONDS: &str = "MAX_SESSION_SECONDS";
pub const DELETE_MODE: &str = "DELETE_MODE";
pub const DELETE_GRACE_DAYS: &str = "DELETE_GRACE_DAYS";
pub const USER_POOL_ID: &str = "USER_POOL_ID";
pub const ACTIVE_USER_STATUSES: &str = "ACTIVE_USER_STATUSES";
pub const PROTECTED_USER_IDS: &str = "PROTECTED_USER_IDS";
pub const DELETE_LIMIT: &str = "DELETE_LIMIT";
pub const DELETE_LIMIT_PERCENT: &str = "DELETE_LIMIT_PERCENT";
pub const COGNITO_QUOTA_SHARE_PERCENT: &str = "COGNITO_QUOTA_SHARE_PERCENT";
pub const RECONCILE_SHARDS: &str = "RECONCILE_SHARDS";
pub const LEDGER_TABLE: &str = "LEDGER_TABLE";
pub const UNOWNED_USERS: &str = "UNOWNED_USERS";
pub const FEED_DELETE_LIMIT: &str = "FEED_DELETE_LIMIT";
pub const FEED_DELETE_LIMIT_PERCENT: &str = "FEED_DELETE_LIMIT_PERCENT";
pub const FEED_DELETE_WINDOW_MINUTES: &str = "FEED_DELETE_WINDOW_MINUTES";
pub const SIGN_IN_BUDGET_MS: &str = "SIGN_IN_BUDGET_MS";

/// How long one call to the ownership ledger may take, retries included.
pub const LEDGER_TIMEOUT: Duration = Duration::from_millis(3000);
/// The longest feed breaker window: a day.
pub const MAX_FEED_WINDOW_MINUTES: u64 = 1440;

/// `DELETE_GRACE_DAYS` may not exceed this: a year is longer than any
/// reasonable undo window, and keeps the expiration far below Chime's 5475 days.
pub const MAX_GRACE_DAYS: u16 = 365;
const _: () = assert!(MAX_GRACE_DAYS < MAX_EXPIRATION_DAYS);
/// `DELETE_LIMIT` may not exceed this.
pub const MAX_DELETE_LIMIT: u64 = 1_000_000;
/// Share of Cognito's ListUsers quota the reconcile function may use when
/// `COGNITO_QUOTA_SHARE_PERCENT` is unset: half, leaving the rest to the
/// console, the CLI and other tools of the account.
pub const DEFAULT_QUOTA_SHARE_PERCENT: u64 = 50;
/// The reconcile function's timeout (template.yaml `Timeout: 900`, Lambda's longest).
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(900);
/// How long one send to the sync queue may take in the reconcile function.
pub const RECONCILE_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// The reconcile function's budget per Chime call when `CHIME_BUDGET_MS` is unset.
pub const DEFAULT_RECONCILE_CHIME_BUDGET: Duration = Duration::from_millis(10_000);

/// post-confirmation's function timeout (template.yaml `Timeout: 4`): a
/// second under the 5 s Cognito waits for a trigger before it retries.
pub const POST_CONFIRMATION_TIMEOUT: Duration = Duration::from_secs(4);
/// What post-confirmation's timeout must hold besides the Chime budget and
/// the hand-off: receiving the event, answering it, a cold start's first
/// TLS handshake.
pub const POST_CONFIRMATION_SLACK: Duration = Duration::from_millis(500);
/// The time one SQS send may take in post-confirmation, kept back from the
/// deadline for the hand-off.
pub const POST_CONFIRMATION_QUEUE_TIMEOUT: Duration = post_confirmation::HAND_OFF_RESERVE;
/// Post-confirmation's Chime budget when `CHIME_BUDGET_MS` is unset: all the
/// 4 s timeout leaves after the hand-off reserve and the slack (2000 ms).
pub const DEFAULT_POST_CONFIRMATION_BUDGET: Duration = post_confirmation::DEFAULT_CHIME_BUDGET;
/// Post-confirmation's budget may not exceed this: a larger one could never
/// be used in full (the deadline would cut it) and leaves Cognito's client
/// waiting longer. The default is already the most that fits.
pub const MAX_POST_CONFIRMATION_BUDGET: Duration = DEFAULT_POST_CONFIRMATION_BUDGET;
// The largest budget is used in full: Chime's budget, then the hand-off,
// then the rest of the invocation fit in the timeout. Checked at compile time.
const _: () = assert!(
    MAX_POST_CONFIRMATION_BUDGET.as_millis()
        + POST_CONFIRMATION_QUEUE_TIMEOUT.as_millis()
        + POST_CONFIRMATION_SLACK.as_millis()
        <= POST_CONFIRMATION_TIMEOUT.as_millis()
);
const _: () = assert!(
    DEFAULT_POST_CONFIRMATION_BUDGET.as_millis() <= MAX_POST_CONFIRMATION_BUDGET.as_millis()
);

/// `CHIME_BUDGET_MS` may not be below this: a smaller budget leaves no room
/// for one call.
pub const MIN_CHIME_BUDGET: Duration = Duration::from_millis(100);
/// idp-sync's budget per Chime call when `CHIME_BUDGET_MS` is unset. A
/// message makes up to three calls, so the function timeout should be well
/// above three times this.
pub const DEFAULT_IDP_SYNC_BUDGET: Duration = Duration::from_millis(5000);
/// idp-sync's (and reconcile's) budget may not exceed Lambda's longest timeout.
pub const MAX_IDP_SYNC_BUDGET: Duration = Duration::from_secs(900);
/// The time one DLQ send may take in idp-sync.
pub const IDP_SYNC_QUEUE_TIMEOUT: Duration = Duration::from_millis(5000);
pub const DEFAULT_MAX_CONCURRENT_GROUPS: usize = 10;
/// `MAX_CONCURRENT_GROUPS` may not exceed this: a FIFO batch holds at most 10
/// messages, and the bound keeps one invocation's request rate on Chime low.
pub const MAX_MAX_CONCURRENT_GROUPS: usize = 10;
/// credential-exchange's Chime budget per call when `CHIME_BUDGET_MS` is unset.
pub const DEFAULT_EXCHANGE_CHIME_BUDGET: Duration = Duration::from_millis(3000);
/// credential-exchange's budget may not exceed its function timeout (10 s).
pub const MAX_EXCHANGE_CHIME_BUDGET: Duration = Duration::from_secs(10);
/// `CHIME_MAX_ATTEMPTS` may not exceed this: more attempts only pile up
/// behind a budget that already bounds the call.
pub const MAX_CHIME_ATTEMPTS: u64 = 10;
/// How long one GET of an issuer's discovery document or JWKS may take.
pub const JWKS_TIMEOUT: Duration = Duration::from_millis(3000);
/// How long one STS AssumeRole may take, retries included.
pub const STS_TIMEOUT: Duration = Duration::from_millis(5000);

/// A whole-number setting's default and inclusive range. The parser enforces
/// exactly these and the settings reference ([`reference`], docs/SETTINGS.md)
/// states them, so what is documented cannot drift from what is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

/// A setting that takes one of a few words, with the one unset means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub default: &'static str,
    pub allowed: &'static [&'static str],
}

/// What each variable defaults to and accepts: the one place the parsers
/// below and the settings reference both take them from. The numbers come
/// from the constants that explain them (above, or in chime-sync-core).
pub mod spec {
    use super::*;

    /// Milliseconds of a duration, in a `const`.
    const fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    /// A Chime budget in milliseconds: at least [`MIN_CHIME_BUDGET`].
    const fn budget(default: Duration, max: Duration) -> Bounds {
        Bounds {
            default: ms(default),
            min: ms(MIN_CHIME_BUDGET),
            max: ms(max),
        }
    }

    pub const POST_CONFIRMATION_CHIME_BUDGET_MS: Bounds = budget(
        DEFAULT_POST_CONFIRMATION_BUDGET,
        MAX_POST_CONFIRMATION_BUDGET,
    );
    pub const IDP_SYNC_CHIME_BUDGET_MS: Bounds =
        budget(DEFAULT_IDP_SYNC_BUDGET, MAX_IDP_SYNC_BUDGET);
    pub const RECONCILE_CHIME_BUDGET_MS: Bounds =
        budget(DEFAULT_RECONCILE_CHIME_BUDGET, MAX_IDP_SYNC_BUDGET);
    pub const EXCHANGE_CHIME_BUDGET_MS: Bounds =
        budget(DEFAULT_EXCHANGE_CHIME_BUDGET, MAX_EXCHANGE_CHIME_BUDGET);
    /// At most post-confirmation's Chime budget: the sign-in trigger runs
    /// in the same function, under the same timeout.
    pub const SIGN_IN_BUDGET_MS: Bounds = budget(
        post_confirmation::DEFAULT_SIGN_IN_BUDGET,
        MAX_POST_CONFIRMATION_BUDGET,
    );
    pub const CHIME_MAX_ATTEMPTS: Bounds = Bounds {
        default: ChimeConfig::DEFAULT_MAX_ATTEMPTS as u64,
        min: 1,
        max: MAX_CHIME_ATTEMPTS,
    };
    pub const MAX_CONCURRENT_GROUPS: Bounds = Bounds {
        default: DEFAULT_MAX_CONCURRENT_GROUPS as u64,
        min: 1,
        max: MAX_MAX_CONCURRENT_GROUPS as u64,
    };
    pub const DELETE_GRACE_DAYS: Bounds = Bounds {
        default: DeleteMode::DEFAULT_GRACE_DAYS as u64,
        min: 1,
        max: MAX_GRACE_DAYS as u64,
    };
    pub const DELETE_LIMIT: Bounds = Bounds {
        default: DeleteBreaker::DEFAULT_LIMIT as u64,
        min: 0,
        max: MAX_DELETE_LIMIT,
    };
    pub const DELETE_LIMIT_PERCENT: Bounds = percent(DeleteBreaker::DEFAULT_PERCENT as u64, 0);
    pub const COGNITO_QUOTA_SHARE_PERCENT: Bounds = percent(DEFAULT_QUOTA_SHARE_PERCENT, 1);
    /// The longest session by default; STS's role-chaining hour at most.
    pub const MAX_SESSION_SECONDS: Bounds = Bounds {
        default: MAX_SESSION.as_secs(),
        min: MIN_SESSION.as_secs(),
        max: MAX_SESSION.as_secs(),
    };

    /// A percentage from `min` to 100.
    const fn percent(default: u64, min: u64) -> Bounds {
        Bounds {
            default,
            min,
            max: 100,
        }
    }

    // The feed breaker's defaults are chime-sync-core's `FeedBreaker::default()`,
    // which is not a `const fn`: these are functions for that reason only.
    pub fn feed_delete_limit() -> Bounds {
        Bounds {
            default: FeedBreaker::default().limit,
            min: 0,
            max: MAX_DELETE_LIMIT,
        }
    }
    pub fn feed_delete_limit_percent() -> Bounds {
        percent(u64::from(FeedBreaker::default().percent), 0)
    }
    pub fn feed_delete_window_minutes() -> Bounds {
        Bounds {
            default: FeedBreaker::default().window.as_secs() / 60,
            min: 1,
            max: MAX_FEED_WINDOW_MINUTES,
        }
    }

    pub const AUTO_CONFIRM: bool = false;
    pub const AUTO_VERIFY_EMAIL: bool = false;
    pub const ENSURE_CHIME_USER: bool = true;
    pub const DELETE_MODE: Choice = Choice {
        default: "grace",
        allowed: &["grace", "immediate"],
    };
    /// `auto` and chime-sync-core's `SHARD_COUNTS` (a test keeps them equal).
    pub const RECONCILE_SHARDS: Choice = Choice {
        default: "auto",
        allowed: &["auto", "1", "16", "256"],
    };
    /// What unset `UNOWNED_USERS` means, spelled as the variable takes it.
    pub const UNOWNED_USERS: &str = "keep";
}

/// A configuration value that is missing or malformed. Each names its variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{name} is required but not set ({hint})")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is not a valid AppInstance ARN: {source}")]
    InvalidAppInstanceArn {
        name: &'static str,
        #[source]
        source: InputError,
    },
    #[error(
        "{name} must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME): {reason}"
    )]
    InvalidQueueUrl {
        name: &'static str,
        reason: &'static str,
    },
    #[error("{name} must be true, false, 1 or 0, not `{value}`")]
    InvalidBool { name: &'static str, value: String },
    #[error("{name} must be a whole number from {min} to {max}, not `{value}`")]
    InvalidNumber {
        name: &'static str,
        value: String,
        min: u64,
        max: u64,
    },
    #[error("{name}: {source}")]
    InvalidDisplayNameAttributes {
        name: &'static str,
        #[source]
        source: EmptyNamePolicy,
    },
    #[error("{name} must be grace or immediate, not `{value}`")]
    InvalidDeleteMode { name: &'static str, value: String },
    #[error("{name}: {source}")]
    InvalidUserPoolId {
        name: &'static str,
        #[source]
        source: InvalidUserPoolId,
    },
    #[error("{name}: {source}")]
    InvalidStatuses {
        name: &'static str,
        #[source]
        source: ActivePolicyError,
    },
    #[error("{name} has `{value}`, which is not a Chime AppInstanceUserId")]
    InvalidUserId { name: &'static str, value: String },
    #[error("{name} must be auto, 1, 16 or 256, not `{value}`")]
    InvalidShards { name: &'static str, value: String },
    #[error("{name} has an invalid email domain `{value}` (expected e.g. example.com,example.org)")]
    InvalidEmailDomain { name: &'static str, value: String },
    #[error(
        "{confirm}=true cannot be combined with {domains}: an auto-confirmed user never enters the \
         code sent to their email address, so nothing proves they own it, and anyone could sign \
         up with an address of an allowed domain and get a chat user. Set {confirm} to false \
         (users confirm with the code, which proves the address) or leave {domains} empty"
    )]
    UnprovenEmailDomains {
        confirm: &'static str,
        domains: &'static str,
    },
    #[error("{name} {source}")]
    InvalidTrustedIssuers {
        name: &'static str,
        #[source]
        source: IssuerConfigError,
    },
    #[error("{name} must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), not `{value}`")]
    InvalidRoleArn { name: &'static str, value: String },
    #[error(
        "{name} has an invalid origin `{value}`: {reason} (expected e.g. https://chat.example.com,https://app.example.com)"
    )]
    InvalidOrigin {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{name} must be keep, or the source unowned users belong to (e.g. pool): {source}")]
    InvalidUnowned {
        name: &'static str,
        #[source]
        source: InputError,
    },
    #[error(
        "{name} must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .), or `memory` for a \
         ledger held in memory (local development only), not `{value}`"
    )]
    InvalidTable { name: &'static str, value: String },
}

/// Where the ownership ledger is (`LEDGER_TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// A DynamoDB table (template.yaml's `LedgerTable`).
    Table(String),
    /// `memory`: each sandbox keeps its own, forgotten when it ends. For a
    /// local loop without DynamoDB; a function started so logs a warning.
    Memory,
}

/// The pre-signup function's policy (no AWS client: it makes no calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreSignupConfig {
    /// `DISPLAY_NAME_ATTRIBUTES`: a sign-up that yields no valid name is rejected.
    pub display_names: DisplayNamePolicy,
    /// `ALLOWED_EMAIL_DOMAINS`: lower-case domains; `None` allows any.
    pub allowed_email_domains: Option<Vec<String>>,
    /// `AUTO_CONFIRM`. Never true with `allowed_email_domains`.
    pub auto_confirm: bool,
    /// `AUTO_VERIFY_EMAIL` (only when an email is present).
    pub auto_verify_email: bool,
}

impl PreSignupConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    /// The policy, or the error of its first bad variable.
    ///
    /// `AUTO_CONFIRM=true` with `ALLOWED_EMAIL_DOMAINS` is refused: the
    /// domain check reads the address the user typed, which only the code
    /// Cognito sends to it proves, and auto-confirming skips that code, so
    /// anyone could register ceo@ an allowed domain and get chat credentials.
    /// Nothing else makes the pair safe: `AUTO_VERIFY_EMAIL` marks the same
    /// unproven address verified (worse: tokens then vouch for it), and
    /// whether the pool allows self sign-up is the pool's setting, which this
    /// function cannot see. (template.yaml's rule `EmailDomainsNeedConfirmation`
    /// refuses the pair before a deployment.)
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let config = Self {
            display_names: env.display_names()?,
            allowed_email_domains: env.email_domains(ALLOWED_EMAIL_DOMAINS)?,
            auto_confirm: env.boolean(AUTO_CONFIRM, spec::AUTO_CONFIRM)?,
            auto_verify_email: env.boolean(AUTO_VERIFY_EMAIL, spec::AUTO_VERIFY_EMAIL)?,
        };
        if config.auto_confirm && config.allowed_email_domains.is_some() {
            return Err(ConfigError::UnprovenEmailDomains {
                confirm: AUTO_CONFIRM,
                domains: ALLOWED_EMAIL_DOMAINS,
            });
        }
        Ok(config)
    }
}

/// The post-confirmation function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostConfirmationConfig {
    /// `APP_INSTANCE_ARN`, `CHIME_MAX_ATTEMPTS`, and `CHIME_BUDGET_MS` as the
    /// client's operation timeout. Defaults and ranges of every variable:
    /// [`spec`], stated in docs/SETTINGS.md.
    pub chime: ChimeConfig,
    /// `SYNC_QUEUE_URL`: where a user goes when Chime is slow or unavailable.
    pub sync_queue_url: String,
    /// How long the hand-off to the sync queue may take.
    pub queue_timeout: Duration,
    /// `DISPLAY_NAME_ATTRIBUTES`.
    pub display_names: DisplayNamePolicy,
    /// `LEDGER_TABLE`: where each user's owner is recorded.
    pub ledger: LedgerLocation,
    /// `SIGN_IN_BUDGET_MS`: the Chime budget at a
    /// federated user's sign-in, which the user waits on.
    pub sign_in_budget: Duration,
}

impl PostConfirmationConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        Ok(Self {
            chime: env.chime(spec::POST_CONFIRMATION_CHIME_BUDGET_MS)?,
            sync_queue_url: env.queue_url(SYNC_QUEUE_URL, "the FIFO queue idp-sync reads")?,
            queue_timeout: POST_CONFIRMATION_QUEUE_TIMEOUT,
            display_names: env.display_names()?,
            ledger: env.ledger()?,
            sign_in_budget: env.millis(SIGN_IN_BUDGET_MS, spec::SIGN_IN_BUDGET_MS)?,
        })
    }

    /// The time post-confirmation gives Chime before handing off to the queue.
    pub fn chime_budget(&self) -> Duration {
        self.chime.operation_timeout
    }
}

/// The idp-sync function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpSyncConfig {
    /// `APP_INSTANCE_ARN`, `CHIME_MAX_ATTEMPTS`, and `CHIME_BUDGET_MS` per call.
    pub chime: ChimeConfig,
    /// `DLQ_URL`: where permanent failures go, with their reason.
    pub dlq_url: String,
    /// How long one DLQ send may take.
    pub queue_timeout: Duration,
    /// `MAX_CONCURRENT_GROUPS`: message groups applied at once.
    pub max_concurrent_groups: usize,
    /// `DELETE_MODE` and `DELETE_GRACE_DAYS`: how `user.deleted` deletes;
    /// `UNOWNED_USERS`: whether an absence may delete users nobody owns; the
    /// feed breaker: `FEED_DELETE_LIMIT`, `FEED_DELETE_LIMIT_PERCENT` (of the
    /// Chime users the last reconcile cycle counted) per
    /// `FEED_DELETE_WINDOW_MINUTES`.
    pub rules: SyncRules,
    /// `LEDGER_TABLE`: ownership, change times, deletion marks.
    pub ledger: LedgerLocation,
}

impl IdpSyncConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        Ok(Self {
            chime: env.chime(spec::IDP_SYNC_CHIME_BUDGET_MS)?,
            dlq_url: env.queue_url(DLQ_URL, "the dead-letter queue for poison messages")?,
            queue_timeout: IDP_SYNC_QUEUE_TIMEOUT,
            max_concurrent_groups: env.number(MAX_CONCURRENT_GROUPS, spec::MAX_CONCURRENT_GROUPS)?
                as usize,
            rules: SyncRules {
                delete_mode: env.delete_mode()?,
                unowned: env.unowned()?,
                feed_breaker: Some(env.feed_breaker()?),
            },
            ledger: env.ledger()?,
        })
    }
}

/// The reconcile function's configuration.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// `APP_INSTANCE_ARN`, `CHIME_MAX_ATTEMPTS`, and `CHIME_BUDGET_MS` per call:
    /// the listing and grace mode's describes.
    pub chime: ChimeConfig,
    /// `USER_POOL_ID`: the pool read; its Region is the Cognito client's.
    pub cognito: CognitoConfig,
    /// `SYNC_QUEUE_URL`: where the plan is published, for idp-sync.
    pub sync_queue_url: String,
    /// How long one `SendMessageBatch` may take, retries included.
    pub queue_timeout: Duration,
    /// `ACTIVE_USER_STATUSES`, `DISPLAY_NAME_ATTRIBUTES`, `PROTECTED_USER_IDS`,
    /// `DELETE_LIMIT`, `DELETE_LIMIT_PERCENT`, `DELETE_MODE`/`DELETE_GRACE_DAYS`
    /// (as idp-sync's: grace mode leaves deletions under way out of the plan),
    /// `COGNITO_QUOTA_SHARE_PERCENT` (of ListUsers' quota), `RECONCILE_SHARDS`
    /// and `UNOWNED_USERS`.
    pub settings: reconcile::Settings,
    /// `LEDGER_TABLE`: who owns each user, and the deletions pending.
    pub ledger: LedgerLocation,
}

impl ReconcileConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let chime = env.chime(spec::RECONCILE_CHIME_BUDGET_MS)?;
        let pool = env.required(USER_POOL_ID, "the id of the user pool to read (REGION_ID)")?;
        let pool = UserPoolId::parse(&pool).map_err(|source| ConfigError::InvalidUserPoolId {
            name: USER_POOL_ID,
            source,
        })?;
        let sync_queue_url = env.queue_url(SYNC_QUEUE_URL, "the FIFO queue idp-sync reads")?;
        let active = match env.get(ACTIVE_USER_STATUSES) {
            None => ActivePolicy::default(),
            Some(spec) => {
                ActivePolicy::parse(&spec).map_err(|source| ConfigError::InvalidStatuses {
                    name: ACTIVE_USER_STATUSES,
                    source,
                })?
            }
        };
        let share = env.number(
            COGNITO_QUOTA_SHARE_PERCENT,
            spec::COGNITO_QUOTA_SHARE_PERCENT,
        )?;
        let settings = reconcile::Settings {
            active,
            names: env.display_names()?,
            protected: env.user_ids(PROTECTED_USER_IDS)?,
            breaker: DeleteBreaker {
                limit: env.number(DELETE_LIMIT, spec::DELETE_LIMIT)? as usize,
                percent: env.number(DELETE_LIMIT_PERCENT, spec::DELETE_LIMIT_PERCENT)? as u8,
            },
            delete_mode: env.delete_mode()?,
            unowned: env.unowned()?,
            shards: env.shards()?,
            pool_rate: LIST_USERS_QUOTA_RPS * share as f64 / 100.0,
            ..reconcile::Settings::default()
        };
        Ok(Self {
            chime,
            cognito: CognitoConfig::new(pool),
            sync_queue_url,
            queue_timeout: RECONCILE_QUEUE_TIMEOUT,
            settings,
            ledger: env.ledger()?,
        })
    }
}

/// The credential-exchange function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialExchangeConfig {
    /// `APP_INSTANCE_ARN`, `CHIME_MAX_ATTEMPTS`, and `CHIME_BUDGET_MS` per call.
    pub chime: ChimeConfig,
    /// `TRUSTED_ISSUERS`: issuer URL → audiences, user id claim, token_use, JWKS.
    pub issuers: TrustedIssuers,
    /// `CHAT_USER_ROLE_ARN`: the role STS hands out sessions of.
    pub chat_user_role_arn: String,
    /// `ALLOWED_ORIGINS`: browser origins answered CORS (empty: none).
    pub allowed_origins: Vec<String>,
    /// `ENSURE_CHIME_USER`: create a missing Chime user.
    pub ensure_user: bool,
    /// `DISPLAY_NAME_ATTRIBUTES`, read from the token's claims.
    pub display_names: DisplayNamePolicy,
    /// `MAX_SESSION_SECONDS`: the longest session handed out.
    pub max_session: Duration,
    pub jwks_timeout: Duration,
    pub sts_timeout: Duration,
    /// `LEDGER_TABLE`: the owner of each user the exchange creates.
    pub ledger: LedgerLocation,
}

impl CredentialExchangeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let issuers = TrustedIssuers::parse(&env.required(
            TRUSTED_ISSUERS,
            "a JSON object from issuer URL to {\"audiences\": [...]}, see docs/CREDENTIALS.md",
        )?)
        .map_err(|source| ConfigError::InvalidTrustedIssuers {
            name: TRUSTED_ISSUERS,
            source,
        })?;
        let role = env.required(CHAT_USER_ROLE_ARN, "the role whose sessions are handed out")?;
        if !is_role_arn(&role) {
            return Err(ConfigError::InvalidRoleArn {
                name: CHAT_USER_ROLE_ARN,
                value: role,
            });
        }
        Ok(Self {
            chime: env.chime(spec::EXCHANGE_CHIME_BUDGET_MS)?,
            issuers,
            chat_user_role_arn: role,
            allowed_origins: env.origins(ALLOWED_ORIGINS)?,
            ensure_user: env.boolean(ENSURE_CHIME_USER, spec::ENSURE_CHIME_USER)?,
            display_names: env.display_names()?,
            max_session: Duration::from_secs(
                env.number(MAX_SESSION_SECONDS, spec::MAX_SESSION_SECONDS)?,
            ),
            jwks_timeout: JWKS_TIMEOUT,
            sts_timeout: STS_TIMEOUT,
            ledger: env.ledger()?,
        })
    }
}

/// `arn:{partition}:iam::{12 digits}:role/{path/}name`.
fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts[..],
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
            && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty() && !name.ends_with('/'))
    )
}

/// The process environment, for `from_env`. A value that is not valid
/// Unicode reads as unset.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Typed reads over a lookup closure.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The trimmed value, `None` when unset or blank.
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing { name, hint })
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).as_deref() {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(v) => Err(ConfigError::InvalidBool {
                name,
                value: v.to_owned(),
            }),
        }
    }

    /// A whole number within `bounds`, their default when unset.
    fn number(&self, name: &'static str, bounds: Bounds) -> Result<u64, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(bounds.default);
        };
        match raw.parse::<u64>() {
            Ok(n) if (bounds.min..=bounds.max).contains(&n) => Ok(n),
            _ => Err(ConfigError::InvalidNumber {
                name,
                value: raw,
                min: bounds.min,
                max: bounds.max,
            }),
        }
    }

    /// Milliseconds within `bounds` (stated in milliseconds).
    fn millis(&self, name: &'static str, bounds: Bounds) -> Result<Duration, ConfigError> {
        self.number(name, bounds).map(Duration::from_millis)
    }

    fn app_instance(&self) -> Result<AppInstanceArn, ConfigError> {
        let raw = self.required(
            APP_INSTANCE_ARN,
            "arn:aws:chime:REGION:ACCOUNT:app-instance/ID of the AppInstance users are created in",
        )?;
        AppInstanceArn::parse(&raw).map_err(|source| ConfigError::InvalidAppInstanceArn {
            name: APP_INSTANCE_ARN,
            source,
        })
    }

    /// Reads `CHIME_BUDGET_MS` (within the function's `budget`, in milliseconds) as the
    /// operation timeout, then `APP_INSTANCE_ARN` and `CHIME_MAX_ATTEMPTS`; the first
    /// variable at fault is the error.
    fn chime(&self, budget: Bounds) -> Result<ChimeConfig, ConfigError> {
        let budget = self.millis(CHIME_BUDGET_MS, budget)?;
        let mut chime = ChimeConfig::new(self.app_instance()?);
        chime.max_attempts =
            u32::try_from(self.number(CHIME_MAX_ATTEMPTS, spec::CHIME_MAX_ATTEMPTS)?)
                .unwrap_or(ChimeConfig::DEFAULT_MAX_ATTEMPTS);
        chime.operation_timeout = budget;
        Ok(chime)
    }

    fn queue_url(&self, name: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        let url = self.required(name, hint)?;
        let invalid = |reason| ConfigError::InvalidQueueUrl { name, reason };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or(invalid("it must start with https://"))?;
        let mut parts = rest.trim_end_matches('/').split('/');
        let host = parts.next().unwrap_or_default();
        let path: Vec<&str> = parts.collect();
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        match path.as_slice() {
            [account, queue] if !account.is_empty() && !queue.is_empty() => Ok(url),
            _ => Err(invalid("the path must be /ACCOUNT/QUEUE_NAME")),
        }
    }

    /// `DELETE_MODE` ([`spec::DELETE_MODE`]) and, for grace, `DELETE_GRACE_DAYS`.
    fn delete_mode(&self) -> Result<DeleteMode, ConfigError> {
        let days = self.number(DELETE_GRACE_DAYS, spec::DELETE_GRACE_DAYS)?;
        match self
            .get(DELETE_MODE)
            .map(|m| m.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("grace") => Ok(DeleteMode::Grace {
                days: u16::try_from(days).unwrap_or(DeleteMode::DEFAULT_GRACE_DAYS),
            }),
            Some("immediate") => Ok(DeleteMode::Immediate),
            Some(_) => Err(ConfigError::InvalidDeleteMode {
                name: DELETE_MODE,
                value: self.get(DELETE_MODE).unwrap_or_default(),
            }),
        }
    }

    /// Comma- or space-separated AppInstanceUserIds (any id Chime accepts;
    /// ids that are not subs are never touched anyway).
    fn user_ids(&self, name: &'static str) -> Result<BTreeSet<String>, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(BTreeSet::new());
        };
        raw.split([',', ' ', '\n', '\t'])
            .filter(|e| !e.is_empty())
            .map(|id| {
                let valid = id.len() <= 64
                    && id.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && id.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ":-_.@".contains(c));
                if valid {
                    // Subs are compared as the listing gives them: lower case.
                    Ok(chime_sync_core::UserId::parse(id)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|_| id.to_owned()))
                } else {
                    Err(ConfigError::InvalidUserId {
                        name,
                        value: id.to_owned(),
                    })
                }
            })
            .collect()
    }

    /// `LEDGER_TABLE`: a DynamoDB table name, or `memory`.
    fn ledger(&self) -> Result<LedgerLocation, ConfigError> {
        let value = self.required(
            LEDGER_TABLE,
            "the DynamoDB table that records who owns each user (template.yaml's LedgerTable), \
             or `memory` for local development",
        )?;
        if value == "memory" {
            return Ok(LedgerLocation::Memory);
        }
        let valid = (3..=255).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(ConfigError::InvalidTable {
                name: LEDGER_TABLE,
                value,
            });
        }
        Ok(LedgerLocation::Table(value))
    }

    /// `UNOWNED_USERS`: `keep` (default) or a source (`pool`).
    fn unowned(&self) -> Result<UnownedPolicy, ConfigError> {
        match self.get(UNOWNED_USERS) {
            None => Ok(UnownedPolicy::Keep),
            Some(raw) => UnownedPolicy::parse(&raw).map_err(|source| ConfigError::InvalidUnowned {
                name: UNOWNED_USERS,
                source,
            }),
        }
    }

    /// The feed breaker's `FEED_DELETE_LIMIT`, `FEED_DELETE_LIMIT_PERCENT`
    /// and `FEED_DELETE_WINDOW_MINUTES`.
    fn feed_breaker(&self) -> Result<FeedBreaker, ConfigError> {
        Ok(FeedBreaker {
            limit: self.number(FEED_DELETE_LIMIT, spec::feed_delete_limit())?,
            percent: self.number(FEED_DELETE_LIMIT_PERCENT, spec::feed_delete_limit_percent())?
                as u8,
            window: Duration::from_secs(
                60 * self.number(
                    FEED_DELETE_WINDOW_MINUTES,
                    spec::feed_delete_window_minutes(),
                )?,
            ),
        })
    }

    /// `RECONCILE_SHARDS`: `auto` (default) or one of core's `SHARD_COUNTS`.
    fn shards(&self) -> Result<ShardSetting, ConfigError> {
        match self.get(RECONCILE_SHARDS) {
            None => Ok(ShardSetting::Auto),
            Some(v) if v.eq_ignore_ascii_case(spec::RECONCILE_SHARDS.default) => {
                Ok(ShardSetting::Auto)
            }
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|n| SHARD_COUNTS.contains(n))
                .map(ShardSetting::Fixed)
                .ok_or(ConfigError::InvalidShards {
                    name: RECONCILE_SHARDS,
                    value: v,
                }),
        }
    }

    fn display_names(&self) -> Result<DisplayNamePolicy, ConfigError> {
        match self.get(DISPLAY_NAME_ATTRIBUTES) {
            None => Ok(DisplayNamePolicy::default()),
            Some(spec) => DisplayNamePolicy::parse(&spec).map_err(|source| {
                ConfigError::InvalidDisplayNameAttributes {
                    name: DISPLAY_NAME_ATTRIBUTES,
                    source,
                }
            }),
        }
    }

    /// Comma-separated browser origins (`scheme://host[:port]`, as the
    /// `Origin` header spells them): https, or http on localhost for
    /// development. `*` is refused: credentials are not for any web page.
    fn origins(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(Vec::new());
        };
        let mut origins = Vec::new();
        for entry in raw.split([',', ' ', '\n', '\t']).filter(|e| !e.is_empty()) {
            let invalid = |reason| ConfigError::InvalidOrigin {
                name,
                value: entry.to_owned(),
                reason,
            };
            let host = if let Some(rest) = entry.strip_prefix("https://") {
                rest
            } else if let Some(rest) = entry.strip_prefix("http://") {
                let host = rest.split(':').next().unwrap_or_default();
                if !matches!(host, "localhost" | "127.0.0.1") {
                    return Err(invalid("only https:// origins (http:// for localhost)"));
                }
                rest
            } else if entry == "*" {
                return Err(invalid("a wildcard would let any web page exchange tokens"));
            } else {
                return Err(invalid("it must start with https://"));
            };
            if host.is_empty() || host.contains('/') {
                return Err(invalid("an origin has no path, not even a trailing /"));
            }
            if !origins.iter().any(|o| o == entry) {
                origins.push(entry.to_owned());
            }
        }
        Ok(origins)
    }

    /// Comma- or space-separated domains, lower-cased, a leading `@` allowed.
    fn email_domains(&self, name: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let mut domains = Vec::new();
        for entry in raw.split([',', ' ', '\n', '\t']).filter(|e| !e.is_empty()) {
            let domain = entry.trim_start_matches('@').to_ascii_lowercase();
            let valid = !domain.is_empty()
                && domain.contains('.')
                && !domain.starts_with(['.', '-'])
                && !domain.ends_with(['.', '-'])
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !valid {
                return Err(ConfigError::InvalidEmailDomain {
                    name,
                    value: entry.to_owned(),
                });
            }
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        Ok((!domains.is_empty()).then_some(domains))
    }
}

#[cfg(test)]
mod tests {
    use testkit::env_lookup as bare;

    use super::*;

    const ARN: &str = "arn:aws:chime:eu-west-1:123456789012:app-instance/abcd-1234";
    const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/sync.fifo";
    const DLQ: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/sync-dlq.fifo";

    /// The variables `pairs` set; `LEDGER_TABLE` is `ledger` unless they
    /// set it (the tests of the other settings), [`bare`] without it.
    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let set = bare(pairs);
        move |name| set(name).or_else(|| (name == LEDGER_TABLE).then(|| "ledger".to_owned()))
    }

    #[test]
    fn the_ledger_table_is_required_and_named_when_wrong() {
        let base = [(APP_INSTANCE_ARN, ARN), (DLQ_URL, DLQ)];
        let err = IdpSyncConfig::from_lookup(bare(&base)).unwrap_err();
        assert!(
            err.to_string().contains("LEDGER_TABLE is required"),
            "{err}"
        );
        for (value, want) in [
            (
                "stack-UserLedger-1AB2",
                Ok(LedgerLocation::Table("stack-UserLedger-1AB2".into())),
            ),
            ("memory", Ok(LedgerLocation::Memory)),
            ("no spaces allowed", Err(())),
            ("ab", Err(())),
        ] {
            let mut vars = base.to_vec();
            vars.push((LEDGER_TABLE, value));
            let got = IdpSyncConfig::from_lookup(bare(&vars)).map(|c| c.ledger);
            match want {
                Ok(location) => assert_eq!(got, Ok(location)),
                Err(()) => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.starts_with("LEDGER_TABLE must be"), "{err}");
                }
            }
        }
    }

    #[test]
    fn idp_sync_reads_the_feed_breaker_and_the_unowned_policy() {
        let base = [(APP_INSTANCE_ARN, ARN), (DLQ_URL, DLQ)];
        let cfg = IdpSyncConfig::from_lookup(lookup(&base)).unwrap();
        assert_eq!(cfg.rules.feed_breaker, Some(FeedBreaker::default()));
        assert_eq!(cfg.rules.unowned, UnownedPolicy::Keep);
        let mut vars = base.to_vec();
        vars.extend([
            (FEED_DELETE_LIMIT, "10"),
            (FEED_DELETE_LIMIT_PERCENT, "2"),
            (FEED_DELETE_WINDOW_MINUTES, "15"),
            (UNOWNED_USERS, "pool"),
        ]);
        let cfg = IdpSyncConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(
            cfg.rules.feed_breaker,
            Some(FeedBreaker {
                limit: 10,
                percent: 2,
                window: Duration::from_secs(900)
            })
        );
        assert_eq!(
            cfg.rules.unowned,
            UnownedPolicy::OwnedBy(chime_sync_core::ledger::Source::pool())
        );
        for (name, value) in [
            (FEED_DELETE_WINDOW_MINUTES, "0"),
            (FEED_DELETE_WINDOW_MINUTES, "1441"),
            (FEED_DELETE_LIMIT_PERCENT, "101"),
            (UNOWNED_USERS, "everyone"),
        ] {
            let mut bad = base.to_vec();
            bad.push((name, value));
            let err = IdpSyncConfig::from_lookup(lookup(&bad))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn pre_signup_defaults() {
        let cfg = PreSignupConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(cfg.display_names, DisplayNamePolicy::default());
        assert_eq!(cfg.allowed_email_domains, None);
        assert!(!cfg.auto_confirm);
        assert!(!cfg.auto_verify_email);
    }

    #[test]
    fn pre_signup_reads_its_policy() {
        let cfg = PreSignupConfig::from_lookup(lookup(&[
            (
                ALLOWED_EMAIL_DOMAINS,
                " Example.com, @example.org ,example.com",
            ),
            (AUTO_VERIFY_EMAIL, "1"),
            (DISPLAY_NAME_ATTRIBUTES, "name,email:local"),
        ]))
        .unwrap();
        assert_eq!(
            cfg.allowed_email_domains,
            Some(vec!["example.com".to_owned(), "example.org".to_owned()])
        );
        assert!(!cfg.auto_confirm && cfg.auto_verify_email);
        assert_eq!(
            cfg.display_names,
            DisplayNamePolicy::parse("name,email:local").unwrap()
        );
        let cfg = PreSignupConfig::from_lookup(lookup(&[(AUTO_CONFIRM, "TRUE")])).unwrap();
        assert!(cfg.auto_confirm && cfg.allowed_email_domains.is_none());
    }

    #[test]
    fn auto_confirm_with_allowed_email_domains_is_refused() {
        for confirm in ["true", "TRUE", "1"] {
            for verify in ["false", "true"] {
                let err = PreSignupConfig::from_lookup(lookup(&[
                    (ALLOWED_EMAIL_DOMAINS, "corp.com"),
                    (AUTO_CONFIRM, confirm),
                    (AUTO_VERIFY_EMAIL, verify),
                ]))
                .unwrap_err();
                assert_eq!(
                    err,
                    ConfigError::UnprovenEmailDomains {
                        confirm: AUTO_CONFIRM,
                        domains: ALLOWED_EMAIL_DOMAINS
                    }
                );
                let text = err.to_string();
                assert!(
                    text.starts_with(
                        "AUTO_CONFIRM=true cannot be combined with ALLOWED_EMAIL_DOMAINS:"
                    ),
                    "{text}"
                );
                assert!(text.contains("nothing proves they own it"), "{text}");
            }
        }
        // Either alone is allowed, and a blank list is no list.
        for pairs in [
            &[(AUTO_CONFIRM, "true"), (AUTO_VERIFY_EMAIL, "true")][..],
            &[(ALLOWED_EMAIL_DOMAINS, "corp.com"), (AUTO_CONFIRM, "false")],
            &[
                (ALLOWED_EMAIL_DOMAINS, "corp.com"),
                (AUTO_VERIFY_EMAIL, "true"),
            ],
            &[(ALLOWED_EMAIL_DOMAINS, " , "), (AUTO_CONFIRM, "true")],
        ] {
            assert!(
                PreSignupConfig::from_lookup(lookup(pairs)).is_ok(),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn blank_values_mean_unset() {
        let cfg = PreSignupConfig::from_lookup(lookup(&[
            (ALLOWED_EMAIL_DOMAINS, "  "),
            (AUTO_CONFIRM, ""),
            (DISPLAY_NAME_ATTRIBUTES, ""),
        ]))
        .unwrap();
        assert_eq!(cfg.allowed_email_domains, None);
        assert!(!cfg.auto_confirm);
    }

    #[test]
    fn booleans_accept_only_true_false_1_0() {
        for bad in ["yes", "on", "2", "truthy"] {
            let err =
                PreSignupConfig::from_lookup(lookup(&[(AUTO_VERIFY_EMAIL, bad)])).unwrap_err();
            assert_eq!(
                err,
                ConfigError::InvalidBool {
                    name: AUTO_VERIFY_EMAIL,
                    value: bad.to_owned()
                }
            );
            assert!(err.to_string().contains("AUTO_VERIFY_EMAIL"));
        }
    }

    #[test]
    fn bad_domains_and_name_policies_name_their_variable() {
        let err = PreSignupConfig::from_lookup(lookup(&[(
            ALLOWED_EMAIL_DOMAINS,
            "example.com,not a/domain",
        )]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("ALLOWED_EMAIL_DOMAINS"),
            "{err}"
        );
        let err =
            PreSignupConfig::from_lookup(lookup(&[(DISPLAY_NAME_ATTRIBUTES, " , ")])).unwrap_err();
        assert!(err.to_string().contains("DISPLAY_NAME_ATTRIBUTES"), "{err}");
    }

    #[test]
    fn post_confirmation_defaults() {
        let cfg = PostConfirmationConfig::from_lookup(lookup(&[
            (APP_INSTANCE_ARN, ARN),
            (SYNC_QUEUE_URL, QUEUE),
        ]))
        .unwrap();
        assert_eq!(cfg.chime.app_instance.region(), "eu-west-1");
        assert_eq!(cfg.chime_budget(), Duration::from_millis(2000));
        assert_eq!(cfg.chime.max_attempts, 4);
        assert_eq!(cfg.chime.endpoint_url, None);
        assert_eq!(cfg.sync_queue_url, QUEUE);
        assert_eq!(cfg.queue_timeout, POST_CONFIRMATION_QUEUE_TIMEOUT);
    }

    #[test]
    fn post_confirmation_budget_and_attempts_are_bounded() {
        let base = [(APP_INSTANCE_ARN, ARN), (SYNC_QUEUE_URL, QUEUE)];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            PostConfirmationConfig::from_lookup(lookup(&pairs))
        };
        assert_eq!(
            with((CHIME_BUDGET_MS, "1500")).unwrap().chime_budget(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            with((CHIME_MAX_ATTEMPTS, "2")).unwrap().chime.max_attempts,
            2
        );
        for (name, bad) in [
            (CHIME_BUDGET_MS, "2001"),
            (CHIME_BUDGET_MS, "5000"),
            (CHIME_BUDGET_MS, "50"),
            (CHIME_BUDGET_MS, "3s"),
            (CHIME_MAX_ATTEMPTS, "0"),
            (CHIME_MAX_ATTEMPTS, "11"),
        ] {
            match with((name, bad)) {
                Err(ConfigError::InvalidNumber { name: n, value, .. }) => {
                    assert_eq!((n, value.as_str()), (name, bad));
                }
                other => panic!("{name}={bad} gave {other:?}"),
            }
        }
    }

    #[test]
    fn missing_and_malformed_required_values_name_their_variable() {
        let err =
            PostConfirmationConfig::from_lookup(lookup(&[(SYNC_QUEUE_URL, QUEUE)])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                name: APP_INSTANCE_ARN,
                ..
            }
        ));
        assert!(err.to_string().starts_with("APP_INSTANCE_ARN is required"));

        let err = PostConfirmationConfig::from_lookup(lookup(&[
            (
                APP_INSTANCE_ARN,
                "arn:aws:sqs:eu-west-1:123456789012:app-instance/x",
            ),
            (SYNC_QUEUE_URL, QUEUE),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidAppInstanceArn {
                name: APP_INSTANCE_ARN,
                ..
            }
        ));
        assert!(err.to_string().contains("chime"), "{err}");

        let err =
            PostConfirmationConfig::from_lookup(lookup(&[(APP_INSTANCE_ARN, ARN)])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                name: SYNC_QUEUE_URL,
                ..
            }
        ));

        for bad in [
            "sqs/sync.fifo",
            "https://",
            "https://sqs.eu-west-1.amazonaws.com/sync.fifo",
        ] {
            let err = PostConfirmationConfig::from_lookup(lookup(&[
                (APP_INSTANCE_ARN, ARN),
                (SYNC_QUEUE_URL, bad),
            ]))
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::InvalidQueueUrl {
                        name: SYNC_QUEUE_URL,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn local_queue_urls_are_accepted() {
        let url = "http://127.0.0.1:4566/000000000000/sync.fifo";
        let cfg = PostConfirmationConfig::from_lookup(lookup(&[
            (APP_INSTANCE_ARN, ARN),
            (SYNC_QUEUE_URL, url),
        ]))
        .unwrap();
        assert_eq!(cfg.sync_queue_url, url);
    }

    #[test]
    fn idp_sync_defaults_and_bounds() {
        let cfg =
            IdpSyncConfig::from_lookup(lookup(&[(APP_INSTANCE_ARN, ARN), (DLQ_URL, DLQ)])).unwrap();
        assert_eq!(cfg.max_concurrent_groups, 10);
        assert_eq!(cfg.chime.operation_timeout, DEFAULT_IDP_SYNC_BUDGET);
        assert_eq!(cfg.dlq_url, DLQ);
        let cfg = IdpSyncConfig::from_lookup(lookup(&[
            (APP_INSTANCE_ARN, ARN),
            (DLQ_URL, DLQ),
            (MAX_CONCURRENT_GROUPS, "3"),
            (CHIME_BUDGET_MS, "8000"),
        ]))
        .unwrap();
        assert_eq!(cfg.max_concurrent_groups, 3);
        assert_eq!(cfg.chime.operation_timeout, Duration::from_millis(8000));
        for bad in ["0", "11"] {
            let err = IdpSyncConfig::from_lookup(lookup(&[
                (APP_INSTANCE_ARN, ARN),
                (DLQ_URL, DLQ),
                (MAX_CONCURRENT_GROUPS, bad),
            ]))
            .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("MAX_CONCURRENT_GROUPS must be a whole number from 1 to 10"),
                "{err}"
            );
        }
        let err = IdpSyncConfig::from_lookup(lookup(&[(APP_INSTANCE_ARN, ARN)])).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { name: DLQ_URL, .. }));
    }

    const ISSUERS: &str = r#"{"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12Cd34E": {"audiences": ["client-1"], "tokenUse": "id"}}"#;
    const ROLE: &str = "arn:aws:iam::123456789012:role/chime-identity-sync-ChatUserRole-1AB2";

    fn exchange(
        extra: &[(&'static str, &'static str)],
    ) -> Result<CredentialExchangeConfig, ConfigError> {
        let mut pairs = vec![
            (APP_INSTANCE_ARN, ARN),
            (TRUSTED_ISSUERS, ISSUERS),
            (CHAT_USER_ROLE_ARN, ROLE),
        ];
        pairs.extend_from_slice(extra);
        CredentialExchangeConfig::from_lookup(lookup(&pairs))
    }

    #[test]
    fn credential_exchange_defaults() {
        let cfg = exchange(&[]).unwrap();
        assert_eq!(cfg.chat_user_role_arn, ROLE);
        assert!(cfg.ensure_user);
        assert!(cfg.allowed_origins.is_empty());
        assert_eq!(cfg.max_session, Duration::from_secs(3600));
        assert_eq!(cfg.chime.operation_timeout, DEFAULT_EXCHANGE_CHIME_BUDGET);
        assert!(
            cfg.issuers
                .get("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12Cd34E")
                .is_some()
        );
        let cfg = exchange(&[
            (
                ALLOWED_ORIGINS,
                "https://chat.example.com, http://localhost:3000",
            ),
            (ENSURE_CHIME_USER, "false"),
            (MAX_SESSION_SECONDS, "900"),
        ])
        .unwrap();
        assert_eq!(
            cfg.allowed_origins,
            vec!["https://chat.example.com", "http://localhost:3000"]
        );
        assert!(!cfg.ensure_user);
        assert_eq!(cfg.max_session, Duration::from_secs(900));
    }

    #[test]
    fn credential_exchange_errors_name_their_variable() {
        let err = CredentialExchangeConfig::from_lookup(lookup(&[
            (APP_INSTANCE_ARN, ARN),
            (CHAT_USER_ROLE_ARN, ROLE),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("TRUSTED_ISSUERS is required"),
            "{err}"
        );
        let cases: [(&'static str, &'static str, &str); 9] = [
            (
                TRUSTED_ISSUERS,
                "not json",
                "TRUSTED_ISSUERS must be a JSON object",
            ),
            (
                TRUSTED_ISSUERS,
                r#"{"https://idp.example.com": {"audiences": []}}"#,
                "TRUSTED_ISSUERS issuer https://idp.example.com: `audiences` must list",
            ),
            (
                CHAT_USER_ROLE_ARN,
                "ChatUserRole",
                "CHAT_USER_ROLE_ARN must be an IAM role ARN",
            ),
            (
                CHAT_USER_ROLE_ARN,
                "arn:aws:iam::123456789012:user/ada",
                "CHAT_USER_ROLE_ARN must be an IAM role ARN",
            ),
            (
                ALLOWED_ORIGINS,
                "*",
                "ALLOWED_ORIGINS has an invalid origin `*`: a wildcard",
            ),
            (
                ALLOWED_ORIGINS,
                "https://chat.example.com/",
                "ALLOWED_ORIGINS has an invalid origin",
            ),
            (ALLOWED_ORIGINS, "http://chat.example.com", "only https://"),
            (
                MAX_SESSION_SECONDS,
                "7200",
                "MAX_SESSION_SECONDS must be a whole number from 900 to 3600",
            ),
            (
                ENSURE_CHIME_USER,
                "yes",
                "ENSURE_CHIME_USER must be true, false, 1 or 0",
            ),
        ];
        for (name, value, says) in cases {
            let mut pairs = vec![
                (APP_INSTANCE_ARN, ARN),
                (TRUSTED_ISSUERS, ISSUERS),
                (CHAT_USER_ROLE_ARN, ROLE),
            ];
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = CredentialExchangeConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains(says), "{name}={value}: {err}");
        }
        assert!(is_role_arn(
            "arn:aws-cn:iam::123456789012:role/path/to/Role"
        ));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
    }

    const POOL: &str = "eu-west-1_AbCdEf123";

    fn reconcile(pairs: &[(&str, &str)]) -> Result<ReconcileConfig, ConfigError> {
        let mut all = vec![
            (APP_INSTANCE_ARN, ARN),
            (USER_POOL_ID, POOL),
            (SYNC_QUEUE_URL, QUEUE),
        ];
        all.extend_from_slice(pairs);
        ReconcileConfig::from_lookup(lookup(&all))
    }

    #[test]
    fn reconcile_defaults() {
        let cfg = reconcile(&[]).unwrap();
        let s = &cfg.settings;
        assert_eq!(cfg.cognito.user_pool_id.region(), "eu-west-1");
        assert_eq!(cfg.sync_queue_url, QUEUE);
        assert_eq!(
            s.breaker,
            DeleteBreaker {
                limit: 50,
                percent: 5
            }
        );
        assert_eq!(s.delete_mode, DeleteMode::Grace { days: 7 });
        assert_eq!(s.shards, ShardSetting::Auto);
        assert!(
            (s.pool_rate - 15.0).abs() < 1e-9,
            "half of ListUsers' 30 RPS"
        );
        assert_eq!(s.active, ActivePolicy::default());
        assert!(s.protected.is_empty());
        assert_eq!(cfg.chime.operation_timeout, DEFAULT_RECONCILE_CHIME_BUDGET);
    }

    #[test]
    fn reconcile_reads_its_settings() {
        let cfg = reconcile(&[
            (DELETE_LIMIT, "0"),
            (DELETE_LIMIT_PERCENT, "100"),
            (DELETE_MODE, "Immediate"),
            (COGNITO_QUOTA_SHARE_PERCENT, "10"),
            (RECONCILE_SHARDS, "256"),
            (ACTIVE_USER_STATUSES, "CONFIRMED"),
            (
                PROTECTED_USER_IDS,
                "bot-1, 6F1C2D3E-0B4A-4C5D-8E9F-A0B1C2D3E4F5",
            ),
        ])
        .unwrap();
        let s = &cfg.settings;
        assert_eq!(
            s.breaker,
            DeleteBreaker {
                limit: 0,
                percent: 100
            }
        );
        assert_eq!(s.delete_mode, DeleteMode::Immediate);
        assert!((s.pool_rate - 3.0).abs() < 1e-9);
        assert_eq!(s.shards, ShardSetting::Fixed(256));
        assert_eq!(
            s.protected,
            BTreeSet::from([
                "bot-1".to_owned(),
                "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5".to_owned()
            ])
        );
    }

    #[test]
    fn each_bad_reconcile_setting_names_its_variable() {
        let cases: [(&str, &str); 10] = [
            (USER_POOL_ID, "pool"),
            (DELETE_LIMIT, "-1"),
            (DELETE_LIMIT_PERCENT, "101"),
            (DELETE_MODE, "soft"),
            (DELETE_GRACE_DAYS, "0"),
            (DELETE_GRACE_DAYS, "366"),
            (COGNITO_QUOTA_SHARE_PERCENT, "0"),
            (RECONCILE_SHARDS, "8"),
            (ACTIVE_USER_STATUSES, "ACTIVE"),
            (PROTECTED_USER_IDS, "bad id!"),
        ];
        for (name, value) in cases {
            let err = reconcile(&[(name, value)]).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
        let missing = ReconcileConfig::from_lookup(lookup(&[(APP_INSTANCE_ARN, ARN)])).unwrap_err();
        assert!(missing.to_string().contains(USER_POOL_ID), "{missing}");
    }

    #[test]
    fn idp_sync_deletes_with_a_grace_period_by_default() {
        let base = [(APP_INSTANCE_ARN, ARN), (DLQ_URL, DLQ)];
        let cfg = IdpSyncConfig::from_lookup(lookup(&base)).unwrap();
        assert_eq!(cfg.rules.delete_mode, DeleteMode::Grace { days: 7 });
        let mut immediate = base.to_vec();
        immediate.push((DELETE_MODE, "immediate"));
        assert_eq!(
            IdpSyncConfig::from_lookup(lookup(&immediate))
                .unwrap()
                .rules
                .delete_mode,
            DeleteMode::Immediate
        );
        let mut days = base.to_vec();
        days.push((DELETE_GRACE_DAYS, "30"));
        assert_eq!(
            IdpSyncConfig::from_lookup(lookup(&days))
                .unwrap()
                .rules
                .delete_mode,
            DeleteMode::Grace { days: 30 }
        );
    }
}
