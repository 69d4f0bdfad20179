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
//! - `userIdClaim` (default `sub`): the claim holding the user's id. A
//!   Cognito `custom:` attribute is refused unless
//!   `userIdClaimIsAdminControlled` is `true`: users can write their own
//!   custom attributes unless the app client's write attributes exclude it,
//!   and a user who sets it to a victim's id would become the victim.
//! - `userIdFormat` (default `uuid`): `uuid`, the claim is the
//!   AppInstanceUserId (Cognito `sub`, Entra `oid`); or `uuid-v5`, for ids
//!   that are not UUIDs (Okta `00u…`, Auth0 `auth0|…`): the id is
//!   [`derived_user_id`](crate::identity::derived_user_id)`(idNamespace, claim)`,
//!   `idNamespace` defaulting to the issuer URL. Two `uuid-v5` issuers share
//!   ids only when they name the same `idNamespace`.
//! - `sharesUsersWith` (optional): other sign-in sources (`pool`, or other
//!   issuers' `key`s) whose users this issuer may act as. Without it an
//!   issuer acts only for its own users, those of the sources that do not
//!   sign in (the feed, SCIM, LDAP) and those nobody owns: another IdP's
//!   administrator cannot mint credentials for users it does not vouch for.
//! - `authorizedParties` (optional): accepted `azp` values, which a token
//!   must then carry. Without it, a token with several audiences must carry
//!   an `azp` that is one of `audiences` (OpenID Connect Core 1.0, 2).
//! - `tokenTypes` (optional): accepted JOSE `typ` header values (`JWT`,
//!   `at+jwt`, ...; compared without case or an `application/` prefix), so
//!   an IdP's ID and access tokens cannot stand in for each other.
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

use super::url_rule::check_url;

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
    /// How the claim becomes the AppInstanceUserId.
    pub user_id_format: UserIdFormat,
    /// Other sign-in sources whose users this issuer may act as.
    pub shares_users_with: Vec<Source>,
    /// Accepted `azp`; empty: the multi-audience rule only.
    pub authorized_parties: Vec<String>,
    /// Accepted `typ` header values, normalised; empty: any.
    pub token_types: Vec<String>,
}

/// How an issuer's user id claim becomes the AppInstanceUserId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserIdFormat {
    /// The claim is the id, a UUID.
    Uuid,
    /// The id is [`derived_user_id`](crate::identity::derived_user_id) of the
    /// claim in this namespace (by default the issuer URL).
    UuidV5 { namespace: String },
}

impl TrustedIssuer {
    /// Whether this issuer may act as a user `owner` owns: its own, those of
    /// sources that never sign in (feed, SCIM, LDAP), or those of the sign-in
    /// sources it is configured to share with.
    pub fn may_act_for(&self, owner: &Source) -> bool {
        *owner == self.source || !owner.signs_in() || self.shares_users_with.contains(owner)
    }
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
    #[serde(default)]
    user_id_format: Option<String>,
    #[serde(default)]
    id_namespace: Option<String>,
    #[serde(default)]
    user_id_claim_is_admin_controlled: bool,
    #[serde(default)]
    shares_users_with: Vec<String>,
    #[serde(default)]
    authorized_parties: Vec<String>,
    #[serde(default)]
    token_types: Vec<String>,
}

/// The fields of an issuer's settings, for error messages.
const FIELDS: &str = "audiences, userIdClaim, userIdFormat = uuid|uuid-v5, idNamespace, \
    userIdClaimIsAdminControlled, sharesUsersWith, authorizedParties, tokenTypes, tokenUse = \
    id|access, jwksUri, key, source = pool";

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
            let parsed = parse_issuer(&issuer, settings)
                .map_err(|what| IssuerConfigError(format!("issuer {issuer}: {what}")))?;
            if let Some(other) = issuers.values().find(|i| i.key == parsed.key) {
                return Err(IssuerConfigError(format!(
                    "issuer {issuer}: its key `{}` is also {}'s: give each issuer its own `key`",
                    parsed.key, other.issuer
                )));
            }
            issuers.insert(issuer, parsed);
        }
        check_shared_sources(&issuers)?;
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

/// One issuer's settings, checked; the error names the field at fault.
fn parse_issuer(issuer: &str, settings: serde_json::Value) -> Result<TrustedIssuer, String> {
    check_url(issuer).map_err(|why| format!("the issuer URL {why}"))?;
    let raw: RawIssuer =
        serde_json::from_value(settings).map_err(|e| format!("{e} (fields: {FIELDS})"))?;
    if raw.audiences.is_empty() || raw.audiences.iter().any(|a| a.trim().is_empty()) {
        return Err("`audiences` must list at least one non-empty audience or client id".into());
    }
    let user_id_claim = match raw.user_id_claim.as_deref().map(str::trim) {
        None => "sub".to_owned(),
        Some("") => return Err("`userIdClaim` is blank".into()),
        Some(c) => c.to_owned(),
    };
    if user_id_claim.starts_with("custom:") && !raw.user_id_claim_is_admin_controlled {
        return Err(format!(
            "`userIdClaim` {user_id_claim} is a Cognito custom attribute, which users can set \
             on themselves unless the app client's write attributes exclude it; exclude it, \
             then set `userIdClaimIsAdminControlled: true`"
        ));
    }
    let jwks = match raw.jwks_uri {
        Some(uri) => {
            check_url(&uri).map_err(|why| format!("`jwksUri` {why}"))?;
            JwksLocation::Explicit(uri)
        }
        None => JwksLocation::Discovery(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )),
    };
    let key = raw.key.unwrap_or_else(|| host_of(issuer));
    let named = Source::issuer(&key).map_err(|_| {
        format!("the key `{key}` must be 1-40 of a-z, 0-9, '.', '_', '-' (set `key`)")
    })?;
    let source = match raw.source.as_deref() {
        None => named,
        Some("pool") => Source::pool(),
        Some(other) => return Err(format!("`source` must be pool, not `{other}`")),
    };
    let user_id_format = match (raw.user_id_format.as_deref(), raw.id_namespace) {
        (None | Some("uuid"), None) => UserIdFormat::Uuid,
        (Some("uuid-v5"), namespace) => UserIdFormat::UuidV5 {
            namespace: namespace.unwrap_or_else(|| issuer.to_owned()),
        },
        (None | Some("uuid"), Some(_)) => {
            return Err("`idNamespace` needs `userIdFormat: \"uuid-v5\"`".into());
        }
        (Some(other), _) => {
            return Err(format!(
                "`userIdFormat` must be uuid or uuid-v5, not `{other}`"
            ));
        }
    };
    let shares_users_with =
        raw.shares_users_with
            .iter()
            .map(|name| match name.as_str() {
                "pool" => Ok(Source::pool()),
                key => Source::issuer(key)
                    .map_err(|_| format!("`sharesUsersWith`: `{key}` is not a key")),
            })
            .collect::<Result<Vec<_>, _>>()?;
    if raw.token_types.iter().any(|t| t.trim().is_empty()) {
        return Err("`tokenTypes` lists a blank type".into());
    }
    Ok(TrustedIssuer {
        issuer: issuer.to_owned(),
        audiences: raw.audiences,
        user_id_claim,
        token_use: raw.token_use,
        jwks,
        key,
        source,
        user_id_format,
        shares_users_with,
        authorized_parties: raw.authorized_parties,
        token_types: raw.token_types.iter().map(|t| normalised_type(t)).collect(),
    })
}

/// Every `sharesUsersWith` names `pool` or another configured issuer.
fn check_shared_sources(
    issuers: &BTreeMap<String, TrustedIssuer>,
) -> Result<(), IssuerConfigError> {
    for issuer in issuers.values() {
        for shared in &issuer.shares_users_with {
            let known = *shared == Source::pool() || issuers.values().any(|i| i.source == *shared);
            if !known {
                return Err(IssuerConfigError(format!(
                    "issuer {}: `sharesUsersWith` names {shared}, which is neither pool nor \
                     another issuer's key",
                    issuer.issuer
                )));
            }
        }
    }
    Ok(())
}

/// A JOSE `typ` as compared: lower-case, without `application/` (RFC 7515, 4.1.9).
pub fn normalised_type(typ: &str) -> String {
    let typ = typ.trim().to_ascii_lowercase();
    typ.strip_prefix("application/").unwrap_or(&typ).to_owned()
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
