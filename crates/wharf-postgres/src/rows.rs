//! Rows to domain records. Column reads use `try_get`, so a schema that does
//! not match the code is an internal error, never a panic.

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;
use wharf_core::model::{
    Account, Consumer, ConsumerKind, ConsumerSettings, ContentType, Queue, QueueSettings, Scope, Subscription,
    TokenRecord,
};
use wharf_core::{AccountId, ConsumerId, MessageId, QueueId, SubscriptionId, TokenId, WharfError, WharfResult};

use crate::db_error;

/// Columns of `queues` in the order [`queue`] reads them.
pub(crate) const QUEUE_COLUMNS: &str = "q.id, q.account_id, q.name, q.created_on_ms, q.modified_on_ms, \
     q.delivery_delay, q.delivery_paused, q.message_retention_period";

/// Columns of `consumers` in the order [`consumer`] reads them.
pub(crate) const CONSUMER_COLUMNS: &str = "c.id, c.queue_id, c.kind, c.script_name, c.environment_name, \
     c.dead_letter_queue, c.batch_size, c.max_retries, c.retry_delay, c.max_wait_time_ms, c.max_concurrency, \
     c.visibility_timeout_ms, c.created_on_ms";

pub(crate) const TOKEN_COLUMNS: &str = "id, account_id, name, scope, secret_hash, created_on_ms";

pub(crate) const SUBSCRIPTION_COLUMNS: &str =
    "id, account_id, name, enabled, source, destination_queue, events, created_at_ms, modified_at_ms";

pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> WharfResult<T> {
    row.try_get(column).map_err(db_error)
}

fn bytes16(row: &Row, column: &str) -> WharfResult<[u8; 16]> {
    let bytes: &[u8] = get(row, column)?;
    bytes.try_into().map_err(|_| WharfError::internal(format!("column {column} is not a 16-byte id")))
}

pub(crate) fn u64_of(row: &Row, column: &str) -> WharfResult<u64> {
    let value: i64 = get(row, column)?;
    Ok(value.max(0) as u64)
}

pub(crate) fn u32_of(row: &Row, column: &str) -> WharfResult<u32> {
    let value: i32 = get(row, column)?;
    Ok(value.max(0) as u32)
}

pub(crate) fn queue_id(row: &Row, column: &str) -> WharfResult<QueueId> {
    bytes16(row, column).map(QueueId::from_bytes)
}

pub(crate) fn message_id(row: &Row, column: &str) -> WharfResult<MessageId> {
    bytes16(row, column).map(MessageId::from_bytes)
}

pub(crate) fn account_id(row: &Row, column: &str) -> WharfResult<AccountId> {
    bytes16(row, column).map(AccountId::from_bytes)
}

/// A queue row without its consumer (see [`queue_with`]).
pub(crate) fn queue(row: &Row) -> WharfResult<Queue> {
    Ok(Queue {
        id: queue_id(row, "id")?,
        account: account_id(row, "account_id")?,
        name: get(row, "name")?,
        created_on_ms: u64_of(row, "created_on_ms")?,
        modified_on_ms: u64_of(row, "modified_on_ms")?,
        settings: QueueSettings {
            delivery_delay: u32_of(row, "delivery_delay")?,
            delivery_paused: get(row, "delivery_paused")?,
            message_retention_period: u32_of(row, "message_retention_period")?,
        },
        consumers: Vec::new(),
    })
}

pub(crate) fn consumer(row: &Row) -> WharfResult<Consumer> {
    let kind_name: &str = get(row, "kind")?;
    let kind = match kind_name {
        "http_pull" => ConsumerKind::HttpPull,
        "worker" => ConsumerKind::Worker {
            script_name: get::<Option<String>>(row, "script_name")?.unwrap_or_default(),
            environment_name: get(row, "environment_name")?,
        },
        other => return Err(WharfError::internal(format!("unknown consumer kind {other:?} in the database"))),
    };
    let max_concurrency: Option<i32> = get(row, "max_concurrency")?;
    Ok(Consumer {
        id: bytes16(row, "id").map(ConsumerId::from_bytes)?,
        queue: queue_id(row, "queue_id")?,
        kind,
        dead_letter_queue: get(row, "dead_letter_queue")?,
        settings: ConsumerSettings {
            batch_size: u32_of(row, "batch_size")?,
            max_retries: u32_of(row, "max_retries")?,
            retry_delay: u32_of(row, "retry_delay")?,
            max_wait_time_ms: u32_of(row, "max_wait_time_ms")?,
            max_concurrency: max_concurrency.map(|value| value.max(0) as u32),
            visibility_timeout_ms: u64_of(row, "visibility_timeout_ms")?,
        },
        created_on_ms: u64_of(row, "created_on_ms")?,
    })
}

/// (kind, script_name, environment_name) columns of a consumer kind.
pub(crate) fn kind_columns(kind: &ConsumerKind) -> (&'static str, Option<&str>, Option<&str>) {
    match kind {
        ConsumerKind::HttpPull => ("http_pull", None, None),
        ConsumerKind::Worker { script_name, environment_name } => {
            ("worker", Some(script_name.as_str()), environment_name.as_deref())
        }
    }
}

pub(crate) fn account(row: &Row) -> WharfResult<Account> {
    Ok(Account { id: account_id(row, "id")?, email: get(row, "email")?, created_on_ms: u64_of(row, "created_on_ms")? })
}

pub(crate) fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "read",
        Scope::Write => "write",
    }
}

pub(crate) fn token(row: &Row) -> WharfResult<TokenRecord> {
    let scope = match get::<&str>(row, "scope")? {
        "read" => Scope::Read,
        "write" => Scope::Write,
        other => return Err(WharfError::internal(format!("unknown token scope {other:?} in the database"))),
    };
    let hash: &[u8] = get(row, "secret_hash")?;
    Ok(TokenRecord {
        id: bytes16(row, "id").map(TokenId::from_bytes)?,
        account: account_id(row, "account_id")?,
        name: get(row, "name")?,
        scope,
        secret_hash: hash.try_into().map_err(|_| WharfError::internal("token hash is not 32 bytes"))?,
        created_on_ms: u64_of(row, "created_on_ms")?,
    })
}

pub(crate) fn subscription(row: &Row) -> WharfResult<Subscription> {
    Ok(Subscription {
        id: bytes16(row, "id").map(SubscriptionId::from_bytes)?,
        account: account_id(row, "account_id")?,
        name: get(row, "name")?,
        enabled: get(row, "enabled")?,
        source: get(row, "source")?,
        destination_queue: queue_id(row, "destination_queue")?,
        events: get(row, "events")?,
        created_at_ms: u64_of(row, "created_at_ms")?,
        modified_at_ms: u64_of(row, "modified_at_ms")?,
    })
}

pub(crate) fn content_type(row: &Row) -> WharfResult<ContentType> {
    let byte: i16 = get(row, "content_type")?;
    u8::try_from(byte)
        .ok()
        .and_then(ContentType::from_byte)
        .ok_or_else(|| WharfError::internal(format!("unknown content type {byte} in the database")))
}
