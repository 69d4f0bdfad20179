//! Lambda entrypoint of the Cognito PostConfirmation trigger: build the Chime
//! directory and the sync-queue client once per sandbox, then serve events.

use std::process::ExitCode;

use chime_sync_aws::{
    ChimeDirectory, ConfiguredLedger, PostConfirmationConfig, SqsQueue, lambda_sdk_config,
};
use chime_sync_core::handlers::post_confirmation::{self, PostConfirmation};
use chime_sync_runtime::{
    Incoming, InvocationError, LambdaEvent, deadline, emit, exit_code, init_step, run,
    run_bootstrap, service_fn, start, unreadable,
};

fn main() -> ExitCode {
    run_bootstrap(serve())
}

/// Start up, then serve until the Runtime API ends; `Err` is a start-up failure, reported.
async fn serve() -> Result<ExitCode, ExitCode> {
    let config = start(env!("CARGO_BIN_NAME"), PostConfirmationConfig::from_env).await?;
    let sdk = init_step(lambda_sdk_config()).await?;
    let deps = &PostConfirmation {
        names: config.display_names.clone(),
        chime_budget: config.chime_budget(),
        sign_in_budget: config.sign_in_budget,
        hand_off_reserve: config.queue_timeout,
        ..PostConfirmation::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            SqsQueue::new(
                &sdk,
                config.sync_queue_url.clone(),
                Some(config.queue_timeout),
            ),
            ConfiguredLedger::new(&sdk, &config.ledger),
        )
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let deadline = deadline(&event.context);
        let payload = event
            .payload
            .json()
            .map_err(|e| unreadable(post_confirmation::METRICS, &e))?;
        let result = post_confirmation::handle(payload, deps, deadline).await;
        emit(&post_confirmation::metrics(&result, &deps.directory));
        result
            .map(|(response, _)| response)
            .map_err(|e| InvocationError::new(post_confirmation::METRICS, &e))
    }))
    .await;
    Ok(exit_code(served))
}
