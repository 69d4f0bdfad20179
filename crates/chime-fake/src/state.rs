//! The state shared by every connection of one fake server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::config::FakeConfig;
use crate::counters::{Counters, Operation};
use crate::error::FakeError;
use crate::faults::{Decision, Fault, FaultConfig, FaultEngine};
use crate::model::{ChimeModel, ClearAnswer, UserRecord};

/// Users, counters and the fault engine behind one server.
///
/// Each piece has its own lock and no code path holds two at once, so there is no lock
/// ordering to get wrong. Locks are never held across an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    directory: Mutex<ChimeModel>,
    counters: Mutex<Counters>,
    faults: Mutex<FaultEngine>,
    request_seq: AtomicU64,
    /// How far the fake's clock is ahead of the system clock, in milliseconds.
    clock_offset_ms: AtomicU64,
    expiration_clear: ClearAnswer,
}

/// Locks `mutex`, recovering the data if a panicking holder poisoned it: every update here
/// leaves the data consistent, and a test fake must keep answering.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(config: &FakeConfig) -> Self {
        Self {
            directory: Mutex::new(ChimeModel::new(
                config.user_limit_per_app_instance,
                config.missing_user,
            )),
            counters: Mutex::new(Counters::default()),
            faults: Mutex::new(FaultEngine::new(config.faults.clone(), Instant::now())),
            request_seq: AtomicU64::new(0),
            clock_offset_ms: AtomicU64::new(0),
            expiration_clear: config.expiration_clear,
        }
    }

    /// The fake's time in epoch seconds with millisecond precision (the form the SDK parses):
    /// the system clock plus every [`Shared::advance_clock`].
    pub fn now_epoch_secs(&self) -> f64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let millis = system + u128::from(self.clock_offset_ms.load(Ordering::Relaxed));
        millis as f64 / 1000.0
    }

    /// Moves the clock forward and runs Chime's background deletion of expired users; returns
    /// the users it deleted.
    pub fn advance_clock(&self, by: Duration) -> Vec<UserRecord> {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.clock_offset_ms.fetch_add(millis, Ordering::Relaxed);
        let now = self.now_epoch_secs();
        lock(&self.directory).purge_expired(now)
    }

    /// What a put expiration without settings does.
    pub fn expiration_clear(&self) -> ClearAnswer {
        self.expiration_clear
    }

    /// Runs `f` on the directory under its lock.
    pub fn with_directory<R>(&self, f: impl FnOnce(&mut ChimeModel) -> R) -> R {
        f(&mut lock(&self.directory))
    }

    pub fn users(&self) -> Vec<UserRecord> {
        lock(&self.directory).all()
    }

    pub fn counters(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Runs `f` on the counters under their lock.
    pub fn with_counters(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    pub fn faults(&self) -> (FaultConfig, u64) {
        let engine = lock(&self.faults);
        (engine.config().clone(), engine.seed())
    }

    /// Replaces the fault configuration: restarts the generator from the new seed and refills
    /// the token bucket.
    pub fn set_faults(&self, config: FaultConfig) -> Result<(), FakeError> {
        config.validate()?;
        *lock(&self.faults) = FaultEngine::new(config, Instant::now());
        Ok(())
    }

    /// Forgets all users, zeroes the counters and sets the clock back to the system's; faults
    /// are left as they are.
    pub fn reset(&self) {
        lock(&self.directory).clear();
        *lock(&self.counters) = Counters::default();
        self.clock_offset_ms.store(0, Ordering::Relaxed);
    }

    /// A fresh request id for `x-amzn-requestid`.
    pub fn next_request_id(&self) -> String {
        let seq = self.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("fake-chime-{seq:012}")
    }

    /// Decides the faults for one request of `op` and counts the attempt and any injection.
    pub fn admit(&self, op: Operation) -> Decision {
        let decision = lock(&self.faults).decide(op, Instant::now());

        self.with_counters(|counters| {
            let entry = counters.entry(op);
            entry.attempts += 1;
            if !decision.delay.is_zero() {
                entry.injected.delayed += 1;
            }
            if decision.denied.is_some() {
                entry.injected.denied += 1;
            }
            match decision.fault {
                Some(Fault::Throttle) => entry.injected.throttled += 1,
                Some(Fault::ServiceFailure) => entry.injected.service_failures += 1,
                Some(Fault::ServiceUnavailable) => entry.injected.service_unavailable += 1,
                Some(Fault::Drop) => entry.injected.dropped += 1,
                Some(Fault::ApplyThenDrop) => entry.injected.lost_responses += 1,
                Some(Fault::Forbidden | Fault::ProxyBadRequest) => entry.injected.refused += 1,
                None => {}
            }
        });
        decision
    }
}
