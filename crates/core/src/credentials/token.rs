//! Validating a bearer token against the trusted issuers.
//!
//! jsonwebtoken does the JWT work (signature, `exp`, `nbf`, `iss`, `aud`,
//! critical header extensions); ring does the signature maths
//! ([`super::ring_provider`]). What this module adds is policy:
//!
//! - tokens over 16 KB are refused before anything is parsed;
//! - only asymmetric algorithms (RS*, PS*, ES256/ES384); `none` and HS* never;
//! - the algorithm comes from the issuer's key: the JWK's `alg` when it has
//!   one, else its key type and curve. The header must agree, so a token can
//!   never pick how its own signature is checked;
//! - `aud`, when present, is a non-empty string or a non-empty array of
//!   them: `null`, `[]`, a number are refused (jsonwebtoken reads a `null`
//!   `aud` as absent, which would skip the audience check);
//! - `client_id` instead of `aud` for tokens without `aud` (Cognito access
//!   tokens), and `token_use` where the issuer is configured with one;
//! - a token for several audiences names this application as `azp`, or one
//!   of the issuer's `authorizedParties` (then required of every token);
//! - the header's `typ` is one of the issuer's `tokenTypes`, when configured;
//! - `exp` (required), `nbf` and `iat` are NumericDates, integer or not as
//!   RFC 7519 allows, with 60 s of leeway; an `iat` in the future is refused;
//! - the user id comes from the issuer's claim and format
//!   ([`UserIdFormat`]): a UUID as it is, or UUID v5 of any other id.
//!
//! Errors name what failed, for the log and the metric; the client sees one
//! code ([`TokenError::public_code`]). They never echo the token or its claims.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use thiserror::Error;

use super::issuers::{TrustedIssuer, TrustedIssuers, UserIdFormat, normalised_type};
use super::keys::{JwksSource, KeyCache, KeyError};
use super::ring_provider;
use crate::identity::{UserId, derived_user_id};

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;

/// The algorithms a token may be signed with.
const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub user_id: UserId,
    /// Seconds since the epoch.
    pub expires_at: u64,
    /// `iat`, seconds since the epoch, when the token says.
    pub issued_at: Option<u64>,
    /// All claims, for the display name (`DISPLAY_NAME_ATTRIBUTES`).
    pub claims: Map<String, Value>,
}

/// Why a token was refused. Every variant but [`TokenError::KeysUnavailable`]
/// is the client's problem (401).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("the token is {0} bytes long; at most 16384 are accepted")]
    TooLarge(usize),
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error(
        "the token's algorithm is not allowed (only RS256, RS384, RS512, PS256, PS384, PS512, ES256 and ES384, as the issuer's key says)"
    )]
    AlgorithmNotAllowed,
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    #[error("the issuer has no signing key with the token's kid")]
    UnknownKey,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token is not meant for this application (aud or client_id)")]
    WrongAudience,
    #[error("the token's aud must be a string or a non-empty array of strings")]
    MalformedAudience,
    #[error("the token was not issued to this application (azp)")]
    WrongAuthorizedParty,
    #[error("the token's typ header is not one this issuer's tokens may have")]
    WrongType,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the token's token_use must be `{expected}`")]
    WrongTokenUse { expected: &'static str },
    #[error("the token has no valid `{0}` claim")]
    MissingClaim(String),
    #[error("the token's user id is not a valid Chime user id: {0}")]
    InvalidUserId(&'static str),
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable(String),
}

impl TokenError {
    /// The stable `error` field of the 401 body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "token_too_large",
            Self::Malformed(_) => "malformed_token",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "invalid_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::MalformedAudience => "malformed_audience",
            Self::WrongAuthorizedParty => "wrong_authorized_party",
            Self::WrongType => "wrong_token_type",
            Self::IssuedInFuture => "issued_in_future",
            Self::WrongTokenUse { .. } => "wrong_token_use",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidUserId(_) => "invalid_user_id",
            Self::KeysUnavailable(_) => "jwks_unavailable",
        }
    }

    /// The code the client sees: `invalid_token` for every token that fails
    /// authentication (RFC 6750, 3.1), so an unauthenticated caller learns
    /// neither which issuers are trusted nor which key ids exist; except an
    /// expired token, so a client knows to refresh, and keys that cannot be
    /// fetched, which are not the client's fault (503).
    pub fn public_code(&self) -> &'static str {
        match self {
            Self::Expired | Self::KeysUnavailable(_) => self.code(),
            _ => "invalid_token",
        }
    }
}

/// What `aud` a token carries, read before its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// None: `client_id` stands in (Cognito access tokens).
    Absent,
    /// A string, or an array of this many strings.
    Present(usize),
}

/// Check `token` against the trusted issuers and their keys.
pub async fn validate<S: JwksSource>(
    token: &str,
    issuers: &TrustedIssuers,
    keys: &KeyCache<S>,
) -> Result<VerifiedToken, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge(token.len()));
    }
    let header = read_header(token)?;
    let (issuer, audience) = unverified_issuer(token, issuers)?;
    check_type(issuer, &header)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed("the header has no kid"))?;
    let jwk = keys.key(issuer, kid).await.map_err(|e| match e {
        KeyError::UnknownKey => TokenError::UnknownKey,
        KeyError::Unavailable(why) => TokenError::KeysUnavailable(why),
    })?;
    let algorithm = algorithm_from_key(&jwk, &header)?;
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|_| TokenError::KeysUnavailable(format!("the issuer's key {kid} is malformed")))?;

    // jsonwebtoken checks the signature, `iss` and `aud`; the times are
    // checked below, since it reads them as integers only.
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = HashSet::from(["iss".to_owned()]);
    validation.set_issuer(&[issuer.issuer.as_str()]);
    match audience {
        Audience::Present(_) => validation.set_audience(&issuer.audiences),
        // Checked below against client_id: jsonwebtoken knows only `aud`.
        Audience::Absent => validation.validate_aud = false,
    }
    ring_provider::install();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| from_jwt_error(e.kind()))?;
    let claims = data.claims;
    check_party(issuer, audience, &claims)?;
    check_token_use(issuer, &claims)?;
    let times = check_times(&claims, now_seconds())?;
    Ok(VerifiedToken {
        issuer: issuer.issuer.clone(),
        user_id: user_id(issuer, &claims)?,
        expires_at: times.expires_at,
        issued_at: times.issued_at,
        claims,
    })
}

/// The header's `typ`, when the issuer lists the types its tokens may have.
fn check_type(issuer: &TrustedIssuer, header: &Map<String, Value>) -> Result<(), TokenError> {
    if issuer.token_types.is_empty() {
        return Ok(());
    }
    let typ = header
        .get("typ")
        .and_then(Value::as_str)
        .map(normalised_type);
    match typ {
        Some(t) if issuer.token_types.contains(&t) => Ok(()),
        _ => Err(TokenError::WrongType),
    }
}

/// `client_id` for a token without `aud`; `azp` for one with several
/// audiences, or with any when the issuer lists its authorized parties.
fn check_party(
    issuer: &TrustedIssuer,
    audience: Audience,
    claims: &Map<String, Value>,
) -> Result<(), TokenError> {
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if audience == Audience::Absent {
        let client_id = claim("client_id");
        if !client_id.is_some_and(|c| issuer.audiences.iter().any(|a| a == c)) {
            return Err(TokenError::WrongAudience);
        }
    }
    let azp = claim("azp");
    let allowed = if issuer.authorized_parties.is_empty() {
        &issuer.audiences
    } else {
        &issuer.authorized_parties
    };
    let several = matches!(audience, Audience::Present(n) if n > 1);
    let needs_azp = !issuer.authorized_parties.is_empty() || several;
    if (needs_azp || azp.is_some()) && !azp.is_some_and(|p| allowed.iter().any(|a| a == p)) {
        return Err(TokenError::WrongAuthorizedParty);
    }
    Ok(())
}

fn check_token_use(issuer: &TrustedIssuer, claims: &Map<String, Value>) -> Result<(), TokenError> {
    match issuer.token_use {
        Some(expected)
            if claims.get("token_use").and_then(Value::as_str) != Some(expected.as_str()) =>
        {
            Err(TokenError::WrongTokenUse {
                expected: expected.as_str(),
            })
        }
        _ => Ok(()),
    }
}

/// The token's times, whole seconds.
struct Times {
    expires_at: u64,
    issued_at: Option<u64>,
}

/// `exp` (required), `nbf` and `iat` against `now`, with [`LEEWAY_SECONDS`].
fn check_times(claims: &Map<String, Value>, now: f64) -> Result<Times, TokenError> {
    let leeway = LEEWAY_SECONDS as f64;
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
    if exp + leeway < now {
        return Err(TokenError::Expired);
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TokenError::NotYetValid);
    }
    let iat = numeric_date(claims, "iat")?;
    if iat.is_some_and(|iat| iat > now + leeway) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(Times {
        expires_at: exp as u64,
        issued_at: iat.map(|s| s as u64),
    })
}

/// A NumericDate claim (RFC 7519, 2: seconds, not necessarily whole); a
/// claim that is not a finite number of seconds since the epoch is missing.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Some)
            .ok_or_else(|| TokenError::MissingClaim(name.to_owned())),
    }
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The AppInstanceUserId the issuer's claim names, by its format.
fn user_id(issuer: &TrustedIssuer, claims: &Map<String, Value>) -> Result<UserId, TokenError> {
    let Some(Value::String(raw)) = claims.get(&issuer.user_id_claim) else {
        return Err(TokenError::MissingClaim(issuer.user_id_claim.clone()));
    };
    match &issuer.user_id_format {
        UserIdFormat::Uuid => {
            UserId::parse(raw).map_err(|e| TokenError::InvalidUserId(invalid_id_reason(&e)))
        }
        UserIdFormat::UuidV5 { .. } if raw.is_empty() => {
            Err(TokenError::MissingClaim(issuer.user_id_claim.clone()))
        }
        UserIdFormat::UuidV5 { namespace } => Ok(derived_user_id(namespace, raw)),
    }
}

fn invalid_id_reason(e: &crate::error::InputError) -> &'static str {
    match e {
        crate::error::InputError::InvalidUserId(why) => why,
        _ => "it is not a UUID",
    }
}

/// The JOSE header as JSON, read before anything is trusted so a refused
/// algorithm (`none`, HS256, ...) is reported as such.
fn read_header(token: &str) -> Result<Map<String, Value>, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "it must have three dot-separated parts",
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("the header is not a JSON object"))?;
    header_algorithm(&header)?;
    Ok(header)
}

/// The header's `alg`, if it is one of [`ALLOWED`].
fn header_algorithm(header: &Map<String, Value>) -> Result<Algorithm, TokenError> {
    header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|a| a.parse::<Algorithm>().ok())
        .filter(|a| ALLOWED.contains(a))
        .ok_or(TokenError::AlgorithmNotAllowed)
}

/// The trusted issuer a token claims to come from, verified or not: what a
/// refusal is logged with (the configured issuer, never text from the token).
pub fn claimed_issuer<'a>(token: &str, issuers: &'a TrustedIssuers) -> Option<&'a TrustedIssuer> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    unverified_issuer(token, issuers)
        .ok()
        .map(|(issuer, _)| issuer)
}

/// The trusted issuer the (not yet verified) `iss` names, and the shape of
/// its `aud`. Verification then checks `iss` again.
fn unverified_issuer<'a>(
    token: &str,
    issuers: &'a TrustedIssuers,
) -> Result<(&'a TrustedIssuer, Audience), TokenError> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| TokenError::Malformed("the payload is not a base64url JSON object"))?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
    let issuer = issuers.get(iss).ok_or(TokenError::UntrustedIssuer)?;
    let audience = match claims.get("aud") {
        None => Audience::Absent,
        Some(Value::String(a)) if !a.is_empty() => Audience::Present(1),
        Some(Value::Array(all))
            if !all.is_empty()
                && all
                    .iter()
                    .all(|a| a.as_str().is_some_and(|a| !a.is_empty())) =>
        {
            Audience::Present(all.len())
        }
        Some(_) => return Err(TokenError::MalformedAudience),
    };
    Ok((issuer, audience))
}

/// The one algorithm the issuer's key allows, which the header must name.
fn algorithm_from_key(jwk: &Jwk, header: &Map<String, Value>) -> Result<Algorithm, TokenError> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    let header_alg = header_algorithm(header)?;
    let from_jwk = match jwk.common.key_algorithm {
        Some(alg) => Some(Algorithm::try_from(alg).map_err(|_| TokenError::AlgorithmNotAllowed)?),
        None => None,
    };
    let algorithm = match (&jwk.algorithm, from_jwk) {
        (AlgorithmParameters::RSA(_), Some(alg)) => alg,
        // An RSA key without `alg` may sign with any RSA algorithm; the
        // family is the key's, the hash the header's.
        (AlgorithmParameters::RSA(_), None) if header_alg.family() == AlgorithmFamily::Rsa => {
            header_alg
        }
        (AlgorithmParameters::EllipticCurve(ec), alg) => {
            let by_curve = match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(TokenError::AlgorithmNotAllowed),
            };
            if alg.is_some_and(|a| a != by_curve) {
                return Err(TokenError::AlgorithmNotAllowed);
            }
            by_curve
        }
        _ => return Err(TokenError::AlgorithmNotAllowed),
    };
    if !ALLOWED.contains(&algorithm) || algorithm != header_alg {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    Ok(algorithm)
}

fn from_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::UntrustedIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            TokenError::MissingClaim(claim.clone())
        }
        ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::Provider(_) => TokenError::BadSignature,
        _ => TokenError::Malformed("its header or payload cannot be read"),
    }
}
