//! `chime-sync reconcile` as a newcomer runs it, against the Chime fake: input
//! that may be partial is refused in one line before anything is read from
//! Chime; several export pages make one list; the plan shows old → new and
//! what was left out; changes are applied from the listed state (no describe
//! before a create), several at a time; `--output json`; the breaker at
//! 1,000 of 2,000; exit codes 0 in sync, 2 changes (or deletions pending),
//! 3 deletions withheld, 1 error, the same through a pipe that closes early.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, Operation};
use serde_json::{Value, json};
use testkit::bins::cli;
use testkit::in_both_missing_user_modes;
use testkit::process::ChildGuard;

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

async fn fake(mode: chime_identity_fake::MissingAnswer) -> FakeChimeHandle {
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
    assert!(stdout.contains(&format!("Read 130 users from {a}, {b} ({active} active; left out: 14 disabled, 14 status UNCONFIRMED)")), "{stdout}");
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
    // Without a ledger the run cannot know of pending deletions, and says so.
    assert!(stdout.contains("In sync: nothing to change. Pending deletions are not known without a ledger"), "{stdout}");
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

/// `chime-sync reconcile …` through `| head -3`: its exit status as the shell sees it
/// with `pipefail`, and what `head` printed.
async fn reconcile_piped(fake: &FakeChimeHandle, args: &[&str]) -> (Option<i32>, String) {
    let binary = testkit::bins::binary("chime-sync");
    let mut words = vec![
        binary.display().to_string(),
        "reconcile".into(),
        "--app-instance-arn".into(),
        APP.into(),
        "--endpoint-url".into(),
        fake.endpoint_url(),
    ];
    words.extend(args.iter().map(|a| (*a).to_owned()));
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let mut command = Command::new("bash");
    testkit::bins::without_aws_setup(&mut command).args([
        "-o",
        "pipefail",
        "-c",
        &format!("{} | head -3", quoted.join(" ")),
    ]);
    let process = ChildGuard::spawn("chime-sync | head -3", command).expect("spawn");
    let status = process
        .wait_exit(Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    (status.code(), process.stdout())
}

/// [`reconcile`], its run shown on stderr as `$ chime-sync reconcile … <shown>`, the tail
/// of its output, and its exit status, which must be `exit`; its stdout and stderr.
async fn reconcile_shown(
    fake: &FakeChimeHandle,
    args: &[&str],
    shown: &str,
    exit: i32,
) -> (String, String) {
    let (code, stdout, stderr) = reconcile(fake, args).await;
    eprintln!(
        "$ chime-sync reconcile … {shown}\n{}\n{stderr}exit {code:?}",
        tail(&stdout, 4)
    );
    assert_eq!(code, Some(exit), "{stdout}\n{stderr}");
    (stdout, stderr)
}

fn user_lines(range: std::ops::Range<u32>) -> String {
    range
        .map(|n| json!({"sub": sub(n), "displayName": format!("User {n}")}).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1,000 of 2,000 users missing from the export: the breaker counts all 1,000 (not the
/// limit plus one), says exit 3 whether or not the output goes through a pipe that closes
/// early, and the `--allow-deletes 1000` it prints releases exactly them the first time.
/// The transcript is printed for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_counts_every_deletion_and_its_release_works_the_first_time() {
    let fake = fake(chime_identity_fake::MissingAnswer::Forbidden).await;
    let all = file("breaker-all.jsonl", &user_lines(0..2000));
    let half = file("breaker-half.jsonl", &user_lines(0..1000));
    let (all, half) = (all.display().to_string(), half.display().to_string());
    let (code, stdout, stderr) =
        reconcile(&fake, &["--users", &all, "--apply", "--concurrency", "32"]).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert_eq!(fake.users().len(), 2000);

    // These users were made without a ledger: the feed (--users' source) owns them.
    let review = [
        "--users",
        half.as_str(),
        "--delete-missing",
        "--unowned",
        "feed",
    ];
    let (stdout, stderr) =
        reconcile_shown(&fake, &review, "--users half.jsonl --delete-missing", 3).await;
    assert!(
        stderr.contains("1000 deletions planned, at most 100 allowed"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-deletes 1000"), "{stderr}");
    assert_eq!(
        stdout.matches("[withheld]").count(),
        1000,
        "every withheld deletion is listed"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("Run again with --apply to carry out the plan."),
        "the summary comes last"
    );

    let (code, head) = reconcile_piped(&fake, &review).await;
    assert_eq!(
        code,
        Some(3),
        "the same status through a pipe that closed: {head}"
    );
    assert_eq!(head.lines().count(), 3);

    let plan_file =
        std::env::temp_dir().join(format!("chime-sync-{}-plan.txt", std::process::id()));
    let with_file = [&review[..], &["--plan-file", plan_file.to_str().unwrap()]].concat();
    let (code, stdout, _) = reconcile(&fake, &with_file).await;
    assert_eq!(code, Some(3));
    assert!(stdout.contains("The plan's 1000 lines are in"), "{stdout}");
    assert!(stdout.lines().count() < 10, "a screenful: {stdout}");
    assert_eq!(
        std::fs::read_to_string(&plan_file).unwrap().lines().count(),
        1000
    );

    let release = [&review[..], &["--apply", "--allow-deletes", "1000"]].concat();
    let (stdout, _) = reconcile_shown(&fake, &release, "--apply --allow-deletes 1000", 2).await;
    assert!(
        stdout.contains("Applied 1000 changes: 1000 deletion-scheduled."),
        "{stdout}"
    );
    let pending = fake
        .users()
        .iter()
        .filter(|u| u.expiration.as_ref().is_some_and(|e| e.days < 5475))
        .count();
    assert_eq!(
        pending, 1000,
        "exactly the 1,000 missing users are scheduled"
    );

    let (code, stdout, _) = reconcile(&fake, &review).await;
    eprintln!(
        "$ chime-sync reconcile … (again)\n{}\nexit {code:?}",
        tail(&stdout, 3)
    );
    assert_eq!(
        code,
        Some(2),
        "deletions pending are not \"in sync\": {stdout}"
    );
    assert!(
        stdout.contains("1000 deletion already scheduled"),
        "{stdout}"
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
