//! The no-SDK reference, measured beside the real functions: a PostConfirmation trigger that
//! makes post-confirmation's one CreateAppInstanceUser call with hyper and rustls directly,
//! on the same runtime flavor, TLS provider and roots (`chime_sync_aws::http`), and returns
//! the event. It does not sign the request (the fake ignores signatures), retry, validate or
//! log: what is left is `lambda_runtime`, one HTTPS request on a kept-alive connection, and
//! JSON. The difference between its warm CPU per invocation and post-confirmation's is what
//! the SDK (and our checks) cost.

use std::sync::Arc;

use bytes::Bytes;
use chime_sync_aws::http::{RootSet, TrustRoots, rustls_client_config};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app_instance = std::env::var("APP_INSTANCE_ARN")?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY")?;
    let tls = rustls_client_config(&TrustRoots::from_env()?, RootSet::Aws)?;
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let https: Https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client: &Client<Https, Full<Bytes>> = &Client::builder(TokioExecutor::new()).build(https);
    let url = &format!("{}/app-instance-users", endpoint.trim_end_matches('/'));
    let app_instance = app_instance.as_str();
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let attributes = &event.payload["request"]["userAttributes"];
        let sub = attributes["sub"].as_str().ok_or("no sub")?;
        let name = attributes["name"].as_str().unwrap_or(sub);
        let body = json!({
            "AppInstanceArn": app_instance,
            "AppInstanceUserId": sub,
            "Name": name,
            "ClientRequestToken": format!("sync-{sub}"),
        });
        let request = hyper::Request::post(url.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("CreateAppInstanceUser answered {status}: {body:?}").into());
        }
        Ok::<_, Error>(event.payload)
    }))
    .await
}
