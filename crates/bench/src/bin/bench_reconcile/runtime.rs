//! The smallest mock of the Lambda Runtime API the measurement needs: one
//! queued event, its deadline, and the answer (response or error) with the
//! instant it arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

struct Shared {
    event: Mutex<Option<Bytes>>,
    timeout: Duration,
    answers: mpsc::UnboundedSender<(bool, Bytes)>,
    /// Long polls after the event wait here until the process is killed.
    parked: Mutex<Vec<oneshot::Sender<()>>>,
}

pub struct MockRuntime {
    pub addr: SocketAddr,
    answers: mpsc::UnboundedReceiver<(bool, Bytes)>,
}

impl MockRuntime {
    /// Serve `event` to the first `next` call, with a deadline `timeout` ahead.
    pub async fn start(event: Bytes, timeout: Duration) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            event: Mutex::new(Some(event)),
            timeout,
            answers: tx,
            parked: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, answers: rx })
    }

    /// The answer: `Ok(body)` for a response, `Err(body)` for an error report.
    pub async fn answer(&mut self) -> Result<Bytes, Bytes> {
        match self.answers.recv().await {
            Some((true, body)) => Ok(body),
            Some((false, body)) => Err(body),
            None => Err(Bytes::from_static(b"the mock Runtime API stopped")),
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let event = shared
        .event
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(event) = event else {
        let (tx, rx) = oneshot::channel();
        shared
            .parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        let _ = rx.await;
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(shared.timeout)
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", "bench-reconcile-1".into());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:reconcile".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".into(),
    );
    (headers, event).into_response()
}

async fn response(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send((true, body));
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send((false, body));
    StatusCode::ACCEPTED
}
