//! A minimal mock of the Lambda Runtime API (2018-06-01) that timestamps answers.
//!
//! The harness in `tests/support` has a fuller mock for assertions; this one exists
//! because a benchmark needs something that one does not: the instant each answer
//! *arrived*, taken in the request handler, so a cold start is measured from `exec` to
//! the moment the first response was POSTed, not to when a test got round to looking.
//!
//! - `GET …/invocation/next` hands out queued events in order with Lambda's headers
//!   (`Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms` = now + the function timeout,
//!   `-Invoked-Function-Arn`, `-Trace-Id`), long-polling while none is queued.
//! - `POST …/invocation/{id}/response`, `…/{id}/error` and `…/init/error` are answered
//!   202 and reported, with their arrival instant, on a channel.
//!
//! One mock serves one process; dropping it wakes any pending long poll with an error,
//! so a killed child leaves nothing behind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// What kind of answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Response,
    Error,
    InitError,
}

/// One answer from the function, with the instant its request reached the handler.
#[derive(Debug, Clone)]
pub struct Answer {
    pub kind: AnswerKind,
    pub at: Instant,
    pub body: Bytes,
}

struct Queued {
    request_id: String,
    payload: Bytes,
}

struct Shared {
    function_arn: String,
    timeout: Duration,
    next: Mutex<mpsc::UnboundedReceiver<Queued>>,
    answers: mpsc::UnboundedSender<Answer>,
    stopped: watch::Receiver<bool>,
}

/// A running mock Runtime API on `127.0.0.1:0`.
pub struct MockRuntime {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Queued>,
    answers: mpsc::UnboundedReceiver<Answer>,
    ids: AtomicU64,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MockRuntime {
    /// Serve the Runtime API of `function_name`, whose invocations get `timeout`.
    pub async fn start(function_name: &str, timeout: Duration) -> std::io::Result<MockRuntime> {
        let (queue, next) = mpsc::unbounded_channel();
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"),
            timeout,
            next: Mutex::new(next),
            answers: answers_tx,
            stopped,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // TCP_NODELAY: without it a kept-alive exchange of small requests and answers
            // stalls ~40 ms on Nagle's algorithm meeting delayed ACKs.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mock Lambda Runtime API stopped: {e}");
            }
        });
        Ok(MockRuntime {
            addr,
            queue,
            answers,
            ids: AtomicU64::new(1),
            stop,
            task,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Queue one event payload.
    pub fn enqueue(&self, payload: impl Into<Bytes>) {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        // The receiver lives in the server's state as long as `self`.
        let _ = self.queue.send(Queued {
            request_id: format!("8f2c0a4e-1b3d-4e5f-9a7b-{n:012x}"),
            payload: payload.into(),
        });
    }

    /// The next answer, or `None` if none arrives within `within`.
    pub async fn answer(&mut self, within: Duration) -> Option<Answer> {
        tokio::time::timeout(within, self.answers.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for MockRuntime {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    let mut stopped = shared.stopped.clone();
    let queued = {
        let mut next = shared.next.lock().await;
        tokio::select! {
            queued = next.recv() => queued,
            _ = stopped.wait_for(|s| *s) => None,
        }
    };
    let Some(queued) = queued else {
        return (StatusCode::GONE, "the benchmark is over").into_response();
    };
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(shared.timeout)
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", queued.request_id.clone());
    put("lambda-runtime-deadline-ms", deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    put(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".to_owned(),
    );
    put("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, queued.payload).into_response()
}

async fn response(state: State<Arc<Shared>>, _id: Path<String>, body: Bytes) -> StatusCode {
    record(state, body, AnswerKind::Response)
}

async fn error(state: State<Arc<Shared>>, _id: Path<String>, body: Bytes) -> StatusCode {
    record(state, body, AnswerKind::Error)
}

async fn init_error(state: State<Arc<Shared>>, body: Bytes) -> StatusCode {
    record(state, body, AnswerKind::InitError)
}

/// The arrival instant is taken here, once the body has been read.
fn record(State(shared): State<Arc<Shared>>, body: Bytes, kind: AnswerKind) -> StatusCode {
    let _ = shared.answers.send(Answer {
        kind,
        at: Instant::now(),
        body,
    });
    StatusCode::ACCEPTED
}
