//! The settings reference: every environment variable the functions read,
//! stated once — which functions read it, its default, what it accepts, the
//! template.yaml parameter that sets it, and what it means.
//!
//! Settings used to be stated in four places (README, docs/DEPLOY.md,
//! template.yaml, this crate) and kept in step by a test that parsed English.
//! Now docs/SETTINGS.md is generated from [`settings`] by [`markdown`], and a
//! test regenerates it and compares; the numbers come from [`spec`], the same
//! constants the parsers enforce; and tests drive the parsers and check
//! template.yaml from this table. So the document cannot drift from the
//! table, nor the table from the code or the template.
//!
//! Meanings are kept to a sentence or two: the reasons live in the documents
//! they link (DEPLOY, OWNERSHIP, CREDENTIALS).

use super::{
    ACTIVE_USER_STATUSES, ALLOWED_EMAIL_DOMAINS, ALLOWED_ORIGINS, APP_INSTANCE_ARN, AUTO_CONFIRM,
    AUTO_VERIFY_EMAIL, CHAT_USER_ROLE_ARN, CHIME_BUDGET_MS, CHIME_MAX_ATTEMPTS,
    COGNITO_QUOTA_SHARE_PERCENT, DELETE_GRACE_DAYS, DELETE_LIMIT, DELETE_LIMIT_PERCENT,
    DELETE_MODE, DISPLAY_NAME_ATTRIBUTES, DLQ_URL, ENSURE_CHIME_USER, FEED_DELETE_LIMIT,
    FEED_DELETE_LIMIT_PERCENT, FEED_DELETE_WINDOW_MINUTES, LEDGER_TABLE, MAX_CONCURRENT_GROUPS,
    MAX_SESSION_SECONDS, PROTECTED_USER_IDS, RECONCILE_SHARDS, SIGN_IN_BUDGET_MS, SYNC_QUEUE_URL,
    TRUSTED_ISSUERS, UNOWNED_USERS, USER_POOL_ID,
};
use super::{Bounds, Choice, spec};
use chime_sync_core::DisplayNamePolicy;
use chime_sync_core::user_pool::ActivePolicy;

#[cfg(test)]
mod documents;
#[cfg(test)]
mod tests;

/// A Lambda function of the stack, by the binary it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    PreSignup,
    PostConfirmation,
    IdpSync,
    Reconcile,
    CredentialExchange,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::PreSignup,
        Function::PostConfirmation,
        Function::IdpSync,
        Function::Reconcile,
        Function::CredentialExchange,
    ];

    /// The binary's name: template.yaml's `Metadata.BuildProperties.Binary`,
    /// and how the documents name the function.
    pub const fn binary(self) -> &'static str {
        match self {
            Function::PreSignup => "pre-signup",
            Function::PostConfirmation => "post-confirmation",
            Function::IdpSync => "idp-sync",
            Function::Reconcile => "reconcile",
            Function::CredentialExchange => "credential-exchange",
        }
    }
}

/// What a variable accepts, and what unset means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// The function refuses to start without it; the stack always sets it.
    /// `example` shows the form (and is what the tests pass).
    Required { example: &'static str },
    /// A whole number within `bounds`, in `unit`.
    Number { bounds: Bounds, unit: &'static str },
    /// `true`/`false`/`1`/`0`, any case.
    Flag { default: bool },
    /// One of a few words.
    OneOf(Choice),
    /// Free form (a list, a name). `example` is a valid value other than the default.
    Text { unset: Unset, example: &'static str },
}

/// What a text variable means when unset (or blank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// The same as this value: a template may pass either.
    Is(&'static str),
    /// This, which no value spells.
    Means(&'static str),
}

/// How template.yaml sets a variable of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// `VAR: !Ref Parameter` (possibly inside `!If`): the parameter's
    /// `Default` and range are the table's.
    Parameter(&'static str),
    /// A resource of the stack, or this parameter when it is set (`!If`):
    /// the parameter chooses what exists, so its default differs.
    StackOr(&'static str),
    /// A resource of the stack (`!Ref SyncQueue`).
    Stack,
    /// Not set: the default applies unless the function's environment is edited.
    NotSet,
}

/// One function's reading of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub function: Function,
    pub value: Value,
    pub feed: Feed,
}

/// One environment variable: its name, its readings, its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub readings: Vec<Reading>,
    /// A sentence or two of Markdown; links are relative to docs/.
    pub meaning: &'static str,
}

/// Settings under one heading of docs/SETTINGS.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub title: &'static str,
    pub settings: Vec<Setting>,
}

/// The same value and feed for each of `functions`.
fn read_by(functions: &[Function], value: Value, feed: Feed) -> Vec<Reading> {
    functions
        .iter()
        .map(|&function| Reading {
            function,
            value,
            feed,
        })
        .collect()
}

fn setting(name: &'static str, readings: Vec<Reading>, meaning: &'static str) -> Setting {
    Setting {
        name,
        readings,
        meaning,
    }
}

fn number(bounds: Bounds, unit: &'static str) -> Value {
    Value::Number { bounds, unit }
}

/// Every variable, grouped as docs/SETTINGS.md shows them.
pub fn settings() -> Vec<Group> {
    vec![
        Group {
            title: "Where things are",
            settings: resources(),
        },
        Group {
            title: "Calls to Chime",
            settings: chime(),
        },
        Group {
            title: "Sign-up and display names",
            settings: sign_up(),
        },
        Group {
            title: "Reconcile",
            settings: reconcile(),
        },
        Group {
            title: "Deletions and their breakers",
            settings: [when_deleted(), breakers()].concat(),
        },
        Group {
            title: "Credential exchange",
            settings: exchange(),
        },
    ]
}

/// The required variables: what the stack created, or was given.
fn resources() -> Vec<Setting> {
    use Function::*;
    let required = |example| Value::Required { example };
    vec![
        setting(
            APP_INSTANCE_ARN,
            read_by(
                &[PostConfirmation, IdpSync, Reconcile, CredentialExchange],
                required("arn:aws:chime:us-east-1:123456789012:app-instance/abcd-1234"),
                Feed::StackOr("ExistingAppInstanceArn"),
            ),
            "The AppInstance users are created in; its Region is the Chime client's.",
        ),
        setting(
            SYNC_QUEUE_URL,
            read_by(
                &[PostConfirmation, Reconcile],
                required("https://sqs.us-east-1.amazonaws.com/123456789012/sync.fifo"),
                Feed::Stack,
            ),
            "The FIFO queue idp-sync reads: post-confirmation hands it a user when Chime is slow \
             or down, reconcile publishes its plan to it.",
        ),
        setting(
            DLQ_URL,
            read_by(
                &[IdpSync],
                required("https://sqs.us-east-1.amazonaws.com/123456789012/sync-dlq.fifo"),
                Feed::Stack,
            ),
            "Where idp-sync sends a poison message itself, with the reason.",
        ),
        setting(
            LEDGER_TABLE,
            read_by(
                &[PostConfirmation, IdpSync, Reconcile, CredentialExchange],
                required("chime-identity-sync-LedgerTable-1AB2"),
                Feed::Stack,
            ),
            "The DynamoDB table recording each user's owner, last change and deletion marks \
             ([OWNERSHIP.md](OWNERSHIP.md)); `memory` keeps it in the sandbox, for local \
             development only (logged as a warning).",
        ),
        setting(
            USER_POOL_ID,
            read_by(
                &[Reconcile],
                required("us-east-1_AbCdEf123"),
                Feed::StackOr("ExistingUserPoolId"),
            ),
            "The user pool reconcile reads; its Region is the Cognito client's.",
        ),
    ]
}

/// How long and how often the functions call Chime.
fn chime() -> Vec<Setting> {
    use Function::*;
    let budget = |function, bounds, feed| Reading {
        function,
        value: number(bounds, "ms"),
        feed,
    };
    vec![
        setting(
            CHIME_BUDGET_MS,
            vec![
                budget(
                    PostConfirmation,
                    spec::POST_CONFIRMATION_CHIME_BUDGET_MS,
                    Feed::Parameter("ChimeBudgetMs"),
                ),
                budget(IdpSync, spec::IDP_SYNC_CHIME_BUDGET_MS, Feed::NotSet),
                budget(Reconcile, spec::RECONCILE_CHIME_BUDGET_MS, Feed::NotSet),
                budget(
                    CredentialExchange,
                    spec::EXCHANGE_CHIME_BUDGET_MS,
                    Feed::NotSet,
                ),
            ],
            "Longest one Chime call may take, retries included. post-confirmation hands the \
             user to the sync queue when it runs out; its largest budget is what its timeout \
             leaves after the hand-off ([DEPLOY.md](DEPLOY.md#timeouts-and-memory)).",
        ),
        setting(
            CHIME_MAX_ATTEMPTS,
            read_by(
                &[PostConfirmation, IdpSync, Reconcile, CredentialExchange],
                number(spec::CHIME_MAX_ATTEMPTS, ""),
                Feed::NotSet,
            ),
            "Attempts per Chime call, the first included, with full-jitter backoff between them.",
        ),
        setting(
            SIGN_IN_BUDGET_MS,
            read_by(
                &[PostConfirmation],
                number(spec::SIGN_IN_BUDGET_MS, "ms"),
                Feed::NotSet,
            ),
            "The Chime budget at a federated user's sign-in, which the user waits on \
             ([OWNERSHIP.md](OWNERSHIP.md#no-window-at-first-sign-in)).",
        ),
        setting(
            MAX_CONCURRENT_GROUPS,
            read_by(
                &[IdpSync],
                number(spec::MAX_CONCURRENT_GROUPS, ""),
                Feed::Parameter("MaxConcurrentGroups"),
            ),
            "Users (FIFO message groups) of one batch applied at the same time; a FIFO batch \
             holds at most 10 messages.",
        ),
    ]
}

/// pre-signup's policy, and the display name every function derives.
fn sign_up() -> Vec<Setting> {
    use Function::*;
    vec![
        setting(
            DISPLAY_NAME_ATTRIBUTES,
            read_by(
                &[PreSignup, PostConfirmation, Reconcile, CredentialExchange],
                Value::Text {
                    unset: Unset::Is(DisplayNamePolicy::DEFAULT),
                    example: "name,email:local",
                },
                Feed::Parameter("DisplayNameAttributes"),
            ),
            "Cognito attributes (credential-exchange: token claims) tried in order for the Chime \
             display name; entries joined by a space are concatenated, `email:local` is the part \
             before `@`. `preferred_username`, which users change freely, only when listed.",
        ),
        setting(
            ALLOWED_EMAIL_DOMAINS,
            read_by(
                &[PreSignup],
                Value::Text {
                    unset: Unset::Means("any domain"),
                    example: "example.com,example.org",
                },
                Feed::Parameter("AllowedEmailDomains"),
            ),
            "E-mail domains that may sign up, comma-separated, matched exactly. Only the \
             confirmation code proves the address, so the function refuses to start with \
             `AUTO_CONFIRM=true`.",
        ),
        setting(
            AUTO_CONFIRM,
            read_by(
                &[PreSignup],
                Value::Flag {
                    default: spec::AUTO_CONFIRM,
                },
                Feed::Parameter("AutoConfirm"),
            ),
            "Confirm users at sign-up without a code. Nothing then proves the e-mail address: \
             refused with `ALLOWED_EMAIL_DOMAINS` (and by the template's rule \
             `EmailDomainsNeedConfirmation`).",
        ),
        setting(
            AUTO_VERIFY_EMAIL,
            read_by(
                &[PreSignup],
                Value::Flag {
                    default: spec::AUTO_VERIFY_EMAIL,
                },
                Feed::Parameter("AutoVerifyEmail"),
            ),
            "Mark the e-mail verified at sign-up when there is one; it does not prove the address.",
        ),
    ]
}

/// How reconcile reads the pool.
fn reconcile() -> Vec<Setting> {
    use Function::*;
    vec![
        setting(
            ACTIVE_USER_STATUSES,
            read_by(
                &[Reconcile],
                Value::Text {
                    unset: Unset::Is(ActivePolicy::DEFAULT),
                    example: "CONFIRMED",
                },
                Feed::Parameter("ActiveUserStatuses"),
            ),
            "Cognito statuses whose enabled users get a Chime user, comma-separated; disabled \
             users never do.",
        ),
        setting(
            COGNITO_QUOTA_SHARE_PERCENT,
            read_by(
                &[Reconcile],
                number(spec::COGNITO_QUOTA_SHARE_PERCENT, "%"),
                Feed::Parameter("CognitoQuotaSharePercent"),
            ),
            "Share of Cognito's `ListUsers` quota (per account and Region) reconcile uses; the \
             rest is left to the console, the CLI and other tools.",
        ),
        setting(
            RECONCILE_SHARDS,
            read_by(
                &[Reconcile],
                Value::OneOf(spec::RECONCILE_SHARDS),
                Feed::Parameter("ReconcileShards"),
            ),
            "How a pool larger than one invocation is split: into that many shards of the sub \
             space, read one after another; `auto` starts unsharded and splits a pool that does \
             not fit.",
        ),
    ]
}

/// When a user may be deleted, and which never are.
fn when_deleted() -> Vec<Setting> {
    use Function::*;
    let both = [IdpSync, Reconcile];
    vec![
        setting(
            DELETE_MODE,
            read_by(
                &both,
                Value::OneOf(spec::DELETE_MODE),
                Feed::Parameter("DeleteMode"),
            ),
            "`grace`: Chime deletes the user after `DELETE_GRACE_DAYS`, unless a create, an \
             update or `chime-sync restore` cancels it; `immediate`: deleted at once. reconcile \
             uses it to leave deletions already scheduled out of its plan.",
        ),
        setting(
            DELETE_GRACE_DAYS,
            read_by(
                &both,
                number(spec::DELETE_GRACE_DAYS, "days"),
                Feed::Parameter("DeleteGraceDays"),
            ),
            "Days of grace in `grace` mode.",
        ),
        setting(
            UNOWNED_USERS,
            read_by(
                &both,
                Value::Text {
                    unset: Unset::Is(spec::UNOWNED_USERS),
                    example: "pool",
                },
                Feed::Parameter("UnownedUsers"),
            ),
            "Users owned by no source (made before ownership was recorded): `keep` them from \
             any deletion by absence, or name the source that owns them, e.g. `pool` \
             ([OWNERSHIP.md](OWNERSHIP.md)).",
        ),
        setting(
            PROTECTED_USER_IDS,
            read_by(
                &[Reconcile],
                Value::Text {
                    unset: Unset::Means("none"),
                    example: "bot-1",
                },
                Feed::Parameter("ProtectedUserIds"),
            ),
            "AppInstanceUserIds reconcile never deletes, comma-separated.",
        ),
    ]
}

/// The breakers that hold mass deletions: reconcile's per cycle, the feed's per window.
fn breakers() -> Vec<Setting> {
    use Function::*;
    vec![
        setting(
            DELETE_LIMIT,
            read_by(
                &[Reconcile],
                number(spec::DELETE_LIMIT, "users"),
                Feed::Parameter("DeleteLimit"),
            ),
            "reconcile's breaker: a cycle that plans more deletions than max(`DELETE_LIMIT`, \
             `DELETE_LIMIT_PERCENT` of the Chime users) withholds all of them.",
        ),
        setting(
            DELETE_LIMIT_PERCENT,
            read_by(
                &[Reconcile],
                number(spec::DELETE_LIMIT_PERCENT, "%"),
                Feed::Parameter("DeleteLimitPercent"),
            ),
            "See `DELETE_LIMIT`.",
        ),
        setting(
            FEED_DELETE_LIMIT,
            read_by(
                &[IdpSync],
                number(spec::feed_delete_limit(), "users"),
                Feed::Parameter("FeedDeleteLimit"),
            ),
            "The feed breaker: explicit `user.deleted` of one source beyond max(this, \
             `FEED_DELETE_LIMIT_PERCENT` of the Chime users) per window are held \
             ([OWNERSHIP.md](OWNERSHIP.md#the-feeds-breaker)).",
        ),
        setting(
            FEED_DELETE_LIMIT_PERCENT,
            read_by(
                &[IdpSync],
                number(spec::feed_delete_limit_percent(), "%"),
                Feed::Parameter("FeedDeleteLimitPercent"),
            ),
            "See `FEED_DELETE_LIMIT`; of the Chime users the last reconcile cycle counted.",
        ),
        setting(
            FEED_DELETE_WINDOW_MINUTES,
            read_by(
                &[IdpSync],
                number(spec::feed_delete_window_minutes(), "minutes"),
                Feed::Parameter("FeedDeleteWindowMinutes"),
            ),
            "The feed breaker's fixed window.",
        ),
    ]
}

/// What credential-exchange accepts and hands out.
fn exchange() -> Vec<Setting> {
    use Function::*;
    vec![
        setting(
            TRUSTED_ISSUERS,
            read_by(
                &[CredentialExchange],
                Value::Required {
                    example: r#"{"https://idp.example.com": {"audiences": ["chat-app"]}}"#,
                },
                Feed::StackOr("TrustedIssuers"),
            ),
            "The identity providers whose tokens it accepts: a JSON object from issuer URL to \
             its rules ([CREDENTIALS.md](CREDENTIALS.md#adding-an-issuer)). With the \
             parameter empty, the stack passes its created pool's.",
        ),
        setting(
            CHAT_USER_ROLE_ARN,
            read_by(
                &[CredentialExchange],
                Value::Required {
                    example: "arn:aws:iam::123456789012:role/chat-user",
                },
                Feed::Stack,
            ),
            "The role whose sessions are handed out.",
        ),
        setting(
            ALLOWED_ORIGINS,
            read_by(
                &[CredentialExchange],
                Value::Text {
                    unset: Unset::Means("none"),
                    example: "https://chat.example.com",
                },
                Feed::Parameter("AllowedOrigins"),
            ),
            "Browser origins answered CORS, comma-separated: `https://`, or `http://` on \
             localhost; `*` is refused.",
        ),
        setting(
            ENSURE_CHIME_USER,
            read_by(
                &[CredentialExchange],
                Value::Flag {
                    default: spec::ENSURE_CHIME_USER,
                },
                Feed::Parameter("EnsureChimeUser"),
            ),
            "Create the caller's Chime user when it is missing.",
        ),
        setting(
            MAX_SESSION_SECONDS,
            read_by(
                &[CredentialExchange],
                number(spec::MAX_SESSION_SECONDS, "s"),
                Feed::Parameter("MaxSessionSeconds"),
            ),
            "Longest session handed out, never longer than the token; a Lambda function's \
             `AssumeRole` is role chaining, which STS caps at one hour.",
        ),
    ]
}

/// The command that rewrites docs/SETTINGS.md from [`settings`].
pub const REGENERATE: &str = "UPDATE_SETTINGS=1 cargo test -p chime-sync-aws --lib settings_md";

/// docs/SETTINGS.md: a title, how it is made, then a table per group.
pub fn markdown() -> String {
    let mut out = format!(
        "# Settings\n\n\
         <!-- Generated from crates/aws/src/config/reference.rs. Do not edit; regenerate with\n     \
         {REGENERATE} -->\n\n\
         The environment variables the functions read: who reads each, its default, what it \
         accepts, and the\ntemplate parameter that sets it ([DEPLOY.md](DEPLOY.md#parameters) \
         has the stack's other parameters).\nThis file is generated from the configuration \
         code, which enforces the same values; a test fails\nwhen it is stale. Regenerate it \
         with `{REGENERATE}`.\n\n\
         A blank value counts as unset. Each function reads its variables once, at start-up, \
         and a bad one\nstops it there (`Runtime.ConfigError`) with an error naming the \
         variable.\n"
    );
    for group in settings() {
        out.push_str(&format!("\n## {}\n\n", group.title));
        out.push_str("| Variable | Read by | Default | Accepts | Template parameter | Meaning |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for setting in &group.settings {
            out.push_str(&rows(setting));
        }
    }
    out.push_str(
        "\n## Not in these tables\n\n\
         `RUST_LOG` (the `LogLevel` parameter, [DEPLOY.md](DEPLOY.md#parameters)); \
         `SSL_CERT_FILE`, a PEM file\nwhose certificates replace the compiled-in trust roots \
         ([PERFORMANCE.md](PERFORMANCE.md)); and the AWS SDK's\nown variables, such as \
         `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` for local fakes.\n",
    );
    out
}

/// A setting's rows: one per run of readings with the same value and feed,
/// the meaning on the first.
fn rows(setting: &Setting) -> String {
    let mut runs: Vec<(Vec<Function>, Value, Feed)> = Vec::new();
    for r in &setting.readings {
        match runs.last_mut() {
            Some((functions, value, feed)) if *value == r.value && *feed == r.feed => {
                functions.push(r.function);
            }
            _ => runs.push((vec![r.function], r.value, r.feed)),
        }
    }
    let mut out = String::new();
    for (i, (functions, value, feed)) in runs.iter().enumerate() {
        let read_by: Vec<&str> = functions.iter().map(|f| f.binary()).collect();
        let meaning = if i == 0 { setting.meaning } else { "as above" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            setting.name,
            read_by.join(", "),
            cell(&default_cell(value)),
            cell(&accepts_cell(value)),
            feed_cell(feed),
            cell(meaning),
        ));
    }
    out
}

/// Text that cannot break a table row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn default_cell(value: &Value) -> String {
    match value {
        Value::Required { .. } => "required".to_owned(),
        Value::Number { bounds, .. } => bounds.default.to_string(),
        Value::Flag { default } => format!("`{default}`"),
        Value::OneOf(choice) => format!("`{}`", choice.default),
        Value::Text {
            unset: Unset::Is(default),
            ..
        } => format!("`{default}`"),
        Value::Text {
            unset: Unset::Means(meaning),
            ..
        } => format!("empty: {meaning}"),
    }
}

fn accepts_cell(value: &Value) -> String {
    match value {
        Value::Required { example } | Value::Text { example, .. } => format!("e.g. `{example}`"),
        Value::Number { bounds, unit } => format!("{}–{} {unit}", bounds.min, bounds.max)
            .trim_end()
            .to_owned(),
        Value::Flag { .. } => "`true`, `false`, `1`, `0`".to_owned(),
        Value::OneOf(choice) => {
            let words: Vec<String> = choice.allowed.iter().map(|w| format!("`{w}`")).collect();
            words.join(", ")
        }
    }
}

fn feed_cell(feed: &Feed) -> String {
    match feed {
        Feed::Parameter(parameter) => format!("`{parameter}`"),
        Feed::StackOr(parameter) => format!("the stack's, or `{parameter}`"),
        Feed::Stack => "the stack's".to_owned(),
        Feed::NotSet => "—".to_owned(),
    }
}
