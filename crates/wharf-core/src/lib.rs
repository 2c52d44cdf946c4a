//! Wharf's domain layer: identifiers, queue and consumer models, limits and
//! validation, the error catalogue, lease tokens, the clock, and the
//! [`Broker`] trait that every storage backend implements.
//!
//! Nothing here knows about HTTP or about a particular storage engine.

pub mod auth;
pub mod broker;
pub mod clock;
pub mod error;
pub mod ids;
pub mod lease;
pub mod limits;
pub mod model;
pub mod stats;
pub mod validate;

pub use broker::Broker;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ErrorCode, WharfError, WharfResult};
pub use ids::{AccountId, ConsumerId, MessageId, QueueId, SubscriptionId, TokenId};
pub use limits::Limits;
