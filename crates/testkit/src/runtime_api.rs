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
//! - Every such `POST` is also kept as an [`Answer`] with the [`Instant`] it
//!   arrived, taken in the request handler, and handed out in arrival order by
//!   [`RuntimeApi::next_answer`]: what the benchmarks measure a cold start up to
//!   (exec → the first response reaching the API), not to when a test got round
//!   to looking.
//! - Anything else, a second answer to one invocation, or an answer to an id
//!   never handed out is a protocol violation: answered 400/404 and recorded
//!   ([`RuntimeApi::violations`]).
//!
//! The server runs on the caller's tokio runtime on `127.0.0.1:0`, with
//! `TCP_NODELAY` on every connection (without it a kept-alive exchange of small
//! requests stalls on Nagle's algorithm meeting delayed ACKs). Dropping the
//! handle stops it and answers a pending long poll `410 Gone`, so a function
//! left running is not stuck on a connection nobody will answer.

use std::collections::HashMap;
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

/// Which endpoint an [`Answer`] was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// `POST /invocation/{id}/response`.
    Response,
    /// `POST /invocation/{id}/error`.
    Error,
    /// `POST /init/error`.
    InitError,
}

/// One answer the function posted, as it arrived.
#[derive(Debug, Clone)]
pub struct Answer {
    pub kind: AnswerKind,
    /// The invocation answered (`None` for `/init/error`).
    pub request_id: Option<String>,
    /// When the request reached the mock's handler, its body read: the instant
    /// a benchmark measures up to.
    pub at: Instant,
    /// The body exactly as sent.
    pub body: Bytes,
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
    /// Every answer posted, in arrival order ([`RuntimeApi::next_answer`]).
    answers: mpsc::UnboundedSender<Answer>,
    /// Set when the handle is dropped: pending long polls give up.
    stopped: watch::Receiver<bool>,
}

/// A running mock Runtime API.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    answers: Mutex<mpsc::UnboundedReceiver<Answer>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RuntimeApi {
    /// Serve the Runtime API of function `function_name` with the given
    /// timeout (which sets each invocation's deadline); panics if it cannot
    /// listen on `127.0.0.1:0` ([`RuntimeApi::try_start`] returns the error).
    pub async fn start(function_name: &str, timeout: Duration) -> RuntimeApi {
        RuntimeApi::try_start(function_name, timeout)
            .await
            .expect("bind the mock Runtime API on 127.0.0.1:0")
    }

    /// [`RuntimeApi::start`], returning the error if it cannot listen.
    pub async fn try_start(function_name: &str, timeout: Duration) -> std::io::Result<RuntimeApi> {
        let (queue, next) = mpsc::unbounded_channel();
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"),
            timeout,
            queue,
            next: Mutex::new(next),
            seen: watch::Sender::new(Seen::default()),
            ids: AtomicU64::new(1),
            fixed_deadline_ms: AtomicU64::new(0),
            answers: answers_tx,
            stopped,
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mock Lambda Runtime API stopped: {e}");
            }
        });
        Ok(RuntimeApi {
            addr,
            shared,
            answers: Mutex::new(answers),
            stop,
            task,
        })
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

    /// The next answer posted (a response, an error report or an init error,
    /// including those refused as violations), in arrival order, each taken
    /// once; `None` if none arrives within `within`. Its [`Answer::at`] was
    /// taken when the request reached the handler, however late this is called.
    pub async fn next_answer(&self, within: Duration) -> Option<Answer> {
        tokio::time::timeout(within, async { self.answers.lock().await.recv().await })
            .await
            .ok()
            .flatten()
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
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    shared.seen.send_modify(|s| s.next_polls += 1);
    let mut stopped = shared.stopped.clone();
    // One poller at a time, as in Lambda; the lock is held while waiting.
    let queued = {
        let mut next = shared.next.lock().await;
        tokio::select! {
            queued = next.recv() => queued,
            _ = stopped.wait_for(|s| *s) => None,
        }
    };
    let Some(queued) = queued else {
        return (StatusCode::GONE, "the mock Runtime API is stopped").into_response();
    };
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

// Each answer's arrival instant is the first thing its handler takes, once axum
// has read the body.

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let parsed = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let response = record(&shared, &id, Outcome::Response(parsed));
    keep_answer(&shared, AnswerKind::Response, Some(id), at, body);
    response
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let response = record(&shared, &id, Outcome::Error(report(&headers, &body)));
    keep_answer(&shared, AnswerKind::Error, Some(id), at, body);
    response
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let report = report(&headers, &body);
    shared.seen.send_modify(|s| s.init_errors.push(report));
    keep_answer(&shared, AnswerKind::InitError, None, at, body);
    accepted()
}

/// Queues an answer for [`RuntimeApi::next_answer`] (after [`Seen`] has it, so
/// whoever takes it finds it there too).
fn keep_answer(
    shared: &Shared,
    kind: AnswerKind,
    request_id: Option<String>,
    at: Instant,
    body: Bytes,
) {
    // The receiver is gone only once the handle is dropped.
    let _ = shared.answers.send(Answer {
        kind,
        request_id,
        at,
        body,
    });
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{AnswerKind, Outcome, RuntimeApi};

    const API: &str = "/2018-06-01/runtime";

    /// One HTTP/1.0 exchange with the mock: the status and the body.
    async fn http(api: &RuntimeApi, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(api.host_port())
            .await
            .unwrap();
        let request = format!(
            "{method} {API}{path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            api.host_port(),
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head[9..12].parse().unwrap(), body.to_owned())
    }

    #[tokio::test]
    async fn answers_come_in_arrival_order_stamped_when_they_arrived() {
        let api = RuntimeApi::try_start("answers", Duration::from_secs(3))
            .await
            .unwrap();
        let first = api.enqueue(&json!({"n": 1}));
        let second = api.enqueue(&json!({"n": 2}));
        assert_eq!(
            http(&api, "GET", "/invocation/next", "").await,
            (200, r#"{"n":1}"#.to_owned())
        );
        assert_eq!(
            http(&api, "GET", "/invocation/next", "").await,
            (200, r#"{"n":2}"#.to_owned())
        );

        // Answered out of order, with time between them; taken later, all at once.
        let before = Instant::now();
        let error = r#"{"errorType":"Boom","errorMessage":"no"}"#;
        let response = http(
            &api,
            "POST",
            &format!("/invocation/{second}/response"),
            "[2]",
        )
        .await;
        assert_eq!(response.0, 202);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let middle = Instant::now();
        let path = format!("/invocation/{first}/error");
        assert_eq!(http(&api, "POST", &path, error).await.0, 202);
        assert_eq!(http(&api, "POST", "/init/error", error).await.0, 202);
        let after = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;

        let wait = Duration::from_secs(1);
        let a = api.next_answer(wait).await.unwrap();
        assert_eq!(a.kind, AnswerKind::Response);
        assert_eq!(a.request_id.as_deref(), Some(second.as_str()));
        assert_eq!(&a.body[..], b"[2]");
        assert!(before <= a.at && a.at <= middle, "{a:?}");
        let b = api.next_answer(wait).await.unwrap();
        assert_eq!(b.kind, AnswerKind::Error);
        assert_eq!(b.request_id.as_deref(), Some(first.as_str()));
        assert_eq!(&b.body[..], error.as_bytes());
        assert!(middle <= b.at && b.at <= after && a.at <= b.at, "{b:?}");
        let c = api.next_answer(wait).await.unwrap();
        assert_eq!((c.kind, c.request_id), (AnswerKind::InitError, None));
        assert!(b.at <= c.at && c.at <= after, "{:?}", c.at);
        assert!(api.next_answer(Duration::from_millis(50)).await.is_none());

        // What the end-to-end tests read is unchanged.
        assert_eq!(
            api.outcome(&second, wait).await,
            Outcome::Response(json!([2]))
        );
        assert_eq!(api.outcome(&first, wait).await.error().error_type, "Boom");
        assert_eq!(api.init_error(wait).await.error_message, "no");
        assert!(api.violations().is_empty(), "{:?}", api.violations());
    }

    #[tokio::test]
    async fn an_answer_refused_as_a_violation_is_still_an_answer() {
        let api = RuntimeApi::try_start("violation", Duration::from_secs(3))
            .await
            .unwrap();
        let path = "/invocation/never-handed-out/response";
        assert_eq!(http(&api, "POST", path, "{}").await.0, 400);
        let a = api.next_answer(Duration::from_secs(1)).await.unwrap();
        assert_eq!(a.request_id.as_deref(), Some("never-handed-out"));
        assert_eq!(api.violations().len(), 1);
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_a_pending_long_poll() {
        let api = RuntimeApi::try_start("dropped", Duration::from_secs(3))
            .await
            .unwrap();
        let port: u16 = api.host_port().rsplit_once(':').unwrap().1.parse().unwrap();
        let poll = tokio::spawn(async move {
            crate::net::http_get(port, "/2018-06-01/runtime/invocation/next").await
        });
        api.wait_for_polls(1, Duration::from_secs(1)).await;
        drop(api);
        let (status, _) = poll.await.unwrap().unwrap();
        assert_eq!(status, 410);
    }
}
