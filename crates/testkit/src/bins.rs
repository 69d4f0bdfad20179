//! Where the workspace's compiled binaries are.
//!
//! `env!("CARGO_BIN_EXE_<name>")` exists only for the test's own package, and
//! the bootstrap binaries and the CLI live in other packages, so they are
//! looked up in the target directory the test itself was built into: the
//! running test is `<target>/<profile>/deps/<test>-<hash>`, and cargo puts
//! every binary in `<target>/<profile>/`. `CARGO_TARGET_DIR` and the
//! workspace's `target/` are fallbacks. `scripts/test.sh` builds them first
//! (the five bootstraps and the CLI, with the tests); plain `cargo nextest run` does not,
//! and `cargo build --workspace --bins` does it by hand.
//!
//! The end-to-end tests run these debug builds of the bootstraps: the same code Lambda runs,
//! without a second, optimised compile of every dependency (docs/TESTING.md, "Debug
//! bootstraps"). Two variables point them at other builds of the same binaries:
//! - `CHIME_SYNC_BOOTSTRAP_DIR`: where the Lambda bootstraps are (looked up
//!   with [`bootstrap`]), e.g. the release build the benchmarks measure;
//! - `CHIME_SYNC_BIN_DIR`: where every binary is, the CLI included.
//!
//! ```sh
//! cargo build --release --bin pre-signup --bin post-confirmation --bin idp-sync \
//!     --bin credential-exchange --bin reconcile
//! CHIME_SYNC_BOOTSTRAP_DIR=target/release cargo nextest run -p chime-identity-sync \
//!     --test e2e -E 'test(/^(bootstrap|fault_run|reconcile)::/)'
//! ```
//!
//! `CHIME_SYNC_BIN_DIR` must hold every binary a test spawns: the bootstraps of
//! `pre-signup`, `post-confirmation`, `idp-sync`, `credential-exchange` and
//! `reconcile`, and `chime-sync`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::workspace_root;

/// The path of the compiled binary `name` (e.g. `post-confirmation`,
/// `chime-sync`). Panics with what to run when it is missing, and warns on
/// stderr when it is older than the sources it is built from.
pub fn binary(name: &str) -> PathBuf {
    find(name, candidates(name))
}

/// The path of the Lambda bootstrap `name` (e.g. `idp-sync`):
/// `CHIME_SYNC_BOOTSTRAP_DIR` when it is set, else as [`binary`].
pub fn bootstrap(name: &str) -> PathBuf {
    match std::env::var_os("CHIME_SYNC_BOOTSTRAP_DIR") {
        Some(dir) => find(name, vec![in_dir(dir, name)]),
        None => binary(name),
    }
}

fn find(name: &str, candidates: Vec<PathBuf>) -> PathBuf {
    let Some(found) = candidates.iter().find(|p| p.is_file()) else {
        panic!(
            "the binary `{name}` is not built (looked for {}).\n\
             Build the workspace's binaries first: `cargo build --workspace --bins` \
             (scripts/test.sh does this before running the tests).",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    warn_if_stale(name, found);
    found.clone()
}

/// A `chime-sync` command with a clean environment, run in the workspace root:
/// no AWS configuration of the developer's machine (profiles, credentials,
/// instance metadata) can reach it, and no credentials, so the CLI uses its
/// placeholder ones for a local endpoint.
pub fn cli() -> std::process::Command {
    let mut command = std::process::Command::new(binary("chime-sync"));
    without_aws_setup(&mut command).current_dir(workspace_root());
    command
}

/// Clears `command`'s environment but for `PATH`, and keeps the machine's AWS
/// configuration (profiles, credentials, instance metadata) out of its reach.
pub fn without_aws_setup(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// `dir`/`name`, with a relative `dir` taken from the workspace root.
fn in_dir(dir: std::ffi::OsString, name: &str) -> PathBuf {
    let dir = PathBuf::from(dir);
    let dir = if dir.is_relative() {
        workspace_root().join(dir)
    } else {
        dir
    };
    dir.join(file_name(name))
}

fn file_name(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

fn candidates(name: &str) -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("CHIME_SYNC_BIN_DIR") {
        return vec![in_dir(dir, name)];
    }
    let file = file_name(name);
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/deps/<test>: the profile directory is the parent of deps/.
        if let Some(profile) = exe
            .parent()
            .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
            .and_then(Path::parent)
        {
            dirs.push(profile.to_owned());
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("debug"));
    }
    dirs.push(workspace_root().join("target").join("debug"));
    dirs.dedup();
    dirs.into_iter().map(|d| d.join(&file)).collect()
}

/// A binary older than any Rust source of the workspace's crates may not do
/// what the sources say; say so (tests that spawn it may fail for that reason).
fn warn_if_stale(name: &str, binary: &Path) {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return;
    };
    if let Some((newest, path)) = newest_source(&workspace_root().join("crates"))
        && newest > built
    {
        eprintln!(
            "warning: `{name}` ({}) is older than {}; run `cargo build --workspace --bins` \
             if a test fails for no visible reason",
            binary.display(),
            path.display()
        );
    }
}

fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                // Tests of other crates do not go into the binaries.
                if path
                    .file_name()
                    .is_some_and(|n| n != "tests" && n != "target")
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, path));
            }
        }
    }
    newest
}
