//! Reconcile: bring the directory in line with a full list of who should exist.
//!
//! The triggers cover self sign-ups; users created with `AdminCreateUser`
//! and federated (SAML/OIDC/social) users never fire PostConfirmation, and a
//! deletion in Cognito fires nothing. An operator closes those gaps by
//! exporting the user list (`aws cognito-idp list-users`, or an HR export as
//! JSON lines of schema-v1 `user` objects) and reconciling: missing users are
//! created, renamed ones updated, and — only when asked — users absent from
//! the export deleted.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::directory::{Applied, Directory, DirectoryUser};
use crate::error::{DirectoryError, InputError};
use crate::identity::UserId;
use crate::profile::{DisplayName, DisplayNamePolicy, Metadata, UserProfile};

/// One change the reconcile would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create(UserProfile),
    Update(UserProfile),
    Delete(UserId),
}

impl Action {
    pub fn user_id(&self) -> &UserId {
        match self {
            Self::Create(p) | Self::Update(p) => &p.id,
            Self::Delete(id) => id,
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::Update(_) => "update",
            Self::Delete(_) => "delete",
        }
    }
}

/// What reconcile would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub unchanged: usize,
    /// Users in the directory but not in the export, left alone because
    /// deletion was not asked for.
    pub extra_kept: usize,
}

/// Compare who should exist with who does.
pub fn plan(desired: &[UserProfile], current: &[DirectoryUser], delete_missing: bool) -> Plan {
    let existing: BTreeMap<&UserId, &DirectoryUser> = current.iter().map(|u| (&u.id, u)).collect();
    let wanted: BTreeMap<&UserId, &UserProfile> = desired.iter().map(|p| (&p.id, p)).collect();
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
                    out.actions.push(Action::Update((*want).clone()));
                } else {
                    out.unchanged += 1;
                }
            }
        }
    }
    for id in existing.keys().filter(|id| !wanted.contains_key(*id)) {
        if delete_missing {
            out.actions.push(Action::Delete((*id).clone()));
        } else {
            out.extra_kept += 1;
        }
    }
    out
}

/// Carry out a plan, one action at a time; one failure does not stop the rest.
pub async fn apply<D: Directory>(
    directory: &D,
    plan: &Plan,
) -> Vec<(Action, Result<Applied, DirectoryError>)> {
    let mut results = Vec::with_capacity(plan.actions.len());
    for action in &plan.actions {
        let result = match action {
            Action::Create(p) | Action::Update(p) => directory.upsert(p).await,
            Action::Delete(id) => directory.delete_if_present(id).await,
        };
        results.push((action.clone(), result));
    }
    results
}

/// A user in an export that could not be used, and why (no personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub position: usize,
    pub reason: String,
}

/// Users from `aws cognito-idp list-users --user-pool-id … --output json`.
///
/// Disabled and `UNCONFIRMED` users are left out: the first should not chat,
/// the second get their Chime user when they confirm. Display names follow
/// the same policy as the triggers, falling back to the sub.
pub fn from_cognito_export(
    text: &str,
    names: &DisplayNamePolicy,
) -> Result<(Vec<UserProfile>, Vec<Skipped>), InputError> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| InputError::InvalidJson(e.to_string()))?;
    let users = root
        .get("Users")
        .and_then(Value::as_array)
        .ok_or(InputError::MissingField("Users"))?;
    let mut profiles = Vec::new();
    let mut skipped = Vec::new();
    for (position, user) in users.iter().enumerate() {
        if user.get("Enabled").and_then(Value::as_bool) == Some(false)
            || user.get("UserStatus").and_then(Value::as_str) == Some("UNCONFIRMED")
        {
            continue;
        }
        let attributes: serde_json::Map<String, Value> = user
            .get("Attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| Some((a.get("Name")?.as_str()?.to_owned(), a.get("Value")?.clone())))
            .collect();
        let sub = attributes
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(InputError::MissingField("sub"));
        match sub.and_then(UserId::parse) {
            Ok(id) => {
                let name = names
                    .derive(&attributes)
                    .or_else(|| DisplayName::parse(id.as_str()).ok())
                    .ok_or(InputError::InvalidDisplayName(
                        "no attribute yields a display name",
                    ))?;
                profiles.push(UserProfile {
                    id,
                    name,
                    metadata: None,
                });
            }
            Err(e) => skipped.push(Skipped {
                position,
                reason: e.to_string(),
            }),
        }
    }
    Ok((profiles, skipped))
}

/// Users from JSON lines, each a schema-v1 `user` object
/// (`{"sub": …, "displayName": …, "metadata": …}`); blank lines are ignored.
pub fn from_user_lines(text: &str) -> (Vec<UserProfile>, Vec<Skipped>) {
    let mut profiles = Vec::new();
    let mut skipped = Vec::new();
    for (position, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match parse_user_line(line) {
            Ok(p) => profiles.push(p),
            Err(e) => skipped.push(Skipped {
                position: position + 1,
                reason: e.to_string(),
            }),
        }
    }
    (profiles, skipped)
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

    #[tokio::test]
    async fn plans_creates_updates_and_only_asked_for_deletes() {
        let d = directory();
        for p in [profile(1, "Ada"), profile(2, "Bob"), profile(3, "Cy")] {
            d.create(&p).await.unwrap();
        }
        let desired = [profile(1, "Ada"), profile(2, "Robert"), profile(4, "Di")];
        let current = crate::directory::list_all(&d).await.unwrap();
        let keep = plan(&desired, &current, false);
        assert_eq!(
            keep.actions,
            vec![
                Action::Update(profile(2, "Robert")),
                Action::Create(profile(4, "Di"))
            ]
        );
        assert_eq!((keep.unchanged, keep.extra_kept), (1, 1));
        let full = plan(&desired, &current, true);
        assert_eq!(full.actions.last(), Some(&Action::Delete(id(3))));

        let results = apply(&d, &full).await;
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
        let after = crate::directory::list_all(&d).await.unwrap();
        let names: Vec<_> = after.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["Ada", "Robert", "Di"]);
        // Reconciling again finds nothing to do.
        assert!(plan(&desired, &after, true).actions.is_empty());
    }

    #[tokio::test]
    async fn one_failure_does_not_stop_the_rest() {
        let d = directory();
        d.fail_next([DirectoryError::Throttled("429".into())]);
        let p = plan(&[profile(1, "Ada"), profile(2, "Bob")], &[], false);
        let results = apply(&d, &p).await;
        assert!(results[0].1.is_err());
        assert_eq!(results[1].1, Ok(Applied::Created));
    }

    #[test]
    fn reads_a_cognito_list_users_export() {
        let export = json!({"Users": [
            {"Username": "ada", "Enabled": true, "UserStatus": "CONFIRMED",
             "Attributes": [{"Name": "sub", "Value": id(1).as_str()}, {"Name": "name", "Value": "Ada"},
                            {"Name": "email", "Value": "ada@example.com"}]},
            {"Username": "Google_1", "Enabled": true, "UserStatus": "EXTERNAL_PROVIDER",
             "Attributes": [{"Name": "sub", "Value": id(2).as_str()}]},
            {"Username": "new", "Enabled": true, "UserStatus": "UNCONFIRMED",
             "Attributes": [{"Name": "sub", "Value": id(3).as_str()}]},
            {"Username": "off", "Enabled": false, "UserStatus": "CONFIRMED",
             "Attributes": [{"Name": "sub", "Value": id(4).as_str()}]},
            {"Username": "broken", "Enabled": true, "UserStatus": "CONFIRMED", "Attributes": []}
        ]});
        let (users, skipped) =
            from_cognito_export(&export.to_string(), &DisplayNamePolicy::default()).unwrap();
        assert_eq!(users, vec![profile(1, "Ada"), profile(2, id(2).as_str())]);
        assert_eq!(
            skipped,
            vec![Skipped {
                position: 4,
                reason: "missing field `sub`".into()
            }]
        );
        assert!(from_cognito_export("{}", &DisplayNamePolicy::default()).is_err());
        assert!(from_cognito_export("nope", &DisplayNamePolicy::default()).is_err());
    }

    #[test]
    fn reads_user_lines_and_names_bad_ones() {
        let text = format!(
            "{}\n\n{}\nnot json\n",
            json!({"sub": id(1).as_str(), "displayName": "Ada", "metadata": {"d": 1}}),
            json!({"sub": "x", "displayName": "Bad"})
        );
        let (users, skipped) = from_user_lines(&text);
        assert_eq!(users.len(), 1);
        assert_eq!(
            users[0].metadata.as_ref().map(Metadata::as_str),
            Some(r#"{"d":1}"#)
        );
        assert_eq!(
            skipped.iter().map(|s| s.position).collect::<Vec<_>>(),
            [3, 4]
        );
    }
}
