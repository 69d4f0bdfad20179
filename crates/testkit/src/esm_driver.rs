//! idp-sync driven the way the Lambda event source mapping drives it, over
//! the simulated SQS of `sqs-sim`: pollers receive batches of up to ten,
//! invoke `idp_sync::handle` with a deadline, and settle each batch from the
//! partial batch response — or leave the whole batch to come back when the
//! invocation timed out or was killed (its future dropped mid-batch).
//!
//! Used by the fault runs and the sim-versus-moto comparison of the end-to-end suite.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::config::{Credentials, Region, SharedCredentialsProvider};
use chime_identity_fake::{FakeChimeHandle, UserRecord};
use chime_sync_aws::{ChimeConfig, ChimeDirectory};
use chime_sync_core::handlers::idp_sync::{self, IdpSync, MessageOutcome};
use chime_sync_core::ledger::Ledger;
use chime_sync_core::{
    AppInstanceArn, Directory, DirectoryError, DirectoryPage, DirectoryUser, Queue, UserId,
    UserProfile,
};
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
        .http_client(crate::moto::http_client())
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
    /// The queue's visibility timeout: how long a received group is the
    /// receiver's alone. A holder that outlives it (a slow, loaded machine)
    /// may legally see its group handed out again; that is counted apart.
    pub visibility_timeout: Duration,
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
            visibility_timeout: Duration::from_secs(30),
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
    /// Batches that held a message group another running invocation had
    /// received less than a visibility timeout before: never on a FIFO queue.
    pub groups_held_twice: u64,
    /// Batches that held a group whose other holder had outlived the
    /// visibility timeout (it ran late: SQS may hand the group out again).
    pub groups_after_overrun: u64,
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
        MessageOutcome::Refused(r) => format!("refused/{}", r.code()),
        MessageOutcome::Held => "held".to_owned(),
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
/// The pollers run as futures of the caller's task rather than spawned tasks,
/// so they can borrow the queue, the mapping and the handler's dependencies;
/// the SDK's connection tasks and the fake's still run on the runtime's other
/// workers.
pub async fn drain<D: Directory, Q: Queue, L: Ledger>(
    sqs: &Sqs,
    esm: &EventSourceMapping,
    deps: &IdpSync<D, Q, L>,
    driver: &Driver,
) -> DrainReport {
    let started = Instant::now();
    let report = Mutex::new(DrainReport::default());
    let held = Mutex::new(BTreeMap::new());
    join_all((0..driver.pollers).map(|i| poller(i, sqs, esm, deps, driver, &report, &held))).await;
    let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    report.elapsed = started.elapsed();
    report
}

async fn poller<D: Directory, Q: Queue, L: Ledger>(
    index: usize,
    sqs: &Sqs,
    esm: &EventSourceMapping,
    deps: &IdpSync<D, Q, L>,
    driver: &Driver,
    report: &Mutex<DrainReport>,
    held: &Mutex<BTreeMap<String, Vec<Instant>>>,
) {
    let mut rng =
        SplitMix64::new(driver.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let with_report = |f: &mut dyn FnMut(&mut DrainReport)| {
        f(&mut report.lock().unwrap_or_else(|p| p.into_inner()));
    };
    loop {
        // No later than the queue's receive: the lower bound of when this batch's
        // messages became invisible (see `clash` below).
        let polled_from = Instant::now();
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
        let groups: BTreeSet<String> = batch
            .messages
            .iter()
            .filter_map(|m| m.group_id().map(str::to_owned))
            .collect();
        // A clash is a batch sharing a group with a running one whose messages were still
        // invisible. Holders are timed from before their receive and this batch from after its
        // own, so a poller descheduled around a receive (a loaded machine) can only make the gap
        // look longer, never turn an overrun into a clash.
        let received_at = Instant::now();
        let (clash, after_overrun) = {
            let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
            let holders = || groups.iter().filter_map(|g| held.get(g)).flatten();
            let within =
                holders().any(|at| received_at.duration_since(*at) < driver.visibility_timeout);
            let overrun = !within && holders().next().is_some();
            for g in &groups {
                held.entry(g.clone()).or_default().push(polled_from);
            }
            (within, overrun)
        };
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
        {
            let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
            for g in &groups {
                if let Some(at) = held.get_mut(g) {
                    at.retain(|t| *t != polled_from);
                    if at.is_empty() {
                        held.remove(g);
                    }
                }
            }
        }
        with_report(&mut |r| {
            r.invocations += 1;
            r.groups_held_twice += u64::from(clash);
            r.groups_after_overrun += u64::from(after_overrun);
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
        attributes: crate::moto::attribute_map(m).into_iter().collect(),
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

/// A directory that counts the calls made through it, so a test can tell the
/// SDK's own retries (HTTP attempts beyond the calls) from the queue's
/// redeliveries.
pub struct Counted<D> {
    pub inner: D,
    calls: std::sync::atomic::AtomicU64,
}

impl<D> Counted<D> {
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            calls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<D: Directory> Directory for Counted<D> {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        self.inner.app_instance_arn()
    }
    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        self.count();
        self.inner.create(user).await
    }
    async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.count();
        self.inner.describe(id).await
    }
    async fn update(&self, id: &UserId, name: &str, metadata: &str) -> Result<(), DirectoryError> {
        self.count();
        self.inner.update(id, name, metadata).await
    }
    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.count();
        self.inner.delete(id).await
    }
    async fn list(&self, next_token: Option<String>) -> Result<DirectoryPage, DirectoryError> {
        self.count();
        self.inner.list(next_token).await
    }
    async fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<chime_sync_core::directory::Expiration>,
    ) -> Result<Option<chime_sync_core::directory::Expiration>, DirectoryError> {
        self.count();
        self.inner.put_expiration(id, expiration).await
    }
    fn take_call_stats(&self) -> chime_sync_core::metrics::CallStats {
        self.inner.take_call_stats()
    }
}
