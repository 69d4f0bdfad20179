//! A local identity provider's publishing side: OIDC discovery at
//! `{issuer}/.well-known/openid-configuration` and the JWKS at
//! `{issuer}/jwks.json`, over HTTP or HTTPS (with a [`TestCa`]). The JWKS can
//! be swapped at run time (key rotation), every GET is counted, and the
//! answers can be slowed down, carry a `Cache-Control`, or name another
//! `jwks_uri` in discovery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::TestCa;
use super::serve::{Served, bind, serve_listener};

/// The path prefix of the issuer on the server.
const PREFIX: &str = "/idp";

struct IdpState {
    issuer: String,
    jwks: Mutex<Value>,
    gets: Mutex<HashMap<String, usize>>,
    /// The JWKS answer's `Cache-Control`, if any.
    cache_control: Mutex<Option<String>>,
    /// How long each answer waits.
    latency: Mutex<Duration>,
    /// The `jwks_uri` discovery answers instead of the IdP's own.
    jwks_uri: Mutex<Option<String>>,
}

impl IdpState {
    fn new(issuer: String, jwks: Value) -> Arc<Self> {
        Arc::new(Self {
            issuer,
            jwks: Mutex::new(jwks),
            gets: Mutex::new(HashMap::new()),
            cache_control: Mutex::new(None),
            latency: Mutex::new(Duration::ZERO),
            jwks_uri: Mutex::new(None),
        })
    }
}

/// The IdP's two documents as routes under `/idp/` of another server (no
/// fallback, so they merge beside other routes): what `chime-sync serve-fake`
/// publishes on its own port, the issuer being `{origin}/idp`.
pub fn publisher(origin: &str, jwks: Value) -> Router {
    let state = IdpState::new(format!("{origin}{PREFIX}"), jwks);
    Router::new()
        .route(
            &format!("{PREFIX}/{{*document}}"),
            axum::routing::get(get_document),
        )
        .with_state(state)
}

/// A running local IdP.
pub struct LocalIdp {
    state: Arc<IdpState>,
    _served: Served,
}

impl LocalIdp {
    /// Serve `jwks` over plain HTTP; the issuer is `http://127.0.0.1:PORT/idp`.
    pub async fn start(jwks: Value) -> Self {
        Self::start_inner(jwks, None).await
    }

    /// Serve `jwks` over HTTPS with a certificate of `ca`; the issuer is
    /// `https://localhost:PORT/idp`.
    pub async fn start_tls(jwks: Value, ca: &TestCa) -> Self {
        Self::start_inner(jwks, Some(ca)).await
    }

    async fn start_inner(jwks: Value, ca: Option<&TestCa>) -> Self {
        let listener = bind().await;
        let port = listener.local_addr().expect("local address").port();
        let issuer = match ca {
            Some(_) => format!("https://localhost:{port}{PREFIX}"),
            None => format!("http://127.0.0.1:{port}{PREFIX}"),
        };
        let state = IdpState::new(issuer, jwks);
        let app = Router::new()
            .fallback(get_document)
            .with_state(Arc::clone(&state));
        let served = serve_listener(listener, app, ca.map(TestCa::server_config));
        Self {
            state,
            _served: served,
        }
    }

    /// The `iss` of tokens from this IdP.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Where the keys are (what discovery answers as `jwks_uri`).
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks.json", self.state.issuer)
    }

    /// The discovery URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.issuer)
    }

    /// Publish another JWKS (key rotation).
    pub fn set_jwks(&self, jwks: Value) {
        *lock(&self.state.jwks) = jwks;
    }

    /// Answer the JWKS with this `Cache-Control` (`None`: without one).
    pub fn set_cache_control(&self, value: Option<&str>) {
        *lock(&self.state.cache_control) = value.map(str::to_owned);
    }

    /// Answer every GET (discovery and JWKS) only after `latency`: a slow IdP.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.state.latency) = latency;
    }

    /// Make discovery name this `jwks_uri` instead of [`LocalIdp::jwks_uri`].
    pub fn set_discovered_jwks_uri(&self, uri: &str) {
        *lock(&self.state.jwks_uri) = Some(uri.to_owned());
    }

    /// GETs of the JWKS so far.
    pub fn jwks_fetches(&self) -> usize {
        self.gets(&format!("{PREFIX}/jwks.json"))
    }

    /// GETs of the discovery document so far.
    pub fn discovery_fetches(&self) -> usize {
        self.gets(&format!("{PREFIX}/.well-known/openid-configuration"))
    }

    fn gets(&self, path: &str) -> usize {
        lock(&self.state.gets).get(path).copied().unwrap_or(0)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn get_document(State(state): State<Arc<IdpState>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *lock(&state.gets).entry(path.clone()).or_default() += 1;
    let latency = *lock(&state.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let issuer = &state.issuer;
    match path.strip_prefix(PREFIX) {
        Some("/.well-known/openid-configuration") => {
            let jwks_uri = lock(&state.jwks_uri)
                .clone()
                .unwrap_or_else(|| format!("{issuer}/jwks.json"));
            axum::Json(json!({
                "issuer": issuer,
                "jwks_uri": jwks_uri,
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
            }))
            .into_response()
        }
        Some("/jwks.json") => {
            let mut response = axum::Json(lock(&state.jwks).clone()).into_response();
            let cache_control = lock(&state.cache_control).clone();
            if let Some(value) = cache_control.and_then(|v| v.parse().ok()) {
                response.headers_mut().insert(header::CACHE_CONTROL, value);
            }
            response
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
