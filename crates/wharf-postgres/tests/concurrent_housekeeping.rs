//! Background work with three nodes on one database, all of them sweeping
//! (and housekeeping through their own requests) at the same moment: an
//! expired lease is requeued once, retention deletes each message once with
//! metrics that match the table, and a delayed message becomes visible once.
//! The nodes share a manual clock, so "due" is the same instant for all.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{broker, config, counted_backlog, drain_from_every_node, SchemaBroker};
use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, MessageView, NewMessage, PullRequest,
    QueueSettings,
};
use wharf_core::{AccountId, Broker, ManualClock, QueueId};
use wharf_postgres::PostgresBroker;

const START_MS: u64 = 1_700_000_000_000;
const NODES: usize = 3;
/// Housekeeping tasks per node in one concurrent pass.
const TASKS_PER_NODE: usize = 4;

async fn nodes(clock: &ManualClock, schema: &str) -> Vec<Arc<PostgresBroker>> {
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        let node = PostgresBroker::connect_without_sweeper(config(clock, schema)).await.expect("node connects");
        nodes.push(Arc::new(node));
    }
    nodes
}

async fn setup(first: &SchemaBroker, settings: QueueSettings) -> (AccountId, QueueId) {
    let account = Account { id: AccountId(0xfeed), email: "ops@example.com".into(), created_on_ms: 0 };
    first.ensure_account(&account, "admin-secret").await.expect("account");
    let queue = first.create_queue(account.id, "swept", settings).await.expect("queue").id;
    let mut consumer = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    consumer.max_retries = 3;
    consumer.visibility_timeout_ms = 1_000;
    let spec = ConsumerSpec { kind: ConsumerKind::HttpPull, dead_letter_queue: None, settings: consumer };
    first.create_consumer(account.id, queue, &spec).await.expect("consumer");
    (account.id, queue)
}

fn messages(prefix: &str, count: usize, delay_seconds: Option<u32>) -> Vec<NewMessage> {
    (0..count)
        .map(|n| NewMessage {
            body: format!("{prefix}{n}").into_bytes(),
            content_type: ContentType::Text,
            delay_seconds,
        })
        .collect()
}

/// Every node sweeps and reads metrics (which housekeeps the queue first)
/// from several tasks at once. A metrics reading is a u64, so a backlog that
/// went negative on the way would fail the call.
async fn housekeep_everywhere(nodes: &[Arc<PostgresBroker>], account: AccountId, queue: QueueId) {
    let mut work = Vec::new();
    for node in nodes {
        for task in 0..TASKS_PER_NODE {
            let node = node.clone();
            work.push(tokio::spawn(async move {
                if task % 2 == 0 {
                    node.tick().await
                } else {
                    node.metrics(account, queue).await.map(|_| ())
                }
            }));
        }
    }
    for task in work {
        task.await.expect("housekeeping task").expect("housekeeping succeeds");
    }
}

/// Pulls with a long lease from every node at once until the queue is empty.
async fn drain(nodes: &[Arc<PostgresBroker>], account: AccountId, queue: QueueId) -> Vec<MessageView> {
    drain_from_every_node(nodes, account, queue, NODES * 2, 9).await
}

/// The backlog count each node reports.
async fn metrics_everywhere(nodes: &[Arc<PostgresBroker>], account: AccountId, queue: QueueId) -> Vec<u64> {
    let mut readings = Vec::new();
    for node in nodes {
        readings.push(node.metrics(account, queue).await.expect("metrics").backlog_count);
    }
    readings
}

fn bodies(messages: &[MessageView]) -> HashSet<String> {
    messages.iter().map(|message| String::from_utf8_lossy(&message.body).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_leases_are_requeued_once_by_three_sweeping_nodes() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, QueueSettings::default()).await;
    let nodes = nodes(&clock, &first.schema).await;
    first.push(account, queue, messages("m", 90, None)).await.expect("push");
    let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
    let leased = first.pull(account, queue, request).await.expect("pull").messages;
    assert_eq!(leased.len(), 90);
    assert!(leased.iter().all(|message| message.attempts == 1));

    clock.advance_ms(1_000);
    housekeep_everywhere(&nodes, account, queue).await;
    // Requeued, not yet delivered again: no attempt was added by requeueing,
    // however many nodes did it, and nothing left the backlog.
    assert_eq!(counted_backlog(&first.schema, queue).await.0, 90, "rows in the table");
    assert_eq!(metrics_everywhere(&nodes, account, queue).await, vec![90; NODES], "backlog unchanged");

    let redelivered = drain(&nodes, account, queue).await;
    assert_eq!(redelivered.len(), 90, "each expired lease requeued exactly once");
    assert_eq!(bodies(&redelivered), bodies(&leased), "the same messages come back");
    let attempts: Vec<u32> = redelivered.iter().map(|message| message.attempts).collect();
    assert!(attempts.iter().all(|attempts| *attempts == 2), "exactly one more attempt: {attempts:?}");
    assert_eq!(metrics_everywhere(&nodes, account, queue).await, vec![90; NODES]);
    drop(nodes);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_deletes_once_and_metrics_match_the_table() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let settings = QueueSettings { message_retention_period: 60, ..QueueSettings::default() };
    let (account, queue) = setup(&first, settings).await;
    let nodes = nodes(&clock, &first.schema).await;
    // Old messages, some of them leased (retention takes those too), then
    // young ones that must stay.
    for wave in ["old-a", "old-b"] {
        first.push(account, queue, messages(wave, 60, None)).await.expect("push old");
    }
    let request = PullRequest { batch_size: Some(30), visibility_timeout_ms: Some(600_000) };
    assert_eq!(first.pull(account, queue, request).await.expect("pull").messages.len(), 30);
    clock.advance_ms(30_000);
    first.push(account, queue, messages("young", 45, None)).await.expect("push young");
    clock.advance_ms(31_000);

    housekeep_everywhere(&nodes, account, queue).await;
    let (rows, bytes, _) = counted_backlog(&first.schema, queue).await;
    assert_eq!(rows, 45, "every old message deleted, every young one kept");
    for node in &nodes {
        let metrics = node.metrics(account, queue).await.expect("metrics");
        assert_eq!((metrics.backlog_count, metrics.backlog_bytes), (rows, bytes), "metrics equal count(*)");
    }
    assert_eq!(counter_sum(&first.schema, queue).await, (45, bytes as i64), "the counters were decreased once");

    // Everything expires: the backlog reaches zero, not below.
    clock.advance_ms(60_000);
    housekeep_everywhere(&nodes, account, queue).await;
    assert_eq!(counted_backlog(&first.schema, queue).await.0, 0);
    assert_eq!(metrics_everywhere(&nodes, account, queue).await, vec![0; NODES]);
    assert_eq!(counter_sum(&first.schema, queue).await, (0, 0));
    drop(nodes);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delayed_messages_become_visible_once() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, QueueSettings::default()).await;
    let nodes = nodes(&clock, &first.schema).await;
    first.push(account, queue, messages("later", 80, Some(5))).await.expect("push delayed");
    first.push(account, queue, messages("now", 20, None)).await.expect("push");

    // Not due yet: only the undelayed ones can be pulled.
    housekeep_everywhere(&nodes, account, queue).await;
    let early = drain(&nodes, account, queue).await;
    assert_eq!(bodies(&early), pushed("now", 20), "delayed messages stay hidden");

    clock.advance_ms(5_000);
    // Sweepers and pullers (which promote due messages first) on every node at once.
    let (_, due) = tokio::join!(housekeep_everywhere(&nodes, account, queue), drain(&nodes, account, queue));
    let mut delivered = due;
    delivered.extend(drain(&nodes, account, queue).await);
    assert_eq!(delivered.len(), 80, "each delayed message delivered exactly once");
    assert_eq!(bodies(&delivered), pushed("later", 80));
    assert!(delivered.iter().all(|message| message.attempts == 1));
    assert_eq!(metrics_everywhere(&nodes, account, queue).await, vec![100; NODES], "all still leased, none lost");
    drop(nodes);
    first.shutdown().await.expect("shutdown");
}

/// The bodies `messages(prefix, count, _)` pushed.
fn pushed(prefix: &str, count: usize) -> HashSet<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

/// (sum of count, sum of bytes) over the queue's counter rows.
async fn counter_sum(schema: &str, queue: QueueId) -> (i64, i64) {
    let (client, connection) =
        tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect to count");
    tokio::spawn(connection);
    let sql = format!(
        "SELECT coalesce(sum(count), 0)::bigint, coalesce(sum(bytes), 0)::bigint FROM {schema}.queue_counters \
         WHERE queue_id = $1"
    );
    let row = client.query_one(&sql, &[&queue.to_bytes().as_slice()]).await.expect("sum");
    (row.get(0), row.get(1))
}
