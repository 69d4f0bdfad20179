//! Lambda entrypoint of the IdP sync queue consumer: build the Chime directory
//! and the DLQ client once per sandbox, then serve SQS batches with partial
//! batch responses.

use chime_sync_aws::{ChimeDirectory, IdpSyncConfig, SqsQueue, lambda_sdk_config};
use chime_sync_core::handlers::idp_sync::{self, IdpSync};
use chime_sync_runtime::{
    Error, LambdaEvent, deadline, init_tracing, report_init_error, run, service_fn,
};

// One thread: a Lambda sandbox serves one invocation at a time, and the concurrent Chime calls
// of a batch wait on I/O, so a multi-thread runtime only adds start-up work (worker threads,
// cgroup probing) and cross-thread wake-ups (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let config = match IdpSyncConfig::from_env() {
        Ok(config) => config,
        Err(e) => return Err(report_init_error(e).await),
    };
    let sdk = match lambda_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return Err(report_init_error(e).await),
    };
    let deps = &IdpSync {
        max_concurrent_groups: config.max_concurrent_groups,
        ..IdpSync::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            SqsQueue::new(&sdk, config.dlq_url.clone(), Some(config.queue_timeout)),
        )
    };
    run(service_fn(
        move |event: LambdaEvent<idp_sync::SqsEvent>| async move {
            let deadline = deadline(&event.context);
            let report = idp_sync::handle(&event.payload, deps, Some(deadline)).await;
            Ok::<_, Error>(report.response())
        },
    ))
    .await
}
