//! A counting stand-in for the sync queue: `SendMessageBatch` and
//! `SendMessage` (awsJson 1.0, as aws-sdk-sqs speaks it) accepted and counted,
//! nothing stored. moto's FIFO queue slows down badly with tens of thousands
//! of messages in distinct groups, which would measure moto, not reconcile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
pub struct Counts {
    pub batch_calls: AtomicU64,
    pub single_calls: AtomicU64,
    pub messages: AtomicU64,
}

pub struct CountingSqs {
    pub endpoint: String,
    pub counts: Arc<Counts>,
}

impl CountingSqs {
    pub async fn start() -> std::io::Result<Self> {
        let counts = Arc::new(Counts::default());
        let app = Router::new()
            .route("/", post(serve))
            .with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { endpoint, counts })
    }
}

async fn serve(State(counts): State<Arc<Counts>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = match target {
        "AmazonSQS.SendMessageBatch" => {
            counts.batch_calls.fetch_add(1, Ordering::Relaxed);
            let ids: Vec<Value> = request["Entries"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| json!({"Id": e["Id"], "MessageId": e["Id"], "MD5OfMessageBody": "0"}))
                        .collect()
                })
                .unwrap_or_default();
            counts
                .messages
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            json!({"Successful": ids, "Failed": []})
        }
        _ => {
            counts.single_calls.fetch_add(1, Ordering::Relaxed);
            counts.messages.fetch_add(1, Ordering::Relaxed);
            json!({"MessageId": "m", "MD5OfMessageBody": "0"})
        }
    };
    (
        [("content-type", "application/x-amz-json-1.0")],
        answer.to_string(),
    )
        .into_response()
}
