//! AWS errors as a person reads them: one line that says what is wrong and
//! what to do, instead of the SDK's debug text (often ~1,000 characters).
//!
//! The directory port hands the CLI a [`DirectoryError`] whose text carries
//! the SDK's error (its code, message and debug context). The common causes
//! are recognised from that text, by the codes AWS sends and the messages of
//! the SDK's credential chain, so the mapping holds whichever variant the
//! adapter chose:
//!
//! | cause | recognised by |
//! |---|---|
//! | no credentials | `no credentials found in chain`, `credential provider was not enabled` |
//! | SSO profile (not built in) | `cargo feature(s) enabled: sso` |
//! | expired token | `ExpiredToken…`, `…security token … is expired` |
//! | credentials AWS does not know | `UnrecognizedClientException`, `InvalidClientTokenId`, `SignatureDoesNotMatch` |
//! | access denied | an access error; IAM's `is not authorized to perform: <action>` names the action |
//! | wrong region | `Credential should be scoped to a valid region`, `the AppInstance was not found` |
//! | wrong endpoint | DNS failures, refused connections, TLS failures, `UnknownOperationException`, timeouts |
//!
//! Anything else keeps the error's own words without the debug context.
//! `--verbose` prints the whole text as well.

use chime_sync_core::{DirectoryError, UserPoolError};

/// Why a call to AWS failed, as far as the text tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    NoCredentials,
    SsoNotBuiltIn,
    ExpiredToken,
    InvalidCredentials,
    /// `action` from IAM's message, else the one the caller was making.
    AccessDenied {
        action: String,
        principal: Option<String>,
    },
    WrongRegion,
    /// The endpoint could not be reached or is not Chime SDK Identity.
    WrongEndpoint {
        why: &'static str,
    },
    Other(String),
}

/// A failed AWS call, explained: the cause in a few words and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub cause: Cause,
    /// What went wrong, in a few words.
    pub summary: String,
    /// What to do about it.
    pub hint: Option<&'static str>,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.hint {
            Some(hint) => write!(f, "{}. Hint: {hint}", self.summary),
            None => f.write_str(&self.summary),
        }
    }
}

const SSO_HINT: &str = "this build has no SSO support (it would also end up in the Lambda \
    binaries): run `eval \"$(aws configure export-credentials --format env)\"` first";

/// Explain `error`, from a call of `action` (e.g. `chime:ListAppInstanceUsers`).
pub fn explain(error: &DirectoryError, action: &str) -> Explained {
    explain_cause(classify(error, action))
}

/// Explain an error reading the user pool (`cognito-idp:ListUsers`): the same
/// causes, with Cognito's own names for a wrong pool and a wrong endpoint.
#[cfg_attr(
    not(feature = "aws"),
    allow(dead_code, reason = "only the AWS commands read a pool")
)]
pub fn explain_pool(error: &UserPoolError) -> Explained {
    let text = error.to_string();
    let cause = match error {
        UserPoolError::PoolNotFound(_) => {
            return Explained {
                cause: Cause::WrongRegion,
                summary: "the user pool was not found".to_owned(),
                hint: Some(
                    "check --user-pool-id (its prefix is its Region) and the account of your                      credentials",
                ),
            };
        }
        _ => classify_text(
            &text,
            matches!(error, UserPoolError::AccessDenied(_)),
            "cognito-idp:ListUsers",
        ),
    };
    let mut explained = explain_cause(cause);
    match explained.cause {
        Cause::WrongEndpoint { .. } => {
            explained.hint = Some(
                "check --cognito-endpoint-url, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER and                  AWS_ENDPOINT_URL",
            );
        }
        Cause::AccessDenied { .. } => {
            explained.hint = Some(
                "allow cognito-idp:ListUsers on the user pool in IAM, or use credentials that have it",
            );
        }
        _ => {}
    }
    explained
}

fn explain_cause(cause: Cause) -> Explained {
    let (summary, hint) = match &cause {
        Cause::NoCredentials => (
            "no AWS credentials were found".to_owned(),
            Some(
                "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), \
                 or set AWS_PROFILE to a profile with keys; for a local fake, pass --endpoint-url",
            ),
        ),
        Cause::SsoNotBuiltIn => ("the AWS profile uses SSO".to_owned(), Some(SSO_HINT)),
        Cause::ExpiredToken => (
            "the AWS credentials have expired".to_owned(),
            Some("refresh them (e.g. `aws sso login`, then export them again) and retry"),
        ),
        Cause::InvalidCredentials => (
            "AWS does not accept these credentials".to_owned(),
            Some(
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that temporary keys \
                 come with their AWS_SESSION_TOKEN",
            ),
        ),
        Cause::AccessDenied { action, principal } => (
            match principal {
                Some(p) => format!("access denied: {p} may not call {action}"),
                None => format!("access denied to {action}"),
            },
            Some(
                "allow that action on the AppInstance and its users (arn:…:app-instance/ID and \
                 arn:…:app-instance/ID/user/*) in IAM, or use credentials that have it",
            ),
        ),
        Cause::WrongRegion => (
            "the AppInstance is not in the region or account the request went to".to_owned(),
            Some(
                "check --app-instance-arn (its region picks the endpoint; Chime SDK messaging \
                 exists in us-east-1 and eu-central-1) and the account of your credentials",
            ),
        ),
        Cause::WrongEndpoint { why } => (
            (*why).to_owned(),
            Some(
                "check --endpoint-url, AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY and AWS_ENDPOINT_URL \
                 (for a local fake: is `chime-sync serve-fake` running?)",
            ),
        ),
        Cause::Other(text) => (text.clone(), None),
    };
    Explained {
        cause,
        summary,
        hint,
    }
}

/// The cause of `error`, from its text.
pub fn classify(error: &DirectoryError, action: &str) -> Cause {
    classify_text(
        &error.to_string(),
        matches!(error, DirectoryError::AccessDenied(_)),
        action,
    )
}

/// The cause of an error whose text is `text`; `denied`: the adapter already
/// classified it as an access error.
fn classify_text(text: &str, denied: bool, action: &str) -> Cause {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&["cargo feature(s) enabled: sso"]) {
        return Cause::SsoNotBuiltIn;
    }
    if has(&[
        "no credentials found in chain",
        "no providers in chain provided credentials",
        "the credential provider was not enabled",
        "CredentialsNotLoaded",
    ]) {
        return Cause::NoCredentials;
    }
    if has(&[
        "ExpiredToken",
        "security token included in the request is expired",
        "token has expired",
    ]) {
        return Cause::ExpiredToken;
    }
    if has(&[
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "security token included in the request is invalid",
        "SignatureDoesNotMatch",
    ]) {
        return Cause::InvalidCredentials;
    }
    if has(&[
        "Credential should be scoped to a valid region",
        "the AppInstance was not found",
    ]) {
        return Cause::WrongRegion;
    }
    if let Some(why) = endpoint_failure(text) {
        return Cause::WrongEndpoint { why };
    }
    if denied || has(&["AccessDenied", "is not authorized to perform"]) {
        let (principal, named) = iam_denial(text);
        return Cause::AccessDenied {
            action: named.unwrap_or(action).to_owned(),
            principal: principal.map(str::to_owned),
        };
    }
    Cause::Other(without_debug_context(text).to_owned())
}

/// The endpoint failures a person can act on, in their words.
fn endpoint_failure(text: &str) -> Option<&'static str> {
    let known: [(&[&str], &'static str); 5] = [
        (
            &["dns error", "failed to lookup address"],
            "the endpoint's host name does not resolve",
        ),
        (
            &["Connection refused", "ConnectionRefused"],
            "nothing accepts connections at the endpoint",
        ),
        (
            &[
                "invalid peer certificate",
                "InvalidCertificate",
                "tls handshake",
            ],
            "the endpoint's TLS certificate is not trusted",
        ),
        (
            &["UnknownOperationException"],
            "the endpoint does not serve the Chime SDK Identity API",
        ),
        (
            &["directory call timed out", "timed out"],
            "the endpoint did not answer in time",
        ),
    ];
    known
        .into_iter()
        .find(|(needles, _)| needles.iter().any(|n| text.contains(n)))
        .map(|(_, why)| why)
}

/// From IAM's `User: <principal> is not authorized to perform: <action> on
/// resource: …`, the principal and the action.
fn iam_denial(text: &str) -> (Option<&str>, Option<&str>) {
    const PERFORM: &str = "is not authorized to perform: ";
    let Some(at) = text.find(PERFORM) else {
        return (None, None);
    };
    let action = text[at + PERFORM.len()..]
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .filter(|a| a.contains(':'));
    let principal = text[..at]
        .rsplit_once("User: ")
        .map(|(_, p)| p.trim())
        .filter(|p| p.starts_with("arn:"));
    (principal, action)
}

/// The SDK's `DisplayErrorContext` appends ` (<Debug of the error>)`; a
/// person needs the words before it. Also the first line only.
fn without_debug_context(text: &str) -> &str {
    const DEBUG_STARTS: [&str; 5] = [
        " (DispatchFailure(",
        " (ServiceError(",
        " (ResponseError(",
        " (ConstructionFailure(",
        " (TimeoutError(",
    ];
    let first_line = text.lines().next().unwrap_or_default();
    DEBUG_STARTS
        .iter()
        .filter_map(|d| first_line.find(d))
        .min()
        .map_or(first_line, |at| &first_line[..at])
        .trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "chime:ListAppInstanceUsers";

    /// What the SDK's credential chain says when it finds nothing (seen with
    /// aws-config 1.13.0 and IMDS disabled), as the adapter wraps it.
    const NO_CREDENTIALS: &str = "dispatch failure: other: the credential provider was not \
        enabled: no credentials found in chain. Attempted:\n  Environment: the credential \
        provider was not enabled: environment variable not set\n  Profile: the credential \
        provider was not enabled (DispatchFailure(DispatchFailure { source: ConnectorError { \
        kind: Other(None), source: CredentialsNotLoaded(CredentialsNotLoaded { source: None }) \
        }))";
    const SSO: &str = "dispatch failure: other: the credentials provider was not properly \
        configured: ProfileFile provider could not be built: This behavior requires following \
        cargo feature(s) enabled: sso.  (DispatchFailure(DispatchFailure { source: \
        ConnectorError { kind: Other(None), source: InvalidConfiguration(InvalidConfiguration { \
        source: \"ProfileFile provider could not be built\" }), connection: Unknown } }))";
    const REFUSED: &str = "dispatch failure: io error: client error (Connect): tcp connect \
        error: Connection refused (os error 111) (DispatchFailure(DispatchFailure { source: \
        ConnectorError { kind: Io, source: hyper_util::client::legacy::Error(Connect, \
        ConnectError(\"tcp connect error\", 127.0.0.1:9, Os { code: 111, kind: \
        ConnectionRefused, message: \"Connection refused\" })), connection: Unknown } }))";
    const NO_HOST: &str = "dispatch failure: io error: client error (Connect): dns error: \
        failed to lookup address information: Name or service not known";
    const IAM: &str = "AccessDeniedException (HTTP 403): User: \
        arn:aws:sts::123456789012:assumed-role/dev/ada is not authorized to perform: \
        chime:DeleteAppInstanceUser on resource: \
        arn:aws:chime:us-east-1:123456789012:app-instance/demo/user/x because no \
        identity-based policy allows the chime:DeleteAppInstanceUser action";

    fn transport(text: &str) -> DirectoryError {
        DirectoryError::Transport(text.to_owned())
    }

    fn denied(text: &str) -> DirectoryError {
        DirectoryError::AccessDenied(text.to_owned())
    }

    #[test]
    fn missing_credentials_and_sso_profiles() {
        assert_eq!(
            classify(&transport(NO_CREDENTIALS), LIST),
            Cause::NoCredentials
        );
        let sso = explain(&transport(SSO), LIST);
        assert_eq!(sso.cause, Cause::SsoNotBuiltIn);
        assert!(
            sso.to_string()
                .contains("aws configure export-credentials --format env"),
            "{sso}"
        );
    }

    #[test]
    fn expired_and_unknown_credentials() {
        for text in [
            "ExpiredTokenException (HTTP 403): The security token included in the request is expired",
            "HTTP 400: The security token included in the request is expired",
        ] {
            assert_eq!(classify(&denied(text), LIST), Cause::ExpiredToken, "{text}");
        }
        for text in [
            "UnrecognizedClientException (HTTP 403): The security token included in the request is invalid.",
            "SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match",
        ] {
            assert_eq!(
                classify(&denied(text), LIST),
                Cause::InvalidCredentials,
                "{text}"
            );
        }
    }

    #[test]
    fn access_denied_names_the_action_from_iam_or_the_call() {
        let e = explain(&denied(IAM), LIST);
        assert_eq!(
            e.cause,
            Cause::AccessDenied {
                action: "chime:DeleteAppInstanceUser".to_owned(),
                principal: Some("arn:aws:sts::123456789012:assumed-role/dev/ada".to_owned()),
            }
        );
        assert!(e.summary.starts_with(
            "access denied: arn:aws:sts::123456789012:assumed-role/dev/ada may not call \
             chime:DeleteAppInstanceUser"
        ));
        let e = explain(&denied("ForbiddenException (HTTP 403): Forbidden"), LIST);
        assert_eq!(e.summary, "access denied to chime:ListAppInstanceUsers");
    }

    #[test]
    fn wrong_region_and_wrong_endpoint() {
        for text in [
            "InvalidSignatureException (HTTP 403): Credential should be scoped to a valid region.",
            "the AppInstance was not found: NotFoundException (HTTP 404): not found",
        ] {
            assert_eq!(classify(&denied(text), LIST), Cause::WrongRegion, "{text}");
        }
        for (error, why) in [
            (
                transport(REFUSED),
                "nothing accepts connections at the endpoint",
            ),
            (
                transport(NO_HOST),
                "the endpoint's host name does not resolve",
            ),
            (
                DirectoryError::Timeout,
                "the endpoint did not answer in time",
            ),
            (
                DirectoryError::Rejected("UnknownOperationException (HTTP 404)".to_owned()),
                "the endpoint does not serve the Chime SDK Identity API",
            ),
        ] {
            assert_eq!(
                classify(&error, LIST),
                Cause::WrongEndpoint { why },
                "{error}"
            );
        }
    }

    #[test]
    fn anything_else_keeps_its_words_without_the_debug_context() {
        let e = explain(
            &DirectoryError::Unavailable(
                "ServiceUnavailableException (HTTP 503): try later (ServiceError(ServiceError { \
                 source: Unhandled }))"
                    .to_owned(),
            ),
            LIST,
        );
        assert_eq!(
            e.to_string(),
            "directory unavailable: ServiceUnavailableException (HTTP 503): try later"
        );
        assert_eq!(e.hint, None);
    }

    #[test]
    fn cognito_errors_name_cognitos_settings() {
        let denied = explain_pool(&UserPoolError::AccessDenied(
            "AccessDeniedException (HTTP 400): User: arn:aws:sts::1:assumed-role/r/s is not \
             authorized to perform: cognito-idp:ListUsers on resource: pool"
                .to_owned(),
        ));
        assert!(
            denied
                .to_string()
                .contains("may not call cognito-idp:ListUsers"),
            "{denied}"
        );
        assert!(denied.to_string().contains("on the user pool"), "{denied}");
        let missing = explain_pool(&UserPoolError::PoolNotFound(
            "ResourceNotFoundException".into(),
        ));
        assert!(missing.to_string().contains("--user-pool-id"), "{missing}");
        let dead = explain_pool(&UserPoolError::Transport(REFUSED.to_owned()));
        assert!(
            dead.to_string().contains("--cognito-endpoint-url"),
            "{dead}"
        );
    }

    #[test]
    fn every_explanation_is_one_line() {
        for error in [
            transport(NO_CREDENTIALS),
            transport(SSO),
            transport(REFUSED),
            denied(IAM),
            transport("first line\nsecond line"),
        ] {
            let line = explain(&error, LIST).to_string();
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
