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
use aws_config::identity::IdentityCache;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_sdk_sts::config::{Credentials, StalledStreamProtectionConfig};

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
///
/// Two per-request costs are cut, each measured with callgrind (docs/PERFORMANCE.md):
/// - the credentials are read from the environment once, at start-up, and handed to the
///   clients as they are, with no identity cache: Lambda sets them when it starts the sandbox
///   and never changes them while it runs, so the cache's per-request lookup and expiry check
///   guard against nothing. Without them in the environment (outside Lambda), the environment
///   provider is installed as before and names the missing variable at the first call;
/// - stalled-stream protection is off. It wraps every request and response body in a
///   throughput monitor with its own timer, to fail a transfer that stalls for 5 s; every call
///   the functions make already runs under an operation timeout shorter than the Lambda
///   deadline (the Chime budget, the queue and STS timeouts), which ends a stalled transfer
///   just as surely, and the bodies are a few hundred bytes.
pub async fn lambda_sdk_config() -> Result<SdkConfig, TlsError> {
    lambda_sdk_config_from(&TrustRoots::from_env()?, |name| std::env::var(name).ok()).await
}

/// [`lambda_sdk_config`] with the environment read through `lookup` (tests).
pub async fn lambda_sdk_config_from(
    roots: &TrustRoots,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SdkConfig, TlsError> {
    let loader = sdk_config_loader(roots)?
        .region(EnvironmentVariableRegionProvider::new())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    let loader = match static_credentials(lookup) {
        Some(credentials) => loader
            .credentials_provider(credentials)
            .identity_cache(IdentityCache::no_cache()),
        None => loader.credentials_provider(EnvironmentVariableCredentialsProvider::new()),
    };
    Ok(loader.load().await)
}

/// The credentials Lambda puts in the environment, if both keys are there and not empty.
fn static_credentials(lookup: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
    let set = |name| lookup(name).filter(|v| !v.trim().is_empty());
    Some(Credentials::new(
        set("AWS_ACCESS_KEY_ID")?,
        set("AWS_SECRET_ACCESS_KEY")?,
        set("AWS_SESSION_TOKEN"),
        None,
        "Environment",
    ))
}

#[cfg(test)]
mod tests {
    use aws_sdk_sts::config::ProvideCredentials;

    use super::*;

    fn env(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let vars = vars.to_vec();
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[tokio::test]
    async fn lambda_credentials_are_read_once_and_stalled_stream_protection_is_off() {
        let roots = TrustRoots::from_lookup(|_| None).unwrap();
        let sdk = lambda_sdk_config_from(
            &roots,
            env(&[
                ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_SESSION_TOKEN", "token"),
            ]),
        )
        .await
        .unwrap();
        let provider = sdk.credentials_provider().unwrap();
        let credentials = provider.provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
        assert_eq!(
            sdk.stalled_stream_protection().map(|s| s.is_enabled()),
            Some(false)
        );
    }

    #[test]
    fn credentials_need_both_keys() {
        assert!(static_credentials(env(&[("AWS_ACCESS_KEY_ID", "A")])).is_none());
        assert!(
            static_credentials(env(&[
                ("AWS_ACCESS_KEY_ID", " "),
                ("AWS_SECRET_ACCESS_KEY", "s")
            ]))
            .is_none()
        );
        let without_token = static_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_SESSION_TOKEN", ""),
        ]))
        .unwrap();
        assert_eq!(without_token.session_token(), None);
    }
}
