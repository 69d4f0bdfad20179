//! Lambda entrypoint of the Cognito PostConfirmation trigger: build the Chime
//! directory and the sync-queue client once per sandbox, then serve events.

use chime_sync_aws::{ChimeDirectory, PostConfirmationConfig, SqsQueue, lambda_sdk_config};
use chime_sync_core::handlers::post_confirmation::{self, ConfirmationError, PostConfirmation};
use chime_sync_runtime::{
    Error, LambdaEvent, deadline, diagnostic, init_tracing, report_init_error, run, service_fn,
};
use serde_json::Value;

// One thread: a Lambda sandbox serves one invocation at a time, and the concurrent Chime calls
// of a batch wait on I/O, so a multi-thread runtime only adds start-up work (worker threads,
// cgroup probing) and cross-thread wake-ups (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = match PostConfirmationConfig::from_env() {
        Ok(config) => config,
        Err(e) => return Err(report_init_error(e).await),
    };
    let sdk = match lambda_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return Err(report_init_error(e).await),
    };
    let deps = &PostConfirmation {
        names: config.display_names.clone(),
        chime_budget: config.chime_budget(),
        hand_off_reserve: config.queue_timeout,
        ..PostConfirmation::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            SqsQueue::new(
                &sdk,
                config.sync_queue_url.clone(),
                Some(config.queue_timeout),
            ),
        )
    };
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline(&event.context);
        post_confirmation::handle(event.payload, deps, Some(deadline))
            .await
            .map(|(response, _)| response)
            .map_err(|e| {
                let code = match &e {
                    ConfirmationError::InvalidEvent(input) => input.code(),
                    ConfirmationError::HandOffFailed { .. } => "HandOffFailed",
                };
                diagnostic("ConfirmationFailed", code, e)
            })
    }))
    .await
}
