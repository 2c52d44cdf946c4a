//! Several nodes on one database: concurrent start-up, no double leases,
//! housekeeping done once, leases usable on any node, and failures that
//! answer quickly with a retryable error.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{broker, config, drain_from_every_node, SchemaBroker};
use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest, QueueListRequest,
    QueueSettings,
};
use wharf_core::{AccountId, Broker, ManualClock, QueueId, WharfError};
use wharf_postgres::{PostgresBroker, PostgresConfig};

const START_MS: u64 = 1_700_000_000_000;

async fn node(clock: &ManualClock, schema: &str) -> Arc<PostgresBroker> {
    Arc::new(PostgresBroker::connect_without_sweeper(config(clock, schema)).await.expect("node connects"))
}

async fn setup(first: &SchemaBroker, max_retries: u32, dead_letter_queue: Option<&str>) -> (AccountId, QueueId) {
    let account = Account { id: AccountId(0xabc), email: "ops@example.com".into(), created_on_ms: 0 };
    first.ensure_account(&account, "admin-secret").await.expect("account");
    let queue = first.create_queue(account.id, "shared", QueueSettings::default()).await.expect("queue");
    let mut settings = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    settings.max_retries = max_retries;
    settings.visibility_timeout_ms = 1_000;
    let spec = ConsumerSpec {
        kind: ConsumerKind::HttpPull,
        dead_letter_queue: dead_letter_queue.map(str::to_string),
        settings,
    };
    first.create_consumer(account.id, queue.id, &spec).await.expect("consumer");
    (account.id, queue.id)
}

fn messages(count: usize) -> Vec<NewMessage> {
    (0..count)
        .map(|n| NewMessage {
            body: format!("m{n}").into_bytes(),
            content_type: ContentType::Text,
            delay_seconds: None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_start_up_migrates_once_and_shares_the_lease_key() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let (clock, schema) = (clock.clone(), first.schema.clone());
            tokio::spawn(async move { node(&clock, &schema).await })
        })
        .collect();
    let mut nodes = Vec::new();
    for start in starts {
        nodes.push(start.await.expect("start-up task"));
    }
    let (account, queue) = setup(&first, 3, None).await;
    nodes[0].push(account, queue, messages(1)).await.expect("push on node 0");
    let pulled = nodes[1].pull(account, queue, PullRequest { batch_size: None, visibility_timeout_ms: None });
    let lease = pulled.await.expect("pull on node 1").messages[0].handle.clone();
    let acked = nodes[2].ack(account, queue, &[lease], &[]).await.expect("ack on node 2");
    assert_eq!((acked.ack_count, acked.warnings.len()), (1, 0), "a lease from one node acks on another");
    for node in &nodes {
        assert_eq!(node.metrics(account, queue).await.expect("metrics").backlog_count, 0);
    }

    let (client, connection) =
        tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let sql = format!("SELECT count(*) FROM {}.wharf_migrations", first.schema);
    let applied: i64 = client.query_one(&sql, &[]).await.expect("count").get(0);
    assert_eq!(applied as usize, PostgresBroker::migrations().len(), "every migration applied exactly once");
    drop(nodes);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pullers_on_three_nodes_never_share_a_message() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, 3, None).await;
    let nodes =
        vec![node(&clock, &first.schema).await, node(&clock, &first.schema).await, node(&clock, &first.schema).await];
    for _ in 0..4 {
        first.push(account, queue, messages(75)).await.expect("push");
    }
    let all = drain_from_every_node(&nodes, account, queue, 6, 7).await;
    let distinct: HashSet<_> = all.iter().map(|message| message.id).collect();
    assert_eq!(all.len(), 300, "every message delivered");
    assert_eq!(distinct.len(), 300, "no message leased twice");
    assert!(all.iter().all(|message| message.attempts == 1));

    // Ack each lease on a node other than the one that is likely to have
    // leased it; all acks succeed and every node sees an empty queue.
    for (n, chunk) in all.chunks(50).enumerate() {
        let leases: Vec<String> = chunk.iter().map(|message| message.handle.clone()).collect();
        let acked = nodes[(n + 1) % nodes.len()].ack(account, queue, &leases, &[]).await.expect("ack");
        assert_eq!(acked.ack_count, chunk.len() as u64);
    }
    for node in &nodes {
        let metrics = node.metrics(account, queue).await.expect("metrics");
        assert_eq!((metrics.backlog_count, metrics.backlog_bytes), (0, 0));
    }
    drop(nodes);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_moves_happen_once_whichever_node_does_them() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, 0, Some("shared-dlq")).await;
    let nodes =
        vec![node(&clock, &first.schema).await, node(&clock, &first.schema).await, node(&clock, &first.schema).await];
    first.push(account, queue, messages(60)).await.expect("push");
    let pulled = first.pull(account, queue, PullRequest { batch_size: Some(100), visibility_timeout_ms: None });
    assert_eq!(pulled.await.expect("pull").messages.len(), 60);
    clock.advance_ms(1_000);
    // Every node runs housekeeping at once, through the sweeper and through
    // operations that housekeep their queue first.
    let mut work = Vec::new();
    for node in &nodes {
        for round in 0..3 {
            let node = node.clone();
            work.push(tokio::spawn(async move {
                if round % 2 == 0 {
                    node.tick().await.map(|_| ())
                } else {
                    node.metrics(account, queue).await.map(|_| ())
                }
            }));
        }
    }
    for task in work {
        task.await.expect("task").expect("housekeeping");
    }
    let names = QueueListRequest { names: vec!["shared-dlq".into()], page: 1, per_page: 10 };
    let dead = first.list_queues(account, &names).await.expect("list").items;
    assert_eq!(dead.len(), 1, "one dead letter queue, however many nodes created it");
    let metrics = first.metrics(account, dead[0].id).await.expect("metrics");
    assert_eq!(metrics.backlog_count, 60, "each message dead-lettered exactly once");
    assert_eq!(first.metrics(account, queue).await.expect("metrics").backlog_count, 0);
    drop(nodes);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweeper_dead_letters_without_any_request() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, 0, Some("swept-dlq")).await;
    let swept = PostgresBroker::connect(config(&clock, &first.schema)).await.expect("node with sweeper");
    first.push(account, queue, messages(3)).await.expect("push");
    first.pull(account, queue, PullRequest { batch_size: Some(10), visibility_timeout_ms: None }).await.expect("pull");
    clock.advance_ms(1_000);
    let names = QueueListRequest { names: vec!["swept-dlq".into()], page: 1, per_page: 10 };
    let deadline = Instant::now() + Duration::from_secs(10);
    // Listing queues runs no housekeeping: only the sweeper can create the DLQ.
    while first.list_queues(account, &names).await.expect("list").items.is_empty() {
        assert!(Instant::now() < deadline, "the sweeper did not run within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    swept.shutdown().await.expect("shutdown");
    first.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_unreachable_database_is_a_quick_503() {
    let clock = ManualClock::new(START_MS);
    let started = Instant::now();
    let config =
        PostgresConfig { database_url: "postgres://postgres@127.0.0.1:1/test".into(), ..config(&clock, "unused") };
    let error = PostgresBroker::connect(config).await.err().expect("nothing listens on port 1");
    assert!(matches!(error, WharfError::BackendUnavailable { .. }), "{error:?}");
    assert_eq!(error.code().status, 503);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// After a failover a node may still reach the old primary, now a read-only
/// standby: that is a retryable 503 like a lost connection, not a 500.
#[tokio::test]
async fn a_read_only_database_is_a_503() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let options = format!("-c search_path={} -c default_transaction_read_only=on", first.schema);
    let url = format!("{}?options={}", common::database_url(), options.replace(' ', "%20").replace('=', "%3D"));
    let standby = PostgresConfig { database_url: url, schema: None, ..config(&clock, &first.schema) };
    let error = PostgresBroker::connect_without_sweeper(standby).await.err().expect("writes are refused");
    assert!(matches!(error, WharfError::BackendUnavailable { .. }), "{error:?}");
    assert_eq!(error.code().status, 503);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_answers_503_within_seconds() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, 3, None).await;
    let tag = format!("wharf_pool_{}", std::process::id());
    let url = format!("{}?application_name={tag}", common::database_url());
    let single = PostgresConfig { pool_size: 1, database_url: url, ..config(&clock, &first.schema) };
    let single = Arc::new(PostgresBroker::connect_without_sweeper(single).await.expect("node"));
    first.push(account, queue, messages(1)).await.expect("push");
    let lease = first.pull(account, queue, PullRequest { batch_size: None, visibility_timeout_ms: None });
    let lease = lease.await.expect("pull").messages[0].handle.clone();

    // Another session locks the message, so an ack on the one-connection
    // node waits for it while holding that node's only connection.
    let (mut client, connection) =
        tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let holder = client.transaction().await.expect("begin");
    holder.batch_execute(&format!("SELECT * FROM {}.messages FOR UPDATE", first.schema)).await.expect("lock");
    let blocked = {
        let single = single.clone();
        tokio::spawn(async move { single.ack(account, queue, &[lease], &[]).await })
    };
    // Wait until the node's only connection is stuck on the lock (asked on
    // another session: one transaction sees pg_stat_activity frozen).
    let (observer, connection) =
        tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'";
    while observer.query_one(waiting, &[&tag]).await.expect("activity").get::<_, i64>(0) == 0 {
        assert!(Instant::now() < deadline, "the ack never waited for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let starved = single.metrics(account, queue).await;
    assert!(matches!(starved, Err(WharfError::BackendUnavailable { .. })), "{starved:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());

    holder.rollback().await.expect("release");
    let acked = blocked.await.expect("ack task").expect("ack completes once the lock is gone");
    assert_eq!(acked.ack_count, 1);
    assert_eq!(single.metrics(account, queue).await.expect("metrics").backlog_count, 0, "pool usable again");
    drop(single);
    first.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_fail_with_503_and_the_pool_reconnects() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let (account, queue) = setup(&first, 3, None).await;
    let tag = format!("wharf_kill_{}", std::process::id());
    let url = format!("{}?application_name={tag}", common::database_url());
    let victim =
        PostgresBroker::connect_without_sweeper(PostgresConfig { database_url: url, ..config(&clock, &first.schema) })
            .await
            .expect("node");
    victim.push(account, queue, messages(1)).await.expect("push");

    let (client, connection) =
        tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let killed: i64 = client
        .query_one("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", &[&tag])
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the node had a pooled connection");

    // The first request may meet a dead connection: a 503, never a 500 or a
    // hang. After that the pool has reconnected on its own.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(victim.metrics(account, queue).await);
    }
    for outcome in &outcomes {
        if let Err(error) = outcome {
            assert!(matches!(error, WharfError::BackendUnavailable { .. }), "{error:?}");
        }
    }
    let last = outcomes.pop().expect("three outcomes");
    assert_eq!(last.expect("reconnected").backlog_count, 1, "nothing committed was lost");
    drop(victim);
    first.shutdown().await.expect("shutdown");
}
