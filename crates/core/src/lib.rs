//! Domain core of chime-identity-sync.
//!
//! Keeps Amazon Chime SDK AppInstanceUsers in step with identity sources:
//! validated identities ([`identity`], [`profile`]), the ports the handlers
//! talk through ([`directory::Directory`], [`queue::Queue`],
//! [`user_pool::UserPool`]) with in-memory implementations ([`memory`]), the IdP message schema ([`schema`]) and the
//! Lambda handlers ([`handlers`]) as plain async functions over ports, and the
//! credential exchange's token validation and STS port ([`credentials`]), and
//! what the functions count for CloudWatch ([`metrics`]).
//! No AWS SDK dependency: the real adapters live in `chime-sync-aws`.

pub mod credentials;
pub mod directory;
pub mod error;
pub mod handlers;
pub mod identity;
pub mod ldap;
pub mod ledger;
pub mod memory;
pub mod metrics;
pub mod planner;
pub mod profile;
pub mod provisioning;
pub mod queue;
pub mod rate;
pub mod replay;
pub mod schema;
pub mod sync;
pub mod user_pool;

pub use directory::{Applied, Directory, DirectoryPage, DirectoryUser};
pub use error::{DirectoryError, ErrorClass, InputError, QueueError, SyncError};
pub use identity::{AppInstanceArn, UserId};
pub use profile::{DisplayName, DisplayNamePolicy, Metadata, UserProfile};
pub use provisioning::Provisioning;
pub use queue::{OutgoingMessage, Queue};
pub use user_pool::{PoolPage, PoolUser, UserPool, UserPoolError};
