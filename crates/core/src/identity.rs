//! Who a Chime user is: the Cognito `sub` as [`UserId`] and the AppInstance it
//! lives in as [`AppInstanceArn`].
//!
//! The sub must never differ from the `AppInstanceUserId`: clients and the
//! credential-exchange pattern scope IAM policies by that id, so the id is
//! validated once here and then carried as a type that cannot be wrong.

use std::fmt;

use crate::error::InputError;

/// A validated Cognito `sub`, used verbatim as the Chime `AppInstanceUserId`.
///
/// Accepts exactly Chime's id rules (1–64 characters of
/// `[A-Za-z0-9]([A-Za-z0-9:\-_.@]{0,62}[A-Za-z0-9])?`) *and* requires the UUID
/// shape Cognito gives every sub. Upper-case hex is folded to lower case, as
/// Cognito writes it, so one person can never become two Chime users.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        if raw.is_empty() {
            return Err(InputError::InvalidUserId("it is empty"));
        }
        if raw.chars().count() > 64 {
            return Err(InputError::InvalidUserId("it is longer than 64 characters"));
        }
        if !matches_chime_id_pattern(raw) {
            return Err(InputError::InvalidUserId(
                "it does not match Chime's AppInstanceUserId pattern",
            ));
        }
        if !is_uuid(raw) {
            return Err(InputError::InvalidUserId(
                "it is not a Cognito sub (a UUID like 6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5)",
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The per-user part of the `ClientRequestToken` (`sync-{sub}`); the full
    /// token adds a digest of what is asked for, see
    /// [`UserProfile::client_request_token`](crate::profile::UserProfile::client_request_token).
    /// Valid by construction: `sync-` plus a UUID is 41 characters of `[-a-z0-9]`.
    pub fn client_request_token(&self) -> String {
        format!("sync-{}", self.0)
    }
}

/// The AppInstanceUserId of a person whose identity provider's id is not a
/// UUID (Okta `00u…`, Auth0 `auth0|…`): UUID v5 (RFC 9562) of `value` in the
/// namespace that is itself UUID v5 of `namespace` in the URL namespace:
///
/// ```text
/// id = uuid_v5(uuid_v5(NAMESPACE_URL, namespace), value)
/// ```
///
/// Deterministic, so every source that knows the same pair (the credential
/// exchange from a token, SCIM from `externalId`, an HR feed, LDAP) computes
/// the same Chime user; and the namespace keeps two identity providers'
/// users apart even when their ids collide. `namespace` is the issuer URL
/// unless configured otherwise (`idNamespace`); `value` is used byte for byte.
pub fn derived_user_id(namespace: &str, value: &str) -> UserId {
    let space = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, namespace.as_bytes());
    UserId(
        uuid::Uuid::new_v5(&space, value.as_bytes())
            .hyphenated()
            .to_string(),
    )
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Chime's `AppInstanceUserId` pattern, written out by hand because it is
/// small and a regex engine would cost cold-start time for one check.
fn matches_chime_id_pattern(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '@');
    let mut chars = s.chars();
    match (chars.next(), chars.next_back()) {
        (Some(first), None) => edge(first),
        (Some(first), Some(last)) => edge(first) && edge(last) && chars.all(inner),
        (None, _) => false,
    }
}

fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Chime's ARN pattern allows at most 63 characters in partition, service,
/// region and account.
const MAX_ARN_FIELD: usize = 63;
/// Chime allows at most 1024 characters after the account; a user ARN spends
/// `app-instance/`, `/user/` and a 36-character sub of them.
const MAX_APP_INSTANCE_ID: usize = 1024 - "app-instance/".len() - "/user/".len() - 36;

/// A validated `arn:{partition}:chime:{region}:{account}:app-instance/{id}`.
///
/// Checked at start-up so that a typo in configuration stops the function
/// with a clear message instead of failing every user later. Within Chime's
/// ARN pattern (`arn:[a-z0-9-\.]{1,63}:…:[^/].{0,1023}`, at most 1600 long),
/// for this ARN and for every user ARN built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInstanceArn {
    arn: String,
    region: String,
}

impl AppInstanceArn {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let raw = raw.trim();
        let parts: Vec<&str> = raw.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(InputError::InvalidAppInstanceArn(
                "expected arn:aws:chime:REGION:ACCOUNT:app-instance/ID",
            ));
        };
        if prefix != "arn" || !partition.starts_with("aws") {
            return Err(InputError::InvalidAppInstanceArn(
                "it must start with arn:aws",
            ));
        }
        if partition.len() > MAX_ARN_FIELD
            || !partition
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(InputError::InvalidAppInstanceArn(
                "the partition is malformed (aws, aws-cn, aws-us-gov, ...)",
            ));
        }
        if service != "chime" {
            return Err(InputError::InvalidAppInstanceArn(
                "the service must be chime",
            ));
        }
        if region.is_empty()
            || region.len() > MAX_ARN_FIELD
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(InputError::InvalidAppInstanceArn(
                "the region is missing or malformed",
            ));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InputError::InvalidAppInstanceArn(
                "the account must be 12 digits",
            ));
        }
        let Some(id) = resource.strip_prefix("app-instance/") else {
            return Err(InputError::InvalidAppInstanceArn(
                "the resource must be app-instance/ID",
            ));
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(InputError::InvalidAppInstanceArn(
                "the AppInstance id is missing or malformed",
            ));
        }
        if id.len() > MAX_APP_INSTANCE_ID {
            return Err(InputError::InvalidAppInstanceArn(
                "the AppInstance id is too long for Chime's user ARNs",
            ));
        }
        Ok(Self {
            arn: raw.to_owned(),
            region: region.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The region the AppInstance lives in; the Chime client must use it.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `{AppInstanceArn}/user/{sub}`: the ARN clients are given.
    pub fn user_arn(&self, id: &UserId) -> String {
        format!("{}/user/{}", self.arn, id)
    }

    /// The user id at the end of a user ARN of this AppInstance, if it is one.
    pub fn user_id_from_arn(&self, user_arn: &str) -> Option<UserId> {
        let rest = user_arn.strip_prefix(self.arn.as_str())?;
        UserId::parse(rest.strip_prefix("/user/")?).ok()
    }
}

impl fmt::Display for AppInstanceArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/CREDENTIALS.md, computed
    /// independently with Python's `uuid.uuid5` (RFC 9562): any source that
    /// follows the documented rule lands on the same Chime user.
    #[test]
    fn derived_ids_follow_the_documented_uuid_v5_rule() {
        let id = derived_user_id(
            "https://example.okta.com/oauth2/default",
            "00u1ab2cd3EF4gh5i6j7",
        );
        assert_eq!(id.as_str(), "a133749c-b724-5fb5-a123-0fc961af5589");
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id, "a valid id");
        assert_ne!(
            derived_user_id(
                "https://other.okta.com/oauth2/default",
                "00u1ab2cd3EF4gh5i6j7"
            ),
            id,
            "another namespace, another user"
        );
    }

    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";
    const ARN: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/abcd-1234";

    #[test]
    fn accepts_a_cognito_sub() {
        assert_eq!(
            UserId::parse(SUB).map(|u| u.to_string()),
            Ok(SUB.to_owned())
        );
    }

    #[test]
    fn folds_upper_case_subs_to_the_cognito_form() {
        let upper = SUB.to_ascii_uppercase();
        assert_eq!(
            UserId::parse(&upper).map(|u| u.to_string()),
            Ok(SUB.to_owned())
        );
    }

    #[test]
    fn rejects_ids_chime_would_reject() {
        let cases = [
            ("", "empty"),
            (&"a".repeat(65), "longer than 64"),
            ("-6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f", "pattern"),
            ("6f1c2d3e 0b4a 4c5d 8e9f a0b1c2d3e4f5", "pattern"),
            ("6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5.", "pattern"),
        ];
        for (raw, why) in cases {
            match UserId::parse(raw) {
                Err(InputError::InvalidUserId(msg)) => assert!(msg.contains(why), "{raw}: {msg}"),
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_valid_chime_ids_that_are_not_subs() {
        for raw in [
            "ada",
            "ada@example.com",
            "6f1c2d3e0b4a4c5d8e9fa0b1c2d3e4f5",
            "x",
        ] {
            match UserId::parse(raw) {
                Err(InputError::InvalidUserId(msg)) => {
                    assert!(msg.contains("UUID"), "{raw}: {msg}")
                }
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn chime_pattern_edges() {
        assert!(matches_chime_id_pattern("a"));
        assert!(matches_chime_id_pattern("a.b@c:d_e-f"));
        assert!(!matches_chime_id_pattern("_"));
        assert!(!matches_chime_id_pattern("ab_"));
        assert!(!matches_chime_id_pattern("a/b"));
    }

    #[test]
    fn request_token_is_deterministic_and_valid_for_chime() {
        let id = UserId::parse(SUB).unwrap();
        let token = id.client_request_token();
        assert_eq!(token, UserId::parse(SUB).unwrap().client_request_token());
        assert!((2..=64).contains(&token.len()));
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn app_instance_arn_builds_user_arns_and_reads_them_back() {
        let arn = AppInstanceArn::parse(ARN).unwrap();
        assert_eq!(arn.region(), "us-east-1");
        let id = UserId::parse(SUB).unwrap();
        let user_arn = arn.user_arn(&id);
        assert_eq!(user_arn, format!("{ARN}/user/{SUB}"));
        assert_eq!(arn.user_id_from_arn(&user_arn), Some(id));
        assert_eq!(
            arn.user_id_from_arn("arn:aws:chime:us-east-1:1:app-instance/x/user/y"),
            None
        );
    }

    #[test]
    fn app_instance_arn_parts_stay_within_chime_limits() {
        let arn = |region: &str, id: &str| {
            format!("arn:aws:chime:{region}:123456789012:app-instance/{id}")
        };
        assert!(AppInstanceArn::parse(&arn(&"r".repeat(63), "a")).is_ok());
        assert!(AppInstanceArn::parse(&arn(&"r".repeat(64), "a")).is_err());
        let longest = AppInstanceArn::parse(&arn("us-east-1", &"a".repeat(969))).unwrap();
        let user_arn = longest.user_arn(&UserId::parse(SUB).unwrap());
        let resource = user_arn.splitn(6, ':').nth(5).unwrap();
        assert_eq!(resource.len(), 1024, "Chime's limit, exactly");
        assert!(AppInstanceArn::parse(&arn("us-east-1", &"a".repeat(970))).is_err());
    }

    #[test]
    fn app_instance_arn_rejects_each_malformed_part() {
        let cases = [
            ("", "expected arn"),
            ("arn:aws:chime:us-east-1:123456789012", "expected arn"),
            (
                "urn:aws:chime:us-east-1:123456789012:app-instance/a",
                "arn:aws",
            ),
            ("arn:aws:sqs:us-east-1:123456789012:app-instance/a", "chime"),
            ("arn:aws:chime::123456789012:app-instance/a", "region"),
            ("arn:aws:chime:us-east-1:1234:app-instance/a", "12 digits"),
            (
                "arn:aws:chime:us-east-1:123456789012:channel/a",
                "app-instance/ID",
            ),
            (
                "arn:aws:chime:us-east-1:123456789012:app-instance/",
                "AppInstance id",
            ),
            // Found by tests/fuzz.rs: accepted, then refused by Chime on every call.
            (
                "arn:awsA:chime:us-east-1:123456789012:app-instance/a",
                "partition",
            ),
            (
                "arn:aws :chime:us-east-1:123456789012:app-instance/a",
                "partition",
            ),
        ];
        for (raw, why) in cases {
            match AppInstanceArn::parse(raw) {
                Err(InputError::InvalidAppInstanceArn(msg)) => {
                    assert!(msg.contains(why), "{raw}: {msg}")
                }
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
    }
}
