//! Lambda entrypoint of the Cognito PreSignUp trigger: read the sign-up
//! policy from the environment, then serve events. Calls no AWS API.

use std::process::ExitCode;

use chime_sync_aws::PreSignupConfig;
use chime_sync_core::handlers::pre_signup::{self, SignUpPolicy};
use chime_sync_runtime::{
    Incoming, InvocationError, LambdaEvent, emit, exit_code, run, run_bootstrap, service_fn, start,
    unreadable,
};

fn main() -> ExitCode {
    run_bootstrap(serve())
}

/// Start up, then serve until the Runtime API ends; `Err` is a start-up failure, reported.
async fn serve() -> Result<ExitCode, ExitCode> {
    let config = start(env!("CARGO_BIN_NAME"), PreSignupConfig::from_env).await?;
    let policy = &SignUpPolicy {
        names: config.display_names,
        allowed_email_domains: config.allowed_email_domains.unwrap_or_default(),
        auto_confirm: config.auto_confirm,
        auto_verify_email: config.auto_verify_email,
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let event = event
            .payload
            .json()
            .map_err(|e| unreadable(pre_signup::METRICS, &e))?;
        let result = pre_signup::handle(event, policy);
        emit(&pre_signup::metrics(&result));
        result
            .map(|(response, _)| response)
            .map_err(|e| InvocationError::new(pre_signup::METRICS, &e))
    }))
    .await;
    Ok(exit_code(served))
}
