//! AWS adapters of chime-identity-sync.
//!
//! - [`ChimeDirectory`] implements the domain's `Directory` port with
//!   `aws-sdk-chimesdkidentity`, mapping every SDK error into a
//!   `DirectoryError` in one place and retrying Chime's throttling, which the
//!   SDK's standard retry does not ([`retry`]).
//! - [`SqsQueue`] implements the `Queue` port with `aws-sdk-sqs` (batches with
//!   `SendMessageBatch`).
//! - [`LedgerTable`] implements the `Ledger` port (ownership, change times,
//!   deletion marks) with `aws-sdk-dynamodb`, one table.
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
pub mod ledger;
pub mod retry;
pub mod sqs;
pub mod sts;

use std::sync::Arc;
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider, StalledStreamProtectionConfig};
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_async::time::SharedTimeSource;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

pub use aws_config::SdkConfig;
pub use chime::{ChimeConfig, ChimeDirectory};
pub use cognito::{CognitoConfig, CognitoUserPool, UserPoolId};
pub use config::{
    ConfigError, CredentialExchangeConfig, IdpSyncConfig, LedgerLocation, PostConfirmationConfig,
    PreSignupConfig, ReconcileConfig,
};
pub use http::{RootSet, TlsError, TrustRoots};
pub use jwks::HttpsJwksSource;
pub use ledger::{ConfiguredLedger, LedgerTable};
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
/// `AWS_SESSION_TOKEN`, and its region in `AWS_REGION`, so the configuration is assembled from
/// those directly, without `aws-config`'s loader. The loader's default chains would build an
/// STS client (web identity, assume-role profiles), an IMDS client, ECS and profile-file
/// providers that a Lambda never calls, and because the loader decides at run time which to
/// use, all of their code is linked into every binary whether called or not, in its size and
/// its peak RSS alike (measured in docs/PERFORMANCE.md, "Peak RSS"). The one Lambda feature that needs another provider is SnapStart (credentials over a
/// container endpoint), open to `provided.al2023` only as a container image; template.yaml
/// deploys zip archives.
///
/// What it reads, and nothing else (the CLI keeps the full chains, [`sdk_config_loader`]):
/// - `AWS_REGION` (else `AWS_DEFAULT_REGION`);
/// - the credentials above ([`static_credentials`]);
/// - endpoint overrides, as the SDK documents them: `AWS_ENDPOINT_URL_<SERVICE>` (the service
///   id upper-cased, spaces as `_`: `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`, `AWS_ENDPOINT_URL_SQS`),
///   else `AWS_ENDPOINT_URL`, both ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`;
/// - `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT` (`true` or `false`).
///
/// and it keeps the loader's defaults for the rest: standard retries (3 attempts; the Chime
/// client adds its own throttling classifier), a 3.1 s connect timeout, Tokio's sleep, the
/// system clock, the latest behaviour version.
///
/// The HTTP client is [`http::sdk_http_client`] with the roots `SSL_CERT_FILE` chooses; a bad
/// `SSL_CERT_FILE` is the error. Build it once per sandbox, before the runtime loop; each client
/// derives its own settings from it (the Chime client overrides the region with the
/// AppInstance's).
///
/// Two per-request costs are cut, each measured with callgrind (docs/PERFORMANCE.md):
/// - the credentials are read from the environment once, at start-up, and handed to the
///   clients as they are, with no identity cache: Lambda sets them when it starts the sandbox
///   and never changes them while it runs, so the cache's per-request lookup and expiry check
///   guard against nothing. Without them in the environment (outside Lambda), the environment
///   provider is installed, behind the SDK's lazy cache, and the first call fails with
///   `CredentialsNotLoaded` ("environment variable not set");
/// - stalled-stream protection is off. It wraps every request and response body in a
///   throughput monitor with its own timer, to fail a transfer that stalls for 5 s; every call
///   the functions make already runs under an operation timeout shorter than the Lambda
///   deadline (the Chime budget, the queue and STS timeouts), which ends a stalled transfer
///   just as surely, and the bodies are a few hundred bytes.
pub fn lambda_sdk_config() -> Result<SdkConfig, TlsError> {
    lambda_sdk_config_from(&TrustRoots::from_env()?, |name| std::env::var(name).ok())
}

/// [`lambda_sdk_config`] with the environment read through `lookup` (tests).
pub fn lambda_sdk_config_from(
    roots: &TrustRoots,
    lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> Result<SdkConfig, TlsError> {
    let env = Arc::new(move |name: &str| lookup(name).filter(|v| !v.trim().is_empty()));
    let flag = |name| env(name).map(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http::sdk_http_client(roots)?)
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
                .build(),
        )
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .time_source(SharedTimeSource::default());
    builder.set_sleep_impl(default_async_sleep());
    builder.set_region(
        env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .map(|region| Region::new(region.trim().to_owned())),
    );
    builder.set_use_fips(flag("AWS_USE_FIPS_ENDPOINT"));
    builder.set_use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"));
    if flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != Some(true) {
        builder.set_endpoint_url(env("AWS_ENDPOINT_URL"));
        builder.set_service_config(Some(EndpointUrls(env.clone())));
    }
    let builder = match static_credentials(&*env) {
        Some(credentials) => builder
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .identity_cache(IdentityCache::no_cache()),
        None => builder
            .credentials_provider(SharedCredentialsProvider::new(
                EnvironmentVariableCredentialsProvider::new(),
            ))
            .identity_cache(IdentityCache::lazy().build()),
    };
    Ok(builder.build())
}

/// The loader's default connect timeout (`aws-config`'s `SDK_DEFAULT_CONNECT_TIMEOUT`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`: what each SDK client asks its
/// `SdkConfig` for when it is built (its key's `env()` is `AWS_ENDPOINT_URL`, its `service_id()`
/// the service's id, e.g. "Chime SDK Identity"), read as the SDK's own loader reads it, without
/// the profile file.
struct EndpointUrls<F>(Arc<F>);

impl<F> std::fmt::Debug for EndpointUrls<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointUrls(environment)")
    }
}

impl<F> LoadServiceConfig for EndpointUrls<F>
where
    F: Fn(&str) -> Option<String> + Send + Sync,
{
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        (self.0)(&format!("{}_{service}", key.env())).or_else(|| (self.0)(key.env()))
    }
}

/// How an AWS service's error answer reads in our errors and logs, whichever adapter met
/// it: `Code (HTTP status): message`, each part only when the answer has it.
pub(crate) fn service_error_text(code: Option<&str>, status: u16, message: Option<&str>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!("{c} (HTTP {status}): {m}"),
        (Some(c), None) => format!("{c} (HTTP {status})"),
        (None, Some(m)) => format!("HTTP {status}: {m}"),
        (None, None) => format!("HTTP {status}"),
    }
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
    use testkit::env_lookup as env;

    use super::*;

    /// The Lambda SDK configuration these variables make, with no extra roots.
    fn lambda_config(vars: &[(&str, &str)]) -> SdkConfig {
        let roots = TrustRoots::from_lookup(|_| None).unwrap();
        lambda_sdk_config_from(&roots, env(vars)).unwrap()
    }

    #[tokio::test]
    async fn lambda_credentials_are_read_once_and_stalled_stream_protection_is_off() {
        let sdk = lambda_config(&[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
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

    /// The endpoint URL each SDK client takes from the configuration when it is built: the
    /// service config's answer for the key its generated `config.rs` asks with, else
    /// `SdkConfig::endpoint_url`.
    fn chime_and_sqs(sdk: &SdkConfig) -> (Option<String>, Option<String>) {
        let endpoint = |service_id| {
            let key = ServiceConfigKey::builder()
                .service_id(service_id)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap();
            sdk.service_config()
                .and_then(|config| config.load_config(key))
                .or_else(|| sdk.endpoint_url().map(str::to_owned))
        };
        (endpoint("Chime SDK Identity"), endpoint("SQS"))
    }

    #[test]
    fn region_endpoints_and_flags_come_from_the_environment() {
        let sdk = lambda_config(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "https://everything.example"),
            (
                "AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY",
                "https://chime.example:8443",
            ),
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
        ]);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.use_fips(), Some(true));
        assert_eq!(sdk.use_dual_stack(), Some(false));
        assert_eq!(
            sdk.timeout_config().and_then(|t| t.connect_timeout()),
            Some(Duration::from_millis(3100))
        );
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(3));
        assert!(sdk.sleep_impl().is_some() && sdk.http_client().is_some());
        let (chime, sqs) = chime_and_sqs(&sdk);
        // The service's own variable wins; a service without one gets the global one.
        assert_eq!(chime.as_deref(), Some("https://chime.example:8443"));
        assert_eq!(sqs.as_deref(), Some("https://everything.example"));
    }

    #[test]
    fn endpoint_overrides_are_optional_and_can_be_ignored() {
        let defaults = lambda_config(&[("AWS_DEFAULT_REGION", "us-east-1")]);
        assert_eq!(defaults.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(
            (defaults.use_fips(), defaults.use_dual_stack()),
            (None, None)
        );
        let (chime, sqs) = chime_and_sqs(&defaults);
        assert_eq!((chime, sqs), (None, None));

        let ignored = lambda_config(&[
            ("AWS_ENDPOINT_URL", "https://everything.example"),
            ("AWS_ENDPOINT_URL_SQS", "https://sqs.example"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
        ]);
        assert_eq!(ignored.region(), None);
        let (chime, sqs) = chime_and_sqs(&ignored);
        assert_eq!((chime, sqs), (None, None));
    }

    #[tokio::test]
    async fn without_credentials_the_first_call_fails_as_not_loaded() {
        let sdk = lambda_config(&[("AWS_REGION", "eu-west-1")]);
        let error = sdk
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap_err();
        // The provider reads the real environment, where the tests set no credentials.
        assert!(
            format!("{error:?}").starts_with("CredentialsNotLoaded")
                && format!("{error:?}").contains("environment variable not set"),
            "{error:?}"
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
