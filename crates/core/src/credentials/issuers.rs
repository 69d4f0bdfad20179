//! Which identity providers the credential exchange trusts (`TRUSTED_ISSUERS`).
//!
//! A JSON object from issuer URL (exactly as the tokens' `iss` claim spells
//! it) to what a token of that issuer must carry:
//!
//! ```json
//! {"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E":
//!     {"audiences": ["4f6vu0mdabcdefghijk1234567"], "tokenUse": "id"},
//!  "https://example.okta.com/oauth2/default":
//!     {"audiences": ["api://chat"], "userIdClaim": "chime_user_id",
//!      "jwksUri": "https://example.okta.com/oauth2/default/v1/keys"}}
//! ```
//!
//! - `audiences` (required): accepted `aud` values; a token without `aud`
//!   (a Cognito access token) must carry one of them as `client_id`.
//! - `userIdClaim` (default `sub`): the claim holding the user's UUID, which
//!   becomes the AppInstanceUserId.
//! - `tokenUse` (optional, `id` or `access`): the Cognito `token_use` claim
//!   a token must carry.
//! - `jwksUri` (optional): where the keys are; without it they are found by
//!   OIDC discovery (`{issuer}/.well-known/openid-configuration`).
//! - `key` (optional, 1–40 of `a-z 0-9 . _ -`; default the issuer URL's
//!   host): the issuer's name in the ownership ledger (`issuer:<key>`) and in
//!   logs. Two issuers on one host (two pools of one Region) need their own.
//! - `source` (optional, `pool`): the source users this issuer creates
//!   belong to. `pool` for the stack's own user pool, so that reconcile
//!   deletes them when they leave it; otherwise `issuer:<key>`, whose users
//!   no absence deletes.
//!
//! Parsed once at start-up; an unknown field is an error (a typo must not
//! silently disable a check).

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

use crate::ledger::Source;

/// The Cognito `token_use` claim a token must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    Id,
    Access,
}

impl TokenUse {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Access => "access",
        }
    }
}

/// Where an issuer's signing keys are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// `jwks_uri` of `{issuer}/.well-known/openid-configuration`.
    Discovery(String),
    /// A JWKS URL given in the configuration.
    Explicit(String),
}

/// One trusted issuer and the rules its tokens must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// Exactly the `iss` claim (Cognito's has no trailing slash, Auth0's has one).
    pub issuer: String,
    /// Accepted `aud` values, or `client_id` values for tokens without `aud`.
    pub audiences: Vec<String>,
    /// The claim holding the user's id (default `sub`).
    pub user_id_claim: String,
    pub token_use: Option<TokenUse>,
    pub jwks: JwksLocation,
    /// The issuer's name in the ledger and the logs.
    pub key: String,
    /// Who owns the users this issuer creates (`issuer:<key>`, or `pool`).
    pub source: Source,
}

/// Every trusted issuer, by `iss`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuers(BTreeMap<String, TrustedIssuer>);

/// What is wrong with a `TRUSTED_ISSUERS` value. The message names the
/// issuer and the field at fault; the caller adds the variable's name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct IssuerConfigError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawIssuer {
    audiences: Vec<String>,
    #[serde(default)]
    user_id_claim: Option<String>,
    #[serde(default)]
    token_use: Option<TokenUse>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

impl TrustedIssuers {
    pub const EXAMPLE: &'static str = r#"{"https://cognito-idp.REGION.amazonaws.com/POOL_ID": {"audiences": ["APP_CLIENT_ID"], "tokenUse": "id"}}"#;

    /// Parse and check a `TRUSTED_ISSUERS` value.
    pub fn parse(raw: &str) -> Result<Self, IssuerConfigError> {
        let shape = || {
            IssuerConfigError(format!(
                "must be a JSON object from issuer URL to its settings, e.g. {}",
                Self::EXAMPLE
            ))
        };
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw).map_err(|_| shape())?;
        if object.is_empty() {
            return Err(shape());
        }
        let mut issuers: BTreeMap<String, TrustedIssuer> = BTreeMap::new();
        for (issuer, settings) in object {
            let at = |what: String| IssuerConfigError(format!("issuer {issuer}: {what}"));
            check_url(&issuer).map_err(|why| at(format!("the issuer URL {why}")))?;
            let raw: RawIssuer = serde_json::from_value(settings).map_err(|e| {
                at(format!(
                    "{e} (fields: audiences, userIdClaim, tokenUse = id|access, jwksUri, key, \
                     source = pool)"
                ))
            })?;
            if raw.audiences.is_empty() || raw.audiences.iter().any(|a| a.trim().is_empty()) {
                return Err(at(
                    "`audiences` must list at least one non-empty audience or client id".into(),
                ));
            }
            let user_id_claim = match raw.user_id_claim {
                None => "sub".to_owned(),
                Some(c) if !c.trim().is_empty() => c.trim().to_owned(),
                Some(_) => return Err(at("`userIdClaim` is blank".into())),
            };
            let jwks = match raw.jwks_uri {
                Some(uri) => {
                    check_url(&uri).map_err(|why| at(format!("`jwksUri` {why}")))?;
                    JwksLocation::Explicit(uri)
                }
                None => JwksLocation::Discovery(format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                )),
            };
            let key = raw.key.unwrap_or_else(|| host_of(&issuer));
            let named = Source::issuer(&key).map_err(|_| {
                at(format!(
                    "the key `{key}` must be 1-40 of a-z, 0-9, '.', '_', '-' (set `key`)"
                ))
            })?;
            let source = match raw.source.as_deref() {
                None => named,
                Some("pool") => Source::pool(),
                Some(other) => return Err(at(format!("`source` must be pool, not `{other}`"))),
            };
            if let Some(other) = issuers.values().find(|i| i.key == key) {
                return Err(at(format!(
                    "its key `{key}` is also {}'s: give each issuer its own `key`",
                    other.issuer
                )));
            }
            issuers.insert(
                issuer.clone(),
                TrustedIssuer {
                    issuer,
                    audiences: raw.audiences,
                    user_id_claim,
                    token_use: raw.token_use,
                    jwks,
                    key,
                    source,
                },
            );
        }
        Ok(Self(issuers))
    }

    /// Issuers built in code (the replay's demo issuers), keyed by `issuer`.
    pub fn from_issuers(issuers: impl IntoIterator<Item = TrustedIssuer>) -> Self {
        Self(issuers.into_iter().map(|i| (i.issuer.clone(), i)).collect())
    }

    /// The issuer whose `iss` is exactly `iss`.
    pub fn get(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.0.get(iss)
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrustedIssuer> {
        self.0.values()
    }
}

/// An issuer's default key: its URL's host, lower-cased.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host.trim_matches(['[', ']'])
        .to_ascii_lowercase()
        .replace(':', "-")
}

/// An issuer or JWKS URL must be `https://`, or `http://` on the loopback
/// interface (a local IdP or test server): keys fetched over plain HTTP from
/// anywhere else could be swapped by anyone on the path.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = match rest.strip_prefix("[::1]") {
            Some(after) if after.is_empty() || after.starts_with([':', '/']) => "[::1]",
            _ => rest.split(['/', ':']).next().unwrap_or_default(),
        };
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(
                "must start with https:// (http:// only for 127.0.0.1, localhost or [::1])",
            );
        }
        rest
    } else {
        return Err("must start with https://");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err("must not contain a query, a fragment or spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COGNITO: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E";

    #[test]
    fn parses_issuers_with_defaults_and_discovery() {
        let raw = format!(
            r#"{{"{COGNITO}": {{"audiences": ["client-1"], "tokenUse": "id"}},
                "https://example.okta.com/oauth2/default/": {{"audiences": ["api://chat"],
                 "userIdClaim": "chime_user_id", "jwksUri": "https://example.okta.com/keys"}}}}"#
        );
        let issuers = TrustedIssuers::parse(&raw).unwrap();
        let cognito = issuers.get(COGNITO).unwrap();
        assert_eq!(cognito.user_id_claim, "sub");
        assert_eq!(cognito.token_use, Some(TokenUse::Id));
        assert_eq!(
            cognito.jwks,
            JwksLocation::Discovery(format!("{COGNITO}/.well-known/openid-configuration"))
        );
        let okta = issuers
            .get("https://example.okta.com/oauth2/default/")
            .unwrap();
        assert_eq!(okta.user_id_claim, "chime_user_id");
        assert_eq!(okta.token_use, None);
        assert_eq!(
            okta.jwks,
            JwksLocation::Explicit("https://example.okta.com/keys".into())
        );
        // Exact match on iss: the trailing slash matters, as it does to the IdP.
        assert!(
            issuers
                .get("https://example.okta.com/oauth2/default")
                .is_none()
        );
    }

    #[test]
    fn local_http_issuers_are_allowed_remote_ones_are_not() {
        assert!(
            TrustedIssuers::parse(r#"{"http://127.0.0.1:8080/idp": {"audiences": ["a"]}}"#).is_ok()
        );
        assert!(TrustedIssuers::parse(r#"{"http://[::1]:80": {"audiences": ["a"]}}"#).is_ok());
        assert!(
            TrustedIssuers::parse(r#"{"http://localhost.example.com": {"audiences": ["a"]}}"#)
                .is_err()
        );
        let err = TrustedIssuers::parse(r#"{"http://idp.example.com": {"audiences": ["a"]}}"#)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "issuer http://idp.example.com: the issuer URL must start with https://"
            ),
            "{err}"
        );
    }

    #[test]
    fn each_mistake_is_named() {
        let cases = [
            ("", "must be a JSON object"),
            ("[]", "must be a JSON object"),
            ("{}", "must be a JSON object"),
            (r#"{"https://i": {}}"#, "missing field `audiences`"),
            (
                r#"{"https://i": {"audiences": []}}"#,
                "`audiences` must list",
            ),
            (
                r#"{"https://i": {"audiences": [" "]}}"#,
                "`audiences` must list",
            ),
            (
                r#"{"https://i": {"audiences": ["a"], "tokenUse": "refresh"}}"#,
                "unknown variant `refresh`",
            ),
            (
                r#"{"https://i": {"audiences": ["a"], "audience": "b"}}"#,
                "unknown field `audience`",
            ),
            (
                r#"{"https://i": {"audiences": ["a"], "userIdClaim": " "}}"#,
                "`userIdClaim` is blank",
            ),
            (
                r#"{"https://i": {"audiences": ["a"], "jwksUri": "ftp://x"}}"#,
                "`jwksUri` must start with https://",
            ),
            (r#"{"https://": {"audiences": ["a"]}}"#, "has no host"),
            (r#"{"https://i?x=1": {"audiences": ["a"]}}"#, "query"),
        ];
        for (raw, why) in cases {
            let err = TrustedIssuers::parse(raw).unwrap_err().to_string();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }
}
