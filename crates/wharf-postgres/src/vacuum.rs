//! Vacuum paced by the node's own work on the messages table.
//!
//! Every lease and every ack leaves a dead row version behind, and its
//! entry in the ready index stays until a vacuum removes it. A pull walks
//! the ready index from the queue's oldest entry, so until then it steps
//! over every message leased since the last vacuum: the queue's head grows
//! pages of dead entries, and a pull at 10,000 messages a second spends
//! most of its work there within seconds. Autovacuum looks at a database
//! once a minute at best (`autovacuum_naptime`), which at that rate is
//! hundreds of thousands of dead entries.
//!
//! So each node counts the rows it leased or removed and, every
//! [`VACUUM_AFTER_ROWS`], vacuums the messages table itself, in the
//! background, on one pooled connection. A session-level advisory lock
//! keeps the nodes of one database from vacuuming at once; a node that
//! finds another one vacuuming skips its turn, since that vacuum clears its
//! rows too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use deadpool_postgres::Pool;

/// Rows leased or removed by a node between two vacuums, by default. At
/// W1's rate that is a vacuum about every second; measured on 2 cores, the
/// pulls' buffer reads per message fell from 27 to 15.5, and the vacuums
/// cost less than the difference (docs/performance.md).
pub const VACUUM_AFTER_ROWS: u64 = 20_000;

/// Taken with a key of the schema's name, so that tests sharing a database
/// in their own schemas do not wait for each other.
const TRY_LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtext('wharf: vacuum ' || current_schema()))";
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock(hashtext('wharf: vacuum ' || current_schema()))";
/// `SKIP_LOCKED`: a table another session holds a conflicting lock on is
/// left for the next turn instead of waited for.
const VACUUM_SQL: &str = "VACUUM (SKIP_LOCKED, TRUNCATE false) messages";

pub(crate) struct VacuumPacer {
    /// 0: never (the operator leaves it to autovacuum).
    after_rows: u64,
    rows_since: AtomicU64,
    running: Arc<AtomicBool>,
    /// Vacuums this node ran to the end (for tests and logs).
    completed: Arc<AtomicU64>,
}

impl VacuumPacer {
    pub(crate) fn new(after_rows: u64) -> Self {
        VacuumPacer { after_rows, rows_since: AtomicU64::new(0), running: Arc::default(), completed: Arc::default() }
    }

    /// Counts `rows` leased or removed; starts a vacuum in the background
    /// when enough have been since the last one and none is running.
    pub(crate) fn note(&self, rows: u64, pool: &Pool) {
        if rows == 0 {
            return;
        }
        let total = self.rows_since.fetch_add(rows, Ordering::Relaxed) + rows;
        if self.after_rows == 0 || total < self.after_rows || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.rows_since.store(0, Ordering::Relaxed);
        let (pool, running, completed) = (pool.clone(), self.running.clone(), self.completed.clone());
        tokio::spawn(async move {
            match vacuum_unless_another_node_does(&pool).await {
                Ok(true) => {
                    completed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => tracing::debug!("another node is vacuuming the messages table"),
                Err(error) => tracing::warn!(%error, "vacuum of the messages table failed"),
            }
            running.store(false, Ordering::Release);
        });
    }

    /// Vacuums this node has run to the end.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }
}

/// Whether this node vacuumed (false: another session holds the lock).
async fn vacuum_unless_another_node_does(pool: &Pool) -> Result<bool, String> {
    let client = pool.get().await.map_err(|error| error.to_string())?;
    let locked: bool =
        client.query_one(TRY_LOCK_SQL, &[]).await.and_then(|row| row.try_get(0)).map_err(|error| error.to_string())?;
    if !locked {
        return Ok(false);
    }
    let vacuumed = client.batch_execute(VACUUM_SQL).await.map_err(|error| error.to_string());
    // If the unlock fails the connection is broken, and its lock went with it.
    let _ = client.query_one(UNLOCK_SQL, &[]).await;
    vacuumed.map(|()| true)
}
