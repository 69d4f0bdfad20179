//! The one model of Chime SDK Identity's AppInstanceUser semantics.
//!
//! Both Chime doubles answer from this model, so a behaviour of Chime is written once: the
//! in-process [`InMemoryDirectory`](super::InMemoryDirectory) (the embedded replay and the
//! handlers' unit tests) maps its [`ChimeError`]s to [`DirectoryError`](crate::error::DirectoryError),
//! and the wire-level fake `chime-identity-fake` maps them to Chime's HTTP errors. What is
//! decided here is existence, `ClientRequestToken` idempotency, conflicts, the per-AppInstance
//! user limit, expiration, what a missing user answers, and pagination. Request shapes, lengths
//! and patterns are wire-level and checked by the fake before a call reaches the model (the
//! in-memory directory gets them already checked by the domain's types); faults are injected by
//! each double around the model, never in it.
//!
//! AppInstances are implicit: any AppInstance ARN names an AppInstance that exists, with no
//! users until one is created. This keeps both doubles configuration-free; the price is that
//! neither reproduces the real service's answer for an AppInstance that was never created.
//!
//! Times are epoch seconds with millisecond precision (`f64`), as Chime's JSON carries them.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// What Describe, Update, Delete and PutExpirationSettings answer for a user that does not
/// exist.
///
/// The Smithy model lists no `NotFoundException` for these operations (only
/// `DescribeAppInstanceBot` has one), and AWS does not document the answer. Two answers are
/// plausible, so both doubles give either and the clients' tests run under both:
///
/// - [`MissingAnswer::Forbidden`] (default): 403 `ForbiddenException` with the message Chime
///   messaging answers for an unknown user ARN ([`MISSING_USER_MESSAGE`], reported in
///   aws/amazon-chime-sdk-js#1148). It is the default because `ForbiddenException` is what the
///   model lists, and because it is the harder case for a client: an IAM denial has the same
///   status. The Chime adapter reports it as `DirectoryError::PossiblyMissing`.
/// - [`MissingAnswer::NotFound`]: 404 `NotFoundException`, what operators report for
///   `aws chime-sdk-identity describe-app-instance-user` on a user that was never created.
///   Because the error is not modelled, the Rust SDK surfaces it as the operation error's
///   `Unhandled` variant whose `code()` is `"NotFoundException"`.
///
/// A 400 is not offered: nothing suggests Chime answers a well-formed ARN that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissingAnswer {
    /// 404 `NotFoundException`.
    NotFound,
    /// 403 `ForbiddenException` with [`MISSING_USER_MESSAGE`] (default).
    #[default]
    Forbidden,
}

/// The message of Chime's 403 for an unknown AppInstanceUser ARN.
pub const MISSING_USER_MESSAGE: &str =
    "An invalid app instance user ARN was supplied for the input parameter.";

impl MissingAnswer {
    /// Both answers, for tests that must hold under either.
    pub const BOTH: [MissingAnswer; 2] = [Self::NotFound, Self::Forbidden];

    /// A short name for test names and logs: `404` or `403`.
    pub fn status_name(self) -> &'static str {
        match self {
            Self::NotFound => "404",
            Self::Forbidden => "403",
        }
    }
}

impl std::str::FromStr for MissingAnswer {
    type Err = String;

    /// `404` / `not-found` or `403` / `forbidden`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "404" | "not-found" | "notfound" => Ok(Self::NotFound),
            "403" | "forbidden" => Ok(Self::Forbidden),
            other => Err(format!(
                "unknown missing-user answer `{other}`: expected 404 or 403"
            )),
        }
    }
}

/// What `PutAppInstanceUserExpirationSettings` *without* `ExpirationSettings` does. The
/// member is optional in the model and the developer guide says settings can be "updated or
/// removed", but no page says how a removal is asked for; the plausible answers are these
/// (and [`Provisioning::clear_expiration`](crate::provisioning::Provisioning::clear_expiration)
/// must work under each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClearAnswer {
    /// The settings are removed; 200 without `ExpirationSettings` (default, what the
    /// developer guide suggests).
    #[default]
    Removes,
    /// 400 `BadRequestException`: the service wants settings after all.
    Rejects,
    /// 200 with the settings unchanged: the request is accepted and does nothing.
    Ignores,
}

impl std::str::FromStr for ClearAnswer {
    type Err = String;

    /// `removes`, `rejects` or `ignores`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "removes" => Ok(Self::Removes),
            "rejects" => Ok(Self::Rejects),
            "ignores" => Ok(Self::Ignores),
            other => Err(format!(
                "unknown expiration-clear answer `{other}`: expected removes, rejects or ignores"
            )),
        }
    }
}

/// Why the model refused an operation; each double maps it to its own error (the fake to
/// Chime's HTTP status and `X-Amzn-Errortype`, the in-memory directory to `DirectoryError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChimeError {
    /// A create for an existing id with another `ClientRequestToken` (Chime's 409 Conflict).
    #[error("AppInstanceUser {arn} already exists")]
    Conflict { arn: String },
    /// The AppInstance already has `limit` users (Chime's 400 ResourceLimitExceeded).
    #[error("The AppInstance {app_instance_arn} already has the maximum of {limit} users")]
    LimitExceeded {
        app_instance_arn: String,
        limit: usize,
    },
    /// No user has this ARN; `answer` says how the double must report it.
    #[error("AppInstanceUser {arn} does not exist")]
    Missing { arn: String, answer: MissingAnswer },
    /// A put of expiration settings without settings, under [`ClearAnswer::Rejects`].
    #[error("ExpirationSettings is required")]
    ExpirationRequired,
    /// A list token the model did not make, or made for another AppInstance.
    #[error("next-token (NextToken) is invalid or belongs to another AppInstance")]
    InvalidNextToken,
}

/// A tag as sent in `CreateAppInstanceUser`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// A user's `ExpirationSettings`, as Chime holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiration {
    /// `ExpirationDays` (1–5475).
    pub days: i64,
    /// `ExpirationCriterion` (only `CREATED_TIMESTAMP` exists).
    pub criterion: String,
}

/// The only `ExpirationCriterion` Chime has.
pub const CREATED_TIMESTAMP: &str = "CREATED_TIMESTAMP";

/// One stored AppInstanceUser, as Describe shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// `{AppInstanceArn}/user/{AppInstanceUserId}`.
    pub app_instance_user_arn: String,
    /// The AppInstance the user belongs to.
    pub app_instance_arn: String,
    /// The id given at creation.
    pub app_instance_user_id: String,
    /// Display name.
    pub name: String,
    /// Metadata, if any was given.
    pub metadata: Option<String>,
    /// The `ClientRequestToken` of the create that made this user; a repeated create with the
    /// same token is an idempotent replay.
    pub client_request_token: String,
    /// Tags given at creation.
    pub tags: Vec<Tag>,
    /// Expiration settings (given at creation or put later): when the clock passes
    /// `created_timestamp` + `days`, the user is deleted (see [`ChimeModel::purge_expired`]).
    pub expiration: Option<Expiration>,
    /// Creation time, epoch seconds with millisecond precision.
    pub created_timestamp: f64,
    /// Last update time, epoch seconds with millisecond precision.
    pub last_updated_timestamp: f64,
}

/// A `CreateAppInstanceUser` request whose shape is already checked.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Target AppInstance.
    pub app_instance_arn: String,
    /// Requested id.
    pub user_id: String,
    /// Display name.
    pub name: String,
    /// Optional metadata.
    pub metadata: Option<String>,
    /// Idempotency token.
    pub client_request_token: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Expiration.
    pub expiration: Option<Expiration>,
}

/// One page of `ListAppInstanceUsers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Users on this page, ordered by id (byte order).
    pub users: Vec<UserRecord>,
    /// Token for the next page, absent on the last one.
    pub next_token: Option<String>,
}

/// The ARN Chime gives a user: `{AppInstanceArn}/user/{id}`.
pub fn user_arn(app_instance_arn: &str, user_id: &str) -> String {
    format!("{app_instance_arn}/user/{user_id}")
}

/// The AppInstanceUsers of every AppInstance, and how missing users are answered.
#[derive(Debug)]
pub struct ChimeModel {
    users: BTreeMap<(String, String), UserRecord>,
    per_instance: HashMap<String, usize>,
    user_limit: usize,
    missing: MissingAnswer,
}

/// `ExpirationDays` counts days of 86,400 seconds.
const SECONDS_PER_DAY: f64 = 86_400.0;

/// Prefix of the opaque `NextToken`, so a token from another source is recognisably foreign.
const TOKEN_PREFIX: &str = "fake1.";

impl ChimeModel {
    /// An empty model allowing `user_limit` users per AppInstance.
    pub fn new(user_limit: usize, missing: MissingAnswer) -> Self {
        Self {
            users: BTreeMap::new(),
            per_instance: HashMap::new(),
            user_limit,
            missing,
        }
    }

    /// Answer calls about missing users this way from now on.
    pub fn set_missing_answer(&mut self, missing: MissingAnswer) {
        self.missing = missing;
    }

    /// Forgets every user.
    pub fn clear(&mut self) {
        self.users.clear();
        self.per_instance.clear();
    }

    /// Every user, ordered by AppInstance then id.
    pub fn all(&self) -> Vec<UserRecord> {
        self.users.values().cloned().collect()
    }

    fn missing(&self, app_instance_arn: &str, user_id: &str) -> ChimeError {
        ChimeError::Missing {
            arn: user_arn(app_instance_arn, user_id),
            answer: self.missing,
        }
    }

    /// `CreateAppInstanceUser`: the new user's ARN.
    ///
    /// An existing id with the same `ClientRequestToken` is a replay and returns the original ARN
    /// without changing the user (even if the name differs), as Chime answers a repeat of a
    /// request as it answered the first; with another token it is a [`ChimeError::Conflict`].
    /// The token binds only while the user exists: after a delete, a create with the old token
    /// makes a new user.
    pub fn create(&mut self, new: NewUser, now: f64) -> Result<String, ChimeError> {
        let key = (new.app_instance_arn.clone(), new.user_id.clone());
        if let Some(existing) = self.users.get(&key) {
            return if existing.client_request_token == new.client_request_token {
                Ok(existing.app_instance_user_arn.clone())
            } else {
                Err(ChimeError::Conflict {
                    arn: existing.app_instance_user_arn.clone(),
                })
            };
        }
        let count = self
            .per_instance
            .entry(new.app_instance_arn.clone())
            .or_default();
        if *count >= self.user_limit {
            return Err(ChimeError::LimitExceeded {
                app_instance_arn: new.app_instance_arn,
                limit: self.user_limit,
            });
        }
        *count += 1;
        let arn = user_arn(&new.app_instance_arn, &new.user_id);
        let record = UserRecord {
            app_instance_user_arn: arn.clone(),
            app_instance_arn: new.app_instance_arn,
            app_instance_user_id: new.user_id,
            name: new.name,
            metadata: new.metadata,
            client_request_token: new.client_request_token,
            tags: new.tags,
            expiration: new.expiration,
            created_timestamp: now,
            last_updated_timestamp: now,
        };
        self.users.insert(key, record);
        Ok(arn)
    }

    /// `DescribeAppInstanceUser`.
    pub fn describe(
        &self,
        app_instance_arn: &str,
        user_id: &str,
    ) -> Result<UserRecord, ChimeError> {
        self.users
            .get(&key(app_instance_arn, user_id))
            .cloned()
            .ok_or_else(|| self.missing(app_instance_arn, user_id))
    }

    /// `UpdateAppInstanceUser`: replaces name and metadata (Chime requires both), returns the
    /// ARN.
    pub fn update(
        &mut self,
        app_instance_arn: &str,
        user_id: &str,
        name: String,
        metadata: String,
        now: f64,
    ) -> Result<String, ChimeError> {
        let missing = self.missing(app_instance_arn, user_id);
        let record = self
            .users
            .get_mut(&key(app_instance_arn, user_id))
            .ok_or(missing)?;
        record.name = name;
        record.metadata = Some(metadata);
        record.last_updated_timestamp = now.max(record.created_timestamp);
        Ok(record.app_instance_user_arn.clone())
    }

    /// `PutAppInstanceUserExpirationSettings`: sets the user's settings (`Some`) or asks for
    /// their removal (`None`, answered as `clear` says); returns the ARN and the settings the
    /// user has afterwards.
    pub fn put_expiration(
        &mut self,
        app_instance_arn: &str,
        user_id: &str,
        expiration: Option<Expiration>,
        clear: ClearAnswer,
    ) -> Result<(String, Option<Expiration>), ChimeError> {
        let missing = self.missing(app_instance_arn, user_id);
        let record = self
            .users
            .get_mut(&key(app_instance_arn, user_id))
            .ok_or(missing)?;
        match (expiration, clear) {
            (Some(e), _) => record.expiration = Some(e),
            (None, ClearAnswer::Removes) => record.expiration = None,
            (None, ClearAnswer::Rejects) => return Err(ChimeError::ExpirationRequired),
            (None, ClearAnswer::Ignores) => {}
        }
        Ok((
            record.app_instance_user_arn.clone(),
            record.expiration.clone(),
        ))
    }

    /// Chime's background deletion: removes every user whose expiration has passed at `now`
    /// (epoch seconds) and returns them. The real service deletes "within 6 hours" of
    /// expiration; the doubles delete when their clock is advanced.
    pub fn purge_expired(&mut self, now: f64) -> Vec<UserRecord> {
        let expired: Vec<(String, String)> = self
            .users
            .iter()
            .filter(|(_, u)| {
                u.expiration
                    .as_ref()
                    .is_some_and(|e| u.created_timestamp + e.days as f64 * SECONDS_PER_DAY <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|(instance, id)| self.remove(&instance, &id))
            .collect()
    }

    /// `DeleteAppInstanceUser`.
    pub fn delete(&mut self, app_instance_arn: &str, user_id: &str) -> Result<(), ChimeError> {
        match self.remove(app_instance_arn, user_id) {
            Some(_) => Ok(()),
            None => Err(self.missing(app_instance_arn, user_id)),
        }
    }

    /// Removes a user and frees its place under the AppInstance's limit.
    fn remove(&mut self, app_instance_arn: &str, user_id: &str) -> Option<UserRecord> {
        let user = self.users.remove(&key(app_instance_arn, user_id))?;
        if let Some(count) = self.per_instance.get_mut(app_instance_arn) {
            *count = count.saturating_sub(1);
        }
        Some(user)
    }

    /// `ListAppInstanceUsers`: up to `max` users with ids after the one `next_token` points at.
    ///
    /// The token encodes the AppInstance and the last id returned, so pages stay consistent
    /// while users are added or deleted between calls; a token from another AppInstance or not
    /// made by this model is [`ChimeError::InvalidNextToken`].
    pub fn list(
        &self,
        app_instance_arn: &str,
        max: usize,
        next_token: Option<&str>,
    ) -> Result<Page, ChimeError> {
        let after = match next_token {
            None => None,
            Some(token) => Some(decode_token(token, app_instance_arn)?),
        };
        let start = (app_instance_arn.to_owned(), String::new());
        let mut users: Vec<UserRecord> = self
            .users
            .range(start..)
            .take_while(|((instance, _), _)| instance == app_instance_arn)
            .filter(|((_, id), _)| after.as_deref().is_none_or(|after| id.as_str() > after))
            .take(max.saturating_add(1))
            .map(|(_, record)| record.clone())
            .collect();
        let next_token = if users.len() > max {
            users.truncate(max);
            users
                .last()
                .map(|last| encode_token(app_instance_arn, &last.app_instance_user_id))
        } else {
            None
        };
        Ok(Page { users, next_token })
    }
}

fn key(app_instance_arn: &str, user_id: &str) -> (String, String) {
    (app_instance_arn.to_owned(), user_id.to_owned())
}

fn encode_token(app_instance_arn: &str, last_id: &str) -> String {
    let mut token = String::from(TOKEN_PREFIX);
    for byte in format!("{app_instance_arn}\n{last_id}").bytes() {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

fn decode_token(token: &str, app_instance_arn: &str) -> Result<String, ChimeError> {
    let invalid = || ChimeError::InvalidNextToken;
    let hex = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    if hex.len() % 2 != 0 {
        return Err(invalid());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.split_once('\n') {
        Some((instance, last_id)) if instance == app_instance_arn => Ok(last_id.to_owned()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests;
