//! The workspace's test harness, shared by the end-to-end suite (`tests/e2e`), the crates'
//! integration tests, the benchmarks and `chime-sync serve-fake`:
//!
//! - [`moto`]: moto's server as SQS (and Cognito, DynamoDB), on a free port, killed on drop.
//! - [`ledger`]: the ownership ledger's table in moto, as template.yaml declares it.
//! - [`pipeline`]: the sync queue drained through the idp-sync bootstrap; Chime read back.
//! - [`cognito`]: a user pool in moto with users in every status.
//! - [`cognito_fake`]: Cognito's `ListUsers` at its request quota.
//! - [`credentials`]: keys and tokens made at test time, a local OIDC issuer, a local STS.
//! - [`esm_driver`]: idp-sync driven as Lambda's event source mapping drives it, over sqs-sim.
//! - [`runtime_api`]: a mock Lambda Runtime API serving queued events.
//! - [`lambda`]: a compiled bootstrap binary behind that API, with Lambda's
//!   environment.
//! - [`process`]: the child-process guard under both ([`process::ChildGuard`]).
//! - [`bins`]: where the workspace's compiled binaries are.
//! - [`emf`]: a validator of CloudWatch embedded-metric-format lines, from
//!   the specification.
//! - [`net`]: free ports and a minimal HTTP GET for readiness probes.
//! - [`samples`]: the sample events' users.
//!
//! # One double per service, and where a second one stays
//!
//! | service | the double | why a second one exists |
//! |---|---|---|
//! | Chime SDK Identity | `chime-identity-fake`, on the wire, for the real SDK client | core's `InMemoryDirectory`, in process, for the replay and the handlers' unit tests: an adapter, not a second model; both answer from one model of Chime's rules, `chime_sync_core::memory::chime` |
//! | SQS | moto's server, the wire-level reference | `sqs-sim`: thousands of deliveries, redeliveries and killed invocations in seconds, reproducibly, where moto is slow and its FIFO order is not strict; `sim_vs_moto` runs the same events through both and compares |
//! | Cognito user pools | moto's server ([`cognito`]): statuses, pages, filters | [`cognito_fake`]: moto never throttles, and reconcile must stay under `ListUsers`' quota and back off on `TooManyRequestsException` |
//! | DynamoDB (the ledger) | moto's server ([`ledger`]) | — |
//! | OIDC issuer, STS | [`credentials`] | — |
//! | Lambda Runtime API | [`runtime_api`] | — |
//!
//! Only the SDK clients and the compiled bootstraps are real in these tests; none of them needs
//! AWS credentials or the internet.

pub mod bins;
pub mod cognito;
pub mod cognito_fake;
pub mod credentials;
pub mod emf;
pub mod esm_driver;
pub mod lambda;
pub mod ledger;
pub mod moto;
pub mod net;
pub mod pipeline;
pub mod process;
pub mod runtime_api;
pub mod samples;

use std::path::{Path, PathBuf};

/// A test that must hold whichever answer Chime gives for a missing user,
/// run once per answer of the fake: `name::missing_user_404` and
/// `name::missing_user_403`. The body is `async fn name(mode)`, `mode` a
/// `chime_identity_fake::MissingAnswer`, under the given test attribute:
///
/// ```ignore
/// in_both_missing_user_modes! {
///     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
///     /// What it proves.
///     async fn deletes_succeed(mode) { /* FakeConfig::new().with_missing_user(mode) … */ }
/// }
/// ```
#[macro_export]
macro_rules! in_both_missing_user_modes {
    (#[$test:meta] $(#[doc = $doc:expr])* async fn $name:ident($mode:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($mode: chime_identity_fake::MissingAnswer) $body

            #[$test]
            async fn missing_user_404() {
                run(chime_identity_fake::MissingAnswer::NotFound).await
            }

            #[$test]
            async fn missing_user_403() {
                run(chime_identity_fake::MissingAnswer::Forbidden).await
            }
        }
    };
}

use serde_json::Value;

/// Personal data the tests put in events: what must never appear in a log
/// line, a metric line or an error report.
pub const PII: [&str; 14] = [
    "alice.pii@example.com",
    "alice.pii",
    "+15555550123",
    "+44 20 7946 0958",
    "Alicia Piiname",
    "Piiname",
    "alicia_pii_handle",
    "221B Baker Street",
    "1815-12-10",
    "078-05-1120",
    "Bartholomew Piiperson",
    "bart.pii@example.net",
    "+15555550199",
    "alice.wrongtype@example.com",
];

/// An environment of `pairs` and nothing else (a name set twice has its last value), for the
/// `from_lookup` constructors under test.
pub fn env_lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    move |wanted| {
        let found = pairs.iter().rev().find(|(name, _)| name == wanted);
        found.map(|(_, value)| value.clone())
    }
}

/// The workspace root (where `events/` and `template.yaml` live).
pub fn workspace_root() -> &'static Path {
    // crates/testkit, two levels below the root.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().and_then(Path::parent).unwrap_or(here)
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

/// The sample `events/{relative}`, parsed.
pub fn read_event(relative: &str) -> Value {
    let path = events_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the sample {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the sample {} is not JSON: {e}", path.display()))
}

/// The `.json` samples of one function's folder (`events/{folder}/`), as
/// paths relative to `events/`, sorted.
pub fn samples(folder: &str) -> Vec<String> {
    let dir = events_dir().join(folder);
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| events_relative(&p))
        .collect();
    found.sort();
    found
}

/// Every email address and phone number in the Cognito samples' user
/// attributes: what no log line may contain.
pub fn personal_data_in_samples() -> Vec<String> {
    let mut found = Vec::new();
    for folder in ["pre-signup", "post-confirmation"] {
        for relative in samples(folder) {
            let event = read_event(&relative);
            let Some(attributes) = event
                .pointer("/request/userAttributes")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for key in ["email", "phone_number"] {
                if let Some(value) = attributes.get(key).and_then(Value::as_str)
                    && value.len() > 3
                {
                    found.push(value.to_owned());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}
