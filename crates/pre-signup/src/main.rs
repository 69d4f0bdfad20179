//! Lambda entrypoint of the Cognito PreSignUp trigger: read the sign-up
//! policy from the environment, then serve events. Calls no AWS API.

use chime_sync_aws::PreSignupConfig;
use chime_sync_core::handlers::pre_signup::{self, SignUpPolicy};
use chime_sync_runtime::{
    Error, LambdaEvent, diagnostic, init_tracing, report_init_error, run, service_fn,
};
use serde_json::Value;

// One thread: a Lambda sandbox serves one invocation at a time, and the concurrent Chime calls
// of a batch wait on I/O, so a multi-thread runtime only adds start-up work (worker threads,
// cgroup probing) and cross-thread wake-ups (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = match PreSignupConfig::from_env() {
        Ok(config) => config,
        Err(e) => return Err(report_init_error(e).await),
    };
    let policy = &SignUpPolicy {
        names: config.display_names,
        allowed_email_domains: config.allowed_email_domains.unwrap_or_default(),
        auto_confirm: config.auto_confirm,
        auto_verify_email: config.auto_verify_email,
    };
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        pre_signup::handle(event.payload, policy)
            .map(|(response, _)| response)
            .map_err(|e| diagnostic("SignUpRejected", e.code(), e))
    }))
    .await
}
