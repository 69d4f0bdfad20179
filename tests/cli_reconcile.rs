//! `chime-sync reconcile` as a newcomer runs it, against the Chime fake: input
//! that may be partial is refused in one line before anything is read from
//! Chime; several export pages make one list; the plan shows old → new and
//! what was left out; changes are applied from the listed state (no describe
//! before a create), several at a time; `--output json`; exit codes 0 in sync,
//! 2 changes, 1 error.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, Operation};
use chime_identity_sync::bins::cli;
use chime_identity_sync::in_both_missing_user_modes;
use chime_identity_sync::process::ChildGuard;
use serde_json::{Value, json};

const APP: &str = "arn:aws:chime:us-east-1:123456789012:app-instance/cli-reconcile";

fn sub(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

fn cognito_user(n: u32, status: &str, enabled: bool) -> Value {
    json!({"Username": format!("u{n}"), "Enabled": enabled, "UserStatus": status,
           "Attributes": [{"Name": "sub", "Value": sub(n)}, {"Name": "name", "Value": format!("User {n}")}]})
}

/// A file of this test process holding `text`.
fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("chime-sync-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write the input");
    path
}

fn chime_sync(fake: &FakeChimeHandle, args: &[&str]) -> Command {
    let mut command = cli();
    command
        .args([
            "reconcile",
            "--app-instance-arn",
            APP,
            "--endpoint-url",
            &fake.endpoint_url(),
        ])
        .args(args);
    command
}

async fn reconcile(fake: &FakeChimeHandle, args: &[&str]) -> (Option<i32>, String, String) {
    let process = ChildGuard::spawn("chime-sync reconcile", chime_sync(fake, args)).expect("spawn");
    let status = process
        .wait_exit(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    (status.code(), process.stdout(), process.stderr())
}

async fn fake(mode: chime_identity_fake::MissingUserError) -> FakeChimeHandle {
    FakeChime::start(FakeConfig::new().with_missing_user(mode))
        .await
        .expect("fake")
}

/// Each refusal: exit 1, one line naming what is wrong, and not a single request to Chime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_that_may_be_partial_is_refused_in_one_line_before_chime_is_read() {
    let fake = fake(Default::default()).await;
    let one_page = file(
        "one-page.json",
        &json!({"Users": [cognito_user(1, "CONFIRMED", true)], "NextToken": "eyJ0b2tlbiI6..."})
            .to_string(),
    );
    let empty = file("empty.json", &json!({"Users": []}).to_string());
    let no_sub = file(
        "no-sub.json",
        &json!({"Users": [cognito_user(1, "CONFIRMED", true),
                          {"Username": "x", "Enabled": true, "UserStatus": "CONFIRMED", "Attributes": []}]})
        .to_string(),
    );
    let lines = file(
        "bad-lines.jsonl",
        &format!(
            "{}\n{{\"sub\": \"EMP-7\", \"displayName\": \"Emp\"}}\n",
            json!({"sub": sub(1), "displayName": "Ada"})
        ),
    );
    let export_as_lines = file(
        "export.json",
        &json!({"Users": [cognito_user(1, "CONFIRMED", true)]}).to_string(),
    );
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--cognito-export".into(), one_page.display().to_string()],
            "page 1 of the export ends with `NextToken`",
        ),
        (
            vec!["--cognito-export".into(), empty.display().to_string()],
            "the input lists no users",
        ),
        (
            vec!["--cognito-export".into(), no_sub.display().to_string()],
            "1 entries cannot be used (first: page 1, entry 2: missing attribute `sub`)",
        ),
        (
            vec!["--users".into(), lines.display().to_string()],
            "1 entries cannot be used (first: line 2: invalid user id (sub)",
        ),
        (
            vec!["--users".into(), export_as_lines.display().to_string()],
            "this is a Cognito list-users export",
        ),
    ];
    for (args, expected) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--delete-missing", "--apply"]);
        let (code, stdout, stderr) = reconcile(&fake, &args).await;
        assert_eq!(code, Some(1), "{args:?}\n{stdout}\n{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
    assert_eq!(fake.counters().total_attempts(), 0, "Chime was never asked");
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Pages in two files (the first with its token) and pages one after another in one file
/// make one list. The dry run shows old → new and what was left out (exit 2); --apply
/// creates without a describe first, several at a time (exit 2); then it is in sync (0).
async fn several_pages_make_one_list_applied_from_the_listed_state(mode) {
    let fake = fake(mode).await;
    let page1 = json!({"Users": (0..60).map(|n| cognito_user(n, "CONFIRMED", true)).collect::<Vec<_>>(),
                       "PaginationToken": "next"});
    let page2 = json!({"Users": (60..130).map(|n| match n % 5 {
        0 => cognito_user(n, "UNCONFIRMED", true),
        1 => cognito_user(n, "CONFIRMED", false),
        2 => cognito_user(n, "EXTERNAL_PROVIDER", true),
        _ => cognito_user(n, "CONFIRMED", true),
    }).collect::<Vec<_>>()});
    let first = file("page1.json", &page1.to_string());
    let second = file("page2.json", &page2.to_string());
    let both = file("pages.json", &format!("{page1}\n{page2}"));
    let active = 60 + (60..130).filter(|n| n % 5 > 1).count();

    let (a, b) = (first.display().to_string(), second.display().to_string());
    let two_files = ["--cognito-export", a.as_str(), "--cognito-export", b.as_str()];
    let (code, stdout, stderr) = reconcile(&fake, &two_files).await;
    assert_eq!(code, Some(2), "changes planned\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("130 users read from {a}, {b} ({active} active; left out: 14 disabled, 14 status UNCONFIRMED)")), "{stdout}");
    assert!(stdout.contains(&format!("Plan: {active} to create, 0 to update, 0 to restore, 0 to delete")), "{stdout}");
    assert!(stdout.contains(&format!("create  {}  name \"User 0\"", sub(0))), "{stdout}");
    assert!(stdout.contains("Dry run: nothing changed"), "{stdout}");
    assert!(fake.users().is_empty());

    let one_file = both.display().to_string();
    let args = ["--cognito-export", one_file.as_str(), "--apply", "--concurrency", "16"];
    let (code, stdout, stderr) = reconcile(&fake, &args).await;
    assert_eq!(code, Some(2), "changes applied\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("Applied {active} changes: {active} created")), "{stdout}");
    assert_eq!(stdout.matches("created  ").count(), active, "each change printed as it is applied");
    assert_eq!(fake.users().len(), active);
    let counters = fake.counters();
    assert_eq!(counters.attempts(Operation::DescribeAppInstanceUser), 0, "no describe before a create");
    assert_eq!(counters.attempts(Operation::CreateAppInstanceUser), active as u64);

    let (code, stdout, _) = reconcile(&fake, &["--cognito-export", one_file.as_str()]).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("In sync: nothing to change."), "{stdout}");
}
}

in_both_missing_user_modes! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// `--output json`: one document with the counts, old and new names and metadata, what
/// was left out, the breaker's verdict and each change's outcome.
async fn json_output_is_one_document_for_automation(mode) {
    let fake = fake(mode).await;
    let lines = |users: &[(u32, &str)]| {
        users
            .iter()
            .map(|(n, name)| json!({"sub": sub(*n), "displayName": name, "metadata": {"team": n}}).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = file("before.jsonl", &lines(&[(1, "Ada"), (2, "Bob"), (3, "Cy")]));
    let path = before.display().to_string();
    let (code, stdout, stderr) = reconcile(&fake, &["--users", &path, "--apply", "--output", "json"]).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(doc["plan"]["create"], 3);
    assert_eq!(doc["applied"], true);
    assert!(doc["changes"].as_array().unwrap().iter().all(|c| c["outcome"] == "created"));

    let after = file("after.jsonl", &lines(&[(1, "Ada"), (2, "Robert")]));
    let path = after.display().to_string();
    // These users predate the ledger (no --ledger-table): the feed owns them.
    let args = ["--users", path.as_str(), "--delete-missing", "--delete-mode", "immediate", "--unowned", "feed", "--output", "json"];
    let (code, stdout, stderr) = reconcile(&fake, &args).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((doc["plan"]["update"].as_u64(), doc["plan"]["delete"].as_u64(), doc["plan"]["unchanged"].as_u64()), (Some(1), Some(1), Some(1)));
    assert_eq!(doc["breaker"]["verdict"], "within");
    let update = doc["changes"].as_array().unwrap().iter().find(|c| c["action"] == "update").unwrap();
    assert_eq!(update["name"], json!({"old": "Bob", "new": "Robert"}));
    assert_eq!(update["metadata"], json!({"old": "{\"team\":2}", "new": "{\"team\":2}"}));
    assert!(update.get("outcome").is_none(), "a dry run applies nothing");
    assert_eq!(fake.users().len(), 3);
}
}
