//! The Lambda handlers, as plain functions over the ports. Each Lambda
//! `main.rs` only builds the ports from configuration and calls one of these.

pub mod cognito;
pub mod credential_exchange;
pub mod idp_sync;
pub mod post_confirmation;
pub mod pre_signup;

use tokio::time::Instant;

/// A Lambda deadline (epoch milliseconds, as the Runtime API sends it) as a
/// tokio instant, so handlers can budget their calls against it.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let left = u128::from(deadline_ms).saturating_sub(now_ms);
    Instant::now() + std::time::Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_in_the_past_are_now() {
        let d = deadline_from_epoch_ms(0);
        assert!(d <= Instant::now());
    }

    #[test]
    fn deadlines_in_the_future_keep_their_distance() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = deadline_from_epoch_ms(now_ms + 5_000);
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left > std::time::Duration::from_millis(4_000)
                && left <= std::time::Duration::from_millis(5_000)
        );
    }
}
