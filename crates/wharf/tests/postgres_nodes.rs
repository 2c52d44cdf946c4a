//! Three real `wharf serve --backend postgres` processes on one database,
//! with pullers on every node: no message is leased twice at once, none is
//! lost, a lease taken on one node is acked on another, and every node
//! reports the same metrics. Needs PostgreSQL on 127.0.0.1:5432 (CI starts it).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_wharf");
const ACCOUNT: &str = "0badc0de0badc0de0badc0de0badc0de";
const TOKEN: &str = "three-nodes-token-0123456789abcdefghij";
const NODES: usize = 3;
const MESSAGES: usize = 1_500;

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn psql(sql: &str) {
    let status = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", sql])
        .status()
        .expect("psql runs (PostgreSQL client installed)");
    assert!(status.success(), "psql failed: {sql}");
}

fn start_node(database_url: &str) -> Node {
    let mut child = Command::new(BIN)
        .args(["serve", "--backend", "postgres", "--listen", "127.0.0.1:0", "--database-url", database_url])
        .env("WHARF_ACCOUNT_ID", ACCOUNT)
        .env("WHARF_API_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wharf starts");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(base) = line.strip_prefix("wharf listening on ") {
            return Node { child, base: format!("{base}/client/v4/accounts/{ACCOUNT}") };
        }
    }
    let status = child.wait().expect("wait for the failed node");
    panic!("a node exited ({status}) before listening");
}

async fn call(client: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> Value {
    let response = client.request(method, url).bearer_auth(TOKEN).json(&body).send().await.expect("request");
    let status = response.status();
    let reply: Value = response.json().await.expect("json reply");
    assert!(status.is_success(), "{status}: {reply}");
    reply["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_one_database_safely() {
    let database = format!("wharf_nodes_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {database}"));
    psql(&format!("CREATE DATABASE {database}"));
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    // Nodes start one after another: each one's bootstrap sees the account
    // the first one created.
    let nodes: Vec<Node> = (0..NODES).map(|_| start_node(&url)).collect();
    let bases: Vec<String> = nodes.iter().map(|node| node.base.clone()).collect();
    let client = reqwest::Client::new();

    let queue =
        call(&client, reqwest::Method::POST, format!("{}/queues", bases[0]), json!({"queue_name": "shared"})).await;
    let queue = queue["queue_id"].as_str().expect("queue id").to_string();
    let consumer = json!({"type": "http_pull", "settings": {"visibility_timeout_ms": 60_000}});
    call(&client, reqwest::Method::POST, format!("{}/queues/{queue}/consumers", bases[1]), consumer).await;

    // Every node takes a share of the pushes.
    for (batch, chunk) in (0..MESSAGES).collect::<Vec<_>>().chunks(50).enumerate() {
        let messages: Vec<Value> =
            chunk.iter().map(|n| json!({"body": format!("m{n}"), "content_type": "text"})).collect();
        let url = format!("{}/queues/{queue}/messages/batch", bases[batch % NODES]);
        call(&client, reqwest::Method::POST, url, json!({ "messages": messages })).await;
    }
    for base in &bases {
        let metrics = call(&client, reqwest::Method::GET, format!("{base}/queues/{queue}/metrics"), json!({})).await;
        assert_eq!(metrics["backlog_count"], MESSAGES, "every node sees the same backlog");
    }

    // Two pullers per node; each acks through the next node.
    let deliveries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut pullers = Vec::new();
    for puller in 0..NODES * 2 {
        let (client, bases, queue, deliveries) =
            (client.clone(), bases.clone(), queue.clone(), Arc::clone(&deliveries));
        pullers.push(tokio::spawn(async move {
            let pull_node = puller % NODES;
            let ack_node = (pull_node + 1) % NODES;
            loop {
                let url = format!("{}/queues/{queue}/messages/pull", bases[pull_node]);
                let pulled = call(&client, reqwest::Method::POST, url, json!({"batch_size": 25})).await;
                let messages = pulled["messages"].as_array().cloned().unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                let mut acks = Vec::new();
                for message in &messages {
                    let body = message["body"].as_str().expect("text body").to_string();
                    *deliveries.lock().expect("lock").entry(body).or_default() += 1;
                    acks.push(json!({"lease_id": message["lease_id"]}));
                }
                let url = format!("{}/queues/{queue}/messages/ack", bases[ack_node]);
                let acked = call(&client, reqwest::Method::POST, url, json!({ "acks": acks })).await;
                assert_eq!(acked["ackCount"], messages.len(), "a lease from one node acks on another: {acked}");
            }
        }));
    }
    for puller in pullers {
        puller.await.expect("puller");
    }
    let deliveries = deliveries.lock().expect("lock").clone();
    assert_eq!(deliveries.len(), MESSAGES, "every message delivered, none lost");
    let twice: Vec<_> = deliveries.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "leased twice while the first lease was live: {twice:?}");
    for base in &bases {
        let metrics = call(&client, reqwest::Method::GET, format!("{base}/queues/{queue}/metrics"), json!({})).await;
        assert_eq!((metrics["backlog_count"].as_u64(), metrics["backlog_bytes"].as_u64()), (Some(0), Some(0)));
    }
    drop(nodes);
    psql(&format!("DROP DATABASE IF EXISTS {database}"));
}
