//! Wharf's PostgreSQL backend: a [`Broker`](wharf_core::Broker) for stateless
//! nodes that share one database.
//!
//! Every change commits before the call returns, so a 2xx means committed.
//! All time comes from the injected [`Clock`] and is passed to SQL as
//! parameters (never `now()`), so nodes agree with each other and tests with
//! a manual clock behave like the embedded engine. Several nodes never lease
//! one message twice: pulls and housekeeping lock rows with `FOR UPDATE SKIP
//! LOCKED` inside the transaction that changes them.
//!
//! See `docs/deployment.md` for running several nodes.

/// The CTE `counted` of a statement that removes messages: takes the rows
/// the CTE named `$removed` returned (with their `body_len`) off queue $1's
/// counters, in the slot of the statement's backend.
macro_rules! count_removed_cte {
    ($removed:literal) => {
        concat!(
            "counted AS (
    INSERT INTO queue_counters (queue_id, slot, count, bytes)
    SELECT $1, (pg_backend_pid() % 64)::smallint, -count(*), -coalesce(sum(body_len), 0)::bigint FROM ",
            $removed,
            "
    HAVING count(*) > 0
    ON CONFLICT (queue_id, slot) DO UPDATE
    SET count = queue_counters.count + excluded.count, bytes = queue_counters.bytes + excluded.bytes
    RETURNING 1
)"
        )
    };
}

mod admin;
mod broker;
mod combine;
mod counters;
mod due;
mod hot_path;
mod housekeeping;
mod messages;
mod migrate;
mod oldest;
mod redrive;
mod rows;
mod subscriptions;
mod token_cache;
mod vacuum;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;
use wharf_core::lease::HandleCodec;
use wharf_core::model::{NewMessage, PullResult, QueueMetrics};
use wharf_core::{AccountId, Clock, Limits, QueueId, WharfError, WharfResult};

/// How often each node runs housekeeping (lease expiry, dead-lettering,
/// retention) for every queue, besides the per-queue pass each operation does.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Longest wait for a pooled connection, and for a new one to connect: an
/// exhausted pool or an unreachable database answers with a 503 quickly
/// instead of holding the request.
const POOL_WAIT: Duration = Duration::from_secs(2);

/// Run on every new connection. A statement is prepared once per connection
/// and then runs its generic plan, planned from the table statistics of that
/// moment: for a queue that was near empty then, the planner finds a bitmap
/// scan of the ready index plus a sort of every ready message cheapest, and
/// keeps doing that when the queue holds thousands (a pull then costs as
/// much as the backlog). Without bitmap scans, the pull walks the ready
/// index in order and stops at its batch, whatever the statistics said.
/// Wharf's statements are all index lookups and short ordered walks, which
/// never need bitmap scans.
const SESSION_SETTINGS: &str = "SET enable_bitmapscan = off";

/// A message id as stored (16 bytes).
type MessageKey = Vec<u8>;

/// Default number of connections per node.
pub const DEFAULT_POOL_SIZE: usize = 16;

pub use due::RECHECK_MS;
pub use oldest::OLDEST_TTL_MS;
pub use token_cache::TOKEN_TTL;
pub use vacuum::VACUUM_AFTER_ROWS;

#[derive(Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/database` (key=value strings work too).
    pub database_url: String,
    /// Most connections this node opens.
    pub pool_size: usize,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// A schema to keep every table in (created if missing); `None` uses the
    /// connection's default `search_path`. Lets tests share one database.
    pub schema: Option<String>,
    /// Vacuum the messages table after this node leased or removed this
    /// many rows ([`VACUUM_AFTER_ROWS`] by default; 0: never, see `vacuum`).
    pub vacuum_after_rows: u64,
}

pub struct PostgresBroker {
    pool: Pool,
    limits: Limits,
    clock: Arc<dyn Clock>,
    codec: HandleCodec,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
    tokens: token_cache::TokenCache,
    oldest: oldest::OldestCache,
    due: due::DueTimes,
    pushes: combine::Combiner<(AccountId, QueueId), Vec<NewMessage>, QueueMetrics>,
    pulls: combine::Combiner<hot_path::PullKey, (), PullResult>,
    acks: combine::Combiner<(AccountId, QueueId), Vec<MessageKey>, HashSet<MessageKey>>,
    vacuum: vacuum::VacuumPacer,
}

/// What `wharf serve --backend postgres --database-url URL` calls: at most
/// `pool_size` connections, tables in the connection's default schema.
pub async fn open_from_url(
    database_url: &str,
    pool_size: usize,
    vacuum_after_rows: u64,
    limits: Limits,
    clock: Arc<dyn Clock>,
) -> WharfResult<Arc<PostgresBroker>> {
    PostgresBroker::connect(PostgresConfig {
        database_url: database_url.to_string(),
        pool_size,
        limits,
        clock,
        schema: None,
        vacuum_after_rows,
    })
    .await
}

impl PostgresBroker {
    /// Connects, applies pending migrations and starts the background
    /// housekeeping task on the current Tokio runtime.
    pub async fn connect(config: PostgresConfig) -> WharfResult<Arc<PostgresBroker>> {
        let broker = Arc::new(Self::connect_without_sweeper(config).await?);
        let weak = Arc::downgrade(&broker);
        let handle = tokio::spawn(sweep_forever(weak));
        *lock(&broker.sweeper) = Some(handle);
        Ok(broker)
    }

    /// [`PostgresBroker::connect`] without the background task; the owner
    /// calls `tick` to run due work. Used by tests that control every step.
    pub async fn connect_without_sweeper(config: PostgresConfig) -> WharfResult<PostgresBroker> {
        let mut pg_config = tokio_postgres::Config::from_str(&config.database_url)
            .map_err(|error| unavailable(format!("invalid database url: {error}")))?;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(POOL_WAIT);
        }
        if let Some(schema) = &config.schema {
            check_schema_name(schema)?;
            pg_config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(pg_config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move { client.batch_execute(SESSION_SETTINGS).await.map_err(HookError::Backend) })
            }))
            .build()
            .map_err(|error| WharfError::internal(format!("cannot build connection pool: {error}")))?;
        let mut client = pool.get().await.map_err(pool_error)?;
        migrate::run(&mut client, config.schema.as_deref()).await?;
        let key = migrate::handle_key(&**client).await?;
        drop(client);
        Ok(PostgresBroker {
            pool,
            limits: config.limits,
            clock: config.clock,
            codec: HandleCodec::new(key),
            sweeper: Mutex::new(None),
            tokens: token_cache::TokenCache::default(),
            oldest: oldest::OldestCache::default(),
            due: due::DueTimes::default(),
            pushes: combine::Combiner::default(),
            pulls: combine::Combiner::default(),
            acks: combine::Combiner::default(),
            vacuum: vacuum::VacuumPacer::new(config.vacuum_after_rows),
        })
    }

    /// Vacuums of the messages table this node started and saw to the end.
    pub fn vacuums_completed(&self) -> u64 {
        self.vacuum.completed()
    }

    /// The migrations this crate ships, as (version, name).
    pub fn migrations() -> Vec<(i32, &'static str)> {
        migrate::MIGRATIONS.iter().map(|migration| (migration.version, migration.name)).collect()
    }

    fn now_ms(&self) -> i64 {
        ms(self.clock.now_ms())
    }

    fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    async fn client(&self) -> WharfResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Stops the background task and closes the pool.
    fn stop(&self) {
        if let Some(handle) = lock(&self.sweeper).take() {
            handle.abort();
        }
        self.pool.close();
    }
}

impl Drop for PostgresBroker {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.sweeper).take() {
            handle.abort();
        }
    }
}

async fn sweep_forever(broker: Weak<PostgresBroker>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(broker) = broker.upgrade() else { break };
        if let Err(error) = broker.sweep().await {
            tracing::warn!(%error, "postgres housekeeping pass failed");
        }
    }
}

/// Only plain identifiers, so the name can go into `search_path` and DDL
/// without quoting games.
fn check_schema_name(schema: &str) -> WharfResult<()> {
    let mut chars = schema.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(WharfError::internal(format!("schema name {schema:?} must match [a-z_][a-z0-9_]{{0,62}}")))
    }
}

/// Milliseconds as stored (bigint). Wharf's times fit easily.
fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unavailable(detail: impl Into<String>) -> WharfError {
    WharfError::BackendUnavailable { detail: detail.into() }
}

/// Maps a database error: lost connections, restarts, overload and
/// transaction conflicts are retryable (503); anything else is a bug (500).
fn db_error(error: tokio_postgres::Error) -> WharfError {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection broke or the server could not be reached.
        return unavailable(format!("database connection failed: {error}"));
    };
    let class = &code.code()[..2.min(code.code().len())];
    // 08 connection exception, 40 transaction rollback (serialization,
    // deadlock), 53 insufficient resources, 57 operator intervention
    // (shutdown, restart), 58 system error. A read-only transaction means
    // the node reached a standby (say, the old primary after a failover,
    // before DNS moved): retryable too, not a bug.
    let retryable = matches!(class, "08" | "40" | "53" | "57" | "58")
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
    if retryable {
        return unavailable(format!("database unavailable: {error}"));
    }
    let detail = match error.as_db_error() {
        Some(db) => format!("database error {}: {}", db.code().code(), db.message()),
        None => format!("database error: {error}"),
    };
    WharfError::Internal { detail }
}

fn pool_error(error: PoolError) -> WharfError {
    match error {
        PoolError::Timeout(kind) => unavailable(format!("no database connection available ({kind:?} timed out)")),
        PoolError::Backend(error) => db_error(error),
        PoolError::Closed => unavailable("the connection pool is closed"),
        other => unavailable(format!("database connection failed: {other}")),
    }
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update under these locks is one assignment or insert; a panic
    // elsewhere cannot leave them torn.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connection's prepared statement for `sql`, prepared on first use:
/// later uses skip the parse round trip (each round trip is a switch to a
/// PostgreSQL backend, the main cost of a request).
async fn prepared<C: deadpool_postgres::GenericClient>(
    client: &C,
    sql: &str,
) -> WharfResult<tokio_postgres::Statement> {
    client.prepare_cached(sql).await.map_err(db_error)
}
