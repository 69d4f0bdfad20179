//! Credential exchange: a signed-in user's JWT in, temporary AWS credentials
//! that may act only as that user's Chime AppInstanceUser out.
//!
//! - [`issuers`]: the trusted issuers (`TRUSTED_ISSUERS`) and their rules.
//! - [`keys`]: the [`JwksSource`](keys::JwksSource) port and the per-sandbox
//!   key cache (OIDC discovery; keys kept for the JWKS's `max-age` within
//!   5 min to 24 h; one fetch per issuer at a time, failures remembered 30 s,
//!   an unknown `kid` refetches at most once a minute).
//! - [`token`]: validation with jsonwebtoken, over [`ring_provider`].
//! - [`sts`]: the [`CredentialIssuer`](sts::CredentialIssuer) port and the
//!   `AssumeRole` request the domain builds (session tag `UserUUID`).
//! - [`memory`]: in-memory doubles of both ports.
//!
//! The HTTP handler that ties them to the `Directory` port is
//! [`crate::handlers::credential_exchange`].

pub mod issuers;
pub mod keys;
pub mod memory;
pub mod ring_provider;
pub mod sessions;
pub mod sts;
pub mod token;
pub(crate) mod url_rule;

pub use issuers::{
    IssuerConfigError, JwksLocation, TokenUse, TrustedIssuer, TrustedIssuers, UserIdFormat,
};
pub use keys::{FetchError, Fetched, JwksSource, KeyCache, KeyError};
pub use sts::{
    AssumeRoleRequest, CredentialIssuer, ISSUER_TAG, IssueError, MAX_SESSION, MIN_SESSION,
    TemporaryCredentials, USER_TAG,
};
pub use token::{TokenError, VerifiedToken};
