//! The Lambda handlers, as plain functions over the ports. Each Lambda
//! `main.rs` only builds the ports from configuration and calls one of these.

pub mod cognito;
pub mod credential_exchange;
pub mod idp_sync;
pub mod post_confirmation;
pub mod pre_signup;
pub mod reconcile;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::time::Instant;

/// The furthest a real invocation deadline can be: Lambda's longest function
/// timeout (15 minutes) plus a minute for clock differences between the
/// Lambda service and the sandbox.
pub const MAX_PLAUSIBLE_DEADLINE: Duration = Duration::from_secs(16 * 60);

/// A `Lambda-Runtime-Deadline-Ms` value that cannot be this invocation's
/// deadline, so budgeting against it would be wrong.
///
/// Real Lambda always sends epoch milliseconds a few seconds to 15 minutes
/// ahead. Local emulators do not: cargo-lambda's sends `600000`, a duration
/// (ten minutes), which read as an epoch time is in January 1970. Taken at
/// face value it leaves no time at all, and every Chime call would be cut
/// off before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ImplausibleDeadline {
    #[error("{deadline_ms} ms since the epoch is already past at the start of the invocation")]
    Past { deadline_ms: u64 },
    #[error(
        "{deadline_ms} ms since the epoch is {ahead_s} s away, more than the longest Lambda timeout"
    )]
    TooFar { deadline_ms: u64, ahead_s: u64 },
}

/// The time left until `deadline_ms` (epoch milliseconds, as the Runtime API
/// sends it) when it is `now`, or why that value cannot be a deadline.
pub fn time_left(deadline_ms: u64, now: SystemTime) -> Result<Duration, ImplausibleDeadline> {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    match deadline.duration_since(now) {
        Ok(left) if left.is_zero() => Err(ImplausibleDeadline::Past { deadline_ms }),
        Ok(left) if left > MAX_PLAUSIBLE_DEADLINE => Err(ImplausibleDeadline::TooFar {
            deadline_ms,
            ahead_s: left.as_secs(),
        }),
        Ok(left) => Ok(left),
        Err(_) => Err(ImplausibleDeadline::Past { deadline_ms }),
    }
}

/// A Lambda deadline (epoch milliseconds) as a tokio instant, so handlers can
/// budget their calls against it; an implausible value is an error, and the
/// caller runs without a deadline (its configured budgets still bound every
/// call).
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Result<Instant, ImplausibleDeadline> {
    time_left(deadline_ms, SystemTime::now()).map(|left| Instant::now() + left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    const NOW_MS: u64 = 1_795_000_000_000;

    #[test]
    fn a_deadline_ahead_gives_the_time_left() {
        assert_eq!(
            time_left(NOW_MS + 4_000, at(NOW_MS)),
            Ok(Duration::from_secs(4))
        );
        // Lambda's longest timeout is plausible.
        assert_eq!(
            time_left(NOW_MS + 900_000, at(NOW_MS)),
            Ok(Duration::from_secs(900))
        );
    }

    #[test]
    fn cargo_lambdas_duration_is_a_deadline_long_past() {
        assert_eq!(
            time_left(600_000, at(NOW_MS)),
            Err(ImplausibleDeadline::Past {
                deadline_ms: 600_000
            })
        );
    }

    #[test]
    fn a_deadline_now_or_behind_is_past() {
        for deadline in [NOW_MS, NOW_MS - 1, 0] {
            assert!(
                matches!(
                    time_left(deadline, at(NOW_MS)),
                    Err(ImplausibleDeadline::Past { .. })
                ),
                "{deadline}"
            );
        }
    }

    #[test]
    fn a_deadline_beyond_the_longest_timeout_is_too_far() {
        let err = time_left(NOW_MS + 17 * 60_000, at(NOW_MS)).unwrap_err();
        assert_eq!(
            err,
            ImplausibleDeadline::TooFar {
                deadline_ms: NOW_MS + 17 * 60_000,
                ahead_s: 17 * 60
            }
        );
        assert!(err.to_string().contains("1020 s away"), "{err}");
        // Microseconds read as milliseconds: far in the future.
        assert!(matches!(
            time_left(NOW_MS * 1000, at(NOW_MS)),
            Err(ImplausibleDeadline::TooFar { .. })
        ));
    }

    #[test]
    fn a_plausible_deadline_becomes_an_instant_that_far_away() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // Ten minutes ahead: no stall of a loaded machine can use them up.
        let d = deadline_from_epoch_ms(now_ms + 600_000).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero() && left <= Duration::from_secs(600),
            "{left:?}"
        );
        assert!(deadline_from_epoch_ms(600_000).is_err());
    }
}
