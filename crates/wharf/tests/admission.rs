//! The in-flight request-body budget (`limits.max_inflight_request_bytes`):
//! while one large push is still being received, another that would pass
//! the budget is refused at once with 429, 10250 and `Retry-After`, a
//! request without a body still goes through, and once the first is
//! answered the refused one succeeds.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_core::{Broker, Limits, ManualClock};
use wharf_engine::{Engine, EngineConfig};
use wharf_testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_inflight_budget_is_refused_until_room_is_free() {
    let limits = Limits { max_inflight_request_bytes: 64 * 1024, ..Limits::cloudflare() };
    let clock = ManualClock::new(wharf_testkit::START_MS);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory");
    let config =
        EngineConfig { data_dir: dir.path().to_path_buf(), limits: limits.clone(), clock: Arc::new(clock.clone()) };
    let engine: Arc<dyn Broker> = Engine::open(config).await.expect("engine opens");
    let server = TestServer::start(engine, clock, limits).await;
    let queue = server.create_queue("budget").await;

    // A 48 KiB push whose body is held back after its first bytes.
    let body = serde_json::to_vec(&json!({"body": "x".repeat(48 * 1024), "content_type": "text"})).expect("json");
    let address = server.base.trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /client/v4/accounts/{}/queues/{queue}/messages HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.account,
        server.token,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("head");
    slow.write_all(&body[..1024]).await.expect("first bytes");

    // 16 KiB more would pass 64 KiB once the slow request holds its 48.
    let second = json!({"body": "y".repeat(20 * 1024), "content_type": "text"});
    let mut refused = None;
    for _ in 0..100 {
        let reply = server.post(&format!("/queues/{queue}/messages"), second.clone()).await;
        if reply.status == 429 {
            refused = Some(reply);
            break;
        }
        // The slow request may not have reached the server yet; undo and retry.
        assert_eq!(reply.status, 200, "{}", reply.body);
        server.post(&format!("/queues/{queue}/purge"), json!({"delete_messages_permanently": true})).await.ok();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = refused.expect("a push past the budget was refused");
    refused.fails(429, 10250);
    assert_eq!(refused.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0, "the refused push changed nothing");

    slow.write_all(&body[1024..]).await.expect("rest of the body");
    let mut answer = vec![0u8; 4096];
    let read = slow.read(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "the held request succeeds: {answer}");
    server.post(&format!("/queues/{queue}/messages"), second).await.ok();
    assert_eq!(server.metrics(&queue).await["backlog_count"], 2);
    server.stop().await;
}
