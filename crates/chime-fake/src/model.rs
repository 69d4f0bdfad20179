//! The fake's state: AppInstanceUsers and the semantics of the five operations on them.
//!
//! Inputs reaching this module are already validated (see [`crate::validate`]); what is decided
//! here is existence, idempotency, conflicts, limits and pagination.
//!
//! AppInstances are implicit: any well-formed `AppInstanceArn` names an AppInstance that exists,
//! created on first use, with no users. This keeps the fake configuration-free for callers who
//! only care about users; the price is that it cannot reproduce the real service's answer for an
//! AppInstance that was never created.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorKind};
use crate::validate::{UserArn, user_arn};

/// What Describe, Update and Delete answer for a user that does not exist.
///
/// The Smithy model lists no `NotFoundException` for these operations (only
/// `DescribeAppInstanceBot` has one), and AWS does not document the answer. Two answers are
/// plausible, so the fake gives either and the clients' tests run under both:
///
/// - [`MissingUserError::Forbidden`] (default): 403 `ForbiddenException` with the message Chime
///   messaging answers for an unknown user ARN (`An invalid app instance user ARN was supplied
///   for the input parameter.`, reported in aws/amazon-chime-sdk-js#1148). It is the default
///   because `ForbiddenException` is what the model lists, and because it is the harder case for
///   a client: an IAM denial has the same status.
/// - [`MissingUserError::NotFound`]: 404 `NotFoundException`, what operators report for
///   `aws chime-sdk-identity describe-app-instance-user` on a user that was never created.
///   Because the error is not modelled, the Rust SDK surfaces it as the operation error's
///   `Unhandled` variant whose `code()` is `"NotFoundException"`.
///
/// A 400 is not offered: nothing suggests Chime answers a well-formed ARN that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissingUserError {
    /// 404 `NotFoundException`.
    NotFound,
    /// 403 `ForbiddenException` with [`MISSING_USER_MESSAGE`] (default).
    #[default]
    Forbidden,
}

/// The message of Chime's 403 for an unknown AppInstanceUser ARN.
pub const MISSING_USER_MESSAGE: &str =
    "An invalid app instance user ARN was supplied for the input parameter.";

impl MissingUserError {
    /// Both answers, for tests that must hold under either.
    pub const BOTH: [MissingUserError; 2] = [Self::NotFound, Self::Forbidden];

    /// A short name for test names and logs: `404` or `403`.
    pub fn status_name(self) -> &'static str {
        match self {
            Self::NotFound => "404",
            Self::Forbidden => "403",
        }
    }

    fn error(self, arn: &str) -> ApiError {
        match self {
            Self::NotFound => ApiError::new(
                ErrorKind::NotFound,
                format!("AppInstanceUser {arn} does not exist"),
            ),
            Self::Forbidden => ApiError::new(ErrorKind::Forbidden, MISSING_USER_MESSAGE),
        }
    }
}

impl std::str::FromStr for MissingUserError {
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

/// A tag as sent in `CreateAppInstanceUser`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// What `PutAppInstanceUserExpirationSettings` *without* `ExpirationSettings` does. The
/// member is optional in the model and the developer guide says settings can be "updated or
/// removed", but no page says how a removal is asked for; the plausible answers are these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExpirationClear {
    /// The settings are removed; 200 without `ExpirationSettings` (default).
    #[default]
    Removes,
    /// 400 `BadRequestException`: the service wants settings after all.
    Rejects,
    /// 200 with the settings unchanged: the request is accepted and does nothing.
    Ignores,
}

impl std::str::FromStr for ExpirationClear {
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

/// A user's `ExpirationSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiration {
    /// `ExpirationDays` (1–5475).
    pub days: i64,
    /// `ExpirationCriterion` (only `CREATED_TIMESTAMP` exists).
    pub criterion: String,
}

/// One stored AppInstanceUser, as tests and the control endpoint see it.
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
    /// Expiration settings (given at creation or put later): when the fake's clock passes
    /// `created_timestamp` + `days`, the user is deleted (see [`Directory::purge_expired`]).
    pub expiration: Option<Expiration>,
    /// Creation time, epoch seconds with millisecond precision.
    pub created_timestamp: f64,
    /// Last update time, epoch seconds with millisecond precision.
    pub last_updated_timestamp: f64,
}

/// A validated `CreateAppInstanceUser` request.
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

/// The in-memory directory of AppInstanceUsers.
#[derive(Debug)]
pub struct Directory {
    users: BTreeMap<(String, String), UserRecord>,
    per_instance: HashMap<String, usize>,
    user_limit: usize,
    missing: MissingUserError,
}

/// `ExpirationDays` counts days of 86,400 seconds.
const SECONDS_PER_DAY: f64 = 86_400.0;

/// Prefix of the opaque `NextToken`, so a token from another source is recognisably foreign.
const TOKEN_PREFIX: &str = "fake1.";

impl Directory {
    /// An empty directory allowing `user_limit` users per AppInstance.
    pub fn new(user_limit: usize, missing: MissingUserError) -> Self {
        Self {
            users: BTreeMap::new(),
            per_instance: HashMap::new(),
            user_limit,
            missing,
        }
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

    /// `CreateAppInstanceUser`: the new user's ARN.
    ///
    /// An existing id with the same `ClientRequestToken` is a replay and returns the original ARN
    /// without changing the user (even if the name differs); with another token it is a
    /// `ConflictException`. The token binds only while the user exists: after a delete, a create
    /// with the old token makes a new user.
    pub fn create(&mut self, new: NewUser, now: f64) -> Result<String, ApiError> {
        let key = (new.app_instance_arn.clone(), new.user_id.clone());
        if let Some(existing) = self.users.get(&key) {
            return if existing.client_request_token == new.client_request_token {
                Ok(existing.app_instance_user_arn.clone())
            } else {
                Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!(
                        "AppInstanceUser {} already exists",
                        existing.app_instance_user_arn
                    ),
                ))
            };
        }
        let count = self
            .per_instance
            .entry(new.app_instance_arn.clone())
            .or_default();
        if *count >= self.user_limit {
            return Err(ApiError::new(
                ErrorKind::ResourceLimitExceeded,
                format!(
                    "The AppInstance {} already has the maximum of {} users",
                    new.app_instance_arn, self.user_limit
                ),
            ));
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
    pub fn describe(&self, arn: &UserArn) -> Result<UserRecord, ApiError> {
        self.users
            .get(&key(arn))
            .cloned()
            .ok_or_else(|| self.missing.error(&arn.to_arn()))
    }

    /// `UpdateAppInstanceUser`: replaces name and metadata, returns the ARN.
    pub fn update(
        &mut self,
        arn: &UserArn,
        name: String,
        metadata: String,
        now: f64,
    ) -> Result<String, ApiError> {
        let missing = self.missing;
        let record = self
            .users
            .get_mut(&key(arn))
            .ok_or_else(|| missing.error(&arn.to_arn()))?;
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
        arn: &UserArn,
        expiration: Option<Expiration>,
        clear: ExpirationClear,
    ) -> Result<(String, Option<Expiration>), ApiError> {
        let missing = self.missing;
        let record = self
            .users
            .get_mut(&key(arn))
            .ok_or_else(|| missing.error(&arn.to_arn()))?;
        match (expiration, clear) {
            (Some(e), _) => record.expiration = Some(e),
            (None, ExpirationClear::Removes) => record.expiration = None,
            (None, ExpirationClear::Rejects) => {
                return Err(ApiError::bad_request("ExpirationSettings is required"));
            }
            (None, ExpirationClear::Ignores) => {}
        }
        Ok((
            record.app_instance_user_arn.clone(),
            record.expiration.clone(),
        ))
    }

    /// Chime's background deletion: removes every user whose expiration has passed at `now`
    /// (epoch seconds) and returns them. The real service deletes "within 6 hours" of
    /// expiration; the fake deletes when asked, which its clock control does.
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
        let mut removed = Vec::with_capacity(expired.len());
        for key in expired {
            if let Some(user) = self.users.remove(&key) {
                if let Some(count) = self.per_instance.get_mut(&user.app_instance_arn) {
                    *count = count.saturating_sub(1);
                }
                removed.push(user);
            }
        }
        removed
    }

    /// `DeleteAppInstanceUser`.
    pub fn delete(&mut self, arn: &UserArn) -> Result<(), ApiError> {
        if self.users.remove(&key(arn)).is_none() {
            return Err(self.missing.error(&arn.to_arn()));
        }
        if let Some(count) = self.per_instance.get_mut(&arn.app_instance_arn) {
            *count = count.saturating_sub(1);
        }
        Ok(())
    }

    /// `ListAppInstanceUsers`: up to `max` users with ids after the one `next_token` points at.
    ///
    /// The token encodes the AppInstance and the last id returned, so pages stay consistent
    /// while users are added or deleted between calls; a token from another AppInstance or not
    /// made by this fake is a `BadRequestException`.
    pub fn list(
        &self,
        app_instance_arn: &str,
        max: usize,
        next_token: Option<&str>,
    ) -> Result<Page, ApiError> {
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

fn key(arn: &UserArn) -> (String, String) {
    (arn.app_instance_arn.clone(), arn.user_id.clone())
}

fn encode_token(app_instance_arn: &str, last_id: &str) -> String {
    let mut token = String::from(TOKEN_PREFIX);
    for byte in format!("{app_instance_arn}\n{last_id}").bytes() {
        token.push_str(&format!("{byte:02x}"));
    }
    token
}

fn decode_token(token: &str, app_instance_arn: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request("next-token (NextToken) is invalid or belongs to another AppInstance")
    };
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
mod tests {
    use super::*;

    const APP: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/app";
    const OTHER: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/other";

    fn new_user(app: &str, id: &str, token: &str) -> NewUser {
        NewUser {
            app_instance_arn: app.to_owned(),
            user_id: id.to_owned(),
            name: format!("name of {id}"),
            metadata: None,
            client_request_token: token.to_owned(),
            tags: Vec::new(),
            expiration: None,
        }
    }

    fn arn(app: &str, id: &str) -> UserArn {
        UserArn {
            app_instance_arn: app.to_owned(),
            user_id: id.to_owned(),
        }
    }

    #[test]
    fn create_replay_conflict_and_recreate_after_delete() {
        let mut dir = Directory::new(10, MissingUserError::NotFound);
        let created = dir.create(new_user(APP, "u1", "tok-1"), 1.0).unwrap();
        assert_eq!(created, format!("{APP}/user/u1"));

        let mut renamed = new_user(APP, "u1", "tok-1");
        renamed.name = "changed".into();
        assert_eq!(
            dir.create(renamed, 2.0).unwrap(),
            created,
            "same token replays"
        );
        assert_eq!(
            dir.describe(&arn(APP, "u1")).unwrap().name,
            "name of u1",
            "a replay changes nothing"
        );

        let conflict = dir.create(new_user(APP, "u1", "tok-2"), 3.0).unwrap_err();
        assert_eq!(conflict.kind, ErrorKind::Conflict);

        dir.delete(&arn(APP, "u1")).unwrap();
        assert_eq!(
            dir.create(new_user(APP, "u1", "tok-2"), 4.0).unwrap(),
            created
        );
        assert_eq!(
            dir.describe(&arn(APP, "u1")).unwrap().created_timestamp,
            4.0
        );
    }

    #[test]
    fn missing_user_answers_with_the_configured_error() {
        assert_eq!(MissingUserError::default(), MissingUserError::Forbidden);
        assert_eq!(
            MissingUserError::Forbidden.error("x").message,
            MISSING_USER_MESSAGE
        );
        assert_eq!("404".parse(), Ok(MissingUserError::NotFound));
        assert_eq!("Forbidden".parse(), Ok(MissingUserError::Forbidden));
        assert!("400".parse::<MissingUserError>().is_err());
        for (missing, kind) in [
            (MissingUserError::NotFound, ErrorKind::NotFound),
            (MissingUserError::Forbidden, ErrorKind::Forbidden),
        ] {
            let mut dir = Directory::new(10, missing);
            assert_eq!(dir.describe(&arn(APP, "nope")).unwrap_err().kind, kind);
            assert_eq!(
                dir.update(&arn(APP, "nope"), "n".into(), "m".into(), 1.0)
                    .unwrap_err()
                    .kind,
                kind
            );
            assert_eq!(dir.delete(&arn(APP, "nope")).unwrap_err().kind, kind);
        }
    }

    #[test]
    fn update_replaces_name_and_metadata() {
        let mut dir = Directory::new(10, MissingUserError::NotFound);
        dir.create(new_user(APP, "u1", "tok-1"), 10.0).unwrap();
        dir.update(&arn(APP, "u1"), "New".into(), "{\"a\":1}".into(), 20.0)
            .unwrap();
        let user = dir.describe(&arn(APP, "u1")).unwrap();
        assert_eq!(
            (user.name.as_str(), user.metadata.as_deref()),
            ("New", Some("{\"a\":1}"))
        );
        assert_eq!(
            (user.created_timestamp, user.last_updated_timestamp),
            (10.0, 20.0)
        );
    }

    #[test]
    fn limit_is_per_app_instance_and_freed_by_delete() {
        let mut dir = Directory::new(2, MissingUserError::NotFound);
        dir.create(new_user(APP, "a", "tok"), 1.0).unwrap();
        dir.create(new_user(APP, "b", "tok"), 1.0).unwrap();
        assert_eq!(
            dir.create(new_user(APP, "c", "tok"), 1.0).unwrap_err().kind,
            ErrorKind::ResourceLimitExceeded
        );
        assert!(
            dir.create(new_user(APP, "a", "tok"), 1.0).is_ok(),
            "a replay is not a new user"
        );
        assert!(dir.create(new_user(OTHER, "c", "tok"), 1.0).is_ok());
        dir.delete(&arn(APP, "a")).unwrap();
        assert!(dir.create(new_user(APP, "c", "tok"), 1.0).is_ok());
    }

    #[test]
    fn list_pages_in_id_order_within_one_app_instance() {
        let mut dir = Directory::new(100, MissingUserError::NotFound);
        for id in ["c", "a", "e", "b", "d"] {
            dir.create(new_user(APP, id, "tok"), 1.0).unwrap();
        }
        dir.create(new_user(OTHER, "zzz", "tok"), 1.0).unwrap();

        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = dir.list(APP, 2, token.as_deref()).unwrap();
            pages += 1;
            seen.extend(page.users.iter().map(|u| u.app_instance_user_id.clone()));
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        assert_eq!(pages, 3);

        let exact = dir.list(APP, 5, None).unwrap();
        assert_eq!(
            (exact.users.len(), exact.next_token),
            (5, None),
            "no empty trailing page"
        );
        assert!(
            dir.list(
                "arn:aws:chime:us-east-1:123456789012:app-instance/none",
                5,
                None
            )
            .unwrap()
            .users
            .is_empty()
        );
    }

    #[test]
    fn list_tokens_are_checked() {
        let mut dir = Directory::new(100, MissingUserError::NotFound);
        for id in ["a", "b"] {
            dir.create(new_user(APP, id, "tok"), 1.0).unwrap();
        }
        let token = dir.list(APP, 1, None).unwrap().next_token.unwrap();
        assert_eq!(
            dir.list(OTHER, 1, Some(&token)).unwrap_err().kind,
            ErrorKind::BadRequest
        );
        for bad in ["", "garbage", "fake1.zz", "fake1.6"] {
            assert_eq!(
                dir.list(APP, 1, Some(bad)).unwrap_err().kind,
                ErrorKind::BadRequest,
                "{bad}"
            );
        }
        // A deleted anchor still works: the token holds the id, not a position.
        dir.delete(&arn(APP, "a")).unwrap();
        let rest = dir.list(APP, 1, Some(&token)).unwrap();
        assert_eq!(
            rest.users
                .iter()
                .map(|u| u.app_instance_user_id.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn expiration_is_put_cleared_as_configured_and_purged_when_due() {
        let week = Expiration {
            days: 7,
            criterion: "CREATED_TIMESTAMP".into(),
        };
        for (clear, after_clear) in [
            (ExpirationClear::Removes, Ok(None)),
            (ExpirationClear::Ignores, Ok(Some(week.clone()))),
            (ExpirationClear::Rejects, Err(ErrorKind::BadRequest)),
        ] {
            let mut dir = Directory::new(10, MissingUserError::Forbidden);
            dir.create(new_user(APP, "u1", "tok"), 1_000.0).unwrap();
            dir.create(new_user(APP, "u2", "tok"), 1_000.0).unwrap();
            let (user_arn, set) = dir
                .put_expiration(&arn(APP, "u1"), Some(week.clone()), clear)
                .unwrap();
            assert_eq!(user_arn, format!("{APP}/user/u1"));
            assert_eq!(set, Some(week.clone()));
            assert_eq!(
                dir.describe(&arn(APP, "u1")).unwrap().expiration,
                Some(week.clone())
            );
            let cleared = dir
                .put_expiration(&arn(APP, "u1"), None, clear)
                .map(|(_, e)| e)
                .map_err(|e| e.kind);
            assert_eq!(cleared, after_clear, "{clear:?}");
            // Due 7 days after creation: not a second before.
            dir.put_expiration(&arn(APP, "u1"), Some(week.clone()), clear)
                .unwrap();
            let due = 1_000.0 + 7.0 * 86_400.0;
            assert!(dir.purge_expired(due - 1.0).is_empty());
            let gone = dir.purge_expired(due);
            assert_eq!(gone.len(), 1);
            assert_eq!(gone[0].app_instance_user_id, "u1");
            assert_eq!(dir.all().len(), 1, "u2 has no expiration");
            assert_eq!(
                dir.put_expiration(&arn(APP, "u1"), None, clear)
                    .unwrap_err()
                    .kind,
                ErrorKind::Forbidden,
                "a missing user is answered as configured"
            );
        }
        assert_eq!("Rejects".parse(), Ok(ExpirationClear::Rejects));
        assert!("maybe".parse::<ExpirationClear>().is_err());
    }
}
