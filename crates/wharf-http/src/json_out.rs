//! Hand-written JSON output for the hottest answer, a pull of up to 100
//! messages. Through serde every body byte went through a per-byte escape
//! table and every id through `to_string`; here bodies that need no escaping
//! (nearly all of them) are copied whole, and everything else is written in
//! place into the one pre-sized buffer.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use wharf_core::model::{ContentType, MessageView, QueueMetrics};

/// Appends `text` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        // Rare: let serde_json do the escaping rules (control characters,
        // quotes, backslashes). Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
        return;
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// Whether any byte must be escaped inside a JSON string. Written as a
/// branch-free fold over fixed chunks so the compiler vectorizes it; an
/// early exit per byte would not be.
fn needs_escape(bytes: &[u8]) -> bool {
    const CHUNK: usize = 32;
    let flag = |byte: u8| byte < 0x20 || byte == b'"' || byte == b'\\';
    let mut chunks = bytes.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &byte| any | flag(byte)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&byte| flag(byte))
}

/// Appends a message body as the API renders it: `text` as the string it is
/// (invalid UTF-8, which push never stores, would be replaced rather than
/// sent), everything else base64 (RFC 4648) — base64 never needs escaping.
pub fn write_body(out: &mut Vec<u8>, message: &MessageView) {
    match message.content_type {
        ContentType::Text => match std::str::from_utf8(&message.body) {
            Ok(text) => write_str(out, text),
            Err(_) => write_str(out, &String::from_utf8_lossy(&message.body)),
        },
        ContentType::Json | ContentType::Bytes | ContentType::V8 => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(message.body.len(), true).unwrap_or(0), 0);
            let written = STANDARD.encode_slice(&message.body, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
    }
}

/// Appends the `result` of a pull: `message_backlog_count`, the messages
/// (with `lease_id`) and `metadata.metrics`, the fields and order of the
/// reference.
pub fn write_pull_result(out: &mut Vec<u8>, messages: &[MessageView], metrics: &QueueMetrics, source: &str) {
    // Writes into a Vec cannot fail; the results of write! are ignored.
    let _ = write!(out, "{{\"message_backlog_count\":{},\"messages\":[", metrics.backlog_count);
    for (index, message) in messages.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{{\"id\":\"{}\",\"body\":", message.id);
        write_body(out, message);
        let _ =
            write!(out, ",\"timestamp_ms\":{},\"attempts\":{},\"lease_id\":", message.timestamp_ms, message.attempts);
        write_str(out, &message.handle);
        out.extend_from_slice(b",\"metadata\":{\"CF-sourceMessageSource\":");
        write_str(out, source);
        out.extend_from_slice(b",\"CF-Content-Type\":");
        write_str(out, message.content_type.as_str());
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"],");
    write_metadata_fields(out, metrics);
    out.push(b'}');
}

/// Appends the `result` of a push: `{"metadata":{"metrics":{...}}}`. A
/// push of one message is the most frequent request of all; a `Value` tree
/// cost it three maps and their keys.
pub fn write_push_result(out: &mut Vec<u8>, metrics: &QueueMetrics) {
    out.push(b'{');
    write_metadata_fields(out, metrics);
    out.push(b'}');
}

/// Appends the `result` of an ack: `ackCount`, `retryCount`, `warnings`.
pub fn write_ack_result(out: &mut Vec<u8>, ack_count: u64, retry_count: u64, warnings: &BTreeMap<String, String>) {
    let _ = write!(out, "{{\"ackCount\":{ack_count},\"retryCount\":{retry_count},\"warnings\":");
    // Nearly always empty; serde_json's escaping for the rare ones. Writing
    // into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, warnings);
    out.push(b'}');
}

/// `"metadata":{"metrics":{...}}`, the queue's metrics after the operation.
fn write_metadata_fields(out: &mut Vec<u8>, metrics: &QueueMetrics) {
    let _ = write!(
        out,
        "\"metadata\":{{\"metrics\":{{\"backlog_count\":{},\"backlog_bytes\":{},\"oldest_message_timestamp_ms\":{}}}}}",
        metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use wharf_core::MessageId;

    fn written(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, text);
        out
    }

    #[test]
    fn plain_and_escaped_strings_match_serde() {
        for text in ["", "hello", "a\"b", "back\\slash", "tab\there", "\u{1}", "é ünïcode ✓", &"x".repeat(100)] {
            assert_eq!(written(text), serde_json::to_vec(text).unwrap_or_default(), "{text:?}");
        }
        let mut long = "y".repeat(70);
        long.push('\n');
        assert_eq!(written(&long), serde_json::to_vec(&long).unwrap_or_default());
    }

    proptest! {
        #[test]
        fn any_string_round_trips(text in any::<String>()) {
            let parsed: String = serde_json::from_slice(&written(&text)).unwrap_or_default();
            prop_assert_eq!(parsed, text);
        }
    }

    #[test]
    fn pull_result_has_the_reference_shape() {
        let message = |content_type, body: &[u8]| MessageView {
            id: MessageId(7),
            body: body.to_vec(),
            content_type,
            timestamp_ms: 5,
            attempts: 2,
            handle: "lease\"x".into(),
        };
        let messages = [message(ContentType::Text, b"say \"hi\""), message(ContentType::Json, br#"{"a":1}"#)];
        let metrics = QueueMetrics { backlog_count: 3, backlog_bytes: 40, oldest_message_timestamp_ms: 9 };
        let mut out = Vec::new();
        write_pull_result(&mut out, &messages, &metrics, "api");
        let value: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(value["message_backlog_count"], 3);
        assert_eq!(value["metadata"]["metrics"]["backlog_bytes"], 40);
        assert_eq!(value["metadata"]["metrics"]["oldest_message_timestamp_ms"], 9);
        let first = &value["messages"][0];
        assert_eq!(first["id"], MessageId(7).to_string());
        assert_eq!(first["body"], "say \"hi\"");
        assert_eq!(first["attempts"], 2);
        assert_eq!(first["timestamp_ms"], 5);
        assert_eq!(first["lease_id"], "lease\"x");
        assert_eq!(first["metadata"]["CF-Content-Type"], "text");
        assert_eq!(first["metadata"]["CF-sourceMessageSource"], "api");
        assert_eq!(value["messages"][1]["body"], "eyJhIjoxfQ==");
        assert_eq!(value["messages"][1]["metadata"]["CF-Content-Type"], "json");
    }

    #[test]
    fn invalid_utf8_text_is_replaced_not_sent_raw() {
        let message = MessageView {
            id: MessageId(1),
            body: vec![b'a', 0xff, b'b'],
            content_type: ContentType::Text,
            timestamp_ms: 0,
            attempts: 1,
            handle: String::new(),
        };
        let mut out = Vec::new();
        write_body(&mut out, &message);
        assert_eq!(String::from_utf8(out).unwrap_or_default(), "\"a\u{fffd}b\"");
    }

    fn parsed(out: &[u8]) -> Value {
        serde_json::from_slice(out).unwrap_or(Value::Null)
    }

    #[test]
    fn push_result_is_the_metrics_under_metadata() {
        let metrics =
            QueueMetrics { backlog_count: 3, backlog_bytes: 4096, oldest_message_timestamp_ms: 1_700_000_000_000 };
        let mut out = Vec::new();
        write_push_result(&mut out, &metrics);
        let expected = json!({"metadata": {"metrics": {
            "backlog_count": 3, "backlog_bytes": 4096, "oldest_message_timestamp_ms": 1_700_000_000_000u64,
        }}});
        assert_eq!(parsed(&out), expected);
    }

    #[test]
    fn ack_result_carries_counts_and_escaped_warnings() {
        let mut out = Vec::new();
        write_ack_result(&mut out, 2, 1, &BTreeMap::new());
        assert_eq!(parsed(&out), json!({"ackCount": 2, "retryCount": 1, "warnings": {}}));

        let warnings = BTreeMap::from([("bad\"id\n".to_string(), "lease is malformed".to_string())]);
        let mut out = Vec::new();
        write_ack_result(&mut out, 0, 0, &warnings);
        assert_eq!(
            parsed(&out),
            json!({"ackCount": 0, "retryCount": 0, "warnings": {"bad\"id\n": "lease is malformed"}})
        );
    }
}
