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
//! - [`http`] is the one HTTPS stack (rustls on *ring*, compiled-in roots, `SSL_CERT_FILE`):
//!   [`lambda_sdk_config`] and [`sdk_config_loader`] put it into every `SdkConfig`, so every
//!   client built from one uses it; non-SDK HTTPS takes [`http::rustls_client_config`].
//!
//! The Lambda `main.rs` files only wire these together; logging is set up
//! by `chime_sync_runtime::init_tracing`, which honours
//! `AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL` as lambda_runtime's
//! default subscriber does, and keeps TRACE to this workspace's crates.

pub mod chime;
pub mod cognito;
pub mod config;
pub mod http;
pub mod jwks;
pub mod retry;
pub mod sqs;
pub mod sts;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::{BehaviorVersion, ConfigLoader};

pub use aws_config::SdkConfig;
pub use chime::{ChimeConfig, ChimeDirectory};
pub use cognito::{CognitoConfig, CognitoUserPool, UserPoolId};
pub use config::{
    ConfigError, CredentialExchangeConfig, IdpSyncConfig, PostConfirmationConfig, PreSignupConfig,
    ReconcileConfig,
};
pub use http::{RootSet, TlsError, TrustRoots};
pub use jwks::HttpsJwksSource;
pub use retry::ChimeThrottlingClassifier;
pub use sqs::SqsQueue;
pub use sts::StsCredentialIssuer;

/// An `aws-config` loader with the full default chains (profiles, SSO-less credential chain
/// with STS web identity, ECS and IMDS, region from profile or IMDS) that uses our HTTPS stack
/// ([`http::sdk_http_client`]) for the SDK clients and for those providers. For the CLI and
/// tools that run on laptops and CI; the Lambda functions use [`lambda_sdk_config`].
pub fn sdk_config_loader(roots: &TrustRoots) -> Result<ConfigLoader, TlsError> {
    Ok(aws_config::defaults(BehaviorVersion::latest()).http_client(http::sdk_http_client(roots)?))
}

/// The shared AWS configuration of a Lambda function, from the environment Lambda sets.
///
/// Lambda hands a function its credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN`, and its region in `AWS_REGION`, so only the environment providers are
/// installed: the default chains would also build an STS client (web identity, assume-role
/// profiles) and an IMDS client that a Lambda never calls, which measurably slows every cold
/// start. The one Lambda feature that needs another provider is SnapStart (credentials over a
/// container endpoint), open to `provided.al2023` only as a container image; template.yaml
/// deploys zip archives. Everything else
/// `aws-config` reads from the environment still applies, notably the endpoint overrides
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`.
///
/// The HTTP client is [`http::sdk_http_client`] with the roots `SSL_CERT_FILE` chooses; a bad
/// `SSL_CERT_FILE` is the error. Load it once per sandbox, before the runtime loop; each client
/// derives its own settings from it (the Chime client overrides the region with the
/// AppInstance's).
pub async fn lambda_sdk_config() -> Result<SdkConfig, TlsError> {
    let roots = TrustRoots::from_env()?;
    Ok(sdk_config_loader(&roots)?
        .region(EnvironmentVariableRegionProvider::new())
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .load()
        .await)
}
