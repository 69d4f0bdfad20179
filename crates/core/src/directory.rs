//! The `Directory` port: the Chime SDK Identity calls we make, each one call,
//! and the values they exchange. The rules built on them (create-or-resolve,
//! upsert, delete-if-present, grace deletions) are the domain service
//! [`crate::provisioning::Provisioning`], written once for every directory.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::error::DirectoryError;
use crate::identity::{AppInstanceArn, UserId};
use crate::metrics::{CallStats, Metric};
use crate::profile::UserProfile;

/// A user as the directory reports it.
///
/// `created_at` and `expiration` come from `DescribeAppInstanceUser` only:
/// `ListAppInstanceUsers` answers name and metadata, so a listed user has
/// neither (`None`), whatever Chime holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: UserId,
    pub arn: String,
    pub name: String,
    pub metadata: String,
    /// `CreatedTimestamp`: what a grace deletion counts the user's age from.
    pub created_at: Option<SystemTime>,
    /// `ExpirationSettings`: a deletion Chime will carry out by itself.
    pub expiration: Option<Expiration>,
}

impl DirectoryUser {
    /// A user as `ListAppInstanceUsers` shows it: no creation time, no
    /// expiration.
    pub fn listed(id: UserId, arn: String, name: String, metadata: String) -> Self {
        Self {
            id,
            arn,
            name,
            metadata,
            created_at: None,
            expiration: None,
        }
    }

    /// Whether Chime will delete this user by itself (a grace deletion).
    pub fn deletion_pending(&self) -> bool {
        self.expiration.is_some_and(Expiration::is_pending)
    }
}

/// One page of [`Directory::list`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryPage {
    pub users: Vec<DirectoryUser>,
    pub next_token: Option<String>,
    /// Listed users left out of `users` because their id is not a Cognito
    /// sub (back-end or bot users, users made by hand): this system neither
    /// owns nor touches them.
    pub foreign: usize,
}

/// Chime's longest `ExpirationDays` (the model allows 1–5475).
pub const MAX_EXPIRATION_DAYS: u16 = 5475;

/// One day, as `ExpirationDays` counts them.
pub const DAY: Duration = Duration::from_secs(86_400);

/// A user's `ExpirationSettings` with `ExpirationCriterion = CREATED_TIMESTAMP`
/// (the only criterion Chime has): Chime deletes the user in the background
/// some hours after `days` days from its creation. Until then the user looks
/// active, and its settings can still be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiration {
    pub days: u16,
}

impl Expiration {
    /// What [`Provisioning::clear_expiration`](crate::provisioning::Provisioning::clear_expiration) writes when Chime will not remove
    /// a user's settings: the longest expiration, 15 years after creation.
    pub const NEVER: Expiration = Expiration {
        days: MAX_EXPIRATION_DAYS,
    };

    /// A deletion that will happen: anything but [`Expiration::NEVER`].
    pub fn is_pending(self) -> bool {
        self.days < MAX_EXPIRATION_DAYS
    }

    /// When Chime may delete a user created at `created`.
    pub fn deadline(self, created: SystemTime) -> SystemTime {
        created + DAY * u32::from(self.days)
    }
}

/// How a deletion is carried out (`DELETE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    /// `DeleteAppInstanceUser` at once.
    Immediate,
    /// Chime's own expiration: the user is deleted by Chime at least `days`
    /// days later, unless a `user.created`/`user.updated` or `restore`
    /// cancels it first. We keep no state.
    Grace { days: u16 },
}

impl DeleteMode {
    pub const DEFAULT_GRACE_DAYS: u16 = 7;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Grace { .. } => "grace",
        }
    }
}

/// The `ExpirationDays` that delete a user created at `created` at least
/// `grace_days` days after `now`: its age in whole days, rounded up so the
/// grace is never shorter than promised (and at most a day longer), plus the
/// grace days. A clock behind the directory's (a negative age) counts as age 0.
pub fn expiration_days(
    created: SystemTime,
    now: SystemTime,
    grace_days: u16,
) -> Result<u16, DirectoryError> {
    let age = now.duration_since(created).unwrap_or(Duration::ZERO);
    let age_days = age.as_secs().div_ceil(DAY.as_secs());
    let days = age_days + u64::from(grace_days);
    u16::try_from(days)
        .ok()
        .filter(|d| (1..=MAX_EXPIRATION_DAYS).contains(d))
        .ok_or_else(|| {
            DirectoryError::Rejected(format!(
                "cannot schedule the deletion: the user is {age_days} days old, and {age_days} + \
                 {grace_days} grace days exceeds Chime's longest expiration ({MAX_EXPIRATION_DAYS} days)"
            ))
        })
}

/// What applying an identity event did. Logged, shown by the CLI, asserted by tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    /// It existed already with the same name (and metadata, where given):
    /// nothing was written. Logged as `already-exists`.
    AlreadyProvisioned,
    /// It existed already and its name or metadata were brought up to date.
    Updated,
    Deleted,
    /// Delete of a user that does not exist: the desired state holds.
    AlreadyGone,
    /// Grace deletion: Chime will delete the user when its expiration passes.
    DeletionScheduled,
    /// Grace deletion of a user whose deletion was scheduled already, for the
    /// same time or sooner: nothing was written (the grace never grows).
    AlreadyScheduled,
    /// A pending deletion was cancelled (a rehire, an undone mistake, `restore`).
    Restored,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::AlreadyProvisioned => "already-exists",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::AlreadyGone => "already-gone",
            Self::DeletionScheduled => "deletion-scheduled",
            Self::AlreadyScheduled => "deletion-already-scheduled",
            Self::Restored => "restored",
        }
    }

    /// The metric counting this outcome.
    pub fn metric(self) -> Metric {
        match self {
            Self::Created => Metric::Created,
            Self::AlreadyProvisioned => Metric::AlreadyExists,
            Self::Updated => Metric::Updated,
            Self::Deleted => Metric::Deleted,
            Self::AlreadyGone => Metric::AlreadyGone,
            Self::DeletionScheduled => Metric::DeletionScheduled,
            Self::AlreadyScheduled => Metric::DeletionAlreadyScheduled,
            Self::Restored => Metric::Restored,
        }
    }
}

/// The port: the Chime SDK Identity calls this system makes, per AppInstance.
/// Every method is required and is one call (the adapter may retry it); the
/// rules built on them live once in [`crate::provisioning::Provisioning`].
///
/// Implementations map every failure into [`DirectoryError`], in one place:
/// - a user that does not exist is `NotFound` (describe answers `Ok(None)`);
/// - an answer that may mean "no such user" as well as "refused" (Chime's
///   `403 ForbiddenException` without IAM's message, on describe, update or
///   delete) is `PossiblyMissing`;
/// - an IAM or authentication denial is `AccessDenied`;
/// - an existing id on create is `AlreadyExists`.
///
/// Any other error is returned as it is; every error that is not the
/// message's fault is retryable ([`DirectoryError::class`]).
pub trait Directory: Send + Sync {
    fn app_instance_arn(&self) -> &AppInstanceArn;

    /// `CreateAppInstanceUser` with `AppInstanceUserId = sub` and a
    /// deterministic `ClientRequestToken`, so a repeat of the same request is
    /// answered as the first one was.
    fn create(&self, user: &UserProfile)
    -> impl Future<Output = Result<(), DirectoryError>> + Send;

    /// `DescribeAppInstanceUser`; `Ok(None)` when the user does not exist,
    /// `Err(PossiblyMissing)` when the answer cannot tell.
    fn describe(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Option<DirectoryUser>, DirectoryError>> + Send;

    /// `UpdateAppInstanceUser` (Chime requires both name and metadata).
    fn update(
        &self,
        id: &UserId,
        name: &str,
        metadata: &str,
    ) -> impl Future<Output = Result<(), DirectoryError>> + Send;

    /// `DeleteAppInstanceUser`; `Err(NotFound)` when the user does not exist.
    fn delete(&self, id: &UserId) -> impl Future<Output = Result<(), DirectoryError>> + Send;

    /// `ListAppInstanceUsers`, one page.
    fn list(
        &self,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<DirectoryPage, DirectoryError>> + Send;

    /// `PutAppInstanceUserExpirationSettings`: `Some` sets the expiration;
    /// `None` sends the request without `ExpirationSettings` (the member is
    /// optional in Chime's model; the developer guide says settings can be
    /// "updated or removed"). Answers the settings Chime reports afterwards.
    ///
    /// Required like every call here: a wrapper that did not forward it would
    /// compile and never delete anyone in grace mode. A directory that cannot
    /// set expirations answers `Rejected`, which refuses the grace deletion.
    fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<Expiration>,
    ) -> impl Future<Output = Result<Option<Expiration>, DirectoryError>> + Send;

    /// What the calls made since the last take cost: each call's duration
    /// and the throttled attempts retried inside them, for the invocation's
    /// metrics ([`crate::metrics`]). Taking resets them. A directory that
    /// measures nothing answers `CallStats::default()`.
    fn take_call_stats(&self) -> CallStats;
}

/// Handlers share one directory (the CLI replays all three against one), so a
/// reference or an `Arc` to a directory is a directory too.
macro_rules! forward_directory {
    ($wrapper:ty) => {
        impl<T: Directory + ?Sized> Directory for $wrapper {
            fn app_instance_arn(&self) -> &AppInstanceArn {
                (**self).app_instance_arn()
            }
            fn create(
                &self,
                user: &UserProfile,
            ) -> impl Future<Output = Result<(), DirectoryError>> + Send {
                (**self).create(user)
            }
            fn describe(
                &self,
                id: &UserId,
            ) -> impl Future<Output = Result<Option<DirectoryUser>, DirectoryError>> + Send {
                (**self).describe(id)
            }
            fn update(
                &self,
                id: &UserId,
                name: &str,
                metadata: &str,
            ) -> impl Future<Output = Result<(), DirectoryError>> + Send {
                (**self).update(id, name, metadata)
            }
            fn delete(
                &self,
                id: &UserId,
            ) -> impl Future<Output = Result<(), DirectoryError>> + Send {
                (**self).delete(id)
            }
            fn list(
                &self,
                next_token: Option<String>,
            ) -> impl Future<Output = Result<DirectoryPage, DirectoryError>> + Send {
                (**self).list(next_token)
            }
            fn put_expiration(
                &self,
                id: &UserId,
                expiration: Option<Expiration>,
            ) -> impl Future<Output = Result<Option<Expiration>, DirectoryError>> + Send {
                (**self).put_expiration(id, expiration)
            }
            fn take_call_stats(&self) -> CallStats {
                (**self).take_call_stats()
            }
        }
    };
}

forward_directory!(&T);
forward_directory!(std::sync::Arc<T>);

/// Every user of a directory, following `list` pages to the end.
pub async fn list_all<D: Directory + ?Sized>(
    directory: &D,
) -> Result<Vec<DirectoryUser>, DirectoryError> {
    let mut users = Vec::new();
    let mut token = None;
    loop {
        let page = directory.list(token).await?;
        users.extend(page.users);
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok(users),
        }
    }
}
