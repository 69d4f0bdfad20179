//! Ownership and time: which source manages each Chime user, when it last
//! changed, and which deletions are pending or held. The rules are written
//! here once ([`Change::guard`], [`Change::effects`], [`judge`]); the
//! [`Ledger`] port stores what they decide, and every writer (idp-sync, the
//! triggers, the credential exchange, the CLI) and every planner (the
//! reconcile function and command) asks the same functions.
//!
//! The rules (docs/OWNERSHIP.md, "The rules", states them as a table):
//! - **Creation claims.** The source whose `user.created` (or sign-up, or
//!   first sign-in) makes a user owns it, unless someone owns it already.
//! - **Absence deletes only what the absent source owns.** A source that no
//!   longer lists a user (or lists it inactive) asks for an
//!   [`ChangeKind::Absent`] deletion, refused unless that source owns the
//!   user. Users with no owner (made before ownership was recorded) are never
//!   deleted by absence unless the operator names a source for them
//!   ([`UnownedPolicy`]).
//! - **An explicit `user.deleted` deletes whoever owns the user**: offboarding
//!   is the publisher's call.
//! - **An older change never overwrites a newer one.** Each change carries
//!   when it happened at its source (`occurredAt`, a pool user's
//!   `UserLastModifiedDate`, a token's `iat`); one older than the last change
//!   applied is refused as stale. An absence is an observation, not a
//!   change: it is refused when the user changed after it was observed, and
//!   it does not move the clock.
//! - **A pending deletion is cancelled when the user is wanted again**: any
//!   create or update that is not stale clears it; a sign-in clears it only
//!   for the issuer that owns the user.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::error::{ErrorClass, InputError};
use crate::identity::UserId;

/// A source of Chime users: `pool`, `feed` or `feed:<publisher>`,
/// `issuer:<key>`, `scim`, `ldap`. Names are 1–40 characters of
/// `[a-z0-9._-]`, so a source fits every store and log line as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source(String);

impl Source {
    /// The Cognito user pool (its triggers, the reconcile function, a pool
    /// export given to the CLI).
    pub fn pool() -> Self {
        Self("pool".to_owned())
    }

    /// The IdP / HR feed; `None` for a feed with one publisher.
    pub fn feed(publisher: Option<&str>) -> Result<Self, InputError> {
        match publisher {
            None => Ok(Self("feed".to_owned())),
            Some(name) => Self::parse(&format!("feed:{name}")),
        }
    }

    /// A trusted issuer of the credential exchange, by its configured key.
    pub fn issuer(key: &str) -> Result<Self, InputError> {
        Self::parse(&format!("issuer:{key}"))
    }

    pub fn scim() -> Self {
        Self("scim".to_owned())
    }

    pub fn ldap() -> Self {
        Self("ldap".to_owned())
    }

    /// A source as written in a message's `source` field or the ledger.
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let (kind, name) = match raw.split_once(':') {
            Some((kind, name)) => (kind, Some(name)),
            None => (raw, None),
        };
        let named = matches!(kind, "feed" | "issuer");
        let known = matches!(kind, "pool" | "feed" | "issuer" | "scim" | "ldap");
        if !known {
            return Err(InputError::InvalidSource(
                "expected pool, feed, feed:<publisher>, issuer:<key>, scim or ldap",
            ));
        }
        match name {
            None if kind == "issuer" => Err(InputError::InvalidSource("issuer needs a key")),
            None => Ok(Self(raw.to_owned())),
            Some(_) if !named => Err(InputError::InvalidSource(
                "only feed and issuer sources take a name",
            )),
            Some(name) if valid_name(name) => Ok(Self(raw.to_owned())),
            Some(_) => Err(InputError::InvalidSource(
                "a source name is 1-40 characters of a-z, 0-9, '.', '_' and '-'",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A source whose users are listed in full (the reconcile planners): its
    /// absence can delete what it owns.
    pub fn is_pool(&self) -> bool {
        self.0 == "pool"
    }

    /// A source whose users sign in with it (the pool, a trusted issuer):
    /// who may vouch for a user at the credential exchange. The feed, SCIM
    /// and LDAP provision users who sign in elsewhere.
    pub fn signs_in(&self) -> bool {
        self.is_pool() || self.0.starts_with("issuer:")
    }
}

fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A point in time as the ledger keeps it: milliseconds since the Unix
/// epoch. Millisecond precision is what `occurredAt` and Cognito's dates
/// carry, and integers compare the same in every store.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct At(pub u64);

impl At {
    pub fn from_system(time: SystemTime) -> Self {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        Self(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// An RFC 3339 timestamp (`occurredAt`), to the millisecond.
    pub fn parse_rfc3339(raw: &str) -> Result<Self, InputError> {
        humantime::parse_rfc3339_weak(raw)
            .map(Self::from_system)
            .map_err(|_| InputError::InvalidTimestamp("occurredAt"))
    }

    pub fn rfc3339(self) -> String {
        humantime::format_rfc3339_millis(self.to_system()).to_string()
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// A deletion the ledger knows of: asked for by `by` at `at`, because `by`
/// no longer lists the user (`absence`) or explicitly. It stays until a
/// later create or update clears it (or the ledger forgets the user some
/// weeks after; see [`MARK_RETENTION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionMark {
    pub by: Source,
    pub absence: bool,
    pub at: At,
}

/// An explicit deletion a feed breaker held back: what a release publishes
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDeletion {
    pub by: Source,
    /// The event's `occurredAt`, kept so the release is judged as the
    /// original would have been.
    pub occurred_at: Option<At>,
    pub event_id: Option<String>,
    /// When the breaker held it.
    pub held_at: At,
}

/// What the ledger holds for one user. No record at all reads as
/// `UserRecord::default()`: nobody owns the user and nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRecord {
    pub owner: Option<Source>,
    /// When the newest change applied to the user happened at its source.
    pub changed_at: Option<At>,
    pub deletion: Option<DeletionMark>,
    pub held: Option<HeldDeletion>,
}

/// How long the ledger keeps a user after its deletion was asked for: the
/// grace period, then this long again, so a redriven message (the DLQ keeps
/// them 14 days) is still judged against the deletion. Stores expire the
/// record then (DynamoDB's TTL); a user created again clears the expiry.
pub const MARK_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// What a change asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `user.created`: create or heal; claims a user nobody owns.
    Create,
    /// `user.updated`, or a source listing the user as active: update, and
    /// cancel a pending deletion.
    Update,
    /// `user.deleted` from a publisher: deletes whoever owns the user.
    Delete,
    /// The source no longer lists the user, or lists it inactive, as
    /// observed at the change's time: deletes only what the source owns.
    Absent,
    /// A sign-in through the credential exchange: cancels a pending deletion
    /// of a user the signing issuer owns, and nothing else.
    SignIn,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Absent => "absent",
            Self::SignIn => "sign-in",
        }
    }

    pub fn is_deletion(self) -> bool {
        matches!(self, Self::Delete | Self::Absent)
    }
}

/// One change to one user, as a source asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: UserId,
    pub source: Source,
    pub kind: ChangeKind,
    /// When it happened at the source; `None` when the source did not say
    /// (an event without `occurredAt`): then it is never stale, and it does
    /// not move the user's clock. An absence must say when it was observed.
    pub at: Option<At>,
}

/// Users nobody owns (made before ownership was recorded): whether a
/// source's absence may delete them (`UNOWNED_USERS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UnownedPolicy {
    /// Never deleted by absence; an operator adopts them for a source first
    /// (`chime-sync adopt`).
    #[default]
    Keep,
    /// Treated as owned by this source (what every deployment did before
    /// ownership existed).
    OwnedBy(Source),
}

impl UnownedPolicy {
    /// `keep`, or the source that owns unowned users (`pool`).
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        match raw.trim() {
            "" | "keep" => Ok(Self::Keep),
            other => Source::parse(other).map(Self::OwnedBy),
        }
    }

    fn treats_as_owner(&self, source: &Source) -> bool {
        matches!(self, Self::OwnedBy(s) if s == source)
    }
}

/// What must hold of a user's record for a change to apply: each field a
/// condition, all of them together. Stores check it atomically with the
/// write ([`Ledger::record`]); planners check it on records they read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guard {
    /// The user's last change is not after this (or none is recorded).
    pub not_changed_after: Option<At>,
    /// Absence: the user is owned by this source (or, with
    /// `or_unowned`, owned by nobody).
    pub owned_by: Option<Source>,
    pub or_unowned: bool,
}

/// Why a change does not apply: it is logged with the user id and counted,
/// and the message is acknowledged (neither retried nor dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("stale: the user changed at {last}, after this change ({at})")]
    Stale { at: At, last: At },
    #[error("not owned by {by}: {}", owner_text(.owner))]
    NotOwner { by: Source, owner: Option<Source> },
}

fn owner_text(owner: &Option<Source>) -> String {
    match owner {
        Some(o) => format!("owned by {o}"),
        None => "owned by no source (predates ownership)".to_owned(),
    }
}

impl Refusal {
    /// A short code for logs, metrics and plan summaries.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Stale { .. } => "stale",
            Self::NotOwner { owner: None, .. } => "unowned",
            Self::NotOwner { .. } => "not-owner",
        }
    }
}

/// What a change writes when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    /// Move the user's clock to this time (the change's, never backwards:
    /// the guard saw to that).
    pub changed_at: Option<At>,
    /// Set the owner if none is set.
    pub claim: Option<Source>,
    /// Set the owner, whoever owned the user (a user created again after
    /// its deletion belongs to its new creator).
    pub owner: Option<Source>,
    pub mark: MarkEffect,
    /// Forget a held deletion (the user is wanted, or the deletion runs).
    pub clear_held: bool,
}

/// What a change does to the deletion mark.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MarkEffect {
    #[default]
    Keep,
    Clear,
    Set(DeletionMark),
}

impl Change {
    /// The conditions under which this change applies.
    pub fn guard(&self, unowned: &UnownedPolicy) -> Guard {
        match self.kind {
            ChangeKind::Create | ChangeKind::Update | ChangeKind::Delete => Guard {
                not_changed_after: self.at,
                ..Guard::default()
            },
            ChangeKind::Absent => Guard {
                not_changed_after: self.at,
                owned_by: Some(self.source.clone()),
                or_unowned: unowned.treats_as_owner(&self.source),
            },
            ChangeKind::SignIn => Guard {
                not_changed_after: self.at,
                owned_by: Some(self.source.clone()),
                or_unowned: false,
            },
        }
    }

    /// What the change writes when its guard holds. `now` dates a deletion
    /// whose source did not say when it happened.
    pub fn effects(&self, now: At) -> Effects {
        let moves_clock = !matches!(self.kind, ChangeKind::Absent);
        let mut effects = Effects {
            changed_at: self.at.filter(|_| moves_clock),
            ..Effects::default()
        };
        match self.kind {
            ChangeKind::Create => {
                effects.claim = Some(self.source.clone());
                effects.mark = MarkEffect::Clear;
                effects.clear_held = true;
            }
            ChangeKind::Update | ChangeKind::SignIn => {
                effects.mark = MarkEffect::Clear;
                effects.clear_held = true;
            }
            ChangeKind::Delete | ChangeKind::Absent => {
                effects.mark = MarkEffect::Set(DeletionMark {
                    by: self.source.clone(),
                    absence: self.kind == ChangeKind::Absent,
                    at: self.at.unwrap_or(now),
                });
                effects.clear_held = true;
            }
        }
        effects
    }
}

impl Guard {
    /// Whether `record` satisfies the guard; if not, why.
    pub fn check(&self, record: &UserRecord, change: &Change) -> Result<(), Refusal> {
        if let Some(owned_by) = &self.owned_by {
            let owns = match &record.owner {
                Some(owner) => owner == owned_by,
                None => self.or_unowned,
            };
            if !owns {
                return Err(Refusal::NotOwner {
                    by: change.source.clone(),
                    owner: record.owner.clone(),
                });
            }
        }
        if let (Some(at), Some(last)) = (self.not_changed_after, record.changed_at)
            && last > at
        {
            return Err(Refusal::Stale { at, last });
        }
        Ok(())
    }
}

impl Effects {
    /// The record after the change (what an in-memory store writes, and what
    /// the DynamoDB adapter's update expression must equal).
    pub fn apply(&self, record: &UserRecord) -> UserRecord {
        let mut next = record.clone();
        if let Some(at) = self.changed_at {
            next.changed_at = Some(next.changed_at.map_or(at, |last| last.max(at)));
        }
        if let Some(owner) = &self.owner {
            next.owner = Some(owner.clone());
        } else if next.owner.is_none() {
            next.owner = self.claim.clone();
        }
        match &self.mark {
            MarkEffect::Keep => {}
            MarkEffect::Clear => next.deletion = None,
            MarkEffect::Set(mark) => next.deletion = Some(mark.clone()),
        }
        if self.clear_held {
            next.held = None;
        }
        next
    }
}

/// Whether `change` applies to a user whose record is `record` (`None`:
/// nothing recorded), under `unowned`.
pub fn judge(
    record: Option<&UserRecord>,
    change: &Change,
    unowned: &UnownedPolicy,
) -> Result<(), Refusal> {
    let empty = UserRecord::default();
    change
        .guard(unowned)
        .check(record.unwrap_or(&empty), change)
}

/// What [`Ledger::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The guard held and the effects were written; `before` is the record
    /// as it was (`None`: there was none).
    Applied { before: Option<UserRecord> },
    /// The guard did not hold; nothing was written.
    Refused(Refusal),
}

/// A breaker window of one source's explicit deletions: every deletion in
/// it counts against one limit. Fixed windows (see [`FeedBreaker`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub source: Source,
    /// The window's start; its key in the store.
    pub start: At,
}

/// What [`Ledger::record_counted`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    Recorded(Recorded),
    /// The window already holds `limit` deletions: nothing was written.
    WindowFull,
}

/// A page of [`Ledger::marked`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarkedPage {
    pub users: Vec<(UserId, UserRecord)>,
    pub next: Option<String>,
}

/// Which marked users [`Ledger::marked`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// Users with a deletion mark (pending, or done and not yet forgotten).
    Deletions,
    /// Users with a held deletion.
    Held,
}

/// A failure of the ledger's store, classified once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    #[error("the ledger is throttled: {0}")]
    Throttled(String),
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
    #[error("the ledger call timed out")]
    Timeout,
    #[error("could not reach the ledger: {0}")]
    Transport(String),
    #[error("the ledger denied access (check IAM and the table name): {0}")]
    AccessDenied(String),
    #[error("the ledger rejected the request: {0}")]
    Rejected(String),
    #[error("the ledger holds a record this version cannot read: {0}")]
    Corrupt(String),
}

impl LedgerError {
    /// Every ledger failure is retryable for the message that met it: none
    /// is the message's fault, so it waits in the queue (a deployment fault
    /// reaches the DLQ by redrive).
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Retryable
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "LedgerThrottled",
            Self::Unavailable(_) => "LedgerUnavailable",
            Self::Timeout => "LedgerTimeout",
            Self::Transport(_) => "LedgerTransport",
            Self::AccessDenied(_) => "LedgerAccessDenied",
            Self::Rejected(_) => "LedgerRejected",
            Self::Corrupt(_) => "LedgerCorrupt",
        }
    }
}

/// Where ownership, change times and deletion marks are kept: one record
/// per user, read and written by id (the DynamoDB table of the stack, or
/// memory).
///
/// Contract every implementation MUST keep:
/// - [`Ledger::record`] checks `change.guard(unowned)` against the stored
///   record and writes `change.effects(now)` in one atomic step, and answers
///   the record as it was before; when the guard fails nothing is written
///   and the refusal says why (from the stored record, via [`Guard::check`]).
/// - [`Ledger::record_counted`] does the same and, in the same atomic step,
///   counts one deletion in `window`; if the window holds `limit` already,
///   nothing at all is written.
/// - A user's record expires [`MARK_RETENTION`] after a deletion was asked
///   for, unless a later change cleared the mark.
/// - Reads ([`Ledger::get_many`], [`Ledger::marked`]) may lag writes by at
///   most a second or so (eventually consistent); writes never do.
pub trait Ledger: Send + Sync {
    fn record(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
    ) -> impl Future<Output = Result<Recorded, LedgerError>> + Send;

    fn record_counted(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
        window: &Window,
        limit: u64,
    ) -> impl Future<Output = Result<Counted, LedgerError>> + Send;

    /// Keep an explicit deletion the breaker withheld, for a release.
    fn hold(
        &self,
        id: &UserId,
        held: &HeldDeletion,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Make `source` the owner, whoever owned the user (a user created
    /// again after its deletion; `chime-sync adopt`).
    fn set_owner(
        &self,
        id: &UserId,
        source: &Source,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The records of `ids` (at most 100 at once); users without one are
    /// left out of the answer.
    fn get_many(
        &self,
        ids: &[UserId],
    ) -> impl Future<Output = Result<Vec<(UserId, UserRecord)>, LedgerError>> + Send;

    /// Marked users whose id starts with `prefix`, in id order, a page at a
    /// time.
    fn marked(
        &self,
        which: Marked,
        prefix: &str,
        next: Option<String>,
    ) -> impl Future<Output = Result<MarkedPage, LedgerError>> + Send;

    /// The number of Chime users the last reconcile cycle counted (what a
    /// feed breaker's percentage is of), and store it.
    fn chime_user_count(&self) -> impl Future<Output = Result<Option<u64>, LedgerError>> + Send;
    fn set_chime_user_count(
        &self,
        count: u64,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// The largest `ids` [`Ledger::get_many`] takes (DynamoDB's BatchGetItem).
pub const GET_MANY_MAX: usize = 100;

/// Every marked user with `prefix`, following pages to the end.
pub async fn all_marked<L: Ledger + ?Sized>(
    ledger: &L,
    which: Marked,
    prefix: &str,
) -> Result<Vec<(UserId, UserRecord)>, LedgerError> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = ledger.marked(which, prefix, next).await?;
        out.extend(page.users);
        match page.next {
            Some(token) => next = Some(token),
            None => return Ok(out),
        }
    }
}

/// The records of any number of `ids`, [`GET_MANY_MAX`] at a time.
pub async fn records_of<L: Ledger + ?Sized>(
    ledger: &L,
    ids: &[UserId],
) -> Result<std::collections::BTreeMap<UserId, UserRecord>, LedgerError> {
    let mut out = std::collections::BTreeMap::new();
    for chunk in ids.chunks(GET_MANY_MAX) {
        out.extend(ledger.get_many(chunk).await?);
    }
    Ok(out)
}

/// The breaker on a feed's explicit deletions (`FEED_DELETE_LIMIT`,
/// `FEED_DELETE_LIMIT_PERCENT`, `FEED_DELETE_WINDOW_MINUTES`): at most
/// `max(limit, percent % of the Chime users)` deletions per source and fixed
/// window; the rest are held until an operator releases them.
///
/// Fixed windows, not sliding ones: the count is one atomic conditional
/// write of one item, which a sliding window cannot be. A burst that
/// straddles a window's end can pass twice the limit; a runaway export
/// (thousands a minute) still trips within its first minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedBreaker {
    pub limit: u64,
    pub percent: u8,
    pub window: Duration,
}

impl Default for FeedBreaker {
    fn default() -> Self {
        Self {
            limit: 50,
            percent: 5,
            window: Duration::from_secs(3600),
        }
    }
}

impl FeedBreaker {
    /// What a window allows with `chime_users` Chime users (unknown: the
    /// limit alone).
    pub fn allowed(&self, chime_users: Option<u64>) -> u64 {
        let share = chime_users
            .unwrap_or(0)
            .saturating_mul(u64::from(self.percent))
            / 100;
        self.limit.max(share)
    }

    /// The window `now` falls in, for `source`.
    pub fn window(&self, source: &Source, now: At) -> Window {
        let width = u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Window {
            source: source.clone(),
            start: At(now.0 - now.0 % width),
        }
    }
}

/// A reference or an `Arc` to a ledger is a ledger too (handlers share one).
macro_rules! forward_ledger {
    ($wrapper:ty) => {
        impl<T: Ledger + ?Sized> Ledger for $wrapper {
            fn record(
                &self,
                change: &Change,
                unowned: &UnownedPolicy,
                now: At,
            ) -> impl Future<Output = Result<Recorded, LedgerError>> + Send {
                (**self).record(change, unowned, now)
            }
            fn record_counted(
                &self,
                change: &Change,
                unowned: &UnownedPolicy,
                now: At,
                window: &Window,
                limit: u64,
            ) -> impl Future<Output = Result<Counted, LedgerError>> + Send {
                (**self).record_counted(change, unowned, now, window, limit)
            }
            fn hold(
                &self,
                id: &UserId,
                held: &HeldDeletion,
            ) -> impl Future<Output = Result<(), LedgerError>> + Send {
                (**self).hold(id, held)
            }
            fn set_owner(
                &self,
                id: &UserId,
                source: &Source,
            ) -> impl Future<Output = Result<(), LedgerError>> + Send {
                (**self).set_owner(id, source)
            }
            fn get_many(
                &self,
                ids: &[UserId],
            ) -> impl Future<Output = Result<Vec<(UserId, UserRecord)>, LedgerError>> + Send {
                (**self).get_many(ids)
            }
            fn marked(
                &self,
                which: Marked,
                prefix: &str,
                next: Option<String>,
            ) -> impl Future<Output = Result<MarkedPage, LedgerError>> + Send {
                (**self).marked(which, prefix, next)
            }
            fn chime_user_count(
                &self,
            ) -> impl Future<Output = Result<Option<u64>, LedgerError>> + Send {
                (**self).chime_user_count()
            }
            fn set_chime_user_count(
                &self,
                count: u64,
            ) -> impl Future<Output = Result<(), LedgerError>> + Send {
                (**self).set_chime_user_count(count)
            }
        }
    };
}

forward_ledger!(&T);
forward_ledger!(std::sync::Arc<T>);

pub mod memory;

#[cfg(test)]
mod tests;
