//! A local, wire-level fake of the Amazon Chime SDK Identity API (restJson1), for testing real
//! clients such as `aws-sdk-chimesdkidentity` without AWS.
//!
//! No emulator (moto, LocalStack) serves Chime SDK Identity, and in-memory test doubles cannot
//! show that SDK calls, error shapes and retries work on the wire. This crate serves the
//! AppInstanceUser operations on the real paths, with the real status codes, JSON bodies and
//! `X-Amzn-Errortype` headers, enforces the model's input constraints with
//! `BadRequestException`, and injects faults (latency, a TPS quota answered with
//! `ThrottledClientException`, 500/503 rates, dropped connections, requests applied whose
//! response is lost, scripted bursts) and IAM denials per operation.
//!
//! | operation | request | success |
//! |---|---|---|
//! | CreateAppInstanceUser | `POST /app-instance-users` | 201 `{"AppInstanceUserArn"}` |
//! | DescribeAppInstanceUser | `GET /app-instance-users/{arn}` | 200 `{"AppInstanceUser": {...}}` |
//! | UpdateAppInstanceUser | `PUT /app-instance-users/{arn}` | 200 `{"AppInstanceUserArn"}` |
//! | DeleteAppInstanceUser | `DELETE /app-instance-users/{arn}` | 204 |
//! | ListAppInstanceUsers | `GET /app-instance-users?app-instance-arn=&max-results=&next-token=` | 200 |
//! | PutAppInstanceUserExpirationSettings | `PUT /app-instance-users/{arn}/expiration-settings` | 200 `{"AppInstanceUserArn", "ExpirationSettings"?}` |
//!
//! Describe returns a user's `ExpirationSettings`, List does not (as in Chime). The fake has a
//! clock that tests advance (`POST /_fake/clock`, [`FakeChimeHandle::advance_clock`]); advancing
//! it deletes the users whose expiration has passed, as Chime's background process does.
//!
//! What the operations mean (existence, idempotency, conflicts, the user limit, expiration,
//! a missing user, pagination) is not decided here: it is Chime's one model,
//! `chime_sync_core::memory::chime`, which core's in-memory directory answers from too. This
//! crate checks requests on the wire, injects faults, and maps the model's refusals to Chime's
//! HTTP errors ([`model`]).
//!
//! Requests may be SigV4-signed; signatures are not checked and `Authorization` is ignored.
//! AppInstances exist implicitly (see [`model`]); a missing user is answered as
//! [`MissingAnswer`] says: 403 with Chime's message by default, or 404 (AWS documents
//! neither). Control endpoints live under `/_fake/` (see [`control`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), chime_identity_fake::FakeError> {
//! use chime_identity_fake::{FakeChime, FakeConfig, FaultConfig, ScriptedFault};
//!
//! let fake = FakeChime::start(FakeConfig::new()).await?;
//! // Point the SDK at fake.endpoint_url(); then, e.g., throttle the next two requests:
//! fake.set_faults(FaultConfig::none().with_script([ScriptedFault::Throttle, ScriptedFault::Throttle]))?;
//! # fake.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod config;
pub mod control;
mod counters;
mod error;
mod faults;
mod middleware;
pub mod model;
mod routes;
mod server;
mod state;
pub mod tls;
pub mod validate;

pub use config::{DEFAULT_USER_LIMIT, FakeConfig};
pub use control::{AdvanceClock, CONTROL_PREFIX, ClockState, StateSnapshot};
pub use counters::{Counters, InjectedCounts, Operation, OperationCounts};
pub use error::{ApiError, ERROR_TYPE_HEADER, ErrorKind, FakeError, REQUEST_ID_HEADER};
pub use faults::{
    DENIED_CALLER, FaultConfig, IamDenial, LatencyMs, ScriptedFault, iam_denial_message,
};
pub use model::{ClearAnswer, Expiration, MISSING_USER_MESSAGE, MissingAnswer, Tag, UserRecord};
pub use routes::DEFAULT_MAX_RESULTS;
pub use server::{FakeChime, FakeChimeHandle, serve, serve_until};
pub use tls::{TestCa, TlsFront, TlsFrontError};
