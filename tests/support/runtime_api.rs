//! A mock of the Lambda Runtime API (2018-06-01), for running the real
//! bootstrap binaries as Lambda runs them.
//!
//! - `GET /2018-06-01/runtime/invocation/next` hands out queued events, in
//!   order, with the headers Lambda sends: `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms` (now + the function timeout, when the event
//!   is handed out; or a fixed value, as local emulators send, see
//!   [`RuntimeApi::send_deadline_header`]), `Lambda-Runtime-Invoked-Function-Arn` and
//!   `Lambda-Runtime-Trace-Id`. With nothing queued it long-polls, as the real
//!   API does, until an event is queued or the test ends.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/{id}/error`
//!   and `POST /2018-06-01/runtime/init/error` are recorded; tests wait for
//!   them with a bound.
//! - Anything else, a second answer to one invocation, or an answer to an id
//!   never handed out is a protocol violation: answered 400/404 and recorded
//!   ([`RuntimeApi::violations`]).
//!
//! The server runs on the test's tokio runtime on `127.0.0.1:0`; dropping the
//! handle stops it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

/// The account and region in the function ARNs the mock hands out.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST …/response`: the body (JSON, or a JSON string of the raw text).
    Response(Value),
    /// `POST …/error`.
    Error(ErrorReport),
}

impl Outcome {
    /// The response body; panics (with the error report) if it was an error.
    pub fn response(&self) -> &Value {
        match self {
            Outcome::Response(body) => body,
            Outcome::Error(e) => panic!("expected a response, got an error report: {e:?}"),
        }
    }

    /// The error report; panics (with the response) if it was a response.
    pub fn error(&self) -> &ErrorReport {
        match self {
            Outcome::Error(e) => e,
            Outcome::Response(body) => panic!("expected an error report, got a response: {body}"),
        }
    }
}

/// An error report (`/invocation/{id}/error` or `/init/error`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReport {
    /// `errorType` of the JSON body.
    pub error_type: String,
    /// `errorMessage` of the JSON body.
    pub error_message: String,
    /// The `Lambda-Runtime-Function-Error-Type` header, if sent.
    pub header_error_type: Option<String>,
    /// The whole body.
    pub body: Value,
}

/// What the mock has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Answers by request id.
    pub outcomes: HashMap<String, Outcome>,
    /// `/init/error` reports, in arrival order.
    pub init_errors: Vec<ErrorReport>,
    /// Request ids in the order they were handed out.
    pub handed_out: Vec<String>,
    /// How many `next` requests arrived (including the one still waiting).
    pub next_polls: usize,
    /// Protocol violations, in arrival order.
    pub violations: Vec<String>,
}

struct Queued {
    request_id: String,
    payload: Bytes,
}

struct Shared {
    function_arn: String,
    timeout: Duration,
    queue: mpsc::UnboundedSender<Queued>,
    next: Mutex<mpsc::UnboundedReceiver<Queued>>,
    seen: watch::Sender<Seen>,
    ids: AtomicU64,
    /// A fixed `Lambda-Runtime-Deadline-Ms` value; 0: now + the timeout.
    fixed_deadline_ms: AtomicU64,
}

/// A running mock Runtime API.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl RuntimeApi {
    /// Serve the Runtime API of function `function_name` with the given
    /// timeout (which sets each invocation's deadline).
    pub async fn start(function_name: &str, timeout: Duration) -> RuntimeApi {
        let (queue, next) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"),
            timeout,
            queue,
            next: Mutex::new(next),
            seen: watch::Sender::new(Seen::default()),
            ids: AtomicU64::new(1),
            fixed_deadline_ms: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(unknown)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mock Runtime API on 127.0.0.1:0");
        let addr = listener.local_addr().expect("mock Runtime API address");
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mock Lambda Runtime API stopped: {e}");
            }
        });
        RuntimeApi { addr, shared, task }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The ARN handed out as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn function_arn(&self) -> &str {
        &self.shared.function_arn
    }

    /// From the next event on, send `value` as `Lambda-Runtime-Deadline-Ms`
    /// instead of now + the timeout: what a local emulator does
    /// (cargo-lambda's sends `600000`, a duration, not an epoch time).
    pub fn send_deadline_header(&self, value: u64) {
        self.shared
            .fixed_deadline_ms
            .store(value, Ordering::Relaxed);
    }

    /// Queue an event; returns its request id.
    pub fn enqueue(&self, event: &Value) -> String {
        self.enqueue_raw(Bytes::from(event.to_string()))
    }

    /// Queue a raw payload (which need not be JSON); returns its request id.
    pub fn enqueue_raw(&self, payload: Bytes) -> String {
        let n = self.shared.ids.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("8f2c0a4e-1b3d-4e5f-9a7b-{n:012x}");
        self.shared
            .queue
            .send(Queued {
                request_id: request_id.clone(),
                payload,
            })
            .expect("the mock Runtime API's queue is open while the handle lives");
        request_id
    }

    /// Wait up to `within` for the answer to `request_id`.
    pub async fn outcome(&self, request_id: &str, within: Duration) -> Outcome {
        let mut seen = self.shared.seen.subscribe();
        let waited = tokio::time::timeout(
            within,
            seen.wait_for(|s| s.outcomes.contains_key(request_id)),
        )
        .await;
        match waited {
            Ok(Ok(seen)) => seen.outcomes[request_id].clone(),
            _ => panic!(
                "no answer to invocation {request_id} within {within:?}; the mock saw: {:?}",
                self.seen()
            ),
        }
    }

    /// Queue `event` and wait up to `within` for its answer.
    pub async fn invoke(&self, event: &Value, within: Duration) -> Outcome {
        let id = self.enqueue(event);
        self.outcome(&id, within).await
    }

    /// Wait up to `within` for the first `/init/error` report.
    pub async fn init_error(&self, within: Duration) -> ErrorReport {
        let mut seen = self.shared.seen.subscribe();
        let waited =
            tokio::time::timeout(within, seen.wait_for(|s| !s.init_errors.is_empty())).await;
        match waited {
            Ok(Ok(seen)) => seen.init_errors[0].clone(),
            _ => panic!(
                "no /init/error within {within:?}; the mock saw: {:?}",
                self.seen()
            ),
        }
    }

    /// Wait up to `within` until the function has polled `next` at least `n`
    /// times (it is then waiting for invocation number `n`).
    pub async fn wait_for_polls(&self, n: usize, within: Duration) {
        let mut seen = self.shared.seen.subscribe();
        let waited = tokio::time::timeout(within, seen.wait_for(|s| s.next_polls >= n)).await;
        if !matches!(waited, Ok(Ok(_))) {
            panic!(
                "the function did not poll /invocation/next {n} times within {within:?}; \
                 the mock saw: {:?}",
                self.seen()
            );
        }
    }

    /// A snapshot of everything seen so far.
    pub fn seen(&self) -> Seen {
        self.shared.seen.borrow().clone()
    }

    /// Protocol violations seen so far (none in a correct runtime).
    pub fn violations(&self) -> Vec<String> {
        self.shared.seen.borrow().violations.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    shared.seen.send_modify(|s| s.next_polls += 1);
    // One poller at a time, as in Lambda; the lock is held while waiting.
    let mut next = shared.next.lock().await;
    let Some(queued) = next.recv().await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "mock Runtime API closed").into_response();
    };
    drop(next);
    let deadline = match shared.fixed_deadline_ms.load(Ordering::Relaxed) {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(shared.timeout)
            .as_millis(),
        fixed => u128::from(fixed),
    };
    shared
        .seen
        .send_modify(|s| s.handed_out.push(queued.request_id.clone()));
    let mut response = Response::new(axum::body::Body::from(queued.payload));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        headers.insert(
            name,
            HeaderValue::from_str(&value).expect("header values are ASCII"),
        );
    };
    set("content-type", "application/json".to_owned());
    set("lambda-runtime-aws-request-id", queued.request_id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    // X-Ray's format: Root=1-{epoch seconds, 8 hex}-{24 hex};Parent={16 hex};Sampled=0.
    let serial = &queued.request_id[queued.request_id.len() - 12..];
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-000000000000{serial};Parent=00000000{};Sampled=0",
            (deadline / 1000) as u32,
            &serial[4..]
        ),
    );
    response
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    record(&shared, &id, Outcome::Response(body))
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, &id, Outcome::Error(report(&headers, &body)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let report = report(&headers, &body);
    shared.seen.send_modify(|s| s.init_errors.push(report));
    accepted()
}

async fn unknown(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let what = format!("{method} {uri}");
    shared.seen.send_modify(|s| {
        s.violations
            .push(format!("request to an unknown path: {what}"))
    });
    (
        StatusCode::NOT_FOUND,
        format!("the mock Runtime API does not serve {what}"),
    )
        .into_response()
}

fn record(shared: &Shared, id: &str, outcome: Outcome) -> Response {
    let mut status = StatusCode::ACCEPTED;
    shared.seen.send_modify(|s| {
        if !s.handed_out.iter().any(|h| h == id) {
            s.violations
                .push(format!("answer to invocation {id}, never handed out"));
            status = StatusCode::BAD_REQUEST;
        } else if s.outcomes.contains_key(id) {
            s.violations
                .push(format!("second answer to invocation {id}: {outcome:?}"));
            status = StatusCode::BAD_REQUEST;
        } else {
            s.outcomes.insert(id.to_owned(), outcome);
        }
    });
    if status == StatusCode::ACCEPTED {
        accepted()
    } else {
        (
            status,
            r#"{"errorMessage":"invalid request id","errorType":"InvalidRequestID"}"#,
        )
            .into_response()
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

fn report(headers: &HeaderMap, body: &[u8]) -> ErrorReport {
    let body: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    ErrorReport {
        error_type: field("errorType"),
        error_message: field("errorMessage"),
        header_error_type: headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    }
}
