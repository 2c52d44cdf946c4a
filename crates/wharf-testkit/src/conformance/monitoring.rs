//! `GET /metrics`: Prometheus figures, without a token (totals) and with
//! one (each queue of its account too).

use reqwest::Method;
use serde_json::json;

use crate::conformance::random_hex;
use crate::server::TestServer;

/// The exposition text of `GET /metrics`, fetched without credentials.
pub async fn scrape(server: &TestServer) -> String {
    let response = server.client.get(format!("{}/metrics", server.base)).send().await.expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("application/openmetrics-text"), "content type {content_type}");
    let text = response.text().await.expect("metrics text");
    assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF: {text}");
    text
}

/// The value of the sample line `series` (name and labels, as exposed).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

pub async fn metrics_count_requests_by_operation_and_status(server: &TestServer) {
    let before = scrape(server).await;
    let created = |text: &str| sample(text, r#"wharf_http_requests_total{operation="queues-create",status="200"}"#);
    let missing = |text: &str| sample(text, r#"wharf_http_requests_total{operation="queues-get",status="404"}"#);

    server.post("/queues", json!({"queue_name": format!("metrics-{}", &random_hex()[..8])})).await.ok();
    server.get(&format!("/queues/{}", random_hex())).await.fails(404, 10104);
    server.get(&format!("/queues/{}", random_hex())).await.fails(404, 10104);

    let after = scrape(server).await;
    // Other cases may run against the same backend, never the same server:
    // the counts are this server's own.
    assert_eq!(created(&after).unwrap_or(0.0) - created(&before).unwrap_or(0.0), 1.0, "{after}");
    assert_eq!(missing(&after).unwrap_or(0.0) - missing(&before).unwrap_or(0.0), 2.0, "{after}");
    let durations = sample(&after, r#"wharf_http_request_duration_seconds_count{operation="queues-get"}"#);
    assert!(durations.is_some_and(|count| count >= 2.0), "{after}");
    // The scrapes themselves are counted too, and need no token.
    assert!(sample(&after, r#"wharf_http_requests_total{operation="metrics",status="200"}"#).is_some(), "{after}");
    assert!(!after.contains(&server.account.to_string()), "no account id in the exposition");

    let wrong_method =
        server.client.request(Method::POST, format!("{}/metrics", server.base)).bearer_auth(&server.token);
    server.send(wrong_method).await.fails(405, 7001);
}

/// The exposition fetched with `token`, which must be accepted.
async fn scrape_with(server: &TestServer, token: &str) -> String {
    let response = server.client.get(format!("{}/metrics", server.base)).bearer_auth(token).send().await;
    let response = response.expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("metrics text");
    assert_eq!(text.matches("# EOF").count(), 1, "one exposition, ended once: {text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// With a token, `/metrics` adds each queue of the token's account (and of
/// no other): backlog, bytes, oldest message and paused state. Without one it
/// names no queue; a bad token is refused as on every other path.
pub async fn metrics_with_a_token_show_each_queue_of_its_account(server: &TestServer) {
    let name = format!("depth-{}", &random_hex()[..8]);
    let queue = server.create_queue(&name).await;
    for body in ["a", "bb", "ccc"] {
        server.push_text(&queue, body).await;
    }
    server.patch(&format!("/queues/{queue}"), json!({"settings": {"delivery_paused": true}})).await.ok();
    let labels = format!(r#"{{queue_id="{queue}",queue_name="{name}"}}"#);
    let other = server
        .client
        .post(server.api_url("/accounts"))
        .bearer_auth(&server.token)
        .json(&json!({"email": "other@example.com"}));
    let other = server.send(other).await.ok();
    let (other_account, other_token) = (other["id"].as_str().expect("id"), other["token"]["value"].as_str());
    let other_token = other_token.expect("token").to_string();
    let make = server
        .client
        .post(server.api_url(&format!("/accounts/{other_account}/queues")))
        .bearer_auth(&other_token)
        .json(&json!({"queue_name": "theirs"}));
    server.send(make).await.ok();

    let mine = scrape_with(server, &server.token).await;
    let series = |metric: &str| sample(&mine, &format!("{metric}{labels}"));
    assert_eq!(series("wharf_queue_backlog_messages"), Some(3.0), "{mine}");
    assert_eq!(series("wharf_queue_backlog_bytes"), Some(6.0), "{mine}");
    assert_eq!(series("wharf_queue_oldest_message_timestamp_seconds"), Some(crate::START_MS as f64 / 1000.0));
    assert_eq!(series("wharf_queue_delivery_paused"), Some(1.0), "{mine}");
    assert!(!mine.contains("theirs"), "another account's queue is not shown: {mine}");
    assert!(mine.contains("wharf_http_requests_total"), "the totals are there too: {mine}");

    let theirs = scrape_with(server, &other_token).await;
    assert!(theirs.contains(r#"queue_name="theirs""#) && !theirs.contains(&name), "{theirs}");
    let public = scrape(server).await;
    assert!(!public.contains("wharf_queue_") && !public.contains(&name), "no queue without a token: {public}");

    let refused = server.client.get(format!("{}/metrics", server.base)).bearer_auth("not-a-token-of-this-server-0");
    server.send(refused).await.fails(403, 10000);
    let malformed = server.client.get(format!("{}/metrics", server.base)).header("authorization", "Basic abc");
    server.send(malformed).await.fails(400, 6003);
}

/// With a token, each queue's messages pushed, delivered, acked and retried
/// through this server are counted, batches and redeliveries included.
pub async fn metrics_with_a_token_count_each_queues_messages(server: &TestServer) {
    let name = format!("flow-{}", &random_hex()[..8]);
    let queue = server.pull_queue(&name, json!({})).await;
    let batch = json!({"messages": [{"body": "1"}, {"body": "2"}, {"body": "3"}]});
    server.post(&format!("/queues/{queue}/messages/batch"), batch).await.ok();
    server.push_text(&queue, "4").await;
    let pulled = server.pull(&queue, json!({"batch_size": 3})).await;
    assert_eq!(pulled.len(), 3);
    let lease = |n: usize| pulled[n]["lease_id"].as_str().expect("lease").to_string();
    let retry = json!([{"lease_id": lease(2), "delay_seconds": 0}]);
    server.ack(&queue, &[&lease(0), &lease(1)], retry).await;
    let again = server.pull(&queue, json!({"batch_size": 10})).await;
    assert_eq!(again.len(), 2, "the retried message and the fourth");
    // An ack of nothing and an empty pull count nothing.
    server.ack(&queue, &[], json!([])).await;

    let text = scrape_with(server, &server.token).await;
    let labels = format!(r#"{{queue_id="{queue}",queue_name="{name}"}}"#);
    let series = |metric: &str| sample(&text, &format!("{metric}_total{labels}"));
    assert_eq!(series("wharf_queue_messages_pushed"), Some(4.0), "{text}");
    assert_eq!(series("wharf_queue_messages_delivered"), Some(5.0), "{text}");
    assert_eq!(series("wharf_queue_messages_acked"), Some(2.0), "{text}");
    assert_eq!(series("wharf_queue_messages_retried"), Some(1.0), "{text}");
    assert!(!scrape(server).await.contains("wharf_queue_messages"), "none without a token");

    // A deleted queue's series go with it.
    server.delete(&format!("/queues/{queue}")).await.ok();
    let after = scrape_with(server, &server.token).await;
    assert!(!after.contains(&name), "{after}");
}
