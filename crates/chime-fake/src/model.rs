//! The fake's state and the semantics of the operations on it: Chime SDK Identity's one model,
//! [`chime_sync_core::memory::chime`], which core's in-memory directory answers from too, so a
//! change to what Chime does is made once and both doubles follow.
//!
//! Inputs reaching the model are already validated on the wire (see [`crate::validate`]); this
//! module only says how the model's refusals read on the wire: the HTTP status, error type and
//! message Chime answers with.

pub use chime_sync_core::memory::chime::{
    ChimeError, ChimeModel, ClearAnswer, Expiration, MISSING_USER_MESSAGE, MissingAnswer, NewUser,
    Page, Tag, UserRecord,
};

use crate::error::{ApiError, ErrorKind};

impl From<ChimeError> for ApiError {
    /// Chime's answer for each refusal: 409 Conflict, 400 ResourceLimitExceeded, the configured
    /// missing-user answer (404 with the ARN, or 403 with Chime's message), and 400 BadRequest
    /// for a required member or a foreign list token.
    fn from(error: ChimeError) -> Self {
        let message = error.to_string();
        match error {
            ChimeError::Conflict { .. } => ApiError::new(ErrorKind::Conflict, message),
            ChimeError::LimitExceeded { .. } => {
                ApiError::new(ErrorKind::ResourceLimitExceeded, message)
            }
            ChimeError::Missing {
                answer: MissingAnswer::NotFound,
                ..
            } => ApiError::new(ErrorKind::NotFound, message),
            ChimeError::Missing {
                answer: MissingAnswer::Forbidden,
                ..
            } => ApiError::new(ErrorKind::Forbidden, MISSING_USER_MESSAGE),
            ChimeError::ExpirationRequired | ChimeError::InvalidNextToken => {
                ApiError::bad_request(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/app";

    #[test]
    fn refusals_read_as_chimes_answers() {
        let missing = |answer| ChimeError::Missing {
            arn: format!("{APP}/user/u1"),
            answer,
        };
        let cases = [
            (
                ChimeError::Conflict {
                    arn: format!("{APP}/user/u1"),
                },
                ErrorKind::Conflict,
                format!("AppInstanceUser {APP}/user/u1 already exists"),
            ),
            (
                ChimeError::LimitExceeded {
                    app_instance_arn: APP.to_owned(),
                    limit: 2,
                },
                ErrorKind::ResourceLimitExceeded,
                format!("The AppInstance {APP} already has the maximum of 2 users"),
            ),
            (
                missing(MissingAnswer::NotFound),
                ErrorKind::NotFound,
                format!("AppInstanceUser {APP}/user/u1 does not exist"),
            ),
            (
                missing(MissingAnswer::Forbidden),
                ErrorKind::Forbidden,
                MISSING_USER_MESSAGE.to_owned(),
            ),
            (
                ChimeError::ExpirationRequired,
                ErrorKind::BadRequest,
                "ExpirationSettings is required".to_owned(),
            ),
            (
                ChimeError::InvalidNextToken,
                ErrorKind::BadRequest,
                "next-token (NextToken) is invalid or belongs to another AppInstance".to_owned(),
            ),
        ];
        for (error, kind, message) in cases {
            let api = ApiError::from(error);
            assert_eq!((api.kind, api.message), (kind, message));
        }
    }
}
