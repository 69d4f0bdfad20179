//! The invocation deadline, read so that a local emulator cannot starve the
//! handlers.
//!
//! Real Lambda sends `Lambda-Runtime-Deadline-Ms` as epoch milliseconds a few
//! seconds to 15 minutes ahead. cargo-lambda's emulator sends `600000`, a
//! duration; read as an epoch time it is long past, and every Chime budget
//! would be cut to zero (post-confirmation would hand every user off, idp-sync
//! would fail every message with `Timeout` without calling Chime). So a value
//! that is already past when the invocation starts, or further away than any
//! Lambda timeout, is treated as absent: the configured budgets still bound
//! every call. It is logged once per process, not once per invocation, so a
//! local session is not flooded.

use std::sync::atomic::{AtomicBool, Ordering};

use chime_sync_core::handlers::{ImplausibleDeadline, deadline_from_epoch_ms};
use lambda_runtime::Context;
use tokio::time::Instant;

static WARNED: AtomicBool = AtomicBool::new(false);

/// The invocation's deadline as a tokio instant; `None` (with one warning per
/// process) when the Runtime API sent a value that cannot be a deadline.
pub fn deadline(context: &Context) -> Option<Instant> {
    match deadline_from_epoch_ms(context.deadline) {
        Ok(deadline) => Some(deadline),
        Err(why) => {
            if first_time(&WARNED) {
                warn_ignored(why);
            }
            None
        }
    }
}

/// True only for the first caller.
fn first_time(flag: &AtomicBool) -> bool {
    !flag.swap(true, Ordering::Relaxed)
}

fn warn_ignored(why: ImplausibleDeadline) {
    tracing::warn!(
        outcome = "deadline-ignored",
        reason = %why,
        "the invocation deadline (Lambda-Runtime-Deadline-Ms) is not plausible, so it is \
         ignored and the configured budgets (CHIME_BUDGET_MS) bound each call; a local \
         emulator (cargo lambda watch sends a duration there) is the usual cause. \
         Logged once per process"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_caller_warns() {
        let flag = AtomicBool::new(false);
        assert!(first_time(&flag));
        assert!(!first_time(&flag));
        assert!(!first_time(&flag));
    }
}
