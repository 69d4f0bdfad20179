//! Lambda entrypoint of the scheduled reconcile: build the Cognito, Chime and
//! sync-queue clients once per sandbox, then reconcile on each event (the
//! schedule's, or the state machine's continuation) and answer whether the
//! cycle is done.

use std::process::ExitCode;
use std::time::SystemTime;

use chime_sync_aws::{
    ChimeDirectory, CognitoUserPool, ReconcileConfig, SqsQueue, lambda_sdk_config,
};
use chime_sync_core::handlers::reconcile::{self, Continuation, Reconcile, Start};
use chime_sync_runtime::{
    Incoming, LambdaEvent, deadline, diagnostic, emit, exit_code, init_tracing, report_init_error,
    require_lambda, run, service_fn, unreadable,
};

// One thread: a Lambda sandbox serves one invocation at a time, and the concurrent Cognito,
// Chime and SQS calls wait on I/O, so a multi-thread runtime only adds start-up work (worker
// threads, cgroup probing) and cross-thread wake-ups (docs/PERFORMANCE.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Err(outside_lambda) = require_lambda(env!("CARGO_BIN_NAME")) {
        return outside_lambda;
    }
    init_tracing();
    let config = match ReconcileConfig::from_env() {
        Ok(config) => config,
        Err(e) => return report_init_error(e).await,
    };
    let sdk = match lambda_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return report_init_error(e).await,
    };
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
            .map_err(|e| unreadable("ReconcileFailed", reconcile::METRICS, &e))?;
        // A continuation is read by its type, so a malformed one is reported with where and
        // what was expected, never with its values (serde's own messages quote them).
        let start = match payload.get("continuation").filter(|c| !c.is_null()) {
            Some(c) => Start::Continue(Box::new(
                Incoming::from(c.clone())
                    .typed::<Continuation>()
                    .map_err(|e| unreadable("ReconcileFailed", reconcile::METRICS, &e))?,
            )),
            None => reconcile::fresh_cycle(&payload, SystemTime::now()),
        };
        let before = start.totals();
        let result = reconcile::run(start, deps, deadline).await;
        emit(&reconcile::metrics(&before, &result, &deps.directory));
        result.map_err(|e| diagnostic("ReconcileFailed", e.code(), e))
    }))
    .await;
    exit_code(served)
}
