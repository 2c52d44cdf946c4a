//! Event subscriptions: stored and served, never delivered (Wharf has no
//! event sources). Checks in the engine's order.

use tokio_postgres::GenericClient;
use wharf_core::broker::NewSubscription;
use wharf_core::model::{Page, Subscription, SubscriptionUpdate};
use wharf_core::{AccountId, QueueId, SubscriptionId, WharfError, WharfResult};

use crate::admin::{id_bytes, load_queue};
use crate::rows::{self, SUBSCRIPTION_COLUMNS};
use crate::{db_error, PostgresBroker};

impl PostgresBroker {
    pub(crate) async fn subscription_page(
        &self,
        account: AccountId,
        destination: Option<QueueId>,
        page: u32,
        per_page: u32,
    ) -> WharfResult<Page<Subscription>> {
        let client = self.client().await?;
        let per_page = per_page.max(1);
        let page = page.max(1);
        let offset = (page as i64 - 1).saturating_mul(per_page as i64);
        let filter = "account_id = $1 AND ($2::bytea IS NULL OR destination_queue = $2)";
        let destination = destination.map(|queue| id_bytes(queue.0));
        let account_bytes = id_bytes(account.0);
        let total: i64 = client
            .query_one(&format!("SELECT count(*) FROM subscriptions WHERE {filter}"), &[&account_bytes, &destination])
            .await
            .map_err(db_error)?
            .try_get(0)
            .map_err(db_error)?;
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE {filter} \
             ORDER BY name, created_at_ms LIMIT $3 OFFSET $4"
        );
        let found =
            client.query(&sql, &[&account_bytes, &destination, &(per_page as i64), &offset]).await.map_err(db_error)?;
        let items = found.iter().map(rows::subscription).collect::<WharfResult<_>>()?;
        Ok(Page { items, page, per_page, total_count: total.max(0) as u64 })
    }

    pub(crate) async fn new_subscription(
        &self,
        account: AccountId,
        new: &NewSubscription,
    ) -> WharfResult<Subscription> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        load_queue(&*tx, account, new.destination_queue, true)
            .await
            .map_err(|_| WharfError::SubscriptionDestinationMissing)?;
        let duplicate = tx
            .query_opt(
                "SELECT 1 FROM subscriptions WHERE account_id = $1 AND source = $2 AND destination_queue = $3",
                &[&id_bytes(account.0), &new.source, &id_bytes(new.destination_queue.0)],
            )
            .await
            .map_err(db_error)?;
        if duplicate.is_some() {
            return Err(WharfError::SubscriptionExists);
        }
        let now_ms = self.now_ms();
        let subscription = Subscription {
            id: SubscriptionId::random(),
            account,
            name: new.name.clone(),
            enabled: new.enabled,
            source: new.source.clone(),
            destination_queue: new.destination_queue,
            events: new.events.clone(),
            created_at_ms: now_ms as u64,
            modified_at_ms: now_ms as u64,
        };
        tx.execute(
            "INSERT INTO subscriptions (id, account_id, name, enabled, source, destination_queue, events, \
             created_at_ms, modified_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            &[
                &id_bytes(subscription.id.0),
                &id_bytes(account.0),
                &subscription.name,
                &subscription.enabled,
                &subscription.source,
                &id_bytes(subscription.destination_queue.0),
                &subscription.events,
                &now_ms,
            ],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(subscription)
    }

    pub(crate) async fn subscription(&self, account: AccountId, id: SubscriptionId) -> WharfResult<Subscription> {
        let client = self.client().await?;
        find_subscription(&**client, account, id, false).await
    }

    pub(crate) async fn change_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
        update: &SubscriptionUpdate,
    ) -> WharfResult<Subscription> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(queue) = update.destination_queue {
            load_queue(&*tx, account, queue, false).await.map_err(|_| WharfError::SubscriptionDestinationMissing)?;
        }
        let mut subscription = find_subscription(&*tx, account, id, true).await?;
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
        let now_ms = self.now_ms();
        subscription.modified_at_ms = now_ms as u64;
        tx.execute(
            "UPDATE subscriptions SET name = $2, enabled = $3, events = $4, destination_queue = $5, \
             modified_at_ms = $6 WHERE id = $1",
            &[
                &id_bytes(id.0),
                &subscription.name,
                &subscription.enabled,
                &subscription.events,
                &id_bytes(subscription.destination_queue.0),
                &now_ms,
            ],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(subscription)
    }

    pub(crate) async fn remove_subscription(
        &self,
        account: AccountId,
        id: SubscriptionId,
    ) -> WharfResult<Subscription> {
        let client = self.client().await?;
        let sql =
            format!("DELETE FROM subscriptions WHERE id = $1 AND account_id = $2 RETURNING {SUBSCRIPTION_COLUMNS}");
        let deleted = client.query_opt(&sql, &[&id_bytes(id.0), &id_bytes(account.0)]).await.map_err(db_error)?;
        deleted.as_ref().map(rows::subscription).transpose()?.ok_or(WharfError::SubscriptionNotFound)
    }
}

async fn find_subscription<C: GenericClient + Sync>(
    client: &C,
    account: AccountId,
    id: SubscriptionId,
    lock: bool,
) -> WharfResult<Subscription> {
    let sql = format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1 AND account_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let found = client.query_opt(&sql, &[&id_bytes(id.0), &id_bytes(account.0)]).await.map_err(db_error)?;
    found.as_ref().map(rows::subscription).transpose()?.ok_or(WharfError::SubscriptionNotFound)
}
