//! A local STS endpoint for the real `aws-sdk-sts` client: it records every
//! request (the form parameters, so `Tags.member.N.*`, `SourceIdentity` and
//! `DurationSeconds` can be asserted — moto's STS ignores `Tags`) and answers
//! `AssumeRole` in STS's query-protocol XML, or with a scripted error.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::serve::{Served, serve};

/// What the endpoint answers to the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsAnswer {
    /// 200 with credentials for `DurationSeconds`.
    Credentials,
    /// 400 `Throttling` (the SDK retries it).
    Throttling,
    /// 403 `AccessDenied` with IAM's message.
    AccessDenied,
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRequest {
    /// Form parameters (`Action`, `RoleArn`, `Tags.member.1.Key`, ...).
    pub params: BTreeMap<String, String>,
    /// Whether the request was SigV4-signed (`Authorization: AWS4-HMAC-SHA256 ...`).
    pub signed: bool,
}

#[derive(Default)]
struct StsState {
    requests: Mutex<Vec<StsRequest>>,
    script: Mutex<VecDeque<StsAnswer>>,
}

/// The endpoint's state without a listener: what [`LocalSts`] serves, and
/// what `chime-sync serve-fake` answers STS with beside the other local
/// services on one port.
#[derive(Clone, Default)]
pub struct StsEndpoint {
    state: Arc<StsState>,
}

impl StsEndpoint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer the next requests with these, in order; then credentials again.
    pub fn script(&self, answers: impl IntoIterator<Item = StsAnswer>) {
        lock(&self.state.script).extend(answers);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<StsRequest> {
        lock(&self.state.requests).clone()
    }

    /// Answer one query-protocol request (`POST /`, a form body).
    pub fn answer(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        answer(&self.state, headers, body)
    }
}

/// A running local STS.
pub struct LocalSts {
    endpoint: StsEndpoint,
    served: Served,
}

/// The access key id prefix of the credentials it hands out.
pub const ACCESS_KEY_PREFIX: &str = "ASIALOCALSTS";

impl LocalSts {
    pub async fn start() -> Self {
        let endpoint = StsEndpoint::new();
        let served_endpoint = endpoint.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| async move {
            served_endpoint.answer(&headers, &body)
        });
        Self {
            endpoint,
            served: serve(app, None).await,
        }
    }

    /// For `AWS_ENDPOINT_URL_STS` or a client's `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    /// Answer the next requests with these, in order; then credentials again.
    pub fn script(&self, answers: impl IntoIterator<Item = StsAnswer>) {
        self.endpoint.script(answers);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<StsRequest> {
        self.endpoint.requests()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn answer(state: &StsState, headers: &HeaderMap, body: &[u8]) -> Response {
    let params: BTreeMap<String, String> = form_pairs(body);
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 "));
    let n = {
        let mut requests = lock(&state.requests);
        requests.push(StsRequest {
            params: params.clone(),
            signed,
        });
        requests.len()
    };
    let next = lock(&state.script)
        .pop_front()
        .unwrap_or(StsAnswer::Credentials);
    let role = params.get("RoleArn").cloned().unwrap_or_default();
    match next {
        StsAnswer::Throttling => error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded", n),
        StsAnswer::AccessDenied => error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!(
                "User: arn:aws:sts::123456789012:assumed-role/credential-exchange-role/credential-exchange \
                 is not authorized to perform: sts:TagSession on resource: {role}"
            ),
            n,
        ),
        StsAnswer::Credentials => credentials(&params, &role, n),
    }
}

fn credentials(params: &BTreeMap<String, String>, role: &str, n: usize) -> Response {
    let seconds: u64 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let expiration =
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(seconds));
    let session = params.get("RoleSessionName").cloned().unwrap_or_default();
    let role_name = role.rsplit('/').next().unwrap_or("role");
    let source = params
        .get("SourceIdentity")
        .map(|s| format!("<SourceIdentity>{s}</SourceIdentity>"))
        .unwrap_or_default();
    let xml = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    {source}
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:{session}</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/{role_name}/{session}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{ACCESS_KEY_PREFIX}{n:08}</AccessKeyId>
      <SecretAccessKey>local-sts-secret-access-key-{n}</SecretAccessKey>
      <SessionToken>local-sts-session-token-{n}-FwoGZXIvYXdzEBYaDOP</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#
    );
    ([("content-type", "text/xml")], xml).into_response()
}

fn error(status: StatusCode, code: &str, message: &str, n: usize) -> Response {
    let xml = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>0b8a3a6e-0000-4000-8000-{n:012}</RequestId>
</ErrorResponse>"#
    );
    (status, [("content-type", "text/xml")], xml).into_response()
}

/// `application/x-www-form-urlencoded` pairs.
fn form_pairs(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if bytes[i] == b'%'
                && let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}
