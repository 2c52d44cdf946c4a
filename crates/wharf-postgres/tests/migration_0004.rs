//! Migration 4 on a database written before it: a schema at version 3 with
//! messages whose ids are random (the old shape) is opened by this Wharf,
//! which rewrites every id to begin with the message's timestamp and keys
//! messages by (queue, id). Nothing is lost: every message is still there,
//! with its body, attempts and place in line, and can be pulled and acked.

mod common;

use std::sync::Arc;

use wharf_core::model::PullRequest;
use wharf_core::{AccountId, Broker, ManualClock, QueueId};
use wharf_postgres::PostgresBroker;

use common::{config, database_url, drop_schema, fresh_schema};

const OLD_MIGRATIONS: [(i32, &str, &str); 3] = [
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "messages_without_queue_key", include_str!("../migrations/0002_messages_without_queue_key.sql")),
    (3, "counters_fillfactor", include_str!("../migrations/0003_counters_fillfactor.sql")),
];

const START_MS: i64 = 1_800_000_000_000;

fn bytes16(value: u128) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// A schema at version 3 holding one account, one queue with a pull
/// consumer, and three messages: two ready, one leased once already.
async fn schema_at_version_3(schema: &str, account: AccountId, queue: QueueId) {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await.expect("connect");
    let task = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}; SET search_path TO {schema}")).await.expect("schema");
    client
        .batch_execute("CREATE TABLE wharf_migrations (version integer PRIMARY KEY, name text NOT NULL)")
        .await
        .expect("migrations table");
    for (version, name, sql) in OLD_MIGRATIONS {
        client.batch_execute(sql).await.unwrap_or_else(|error| panic!("migration {version}: {error}"));
        client
            .execute("INSERT INTO wharf_migrations (version, name) VALUES ($1, $2)", &[&version, &name])
            .await
            .expect("record migration");
    }
    let (account, queue) = (bytes16(account.0), bytes16(queue.0));
    client
        .execute(
            "INSERT INTO accounts (id, email, created_on_ms) VALUES ($1, 'old@example.com', $2)",
            &[&account, &START_MS],
        )
        .await
        .expect("account");
    client
        .execute(
            "INSERT INTO queues (id, account_id, name, created_on_ms, modified_on_ms, delivery_delay, delivery_paused, \
             message_retention_period) VALUES ($1, $2, 'legacy', $3, $3, 0, false, 345600)",
            &[&queue, &account, &START_MS],
        )
        .await
        .expect("queue");
    client
        .execute(
            "INSERT INTO consumers (queue_id, id, kind, batch_size, max_retries, retry_delay, max_wait_time_ms, \
             visibility_timeout_ms, created_on_ms) VALUES ($1, $2, 'http_pull', 5, 3, 0, 5000, 30000, $3)",
            &[&queue, &bytes16(7), &START_MS],
        )
        .await
        .expect("consumer");
    // Random ids, as before migration 4; the leased one's lease has ended.
    let messages: [(&str, i64, i64, i32); 3] =
        [("first", START_MS, 0, 0), ("second", START_MS + 5, START_MS - 1, 1), ("third", START_MS + 9, 0, 0)];
    for (body, timestamp_ms, lease_expiry_ms, attempts) in messages {
        client
            .execute(
                "INSERT INTO messages (id, queue_id, timestamp_ms, visible_at_ms, delayed, lease_expiry_ms, attempts, \
                 content_type, body_len, body) VALUES ($1, $2, $3, $3, false, $4, $5, 0, $6, $7)",
                &[
                    &bytes16(rand::random::<u128>()),
                    &queue,
                    &timestamp_ms,
                    &lease_expiry_ms,
                    &attempts,
                    &(body.len() as i32),
                    &body.as_bytes(),
                ],
            )
            .await
            .expect("message");
    }
    let total: i64 = messages.iter().map(|(body, ..)| body.len() as i64).sum();
    client
        .execute("INSERT INTO queue_counters (queue_id, slot, count, bytes) VALUES ($1, 0, 3, $2)", &[&queue, &total])
        .await
        .expect("counters");
    drop(client);
    let _ = task.await;
}

#[tokio::test]
async fn messages_written_before_migration_4_survive_it() {
    let schema = fresh_schema();
    let (account, queue) = (AccountId::random(), QueueId::random());
    schema_at_version_3(&schema, account, queue).await;

    let clock = ManualClock::new(START_MS as u64 + 1_000);
    let broker: Arc<dyn Broker> =
        Arc::new(PostgresBroker::connect_without_sweeper(config(&clock, &schema)).await.expect("opens and migrates"));

    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await.expect("connect");
    let task = tokio::spawn(connection);
    client.batch_execute(&format!("SET search_path TO {schema}")).await.expect("search path");
    let versions: Vec<i32> = client
        .query("SELECT version FROM wharf_migrations ORDER BY version", &[])
        .await
        .expect("versions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let rows = client.query("SELECT id, timestamp_ms FROM messages ORDER BY seq", &[]).await.expect("messages");
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let (id, timestamp_ms): (Vec<u8>, i64) = (row.get(0), row.get(1));
        assert_eq!(id.len(), 16);
        assert_eq!(&id[..6], &timestamp_ms.to_be_bytes()[2..], "the id begins with the timestamp");
    }
    drop(client);
    let _ = task.await;

    let metrics = broker.metrics(account, queue).await.expect("metrics");
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes), (3, 5 + 6 + 5));
    assert_eq!(metrics.oldest_message_timestamp_ms, START_MS as u64);
    let pulled = broker
        .pull(account, queue, PullRequest { batch_size: Some(10), visibility_timeout_ms: None })
        .await
        .expect("pull");
    let seen: Vec<(String, u32)> =
        pulled.messages.iter().map(|m| (String::from_utf8_lossy(&m.body).into_owned(), m.attempts)).collect();
    // The lease that had ended counts as a failed delivery: "second" is
    // delivered again, its second attempt, in its old place in line.
    assert_eq!(seen, [("first".to_string(), 1), ("second".to_string(), 2), ("third".to_string(), 1)]);
    let leases: Vec<String> = pulled.messages.iter().map(|m| m.handle.clone()).collect();
    let acked = broker.ack(account, queue, &leases, &[]).await.expect("ack");
    assert_eq!(acked.ack_count, 3);
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 0);
    broker.shutdown().await.expect("shutdown");
    drop(broker);
    drop_schema(&schema).await;
}
