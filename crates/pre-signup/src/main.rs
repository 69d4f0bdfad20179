//! Lambda entrypoint of the Cognito PreSignUp trigger: read the sign-up
//! policy from the environment, then serve events. Calls no AWS API.

use std::process::ExitCode;

use chime_sync_aws::PreSignupConfig;
use chime_sync_core::handlers::pre_signup::{self, SignUpPolicy};
use chime_sync_runtime::{
    Incoming, LambdaEvent, diagnostic, emit, exit_code, init_tracing, report_init_error,
    require_lambda, run, service_fn, unreadable,
};

// One thread: a Lambda sandbox serves one invocation at a time, and the concurrent Chime calls
// of a batch wait on I/O, so a multi-thread runtime only adds start-up work (worker threads,
// cgroup probing) and cross-thread wake-ups (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Err(outside_lambda) = require_lambda(env!("CARGO_BIN_NAME")) {
        return outside_lambda;
    }
    init_tracing();
    let config = match PreSignupConfig::from_env() {
        Ok(config) => config,
        Err(e) => return report_init_error(e).await,
    };
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
            .map_err(|e| unreadable("SignUpRejected", pre_signup::METRICS, &e))?;
        let result = pre_signup::handle(event, policy);
        emit(&pre_signup::metrics(&result));
        result
            .map(|(response, _)| response)
            .map_err(|e| diagnostic("SignUpRejected", e.code(), e))
    }))
    .await;
    exit_code(served)
}
