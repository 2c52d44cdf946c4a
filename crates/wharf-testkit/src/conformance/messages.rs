//! Messages #12–#19 and #23: push, batch, pull, preview, peek, purge by
//! ref, metrics; limits and bad bodies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::{TestServer, START_MS};

fn lease(message: &Value) -> String {
    message["lease_id"].as_str().expect("lease_id").to_string()
}

pub async fn push_and_pull_round_trip(server: &TestServer) {
    let queue = server.pull_queue("round-trip", json!({})).await;
    let messages = format!("/queues/{queue}/messages");
    let pushed = server.push_text(&queue, "hello").await;
    assert_eq!(pushed["metadata"]["metrics"]["backlog_count"], 1, "{pushed}");
    assert_eq!(pushed["metadata"]["metrics"]["backlog_bytes"], 5, "{pushed}");
    assert_eq!(pushed["metadata"]["metrics"]["oldest_message_timestamp_ms"], START_MS);
    let pushed = server.post(&messages, json!({"body": {"k": [1, 2]}, "content_type": "json"})).await.ok();
    assert_eq!(pushed["metadata"]["metrics"]["backlog_count"], 2);
    // No content_type means json.
    server.post(&messages, json!({"body": "quoted"})).await.ok();
    let batch = json!({"messages": [{"body": "t1", "content_type": "text"}, {"body": {"n": 2}, "delay_seconds": 0}]});
    let pushed = server.post(&format!("{messages}/batch"), batch).await.ok();
    assert_eq!(pushed["metadata"]["metrics"]["backlog_count"], 5);

    let result = server.post(&format!("{messages}/pull"), json!({"batch_size": 10})).await.ok();
    assert_eq!(result["message_backlog_count"], 5);
    assert_eq!(result["metadata"]["metrics"]["backlog_count"], 5);
    let pulled = result["messages"].as_array().expect("messages").clone();
    assert_eq!(pulled.len(), 5);
    let mut bodies: Vec<(String, String)> = Vec::new();
    for message in &pulled {
        assert_eq!(message["id"].as_str().map(str::len), Some(32), "{message}");
        assert_eq!(message["attempts"], 1);
        assert_eq!(message["timestamp_ms"], START_MS);
        assert!(!lease(message).is_empty());
        assert_eq!(message["metadata"]["CF-sourceMessageSource"], "api");
        let content_type = message["metadata"]["CF-Content-Type"].as_str().expect("content type").to_string();
        bodies.push((content_type, message["body"].as_str().expect("string body").to_string()));
    }
    bodies.sort();
    let b64 = |text: &str| STANDARD.encode(text);
    let mut expected = vec![
        ("text".to_string(), "hello".to_string()),
        ("json".to_string(), b64(r#"{"k":[1,2]}"#)),
        ("json".to_string(), b64(r#""quoted""#)),
        ("text".to_string(), "t1".to_string()),
        ("json".to_string(), b64(r#"{"n":2}"#)),
    ];
    expected.sort();
    assert_eq!(bodies, expected);

    let again = server.pull(&queue, json!({})).await;
    assert!(again.is_empty(), "leased messages are not handed out twice");
    let leases: Vec<String> = pulled.iter().map(lease).collect();
    let refs: Vec<&str> = leases.iter().map(String::as_str).collect();
    let acked = server.ack(&queue, &refs, json!([])).await;
    assert_eq!(acked, json!({"ackCount": 5, "retryCount": 0, "warnings": {}}));
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);

    // Pull defaults to the consumer's batch_size; bounds are checked.
    for _ in 0..7 {
        server.push_text(&queue, "x").await;
    }
    assert_eq!(server.pull(&queue, json!({})).await.len(), 5);
    let pull = format!("{messages}/pull");
    server.post(&pull, json!({"batch_size": 0})).await.fails(400, 10207);
    server.post(&pull, json!({"batch_size": 101})).await.fails(400, 10207);
    server.post(&pull, json!({"visibility_timeout_ms": 0})).await.fails(400, 10207);
    server.post(&pull, json!({"visibility_timeout_ms": 43_200_001u64})).await.fails(400, 10207);
}

pub async fn push_and_batch_limits(server: &TestServer) {
    let queue = server.pull_queue("limits", json!({})).await;
    let one = format!("/queues/{queue}/messages");
    let batch = format!("/queues/{queue}/messages/batch");
    let text = |size: usize| json!({"body": "x".repeat(size), "content_type": "text"});

    server.post(&one, text(128_001)).await.fails(400, 10204);
    server.post(&batch, json!({"messages": [text(128_001)]})).await.fails(400, 10204);
    let many: Vec<Value> = (0..101).map(|_| text(1)).collect();
    server.post(&batch, json!({"messages": many})).await.fails(400, 10206);
    let heavy: Vec<Value> = (0..3).map(|_| text(100_000)).collect();
    server.post(&batch, json!({"messages": heavy})).await.fails(400, 10205);
    for delay in [json!(86_401), json!(-1)] {
        server.post(&batch, json!({"messages": [text(1)], "delay_seconds": delay})).await.fails(400, 10202);
    }
    server.post(&one, json!({"body": "x", "content_type": "text", "delay_seconds": 86_401})).await.fails(400, 10203);
    server.post(&one, json!({"body": "x", "delay_seconds": -5})).await.fails(400, 10203);
    for content_type in ["bytes", "v8", "xml"] {
        server.post(&one, json!({"body": "x", "content_type": content_type})).await.fails(400, 10203);
    }
    server.post(&one, json!({"body": {"not": "text"}, "content_type": "text"})).await.fails(400, 10207);
    server.post(&one, json!({"content_type": "text"})).await.fails(400, 10207);
    server.post(&batch, json!({})).await.fails(400, 10207);
    server.post(&batch, json!({"messages": {"body": 1}})).await.fails(400, 10207);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0, "failed pushes stored nothing");

    // The limits themselves are allowed.
    server.post(&one, text(128_000)).await.ok();
    let full: Vec<Value> = (0..100).map(|_| text(2_560)).collect();
    server.post(&batch, json!({"messages": full, "delay_seconds": 86_400})).await.ok();
    server.post(&batch, json!({"messages": []})).await.ok();
    let metrics = server.metrics(&queue).await;
    assert_eq!(metrics["backlog_count"], 101);
    assert_eq!(metrics["backlog_bytes"], 128_000 + 256_000);
}

pub async fn failed_batch_stores_nothing(server: &TestServer) {
    let queue = server.pull_queue("atomic", json!({})).await;
    let batch = format!("/queues/{queue}/messages/batch");
    let messages = json!([
        {"body": "fine", "content_type": "text"},
        {"body": "x".repeat(128_001), "content_type": "text"},
        {"body": "fine too", "content_type": "text"},
    ]);
    server.post(&batch, json!({"messages": messages})).await.fails(400, 10204);
    let messages = json!([{"body": "fine", "content_type": "text"}, {"body": 1, "content_type": "bytes"}]);
    server.post(&batch, json!({"messages": messages})).await.fails(400, 10203);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
    assert!(server.pull(&queue, json!({})).await.is_empty());
}

pub async fn malformed_json_and_wrong_shape(server: &TestServer) {
    let queue = server.pull_queue("bodies", json!({})).await;
    let raw = |path: &str, body: Vec<u8>| server.client.post(server.url(path)).bearer_auth(&server.token).body(body);
    let push = format!("/queues/{queue}/messages");
    for malformed in [&b"{"[..], b"{\"body\": }", b"\xff\xfe{}", b"nul", b"{\"body\":\"a\"} trailing"] {
        server.send(raw(&push, malformed.to_vec())).await.fails(400, 10208);
    }
    for misshapen in [&b"[1,2]"[..], b"\"text\"", b"42", b"{\"body\":1,\"content_type\":5}"] {
        server.send(raw(&push, misshapen.to_vec())).await.fails(400, 10207);
    }
    server.send(raw(&format!("/queues/{queue}/messages/pull"), b"{".to_vec())).await.fails(400, 10208);
    server.send(raw(&format!("/queues/{queue}/messages/ack"), b"{\"acks\":[{}]}".to_vec())).await.fails(400, 10207);
    server.send(raw(&format!("/queues/{queue}/messages/ack"), b"{\"acks\":5}".to_vec())).await.fails(400, 10207);
    server.send(raw("/queues", b"{\"queue_name\":\"x\"".to_vec())).await.fails(400, 10208);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
    assert_eq!(server.get("/queues").await.body["result_info"]["total_count"], 1);

    // An empty body is `{}` where the body is optional, text/plain included.
    let empty = server.client.post(server.url(&format!("/queues/{queue}/messages/pull"))).bearer_auth(&server.token);
    assert_eq!(server.send(empty).await.ok()["messages"], json!([]));
    let plain = raw(&push, br#"{"body":"p","content_type":"text"}"#.to_vec()).header("content-type", "text/plain");
    server.send(plain).await.ok();
    assert_eq!(server.metrics(&queue).await["backlog_count"], 1);
}

pub async fn pull_needs_http_pull_consumer(server: &TestServer) {
    let bare = server.create_queue("no-consumer").await;
    server.push_text(&bare, "waiting").await;
    server.post(&format!("/queues/{bare}/messages/pull"), json!({})).await.fails(400, 11007);
    let worked = server.create_queue("worker-only").await;
    server.post(&format!("/queues/{worked}/consumers"), json!({"type": "worker", "script_name": "w"})).await.ok();
    server.post(&format!("/queues/{worked}/messages/pull"), json!({})).await.fails(400, 11007);
    assert_eq!(server.metrics(&bare).await["backlog_count"], 1);
}

pub async fn metrics_are_exact(server: &TestServer) {
    let queue = server.pull_queue("counted", json!({})).await;
    assert_eq!(
        server.metrics(&queue).await,
        json!({"backlog_count": 0, "backlog_bytes": 0, "oldest_message_timestamp_ms": 0})
    );
    server.push_text(&queue, "abc").await;
    server.advance(1_000).await;
    server.push_text(&queue, "hello").await;
    let expected = json!({"backlog_count": 2, "backlog_bytes": 8, "oldest_message_timestamp_ms": START_MS});
    assert_eq!(server.metrics(&queue).await, expected);
    let pulled = server.pull(&queue, json!({"batch_size": 1})).await;
    assert_eq!(pulled[0]["body"], "abc", "the oldest message comes first");
    assert_eq!(server.metrics(&queue).await, expected, "leased messages still count");
    server.ack(&queue, &[&lease(&pulled[0])], json!([])).await;
    assert_eq!(
        server.metrics(&queue).await,
        json!({"backlog_count": 1, "backlog_bytes": 5, "oldest_message_timestamp_ms": START_MS + 1_000})
    );
    // Delayed messages count too.
    server
        .post(&format!("/queues/{queue}/messages"), json!({"body": "z", "content_type": "text", "delay_seconds": 600}))
        .await
        .ok();
    assert_eq!(server.metrics(&queue).await["backlog_count"], 2);
}

pub async fn preview_and_peek_do_not_lease(server: &TestServer) {
    let queue = server.pull_queue("browse", json!({})).await;
    server.push_text(&queue, "one").await;
    server.push_text(&queue, "two").await;
    let preview = server.post(&format!("/queues/{queue}/messages/preview"), json!({"batch_size": 10})).await.ok();
    let previewed = preview["messages"].as_array().expect("messages").clone();
    assert_eq!(previewed.len(), 2);
    for message in &previewed {
        assert!(!lease(message).is_empty());
        assert_eq!(message["attempts"], 0, "preview is not a delivery: {message}");
        assert_eq!(message["metadata"]["CF-Content-Type"], "text");
    }
    let peek = server.post(&format!("/queues/{queue}/messages/peek"), json!({"batch_size": 1})).await.ok();
    let peeked = peek["messages"].as_array().expect("messages").clone();
    assert_eq!(peeked.len(), 1);
    for field in ["id", "attempts", "body", "metadata", "ref", "timestamp_ms"] {
        assert!(peeked[0].get(field).is_some(), "peek lacks {field}: {}", peeked[0]);
    }
    assert!(peeked[0].get("lease_id").is_none());
    server.post(&format!("/queues/{queue}/messages/peek"), json!({"batch_size": 0})).await.fails(400, 10207);
    assert_eq!(server.pull(&queue, json!({"batch_size": 10})).await.len(), 2, "preview and peek leased nothing");
    let preview = server.post(&format!("/queues/{queue}/messages/preview"), json!({})).await.ok();
    assert_eq!(preview["messages"], json!([]), "leased messages are not visible");
}

pub async fn purge_by_ref_and_preview_ack_delete(server: &TestServer) {
    let queue = server.pull_queue("by-ref", json!({})).await;
    for body in ["a", "b", "c"] {
        server.push_text(&queue, body).await;
        server.advance(1).await;
    }
    let peek = server.post(&format!("/queues/{queue}/messages/peek"), json!({"batch_size": 1})).await.ok();
    let reference = peek["messages"][0]["ref"].as_str().expect("ref").to_string();
    let purge = format!("/queues/{queue}/messages/purge");
    let purged = server.post(&purge, json!({"refs": [{"ref": reference}, {"ref": "garbage"}]})).await.ok();
    assert_eq!(purged["warnings"].as_object().map(|w| w.contains_key("garbage")), Some(true), "{purged}");
    assert!(purged["warnings"].get(&reference).is_none(), "{purged}");
    assert_eq!(server.metrics(&queue).await["backlog_count"], 2);
    server.post(&purge, json!({})).await.fails(400, 10207);

    let preview = server.post(&format!("/queues/{queue}/messages/preview"), json!({"batch_size": 1})).await.ok();
    let handle = lease(&preview["messages"][0]);
    let ack = json!({"acks": [{"lease_id": handle}], "retries": []});
    let acked = server.post(&format!("/queues/{queue}/messages/preview/ack"), ack).await.ok();
    assert_eq!(acked, json!({"warnings": {}}));
    let left = server.pull(&queue, json!({"batch_size": 10})).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["body"], "c");
    // A pull lease is not a preview handle, and vice versa.
    let ack = json!({"acks": [{"lease_id": "garbage"}]});
    let warned = server.post(&format!("/queues/{queue}/messages/preview/ack"), ack).await.ok();
    assert!(warned["warnings"].get("garbage").is_some(), "{warned}");
}
