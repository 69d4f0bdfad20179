//! Test doubles for the credential exchange, shared by the unit tests of
//! `chime-sync-core` and `chime-sync-aws` and the end-to-end tests:
//!
//! - [`keys`]: RSA and EC signing keys made at test time, their JWKs, tokens
//!   signed by them, and forged ones (`alg: none`, HS256 with the public key,
//!   tampered payloads); plus the fixed demo keys of `events/credential-exchange/`.
//! - [`idp`]: a local OIDC discovery + JWKS server, over HTTP or HTTPS.
//! - [`TestCa`]: the throw-away CA for that HTTPS server, the Chime fake's
//!   (`chime_identity_fake::TestCa`), so one root serves every local HTTPS server.
//! - [`sts`]: a local STS endpoint that records requests and answers in XML.

pub mod idp;
pub mod keys;
pub mod serve;
pub mod sts;

pub use chime_identity_fake::TestCa;
pub use idp::LocalIdp;
pub use keys::TestKey;
pub use sts::{LocalSts, StsAnswer, StsRequest};
