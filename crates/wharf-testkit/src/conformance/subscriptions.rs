//! Event subscriptions #24–#28.

use serde_json::{json, Value};

use super::{is_rfc3339_ms, random_hex};
use crate::TestServer;

const PATH: &str = "/event_subscriptions/subscriptions";

fn new_subscription(name: &str, queue: &str, source: Value) -> Value {
    json!({
        "name": name,
        "enabled": true,
        "source": source,
        "destination": {"type": "queues.queue", "queue_id": queue},
        "events": ["object-create"],
    })
}

pub async fn subscription_lifecycle(server: &TestServer) {
    let queue = server.create_queue("events").await;
    let created = server.post(PATH, new_subscription("sub1", &queue, json!({"type": "r2"}))).await.ok();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 32);
    assert!(is_rfc3339_ms(&created["created_at"]) && is_rfc3339_ms(&created["modified_at"]), "{created}");
    assert_eq!(created["name"], "sub1");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["source"], json!({"type": "r2"}));
    assert_eq!(created["destination"], json!({"type": "queues.queue", "queue_id": queue}));
    assert_eq!(created["events"], json!(["object-create"]));
    let one = format!("{PATH}/{id}");
    assert_eq!(server.get(&one).await.ok(), created);

    server.advance(1_000).await;
    let patched = server.patch(&one, json!({"enabled": false, "name": "sub2"})).await.ok();
    assert_eq!((patched["enabled"].clone(), patched["name"].clone()), (json!(false), json!("sub2")));
    assert_eq!(patched["created_at"], created["created_at"]);
    assert_ne!(patched["modified_at"], created["modified_at"]);
    let patched = server.patch(&one, json!({"events": ["a", "b"]})).await.ok();
    assert_eq!(patched["events"], json!(["a", "b"]));
    assert_eq!(patched["name"], "sub2");
    server.patch(&one, json!({"events": []})).await.fails(400, 10207);
    let missing_queue = json!({"destination": {"type": "queues.queue", "queue_id": random_hex()}});
    server.patch(&one, missing_queue).await.fails(404, 11013);

    let deleted = server.delete(&one).await.ok();
    assert_eq!(deleted["id"], id.as_str());
    assert_eq!(deleted["name"], "sub2");
    server.get(&one).await.fails(404, 11012);
    server.delete(&one).await.fails(404, 11012);
    server.patch(&one, json!({"enabled": true})).await.fails(404, 11012);

    // Bad bodies, unknown destination, duplicates.
    server.post(PATH, new_subscription("x", &random_hex(), json!({"type": "kv"}))).await.fails(404, 11013);
    let mut no_events = new_subscription("x", &queue, json!({"type": "kv"}));
    no_events["events"] = json!([]);
    server.post(PATH, no_events).await.fails(400, 10207);
    let mut wrong_type = new_subscription("x", &queue, json!({"type": "kv"}));
    wrong_type["destination"]["type"] = json!("workers.worker");
    server.post(PATH, wrong_type).await.fails(400, 10207);
    server.post(PATH, new_subscription("x", &queue, json!("kv"))).await.fails(400, 10207);
    server.post(PATH, new_subscription("x", "nope", json!({"type": "kv"}))).await.fails(400, 10107);
    server.post(PATH, json!({"name": "x"})).await.fails(400, 10207);
    server.post(PATH, new_subscription("x", &queue, json!({"type": "kv"}))).await.ok();
    server.post(PATH, new_subscription("y", &queue, json!({"type": "kv"}))).await.fails(405, 11014);
    assert_eq!(server.get(PATH).await.body["result_info"]["total_count"], 1);
}

pub async fn subscription_list_pages_orders_and_filters(server: &TestServer) {
    let first = server.create_queue("first").await;
    let second = server.create_queue("second").await;
    let sources =
        [json!({"type": "kv"}), json!({"type": "r2"}), json!({"type": "workersAi.model", "model_name": "m1"})];
    for (name, source) in ["charlie", "alpha", "bravo"].into_iter().zip(sources) {
        server.post(PATH, new_subscription(name, &first, source)).await.ok();
        server.advance(10).await;
    }
    server.post(PATH, new_subscription("delta", &second, json!({"type": "kv"}))).await.ok();
    let names = |result: Value| -> Vec<String> {
        result.as_array().expect("array").iter().map(|s| s["name"].as_str().expect("name").to_string()).collect()
    };

    let all = server.get(PATH).await;
    assert_eq!(
        all.body["result_info"],
        json!({"count": 4, "page": 1, "per_page": 20, "total_count": 4, "total_pages": 1})
    );
    assert_eq!(names(all.ok()), ["alpha", "bravo", "charlie", "delta"]);
    let page = server.get(&format!("{PATH}?page=2&per_page=3")).await;
    assert_eq!(
        page.body["result_info"],
        json!({"count": 1, "page": 2, "per_page": 3, "total_count": 4, "total_pages": 2})
    );
    assert_eq!(names(page.ok()), ["delta"]);
    assert_eq!(names(server.get(&format!("{PATH}?direction=desc")).await.ok()), ["delta", "charlie", "bravo", "alpha"]);
    assert_eq!(
        names(server.get(&format!("{PATH}?order=created_at")).await.ok()),
        ["charlie", "alpha", "bravo", "delta"]
    );
    let filtered = server.get(&format!("{PATH}?queue_id={second}")).await;
    assert_eq!(filtered.body["result_info"]["total_count"], 1);
    assert_eq!(names(filtered.ok()), ["delta"]);
    server.get(&format!("{PATH}?per_page=101")).await.fails(400, 10207);
    server.get(&format!("{PATH}?per_page=0")).await.fails(400, 10207);
    server.get(&format!("{PATH}?order=size")).await.fails(400, 10207);
    server.get(&format!("{PATH}?direction=up")).await.fails(400, 10207);
    assert_eq!(server.get(&format!("{PATH}?page=9")).await.ok(), json!([]));
}
