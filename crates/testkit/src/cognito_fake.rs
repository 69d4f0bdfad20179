//! A local, wire-level fake of Amazon Cognito user pools' `ListUsers`, that
//! enforces Cognito's request quota.
//!
//! moto's cognito-idp server implements `ListUsers` (the tests use it for
//! statuses, pagination and filters) but never throttles. The reconcile
//! function must stay under the `UserList` quota (30 requests per second per
//! account and Region, not adjustable) and back off when Cognito answers
//! `TooManyRequestsException`; this fake answers exactly that beyond a token
//! bucket, so the backoff can be tested on the wire and the 100,000-user
//! benchmark runs at the real quota.
//!
//! | request | answer |
//! |---|---|
//! | `POST /`, `X-Amz-Target: AWSCognitoIdentityProviderService.ListUsers`, `{UserPoolId, Limit?, PaginationToken?, Filter?}` | 200 `{"Users": [...], "PaginationToken"?}`, pages of at most `Limit` (default and maximum 60) |
//! | over the quota | 400 `TooManyRequestsException` |
//! | an unknown pool | 400 `ResourceNotFoundException` |
//! | a filter other than `sub = "…"` / `sub ^= "…"`, a bad `Limit` or token | 400 `InvalidParameterException` |
//! | any other target | 400 `UnknownOperationException` |
//!
//! Errors carry `x-amzn-ErrorType` and `{"__type", "message"}` as Cognito's do.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Cognito's `UserList` quota: requests per second per account and Region.
pub const USER_LIST_QUOTA_RPS: f64 = 30.0;
/// `ListUsers`' largest page.
pub const MAX_LIMIT: usize = 60;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            burst: rate.max(1.0),
            tokens: rate.max(1.0),
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Calls the fake answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every `ListUsers` request, throttled ones included.
    pub list_users: u64,
    /// Those answered `TooManyRequestsException`.
    pub throttled: u64,
}

#[derive(Debug)]
struct Shared {
    pools: Mutex<HashMap<String, Vec<Value>>>,
    bucket: Mutex<Bucket>,
    counts: Mutex<Counts>,
    /// Requests answered `TooManyRequestsException` before the bucket is asked.
    scripted_throttles: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake's pools and quota, without a listener: what [`FakeCognito`]
/// serves, and what `chime-sync serve-fake` answers Cognito with beside the
/// other local services on one port.
#[derive(Debug, Clone)]
pub struct CognitoPools {
    shared: Arc<Shared>,
}

impl CognitoPools {
    /// No pools yet, and a quota of `quota_rps` `ListUsers` calls per second
    /// ([`USER_LIST_QUOTA_RPS`] for Cognito's).
    pub fn new(quota_rps: f64) -> Self {
        Self {
            shared: Arc::new(Shared {
                pools: Mutex::new(HashMap::new()),
                bucket: Mutex::new(Bucket::new(quota_rps)),
                counts: Mutex::new(Counts::default()),
                scripted_throttles: Mutex::new(0),
            }),
        }
    }

    /// Replace the users of `pool_id`, each as `ListUsers` returns one
    /// (`Username`, `UserStatus`, `Enabled`, `Attributes: [{Name, Value}]`).
    pub fn set_users(&self, pool_id: &str, users: Vec<Value>) {
        lock(&self.shared.pools).insert(pool_id.to_owned(), users);
    }

    /// The next `n` requests answer `TooManyRequestsException`, quota or not.
    pub fn throttle_next(&self, n: u64) {
        *lock(&self.shared.scripted_throttles) += n;
    }

    pub fn counts(&self) -> Counts {
        *lock(&self.shared.counts)
    }

    /// Answer one request (`POST /`, its operation in `X-Amz-Target`).
    pub fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        answer(&self.shared, headers, body)
    }
}

/// A running fake; dropping it stops the server.
pub struct FakeCognito {
    addr: SocketAddr,
    pools: CognitoPools,
    task: JoinHandle<()>,
}

impl Drop for FakeCognito {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCognito {
    /// Serve on `127.0.0.1` (an ephemeral port) with a quota of `quota_rps`
    /// `ListUsers` calls per second ([`USER_LIST_QUOTA_RPS`] for Cognito's).
    pub async fn start(quota_rps: f64) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let pools = CognitoPools::new(quota_rps);
        let served = pools.clone();
        let app =
            Router::new().route(
                "/",
                post(move |headers: HeaderMap, body: Bytes| async move {
                    served.answer(&headers, &body)
                }),
            );
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(%e, "fake Cognito stopped");
            }
        });
        Ok(Self { addr, pools, task })
    }

    /// `http://127.0.0.1:{port}`: the endpoint for the SDK.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// See [`CognitoPools::set_users`].
    pub fn set_users(&self, pool_id: &str, users: Vec<Value>) {
        self.pools.set_users(pool_id, users);
    }

    /// See [`CognitoPools::throttle_next`].
    pub fn throttle_next(&self, n: u64) {
        self.pools.throttle_next(n);
    }

    pub fn counts(&self) -> Counts {
        self.pools.counts()
    }
}

/// A Cognito user as `ListUsers` shows it.
pub fn user(username: &str, sub: &str, status: &str, enabled: bool, name: Option<&str>) -> Value {
    let mut attributes = vec![json!({"Name": "sub", "Value": sub})];
    if let Some(name) = name {
        attributes.push(json!({"Name": "name", "Value": name}));
    }
    json!({"Username": username, "UserStatus": status, "Enabled": enabled,
           "UserCreateDate": 1_700_000_000, "UserLastModifiedDate": 1_700_000_000,
           "Attributes": attributes})
}

fn error(kind: &str, message: &str) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(kind) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

/// `sub = "…"` or `sub ^= "…"`: (is prefix, value).
fn sub_filter(filter: &str) -> Option<(bool, String)> {
    let rest = filter.trim().strip_prefix("sub")?.trim_start();
    let (prefix, value) = match rest.strip_prefix("^=") {
        Some(v) => (true, v),
        None => (false, rest.strip_prefix('=')?),
    };
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((prefix, value.to_owned()))
}

fn answer(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "AWSCognitoIdentityProviderService.ListUsers" {
        return error("UnknownOperationException", "only ListUsers is faked");
    }
    let throttled = {
        let mut scripted = lock(&shared.scripted_throttles);
        if *scripted > 0 {
            *scripted -= 1;
            true
        } else {
            !lock(&shared.bucket).take()
        }
    };
    {
        let mut counts = lock(&shared.counts);
        counts.list_users += 1;
        counts.throttled += u64::from(throttled);
    }
    if throttled {
        return error(
            "TooManyRequestsException",
            "Too many requests (fake Cognito quota)",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error("InvalidParameterException", "the body is not JSON");
    };
    let pool_id = request["UserPoolId"].as_str().unwrap_or_default();
    let limit = match request.get("Limit").and_then(Value::as_u64) {
        None | Some(0) => MAX_LIMIT,
        Some(n) if n as usize <= MAX_LIMIT => n as usize,
        Some(_) => return error("InvalidParameterException", "Limit must be 0 to 60"),
    };
    let start: usize = match request.get("PaginationToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => match t.parse() {
            Ok(n) => n,
            Err(_) => return error("InvalidParameterException", "invalid PaginationToken"),
        },
    };
    let filter = match request
        .get("Filter")
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty())
    {
        None => None,
        Some(f) => match sub_filter(f) {
            Some(parsed) => Some(parsed),
            None => return error("InvalidParameterException", "only sub filters are faked"),
        },
    };
    let pools = lock(&shared.pools);
    let Some(users) = pools.get(pool_id) else {
        return error(
            "ResourceNotFoundException",
            &format!("User pool {pool_id} does not exist."),
        );
    };
    let sub = |u: &Value| -> Option<String> {
        u["Attributes"]
            .as_array()?
            .iter()
            .find(|a| a["Name"] == "sub")?
            .get("Value")?
            .as_str()
            .map(str::to_owned)
    };
    let matching: Vec<&Value> = users
        .iter()
        .filter(|u| match &filter {
            None => true,
            Some((true, p)) => sub(u).is_some_and(|s| s.starts_with(p.as_str())),
            Some((false, v)) => sub(u).as_deref() == Some(v.as_str()),
        })
        .collect();
    let page: Vec<&Value> = matching.iter().skip(start).take(limit).copied().collect();
    let mut answer = json!({"Users": page});
    if start + limit < matching.len() {
        answer["PaginationToken"] = json!((start + limit).to_string());
    }
    (
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_allows_the_rate_and_a_burst_of_it() {
        let mut bucket = Bucket::new(30.0);
        let burst = (0..100).filter(|_| bucket.take()).count();
        assert_eq!(burst, 30);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!((0..100).filter(|_| bucket.take()).count(), 30);
    }

    #[test]
    fn sub_filters_parse() {
        assert_eq!(sub_filter("sub ^= \"3f\""), Some((true, "3f".to_owned())));
        assert_eq!(sub_filter("sub=\"x\""), Some((false, "x".to_owned())));
        assert_eq!(sub_filter("email = \"x\""), None);
    }
}
