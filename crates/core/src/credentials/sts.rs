//! The [`CredentialIssuer`] port: STS `AssumeRole` on the chat user role,
//! and the request the domain builds for it.
//!
//! What goes into the request is decided here, once: the session is named
//! after the user, tagged `UserUUID = <id>` (the tag the role's policy scopes
//! Chime resources by) and `Issuer = <key>` (which trusted issuer vouched,
//! so CloudTrail shows it), carries the id as `SourceIdentity` (so
//! CloudTrail shows whose session it was, and it cannot be changed by role
//! chaining), and lasts no longer than the token it was exchanged for.

use std::fmt;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::error::ErrorClass;
use crate::identity::UserId;

/// The session tag the chat role's policy reads (`${aws:PrincipalTag/UserUUID}`).
pub const USER_TAG: &str = "UserUUID";
/// The session tag naming the issuer's configured `key` (1–40 of
/// `[a-z0-9._-]`, within STS's tag value rules).
pub const ISSUER_TAG: &str = "Issuer";
/// STS's shortest session.
pub const MIN_SESSION: Duration = Duration::from_secs(900);
/// The longest session: an `AssumeRole` made with a Lambda function's own
/// (assumed-role) credentials is role chaining, which STS caps at one hour.
pub const MAX_SESSION: Duration = Duration::from_secs(3600);

/// One `AssumeRole` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleRequest {
    /// `RoleSessionName`: 2–64 characters of `[\w+=,.@-]`.
    pub role_session_name: String,
    /// `Tags`: exactly `[UserUUID = id, Issuer = key]`.
    pub tags: Vec<(String, String)>,
    /// `SourceIdentity`: the id.
    pub source_identity: String,
    /// `DurationSeconds`.
    pub duration: Duration,
}

impl AssumeRoleRequest {
    /// The request for `user`, lasting `duration` (the caller has already
    /// bounded it by the token's lifetime and [`MIN_SESSION`]..=[`MAX_SESSION`]).
    pub fn for_user(user: &UserId, issuer_key: &str, duration: Duration) -> Self {
        Self {
            role_session_name: role_session_name(user),
            tags: vec![
                (USER_TAG.to_owned(), user.to_string()),
                (ISSUER_TAG.to_owned(), issuer_key.to_owned()),
            ],
            source_identity: user.to_string(),
            duration,
        }
    }
}

/// `RoleSessionName` from the user id: STS allows 2–64 characters of
/// `[A-Za-z0-9_+=,.@-]`. A sub is a lower-case UUID (36 characters), which
/// already fits; anything else is mapped into the alphabet and cut, so the
/// rule holds whatever the id.
pub fn role_session_name(user: &UserId) -> String {
    let mut name: String = user
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

/// Temporary credentials from STS. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

impl fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &"[redacted]")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// Why STS gave no credentials, classified once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IssueError {
    /// Throttled even after the client's retries.
    #[error("STS throttled the request: {0}")]
    Throttled(String),
    /// 5xx, timeouts, lost connections.
    #[error("STS unavailable: {0}")]
    Unavailable(String),
    /// `AccessDenied`: the role's trust policy does not let this function
    /// assume it (with tags), or the role does not exist. A deployment fault.
    #[error("STS denied AssumeRole: {0}")]
    Denied(String),
    /// Any other refusal (bad parameters, region disabled, ...).
    #[error("STS rejected AssumeRole: {0}")]
    Rejected(String),
}

impl IssueError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Throttled(_) | Self::Unavailable(_) => ErrorClass::Retryable,
            Self::Denied(_) | Self::Rejected(_) => ErrorClass::Permanent,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "StsThrottled",
            Self::Unavailable(_) => "StsUnavailable",
            Self::Denied(_) => "StsDenied",
            Self::Rejected(_) => "StsRejected",
        }
    }
}

/// Issues temporary credentials for the chat user role.
pub trait CredentialIssuer: Send + Sync {
    fn assume_role(
        &self,
        request: &AssumeRoleRequest,
    ) -> impl Future<Output = Result<TemporaryCredentials, IssueError>> + Send;
}

impl<T: CredentialIssuer + ?Sized> CredentialIssuer for &T {
    fn assume_role(
        &self,
        request: &AssumeRoleRequest,
    ) -> impl Future<Output = Result<TemporaryCredentials, IssueError>> + Send {
        (**self).assume_role(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_tags_and_identifies_the_user() {
        let user = UserId::parse("6F1C2D3E-0B4A-4C5D-8E9F-A0B1C2D3E4F5").unwrap();
        let r = AssumeRoleRequest::for_user(&user, "okta", Duration::from_secs(1200));
        assert_eq!(r.role_session_name, "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5");
        assert_eq!(
            r.tags,
            vec![
                (
                    "UserUUID".to_owned(),
                    "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5".to_owned()
                ),
                ("Issuer".to_owned(), "okta".to_owned())
            ]
        );
        assert_eq!(r.source_identity, "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5");
        assert_eq!(r.duration, Duration::from_secs(1200));
        let name = &r.role_session_name;
        assert!((2..=64).contains(&name.len()));
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        );
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let c = TemporaryCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: "t0k3n".into(),
            expiration: SystemTime::UNIX_EPOCH,
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("ASIAEXAMPLE"));
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
    }

    #[test]
    fn throttling_and_outages_are_retryable_denials_are_not() {
        for (error, class) in [
            (IssueError::Throttled("x".into()), ErrorClass::Retryable),
            (IssueError::Unavailable("x".into()), ErrorClass::Retryable),
            (IssueError::Denied("x".into()), ErrorClass::Permanent),
            (IssueError::Rejected("x".into()), ErrorClass::Permanent),
        ] {
            assert_eq!(error.class(), class, "{error:?}");
        }
    }
}
