//! Credentials, scopes, accounts, routing errors, and garbage input.

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_core::model::{Account, Scope};
use wharf_core::AccountId;

use super::random_hex;
use crate::{assert_envelope, TestServer};

fn chain_code(reply: &crate::Reply) -> Option<u64> {
    reply.body["errors"][0]["error_chain"][0]["code"].as_u64()
}

pub async fn credentials_are_checked(server: &TestServer) {
    let url = server.url("/queues");
    let none = server.send(server.client.get(&url)).await;
    none.fails(400, 6003);
    assert_eq!(chain_code(&none), Some(6103));
    for malformed in ["Basic abc", "Bearer", "Bearer two words", "Bearer\tx", "token"] {
        let reply = server.send(server.client.get(&url).header("authorization", malformed)).await;
        reply.fails(400, 6003);
        assert_eq!(chain_code(&reply), Some(6111), "{malformed}");
    }
    let bad_key = server.client.get(&url).header("x-auth-email", &server.email).header("x-auth-key", "a key");
    let reply = server.send(bad_key).await;
    reply.fails(400, 6003);
    assert_eq!(chain_code(&reply), Some(6103));
    server.send(server.client.get(&url).bearer_auth("not-a-real-token")).await.fails(403, 10000);

    let email_key = server.client.get(&url).header("x-auth-email", &server.email).header("x-auth-key", &server.token);
    server.send(email_key).await.ok();
    let wrong_email =
        server.client.get(&url).header("x-auth-email", "eve@example.com").header("x-auth-key", &server.token);
    server.send(wrong_email).await.fails(403, 10000);
    let wrong_key = server.client.get(&url).header("x-auth-email", &server.email).header("x-auth-key", "wrong");
    server.send(wrong_key).await.fails(403, 10000);

    let verify = format!("{}/client/v4/user/tokens/verify", server.base);
    let verified = server.send(server.client.get(&verify).bearer_auth(&server.token)).await.ok();
    assert_eq!(verified["status"], "active");
    assert_eq!(verified["id"].as_str().map(str::len), Some(32));
    server.send(server.client.get(&verify)).await.fails(400, 6003);

    // What wrangler asks when no account id is configured: the token's account.
    let account = server.account.to_string();
    let accounts = format!("{}/client/v4/accounts", server.base);
    let listed = server.send(server.client.get(&accounts).bearer_auth(&server.token)).await;
    assert_eq!(listed.body["result_info"]["total_count"], 1);
    assert_eq!(listed.ok()[0]["id"], account.as_str());
    let memberships = format!("{}/client/v4/memberships", server.base);
    let member = server.send(server.client.get(&memberships).bearer_auth(&server.token)).await.ok();
    assert_eq!(member[0]["account"]["id"], account.as_str());
    server.send(server.client.get(&memberships)).await.fails(400, 6003);
    let user = format!("{}/client/v4/user", server.base);
    assert_eq!(
        server.send(server.client.get(&user).bearer_auth(&server.token)).await.ok()["email"],
        server.email.as_str()
    );

    let health = server.client.get(format!("{}/healthz", server.base)).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.json::<Value>().await.expect("json"), json!({"status": "ok"}));
}

pub async fn scopes_and_accounts_are_enforced(server: &TestServer) {
    let queue = server.pull_queue("guarded", json!({})).await;
    server.push_text(&queue, "m").await;
    let reader = server.broker.create_token(server.account, "reader", Scope::Read).await.expect("read token");
    let read = |method: Method, path: &str, body: Value| {
        server.client.request(method, server.url(path)).bearer_auth(&reader.secret).json(&body)
    };
    let q = |tail: &str| format!("/queues/{queue}{tail}");
    for (method, path) in [
        (Method::GET, "/queues".to_string()),
        (Method::GET, q("")),
        (Method::GET, q("/consumers")),
        (Method::GET, q("/metrics")),
        (Method::GET, q("/purge")),
        (Method::POST, q("/messages/preview")),
        (Method::POST, q("/messages/peek")),
        (Method::GET, "/event_subscriptions/subscriptions".to_string()),
    ] {
        let reply = server.send(read(method.clone(), &path, json!({}))).await;
        assert_eq!(reply.status, 200, "{method} {path} with a read token: {}", reply.body);
    }
    for (method, path, body) in [
        (Method::POST, "/queues".to_string(), json!({"queue_name": "nope"})),
        (Method::PATCH, q(""), json!({"settings": {"delivery_paused": true}})),
        (Method::PUT, q(""), json!({})),
        (Method::DELETE, q(""), json!({})),
        (Method::POST, q("/consumers"), json!({"type": "http_pull"})),
        (Method::POST, q("/messages"), json!({"body": 1})),
        (Method::POST, q("/messages/batch"), json!({"messages": []})),
        (Method::POST, q("/messages/pull"), json!({})),
        (Method::POST, q("/messages/ack"), json!({})),
        (Method::POST, q("/messages/preview/ack"), json!({})),
        (Method::POST, q("/messages/purge"), json!({"refs": []})),
        (Method::POST, q("/messages/extend"), json!({})),
        (Method::POST, q("/messages/redrive"), json!({})),
        (Method::POST, q("/purge"), json!({"delete_messages_permanently": true})),
    ] {
        let reply = server.send(read(method.clone(), &path, body)).await;
        assert_eq!((reply.status, reply.code()), (403, Some(10000)), "{method} {path}: {}", reply.body);
    }
    let metrics = server.metrics(&queue).await;
    assert_eq!(metrics["backlog_count"], 1, "refused writes changed nothing");
    assert_eq!(server.get(&q("")).await.ok()["settings"]["delivery_paused"], false);

    // Tokens of one account are useless on another's paths.
    let other = Account { id: AccountId::random(), email: "other@example.com".into(), created_on_ms: 0 };
    let other_secret = wharf_core::auth::generate_secret();
    server.broker.ensure_account(&other, &other_secret).await.expect("other account");
    let foreign = server.client.get(server.url("/queues")).bearer_auth(&other_secret);
    server.send(foreign).await.fails(403, 10000);
    let theirs = format!("{}/client/v4/accounts/{}/queues", server.base, other.id);
    server.send(server.client.get(&theirs).bearer_auth(&server.token)).await.fails(403, 10000);
    let theirs_queue = format!("{}/client/v4/accounts/{}/queues/{queue}", server.base, other.id);
    server.send(server.client.get(&theirs_queue).bearer_auth(&other_secret)).await.fails(404, 10104);
    for malformed in ["abc", "not-hex-not-hex-not-hex-not-hex!"] {
        let url = format!("{}/client/v4/accounts/{malformed}/queues", server.base);
        server.send(server.client.get(&url).bearer_auth(&server.token)).await.fails(403, 10000);
    }

    assert!(server.broker.revoke_token(server.account, reader.record.id).await.expect("revoke"));
    server.send(read(Method::GET, "/queues", json!({}))).await.fails(403, 10000);
}

pub async fn routing_errors_use_the_envelope(server: &TestServer) {
    let queue = server.create_queue("routed").await;
    let authed = |method: Method, url: String| server.client.request(method, url).bearer_auth(&server.token);
    for url in [
        server.url("/nope"),
        server.url(&format!("/queues/{queue}/nope")),
        server.url(&format!("/queues/{queue}/messages/pull/extra")),
        format!("{}/nope", server.base),
        format!("{}/client/v4/accounts/", server.base),
        format!("{}/", server.base),
    ] {
        server.send(authed(Method::GET, url)).await.fails(404, 7003);
    }
    let wrong = server.send(authed(Method::GET, server.url(&format!("/queues/{queue}/messages/pull")))).await;
    wrong.fails(405, 7001);
    assert_eq!(wrong.headers.get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    server.send(authed(Method::DELETE, server.url("/queues"))).await.fails(405, 7001);
    server.send(authed(Method::POST, format!("{}/healthz", server.base))).await.fails(405, 7001);

    // Declared too large: refused before the body is read (the head alone is sent,
    // so the answer cannot be lost to a reset while the body is still in flight).
    let head = format!(
        "POST /client/v4/accounts/{}/queues/{queue}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        server.account,
        server.token,
        server.limits.max_request_bytes + 1
    );
    let (status, body) = raw_exchange(server, head.as_bytes(), &[]).await;
    assert_eq!((status, body["errors"][0]["code"].as_u64()), (413, Some(10209)), "{body}");
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);

    let r2 = server.url(&format!("/event_notifications/r2/bucket/configuration/queues/{queue}"));
    server.send(authed(Method::GET, r2.clone())).await.fails(501, 7010);
    server.send(authed(Method::PUT, r2.clone()).json(&json!({"rules": []}))).await.fails(501, 7010);
    server.send(server.client.delete(r2)).await.fails(400, 6003);
}

/// A tiny deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

pub async fn garbage_requests_get_envelopes(server: &TestServer) {
    let queue = server.pull_queue("garbage", json!({})).await;
    server.push_text(&queue, "keep").await;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "FROB"];
    let segments = [
        "queues",
        "messages",
        "pull",
        "ack",
        "batch",
        "consumers",
        "purge",
        "metrics",
        "peek",
        "preview",
        "extend",
        "redrive",
        "event_subscriptions",
        "subscriptions",
        "event_notifications",
        "r2",
        "configuration",
        "%00",
        "%ff%fe",
        "..",
        "%2F",
        "~",
        "",
        "a",
        &queue,
        "00000000000000000000000000000000",
        "ÿ",
        "%E2%82%AC",
    ];
    let bodies: [&[u8]; 8] = [
        b"",
        b"{",
        b"null",
        b"{\"body\":\"x\",\"content_type\":\"text\"}",
        b"{\"messages\":[{\"body\":{}}],\"delay_seconds\":1e400}",
        b"{\"acks\":[{\"lease_id\":null}]}",
        b"\xc3\x28\xa0\xa1",
        b"{\"batch_size\":18446744073709551616}",
    ];
    let account = server.account.to_string();
    for round in 0..400 {
        let mut path = match rng.below(4) {
            0 => format!("/client/v4/accounts/{account}"),
            1 => format!("/client/v4/accounts/{}", rng.pick(&segments)),
            2 => "/client/v4".to_string(),
            _ => String::new(),
        };
        for _ in 0..rng.below(6) {
            path.push('/');
            path.push_str(rng.pick(&segments));
        }
        if rng.below(4) == 0 {
            path.push_str("?page=-1&per_page=x&name=%ZZ&name");
        }
        let method = Method::from_bytes(rng.pick(&methods).as_bytes()).expect("method");
        let mut body = bodies[rng.below(bodies.len())].to_vec();
        if rng.below(3) == 0 {
            body = (0..rng.below(512)).map(|_| rng.next() as u8).collect();
        }
        let mut request = server.client.request(method.clone(), format!("{}{path}", server.base)).body(body);
        request = match rng.below(5) {
            0 => request,
            1 => request.header("authorization", "Bearer junk"),
            2 => request
                .header("x-auth-key", "k")
                .header("x-auth-email", HeaderValue::from_bytes(b"\xe9").expect("obs-text")),
            3 => request.header("authorization", HeaderValue::from_bytes(b"Bearer \xe9\xff").expect("obs-text")),
            _ => request.bearer_auth(&server.token),
        };
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("round {round}: {method} {path} answered {status} with {:?}", String::from_utf8_lossy(&bytes))
        });
        if path != "/healthz" {
            assert_envelope(&body);
        }
        assert!(status < 500, "round {round}: {method} {path} answered {status}: {body}");
    }

    // Raw bytes that are not HTTP at all must not bring the server down.
    for round in 0..20 {
        let address = server.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let noise: Vec<u8> = (0..rng.below(2048) + 1).map(|_| rng.next() as u8).collect();
        let prefix: &[u8] =
            if round % 2 == 0 { b"POST /client/v4/accounts HTTP/1.1\r\nContent-Length: 99999\r\n\r\n" } else { b"" };
        let _ = stream.write_all(prefix).await;
        let _ = stream.write_all(&noise).await;
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut sink)).await;
    }
    assert_eq!(server.metrics(&queue).await["backlog_count"], 1);
    let unknown = random_hex();
    server.get(&format!("/queues/{unknown}")).await.fails(404, 10104);
}

/// Writes a raw request (head, then body chunks until the server stops
/// reading), and returns the answer's status and JSON body.
async fn raw_exchange(server: &TestServer, head: &[u8], chunks: &[Vec<u8>]) -> (u16, Value) {
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    stream.write_all(head).await.expect("request head");
    for chunk in chunks {
        // The server may answer and close before reading everything.
        if stream.write_all(chunk).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Read until the JSON body is complete; a reset after it is fine.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            if let Ok(body) = serde_json::from_str::<Value>(body.trim()) {
                let status = head.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0);
                assert_envelope(&body);
                return (status, body);
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => answer.extend_from_slice(&buffer[..read]),
            other => panic!("no complete answer ({other:?}): {text:.300}"),
        }
    }
}

/// A body without Content-Length is still cut off at the limit.
pub async fn chunked_oversized_body_is_refused(server: &TestServer) {
    let queue = server.pull_queue("chunked", json!({})).await;
    let head = format!(
        "POST /client/v4/accounts/{}/queues/{queue}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.account, server.token
    );
    let size = 64 * 1024;
    let mut chunk = format!("{size:x}\r\n").into_bytes();
    chunk.extend(std::iter::repeat_n(b' ', size));
    chunk.extend_from_slice(b"\r\n");
    let count = server.limits.max_request_bytes as usize / size + 2;
    let mut chunks = vec![chunk; count];
    chunks.push(b"0\r\n\r\n".to_vec());
    let (status, body) = raw_exchange(server, head.as_bytes(), &chunks).await;
    assert_eq!((status, body["errors"][0]["code"].as_u64()), (413, Some(10209)), "{body}");
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0);
}
