//! DLQ redrive (a Wharf extension): `POST …/queues/{id}/messages/redrive`
//! moves ready messages into another queue, by default the one whose
//! consumer dead-letters into this queue.

use serde_json::{json, Value};

use crate::conformance::random_hex;
use crate::{TestServer, START_MS};

fn redrive_path(queue: &str) -> String {
    format!("/queues/{queue}/messages/redrive")
}

/// Fails three messages into a DLQ, redrives them with an empty request and
/// finds them back in their queue: same bodies and timestamps, ready at
/// once, attempts counted afresh, the DLQ empty.
pub async fn redrive_returns_dead_letters_to_their_queue(server: &TestServer) {
    let source = server.create_queue("orders").await;
    let consumer = json!({"type": "http_pull", "dead_letter_queue": "orders-dlq", "settings": {"max_retries": 0}});
    server.post(&format!("/queues/{source}/consumers"), consumer).await.ok();
    for body in ["a", "b", "c"] {
        server.push_text(&source, body).await;
    }
    let pulled = server.pull(&source, json!({"batch_size": 10})).await;
    assert_eq!(pulled.len(), 3);
    let retries: Vec<Value> = pulled.iter().map(|m| json!({"lease_id": m["lease_id"], "delay_seconds": 0})).collect();
    server.ack(&source, &[], json!(retries)).await;
    let dlq = queue_id_named(server, "orders-dlq").await;
    assert_eq!(server.metrics(&dlq).await["backlog_count"], 3, "the failures were dead-lettered");
    server.advance(5_000).await;

    // No body at all, as `curl -X POST` sends it.
    let reply = server.call(reqwest::Method::POST, &redrive_path(&dlq), None).await.ok();
    assert_eq!(reply["moved"], 3, "{reply}");
    assert_eq!(reply["destination_queue_id"], source.as_str(), "{reply}");
    assert_eq!(reply["metrics"]["backlog_count"], 0, "{reply}");
    assert_eq!(server.metrics(&dlq).await["backlog_count"], 0);
    assert_eq!(server.metrics(&source).await["backlog_count"], 3);

    let again = server.pull(&source, json!({"batch_size": 10})).await;
    let bodies: Vec<&str> = again.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["a", "b", "c"], "redriven in their order");
    for message in &again {
        assert_eq!(message["attempts"], 1, "attempts start again: {message}");
        assert_eq!(message["timestamp_ms"], START_MS, "the timestamp is kept: {message}");
    }
    let nothing_left = server.post(&redrive_path(&dlq), json!({})).await.ok();
    assert_eq!(nothing_left["moved"], 0, "{nothing_left}");
}

/// Only ready messages move (leased and delayed ones stay), oldest first,
/// at most `max_messages` per call, into the queue named.
pub async fn redrive_moves_ready_messages_in_order_up_to_the_maximum(server: &TestServer) {
    let parked = server.pull_queue("parked", json!({})).await;
    let target = server.pull_queue("target", json!({})).await;
    for body in ["leased", "one", "two", "three"] {
        server.push_text(&parked, body).await;
    }
    let later = json!({"body": "later", "content_type": "text", "delay_seconds": 60});
    server.post(&format!("/queues/{parked}/messages"), later).await.ok();
    let leased = server.pull(&parked, json!({"batch_size": 1})).await;
    assert_eq!(leased[0]["body"], "leased");

    let request = json!({"destination_queue_id": target, "max_messages": 2});
    let first = server.post(&redrive_path(&parked), request.clone()).await.ok();
    assert_eq!((first["moved"].clone(), first["metrics"]["backlog_count"].clone()), (json!(2), json!(3)), "{first}");
    let second = server.post(&redrive_path(&parked), request.clone()).await.ok();
    assert_eq!(second["moved"], 1, "{second}");
    let third = server.post(&redrive_path(&parked), request).await.ok();
    assert_eq!(third["moved"], 0, "leased and delayed messages stay: {third}");

    let moved = server.pull(&target, json!({"batch_size": 10})).await;
    let bodies: Vec<&str> = moved.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);
    // The lease on the source still works: the message it names was not moved.
    let acked = server.ack(&parked, &[leased[0]["lease_id"].as_str().unwrap_or_default()], json!([])).await;
    assert_eq!(acked["ackCount"], 1, "{acked}");
}

/// Every bad request is refused with a clear error and moves nothing.
pub async fn redrive_refuses_bad_requests_and_changes_nothing(server: &TestServer) {
    let lonely = server.create_queue("lonely-dlq").await;
    server.push_text(&lonely, "stay").await;
    let path = redrive_path(&lonely);
    let refused = [
        (json!({}), 400, 11025),
        (json!({"destination_queue_id": lonely}), 400, 11025),
        (json!({"destination_queue_id": random_hex()}), 400, 11025),
        (json!({"destination_queue_id": "not-an-id"}), 400, 11025),
        (json!({"destination_queue_id": 7}), 400, 10207),
        (json!({"max_messages": 0}), 400, 10207),
        (json!({"max_messages": 10_001}), 400, 10207),
        (json!({"max_messages": -1}), 400, 10207),
        (json!({"max_messages": 1.5}), 400, 10207),
        (json!([]), 400, 10207),
    ];
    for (body, status, code) in refused {
        server.post(&path, body.clone()).await.fails(status, code);
    }
    let not_json = server.client.post(server.url(&path)).bearer_auth(&server.token).body("{nope");
    server.send(not_json).await.fails(400, 10208);
    server.post(&redrive_path(&random_hex()), json!({})).await.fails(404, 10104);
    server.post(&redrive_path("zz"), json!({})).await.fails(400, 10107);
    server.get(&path).await.fails(405, 7001);

    // Two queues dead-letter into the same one: which to choose is the caller's.
    for name in ["left", "right"] {
        let queue = server.create_queue(name).await;
        let consumer = json!({"type": "http_pull", "dead_letter_queue": "lonely-dlq"});
        server.post(&format!("/queues/{queue}/consumers"), consumer).await.ok();
    }
    let reply = server.post(&path, json!({})).await;
    reply.fails(400, 11025);
    assert!(reply.body.to_string().contains("2 queues"), "the error names the choice: {}", reply.body);
    assert_eq!(server.metrics(&lonely).await["backlog_count"], 1, "refused redrives moved nothing");
}

async fn queue_id_named(server: &TestServer, name: &str) -> String {
    let listed = server.get("/queues?per_page=1000").await.ok();
    let queues = listed.as_array().cloned().unwrap_or_default();
    let found = queues.iter().find(|queue| queue["queue_name"] == name);
    found.and_then(|queue| queue["queue_id"].as_str()).expect("queue by name").to_string()
}
