//! In-memory adapters for both ports: the embedded directory the CLI replays
//! against, and the test double every handler test uses. They can inject
//! failures and latency so the unhappy paths are testable without a network.
//!
//! The directory answers from [`chime::ChimeModel`], the one model of Chime
//! SDK Identity that the wire-level fake (`chime-identity-fake`) answers from
//! too, so the replay, the handlers' tests and the wire tests meet the same
//! Chime: a repeated create with the same `ClientRequestToken` succeeds again
//! (another token gets `AlreadyExists`), a missing user is answered as
//! configured ([`MissingAnswer`]; `NotFound` here unless set, or
//! `PossiblyMissing` as the Chime adapter reports Chime's 403), expiration
//! settings show in describe and not in list, and list pages carry the
//! model's tokens. This module only maps the model's answers to
//! [`DirectoryError`] and adds what is not Chime's: injected failures,
//! latency, call counting, and a clock that tests advance (users whose
//! expiration has passed are deleted then, as Chime's background process
//! deletes them).

pub mod chime;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::directory::{Directory, DirectoryPage, DirectoryUser, Expiration};
use crate::error::{DirectoryError, QueueError};
use crate::identity::{AppInstanceArn, UserId};
use crate::metrics::{CallStats, ChimeCalls};
use crate::profile::UserProfile;
use crate::queue::{OutgoingMessage, Queue};
use crate::user_pool::{PAGE_LIMIT, PoolPage, PoolUser, UserPool, UserPoolError};

use chime::{ChimeError, ChimeModel, NewUser, UserRecord};
pub use chime::{ClearAnswer, MissingAnswer};

/// Page size of [`InMemoryDirectory::list`], Chime's maximum.
const PAGE_SIZE: usize = 50;

/// How a model refusal reads through the Chime adapter: the same
/// `DirectoryError` the adapter makes of the fake's HTTP answer for it.
fn directory_error(error: ChimeError) -> DirectoryError {
    match error {
        ChimeError::Conflict { .. } => DirectoryError::AlreadyExists,
        ChimeError::Missing {
            answer: MissingAnswer::NotFound,
            ..
        } => DirectoryError::NotFound,
        ChimeError::Missing {
            answer: MissingAnswer::Forbidden,
            ..
        } => DirectoryError::PossiblyMissing(format!(
            "ForbiddenException (HTTP 403): {} (in-memory)",
            chime::MISSING_USER_MESSAGE
        )),
        ChimeError::LimitExceeded { .. } => DirectoryError::LimitExceeded(format!(
            "ResourceLimitExceededException (HTTP 400): {error} (in-memory)"
        )),
        ChimeError::ExpirationRequired | ChimeError::InvalidNextToken => DirectoryError::Rejected(
            format!("BadRequestException (HTTP 400): {error} (in-memory)"),
        ),
    }
}

/// Epoch seconds, as the model keeps time.
fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// A model record as the domain reads a describe.
fn described(record: UserRecord) -> Result<DirectoryUser, DirectoryError> {
    let id = UserId::parse(&record.app_instance_user_id)
        .map_err(|e| DirectoryError::Rejected(format!("model holds an invalid id: {e}")))?;
    let expiration = record
        .expiration
        .map(|e| {
            u16::try_from(e.days)
                .map(|days| Expiration { days })
                .map_err(|_| DirectoryError::Rejected(format!("expiration of {} days", e.days)))
        })
        .transpose()?;
    Ok(DirectoryUser {
        id,
        arn: record.app_instance_user_arn,
        name: record.name,
        metadata: record.metadata.unwrap_or_default(),
        created_at: Some(UNIX_EPOCH + Duration::from_secs_f64(record.created_timestamp.max(0.0))),
        expiration,
    })
}

struct DirectoryState {
    /// Chime's users and rules.
    model: ChimeModel,
    /// How far this directory's clock is ahead of the system's.
    clock_offset: Duration,
    clear_answer: ClearAnswer,
    injected: VecDeque<DirectoryError>,
    /// Users whose every call fails (a simulated per-user outage).
    failing_users: BTreeMap<UserId, DirectoryError>,
    /// Users whose next calls fail, one error each.
    injected_for: BTreeMap<UserId, VecDeque<DirectoryError>>,
    calls: usize,
    injected_served: usize,
}

impl Default for DirectoryState {
    /// No user limit (the domain has none to test here), and a missing user
    /// answered `NotFound` until a test asks for the 403.
    fn default() -> Self {
        Self {
            model: ChimeModel::new(usize::MAX, MissingAnswer::NotFound),
            clock_offset: Duration::ZERO,
            clear_answer: ClearAnswer::default(),
            injected: VecDeque::new(),
            failing_users: BTreeMap::new(),
            injected_for: BTreeMap::new(),
            calls: 0,
            injected_served: 0,
        }
    }
}

impl DirectoryState {
    fn now(&self) -> f64 {
        epoch_seconds(SystemTime::now() + self.clock_offset)
    }
}

/// A directory held in memory, keyed by user id.
pub struct InMemoryDirectory {
    app_instance: AppInstanceArn,
    latency: Mutex<Duration>,
    state: Mutex<DirectoryState>,
    /// Each call timed as the Chime adapter times its calls (the injected
    /// latency, in tokio's clock), for the handlers' metrics.
    timing: ChimeCalls,
}

impl InMemoryDirectory {
    pub fn new(app_instance: AppInstanceArn) -> Self {
        Self {
            app_instance,
            latency: Mutex::new(Duration::ZERO),
            state: Mutex::new(DirectoryState::default()),
            timing: ChimeCalls::new(),
        }
    }

    /// Answer calls about missing users this way from now on.
    pub fn set_missing_answer(&self, missing: MissingAnswer) {
        self.lock().model.set_missing_answer(missing);
    }

    /// The next calls fail with these errors, one each, before calls work again.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = DirectoryError>) {
        self.lock().injected.extend(errors);
    }

    /// The next calls about this user fail with these errors, one each, then
    /// work again: a user whose Chime calls are throttled for a while.
    pub fn fail_next_for(&self, id: UserId, errors: impl IntoIterator<Item = DirectoryError>) {
        self.lock()
            .injected_for
            .entry(id)
            .or_default()
            .extend(errors);
    }

    /// How many injected failures calls have met so far (all kinds).
    pub fn injected_failures(&self) -> usize {
        self.lock().injected_served
    }

    /// Every call about this user fails with this error, for good: the
    /// replay uses it to show a Chime outage without a network.
    pub fn fail_always_for(&self, id: UserId, error: DirectoryError) {
        self.lock().failing_users.insert(id, error);
    }

    /// Every call waits this long first (to exceed budgets in tests).
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// Answer a put expiration without settings this way from now on.
    pub fn set_clear_answer(&self, answer: ClearAnswer) {
        self.lock().clear_answer = answer;
    }

    /// This directory's time: the system's, plus every [`Self::advance_clock`].
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + self.lock().clock_offset
    }

    /// Move the clock forward, then delete every user whose expiration has
    /// passed (Chime's background deletion). Returns the ids deleted.
    pub fn advance_clock(&self, by: Duration) -> Vec<UserId> {
        let mut state = self.lock();
        state.clock_offset += by;
        let now = state.now();
        state
            .model
            .purge_expired(now)
            .into_iter()
            .filter_map(|u| UserId::parse(&u.app_instance_user_id).ok())
            .collect()
    }

    /// All users, ordered by id, as a describe shows them.
    pub fn users(&self) -> Vec<DirectoryUser> {
        self.lock()
            .model
            .all()
            .into_iter()
            .filter_map(|u| described(u).ok())
            .collect()
    }

    /// How many calls were made (including failed ones).
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DirectoryState> {
        // A panicking test thread must not poison the directory for the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Common prologue of every call: latency, counting, injected failure.
    async fn enter_for(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.enter().await?;
        let mut state = self.lock();
        let failure = match state.injected_for.get_mut(id).and_then(VecDeque::pop_front) {
            Some(e) => Some(e),
            None => state.failing_users.get(id).cloned(),
        };
        match failure {
            Some(e) => {
                state.injected_served += 1;
                Err(e)
            }
            None => Ok(()),
        }
    }

    async fn enter(&self) -> Result<(), DirectoryError> {
        let _timed = self.timing.time();
        let latency = *self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut state = self.lock();
        state.calls += 1;
        match state.injected.pop_front() {
            Some(e) => {
                state.injected_served += 1;
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl Directory for InMemoryDirectory {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        &self.app_instance
    }

    fn take_call_stats(&self) -> CallStats {
        self.timing.take()
    }

    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        self.enter_for(&user.id).await?;
        let mut state = self.lock();
        let now = state.now();
        let new = NewUser {
            app_instance_arn: self.app_instance.as_str().to_owned(),
            user_id: user.id.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            metadata: user.metadata.as_ref().map(|m| m.as_str().to_owned()),
            client_request_token: user.client_request_token(),
            tags: Vec::new(),
            expiration: None,
        };
        state
            .model
            .create(new, now)
            .map(|_| ())
            .map_err(directory_error)
    }

    async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.enter_for(id).await?;
        let state = self.lock();
        match state
            .model
            .describe(self.app_instance.as_str(), id.as_str())
        {
            Ok(record) => described(record).map(Some),
            Err(e) => match directory_error(e) {
                DirectoryError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn update(&self, id: &UserId, name: &str, metadata: &str) -> Result<(), DirectoryError> {
        self.enter_for(id).await?;
        let mut state = self.lock();
        let now = state.now();
        state
            .model
            .update(
                self.app_instance.as_str(),
                id.as_str(),
                name.to_owned(),
                metadata.to_owned(),
                now,
            )
            .map(|_| ())
            .map_err(directory_error)
    }

    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.enter_for(id).await?;
        self.lock()
            .model
            .delete(self.app_instance.as_str(), id.as_str())
            .map_err(directory_error)
    }

    async fn list(&self, next_token: Option<String>) -> Result<DirectoryPage, DirectoryError> {
        self.enter().await?;
        let page = self
            .lock()
            .model
            .list(self.app_instance.as_str(), PAGE_SIZE, next_token.as_deref())
            .map_err(directory_error)?;
        // As Chime's list: name and metadata only.
        let users = page
            .users
            .into_iter()
            .map(|u| {
                let id = UserId::parse(&u.app_instance_user_id).map_err(|e| {
                    DirectoryError::Rejected(format!("model holds an invalid id: {e}"))
                })?;
                Ok(DirectoryUser::listed(
                    id,
                    u.app_instance_user_arn,
                    u.name,
                    u.metadata.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, DirectoryError>>()?;
        Ok(DirectoryPage {
            users,
            next_token: page.next_token,
            foreign: 0,
        })
    }

    async fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<Expiration>,
    ) -> Result<Option<Expiration>, DirectoryError> {
        self.enter_for(id).await?;
        let mut state = self.lock();
        let clear = state.clear_answer;
        let settings = expiration.map(|e| chime::Expiration {
            days: i64::from(e.days),
            criterion: chime::CREATED_TIMESTAMP.to_owned(),
        });
        let (_, kept) = state
            .model
            .put_expiration(self.app_instance.as_str(), id.as_str(), settings, clear)
            .map_err(directory_error)?;
        Ok(kept.and_then(|e| u16::try_from(e.days).ok().map(|days| Expiration { days })))
    }
}

/// A queue held in memory: records what was sent, can be told to fail.
#[derive(Default)]
pub struct InMemoryQueue {
    sent: Mutex<Vec<OutgoingMessage>>,
    failing: Mutex<Option<QueueError>>,
}

impl InMemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every send fails with this error until cleared with `None`.
    pub fn set_failing(&self, error: Option<QueueError>) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn sent(&self) -> Vec<OutgoingMessage> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Queue for InMemoryQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        if let Some(e) = self
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(e);
        }
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
        Ok(())
    }
}

/// A user pool held in memory: pages of 60 like `ListUsers`, Cognito's
/// `sub` filters (`=`, `^=`), injected failures, and the time of every call.
#[derive(Default)]
pub struct InMemoryUserPool {
    users: Mutex<Vec<PoolUser>>,
    injected: Mutex<VecDeque<UserPoolError>>,
    calls: Mutex<Vec<tokio::time::Instant>>,
}

impl InMemoryUserPool {
    pub fn new(users: Vec<PoolUser>) -> Self {
        Self {
            users: Mutex::new(users),
            ..Self::default()
        }
    }

    /// Replace the pool's users.
    pub fn set_users(&self, users: Vec<PoolUser>) {
        *self.users.lock().unwrap_or_else(|p| p.into_inner()) = users;
    }

    /// The next `n` calls answer `TooManyRequestsException`.
    pub fn throttle_next(&self, n: usize) {
        self.fail_next(
            (0..n).map(|_| UserPoolError::Throttled("Too many requests (in-memory)".into())),
        );
    }

    /// The next calls fail with these errors, one each.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = UserPoolError>) {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(errors);
    }

    /// When each call was made (tokio time), failed ones included.
    pub fn call_times(&self) -> Vec<tokio::time::Instant> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Cognito's filter syntax for the sub: `sub = "…"` or `sub ^= "…"`.
fn sub_matcher(filter: &str) -> Result<(bool, String), UserPoolError> {
    let invalid = || UserPoolError::Rejected(format!("unsupported filter (in-memory): {filter}"));
    let rest = filter
        .trim()
        .strip_prefix("sub")
        .ok_or_else(invalid)?
        .trim_start();
    let (prefix, value) = if let Some(v) = rest.strip_prefix("^=") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (false, v)
    } else {
        return Err(invalid());
    };
    let value = value
        .trim()
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or_else(invalid)?;
    Ok((prefix, value.to_owned()))
}

impl UserPool for InMemoryUserPool {
    async fn list_users(
        &self,
        filter: Option<&str>,
        token: Option<String>,
    ) -> Result<PoolPage, UserPoolError> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tokio::time::Instant::now());
        if let Some(e) = self
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
        {
            return Err(e);
        }
        let matcher = filter.map(sub_matcher).transpose()?;
        let start: usize = match token {
            None => 0,
            Some(t) => t
                .parse()
                .map_err(|_| UserPoolError::Rejected("invalid PaginationToken".into()))?,
        };
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<&PoolUser> = users
            .iter()
            .filter(|u| match &matcher {
                None => true,
                Some((true, prefix)) => u.sub().is_some_and(|s| s.starts_with(prefix.as_str())),
                Some((false, exact)) => u.sub() == Some(exact.as_str()),
            })
            .collect();
        let limit = PAGE_LIMIT as usize;
        let page: Vec<PoolUser> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|u| (*u).clone())
            .collect();
        let next_token = (start + limit < matching.len()).then(|| (start + limit).to_string());
        Ok(PoolPage {
            users: page,
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Applied;
    use crate::profile::{DisplayName, Metadata};
    use crate::provisioning::Provisioning;

    fn directory() -> InMemoryDirectory {
        InMemoryDirectory::new(
            AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/test")
                .unwrap(),
        )
    }

    fn profile(n: u32, name: &str, metadata: Option<&str>) -> UserProfile {
        UserProfile {
            id: UserId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap(),
            name: DisplayName::parse(name).unwrap(),
            metadata: metadata.map(|m| Metadata::parse(m).unwrap()),
        }
    }

    #[tokio::test]
    async fn create_or_resolve_is_idempotent_and_renames() {
        let d = directory();
        let ada = profile(1, "Ada", None);
        assert_eq!(d.create_or_resolve(&ada).await, Ok(Applied::Created));
        // The same request again: answered as the first, like Chime does.
        assert_eq!(d.create_or_resolve(&ada).await, Ok(Applied::Created));
        assert_eq!(d.upsert(&ada).await, Ok(Applied::AlreadyProvisioned));
        let renamed = profile(1, "Ada Lovelace", None);
        assert_eq!(d.create_or_resolve(&renamed).await, Ok(Applied::Updated));
        let users = d.users();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name, "Ada Lovelace");
        assert_eq!(
            users[0].arn,
            "arn:aws:chime:us-east-1:123456789012:app-instance/test/user/00000000-0000-4000-8000-000000000001"
        );
    }

    #[tokio::test]
    async fn absent_metadata_keeps_existing_metadata() {
        let d = directory();
        d.create_or_resolve(&profile(1, "Ada", Some("{\"d\":1}")))
            .await
            .unwrap();
        assert_eq!(
            d.upsert(&profile(1, "Ada L", None)).await,
            Ok(Applied::Updated)
        );
        assert_eq!(d.users()[0].metadata, "{\"d\":1}");
        assert_eq!(
            d.upsert(&profile(1, "Ada L", Some(""))).await,
            Ok(Applied::Updated)
        );
        assert_eq!(d.users()[0].metadata, "");
        assert_eq!(
            d.upsert(&profile(1, "Ada L", Some(""))).await,
            Ok(Applied::AlreadyProvisioned)
        );
    }

    #[tokio::test]
    async fn a_missing_user_is_answered_as_configured() {
        let d = directory();
        let id = profile(2, "Bob", None).id;
        assert_eq!(d.describe(&id).await, Ok(None));
        assert_eq!(d.delete(&id).await, Err(DirectoryError::NotFound));
        d.set_missing_answer(MissingAnswer::Forbidden);
        for result in [
            d.describe(&id).await.map(|_| ()),
            d.update(&id, "Bob", "").await,
            d.delete(&id).await,
        ] {
            assert!(
                matches!(result, Err(DirectoryError::PossiblyMissing(_))),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_create_with_another_token_is_already_exists_until_deleted() {
        let d = directory();
        let bob = profile(2, "Bob", None);
        d.create(&bob).await.unwrap();
        assert_eq!(d.create(&bob).await, Ok(()), "same request, same answer");
        let renamed = profile(2, "Robert", None);
        assert_eq!(d.create(&renamed).await, Err(DirectoryError::AlreadyExists));
        d.delete(&bob.id).await.unwrap();
        assert_eq!(d.create(&renamed).await, Ok(()));
        assert_eq!(d.users()[0].name, "Robert");
    }

    #[tokio::test]
    async fn ensure_exists_never_touches_an_existing_user() {
        let d = directory();
        d.create_or_resolve(&profile(3, "Cy", None)).await.unwrap();
        assert_eq!(
            d.ensure_exists(&profile(3, "Other", None)).await,
            Ok(Applied::AlreadyProvisioned)
        );
        assert_eq!(d.users()[0].name, "Cy");
        assert_eq!(
            d.ensure_exists(&profile(4, "Di", None)).await,
            Ok(Applied::Created)
        );
    }

    #[tokio::test]
    async fn injected_failures_surface_then_clear() {
        let d = directory();
        d.fail_next([DirectoryError::Throttled("429".into())]);
        let ada = profile(1, "Ada", None);
        assert_eq!(
            d.create_or_resolve(&ada).await,
            Err(DirectoryError::Throttled("429".into()))
        );
        assert_eq!(d.create_or_resolve(&ada).await, Ok(Applied::Created));
        assert_eq!(d.calls(), 2);
    }

    #[tokio::test]
    async fn a_failing_user_fails_every_call_and_others_do_not() {
        let d = directory();
        let down = profile(9, "Down", None);
        d.fail_always_for(down.id.clone(), DirectoryError::Unavailable("503".into()));
        for _ in 0..2 {
            assert_eq!(
                d.create_or_resolve(&down).await,
                Err(DirectoryError::Unavailable("503".into()))
            );
            assert_eq!(
                d.delete_if_present(&down.id).await,
                Err(DirectoryError::Unavailable("503".into()))
            );
        }
        assert_eq!(
            d.create_or_resolve(&profile(1, "Ada", None)).await,
            Ok(Applied::Created)
        );
    }

    #[tokio::test]
    async fn per_user_failures_run_out_and_are_counted() {
        let d = directory();
        let ada = profile(1, "Ada", None);
        d.fail_next_for(ada.id.clone(), [DirectoryError::Throttled("1".into())]);
        assert_eq!(
            d.create_or_resolve(&profile(2, "Bob", None)).await,
            Ok(Applied::Created)
        );
        assert_eq!(
            d.create_or_resolve(&ada).await,
            Err(DirectoryError::Throttled("1".into()))
        );
        assert_eq!(d.create_or_resolve(&ada).await, Ok(Applied::Created));
        assert_eq!(d.injected_failures(), 1);
    }

    #[tokio::test]
    async fn list_pages_through_all_users_in_id_order() {
        let d = directory();
        for n in 0..120 {
            d.create(&profile(n, "U", None)).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = d.list(token).await.unwrap();
            assert!(page.users.len() <= PAGE_SIZE);
            seen.extend(page.users.into_iter().map(|u| u.id));
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 120);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test]
    async fn queue_records_sends_and_fails_on_demand() {
        let q = InMemoryQueue::new();
        let msg = OutgoingMessage {
            body: "{}".into(),
            group_id: "g".into(),
            deduplication_id: "d".into(),
            attributes: BTreeMap::new(),
        };
        q.send(msg.clone()).await.unwrap();
        q.set_failing(Some(QueueError::retryable("down")));
        assert!(q.send(msg.clone()).await.is_err());
        assert_eq!(q.sent(), vec![msg]);
    }
}
