//! The reconcile planner: what brings the directory in line with the full
//! list of who should exist. Planned here once, for the operator's
//! `chime-sync reconcile` command and the scheduled reconcile function's
//! handler (`handlers::reconcile`) alike; the guard ([`guard`]) and the
//! breaker ([`DeleteBreaker`]) judge the plan before either acts on it.
//!
//! The triggers cover self sign-ups; users created with `AdminCreateUser`
//! and federated (SAML/OIDC/social) users never fire PostConfirmation, and a
//! deletion in Cognito fires nothing. Reconcile closes those gaps from the
//! pool itself (read live), a `list-users` export, or an HR export (JSON lines
//! of schema-v1 `user` objects): missing users are created, renamed ones
//! updated, and users no longer wanted deleted.
//!
//! Deletions are where reconciles do harm, so guards stand before them:
//! - input that may be partial is refused ([`check_complete`], [`Refusal`]):
//!   an export page that ends with a pagination token, an empty list, an
//!   entry that cannot be read (that user would be deleted);
//! - ids that are not ours are never touched: ids that are not subs (the
//!   adapter leaves them out of the listing) and protected ids;
//! - [`guard`]: the ownership and time rules (a source's absence deletes
//!   only what it owns), deletions under way or of users created after the
//!   pass began left out, and pending deletions of users who are back
//!   cancelled;
//! - a breaker ([`DeleteBreaker`]) withholds every deletion of a run that
//!   plans more than `max(limit, percent × Chime users)` of them.

pub mod guard;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use thiserror::Error;

use crate::directory::{Applied, DeleteMode, Directory, DirectoryUser};
use crate::error::{DirectoryError, InputError};
use crate::identity::UserId;
use crate::profile::{DisplayName, DisplayNamePolicy, Metadata, UserProfile};
use crate::provisioning::Provisioning;
use crate::schema::IdentityEvent;
use crate::user_pool::{ActivePolicy, PoolUser, Sorted};

/// One change a reconcile makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create(UserProfile),
    /// `have` is the user as listed: the plan shows old → new from it.
    Update {
        want: UserProfile,
        have: DirectoryUser,
    },
    /// A user whose deletion is pending and who is wanted again: an update,
    /// which cancels the deletion (and brings name and metadata in line).
    Restore {
        want: UserProfile,
        have: DirectoryUser,
    },
    /// The user as listed, or as described when the guard screened it.
    Delete(DirectoryUser),
}

impl Action {
    pub fn user_id(&self) -> &UserId {
        match self {
            Self::Create(p) | Self::Update { want: p, .. } | Self::Restore { want: p, .. } => &p.id,
            Self::Delete(u) => &u.id,
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::Update { .. } => "update",
            Self::Restore { .. } => "restore",
            Self::Delete(_) => "delete",
        }
    }

    /// The IAM action the change calls first (named in a denial's explanation).
    pub fn iam_action(&self, mode: DeleteMode) -> &'static str {
        match (self, mode) {
            (Self::Create(_), _) => "chime:CreateAppInstanceUser",
            (Self::Update { .. }, _) => "chime:UpdateAppInstanceUser",
            (Self::Restore { .. }, _) => "chime:DescribeAppInstanceUser",
            (Self::Delete(_), DeleteMode::Immediate) => "chime:DeleteAppInstanceUser",
            (Self::Delete(_), DeleteMode::Grace { .. }) => {
                "chime:PutAppInstanceUserExpirationSettings"
            }
        }
    }

    /// The schema-v1 event that asks idp-sync for this change.
    pub fn event(&self) -> IdentityEvent {
        match self {
            Self::Create(p) => IdentityEvent::Provision(p.clone()),
            Self::Update { want, .. } | Self::Restore { want, .. } => {
                IdentityEvent::Update(want.clone())
            }
            Self::Delete(u) => IdentityEvent::Deprovision(u.id.clone()),
        }
    }
}

/// What a plan may do.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// Delete Chime users that are not wanted (the CLI's `--delete-missing`;
    /// always for the function).
    pub delete_missing: bool,
    /// Ids never deleted (`PROTECTED_USER_IDS`).
    pub protected: &'a BTreeSet<String>,
}

/// What reconcile would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Creates and updates by id, then deletions by id.
    pub actions: Vec<Action>,
    pub unchanged: usize,
    /// Users only in Chime, kept because deletion was not asked for.
    pub extra_kept: usize,
    /// Users only in Chime, kept because their id is protected.
    pub protected_kept: usize,
}

impl Plan {
    /// How many actions have this verb.
    pub fn count(&self, verb: &str) -> usize {
        self.actions.iter().filter(|a| a.verb() == verb).count()
    }

    pub fn deletions(&self) -> usize {
        self.count("delete")
    }

    /// Take the deletions out of the plan (the breaker withholds them).
    pub fn take_deletions(&mut self) -> Vec<Action> {
        let (deletions, rest) = std::mem::take(&mut self.actions)
            .into_iter()
            .partition(|a| matches!(a, Action::Delete(_)));
        self.actions = rest;
        deletions
    }
}

/// Compare who should exist with who does. An update is planned when the
/// name differs, or the metadata differs where the desired profile has some
/// (`None` keeps what the user has: the Cognito sources carry none).
pub fn plan<'a>(
    desired: impl IntoIterator<Item = &'a UserProfile>,
    current: &[DirectoryUser],
    options: PlanOptions<'_>,
) -> Plan {
    let wanted: BTreeMap<&UserId, &UserProfile> = desired.into_iter().map(|p| (&p.id, p)).collect();
    let existing: BTreeMap<&UserId, &DirectoryUser> = current.iter().map(|u| (&u.id, u)).collect();
    let mut out = Plan::default();
    for (id, want) in &wanted {
        match existing.get(id) {
            None => out.actions.push(Action::Create((*want).clone())),
            Some(have) => {
                let metadata_differs = want
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.as_str() != have.metadata);
                if have.name != want.name.as_str() || metadata_differs {
                    out.actions.push(Action::Update {
                        want: (*want).clone(),
                        have: (*have).clone(),
                    });
                } else {
                    out.unchanged += 1;
                }
            }
        }
    }
    for (id, have) in existing.iter().filter(|(id, _)| !wanted.contains_key(*id)) {
        if options.protected.contains(id.as_str()) {
            out.protected_kept += 1;
        } else if options.delete_missing {
            out.actions.push(Action::Delete((*have).clone()));
        } else {
            out.extra_kept += 1;
        }
    }
    out
}

/// The mass-delete breaker: a run may delete at most
/// `max(limit, percent % of the Chime users)` (`DELETE_LIMIT`,
/// `DELETE_LIMIT_PERCENT`; defaults 50 and 5 %). Beyond that it deletes
/// nothing, until an operator releases the deletions (`--allow-deletes N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteBreaker {
    pub limit: usize,
    pub percent: u8,
}

impl Default for DeleteBreaker {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            percent: Self::DEFAULT_PERCENT,
        }
    }
}

/// What the breaker decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerVerdict {
    /// At or under what a run may delete.
    Within { allowed: usize },
    /// Over it, and an operator released at least this many.
    Released { allowed: usize, released: usize },
    /// Over it: no deletion goes ahead.
    Tripped { planned: usize, allowed: usize },
}

impl BreakerVerdict {
    pub fn tripped(self) -> bool {
        matches!(self, Self::Tripped { .. })
    }
}

impl DeleteBreaker {
    pub const DEFAULT_LIMIT: usize = 50;
    pub const DEFAULT_PERCENT: u8 = 5;

    /// How many deletions a run may make with `chime_users` users in Chime
    /// (the percentage rounds down).
    pub fn allowed(&self, chime_users: usize) -> usize {
        let share = chime_users.saturating_mul(usize::from(self.percent)) / 100;
        self.limit.max(share)
    }

    /// `planned` deletions among `chime_users`, with `released` deletions
    /// released by an operator (the count they confirmed, which must cover
    /// the plan).
    pub fn judge(
        &self,
        planned: usize,
        chime_users: usize,
        released: Option<usize>,
    ) -> BreakerVerdict {
        let allowed = self.allowed(chime_users);
        match released {
            _ if planned <= allowed => BreakerVerdict::Within { allowed },
            Some(released) if released >= planned => BreakerVerdict::Released { allowed, released },
            _ => BreakerVerdict::Tripped { planned, allowed },
        }
    }
}

/// Apply one change, deciding from the listed state: a create creates (a
/// Conflict resolves as already there), an update updates, a deletion
/// deletes or schedules the deletion. No describe before a create.
pub async fn apply_one<D: Directory>(
    directory: &D,
    action: &Action,
    mode: DeleteMode,
    now: std::time::SystemTime,
) -> Result<Applied, DirectoryError> {
    match (action, mode) {
        (Action::Create(p), _) => directory.create_or_resolve(p).await,
        (Action::Update { want, have }, _) => directory.update_listed(want, have).await,
        // Reads first: the describe shows the expiration the update cancels.
        (Action::Restore { want, .. }, _) => directory.upsert(want).await,
        (Action::Delete(user), DeleteMode::Immediate) => {
            directory.delete_if_present(&user.id).await
        }
        (Action::Delete(user), DeleteMode::Grace { days }) if user.created_at.is_some() => {
            directory.schedule_deletion_of(user, days, now).await
        }
        (Action::Delete(user), DeleteMode::Grace { days }) => {
            directory.schedule_deletion(&user.id, days, now).await
        }
    }
}

/// Input that cannot be trusted to be complete, refused before anything is
/// planned. Each is one line that says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error(
        "page {page} of the export ends with `{field}`: it is one page of several, and the users \
         of the other pages would be deleted. Export every page (`aws cognito-idp list-users` \
         without --max-items pages through all of them), or pass each page (--cognito-export \
         once per file, or the pages one after another in one file)"
    )]
    Paginated { page: usize, field: &'static str },
    #[error(
        "the input lists no users: refusing to reconcile from an empty list (every Chime user \
         would be deleted)"
    )]
    Empty,
    #[error(
        "{count} entries cannot be used (first: {first}): refusing, because a user whose entry \
         cannot be read would be deleted. Fix or remove those entries"
    )]
    Unusable { count: usize, first: String },
    #[error(
        "this is a Cognito list-users export (it has `Users`), not JSON lines of user objects: \
         pass it with --cognito-export"
    )]
    CognitoExportAsUserLines,
    #[error("{0}")]
    Input(InputError),
}

/// Refuse a list that is empty or holds users that could not be used.
pub fn check_complete(sorted: &Sorted) -> Result<(), Refusal> {
    if sorted.read == 0 {
        return Err(Refusal::Empty);
    }
    match sorted.unusable.first() {
        Some(first) => Err(Refusal::Unusable {
            count: sorted.unusable.len(),
            first: first.clone(),
        }),
        None => Ok(()),
    }
}

/// The JSON values of `text`: one, or several written one after another
/// (pages concatenated into one file).
pub fn json_values(text: &str) -> Result<Vec<Value>, Refusal> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Refusal::Input(InputError::InvalidJson(e.to_string())))
}

/// Users from pages of `aws cognito-idp list-users --output json`, in order.
/// Every page but the last may carry a pagination token (`PaginationToken`,
/// or the CLI's `NextToken`); the last may not, or the export stopped early.
pub fn from_cognito_pages(
    pages: &[Value],
    active: &ActivePolicy,
    names: &DisplayNamePolicy,
) -> Result<Sorted, Refusal> {
    let mut sorted = Sorted::default();
    for (index, page) in pages.iter().enumerate() {
        let number = index + 1;
        let users = page
            .get("Users")
            .and_then(Value::as_array)
            .ok_or(Refusal::Input(InputError::MissingField("Users")))?;
        if number == pages.len() {
            for field in ["PaginationToken", "NextToken"] {
                if page.get(field).is_some_and(|t| !t.is_null()) {
                    return Err(Refusal::Paginated {
                        page: number,
                        field,
                    });
                }
            }
        }
        for (index, user) in users.iter().enumerate() {
            sorted.add_one(&PoolUser::from_json(user), active, names, || {
                format!("page {number}, entry {}", index + 1)
            });
        }
    }
    Ok(sorted)
}

/// Users from JSON lines, each a schema-v1 `user` object
/// (`{"sub": …, "displayName": …, "metadata": …}`); blank lines are ignored.
/// A Cognito export given here by mistake is refused as such.
pub fn from_user_lines(text: &str) -> Result<Sorted, Refusal> {
    if let Ok(Value::Object(whole)) = serde_json::from_str::<Value>(text)
        && whole.contains_key("Users")
    {
        return Err(Refusal::CognitoExportAsUserLines);
    }
    let mut sorted = Sorted::default();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        sorted.read += 1;
        match parse_user_line(line) {
            Ok(p) => {
                sorted.active.insert(p.id.clone(), p);
            }
            Err(e) => sorted.unusable.push(format!("line {}: {e}", index + 1)),
        }
    }
    Ok(sorted)
}

fn parse_user_line(line: &str) -> Result<UserProfile, InputError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| InputError::InvalidJson(e.to_string()))?;
    let text = |key: &'static str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .ok_or(InputError::MissingField(key))
    };
    Ok(UserProfile {
        id: UserId::parse(text("sub")?)?,
        name: DisplayName::parse(text("displayName")?)?,
        metadata: value.get("metadata").map(Metadata::from_json).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::AppInstanceArn;
    use crate::memory::InMemoryDirectory;

    fn id(n: u32) -> UserId {
        UserId::parse(&format!("00000000-0000-4000-8000-{n:012}")).unwrap()
    }

    fn profile(n: u32, name: &str) -> UserProfile {
        UserProfile {
            id: id(n),
            name: DisplayName::parse(name).unwrap(),
            metadata: None,
        }
    }

    fn directory() -> InMemoryDirectory {
        InMemoryDirectory::new(
            AppInstanceArn::parse("arn:aws:chime:us-east-1:123456789012:app-instance/r").unwrap(),
        )
    }

    fn options(delete_missing: bool, protected: &BTreeSet<String>) -> PlanOptions<'_> {
        PlanOptions {
            delete_missing,
            protected,
        }
    }

    async fn apply_all(
        d: &InMemoryDirectory,
        actions: Vec<Action>,
        mode: DeleteMode,
    ) -> Vec<(Action, Result<Applied, DirectoryError>)> {
        let mut out = Vec::new();
        for action in actions {
            let result = apply_one(d, &action, mode, d.now()).await;
            out.push((action, result));
        }
        out.sort_by(|a, b| a.0.user_id().cmp(b.0.user_id()));
        out
    }

    #[tokio::test]
    async fn plans_creates_updates_and_only_asked_for_deletes() {
        let d = directory();
        for p in [
            profile(1, "Ada"),
            profile(2, "Bob"),
            profile(3, "Cy"),
            profile(5, "Eve"),
        ] {
            d.create(&p).await.unwrap();
        }
        let desired = [profile(1, "Ada"), profile(2, "Robert"), profile(4, "Di")];
        let current = crate::directory::list_all(&d).await.unwrap();
        let protected = BTreeSet::from([id(5).to_string()]);
        let keep = plan(&desired, &current, options(false, &protected));
        assert_eq!(keep.actions.len(), 2);
        assert!(
            matches!(&keep.actions[0], Action::Update { want, have } if want.name.as_str() == "Robert" && have.name == "Bob")
        );
        assert_eq!(keep.actions[1], Action::Create(profile(4, "Di")));
        assert_eq!(
            (keep.unchanged, keep.extra_kept, keep.protected_kept),
            (1, 1, 1)
        );
        let full = plan(&desired, &current, options(true, &protected));
        assert_eq!(full.deletions(), 1, "the protected user is never planned");
        assert_eq!(full.actions.last().map(Action::user_id), Some(&id(3)));

        let results = apply_all(&d, full.actions.clone(), DeleteMode::Immediate).await;
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        let after = crate::directory::list_all(&d).await.unwrap();
        let names: Vec<_> = after.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["Ada", "Robert", "Di", "Eve"]);
        assert!(
            plan(&desired, &after, options(true, &protected))
                .actions
                .is_empty()
        );
    }

    #[tokio::test]
    async fn applying_decides_from_the_listed_state_one_call_per_change() {
        let d = directory();
        d.create(&profile(2, "Bob")).await.unwrap();
        d.create(&profile(3, "Cy")).await.unwrap();
        let current = crate::directory::list_all(&d).await.unwrap();
        let before = d.calls();
        let p = plan(
            &[profile(1, "Ada"), profile(2, "Robert")],
            &current,
            options(true, &BTreeSet::new()),
        );
        let results = apply_all(&d, p.actions, DeleteMode::Immediate).await;
        let outcomes: Vec<_> = results
            .iter()
            .map(|(a, r)| (a.verb(), *r.as_ref().unwrap()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("create", Applied::Created),
                ("update", Applied::Updated),
                ("delete", Applied::Deleted)
            ]
        );
        assert_eq!(
            d.calls() - before,
            3,
            "no describe before a create or an update"
        );
    }

    #[tokio::test]
    async fn one_failure_does_not_stop_the_rest() {
        let d = directory();
        d.fail_next_for(id(1), [DirectoryError::Throttled("429".into())]);
        let p = plan(
            &[profile(1, "Ada"), profile(2, "Bob")],
            &[],
            options(false, &BTreeSet::new()),
        );
        let results = apply_all(&d, p.actions, DeleteMode::Immediate).await;
        assert!(results[0].1.is_err());
        assert_eq!(results[1].1, Ok(Applied::Created));
    }

    #[test]
    fn the_breaker_trips_above_its_limit_and_a_release_must_cover_the_plan() {
        let b = DeleteBreaker::default();
        assert_eq!(b.allowed(100), 50);
        assert_eq!(b.allowed(1_000), 50);
        assert_eq!(b.allowed(1_019), 50);
        assert_eq!(b.allowed(1_020), 51);
        assert_eq!(b.allowed(100_000), 5_000);
        assert_eq!(
            b.judge(50, 100, None),
            BreakerVerdict::Within { allowed: 50 }
        );
        assert_eq!(
            b.judge(51, 100, None),
            BreakerVerdict::Tripped {
                planned: 51,
                allowed: 50
            }
        );
        assert_eq!(
            b.judge(5_000, 100_000, None),
            BreakerVerdict::Within { allowed: 5_000 }
        );
        assert!(b.judge(5_001, 100_000, None).tripped());
        assert_eq!(
            b.judge(51, 100, Some(51)),
            BreakerVerdict::Released {
                allowed: 50,
                released: 51
            }
        );
        assert!(
            b.judge(52, 100, Some(51)).tripped(),
            "a release covers a count, not more"
        );
        let none = DeleteBreaker {
            limit: 0,
            percent: 0,
        };
        assert!(none.judge(1, 1_000_000, None).tripped());
        assert!(!none.judge(0, 0, None).tripped());
    }

    fn cognito_user(sub: Option<&str>, status: &str, enabled: bool) -> Value {
        let mut attributes = vec![json!({"Name": "email", "Value": "x@example.com"})];
        if let Some(sub) = sub {
            attributes.push(json!({"Name": "sub", "Value": sub}));
        }
        json!({"Username": "u", "Enabled": enabled, "UserStatus": status, "Attributes": attributes})
    }

    #[test]
    fn reads_cognito_pages_and_refuses_one_that_stops_early() {
        let page1 = json!({"Users": [cognito_user(Some(id(1).as_str()), "CONFIRMED", true)], "NextToken": "abc"});
        let page2 = json!({"Users": [
            cognito_user(Some(id(2).as_str()), "EXTERNAL_PROVIDER", true),
            cognito_user(Some(id(3).as_str()), "UNCONFIRMED", true),
            cognito_user(Some(id(4).as_str()), "CONFIRMED", false),
        ]});
        let (active, names) = (ActivePolicy::default(), DisplayNamePolicy::default());
        let sorted = from_cognito_pages(&[page1.clone(), page2.clone()], &active, &names).unwrap();
        assert_eq!(
            sorted.active.keys().cloned().collect::<Vec<_>>(),
            [id(1), id(2)]
        );
        assert_eq!(sorted.active[&id(1)].name.as_str(), "x", "email local part");
        assert_eq!(sorted.left_out.total(), 2);
        assert_eq!(check_complete(&sorted), Ok(()));
        assert_eq!(
            from_cognito_pages(&[page2.clone(), page1.clone()], &active, &names),
            Err(Refusal::Paginated {
                page: 2,
                field: "NextToken"
            })
        );
        let token = json!({"Users": [], "PaginationToken": "t"});
        assert!(matches!(
            from_cognito_pages(&[token], &active, &names),
            Err(Refusal::Paginated {
                page: 1,
                field: "PaginationToken"
            })
        ));
        // Concatenated in one file.
        let text = format!("{page1}\n{page2}");
        assert_eq!(json_values(&text).unwrap().len(), 2);
        assert!(json_values("{oops").is_err());
    }

    #[test]
    fn an_unusable_entry_or_an_empty_list_is_refused() {
        let (active, names) = (ActivePolicy::default(), DisplayNamePolicy::default());
        let page = json!({"Users": [
            cognito_user(Some(id(1).as_str()), "CONFIRMED", true),
            cognito_user(None, "CONFIRMED", true),
            cognito_user(None, "UNCONFIRMED", true),
        ]});
        let sorted = from_cognito_pages(&[page], &active, &names).unwrap();
        let refusal = check_complete(&sorted).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Unusable {
                count: 1,
                first: "page 1, entry 2: missing attribute `sub`".into()
            }
        );
        assert!(
            refusal.to_string().contains("would be deleted"),
            "{refusal}"
        );
        let empty = from_cognito_pages(&[json!({"Users": []})], &active, &names).unwrap();
        assert_eq!(check_complete(&empty), Err(Refusal::Empty));
        assert!(from_cognito_pages(&[json!({})], &active, &names).is_err());
    }

    #[test]
    fn reads_user_lines_and_names_bad_ones() {
        let text = format!(
            "{}\n\n{}\nnot json\n",
            json!({"sub": id(1).as_str(), "displayName": "Ada", "metadata": {"d": 1}}),
            json!({"sub": "x", "displayName": "Bad"})
        );
        let sorted = from_user_lines(&text).unwrap();
        assert_eq!(sorted.active.len(), 1);
        assert_eq!(
            sorted.active[&id(1)]
                .metadata
                .as_ref()
                .map(Metadata::as_str),
            Some(r#"{"d":1}"#)
        );
        assert_eq!(sorted.read, 3);
        assert!(
            sorted.unusable[0].starts_with("line 3:"),
            "{:?}",
            sorted.unusable
        );
        assert!(sorted.unusable[1].starts_with("line 4:"));
        assert!(check_complete(&sorted).is_err());
        let export = json!({"Users": [cognito_user(Some(id(1).as_str()), "CONFIRMED", true)]});
        assert_eq!(
            from_user_lines(&export.to_string()),
            Err(Refusal::CognitoExportAsUserLines)
        );
        assert_eq!(
            check_complete(&from_user_lines("\n\n").unwrap()),
            Err(Refusal::Empty)
        );
    }
}
