//! The limits every request is checked against. The default profile is
//! Cloudflare's exactly; a relaxed profile may raise them (never lower).

use serde::{Deserialize, Serialize};

/// 1 KB as Cloudflare counts it for queue limits.
pub const KB: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message body, in bytes.
    pub max_message_bytes: u64,
    /// Most messages in one batch push.
    pub max_batch_messages: u64,
    /// Largest total body size of one batch push, in bytes.
    pub max_batch_bytes: u64,
    /// Most messages one pull, preview or peek returns.
    pub max_pull_batch: u32,
    /// Longest visibility timeout of a pull, in milliseconds.
    pub max_visibility_timeout_ms: u64,
    /// Longest delay (message, batch, retry, queue default), in seconds.
    pub max_delay_seconds: u32,
    /// Shortest message retention period, in seconds.
    pub min_retention_seconds: u32,
    /// Longest message retention period, in seconds.
    pub max_retention_seconds: u32,
    /// Highest `max_retries` of a consumer.
    pub max_retries: u32,
    /// Largest HTTP request body the server reads, in bytes.
    pub max_request_bytes: u64,
    /// Most queues one account may have (dead letter queues created
    /// automatically are not refused, see docs/api.md).
    pub max_queues_per_account: u64,
    /// Largest backlog of one queue, in body bytes: a push that would pass
    /// it is refused (429, 10251).
    pub max_queue_backlog_bytes: u64,
    /// Most request-body bytes the server holds at once, over all requests
    /// being read or handled; a request that would pass it is refused at
    /// once (429, 10250) instead of growing memory without bound.
    pub max_inflight_request_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self::cloudflare()
    }
}

impl Limits {
    /// Cloudflare Queues' published limits.
    pub fn cloudflare() -> Self {
        Self {
            max_message_bytes: 128 * KB,
            max_batch_messages: 100,
            max_batch_bytes: 256 * KB,
            max_pull_batch: 100,
            max_visibility_timeout_ms: 12 * 3600 * 1000,
            max_delay_seconds: 86_400,
            min_retention_seconds: 60,
            max_retention_seconds: 1_209_600,
            max_retries: 100,
            // A batch of 100 JSON-escaped bodies can be several times its
            // decoded size; 4 MiB leaves room for that and nothing more.
            max_request_bytes: 4 * 1024 * 1024,
            max_queues_per_account: 10_000,
            max_queue_backlog_bytes: 25 * KB * KB * KB,
            max_inflight_request_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Defaults of settings the API lets clients leave out.
pub mod defaults {
    pub const DELIVERY_DELAY_SECONDS: u32 = 0;
    pub const RETENTION_SECONDS: u32 = 345_600;
    pub const MAX_RETRIES: u32 = 3;
    pub const RETRY_DELAY_SECONDS: u32 = 0;
    pub const WORKER_BATCH_SIZE: u32 = 10;
    pub const WORKER_MAX_WAIT_TIME_MS: u32 = 5_000;
    pub const PULL_BATCH_SIZE: u32 = 5;
    pub const VISIBILITY_TIMEOUT_MS: u64 = 30_000;
    pub const PAGE_SIZE: u32 = 100;
    pub const SUBSCRIPTION_PAGE_SIZE: u32 = 20;
}
