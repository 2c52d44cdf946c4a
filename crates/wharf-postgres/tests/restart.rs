//! A database restart in the middle of a load, on a private PostgreSQL
//! cluster (tests/support/cluster.rs) so the shared test database is never
//! disturbed: requests while the database is down fail with a retryable
//! error (503), the node reconnects by itself, and no acknowledged push or
//! ack is lost.
//!
//! It runs in CI like every other test and fails, never skips, without the
//! PostgreSQL server binaries.

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::Cluster;
use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest, QueueSettings,
};
use wharf_core::{AccountId, Broker, Limits, QueueId, SystemClock, WharfError};
use wharf_postgres::{PostgresBroker, PostgresConfig};

/// Load runs this long; the database is down from 1 s for `DOWN`.
const LOAD: Duration = Duration::from_secs(4);
const DOWN: Duration = Duration::from_millis(800);

/// What one load task saw.
#[derive(Default)]
struct Tally {
    /// Bodies whose push or ack returned success.
    done: Vec<String>,
    /// Bodies whose ack failed: it may still have committed (the reply was
    /// lost), so such a message may be gone without being in `done`.
    unsure: Vec<String>,
    failures: Vec<(Instant, WharfError)>,
    last_success: Option<Instant>,
}

impl Tally {
    fn failed(&mut self, error: WharfError) {
        self.failures.push((Instant::now(), error));
    }
}

async fn push_until(
    broker: Arc<PostgresBroker>,
    account: AccountId,
    queue: QueueId,
    tag: usize,
    until: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0;
    while Instant::now() < until {
        let body = format!("{tag}-{n}");
        n += 1;
        let message =
            NewMessage { body: body.clone().into_bytes(), content_type: ContentType::Text, delay_seconds: None };
        match broker.push(account, queue, vec![message]).await {
            Ok(_) => {
                tally.done.push(body);
                tally.last_success = Some(Instant::now());
            }
            Err(error) => {
                tally.failed(error);
                // The database is down; do not spin on connection refusals.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

async fn pull_and_ack_until(broker: Arc<PostgresBroker>, account: AccountId, queue: QueueId, until: Instant) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < until {
        let request = PullRequest { batch_size: Some(10), visibility_timeout_ms: None };
        let pulled = match broker.pull(account, queue, request).await {
            Ok(pulled) => pulled.messages,
            Err(error) => {
                tally.failed(error);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let bodies = pulled.iter().map(|message| String::from_utf8_lossy(&message.body).into_owned());
        let leases: Vec<String> = pulled.iter().map(|message| message.handle.clone()).collect();
        match broker.ack(account, queue, &leases, &[]).await {
            Ok(outcome) if outcome.ack_count == leases.len() as u64 => {
                tally.done.extend(bodies);
                tally.last_success = Some(Instant::now());
            }
            Ok(outcome) => panic!("leases of this node went stale: {outcome:?}"),
            Err(error) => {
                tally.unsure.extend(bodies);
                tally.failed(error);
            }
        }
    }
    tally
}

/// Bodies of every message row still stored, ready, delayed or leased alike:
/// a message whose lease is live is invisible to pulls but not lost.
async fn stored_bodies(url: &str) -> HashSet<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to check");
    tokio::spawn(connection);
    let rows = client.query("SELECT body FROM messages", &[]).await.expect("read messages");
    rows.iter().map(|row| String::from_utf8_lossy(row.get::<_, &[u8]>(0)).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_costs_only_the_requests_in_flight() {
    let cluster = Cluster::start("restart");
    let url = cluster.url("postgres");
    let config = PostgresConfig {
        database_url: url.clone(),
        pool_size: 8,
        limits: Limits::cloudflare(),
        clock: Arc::new(SystemClock),
        schema: None,
        vacuum_after_rows: wharf_postgres::VACUUM_AFTER_ROWS,
    };
    let broker = PostgresBroker::connect(config).await.expect("connects");
    let account = Account { id: AccountId(1), email: "ops@example.com".into(), created_on_ms: 0 };
    broker.ensure_account(&account, "secret").await.expect("account");
    let queue = broker.create_queue(account.id, "load", QueueSettings::default()).await.expect("queue").id;
    let mut settings = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    // Long leases: a message whose ack failed stays leased (and invisible to
    // pulls) for the rest of the test, so the final check reads the table.
    settings.visibility_timeout_ms = 600_000;
    let spec = ConsumerSpec { kind: ConsumerKind::HttpPull, dead_letter_queue: None, settings };
    broker.create_consumer(account.id, queue, &spec).await.expect("consumer");

    let until = Instant::now() + LOAD;
    let pushers: Vec<_> =
        (0..4).map(|tag| tokio::spawn(push_until(broker.clone(), account.id, queue, tag, until))).collect();
    let puller = tokio::spawn(pull_and_ack_until(broker.clone(), account.id, queue, until));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped_at = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart_after(DOWN);
        cluster
    })
    .await
    .expect("restart");
    let back_at = Instant::now();

    let mut pushed = Vec::new();
    let mut failures = Vec::new();
    for pusher in pushers {
        let tally = pusher.await.expect("pusher");
        assert!(tally.last_success.is_some_and(|at| at > back_at), "a pusher never succeeded after the restart");
        pushed.extend(tally.done);
        failures.extend(tally.failures);
    }
    let consumed = puller.await.expect("puller");
    assert!(consumed.last_success.is_some_and(|at| at > back_at), "the puller never acked after the restart");
    failures.extend(consumed.failures);
    assert!(!failures.is_empty(), "no request met the database while it was down: the test proves nothing");
    for (at, error) in &failures {
        assert!(matches!(error, WharfError::BackendUnavailable { .. }), "not a 503: {error:?}");
        assert_eq!(error.code().status, 503);
        assert!(*at >= stopped_at, "a failure before the database stopped: {error:?}");
    }
    println!(
        "down for {:?}; {} pushes acknowledged, {} acked, {} requests failed with 503",
        back_at - stopped_at,
        pushed.len(),
        consumed.done.len(),
        failures.len()
    );

    // The node works again without a restart of its own.
    let after = broker.metrics(account.id, queue).await.expect("metrics after the restart");

    let stored = stored_bodies(&url).await;
    let acked: HashSet<&String> = consumed.done.iter().collect();
    let unsure: HashSet<&String> = consumed.unsure.iter().collect();
    for body in &pushed {
        assert!(
            stored.contains(body) || acked.contains(body) || unsure.contains(body),
            "acknowledged push {body} lost"
        );
    }
    let back: Vec<&&String> = acked.iter().filter(|body| stored.contains(**body)).collect();
    assert!(back.is_empty(), "acked messages came back: {back:?}");
    assert_eq!(after.backlog_count, stored.len() as u64, "metrics agree with the table");
    broker.shutdown().await.expect("shutdown");
    drop(cluster);
}
