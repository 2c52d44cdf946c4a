//! Metadata operations: accounts, tokens, queues, consumers, purge.
//! Checks happen in the same order as in the embedded engine so that both
//! backends report the same error for the same request.

use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;
use wharf_core::auth::{generate_secret, hash_secret};
use wharf_core::broker::IssuedToken;
use wharf_core::model::{
    Account, Consumer, ConsumerSpec, Page, PurgeStatus, Queue, QueueListRequest, QueueSettings, QueueUpdate, Scope,
    TokenRecord,
};
use wharf_core::{validate, AccountId, ConsumerId, QueueId, TokenId, WharfError, WharfResult};

use crate::rows::{self, CONSUMER_COLUMNS, QUEUE_COLUMNS, TOKEN_COLUMNS};
use crate::{db_error, is_unique_violation, PostgresBroker};

/// An id as stored: its 16 big-endian bytes.
pub(crate) fn id_bytes(id: u128) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// The account's queue with its consumer; `lock` takes the queue row for
/// update so that concurrent changes to it take turns.
pub(crate) async fn load_queue<C: GenericClient + Sync>(
    client: &C,
    account: AccountId,
    queue: QueueId,
    lock: bool,
) -> WharfResult<Queue> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM queues q WHERE q.id = $1 AND q.account_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = client
        .query_opt(&sql, &[&id_bytes(queue.0), &id_bytes(account.0)])
        .await
        .map_err(db_error)?
        .ok_or(WharfError::QueueNotFound)?;
    let mut view = rows::queue(&row)?;
    view.consumers = consumers_of(client, &[queue]).await?;
    Ok(view)
}

async fn consumers_of<C: GenericClient + Sync>(client: &C, queues: &[QueueId]) -> WharfResult<Vec<Consumer>> {
    let ids: Vec<Vec<u8>> = queues.iter().map(|queue| id_bytes(queue.0)).collect();
    let sql = format!("SELECT {CONSUMER_COLUMNS} FROM consumers c WHERE c.queue_id = ANY($1)");
    let found = client.query(&sql, &[&ids]).await.map_err(db_error)?;
    found.iter().map(rows::consumer).collect()
}

impl PostgresBroker {
    pub(crate) async fn ensure_account_exists(&self, account: &Account, admin_secret: &str) -> WharfResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let inserted = tx
            .execute(
                "INSERT INTO accounts (id, email, created_on_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&id_bytes(account.id.0), &account.email, &crate::ms(account.created_on_ms)],
            )
            .await
            .map_err(db_error)?;
        if inserted == 0 {
            return Ok(false);
        }
        let hash = hash_secret(admin_secret);
        insert_token(&*tx, TokenId::random(), account.id, "admin", Scope::Write, &hash, self.now_ms())
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    pub(crate) async fn accounts(&self, account: Option<AccountId>) -> WharfResult<Vec<Account>> {
        let client = self.client().await?;
        let found = match account {
            Some(id) => client
                .query("SELECT id, email, created_on_ms FROM accounts WHERE id = $1", &[&id_bytes(id.0)])
                .await
                .map_err(db_error)?,
            None => client
                .query("SELECT id, email, created_on_ms FROM accounts ORDER BY created_on_ms, id", &[])
                .await
                .map_err(db_error)?,
        };
        found.iter().map(rows::account).collect()
    }

    pub(crate) async fn issue_token(&self, account: AccountId, name: &str, scope: Scope) -> WharfResult<IssuedToken> {
        let client = self.client().await?;
        let secret = generate_secret();
        let now_ms = self.now_ms();
        let record = TokenRecord {
            id: TokenId::random(),
            account,
            name: name.to_string(),
            scope,
            secret_hash: hash_secret(&secret),
            created_on_ms: now_ms as u64,
        };
        match insert_token(&**client, record.id, account, name, scope, &record.secret_hash, now_ms).await {
            Ok(()) => Ok(IssuedToken { record, secret }),
            Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(WharfError::WrongAccount { account: account.to_string() })
            }
            Err(error) => Err(db_error(error)),
        }
    }

    pub(crate) async fn tokens(&self, account: AccountId) -> WharfResult<Vec<TokenRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = $1 ORDER BY created_on_ms, id");
        let found = client.query(&sql, &[&id_bytes(account.0)]).await.map_err(db_error)?;
        found.iter().map(rows::token).collect()
    }

    pub(crate) async fn remove_token(&self, account: AccountId, token: TokenId) -> WharfResult<bool> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM tokens WHERE id = $1 AND account_id = $2",
                &[&id_bytes(token.0), &id_bytes(account.0)],
            )
            .await
            .map_err(db_error)?;
        // Cleared after the delete: a lookup racing with it may have cached
        // the token just before.
        self.tokens.clear();
        Ok(deleted > 0)
    }

    pub(crate) async fn token_by_hash(&self, secret_hash: &[u8; 32]) -> WharfResult<Option<TokenRecord>> {
        if let Some(record) = self.tokens.get(secret_hash) {
            return Ok(Some(record));
        }
        let client = self.client().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1");
        let stmt = client.prepare_cached(&sql).await.map_err(db_error)?;
        let found = client.query_opt(&stmt, &[&secret_hash.as_slice()]).await.map_err(db_error)?;
        let record = found.as_ref().map(rows::token).transpose()?;
        if let Some(record) = &record {
            self.tokens.put(record);
        }
        Ok(record)
    }

    pub(crate) async fn list_queue_page(
        &self,
        account: AccountId,
        request: &QueueListRequest,
    ) -> WharfResult<Page<Queue>> {
        let client = self.client().await?;
        let per_page = request.per_page.max(1);
        let page = request.page.max(1);
        let offset = (page as i64 - 1).saturating_mul(per_page as i64);
        let filter = "q.account_id = $1 AND (cardinality($2::text[]) = 0 OR q.name = ANY($2))";
        let account_bytes = id_bytes(account.0);
        let count_sql = format!("SELECT count(*) FROM queues q WHERE {filter}");
        let total: i64 = client
            .query_one(&count_sql, &[&account_bytes, &request.names])
            .await
            .map_err(db_error)?
            .try_get(0)
            .map_err(db_error)?;
        let page_sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM queues q WHERE {filter} ORDER BY q.created_on_ms, q.name LIMIT $3 OFFSET $4"
        );
        let found = client
            .query(&page_sql, &[&account_bytes, &request.names, &(per_page as i64), &offset])
            .await
            .map_err(db_error)?;
        let mut items: Vec<Queue> = found.iter().map(rows::queue).collect::<WharfResult<_>>()?;
        let ids: Vec<QueueId> = items.iter().map(|queue| queue.id).collect();
        for consumer in consumers_of(&**client, &ids).await? {
            if let Some(queue) = items.iter_mut().find(|queue| queue.id == consumer.queue) {
                queue.consumers.push(consumer);
            }
        }
        Ok(Page { items, page, per_page, total_count: total.max(0) as u64 })
    }

    pub(crate) async fn new_queue(
        &self,
        account: AccountId,
        name: &str,
        settings: QueueSettings,
    ) -> WharfResult<Queue> {
        validate::queue_name(name)?;
        validate::queue_settings(&settings, &self.limits)?;
        let client = self.client().await?;
        let now_ms = self.now_ms();
        let id = QueueId::random();
        // The count and the insert are one statement: nothing is inserted
        // once the account has its most queues.
        let max_queues = i64::try_from(self.limits.max_queues_per_account).unwrap_or(i64::MAX);
        let inserted = client
            .execute(
                "INSERT INTO queues (id, account_id, name, created_on_ms, modified_on_ms, delivery_delay, \
                 delivery_paused, message_retention_period) SELECT $1, $2, $3, $4, $4, $5, $6, $7 \
                 WHERE (SELECT count(*) FROM queues WHERE account_id = $2) < $8",
                &[
                    &id_bytes(id.0),
                    &id_bytes(account.0),
                    &name,
                    &now_ms,
                    &(settings.delivery_delay as i32),
                    &settings.delivery_paused,
                    &(settings.message_retention_period as i32),
                    &max_queues,
                ],
            )
            .await;
        match inserted {
            Ok(0) => return Err(WharfError::QueueLimitExceeded { limit: self.limits.max_queues_per_account }),
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(WharfError::QueueNameTaken { name: name.to_string() })
            }
            Err(error) => return Err(db_error(error)),
        }
        let now = now_ms as u64;
        Ok(Queue {
            id,
            account,
            name: name.to_string(),
            created_on_ms: now,
            modified_on_ms: now,
            settings,
            consumers: vec![],
        })
    }

    pub(crate) async fn queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        let client = self.client().await?;
        load_queue(&**client, account, queue, false).await
    }

    pub(crate) async fn change_queue(
        &self,
        account: AccountId,
        queue: QueueId,
        update: &QueueUpdate,
    ) -> WharfResult<Queue> {
        if let Some(name) = &update.name {
            validate::queue_name(name)?;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        if let Some(name) = &update.name {
            let taken = tx
                .query_opt(
                    "SELECT 1 FROM queues WHERE account_id = $1 AND name = $2 AND id <> $3",
                    &[&id_bytes(account.0), name, &id_bytes(queue.0)],
                )
                .await
                .map_err(db_error)?;
            if taken.is_some() {
                return Err(WharfError::QueueNameTaken { name: name.clone() });
            }
        }
        let mut view = load_queue(&*tx, account, queue, true).await?;
        let mut settings = view.settings;
        settings.delivery_delay = update.delivery_delay.unwrap_or(settings.delivery_delay);
        settings.delivery_paused = update.delivery_paused.unwrap_or(settings.delivery_paused);
        settings.message_retention_period =
            update.message_retention_period.unwrap_or(settings.message_retention_period);
        validate::queue_settings(&settings, &self.limits)?;
        let name = update.name.clone().unwrap_or(view.name);
        let now_ms = self.now_ms();
        let updated = tx
            .execute(
                "UPDATE queues SET name = $2, delivery_delay = $3, delivery_paused = $4, \
                 message_retention_period = $5, modified_on_ms = $6 WHERE id = $1",
                &[
                    &id_bytes(queue.0),
                    &name,
                    &(settings.delivery_delay as i32),
                    &settings.delivery_paused,
                    &(settings.message_retention_period as i32),
                    &now_ms,
                ],
            )
            .await;
        match updated {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Err(WharfError::QueueNameTaken { name }),
            Err(error) => return Err(db_error(error)),
        }
        tx.commit().await.map_err(db_error)?;
        view.name = name;
        view.settings = settings;
        view.modified_on_ms = now_ms as u64;
        Ok(view)
    }

    pub(crate) async fn remove_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // Consumers, counters and subscriptions go with it (ON DELETE
        // CASCADE). Deleting the counter rows waits for pushes that hold one,
        // so the next statement, with a fresh snapshot, sees their messages;
        // later pushes fail on the counters' key (migration 0002).
        let deleted = tx
            .execute(
                "DELETE FROM queues WHERE id = $1 AND account_id = $2",
                &[&id_bytes(queue.0), &id_bytes(account.0)],
            )
            .await
            .map_err(db_error)?;
        if deleted == 0 {
            return Err(WharfError::QueueNotFound);
        }
        tx.execute("DELETE FROM messages WHERE queue_id = $1", &[&id_bytes(queue.0)]).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    pub(crate) async fn set_consumer(
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let view = load_queue(&*tx, account, queue, true).await?;
        if spec.dead_letter_queue.as_deref() == Some(view.name.as_str()) {
            return Err(WharfError::ConsumerSettingsInvalid {
                detail: "dead_letter_queue must be another queue".into(),
            });
        }
        let now_ms = self.now_ms();
        let created_on_ms = match (view.consumers.first(), id) {
            (Some(existing), Some(id)) if existing.id == id => existing.created_on_ms,
            (Some(_), _) => return Err(WharfError::ConsumerExists),
            (None, _) => now_ms as u64,
        };
        let consumer = Consumer {
            id: id.unwrap_or_else(ConsumerId::random),
            queue,
            kind: spec.kind.clone(),
            dead_letter_queue: spec.dead_letter_queue.clone(),
            settings: spec.settings,
            created_on_ms,
        };
        let (kind, script_name, environment_name) = rows::kind_columns(&consumer.kind);
        let settings = &consumer.settings;
        tx.execute(
            "INSERT INTO consumers (queue_id, id, kind, script_name, environment_name, dead_letter_queue, batch_size, \
             max_retries, retry_delay, max_wait_time_ms, max_concurrency, visibility_timeout_ms, created_on_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (queue_id) DO UPDATE SET id = $2, kind = $3, script_name = $4, environment_name = $5, \
             dead_letter_queue = $6, batch_size = $7, max_retries = $8, retry_delay = $9, max_wait_time_ms = $10, \
             max_concurrency = $11, visibility_timeout_ms = $12, created_on_ms = $13",
            &[
                &id_bytes(queue.0),
                &id_bytes(consumer.id.0),
                &kind,
                &script_name,
                &environment_name,
                &consumer.dead_letter_queue,
                &(settings.batch_size as i32),
                &(settings.max_retries as i32),
                &(settings.retry_delay as i32),
                &(settings.max_wait_time_ms as i32),
                &settings.max_concurrency.map(|value| value as i32),
                &crate::ms(settings.visibility_timeout_ms),
                &crate::ms(created_on_ms),
            ],
        )
        .await
        .map_err(db_error)?;
        touch_queue(&*tx, queue, now_ms).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(consumer)
    }

    pub(crate) async fn consumers(&self, account: AccountId, queue: QueueId) -> WharfResult<Vec<Consumer>> {
        Ok(self.queue(account, queue).await?.consumers)
    }

    pub(crate) async fn remove_consumer(&self, account: AccountId, queue: QueueId, id: ConsumerId) -> WharfResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        load_queue(&*tx, account, queue, true).await?;
        let deleted = tx
            .execute("DELETE FROM consumers WHERE queue_id = $1 AND id = $2", &[&id_bytes(queue.0), &id_bytes(id.0)])
            .await
            .map_err(db_error)?;
        if deleted == 0 {
            return Err(WharfError::ConsumerNotFound);
        }
        touch_queue(&*tx, queue, self.now_ms()).await?;
        tx.commit().await.map_err(db_error)
    }

    pub(crate) async fn purge_queue(&self, account: AccountId, queue: QueueId) -> WharfResult<Queue> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let view = load_queue(&*tx, account, queue, true).await?;
        // Subtract what was deleted rather than zeroing the counters: pushes
        // committing meanwhile keep their messages and their counts.
        let gone = tx
            .query("DELETE FROM messages WHERE queue_id = $1 RETURNING body_len", &[&id_bytes(queue.0)])
            .await
            .map_err(db_error)?;
        let (count, bytes) = crate::housekeeping::sizes(&gone)?;
        let mut deltas = crate::counters::Deltas::default();
        deltas.add(queue, -count, -bytes);
        deltas.apply(&tx).await?;
        tx.execute("UPDATE queues SET last_purge_ms = $2 WHERE id = $1", &[&id_bytes(queue.0), &self.now_ms()])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(view)
    }

    pub(crate) async fn purge_state(&self, account: AccountId, queue: QueueId) -> WharfResult<PurgeStatus> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT last_purge_ms FROM queues WHERE id = $1 AND account_id = $2",
                &[&id_bytes(queue.0), &id_bytes(account.0)],
            )
            .await
            .map_err(db_error)?
            .ok_or(WharfError::QueueNotFound)?;
        let started: Option<i64> = rows::get(&row, "last_purge_ms")?;
        let started_at_ms = started.map(|value| value.max(0) as u64);
        Ok(PurgeStatus { started_at_ms, completed: started_at_ms.is_some() })
    }
}

async fn insert_token<C: GenericClient + Sync>(
    client: &C,
    id: TokenId,
    account: AccountId,
    name: &str,
    scope: Scope,
    secret_hash: &[u8; 32],
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO tokens (id, account_id, name, scope, secret_hash, created_on_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id_bytes(id.0), &id_bytes(account.0), &name, &rows::scope_name(scope), &secret_hash.as_slice(), &now_ms],
        )
        .await?;
    Ok(())
}

async fn touch_queue<C: GenericClient + Sync>(client: &C, queue: QueueId, now_ms: i64) -> WharfResult<()> {
    client
        .execute("UPDATE queues SET modified_on_ms = $2 WHERE id = $1", &[&id_bytes(queue.0), &now_ms])
        .await
        .map_err(db_error)?;
    Ok(())
}
