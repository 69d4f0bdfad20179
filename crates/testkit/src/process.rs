//! [`ChildGuard`]: a child process that cannot outlive its test.
//!
//! - It runs in its own process group, and the guard kills the whole group
//!   (`SIGKILL`) when dropped, also while a failing test unwinds.
//! - On Linux it also gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the
//!   test process even when that is killed without unwinding (a nextest
//!   timeout sends signals to the test's own process group, which this child
//!   has left). The kernel ties that signal to the *thread* that spawned the
//!   child: spawn from the test's thread or a runtime worker, never from a
//!   short-lived thread such as `spawn_blocking`'s.
//! - Its stdout and stderr are captured (reader threads) for assertions, and
//!   printed when the guard is dropped during a panic, so a failing test shows
//!   what the child said.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A spawned child process, killed (with its process group) on drop.
pub struct ChildGuard {
    name: String,
    pid: u32,
    /// Behind a lock so that a shared guard can be polled for its exit.
    child: Mutex<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
    status: Mutex<Option<ExitStatus>>,
}

impl ChildGuard {
    /// Spawn `command` (stdin closed, stdout and stderr captured) in a new
    /// process group. `name` labels it in messages.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;

        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(pump(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(pump(err, stderr.clone()));
        }
        Ok(Self {
            name: name.into(),
            pid: child.id(),
            child: Mutex::new(child),
            stdout,
            stderr,
            readers: Mutex::new(readers),
            status: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Everything the child wrote to stdout so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stdout)).into_owned()
    }

    /// Everything the child wrote to stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// The exit status if the child has exited (without waiting).
    pub fn try_status(&self) -> Option<ExitStatus> {
        let mut status = lock(&self.status);
        if status.is_none() {
            *status = lock(&self.child).try_wait().ok().flatten();
        }
        *status
    }

    /// Resolves when the child exits (polling); for `select!` against the
    /// answer a test waits for, so a crash fails the test at once.
    pub async fn exited(&self) -> ExitStatus {
        loop {
            if let Some(status) = self.try_status() {
                self.join_readers(Duration::from_secs(2));
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait up to `within` for the child to exit on its own.
    pub async fn wait_exit(&self, within: Duration) -> Result<ExitStatus, String> {
        tokio::time::timeout(within, self.exited())
            .await
            .map_err(|_| {
                format!(
                    "{} (pid {}) did not exit within {within:?}",
                    self.name, self.pid
                )
            })
    }

    /// Kill the child's process group and reap the child. Idempotent.
    pub fn kill(&self) {
        {
            let mut status = lock(&self.status);
            if status.is_none() {
                if let Ok(pgid) = i32::try_from(self.pid) {
                    // SAFETY: plain syscall; the group is the child's own (process_group(0)).
                    unsafe {
                        libc::killpg(pgid, libc::SIGKILL);
                    }
                }
                let mut child = lock(&self.child);
                // The group may be gone already; kill the child directly too.
                let _ = child.kill();
                *status = child.wait().ok();
            }
        }
        self.join_readers(Duration::from_secs(2));
    }

    /// Output of both streams, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            tail(&self.stdout(), 8000),
            self.name,
            tail(&self.stderr(), 8000)
        )
    }

    /// Wait (bounded) for the reader threads to see EOF, so the captured
    /// output is complete.
    fn join_readers(&self, within: Duration) {
        let until = Instant::now() + within;
        let mut readers = lock(&self.readers);
        while readers.iter().any(|r| !r.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        for reader in std::mem::take(&mut *readers) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.output());
        }
    }
}

fn pump(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => lock(&into).extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// A panicking test must not poison the guard for its `Drop`.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The last `max` bytes of `text` (at a char boundary).
fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
