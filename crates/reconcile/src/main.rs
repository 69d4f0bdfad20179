//! Lambda entrypoint of the scheduled reconcile: build the Cognito, Chime and
//! sync-queue clients once per sandbox, then reconcile on each event (the
//! schedule's, or the state machine's continuation) and answer whether the
//! cycle is done.

use std::process::ExitCode;
use std::time::SystemTime;

use chime_sync_aws::{
    ChimeDirectory, CognitoUserPool, ConfiguredLedger, ReconcileConfig, SqsQueue, lambda_sdk_config,
};
use chime_sync_core::handlers::reconcile::{self, Continuation, Reconcile, Start};
use chime_sync_runtime::{
    Incoming, InvocationError, LambdaEvent, deadline, emit, exit_code, init_step, run,
    run_bootstrap, service_fn, start, unreadable,
};

fn main() -> ExitCode {
    run_bootstrap(serve())
}

/// Start up, then serve until the Runtime API ends; `Err` is a start-up failure, reported.
async fn serve() -> Result<ExitCode, ExitCode> {
    let config = start(env!("CARGO_BIN_NAME"), ReconcileConfig::from_env).await?;
    let sdk = init_step(lambda_sdk_config()).await?;
    let deps = &Reconcile {
        pool: CognitoUserPool::new(&sdk, config.cognito.clone()),
        directory: ChimeDirectory::new(&sdk, config.chime.clone()),
        queue: SqsQueue::new(
            &sdk,
            config.sync_queue_url.clone(),
            Some(config.queue_timeout),
        ),
        ledger: ConfiguredLedger::new(&sdk, &config.ledger),
        settings: config.settings,
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let deadline = deadline(&event.context);
        let payload = event
            .payload
            .json()
            .map_err(|e| unreadable(reconcile::METRICS, &e))?;
        // A continuation is read by its type, so a malformed one is reported with where and
        // what was expected, never with its values (serde's own messages quote them).
        let start = match payload.get("continuation").filter(|c| !c.is_null()) {
            Some(c) => Start::Continue(Box::new(
                Incoming::from(c.clone())
                    .typed::<Continuation>()
                    .map_err(|e| unreadable(reconcile::METRICS, &e))?,
            )),
            None => reconcile::fresh_cycle(&payload, SystemTime::now()),
        };
        let before = start.totals();
        let result = reconcile::run(start, deps, deadline).await;
        emit(&reconcile::metrics(&before, &result, &deps.directory));
        result.map_err(|e| InvocationError::new(reconcile::METRICS, &e))
    }))
    .await;
    Ok(exit_code(served))
}
