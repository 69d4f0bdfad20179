//! `chime-sync serve-fake`: the Chime fake and, on the same port, the local
//! loop's other services ([`crate::local_loop`]), until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;

use chime_identity_fake::{FakeChime, FakeConfig, FakeError, MissingAnswer};
use chime_sync_core::replay::{DEMO_APP_INSTANCE_ARN, DEMO_POOL_ID};

use crate::Failure;
use crate::local_loop::LocalLoop;
use crate::out::outln;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeFakeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4566)]
    port: u16,
    /// How the fake answers a user that does not exist: 403 (Chime's
    /// ForbiddenException, the default) or 404 (NotFoundException).
    #[arg(long, default_value = "403")]
    missing_user: MissingAnswer,
    /// Where to write the local loop's files: `lambda.env` (for `cargo lambda
    /// watch --env-file`) and `credential-exchange.json` (a request bearing
    /// the demo token).
    #[arg(long, value_name = "DIR", default_value = "target/local-loop")]
    files: PathBuf,
}

/// Serve until Ctrl-C. The port is bound before anything is announced, so a
/// busy port is one error line, not a banner and then an error; the banner
/// names the port actually bound.
pub(crate) async fn serve_fake(args: ServeFakeArgs) -> Result<(), Failure> {
    let port = match args.port {
        // The identity provider's issuer names the port, so it must be known
        // before the server starts: ask the system for a free one.
        0 => free_port()?,
        port => port,
    };
    let origin = format!("http://127.0.0.1:{port}");
    let local = LocalLoop::new(&origin)?;
    let config = FakeConfig::default()
        .with_port(port)
        .with_missing_user(args.missing_user)
        .with_neighbours(local.router());
    let fake = FakeChime::start(config).await.map_err(|e| match e {
        FakeError::Bind { addr, source } => format!(
            "cannot serve the fake on {addr}: {source} (is another serve-fake running? \
             choose another --port)"
        ),
        other => other.to_string(),
    })?;
    let files = local.write_files(&args.files)?;
    outln!("Serving on {origin} until Ctrl-C:");
    outln!(
        "  Chime SDK Identity (a missing user answers {})",
        args.missing_user.status_name()
    );
    outln!("  Cognito (pool {DEMO_POOL_ID}), STS, SQS (sync.fifo, sync-dlq.fifo)");
    outln!("  an OIDC issuer, {origin}/idp");
    outln!("Try:");
    outln!("  export AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY={origin}");
    outln!(
        "  chime-sync replay --endpoint-url {origin} --app-instance-arn {DEMO_APP_INSTANCE_ARN}"
    );
    outln!("  cargo lambda watch --env-file {}", files[0].display());
    outln!(
        "  cargo lambda invoke credential-exchange --data-file {}",
        files[1].display()
    );
    outln!("  DEMO_TOKEN={}", local.demo_token()?);
    let stopped = tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"));
    fake.shutdown().await;
    stopped.map_err(Failure::from)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}
