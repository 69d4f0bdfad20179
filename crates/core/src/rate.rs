//! [`Pacer`]: keeps a caller under a request rate, slowing down when the
//! service throttles and recovering slowly once it stops.
//!
//! Calls are spaced evenly (one every `1 / rate` seconds) rather than let
//! through in bursts: a quota shared with other callers (Cognito's `ListUsers`
//! quota is per account and Region) is then never exceeded by this caller
//! alone, even for a moment. Time is tokio's, so tests run it paused.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The slowest a throttled pacer gets: one call every ten seconds.
const SLOWEST: Duration = Duration::from_secs(10);
/// Successful calls in a row before a slowed pacer speeds up by a tenth.
const RECOVER_AFTER: u32 = 20;

struct State {
    /// The spacing asked for: `1 / rate`.
    fastest: Duration,
    /// The spacing now (grows on throttling).
    interval: Duration,
    /// The earliest time of the next call.
    next: Option<Instant>,
    successes: u32,
}

/// Spaces calls to at most `rate` per second; concurrent callers share it.
pub struct Pacer {
    state: Mutex<State>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").field("rate", &self.rate()).finish()
    }
}

impl Pacer {
    /// At most `rate` calls per second (at least one every ten seconds).
    pub fn new(rate: f64) -> Self {
        let fastest = if rate.is_finite() && rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate).min(SLOWEST)
        } else {
            SLOWEST
        };
        Self {
            state: Mutex::new(State {
                fastest,
                interval: fastest,
                next: None,
                successes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for this caller's turn.
    pub async fn wait(&self) {
        self.wait_until(None).await;
    }

    /// Wait for this caller's turn, unless it comes at or after `deadline`:
    /// then `false` at once, and the turn is not taken.
    pub async fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let slot = {
            let mut state = self.lock();
            let now = Instant::now();
            let slot = state.next.map_or(now, |next| next.max(now));
            if deadline.is_some_and(|d| slot >= d) {
                return false;
            }
            state.next = Some(slot + state.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }

    /// The service throttled: halve the rate (down to one call every ten seconds).
    pub fn throttled(&self) {
        let mut state = self.lock();
        state.interval = (state.interval * 2).min(SLOWEST);
        state.successes = 0;
    }

    /// A call went through: after a run of them, speed up by a tenth, never
    /// beyond the rate asked for.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        state.successes += 1;
        if state.successes >= RECOVER_AFTER && state.interval > state.fastest {
            state.interval = state.interval.mul_f64(0.9).max(state.fastest);
            state.successes = 0;
        }
    }

    /// Calls per second now.
    pub fn rate(&self) -> f64 {
        1.0 / self.lock().interval.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_and_throttling_slows_them_until_successes_recover() {
        let pacer = Pacer::new(10.0);
        let start = Instant::now();
        for _ in 0..11 {
            pacer.wait().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "ten intervals of 100 ms"
        );
        pacer.throttled();
        pacer.throttled();
        assert!((pacer.rate() - 2.5).abs() < 1e-9);
        for _ in 0..(RECOVER_AFTER * 20) {
            pacer.succeeded();
        }
        assert!(
            (pacer.rate() - 10.0).abs() < 1e-9,
            "never above the rate asked for"
        );
        assert!(Pacer::new(0.0).rate() > 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_past_the_deadline_is_refused_and_not_taken() {
        let pacer = Pacer::new(1.0);
        let deadline = Instant::now() + Duration::from_millis(1500);
        assert!(pacer.wait_until(Some(deadline)).await);
        assert!(pacer.wait_until(Some(deadline)).await);
        assert!(!pacer.wait_until(Some(deadline)).await);
        assert!(Instant::now() < deadline);
    }
}
