//! Lambda entrypoint of the IdP sync queue consumer: build the Chime directory
//! and the DLQ client once per sandbox, then serve SQS batches with partial
//! batch responses.

use std::process::ExitCode;

use chime_sync_aws::{ChimeDirectory, IdpSyncConfig, SqsQueue, lambda_sdk_config};
use chime_sync_core::handlers::idp_sync::{self, IdpSync};
use chime_sync_runtime::{
    Diagnostic, Incoming, LambdaEvent, deadline, emit, exit_code, init_tracing, report_init_error,
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
    let config = match IdpSyncConfig::from_env() {
        Ok(config) => config,
        Err(e) => return report_init_error(e).await,
    };
    let sdk = match lambda_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return report_init_error(e).await,
    };
    let deps = &IdpSync {
        max_concurrent_groups: config.max_concurrent_groups,
        delete_mode: config.delete_mode,
        ..IdpSync::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            SqsQueue::new(&sdk, config.dlq_url.clone(), Some(config.queue_timeout)),
        )
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let deadline = deadline(&event.context);
        let batch: idp_sync::SqsEvent = event
            .payload
            .typed()
            .map_err(|e| unreadable("IdpSyncFailed", idp_sync::METRICS, &e))?;
        let report = idp_sync::handle(&batch, deps, deadline).await;
        emit(&idp_sync::metrics(&report, &deps.directory));
        Ok::<_, Diagnostic>(report.response())
    }))
    .await;
    exit_code(served)
}
