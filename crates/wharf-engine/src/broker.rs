//! `Broker` for the embedded engine: each method delegates to the inherent
//! operation in `admin`, `messages` or `housekeeping`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use wharf_core::broker::{IssuedToken, NewSubscription};
use wharf_core::lease::HandleKind;
use wharf_core::model::{
    Account, AckOutcome, Consumer, ConsumerSpec, ExtendOutcome, MessageView, NewMessage, Page, PullRequest, PullResult,
    PurgeStatus, Queue, QueueListRequest, QueueMetrics, QueueSettings, QueueUpdate, RedriveOutcome, RedriveRequest,
    RetryRequest, Scope, Subscription, SubscriptionUpdate, TokenRecord,
};
use wharf_core::{AccountId, Broker, ConsumerId, QueueId, SubscriptionId, TokenId, WharfResult};

use wharf_core::stats::Stat;

use crate::Engine;

#[async_trait]
impl Broker for Engine {
    async fn ensure_account(&self, account: &Account, admin_secret: &str) -> WharfResult<bool> {
        self.ensure_account_exists(account, admin_secret)
    }

    async fn list_accounts(&self) -> WharfResult<Vec<Account>> {
        Ok(self.read_catalog(|catalog| catalog.accounts.values().cloned().collect()))
    }

    async fn get_account(&self, account: AccountId) -> WharfResult<Option<Account>> {
        Ok(self.read_catalog(|catalog| catalog.accounts.get(&account).cloned()))
    }

    async fn create_token(&self, account: AccountId, name: &str, scope: Scope) -> WharfResult<IssuedToken> {
        self.issue_token(account, name, scope)
    }

    async fn list_tokens(&self, account: AccountId) -> WharfResult<Vec<TokenRecord>> {
        Ok(self.read_catalog(|catalog| catalog.tokens.values().filter(|t| t.account == account).cloned().collect()))
    }

    async fn revoke_token(&self, account: AccountId, token: TokenId) -> WharfResult<bool> {
        self.remove_token(account, token)
    }

    async fn find_token(&self, secret_hash: &[u8; 32]) -> WharfResult<Option<TokenRecord>> {
        Ok(self.tokens.find(secret_hash))
    }

    async fn list_queues(&self, account: AccountId, request: &QueueListRequest) -> WharfResult<Page<Queue>> {
        Ok(self.list_queue_page(account, request))
    }

    async fn create_queue(&self, account: AccountId, name: &str, settings: QueueSettings) -> WharfResult<Queue> {
        self.new_queue(account, name, settings)
    }

    async fn get_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.queue(account, queue)
    }

    async fn update_queue(&self, account: AccountId, queue: QueueId, update: &QueueUpdate) -> WharfResult<Queue> {
        self.change_queue(account, queue, update)
    }

    async fn delete_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        self.remove_queue(account, queue)
    }

    async fn list_consumers(&self, account: AccountId, queue: QueueId) -> WharfResult<Vec<Consumer>> {
        self.consumers(account, queue)
    }

    async fn create_consumer(&self, account: AccountId, queue: QueueId, spec: &ConsumerSpec) -> WharfResult<Consumer> {
        self.set_consumer(account, queue, None, spec)
    }

    async fn get_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<Consumer> {
        self.consumer(account, queue, consumer)
    }

    async fn put_consumer(
        &self,
        account: AccountId,
        queue: QueueId,
        consumer: ConsumerId,
        spec: &ConsumerSpec,
    ) -> WharfResult<Consumer> {
        self.set_consumer(account, queue, Some(consumer), spec)
    }

    async fn delete_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<()> {
        self.remove_consumer(account, queue, consumer)
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
        self.purge_state(account, queue)
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
        Ok(self.subscription_page(account, destination, page, per_page))
    }

    async fn create_subscription(&self, account: AccountId, new: &NewSubscription) -> WharfResult<Subscription> {
        self.new_subscription(account, new)
    }

    async fn get_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.subscription(account, id)
    }

    async fn update_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
        update: &SubscriptionUpdate,
    ) -> WharfResult<Subscription> {
        self.change_subscription(account, id, update)
    }

    async fn delete_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.remove_subscription(account, id)
    }

    fn stats(&self) -> Vec<Stat> {
        Engine::stats(self)
    }

    async fn wait_for_messages(&self, queue: QueueId, max_wait_ms: u64) -> bool {
        let max_wait = std::time::Duration::from_millis(max_wait_ms);
        self.arrivals.wait(queue, max_wait, || self.has_deliverable(queue)).await;
        true
    }

    async fn tick(&self) -> WharfResult<()> {
        self.sweep().await.map(|_| ())
    }

    async fn shutdown(&self) -> WharfResult<()> {
        let lsn = self.log.position().0;
        let flushed = self.log.wait_durable(lsn).await;
        self.log.close();
        flushed
    }
}
