//! Range checks and reference limits that are easy to get half right:
//! retry delays on both sides of their range.

use serde_json::json;

use crate::TestServer;

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
