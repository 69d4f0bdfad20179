//! The naive floor, measured beside the real functions: a bare
//! `lambda_runtime` + `aws-config` + Chime client PostConfirmation trigger that creates
//! the user named by `request.userAttributes.sub` and returns the event. No validation,
//! no display-name policy, no budget or hand-off, no retry classifier: what any Rust
//! trigger pays before doing the work this project does.

use aws_sdk_chimesdkidentity::Client;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let app_instance = std::env::var("APP_INSTANCE_ARN")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = &Client::new(&config);
    let app_instance = app_instance.as_str();
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let attributes = &event.payload["request"]["userAttributes"];
        let sub = attributes["sub"].as_str().ok_or("no sub")?;
        let name = attributes["name"].as_str().unwrap_or(sub);
        client
            .create_app_instance_user()
            .app_instance_arn(app_instance)
            .app_instance_user_id(sub)
            .name(name)
            .client_request_token(format!("sync-{sub}"))
            .send()
            .await?;
        Ok::<_, Error>(event.payload)
    }))
    .await
}
