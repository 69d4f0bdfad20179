//! A function process under measurement: killed and reaped on drop, so a failed or
//! interrupted benchmark leaves nothing running. It stays in the benchmark's process
//! group, so Ctrl-C reaches it too.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `/proc/{pid}/status` says of a process's memory, KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub peak: u64,
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
}

pub struct FunctionProcess {
    child: Child,
    /// How long it may take to exit after SIGTERM before it is killed (zero: killed at once).
    grace: Duration,
}

impl FunctionProcess {
    /// Spawn `command` with stdin closed and stdout and stderr appended to `log`
    /// (Lambda captures both; a file costs about what its pipe does). On drop it gets
    /// SIGTERM and `grace` to exit (a profiler writes its output then), then SIGKILL.
    pub fn spawn(mut command: Command, log: &Path, grace: Duration) -> std::io::Result<Self> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        Ok(Self {
            child: command.spawn()?,
            grace,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmHWM` (peak resident set), and `VmRSS` with its `RssAnon` (heap, stacks) and
    /// `RssFile` (mapped files: the binary's code and data) parts, of the live process, KiB.
    pub fn memory_kib(&self) -> std::io::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match (
            field("VmHWM:"),
            field("VmRSS:"),
            field("RssAnon:"),
            field("RssFile:"),
        ) {
            (Some(peak), Some(rss), Some(anon), Some(file)) => Ok(Memory {
                peak,
                rss,
                anon,
                file,
            }),
            _ => Err(std::io::Error::other(format!(
                "no VmHWM/VmRSS/RssAnon/RssFile in /proc/{}/status",
                self.pid()
            ))),
        }
    }

    /// CPU time the process's threads have used so far, in ns: the sum of the first field of
    /// `/proc/{pid}/task/*/schedstat` (time on the CPU, user and kernel, ns resolution).
    /// Threads that already exited are not counted, so read it while they live: tokio's
    /// current_thread runtime does everything on the main thread, and the multi-thread
    /// runtime's workers and Node.js's helper threads live as long as the process.
    pub fn cpu_ns(&self) -> std::io::Result<u64> {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))? {
            let schedstat = std::fs::read_to_string(task?.path().join("schedstat"))?;
            total += schedstat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .ok_or_else(|| std::io::Error::other("unreadable schedstat"))?;
        }
        Ok(total)
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if !self.grace.is_zero() {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill(2) on our own child's pid, which it keeps until we reap it.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let until = Instant::now() + self.grace;
            while Instant::now() < until {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
