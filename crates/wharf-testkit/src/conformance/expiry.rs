//! Time-driven edge cases: a lease that ended but was not swept yet, and
//! retention and metrics of a dead letter queue whose moved messages keep
//! their original timestamps.

use serde_json::json;

use crate::{TestServer, START_MS};

/// The clock passes a lease's end without the backend's housekeeping having
/// run (`clock.advance_ms`, no tick): extending it must be refused, not
/// revive it, and the message is redelivered as after any expiry.
pub async fn extend_refuses_a_lease_that_has_ended(server: &TestServer) {
    let queue = server.pull_queue("ended", json!({"visibility_timeout_ms": 1000})).await;
    server.push_text(&queue, "late").await;
    let pulled = server.pull(&queue, json!({})).await;
    let lease = pulled[0]["lease_id"].as_str().expect("lease_id").to_string();
    server.clock.advance_ms(1_000);
    let body = json!({"extend": [{"lease_id": lease}], "visibility_timeout_ms": 60_000});
    let outcome = server.post(&format!("/queues/{queue}/messages/extend"), body).await.ok();
    assert!(outcome["leases"].get(&lease).is_none(), "an ended lease was extended: {outcome}");
    assert!(outcome["warnings"][&lease].is_string(), "no warning for the ended lease: {outcome}");
    server.advance(0).await;
    let again = server.pull(&queue, json!({})).await;
    assert_eq!(again.len(), 1, "the expired lease counted as a failed delivery");
    assert_eq!(again[0]["attempts"], 2);
}

/// A dead-lettered message keeps its timestamp but arrives after younger
/// messages of the dead letter queue: retention and
/// `oldest_message_timestamp_ms` must go by timestamps, not arrival order.
pub async fn dead_letter_queue_retention_and_oldest_use_timestamps(server: &TestServer) {
    let source = server.create_queue("aging").await;
    let consumer = json!({"type": "http_pull", "dead_letter_queue": "aging-dlq", "settings": {"max_retries": 0}});
    server.post(&format!("/queues/{source}/consumers"), consumer).await.ok();
    let dlq = server.create_queue("aging-dlq").await;
    server.put(&format!("/queues/{dlq}"), json!({"settings": {"message_retention_period": 60}})).await.ok();
    server.push_text(&source, "old").await;
    server.advance(10_000).await;
    server.push_text(&dlq, "young").await;

    // One failed delivery with max_retries 0: "old" moves to the DLQ behind "young".
    let pulled = server.pull(&source, json!({})).await;
    assert_eq!(pulled[0]["timestamp_ms"], START_MS);
    server.ack(&source, &[], json!([{"lease_id": pulled[0]["lease_id"], "delay_seconds": 0}])).await;
    let metrics = server.metrics(&dlq).await;
    assert_eq!(metrics["backlog_count"], 2, "{metrics}");
    assert_eq!(metrics["oldest_message_timestamp_ms"], START_MS, "{metrics}");

    // 60 s after "old" was pushed its retention is over; "young" has 10 s left.
    server.advance(50_000).await;
    let metrics = server.metrics(&dlq).await;
    assert_eq!(metrics["backlog_count"], 1, "the moved message outlived its retention: {metrics}");
    assert_eq!(metrics["oldest_message_timestamp_ms"], START_MS + 10_000, "{metrics}");
    server.post(&format!("/queues/{dlq}/consumers"), json!({"type": "http_pull"})).await.ok();
    let left = server.pull(&dlq, json!({})).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["body"], "young");
}
