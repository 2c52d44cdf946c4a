//! `Broker` for PostgreSQL: each method delegates to the inherent operation
//! in `admin`, `messages` or `housekeeping`.

use std::collections::BTreeMap;
use wharf_core::stats::Stat;

use async_trait::async_trait;
use wharf_core::broker::{IssuedToken, NewSubscription};
use wharf_core::lease::HandleKind;
use wharf_core::model::{
    Account, AckOutcome, Consumer, ConsumerSpec, ExtendOutcome, MessageView, NewMessage, Page, PullRequest, PullResult,
    PurgeStatus, Queue, QueueBacklog, QueueListRequest, QueueMetrics, QueueSettings, QueueUpdate, RedriveOutcome,
    RedriveRequest, RetryRequest, Scope, Subscription, SubscriptionUpdate, TokenRecord,
};
use wharf_core::{AccountId, Broker, ConsumerId, QueueId, SubscriptionId, TokenId, WharfResult};

use crate::PostgresBroker;

#[async_trait]
impl Broker for PostgresBroker {
    async fn ensure_account(&self, account: &Account, admin_secret: &str) -> WharfResult<bool> {
        self.ensure_account_exists(account, admin_secret).await
    }

    async fn list_accounts(&self) -> WharfResult<Vec<Account>> {
        self.accounts(None).await
    }

    async fn get_account(&self, account: AccountId) -> WharfResult<Option<Account>> {
        Ok(self.accounts(Some(account)).await?.into_iter().next())
    }

    async fn create_token(&self, account: AccountId, name: &str, scope: Scope) -> WharfResult<IssuedToken> {
        self.issue_token(account, name, scope).await
    }

    async fn list_tokens(&self, account: AccountId) -> WharfResult<Vec<TokenRecord>> {
        self.tokens(account).await
    }

    async fn revoke_token(&self, account: AccountId, token: TokenId) -> WharfResult<bool> {
        self.remove_token(account, token).await
    }

    async fn find_token(&self, secret_hash: &[u8; 32]) -> WharfResult<Option<TokenRecord>> {
        self.token_by_hash(secret_hash).await
    }

    async fn list_queues(&self, account: AccountId, request: &QueueListRequest) -> WharfResult<Page<Queue>> {
        self.list_queue_page(account, request).await
    }

    async fn create_queue(&self, account: AccountId, name: &str, settings: QueueSettings) -> WharfResult<Queue> {
        self.new_queue(account, name, settings).await
    }

    async fn get_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.queue(account, queue).await
    }

    async fn update_queue(&self, account: AccountId, queue: QueueId, update: &QueueUpdate) -> WharfResult<Queue> {
        self.change_queue(account, queue, update).await
    }

    async fn delete_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        self.remove_queue(account, queue).await
    }

    async fn list_consumers(&self, account: AccountId, queue: QueueId) -> WharfResult<Vec<Consumer>> {
        self.consumers(account, queue).await
    }

    async fn create_consumer(&self, account: AccountId, queue: QueueId, spec: &ConsumerSpec) -> WharfResult<Consumer> {
        self.set_consumer(account, queue, None, spec).await
    }

    async fn get_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<Consumer> {
        self.consumers(account, queue)
            .await?
            .into_iter()
            .find(|found| found.id == consumer)
            .ok_or(wharf_core::WharfError::ConsumerNotFound)
    }

    async fn put_consumer(
        &self,
        account: AccountId,
        queue: QueueId,
        consumer: ConsumerId,
        spec: &ConsumerSpec,
    ) -> WharfResult<Consumer> {
        self.set_consumer(account, queue, Some(consumer), spec).await
    }

    async fn delete_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<()> {
        self.remove_consumer(account, queue, consumer).await
    }

    async fn push(&self, account: AccountId, queue: QueueId, messages: Vec<NewMessage>) -> WharfResult<QueueMetrics> {
        self.push_messages(account, queue, messages).await
    }

    async fn pull(&self, account: AccountId, queue: QueueId, request: PullRequest) -> WharfResult<PullResult> {
        self.pull_messages(account, queue, request).await
    }

    async fn ack(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome> {
        self.ack_messages(account, queue, acks, retries).await
    }

    async fn extend(
        &self,
        account: AccountId,
        queue: QueueId,
        leases: &[String],
        visibility_timeout_ms: Option<u64>,
    ) -> WharfResult<ExtendOutcome> {
        self.extend_leases(account, queue, leases, visibility_timeout_ms).await
    }

    async fn preview(&self, account: AccountId, queue: QueueId, batch_size: u32) -> WharfResult<Vec<MessageView>> {
        self.browse(account, queue, batch_size, HandleKind::Preview).await
    }

    async fn preview_ack(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome> {
        self.delete_by_handles(account, queue, acks, retries, HandleKind::Preview).await
    }

    async fn peek(&self, account: AccountId, queue: QueueId, batch_size: u32) -> WharfResult<Vec<MessageView>> {
        self.browse(account, queue, batch_size, HandleKind::PeekRef).await
    }

    async fn purge_refs(
        &self,
        account: AccountId,
        queue: QueueId,
        refs: &[String],
    ) -> WharfResult<BTreeMap<String, String>> {
        Ok(self.delete_by_handles(account, queue, refs, &[], HandleKind::PeekRef).await?.warnings)
    }

    async fn purge(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.purge_queue(account, queue).await
    }

    async fn redrive(
        &self,
        account: AccountId,
        queue: QueueId,
        request: RedriveRequest,
    ) -> WharfResult<RedriveOutcome> {
        self.redrive_messages(account, queue, request).await
    }

    async fn purge_status(&self, account: AccountId, queue: QueueId) -> WharfResult<PurgeStatus> {
        self.purge_state(account, queue).await
    }

    async fn metrics(&self, account: AccountId, queue: QueueId) -> WharfResult<QueueMetrics> {
        self.queue_metrics(account, queue).await
    }

    async fn list_subscriptions(
        &self,
        account: AccountId,
        destination: Option<QueueId>,
        page: u32,
        per_page: u32,
    ) -> WharfResult<Page<Subscription>> {
        self.subscription_page(account, destination, page, per_page).await
    }

    async fn create_subscription(&self, account: AccountId, new: &NewSubscription) -> WharfResult<Subscription> {
        self.new_subscription(account, new).await
    }

    async fn get_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.subscription(account, id).await
    }

    async fn update_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
        update: &SubscriptionUpdate,
    ) -> WharfResult<Subscription> {
        self.change_subscription(account, id, update).await
    }

    async fn delete_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.remove_subscription(account, id).await
    }

    async fn tick(&self) -> WharfResult<()> {
        self.sweep().await
    }

    async fn queue_backlogs(&self, account: AccountId) -> WharfResult<Vec<QueueBacklog>> {
        let client = self.client().await?;
        crate::counters::account_backlogs(&client, account).await
    }

    /// This node's connection pool: the backlog lives in the database, for
    /// every node to report through the API, not per node.
    fn stats(&self) -> Vec<Stat> {
        let pool = self.pool_status();
        vec![
            Stat::gauge("wharf_postgres_pool_max_connections", "Connections this node's pool may open.", pool.max_size as f64),
            Stat::gauge("wharf_postgres_pool_connections", "Connections this node's pool holds open now.", pool.size as f64),
            Stat::gauge(
                "wharf_postgres_pool_idle_connections",
                "Open connections no request is using now.",
                pool.available as f64,
            ),
            Stat::gauge(
                "wharf_postgres_pool_waiting_requests",
                "Requests waiting for a connection now: above 0 for long, the pool (--pool-size) or the database is the bottleneck.",
                pool.waiting as f64,
            ),
        ]
    }

    async fn shutdown(&self) -> WharfResult<()> {
        // Every change committed before its call returned; nothing to flush.
        self.stop();
        Ok(())
    }
}
