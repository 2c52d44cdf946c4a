//! The v4 JSON of Wharf's domain records (reference §4).

use base64::engine::general_purpose::STANDARD;

use base64::Engine as _;
use serde_json::{json, Value};
use wharf_core::clock::format_rfc3339_ms;
use wharf_core::model::{
    Consumer, ConsumerKind, ContentType, MessageView, PullResult, PurgeStatus, Queue, QueueMetrics, Subscription,
};

/// What `CF-sourceMessageSource` says of messages pushed through this API.
const MESSAGE_SOURCE: &str = "api";

pub fn queue(queue: &Queue) -> Value {
    let consumers: Vec<Value> = queue.consumers.iter().map(|c| consumer(c, &queue.name)).collect();
    json!({
        "queue_id": queue.id.to_string(),
        "queue_name": queue.name,
        "created_on": format_rfc3339_ms(queue.created_on_ms),
        "modified_on": format_rfc3339_ms(queue.modified_on_ms),
        "producers": [],
        "producers_total_count": 0,
        "consumers_total_count": consumers.len(),
        "consumers": consumers,
        "settings": {
            "delivery_delay": queue.settings.delivery_delay,
            "delivery_paused": queue.settings.delivery_paused,
            "message_retention_period": queue.settings.message_retention_period,
        },
    })
}

/// A consumer. Worker consumers carry `script_name` (the spec) and `script`,
/// `environment` (what wrangler reads inside `Queue.consumers`). No `service`:
/// when it is set, `wrangler queues consumer remove` asks
/// `/workers/services/{name}` for the default environment, which Wharf has not.
pub fn consumer(consumer: &Consumer, queue_name: &str) -> Value {
    let settings = &consumer.settings;
    let mut value = json!({
        "consumer_id": consumer.id.to_string(),
        "queue_name": queue_name,
        "created_on": format_rfc3339_ms(consumer.created_on_ms),
        "dead_letter_queue": consumer.dead_letter_queue.clone().unwrap_or_default(),
    });
    let extra = match &consumer.kind {
        ConsumerKind::Worker { script_name, environment_name } => json!({
            "type": "worker",
            "script_name": script_name,
            "script": script_name,
            "environment": environment_name.clone().unwrap_or_default(),
            "settings": {
                "batch_size": settings.batch_size,
                "max_concurrency": settings.max_concurrency,
                "max_retries": settings.max_retries,
                "max_wait_time_ms": settings.max_wait_time_ms,
                "retry_delay": settings.retry_delay,
            },
        }),
        ConsumerKind::HttpPull => json!({
            "type": "http_pull",
            "settings": {
                "batch_size": settings.batch_size,
                "max_retries": settings.max_retries,
                "retry_delay": settings.retry_delay,
                "visibility_timeout_ms": settings.visibility_timeout_ms,
            },
        }),
    };
    if let (Some(target), Value::Object(fields)) = (value.as_object_mut(), extra) {
        target.extend(fields);
    }
    value
}

pub fn metrics(metrics: &QueueMetrics) -> Value {
    json!({
        "backlog_count": metrics.backlog_count,
        "backlog_bytes": metrics.backlog_bytes,
        "oldest_message_timestamp_ms": metrics.oldest_message_timestamp_ms,
    })
}

/// `text` bodies as the string they are; everything else base64 (RFC 4648).
pub fn message_body(message: &MessageView) -> String {
    match message.content_type {
        ContentType::Text => match std::str::from_utf8(&message.body) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(&message.body).into_owned(),
        },
        ContentType::Json | ContentType::Bytes | ContentType::V8 => STANDARD.encode(&message.body),
    }
}

fn message_metadata(message: &MessageView) -> Value {
    json!({"CF-sourceMessageSource": MESSAGE_SOURCE, "CF-Content-Type": message.content_type.as_str()})
}

/// A message of pull or preview: the handle is its `lease_id`.
pub fn leased_message(message: &MessageView) -> Value {
    json!({
        "id": message.id.to_string(),
        "body": message_body(message),
        "timestamp_ms": message.timestamp_ms,
        "attempts": message.attempts,
        "lease_id": message.handle,
        "metadata": message_metadata(message),
    })
}

/// Bytes the JSON of a pull result takes, roughly (base64 grows bodies by a
/// third; ids, leases and metadata add about 200 bytes a message).
pub fn pull_result_size(result: &PullResult) -> usize {
    result.messages.iter().map(|message| message.body.len() * 4 / 3 + 256).sum::<usize>() + 256
}

/// Writes the `result` of a pull straight from the messages: pull is the
/// hottest answer, and a `Value` tree would copy every body once more.
pub fn write_pull_result(out: &mut Vec<u8>, result: &PullResult) {
    crate::json_out::write_pull_result(out, &result.messages, &result.metrics, MESSAGE_SOURCE);
}

/// A message of peek: the handle is its `ref`.
pub fn peeked_message(message: &MessageView) -> Value {
    json!({
        "id": message.id.to_string(),
        "body": message_body(message),
        "timestamp_ms": message.timestamp_ms,
        "attempts": message.attempts,
        "ref": message.handle,
        "metadata": message_metadata(message),
    })
}

pub fn purge_status(status: &PurgeStatus) -> Value {
    json!({
        "started_at": status.started_at_ms.map(format_rfc3339_ms).unwrap_or_default(),
        "completed": if status.completed { "true" } else { "false" },
    })
}

pub fn subscription(subscription: &Subscription) -> Value {
    json!({
        "id": subscription.id.to_string(),
        "created_at": format_rfc3339_ms(subscription.created_at_ms),
        "modified_at": format_rfc3339_ms(subscription.modified_at_ms),
        "name": subscription.name,
        "enabled": subscription.enabled,
        "source": subscription.source,
        "destination": {"type": "queues.queue", "queue_id": subscription.destination_queue.to_string()},
        "events": subscription.events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_core::MessageId;

    fn view(content_type: ContentType, body: &[u8]) -> MessageView {
        MessageView {
            id: MessageId(1),
            body: body.to_vec(),
            content_type,
            timestamp_ms: 5,
            attempts: 1,
            handle: "h".into(),
        }
    }

    #[test]
    fn text_bodies_are_plain_and_json_bodies_base64() {
        assert_eq!(message_body(&view(ContentType::Text, b"hi")), "hi");
        assert_eq!(message_body(&view(ContentType::Json, br#"{"a":1}"#)), "eyJhIjoxfQ==");
        let pulled = leased_message(&view(ContentType::Json, b"1"));
        assert_eq!(pulled["metadata"]["CF-Content-Type"], "json");
        assert_eq!(pulled["lease_id"], "h");
    }
}
