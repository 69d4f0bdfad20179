//! Standard output that outlives its reader.
//!
//! `println!` panics when a write fails, so `chime-sync replay | head` once
//! ended in a panic (exit status 101) once `head` had read enough. A reader
//! that closes the pipe has everything it wanted, but the command has not
//! necessarily finished: an `--apply` must still carry out its plan, and its
//! exit status must still say what happened (`reconcile … | head -3` exits
//! as `reconcile …` does). So a closed pipe silences the rest of the output
//! and nothing else. Other write errors (a full disk) end the program with
//! one line and status 1.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Print one line to stdout (`println!` that handles a closed pipe).
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Set once the reader of standard output has gone.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `args` and a newline to stdout, unless its reader has gone.
pub fn line(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}").and_then(|()| stdout.flush()) {
        drop(stdout);
        match after(&e) {
            After::Silence => CLOSED.store(true, Ordering::Relaxed),
            After::Fail => {
                eprintln!("chime-sync: cannot write to standard output: {e}");
                std::process::exit(1);
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum After {
    /// The reader closed the pipe: write nothing more, carry on.
    Silence,
    Fail,
}

fn after(error: &std::io::Error) -> After {
    if error.kind() == ErrorKind::BrokenPipe {
        After::Silence
    } else {
        After::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_silences_other_errors_fail() {
        assert_eq!(
            after(&std::io::Error::from(ErrorKind::BrokenPipe)),
            After::Silence
        );
        assert_eq!(
            after(&std::io::Error::from(ErrorKind::StorageFull)),
            After::Fail
        );
    }
}
