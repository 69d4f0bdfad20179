//! The real SDK clients on the wire, against the local fakes: one test binary for the crate,
//! one module per service. No AWS credentials, no internet, ephemeral ports, bounded time.

mod chime;
mod chime_fake_sdk;
mod cognito;
mod jwks_https;
mod sts;
