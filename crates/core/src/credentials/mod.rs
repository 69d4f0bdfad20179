//! Credential exchange: a signed-in user's JWT in, temporary AWS credentials
//! that may act only as that user's Chime AppInstanceUser out.
//!
//! - [`issuers`]: the trusted issuers (`TRUSTED_ISSUERS`) and their rules.
//! - [`keys`]: the [`JwksSource`](keys::JwksSource) port and the per-sandbox
//!   key cache (OIDC discovery, refetch on an unknown `kid` at most once a minute).
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
pub mod sts;
pub mod token;

pub use issuers::{IssuerConfigError, JwksLocation, TokenUse, TrustedIssuer, TrustedIssuers};
pub use keys::{FetchError, JwksSource, KeyCache, KeyError};
pub use sts::{
    AssumeRoleRequest, CredentialIssuer, IssueError, MAX_SESSION, MIN_SESSION,
    TemporaryCredentials, USER_TAG,
};
pub use token::{TokenError, VerifiedToken};
