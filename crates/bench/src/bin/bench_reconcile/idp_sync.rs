//! idp-sync's cost of the ledger per message: batches of ten `user.created`
//! messages (ten FIFO groups, one message each) applied by `idp_sync::handle`
//! in-process, as the function is wired (`IdpSyncConfig` from variables,
//! `ConfiguredLedger`, a current_thread runtime), once with `LEDGER_TABLE=memory`
//! and once with a ledger table on the counting DynamoDB stand-in. Chime (the
//! fake) and the stand-in answer each call after the same latency, both over
//! HTTPS through a TLS front, so a round trip to either costs the same and the
//! difference in a message's latency reads as round trips.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chime_identity_fake::{TestCa, TlsFront};
use chime_sync_aws::http::sdk_http_client;
use chime_sync_aws::{ChimeDirectory, ConfiguredLedger, TrustRoots};
use chime_sync_bench::in_process::{
    IDP_SYNC_TIMEOUT, idp_sync_config, on_current_thread, slow_chime, trusting,
};
use chime_sync_core::handlers::idp_sync::{self, IdpSync, MessageOutcome, SqsEvent};
use chime_sync_core::memory::InMemoryQueue;
use serde_json::{Value, json};
use testkit::esm_driver::static_sdk_config;

use crate::dynamodb::{Calls, CountingDynamoDb};

/// The ledger table's name as the stand-in sees it (any valid name does).
const TABLE: &str = "chime-sync-bench-ledger";

type Deps = IdpSync<ChimeDirectory, InMemoryQueue, ConfiguredLedger>;

/// One ledger configuration's batches.
#[derive(Debug, Default)]
pub struct Variant {
    pub messages: usize,
    /// Each measured batch's wall time: ten messages applied side by side, so
    /// a batch lasts as long as its slowest message.
    pub batches: Vec<Duration>,
    /// Requests the Chime fake saw during this variant's measured batches.
    pub chime_requests: u64,
    /// Calls the DynamoDB stand-in saw during them.
    pub ledger: Calls,
}

impl Variant {
    /// The median and 95th percentile of the batch wall times, ms.
    pub fn batch_ms(&self) -> (f64, f64) {
        let mut ms: Vec<f64> = self
            .batches
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            ms.get(i).copied().unwrap_or(0.0)
        };
        (at(0.5), at(0.95))
    }

    /// Wall time over messages: the handler's throughput, ms per message.
    pub fn ms_per_message(&self) -> f64 {
        let total: Duration = self.batches.iter().sum();
        total.as_secs_f64() * 1000.0 / self.messages.max(1) as f64
    }

    pub fn per_message(&self, n: u64) -> f64 {
        n as f64 / self.messages.max(1) as f64
    }
}

/// Both configurations, measured in the same run with batches interleaved.
#[derive(Debug)]
pub struct IdpLatency {
    pub latency_ms: u64,
    pub without: Variant,
    pub with: Variant,
}

/// What a deployed idp-sync has, from its variables: `ledger` is `LEDGER_TABLE`.
/// Chime's and DynamoDB's endpoints are the TLS fronts, whose root `roots` trusts.
fn deps(chime: &str, dynamodb: &str, ledger: &str, roots: &TrustRoots) -> Result<Deps, String> {
    let http = sdk_http_client(roots).map_err(|e| e.to_string())?;
    let sdk = static_sdk_config().to_builder().http_client(http).build();
    let ledger_sdk = sdk.to_builder().endpoint_url(dynamodb).build();
    let config = idp_sync_config(crate::APP, ledger, chime.to_owned())?;
    Ok(IdpSync {
        max_concurrent_groups: config.max_concurrent_groups,
        rules: config.rules.clone(),
        ..IdpSync::new(
            ChimeDirectory::new(&sdk, config.chime),
            InMemoryQueue::new(),
            ConfiguredLedger::new(&ledger_sdk, &config.ledger),
        )
    })
}

/// Ten `user.created` messages about new users `first..first + 10`, each in
/// its own FIFO group (its sub), as an SQS event.
fn batch(first: u64) -> Result<SqsEvent, String> {
    let occurred = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let records: Vec<Value> = (first..first + 10)
        .map(|n| {
            let sub = format!("b3e7c0de-0000-4000-8000-{n:012x}");
            let body = json!({
                "version": 1, "type": "user.created", "eventId": format!("bench-{n}"),
                "occurredAt": occurred,
                "user": {"sub": sub, "displayName": format!("Bench User {n}"),
                         "metadata": {"department": "R&D"}}
            });
            json!({
                "messageId": format!("c9f5e3a7-4b6d-4e8f-9a0b-{n:012x}"),
                "receiptHandle": "AQEBbench", "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795168980000",
                               "SenderId": "AROAEXAMPLE:hr-connector",
                               "ApproximateFirstReceiveTimestamp": "1795168980042",
                               "SequenceNumber": n.to_string(), "MessageGroupId": sub,
                               "MessageDeduplicationId": format!("bench-{n}")},
                "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:identity-sync.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).map_err(|e| e.to_string())
}

/// One batch through the handler, its wall time; every message must be applied.
async fn run(deps: &Deps, first: u64) -> Result<Duration, String> {
    let event = batch(first)?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + IDP_SYNC_TIMEOUT;
    let report = idp_sync::handle(&event, deps, Some(deadline)).await;
    let took = started.elapsed();
    match report
        .messages
        .iter()
        .find(|m| !matches!(m.outcome, MessageOutcome::Applied(_)))
    {
        None => Ok(took),
        Some(m) => Err(format!(
            "idp-sync did not apply message {}: {}",
            m.message_id,
            m.outcome.label()
        )),
    }
}

/// What the measurement thread reads the fakes' counters with.
struct Counters {
    chime: Box<dyn Fn() -> u64 + Send>,
    ledger: Box<dyn Fn() -> Calls + Send>,
}

/// `batches` measured batches of each configuration, alternating which goes
/// first, after one warm-up batch each (which opens the pooled connections,
/// TLS handshakes included, as a warm sandbox has them).
async fn interleaved(
    configs: [Deps; 2],
    batches: usize,
    counters: Counters,
) -> Result<[Variant; 2], String> {
    let mut next = 10_000_000u64;
    for deps in &configs {
        run(deps, next).await?;
        next += 10;
    }
    let mut variants = [Variant::default(), Variant::default()];
    for b in 0..batches {
        let order = if b % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (chime, ledger) = ((counters.chime)(), (counters.ledger)());
            let took = run(&configs[i], next).await?;
            next += 10;
            let v = &mut variants[i];
            v.batches.push(took);
            v.messages += 10;
            v.chime_requests += (counters.chime)() - chime;
            v.ledger = v.ledger.plus(&(counters.ledger)().since(&ledger));
        }
    }
    Ok(variants)
}

/// `messages` (rounded up to whole batches of ten) per configuration, with
/// Chime and the DynamoDB stand-in both answering after `latency_ms`.
pub async fn measure(messages: usize, latency_ms: u64) -> Result<IdpLatency, String> {
    let fake = Arc::new(slow_chime(latency_ms).await?);
    let dynamodb = CountingDynamoDb::start(Duration::from_millis(latency_ms))
        .await
        .map_err(|e| format!("DynamoDB stand-in: {e}"))?;
    let ca = TestCa::generate().map_err(|e| e.to_string())?;
    let roots = trusting(&ca)?;
    let chime_front = TlsFront::start(fake.addr(), &ca)
        .await
        .map_err(|e| e.to_string())?;
    let ledger_front = TlsFront::start(dynamodb.addr, &ca)
        .await
        .map_err(|e| e.to_string())?;
    let (chime_url, ledger_url) = (chime_front.endpoint_url(), ledger_front.endpoint_url());
    let configs = [
        deps(&chime_url, &ledger_url, "memory", &roots)?,
        deps(&chime_url, &ledger_url, TABLE, &roots)?,
    ];
    let counted = fake.clone();
    let counters = Counters {
        chime: Box::new(move || counted.counters().total_attempts()),
        ledger: Box::new(dynamodb.counter()),
    };
    let batches = messages.div_ceil(10).max(1);
    let [without, with] =
        on_current_thread(move || interleaved(configs, batches, counters)).await?;
    drop((chime_front, ledger_front));
    Ok(IdpLatency {
        latency_ms,
        without,
        with,
    })
}
