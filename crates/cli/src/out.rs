//! Standard output that ends the program quietly when its reader goes away.
//!
//! `println!` panics when a write fails, so `chime-sync replay | head` ended
//! in a panic (exit status 101) once `head` had read enough. A reader that
//! closes the pipe has everything it wanted: like `git` or `rg`, the CLI
//! then stops without a word, with status 0. Other write errors (a full
//! disk) are reported in one line.

use std::io::{ErrorKind, Write};

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

/// Write `args` and a newline to stdout; on failure, end the process.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}").and_then(|()| stdout.flush()) {
        drop(stdout);
        std::process::exit(match exit_for(&e) {
            Exit::Quiet => 0,
            Exit::Failed => {
                eprintln!("chime-sync: cannot write to standard output: {e}");
                1
            }
        });
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Quiet,
    Failed,
}

fn exit_for(error: &std::io::Error) -> Exit {
    if error.kind() == ErrorKind::BrokenPipe {
        Exit::Quiet
    } else {
        Exit::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_quiet_other_errors_are_not() {
        assert_eq!(
            exit_for(&std::io::Error::from(ErrorKind::BrokenPipe)),
            Exit::Quiet
        );
        assert_eq!(
            exit_for(&std::io::Error::from(ErrorKind::StorageFull)),
            Exit::Failed
        );
    }
}
