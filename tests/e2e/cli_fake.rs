//! The CLI against the Chime fake: the compiled `chime-sync` (target/debug),
//! run as a newcomer runs it.
//!
//! - `chime-sync replay --endpoint-url … --app-instance-arn … events/` applies
//!   the samples to the fake through the real SDK, and a second run changes
//!   nothing: the same users with the same timestamps, no update call.
//! - `chime-sync serve-fake --port N` answers `GET /_fake/health`; on a busy
//!   port it fails in one line without announcing anything.
//! - The summary names the endpoint actually used, also when it comes from
//!   `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`.
//! - Errors a person reads: AWS errors (no credentials, an SSO profile, an
//!   expired token, an IAM denial, a dead endpoint) are one line with a hint,
//!   `--verbose` adds the SDK's text; `replay --times 0` is refused; output
//!   into a closed pipe ends quietly.
//!
//! Needs `cargo build --workspace --bins` first (scripts/test.sh does it).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;

use chime_identity_fake::{FakeChime, FakeConfig, Operation, UserRecord};
use chime_sync_core::replay::DEMO_APP_INSTANCE_ARN;
use testkit::bins;
use testkit::in_both_missing_user_modes;
use testkit::net::{free_port, http_get};
use testkit::process::ChildGuard;
use testkit::samples::{
    ADA, ALAN, ANNIE, BARBARA, DONALD, GRACE, HEDY, KATHERINE, MARGARET, MARY, RADIA,
};

/// A `chime-sync` command with a clean environment ([`bins::cli`]).
fn chime_sync(args: &[&str]) -> Command {
    let mut command = bins::cli();
    command.args(args);
    command
}

/// Run `chime-sync replay` against `endpoint` to completion (at most 60 s);
/// returns its stdout. Panics with its output unless it exits 0.
async fn replay(endpoint: &str, run_number: u32) -> String {
    let command = chime_sync(&[
        "replay",
        "--endpoint-url",
        endpoint,
        "--app-instance-arn",
        DEMO_APP_INSTANCE_ARN,
        "events/",
    ]);
    let name = format!("chime-sync replay (run {run_number})");
    let (code, stdout, stderr) = run(&name, command).await;
    assert_eq!(
        code,
        Some(0),
        "replay run {run_number} failed\n{stdout}\n{stderr}"
    );
    stdout
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
            (ANNIE, "Annie Easley", None),
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
            (MARY, "Mary Jackson", None),
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
    assert!(first.contains("Final directory: 11 users"), "{first}");
    assert!(first.contains("Dead-lettered messages: 5"), "{first}");
    // Reconcile's plan: Dorothy, in the demo pool only, to be created by idp-sync.
    assert!(first.contains("Sync queue hand-offs: 1"), "{first}");
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

/// Run `command` to completion (at most 60 s): its exit status, stdout and
/// stderr.
async fn run(name: &str, command: Command) -> (Option<i32>, String, String) {
    let process = ChildGuard::spawn(name.to_owned(), command).expect("spawn chime-sync");
    let status = process
        .wait_exit(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.output()));
    (status.code(), process.stdout(), process.stderr())
}

/// The endpoint of a replay summary comes from `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`
/// when no `--endpoint-url` is given, and the summary says so (it used to say
/// "AWS (us-east-1)"). Without credentials in the environment, placeholder
/// ones sign the requests to that local endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_names_the_endpoint_from_the_environment() {
    let fake = FakeChime::start(FakeConfig::new())
        .await
        .expect("start the fake");
    let endpoint = fake.endpoint_url();
    let mut command = chime_sync(&[
        "replay",
        "--app-instance-arn",
        DEMO_APP_INSTANCE_ARN,
        "events/idp-sync/standard-batch-created-updated-deleted.json",
    ]);
    command.env("AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY", &endpoint);
    let (code, stdout, stderr) = run("chime-sync replay (endpoint from env)", command).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "Replaying 1 event files against Chime at {endpoint} (AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY)"
        )),
        "{stdout}"
    );
    assert_eq!(fake.users().len(), 2, "Grace and Alan are on the fake");
}

/// `serve-fake` on a port that is taken: one error line naming the address,
/// exit 1, and no "Serving …" banner before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fake_on_a_busy_port_fails_in_one_line_without_a_banner() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().unwrap().port();
    let command = chime_sync(&["serve-fake", "--port", &port.to_string()]);
    let (code, stdout, stderr) = run("chime-sync serve-fake (busy port)", command).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "", "nothing announced");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "chime-sync: cannot serve the fake on 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
    drop(taken);
}

/// `replay --times 0` is refused (it used to run once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_times_zero_is_refused() {
    let command = chime_sync(&["replay", "--times", "0"]);
    let (code, stdout, stderr) = run("chime-sync replay --times 0", command).await;
    // A usage error is an error (1), never "changes planned" (2).
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("invalid value '0' for '--times <TIMES>'"),
        "{stderr}"
    );
}

/// `chime-sync replay | head -1`: once the reader has gone, the CLI ends
/// quietly with status 0 instead of panicking (status 101). The output (500
/// rounds, far more than a pipe holds) cannot all be written before the
/// reader closes its end, so the CLI is sure to meet the closed pipe.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let mut child = chime_sync(&["replay", "--times", "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chime-sync");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read the first line");
    assert!(first.starts_with("Replaying "), "{first}");
    // The reader goes away, as `head -1` does: the read end is dropped above.
    let output = child.wait_with_output().expect("wait for chime-sync");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "quietly");
}

/// A stand-in for AWS that answers every request with one error, as the
/// Chime SDK Identity endpoint sends it (status, `X-Amzn-ErrorType`, JSON
/// body). Returns its URL; it stops with the test's runtime.
async fn aws_error_endpoint(
    status: u16,
    error_type: &'static str,
    message: &'static str,
) -> String {
    let status = StatusCode::from_u16(status).expect("a valid status");
    let app = axum::Router::new().fallback(move || async move {
        (
            status,
            [
                ("x-amzn-errortype", error_type),
                ("content-type", "application/json"),
            ],
            serde_json::json!({"Code": error_type, "Message": message}).to_string(),
        )
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the error endpoint");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// This test process's user export for `failing_reconcile`.
fn users_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("chime-sync-users-{}.jsonl", std::process::id()))
}

/// `chime-sync [--verbose] reconcile --users F …` with `env`, expected to fail:
/// its stderr.
async fn failing_reconcile(verbose: bool, extra: &[&str], env: &[(&str, &str)]) -> String {
    let users = users_file();
    std::fs::write(
        &users,
        format!("{{\"sub\":\"{ADA}\",\"displayName\":\"Ada Lovelace\"}}\n"),
    )
    .expect("write the export");
    let mut args: Vec<&str> = Vec::new();
    if verbose {
        args.push("--verbose");
    }
    let path = users.to_string_lossy().into_owned();
    args.extend([
        "reconcile",
        "--users",
        &path,
        "--app-instance-arn",
        DEMO_APP_INSTANCE_ARN,
    ]);
    args.extend(extra);
    let mut command = chime_sync(&args);
    command.envs(env.iter().copied());
    let (code, stdout, stderr) = run("chime-sync reconcile (failing)", command).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    stderr
}

/// Extra arguments, extra environment, and how stderr must start.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, String);

/// The common AWS errors are one line that says what to do; `--verbose`
/// adds the SDK's full text on a second line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_are_one_line_with_a_hint() {
    let iam = "User: arn:aws:sts::123456789012:assumed-role/dev/ada is not authorized to \
               perform: chime:ListAppInstanceUsers on resource: \
               arn:aws:chime:us-east-1:123456789012:app-instance/demo-app-instance because no \
               identity-based policy allows the chime:ListAppInstanceUsers action";
    let denied = aws_error_endpoint(403, "AccessDeniedException", iam).await;
    let expired = aws_error_endpoint(
        403,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    .await;
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];
    let sso_config =
        std::env::temp_dir().join(format!("chime-sync-sso-{}.cfg", std::process::id()));
    std::fs::write(
        &sso_config,
        "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Admin\n[sso-session corp]\n\
         sso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .expect("write the SSO profile");
    let sso_config = sso_config.to_string_lossy().into_owned();
    let dead = format!("http://127.0.0.1:{}", free_port());

    let at_aws = "chime-sync: cannot list the users at \
                  https://identity-chime.us-east-1.amazonaws.com (AWS, us-east-1)";
    let cases: Vec<Case> = vec![
        (
            vec!["--endpoint-url", &denied],
            keys.to_vec(),
            format!(
                "chime-sync: cannot list the users at {denied} (--endpoint-url): access denied: \
                 arn:aws:sts::123456789012:assumed-role/dev/ada may not call \
                 chime:ListAppInstanceUsers. Hint: "
            ),
        ),
        (
            vec!["--endpoint-url", &expired],
            keys.to_vec(),
            format!(
                "chime-sync: cannot list the users at {expired} (--endpoint-url): the AWS \
                 credentials have expired. Hint: "
            ),
        ),
        (
            vec!["--endpoint-url", &dead],
            keys.to_vec(),
            format!(
                "chime-sync: cannot list the users at {dead} (--endpoint-url): nothing accepts \
                 connections at the endpoint. Hint: "
            ),
        ),
        // AWS's own endpoint, no credentials anywhere: refused before any request.
        (
            vec![],
            vec![],
            format!("{at_aws}: no AWS credentials were found. Hint: "),
        ),
        (
            vec![],
            vec![
                ("AWS_CONFIG_FILE", sso_config.as_str()),
                ("AWS_PROFILE", "dev"),
            ],
            format!("{at_aws}: the AWS profile uses SSO. Hint: this build has no SSO support"),
        ),
    ];
    for (extra, env, expected) in &cases {
        let stderr = failing_reconcile(false, extra, env).await;
        assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
        assert!(
            stderr.starts_with(expected.as_str()),
            "expected {expected}\ngot {stderr}"
        );
        assert!(
            stderr
                .trim_end()
                .ends_with("(--verbose shows the full error)"),
            "{stderr}"
        );
        assert!(stderr.len() < 500, "{} characters: {stderr}", stderr.len());

        let verbose = failing_reconcile(true, extra, env).await;
        let lines: Vec<&str> = verbose.lines().collect();
        assert!(lines.len() >= 2, "{verbose}");
        assert!(lines[0].starts_with(expected.as_str()), "{verbose}");
        assert!(lines[1].starts_with("The full error: "), "{verbose}");
    }
    let verbose = failing_reconcile(true, &cases[0].0, &cases[0].1).await;
    assert!(
        verbose.contains(iam),
        "the SDK's text names IAM's message:\n{verbose}"
    );
}
