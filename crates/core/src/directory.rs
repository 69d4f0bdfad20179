//! The `Directory` port: the five Chime SDK Identity calls we make, and the
//! create-or-resolve / upsert / delete-if-present semantics built on them once,
//! so the Chime adapter and the in-memory directory behave identically.

use std::future::Future;

use crate::error::DirectoryError;
use crate::identity::{AppInstanceArn, UserId};
use crate::profile::{Metadata, UserProfile};

/// A user as the directory reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: UserId,
    pub arn: String,
    pub name: String,
    pub metadata: String,
}

/// One page of [`Directory::list`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryPage {
    pub users: Vec<DirectoryUser>,
    pub next_token: Option<String>,
}

/// What applying an identity event did. Logged, shown by the CLI, asserted by tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    /// It existed already with the same name (and metadata, where given).
    AlreadyProvisioned,
    /// It existed already and its name or metadata were brought up to date.
    Updated,
    Deleted,
    /// Delete of a user that does not exist: the desired state holds.
    AlreadyGone,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::AlreadyProvisioned => "already-provisioned",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::AlreadyGone => "already-gone",
        }
    }
}

/// The Chime SDK Identity operations this system needs, per AppInstance.
///
/// Implementations map every failure into [`DirectoryError`]: a missing user
/// is `NotFound` (describe answers `Ok(None)` instead), an existing id on
/// create is `AlreadyExists`. Everything else — idempotency, conflict
/// resolution — is written once in the provided methods.
pub trait Directory: Send + Sync {
    fn app_instance_arn(&self) -> &AppInstanceArn;

    /// `CreateAppInstanceUser` with `AppInstanceUserId = sub` and a
    /// deterministic `ClientRequestToken`.
    fn create(&self, user: &UserProfile)
    -> impl Future<Output = Result<(), DirectoryError>> + Send;

    /// `DescribeAppInstanceUser`; `Ok(None)` when the user does not exist.
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

    /// Create the user, or resolve an existing one as already provisioned and
    /// bring its name (and metadata, when the profile carries some) up to date.
    /// A Conflict from Chime is never a failure here.
    fn create_or_resolve(
        &self,
        user: &UserProfile,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.create(user).await {
                Ok(()) => Ok(Applied::Created),
                Err(DirectoryError::AlreadyExists) => match self.describe(&user.id).await? {
                    Some(existing) => reconcile(self, user, &existing).await,
                    // Deleted between our create and describe: try once more.
                    None => self.create(user).await.map(|()| Applied::Created),
                },
                Err(e) => Err(e),
            }
        }
    }

    /// Create the user if missing, else update name and metadata where they
    /// differ (no write when nothing changed, so replays are free).
    fn upsert(
        &self,
        user: &UserProfile,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.describe(&user.id).await? {
                Some(existing) => reconcile(self, user, &existing).await,
                None => self.create_or_resolve(user).await,
            }
        }
    }

    /// Make sure the user exists without touching an existing one (the
    /// ConfirmForgotPassword heal: one read in the common case).
    fn ensure_exists(
        &self,
        user: &UserProfile,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.describe(&user.id).await? {
                Some(_) => Ok(Applied::AlreadyProvisioned),
                None => self.create_or_resolve(user).await,
            }
        }
    }

    /// Delete the user; a user already gone is a success.
    fn delete_if_present(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.delete(id).await {
                Ok(()) => Ok(Applied::Deleted),
                Err(DirectoryError::NotFound) => Ok(Applied::AlreadyGone),
                Err(e) => Err(e),
            }
        }
    }
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

/// Bring an existing user in line with the desired profile.
async fn reconcile<D: Directory + ?Sized>(
    directory: &D,
    want: &UserProfile,
    have: &DirectoryUser,
) -> Result<Applied, DirectoryError> {
    let metadata = want
        .metadata
        .as_ref()
        .map(Metadata::as_str)
        .unwrap_or(&have.metadata);
    if have.name == want.name.as_str() && have.metadata == metadata {
        return Ok(Applied::AlreadyProvisioned);
    }
    match directory
        .update(&want.id, want.name.as_str(), metadata)
        .await
    {
        Ok(()) => Ok(Applied::Updated),
        // Deleted meanwhile: the desired state is "exists", so create it.
        Err(DirectoryError::NotFound) => directory.create(want).await.map(|()| Applied::Created),
        Err(e) => Err(e),
    }
}
