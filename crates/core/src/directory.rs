//! The `Directory` port: the five Chime SDK Identity calls we make, and the
//! create-or-resolve / upsert / delete-if-present semantics built on them once,
//! so the Chime adapter and the in-memory directory behave identically.

use std::future::Future;

use crate::error::DirectoryError;
use crate::identity::{AppInstanceArn, UserId};
use crate::metrics::{CallStats, Metric};
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
    /// It existed already with the same name (and metadata, where given):
    /// nothing was written. Logged as `already-exists`.
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
            Self::AlreadyProvisioned => "already-exists",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::AlreadyGone => "already-gone",
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
        }
    }
}

/// The Chime SDK Identity operations this system needs, per AppInstance.
///
/// Implementations map every failure into [`DirectoryError`], in one place:
/// - a user that does not exist is `NotFound` (describe answers `Ok(None)`);
/// - an answer that may mean "no such user" as well as "refused" (Chime's
///   `403 ForbiddenException` without IAM's message, on describe, update or
///   delete) is `PossiblyMissing`;
/// - an IAM or authentication denial is `AccessDenied`;
/// - an existing id on create is `AlreadyExists`.
///
/// Everything else — idempotency, conflict resolution, settling a possibly
/// missing user with a second call — is written once in the provided methods,
/// so the Chime adapter and the in-memory directory behave identically:
///
/// | provided method | first call answers | second call | outcome |
/// |---|---|---|---|
/// | `upsert` | describe: the user | update if it differs | `Updated` / `AlreadyProvisioned` |
/// | `upsert` | describe: `NotFound` | `create_or_resolve` | `Created` (or resolved) |
/// | `upsert` | describe: `PossiblyMissing` | create | ok: `Created`; exists: retryable refusal; denied: denied |
/// | `ensure_exists` | describe: the user | — | `AlreadyProvisioned` |
/// | `ensure_exists` | describe: `NotFound` | `create_or_resolve` | `Created` (or resolved) |
/// | `ensure_exists` | describe: `PossiblyMissing` | create | ok: `Created`; exists: `AlreadyProvisioned`; denied: denied |
/// | `create_or_resolve` | create: ok | — | `Created` (also Chime's idempotent answer to a repeated request) |
/// | `create_or_resolve` | create: `AlreadyExists` | describe, then update if it differs | `Updated` / `AlreadyProvisioned` |
/// | `delete_if_present` | delete: ok | — | `Deleted` |
/// | `delete_if_present` | delete: `NotFound` | — | `AlreadyGone` |
/// | `delete_if_present` | delete: `PossiblyMissing` | describe | missing (`NotFound` or `PossiblyMissing`): `AlreadyGone`; the user: retryable refusal; denied: denied |
/// | (update inside the above) | update: `NotFound` / `PossiblyMissing` | create | ok: `Created`; exists: retryable |
///
/// Any other error of any call is returned as it is; every error that is not
/// the message's fault is retryable ([`DirectoryError::class`]).
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

    /// What the calls made since the last take cost: each call's duration
    /// and the throttled attempts retried inside them, for the invocation's
    /// metrics ([`crate::metrics`]). Taking resets them. A directory that
    /// measures nothing answers empty figures.
    fn take_call_stats(&self) -> CallStats {
        CallStats::default()
    }

    /// Create the user, or resolve an existing one as already provisioned and
    /// bring its name (and metadata, when the profile carries some) up to date.
    /// A Conflict from Chime is never a failure here.
    ///
    /// One call for a new user, which is why it creates first; but Chime
    /// answers a repeat of an identical create (same `ClientRequestToken`)
    /// with success, so a user that already existed in exactly this state is
    /// reported `Created`. Callers that must tell the two apart (the
    /// handlers, which log the outcome) use [`Directory::upsert`].
    fn create_or_resolve(
        &self,
        user: &UserProfile,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.create(user).await {
                Ok(()) => Ok(Applied::Created),
                Err(DirectoryError::AlreadyExists) => match self.describe(&user.id).await {
                    Ok(Some(existing)) => reconcile(self, user, &existing).await,
                    // Deleted between our create and describe: try once more.
                    Ok(None) | Err(DirectoryError::PossiblyMissing(_)) => {
                        create_once_more(self, user).await
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
    }

    /// Create the user if missing, else update name and metadata where they
    /// differ (no write when nothing changed, so replays are free). It reads
    /// first, so the outcome is the truth: a user that existed is never
    /// reported `Created`.
    fn upsert(
        &self,
        user: &UserProfile,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.describe(&user.id).await {
                Ok(Some(existing)) => reconcile(self, user, &existing).await,
                Ok(None) => self.create_or_resolve(user).await,
                Err(DirectoryError::PossiblyMissing(why)) => {
                    match settle_by_create(self, user).await? {
                        Some(applied) => Ok(applied),
                        None => Err(refused("describe", &why)),
                    }
                }
                Err(e) => Err(e),
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
            match self.describe(&user.id).await {
                Ok(Some(_)) => Ok(Applied::AlreadyProvisioned),
                Ok(None) => self.create_or_resolve(user).await,
                Err(DirectoryError::PossiblyMissing(_)) => Ok(settle_by_create(self, user)
                    .await?
                    .unwrap_or(Applied::AlreadyProvisioned)),
                Err(e) => Err(e),
            }
        }
    }

    /// Delete the user; a user already gone is a success. A denial, or a
    /// refusal while the user exists, is never a success.
    fn delete_if_present(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.delete(id).await {
                Ok(()) => Ok(Applied::Deleted),
                Err(DirectoryError::NotFound) => Ok(Applied::AlreadyGone),
                // Missing, or refused? A describe that cannot find the user
                // either confirms it is gone.
                Err(DirectoryError::PossiblyMissing(why)) => match self.describe(id).await {
                    Ok(None) | Err(DirectoryError::PossiblyMissing(_)) => Ok(Applied::AlreadyGone),
                    Ok(Some(_)) => Err(refused("delete", &why)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
    }
}

/// Settle "possibly missing" with the create the caller wanted anyway, under
/// the deterministic token: success means the user was missing and now
/// exists (`Some(Created)`); `AlreadyExists` means it exists after all
/// (`None`, for the caller to judge); a denial stays a denial.
async fn settle_by_create<D: Directory + ?Sized>(
    directory: &D,
    user: &UserProfile,
) -> Result<Option<Applied>, DirectoryError> {
    match directory.create(user).await {
        Ok(()) => Ok(Some(Applied::Created)),
        Err(DirectoryError::AlreadyExists) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A create after the user was found missing (deleted meanwhile). Found
/// existing once more, it is changing under us: retry later rather than
/// dead-letter a good message.
async fn create_once_more<D: Directory + ?Sized>(
    directory: &D,
    user: &UserProfile,
) -> Result<Applied, DirectoryError> {
    match directory.create(user).await {
        Ok(()) => Ok(Applied::Created),
        Err(DirectoryError::AlreadyExists) => Err(DirectoryError::Unavailable(
            "the user was created and deleted concurrently; retry".to_owned(),
        )),
        Err(e) => Err(e),
    }
}

/// Chime answered a 403 that was not IAM's for a user that does exist: a
/// refusal we cannot explain, so retryable (the message waits; a real
/// deployment fault reaches the DLQ by redrive), and never a success.
fn refused(call: &str, why: &str) -> DirectoryError {
    DirectoryError::AccessDenied(format!("Chime refused to {call} a user that exists: {why}"))
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
        Err(DirectoryError::NotFound) => create_once_more(directory, want).await,
        Err(DirectoryError::PossiblyMissing(why)) => match settle_by_create(directory, want).await?
        {
            Some(applied) => Ok(applied),
            None => Err(refused("update", &why)),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    //! Every row of the table on [`Directory`], against the in-memory
    //! directory in both of its missing-user answers; the Chime adapter's
    //! wire tests repeat them against the fake.

    use super::*;
    use crate::error::ErrorClass;
    use crate::memory::{InMemoryDirectory, MissingAnswer};
    use crate::profile::DisplayName;

    fn directory(missing: MissingAnswer) -> InMemoryDirectory {
        let d = InMemoryDirectory::new(
            AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/test")
                .unwrap(),
        );
        d.set_missing_answer(missing);
        d
    }

    fn profile(name: &str, metadata: Option<&str>) -> UserProfile {
        UserProfile {
            id: UserId::parse("6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5").unwrap(),
            name: DisplayName::parse(name).unwrap(),
            metadata: metadata.map(|m| Metadata::parse(m).unwrap()),
        }
    }

    fn forbidden() -> DirectoryError {
        DirectoryError::PossiblyMissing("ForbiddenException (HTTP 403): refused".into())
    }

    fn denied() -> DirectoryError {
        DirectoryError::AccessDenied("is not authorized to perform: chime:X".into())
    }

    fn is_retryable_refusal(result: &Result<Applied, DirectoryError>) -> bool {
        matches!(result, Err(e @ DirectoryError::AccessDenied(m))
            if e.class() == ErrorClass::Retryable && m.contains("refused"))
    }

    #[tokio::test]
    async fn upsert_creates_a_missing_user_and_reports_an_existing_one_truly() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            let ada = profile("Ada", None);
            assert_eq!(d.upsert(&ada).await, Ok(Applied::Created), "{missing:?}");
            assert_eq!(d.calls(), 2, "describe, then create");
            // A replay of the same create: the user existed, and says so.
            assert_eq!(d.upsert(&ada).await, Ok(Applied::AlreadyProvisioned));
            assert_eq!(Applied::AlreadyProvisioned.as_str(), "already-exists");
            assert_eq!(
                d.upsert(&profile("Ada L", Some("{}"))).await,
                Ok(Applied::Updated)
            );
            assert_eq!(d.users()[0].name, "Ada L");
        }
    }

    #[tokio::test]
    async fn ensure_exists_creates_a_missing_user_directly() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            assert_eq!(
                d.ensure_exists(&profile("Ada", None)).await,
                Ok(Applied::Created),
                "{missing:?}"
            );
            assert_eq!(d.calls(), 2, "describe, then create");
            assert_eq!(
                d.ensure_exists(&profile("Other", None)).await,
                Ok(Applied::AlreadyProvisioned)
            );
            assert_eq!(d.users()[0].name, "Ada", "an existing user is not touched");
        }
    }

    #[tokio::test]
    async fn delete_of_a_user_already_gone_succeeds() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            let ada = profile("Ada", None);
            d.create(&ada).await.unwrap();
            assert_eq!(d.delete_if_present(&ada.id).await, Ok(Applied::Deleted));
            assert_eq!(
                d.delete_if_present(&ada.id).await,
                Ok(Applied::AlreadyGone),
                "{missing:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_forbidden_delete_of_an_existing_user_is_a_retryable_refusal() {
        let d = directory(MissingAnswer::Forbidden);
        let ada = profile("Ada", None);
        d.create(&ada).await.unwrap();
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        let result = d.delete_if_present(&ada.id).await;
        assert!(is_retryable_refusal(&result), "{result:?}");
        assert_eq!(d.users().len(), 1, "the user stays");
    }

    #[tokio::test]
    async fn a_denial_is_never_a_success() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            let ada = profile("Ada", None);
            d.create(&ada).await.unwrap();
            // Delete denied outright.
            d.fail_next_for(ada.id.clone(), [denied()]);
            assert_eq!(d.delete_if_present(&ada.id).await, Err(denied()));
            // Delete possibly missing, and the describe that would settle it denied.
            d.fail_next_for(ada.id.clone(), [forbidden(), denied()]);
            assert_eq!(d.delete_if_present(&ada.id).await, Err(denied()));
            assert_eq!(d.users().len(), 1, "{missing:?}: the user stays");
        }
    }

    #[tokio::test]
    async fn a_forbidden_delete_settled_by_a_forbidden_or_missing_describe_is_gone() {
        let d = directory(MissingAnswer::NotFound);
        let id = profile("Ada", None).id;
        // Delete 403, describe 404.
        d.fail_next_for(id.clone(), [forbidden()]);
        assert_eq!(d.delete_if_present(&id).await, Ok(Applied::AlreadyGone));
        // Delete 403, describe 403.
        d.fail_next_for(id.clone(), [forbidden(), forbidden()]);
        assert_eq!(d.delete_if_present(&id).await, Ok(Applied::AlreadyGone));
        // Delete 403, describe throttled: not settled, retry.
        d.fail_next_for(
            id.clone(),
            [forbidden(), DirectoryError::Throttled("429".into())],
        );
        assert_eq!(
            d.delete_if_present(&id).await,
            Err(DirectoryError::Throttled("429".into()))
        );
    }

    #[tokio::test]
    async fn a_forbidden_describe_is_settled_by_the_create() {
        let d = directory(MissingAnswer::NotFound);
        let ada = profile("Ada", None);
        // Missing: the create settles it and the user exists.
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        assert_eq!(d.upsert(&ada).await, Ok(Applied::Created));
        // Exists (made by another request, so another token): Conflict.
        let renamed = profile("Ada Lovelace", None);
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        let result = d.upsert(&renamed).await;
        assert!(is_retryable_refusal(&result), "{result:?}");
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        assert_eq!(
            d.ensure_exists(&renamed).await,
            Ok(Applied::AlreadyProvisioned)
        );
        // The create that settles it is denied: the denial stands.
        let bob = UserProfile {
            id: UserId::parse("00000000-0000-4000-8000-000000000002").unwrap(),
            ..profile("Bob", None)
        };
        for call in 0..2 {
            d.fail_next_for(bob.id.clone(), [forbidden(), denied()]);
            let result = if call == 0 {
                d.upsert(&bob).await
            } else {
                d.ensure_exists(&bob).await
            };
            assert_eq!(result, Err(denied()));
        }
        assert_eq!(d.users().len(), 1);
        assert_eq!(d.users()[0].name, "Ada");
    }

    #[tokio::test]
    async fn a_forbidden_update_is_settled_by_the_create() {
        let d = directory(MissingAnswer::NotFound);
        let ada = profile("Ada", None);
        d.create(&ada).await.unwrap();
        // Describe finds Ada, the update answers 403, the create conflicts: refused.
        d.fail_next_for(ada.id.clone(), [DirectoryError::Timeout]);
        assert_eq!(
            d.upsert(&profile("Ada L", None)).await,
            Err(DirectoryError::Timeout)
        );
        let existing = d.describe(&ada.id).await.unwrap().unwrap();
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        let result = reconcile(&d, &profile("Ada L", None), &existing).await;
        assert!(is_retryable_refusal(&result), "{result:?}");
        // Deleted between the describe and the update: the create makes it.
        d.delete(&ada.id).await.unwrap();
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        assert_eq!(
            reconcile(&d, &profile("Ada L", None), &existing).await,
            Ok(Applied::Created)
        );
        assert_eq!(d.users()[0].name, "Ada L");
        d.delete(&ada.id).await.unwrap();
        assert_eq!(
            reconcile(&d, &profile("Ada M", None), &existing).await,
            Ok(Applied::Created),
            "update NotFound, create"
        );
    }

    #[tokio::test]
    async fn create_or_resolve_resolves_conflicts_and_races() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            let ada = profile("Ada", None);
            d.create(&ada).await.unwrap();
            assert_eq!(
                d.create_or_resolve(&profile("Ada L", None)).await,
                Ok(Applied::Updated)
            );
            assert_eq!(
                d.create_or_resolve(&profile("Ada L", Some(""))).await,
                Ok(Applied::AlreadyProvisioned),
                "conflict, nothing to change"
            );
            // Conflict, then gone by the describe (deleted meanwhile): create again.
            let other = profile("Ada M", None);
            d.delete(&ada.id).await.unwrap();
            d.fail_next_for(ada.id.clone(), [DirectoryError::AlreadyExists]);
            assert_eq!(d.create_or_resolve(&other).await, Ok(Applied::Created));
            // A user that keeps appearing and vanishing: retry later, never dead-letter.
            d.fail_next_for(
                ada.id.clone(),
                [
                    DirectoryError::AlreadyExists,
                    forbidden(),
                    DirectoryError::AlreadyExists,
                ],
            );
            let result = d.create_or_resolve(&other).await;
            assert!(
                matches!(&result, Err(e) if e.class() == ErrorClass::Retryable),
                "{missing:?}: {result:?}"
            );
        }
    }
}
