//! Which Chime SDK Identity endpoint the CLI talks to, named as the SDK will
//! resolve it, so the summary says where users were read and written.
//!
//! The SDK's order (aws-sdk-chimesdkidentity's `Config::from(&SdkConfig)`):
//! an explicit endpoint (our `--endpoint-url`); the service's own setting,
//! `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY` or the profile's `services` section;
//! the global `AWS_ENDPOINT_URL` or the profile's `endpoint_url`; otherwise
//! the regional AWS endpoint, from the endpoint rules.

use aws_config::SdkConfig;
use aws_sdk_chimesdkidentity::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_types::service_config::ServiceConfigKey;

/// The service's environment variable (the SDK upper-cases the service id
/// "Chime SDK Identity" and joins its words with `_`).
pub const SERVICE_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY";
/// Every service's environment variable.
pub const GLOBAL_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";

/// An endpoint and where its setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub source: Source,
}

/// Where an endpoint setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    ServiceVariable,
    ServiceProfile,
    GlobalVariable,
    GlobalProfile,
    /// AWS's own endpoint for this region.
    Aws {
        region: String,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match &self.source {
            Source::Flag => "--endpoint-url".to_owned(),
            Source::ServiceVariable => SERVICE_ENDPOINT_VAR.to_owned(),
            Source::ServiceProfile => "the AWS profile's services section".to_owned(),
            Source::GlobalVariable => GLOBAL_ENDPOINT_VAR.to_owned(),
            Source::GlobalProfile => "the AWS profile's endpoint_url".to_owned(),
            Source::Aws { region } => format!("AWS, {region}"),
        };
        write!(f, "{} ({from})", self.url)
    }
}

/// The endpoint a Chime SDK Identity client built from `sdk` (and `flag`,
/// the `--endpoint-url`) will call for an AppInstance in `region`.
/// `env` reads an environment variable, to tell a variable from a profile.
pub async fn resolve(
    sdk: &SdkConfig,
    flag: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Endpoint {
    let from = |url: String, variable: &str, variable_source: Source, profile_source: Source| {
        let source = if env(variable).as_deref() == Some(url.as_str()) {
            variable_source
        } else {
            profile_source
        };
        Endpoint { url, source }
    };
    if let Some(url) = flag {
        return Endpoint {
            url: url.to_owned(),
            source: Source::Flag,
        };
    }
    let service = sdk.service_config().and_then(|config| {
        config.load_config(
            ServiceConfigKey::builder()
                .service_id("Chime SDK Identity")
                .env(GLOBAL_ENDPOINT_VAR)
                .profile("endpoint_url")
                .build()
                .ok()?,
        )
    });
    if let Some(url) = service {
        return from(
            url,
            SERVICE_ENDPOINT_VAR,
            Source::ServiceVariable,
            Source::ServiceProfile,
        );
    }
    if let Some(url) = sdk.endpoint_url() {
        return from(
            url.to_owned(),
            GLOBAL_ENDPOINT_VAR,
            Source::GlobalVariable,
            Source::GlobalProfile,
        );
    }
    let params = Params::builder()
        .region(region)
        .use_fips(sdk.use_fips().unwrap_or(false))
        .use_dual_stack(sdk.use_dual_stack().unwrap_or(false))
        .build();
    let url = match params {
        Ok(params) => DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .map(|e| e.url().to_owned())
            .ok(),
        Err(_) => None,
    };
    Endpoint {
        // The rules know every region; the fallback is their pattern.
        url: url.unwrap_or_else(|| format!("https://identity-chime.{region}.amazonaws.com")),
        source: Source::Aws {
            region: region.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_types::service_config::LoadServiceConfig;
    use testkit::env_lookup as env;

    use super::*;

    /// A service-config source that answers like aws-config's for one
    /// service-specific value.
    #[derive(Debug)]
    struct ServiceValue(Option<&'static str>);

    impl LoadServiceConfig for ServiceValue {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            (key.service_id() == "Chime SDK Identity" && key.env() == GLOBAL_ENDPOINT_VAR)
                .then_some(self.0)
                .flatten()
                .map(str::to_owned)
        }
    }

    fn sdk(service: Option<&'static str>, global: Option<&str>) -> SdkConfig {
        let mut builder = SdkConfig::builder().service_config(ServiceValue(service));
        if let Some(url) = global {
            builder = builder.endpoint_url(url);
        }
        builder.build()
    }

    const FAKE: &str = "http://127.0.0.1:4566";

    #[tokio::test]
    async fn the_flag_wins() {
        let e = resolve(
            &sdk(Some(FAKE), None),
            Some("http://localhost:1"),
            "us-east-1",
            env(&[]),
        )
        .await;
        assert_eq!(e.url, "http://localhost:1");
        assert_eq!(e.to_string(), "http://localhost:1 (--endpoint-url)");
    }

    #[tokio::test]
    async fn the_services_variable_is_named() {
        let e = resolve(
            &sdk(Some(FAKE), Some("http://10.0.0.1:9")),
            None,
            "us-east-1",
            env(&[(SERVICE_ENDPOINT_VAR, FAKE)]),
        )
        .await;
        assert_eq!(
            e.to_string(),
            "http://127.0.0.1:4566 (AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY)"
        );
        let e = resolve(&sdk(Some(FAKE), None), None, "us-east-1", env(&[])).await;
        assert_eq!(e.source, Source::ServiceProfile);
    }

    #[tokio::test]
    async fn the_global_endpoint_comes_next() {
        let e = resolve(
            &sdk(None, Some(FAKE)),
            None,
            "us-east-1",
            env(&[(GLOBAL_ENDPOINT_VAR, FAKE)]),
        )
        .await;
        assert_eq!(e.to_string(), "http://127.0.0.1:4566 (AWS_ENDPOINT_URL)");
        let e = resolve(&sdk(None, Some(FAKE)), None, "us-east-1", env(&[])).await;
        assert_eq!(e.source, Source::GlobalProfile);
    }

    #[tokio::test]
    async fn otherwise_the_regional_aws_endpoint() {
        let e = resolve(&sdk(None, None), None, "eu-central-1", env(&[])).await;
        assert_eq!(
            e.to_string(),
            "https://identity-chime.eu-central-1.amazonaws.com (AWS, eu-central-1)"
        );
    }
}
