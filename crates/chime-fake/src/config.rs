//! Start-up configuration of the fake.

use std::net::{Ipv4Addr, SocketAddr};

use crate::faults::FaultConfig;
use crate::model::{ClearAnswer, MissingAnswer};

/// Default per-AppInstance user limit. The real quota is an account setting; this is high
/// enough never to bite by accident and low enough to test with a smaller override.
pub const DEFAULT_USER_LIMIT: usize = 100_000;

/// How to start a fake: where to listen, the service's limits and the initial faults.
///
/// The default listens on `127.0.0.1:0` (an ephemeral port, so parallel tests never collide),
/// allows [`DEFAULT_USER_LIMIT`] users per AppInstance, answers missing users with
/// [`MissingAnswer::Forbidden`] (403, as the model suggests) and injects no faults.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Listening address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Users allowed per AppInstance before `ResourceLimitExceededException`.
    pub user_limit_per_app_instance: usize,
    /// The error for Describe/Update/Delete of a user that does not exist.
    pub missing_user: MissingAnswer,
    /// What a `PutAppInstanceUserExpirationSettings` without settings does.
    pub expiration_clear: ClearAnswer,
    /// Faults active from the first request.
    pub faults: FaultConfig,
    /// Other services answered on the same port: requests no Chime route or
    /// `/_fake/` route serves go here (`chime-sync serve-fake`'s local
    /// Cognito, STS, SQS and identity provider). Faults and counters cover
    /// Chime's routes only.
    pub neighbours: Option<axum::Router>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            user_limit_per_app_instance: DEFAULT_USER_LIMIT,
            missing_user: MissingAnswer::default(),
            expiration_clear: ClearAnswer::default(),
            faults: FaultConfig::none(),
            neighbours: None,
        }
    }
}

impl FakeConfig {
    /// The defaults described on the type.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on `port` (keeping the IP).
    pub fn with_port(mut self, port: u16) -> Self {
        self.bind.set_port(port);
        self
    }

    /// Listens on `bind` (e.g. `0.0.0.0:4566` inside a container).
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets the per-AppInstance user limit.
    pub fn with_user_limit(mut self, limit: usize) -> Self {
        self.user_limit_per_app_instance = limit;
        self
    }

    /// Chooses the answer for missing users.
    pub fn with_missing_user(mut self, missing: MissingAnswer) -> Self {
        self.missing_user = missing;
        self
    }

    /// Chooses the answer to a put expiration without settings.
    pub fn with_expiration_clear(mut self, clear: ClearAnswer) -> Self {
        self.expiration_clear = clear;
        self
    }

    /// Serves `router` on the same port for every request Chime's routes do
    /// not take (see [`FakeConfig::neighbours`]).
    pub fn with_neighbours(mut self, router: axum::Router) -> Self {
        self.neighbours = Some(router);
        self
    }

    /// Sets the faults active from the start.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }
}
