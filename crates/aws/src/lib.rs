//! AWS adapters of chime-identity-sync.
//!
//! - [`ChimeDirectory`] implements the domain's `Directory` port with
//!   `aws-sdk-chimesdkidentity`, mapping every SDK error into a
//!   `DirectoryError` in one place and retrying Chime's throttling, which the
//!   SDK's standard retry does not ([`retry`]).
//! - [`SqsQueue`] implements the `Queue` port with `aws-sdk-sqs` (batches with
//!   `SendMessageBatch`).
//! - [`CognitoUserPool`] implements the `UserPool` port with
//!   `aws-sdk-cognitoidentityprovider` (`ListUsers`).
//! - [`StsCredentialIssuer`] implements the credential exchange's
//!   `CredentialIssuer` port with `aws-sdk-sts` (`AssumeRole` with a session tag).
//! - [`HttpsJwksSource`] fetches the identity providers' discovery documents
//!   and JWKS over hyper + rustls ([`jwks::tls_client_config`]).
//! - [`config`] reads and validates each function's environment at start-up.
//!
//! The Lambda `main.rs` files only wire these together; logging is set up
//! by `chime_sync_runtime::init_tracing`, which honours
//! `AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL` as lambda_runtime's
//! default subscriber does, and keeps TRACE to this workspace's crates.

pub mod chime;
pub mod cognito;
pub mod config;
pub mod jwks;
pub mod retry;
pub mod sqs;
pub mod sts;

pub use aws_config::SdkConfig;
pub use chime::{ChimeConfig, ChimeDirectory};
pub use cognito::{CognitoConfig, CognitoUserPool, UserPoolId};
pub use config::{
    ConfigError, CredentialExchangeConfig, IdpSyncConfig, PostConfirmationConfig, PreSignupConfig,
    ReconcileConfig,
};
pub use jwks::{HttpsJwksSource, tls_client_config};
pub use retry::ChimeThrottlingClassifier;
pub use sqs::SqsQueue;
pub use sts::StsCredentialIssuer;

/// The shared AWS configuration (credentials, region, endpoint overrides)
/// from the standard sources: in Lambda, the environment the runtime sets.
///
/// Load it once per sandbox, before the runtime loop; each client derives its
/// own settings from it (the Chime client overrides the region with the
/// AppInstance's).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
