//! Concurrent pushes, pulls and acks of one queue run together as one
//! statement (`combine`): each request must still get exactly its own
//! answer, and nothing may be stored, leased or deleted twice or not at all.

mod common;

use std::collections::HashSet;

use common::{broker, pull_queue};
use wharf_core::model::{Account, ContentType, NewMessage, PullRequest, QueueSettings};
use wharf_core::{AccountId, Broker, ManualClock, WharfError};

const START_MS: u64 = 1_700_000_000_000;

fn text(body: String) -> NewMessage {
    NewMessage { body: body.into_bytes(), content_type: ContentType::Text, delay_seconds: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_each_get_their_own_answer() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let (account, queue) = pull_queue(&*broker, 0xc0b, "busy").await;

    // 48 producers × 10 pushes of 1 or 2 messages, all at once.
    let mut producers = Vec::new();
    for producer in 0..48 {
        let broker = broker.clone();
        producers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for push in 0..10 {
                let bodies: Vec<String> = (0..1 + push % 2).map(|part| format!("{producer}-{push}-{part}")).collect();
                let metrics =
                    broker.push(account, queue, bodies.iter().cloned().map(text).collect()).await.expect("push");
                assert!(metrics.backlog_count >= bodies.len() as u64, "{metrics:?} counts at least this push");
                sent.extend(bodies);
            }
            sent
        }));
    }
    let mut sent = HashSet::new();
    for producer in producers {
        for body in producer.await.expect("producer") {
            assert!(sent.insert(body), "a body was sent twice");
        }
    }
    assert_eq!(sent.len(), 48 * 15);
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, sent.len() as u64);

    // 24 consumers pull 3 at a time and ack what they got, all at once.
    let mut consumers = Vec::new();
    for _ in 0..24 {
        let broker = broker.clone();
        consumers.push(tokio::spawn(async move {
            let mut received = Vec::new();
            loop {
                let request = PullRequest { batch_size: Some(3), visibility_timeout_ms: Some(600_000) };
                let pulled = broker.pull(account, queue, request).await.expect("pull");
                assert!(pulled.messages.len() <= 3, "a pull got more than its batch");
                if pulled.messages.is_empty() {
                    return received;
                }
                let leases: Vec<String> = pulled.messages.iter().map(|m| m.handle.clone()).collect();
                let outcome = broker.ack(account, queue, &leases, &[]).await.expect("ack");
                assert_eq!(outcome.ack_count as usize, leases.len(), "{:?}", outcome.warnings);
                received.extend(pulled.messages.into_iter().map(|m| String::from_utf8(m.body).expect("utf-8")));
            }
        }));
    }
    let mut received = HashSet::new();
    for consumer in consumers {
        for body in consumer.await.expect("consumer") {
            assert!(received.insert(body), "a message was delivered to two pulls");
        }
    }
    assert_eq!(received, sent, "every message delivered once");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 0);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_racing_a_queue_deletion_leave_no_messages_behind() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = Account { id: AccountId(0xdee), email: "ops@example.com".into(), created_on_ms: 0 };
    broker.ensure_account(&account, "admin-secret").await.expect("account");
    let account = account.id;
    for round in 0..5 {
        let queue = broker.create_queue(account, &format!("doomed-{round}"), QueueSettings::default()).await;
        let queue = queue.expect("queue").id;
        let pushers: Vec<_> = (0..16)
            .map(|pusher| {
                let broker = broker.clone();
                tokio::spawn(async move {
                    for push in 0..20 {
                        match broker.push(account, queue, vec![text(format!("{pusher}-{push}"))]).await {
                            Ok(_) => {}
                            Err(WharfError::QueueNotFound) => return,
                            Err(other) => panic!("push failed with {other:?}"),
                        }
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        broker.delete_queue(account, queue).await.expect("delete");
        for pusher in pushers {
            pusher.await.expect("pusher");
        }
        let (client, connection) =
            tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        let sql = format!("SELECT count(*) FROM {}.messages WHERE queue_id = $1", broker.schema);
        let left: i64 = client.query_one(&sql, &[&queue.to_bytes().as_slice()]).await.expect("count").get(0);
        assert_eq!(left, 0, "round {round}: messages of a deleted queue were left behind");
    }
    broker.shutdown().await.expect("shutdown");
}
