//! The set-up of an in-process measurement: see the crate's documentation. The SDK
//! configuration is the tests' ([`testkit::esm_driver::static_sdk_config`]: region and static
//! credentials only, so a benchmark can never reach a real account).

use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, FaultConfig, TestCa};
use chime_sync_aws::config::{APP_INSTANCE_ARN, DLQ_URL, LEDGER_TABLE};
use chime_sync_aws::{IdpSyncConfig, TrustRoots};

/// The template's idp-sync timeout: the deadline each measured batch is given.
pub const IDP_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The dead-letter queue idp-sync's configuration requires; the measurements give the
/// handler an in-memory queue, so nothing is sent here.
const DLQ: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/identity-sync-dlq.fifo";

/// idp-sync's configuration as a deployment's variables give it (`app_instance_arn`, the
/// DLQ, `LEDGER_TABLE=ledger_table`), its Chime client pointed at `chime_endpoint`: the
/// budget, attempts and backoff are the function's own defaults.
pub fn idp_sync_config(
    app_instance_arn: &str,
    ledger_table: &str,
    chime_endpoint: String,
) -> Result<IdpSyncConfig, String> {
    let mut config = IdpSyncConfig::from_lookup(|name| match name {
        APP_INSTANCE_ARN => Some(app_instance_arn.to_owned()),
        DLQ_URL => Some(DLQ.to_owned()),
        LEDGER_TABLE => Some(ledger_table.to_owned()),
        _ => None,
    })
    .map_err(|e| format!("the benchmark's idp-sync configuration: {e}"))?;
    config.chime.endpoint_url = Some(chime_endpoint);
    Ok(config)
}

/// The Chime fake answering every request after `latency_ms`: a fixed round trip, so that
/// what a measurement compares reads as round trips.
pub async fn slow_chime(latency_ms: u64) -> Result<FakeChimeHandle, String> {
    let faults = FaultConfig::none().with_latency(latency_ms, latency_ms);
    FakeChime::start(FakeConfig::new().with_faults(faults))
        .await
        .map_err(|e| format!("Chime fake: {e}"))
}

/// The roots a function trusts with `SSL_CERT_FILE` naming `ca`'s certificate: read from a
/// file, as the function reads it, and the file removed again.
pub fn trusting(ca: &TestCa) -> Result<TrustRoots, String> {
    let ca_file =
        std::env::temp_dir().join(format!("chime-sync-bench-{}-ca.pem", std::process::id()));
    ca.write_pem(&ca_file).map_err(|e| e.to_string())?;
    let roots = TrustRoots::from_pem_file(&ca_file).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&ca_file);
    roots
}

/// Runs `f` to completion on a fresh current_thread runtime on a thread of its own, as the
/// functions run (the fakes stay on the caller's runtime, so their work is not counted in
/// the handler's).
pub async fn on_current_thread<F, Fut, T>(f: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, String>>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a current_thread runtime: {e}"))
            .and_then(|rt| rt.block_on(f()));
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| "the current_thread measurement panicked".to_owned())?
}
