//! Delivery semantics: leases, retries, dead letters, delays, retention,
//! pause, purge (#21–#22), extend (#20), ack edge cases, long-poll.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::is_rfc3339_ms;
use crate::{TestServer, START_MS};

fn lease(message: &Value) -> String {
    message["lease_id"].as_str().expect("lease_id").to_string()
}

pub async fn visibility_timeout_expiry_redelivers(server: &TestServer) {
    let queue = server.pull_queue("leases", json!({"visibility_timeout_ms": 1000})).await;
    server.push_text(&queue, "again").await;
    let first = server.pull(&queue, json!({})).await;
    assert_eq!(first[0]["attempts"], 1);
    assert!(server.pull(&queue, json!({})).await.is_empty());
    server.advance(999).await;
    assert!(server.pull(&queue, json!({})).await.is_empty(), "lease still running");
    server.advance(2).await;
    let second = server.pull(&queue, json!({})).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["attempts"], 2);
    assert_eq!(second[0]["id"], first[0]["id"]);
    assert_ne!(second[0]["lease_id"], first[0]["lease_id"]);

    // The old field name `visibility_timeout` is honoured.
    server.advance(1_001).await;
    let third = server.pull(&queue, json!({"visibility_timeout": 5_000})).await;
    assert_eq!(third[0]["attempts"], 3);
    server.advance(1_001).await;
    assert!(server.pull(&queue, json!({})).await.is_empty(), "5 s lease from visibility_timeout");
}

pub async fn retry_with_delay(server: &TestServer) {
    let queue = server.pull_queue("retried", json!({"retry_delay": 30})).await;
    server.push_text(&queue, "r").await;
    let pulled = server.pull(&queue, json!({})).await;
    let retried = server.ack(&queue, &[], json!([{"lease_id": lease(&pulled[0]), "delay_seconds": 10}])).await;
    assert_eq!(retried, json!({"ackCount": 0, "retryCount": 1, "warnings": {}}));
    assert!(server.pull(&queue, json!({})).await.is_empty());
    server.advance(9_999).await;
    assert!(server.pull(&queue, json!({})).await.is_empty());
    server.advance(1).await;
    let again = server.pull(&queue, json!({})).await;
    assert_eq!(again[0]["attempts"], 2);

    // Without delay_seconds the consumer's retry_delay (30 s) applies.
    server.ack(&queue, &[], json!([{"lease_id": lease(&again[0])}])).await;
    server.advance(29_000).await;
    assert!(server.pull(&queue, json!({})).await.is_empty());
    server.advance(1_000).await;
    assert_eq!(server.pull(&queue, json!({})).await[0]["attempts"], 3);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 1);
}

pub async fn max_retries_moves_to_created_dead_letter_queue(server: &TestServer) {
    let queue = server.create_queue("fragile").await;
    let consumer = json!({"type": "http_pull", "dead_letter_queue": "fragile-dlq", "settings": {"max_retries": 1, "visibility_timeout_ms": 1000}});
    server.post(&format!("/queues/{queue}/consumers"), consumer).await.ok();
    server.push_text(&queue, "poison").await;
    // Delivery 1 fails by retry, delivery 2 by lease expiry: attempts 2 > max_retries 1.
    let first = server.pull(&queue, json!({})).await;
    server.ack(&queue, &[], json!([{"lease_id": lease(&first[0]), "delay_seconds": 0}])).await;
    let second = server.pull(&queue, json!({})).await;
    assert_eq!(second[0]["attempts"], 2);
    server.advance(1_001).await;
    assert!(server.pull(&queue, json!({})).await.is_empty());
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);

    let found = server.get("/queues?name=fragile-dlq").await.ok();
    let dlq = found[0]["queue_id"].as_str().expect("the dead letter queue was created").to_string();
    assert_eq!(server.metrics(&dlq).await["backlog_count"], 1);
    server.post(&format!("/queues/{dlq}/consumers"), json!({"type": "http_pull"})).await.ok();
    let dead = server.pull(&dlq, json!({})).await;
    assert_eq!(dead[0]["body"], "poison");
}

pub async fn max_retries_without_dead_letter_queue_deletes(server: &TestServer) {
    let queue = server.pull_queue("no-dlq", json!({"max_retries": 0})).await;
    server.push_text(&queue, "once").await;
    let pulled = server.pull(&queue, json!({})).await;
    let retried = server.ack(&queue, &[], json!([{"lease_id": lease(&pulled[0])}])).await;
    assert_eq!(retried["retryCount"], 1);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
    server.advance(60_000).await;
    assert!(server.pull(&queue, json!({})).await.is_empty());
    assert_eq!(server.get("/queues").await.body["result_info"]["total_count"], 1, "no queue was created");
}

pub async fn queue_delay_and_message_delay_override(server: &TestServer) {
    let queue = server.pull_queue("delayed", json!({"batch_size": 10})).await;
    server.patch(&format!("/queues/{queue}"), json!({"settings": {"delivery_delay": 60}})).await.ok();
    let push = format!("/queues/{queue}/messages");
    server.push_text(&queue, "queue-delay").await;
    server.post(&push, json!({"body": "now", "content_type": "text", "delay_seconds": 0})).await.ok();
    server.post(&push, json!({"body": "later", "content_type": "text", "delay_seconds": 120})).await.ok();
    let batch = json!({"delay_seconds": 30, "messages": [{"body": "batch", "content_type": "text"}]});
    server.post(&format!("{push}/batch"), batch).await.ok();
    // Pulls, acks what came, and returns the bodies (so no lease expires later).
    let take = || async {
        let messages = server.pull(&queue, json!({})).await;
        let leases: Vec<String> = messages.iter().map(lease).collect();
        let refs: Vec<&str> = leases.iter().map(String::as_str).collect();
        server.ack(&queue, &refs, json!([])).await;
        messages.iter().map(|m| (m["body"].clone(), m["timestamp_ms"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(take().await, [(json!("now"), json!(START_MS))]);
    server.advance(30_000).await;
    assert_eq!(take().await, [(json!("batch"), json!(START_MS))]);
    server.advance(29_999).await;
    assert!(take().await.is_empty());
    server.advance(1).await;
    assert_eq!(take().await, [(json!("queue-delay"), json!(START_MS))]);
    server.advance(59_999).await;
    assert!(take().await.is_empty());
    server.advance(1).await;
    // timestamp_ms stays the publish time, whatever the delay.
    assert_eq!(take().await, [(json!("later"), json!(START_MS))]);
}

pub async fn retention_expiry_deletes(server: &TestServer) {
    let queue = server.pull_queue("short-lived", json!({})).await;
    server.put(&format!("/queues/{queue}"), json!({"settings": {"message_retention_period": 60}})).await.ok();
    server.push_text(&queue, "old").await;
    server.advance(30_000).await;
    server.push_text(&queue, "young").await;
    server.advance(30_001).await;
    let metrics = server.metrics(&queue).await;
    assert_eq!(metrics["backlog_count"], 1, "{metrics}");
    assert_eq!(metrics["oldest_message_timestamp_ms"], START_MS + 30_000);
    let pulled = server.pull(&queue, json!({})).await;
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0]["body"], "young");
}

pub async fn pause_refuses_pull_but_accepts_push(server: &TestServer) {
    let queue = server.pull_queue("pausable", json!({})).await;
    let path = format!("/queues/{queue}");
    server.patch(&path, json!({"queue_name": "pausable", "settings": {"delivery_paused": true}})).await.ok();
    server.push_text(&queue, "held").await;
    server.post(&format!("{path}/messages/pull"), json!({})).await.fails(409, 11008);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 1);
    server.patch(&path, json!({"queue_name": "pausable", "settings": {"delivery_paused": false}})).await.ok();
    assert_eq!(server.pull(&queue, json!({})).await.len(), 1);
}

pub async fn purge_and_purge_status(server: &TestServer) {
    let queue = server.pull_queue("purged", json!({})).await;
    let purge = format!("/queues/{queue}/purge");
    let status = server.get(&purge).await.ok();
    assert_eq!(status["started_at"], "", "{status}");
    assert!(status["completed"] == "true" || status["completed"] == "false", "{status}");
    for body in ["a", "b", "c"] {
        server.push_text(&queue, body).await;
    }
    let delayed = json!({"body": "d", "content_type": "text", "delay_seconds": 600});
    server.post(&format!("/queues/{queue}/messages"), delayed).await.ok();
    server.pull(&queue, json!({"batch_size": 1})).await;
    server.post(&purge, json!({})).await.fails(400, 10210);
    server.post(&purge, json!({"delete_messages_permanently": false})).await.fails(400, 10210);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 4);

    server.advance(5_000).await;
    let purged = server.post(&purge, json!({"delete_messages_permanently": true})).await.ok();
    assert_eq!(purged["queue_id"], queue.as_str());
    assert_eq!(purged["queue_name"], "purged");
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
    server.advance(600_000).await;
    assert!(server.pull(&queue, json!({})).await.is_empty(), "delayed and leased messages are purged too");
    let status = server.get(&purge).await.ok();
    assert!(is_rfc3339_ms(&status["started_at"]), "{status}");
    assert_eq!(status["completed"], "true");
    server.push_text(&queue, "after").await;
    assert_eq!(server.pull(&queue, json!({})).await[0]["body"], "after");
}

pub async fn extend_gives_new_leases(server: &TestServer) {
    let queue = server.pull_queue("extended", json!({"visibility_timeout_ms": 1000})).await;
    server.push_text(&queue, "slow").await;
    let pulled = server.pull(&queue, json!({})).await;
    let old = lease(&pulled[0]);
    let body = json!({"extend": [{"lease_id": old}, {"lease_id": "garbage"}], "visibility_timeout_ms": 5_000});
    let extended = server.post(&format!("/queues/{queue}/messages/extend"), body).await.ok();
    let new = extended["leases"][&old].as_str().expect("a new lease for the old one").to_string();
    assert_ne!(new, old);
    assert!(extended["warnings"].get("garbage").is_some(), "{extended}");
    server.advance(2_000).await;
    assert!(server.pull(&queue, json!({})).await.is_empty(), "the lease was extended");
    let acked = server.ack(&queue, &[&new], json!([])).await;
    assert_eq!(acked["ackCount"], 1);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
}

pub async fn ack_with_expired_lease_still_acks(server: &TestServer) {
    let queue = server.pull_queue("late-ack", json!({"visibility_timeout_ms": 1000})).await;
    server.push_text(&queue, "late").await;
    let pulled = server.pull(&queue, json!({})).await;
    server.advance(1_500).await;
    let acked = server.ack(&queue, &[&lease(&pulled[0])], json!([])).await;
    assert_eq!(acked, json!({"ackCount": 1, "retryCount": 0, "warnings": {}}));
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
    assert!(server.pull(&queue, json!({})).await.is_empty());
}

pub async fn bad_leases_are_warnings(server: &TestServer) {
    let queue = server.pull_queue("warned", json!({})).await;
    let other = server.pull_queue("elsewhere", json!({})).await;
    server.push_text(&other, "theirs").await;
    let foreign = lease(&server.pull(&other, json!({})).await[0]);
    let outcome = server.ack(&queue, &["garbage", &foreign], json!([{"lease_id": "also-garbage"}])).await;
    assert_eq!(outcome["ackCount"], 0);
    assert_eq!(outcome["retryCount"], 0);
    for key in ["garbage", foreign.as_str(), "also-garbage"] {
        assert!(outcome["warnings"][key].is_string(), "no warning for {key}: {outcome}");
    }
    assert_eq!(server.metrics(&other).await["backlog_count"], 1, "a foreign lease acked nothing");
    let empty = server.post(&format!("/queues/{queue}/messages/ack"), json!({})).await.ok();
    assert_eq!(empty, json!({"ackCount": 0, "retryCount": 0, "warnings": {}}));

    // The community consumer acks with whole message objects.
    server.push_text(&queue, "mine").await;
    let message = server.pull(&queue, json!({})).await[0].clone();
    let acked = server.post(&format!("/queues/{queue}/messages/ack"), json!({"acks": [message], "retries": []})).await;
    assert_eq!(acked.ok()["ackCount"], 1);
}

pub async fn long_poll_pull_waits_for_a_message(server: &TestServer) {
    let queue = server.pull_queue("long-poll", json!({})).await;
    let pull = format!("/queues/{queue}/messages/pull");
    server.post(&pull, json!({"wait_time_ms": 20_001})).await.fails(400, 10207);
    let started = Instant::now();
    let empty = server.post(&pull, json!({"wait_time_ms": 200})).await.ok();
    assert_eq!(empty["messages"], json!([]));
    assert!(started.elapsed() >= Duration::from_millis(200), "the pull waited");

    let waiting = server.post(&pull, json!({"wait_time_ms": 10_000}));
    let producer = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        server.push_text(&queue, "awaited").await;
    };
    let started = Instant::now();
    let (reply, ()) = tokio::join!(waiting, producer);
    let result = reply.ok();
    assert_eq!(result["messages"][0]["body"], "awaited");
    assert!(started.elapsed() < Duration::from_secs(5), "answered as soon as the message came");
}

pub async fn retry_acts_only_on_the_current_delivery(server: &TestServer) {
    let queue = server.pull_queue("stale", json!({"visibility_timeout_ms": 1000})).await;
    server.push_text(&queue, "s").await;
    let first = lease(&server.pull(&queue, json!({})).await[0]);
    server.advance(1_001).await;
    let second = server.pull(&queue, json!({})).await;
    assert_eq!(second[0]["attempts"], 2);
    let outcome = server.ack(&queue, &[], json!([{"lease_id": first, "delay_seconds": 0}])).await;
    assert_eq!(outcome["retryCount"], 0, "{outcome}");
    assert!(outcome["warnings"][&first].is_string(), "{outcome}");
    assert!(server.pull(&queue, json!({})).await.is_empty(), "the current delivery keeps its lease");
    // Ack stays permissive: the stale lease still acks the message.
    assert_eq!(server.ack(&queue, &[&first], json!([])).await["ackCount"], 1);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
}

pub async fn concurrent_pulls_get_distinct_messages(server: &TestServer) {
    let queue = server.pull_queue("crowded", json!({})).await;
    let batch: Vec<Value> = (0..50).map(|i| json!({"body": format!("m{i}"), "content_type": "text"})).collect();
    server.post(&format!("/queues/{queue}/messages/batch"), json!({"messages": batch})).await.ok();
    let pulls = (0..6).map(|_| server.pull(&queue, json!({"batch_size": 10})));
    let results = futures_join_all(pulls.collect()).await;
    let mut ids: Vec<String> = results.iter().flatten().map(|m| m["id"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids.len(), 50, "every message handed out once");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "no message leased twice");
}

/// Runs futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in outputs.iter_mut().zip(set.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *slot = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
