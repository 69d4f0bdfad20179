//! Lambda entrypoint of the Cognito PostConfirmation trigger: build the Chime
//! directory and the sync-queue client once per sandbox, then serve events.

use std::process::ExitCode;

use chime_sync_aws::{ChimeDirectory, PostConfirmationConfig, SqsQueue, lambda_sdk_config};
use chime_sync_core::handlers::post_confirmation::{self, ConfirmationError, PostConfirmation};
use chime_sync_runtime::{
    Incoming, LambdaEvent, deadline, diagnostic, emit, exit_code, init_tracing, report_init_error,
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
    let config = match PostConfirmationConfig::from_env() {
        Ok(config) => config,
        Err(e) => return report_init_error(e).await,
    };
    let sdk = match lambda_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return report_init_error(e).await,
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
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let deadline = deadline(&event.context);
        let payload = event
            .payload
            .json()
            .map_err(|e| unreadable("ConfirmationFailed", post_confirmation::METRICS, &e))?;
        let result = post_confirmation::handle(payload, deps, deadline).await;
        emit(&post_confirmation::metrics(&result, &deps.directory));
        result.map(|(response, _)| response).map_err(|e| {
            let code = match &e {
                ConfirmationError::InvalidEvent(input) => input.code(),
                ConfirmationError::HandOffFailed { .. } => "HandOffFailed",
            };
            diagnostic("ConfirmationFailed", code, e)
        })
    }))
    .await;
    exit_code(served)
}
