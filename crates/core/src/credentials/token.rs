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
//! - 60 s of leeway on `exp` and `nbf`;
//! - `client_id` instead of `aud` for tokens without `aud` (Cognito access
//!   tokens), and `token_use` where the issuer is configured with one;
//! - the user id claim must be a valid Chime user id (a UUID, lower-cased as
//!   provisioning does).
//!
//! Errors name what failed and never echo the token or its claims.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use thiserror::Error;

use super::issuers::{TrustedIssuer, TrustedIssuers};
use super::keys::{JwksSource, KeyCache, KeyError};
use super::ring_provider;
use crate::identity::UserId;

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
            Self::WrongTokenUse { .. } => "wrong_token_use",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidUserId(_) => "invalid_user_id",
            Self::KeysUnavailable(_) => "jwks_unavailable",
        }
    }
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
    let (issuer, has_aud) = unverified_issuer(token, issuers)?;
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

    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.required_spec_claims = HashSet::from(["exp".to_owned(), "iss".to_owned()]);
    validation.set_issuer(&[issuer.issuer.as_str()]);
    if has_aud {
        validation.set_audience(&issuer.audiences);
    } else {
        // Checked below against client_id: jsonwebtoken knows only `aud`.
        validation.validate_aud = false;
    }
    ring_provider::install();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| from_jwt_error(e.kind()))?;
    let claims = data.claims;

    if !has_aud {
        let client_id = claims.get("client_id").and_then(Value::as_str);
        if !client_id.is_some_and(|c| issuer.audiences.iter().any(|a| a == c)) {
            return Err(TokenError::WrongAudience);
        }
    }
    if let Some(expected) = issuer.token_use
        && claims.get("token_use").and_then(Value::as_str) != Some(expected.as_str())
    {
        return Err(TokenError::WrongTokenUse {
            expected: expected.as_str(),
        });
    }
    let user_id = match claims.get(&issuer.user_id_claim) {
        Some(Value::String(raw)) => {
            UserId::parse(raw).map_err(|e| TokenError::InvalidUserId(invalid_id_reason(&e)))?
        }
        _ => return Err(TokenError::MissingClaim(issuer.user_id_claim.clone())),
    };
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s as u64);
    Ok(VerifiedToken {
        issuer: issuer.issuer.clone(),
        user_id,
        expires_at,
        issued_at,
        claims,
    })
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

/// The trusted issuer the (not yet verified) `iss` names, and whether the
/// token has an `aud` claim. Verification then checks `iss` again.
fn unverified_issuer<'a>(
    token: &str,
    issuers: &'a TrustedIssuers,
) -> Result<(&'a TrustedIssuer, bool), TokenError> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| TokenError::Malformed("the payload is not a base64url JSON object"))?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
    let issuer = issuers.get(iss).ok_or(TokenError::UntrustedIssuer)?;
    Ok((issuer, claims.contains_key("aud")))
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
