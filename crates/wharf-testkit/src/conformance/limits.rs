//! Range checks and reference limits that are easy to get half right:
//! retry delays on both sides of their range, queues per account and the
//! backlog size of a queue.

use serde_json::json;
use wharf_core::Limits;

use crate::TestServer;

/// Cloudflare's limits with the queue count and backlog small enough to
/// reach in a test; [`queue_count_and_backlog_limits`] needs a backend
/// opened with these, served with them too.
pub fn small_limits() -> Limits {
    Limits { max_queues_per_account: 3, max_queue_backlog_bytes: 10, ..Limits::cloudflare() }
}

/// On a backend with [`small_limits`]: the fourth queue is refused until one
/// is deleted, and a push or batch that would take the backlog past its
/// limit is refused whole (429, 10251) until messages are acknowledged.
pub async fn queue_count_and_backlog_limits(server: &TestServer) {
    let limits = small_limits();
    assert_eq!(server.limits, limits, "serve the backend's limits");
    let queue = server.pull_queue("full", json!({})).await;
    let spare = server.create_queue("spare").await;
    server.create_queue("third").await;
    server.post("/queues", json!({"queue_name": "fourth"})).await.fails(400, 11024);
    server.delete(&format!("/queues/{spare}")).await.ok();
    let fourth = server.create_queue("fourth").await;
    server.post("/queues", json!({"queue_name": "fifth"})).await.fails(400, 11024);

    let messages = format!("/queues/{queue}/messages");
    server.push_text(&queue, "123456").await;
    server.post(&messages, json!({"body": "12345", "content_type": "text"})).await.fails(429, 10251);
    let batch = json!({"messages": [{"body": "12", "content_type": "text"}, {"body": "345", "content_type": "text"}]});
    server.post(&format!("{messages}/batch"), batch).await.fails(429, 10251);
    assert_eq!(server.metrics(&queue).await["backlog_bytes"], 6, "refused pushes store nothing");
    let at_limit = server.push_text(&queue, "1234").await;
    assert_eq!(at_limit["metadata"]["metrics"]["backlog_bytes"], 10, "{at_limit}");
    server.post(&messages, json!({"body": "1", "content_type": "text"})).await.fails(429, 10251);
    // Another queue has its own backlog.
    server.push_text(&fourth, "1234567890").await;

    let pulled = server.pull(&queue, json!({"batch_size": 1})).await;
    server.ack(&queue, &[pulled[0]["lease_id"].as_str().expect("lease_id")], json!([])).await;
    server.push_text(&queue, "123456").await;
}

/// A retry's `delay_seconds` is checked like a message's: -1 and one past
/// the limit are both invalid metadata (10203), and the ack changes nothing.
pub async fn retry_delay_out_of_range_is_invalid_metadata(server: &TestServer) {
    let queue = server.pull_queue("retry-range", json!({})).await;
    server.push_text(&queue, "kept").await;
    let pulled = server.pull(&queue, json!({})).await;
    let lease = pulled[0]["lease_id"].as_str().expect("lease_id").to_string();
    let too_long = i64::from(server.limits.max_delay_seconds) + 1;
    for delay in [json!(-1), json!(too_long)] {
        let body = json!({"acks": [], "retries": [{"lease_id": lease, "delay_seconds": delay}]});
        server.post(&format!("/queues/{queue}/messages/ack"), body).await.fails(400, 10203);
        // The same check on a message push, for comparison.
        let message = json!({"body": "x", "content_type": "text", "delay_seconds": delay});
        server.post(&format!("/queues/{queue}/messages"), message).await.fails(400, 10203);
    }
    // Nothing was retried: the lease still acks.
    let acked = server.ack(&queue, &[&lease], json!([])).await;
    assert_eq!(acked, json!({"ackCount": 1, "retryCount": 0, "warnings": {}}));
}
