//! The Cognito PreSignUp trigger: the gatekeeper.
//!
//! It rejects sign-ups that could never become a valid Chime user (no usable
//! display name) or that policy forbids (email domain), with a message the
//! client sees inside `UserLambdaValidationException`, and applies the
//! optional auto-confirm / auto-verify policy. It calls no AWS API: the sub
//! does not exist yet at this point.
//!
//! It fails closed: a `PreSignUp_*` trigger source it does not know (a flow
//! AWS adds later) gets the same name and domain checks and is answered like
//! `PreSignUp_SignUp`; only the response members it does not understand are
//! left as Cognito sent them. An event without a `triggerSource` is refused.
//! An event of another trigger (a misconfigured pool) is returned unchanged.

use serde_json::{Map, Value};
use thiserror::Error;
use tracing::{info, trace, warn};

use super::cognito::{attribute, trigger_source, user_attributes};
use crate::error::ErrorCode;
use crate::metrics::{FunctionMetrics, Invocation, Metric};
use crate::profile::DisplayNamePolicy;

const SOURCE: &str = "pre-signup";

/// What pre-signup publishes ([`metrics`]). It calls no AWS API.
pub const METRICS: FunctionMetrics = FunctionMetrics {
    source: SOURCE,
    error_kind: "SignUpRejected",
    metrics: &[
        Metric::Decisions,
        Metric::Allowed,
        Metric::Rejected,
        Metric::PassedThrough,
        Metric::InvalidEvent,
    ],
};

/// The metrics of one invocation: the decision [`handle`] returned.
pub fn metrics(result: &Result<(Value, SignUpDecision), SignUpRejected>) -> Invocation {
    let mut m = Invocation::new(METRICS);
    m.decision(match result {
        Ok((_, SignUpDecision::Allowed { .. })) => Metric::Allowed,
        Ok((_, SignUpDecision::PassedThrough)) => Metric::PassedThrough,
        Err(_) => Metric::Rejected,
    });
    m
}

/// Sign-up policy, from environment (`ALLOWED_EMAIL_DOMAINS`, `AUTO_CONFIRM`,
/// `AUTO_VERIFY_EMAIL`, `DISPLAY_NAME_ATTRIBUTES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpPolicy {
    pub names: DisplayNamePolicy,
    /// Lower-case domains; empty allows any. Matched exactly: list
    /// sub-domains explicitly, so `example.com` never admits `evil-example.com`
    /// or `x.example.com` by accident.
    pub allowed_email_domains: Vec<String>,
    pub auto_confirm: bool,
    pub auto_verify_email: bool,
}

impl SignUpPolicy {
    /// Parse a comma-separated domain list (`ALLOWED_EMAIL_DOMAINS`).
    pub fn parse_domains(raw: &str) -> Vec<String> {
        raw.split(',')
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect()
    }
}

/// The PreSignUp trigger sources: the three Cognito documents, and any other
/// `PreSignUp_*` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreSignUpSource {
    SignUp,
    AdminCreateUser,
    ExternalProvider,
    /// A `PreSignUp_*` source this version does not know: checked and
    /// answered like `SignUp` (fail closed).
    Unknown,
}

impl PreSignUpSource {
    /// The source of a PreSignUp event; `None` for another trigger's.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PreSignUp_SignUp" => Some(Self::SignUp),
            "PreSignUp_AdminCreateUser" => Some(Self::AdminCreateUser),
            "PreSignUp_ExternalProvider" => Some(Self::ExternalProvider),
            other if other.starts_with("PreSignUp_") => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// What the trigger decided (for logs, the CLI and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpDecision {
    Allowed {
        auto_confirmed: bool,
        email_verified: bool,
    },
    /// Another trigger's event (not `PreSignUp_*`): returned unchanged.
    PassedThrough,
}

/// Why a sign-up was refused. The text is what the user sees (Cognito shows
/// `PreSignUp failed with error <text>.`), so it says what to fix and nothing
/// about our internals.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignUpRejected {
    #[error("We need a name to show in chat. Please provide {0}.")]
    NoDisplayName(String),
    #[error("An email address is required to sign up.")]
    EmailRequired,
    #[error("Sign-ups with this email domain are not allowed.")]
    EmailDomainNotAllowed,
    #[error("The sign-up request could not be read: {0}.")]
    InvalidEvent(&'static str),
}

impl ErrorCode for SignUpRejected {
    fn code(&self) -> &'static str {
        match self {
            Self::NoDisplayName(_) => "NoDisplayName",
            Self::EmailRequired => "EmailRequired",
            Self::EmailDomainNotAllowed => "EmailDomainNotAllowed",
            Self::InvalidEvent(_) => "InvalidEvent",
        }
    }
}

/// Handle one PreSignUp event: the event back with `response` set, or a rejection.
pub fn handle(
    mut event: Value,
    policy: &SignUpPolicy,
) -> Result<(Value, SignUpDecision), SignUpRejected> {
    if !event.is_object() {
        warn!(
            source = SOURCE,
            outcome = "rejected",
            reason = "InvalidEvent"
        );
        return Err(SignUpRejected::InvalidEvent("it is not a JSON object"));
    }
    let Some(trigger) = trigger_source(&event).map(str::to_owned) else {
        warn!(
            source = SOURCE,
            outcome = "rejected",
            reason = "InvalidEvent"
        );
        return Err(SignUpRejected::InvalidEvent("it has no triggerSource"));
    };
    let Some(source) = PreSignUpSource::parse(&trigger) else {
        warn!(
            source = SOURCE,
            trigger,
            outcome = "passed-through",
            "not a PreSignUp trigger source; event returned unchanged"
        );
        return Ok((event, SignUpDecision::PassedThrough));
    };
    trace!(source = SOURCE, trigger, "checking the sign-up");
    if source == PreSignUpSource::Unknown {
        warn!(
            source = SOURCE,
            trigger, "unknown PreSignUp trigger source; checked and answered like PreSignUp_SignUp"
        );
    }
    let attributes = user_attributes(&event);
    if let Err(rejection) = check(attributes, policy) {
        info!(
            source = SOURCE,
            trigger,
            outcome = "rejected",
            reason = rejection.code()
        );
        return Err(rejection);
    }
    let has_email = attribute(attributes, "email").is_some();
    // Cognito ignores these flags for AdminCreateUser; leave them alone there.
    let decides = source != PreSignUpSource::AdminCreateUser;
    let auto_confirmed = decides && policy.auto_confirm;
    let email_verified = decides && policy.auto_verify_email && has_email;
    if let Value::Object(obj) = &mut event {
        set_response(obj, auto_confirmed, email_verified);
    }
    info!(
        source = SOURCE,
        trigger,
        outcome = "allowed",
        auto_confirmed,
        email_verified
    );
    Ok((
        event,
        SignUpDecision::Allowed {
            auto_confirmed,
            email_verified,
        },
    ))
}

fn check(attributes: &Map<String, Value>, policy: &SignUpPolicy) -> Result<(), SignUpRejected> {
    if !policy.allowed_email_domains.is_empty() {
        let email = attribute(attributes, "email").ok_or(SignUpRejected::EmailRequired)?;
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !policy.allowed_email_domains.contains(&domain) {
            return Err(SignUpRejected::EmailDomainNotAllowed);
        }
    }
    if policy.names.derive(attributes).is_none() {
        return Err(SignUpRejected::NoDisplayName(policy.names.describe()));
    }
    Ok(())
}

/// Write `response` with its three booleans present and boolean (missing or
/// null read as false), so Cognito always gets a well-formed answer; policy
/// only ever turns a flag on.
fn set_response(event: &mut Map<String, Value>, auto_confirm: bool, verify_email: bool) {
    let mut response = match event.remove("response") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for key in ["autoConfirmUser", "autoVerifyEmail", "autoVerifyPhone"] {
        let value = response.get(key).and_then(Value::as_bool).unwrap_or(false);
        response.insert(key.to_owned(), Value::Bool(value));
    }
    if auto_confirm {
        response.insert("autoConfirmUser".into(), Value::Bool(true));
    }
    if verify_email {
        response.insert("autoVerifyEmail".into(), Value::Bool(true));
    }
    event.insert("response".into(), Value::Object(response));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(source: &str, attrs: Value) -> Value {
        json!({
            "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_Ab12Cd34E",
            "userName": "ada", "triggerSource": source,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "client"},
            "request": {"userAttributes": attrs, "validationData": null},
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        })
    }

    fn policy() -> SignUpPolicy {
        SignUpPolicy {
            auto_confirm: true,
            auto_verify_email: true,
            allowed_email_domains: SignUpPolicy::parse_domains("example.com, @Example.org"),
            ..SignUpPolicy::default()
        }
    }

    #[test]
    fn each_sign_up_is_one_decision() {
        let counted = |e: Value| metrics(&handle(e, &policy())).counted();
        let allowed = event(
            "PreSignUp_SignUp",
            json!({"email": "ada@example.com", "name": "Ada"}),
        );
        let refused = event(
            "PreSignUp_SignUp",
            json!({"email": "ada@evil.test", "name": "Ada"}),
        );
        let other = event("CustomMessage_SignUp", json!({}));
        assert_eq!(
            counted(allowed),
            [(Metric::Decisions, 1), (Metric::Allowed, 1)]
        );
        assert_eq!(
            counted(refused),
            [(Metric::Decisions, 1), (Metric::Rejected, 1)]
        );
        assert_eq!(
            counted(other),
            [(Metric::Decisions, 1), (Metric::PassedThrough, 1)]
        );
        assert_eq!(
            counted(json!([])),
            [(Metric::Decisions, 1), (Metric::Rejected, 1)]
        );
    }

    #[test]
    fn allows_and_applies_policy_for_self_sign_up() {
        let e = event(
            "PreSignUp_SignUp",
            json!({"email": "ada@EXAMPLE.com", "name": "Ada"}),
        );
        let (out, decision) = handle(e.clone(), &policy()).unwrap();
        assert_eq!(
            decision,
            SignUpDecision::Allowed {
                auto_confirmed: true,
                email_verified: true
            }
        );
        assert_eq!(
            out["response"],
            json!({"autoConfirmUser": true, "autoVerifyEmail": true, "autoVerifyPhone": false})
        );
        // Everything else comes back untouched.
        assert_eq!(out["request"], e["request"]);
        assert_eq!(out["callerContext"], e["callerContext"]);
    }

    #[test]
    fn admin_create_user_gets_no_flags() {
        let e = event(
            "PreSignUp_AdminCreateUser",
            json!({"email": "ada@example.com"}),
        );
        let (out, decision) = handle(e, &policy()).unwrap();
        assert_eq!(
            decision,
            SignUpDecision::Allowed {
                auto_confirmed: false,
                email_verified: false
            }
        );
        assert_eq!(out["response"]["autoConfirmUser"], json!(false));
    }

    #[test]
    fn external_provider_is_checked_like_sign_up() {
        let e = event(
            "PreSignUp_ExternalProvider",
            json!({"email": "ada@example.org"}),
        );
        assert!(handle(e, &policy()).is_ok());
        let e = event(
            "PreSignUp_ExternalProvider",
            json!({"email": "ada@other.org"}),
        );
        assert_eq!(
            handle(e, &policy()).unwrap_err(),
            SignUpRejected::EmailDomainNotAllowed
        );
    }

    #[test]
    fn verify_email_only_when_there_is_one() {
        let p = SignUpPolicy {
            auto_verify_email: true,
            ..SignUpPolicy::default()
        };
        let e = event(
            "PreSignUp_SignUp",
            json!({"phone_number": "+15555550100", "name": "Ada"}),
        );
        let (out, _) = handle(e, &p).unwrap();
        assert_eq!(out["response"]["autoVerifyEmail"], json!(false));
    }

    #[test]
    fn rejections_say_what_to_fix() {
        let p = policy();
        let cases = [
            (json!({"name": "Ada"}), SignUpRejected::EmailRequired),
            (
                json!({"email": "ada@evil-example.com"}),
                SignUpRejected::EmailDomainNotAllowed,
            ),
            (
                json!({"email": "ada@sub.example.com"}),
                SignUpRejected::EmailDomainNotAllowed,
            ),
            (
                json!({"email": "@example.com"}),
                SignUpRejected::NoDisplayName(p.names.describe()),
            ),
        ];
        for (attrs, want) in cases {
            let got = handle(event("PreSignUp_SignUp", attrs.clone()), &p).unwrap_err();
            assert_eq!(got, want, "{attrs}");
        }
        let no_name = SignUpRejected::NoDisplayName(p.names.describe()).to_string();
        assert!(no_name.contains("given_name + family_name"), "{no_name}");
        // No policy on domains: a phone-only sign-up without a name has no display name.
        let e = event("PreSignUp_SignUp", json!({"phone_number": "+15555550100"}));
        assert!(matches!(
            handle(e, &SignUpPolicy::default()),
            Err(SignUpRejected::NoDisplayName(_))
        ));
    }

    #[test]
    fn tolerates_empty_or_null_response_fields() {
        for response in [
            json!({}),
            json!(null),
            json!({"autoConfirmUser": null}),
            json!("x"),
        ] {
            let mut e = event("PreSignUp_SignUp", json!({"name": "Ada"}));
            e["response"] = response.clone();
            let (out, _) = handle(e, &SignUpPolicy::default()).unwrap();
            assert_eq!(
                out["response"],
                json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}),
                "{response}"
            );
        }
        let mut e = event("PreSignUp_SignUp", json!({"name": "Ada"}));
        e.as_object_mut().unwrap().remove("response");
        assert!(handle(e, &SignUpPolicy::default()).is_ok());
    }

    #[test]
    fn unknown_pre_sign_up_sources_fail_closed() {
        // The same checks as a sign-up: a domain the policy forbids is refused.
        let p = SignUpPolicy {
            allowed_email_domains: SignUpPolicy::parse_domains("example.com"),
            ..SignUpPolicy::default()
        };
        let eve = event(
            "PreSignUp_NewFlow",
            json!({"email": "eve@evil.com", "name": "Eve"}),
        );
        assert_eq!(
            handle(eve, &p).unwrap_err(),
            SignUpRejected::EmailDomainNotAllowed
        );
        let nameless = event("PreSignUp_NewFlow", json!({"phone_number": "+15555550100"}));
        assert!(matches!(
            handle(nameless, &SignUpPolicy::default()),
            Err(SignUpRejected::NoDisplayName(_))
        ));
        // Allowed: answered like a sign-up; response members we do not know stay.
        let mut ada = event(
            "PreSignUp_NewFlow",
            json!({"email": "ada@example.com", "name": "Ada"}),
        );
        ada["response"]["futureFlag"] = json!("kept");
        let (out, decision) = handle(ada.clone(), &policy()).unwrap();
        assert_eq!(
            decision,
            SignUpDecision::Allowed {
                auto_confirmed: true,
                email_verified: true
            }
        );
        assert_eq!(out["response"]["futureFlag"], json!("kept"));
        assert_eq!(out["response"]["autoConfirmUser"], json!(true));
        assert_eq!(out["request"], ada["request"]);
    }

    #[test]
    fn other_triggers_pass_through_and_a_missing_source_is_refused() {
        let e = event("PostConfirmation_ConfirmSignUp", json!({}));
        let (out, decision) = handle(e.clone(), &policy()).unwrap();
        assert_eq!(decision, SignUpDecision::PassedThrough);
        assert_eq!(out, e);
        for source in [json!(null), json!(5)] {
            let mut e = event("x", json!({"name": "Ada", "email": "ada@example.com"}));
            e["triggerSource"] = source;
            assert!(matches!(
                handle(e, &policy()),
                Err(SignUpRejected::InvalidEvent(_))
            ));
        }
    }

    #[test]
    fn non_objects_are_a_clear_error() {
        for bad in [json!(null), json!([1]), json!("x")] {
            assert!(matches!(
                handle(bad, &policy()),
                Err(SignUpRejected::InvalidEvent(_))
            ));
        }
    }
}
