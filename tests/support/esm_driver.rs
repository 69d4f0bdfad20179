//! idp-sync driven the way the Lambda event source mapping drives it, over
//! the simulated SQS of `sqs-sim`: pollers receive batches of up to ten,
//! invoke `idp_sync::handle` with a deadline, and settle each batch from the
//! partial batch response — or leave the whole batch to come back when the
//! invocation timed out or was killed (its future dropped mid-batch).
//!
//! Shared by the fault tests (`tests/fault_run.rs`, `tests/cognito_faults.rs`,
//! `tests/sim_vs_moto.rs`), which include it with
//! `#[path = "support/esm_driver.rs"] mod esm_driver;`: it needs their
//! dev-dependencies (the fakes, the adapters, sqs-sim), which the harness
//! library (`tests/support/lib.rs`) does not depend on.

#![allow(dead_code)] // each test file uses a part

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::config::{Credentials, Region, SharedCredentialsProvider};
use chime_identity_fake::{FakeChimeHandle, UserRecord};
use chime_sync_aws::{ChimeConfig, ChimeDirectory};
use chime_sync_core::handlers::idp_sync::{self, IdpSync, MessageOutcome};
use chime_sync_core::{AppInstanceArn, Directory, Queue};
use futures_util::future::join_all;
use sqs_sim::lambda::{BatchFailure, EventSourceMapping, Invocation};
use sqs_sim::{SplitMix64, Sqs};
use tokio::time::Instant;

/// The AppInstance every fault test provisions into.
pub const APP_INSTANCE: &str =
    "arn:aws:chime:us-east-1:123456789012:app-instance/f0a1b2c3-d4e5-4f60-8172-839405a6b7c8";

/// Region and static credentials only: nothing read from the environment,
/// a profile or instance metadata.
pub fn static_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDFAULTTESTS",
            "fault-tests-secret",
            None,
            None,
            "fault-tests",
        )))
        .build()
}

/// The real `ChimeDirectory` (SDK client, retry classifier, error mapping)
/// pointed at `fake`, with `tune` applied to its configuration.
pub fn chime_directory(
    fake: &FakeChimeHandle,
    tune: impl FnOnce(&mut ChimeConfig),
) -> ChimeDirectory {
    let mut config = ChimeConfig::new(AppInstanceArn::parse(APP_INSTANCE).expect("valid ARN"));
    config.endpoint_url = Some(fake.endpoint_url());
    tune(&mut config);
    ChimeDirectory::new(&static_sdk_config(), config)
}

/// The fake's users of [`APP_INSTANCE`], by id.
pub fn fake_users(fake: &FakeChimeHandle) -> BTreeMap<String, UserRecord> {
    let mut users = BTreeMap::new();
    for u in fake.users() {
        if u.app_instance_arn == APP_INSTANCE {
            let id = u.app_instance_user_id.clone();
            assert!(
                users.insert(id.clone(), u).is_none(),
                "the fake lists user {id} twice"
            );
        }
    }
    users
}

/// Killing invocations mid-batch.
#[derive(Debug, Clone, Copy)]
pub struct Kills {
    /// Share of invocations killed.
    pub rate: f64,
    /// A killed invocation dies after a uniform time in `0..after_at_most`
    /// (if it has not finished by then, its future is dropped mid-batch).
    pub after_at_most: Duration,
}

/// How the mapping runs the function.
#[derive(Debug, Clone)]
pub struct Driver {
    /// Concurrent pollers (the mapping's concurrency).
    pub pollers: usize,
    /// The function timeout: the handler's deadline, and the point where a
    /// still-running invocation is cut off like Lambda cuts it off.
    pub function_timeout: Duration,
    pub kills: Option<Kills>,
    /// Seeds the kill decisions (one generator per poller).
    pub seed: u64,
    /// Longest sleep of a poller that found nothing visible.
    pub idle_wait: Duration,
}

impl Default for Driver {
    fn default() -> Self {
        Self {
            pollers: 1,
            function_timeout: Duration::from_secs(30),
            kills: None,
            seed: 0,
            idle_wait: Duration::from_millis(20),
        }
    }
}

/// What draining the queue took.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    pub invocations: u64,
    /// Invocations killed before they finished.
    pub killed: u64,
    /// Invocations cut off at the function timeout.
    pub timed_out: u64,
    /// Batches that came back whole because the response was not valid.
    pub invalid_responses: u64,
    /// Messages handed to the function (redeliveries included).
    pub messages_handled: u64,
    /// Messages deleted after a successful handling.
    pub deleted: u64,
    /// Messages reported failed in a partial batch response.
    pub reported_failed: u64,
    /// Deletes SQS refused (the invocation outlived the visibility timeout).
    pub failed_deletes: u64,
    /// Outcome labels of finished invocations (`applied/created`,
    /// `failed/Throttled`, `blocked`, `dead-lettered/InvalidJson`, …) and how often.
    pub outcomes: BTreeMap<String, u64>,
    /// How many deleted messages had been received how many times.
    pub receives_at_delete: BTreeMap<u32, u64>,
    pub elapsed: Duration,
}

impl DrainReport {
    pub fn outcome(&self, label: &str) -> u64 {
        self.outcomes.get(label).copied().unwrap_or(0)
    }

    /// Sum of the outcomes whose label starts with `prefix`.
    pub fn outcomes_starting(&self, prefix: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn max_receives_at_delete(&self) -> u32 {
        self.receives_at_delete.keys().copied().max().unwrap_or(0)
    }
}

fn label(outcome: &MessageOutcome) -> String {
    match outcome {
        MessageOutcome::Applied(a) => format!("applied/{}", a.as_str()),
        MessageOutcome::DeadLettered { code } => format!("dead-lettered/{code}"),
        MessageOutcome::Failed { code } => format!("failed/{code}"),
        MessageOutcome::Blocked => "blocked".to_owned(),
    }
}

enum Ended {
    Finished(idp_sync::BatchReport),
    TimedOut,
    Killed,
}

/// Run `driver.pollers` concurrent pollers over `esm`'s queue until it holds
/// no message (all deleted or moved to its DLQ). Bound it with a timeout at
/// the caller.
///
/// The pollers run as futures of the caller's task rather than spawned tasks:
/// `idp_sync::handle`'s future is not provably `Send` (rustc cannot prove it
/// for the `buffer_unordered` closure over borrowed records, the
/// higher-ranked-lifetime limitation of rust-lang/rust#64552), so it cannot
/// be given to `tokio::spawn`. The SDK's connection tasks and the fake's
/// still run on the runtime's other workers.
pub async fn drain<D: Directory, Q: Queue>(
    sqs: &Sqs,
    esm: &EventSourceMapping,
    deps: &IdpSync<D, Q>,
    driver: &Driver,
) -> DrainReport {
    let started = Instant::now();
    let report = Mutex::new(DrainReport::default());
    join_all((0..driver.pollers).map(|i| poller(i, sqs, esm, deps, driver, &report))).await;
    let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    report.elapsed = started.elapsed();
    report
}

async fn poller<D: Directory, Q: Queue>(
    index: usize,
    sqs: &Sqs,
    esm: &EventSourceMapping,
    deps: &IdpSync<D, Q>,
    driver: &Driver,
    report: &Mutex<DrainReport>,
) {
    let mut rng =
        SplitMix64::new(driver.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let with_report = |f: &mut dyn FnMut(&mut DrainReport)| {
        f(&mut report.lock().unwrap_or_else(|p| p.into_inner()));
    };
    loop {
        let Some(batch) = esm
            .poll(sqs)
            .expect("ReceiveMessage on the simulated queue")
        else {
            if sqs.depth(&esm.queue).expect("queue exists").total() == 0 {
                return;
            }
            // Something is in flight: wait until it may be visible again.
            let wait = sqs
                .next_visible_at(&esm.queue)
                .expect("queue exists")
                .map_or(driver.idle_wait, |at| at.saturating_sub(sqs.now()))
                .clamp(Duration::from_millis(1), driver.idle_wait);
            tokio::time::sleep(wait).await;
            continue;
        };
        let kill_after = driver.kills.and_then(|k| {
            let kill = rng.chance(k.rate);
            let micros = u64::try_from(k.after_at_most.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let after = Duration::from_micros(rng.next_u64() % micros);
            kill.then_some(after)
        });
        let deadline = Instant::now() + driver.function_timeout;
        let run = async {
            match tokio::time::timeout_at(
                deadline,
                idp_sync::handle(&batch.event, deps, Some(deadline)),
            )
            .await
            {
                Ok(report) => Ended::Finished(report),
                Err(_) => Ended::TimedOut,
            }
        };
        let ended = match kill_after {
            None => run.await,
            Some(after) => tokio::select! {
                ended = run => ended,
                () = tokio::time::sleep(after) => Ended::Killed,
            },
        };
        let invocation = match &ended {
            Ended::Finished(r) => Invocation::returned(&r.response()),
            Ended::TimedOut | Ended::Killed => Invocation::Failed,
        };
        let completion = esm
            .complete(sqs, &batch, &invocation)
            .expect("settling a batch on the simulated queue");
        with_report(&mut |r| {
            r.invocations += 1;
            r.messages_handled += batch.len() as u64;
            match &ended {
                Ended::Finished(report) => {
                    for m in &report.messages {
                        *r.outcomes.entry(label(&m.outcome)).or_default() += 1;
                    }
                }
                Ended::TimedOut => r.timed_out += 1,
                Ended::Killed => r.killed += 1,
            }
            if matches!(
                completion.batch_failure,
                Some(BatchFailure::InvalidResponse(_))
            ) {
                r.invalid_responses += 1;
            }
            if completion.batch_failure.is_none() {
                r.reported_failed += completion.retried.len() as u64;
            }
            r.deleted += completion.deleted.len() as u64;
            r.failed_deletes += completion.failed_deletes.len() as u64;
            for m in &batch.messages {
                if completion.deleted.contains(&m.message_id) {
                    *r.receives_at_delete.entry(m.receive_count).or_default() += 1;
                }
            }
        });
    }
}

/// A message received from a real SQS endpoint (moto) as the Lambda record
/// idp-sync reads, built the same way the simulator's mapping builds it.
pub fn record_from_sdk(
    m: &aws_sdk_sqs::types::Message,
    queue_arn: &str,
    region: &str,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let received = sqs_sim::ReceivedMessage {
        message_id: m.message_id().unwrap_or_default().to_owned(),
        receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        attributes: m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        message_attributes: m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        receive_count: 0,
    };
    sqs_sim::lambda::record(&received, queue_arn, region)
}
