//! In-memory doubles of the credential-exchange ports: a JWKS source that
//! serves documents from a map, and an STS double that records each request.
//! The handler's tests and the replay (`chime-sync replay`) use them; the
//! real adapters live in `chime-sync-aws`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::keys::{FetchError, Fetched, JwksSource};
use super::sts::{AssumeRoleRequest, CredentialIssuer, IssueError, TemporaryCredentials};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// JSON documents by URL; everything else is a 404. Can be switched "down",
/// made slow (a latency before each answer, in tokio time, so paused-time
/// tests stay instant) and made to answer a `max-age`; counts every GET.
#[derive(Default)]
pub struct StaticJwks {
    documents: Mutex<HashMap<String, Value>>,
    fetches: Mutex<HashMap<String, usize>>,
    down: Mutex<bool>,
    max_age: Mutex<Option<Duration>>,
    latency: Mutex<Duration>,
}

impl StaticJwks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve `document` at `url`.
    pub fn set(&self, url: &str, document: Value) {
        lock(&self.documents).insert(url.to_owned(), document);
    }

    /// While down, every GET fails as if the server were unreachable (after
    /// the latency, as a server that times out would).
    pub fn set_down(&self, down: bool) {
        *lock(&self.down) = down;
    }

    /// The `max-age` every answer carries (`None`: no `Cache-Control`).
    pub fn set_max_age(&self, max_age: Option<Duration>) {
        *lock(&self.max_age) = max_age;
    }

    /// How long each GET takes to answer.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.latency) = latency;
    }

    /// How many GETs of `url` were made (including failed ones), counted
    /// when they start.
    pub fn fetches(&self, url: &str) -> usize {
        lock(&self.fetches).get(url).copied().unwrap_or(0)
    }
}

impl JwksSource for StaticJwks {
    async fn get_json(&self, url: &str) -> Result<Fetched, FetchError> {
        *lock(&self.fetches).entry(url.to_owned()).or_default() += 1;
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fail = |reason: &str| FetchError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if *lock(&self.down) {
            return Err(fail("connection refused (simulated)"));
        }
        let doc = lock(&self.documents)
            .get(url)
            .cloned()
            .ok_or_else(|| fail("HTTP 404"))?;
        Ok(Fetched {
            doc,
            max_age: *lock(&self.max_age),
        })
    }
}

/// An STS double: records every request and answers with credentials that
/// are obviously not real (`ASIA…DOUBLE`), or with injected errors.
#[derive(Default)]
pub struct InMemoryCredentialIssuer {
    requests: Mutex<Vec<AssumeRoleRequest>>,
    injected: Mutex<VecDeque<IssueError>>,
    denied_users: Mutex<BTreeMap<String, IssueError>>,
}

impl InMemoryCredentialIssuer {
    pub const ACCESS_KEY_PREFIX: &'static str = "ASIASTSDOUBLE";

    pub fn new() -> Self {
        Self::default()
    }

    /// The next calls fail with these errors, one each.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = IssueError>) {
        lock(&self.injected).extend(errors);
    }

    /// Every call for this user (by `SourceIdentity`) fails with this error.
    pub fn fail_always_for(&self, user: &str, error: IssueError) {
        lock(&self.denied_users).insert(user.to_owned(), error);
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<AssumeRoleRequest> {
        lock(&self.requests).clone()
    }
}

impl CredentialIssuer for InMemoryCredentialIssuer {
    async fn assume_role(
        &self,
        request: &AssumeRoleRequest,
    ) -> Result<TemporaryCredentials, IssueError> {
        lock(&self.requests).push(request.clone());
        if let Some(e) = lock(&self.injected).pop_front() {
            return Err(e);
        }
        if let Some(e) = lock(&self.denied_users).get(&request.source_identity) {
            return Err(e.clone());
        }
        let serial = lock(&self.requests).len();
        Ok(TemporaryCredentials {
            access_key_id: format!("{}{serial:07}", Self::ACCESS_KEY_PREFIX),
            secret_access_key: format!("sts-double-secret-{serial}"),
            session_token: format!("sts-double-session-token-{serial}"),
            expiration: SystemTime::now() + request.duration.min(Duration::from_secs(43_200)),
        })
    }
}
