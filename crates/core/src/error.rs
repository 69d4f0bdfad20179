//! Every error this system can meet, classified once as retryable or permanent.
//!
//! Handlers never look at error details to decide what to do: they ask
//! [`SyncError::class`]. Retryable errors go back to the caller (SQS redelivers,
//! Cognito retries, post-confirmation hands the work to the queue); permanent
//! errors mean the input itself is at fault and retrying would only storm, so
//! they are dead-lettered with their reason.

use thiserror::Error;

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A later attempt may succeed (throttling, 5xx, timeouts, lost connections).
    Retryable,
    /// The same input will fail the same way: dead-letter it with the reason.
    Permanent,
}

/// Input that cannot become a valid Chime user or a valid sync message.
///
/// Messages name the field at fault but never echo personal data (names,
/// emails), because they end up in logs, DLQ attributes and client errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` has the wrong type: expected {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("unsupported schema version {0}: this consumer reads version 1")]
    UnsupportedVersion(String),
    #[error("unknown event type `{0}`: expected user.created, user.updated or user.deleted")]
    UnknownType(String),
    #[error("invalid user id (sub): {0}")]
    InvalidUserId(&'static str),
    #[error("invalid display name: {0}")]
    InvalidDisplayName(&'static str),
    #[error("metadata is {0} characters long; Chime allows at most 1024")]
    MetadataTooLong(usize),
    #[error("invalid AppInstance ARN: {0}")]
    InvalidAppInstanceArn(&'static str),
    #[error("invalid source: {0}")]
    InvalidSource(&'static str),
    #[error("field `{0}` is not an RFC 3339 timestamp (like 2026-11-20T10:00:00Z)")]
    InvalidTimestamp(&'static str),
}

impl InputError {
    /// A short stable code for logs, metrics and the DLQ `ErrorCode` attribute.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "InvalidJson",
            Self::MissingField(_) => "MissingField",
            Self::WrongType { .. } => "WrongType",
            Self::UnsupportedVersion(_) => "UnsupportedVersion",
            Self::UnknownType(_) => "UnknownType",
            Self::InvalidUserId(_) => "InvalidUserId",
            Self::InvalidDisplayName(_) => "InvalidDisplayName",
            Self::MetadataTooLong(_) => "MetadataTooLong",
            Self::InvalidAppInstanceArn(_) => "InvalidAppInstanceArn",
            Self::InvalidSource(_) => "InvalidSource",
            Self::InvalidTimestamp(_) => "InvalidTimestamp",
        }
    }
}

/// A failure talking to the user directory (Chime SDK Identity or a fake).
///
/// A short, stable code for an error: what logs, metrics and the second part
/// of Lambda's `errorType` carry. Every error a function can return to
/// Lambda has one, so the entrypoints report every error the same way.
pub trait ErrorCode: std::fmt::Display {
    fn code(&self) -> &'static str;
}

/// Adapters map their SDK's errors into this enum in one place; `NotFound`,
/// `PossiblyMissing` and `AlreadyExists` are answers the domain resolves in
/// the domain service over the `Directory` port ([`crate::provisioning`]: delete of a missing user is a
/// success, create of an existing one is "already provisioned", a possibly
/// missing user is settled with a second call).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DirectoryError {
    #[error("user does not exist")]
    NotFound,
    /// An answer that may mean "no such user" or may be a refusal: Chime's
    /// model lists no NotFound for the user operations, and it answers an
    /// unknown user ARN with `403 ForbiddenException` — the status an IAM
    /// denial also has. The adapter reports an IAM (or authentication)
    /// denial as [`DirectoryError::AccessDenied`]; any other 403 on a
    /// one-user call is this, and [`crate::provisioning`] settles it with
    /// a second call. Unsettled, it is retryable: it is
    /// never read as "gone" on its own.
    #[error("the directory answered 403 for the user; missing or refused: {0}")]
    PossiblyMissing(String),
    #[error("user already exists")]
    AlreadyExists,
    #[error("throttled by the directory: {0}")]
    Throttled(String),
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("directory call timed out")]
    Timeout,
    #[error("could not reach the directory: {0}")]
    Transport(String),
    #[error("directory denied access (check IAM and the AppInstance ARN): {0}")]
    AccessDenied(String),
    #[error("directory rejected the request: {0}")]
    Rejected(String),
    #[error("directory limit reached: {0}")]
    LimitExceeded(String),
}

impl DirectoryError {
    /// [`DirectoryError::code`] of a denial: what the handlers count as
    /// `Denied` (a deployment fault) whichever call met it.
    pub const DENIED: &'static str = "AccessDenied";

    /// The one place that decides whether a directory failure is worth a retry.
    ///
    /// Access errors count as retryable: they are a deployment fault, not the
    /// message's, so the message waits in the queue (and reaches the DLQ by
    /// redrive) instead of being dead-lettered as if it were bad.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Throttled(_)
            | Self::Unavailable(_)
            | Self::Timeout
            | Self::Transport(_)
            | Self::AccessDenied(_)
            | Self::PossiblyMissing(_) => ErrorClass::Retryable,
            Self::NotFound | Self::AlreadyExists | Self::Rejected(_) | Self::LimitExceeded(_) => {
                ErrorClass::Permanent
            }
        }
    }

    /// A short stable code for logs and DLQ attributes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "NotFound",
            Self::PossiblyMissing(_) => "PossiblyMissing",
            Self::AlreadyExists => "AlreadyExists",
            Self::Throttled(_) => "Throttled",
            Self::Unavailable(_) => "Unavailable",
            Self::Timeout => "Timeout",
            Self::Transport(_) => "Transport",
            Self::AccessDenied(_) => Self::DENIED,
            Self::Rejected(_) => "Rejected",
            Self::LimitExceeded(_) => "LimitExceeded",
        }
    }
}

/// A failure sending to a queue (the sync queue or the DLQ).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("queue send failed: {message}")]
pub struct QueueError {
    pub message: String,
    pub class: ErrorClass,
}

impl QueueError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            class: ErrorClass::Retryable,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            class: ErrorClass::Permanent,
        }
    }
}

/// Any failure while applying one identity event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SyncError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

impl SyncError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Input(_) => ErrorClass::Permanent,
            Self::Directory(e) => e.class(),
            Self::Queue(e) => e.class,
            Self::Ledger(e) => e.class(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Input(e) => e.code(),
            Self::Directory(e) => e.code(),
            Self::Queue(_) => "QueueSendFailed",
            Self::Ledger(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_directory_failures_are_retryable() {
        for e in [
            DirectoryError::Throttled("429".into()),
            DirectoryError::Unavailable("503".into()),
            DirectoryError::Timeout,
            DirectoryError::Transport("reset".into()),
            DirectoryError::AccessDenied("403".into()),
            DirectoryError::PossiblyMissing("403".into()),
        ] {
            assert_eq!(e.class(), ErrorClass::Retryable, "{e:?}");
            assert!(SyncError::from(e).is_retryable());
        }
    }

    #[test]
    fn request_faults_are_permanent() {
        for e in [
            DirectoryError::Rejected("400".into()),
            DirectoryError::LimitExceeded("too many users".into()),
            DirectoryError::NotFound,
            DirectoryError::AlreadyExists,
        ] {
            assert_eq!(e.class(), ErrorClass::Permanent, "{e:?}");
        }
    }

    #[test]
    fn every_input_error_is_permanent() {
        let all = [
            InputError::InvalidJson("eof".into()),
            InputError::MissingField("user"),
            InputError::WrongType {
                field: "user",
                expected: "an object",
            },
            InputError::UnsupportedVersion("2".into()),
            InputError::UnknownType("user.frozen".into()),
            InputError::InvalidUserId("not a UUID"),
            InputError::InvalidDisplayName("blank"),
            InputError::MetadataTooLong(2000),
            InputError::InvalidAppInstanceArn("wrong service"),
            InputError::InvalidSource("unknown kind"),
            InputError::InvalidTimestamp("occurredAt"),
        ];
        for e in all {
            let code = e.code();
            let err = SyncError::from(e);
            assert_eq!(err.class(), ErrorClass::Permanent);
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn queue_errors_keep_their_own_class() {
        assert!(SyncError::from(QueueError::retryable("503")).is_retryable());
        assert!(!SyncError::from(QueueError::permanent("bad url")).is_retryable());
    }
}
