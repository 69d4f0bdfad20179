//! Lambda entrypoint of the IdP sync queue consumer: build the Chime directory
//! and the DLQ client once per sandbox, then serve SQS batches with partial
//! batch responses.

use std::process::ExitCode;

use chime_sync_aws::{
    ChimeDirectory, ConfiguredLedger, IdpSyncConfig, SqsQueue, lambda_sdk_config,
};
use chime_sync_core::handlers::idp_sync::{self, IdpSync};
use chime_sync_runtime::{
    Incoming, InvocationError, LambdaEvent, deadline, emit, exit_code, init_step, run,
    run_bootstrap, service_fn, start, unreadable,
};

fn main() -> ExitCode {
    run_bootstrap(serve())
}

/// Start up, then serve until the Runtime API ends; `Err` is a start-up failure, reported.
async fn serve() -> Result<ExitCode, ExitCode> {
    let config = start(env!("CARGO_BIN_NAME"), IdpSyncConfig::from_env).await?;
    let sdk = init_step(lambda_sdk_config()).await?;
    let deps = &IdpSync {
        max_concurrent_groups: config.max_concurrent_groups,
        rules: config.rules.clone(),
        ..IdpSync::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            SqsQueue::new(&sdk, config.dlq_url.clone(), Some(config.queue_timeout)),
            ConfiguredLedger::new(&sdk, &config.ledger),
        )
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let deadline = deadline(&event.context);
        let batch: idp_sync::SqsEvent = event
            .payload
            .typed()
            .map_err(|e| unreadable(idp_sync::METRICS, &e))?;
        let report = idp_sync::handle(&batch, deps, deadline).await;
        emit(&idp_sync::metrics(&report, &deps.directory));
        Ok::<_, InvocationError>(report.response())
    }))
    .await;
    Ok(exit_code(served))
}
