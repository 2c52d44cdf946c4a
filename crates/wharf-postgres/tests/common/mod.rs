//! Shared by the PostgreSQL tests: every test gets its own schema on the test
//! database, dropped when the backend shuts down (or, if the test panics,
//! when it is dropped), so tests run in parallel without seeing each other.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use wharf_core::broker::{IssuedToken, NewSubscription};
use wharf_core::model::{
    Account, AckOutcome, Consumer, ConsumerKind, ConsumerSettings, ConsumerSpec, ExtendOutcome, MessageView,
    NewMessage, Page, PullRequest, PullResult, PurgeStatus, Queue, QueueListRequest, QueueMetrics, QueueSettings,
    QueueUpdate, RetryRequest, Scope, Subscription, SubscriptionUpdate, TokenRecord,
};
use wharf_core::{AccountId, Broker, ConsumerId, Limits, ManualClock, QueueId, SubscriptionId, TokenId, WharfResult};
use wharf_postgres::{PostgresBroker, PostgresConfig};

/// The test database; override with `WHARF_TEST_DATABASE_URL`.
pub fn database_url() -> String {
    std::env::var("WHARF_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema name unique to this process and call.
pub fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let salt: u32 = rand::random();
    format!("wharf_test_{}_{}_{:08x}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst), salt)
}

pub fn config(clock: &ManualClock, schema: &str) -> PostgresConfig {
    PostgresConfig {
        database_url: database_url(),
        pool_size: 4,
        limits: Limits::cloudflare(),
        clock: Arc::new(clock.clone()),
        schema: Some(schema.to_string()),
        vacuum_after_rows: wharf_postgres::VACUUM_AFTER_ROWS,
    }
}

/// A backend in a fresh schema, without the background sweeper: tests run
/// due work with `tick`.
pub async fn broker(clock: &ManualClock) -> Arc<SchemaBroker> {
    let schema = fresh_schema();
    let inner = PostgresBroker::connect_without_sweeper(config(clock, &schema)).await.expect("postgres backend opens");
    Arc::new(SchemaBroker { inner: Arc::new(inner), schema, dropped: AtomicBool::new(false) })
}

/// The conformance suite's factory.
pub async fn conformance_backend(clock: ManualClock) -> Arc<dyn Broker> {
    broker(&clock).await
}

/// Drops a schema and everything in it. With a lock timeout: after a test
/// panicked, its broker's pool may still hold a connection inside an open
/// transaction on the schema's tables, and the drop would wait for it
/// forever; it fails instead (the schema is left behind, the test fails).
pub async fn drop_schema(schema: &str) {
    let (client, connection) =
        tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await.expect("connect to drop schema");
    let task = tokio::spawn(connection);
    let drop_sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
    client.batch_execute(&drop_sql).await.expect("drop schema");
    drop(client);
    let _ = task.await;
}

/// A [`PostgresBroker`] that owns its schema: `shutdown` drops it.
pub struct SchemaBroker {
    pub inner: Arc<PostgresBroker>,
    pub schema: String,
    dropped: AtomicBool,
}

impl Drop for SchemaBroker {
    fn drop(&mut self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        // A test that panicked never called shutdown; clean up on a thread
        // with its own runtime, since Drop cannot await.
        // Closing the pool first ends any transaction a panicking test left
        // open on one of its connections.
        let (schema, inner) = (self.schema.clone(), self.inner.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let _ = inner.shutdown().await;
                drop(inner);
                drop_schema(&schema).await;
            });
        });
        let _ = cleanup.join();
    }
}

#[async_trait]
impl Broker for SchemaBroker {
    async fn shutdown(&self) -> WharfResult<()> {
        let result = self.inner.shutdown().await;
        if !self.dropped.swap(true, Ordering::SeqCst) {
            drop_schema(&self.schema).await;
        }
        result
    }

    async fn ensure_account(&self, account: &Account, admin_secret: &str) -> WharfResult<bool> {
        self.inner.ensure_account(account, admin_secret).await
    }

    async fn list_accounts(&self) -> WharfResult<Vec<Account>> {
        self.inner.list_accounts().await
    }

    async fn get_account(&self, account: AccountId) -> WharfResult<Option<Account>> {
        self.inner.get_account(account).await
    }

    async fn create_token(&self, account: AccountId, name: &str, scope: Scope) -> WharfResult<IssuedToken> {
        self.inner.create_token(account, name, scope).await
    }

    async fn list_tokens(&self, account: AccountId) -> WharfResult<Vec<TokenRecord>> {
        self.inner.list_tokens(account).await
    }

    async fn revoke_token(&self, account: AccountId, token: TokenId) -> WharfResult<bool> {
        self.inner.revoke_token(account, token).await
    }

    async fn find_token(&self, secret_hash: &[u8; 32]) -> WharfResult<Option<TokenRecord>> {
        self.inner.find_token(secret_hash).await
    }

    async fn list_queues(&self, account: AccountId, request: &QueueListRequest) -> WharfResult<Page<Queue>> {
        self.inner.list_queues(account, request).await
    }

    async fn create_queue(&self, account: AccountId, name: &str, settings: QueueSettings) -> WharfResult<Queue> {
        self.inner.create_queue(account, name, settings).await
    }

    async fn get_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.inner.get_queue(account, queue).await
    }

    async fn update_queue(&self, account: AccountId, queue: QueueId, update: &QueueUpdate) -> WharfResult<Queue> {
        self.inner.update_queue(account, queue, update).await
    }

    async fn delete_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        self.inner.delete_queue(account, queue).await
    }

    async fn list_consumers(&self, account: AccountId, queue: QueueId) -> WharfResult<Vec<Consumer>> {
        self.inner.list_consumers(account, queue).await
    }

    async fn create_consumer(&self, account: AccountId, queue: QueueId, spec: &ConsumerSpec) -> WharfResult<Consumer> {
        self.inner.create_consumer(account, queue, spec).await
    }

    async fn get_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<Consumer> {
        self.inner.get_consumer(account, queue, consumer).await
    }

    async fn put_consumer(
        &self,
        account: AccountId,
        queue: QueueId,
        consumer: ConsumerId,
        spec: &ConsumerSpec,
    ) -> WharfResult<Consumer> {
        self.inner.put_consumer(account, queue, consumer, spec).await
    }

    async fn delete_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<()> {
        self.inner.delete_consumer(account, queue, consumer).await
    }

    async fn push(&self, account: AccountId, queue: QueueId, messages: Vec<NewMessage>) -> WharfResult<QueueMetrics> {
        self.inner.push(account, queue, messages).await
    }

    async fn pull(&self, account: AccountId, queue: QueueId, request: PullRequest) -> WharfResult<PullResult> {
        self.inner.pull(account, queue, request).await
    }

    async fn ack(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome> {
        self.inner.ack(account, queue, acks, retries).await
    }

    async fn extend(
        &self,
        account: AccountId,
        queue: QueueId,
        leases: &[String],
        visibility_timeout_ms: Option<u64>,
    ) -> WharfResult<ExtendOutcome> {
        self.inner.extend(account, queue, leases, visibility_timeout_ms).await
    }

    async fn preview(&self, account: AccountId, queue: QueueId, batch_size: u32) -> WharfResult<Vec<MessageView>> {
        self.inner.preview(account, queue, batch_size).await
    }

    async fn preview_ack(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome> {
        self.inner.preview_ack(account, queue, acks, retries).await
    }

    async fn peek(&self, account: AccountId, queue: QueueId, batch_size: u32) -> WharfResult<Vec<MessageView>> {
        self.inner.peek(account, queue, batch_size).await
    }

    async fn purge_refs(
        &self,
        account: AccountId,
        queue: QueueId,
        refs: &[String],
    ) -> WharfResult<std::collections::BTreeMap<String, String>> {
        self.inner.purge_refs(account, queue, refs).await
    }

    async fn queue_backlogs(&self, account: AccountId) -> WharfResult<Vec<wharf_core::model::QueueBacklog>> {
        self.inner.queue_backlogs(account).await
    }

    async fn redrive(
        &self,
        account: AccountId,
        queue: QueueId,
        request: wharf_core::model::RedriveRequest,
    ) -> WharfResult<wharf_core::model::RedriveOutcome> {
        self.inner.redrive(account, queue, request).await
    }

    async fn purge(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.inner.purge(account, queue).await
    }

    async fn purge_status(&self, account: AccountId, queue: QueueId) -> WharfResult<PurgeStatus> {
        self.inner.purge_status(account, queue).await
    }

    async fn metrics(&self, account: AccountId, queue: QueueId) -> WharfResult<QueueMetrics> {
        self.inner.metrics(account, queue).await
    }

    async fn list_subscriptions(
        &self,
        account: AccountId,
        destination: Option<QueueId>,
        page: u32,
        per_page: u32,
    ) -> WharfResult<Page<Subscription>> {
        self.inner.list_subscriptions(account, destination, page, per_page).await
    }

    async fn create_subscription(&self, account: AccountId, new: &NewSubscription) -> WharfResult<Subscription> {
        self.inner.create_subscription(account, new).await
    }

    async fn get_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.inner.get_subscription(account, id).await
    }

    async fn update_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
        update: &SubscriptionUpdate,
    ) -> WharfResult<Subscription> {
        self.inner.update_subscription(account, id, update).await
    }

    async fn delete_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.inner.delete_subscription(account, id).await
    }

    async fn tick(&self) -> WharfResult<()> {
        self.inner.tick().await
    }

    fn stats(&self) -> Vec<wharf_core::stats::Stat> {
        self.inner.stats()
    }
}

/// An account numbered `account`, and its queue `name` with an http_pull
/// consumer of default settings.
pub async fn pull_queue<B: Broker + ?Sized>(broker: &B, account: u128, name: &str) -> (AccountId, QueueId) {
    let account = Account { id: AccountId(account), email: "ops@example.com".into(), created_on_ms: 0 };
    broker.ensure_account(&account, "admin-secret").await.expect("account");
    let queue = broker.create_queue(account.id, name, QueueSettings::default()).await.expect("queue").id;
    let spec = ConsumerSpec {
        kind: ConsumerKind::HttpPull,
        dead_letter_queue: None,
        settings: ConsumerSettings::defaults_for(&ConsumerKind::HttpPull),
    };
    broker.create_consumer(account.id, queue, &spec).await.expect("consumer");
    (account.id, queue)
}

/// (count, bytes, oldest timestamp) of a queue's rows, counted directly.
pub async fn counted_backlog(schema: &str, queue: QueueId) -> (u64, u64, u64) {
    let (client, connection) =
        tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await.expect("connect to count");
    tokio::spawn(connection);
    let sql = format!(
        "SELECT count(*), coalesce(sum(length(body)), 0)::bigint, coalesce(min(timestamp_ms), 0) \
         FROM {schema}.messages WHERE queue_id = $1"
    );
    let row = client.query_one(&sql, &[&queue.to_bytes().as_slice()]).await.expect("count");
    (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64, row.get::<_, i64>(2) as u64)
}

/// Pulls with a long lease from `pullers` tasks spread over every node at
/// once until the queue is empty; returns every message taken.
pub async fn drain_from_every_node(
    nodes: &[Arc<PostgresBroker>],
    account: AccountId,
    queue: QueueId,
    pullers: usize,
    batch_size: u32,
) -> Vec<MessageView> {
    let pullers: Vec<_> = (0..pullers)
        .map(|n| {
            let node = nodes[n % nodes.len()].clone();
            tokio::spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let request = PullRequest { batch_size: Some(batch_size), visibility_timeout_ms: Some(600_000) };
                    let pulled = node.pull(account, queue, request).await.expect("pull");
                    if pulled.messages.is_empty() {
                        return taken;
                    }
                    taken.extend(pulled.messages);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for puller in pullers {
        all.extend(puller.await.expect("puller"));
    }
    all
}
