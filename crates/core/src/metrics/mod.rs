//! What the functions count, for CloudWatch, in the embedded metric format.
//!
//! Each invocation ends with one EMF object written as a log line of its
//! own (`chime_sync_runtime::metrics`): the counts of that invocation's
//! decisions by outcome, the Chime calls the SDK retried because Chime
//! throttled them, and how long each Chime call took. The per-decision log
//! lines stay as they are (sub, source, outcome); the metrics object holds
//! no sub and no other user data, only counts, and its one dimension is the
//! Lambda function's name. Why one object per invocation, and how it gets
//! past Lambda's log formats: docs/ARCHITECTURE.md, "Metrics".
//!
//! - [`Metric`]: every metric name, in one list that the template's alarms
//!   and dashboard are checked against (`tests/e2e/template.rs`). Adding one is
//!   one line in the `metrics!` declaration below (and, for an outcome, one
//!   arm where the handler maps its decision to it).
//! - [`FunctionMetrics`]: what a function publishes (each handler module
//!   declares its own `METRICS`).
//! - [`Invocation`]: one invocation's counts, turned into an [`Emf`].
//! - [`ChimeCalls`] / [`CallStats`]: what the Directory adapters measure of
//!   their calls (latency, throttled attempts retried).
//! - [`emf`]: the document builder, reusable for any other metric.

pub mod emf;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

pub use emf::{Emf, EmfError, Unit};

/// The CloudWatch namespace every function publishes in.
pub const NAMESPACE: &str = "ChimeIdentitySync";
/// The one dimension: the Lambda function's name (`AWS_LAMBDA_FUNCTION_NAME`,
/// which the stack's alarms know as `!Ref` of the function). Per stack and
/// per function, never per user.
pub const FUNCTION_DIMENSION: &str = "FunctionName";

/// Declares [`Metric`]: `Variant => Unit`, the variant's name being the
/// CloudWatch metric name.
macro_rules! metrics {
    ($($(#[doc = $doc:expr])+ $variant:ident => $unit:ident,)+) => {
        /// Every metric the functions publish; the name is the variant's.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Metric {
            /// All of them, in declaration order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)+];

            /// The CloudWatch metric name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => stringify!($variant),)+
                }
            }

            /// The CloudWatch unit.
            pub const fn unit(self) -> Unit {
                match self {
                    $(Metric::$variant => Unit::$unit,)+
                }
            }
        }
    };
}

metrics! {
    /// Decisions made: events, messages or requests handled (every one
    /// counts exactly one outcome below, except `Denied`, which is counted
    /// besides the outcome).
    Decisions => Count,
    /// A Chime user was created (log outcome `created`).
    Created => Count,
    /// An existing Chime user's name or metadata was brought up to date (`updated`).
    Updated => Count,
    /// The Chime user was already as asked: nothing written (`already-exists`).
    AlreadyExists => Count,
    /// A Chime user was deleted (`deleted`).
    Deleted => Count,
    /// Delete of a user already gone: done (`already-gone`).
    AlreadyGone => Count,
    /// Grace deletion: an expiration was set, Chime deletes the user when it
    /// passes (`deletion-scheduled`).
    DeletionScheduled => Count,
    /// Grace deletion of a user whose deletion was already scheduled as soon:
    /// nothing written (`deletion-already-scheduled`).
    DeletionAlreadyScheduled => Count,
    /// A pending deletion was cancelled: a create or update of a user whose
    /// expiration was set (a rehire), or `chime-sync restore` (`restored`).
    Restored => Count,
    /// post-confirmation: Chime failed or was too slow, the user went to the
    /// sync queue (`handed-off`).
    HandedOff => Count,
    /// post-confirmation: Chime and the hand-off both failed; Cognito retries
    /// (`failed`).
    HandOffFailed => Count,
    /// idp-sync: a permanently bad message went to the DLQ with its reason
    /// (`dead-lettered`).
    DeadLettered => Count,
    /// A retryable failure: idp-sync reports the message failed (SQS
    /// redelivers it); credential-exchange answers 500.
    Failed => Count,
    /// idp-sync: not attempted because an earlier message of its group failed.
    Blocked => Count,
    /// IAM (or Chime, for a user that exists) refused a call: a broken
    /// deployment, never the input's fault. Counted besides the outcome
    /// (`failed`, `handed-off`, …) of the decision it ended.
    Denied => Count,
    /// Chime attempts answered with throttling (429 `ThrottledClientException`)
    /// that the SDK then retried (after backoff, within the call's budget).
    /// A throttled last attempt is not counted here: it ends the call with
    /// `Throttled`, and the decision's outcome says what followed.
    ThrottledRetries => Count,
    /// How long each Chime call took, its retries and backoff included (also
    /// a call cut off by a budget: until then).
    ChimeCallLatency => Milliseconds,
    /// pre-signup: the sign-up may go ahead (`allowed`).
    Allowed => Count,
    /// pre-signup: the sign-up was refused (`rejected`).
    Rejected => Count,
    /// A Cognito event of a trigger source this function does not handle,
    /// returned unchanged (`passed-through`).
    PassedThrough => Count,
    /// The Cognito function: a sign-in of a user who is not federated,
    /// whose confirmation made its Chime user (`not-federated`, no call).
    NotFederated => Count,
    /// An event that could not be read (`invalid-event`).
    InvalidEvent => Count,
    /// credential-exchange: credentials handed out (`credentials-issued`).
    CredentialsIssued => Count,
    /// credential-exchange: a CORS preflight answered (`preflight`).
    Preflight => Count,
    /// credential-exchange: a request refused with a 4xx (bad token, …).
    Refused => Count,
    /// credential-exchange: 503, the IdP's keys, Chime or STS unavailable.
    Unavailable => Count,
    /// reconcile: creates published to the sync queue in this invocation.
    CreatesPublished => Count,
    /// reconcile: updates (renames, metadata) published to the sync queue.
    UpdatesPublished => Count,
    /// reconcile: deletions published to the sync queue.
    DeletesPublished => Count,
    /// reconcile: deletions the mass-delete breaker withheld; idp-sync:
    /// explicit deletions the feed breaker held (`deletion-held`). The
    /// breaker alarm watches this. Released by an operator with
    /// `chime-sync reconcile … --apply --allow-deletes N` or
    /// `chime-sync held release`.
    DeletionsWithheld => Count,
    /// reconcile: deletions refused because the pool's listing could not be
    /// trusted (unusable users, an empty pool).
    DeletionsRefused => Count,
    /// A change older than the last one applied to its user, refused and
    /// acknowledged (`stale`).
    Stale => Count,
    /// A deletion by absence of a user its source does not own (or that no
    /// source owns), refused and acknowledged (`not-owner`, `unowned`).
    NotOwned => Count,
}

/// What one function publishes: its `source` (as its log lines name it),
/// the kind its invocation errors carry, and its metrics. Counts it declares
/// are published as 0 when nothing happened, so dashboards show a line at
/// zero and rates have a denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionMetrics {
    pub source: &'static str,
    /// The first part of its invocations' `errorType`, `{error_kind}.{code}`
    /// ([`crate::error::ErrorCode`]): what operators filter Lambda's error
    /// reports on, and what a Cognito client sees before the message.
    pub error_kind: &'static str,
    pub metrics: &'static [Metric],
}

impl FunctionMetrics {
    /// Whether this function publishes `metric`.
    pub fn publishes(&self, metric: Metric) -> bool {
        self.metrics.contains(&metric)
    }
}

/// One invocation's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    function: FunctionMetrics,
    counts: BTreeMap<Metric, u64>,
    latencies: Vec<Duration>,
    /// Why a request was refused, precisely: a second document with a
    /// `Reason` dimension ([`Invocation::reason_emf`]).
    reason: Option<&'static str>,
}

/// The metric of [`Invocation::reason_emf`], by `FunctionName` and `Reason`.
pub const REFUSED_BY_REASON: &str = "RefusedByReason";
/// Its second dimension.
pub const REASON_DIMENSION: &str = "Reason";

impl Invocation {
    pub fn new(function: FunctionMetrics) -> Self {
        Self {
            function,
            counts: BTreeMap::new(),
            latencies: Vec::new(),
            reason: None,
        }
    }

    /// Count this invocation's refusal under its precise reason (a fixed
    /// code, never input), which the client is not told.
    pub fn refused_for(&mut self, reason: &'static str) -> &mut Self {
        self.reason = Some(reason);
        self
    }

    /// The document counting [`REFUSED_BY_REASON`] for the refusal's reason,
    /// when there was one.
    pub fn reason_emf(&self, function_name: &str, at: SystemTime) -> Option<Emf> {
        let reason = self.reason?;
        Some(
            Emf::new(NAMESPACE, at)
                .dimension(FUNCTION_DIMENSION, function_name)
                .dimension(REASON_DIMENSION, reason)
                .property("level", "INFO")
                .property("source", self.function.source)
                .count(REFUSED_BY_REASON, 1),
        )
    }

    /// One decision with this outcome.
    pub fn decision(&mut self, outcome: Metric) -> &mut Self {
        self.add(Metric::Decisions, 1).add(outcome, 1)
    }

    /// `n` more of `metric`.
    pub fn add(&mut self, metric: Metric, n: u64) -> &mut Self {
        *self.counts.entry(metric).or_default() += n;
        self
    }

    /// The Chime calls made during the invocation.
    pub fn chime_calls(&mut self, stats: CallStats) -> &mut Self {
        self.add(Metric::ThrottledRetries, stats.throttled_retries);
        self.latencies.extend(stats.latencies);
        self
    }

    /// How many of `metric` (0 when none).
    pub fn count(&self, metric: Metric) -> u64 {
        self.counts.get(&metric).copied().unwrap_or(0)
    }

    /// Every metric counted more than zero times, with its count, in
    /// [`Metric::ALL`]'s order.
    pub fn counted(&self) -> Vec<(Metric, u64)> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(m, n)| (*m, *n))
            .collect()
    }

    /// The Chime call latencies recorded.
    pub fn latencies(&self) -> &[Duration] {
        &self.latencies
    }

    pub fn function(&self) -> FunctionMetrics {
        self.function
    }

    /// The EMF document for the function named `function_name`, stamped `at`.
    ///
    /// Root members besides the metrics: `level` (`INFO`: Lambda's JSON log
    /// format files a line by its `level`), `source`.
    pub fn emf(&self, function_name: &str, at: SystemTime) -> Emf {
        let mut emf = Emf::new(NAMESPACE, at)
            .dimension(FUNCTION_DIMENSION, function_name)
            .property("level", "INFO")
            .property("source", self.function.source);
        let declared = self
            .function
            .metrics
            .iter()
            .filter(|m| m.unit() == Unit::Count)
            .copied();
        let counted = self
            .counts
            .keys()
            .copied()
            .filter(|m| !self.function.publishes(*m));
        for metric in declared.chain(counted) {
            emf = emf.count(metric.name(), self.count(metric));
        }
        emf.values(
            Metric::ChimeCallLatency.name(),
            Metric::ChimeCallLatency.unit(),
            self.latencies.iter().map(|d| millis(*d)),
        )
    }
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// What a directory measured of its calls since it was last asked
/// ([`crate::Directory::take_call_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Throttled attempts the SDK retried.
    pub throttled_retries: u64,
    /// Each call's duration, retries included.
    pub latencies: Vec<Duration>,
}

/// Where an adapter records its calls; shared by its clones and by the SDK
/// interceptor that sees the retries. Taking the figures resets them, so
/// each invocation publishes what happened since the previous one (with
/// concurrent invocations in one process, a call may be published by a
/// neighbour; every call is published exactly once).
#[derive(Debug, Default)]
pub struct ChimeCalls {
    throttled_retries: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

impl ChimeCalls {
    /// Latencies kept between two takes. A Lambda invocation makes a few
    /// dozen calls at most; the CLI, which never takes them, must not grow
    /// without bound. Beyond this, calls are not timed.
    pub const MAX_LATENCIES: usize = 1000;

    pub fn new() -> Self {
        Self::default()
    }

    /// A throttled attempt is being retried.
    pub fn throttled_retry(&self) {
        self.throttled_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Times one call until the returned guard is dropped: also a call whose
    /// future is dropped half-way (a budget ran out) is timed, to that point.
    pub fn time(&self) -> CallTimer<'_> {
        CallTimer {
            calls: self,
            started: Instant::now(),
        }
    }

    /// Record one call's duration.
    pub fn record(&self, took: Duration) {
        let mut latencies = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
        if latencies.len() < Self::MAX_LATENCIES {
            latencies.push(took);
        }
    }

    /// The figures since the last take, and start again from zero.
    pub fn take(&self) -> CallStats {
        let latencies =
            std::mem::take(&mut *self.latencies.lock().unwrap_or_else(|p| p.into_inner()));
        CallStats {
            throttled_retries: self.throttled_retries.swap(0, Ordering::Relaxed),
            latencies,
        }
    }
}

/// Records the time from [`ChimeCalls::time`] to its drop.
#[must_use = "the call is timed until this guard is dropped"]
pub struct CallTimer<'a> {
    calls: &'a ChimeCalls,
    started: Instant,
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        self.calls.record(self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const F: FunctionMetrics = FunctionMetrics {
        source: "post-confirmation",
        error_kind: "ConfirmationFailed",
        metrics: &[
            Metric::Decisions,
            Metric::Created,
            Metric::HandedOff,
            Metric::Denied,
            Metric::ChimeCallLatency,
        ],
    };

    #[test]
    fn names_are_the_variants_and_unique() {
        assert_eq!(Metric::HandedOff.name(), "HandedOff");
        assert_eq!(Metric::ChimeCallLatency.unit(), Unit::Milliseconds);
        let names: std::collections::BTreeSet<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        assert!(!names.contains(FUNCTION_DIMENSION));
    }

    #[test]
    fn an_invocation_publishes_its_declared_counts_zeros_included() {
        let mut inv = Invocation::new(F);
        inv.decision(Metric::HandedOff).add(Metric::Denied, 1);
        inv.chime_calls(CallStats {
            throttled_retries: 2,
            latencies: vec![Duration::from_micros(1500), Duration::from_millis(2000)],
        });
        let at = UNIX_EPOCH + Duration::from_secs(1_763_632_800);
        let docs = inv.emf("stack-PostConfirmation-X", at).documents().unwrap();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d["FunctionName"], "stack-PostConfirmation-X");
        assert_eq!(d["source"], "post-confirmation");
        assert_eq!(d["level"], "INFO");
        assert_eq!(
            (
                d["Decisions"].clone(),
                d["HandedOff"].clone(),
                d["Created"].clone()
            ),
            (1.into(), 1.into(), 0.into())
        );
        assert_eq!(d["Denied"], 1);
        // Not declared, yet counted: published all the same.
        assert_eq!(d["ThrottledRetries"], 2);
        assert_eq!(d["ChimeCallLatency"], serde_json::json!([1.5, 2000]));
        assert_eq!(d["_aws"]["Timestamp"], 1_763_632_800_000u64);
    }

    #[test]
    fn no_call_no_latency_metric() {
        let docs = Invocation::new(F).emf("f", UNIX_EPOCH).documents().unwrap();
        assert!(docs[0].get("ChimeCallLatency").is_none());
        assert_eq!(docs[0]["Decisions"], 0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_timed_until_dropped_and_taking_resets() {
        let calls = ChimeCalls::new();
        {
            let _t = calls.time();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        // A call whose future is dropped at a budget is timed to that point.
        let cut = tokio::time::timeout(Duration::from_millis(10), async {
            let _t = calls.time();
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        assert!(cut.is_err());
        calls.throttled_retry();
        calls.throttled_retry();
        assert_eq!(
            calls.take(),
            CallStats {
                throttled_retries: 2,
                latencies: vec![Duration::from_millis(40), Duration::from_millis(10)],
            }
        );
        assert_eq!(calls.take(), CallStats::default());
    }

    #[test]
    fn latencies_are_bounded_between_takes() {
        let calls = ChimeCalls::new();
        for _ in 0..ChimeCalls::MAX_LATENCIES + 10 {
            calls.record(Duration::from_millis(1));
        }
        assert_eq!(calls.take().latencies.len(), ChimeCalls::MAX_LATENCIES);
    }
}
