//! Lambda entrypoint of the scheduled reconcile: build the Cognito, Chime and
//! sync-queue clients once per sandbox, then reconcile on each event (the
//! schedule's, or the state machine's continuation) and answer whether the
//! cycle is done.

use std::process::ExitCode;
use std::time::SystemTime;

use chime_sync_aws::{ChimeDirectory, CognitoUserPool, ReconcileConfig, SqsQueue, load_sdk_config};
use chime_sync_core::handlers::reconcile::{self, Reconcile};
use chime_sync_runtime::{
    Incoming, LambdaEvent, deadline, diagnostic, exit_code, init_tracing, report_init_error,
    require_lambda, run, service_fn, unreadable,
};

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(outside_lambda) = require_lambda(env!("CARGO_BIN_NAME")) {
        return outside_lambda;
    }
    init_tracing();
    let config = match ReconcileConfig::from_env() {
        Ok(config) => config,
        Err(e) => return report_init_error(e).await,
    };
    let sdk = load_sdk_config().await;
    let deps = &Reconcile {
        pool: CognitoUserPool::new(&sdk, config.cognito.clone()),
        directory: ChimeDirectory::new(&sdk, config.chime.clone()),
        queue: SqsQueue::new(
            &sdk,
            config.sync_queue_url.clone(),
            Some(config.queue_timeout),
        ),
        settings: config.settings,
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let deadline = deadline(&event.context);
        let payload = event
            .payload
            .json()
            .map_err(|e| unreadable("ReconcileFailed", "reconcile", &e))?;
        let start = reconcile::start_from(&payload, SystemTime::now())
            .map_err(|e| diagnostic("ReconcileFailed", "BadContinuation", e))?;
        reconcile::run(start, deps, deadline)
            .await
            .map_err(|e| diagnostic("ReconcileFailed", e.code(), e))
    }))
    .await;
    exit_code(served)
}
