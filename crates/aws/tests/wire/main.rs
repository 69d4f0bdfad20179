//! The real SDK clients on the wire, against the local fakes: one test binary for the crate,
//! one module per service. No AWS credentials, no internet, ephemeral ports, bounded time.

mod chime;
mod chime_fake_sdk;
mod cognito;
mod jwks_https;
mod sts;

use std::future::Future;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_chimesdkidentity::config::{Credentials, Region, SharedCredentialsProvider};
use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig};
use chime_sync_aws::TrustRoots;

/// Bounds every test so a regression fails instead of hanging CI.
async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test exceeded 60 s")
}

/// The Chime fake on an ephemeral port.
async fn start(config: FakeConfig) -> FakeChimeHandle {
    FakeChime::start(config)
        .await
        .expect("fake starts on an ephemeral port")
}

/// What a Lambda would have: static credentials, our HTTP client, and a region that is *not*
/// the AppInstance's, to prove the adapters override it.
fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .http_client(chime_sync_aws::http::sdk_http_client(&TrustRoots::Compiled).unwrap())
        .build()
}
