//! Control endpoints under `/_fake/`, a prefix no AWS SDK ever requests, so tests and
//! developers can read and reset the fake's state and change faults over HTTP.
//!
//! | method | path | effect |
//! |---|---|---|
//! | GET | `/_fake/health` | 200 `ok` once the server accepts requests |
//! | GET | `/_fake/state` | 200 [`StateSnapshot`] JSON: users, counters, faults, seed |
//! | DELETE | `/_fake/state` | 204; forgets users, zeroes counters, sets the clock back (faults stay) |
//! | GET | `/_fake/clock` | 200 [`ClockState`]: the fake's time, and how far it is ahead |
//! | POST | `/_fake/clock` | advances the clock by [`AdvanceClock`] and deletes the users whose expiration has passed; 200 [`ClockState`] with their ARNs |
//! | GET | `/_fake/faults` | 200 [`FaultConfig`] JSON (with what is left of the script) |
//! | PUT | `/_fake/faults` | replaces the faults; 200 with the new config, 400 `{"error"}` if invalid |
//! | DELETE | `/_fake/faults` | 204; no faults any more |

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::faults::FaultConfig;
use crate::model::UserRecord;
use crate::state::Shared;

/// Prefix of every control path.
pub const CONTROL_PREFIX: &str = "/_fake";

/// The body of `GET /_fake/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// Every user, ordered by AppInstance then id.
    pub users: Vec<UserRecord>,
    /// Per-operation counters keyed by operation name.
    pub counters: Counters,
    /// The active fault configuration.
    pub faults: FaultConfig,
    /// The seed the fault generator runs with (replay a random run by setting it).
    pub fault_seed: u64,
}

/// The body of `POST /_fake/clock`: how far to move the clock (the two add up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdvanceClock {
    #[serde(default)]
    pub days: u64,
    #[serde(default)]
    pub seconds: u64,
}

/// The body of `GET`/`POST /_fake/clock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockState {
    /// The fake's time, epoch seconds (what `CreatedTimestamp` is stamped with).
    pub now: f64,
    /// Users the advance deleted because their expiration had passed (POST only).
    #[serde(default)]
    pub expired: Vec<String>,
}

/// The router of the control endpoints.
pub(crate) fn control_router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_fake/health", get(|| async { "ok" }))
        .route("/_fake/state", get(get_state).delete(reset_state))
        .route("/_fake/clock", get(get_clock).post(advance_clock))
        .route(
            "/_fake/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
}

async fn get_state(State(shared): State<Arc<Shared>>) -> Json<StateSnapshot> {
    let (faults, fault_seed) = shared.faults();
    Json(StateSnapshot {
        users: shared.users(),
        counters: shared.counters(),
        faults,
        fault_seed,
    })
}

async fn reset_state(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Json<ClockState> {
    Json(ClockState {
        now: shared.now_epoch_secs(),
        expired: Vec::new(),
    })
}

async fn advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let advance: AdvanceClock = match serde_json::from_slice(&body) {
        Ok(advance) => advance,
        Err(err) => return control_error(format!("invalid clock advance JSON: {err}")),
    };
    let by = Duration::from_secs(
        advance
            .days
            .saturating_mul(86_400)
            .saturating_add(advance.seconds),
    );
    let expired = shared.advance_clock(by);
    Json(ClockState {
        now: shared.now_epoch_secs(),
        expired: expired
            .into_iter()
            .map(|u| u.app_instance_user_arn)
            .collect(),
    })
    .into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<FaultConfig> {
    Json(shared.faults().0)
}

fn control_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let config: FaultConfig = match serde_json::from_slice(&body) {
        Ok(config) => config,
        Err(err) => return control_error(format!("invalid fault configuration JSON: {err}")),
    };
    match shared.set_faults(config) {
        Ok(()) => Json(shared.faults().0).into_response(),
        Err(err) => control_error(err.to_string()),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    match shared.set_faults(FaultConfig::none()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => control_error(err.to_string()),
    }
}
