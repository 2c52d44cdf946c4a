//! Exact backlog metrics without counting rows: every transaction that adds
//! or removes messages records its deltas here and applies them before it
//! commits. Rows are spread over slots so that concurrent writers rarely
//! wait on one row: a statement writes to the slot of its backend's pid
//! (`pg_backend_pid() % 64`, as the one-statement paths in `hot_path` and
//! `due` do), so one transaction uses one slot; it visits queues in id
//! order, so two transactions cannot deadlock on counters.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use wharf_core::model::QueueMetrics;
use wharf_core::{QueueId, WharfResult};

use crate::admin::id_bytes;
use crate::rows::u64_of;
use crate::{db_error, prepared};

/// Changes to (message count, body bytes) per queue, not yet applied.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    changes: BTreeMap<QueueId, (i64, i64)>,
}

impl Deltas {
    pub fn add(&mut self, queue: QueueId, count: i64, bytes: i64) {
        if count == 0 && bytes == 0 {
            return;
        }
        let entry = self.changes.entry(queue).or_default();
        entry.0 += count;
        entry.1 += bytes;
    }

    /// Applies the deltas inside the caller's transaction.
    pub async fn apply<C: GenericClient + Sync>(&mut self, client: &C) -> WharfResult<()> {
        for (queue, (count, bytes)) in std::mem::take(&mut self.changes) {
            if count == 0 && bytes == 0 {
                continue;
            }
            let upsert = prepared(
                client,
                "INSERT INTO queue_counters (queue_id, slot, count, bytes) \
                     VALUES ($1, (pg_backend_pid() % 64)::smallint, $2, $3) \
                     ON CONFLICT (queue_id, slot) DO UPDATE \
                     SET count = queue_counters.count + $2, bytes = queue_counters.bytes + $3",
            )
            .await?;
            client.execute(&upsert, &[&id_bytes(queue.0), &count, &bytes]).await.map_err(db_error)?;
        }
        Ok(())
    }
}

/// Backlog of every message not yet acked or dead-lettered: ready, leased
/// and delayed alike. Includes the caller's own applied changes.
pub(crate) async fn metrics_of<C: GenericClient + Sync>(client: &C, queue: QueueId) -> WharfResult<QueueMetrics> {
    let stmt = prepared(
        client,
        "SELECT coalesce(sum(count), 0)::bigint AS count, coalesce(sum(bytes), 0)::bigint AS bytes, \
             coalesce((SELECT timestamp_ms FROM messages WHERE queue_id = $1 ORDER BY id LIMIT 1), 0) AS oldest \
             FROM queue_counters WHERE queue_id = $1",
    )
    .await?;
    let row = client.query_one(&stmt, &[&id_bytes(queue.0)]).await.map_err(db_error)?;
    Ok(QueueMetrics {
        backlog_count: u64_of(&row, "count")?,
        backlog_bytes: u64_of(&row, "bytes")?,
        oldest_message_timestamp_ms: u64_of(&row, "oldest")?,
    })
}

/// Every queue of the account with its backlog, in one read-only statement
/// (per-queue figures of `GET /metrics`). Unlike the API's metrics call it
/// runs no housekeeping first: what it shows is at most one sweep (a
/// second) behind, and a scrape of thousands of queues writes nothing.
pub(crate) async fn account_backlogs<C: GenericClient + Sync>(
    client: &C,
    account: wharf_core::AccountId,
) -> WharfResult<Vec<wharf_core::model::QueueBacklog>> {
    let stmt = prepared(
        client,
        "SELECT q.id, q.name, q.delivery_paused, \
             coalesce((SELECT sum(c.count) FROM queue_counters c WHERE c.queue_id = q.id), 0)::bigint AS count, \
             coalesce((SELECT sum(c.bytes) FROM queue_counters c WHERE c.queue_id = q.id), 0)::bigint AS bytes, \
             coalesce((SELECT m.timestamp_ms FROM messages m WHERE m.queue_id = q.id ORDER BY m.id LIMIT 1), 0) \
                 AS oldest \
             FROM queues q WHERE q.account_id = $1",
    )
    .await?;
    let rows = client.query(&stmt, &[&id_bytes(account.0)]).await.map_err(db_error)?;
    rows.iter()
        .map(|row| {
            Ok(wharf_core::model::QueueBacklog {
                id: crate::rows::queue_id(row, "id")?,
                name: crate::rows::get(row, "name")?,
                delivery_paused: crate::rows::get(row, "delivery_paused")?,
                metrics: QueueMetrics {
                    backlog_count: u64_of(row, "count")?,
                    backlog_bytes: u64_of(row, "bytes")?,
                    oldest_message_timestamp_ms: u64_of(row, "oldest")?,
                },
            })
        })
        .collect()
}
