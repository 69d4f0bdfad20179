//! Listening, serving connections and the handle that controls a running fake.
//!
//! Connections are served with hyper directly rather than `axum::serve` for two reasons: a
//! dropped-connection fault must close the socket without any response, which only a failing
//! hyper service can do, and shutdown must not wait for idle keep-alive connections that SDK
//! clients hold in their pools.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::FakeConfig;
use crate::control::control_router;
use crate::counters::Counters;
use crate::error::{ERROR_TYPE_HEADER, FakeError};
use crate::faults::FaultConfig;
use crate::middleware::{DropConnection, faults_and_counters};
use crate::model::UserRecord;
use crate::routes::api_router;
use crate::state::Shared;

/// The error a hyper service returns to close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct ConnectionDropped;

/// Answer for requests no operation serves (unknown path or method), in the service's error
/// shape.
async fn unknown_operation() -> Response {
    let body = serde_json::json!({ "Code": "NotFound", "Message": "No such operation in the fake Chime SDK Identity API" });
    let mut response = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    response.headers_mut().insert(
        ERROR_TYPE_HEADER,
        HeaderValue::from_static("UnknownOperationException"),
    );
    response
}

fn router(shared: Arc<Shared>, neighbours: Option<Router>) -> Router {
    let api = api_router().route_layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        faults_and_counters,
    ));
    let chime = api
        .merge(control_router())
        .method_not_allowed_fallback(unknown_operation)
        .with_state(shared);
    match neighbours {
        Some(neighbours) => chime.fallback_service(neighbours.fallback(unknown_operation)),
        None => chime.fallback(unknown_operation),
    }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    // Best effort: only latency suffers if it fails.
    let _ = stream.set_nodelay(true);
    let inner = TowerToHyperService::new(router);
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let response = inner.call(request);
        async move {
            match response.await {
                Ok(response) if response.extensions().get::<DropConnection>().is_some() => {
                    Err(ConnectionDropped)
                }
                Ok(response) => Ok(response),
                Err(never) => match never {},
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    if let Err(err) = connection.await {
        tracing::debug!(%err, "fake Chime connection ended");
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                Err(err) => {
                    // e.g. too many open files: back off instead of spinning.
                    tracing::warn!(%err, "fake Chime server cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Starts fakes. A unit type so the entry point reads `FakeChime::start(config)`.
#[derive(Debug, Clone, Copy)]
pub struct FakeChime;

impl FakeChime {
    /// Binds `config.bind` and serves the fake on the current tokio runtime until the handle is
    /// shut down or dropped.
    pub async fn start(config: FakeConfig) -> Result<FakeChimeHandle, FakeError> {
        config.faults.validate()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| FakeError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(FakeError::LocalAddr)?;
        let shared = Arc::new(Shared::new(&config));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            router(shared.clone(), config.neighbours.clone()),
            stopped,
        ));
        tracing::debug!(%addr, "fake Chime SDK Identity server started");
        Ok(FakeChimeHandle {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// Controls a running fake. Dropping it stops the server (open connections are closed).
#[derive(Debug)]
pub struct FakeChimeHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeChimeHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`: what to give the SDK as `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every user, ordered by AppInstance then id.
    pub fn users(&self) -> Vec<UserRecord> {
        self.shared.users()
    }

    /// A snapshot of the per-operation counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// The active fault configuration (with what is left of the script).
    pub fn faults(&self) -> FaultConfig {
        self.shared.faults().0
    }

    /// Replaces the faults from the next request on; restarts the generator from the new seed
    /// and refills the TPS bucket.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), FakeError> {
        self.shared.set_faults(faults)
    }

    /// The fake's time in epoch seconds: the system clock plus every
    /// [`FakeChimeHandle::advance_clock`].
    pub fn now_epoch_secs(&self) -> f64 {
        self.shared.now_epoch_secs()
    }

    /// Moves the fake's clock forward, then deletes every user whose expiration has passed
    /// (Chime's background deletion, which the real service runs within hours); returns them.
    pub fn advance_clock(&self, by: std::time::Duration) -> Vec<UserRecord> {
        self.shared.advance_clock(by)
    }

    /// Forgets all users, zeroes the counters and sets the clock back; faults stay as they are.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Zeroes the counters only: users and faults stay.
    pub fn reset_counters(&self) {
        self.shared
            .with_counters(|counters| *counters = Counters::default());
    }

    /// Stops accepting, closes open connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; either way it is stopping.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // A cancelled or panicked task is stopped too; nothing more to do.
            let _ = task.await;
        }
    }
}

impl Drop for FakeChimeHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves the fake on `127.0.0.1:{port}` until Ctrl-C; what `chime-sync serve-fake --port N`
/// runs. Port 0 picks a free port (logged at `info`). `config.bind`'s port is replaced by `port`.
pub async fn serve(port: u16, config: FakeConfig) -> Result<(), FakeError> {
    let handle = FakeChime::start(config.with_port(port)).await?;
    tracing::info!(endpoint = %handle.endpoint_url(), "fake Chime SDK Identity server listening; Ctrl-C stops it");
    let waited = tokio::signal::ctrl_c().await.map_err(FakeError::Signal);
    handle.shutdown().await;
    waited
}

/// Serves the fake on `config.bind` until `shutdown` completes.
pub async fn serve_until(
    config: FakeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FakeError> {
    let handle = FakeChime::start(config).await?;
    tracing::info!(endpoint = %handle.endpoint_url(), "fake Chime SDK Identity server listening");
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}
