//! Request bodies as clients send them, and their conversion into the
//! domain's requests. Unknown fields are ignored: clients send extras such as
//! `environment_name`, or whole message objects in `acks`.

use serde::Deserialize;
use serde_json::Value;
use wharf_core::limits::defaults;
use wharf_core::model::{
    ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, QueueSettings, QueueUpdate, RedriveRequest,
    RetryRequest,
};
use wharf_core::validate::REDRIVE_BATCH_MAX;
use wharf_core::{Limits, WharfError, WharfResult};

fn invalid(detail: impl Into<String>) -> WharfError {
    WharfError::JsonInvalid { detail: detail.into() }
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsBody {
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub delivery_delay: Option<u32>,
    pub delivery_paused: Option<bool>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub message_retention_period: Option<u32>,
}

impl SettingsBody {
    /// Settings with defaults for whatever is absent (create and PUT).
    pub fn or_defaults(&self) -> QueueSettings {
        let defaults = QueueSettings::default();
        QueueSettings {
            delivery_delay: self.delivery_delay.unwrap_or(defaults.delivery_delay),
            delivery_paused: self.delivery_paused.unwrap_or(defaults.delivery_paused),
            message_retention_period: self.message_retention_period.unwrap_or(defaults.message_retention_period),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateQueueBody {
    pub queue_name: String,
    pub settings: Option<SettingsBody>,
}

/// PUT and PATCH share the body; they differ in what absence means.
#[derive(Debug, Deserialize)]
pub struct UpdateQueueBody {
    pub queue_name: Option<String>,
    pub settings: Option<SettingsBody>,
}

impl UpdateQueueBody {
    /// PUT: the configuration is overwritten; absent settings take defaults.
    pub fn replacement(&self) -> QueueUpdate {
        let settings = self.settings.as_ref().map(SettingsBody::or_defaults).unwrap_or_default();
        QueueUpdate {
            name: self.queue_name.clone(),
            delivery_delay: Some(settings.delivery_delay),
            delivery_paused: Some(settings.delivery_paused),
            message_retention_period: Some(settings.message_retention_period),
        }
    }

    /// PATCH: absent fields keep their value.
    pub fn merge(&self) -> QueueUpdate {
        let settings = self.settings.as_ref();
        QueueUpdate {
            name: self.queue_name.clone(),
            delivery_delay: settings.and_then(|s| s.delivery_delay),
            delivery_paused: settings.and_then(|s| s.delivery_paused),
            message_retention_period: settings.and_then(|s| s.message_retention_period),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ConsumerSettingsBody {
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub batch_size: Option<u32>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub max_concurrency: Option<u32>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub max_retries: Option<u32>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub max_wait_time_ms: Option<u32>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub retry_delay: Option<u32>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub visibility_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct ConsumerBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub script_name: Option<String>,
    /// The older name of `script_name`.
    pub script: Option<String>,
    pub environment_name: Option<String>,
    pub dead_letter_queue: Option<String>,
    pub settings: Option<ConsumerSettingsBody>,
}

impl ConsumerBody {
    /// The consumer to create or replace, with defaults filled in.
    pub fn into_spec(self) -> WharfResult<ConsumerSpec> {
        let kind = match self.kind.as_str() {
            "worker" => {
                let script_name = self
                    .script_name
                    .or(self.script)
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| invalid("a worker consumer needs script_name"))?;
                let environment_name = self.environment_name.filter(|name| !name.is_empty());
                ConsumerKind::Worker { script_name, environment_name }
            }
            "http_pull" => ConsumerKind::HttpPull,
            other => {
                let other: String = other.chars().take(40).collect();
                return Err(invalid(format!("consumer type must be \"worker\" or \"http_pull\", not {other:?}")));
            }
        };
        let given = self.settings.unwrap_or_default();
        let defaults = ConsumerSettings::defaults_for(&kind);
        let settings = ConsumerSettings {
            batch_size: given.batch_size.unwrap_or(defaults.batch_size),
            max_retries: given.max_retries.unwrap_or(defaults.max_retries),
            retry_delay: given.retry_delay.unwrap_or(defaults.retry_delay),
            max_wait_time_ms: given.max_wait_time_ms.unwrap_or(defaults.max_wait_time_ms),
            max_concurrency: given.max_concurrency.or(defaults.max_concurrency),
            visibility_timeout_ms: given.visibility_timeout_ms.unwrap_or(defaults.visibility_timeout_ms),
        };
        let dead_letter_queue = self.dead_letter_queue.filter(|name| !name.is_empty());
        Ok(ConsumerSpec { kind, dead_letter_queue, settings })
    }
}

/// One message of a push or batch.
#[derive(Debug, Deserialize)]
pub struct MessageBody {
    pub body: Value,
    pub content_type: Option<String>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub delay_seconds: Option<i64>,
}

impl MessageBody {
    /// Bytes to store: the string of a `text` body, compact JSON of a `json` one.
    pub fn into_new_message(self, limits: &Limits) -> WharfResult<NewMessage> {
        let content_type = match self.content_type.as_deref().unwrap_or("json") {
            "json" => ContentType::Json,
            "text" => ContentType::Text,
            other => {
                let other: String = other.chars().take(40).collect();
                return Err(WharfError::MessageMetadataInvalid {
                    detail: format!("content_type must be \"text\" or \"json\", not {other:?}"),
                });
            }
        };
        let body = match (content_type, self.body) {
            (ContentType::Text, Value::String(text)) => text.into_bytes(),
            (ContentType::Text, _) => return Err(invalid("a text message body must be a json string")),
            (_, value) => serde_json::to_vec(&value).map_err(WharfError::internal)?,
        };
        let delay_seconds = self.delay_seconds.map(|delay| message_delay(delay, limits)).transpose()?;
        Ok(NewMessage { body, content_type, delay_seconds })
    }
}

fn delay_in_range(delay: i64, limits: &Limits) -> Option<u32> {
    u32::try_from(delay).ok().filter(|delay| *delay <= limits.max_delay_seconds)
}

/// The delay of one message or one retry: out of range on either side is
/// invalid metadata (10203), the same answer for -1 as for too large.
fn message_delay(delay: i64, limits: &Limits) -> WharfResult<u32> {
    delay_in_range(delay, limits).ok_or_else(|| WharfError::MessageMetadataInvalid {
        detail: format!("delay_seconds must be between 0 and {}", limits.max_delay_seconds),
    })
}

#[derive(Debug, Deserialize)]
pub struct BatchBody {
    pub messages: Vec<MessageBody>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub delay_seconds: Option<i64>,
}

impl BatchBody {
    /// The batch's messages; a per-message delay wins over the batch's.
    pub fn into_new_messages(self, limits: &Limits) -> WharfResult<Vec<NewMessage>> {
        let batch_delay = match self.delay_seconds {
            None => None,
            Some(delay) => Some(
                delay_in_range(delay, limits)
                    .ok_or(WharfError::BatchDelayInvalid { limit: limits.max_delay_seconds })?,
            ),
        };
        self.messages
            .into_iter()
            .map(|message| {
                let mut new = message.into_new_message(limits)?;
                new.delay_seconds = new.delay_seconds.or(batch_delay);
                Ok(new)
            })
            .collect()
    }
}

/// The longest long-poll wait a pull may ask for (`wait_time_ms`, a Wharf extension).
pub const MAX_PULL_WAIT_MS: u64 = 20_000;

#[derive(Debug, Deserialize)]
pub struct PullBody {
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub batch_size: Option<u32>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub visibility_timeout_ms: Option<u64>,
    /// The name older SDKs used for `visibility_timeout_ms`.
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub visibility_timeout: Option<u64>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub wait_time_ms: Option<u64>,
}

impl PullBody {
    pub fn wait_ms(&self) -> WharfResult<u64> {
        let wait = self.wait_time_ms.unwrap_or(0);
        if wait > MAX_PULL_WAIT_MS {
            return Err(invalid(format!("wait_time_ms must be between 0 and {MAX_PULL_WAIT_MS}")));
        }
        Ok(wait)
    }
}

#[derive(Debug, Deserialize)]
pub struct LeaseRef {
    pub lease_id: String,
}

#[derive(Debug, Deserialize)]
pub struct RetryBody {
    pub lease_id: String,
    /// Signed so that a negative delay is a range error (10203), as on a
    /// message, rather than a schema error.
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub delay_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct AckBody {
    #[serde(default)]
    pub acks: Vec<LeaseRef>,
    #[serde(default)]
    pub retries: Vec<RetryBody>,
}

impl AckBody {
    /// The acked lease ids, moved out (a batch names up to 100).
    pub fn into_lease_ids(self) -> Vec<String> {
        self.acks.into_iter().map(|ack| ack.lease_id).collect()
    }

    /// The retries, each `delay_seconds` checked against the limits.
    pub fn retry_requests(&self, limits: &Limits) -> WharfResult<Vec<RetryRequest>> {
        self.retries
            .iter()
            .map(|retry| {
                let delay_seconds = retry.delay_seconds.map(|delay| message_delay(delay, limits)).transpose()?;
                Ok(RetryRequest { lease_id: retry.lease_id.clone(), delay_seconds })
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct BatchSizeBody {
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub batch_size: Option<u32>,
}

impl BatchSizeBody {
    pub fn batch_size(&self) -> u32 {
        self.batch_size.unwrap_or(defaults::PULL_BATCH_SIZE)
    }
}

#[derive(Debug, Deserialize)]
pub struct PeekRef {
    #[serde(rename = "ref")]
    pub reference: String,
}

#[derive(Debug, Deserialize)]
pub struct PurgeRefsBody {
    pub refs: Vec<PeekRef>,
}

#[derive(Debug, Deserialize)]
pub struct ExtendBody {
    #[serde(default)]
    pub extend: Vec<LeaseRef>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub visibility_timeout_ms: Option<u64>,
}

/// `POST …/messages/redrive` (a Wharf extension). An empty body moves up to
/// the most one call moves into the queue that dead-letters into this one.
#[derive(Debug, Deserialize)]
pub struct RedriveBody {
    #[serde(default)]
    pub destination_queue_id: Option<String>,
    #[serde(default, deserialize_with = "crate::integral::option")]
    pub max_messages: Option<u32>,
}

impl RedriveBody {
    pub fn into_request(self) -> WharfResult<RedriveRequest> {
        let destination = match self.destination_queue_id {
            Some(raw) => Some(raw.parse().map_err(|_| WharfError::RedriveDestination {
                detail: format!("destination_queue_id {raw:?} is not a queue id (32 hex digits)"),
            })?),
            None => None,
        };
        Ok(RedriveRequest { destination, max_messages: self.max_messages.unwrap_or(REDRIVE_BATCH_MAX) })
    }
}

#[derive(Debug, Deserialize)]
pub struct PurgeBody {
    pub delete_messages_permanently: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::parse_json;

    #[test]
    fn text_body_must_be_a_string_and_json_is_compact() {
        let limits = Limits::cloudflare();
        let text: MessageBody = parse_json(br#"{"body":{"a":1},"content_type":"text"}"#).unwrap();
        assert!(matches!(text.into_new_message(&limits), Err(WharfError::JsonInvalid { .. })));
        let json: MessageBody = parse_json(br#"{"body": { "a" : [1, 2] }}"#).unwrap();
        let message = json.into_new_message(&limits).unwrap();
        assert_eq!(message.body, br#"{"a":[1,2]}"#);
        assert_eq!(message.content_type, ContentType::Json);
        let bytes: MessageBody = parse_json(br#"{"body":"x","content_type":"bytes"}"#).unwrap();
        assert!(matches!(bytes.into_new_message(&limits), Err(WharfError::MessageMetadataInvalid { .. })));
    }

    #[test]
    fn message_delay_wins_over_batch_delay() {
        let limits = Limits::cloudflare();
        let batch: BatchBody =
            parse_json(br#"{"delay_seconds":5,"messages":[{"body":1},{"body":2,"delay_seconds":0}]}"#).unwrap();
        let messages = batch.into_new_messages(&limits).unwrap();
        assert_eq!(messages[0].delay_seconds, Some(5));
        assert_eq!(messages[1].delay_seconds, Some(0));
        let bad: BatchBody = parse_json(br#"{"delay_seconds":-1,"messages":[]}"#).unwrap();
        assert!(matches!(bad.into_new_messages(&limits), Err(WharfError::BatchDelayInvalid { .. })));
    }

    #[test]
    fn retry_delay_out_of_range_is_invalid_metadata_on_both_sides() {
        let limits = Limits::cloudflare();
        for delay in ["-1", "86401", "-9223372036854775808"] {
            let text = format!(r#"{{"retries":[{{"lease_id":"x","delay_seconds":{delay}}}]}}"#);
            let body: AckBody = parse_json(text.as_bytes()).unwrap();
            assert!(matches!(body.retry_requests(&limits), Err(WharfError::MessageMetadataInvalid { .. })), "{delay}");
        }
        let body: AckBody =
            parse_json(br#"{"retries":[{"lease_id":"x","delay_seconds":86400},{"lease_id":"y"}]}"#).unwrap();
        let retries = body.retry_requests(&limits).unwrap();
        assert_eq!((retries[0].delay_seconds, retries[1].delay_seconds), (Some(86_400), None));
    }

    #[test]
    fn put_resets_absent_settings_and_patch_keeps_them() {
        let body: UpdateQueueBody = parse_json(br#"{"settings":{"delivery_paused":true}}"#).unwrap();
        let put = body.replacement();
        assert_eq!(put.delivery_delay, Some(0));
        assert_eq!(put.message_retention_period, Some(defaults::RETENTION_SECONDS));
        let patch = body.merge();
        assert_eq!((patch.delivery_paused, patch.delivery_delay), (Some(true), None));
    }
}
