//! The no-SDK reference, measured beside the real functions: a PostConfirmation trigger that
//! makes post-confirmation's Chime calls with hyper and rustls directly, on the same runtime
//! flavor, TLS provider and roots (`chime_sync_aws::http`), and returns the event.
//!
//! It makes the calls post-confirmation makes since it reads before it writes: a
//! DescribeAppInstanceUser, and a CreateAppInstanceUser only when Chime answers 404 or 403 (a new
//! user's ConfirmSignUp: two calls; a returning user's ConfirmForgotPassword: one). Each
//! request is SigV4-signed as the SDK signs it: `aws-sigv4` (the SDK's own signer) with the
//! SDK's default settings for Chime (signing name `chime`, the region, double URI encoding,
//! the session token signed), the credentials Lambda puts in the environment, the path label
//! encoded by `aws-smithy-http` as the SDK encodes it. It does not retry, validate or log:
//! what is left is `lambda_runtime`, signing, one HTTPS request per call on a kept-alive
//! connection, and JSON. The difference between its warm CPU per invocation and
//! post-confirmation's is what the SDK (and our checks, logs and metrics) cost per call.

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http::label::{EncodingStrategy, fmt_string};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use chime_sync_aws::http::{RootSet, TrustRoots, rustls_client_config};
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// What every call needs: the client, where Chime is, and who signs.
struct Chime {
    client: Client<Https, Full<Bytes>>,
    endpoint: String,
    app_instance: String,
    region: String,
    identity: Identity,
}

impl Chime {
    /// One signed request; the status and the body of the answer.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let uri = format!("{}{path}", self.endpoint);
        let mut request = hyper::Request::builder().method(method).uri(&uri);
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .header("content-length", body.len().to_string());
        }
        let mut request = request.body(Full::new(Bytes::new()))?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("chime")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| Ok((k.as_str(), v.to_str()?)))
            .collect::<Result<Vec<_>, hyper::header::ToStrError>>()?;
        let signable = SignableRequest::new(
            method,
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request = request.map(|_| Full::new(Bytes::from(body)));
        let response = self.client.request(request).await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// Describe the user; create it when Chime answers 404.
    async fn ensure(&self, sub: &str, name: &str) -> Result<(), Error> {
        let arn = format!("{}/user/{sub}", self.app_instance);
        let path = format!(
            "/app-instance-users/{}",
            fmt_string(&arn, EncodingStrategy::Default)
        );
        let (status, body) = self.call("GET", &path, Vec::new()).await?;
        if status.is_success() {
            return Ok(());
        }
        // Chime's answer for a missing user is undocumented: 404, or the 403 its messaging API
        // gives for an unknown user ARN (the fake's default). Either means "create it", as
        // post-confirmation treats them.
        if status != StatusCode::NOT_FOUND && status != StatusCode::FORBIDDEN {
            return Err(format!("DescribeAppInstanceUser answered {status}: {body:?}").into());
        }
        let create = json!({
            "AppInstanceArn": self.app_instance,
            "AppInstanceUserId": sub,
            "Name": name,
            "ClientRequestToken": format!("sync-{sub}"),
        });
        let (status, body) = self
            .call(
                "POST",
                "/app-instance-users",
                create.to_string().into_bytes(),
            )
            .await?;
        // 409: it existed after all (a 403 that was a refusal, not a missing user, would also
        // refuse the create).
        if !status.is_success() && status != StatusCode::CONFLICT {
            return Err(format!("CreateAppInstanceUser answered {status}: {body:?}").into());
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let var = std::env::var;
    let app_instance = var("APP_INSTANCE_ARN")?;
    let endpoint = var("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY")?;
    let identity: Identity = Credentials::new(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN").ok(),
        None,
        "environment",
    )
    .into();
    // The AppInstance's region, as the Chime client of the functions signs with.
    let region = app_instance
        .split(':')
        .nth(3)
        .ok_or("APP_INSTANCE_ARN has no region")?
        .to_owned();
    let tls = rustls_client_config(&TrustRoots::from_env()?, RootSet::Aws)?;
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let https: Https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let chime = &Chime {
        client: Client::builder(TokioExecutor::new()).build(https),
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        app_instance,
        region,
        identity,
    };
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let attributes = &event.payload["request"]["userAttributes"];
        let sub = attributes["sub"].as_str().ok_or("no sub")?;
        let name = attributes["name"].as_str().unwrap_or(sub);
        chime.ensure(sub, name).await?;
        Ok::<_, Error>(event.payload)
    }))
    .await
}
