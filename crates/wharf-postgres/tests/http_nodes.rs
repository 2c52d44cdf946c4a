//! Three in-process Wharf nodes (the real HTTP router each) on one database,
//! with pullers on every node: no message is leased to two pullers at once,
//! none is lost, leases taken on one node ack on another, and every node
//! reports the same metrics.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{broker, config};
use serde_json::{json, Value};
use wharf_core::{Broker, Limits, ManualClock};
use wharf_postgres::PostgresBroker;
use wharf_testkit::{TestServer, START_MS};

const MESSAGES: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_one_queue() {
    let clock = ManualClock::new(START_MS);
    let owner = broker(&clock).await;
    let schema = owner.schema.clone();
    let first = TestServer::start(owner, clock.clone(), Limits::cloudflare()).await;
    let mut nodes = vec![first];
    for _ in 0..2 {
        let backend = PostgresBroker::connect(config(&clock, &schema)).await.expect("node connects");
        let mut node = TestServer::start(backend as Arc<dyn Broker>, clock.clone(), Limits::cloudflare()).await;
        // Every node serves the first node's account (start made another).
        node.account = nodes[0].account;
        node.token = nodes[0].token.clone();
        nodes.push(node);
    }
    let nodes = Arc::new(nodes);
    let queue = nodes[0].pull_queue("shared", json!({"visibility_timeout_ms": 600_000})).await;
    for (n, batch) in (0..MESSAGES).collect::<Vec<_>>().chunks(100).enumerate() {
        let messages: Vec<Value> =
            batch.iter().map(|i| json!({"body": format!("m{i}"), "content_type": "text"})).collect();
        let node = &nodes[n % 3];
        node.post(&format!("/queues/{queue}/messages/batch"), json!({"messages": messages})).await.ok();
    }

    // Two pullers per node; each acks what it pulled on the next node.
    let mut pullers = Vec::new();
    for puller in 0..6 {
        let (nodes, queue) = (nodes.clone(), queue.clone());
        pullers.push(tokio::spawn(async move {
            let (pulling, acking) = (&nodes[puller % 3], &nodes[(puller + 1) % 3]);
            let mut seen = Vec::new();
            loop {
                let messages = pulling.pull(&queue, json!({"batch_size": 9})).await;
                if messages.is_empty() {
                    return seen;
                }
                let leases: Vec<&str> = messages.iter().filter_map(|m| m["lease_id"].as_str()).collect();
                let acked = acking.ack(&queue, &leases, json!([])).await;
                assert_eq!(acked["ackCount"].as_u64(), Some(leases.len() as u64), "{acked}");
                seen.extend(messages.iter().map(|m| (m["id"].clone(), m["body"].clone(), m["attempts"].clone())));
            }
        }));
    }
    let mut delivered = Vec::new();
    for puller in pullers {
        delivered.extend(puller.await.expect("puller"));
    }
    let ids: HashSet<String> = delivered.iter().map(|(id, _, _)| id.to_string()).collect();
    let bodies: HashSet<String> = delivered.iter().map(|(_, body, _)| body.to_string()).collect();
    assert_eq!(delivered.len(), MESSAGES, "every message delivered once");
    assert_eq!((ids.len(), bodies.len()), (MESSAGES, MESSAGES), "no message leased to two pullers, none lost");
    assert!(delivered.iter().all(|(_, _, attempts)| attempts == 1));
    for node in nodes.iter() {
        let metrics = node.metrics(&queue).await;
        assert_eq!((metrics["backlog_count"].as_u64(), metrics["backlog_bytes"].as_u64()), (Some(0), Some(0)));
    }

    // Metrics agree across nodes while messages are in flight too.
    nodes[1].push_text(&queue, "left").await;
    nodes[2].pull(&queue, json!({"batch_size": 1})).await;
    let views: Vec<Value> = metrics_on_every_node(&nodes, &queue).await;
    assert!(views.windows(2).all(|pair| pair[0] == pair[1]), "{views:?}");
    assert_eq!(views[0]["backlog_count"], 1);

    let nodes = Arc::try_unwrap(nodes).map_err(|_| ()).expect("pullers are done");
    for node in nodes.into_iter().rev() {
        node.stop().await;
    }
}

async fn metrics_on_every_node(nodes: &[TestServer], queue: &str) -> Vec<Value> {
    let mut views = Vec::new();
    for node in nodes {
        views.push(node.metrics(queue).await);
    }
    views
}
