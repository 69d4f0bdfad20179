//! `chime-sync`: the operator's and the newcomer's entry point.
//!
//! - `chime-sync replay [PATH…]` runs AWS-shaped sample events (default:
//!   `events/`) through the real handlers against an embedded in-memory
//!   directory and prints what each did and the final directory; with
//!   `--endpoint-url`/`--app-instance-arn` the same run talks to a real or
//!   local Chime SDK Identity endpoint instead.
//! - `chime-sync reconcile (--user-pool-id ID | --cognito-export F… | --users F)
//!   --app-instance-arn A` compares who should exist with the directory and
//!   prints the plan; `--apply` carries it out ([`reconcile_cmd`]). It covers
//!   the users no trigger provisions (AdminCreateUser, federated) and
//!   deletions Cognito never announces. `--stack-name` plans with the
//!   deployed function's settings. Exit codes: docs/CLI.md.
//! - `chime-sync restore (--user-pool-id ID | --users F)` cancels pending
//!   (grace) deletions of every active user.
//! - `chime-sync serve-fake --port N [--missing-user 403|404]` serves the local
//!   Chime SDK Identity fake for development and, on the same port, the local
//!   loop's Cognito, STS, SQS and identity provider ([`local_loop`]).
//!
//! A failure is one line on stderr; an AWS error says what to do about it
//! ([`aws_errors`]), and `--verbose` adds the SDK's full text. Output piped
//! into `head` ends quietly ([`out`]).

mod aws_errors;
mod out;
mod table;

// The commands that call AWS (or serve its local fakes), and what only they use: the `aws`
// feature, on by default. Without it the CLI is the replay against the embedded directory
// alone, which builds in a fraction of the time (docs/CLI.md, "A replay-only build").
#[cfg(feature = "aws")]
mod deployed;
#[cfg(feature = "aws")]
mod endpoint;
#[cfg(feature = "aws")]
mod inputs;
#[cfg(feature = "aws")]
mod local_loop;
#[cfg(feature = "aws")]
mod ownership_cmd;
#[cfg(feature = "aws")]
mod reconcile_cmd;
#[cfg(feature = "aws")]
mod restore_cmd;
#[cfg(feature = "aws")]
mod sdk;
#[cfg(feature = "aws")]
mod serve_cmd;
#[cfg(feature = "aws")]
mod settings;
#[cfg(feature = "aws")]
use sdk::{Chime, chime_directory, load_sdk_config_in, sdk_config};

use std::path::PathBuf;
use std::process::ExitCode;

use chime_sync_core::DirectoryError;
use chime_sync_core::directory::{Directory, list_all};
use chime_sync_core::replay::{self, Replay};
use clap::{Parser, Subcommand};
use out::outln;

#[derive(Parser)]
#[command(
    name = "chime-sync",
    version,
    about = "Keep Amazon Chime SDK users in step with Cognito and your IdP"
)]
struct Cli {
    /// On an AWS error, also print the SDK's full error text.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay sample events through the handlers and show what they did.
    Replay {
        /// Event files or folders (searched for *.json). Default: events/.
        paths: Vec<PathBuf>,
        /// Talk to this Chime SDK Identity endpoint instead of the embedded
        /// directory (e.g. the fake from `serve-fake`, or AWS's own).
        #[arg(long, requires = "app_instance_arn")]
        endpoint_url: Option<String>,
        /// The AppInstance to provision into (required with a real endpoint).
        #[arg(long)]
        app_instance_arn: Option<String>,
        /// Replay the whole set this many times (to see that replays change nothing).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        times: u32,
    },
    /// Compare the user pool (live or exported) or an HR export with Chime, and print
    /// (or --apply) the changes. Exit 0 in sync, 2 changes planned, applied or pending,
    /// 3 deletions withheld by the breaker, 1 error (docs/CLI.md).
    #[cfg(feature = "aws")]
    Reconcile(reconcile_cmd::ReconcileArgs),
    /// Cancel the pending (grace) deletions of every active user: undo a mass deletion
    /// within its grace period.
    #[cfg(feature = "aws")]
    Restore(restore_cmd::RestoreArgs),
    /// Make a source the owner of the Chime users that predate ownership and that it
    /// lists, so its absence can delete them (a dry run unless --apply).
    #[cfg(feature = "aws")]
    Adopt(ownership_cmd::AdoptArgs),
    /// List or release the explicit deletions a feed breaker held back.
    #[cfg(feature = "aws")]
    Held(ownership_cmd::HeldArgs),
    /// Serve the local Chime SDK Identity fake, and the local loop's Cognito, STS, SQS
    /// and identity provider on the same port, until Ctrl-C.
    #[cfg(feature = "aws")]
    ServeFake(serve_cmd::ServeFakeArgs),
    /// In a replay-only build, any other command: answered with how to build the full CLI
    /// rather than clap's bare "unrecognized subcommand".
    #[cfg(not(feature = "aws"))]
    #[command(external_subcommand)]
    LeftOut(Vec<String>),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    // A mistyped command line exits 1, as any error: clap's own 2 would read
    // as "changes planned" to a script (docs/CLI.md). Help and version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Replay {
            paths,
            endpoint_url,
            app_instance_arn,
            times,
        } => run_replay(paths, endpoint_url, app_instance_arn, times)
            .await
            .map(|()| Status::Done),
        #[cfg(feature = "aws")]
        Command::Reconcile(args) => reconcile_cmd::reconcile(args).await,
        #[cfg(feature = "aws")]
        Command::Restore(args) => restore_cmd::restore(args).await,
        #[cfg(feature = "aws")]
        Command::Adopt(args) => ownership_cmd::adopt(args).await,
        #[cfg(feature = "aws")]
        Command::Held(args) => ownership_cmd::held(args).await,
        #[cfg(feature = "aws")]
        Command::ServeFake(args) => serve_cmd::serve_fake(args).await.map(|()| Status::Done),
        #[cfg(not(feature = "aws"))]
        Command::LeftOut(words) => Err(left_out(words.first().map_or("", String::as_str))),
    };
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(failure) => {
            failure.print(cli.verbose);
            ExitCode::FAILURE
        }
    }
}

/// How a command that did not fail ended: the exit status. A failure is 1.
/// The same whether standard output is a terminal, a file or a pipe that
/// closed early ([`out`]). docs/CLI.md lists each command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(feature = "aws"),
    allow(dead_code, reason = "only the AWS commands end otherwise")
)]
enum Status {
    /// 0: done, or in sync.
    Done,
    /// 2: changes planned or applied, or deletions pending (reconcile,
    /// restore, adopt, held).
    Changes,
    /// 3: the mass-delete breaker withheld deletions (reconcile); release
    /// them with `--allow-deletes N`.
    Withheld,
    /// 1: an error, or changes that failed (what the JSON document says
    /// beside a failure's message on stderr).
    Failed,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Self::Done => 0,
            Self::Changes => 2,
            Self::Withheld => 3,
            Self::Failed => 1,
        }
    }
}

/// Why a command failed: one line for a person and, for an AWS error, the
/// SDK's full text, printed only with `--verbose`.
#[derive(Debug)]
struct Failure {
    line: String,
    detail: Option<String>,
}

impl From<String> for Failure {
    fn from(line: String) -> Self {
        Self { line, detail: None }
    }
}

impl From<&str> for Failure {
    fn from(line: &str) -> Self {
        line.to_owned().into()
    }
}

impl Failure {
    /// `context` (what was being done) and the explained AWS error of a
    /// call to `action`.
    fn aws(context: String, error: &DirectoryError, action: &str) -> Self {
        Self {
            line: format!("{context}: {}", aws_errors::explain(error, action)),
            detail: Some(error.to_string()),
        }
    }

    fn print(&self, verbose: bool) {
        match (&self.detail, verbose) {
            (Some(detail), true) => {
                eprintln!("chime-sync: {}", self.line);
                eprintln!("The full error: {detail}");
            }
            (Some(_), false) => {
                eprintln!("chime-sync: {} (--verbose shows the full error)", self.line)
            }
            (None, _) => eprintln!("chime-sync: {}", self.line),
        }
    }
}

async fn run_replay(
    paths: Vec<PathBuf>,
    endpoint_url: Option<String>,
    app_instance_arn: Option<String>,
    times: u32,
) -> Result<(), Failure> {
    let paths = if paths.is_empty() {
        vec![default_events_dir()]
    } else {
        paths
    };
    let files = replay::collect_files(&paths).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!("no .json event files under {}", show_paths(&paths)).into());
    }
    match app_instance_arn {
        Some(arn) => replay_against_chime(&files, &arn, endpoint_url, times).await,
        None => {
            let replay = Replay::embedded().map_err(|e| e.to_string())?;
            outln!(
                "Replaying {} event files against the embedded in-memory directory\n\
                 (AppInstance {};\n sub {} simulates a Chime outage)\n{}\n",
                files.len(),
                replay::DEMO_APP_INSTANCE_ARN,
                replay::OUTAGE_SUB,
                EXCHANGE_DOUBLES
            );
            replay_and_print(replay, &files, times)
                .await
                .map_err(|e| e.at("the embedded directory"))
        }
    }
}

/// The replay against a real or local Chime endpoint (`--app-instance-arn`).
#[cfg(feature = "aws")]
async fn replay_against_chime(
    files: &[PathBuf],
    arn: &str,
    endpoint_url: Option<String>,
    times: u32,
) -> Result<(), Failure> {
    use chime_sync_core::{AppInstanceArn, InputError};
    let app_instance = AppInstanceArn::parse(arn).map_err(|e: InputError| e.to_string())?;
    let chime = chime_directory(app_instance, endpoint_url).await?;
    outln!(
        "Replaying {} event files against Chime at {}\n{}\n",
        files.len(),
        chime.endpoint,
        EXCHANGE_DOUBLES
    );
    let endpoint = chime.endpoint.to_string();
    replay_and_print(Replay::new(chime.directory), files, times)
        .await
        .map_err(|e| e.at(&endpoint))
}

/// In a replay-only build, the replay against a Chime endpoint is left out with the rest of AWS.
#[cfg(not(feature = "aws"))]
async fn replay_against_chime(
    _files: &[PathBuf],
    _arn: &str,
    _endpoint_url: Option<String>,
    _times: u32,
) -> Result<(), Failure> {
    Err(left_out("replay --app-instance-arn"))
}

/// Why a replay-only build refuses `command`, and how to build the CLI that has it.
/// Compiled in both builds so its unit test runs where the tests run (the full build).
#[cfg_attr(
    feature = "aws",
    allow(dead_code, reason = "the replay-only build's refusal")
)]
fn left_out(command: &str) -> Failure {
    format!(
        "`{command}` talks to AWS, and this chime-sync was built without its AWS commands \
         (--no-default-features, the quick build of the replay). Build the full CLI: \
         cargo run -p chime-sync -- {command} …"
    )
    .into()
}

/// A replayed event as a row names it: the file without `.json`, and an
/// SQS message by the end of its id (`fifo-two-groups#6a71`).
fn short_event(event: &str) -> String {
    let (file, message) = match event.split_once('#') {
        Some((file, message)) => (file, Some(message)),
        None => (event, None),
    };
    let file = file.strip_suffix(".json").unwrap_or(file);
    match message {
        Some(id) => {
            let tail: String = id
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("{file}#{tail}")
        }
        None => file.to_owned(),
    }
}

/// Why a replay stopped: files that could not be replayed, or the final
/// listing of the directory failed.
enum ReplayFailure {
    Files(usize),
    List(DirectoryError),
}

impl ReplayFailure {
    /// As a failure of the replay against `directory`.
    fn at(self, directory: &str) -> Failure {
        match self {
            Self::Files(n) => format!("{n} event files could not be replayed").into(),
            Self::List(e) => Failure::aws(
                format!("cannot list the users at {directory}"),
                &e,
                "chime:ListAppInstanceUsers",
            ),
        }
    }
}

/// How the credential-exchange samples are answered, said before every replay.
const EXCHANGE_DOUBLES: &str = "(credential-exchange samples: tokens checked against an EMBEDDED JWKS of demo\n \
keys, credentials from an STS DOUBLE that hands out fake keys; no identity provider, no AWS STS)";

async fn replay_and_print<D: Directory>(
    replay: Replay<D>,
    files: &[PathBuf],
    times: u32,
) -> Result<(), ReplayFailure> {
    let mut failed_files = 0;
    for round in 1..=times {
        if times > 1 {
            outln!("Round {round} of {times}");
        }
        failed_files += print_round(&replay, files).await;
    }
    print_final_directory(&replay).await?;
    print_side_effects(&replay);
    if failed_files > 0 {
        return Err(ReplayFailure::Files(failed_files));
    }
    Ok(())
}

/// Replay every file once and print a row per outcome; answers how many
/// files could not be replayed (each said on stderr).
async fn print_round<D: Directory>(replay: &Replay<D>, files: &[PathBuf]) -> usize {
    let mut failed_files = 0;
    let mut rows = Vec::new();
    for file in files {
        match replay.file(file).await {
            Ok(done) => rows.extend(done.rows.into_iter().map(|r| {
                [
                    short_event(&r.event),
                    r.source,
                    r.user
                        .map_or_else(|| "-".to_owned(), |u| u.chars().take(8).collect()),
                    r.outcome,
                ]
            })),
            Err(e) => {
                failed_files += 1;
                eprintln!("chime-sync: {e}");
            }
        }
    }
    let fit = table::Fit {
        caps: [Some(28), Some(20), Some(8), None],
        wrap: 3,
    };
    outln!(
        "{}",
        table::render(["EVENT", "SOURCE", "CHIME USER", "OUTCOME"], &rows, &fit)
    );
    failed_files
}

/// The directory's users after the replay.
async fn print_final_directory<D: Directory>(replay: &Replay<D>) -> Result<(), ReplayFailure> {
    let users = list_all(&replay.directory)
        .await
        .map_err(ReplayFailure::List)?;
    let user_rows: Vec<[String; 3]> = users
        .into_iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.name,
                if u.metadata.is_empty() {
                    "-".to_owned()
                } else {
                    u.metadata
                },
            ]
        })
        .collect();
    outln!("Final directory: {} users", user_rows.len());
    let fit = table::Fit {
        caps: [None, Some(24), None],
        wrap: 2,
    };
    outln!(
        "{}",
        table::render(
            ["APP INSTANCE USER ID (= sub)", "NAME", "METADATA"],
            &user_rows,
            &fit
        )
    );
    Ok(())
}

/// What the replay sent besides Chime: hand-offs, STS requests, dead letters.
fn print_side_effects<D: Directory>(replay: &Replay<D>) {
    let handed_off = replay.sync_queue.sent();
    outln!("Sync queue hand-offs: {}", handed_off.len());
    for m in &handed_off {
        outln!("  group {}", m.group_id);
        outln!("    dedup {}", m.deduplication_id);
    }
    let assumed = replay.sts.requests();
    outln!(
        "STS double (not AWS): {} AssumeRole requests",
        assumed.len()
    );
    for r in &assumed {
        let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!(
            "  session {}, {} s",
            r.role_session_name,
            r.duration.as_secs()
        );
        outln!("    tags {}", tags.join(","));
        outln!("    source identity {}", r.source_identity);
    }
    let dead = replay.dlq.sent();
    outln!("Dead-lettered messages: {}", dead.len());
    for m in &dead {
        let attr = |k: &str| m.attributes.get(k).map(String::as_str).unwrap_or("-");
        outln!("  {}  {}", attr("SourceMessageId"), attr("ErrorCode"));
        outln!(
            "    {}",
            table::shorten(attr("FailureReason"), table::WIDTH - 4)
        );
    }
}

/// `events/` in the working directory, else the one of this workspace (so
/// `cargo run -p chime-sync -- replay` works from any folder of the checkout).
fn default_events_dir() -> PathBuf {
    let here = PathBuf::from("events");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

pub(crate) fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every flag and argument of every command says what it is for in
    /// `--help`: an operator following a runbook reads nothing else.
    #[test]
    fn every_flag_has_help() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        check(&command, "chime-sync", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn a_replay_only_build_names_the_command_it_left_out_and_the_build_that_has_it() {
        let failure = left_out("reconcile");
        assert!(
            failure.line.starts_with("`reconcile` talks to AWS"),
            "{failure:?}"
        );
        assert!(
            failure.line.contains("--no-default-features"),
            "{failure:?}"
        );
        assert!(
            failure
                .line
                .ends_with("cargo run -p chime-sync -- reconcile …"),
            "{failure:?}"
        );
        assert_eq!(failure.detail, None);
    }

    #[test]
    fn replay_rows_name_events_briefly() {
        assert_eq!(short_event("alg-none.json"), "alg-none");
        assert_eq!(
            short_event("fifo.json#c9f5e3a7-4b6d-4e8f-9a0b-2c3d4e5f6a71"),
            "fifo#6a71"
        );
    }
}
