//! The CLI against the Chime fake: the compiled `chime-sync` (target/debug),
//! run as a newcomer runs it.
//!
//! - `chime-sync replay --endpoint-url … --app-instance-arn … events/` applies
//!   the samples to the fake through the real SDK, and a second run changes
//!   nothing: the same users with the same timestamps, no update call.
//! - `chime-sync serve-fake --port N` answers `GET /_fake/health`.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::process::Command;
use std::time::{Duration, Instant};

use chime_identity_fake::{FakeChime, FakeConfig, Operation, UserRecord};
use chime_identity_sync::bins::binary;
use chime_identity_sync::in_both_missing_user_modes;
use chime_identity_sync::net::{free_port, http_get};
use chime_identity_sync::process::ChildGuard;
use chime_identity_sync::workspace_root;
use chime_sync_core::replay::DEMO_APP_INSTANCE_ARN;

const ADA: &str = "1d4f6a8c-2b3e-4c5d-9e7f-8a0b1c2d3e4f";
const ALAN: &str = "3c7a9e12-5b4d-4f6e-8a2c-1e9d7b5f3a60";
const BARBARA: &str = "c2f6a8d0-4e1b-4b7c-8f3a-6d9e1b5c7a24";
const DONALD: &str = "2b9d7f15-6e3c-4a8b-a0d2-5c7e9f1b3d86";
const GRACE: &str = "9b2e4f60-7c1d-4e3a-9f5b-2d8c6a1e0b47";
const HEDY: &str = "0000dead-0000-4000-8000-000000000503";
const KATHERINE: &str = "d4e8f1a2-3b6c-4d9e-a5f7-0c2b4e6d8f13";
const MARGARET: &str = "7a3d5e9f-1c8b-4a2e-9d6f-4b0e2c8a6d35";
const RADIA: &str = "e8b4c0d6-9a2f-4e5b-b1c7-3f6a8d0e2b59";

/// A `chime-sync` command with a clean environment: no AWS configuration of
/// the developer's machine (profiles, credentials, instance metadata) can
/// reach it, and no credentials, so the CLI uses its placeholder ones for a
/// local endpoint.
fn chime_sync(args: &[&str]) -> Command {
    let mut command = Command::new(binary("chime-sync"));
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(workspace_root())
        .args(args);
    command
}

/// Run `chime-sync replay` against `endpoint` to completion (at most 60 s);
/// returns its stdout. Panics with its output unless it exits 0.
async fn replay(endpoint: &str, run: u32) -> String {
    let command = chime_sync(&[
        "replay",
        "--endpoint-url",
        endpoint,
        "--app-instance-arn",
        DEMO_APP_INSTANCE_ARN,
        "events/",
    ]);
    let process = ChildGuard::spawn(format!("chime-sync replay (run {run})"), command)
        .expect("spawn chime-sync");
    let status = process
        .wait_exit(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    assert!(
        status.success(),
        "replay run {run} exited with {status}\n{}",
        process.output()
    );
    process.stdout()
}

/// The "Final directory" table the CLI prints (listed from the endpoint).
fn final_directory(stdout: &str) -> &str {
    let start = stdout
        .find("Final directory:")
        .unwrap_or_else(|| panic!("no final directory in:\n{stdout}"));
    let end = stdout[start..]
        .find("Sync queue hand-offs:")
        .map_or(stdout.len(), |i| start + i);
    &stdout[start..end]
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Replaying every sample against the fake (no user fails there, so Hedy's
/// FIFO messages apply too) leaves exactly the story's users; replaying again
/// writes nothing.
async fn replay_applies_the_samples_to_the_fake_and_a_second_run_changes_nothing(mode) {
    let fake = FakeChime::start(FakeConfig::new().with_missing_user(mode))
        .await
        .expect("start the fake");
    let endpoint = fake.endpoint_url();

    let first = replay(&endpoint, 1).await;
    let after_first: Vec<UserRecord> = fake.users();
    let found: Vec<(&str, &str, Option<&str>)> = after_first
        .iter()
        .map(|u| {
            assert_eq!(u.app_instance_arn, DEMO_APP_INSTANCE_ARN);
            (
                u.app_instance_user_id.as_str(),
                u.name.as_str(),
                u.metadata.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                HEDY,
                "Hedy Lamarr",
                Some(r#"{"department":"Communications"}"#)
            ),
            (ADA, "Ada Lovelace", None),
            (DONALD, "Donald Knuth", Some(r#"{"team":"TAOCP"}"#)),
            (
                ALAN,
                "Alan Turing",
                Some(r#"{"department":"Cryptanalysis"}"#)
            ),
            (
                MARGARET,
                "Margaret Hamilton",
                Some(r#"{"department":"Apollo Guidance"}"#)
            ),
            (
                GRACE,
                "Grace Hopper",
                Some(r#"{"department":"Engineering"}"#)
            ),
            (
                BARBARA,
                "Barbara Liskov",
                Some(r#"{"department":"Programming Methodology"}"#)
            ),
            (KATHERINE, "Katherine Johnson", None),
            (RADIA, "Radia Perlman", None),
        ],
        "users on the fake after the first replay\n{first}"
    );
    assert!(first.contains("Final directory: 9 users"), "{first}");
    assert!(first.contains("Dead-lettered messages: 5"), "{first}");
    assert!(first.contains("Sync queue hand-offs: 0"), "{first}");
    let updates_first = fake.counters().get(Operation::UpdateAppInstanceUser);
    assert!(
        updates_first.succeeded >= 3,
        "Alan, Donald and Hedy were updated: {updates_first:?}"
    );

    let before = fake.counters();
    let second = replay(&endpoint, 2).await;
    let after = fake.counters();
    // The same records: ids, names, metadata, tokens, and the creation and
    // update timestamps, so nothing was re-created or rewritten.
    assert_eq!(
        fake.users(),
        after_first,
        "the second replay changed the fake's users"
    );
    assert_eq!(final_directory(&second), final_directory(&first));
    let updates = after.get(Operation::UpdateAppInstanceUser).attempts
        - before.get(Operation::UpdateAppInstanceUser).attempts;
    assert_eq!(updates, 0, "the second replay sent UpdateAppInstanceUser");
    // The second run reads before it writes: it creates only Edsger, whom the
    // standard batch creates and deletes again every run, and says
    // `already-exists` for everyone else.
    let creates = after.get(Operation::CreateAppInstanceUser).attempts
        - before.get(Operation::CreateAppInstanceUser).attempts;
    assert_eq!(creates, 1, "only Edsger is created (again) in the second run");
    assert!(second.contains("already-exists"), "{second}");
    let deletes = after.get(Operation::DeleteAppInstanceUser).succeeded
        - before.get(Operation::DeleteAppInstanceUser).succeeded;
    assert_eq!(
        deletes, 1,
        "only Edsger is deleted (again) in the second run"
    );
}
}

/// `chime-sync serve-fake --port N` serves the fake until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fake_answers_health() {
    let mut last = String::new();
    // A port found free can be taken before the CLI binds it: try a few.
    for _ in 0..3 {
        let port = free_port();
        let command = chime_sync(&["serve-fake", "--port", &port.to_string()]);
        let process =
            ChildGuard::spawn(format!("chime-sync serve-fake :{port}"), command).expect("spawn");
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((status, body)) = http_get(port, "/_fake/health").await {
                assert_eq!((status, body.as_str()), (200, "ok"));
                assert!(
                    process.try_status().is_none(),
                    "serve-fake is still running"
                );
                // Killing also reads its output to the end.
                process.kill();
                assert!(
                    process.stdout().contains(&format!(
                        "AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY=http://127.0.0.1:{port}"
                    )),
                    "serve-fake tells how to point the SDK at it:\n{}",
                    process.output()
                );
                return;
            }
            if process.try_status().is_some() || Instant::now() > until {
                last = process.output();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("chime-sync serve-fake never answered /_fake/health:\n{last}");
}
