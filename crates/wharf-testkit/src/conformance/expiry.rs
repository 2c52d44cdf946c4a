//! Time-driven edge cases: a lease that ended but was not swept yet.

use serde_json::json;

use crate::TestServer;

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
