//! The `UserPool` port: reading a Cognito user pool (`ListUsers`), and which
//! of its users count as active, so the reconcile function and the CLI decide
//! alike.
//!
//! Cognito limits `ListUsers` to 30 requests per second per account and
//! Region, shared by every caller (Amazon Cognito Developer Guide, *Quotas*:
//! the `UserList` category, "operations that return a list of users", 30 RPS,
//! not adjustable). Readers pace themselves at a share of it
//! ([`crate::rate::Pacer`]) and back off when Cognito answers
//! `TooManyRequestsException` ([`read_users`]).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};
use thiserror::Error;
use tokio::time::Instant;

use crate::error::ErrorClass;
use crate::identity::UserId;
use crate::ledger::At;
use crate::profile::{DisplayName, DisplayNamePolicy, UserProfile};
use crate::rate::Pacer;

/// Cognito's `ListUsers` quota (category `UserList`), requests per second per
/// account and Region, not adjustable.
pub const LIST_USERS_QUOTA_RPS: f64 = 30.0;

/// `ListUsers`' largest page (`Limit` 0–60).
pub const PAGE_LIMIT: i32 = 60;

/// A user as `ListUsers` reports it (and as `aws cognito-idp list-users`
/// prints it): the fields deciding whether it gets a Chime user.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolUser {
    pub username: String,
    /// `UserStatus` (`CONFIRMED`, `EXTERNAL_PROVIDER`, …).
    pub status: String,
    /// `Enabled`.
    pub enabled: bool,
    /// `Attributes`, by name.
    pub attributes: Map<String, Value>,
    /// `UserLastModifiedDate`: when the user last changed in the pool, which
    /// dates what a reconcile asks for it ([`crate::ledger`]).
    pub modified: Option<At>,
}

impl PoolUser {
    /// One element of `ListUsers`' `Users`, as JSON (`Username`, `UserStatus`,
    /// `Enabled`, `Attributes: [{Name, Value}]`). A missing `Enabled` reads as
    /// enabled, as Cognito omits nothing it has.
    pub fn from_json(user: &Value) -> Self {
        let text = |key: &str| user.get(key).and_then(Value::as_str).unwrap_or_default();
        Self {
            username: text("Username").to_owned(),
            status: text("UserStatus").to_owned(),
            enabled: user.get("Enabled").and_then(Value::as_bool) != Some(false),
            modified: user.get("UserLastModifiedDate").and_then(date_value),
            attributes: user
                .get("Attributes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| {
                    Some((a.get("Name")?.as_str()?.to_owned(), a.get("Value")?.clone()))
                })
                .collect(),
        }
    }

    /// The `sub` attribute, as Cognito wrote it.
    pub fn sub(&self) -> Option<&str> {
        self.attributes.get("sub").and_then(Value::as_str)
    }
}

/// A date as an export holds it: seconds since the epoch (a number, as the
/// API's JSON has it), or ISO 8601 text (as `aws … --output json` prints it,
/// `2026-11-20T10:00:00.123000+00:00`). Anything else reads as unknown, and
/// an unknown date makes a change that is never stale (the safe side: the
/// user is kept).
fn date_value(value: &Value) -> Option<At> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| At((s * 1000.0) as u64)),
        Value::String(text) => {
            let utc = text.strip_suffix("+00:00").map(|t| format!("{t}Z"));
            At::parse_rfc3339(utc.as_deref().unwrap_or(text)).ok()
        }
        _ => None,
    }
}

/// One page of [`UserPool::list_users`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolPage {
    pub users: Vec<PoolUser>,
    /// `PaginationToken`: more users follow.
    pub next_token: Option<String>,
}

/// A failure reading the user pool, classified once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserPoolError {
    /// `TooManyRequestsException`: over the `ListUsers` quota.
    #[error("throttled by Cognito: {0}")]
    Throttled(String),
    #[error("Cognito unavailable: {0}")]
    Unavailable(String),
    #[error("the Cognito call timed out")]
    Timeout,
    #[error("could not reach Cognito: {0}")]
    Transport(String),
    /// IAM or authentication refused the call: a deployment fault.
    #[error("Cognito denied access (check IAM and the user pool id): {0}")]
    AccessDenied(String),
    /// `ResourceNotFoundException`: no such user pool (a wrong id or Region).
    #[error("the user pool was not found (check the user pool id): {0}")]
    PoolNotFound(String),
    #[error("Cognito rejected the request: {0}")]
    Rejected(String),
}

impl UserPoolError {
    /// Worth another attempt now or later, or not (the same call fails the
    /// same way until someone changes the deployment).
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Throttled(_) | Self::Unavailable(_) | Self::Timeout | Self::Transport(_) => {
                ErrorClass::Retryable
            }
            Self::AccessDenied(_) | Self::PoolNotFound(_) | Self::Rejected(_) => {
                ErrorClass::Permanent
            }
        }
    }
}

/// Reads one user pool.
pub trait UserPool: Send + Sync {
    /// `ListUsers`, one page of at most [`PAGE_LIMIT`] users; `filter` in
    /// Cognito's syntax (`sub ^= "3f"`).
    fn list_users(
        &self,
        filter: Option<&str>,
        token: Option<String>,
    ) -> impl Future<Output = Result<PoolPage, UserPoolError>> + Send;
}

/// A reference or an `Arc` to a user pool is a user pool too (handlers share one).
macro_rules! forward_user_pool {
    ($wrapper:ty) => {
        impl<T: UserPool + ?Sized> UserPool for $wrapper {
            fn list_users(
                &self,
                filter: Option<&str>,
                token: Option<String>,
            ) -> impl Future<Output = Result<PoolPage, UserPoolError>> + Send {
                (**self).list_users(filter, token)
            }
        }
    };
}

forward_user_pool!(&T);
forward_user_pool!(std::sync::Arc<T>);

/// Every `UserStatus` Cognito documents.
pub const USER_STATUSES: [&str; 8] = [
    "UNCONFIRMED",
    "CONFIRMED",
    "ARCHIVED",
    "COMPROMISED",
    "UNKNOWN",
    "RESET_REQUIRED",
    "FORCE_CHANGE_PASSWORD",
    "EXTERNAL_PROVIDER",
];

/// Which users get a Chime user (`ACTIVE_USER_STATUSES`): enabled users in
/// one of these statuses. Disabled users never do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePolicy {
    statuses: BTreeSet<String>,
}

impl Default for ActivePolicy {
    fn default() -> Self {
        Self {
            statuses: Self::DEFAULT.split(',').map(str::to_owned).collect(),
        }
    }
}

/// An `ACTIVE_USER_STATUSES` value naming a status Cognito does not have, or none.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ActivePolicyError {
    #[error("`{0}` is not a Cognito user status (expected some of {statuses})", statuses = USER_STATUSES.join(", "))]
    UnknownStatus(String),
    #[error("it names no status (default: {})", ActivePolicy::DEFAULT)]
    Empty,
}

impl ActivePolicy {
    /// Confirmed, federated, admin-created (before their first sign-in), and
    /// users asked to reset their password; not `UNCONFIRMED` (they get
    /// their Chime user when they confirm).
    pub const DEFAULT: &'static str =
        "CONFIRMED,EXTERNAL_PROVIDER,FORCE_CHANGE_PASSWORD,RESET_REQUIRED";

    /// Comma- or space-separated statuses, any case.
    pub fn parse(spec: &str) -> Result<Self, ActivePolicyError> {
        let mut statuses = BTreeSet::new();
        for entry in spec.split([',', ' ', '\n', '\t']).filter(|e| !e.is_empty()) {
            let status = entry.to_ascii_uppercase();
            if !USER_STATUSES.contains(&status.as_str()) {
                return Err(ActivePolicyError::UnknownStatus(entry.to_owned()));
            }
            statuses.insert(status);
        }
        if statuses.is_empty() {
            return Err(ActivePolicyError::Empty);
        }
        Ok(Self { statuses })
    }

    /// What becomes of `user`: a Chime profile (its display name by `names`,
    /// else its sub), left out for a reason, or unusable (an active user
    /// without a valid sub, which no reconcile may then act on blindly).
    pub fn classify(&self, user: &PoolUser, names: &DisplayNamePolicy) -> Verdict {
        if !user.enabled {
            return Verdict::LeftOut(LeftOut::Disabled);
        }
        if !self.statuses.contains(&user.status) {
            return Verdict::LeftOut(LeftOut::Status(user.status.clone()));
        }
        let Some(raw) = user.sub() else {
            return Verdict::Unusable("missing attribute `sub`".to_owned());
        };
        match UserId::parse(raw) {
            Ok(id) => {
                let name = names
                    .derive(&user.attributes)
                    .or_else(|| DisplayName::parse(id.as_str()).ok());
                match name {
                    Some(name) => Verdict::Active(UserProfile {
                        id,
                        name,
                        metadata: None,
                    }),
                    None => Verdict::Unusable("no display name".to_owned()),
                }
            }
            Err(e) => Verdict::Unusable(e.to_string()),
        }
    }
}

/// What [`ActivePolicy::classify`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Active(UserProfile),
    LeftOut(LeftOut),
    Unusable(String),
}

/// Why a pool user gets no Chime user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOut {
    Disabled,
    Status(String),
}

impl LeftOut {
    /// As the plan's counts name it: `disabled`, `status UNCONFIRMED`.
    pub fn label(&self) -> String {
        match self {
            Self::Disabled => "disabled".to_owned(),
            Self::Status(s) if s.is_empty() => "no status".to_owned(),
            Self::Status(s) => format!("status {s}"),
        }
    }
}

/// Users left out of a plan, counted by reason.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeftOutCounts(pub BTreeMap<String, usize>);

impl LeftOutCounts {
    pub fn add(&mut self, reason: impl Into<String>, n: usize) {
        if n > 0 {
            *self.0.entry(reason.into()).or_default() += n;
        }
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    pub fn merge(&mut self, other: &LeftOutCounts) {
        for (reason, n) in &other.0 {
            self.add(reason.clone(), *n);
        }
    }
}

/// The users of a pool (or an export), sorted out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sorted {
    /// Active users by sub (a sub listed twice counts once).
    pub active: BTreeMap<UserId, UserProfile>,
    pub left_out: LeftOutCounts,
    /// Active users that could not be used, with why (no personal data).
    pub unusable: Vec<String>,
    /// Every user read, whatever became of it.
    pub read: usize,
    /// When each active user last changed at the source, where it says.
    pub modified: BTreeMap<UserId, At>,
}

impl Sorted {
    /// When `id` last changed at the source, if it says.
    pub fn modified_of(&self, id: &UserId) -> Option<At> {
        self.modified.get(id).copied()
    }

    /// Sort `users` into `self`.
    pub fn add(
        &mut self,
        users: impl IntoIterator<Item = PoolUser>,
        active: &ActivePolicy,
        names: &DisplayNamePolicy,
    ) {
        for user in users {
            self.add_one(&user, active, names, String::new);
        }
    }

    /// Sort one user; an unusable one is noted as `place` (if not empty)
    /// and why.
    pub fn add_one(
        &mut self,
        user: &PoolUser,
        active: &ActivePolicy,
        names: &DisplayNamePolicy,
        place: impl FnOnce() -> String,
    ) {
        self.add_verdict(active.classify(user, names), user.modified, place);
    }

    /// Count one user read from any source as `verdict` says, with when it last changed
    /// there; an unusable one is noted as `place` (if not empty) and why.
    pub fn add_verdict(
        &mut self,
        verdict: Verdict,
        modified: Option<At>,
        place: impl FnOnce() -> String,
    ) {
        self.read += 1;
        match verdict {
            Verdict::Active(profile) => {
                if let Some(at) = modified {
                    self.modified.insert(profile.id.clone(), at);
                }
                self.active.insert(profile.id.clone(), profile);
            }
            Verdict::LeftOut(why) => self.left_out.add(why.label(), 1),
            Verdict::Unusable(why) => {
                let place = place();
                self.unusable.push(if place.is_empty() {
                    why
                } else {
                    format!("{place}: {why}")
                });
            }
        }
    }
}

/// What reading a pool took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadStats {
    pub calls: u64,
    pub throttled: u64,
}

/// How often a call that failed with a transient error other than throttling
/// is tried again before the read gives up.
const TRANSIENT_RETRIES: u32 = 5;
/// Backoff after a throttle or a transient failure: 1 s, doubling, at most 20 s.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(20);
/// Without a deadline, a read gives up after this many throttles in a row.
const THROTTLES_WITHOUT_DEADLINE: u32 = 12;

fn backoff(attempt: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1 << attempt.min(8))
        .min(BACKOFF_CAP)
}

/// Every user matching `filter`, page by page, each call paced by `pacer`.
///
/// `TooManyRequestsException` (after the SDK's own retries) slows the pacer
/// down and waits 1 s, 2 s, 4 s … (at most 20 s) before the same page is
/// asked again; other transient failures are retried five times. `Ok(None)`
/// when `deadline` comes first: the caller has time left only to say so.
pub async fn read_users<P: UserPool + ?Sized>(
    pool: &P,
    filter: Option<&str>,
    pacer: &Pacer,
    deadline: Option<Instant>,
    stats: &mut ReadStats,
    mut on_page: impl FnMut(Vec<PoolUser>),
) -> Result<Option<()>, UserPoolError> {
    let mut token = None;
    let (mut throttles, mut failures) = (0u32, 0u32);
    loop {
        if !pacer.wait_until(deadline).await {
            return Ok(None);
        }
        stats.calls += 1;
        match pool.list_users(filter, token.clone()).await {
            Ok(page) => {
                pacer.succeeded();
                (throttles, failures) = (0, 0);
                tracing::trace!(
                    source = "reconcile",
                    outcome = "pool-page",
                    call = stats.calls,
                    users = page.users.len(),
                    more = page.next_token.is_some()
                );
                on_page(page.users);
                match page.next_token {
                    Some(next) => token = Some(next),
                    None => return Ok(Some(())),
                }
            }
            Err(e @ UserPoolError::Throttled(_)) => {
                stats.throttled += 1;
                pacer.throttled();
                if deadline.is_none() && throttles >= THROTTLES_WITHOUT_DEADLINE {
                    return Err(e);
                }
                let wait = backoff(throttles);
                throttles += 1;
                tracing::warn!(
                    source = "reconcile",
                    outcome = "cognito-throttled",
                    wait_ms = wait.as_millis() as u64,
                    rate = pacer.rate()
                );
                if !sleep_before(wait, deadline).await {
                    return Ok(None);
                }
            }
            Err(e) if e.class() == ErrorClass::Retryable && failures < TRANSIENT_RETRIES => {
                tracing::warn!(source = "reconcile", outcome = "cognito-retry", error = %e);
                let wait = backoff(failures);
                failures += 1;
                if !sleep_before(wait, deadline).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sleep `wait`, unless that would pass `deadline` (then `false`, at once).
async fn sleep_before(wait: Duration, deadline: Option<Instant>) -> bool {
    let until = Instant::now() + wait;
    if deadline.is_some_and(|d| until >= d) {
        return false;
    }
    tokio::time::sleep_until(until).await;
    true
}

/// The filter of the users whose sub starts with `prefix`.
pub fn sub_prefix_filter(prefix: &str) -> String {
    format!("sub ^= \"{prefix}\"")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::memory::InMemoryUserPool;

    fn user(sub: &str, status: &str, enabled: bool) -> PoolUser {
        PoolUser::from_json(
            &json!({"Username": sub, "UserStatus": status, "Enabled": enabled,
            "Attributes": [{"Name": "sub", "Value": sub}, {"Name": "name", "Value": format!("N {sub}")}]}),
        )
    }

    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

    #[test]
    fn the_default_policy_keeps_enabled_users_of_four_statuses() {
        let policy = ActivePolicy::default();
        let names = DisplayNamePolicy::default();
        for status in [
            "CONFIRMED",
            "EXTERNAL_PROVIDER",
            "FORCE_CHANGE_PASSWORD",
            "RESET_REQUIRED",
        ] {
            assert!(
                matches!(policy.classify(&user(SUB, status, true), &names), Verdict::Active(p) if p.name.as_str() == format!("N {SUB}")),
                "{status}"
            );
        }
        for status in ["UNCONFIRMED", "ARCHIVED", "COMPROMISED", "UNKNOWN"] {
            assert_eq!(
                policy.classify(&user(SUB, status, true), &names),
                Verdict::LeftOut(LeftOut::Status(status.to_owned()))
            );
        }
        assert_eq!(
            policy.classify(&user(SUB, "CONFIRMED", false), &names),
            Verdict::LeftOut(LeftOut::Disabled)
        );
        assert!(matches!(
            policy.classify(&user("not-a-uuid", "CONFIRMED", true), &names),
            Verdict::Unusable(_)
        ));
        let no_sub = PoolUser::from_json(
            &json!({"Username": "x", "UserStatus": "CONFIRMED", "Enabled": true}),
        );
        assert_eq!(
            policy.classify(&no_sub, &names),
            Verdict::Unusable("missing attribute `sub`".to_owned())
        );
        // An inactive user without a sub is simply left out.
        let off = PoolUser {
            enabled: false,
            ..no_sub
        };
        assert_eq!(
            policy.classify(&off, &names),
            Verdict::LeftOut(LeftOut::Disabled)
        );
    }

    #[test]
    fn the_policy_is_configurable_and_checked() {
        let only = ActivePolicy::parse("confirmed, UNCONFIRMED").unwrap();
        let names = DisplayNamePolicy::default();
        assert!(matches!(
            only.classify(&user(SUB, "UNCONFIRMED", true), &names),
            Verdict::Active(_)
        ));
        assert!(matches!(
            only.classify(&user(SUB, "EXTERNAL_PROVIDER", true), &names),
            Verdict::LeftOut(_)
        ));
        assert_eq!(
            ActivePolicy::parse("CONFIRMED,ENABLED"),
            Err(ActivePolicyError::UnknownStatus("ENABLED".to_owned()))
        );
        assert_eq!(ActivePolicy::parse(" , "), Err(ActivePolicyError::Empty));
        assert_eq!(
            ActivePolicy::parse(ActivePolicy::DEFAULT),
            Ok(ActivePolicy::default())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reading_backs_off_on_throttling_and_keeps_under_the_rate() {
        let subs: Vec<String> = (0..300)
            .map(|n| format!("{n:08x}-0000-4000-8000-000000000000"))
            .collect();
        let pool = InMemoryUserPool::new(subs.iter().map(|s| user(s, "CONFIRMED", true)).collect());
        pool.throttle_next(3);
        let pacer = Pacer::new(15.0);
        let mut stats = ReadStats::default();
        let mut seen = 0;
        let started = Instant::now();
        let done = read_users(&pool, None, &pacer, None, &mut stats, |page| {
            seen += page.len()
        })
        .await
        .unwrap();
        assert_eq!(done, Some(()));
        assert_eq!(seen, 300);
        assert_eq!(
            stats,
            ReadStats {
                calls: 8,
                throttled: 3
            }
        );
        // 1 + 2 + 4 s of backoff, and never two calls closer than 1/15 s.
        assert!(
            started.elapsed() >= Duration::from_secs(7),
            "{:?}",
            started.elapsed()
        );
        let times = pool.call_times();
        assert!(
            times
                .windows(2)
                .all(|w| w[1] - w[0] >= Duration::from_millis(66)),
            "{times:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_stops_at_the_deadline_and_says_so() {
        let pool = InMemoryUserPool::new(
            (0..600)
                .map(|n| {
                    user(
                        &format!("{n:08x}-0000-4000-8000-000000000000"),
                        "CONFIRMED",
                        true,
                    )
                })
                .collect(),
        );
        let pacer = Pacer::new(1.0);
        let mut stats = ReadStats::default();
        let deadline = Instant::now() + Duration::from_millis(4500);
        let done = read_users(&pool, None, &pacer, Some(deadline), &mut stats, |_| {})
            .await
            .unwrap();
        assert_eq!(done, None);
        assert!(Instant::now() <= deadline);
        assert_eq!(stats.calls, 5, "one call a second");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_end_the_read_and_transient_ones_are_retried() {
        let pool = InMemoryUserPool::new(vec![user(SUB, "CONFIRMED", true)]);
        pool.fail_next([
            UserPoolError::Unavailable("500".into()),
            UserPoolError::Timeout,
        ]);
        let mut stats = ReadStats::default();
        let pacer = Pacer::new(30.0);
        assert_eq!(
            read_users(&pool, None, &pacer, None, &mut stats, |_| {}).await,
            Ok(Some(()))
        );
        pool.fail_next([UserPoolError::AccessDenied("no".into())]);
        assert_eq!(
            read_users(&pool, None, &pacer, None, &mut stats, |_| {}).await,
            Err(UserPoolError::AccessDenied("no".into()))
        );
    }

    #[test]
    fn sorting_counts_what_is_left_out_by_reason() {
        let mut sorted = Sorted::default();
        sorted.add(
            vec![
                user(SUB, "CONFIRMED", true),
                user(SUB, "CONFIRMED", true),
                user("00000000-0000-4000-8000-000000000001", "UNCONFIRMED", true),
                user("00000000-0000-4000-8000-000000000002", "CONFIRMED", false),
                user("bad", "CONFIRMED", true),
            ],
            &ActivePolicy::default(),
            &DisplayNamePolicy::default(),
        );
        assert_eq!(sorted.active.len(), 1, "a sub listed twice counts once");
        assert_eq!(sorted.read, 5);
        assert_eq!(
            sorted.left_out.0,
            BTreeMap::from([
                ("disabled".to_owned(), 1),
                ("status UNCONFIRMED".to_owned(), 1)
            ])
        );
        assert_eq!(sorted.unusable.len(), 1);
    }
}
