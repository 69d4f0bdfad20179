//! In-process measurements of `idp_sync::handle` with the real `ChimeDirectory` against
//! the Chime fake on 127.0.0.1: batch concurrency under a fixed Chime latency (over HTTPS,
//! on a current_thread runtime as the function runs), and a backlog drained under a TPS
//! quota (plain HTTP).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chime_identity_fake::{FakeChime, FakeConfig, FaultConfig, Operation, TestCa, TlsFront};
use chime_sync_aws::http::sdk_http_client;
use chime_sync_aws::{ChimeDirectory, TrustRoots};
use chime_sync_bench::in_process::{
    IDP_SYNC_TIMEOUT, idp_sync_config, on_current_thread, slow_chime, trusting,
};
use chime_sync_core::handlers::idp_sync::{self, BatchReport, IdpSync, SqsEvent};
use chime_sync_core::ledger::memory::InMemoryLedger;
use chime_sync_core::memory::InMemoryQueue;
use chime_sync_core::{
    AppInstanceArn, Directory, DirectoryError, DirectoryPage, DirectoryUser, UserId, UserProfile,
};
use testkit::esm_driver::static_sdk_config;

use crate::events::{self, Message};
use crate::stats::Summary;

/// One directory call as the handler made it.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub start: Instant,
    pub end: Instant,
}

/// A directory that records when each call ran, to show order and overlap.
pub struct Recording<D> {
    inner: D,
    calls: Mutex<Vec<Call>>,
}

impl<D> Recording<D> {
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls so far, forgetting them.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn timed<T>(&self, id: &UserId, call: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Call {
                id: id.to_string(),
                start,
                end: Instant::now(),
            });
        out
    }
}

impl<D: Directory> Directory for Recording<D> {
    fn app_instance_arn(&self) -> &AppInstanceArn {
        self.inner.app_instance_arn()
    }

    async fn create(&self, user: &UserProfile) -> Result<(), DirectoryError> {
        self.timed(&user.id, self.inner.create(user)).await
    }

    async fn describe(&self, id: &UserId) -> Result<Option<DirectoryUser>, DirectoryError> {
        self.timed(id, self.inner.describe(id)).await
    }

    async fn update(&self, id: &UserId, name: &str, metadata: &str) -> Result<(), DirectoryError> {
        self.timed(id, self.inner.update(id, name, metadata)).await
    }

    async fn delete(&self, id: &UserId) -> Result<(), DirectoryError> {
        self.timed(id, self.inner.delete(id)).await
    }

    async fn list(&self, next_token: Option<String>) -> Result<DirectoryPage, DirectoryError> {
        self.inner.list(next_token).await
    }

    async fn put_expiration(
        &self,
        id: &UserId,
        expiration: Option<chime_sync_core::directory::Expiration>,
    ) -> Result<Option<chime_sync_core::directory::Expiration>, DirectoryError> {
        self.timed(id, self.inner.put_expiration(id, expiration))
            .await
    }

    fn take_call_stats(&self) -> chime_sync_core::metrics::CallStats {
        self.inner.take_call_stats()
    }
}

/// What a deployed idp-sync has: static credentials, the Chime client configuration
/// `IdpSyncConfig` builds from the environment (budget, attempts, backoff), and our HTTP
/// client trusting `roots`, pointed at `endpoint`.
fn deps(endpoint: String, roots: &TrustRoots) -> Result<Deps, String> {
    let http = sdk_http_client(roots).map_err(|e| e.to_string())?;
    let sdk = static_sdk_config().to_builder().http_client(http).build();
    let config = idp_sync_config(events::APP_INSTANCE_ARN, "memory", endpoint)?;
    Ok(IdpSync {
        max_concurrent_groups: config.max_concurrent_groups,
        ..IdpSync::new(
            Recording::new(ChimeDirectory::new(&sdk, config.chime)),
            InMemoryQueue::new(),
            InMemoryLedger::new(),
        )
    })
}

type Deps = IdpSync<Recording<ChimeDirectory>, InMemoryQueue, InMemoryLedger>;

/// The batch as Lambda's typed SQS event; refused with why if the generated JSON does not fit
/// `aws_lambda_events`' shape (a change to `events::sqs_event` that broke it).
fn sqs_event<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Result<SqsEvent, String> {
    serde_json::from_value(events::sqs_event(messages))
        .map_err(|e| format!("the benchmark's SQS event is not an SqsEvent: {e}"))
}

async fn run(event: &SqsEvent, deps: &Deps) -> (Duration, BatchReport) {
    let started = Instant::now();
    let report = idp_sync::handle(
        event,
        deps,
        Some(tokio::time::Instant::now() + IDP_SYNC_TIMEOUT),
    )
    .await;
    (started.elapsed(), report)
}

/// The most calls that were in flight at once.
fn max_overlap(calls: &[Call]) -> usize {
    let mut edges: Vec<(Instant, i32)> = calls
        .iter()
        .flat_map(|c| [(c.start, 1), (c.end, -1)])
        .collect();
    // Ends before starts at the same instant: touching calls do not overlap.
    edges.sort_by_key(|&(at, delta)| (at, delta));
    let mut now = 0i32;
    let mut most = 0i32;
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

pub struct Concurrency {
    pub latency_ms: u64,
    /// A batch of one message: one Chime round trip through the handler.
    pub round_trip: Summary,
    pub ten_groups: Summary,
    /// The fewest calls in flight at once seen at a ten-group batch's peak, over all runs.
    pub ten_groups_min_peak_overlap: usize,
    pub one_group: Summary,
    /// Every one-group run applied its ten messages one after the other, in batch order.
    pub one_group_in_order: bool,
    pub one_group_calls: usize,
    /// Directory calls the handler made in all the batches, warm-up included.
    pub calls: usize,
    /// HTTP requests the fake saw: more than `calls` means the SDK retried.
    pub http_attempts: u64,
}

/// Batches of ten `user.created` messages (one Chime call each) with a fixed Chime
/// latency, in ten FIFO groups and in one; `runs` of each, interleaved. Over HTTPS (the
/// fake's TLS front, its root trusted as `SSL_CERT_FILE` would), with the handler on a
/// current_thread runtime.
pub async fn batch_concurrency(runs: usize, latency_ms: u64) -> Result<Concurrency, String> {
    let fake = slow_chime(latency_ms).await?;
    let ca = TestCa::generate().map_err(|e| e.to_string())?;
    let roots = trusting(&ca)?;
    let front = TlsFront::start(fake.addr(), &ca)
        .await
        .map_err(|e| e.to_string())?;
    let deps = deps(front.endpoint_url(), &roots)?;
    let result = on_current_thread(move || measure_batches(deps, runs, latency_ms))
        .await
        .map(|c| Concurrency {
            http_attempts: fake.counters().total_attempts(),
            ..c
        });
    drop(front);
    fake.shutdown().await;
    result
}

/// `runs` rounds of a batch of one (a round trip), ten messages in ten groups and ten in
/// one group, after a warm-up batch; the calls each batch made tell how far they overlapped
/// and whether one group's went one after the other.
async fn measure_batches(deps: Deps, runs: usize, latency_ms: u64) -> Result<Concurrency, String> {
    let mut n = 1_000_000u64;
    let mut next = || {
        n += 1;
        n
    };
    // Warm-up: opens the ten pooled connections the measured batches reuse.
    let warm = ten_messages(next() * 100, None);
    run(&sqs_event(&warm)?, &deps).await;
    let mut total_calls = deps.directory.take().len();

    let (mut one, mut ten, mut seq) = (Vec::new(), Vec::new(), Vec::new());
    let mut min_peak = usize::MAX;
    let mut in_order = true;
    let mut one_group_calls = 0;
    for r in 0..runs {
        let n1 = next() * 100;
        let single = [Message::idp(
            &format!("rt{n1}"),
            "user.created",
            n1,
            "Round Trip",
            None,
        )];
        let (t, calls) = applied_batch(&single, &deps).await?;
        one.push(t);
        total_calls += calls.len();

        let (t, calls) = applied_batch(&ten_messages(next() * 100, None), &deps).await?;
        ten.push(t);
        total_calls += calls.len();
        min_peak = min_peak.min(max_overlap(&calls));

        let group = format!("tenant-{r}");
        let messages = ten_messages(next() * 100, Some(&group));
        let (t, calls) = applied_batch(&messages, &deps).await?;
        seq.push(t);
        total_calls += calls.len();
        one_group_calls = calls.len();
        in_order &= one_after_another(&messages, &calls);
    }
    Ok(Concurrency {
        latency_ms,
        round_trip: Summary::of_durations_ms(&one).ok_or("no runs")?,
        ten_groups: Summary::of_durations_ms(&ten).ok_or("no runs")?,
        ten_groups_min_peak_overlap: min_peak,
        one_group: Summary::of_durations_ms(&seq).ok_or("no runs")?,
        one_group_in_order: in_order,
        one_group_calls,
        calls: total_calls,
        http_attempts: 0,
    })
}

/// Ten `user.created` messages about users `first..first + 10`, in `group` or each in
/// its own.
fn ten_messages(first: u64, group: Option<&str>) -> Vec<Message> {
    (first..first + 10)
        .map(|n| {
            Message::idp(
                &format!("cc{n}"),
                "user.created",
                n,
                &format!("Bench User {n}"),
                group,
            )
        })
        .collect()
}

/// One batch of `messages` through the handler, every one applied: its wall time and the
/// directory calls it made.
async fn applied_batch(messages: &[Message], deps: &Deps) -> Result<(Duration, Vec<Call>), String> {
    let (t, report) = run(&sqs_event(messages)?, deps).await;
    expect_applied(&report)?;
    Ok((t, deps.directory.take()))
}

/// Whether one group's `calls` went as FIFO promises: user after user in the order of
/// `messages`, each call after the previous one ended. A new user is a Describe and a
/// Create (the handlers read first): one entry per user, in the order of its first call.
fn one_after_another(messages: &[Message], calls: &[Call]) -> bool {
    let wanted: Vec<String> = messages
        .iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(&m.body)
                .map(|b| b["user"]["sub"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_default()
        })
        .collect();
    let mut got: Vec<String> = calls.iter().map(|c| c.id.clone()).collect();
    got.dedup();
    let sequential = calls.windows(2).all(|w| w[1].start >= w[0].end);
    got == wanted && sequential
}

fn expect_applied(report: &BatchReport) -> Result<(), String> {
    match report.messages.iter().find(|m| m.outcome.is_failure()) {
        None => Ok(()),
        Some(m) => Err(format!(
            "batch message {} failed: {}",
            m.message_id,
            m.outcome.label()
        )),
    }
}

pub struct Drain {
    pub messages: usize,
    pub tps_limit: f64,
    pub burst: u32,
    pub elapsed: Duration,
    /// Messages applied per second over the whole drain.
    pub rate: f64,
    /// The same without the bucket's initial tokens, which let the first `burst` calls
    /// through on top of the quota: (applied − burst) / wall time. The target is judged
    /// on this one.
    pub sustained_rate: f64,
    /// Messages applied in each whole second of the drain.
    pub per_second: Summary,
    pub invocations: usize,
    /// Messages reported failed and delivered again.
    pub redelivered: usize,
    pub max_receive_count: u32,
    /// Sent to the DLQ by the handler.
    pub dead_lettered: usize,
    /// The queue's maxReceiveCount (template.yaml's default), and the messages SQS would
    /// have moved to the DLQ after that many receives.
    pub redrive_after: u32,
    pub redriven: usize,
    /// Messages received more than 5 times: what the template's smallest allowed
    /// maxReceiveCount would have dead-lettered.
    pub over_five_receives: usize,
    /// Directory calls the handler made (CreateAppInstanceUser, once per attempt to apply).
    pub calls: usize,
    /// HTTP requests the fake saw, SDK retries included.
    pub http_attempts: u64,
    /// Of those, answered 429 ThrottledClientException by the quota.
    pub throttled: u64,
    pub users_at_end: usize,
}

/// `messages` creates of distinct users (each its own FIFO group) drained by repeated
/// `idp_sync::handle` calls over batches of ten against a fake with a TPS quota; a
/// message reported failed goes to the back of the queue with its receive count raised,
/// as SQS redelivers it.
pub async fn backlog_drain(
    messages: usize,
    tps_limit: f64,
    redrive_after: u32,
) -> Result<Drain, String> {
    let burst = tps_limit.ceil() as u32;
    let faults = FaultConfig::none()
        .with_tps_limit(tps_limit)
        .with_burst(burst)
        .only_for([Operation::CreateAppInstanceUser]);
    let fake = FakeChime::start(FakeConfig::new().with_faults(faults))
        .await
        .map_err(|e| format!("Chime fake: {e}"))?;
    let deps = deps(fake.endpoint_url(), &TrustRoots::Compiled)?;
    let started = Instant::now();
    let drained = drain(backlog(messages), &deps, redrive_after, started).await?;
    let elapsed = started.elapsed();
    let applied = drained.done_at.len();
    let counters = fake.counters().get(Operation::CreateAppInstanceUser);
    let users_at_end = fake.users().len();
    let dead_lettered = deps.dlq.sent().len();
    fake.shutdown().await;
    Ok(Drain {
        messages,
        tps_limit,
        burst,
        elapsed,
        rate: applied as f64 / elapsed.as_secs_f64(),
        sustained_rate: applied.saturating_sub(burst as usize) as f64 / elapsed.as_secs_f64(),
        per_second: Summary::of(&per_second(&drained.done_at, elapsed)).ok_or("no samples")?,
        invocations: drained.invocations,
        redelivered: drained.redelivered,
        max_receive_count: drained.max_receive,
        dead_lettered,
        redrive_after,
        redriven: drained.redriven,
        over_five_receives: drained.over_five,
        calls: drained.calls,
        http_attempts: counters.attempts,
        throttled: counters.injected.throttled,
        users_at_end,
    })
}

/// The backlog: `messages` creates of distinct users, each in its own group.
fn backlog(messages: usize) -> VecDeque<Message> {
    (0..messages as u64)
        .map(|i| {
            let n = 2_000_000 + i;
            Message::idp(
                &format!("bl{i}"),
                "user.created",
                n,
                &format!("Backlog User {n}"),
                None,
            )
        })
        .collect()
}

/// What happened to the backlog's messages while it drained.
struct Drained {
    /// When each applied message was applied, from the start.
    done_at: Vec<Duration>,
    invocations: usize,
    redelivered: usize,
    max_receive: u32,
    redriven: usize,
    over_five: usize,
    calls: usize,
}

/// Hands `queue` to the handler ten at a time until it is empty, as SQS would: a failed
/// message goes to the back of the queue once more, until `redrive_after` receives move
/// it to the DLQ. Gives up after 10 minutes.
async fn drain(
    mut queue: VecDeque<Message>,
    deps: &Deps,
    redrive_after: u32,
    started: Instant,
) -> Result<Drained, String> {
    let mut drained = Drained {
        done_at: Vec::with_capacity(queue.len()),
        invocations: 0,
        redelivered: 0,
        max_receive: 1,
        redriven: 0,
        over_five: 0,
        calls: 0,
    };
    while !queue.is_empty() {
        let batch: Vec<Message> = queue.drain(..queue.len().min(10)).collect();
        let (_, report) = run(&sqs_event(&batch)?, deps).await;
        drained.invocations += 1;
        drained.calls += deps.directory.take().len();
        for (mut message, outcome) in batch.into_iter().zip(&report.messages) {
            if !outcome.outcome.is_failure() {
                drained.done_at.push(started.elapsed());
                continue;
            }
            if message.receive_count == 5 {
                drained.over_five += 1;
            }
            if message.receive_count >= redrive_after {
                // SQS moves it to the DLQ instead of delivering it again.
                drained.redriven += 1;
                continue;
            }
            drained.redelivered += 1;
            message.receive_count += 1;
            drained.max_receive = drained.max_receive.max(message.receive_count);
            queue.push_back(message);
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "the drain did not finish within 10 minutes ({} left)",
                queue.len()
            ));
        }
    }
    Ok(drained)
}

/// Messages applied in each whole second of a drain that took `elapsed` (at least one
/// second's slot, so that a short drain still has a sample).
fn per_second(done_at: &[Duration], elapsed: Duration) -> Vec<f64> {
    let whole_seconds = elapsed.as_secs() as usize;
    let mut per_second = vec![0f64; whole_seconds.max(1)];
    for at in done_at {
        if let Some(slot) = per_second.get_mut(at.as_secs() as usize) {
            *slot += 1.0;
        }
    }
    per_second
}
