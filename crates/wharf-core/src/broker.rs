//! The `Broker` trait: every operation the API needs, independent of storage.
//!
//! Every method is scoped by account: a queue of another account is reported
//! as not found. Implementations validate with [`crate::validate`] so that all
//! backends refuse bad input identically; a failed call changes nothing.

use async_trait::async_trait;

use crate::error::WharfResult;
use crate::ids::{AccountId, ConsumerId, QueueId, SubscriptionId, TokenId};
use crate::model::{
    Account, AckOutcome, Consumer, ConsumerSpec, ExtendOutcome, MessageView, NewMessage, Page, PullRequest, PullResult,
    PurgeStatus, Queue, QueueBacklog, QueueListRequest, QueueMetrics, QueueSettings, QueueUpdate, RedriveOutcome,
    RedriveRequest, RetryRequest, Scope, Subscription, SubscriptionUpdate, TokenRecord,
};
use crate::stats::Stat;

/// A token just created: the record plus the secret, shown once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub record: TokenRecord,
    pub secret: String,
}

/// A subscription to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub name: String,
    pub enabled: bool,
    pub source: serde_json::Value,
    pub destination_queue: QueueId,
    pub events: Vec<String>,
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    // ---- accounts and tokens ----

    /// Creates the account (with an admin write token whose secret is
    /// `admin_secret`) unless it exists. Returns whether it was created.
    async fn ensure_account(&self, account: &Account, admin_secret: &str) -> WharfResult<bool>;
    async fn list_accounts(&self) -> WharfResult<Vec<Account>>;
    async fn get_account(&self, account: AccountId) -> WharfResult<Option<Account>>;
    async fn create_token(&self, account: AccountId, name: &str, scope: Scope) -> WharfResult<IssuedToken>;
    async fn list_tokens(&self, account: AccountId) -> WharfResult<Vec<TokenRecord>>;
    /// Returns whether a token was revoked.
    async fn revoke_token(&self, account: AccountId, token: TokenId) -> WharfResult<bool>;
    /// The live token whose secret hashes to `secret_hash`.
    async fn find_token(&self, secret_hash: &[u8; 32]) -> WharfResult<Option<TokenRecord>>;

    // ---- queues ----

    async fn list_queues(&self, account: AccountId, request: &QueueListRequest) -> WharfResult<Page<Queue>>;
    async fn create_queue(&self, account: AccountId, name: &str, settings: QueueSettings) -> WharfResult<Queue>;
    async fn get_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue>;
    async fn update_queue(&self, account: AccountId, queue: QueueId, update: &QueueUpdate) -> WharfResult<Queue>;
    /// Deletes the queue, its consumers and its messages.
    async fn delete_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<()>;

    // ---- consumers (at most one per queue) ----

    async fn list_consumers(&self, account: AccountId, queue: QueueId) -> WharfResult<Vec<Consumer>>;
    async fn create_consumer(&self, account: AccountId, queue: QueueId, spec: &ConsumerSpec) -> WharfResult<Consumer>;
    async fn get_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<Consumer>;
    /// Replaces the consumer, or creates it with this id if it does not exist.
    async fn put_consumer(
        &self,
        account: AccountId,
        queue: QueueId,
        consumer: ConsumerId,
        spec: &ConsumerSpec,
    ) -> WharfResult<Consumer>;
    async fn delete_consumer(&self, account: AccountId, queue: QueueId, consumer: ConsumerId) -> WharfResult<()>;

    // ---- messages ----

    /// Appends messages durably; all or none. Returns the metrics after.
    async fn push(&self, account: AccountId, queue: QueueId, messages: Vec<NewMessage>) -> WharfResult<QueueMetrics>;
    /// Leases up to `batch_size` visible messages. Needs an http_pull consumer.
    async fn pull(&self, account: AccountId, queue: QueueId, request: PullRequest) -> WharfResult<PullResult>;
    async fn ack(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome>;
    /// Gives the current deliveries named by `leases` a new lease of
    /// `visibility_timeout_ms` (or the consumer's), without counting an attempt.
    async fn extend(
        &self,
        account: AccountId,
        queue: QueueId,
        leases: &[String],
        visibility_timeout_ms: Option<u64>,
    ) -> WharfResult<ExtendOutcome>;
    /// Visible messages without leasing them; handles are preview lease ids.
    async fn preview(&self, account: AccountId, queue: QueueId, batch_size: u32) -> WharfResult<Vec<MessageView>>;
    /// Deletes previewed messages by their preview lease ids (retries of
    /// unleased messages are reported as warnings).
    async fn preview_ack(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome>;
    /// Visible messages without leasing them; handles are peek refs.
    async fn peek(&self, account: AccountId, queue: QueueId, batch_size: u32) -> WharfResult<Vec<MessageView>>;
    /// Deletes peeked messages by ref; returns warnings (ref → reason).
    async fn purge_refs(
        &self,
        account: AccountId,
        queue: QueueId,
        refs: &[String],
    ) -> WharfResult<std::collections::BTreeMap<String, String>>;
    /// Moves up to `max_messages` of the queue's ready messages (not leased,
    /// not delayed), in the order pulls would get them, into another queue
    /// of the account, where they are ready at once with no attempts
    /// counted; they keep their timestamp and body. All or none: a move that
    /// fails moves nothing. Messages that would take the destination past
    /// its backlog limit stay.
    async fn redrive(&self, account: AccountId, queue: QueueId, request: RedriveRequest)
        -> WharfResult<RedriveOutcome>;
    /// Deletes every message of the queue.
    async fn purge(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue>;
    async fn purge_status(&self, account: AccountId, queue: QueueId) -> WharfResult<PurgeStatus>;
    async fn metrics(&self, account: AccountId, queue: QueueId) -> WharfResult<QueueMetrics>;

    // ---- event subscriptions ----

    async fn list_subscriptions(
        &self,
        account: AccountId,
        destination: Option<QueueId>,
        page: u32,
        per_page: u32,
    ) -> WharfResult<Page<Subscription>>;
    async fn create_subscription(&self, account: AccountId, new: &NewSubscription) -> WharfResult<Subscription>;
    async fn get_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription>;
    async fn update_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
        update: &SubscriptionUpdate,
    ) -> WharfResult<Subscription>;
    async fn delete_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription>;

    // ---- long polling ----

    /// Waits up to `max_wait_ms` for a sign that messages may have become
    /// deliverable on the queue (a push or a requeue). Returns `false` at
    /// once if the backend has no such signal; callers then poll. A `true`
    /// return is only a hint: the caller pulls again to find out.
    async fn wait_for_messages(&self, _queue: QueueId, _max_wait_ms: u64) -> bool {
        false
    }

    // ---- monitoring ----

    /// Every queue of the account with its backlog now, in no set order
    /// (per-queue figures of `GET /metrics`). By default one list and one
    /// metrics call per queue, cheap on the engine (memory); PostgreSQL
    /// overrides it with one statement.
    async fn queue_backlogs(&self, account: AccountId) -> WharfResult<Vec<QueueBacklog>> {
        let mut backlogs = Vec::new();
        for page in 1.. {
            let request = QueueListRequest { names: Vec::new(), page, per_page: 1000 };
            let listed = self.list_queues(account, &request).await?;
            let last = listed.items.len() < listed.per_page as usize;
            for queue in listed.items {
                let metrics = match self.metrics(account, queue.id).await {
                    Ok(metrics) => metrics,
                    // Deleted since the list: not a queue any more.
                    Err(crate::WharfError::QueueNotFound) => continue,
                    Err(error) => return Err(error),
                };
                backlogs.push(QueueBacklog {
                    id: queue.id,
                    name: queue.name,
                    delivery_paused: queue.settings.delivery_paused,
                    metrics,
                });
            }
            if last {
                break;
            }
        }
        Ok(backlogs)
    }

    /// The backend's own figures for `GET /metrics` (storage work done,
    /// backlog held), read now. Cheap: no I/O and no query, so a scrape
    /// never waits for storage (the engine only takes its state lock to
    /// sum the backlog). None by default.
    fn stats(&self) -> Vec<Stat> {
        Vec::new()
    }

    // ---- housekeeping ----

    /// Runs due background work now (lease expiry, delays, retention);
    /// backends also run it on their own timers. Used by tests with a
    /// manual clock.
    async fn tick(&self) -> WharfResult<()>;

    /// Flushes and stops accepting writes.
    async fn shutdown(&self) -> WharfResult<()>;
}
