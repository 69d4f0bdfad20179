//! Chime SDK Identity input constraints, as the real service enforces them.
//!
//! Every rule comes from the Smithy model (`chime-sdk-identity.json`, shapes `UserId`,
//! `UserName`, `Metadata`, `ClientRequestToken`, `ChimeArn`, `MaxResults`, `TagList`,
//! `ExpirationSettings`). The AWS SDKs do not check length or pattern traits client-side, so a
//! violation reaches the service and comes back as `BadRequestException`; each message names the
//! offending field so a failing test says which rule fired. Lengths count Unicode scalar values,
//! as Smithy's `length` trait does.

use crate::error::ApiError;

/// Longest `AppInstanceUserId` (Smithy `UserId`).
pub const USER_ID_MAX: usize = 64;
/// Longest `Name` (Smithy `UserName`).
pub const NAME_MAX: usize = 100;
/// Longest `Metadata` (Smithy `Metadata`).
pub const METADATA_MAX: usize = 1024;
/// Shortest and longest `ClientRequestToken`.
pub const TOKEN_LEN: std::ops::RangeInclusive<usize> = 2..=64;
/// Allowed `max-results` (Smithy `MaxResults`).
pub const MAX_RESULTS: std::ops::RangeInclusive<i64> = 1..=50;
/// Allowed `ExpirationDays`.
pub const EXPIRATION_DAYS: std::ops::RangeInclusive<i64> = 1..=5475;
/// Length bounds of any Chime ARN (Smithy `ChimeArn`).
const ARN_LEN: std::ops::RangeInclusive<usize> = 5..=1600;
/// Longest AppInstance id this fake accepts (real ones are UUIDs).
const APP_INSTANCE_ID_MAX: usize = 64;

/// The parts of a validated `AppInstanceUserArn`: `{AppInstanceArn}/user/{AppInstanceUserId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserArn {
    /// The AppInstance the user belongs to.
    pub app_instance_arn: String,
    /// The user's id inside that AppInstance.
    pub user_id: String,
}

impl UserArn {
    /// The full ARN string.
    pub fn to_arn(&self) -> String {
        user_arn(&self.app_instance_arn, &self.user_id)
    }
}

/// Builds the ARN the service gives a user: `{AppInstanceArn}/user/{id}`.
pub fn user_arn(app_instance_arn: &str, user_id: &str) -> String {
    format!("{app_instance_arn}/user/{user_id}")
}

fn char_len(value: &str) -> usize {
    value.chars().count()
}

/// A present, required field, or `BadRequest` naming it.
pub fn required<'a, T>(value: &'a Option<T>, field: &str) -> Result<&'a T, ApiError> {
    value
        .as_ref()
        .ok_or_else(|| ApiError::bad_request(format!("{field} is required")))
}

/// `AppInstanceUserId`: 1–64 chars, `[A-Za-z0-9]([A-Za-z0-9:\-_.@]{0,62}[A-Za-z0-9])?`.
pub fn user_id(value: &str) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let edge_ok = |b: u8| b.is_ascii_alphanumeric();
    let inner_ok =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'@');
    let valid = match bytes {
        [] => false,
        [only] => edge_ok(*only),
        [first, middle @ .., last] => {
            bytes.len() <= USER_ID_MAX
                && edge_ok(*first)
                && edge_ok(*last)
                && middle.iter().all(|b| inner_ok(*b))
        }
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "AppInstanceUserId must be 1-{USER_ID_MAX} characters matching \
             [A-Za-z0-9]([A-Za-z0-9:\\-_.@]{{0,62}}[A-Za-z0-9])?"
        )))
    }
}

/// Java's `\s` (the model's patterns are Java regexes): only these six are whitespace.
fn is_java_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// `Name`: 1–100 chars containing at least one non-whitespace char (pattern `\S`).
pub fn name(value: &str) -> Result<(), ApiError> {
    let len = char_len(value);
    if len == 0 || len > NAME_MAX {
        return Err(ApiError::bad_request(format!(
            "Name must be 1-{NAME_MAX} characters long"
        )));
    }
    if value.chars().all(is_java_whitespace) {
        return Err(ApiError::bad_request(
            "Name must contain a non-whitespace character",
        ));
    }
    Ok(())
}

/// `Metadata`: at most 1024 chars.
pub fn metadata(value: &str) -> Result<(), ApiError> {
    if char_len(value) > METADATA_MAX {
        return Err(ApiError::bad_request(format!(
            "Metadata must be at most {METADATA_MAX} characters long"
        )));
    }
    Ok(())
}

/// `ClientRequestToken`: 2–64 chars of `[-_a-zA-Z0-9]`.
pub fn client_request_token(value: &str) -> Result<(), ApiError> {
    let charset_ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !TOKEN_LEN.contains(&value.len()) || !charset_ok {
        return Err(ApiError::bad_request(format!(
            "ClientRequestToken must be {}-{} characters of [-_a-zA-Z0-9]",
            TOKEN_LEN.start(),
            TOKEN_LEN.end()
        )));
    }
    Ok(())
}

/// `AppInstanceArn`: `arn:{aws|aws-us-gov}:chime:{region}:{12 digits}:app-instance/{id}`, within
/// the `ChimeArn` length bounds. The id is 1–64 chars of `[A-Za-z0-9-]` (real ids are UUIDs).
pub fn app_instance_arn(value: &str, field: &str) -> Result<(), ApiError> {
    if parse_app_instance_arn(value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} must look like arn:aws:chime:{{region}}:{{12-digit account}}:app-instance/{{id}}"
        )))
    }
}

fn parse_app_instance_arn(value: &str) -> bool {
    if !ARN_LEN.contains(&value.len()) {
        return false;
    }
    let mut parts = value.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("chime"), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let region_ok = !region.is_empty()
        && region.len() <= 63
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let id_ok = resource.strip_prefix("app-instance/").is_some_and(|id| {
        !id.is_empty()
            && id.len() <= APP_INSTANCE_ID_MAX
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    matches!(partition, "aws" | "aws-us-gov") && region_ok && account_ok && id_ok
}

/// Splits and checks an `AppInstanceUserArn` (`{AppInstanceArn}/user/{id}`).
pub fn parse_user_arn(value: &str) -> Result<UserArn, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "AppInstanceUserArn must look like \
             arn:aws:chime:{region}:{12-digit account}:app-instance/{id}/user/{AppInstanceUserId}",
        )
    };
    if !ARN_LEN.contains(&value.len()) {
        return Err(invalid());
    }
    let (app_instance, user) = value.split_once("/user/").ok_or_else(invalid)?;
    if !parse_app_instance_arn(app_instance) {
        return Err(invalid());
    }
    user_id(user).map_err(|_| invalid())?;
    Ok(UserArn {
        app_instance_arn: app_instance.to_owned(),
        user_id: user.to_owned(),
    })
}

/// `max-results`: an integer in 1–50.
pub fn max_results(raw: &str) -> Result<usize, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| MAX_RESULTS.contains(n))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "max-results (MaxResults) must be an integer from {} to {}",
                MAX_RESULTS.start(),
                MAX_RESULTS.end()
            ))
        })
}

/// `Tags`: 1–50 tags, keys 1–128 chars, values 1–256 chars.
pub fn tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    if tags.is_empty() || tags.len() > 50 {
        return Err(ApiError::bad_request("Tags must hold 1-50 tags"));
    }
    for (key, value) in tags {
        if !(1..=128).contains(&char_len(key)) {
            return Err(ApiError::bad_request(
                "Tags.Key must be 1-128 characters long",
            ));
        }
        if !(1..=256).contains(&char_len(value)) {
            return Err(ApiError::bad_request(
                "Tags.Value must be 1-256 characters long",
            ));
        }
    }
    Ok(())
}

/// `ExpirationSettings`: `ExpirationDays` 1–5475 and `ExpirationCriterion` `CREATED_TIMESTAMP`.
pub fn expiration(days: i64, criterion: &str) -> Result<(), ApiError> {
    if !EXPIRATION_DAYS.contains(&days) {
        return Err(ApiError::bad_request(
            "ExpirationSettings.ExpirationDays must be from 1 to 5475",
        ));
    }
    if criterion != "CREATED_TIMESTAMP" {
        return Err(ApiError::bad_request(
            "ExpirationSettings.ExpirationCriterion must be CREATED_TIMESTAMP",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str =
        "arn:aws:chime:us-east-1:123456789012:app-instance/0a1b2c3d-4e5f-6789-abcd-ef0123456789";

    #[test]
    fn user_ids() {
        for ok in [
            "a",
            "6f1c0000-aaaa-bbbb-cccc-000000000000",
            "a:b-c_d.e@f",
            &"x".repeat(64),
        ] {
            assert!(user_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a b",
            "ä",
            "a/b",
            &"x".repeat(65),
            "a\u{0}b",
        ] {
            let err = user_id(bad).unwrap_err();
            assert!(err.message.contains("AppInstanceUserId"), "{bad}: {err}");
        }
    }

    #[test]
    fn names() {
        assert!(name("Ada Lovelace").is_ok());
        assert!(
            name(&"é".repeat(100)).is_ok(),
            "counts characters, not bytes"
        );
        assert!(
            name("\u{a0}").is_ok(),
            "Java \\S treats a no-break space as non-whitespace"
        );
        for bad in ["", " ", " \t\r\n", &"x".repeat(101)] {
            assert!(name(bad).unwrap_err().message.contains("Name"), "{bad:?}");
        }
    }

    #[test]
    fn metadata_limit() {
        assert!(metadata("").is_ok());
        assert!(metadata(&"é".repeat(1024)).is_ok());
        assert!(
            metadata(&"x".repeat(1025))
                .unwrap_err()
                .message
                .contains("Metadata")
        );
    }

    #[test]
    fn tokens() {
        for ok in ["ab", "A-b_9", &"t".repeat(64)] {
            assert!(client_request_token(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "", "a b", "a.b", &"t".repeat(65)] {
            assert!(
                client_request_token(bad)
                    .unwrap_err()
                    .message
                    .contains("ClientRequestToken"),
                "{bad}"
            );
        }
    }

    #[test]
    fn app_instance_arns() {
        assert!(app_instance_arn(APP, "AppInstanceArn").is_ok());
        assert!(
            app_instance_arn(
                "arn:aws-us-gov:chime:us-gov-west-1:123456789012:app-instance/x",
                "f"
            )
            .is_ok()
        );
        for bad in [
            "",
            "arn:aws:chime:us-east-1:12345678901:app-instance/x",
            "arn:aws:chime:us-east-1:123456789012:app-instance/",
            "arn:aws:chime:us-east-1:123456789012:channel/x",
            "arn:aws:sqs:us-east-1:123456789012:app-instance/x",
            "arn:aws:chime:US-EAST-1:123456789012:app-instance/x",
            "arn:aws:chime:us-east-1:123456789012:app-instance/x/y",
            "arn:other:chime:us-east-1:123456789012:app-instance/x",
        ] {
            assert!(
                app_instance_arn(bad, "AppInstanceArn")
                    .unwrap_err()
                    .message
                    .contains("AppInstanceArn"),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_arns() {
        let parsed = parse_user_arn(&format!("{APP}/user/abc")).unwrap();
        assert_eq!(
            parsed,
            UserArn {
                app_instance_arn: APP.to_owned(),
                user_id: "abc".to_owned()
            }
        );
        assert_eq!(parsed.to_arn(), format!("{APP}/user/abc"));
        for bad in [
            APP.to_owned(),
            format!("{APP}/user/"),
            format!("{APP}/user/-x"),
            "abc".to_owned(),
        ] {
            assert!(
                parse_user_arn(&bad)
                    .unwrap_err()
                    .message
                    .contains("AppInstanceUserArn"),
                "{bad}"
            );
        }
    }

    #[test]
    fn max_results_range() {
        assert_eq!(max_results("1").unwrap(), 1);
        assert_eq!(max_results("50").unwrap(), 50);
        for bad in ["0", "51", "-1", "x", "", "1.5"] {
            assert!(
                max_results(bad)
                    .unwrap_err()
                    .message
                    .contains("max-results"),
                "{bad}"
            );
        }
    }

    #[test]
    fn tags_and_expiration() {
        assert!(tags(&[("k".into(), "v".into())]).is_ok());
        assert!(tags(&[]).is_err());
        assert!(tags(&[(String::new(), "v".into())]).is_err());
        assert!(tags(&[("k".into(), String::new())]).is_err());
        assert!(expiration(1, "CREATED_TIMESTAMP").is_ok());
        assert!(expiration(0, "CREATED_TIMESTAMP").is_err());
        assert!(expiration(5476, "CREATED_TIMESTAMP").is_err());
        assert!(expiration(5, "LAST_SEEN").is_err());
    }
}
