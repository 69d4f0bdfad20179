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
//!   deletions Cognito never announces. Exit 0 in sync, 2 changes, 1 error.
//! - `chime-sync restore (--user-pool-id ID | --users F)` cancels pending
//!   (grace) deletions of every active user.
//! - `chime-sync serve-fake --port N [--missing-user 403|404]` serves the local
//!   Chime SDK Identity fake for development
//!   (`AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY=http://127.0.0.1:N`).
//!
//!
//! A failure is one line on stderr; an AWS error says what to do about it
//! ([`aws_errors`]), and `--verbose` adds the SDK's full text. Output piped
//! into `head` ends quietly ([`out`]).

mod aws_errors;
mod endpoint;
mod inputs;
mod out;
mod ownership_cmd;
mod reconcile_cmd;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use aws_sdk_chimesdkidentity::config::{Credentials, SharedCredentialsProvider};
use chime_sync_aws::{ChimeConfig, ChimeDirectory, TrustRoots, sdk_config_loader};
use chime_sync_core::directory::{Directory, list_all};
use chime_sync_core::replay::{self, Replay};
use chime_sync_core::{AppInstanceArn, DirectoryError, InputError};
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
    /// (or --apply) the changes. Exit 0 in sync, 2 changes planned or applied, 1 error.
    Reconcile(reconcile_cmd::ReconcileArgs),
    /// Cancel the pending (grace) deletions of every active user: undo a mass deletion
    /// within its grace period.
    Restore(reconcile_cmd::RestoreArgs),
    /// Make a source the owner of the Chime users that predate ownership and that it
    /// lists, so its absence can delete them (a dry run unless --apply).
    Adopt(ownership_cmd::AdoptArgs),
    /// List or release the explicit deletions a feed breaker held back.
    Held(ownership_cmd::HeldArgs),
    /// Serve the local Chime SDK Identity fake until Ctrl-C.
    ServeFake {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 4566)]
        port: u16,
        /// How the fake answers a user that does not exist: 403 (Chime's
        /// ForbiddenException, the default) or 404 (NotFoundException).
        #[arg(long, default_value = "403")]
        missing_user: chime_identity_fake::MissingUserError,
    },
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay {
            paths,
            endpoint_url,
            app_instance_arn,
            times,
        } => run_replay(paths, endpoint_url, app_instance_arn, times)
            .await
            .map(|()| Status::Done),
        Command::Reconcile(args) => reconcile_cmd::reconcile(args).await,
        Command::Restore(args) => reconcile_cmd::restore(args).await,
        Command::Adopt(args) => ownership_cmd::adopt(args).await,
        Command::Held(args) => ownership_cmd::held(args).await,
        Command::ServeFake { port, missing_user } => {
            serve_fake(port, missing_user).await.map(|()| Status::Done)
        }
    };
    match result {
        Ok(Status::Done) => ExitCode::SUCCESS,
        Ok(Status::Changes) => ExitCode::from(2),
        Err(failure) => {
            failure.print(cli.verbose);
            ExitCode::FAILURE
        }
    }
}

/// How a command that did not fail ended: the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// 0: done, or in sync.
    Done,
    /// 2: changes planned or applied (reconcile, restore).
    Changes,
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
        Some(arn) => {
            let app_instance =
                AppInstanceArn::parse(&arn).map_err(|e: InputError| e.to_string())?;
            let chime = chime_directory(app_instance, endpoint_url).await?;
            outln!(
                "Replaying {} event files against Chime at {}\n{}\n",
                files.len(),
                chime.endpoint,
                EXCHANGE_DOUBLES
            );
            let endpoint = chime.endpoint.to_string();
            replay_and_print(Replay::new(chime.directory), &files, times)
                .await
                .map_err(|e| e.at(&endpoint))
        }
        None => {
            let replay = Replay::embedded().map_err(|e| e.to_string())?;
            outln!(
                "Replaying {} event files against the embedded in-memory directory\n\
                 (AppInstance {}; sub {} simulates a Chime outage)\n{}\n",
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
const EXCHANGE_DOUBLES: &str = "(credential-exchange samples: tokens checked against an EMBEDDED JWKS of demo keys, \
credentials from an STS DOUBLE that hands out fake keys; no identity provider, no AWS STS)";

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
        let mut rows = Vec::new();
        for file in files {
            match replay.file(file).await {
                Ok(done) => rows.extend(done.rows.into_iter().map(|r| {
                    [
                        r.event,
                        r.source,
                        r.outcome,
                        r.user.unwrap_or_else(|| "-".to_owned()),
                    ]
                })),
                Err(e) => {
                    failed_files += 1;
                    eprintln!("chime-sync: {e}");
                }
            }
        }
        outln!(
            "{}",
            table::render(["EVENT", "SOURCE", "OUTCOME", "CHIME USER"], &rows)
        );
    }
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
    outln!(
        "{}",
        table::render(
            ["APP INSTANCE USER ID (= sub)", "NAME", "METADATA"],
            &user_rows
        )
    );
    let handed_off = replay.sync_queue.sent();
    let dead = replay.dlq.sent();
    outln!("Sync queue hand-offs: {}", handed_off.len());
    for m in &handed_off {
        outln!("  group {}  dedup {}", m.group_id, m.deduplication_id);
    }
    let assumed = replay.sts.requests();
    outln!(
        "STS double (not AWS): {} AssumeRole requests",
        assumed.len()
    );
    for r in &assumed {
        let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!(
            "  session {}  tags {}  source identity {}  {} s",
            r.role_session_name,
            tags.join(","),
            r.source_identity,
            r.duration.as_secs()
        );
    }
    outln!("Dead-lettered messages: {}", dead.len());
    for m in &dead {
        let attr = |k: &str| m.attributes.get(k).map(String::as_str).unwrap_or("-");
        outln!(
            "  {}  {}: {}",
            attr("SourceMessageId"),
            attr("ErrorCode"),
            attr("FailureReason")
        );
    }
    if failed_files > 0 {
        return Err(ReplayFailure::Files(failed_files));
    }
    Ok(())
}

struct Chime {
    directory: ChimeDirectory,
    /// The endpoint the client calls, resolved as the SDK resolves it.
    endpoint: endpoint::Endpoint,
}

/// A Chime directory for the CLI, in the AppInstance's region (so no region
/// lookup, and no instance-metadata probe for one, happens).
///
/// Against an endpoint other than AWS's own (`--endpoint-url`,
/// `AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY`, …) with no credentials chosen in the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`), static placeholder
/// credentials sign the requests: local fakes accept any signature.
///
/// Unlike the functions, the CLI keeps aws-config's full chains (profiles, SSO-less web
/// identity, IMDS): it runs on laptops and CI. It shares their HTTPS stack, and so their
/// `SSL_CERT_FILE` rule; a bad `SSL_CERT_FILE` is the error.
async fn chime_directory(
    app_instance: AppInstanceArn,
    endpoint_url: Option<String>,
) -> Result<Chime, Failure> {
    let region = app_instance.region().to_owned();
    let sdk = load_sdk_config(&region).await?;
    let endpoint = endpoint::resolve(&sdk, endpoint_url.as_deref(), &region, |name| {
        std::env::var(name).ok()
    })
    .await;
    let local = !matches!(endpoint.source, endpoint::Source::Aws { .. });
    let sdk = with_placeholder_credentials(sdk, local);
    let config = ChimeConfig {
        endpoint_url,
        ..ChimeConfig::new(app_instance)
    };
    Ok(Chime {
        directory: ChimeDirectory::new(&sdk, config),
        endpoint,
    })
}

/// aws-config's full chains in `region`, over the functions' HTTPS stack
/// (`SSL_CERT_FILE` honoured; a bad one is the error).
async fn load_sdk_config(region: &str) -> Result<aws_config::SdkConfig, Failure> {
    let roots = TrustRoots::from_env().map_err(|e| e.to_string())?;
    Ok(sdk_config_loader(&roots)
        .map_err(|e| e.to_string())?
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await)
}

/// The AWS configuration for a client in `region`; see [`with_placeholder_credentials`].
async fn sdk_config(region: &str, local_endpoint: bool) -> Result<aws_config::SdkConfig, Failure> {
    Ok(with_placeholder_credentials(
        load_sdk_config(region).await?,
        local_endpoint,
    ))
}

/// Against an endpoint other than AWS's own, with no credentials chosen in
/// the environment (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`), static placeholder
/// credentials sign the requests: local fakes accept any signature.
fn with_placeholder_credentials(
    sdk: aws_config::SdkConfig,
    local_endpoint: bool,
) -> aws_config::SdkConfig {
    let chosen = |name| std::env::var_os(name).is_some_and(|v: std::ffi::OsString| !v.is_empty());
    if !local_endpoint || chosen("AWS_ACCESS_KEY_ID") || chosen("AWS_PROFILE") {
        return sdk;
    }
    let placeholder = Credentials::new("local", "local", None, None, "chime-sync-cli");
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(placeholder))
        .build()
}

/// Serve the fake until Ctrl-C. The port is bound before anything is
/// announced, so a busy port is one error line, not a banner and then an
/// error; the banner names the port actually bound (`--port 0` picks one).
async fn serve_fake(
    port: u16,
    missing_user: chime_identity_fake::MissingUserError,
) -> Result<(), Failure> {
    let config = chime_identity_fake::FakeConfig::default()
        .with_port(port)
        .with_missing_user(missing_user);
    let fake = chime_identity_fake::FakeChime::start(config)
        .await
        .map_err(|e| match e {
            chime_identity_fake::FakeError::Bind { addr, source } => format!(
                "cannot serve the fake on {addr}: {source} (is another serve-fake running? \
                 choose another --port)"
            ),
            other => other.to_string(),
        })?;
    let url = fake.endpoint_url();
    outln!(
        "Serving the Chime SDK Identity fake on {url} (Ctrl-C stops it; missing users \
         answer {})",
        missing_user.status_name()
    );
    outln!("  export AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY={url}");
    outln!(
        "  chime-sync replay --endpoint-url {url} --app-instance-arn {}",
        replay::DEMO_APP_INSTANCE_ARN
    );
    let stopped = tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"));
    fake.shutdown().await;
    stopped.map_err(Failure::from)
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
