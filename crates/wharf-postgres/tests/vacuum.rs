//! A node vacuums the messages table after it has leased or removed
//! `vacuum_after_rows` rows, in the background, and not at all with 0.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, database_url, drop_schema, fresh_schema, pull_queue};
use wharf_core::model::{ContentType, NewMessage, PullRequest};
use wharf_core::{Broker, ManualClock};
use wharf_postgres::{PostgresBroker, PostgresConfig};

const START_MS: u64 = 1_700_000_000_000;

/// Pushes, pulls and acks `messages` messages in batches of 10: each leased
/// and each acked row counts once, so `2 × messages` rows in all.
async fn churn(broker: &PostgresBroker, messages: usize) {
    let (account, queue) = pull_queue(broker, 0xacc, "churned").await;
    let batch: Vec<NewMessage> = (0..10)
        .map(|n| NewMessage {
            body: format!("m{n}").into_bytes(),
            content_type: ContentType::Text,
            delay_seconds: None,
        })
        .collect();
    for _ in 0..messages / 10 {
        broker.push(account, queue, batch.clone()).await.expect("push");
        let pulled = broker
            .pull(account, queue, PullRequest { batch_size: Some(10), visibility_timeout_ms: None })
            .await
            .expect("pull");
        let handles: Vec<String> = pulled.messages.into_iter().map(|message| message.handle).collect();
        let outcome = broker.ack(account, queue, &handles, &[]).await.expect("ack");
        assert_eq!(outcome.ack_count, 10);
    }
}

/// Manual vacuums PostgreSQL counted on this schema's messages table.
async fn vacuum_count(schema: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'messages'",
            &[&schema],
        )
        .await
        .expect("statistics");
    row.get(0)
}

async fn node(clock: &ManualClock, schema: &str, vacuum_after_rows: u64) -> Arc<PostgresBroker> {
    let config = PostgresConfig { vacuum_after_rows, ..config(clock, schema) };
    Arc::new(PostgresBroker::connect_without_sweeper(config).await.expect("postgres backend opens"))
}

#[tokio::test]
async fn a_node_vacuums_the_messages_table_after_enough_leases_and_acks() {
    let clock = ManualClock::new(START_MS);
    let schema = fresh_schema();
    let broker = node(&clock, &schema, 50).await;
    churn(&broker, 40).await;
    let mut waited = Duration::ZERO;
    while broker.vacuums_completed() == 0 && waited < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(broker.vacuums_completed() >= 1, "80 rows leased or acked, the threshold is 50: a vacuum ran");
    // The statistics collector reports with a delay of its own.
    let mut counted = 0;
    for _ in 0..100 {
        counted = vacuum_count(&schema).await;
        if counted >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted >= 1, "PostgreSQL counted the vacuum of this schema's messages table");
    broker.shutdown().await.expect("shutdown");
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_node_told_never_to_vacuum_leaves_it_to_autovacuum() {
    let clock = ManualClock::new(START_MS);
    let schema = fresh_schema();
    let broker = node(&clock, &schema, 0).await;
    churn(&broker, 40).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(broker.vacuums_completed(), 0);
    assert_eq!(vacuum_count(&schema).await, 0);
    broker.shutdown().await.expect("shutdown");
    drop_schema(&schema).await;
}
