//! Fault injection: latency, a TPS quota, 500/503 rates, dropped connections and scripted
//! faults, all decided by a seedable generator so a run can be replayed.
//!
//! For each API request (control endpoints are never faulted) the engine decides, in order:
//! 1. whether the operation is targeted at all ([`FaultConfig::operations`]);
//! 2. a latency, uniform in `latencyMs.min..=latencyMs.max`;
//! 3. the next [`ScriptedFault`], if the script is not empty: it alone decides the outcome;
//! 4. the TPS quota: a token bucket of `burst` tokens refilled at `tpsLimit` per second; no
//!    token means 429 `ThrottledClientException`;
//! 5. one uniform draw `r`: `r < dropRate` drops the connection, the next `serviceFailureRate`
//!    of the range answers 500, the next `serviceUnavailableRate` answers 503, the next
//!    `lostResponseRate` applies the request and then drops the connection.
//!
//! An IAM denial ([`FaultConfig::iam_deny`]) is not a fault of Chime but of the caller's
//! permissions: a denied operation is answered 403 with IAM's message on every request that no
//! injected fault answered first, whatever `operations` says.
//!
//! Decisions are made one request at a time under a lock, so with a fixed `seed` the sequence
//! of outcomes is the same for the same sequence of arriving requests.

use std::collections::{BTreeSet, VecDeque};
use std::hash::BuildHasher;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::counters::Operation;
use crate::error::FakeError;

/// Longest latency accepted, so a typo cannot park a request for hours.
const MAX_LATENCY_MS: u64 = 600_000;

/// A latency range in milliseconds; `min == max` is a fixed latency, `0..=0` none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyMs {
    /// Shortest added delay.
    pub min: u64,
    /// Longest added delay.
    pub max: u64,
}

/// One scripted outcome, consumed by the next targeted request.
///
/// Scripts make bursts exact: `[throttle, throttle]` fails precisely the next two requests,
/// which is what a retry test needs to assert an attempt count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScriptedFault {
    /// Serve the request normally (no quota or random faults either).
    Pass,
    /// 429 `ThrottledClientException`.
    Throttle,
    /// 500 `ServiceFailureException`.
    ServiceFailure,
    /// 503 `ServiceUnavailableException`.
    ServiceUnavailable,
    /// Close the connection without a response.
    Drop,
    /// Apply the request, then close the connection without the response: the client cannot
    /// tell whether its request took effect (what idempotency tokens are for).
    ApplyThenDrop,
    /// 403 `ForbiddenException` with a message that is not IAM's, for a request that would
    /// otherwise succeed: a refusal a client cannot explain (not applied).
    Forbidden,
    /// 400 with an HTML body and no `X-Amzn-Errortype`: an answer from something between the
    /// client and Chime (a proxy, a load balancer), not from Chime (not applied).
    ProxyBadRequest,
}

/// How an IAM denial is answered: AWS answers `AccessDeniedException` or the service's own
/// `ForbiddenException`, both 403, both with IAM's message. `Forbidden` is the default because
/// only the message tells it from Chime's 403 for a missing user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IamDenial {
    /// 403 `ForbiddenException` with IAM's message (default).
    #[default]
    Forbidden,
    /// 403 `AccessDeniedException` with IAM's message.
    AccessDenied,
}

/// The role the fake's IAM messages name as the caller.
pub const DENIED_CALLER: &str =
    "arn:aws:sts::123456789012:assumed-role/chime-sync-function-role/chime-sync";

/// IAM's authorization-failure message for `action` (`chime:DeleteAppInstanceUser`) on
/// `resource`, in the form AWS writes for an identity-based policy that does not allow it.
pub fn iam_denial_message(action: &str, resource: &str) -> String {
    format!(
        "User: {DENIED_CALLER} is not authorized to perform: {action} on resource: {resource} \
         because no identity-based policy allows the {action} action"
    )
}

/// The fault configuration, settable at start ([`crate::FakeConfig::with_faults`]) and at run
/// time ([`crate::FakeChimeHandle::set_faults`], `PUT /_fake/faults`). Its JSON form uses the
/// camelCase field names below; missing fields take their defaults (no faults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Added latency per request.
    pub latency_ms: LatencyMs,
    /// Requests per second allowed before 429s; `None` is unlimited, `Some(0.0)` with a zero
    /// burst throttles everything.
    pub tps_limit: Option<f64>,
    /// Token bucket size; defaults to `ceil(tpsLimit)`.
    pub burst: Option<u32>,
    /// Share (0.0–1.0) of requests answered 500 `ServiceFailureException`.
    pub service_failure_rate: f64,
    /// Share (0.0–1.0) of requests answered 503 `ServiceUnavailableException`.
    pub service_unavailable_rate: f64,
    /// Share (0.0–1.0) of requests whose connection is closed without a response.
    pub drop_rate: f64,
    /// Share (0.0–1.0) of requests applied and then answered by closing the connection.
    pub lost_response_rate: f64,
    /// Operations IAM denies: answered 403 with IAM's message (see [`IamDenial`]).
    pub iam_deny: BTreeSet<Operation>,
    /// The error type of those denials.
    pub iam_deny_as: IamDenial,
    /// Seed of the random generator; `None` picks one (reported as `faultSeed` in
    /// `GET /_fake/state`, so the run can be replayed).
    pub seed: Option<u64>,
    /// Operations the faults apply to; `None` means all.
    pub operations: Option<BTreeSet<Operation>>,
    /// Outcomes for the next requests, consumed front first.
    pub script: VecDeque<ScriptedFault>,
}

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds latency uniform in `min_ms..=max_ms`.
    pub fn with_latency(mut self, min_ms: u64, max_ms: u64) -> Self {
        self.latency_ms = LatencyMs {
            min: min_ms,
            max: max_ms,
        };
        self
    }

    /// Limits throughput to `tps` requests per second (429 beyond it).
    pub fn with_tps_limit(mut self, tps: f64) -> Self {
        self.tps_limit = Some(tps);
        self
    }

    /// Sets the token bucket size of the TPS quota.
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Answers this share of requests with 500.
    pub fn with_service_failure_rate(mut self, rate: f64) -> Self {
        self.service_failure_rate = rate;
        self
    }

    /// Answers this share of requests with 503.
    pub fn with_service_unavailable_rate(mut self, rate: f64) -> Self {
        self.service_unavailable_rate = rate;
        self
    }

    /// Drops the connection of this share of requests.
    pub fn with_drop_rate(mut self, rate: f64) -> Self {
        self.drop_rate = rate;
        self
    }

    /// Applies this share of requests and then drops their connection.
    pub fn with_lost_response_rate(mut self, rate: f64) -> Self {
        self.lost_response_rate = rate;
        self
    }

    /// Lets IAM deny these operations (403 with IAM's message, as [`IamDenial::Forbidden`]).
    pub fn deny(mut self, operations: impl IntoIterator<Item = Operation>) -> Self {
        self.iam_deny.extend(operations);
        self
    }

    /// Answers the IAM denials with this error type.
    pub fn deny_as(mut self, denial: IamDenial) -> Self {
        self.iam_deny_as = denial;
        self
    }

    /// Makes the random decisions reproducible.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Restricts the faults to these operations.
    pub fn only_for(mut self, operations: impl IntoIterator<Item = Operation>) -> Self {
        self.operations = Some(operations.into_iter().collect());
        self
    }

    /// Queues scripted outcomes for the next requests.
    pub fn with_script(mut self, script: impl IntoIterator<Item = ScriptedFault>) -> Self {
        self.script.extend(script);
        self
    }

    /// Rejects settings that cannot be meant: rates outside 0..=1 or summing above 1, a
    /// negative or non-finite TPS limit, `min > max` latency or one above ten minutes.
    pub fn validate(&self) -> Result<(), FakeError> {
        let rates = [
            ("serviceFailureRate", self.service_failure_rate),
            ("serviceUnavailableRate", self.service_unavailable_rate),
            ("dropRate", self.drop_rate),
            ("lostResponseRate", self.lost_response_rate),
        ];
        for (field, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FakeError::InvalidFaults(format!(
                    "{field} must be within 0.0..=1.0, got {rate}"
                )));
            }
        }
        let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
        if total > 1.0 + 1e-9 {
            return Err(FakeError::InvalidFaults(format!(
                "dropRate + serviceFailureRate + serviceUnavailableRate + lostResponseRate must not exceed 1.0, got {total}"
            )));
        }
        if let Some(tps) = self.tps_limit
            && !(tps.is_finite() && tps >= 0.0)
        {
            return Err(FakeError::InvalidFaults(format!(
                "tpsLimit must be a finite number >= 0, got {tps}"
            )));
        }
        let LatencyMs { min, max } = self.latency_ms;
        if min > max || max > MAX_LATENCY_MS {
            return Err(FakeError::InvalidFaults(format!(
                "latencyMs needs min <= max <= {MAX_LATENCY_MS}, got {min}..={max}"
            )));
        }
        Ok(())
    }
}

/// A fault the engine decided to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Throttle,
    ServiceFailure,
    ServiceUnavailable,
    Drop,
    ApplyThenDrop,
    Forbidden,
    ProxyBadRequest,
}

/// The engine's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub delay: Duration,
    pub fault: Option<Fault>,
    /// IAM denies the request (only when no fault answers it first).
    pub denied: Option<IamDenial>,
}

/// SplitMix64: tiny, fast and good enough to spread fault decisions; no dependency needed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        // 53 random bits scaled into [0, 1): exact in f64.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `min..=max`.
    fn in_range(&mut self, min: u64, max: u64) -> u64 {
        match (max - min).checked_add(1) {
            Some(span) => min + self.next_u64() % span,
            None => self.next_u64(),
        }
    }
}

/// The TPS quota.
#[derive(Debug, Clone)]
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: Option<u32>, now: Instant) -> Self {
        let capacity = burst.map_or(rate.ceil(), f64::from);
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Applies a [`FaultConfig`] to requests, one decision at a time.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    config: FaultConfig,
    seed: u64,
    rng: SplitMix64,
    bucket: Option<TokenBucket>,
}

fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

impl FaultEngine {
    /// An engine for an already validated `config`.
    pub fn new(config: FaultConfig, now: Instant) -> Self {
        let seed = config.seed.unwrap_or_else(random_seed);
        let bucket = config
            .tps_limit
            .map(|tps| TokenBucket::new(tps, config.burst, now));
        Self {
            config,
            seed,
            rng: SplitMix64(seed),
            bucket,
        }
    }

    /// The current configuration (with what is left of the script).
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// The seed in use (the configured one, or the one picked at random).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Decides the fate of one request of `op` arriving at `now`.
    pub fn decide(&mut self, op: Operation, now: Instant) -> Decision {
        let mut decision = self.decide_fault(op, now);
        if decision.fault.is_none() && self.config.iam_deny.contains(&op) {
            decision.denied = Some(self.config.iam_deny_as);
        }
        decision
    }

    fn decide_fault(&mut self, op: Operation, now: Instant) -> Decision {
        let none = Decision {
            delay: Duration::ZERO,
            fault: None,
            denied: None,
        };
        if self
            .config
            .operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&op))
        {
            return none;
        }
        let LatencyMs { min, max } = self.config.latency_ms;
        let delay = if max == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(self.rng.in_range(min, max))
        };
        if let Some(scripted) = self.config.script.pop_front() {
            let fault = match scripted {
                ScriptedFault::Pass => None,
                ScriptedFault::Throttle => Some(Fault::Throttle),
                ScriptedFault::ServiceFailure => Some(Fault::ServiceFailure),
                ScriptedFault::ServiceUnavailable => Some(Fault::ServiceUnavailable),
                ScriptedFault::Drop => Some(Fault::Drop),
                ScriptedFault::ApplyThenDrop => Some(Fault::ApplyThenDrop),
                ScriptedFault::Forbidden => Some(Fault::Forbidden),
                ScriptedFault::ProxyBadRequest => Some(Fault::ProxyBadRequest),
            };
            return Decision {
                delay,
                fault,
                denied: None,
            };
        }
        if let Some(bucket) = self.bucket.as_mut()
            && !bucket.try_take(now)
        {
            return Decision {
                delay,
                fault: Some(Fault::Throttle),
                denied: None,
            };
        }
        let FaultConfig {
            drop_rate,
            service_failure_rate,
            service_unavailable_rate,
            lost_response_rate,
            ..
        } = self.config;
        let bands = [
            (drop_rate, Fault::Drop),
            (service_failure_rate, Fault::ServiceFailure),
            (service_unavailable_rate, Fault::ServiceUnavailable),
            (lost_response_rate, Fault::ApplyThenDrop),
        ];
        if bands.iter().map(|(rate, _)| rate).sum::<f64>() <= 0.0 {
            return Decision {
                delay,
                fault: None,
                denied: None,
            };
        }
        let draw = self.rng.next_f64();
        let mut upper = 0.0;
        let fault = bands.into_iter().find_map(|(rate, fault)| {
            upper += rate;
            (draw < upper).then_some(fault)
        });
        Decision {
            delay,
            fault,
            denied: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: Operation = Operation::CreateAppInstanceUser;

    fn outcomes(config: FaultConfig, n: usize) -> Vec<Option<Fault>> {
        let now = Instant::now();
        let mut engine = FaultEngine::new(config, now);
        (0..n).map(|_| engine.decide(OP, now).fault).collect()
    }

    #[test]
    fn no_faults_by_default() {
        assert!(
            outcomes(FaultConfig::none(), 100)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn same_seed_same_outcomes_and_rates_roughly_hold() {
        let config = FaultConfig::none()
            .with_drop_rate(0.1)
            .with_service_failure_rate(0.2)
            .with_service_unavailable_rate(0.3)
            .with_seed(42);
        let first = outcomes(config.clone(), 10_000);
        assert_eq!(first, outcomes(config, 10_000));
        let share = |f: Fault| first.iter().filter(|o| **o == Some(f)).count() as f64 / 10_000.0;
        assert!((share(Fault::Drop) - 0.1).abs() < 0.02);
        assert!((share(Fault::ServiceFailure) - 0.2).abs() < 0.02);
        assert!((share(Fault::ServiceUnavailable) - 0.3).abs() < 0.02);
        let other = outcomes(
            FaultConfig::none()
                .with_drop_rate(0.1)
                .with_service_failure_rate(0.2)
                .with_service_unavailable_rate(0.3)
                .with_seed(43),
            10_000,
        );
        assert_ne!(first, other);
    }

    #[test]
    fn lost_responses_take_their_share_after_the_others() {
        let config = FaultConfig::none()
            .with_drop_rate(0.1)
            .with_lost_response_rate(0.2)
            .with_seed(9);
        let got = outcomes(config, 10_000);
        let share = |f: Fault| got.iter().filter(|o| **o == Some(f)).count() as f64 / 10_000.0;
        assert!((share(Fault::Drop) - 0.1).abs() < 0.02);
        assert!((share(Fault::ApplyThenDrop) - 0.2).abs() < 0.02);
        assert_eq!(
            outcomes(
                FaultConfig::none().with_script([ScriptedFault::ApplyThenDrop]),
                2
            ),
            [Some(Fault::ApplyThenDrop), None]
        );
        assert!(
            FaultConfig::none()
                .with_drop_rate(0.5)
                .with_lost_response_rate(0.6)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn iam_denials_and_lost_responses_have_a_json_form() {
        let config: FaultConfig = serde_json::from_str(
            r#"{"iamDeny":["DeleteAppInstanceUser"],"iamDenyAs":"accessDenied",
                "lostResponseRate":0.25,"script":["applyThenDrop"]}"#,
        )
        .unwrap();
        assert_eq!(
            config,
            FaultConfig::none()
                .deny([Operation::DeleteAppInstanceUser])
                .deny_as(IamDenial::AccessDenied)
                .with_lost_response_rate(0.25)
                .with_script([ScriptedFault::ApplyThenDrop])
        );
        let message = iam_denial_message("chime:DeleteAppInstanceUser", "arn:x");
        assert!(
            message.contains("is not authorized to perform: chime:DeleteAppInstanceUser"),
            "{message}"
        );
    }

    #[test]
    fn full_rates_always_fire() {
        assert!(
            outcomes(FaultConfig::none().with_service_unavailable_rate(1.0), 50)
                .iter()
                .all(|o| *o == Some(Fault::ServiceUnavailable))
        );
        assert!(
            outcomes(FaultConfig::none().with_drop_rate(1.0), 50)
                .iter()
                .all(|o| *o == Some(Fault::Drop))
        );
    }

    #[test]
    fn script_runs_first_then_normal_rules() {
        let config = FaultConfig::none().with_script([
            ScriptedFault::Throttle,
            ScriptedFault::Pass,
            ScriptedFault::ServiceUnavailable,
        ]);
        assert_eq!(
            outcomes(config, 4),
            [
                Some(Fault::Throttle),
                None,
                Some(Fault::ServiceUnavailable),
                None
            ]
        );
    }

    #[test]
    fn token_bucket_throttles_beyond_burst_and_refills() {
        let start = Instant::now();
        let mut engine = FaultEngine::new(FaultConfig::none().with_tps_limit(2.0), start);
        let faults: Vec<_> = (0..3).map(|_| engine.decide(OP, start).fault).collect();
        assert_eq!(faults, [None, None, Some(Fault::Throttle)]);
        assert_eq!(
            engine.decide(OP, start + Duration::from_millis(500)).fault,
            None,
            "half a second refills one"
        );
        assert_eq!(
            engine.decide(OP, start + Duration::from_millis(500)).fault,
            Some(Fault::Throttle)
        );

        let mut closed = FaultEngine::new(FaultConfig::none().with_tps_limit(0.0), start);
        assert_eq!(
            closed.decide(OP, start + Duration::from_secs(60)).fault,
            Some(Fault::Throttle)
        );
    }

    #[test]
    fn latency_within_range_and_operation_filter() {
        let now = Instant::now();
        let mut engine = FaultEngine::new(
            FaultConfig::none()
                .with_latency(5, 9)
                .with_service_failure_rate(1.0)
                .only_for([Operation::DeleteAppInstanceUser]),
            now,
        );
        let untouched = engine.decide(OP, now);
        assert_eq!(
            untouched,
            Decision {
                delay: Duration::ZERO,
                fault: None,
                denied: None,
            }
        );
        for _ in 0..100 {
            let decision = engine.decide(Operation::DeleteAppInstanceUser, now);
            assert!(
                (5..=9).contains(&decision.delay.as_millis()),
                "{decision:?}"
            );
            assert_eq!(decision.fault, Some(Fault::ServiceFailure));
        }
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(FaultConfig::none().validate().is_ok());
        for bad in [
            FaultConfig::none().with_drop_rate(1.5),
            FaultConfig::none().with_service_failure_rate(-0.1),
            FaultConfig::none()
                .with_service_failure_rate(0.6)
                .with_service_unavailable_rate(0.6),
            FaultConfig::none().with_tps_limit(f64::NAN),
            FaultConfig::none().with_tps_limit(-1.0),
            FaultConfig::none().with_latency(10, 5),
            FaultConfig::none().with_latency(0, MAX_LATENCY_MS + 1),
        ] {
            assert!(
                matches!(bad.validate(), Err(FakeError::InvalidFaults(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_form_is_camel_case_with_defaults() {
        let config: FaultConfig = serde_json::from_str(
            r#"{"latencyMs":{"min":1,"max":2},"tpsLimit":5,"serviceUnavailableRate":0.5,
                "operations":["CreateAppInstanceUser"],"script":["throttle","drop"],"seed":7}"#,
        )
        .unwrap();
        assert_eq!(
            config,
            FaultConfig::none()
                .with_latency(1, 2)
                .with_tps_limit(5.0)
                .with_service_unavailable_rate(0.5)
                .only_for([Operation::CreateAppInstanceUser])
                .with_script([ScriptedFault::Throttle, ScriptedFault::Drop])
                .with_seed(7)
        );
        assert!(
            serde_json::from_str::<FaultConfig>(r#"{"dropRatio":0.5}"#).is_err(),
            "typos are rejected"
        );
    }
}
