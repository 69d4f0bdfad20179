//! Where the simulator reads the time: an injectable clock, so tests decide
//! when a visibility timeout or the deduplication interval has passed.

use std::sync::Mutex;
use std::time::Duration;

/// The simulator's time source: the time elapsed since the simulator's epoch.
///
/// Readings must never go backwards. Everything time-based (visibility
/// timeouts, the FIFO deduplication interval, `SentTimestamp`) is computed
/// from these readings only, so the same readings and the same seed give the
/// same behaviour.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// A clock that moves only when told to: for unit tests and for runs that
/// jump over visibility timeouts instead of waiting for them.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.saturating_add(by);
    }

    /// Moves the clock to `to`; a `to` in the past is ignored (clocks never go back).
    pub fn set(&self, to: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if to > *now {
            *now = to;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Tokio's clock, counted from when this clock was made: real time in a
/// normal runtime, virtual time under `#[tokio::test(start_paused = true)]`
/// (so `tokio::time::advance` and auto-advance move the queue's clock too).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_forward_only() {
        let clock = ManualClock::new();
        assert_eq!(clock.now(), Duration::ZERO);
        clock.advance(Duration::from_secs(3));
        clock.set(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_secs(3));
        clock.set(Duration::from_secs(10));
        assert_eq!(clock.now(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(clock.now(), Duration::from_secs(31));
    }
}
