//! `GET /metrics`: Prometheus figures, without a token.

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
