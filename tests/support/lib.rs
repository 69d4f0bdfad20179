//! Test harness shared by the end-to-end tests in `tests/`: where the
//! workspace, its sample events and its compiled binaries are.

use std::path::{Path, PathBuf};

/// The workspace root (where `events/` and `template.yaml` live).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `events/` folder the replay tests and the CLI read.
pub fn events_dir() -> PathBuf {
    workspace_root().join("events")
}

/// A sample's path relative to `events/`, with `/` separators
/// (`idp-sync/empty-batch.json`): the key the tests' expectation tables use.
pub fn events_relative(path: &Path) -> String {
    let relative = path.strip_prefix(events_dir()).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
