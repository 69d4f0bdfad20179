//! The AWS configuration the CLI's AWS commands share: aws-config's full chains (the CLI runs
//! on laptops and CI, unlike the functions), the functions' HTTPS stack, and placeholder
//! credentials for local endpoints.

use aws_sdk_chimesdkidentity::config::{Credentials, SharedCredentialsProvider};
use chime_sync_aws::{ChimeConfig, ChimeDirectory, TrustRoots, sdk_config_loader};
use chime_sync_core::AppInstanceArn;

use crate::{Failure, endpoint};

pub struct Chime {
    pub directory: ChimeDirectory,
    /// The endpoint the client calls, resolved as the SDK resolves it.
    pub endpoint: endpoint::Endpoint,
}

/// A Chime directory for the CLI, in the AppInstance's region (so no region
/// lookup, and no instance-metadata probe for one, happens).
///
/// Against an endpoint other than AWS's own (`--endpoint-url`,
/// `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`, …) with no credentials chosen in the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`), static placeholder
/// credentials sign the requests: local fakes accept any signature.
///
/// Unlike the functions, the CLI keeps aws-config's full chains (profiles, SSO-less web
/// identity, IMDS): it runs on laptops and CI. It shares their HTTPS stack, and so their
/// `SSL_CERT_FILE` rule; a bad `SSL_CERT_FILE` is the error.
pub async fn chime_directory(
    app_instance: AppInstanceArn,
    endpoint_url: Option<String>,
) -> Result<Chime, Failure> {
    let region = app_instance.region().to_owned();
    let sdk = load_sdk_config(&region).await?;
    let endpoint = endpoint::resolve(&sdk, endpoint_url.as_deref(), &region, |name| {
        std::env::var(name).ok()
    })
    .await;
    let local = !matches!(endpoint.source, endpoint::Source::Aws { .. });
    let sdk = with_placeholder_credentials(sdk, local);
    let config = ChimeConfig {
        endpoint_url,
        ..ChimeConfig::new(app_instance)
    };
    Ok(Chime {
        directory: ChimeDirectory::new(&sdk, config),
        endpoint,
    })
}

/// aws-config's full chains in `region`, over the functions' HTTPS stack
/// (`SSL_CERT_FILE` honoured; a bad one is the error).
async fn load_sdk_config(region: &str) -> Result<aws_config::SdkConfig, Failure> {
    load_sdk_config_in(Some(region)).await
}

/// [`load_sdk_config`], in `region` or the Region the configuration names.
pub async fn load_sdk_config_in(region: Option<&str>) -> Result<aws_config::SdkConfig, Failure> {
    let roots = TrustRoots::from_env().map_err(|e| e.to_string())?;
    let mut loader = sdk_config_loader(&roots).map_err(|e| e.to_string())?;
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err("no AWS Region: pass --region, or set AWS_REGION".into());
    }
    let local = std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty())
        || ["LAMBDA", "CLOUDFORMATION"].iter().any(|s| {
            std::env::var_os(format!("AWS_ENDPOINT_URL_{s}")).is_some_and(|v| !v.is_empty())
        });
    Ok(with_placeholder_credentials(sdk, local))
}

/// The AWS configuration for a client in `region`; see [`with_placeholder_credentials`].
pub async fn sdk_config(
    region: &str,
    local_endpoint: bool,
) -> Result<aws_config::SdkConfig, Failure> {
    Ok(with_placeholder_credentials(
        load_sdk_config(region).await?,
        local_endpoint,
    ))
}

/// Against an endpoint other than AWS's own, with no credentials chosen in
/// the environment (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`), static placeholder
/// credentials sign the requests: local fakes accept any signature.
fn with_placeholder_credentials(
    sdk: aws_config::SdkConfig,
    local_endpoint: bool,
) -> aws_config::SdkConfig {
    let chosen = |name| std::env::var_os(name).is_some_and(|v: std::ffi::OsString| !v.is_empty());
    if !local_endpoint || chosen("AWS_ACCESS_KEY_ID") || chosen("AWS_PROFILE") {
        return sdk;
    }
    let placeholder = Credentials::new("local", "local", None, None, "chime-sync-cli");
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(placeholder))
        .build()
}
