//! Three real `wharf serve --backend postgres` processes on one database,
//! with pullers on every node: no message is leased twice at once, none is
//! lost, a lease taken on one node is acked on another, and every node
//! reports the same metrics. Needs PostgreSQL on 127.0.0.1:5432 (CI starts it).
//! Nodes are configured by flags or by environment alone, with their pool
//! size. And two nodes on a private cluster that is restarted under load:
//! requests meanwhile get a v4 503, the nodes reconnect by themselves.

#[path = "../../wharf-postgres/tests/support/cluster.rs"]
mod cluster;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::Cluster;

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

/// One value of a query, as text.
fn psql_value(database_url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([database_url, "-At", "-c", sql])
        .output()
        .expect("psql runs (PostgreSQL client installed)");
    assert!(output.status.success(), "psql failed: {sql}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// How a node is told where the database is, and how big its pool is.
enum NodeSetup<'a> {
    /// `--database-url URL` (and `--pool-size N` if given).
    Flags { database_url: &'a str, pool_size: Option<usize> },
    /// `WHARF_DATABASE_URL` (and `WHARF_POOL_SIZE` if given) and no flag.
    Environment { database_url: &'a str, pool_size: Option<usize> },
}

/// `log` is the node's RUST_LOG (its log goes to the test's stderr).
fn start_node(setup: NodeSetup, log: &str) -> Node {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--backend", "postgres", "--listen", "127.0.0.1:0"])
        .env_remove("WHARF_DATABASE_URL")
        .env_remove("WHARF_POOL_SIZE")
        .env_remove("WHARF_CONFIG");
    match setup {
        NodeSetup::Flags { database_url, pool_size } => {
            command.args(["--database-url", database_url]);
            if let Some(size) = pool_size {
                command.args(["--pool-size", &size.to_string()]);
            }
        }
        NodeSetup::Environment { database_url, pool_size } => {
            command.env("WHARF_DATABASE_URL", database_url);
            if let Some(size) = pool_size {
                command.env("WHARF_POOL_SIZE", size.to_string());
            }
        }
    }
    let mut child = command
        .env("WHARF_ACCOUNT_ID", ACCOUNT)
        .env("WHARF_API_TOKEN", TOKEN)
        .env("RUST_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wharf starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(base) = line.strip_prefix("wharf listening on ") {
            // Keep draining stdout so the node never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
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
    // The first node's connections carry a name, to count them: its pool
    // holds at most two.
    let tag = format!("wharf_small_pool_{}", std::process::id());
    let tagged_url = format!("{url}?application_name={tag}");
    // Nodes start one after another: each one's bootstrap sees the account
    // the first one created. The second is configured by environment only.
    let nodes = vec![
        start_node(NodeSetup::Flags { database_url: &tagged_url, pool_size: Some(2) }, "warn"),
        start_node(NodeSetup::Environment { database_url: &url, pool_size: Some(3) }, "warn"),
        start_node(NodeSetup::Flags { database_url: &url, pool_size: None }, "warn"),
    ];
    assert_eq!(nodes.len(), NODES);
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
    let small_pool =
        psql_value(&url, &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{tag}'"));
    let small_pool: usize = small_pool.parse().expect("a count");
    assert!((1..=2).contains(&small_pool), "--pool-size 2 opened {small_pool} connections");
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

/// What an HTTP request came to: a success, or the retryable 503 a request
/// gets while the database is down. Anything else fails the test.
enum Outcome {
    Done(Value),
    Unavailable,
}

async fn call_during_faults(client: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> Outcome {
    let started = Instant::now();
    let response = client.request(method, url).bearer_auth(TOKEN).json(&body).send().await.expect("the node answers");
    let status = response.status();
    let reply: Value = response.json().await.expect("json reply");
    if status.is_success() {
        return Outcome::Done(reply["result"].clone());
    }
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert_eq!(reply["success"], false, "{reply}");
    assert_eq!(reply["errors"][0]["code"], 15003, "backend unavailable: {reply}");
    assert!(started.elapsed() < Duration::from_secs(8), "a 503 took {:?}", started.elapsed());
    Outcome::Unavailable
}

/// What the load tasks of the restart test saw.
#[derive(Default)]
struct Seen {
    /// Bodies whose push was answered with success.
    pushed: HashSet<String>,
    /// Bodies whose ack was answered with success.
    acked: HashSet<String>,
    /// Bodies whose ack got a 503: it may have committed all the same.
    ack_unsure: HashSet<String>,
    unavailable: usize,
    /// Successes after the database was back, per task.
    after_restart: HashMap<String, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_ride_out_a_database_restart() {
    let cluster = Cluster::start("nodes-restart");
    let url = cluster.url("postgres");
    // The 503s are expected here: not one log line each.
    let log = "warn,wharf_http=off";
    let nodes = [
        start_node(NodeSetup::Flags { database_url: &url, pool_size: Some(4) }, log),
        start_node(NodeSetup::Environment { database_url: &url, pool_size: None }, log),
    ];
    let bases: Vec<String> = nodes.iter().map(|node| node.base.clone()).collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let queue = call(&client, reqwest::Method::POST, format!("{}/queues", bases[0]), json!({"queue_name": "q"})).await;
    let queue = queue["queue_id"].as_str().expect("queue id").to_string();
    // Long leases: a message whose ack failed stays leased, and is found in the table.
    let consumer = json!({"type": "http_pull", "settings": {"visibility_timeout_ms": 600_000}});
    call(&client, reqwest::Method::POST, format!("{}/queues/{queue}/consumers", bases[1]), consumer).await;

    let seen: Arc<Mutex<Seen>> = Arc::default();
    let back_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for task in 0..6 {
        let (client, bases, queue) = (client.clone(), bases.clone(), queue.clone());
        let (seen, back_at) = (Arc::clone(&seen), Arc::clone(&back_at));
        tasks.push(tokio::spawn(async move {
            let node = task % 2;
            let name = format!("task {task}");
            let mut n = 0;
            while Instant::now() < until {
                let done =
                    if task < 4 {
                        // Pushers, two per node.
                        let body = format!("{task}-{n}");
                        n += 1;
                        let url = format!("{}/queues/{queue}/messages", bases[node]);
                        let message = json!({"body": body, "content_type": "text"});
                        match call_during_faults(&client, reqwest::Method::POST, url, message).await {
                            Outcome::Done(_) => seen.lock().expect("lock").pushed.insert(body),
                            Outcome::Unavailable => false,
                        }
                    } else {
                        // A puller per node, acking through the other node.
                        let url = format!("{}/queues/{queue}/messages/pull", bases[node]);
                        let pulled =
                            match call_during_faults(&client, reqwest::Method::POST, url, json!({"batch_size": 10}))
                                .await
                            {
                                Outcome::Done(pulled) => pulled["messages"].as_array().cloned().unwrap_or_default(),
                                Outcome::Unavailable => Vec::new(),
                            };
                        let bodies: Vec<String> =
                            pulled.iter().map(|m| m["body"].as_str().expect("text body").to_string()).collect();
                        let acks: Vec<Value> = pulled.iter().map(|m| json!({"lease_id": m["lease_id"]})).collect();
                        let url = format!("{}/queues/{queue}/messages/ack", bases[1 - node]);
                        match call_during_faults(&client, reqwest::Method::POST, url, json!({"acks": acks})).await {
                            Outcome::Done(acked) => {
                                assert_eq!(acked["ackCount"], bodies.len(), "{acked}");
                                seen.lock().expect("lock").acked.extend(bodies);
                                true
                            }
                            Outcome::Unavailable => {
                                seen.lock().expect("lock").ack_unsure.extend(bodies);
                                false
                            }
                        }
                    };
                {
                    let mut seen = seen.lock().expect("lock");
                    if !done {
                        seen.unavailable += 1;
                    } else if back_at.lock().expect("lock").is_some_and(|at| Instant::now() > at) {
                        *seen.after_restart.entry(name.clone()).or_default() += 1;
                    }
                }
                if !done {
                    // The database is down: do not spin on refusals.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_after(Duration::from_millis(800));
        cluster
    })
    .await
    .expect("restart");
    *back_at.lock().expect("lock") = Some(Instant::now());
    for task in tasks {
        task.await.expect("load task");
    }

    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(seen.unavailable > 0, "no request met the database while it was down: the test proves nothing");
    for task in 0..6 {
        let name = format!("task {task}");
        assert!(seen.after_restart.get(&name).is_some_and(|count| *count > 0), "{name}: no success after the restart");
    }
    // Every node answers again, and agrees with the table.
    let stored: HashSet<String> =
        psql_value(&url, "SELECT convert_from(body, 'UTF8') FROM messages").lines().map(str::to_string).collect();
    for base in &bases {
        let metrics = call(&client, reqwest::Method::GET, format!("{base}/queues/{queue}/metrics"), json!({})).await;
        assert_eq!(metrics["backlog_count"], stored.len(), "metrics agree with count(*)");
    }
    for body in &seen.pushed {
        let gone = seen.acked.contains(body) || seen.ack_unsure.contains(body);
        assert!(stored.contains(body) || gone, "acknowledged push {body} lost");
    }
    let back: Vec<&String> = seen.acked.iter().filter(|body| stored.contains(*body)).collect();
    assert!(back.is_empty(), "acked messages came back: {back:?}");
    println!(
        "{} pushes and {} acks acknowledged, {} requests answered 503",
        seen.pushed.len(),
        seen.acked.len(),
        seen.unavailable
    );
    drop(nodes);
    drop(cluster);
}
