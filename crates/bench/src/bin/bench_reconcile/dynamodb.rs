//! A counting stand-in for the ownership ledger's DynamoDB table: the five
//! operations the functions call (JSON 1.0, `X-Amz-Target:
//! DynamoDB_20120810.<Operation>`, as aws-sdk-dynamodb speaks it) answered as
//! an empty table would, counted by kind, each after an injected latency.
//!
//! Empty is what the measurement needs: every user reads as owned by no
//! source, so with `UNOWNED_USERS=pool` the plan is the one reconcile made
//! before the ledger, and the only difference left is the ledger's I/O. The
//! latency is an assumption standing in for a network round trip (DynamoDB's
//! own service time is not measured here); moto would measure moto.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Calls by operation, and the keys the batch reads asked for.
#[derive(Default)]
struct Counts {
    batch_get: AtomicU64,
    batch_get_keys: AtomicU64,
    query: AtomicU64,
    update: AtomicU64,
    get: AtomicU64,
    transact: AtomicU64,
    other: AtomicU64,
}

/// The counts at one instant; subtract two to count a stretch of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub batch_get: u64,
    /// Keys asked for across every `BatchGetItem`: the users the reads covered.
    pub batch_get_keys: u64,
    pub query: u64,
    pub update: u64,
    pub get: u64,
    pub transact: u64,
    /// Operations the functions are not expected to call (answered 400).
    pub other: u64,
}

impl Calls {
    /// Every call, of any kind: what the round trips are counted in.
    pub fn total(&self) -> u64 {
        self.batch_get + self.query + self.update + self.get + self.transact + self.other
    }

    /// The calls between `earlier` and `self`.
    pub fn since(&self, earlier: &Calls) -> Calls {
        Calls {
            batch_get: self.batch_get - earlier.batch_get,
            batch_get_keys: self.batch_get_keys - earlier.batch_get_keys,
            query: self.query - earlier.query,
            update: self.update - earlier.update,
            get: self.get - earlier.get,
            transact: self.transact - earlier.transact,
            other: self.other - earlier.other,
        }
    }

    /// The sum of two stretches.
    pub fn plus(&self, more: &Calls) -> Calls {
        Calls {
            batch_get: self.batch_get + more.batch_get,
            batch_get_keys: self.batch_get_keys + more.batch_get_keys,
            query: self.query + more.query,
            update: self.update + more.update,
            get: self.get + more.get,
            transact: self.transact + more.transact,
            other: self.other + more.other,
        }
    }
}

struct Shared {
    counts: Counts,
    latency: Duration,
}

/// The stand-in, serving plain HTTP on 127.0.0.1 until dropped.
pub struct CountingDynamoDb {
    pub endpoint: String,
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingDynamoDb {
    /// Serve on an ephemeral port, answering each call after `latency`.
    pub async fn start(latency: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            counts: Counts::default(),
            latency,
        });
        let app = Router::new()
            .route("/", post(serve))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            endpoint: format!("http://{addr}"),
            addr,
            shared,
            task,
        })
    }

    /// The calls so far.
    pub fn calls(&self) -> Calls {
        snapshot(&self.shared.counts)
    }

    /// A counter of the calls so far that can outlive a borrow of the
    /// stand-in (for a measurement on a thread of its own).
    pub fn counter(&self) -> impl Fn() -> Calls + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || snapshot(&shared.counts)
    }
}

fn snapshot(c: &Counts) -> Calls {
    let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
    Calls {
        batch_get: get(&c.batch_get),
        batch_get_keys: get(&c.batch_get_keys),
        query: get(&c.query),
        update: get(&c.update),
        get: get(&c.get),
        transact: get(&c.transact),
        other: get(&c.other),
    }
}

impl Drop for CountingDynamoDb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The keys of a `BatchGetItem` request, over all its tables.
fn keys_asked(request: &Value) -> u64 {
    request["RequestItems"]
        .as_object()
        .map(|tables| {
            tables
                .values()
                .filter_map(|t| t["Keys"].as_array())
                .map(|k| k.len() as u64)
                .sum()
        })
        .unwrap_or(0)
}

/// The answer an empty table gives `operation`, counted; `None` for an
/// operation the functions do not call.
fn answer(counts: &Counts, operation: &str, request: &Value) -> Option<Value> {
    let bump = |n: &AtomicU64| {
        n.fetch_add(1, Ordering::Relaxed);
    };
    match operation {
        "BatchGetItem" => {
            bump(&counts.batch_get);
            counts
                .batch_get_keys
                .fetch_add(keys_asked(request), Ordering::Relaxed);
            let tables: serde_json::Map<String, Value> = request["RequestItems"]
                .as_object()
                .map(|t| t.keys().map(|name| (name.clone(), json!([]))).collect())
                .unwrap_or_default();
            Some(json!({"Responses": tables, "UnprocessedKeys": {}}))
        }
        "Query" => {
            bump(&counts.query);
            Some(json!({"Items": [], "Count": 0, "ScannedCount": 0}))
        }
        "UpdateItem" => {
            bump(&counts.update);
            Some(json!({"Attributes": {}}))
        }
        "GetItem" => {
            bump(&counts.get);
            Some(json!({}))
        }
        "TransactWriteItems" => {
            bump(&counts.transact);
            Some(json!({}))
        }
        _ => {
            bump(&counts.other);
            None
        }
    }
}

async fn serve(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answered = answer(&shared.counts, &operation, &request);
    tokio::time::sleep(shared.latency).await;
    let content_type = [("content-type", "application/x-amz-json-1.0")];
    match answered {
        Some(answer) => (content_type, answer.to_string()).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            content_type,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#UnknownOperationException",
                   "message": format!("the stand-in does not serve {operation:?}")})
            .to_string(),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_reads_answer_every_table_asked_with_no_items_and_count_the_keys() {
        let counts = Counts::default();
        let request =
            json!({"RequestItems": {"ledger": {"Keys": [{"id": {"S": "a"}}, {"id": {"S": "b"}}]}}});
        let answered = answer(&counts, "BatchGetItem", &request).unwrap();
        assert_eq!(
            answered,
            json!({"Responses": {"ledger": []}, "UnprocessedKeys": {}})
        );
        assert_eq!(counts.batch_get.load(Ordering::Relaxed), 1);
        assert_eq!(counts.batch_get_keys.load(Ordering::Relaxed), 2);
        assert!(answer(&counts, "Scan", &Value::Null).is_none());
        assert_eq!(counts.other.load(Ordering::Relaxed), 1);
    }
}
