//! Consumers #7–#11.

use serde_json::{json, Value};

use super::{is_rfc3339_ms, random_hex};
use crate::TestServer;

pub async fn pull_consumer_lifecycle(server: &TestServer) {
    let queue = server.create_queue("pulled").await;
    let path = format!("/queues/{queue}/consumers");
    let created = server.post(&path, json!({"type": "http_pull"})).await.ok();
    let id = created["consumer_id"].as_str().expect("consumer_id").to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(created["type"], "http_pull");
    assert_eq!(created["queue_name"], "pulled");
    assert_eq!(created["dead_letter_queue"], "");
    assert!(is_rfc3339_ms(&created["created_on"]), "{created}");
    assert_eq!(
        created["settings"],
        json!({"batch_size": 5, "max_retries": 3, "retry_delay": 0, "visibility_timeout_ms": 30000})
    );

    assert_eq!(server.get(&path).await.ok(), json!([created.clone()]));
    assert_eq!(server.get(&format!("{path}/{id}")).await.ok(), created);
    let queue_view = server.get(&format!("/queues/{queue}")).await.ok();
    assert_eq!(queue_view["consumers_total_count"], 1);
    assert_eq!(queue_view["consumers"][0]["consumer_id"], id.as_str());
    assert_eq!(queue_view["consumers"][0]["type"], "http_pull");

    let replacement = json!({
        "type": "http_pull",
        "dead_letter_queue": "pulled-dlq",
        "settings": {"batch_size": 10, "max_retries": 4},
    });
    let replaced = server.put(&format!("{path}/{id}"), replacement).await.ok();
    assert_eq!(replaced["consumer_id"], id.as_str());
    assert_eq!(replaced["dead_letter_queue"], "pulled-dlq");
    assert_eq!(
        replaced["settings"],
        json!({"batch_size": 10, "max_retries": 4, "retry_delay": 0, "visibility_timeout_ms": 30000})
    );

    let deleted = server.delete(&format!("{path}/{id}")).await;
    assert_eq!(deleted.body["result"], Value::Null);
    assert_eq!(deleted.ok(), Value::Null);
    assert_eq!(server.get(&path).await.ok(), json!([]));
    server.get(&format!("{path}/{id}")).await.fails(404, 11006);
    assert_eq!(server.get(&format!("/queues/{queue}")).await.ok()["consumers_total_count"], 0);
}

pub async fn worker_consumer_fields(server: &TestServer) {
    let queue = server.create_queue("worked").await;
    let path = format!("/queues/{queue}/consumers");
    let body = json!({
        "type": "worker",
        "script_name": "my-worker",
        "environment_name": "",
        "dead_letter_queue": "worked-dlq",
        "settings": {"batch_size": 10, "max_concurrency": 2, "max_retries": 3, "max_wait_time_ms": 5000, "retry_delay": 1},
    });
    let created = server.post(&path, body).await.ok();
    assert_eq!(created["type"], "worker");
    assert_eq!(created["script_name"], "my-worker");
    assert_eq!(created["script"], "my-worker");
    assert_eq!(created["dead_letter_queue"], "worked-dlq");
    assert_eq!(
        created["settings"],
        json!({"batch_size": 10, "max_concurrency": 2, "max_retries": 3, "max_wait_time_ms": 5000, "retry_delay": 1})
    );
    // wrangler reads `script` inside Queue.consumers.
    let queue_view = server.get(&format!("/queues/{queue}")).await.ok();
    assert_eq!(queue_view["consumers"][0]["script"], "my-worker");
    assert_eq!(queue_view["consumers"][0]["type"], "worker");

    // Defaults of a worker, and max_concurrency null meaning automatic.
    let id = created["consumer_id"].as_str().expect("id");
    let minimal = json!({"type": "worker", "script_name": "other", "settings": {"max_concurrency": null}});
    let replaced = server.put(&format!("{path}/{id}"), minimal).await.ok();
    assert_eq!(
        replaced["settings"],
        json!({"batch_size": 10, "max_concurrency": null, "max_retries": 3, "max_wait_time_ms": 5000, "retry_delay": 0})
    );
    assert_eq!(replaced["script"], "other");

    let other = server.create_queue("unscripted").await;
    let path = format!("/queues/{other}/consumers");
    server.post(&path, json!({"type": "worker"})).await.fails(400, 10207);
    server.post(&path, json!({"type": "smoke-signal"})).await.fails(400, 10207);
    server.post(&path, json!({"script_name": "x"})).await.fails(400, 10207);
    assert_eq!(server.get(&path).await.ok(), json!([]));
}

pub async fn one_consumer_per_queue(server: &TestServer) {
    let queue = server.pull_queue("single", json!({})).await;
    let path = format!("/queues/{queue}/consumers");
    server.post(&path, json!({"type": "http_pull"})).await.fails(409, 11004);
    server.post(&path, json!({"type": "worker", "script_name": "w"})).await.fails(409, 11004);
    assert_eq!(server.get(&path).await.ok().as_array().map(Vec::len), Some(1));
}

pub async fn consumer_settings_are_validated(server: &TestServer) {
    let queue = server.create_queue("strict").await;
    let path = format!("/queues/{queue}/consumers");
    let bad_settings = [
        json!({"batch_size": 0}),
        json!({"batch_size": 101}),
        json!({"max_retries": 101}),
        json!({"retry_delay": 86_401}),
        json!({"visibility_timeout_ms": 0}),
        json!({"visibility_timeout_ms": 43_200_001u64}),
    ];
    for settings in bad_settings {
        server.post(&path, json!({"type": "http_pull", "settings": settings})).await.fails(400, 100127);
    }
    let worker = json!({"type": "worker", "script_name": "w", "settings": {"max_wait_time_ms": 60_001}});
    server.post(&path, worker).await.fails(400, 100127);
    let worker = json!({"type": "worker", "script_name": "w", "settings": {"max_concurrency": 0}});
    server.post(&path, worker).await.fails(400, 100127);
    server.post(&path, json!({"type": "http_pull", "settings": {"batch_size": "ten"}})).await.fails(400, 10207);
    assert_eq!(server.get(&path).await.ok(), json!([]));
    let edge = json!({"batch_size": 100, "max_retries": 100, "visibility_timeout_ms": 43_200_000u64});
    server.post(&path, json!({"type": "http_pull", "settings": edge})).await.ok();
}

pub async fn put_consumer_creates_missing_consumer(server: &TestServer) {
    let queue = server.create_queue("put-created").await;
    let id = random_hex();
    let created = server.put(&format!("/queues/{queue}/consumers/{id}"), json!({"type": "http_pull"})).await.ok();
    assert_eq!(created["consumer_id"], id.as_str());
    assert_eq!(server.get(&format!("/queues/{queue}/consumers/{id}")).await.ok()["type"], "http_pull");
}
