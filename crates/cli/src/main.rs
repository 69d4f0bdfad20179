//! `chime-sync`: the operator's and the newcomer's entry point.
//!
//! - `chime-sync replay [PATH…]` runs AWS-shaped sample events (default:
//!   `events/`) through the real handlers against an embedded in-memory
//!   directory and prints what each did and the final directory; with
//!   `--endpoint-url`/`--app-instance-arn` the same run talks to a real or
//!   local Chime SDK Identity endpoint instead.
//! - `chime-sync reconcile (--cognito-export F | --users F) --app-instance-arn A`
//!   compares a full user export with the directory and prints the plan;
//!   `--apply` carries it out. It covers the users no trigger provisions
//!   (AdminCreateUser, federated) and deletions Cognito never announces.
//! - `chime-sync serve-fake --port N` serves the local Chime SDK Identity fake
//!   for development (`AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY=http://127.0.0.1:N`).

mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use chime_sync_aws::{ChimeConfig, ChimeDirectory, TrustRoots, sdk_config_loader};
use chime_sync_core::directory::{Directory, list_all};
use chime_sync_core::replay::{self, Replay};
use chime_sync_core::{AppInstanceArn, DisplayNamePolicy, InputError, reconcile};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chime-sync",
    version,
    about = "Keep Amazon Chime SDK users in step with Cognito and your IdP"
)]
struct Cli {
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
        #[arg(long, default_value_t = 1)]
        times: u32,
    },
    /// Compare a full user export with Chime and print (or --apply) the changes.
    Reconcile {
        /// Output of `aws cognito-idp list-users --user-pool-id ID --output json`.
        #[arg(long)]
        cognito_export: Option<PathBuf>,
        /// JSON lines of schema-v1 user objects: {"sub", "displayName", "metadata"?}.
        #[arg(long)]
        users: Option<PathBuf>,
        #[arg(long)]
        app_instance_arn: String,
        #[arg(long)]
        endpoint_url: Option<String>,
        /// Carry out the plan (default: only print it).
        #[arg(long)]
        apply: bool,
        /// Also delete Chime users that are not in the export.
        #[arg(long)]
        delete_missing: bool,
        /// Attribute order for display names (as DISPLAY_NAME_ATTRIBUTES).
        #[arg(long)]
        display_name_attributes: Option<String>,
    },
    /// Serve the local Chime SDK Identity fake until Ctrl-C.
    ServeFake {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 4566)]
        port: u16,
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
    let result = match Cli::parse().command {
        Command::Replay {
            paths,
            endpoint_url,
            app_instance_arn,
            times,
        } => run_replay(paths, endpoint_url, app_instance_arn, times).await,
        Command::Reconcile {
            cognito_export,
            users,
            app_instance_arn,
            endpoint_url,
            apply,
            delete_missing,
            display_name_attributes,
        } => {
            let options = ReconcileOptions {
                apply,
                delete_missing,
                display_name_attributes,
            };
            match (cognito_export, users) {
                (Some(path), None) => {
                    run_reconcile(
                        ExportSource::Cognito(path),
                        app_instance_arn,
                        endpoint_url,
                        options,
                    )
                    .await
                }
                (None, Some(path)) => {
                    run_reconcile(
                        ExportSource::UserLines(path),
                        app_instance_arn,
                        endpoint_url,
                        options,
                    )
                    .await
                }
                _ => Err("give exactly one of --cognito-export or --users".to_owned()),
            }
        }
        Command::ServeFake { port } => serve_fake(port).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chime-sync: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_replay(
    paths: Vec<PathBuf>,
    endpoint_url: Option<String>,
    app_instance_arn: Option<String>,
    times: u32,
) -> Result<(), String> {
    let paths = if paths.is_empty() {
        vec![default_events_dir()]
    } else {
        paths
    };
    let files = replay::collect_files(&paths).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!("no .json event files under {}", show_paths(&paths)));
    }
    match app_instance_arn {
        Some(arn) => {
            let app_instance =
                AppInstanceArn::parse(&arn).map_err(|e: InputError| e.to_string())?;
            let directory = chime_directory(app_instance, endpoint_url).await?;
            println!(
                "Replaying {} event files against Chime at {}\n",
                files.len(),
                directory.endpoint
            );
            replay_and_print(Replay::new(directory.directory), &files, times).await
        }
        None => {
            let replay = Replay::embedded().map_err(|e| e.to_string())?;
            println!(
                "Replaying {} event files against the embedded in-memory directory\n\
                 (AppInstance {}; sub {} simulates a Chime outage)\n",
                files.len(),
                replay::DEMO_APP_INSTANCE_ARN,
                replay::OUTAGE_SUB
            );
            replay_and_print(replay, &files, times).await
        }
    }
}

async fn replay_and_print<D: Directory>(
    replay: Replay<D>,
    files: &[PathBuf],
    times: u32,
) -> Result<(), String> {
    let mut failed_files = 0;
    for round in 1..=times.max(1) {
        if times > 1 {
            println!("Round {round} of {times}");
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
        println!(
            "{}",
            table::render(["EVENT", "SOURCE", "OUTCOME", "CHIME USER"], &rows)
        );
    }
    let users = list_all(&replay.directory)
        .await
        .map_err(|e| format!("cannot list the directory: {e}"))?;
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
    println!("Final directory: {} users", user_rows.len());
    println!(
        "{}",
        table::render(
            ["APP INSTANCE USER ID (= sub)", "NAME", "METADATA"],
            &user_rows
        )
    );
    let handed_off = replay.sync_queue.sent();
    let dead = replay.dlq.sent();
    println!("Sync queue hand-offs: {}", handed_off.len());
    for m in &handed_off {
        println!("  group {}  dedup {}", m.group_id, m.deduplication_id);
    }
    println!("Dead-lettered messages: {}", dead.len());
    for m in &dead {
        let attr = |k: &str| m.attributes.get(k).map(String::as_str).unwrap_or("-");
        println!(
            "  {}  {}: {}",
            attr("SourceMessageId"),
            attr("ErrorCode"),
            attr("FailureReason")
        );
    }
    if failed_files > 0 {
        return Err(format!("{failed_files} event files could not be replayed"));
    }
    Ok(())
}

enum ExportSource {
    Cognito(PathBuf),
    UserLines(PathBuf),
}

struct ReconcileOptions {
    apply: bool,
    delete_missing: bool,
    display_name_attributes: Option<String>,
}

async fn run_reconcile(
    source: ExportSource,
    app_instance_arn: String,
    endpoint_url: Option<String>,
    options: ReconcileOptions,
) -> Result<(), String> {
    let names = match &options.display_name_attributes {
        Some(spec) => DisplayNamePolicy::parse(spec).map_err(|e| e.to_string())?,
        None => DisplayNamePolicy::default(),
    };
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
    };
    let (desired, skipped) = match &source {
        ExportSource::Cognito(path) => reconcile::from_cognito_export(&read(path)?, &names)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        ExportSource::UserLines(path) => reconcile::from_user_lines(&read(path)?),
    };
    for s in &skipped {
        eprintln!("skipped entry {}: {}", s.position, s.reason);
    }
    let app_instance = AppInstanceArn::parse(&app_instance_arn).map_err(|e| e.to_string())?;
    let endpoint = chime_directory(app_instance, endpoint_url).await?;
    let current = list_all(&endpoint.directory)
        .await
        .map_err(|e| format!("cannot list users at {}: {e}", endpoint.endpoint))?;
    let plan = reconcile::plan(&desired, &current, options.delete_missing);
    println!(
        "{} users in the export, {} in Chime at {}: {} to change, {} unchanged, {} only in Chime{}",
        desired.len(),
        current.len(),
        endpoint.endpoint,
        plan.actions.len(),
        plan.unchanged,
        plan.extra_kept,
        if options.delete_missing {
            ""
        } else {
            " (kept; --delete-missing removes them)"
        }
    );
    if !options.apply {
        let rows: Vec<[String; 2]> = plan
            .actions
            .iter()
            .map(|a| [a.verb().to_owned(), a.user_id().to_string()])
            .collect();
        println!("{}", table::render(["ACTION", "CHIME USER"], &rows));
        println!("Dry run: nothing changed. Run again with --apply to carry out the plan.");
        return Ok(());
    }
    let results = reconcile::apply(&endpoint.directory, &plan).await;
    let failures = results.iter().filter(|(_, r)| r.is_err()).count();
    let rows: Vec<[String; 3]> = results
        .into_iter()
        .map(|(action, result)| {
            let outcome = match result {
                Ok(applied) => applied.as_str().to_owned(),
                Err(e) => format!("failed: {e}"),
            };
            [
                action.verb().to_owned(),
                action.user_id().to_string(),
                outcome,
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(["ACTION", "CHIME USER", "OUTCOME"], &rows)
    );
    if failures > 0 {
        return Err(format!(
            "{failures} changes failed; run reconcile again to retry them"
        ));
    }
    Ok(())
}

struct Endpoint {
    directory: ChimeDirectory,
    endpoint: String,
}

/// A Chime directory for the CLI. With `--endpoint-url` and no credentials in
/// the environment, static placeholder credentials are used: local fakes
/// accept any signature, and nothing is sent anywhere else.
///
/// Unlike the functions, the CLI keeps aws-config's full chains (profiles, SSO-less web
/// identity, IMDS): it runs on laptops and CI. It shares their HTTPS stack, and so their
/// `SSL_CERT_FILE` rule; a bad `SSL_CERT_FILE` is the error.
async fn chime_directory(
    app_instance: AppInstanceArn,
    endpoint_url: Option<String>,
) -> Result<Endpoint, String> {
    let roots = TrustRoots::from_env().map_err(|e| e.to_string())?;
    let mut loader = sdk_config_loader(&roots).map_err(|e| e.to_string())?;
    if endpoint_url.is_some() && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_sdk_chimesdkidentity::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "chime-sync-cli",
        ));
    }
    let sdk = loader.load().await;
    let endpoint = endpoint_url
        .clone()
        .unwrap_or_else(|| format!("AWS ({})", app_instance.region()));
    let config = ChimeConfig {
        endpoint_url,
        ..ChimeConfig::new(app_instance)
    };
    Ok(Endpoint {
        directory: ChimeDirectory::new(&sdk, config),
        endpoint,
    })
}

async fn serve_fake(port: u16) -> Result<(), String> {
    println!("Serving the Chime SDK Identity fake on http://127.0.0.1:{port} (Ctrl-C stops it)");
    println!("  export AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY=http://127.0.0.1:{port}");
    println!(
        "  chime-sync replay --endpoint-url http://127.0.0.1:{port} --app-instance-arn {}",
        replay::DEMO_APP_INSTANCE_ARN
    );
    chime_identity_fake::serve(port, chime_identity_fake::FakeConfig::default())
        .await
        .map_err(|e| e.to_string())
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

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
