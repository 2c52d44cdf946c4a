//! Queues #1–#6 and identifier handling.

use serde_json::{json, Value};

use super::{is_rfc3339_ms, random_hex};
use crate::TestServer;

pub async fn queue_create_and_get_return_every_field(server: &TestServer) {
    let settings = json!({"delivery_delay": 5, "message_retention_period": 3600});
    let created = server.post("/queues", json!({"queue_name": "orders", "settings": settings})).await.ok();
    let id = created["queue_id"].as_str().expect("queue_id").to_string();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created["queue_name"], "orders");
    assert!(is_rfc3339_ms(&created["created_on"]), "{created}");
    assert!(is_rfc3339_ms(&created["modified_on"]), "{created}");
    assert_eq!(created["producers"], json!([]));
    assert_eq!(created["producers_total_count"], 0);
    assert_eq!(created["consumers"], json!([]));
    assert_eq!(created["consumers_total_count"], 0);
    assert_eq!(
        created["settings"],
        json!({"delivery_delay": 5, "delivery_paused": false, "message_retention_period": 3600})
    );
    let fetched = server.get(&format!("/queues/{id}")).await.ok();
    assert_eq!(fetched, created);

    // Optional settings take the defaults; wrangler's text/plain bodies are JSON too.
    let request = server
        .client
        .post(server.url("/queues"))
        .bearer_auth(&server.token)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"{"queue_name":"plain","environment_name":""}"#);
    let plain = server.send(request).await.ok();
    assert_eq!(
        plain["settings"],
        json!({"delivery_delay": 0, "delivery_paused": false, "message_retention_period": 345600})
    );
}

pub async fn queue_list_pages_and_filters_by_name(server: &TestServer) {
    for name in ["a-queue", "b-queue", "c-queue"] {
        server.create_queue(name).await;
    }
    let all = server.get("/queues").await;
    let info = &all.body["result_info"];
    assert_eq!(info["total_count"], 3);
    assert_eq!(info["per_page"], 100);
    assert_eq!(info["page"], 1);
    assert_eq!(info["count"], 3);
    assert_eq!(info["total_pages"], 1);

    let mut seen = Vec::new();
    for page in 1..=2 {
        let reply = server.get(&format!("/queues?page={page}&per_page=2")).await;
        let info = reply.body["result_info"].clone();
        let count = if page == 1 { 2 } else { 1 };
        assert_eq!(info, json!({"count": count, "page": page, "per_page": 2, "total_count": 3, "total_pages": 2}));
        for queue in reply.ok().as_array().expect("array") {
            seen.push(queue["queue_name"].as_str().expect("name").to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, ["a-queue", "b-queue", "c-queue"]);
    let beyond = server.get("/queues?page=3&per_page=2").await.ok();
    assert_eq!(beyond, json!([]));

    let filtered = server.get("/queues?page=1&name=a-queue&name=c-queue").await;
    assert_eq!(filtered.body["result_info"]["total_count"], 2);
    let mut names: Vec<Value> =
        filtered.ok().as_array().expect("array").iter().map(|q| q["queue_name"].clone()).collect();
    names.sort_by_key(|name| name.to_string());
    assert_eq!(names, [json!("a-queue"), json!("c-queue")]);
    let missing = server.get("/queues?page=1&name=nope").await;
    assert_eq!(missing.body["result_info"]["total_count"], 0);
    assert_eq!(missing.ok(), json!([]));

    server.get("/queues?per_page=1001").await.fails(400, 10207);
    server.get("/queues?page=0").await.fails(400, 10207);
    server.get("/queues?page=x").await.fails(400, 10207);
}

pub async fn queue_put_replaces_and_patch_merges(server: &TestServer) {
    let settings = json!({"delivery_delay": 7, "message_retention_period": 7200});
    let id = server.post("/queues", json!({"queue_name": "edit-me", "settings": settings})).await.ok()["queue_id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/queues/{id}");

    // wrangler pause: only delivery_paused; the rest survives.
    let paused =
        server.patch(&path, json!({"queue_name": "edit-me", "settings": {"delivery_paused": true}})).await.ok();
    assert_eq!(
        paused["settings"],
        json!({"delivery_delay": 7, "delivery_paused": true, "message_retention_period": 7200})
    );
    // The Python SDK sends no queue_name on PATCH.
    let patched = server.patch(&path, json!({"settings": {"delivery_delay": 9}})).await.ok();
    assert_eq!(patched["settings"]["delivery_delay"], 9);
    assert_eq!(patched["settings"]["delivery_paused"], true);
    assert_eq!(patched["queue_name"], "edit-me");

    // PUT overwrites: absent settings go back to their defaults.
    let replaced = server.put(&path, json!({"queue_name": "edit-me", "settings": {"delivery_delay": 3}})).await.ok();
    assert_eq!(
        replaced["settings"],
        json!({"delivery_delay": 3, "delivery_paused": false, "message_retention_period": 345600})
    );
    let renamed = server.patch(&path, json!({"queue_name": "edited"})).await.ok();
    assert_eq!(renamed["queue_name"], "edited");
    assert_eq!(server.get(&path).await.ok()["settings"]["delivery_delay"], 3);
    server.patch(&path, json!({"settings": {"message_retention_period": 10}})).await.fails(400, 100128);
    server.patch(&path, json!({"settings": {"delivery_delay": "soon"}})).await.fails(400, 10207);
    assert_eq!(server.get(&path).await.ok()["settings"]["message_retention_period"], 345600);
}

pub async fn queue_delete_removes_queue_and_messages(server: &TestServer) {
    let id = server.pull_queue("doomed", json!({})).await;
    server.push_text(&id, "bye").await;
    let reply = server.delete(&format!("/queues/{id}")).await;
    assert_eq!(reply.body["result"], Value::Null);
    assert_eq!(reply.body["success"], true);
    server.get(&format!("/queues/{id}")).await.fails(404, 10104);
    server.get(&format!("/queues/{id}/metrics")).await.fails(404, 10104);
    server.delete(&format!("/queues/{id}")).await.fails(404, 10104);
    // The name is free again and the new queue starts empty.
    let again = server.pull_queue("doomed", json!({})).await;
    assert_eq!(server.metrics(&again).await["backlog_count"], 0);
}

pub async fn queue_name_rules_and_duplicates(server: &TestServer) {
    for bad in ["", "Upper", "under_score", "-lead", "trail-", &"a".repeat(64)] {
        server.post("/queues", json!({"queue_name": bad})).await.fails(400, 11003);
    }
    server.create_queue(&"a".repeat(63)).await;
    server.create_queue("taken").await;
    server.post("/queues", json!({"queue_name": "taken"})).await.fails(409, 11009);
    server.post("/queues", json!({})).await.fails(400, 10207);
    server.post("/queues", json!({"queue_name": 5})).await.fails(400, 10207);
    let list = server.get("/queues").await;
    assert_eq!(list.body["result_info"]["total_count"], 2, "failed creates changed nothing");
}

pub async fn queue_settings_are_validated(server: &TestServer) {
    let cases = [
        json!({"message_retention_period": 59}),
        json!({"message_retention_period": 1_209_601}),
        json!({"delivery_delay": 86_401}),
    ];
    for settings in cases {
        server.post("/queues", json!({"queue_name": "bad", "settings": settings})).await.fails(400, 100128);
    }
    server.post("/queues", json!({"queue_name": "bad", "settings": {"delivery_delay": -1}})).await.fails(400, 10207);
    let edge = json!({"delivery_delay": 86_400, "message_retention_period": 60});
    server.post("/queues", json!({"queue_name": "edge", "settings": edge})).await.ok();
    assert_eq!(server.get("/queues?name=bad").await.ok(), json!([]));
}

pub async fn unknown_and_malformed_ids(server: &TestServer) {
    let unknown = random_hex();
    server.get(&format!("/queues/{unknown}")).await.fails(404, 10104);
    server.post(&format!("/queues/{unknown}/messages"), json!({"body": 1})).await.fails(404, 10104);
    server.get(&format!("/queues/{unknown}/consumers")).await.fails(404, 10104);
    for bad in ["xyz", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef0"] {
        server.get(&format!("/queues/{bad}")).await.fails(400, 10107);
        server.post(&format!("/queues/{bad}/messages/pull"), json!({})).await.fails(400, 10107);
    }
    let queue = server.create_queue("ids").await;
    server.get(&format!("/queues/{queue}/consumers/nope")).await.fails(400, 11005);
    server.get(&format!("/queues/{queue}/consumers/{}", random_hex())).await.fails(404, 11006);
    server.delete(&format!("/queues/{queue}/consumers/{}", random_hex())).await.fails(404, 11006);
    server.get("/event_subscriptions/subscriptions/nope").await.fails(400, 11011);
    server.get(&format!("/event_subscriptions/subscriptions/{}", random_hex())).await.fails(404, 11012);
    // Upper-case hex names the same queue.
    server.get(&format!("/queues/{}", queue.to_uppercase())).await.ok();
}
