//! Metadata operations: accounts, tokens, queues, consumers, subscriptions.
//! Each one works out its changes from the catalog under the state lock,
//! journals them (one synced write) and only then applies them, so a failed
//! write changes nothing; a failure other than a full disk also puts the
//! engine in the failed state.

use std::collections::BTreeSet;

use wharf_core::auth::{generate_secret, hash_secret};
use wharf_core::broker::{IssuedToken, NewSubscription};
use wharf_core::model::{
    Account, Consumer, ConsumerSpec, Page, PurgeStatus, Queue, QueueListRequest, QueueSettings, QueueUpdate, Scope,
    Subscription, SubscriptionUpdate, TokenRecord,
};
use wharf_core::{validate, AccountId, ConsumerId, QueueId, SubscriptionId, TokenId, WharfError, WharfResult};

use crate::catalog::{Catalog, CatalogChange, QueueMeta};
use crate::record::Record;
use crate::state::State;
use crate::Engine;

/// Sequence numbers reserved in the catalog at a time: one catalog write per
/// this many messages, and what a restart skips at most.
const SEQ_BLOCK: u64 = 1 << 20;

impl Engine {
    /// Journals `changes` and applies them to the catalog. A full disk is a
    /// clean refusal that later writes retry; any other failure (a failed
    /// fsync above all) poisons the engine like a failed log fsync: retrying
    /// an fsync can report success for pages the kernel already dropped, so
    /// nothing more is acknowledged until a restart recovers from what is
    /// really on disk.
    pub(crate) fn change_catalog_locked(&self, state: &mut State, changes: Vec<CatalogChange>) -> WharfResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let faults = self.log.faults();
        let appended = state.catalog_journal.append(&changes, faults);
        self.poison_on_failure(&appended);
        appended?;
        let tokens_changed = changes.iter().any(CatalogChange::touches_tokens);
        for change in changes {
            state.catalog.apply(change);
        }
        if tokens_changed {
            // Still under the state lock: a token revoked here is refused
            // by every request that authenticates after this returns.
            self.tokens.replace(&state.catalog);
        }
        // The change is durable in the journal whatever happens here. A
        // snapshot refused for a full disk only leaves the journal longer;
        // any other failure poisons the engine like a failed sync.
        let compacted = state.catalog_journal.compact_if_due(&state.catalog, faults);
        self.poison_on_failure(&compacted);
        if let Err(error) = compacted {
            tracing::warn!(%error, "could not fold the catalog journal into a new snapshot");
        }
        Ok(())
    }

    fn poison_on_failure(&self, result: &WharfResult<()>) {
        if let Err(WharfError::StorageFailed { detail }) = result {
            self.log.poison(detail.clone());
        }
    }

    /// Keeps every minted sequence number below the catalog's floor, raising
    /// it a block ahead when numbering reaches it. Called before records are
    /// logged; a failed save refuses the write (the numbers are skipped).
    pub(crate) fn reserve_seqs(&self, state: &mut State) -> WharfResult<()> {
        if state.next_seq <= state.catalog.seq_floor {
            return Ok(());
        }
        let floor = state.next_seq + SEQ_BLOCK;
        self.change_catalog_locked(state, vec![CatalogChange::SeqFloor { floor }])
    }

    /// Works out an operation's answer and catalog changes from the catalog
    /// as it is, then journals and applies the changes; a refused operation
    /// or a failed write changes nothing.
    fn change_catalog<T>(
        &self,
        change: impl FnOnce(&Catalog, u64) -> WharfResult<(T, Vec<CatalogChange>)>,
    ) -> WharfResult<T> {
        self.ensure_writable()?;
        let mut state = self.state();
        let (value, changes) = change(&state.catalog, self.now_ms())?;
        self.change_catalog_locked(&mut state, changes)?;
        Ok(value)
    }

    pub(crate) fn ensure_account_exists(&self, account: &Account, admin_secret: &str) -> WharfResult<bool> {
        self.change_catalog(|catalog, now_ms| {
            if catalog.accounts.contains_key(&account.id) {
                return Ok((false, Vec::new()));
            }
            let token = TokenRecord {
                id: TokenId::random(),
                account: account.id,
                name: "admin".into(),
                scope: Scope::Write,
                secret_hash: hash_secret(admin_secret),
                created_on_ms: now_ms,
            };
            Ok((true, vec![CatalogChange::PutAccount { account: account.clone() }, CatalogChange::PutToken { token }]))
        })
    }

    pub(crate) fn issue_token(&self, account: AccountId, name: &str, scope: Scope) -> WharfResult<IssuedToken> {
        self.change_catalog(|catalog, now_ms| {
            if !catalog.accounts.contains_key(&account) {
                return Err(WharfError::WrongAccount { account: account.to_string() });
            }
            let secret = generate_secret();
            let record = TokenRecord {
                id: TokenId::random(),
                account,
                name: name.to_string(),
                scope,
                secret_hash: hash_secret(&secret),
                created_on_ms: now_ms,
            };
            let change = CatalogChange::PutToken { token: record.clone() };
            Ok((IssuedToken { record, secret }, vec![change]))
        })
    }

    pub(crate) fn remove_token(&self, account: AccountId, token: TokenId) -> WharfResult<bool> {
        self.change_catalog(|catalog, _| {
            let owned = catalog.tokens.get(&token).is_some_and(|record| record.account == account);
            let changes = if owned { vec![CatalogChange::RemoveToken { id: token }] } else { Vec::new() };
            Ok((owned, changes))
        })
    }

    pub(crate) fn read_catalog<T>(&self, read: impl FnOnce(&Catalog) -> T) -> T {
        read(&self.state().catalog)
    }

    pub(crate) fn list_queue_page(&self, account: AccountId, request: &QueueListRequest) -> Page<Queue> {
        let state = self.state();
        let catalog = &state.catalog;
        let per_page = request.per_page.max(1);
        let skip = (request.page.max(1) as usize - 1).saturating_mul(per_page as usize);
        // Under the state lock: a page costs its own queues, not the account's.
        let (items, total_count) = if request.names.is_empty() {
            let page = catalog.queues_of(account).skip(skip).take(per_page as usize).map(queue_view).collect();
            (page, catalog.queue_count_of(account))
        } else {
            let names: BTreeSet<&String> = request.names.iter().collect();
            let mut matching: Vec<&QueueMeta> =
                names.into_iter().filter_map(|name| catalog.queue_by_name(account, name)).collect();
            matching.sort_by(|a, b| (a.created_on_ms, &a.name).cmp(&(b.created_on_ms, &b.name)));
            let page = matching.iter().skip(skip).take(per_page as usize).map(|meta| queue_view(meta)).collect();
            (page, matching.len())
        };
        Page { items, page: request.page.max(1), per_page, total_count: total_count as u64 }
    }

    pub(crate) fn new_queue(&self, account: AccountId, name: &str, settings: QueueSettings) -> WharfResult<Queue> {
        validate::queue_name(name)?;
        validate::queue_settings(&settings, &self.limits)?;
        let limits = &self.limits;
        self.change_catalog(|catalog, now_ms| {
            if catalog.queue_by_name(account, name).is_some() {
                return Err(WharfError::QueueNameTaken { name: name.to_string() });
            }
            validate::queue_count_room(catalog.queue_count_of(account) as u64, limits)?;
            let meta = QueueMeta {
                id: QueueId::random(),
                account,
                name: name.to_string(),
                created_on_ms: now_ms,
                modified_on_ms: now_ms,
                settings,
                consumer: None,
                last_purge_ms: None,
            };
            Ok((queue_view(&meta), vec![CatalogChange::put_queue(meta)]))
        })
    }

    pub(crate) fn queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.read_catalog(|catalog| catalog.queue(account, queue).map(queue_view))
    }

    pub(crate) fn change_queue(&self, account: AccountId, queue: QueueId, update: &QueueUpdate) -> WharfResult<Queue> {
        if let Some(name) = &update.name {
            validate::queue_name(name)?;
        }
        let limits = self.limits.clone();
        self.change_catalog(|catalog, now_ms| {
            if let Some(name) = &update.name {
                if catalog.queue_by_name(account, name).is_some_and(|other| other.id != queue) {
                    return Err(WharfError::QueueNameTaken { name: name.clone() });
                }
            }
            let mut meta = catalog.queue_copy(account, queue)?;
            let mut settings = meta.settings;
            settings.delivery_delay = update.delivery_delay.unwrap_or(settings.delivery_delay);
            settings.delivery_paused = update.delivery_paused.unwrap_or(settings.delivery_paused);
            settings.message_retention_period =
                update.message_retention_period.unwrap_or(settings.message_retention_period);
            validate::queue_settings(&settings, &limits)?;
            meta.settings = settings;
            if let Some(name) = &update.name {
                meta.name = name.clone();
            }
            meta.modified_on_ms = now_ms;
            Ok((queue_view(&meta), vec![CatalogChange::put_queue(meta)]))
        })
        .inspect(|_| {
            // A shorter retention can bring the queue's next expiry nearer.
            if let Some(index) = self.state().queues.get_mut(&queue) {
                index.unsettle();
            }
        })
    }

    pub(crate) fn remove_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        self.change_catalog(|catalog, _| {
            catalog.queue(account, queue)?;
            let mut changes = vec![CatalogChange::RemoveQueue { id: queue }];
            changes.extend(
                catalog
                    .subscriptions
                    .values()
                    .filter(|subscription| subscription.destination_queue == queue)
                    .map(|subscription| CatalogChange::RemoveSubscription { id: subscription.id }),
            );
            Ok(((), changes))
        })?;
        self.state().drop_queue(queue);
        Ok(())
    }

    pub(crate) fn set_consumer(
        &self,
        account: AccountId,
        queue: QueueId,
        id: Option<ConsumerId>,
        spec: &ConsumerSpec,
    ) -> WharfResult<Consumer> {
        validate::consumer_settings(&spec.settings, &self.limits)?;
        if let Some(name) = &spec.dead_letter_queue {
            validate::queue_name(name).map_err(|_| WharfError::ConsumerSettingsInvalid {
                detail: format!("dead_letter_queue {name:?} is not a valid queue name"),
            })?;
        }
        self.change_catalog(|catalog, now_ms| {
            let mut meta = catalog.queue_copy(account, queue)?;
            if spec.dead_letter_queue.as_deref() == Some(meta.name.as_str()) {
                return Err(WharfError::ConsumerSettingsInvalid {
                    detail: "dead_letter_queue must be another queue".into(),
                });
            }
            let created_on_ms = match (&meta.consumer, id) {
                (Some(existing), Some(id)) if existing.id == id => existing.created_on_ms,
                (Some(_), _) => return Err(WharfError::ConsumerExists),
                (None, _) => now_ms,
            };
            let consumer = Consumer {
                id: id.unwrap_or_else(ConsumerId::random),
                queue,
                kind: spec.kind.clone(),
                dead_letter_queue: spec.dead_letter_queue.clone(),
                settings: spec.settings,
                created_on_ms,
            };
            meta.consumer = Some(consumer.clone());
            meta.modified_on_ms = now_ms;
            Ok((consumer, vec![CatalogChange::put_queue(meta)]))
        })
    }

    pub(crate) fn consumers(&self, account: AccountId, queue: QueueId) -> WharfResult<Vec<Consumer>> {
        self.read_catalog(|catalog| Ok(catalog.queue(account, queue)?.consumer.iter().cloned().collect()))
    }

    pub(crate) fn consumer(&self, account: AccountId, queue: QueueId, id: ConsumerId) -> WharfResult<Consumer> {
        self.consumers(account, queue)?
            .into_iter()
            .find(|consumer| consumer.id == id)
            .ok_or(WharfError::ConsumerNotFound)
    }

    pub(crate) fn remove_consumer(&self, account: AccountId, queue: QueueId, id: ConsumerId) -> WharfResult<()> {
        self.change_catalog(|catalog, now_ms| {
            let mut meta = catalog.queue_copy(account, queue)?;
            if meta.consumer.as_ref().is_none_or(|consumer| consumer.id != id) {
                return Err(WharfError::ConsumerNotFound);
            }
            meta.consumer = None;
            meta.modified_on_ms = now_ms;
            Ok(((), vec![CatalogChange::put_queue(meta)]))
        })
    }

    pub(crate) async fn purge_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        self.ensure_writable()?;
        let (lsn, view) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            state.catalog.queue(account, queue)?;
            let before_seq = state.next_seq;
            let lsn = self.commit(&mut state, &[Record::Purge { queue, before_seq }], now_ms)?;
            let mut meta = state.catalog.queue_copy(account, queue)?;
            meta.last_purge_ms = Some(now_ms);
            let view = queue_view(&meta);
            self.change_catalog_locked(&mut state, vec![CatalogChange::put_queue(meta)])?;
            (lsn, view)
        };
        self.log.wait_durable(lsn).await?;
        Ok(view)
    }

    pub(crate) fn purge_state(&self, account: AccountId, queue: QueueId) -> WharfResult<PurgeStatus> {
        self.read_catalog(|catalog| {
            let meta = catalog.queue(account, queue)?;
            Ok(PurgeStatus { started_at_ms: meta.last_purge_ms, completed: meta.last_purge_ms.is_some() })
        })
    }

    pub(crate) fn subscription_page(
        &self,
        account: AccountId,
        destination: Option<QueueId>,
        page: u32,
        per_page: u32,
    ) -> Page<Subscription> {
        self.read_catalog(|catalog| {
            let mut matching: Vec<&Subscription> = catalog
                .subscriptions
                .values()
                .filter(|subscription| subscription.account == account)
                .filter(|subscription| destination.is_none_or(|queue| subscription.destination_queue == queue))
                .collect();
            matching.sort_by(|a, b| (&a.name, a.created_at_ms).cmp(&(&b.name, b.created_at_ms)));
            let per_page = per_page.max(1);
            let skip = (page.max(1) as usize - 1).saturating_mul(per_page as usize);
            Page {
                items: matching.iter().skip(skip).take(per_page as usize).map(|s| (*s).clone()).collect(),
                page: page.max(1),
                per_page,
                total_count: matching.len() as u64,
            }
        })
    }

    pub(crate) fn new_subscription(&self, account: AccountId, new: &NewSubscription) -> WharfResult<Subscription> {
        self.change_catalog(|catalog, now_ms| {
            catalog.queue(account, new.destination_queue).map_err(|_| WharfError::SubscriptionDestinationMissing)?;
            let duplicate = catalog.subscriptions.values().any(|existing| {
                existing.account == account
                    && existing.source == new.source
                    && existing.destination_queue == new.destination_queue
            });
            if duplicate {
                return Err(WharfError::SubscriptionExists);
            }
            let subscription = Subscription {
                id: SubscriptionId::random(),
                account,
                name: new.name.clone(),
                enabled: new.enabled,
                source: new.source.clone(),
                destination_queue: new.destination_queue,
                events: new.events.clone(),
                created_at_ms: now_ms,
                modified_at_ms: now_ms,
            };
            let change = CatalogChange::PutSubscription { subscription: subscription.clone() };
            Ok((subscription, vec![change]))
        })
    }

    pub(crate) fn subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.read_catalog(|catalog| {
            catalog
                .subscriptions
                .get(&id)
                .filter(|s| s.account == account)
                .cloned()
                .ok_or(WharfError::SubscriptionNotFound)
        })
    }

    pub(crate) fn change_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
        update: &SubscriptionUpdate,
    ) -> WharfResult<Subscription> {
        self.change_catalog(|catalog, now_ms| {
            if let Some(queue) = update.destination_queue {
                catalog.queue(account, queue).map_err(|_| WharfError::SubscriptionDestinationMissing)?;
            }
            let mut subscription = catalog
                .subscriptions
                .get(&id)
                .filter(|s| s.account == account)
                .cloned()
                .ok_or(WharfError::SubscriptionNotFound)?;
            if let Some(name) = &update.name {
                subscription.name = name.clone();
            }
            if let Some(enabled) = update.enabled {
                subscription.enabled = enabled;
            }
            if let Some(events) = &update.events {
                subscription.events = events.clone();
            }
            if let Some(queue) = update.destination_queue {
                subscription.destination_queue = queue;
            }
            subscription.modified_at_ms = now_ms;
            let change = CatalogChange::PutSubscription { subscription: subscription.clone() };
            Ok((subscription, vec![change]))
        })
    }

    pub(crate) fn remove_subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        self.change_catalog(|catalog, _| match catalog.subscriptions.get(&id) {
            Some(existing) if existing.account == account => {
                Ok((existing.clone(), vec![CatalogChange::RemoveSubscription { id }]))
            }
            _ => Err(WharfError::SubscriptionNotFound),
        })
    }
}

pub(crate) fn queue_view(meta: &QueueMeta) -> Queue {
    Queue {
        id: meta.id,
        account: meta.account,
        name: meta.name.clone(),
        created_on_ms: meta.created_on_ms,
        modified_on_ms: meta.modified_on_ms,
        settings: meta.settings,
        consumers: meta.consumer.iter().cloned().collect(),
    }
}
