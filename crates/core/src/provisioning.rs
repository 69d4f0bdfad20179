//! The domain service over the [`Directory`] port: how a user is created or
//! resolved, brought up to date, deleted, scheduled for deletion and restored,
//! whatever Chime answers. Written once, as a trait every directory gets
//! through one blanket implementation, so no adapter (the Chime client, the
//! in-memory directory, a test wrapper) can carry rules of its own: they
//! only provide the calls.

use std::future::Future;
use std::time::SystemTime;

use crate::directory::{
    Applied, DeleteMode, Directory, DirectoryUser, Expiration, expiration_days,
};
use crate::error::DirectoryError;
use crate::identity::UserId;
use crate::profile::{Metadata, UserProfile};

/// The rules over a [`Directory`]'s calls.
///
/// Idempotency, conflict resolution and settling a possibly missing user with
/// a second call are written once here, so the Chime adapter and the
/// in-memory directory behave identically:
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
/// | (inside `upsert`, `create_or_resolve`) | describe: a pending expiration | `clear_expiration` | `Restored` |
/// | `schedule_deletion` | describe: the user | put expiration (age + grace days), unless one as soon is set | `DeletionScheduled` / `AlreadyScheduled` |
/// | `schedule_deletion` | describe: `NotFound` | — | `AlreadyGone` |
/// | `schedule_deletion` | describe: `PossiblyMissing` | put expiration `NEVER` (harmless to a user that exists) | missing: `AlreadyGone`; ok: retryable refusal |
/// | `clear_expiration` | put without settings: none left | — | `Restored` |
/// | `clear_expiration` | put without settings: `Rejected`, or the settings kept | put expiration `NEVER` | `Restored` |
/// | (a put expiration above) | `NotFound` / `PossiblyMissing` | describe | missing: `AlreadyGone`; the user: retryable refusal |
///
/// Any other error of any call is returned as it is.
pub trait Provisioning: Directory {
    /// Create the user, or resolve an existing one as already provisioned and
    /// bring its name (and metadata, when the profile carries some) up to date.
    /// A Conflict from Chime is never a failure here.
    ///
    /// One call for a new user, which is why it creates first; but Chime
    /// answers a repeat of an identical create (same `ClientRequestToken`)
    /// with success, so a user that already existed in exactly this state is
    /// reported `Created`. Callers that must tell the two apart (the
    /// handlers, which log the outcome) use [`Provisioning::upsert`].
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
        async move { Ok(self.ensure_exists_described(user).await?.0) }
    }

    /// [`Provisioning::ensure_exists`], answering also the user as described
    /// when it existed (the credential exchange looks at its expiration).
    fn ensure_exists_described(
        &self,
        user: &UserProfile,
    ) -> impl Future<Output = Result<(Applied, Option<DirectoryUser>), DirectoryError>> + Send {
        async move {
            match self.describe(&user.id).await {
                Ok(Some(existing)) => Ok((Applied::AlreadyProvisioned, Some(existing))),
                Ok(None) => Ok((self.create_or_resolve(user).await?, None)),
                Err(DirectoryError::PossiblyMissing(_)) => Ok((
                    settle_by_create(self, user)
                        .await?
                        .unwrap_or(Applied::AlreadyProvisioned),
                    None,
                )),
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

    /// Bring a user the list showed (`have`, no describe) in line with
    /// `want`: the update only, one call, when something differs. What the
    /// list cannot show (a pending expiration) is left alone.
    fn update_listed(
        &self,
        want: &UserProfile,
        have: &DirectoryUser,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        bring_in_line(self, want, have)
    }

    /// Delete the user as `mode` says, `now` being the time a grace counts from.
    fn remove(
        &self,
        id: &UserId,
        mode: DeleteMode,
        now: SystemTime,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match mode {
                DeleteMode::Immediate => self.delete_if_present(id).await,
                DeleteMode::Grace { days } => self.schedule_deletion(id, days, now).await,
            }
        }
    }

    /// Grace deletion: describe the user (its creation time), then let Chime
    /// delete it `grace_days` days from `now` ([`expiration_days`]). A user
    /// whose deletion is already due as soon is left as it is, so repeated
    /// deletions (a redelivered message, every reconcile run) never push it
    /// back. A user already gone is a success.
    fn schedule_deletion(
        &self,
        id: &UserId,
        grace_days: u16,
        now: SystemTime,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            match self.describe(id).await {
                Ok(None) => Ok(Applied::AlreadyGone),
                Ok(Some(user)) => self.schedule_deletion_of(&user, grace_days, now).await,
                // Missing, or refused? The longest expiration settles it and
                // harms no user that exists (it deletes nobody).
                Err(DirectoryError::PossiblyMissing(why)) => {
                    match self.put_expiration(id, Some(Expiration::NEVER)).await {
                        Err(DirectoryError::NotFound | DirectoryError::PossiblyMissing(_)) => {
                            Ok(Applied::AlreadyGone)
                        }
                        Ok(_) => Err(refused("describe", &why)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        }
    }

    /// [`Provisioning::schedule_deletion`] for a user described just now.
    fn schedule_deletion_of(
        &self,
        user: &DirectoryUser,
        grace_days: u16,
        now: SystemTime,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            let created = user.created_at.ok_or_else(|| {
                DirectoryError::Rejected(
                    "the directory did not say when the user was created; a grace deletion \
                     counts from it"
                        .to_owned(),
                )
            })?;
            let days = expiration_days(created, now, grace_days)?;
            if user
                .expiration
                .is_some_and(|e| e.is_pending() && e.days <= days)
            {
                return Ok(Applied::AlreadyScheduled);
            }
            match self
                .put_expiration(&user.id, Some(Expiration { days }))
                .await
            {
                Ok(_) => Ok(Applied::DeletionScheduled),
                Err(e) => gone_or(self, &user.id, "set the expiration of", e).await,
            }
        }
    }

    /// Cancel a pending deletion: the request without settings (Chime's way
    /// to remove them, as far as its documentation says). If Chime refuses
    /// that request (`Rejected`) or keeps the settings, the longest
    /// expiration is written instead ([`Expiration::NEVER`]: 15 years after
    /// creation), which every reader here counts as no deletion pending.
    fn clear_expiration(
        &self,
        id: &UserId,
    ) -> impl Future<Output = Result<Applied, DirectoryError>> + Send {
        async move {
            let fallback = match self.put_expiration(id, None).await {
                Ok(None) => return Ok(Applied::Restored),
                Ok(Some(kept)) if !kept.is_pending() => return Ok(Applied::Restored),
                Ok(Some(_)) | Err(DirectoryError::Rejected(_)) => {
                    self.put_expiration(id, Some(Expiration::NEVER)).await
                }
                Err(e) => Err(e),
            };
            match fallback {
                Ok(_) => Ok(Applied::Restored),
                Err(e) => gone_or(self, id, "clear the expiration of", e).await,
            }
        }
    }
}

impl<D: Directory + ?Sized> Provisioning for D {}

/// A put expiration answered `NotFound` or `PossiblyMissing`: the user went
/// (expired, deleted meanwhile) or the call was refused. A describe that
/// cannot find it either makes it gone; one that can makes it a retryable
/// refusal. Any other error is returned as it is.
async fn gone_or<D: Directory + ?Sized>(
    directory: &D,
    id: &UserId,
    call: &str,
    error: DirectoryError,
) -> Result<Applied, DirectoryError> {
    let why = match error {
        DirectoryError::NotFound => return Ok(Applied::AlreadyGone),
        DirectoryError::PossiblyMissing(why) => why,
        other => return Err(other),
    };
    match directory.describe(id).await {
        Ok(None) | Err(DirectoryError::PossiblyMissing(_)) => Ok(Applied::AlreadyGone),
        Ok(Some(_)) => Err(refused(call, &why)),
        Err(e) => Err(e),
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
/// Bring an existing user, as a describe showed it, in line with the desired
/// profile, and cancel its pending deletion: the user is wanted.
async fn reconcile<D: Directory + ?Sized>(
    directory: &D,
    want: &UserProfile,
    have: &DirectoryUser,
) -> Result<Applied, DirectoryError> {
    let applied = bring_in_line(directory, want, have).await?;
    if applied == Applied::Created || !have.deletion_pending() {
        return Ok(applied);
    }
    match directory.clear_expiration(&want.id).await? {
        // Expired between the describe and now: the desired state is "exists".
        Applied::AlreadyGone => create_once_more(directory, want).await,
        restored => Ok(restored),
    }
}

/// Update name and metadata where they differ from `have`.
async fn bring_in_line<D: Directory + ?Sized>(
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

    use std::time::Duration;

    use super::*;
    use crate::directory::{DAY, DirectoryPage, MAX_EXPIRATION_DAYS};
    use crate::error::ErrorClass;
    use crate::identity::AppInstanceArn;
    use crate::memory::{ClearAnswer, InMemoryDirectory, MissingAnswer};
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

    const GRACE: u16 = 7;

    #[test]
    fn expiration_days_count_whole_days_rounded_up_plus_the_grace() {
        let created = SystemTime::UNIX_EPOCH + DAY * 20_000;
        let at = |secs: u64| created + Duration::from_secs(secs);
        assert_eq!(expiration_days(created, at(0), GRACE), Ok(7));
        assert_eq!(expiration_days(created, at(1), GRACE), Ok(8));
        assert_eq!(expiration_days(created, at(86_400), GRACE), Ok(8));
        assert_eq!(expiration_days(created, at(86_401), GRACE), Ok(9));
        // A clock behind the directory's: age 0, never a shorter grace.
        assert_eq!(expiration_days(at(5), created, GRACE), Ok(7));
        // The deadline is at least the grace after now, at most a day more.
        for secs in [0, 1, 3_600, 86_399, 86_400, 1_000_000] {
            let days = expiration_days(created, at(secs), GRACE).unwrap();
            let deadline = Expiration { days }.deadline(created);
            let grace = DAY * u32::from(GRACE);
            assert!(deadline >= at(secs) + grace, "{secs}");
            assert!(deadline < at(secs) + grace + DAY, "{secs}");
        }
        let old = expiration_days(created, at(5470 * 86_400), GRACE).unwrap_err();
        assert_eq!(old.class(), ErrorClass::Permanent, "{old}");
        assert_eq!(
            expiration_days(created, at(5468 * 86_400), GRACE),
            Ok(MAX_EXPIRATION_DAYS)
        );
    }

    #[tokio::test]
    async fn a_grace_deletion_expires_the_user_after_the_grace_and_never_grows() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            let ada = profile("Ada", None);
            d.create(&ada).await.unwrap();
            let now = d.users()[0].created_at.unwrap() + Duration::from_secs(1);
            assert_eq!(
                d.remove(&ada.id, DeleteMode::Grace { days: GRACE }, now)
                    .await,
                Ok(Applied::DeletionScheduled)
            );
            let scheduled = d.users()[0].expiration.unwrap();
            assert!(scheduled.is_pending());
            assert_eq!(scheduled.days, GRACE + 1, "age rounds up to one day");
            // Again (a redelivery, the next reconcile run, a day later): no change.
            assert_eq!(
                d.schedule_deletion(&ada.id, GRACE, now + DAY).await,
                Ok(Applied::AlreadyScheduled)
            );
            assert_eq!(d.users()[0].expiration, Some(scheduled));
            // A shorter grace later brings it forward.
            assert_eq!(
                d.schedule_deletion(&ada.id, 1, now).await,
                Ok(Applied::DeletionScheduled)
            );
            assert_eq!(d.users()[0].expiration, Some(Expiration { days: 2 }));
            assert!(d.advance_clock(DAY).is_empty(), "{missing:?}: not yet");
            assert_eq!(
                d.advance_clock(DAY + Duration::from_secs(1)),
                vec![ada.id.clone()]
            );
            assert!(d.users().is_empty());
            // Gone: a deletion of a user already gone succeeds.
            assert_eq!(
                d.remove(&ada.id, DeleteMode::Grace { days: GRACE }, now)
                    .await,
                Ok(Applied::AlreadyGone),
                "{missing:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_rehire_before_expiry_cancels_the_deletion() {
        for missing in MissingAnswer::BOTH {
            let d = directory(missing);
            let ada = profile("Ada", None);
            d.create(&ada).await.unwrap();
            d.schedule_deletion(&ada.id, GRACE, d.now()).await.unwrap();
            // user.created again (same profile): the deletion is cancelled.
            assert_eq!(d.upsert(&ada).await, Ok(Applied::Restored), "{missing:?}");
            assert!(!d.users()[0].deletion_pending());
            d.schedule_deletion(&ada.id, GRACE, d.now()).await.unwrap();
            // user.updated with a new name: renamed and kept.
            assert_eq!(
                d.upsert(&profile("Ada Lovelace", None)).await,
                Ok(Applied::Restored)
            );
            let kept = &d.users()[0];
            assert_eq!(kept.name, "Ada Lovelace");
            assert!(!kept.deletion_pending());
            assert!(d.advance_clock(DAY * 30).is_empty(), "the user stays");
            // A replay finds nothing to cancel.
            assert_eq!(
                d.upsert(&profile("Ada Lovelace", None)).await,
                Ok(Applied::AlreadyProvisioned)
            );
        }
    }

    #[tokio::test]
    async fn clearing_works_whichever_way_chime_answers_a_request_without_settings() {
        for answer in [
            ClearAnswer::Removes,
            ClearAnswer::Rejects,
            ClearAnswer::Ignores,
        ] {
            let d = directory(MissingAnswer::Forbidden);
            d.set_clear_answer(answer);
            let ada = profile("Ada", None);
            d.create(&ada).await.unwrap();
            d.schedule_deletion(&ada.id, GRACE, d.now()).await.unwrap();
            assert_eq!(
                d.clear_expiration(&ada.id).await,
                Ok(Applied::Restored),
                "{answer:?}"
            );
            let user = &d.users()[0];
            assert!(!user.deletion_pending(), "{answer:?}: {user:?}");
            let expected = match answer {
                ClearAnswer::Removes => None,
                ClearAnswer::Rejects | ClearAnswer::Ignores => Some(Expiration::NEVER),
            };
            assert_eq!(user.expiration, expected, "{answer:?}");
            assert!(d.advance_clock(DAY * 3650).is_empty(), "{answer:?}: kept");
            // Cleared once, a user with NEVER is not pending: no second clear.
            assert_eq!(d.upsert(&ada).await, Ok(Applied::AlreadyProvisioned));
        }
    }

    #[tokio::test]
    async fn an_unexplained_403_on_the_describe_never_deletes() {
        let d = directory(MissingAnswer::NotFound);
        let ada = profile("Ada", None);
        d.create(&ada).await.unwrap();
        d.fail_next_for(ada.id.clone(), [forbidden()]);
        let result = d.schedule_deletion(&ada.id, GRACE, d.now()).await;
        assert!(is_retryable_refusal(&result), "{result:?}");
        assert_eq!(d.users()[0].expiration, Some(Expiration::NEVER), "harmless");
        assert!(d.advance_clock(DAY * 365).is_empty());
        // The retry describes it and schedules it properly.
        assert_eq!(
            d.schedule_deletion(&ada.id, GRACE, d.now()).await,
            Ok(Applied::DeletionScheduled)
        );
        // Missing and answered 403 twice: gone.
        let other = UserId::parse("00000000-0000-4000-8000-000000000009").unwrap();
        d.fail_next_for(other.clone(), [forbidden(), forbidden()]);
        assert_eq!(
            d.schedule_deletion(&other, GRACE, d.now()).await,
            Ok(Applied::AlreadyGone)
        );
        // A denied put expiration stays a denial.
        d.fail_next_for(ada.id.clone(), [denied()]);
        assert_eq!(d.clear_expiration(&ada.id).await, Err(denied()));
    }

    #[tokio::test]
    async fn a_directory_that_cannot_set_expirations_refuses_grace_deletions() {
        struct Bare(InMemoryDirectory);
        impl Directory for Bare {
            fn app_instance_arn(&self) -> &AppInstanceArn {
                self.0.app_instance_arn()
            }
            async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
                self.0.create(user).await
            }
            async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
                self.0.describe(id).await
            }
            async fn update(&self, id: &UserId, n: &str, m: &str) -> Result<(), DirectoryError> {
                self.0.update(id, n, m).await
            }
            async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
                self.0.delete(id).await
            }
            async fn list(&self, t: Option<String>) -> Result<DirectoryPage, DirectoryError> {
                self.0.list(t).await
            }
            async fn put_expiration(
                &self,
                _: &UserId,
                _: Option<Expiration>,
            ) -> Result<Option<Expiration>, DirectoryError> {
                Err(DirectoryError::Rejected(
                    "no expiration settings here".to_owned(),
                ))
            }
            fn take_call_stats(&self) -> crate::metrics::CallStats {
                self.0.take_call_stats()
            }
        }
        let d = Bare(directory(MissingAnswer::NotFound));
        let ada = profile("Ada", None);
        d.create(&ada).await.unwrap();
        let result = d.schedule_deletion(&ada.id, GRACE, SystemTime::now()).await;
        assert!(
            matches!(result, Err(DirectoryError::Rejected(_))),
            "{result:?}"
        );
        assert_eq!(d.0.users().len(), 1, "never deleted");
    }
}
