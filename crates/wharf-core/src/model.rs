//! Domain records exchanged between the HTTP layer and the storage backends.
//! These are Wharf's own shapes; the HTTP layer renders the v4 JSON from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ConsumerId, MessageId, QueueId, SubscriptionId, TokenId};
use crate::limits::defaults;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    pub delivery_delay: u32,
    pub delivery_paused: bool,
    pub message_retention_period: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            delivery_delay: defaults::DELIVERY_DELAY_SECONDS,
            delivery_paused: false,
            message_retention_period: defaults::RETENTION_SECONDS,
        }
    }
}

/// A change to a queue; absent fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUpdate {
    pub name: Option<String>,
    pub delivery_delay: Option<u32>,
    pub delivery_paused: Option<bool>,
    pub message_retention_period: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub id: QueueId,
    pub account: AccountId,
    pub name: String,
    pub created_on_ms: u64,
    pub modified_on_ms: u64,
    pub settings: QueueSettings,
    pub consumers: Vec<Consumer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsumerKind {
    Worker { script_name: String, environment_name: Option<String> },
    HttpPull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSettings {
    pub batch_size: u32,
    pub max_retries: u32,
    pub retry_delay: u32,
    /// Worker consumers only.
    pub max_wait_time_ms: u32,
    /// Worker consumers only; `None` means automatic.
    pub max_concurrency: Option<u32>,
    /// Pull consumers only: the default lease length of a pull.
    pub visibility_timeout_ms: u64,
}

impl ConsumerSettings {
    pub fn defaults_for(kind: &ConsumerKind) -> Self {
        let batch_size = match kind {
            ConsumerKind::Worker { .. } => defaults::WORKER_BATCH_SIZE,
            ConsumerKind::HttpPull => defaults::PULL_BATCH_SIZE,
        };
        Self {
            batch_size,
            max_retries: defaults::MAX_RETRIES,
            retry_delay: defaults::RETRY_DELAY_SECONDS,
            max_wait_time_ms: defaults::WORKER_MAX_WAIT_TIME_MS,
            max_concurrency: None,
            visibility_timeout_ms: defaults::VISIBILITY_TIMEOUT_MS,
        }
    }
}

/// What a client asks for when it creates or replaces a consumer; settings
/// already have their defaults filled in and are validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub kind: ConsumerKind,
    /// Queue *name* of the dead letter queue; created on first use if missing.
    pub dead_letter_queue: Option<String>,
    pub settings: ConsumerSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: ConsumerId,
    pub queue: QueueId,
    pub kind: ConsumerKind,
    pub dead_letter_queue: Option<String>,
    pub settings: ConsumerSettings,
    pub created_on_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Text,
    Json,
    Bytes,
    V8,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Text => "text",
            ContentType::Json => "json",
            ContentType::Bytes => "bytes",
            ContentType::V8 => "v8",
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            ContentType::Text => 0,
            ContentType::Json => 1,
            ContentType::Bytes => 2,
            ContentType::V8 => 3,
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(ContentType::Text),
            1 => Some(ContentType::Json),
            2 => Some(ContentType::Bytes),
            3 => Some(ContentType::V8),
            _ => None,
        }
    }
}

/// A message to enqueue. `body` is the UTF-8 text for `text`, the serialized
/// JSON for `json`. `delay_seconds` is the resolved per-message delay, or
/// `None` to use the queue's `delivery_delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub body: Vec<u8>,
    pub content_type: ContentType,
    pub delay_seconds: Option<u32>,
}

/// A message as handed out by pull, preview or peek.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: MessageId,
    pub body: Vec<u8>,
    pub content_type: ContentType,
    pub timestamp_ms: u64,
    pub attempts: u32,
    /// A lease token for pull and preview, a peek reference for peek.
    pub handle: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMetrics {
    pub backlog_count: u64,
    pub backlog_bytes: u64,
    pub oldest_message_timestamp_ms: u64,
}

/// One queue's backlog, for per-queue monitoring figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBacklog {
    pub id: QueueId,
    pub name: String,
    pub delivery_paused: bool,
    pub metrics: QueueMetrics,
}

/// Messages to move out of a queue, typically a dead letter queue, back
/// into a queue that consumes them (DLQ redrive, a Wharf extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedriveRequest {
    /// `None`: the one queue whose consumer names this queue as its dead
    /// letter queue.
    pub destination: Option<QueueId>,
    /// Most messages this call moves ([`crate::validate::redrive_batch`]).
    pub max_messages: u32,
}

/// What a redrive did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedriveOutcome {
    pub moved: u64,
    pub destination: QueueId,
    /// Of the queue moved from, after the move.
    pub metrics: QueueMetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullRequest {
    /// `None`: the consumer's `batch_size`.
    pub batch_size: Option<u32>,
    /// `None`: the consumer's `visibility_timeout_ms`.
    pub visibility_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResult {
    pub messages: Vec<MessageView>,
    pub metrics: QueueMetrics,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRequest {
    pub lease_id: String,
    /// `None`: the consumer's `retry_delay`.
    pub delay_seconds: Option<u32>,
}

/// Outcome of ack/retry; leases that could not be used are reported in
/// `warnings` (lease id → reason) instead of failing the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckOutcome {
    pub ack_count: u64,
    pub retry_count: u64,
    pub warnings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtendOutcome {
    /// Old lease id → new lease id.
    pub extended: BTreeMap<String, String>,
    pub warnings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeStatus {
    /// `None` if the queue was never purged.
    pub started_at_ms: Option<u64>,
    pub completed: bool,
}

/// Filter and page of a queue list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueListRequest {
    /// Exact names to keep; empty keeps all.
    pub names: Vec<String>,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    pub total_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub created_on_ms: u64,
}

/// A token as stored: only the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: TokenId,
    pub account: AccountId,
    pub name: String,
    pub scope: Scope,
    pub secret_hash: [u8; 32],
    pub created_on_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub account: AccountId,
    pub name: String,
    pub enabled: bool,
    /// The `source` object as the client sent it (`type` plus its fields).
    pub source: serde_json::Value,
    pub destination_queue: QueueId,
    pub events: Vec<String>,
    pub created_at_ms: u64,
    pub modified_at_ms: u64,
}

/// A change to a subscription; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub events: Option<Vec<String>>,
    pub destination_queue: Option<QueueId>,
}
