//! DLQ redrive (a Wharf extension), in one transaction: the source queue is
//! brought up to date, its oldest ready messages are locked (skipping rows
//! another transaction holds, so concurrent redrives never move a message
//! twice) and moved the way dead-lettering moves them.

use deadpool_postgres::GenericClient;
use wharf_core::model::{RedriveOutcome, RedriveRequest};
use wharf_core::{validate, AccountId, QueueId, WharfError, WharfResult};

use crate::admin::id_bytes;
use crate::counters::{metrics_of, Deltas};
use crate::housekeeping::move_messages;
use crate::rows;
use crate::{db_error, prepared, PostgresBroker};

impl PostgresBroker {
    pub(crate) async fn redrive_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        request: RedriveRequest,
    ) -> WharfResult<RedriveOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let context = self.context(&tx, account, queue).await?;
        validate::redrive_batch(request.max_messages)?;
        let destination = destination_of(&tx, account, queue, request.destination).await?;
        let now_ms = self.now_ms();
        let mut deltas = Deltas::default();
        self.housekeep(&tx, &context, now_ms, &mut deltas).await?;
        let ready = tx
            .query(
                &prepared(
                    &tx,
                    "SELECT id, body_len FROM messages \
                     WHERE queue_id = $1 AND lease_expiry_ms = 0 AND NOT delayed AND visible_at_ms <= $2 \
                     ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED",
                )
                .await?,
                &[&id_bytes(queue.0), &now_ms, &i64::from(request.max_messages)],
            )
            .await
            .map_err(db_error)?;
        let held = metrics_of(&tx, destination).await?.backlog_bytes;
        let mut room = self.limits.max_queue_backlog_bytes.saturating_sub(held);
        let mut ids = Vec::with_capacity(ready.len());
        for row in &ready {
            let len = rows::get::<i32>(row, "body_len")?.max(0) as u64;
            if len > room {
                break;
            }
            room -= len;
            ids.push(rows::get::<Vec<u8>>(row, "id")?);
        }
        if ids.is_empty() && !ready.is_empty() {
            return Err(WharfError::QueueStorageLimitExceeded { limit: self.limits.max_queue_backlog_bytes });
        }
        let moved = move_messages(&tx, queue, destination, &ids, now_ms, &mut deltas).await?;
        deltas.apply(&tx).await?;
        let metrics = metrics_of(&tx, queue).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(RedriveOutcome { moved, destination, metrics })
    }
}

/// The queue named by the request, or the one whose consumer dead-letters
/// into `queue`.
async fn destination_of<C: GenericClient + Sync>(
    client: &C,
    account: AccountId,
    queue: QueueId,
    named: Option<QueueId>,
) -> WharfResult<QueueId> {
    let account_bytes = id_bytes(account.0);
    if let Some(destination) = named {
        let found = client
            .query_opt(
                &prepared(client, "SELECT 1 FROM queues WHERE id = $1 AND account_id = $2").await?,
                &[&id_bytes(destination.0), &account_bytes],
            )
            .await
            .map_err(db_error)?;
        validate::redrive_destination(queue, destination, found.is_some())?;
        return Ok(destination);
    }
    let source = client
        .query_one(&prepared(client, "SELECT name FROM queues WHERE id = $1").await?, &[&id_bytes(queue.0)])
        .await
        .map_err(db_error)?;
    let source_name: String = rows::get(&source, "name")?;
    let feeding = client
        .query(
            &prepared(
                client,
                "SELECT q.id FROM queues q JOIN consumers c ON c.queue_id = q.id \
                 WHERE q.account_id = $1 AND c.dead_letter_queue = $2 AND q.id <> $3 ORDER BY q.id",
            )
            .await?,
            &[&account_bytes, &source_name, &id_bytes(queue.0)],
        )
        .await
        .map_err(db_error)?;
    let feeding: Vec<QueueId> = feeding.iter().map(|row| rows::queue_id(row, "id")).collect::<WharfResult<_>>()?;
    validate::default_redrive_destination(&source_name, &feeding)
}
