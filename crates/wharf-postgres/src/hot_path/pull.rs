//! Pull: one statement leases the batches of every pull in the batch.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use wharf_core::lease::HandleKind;
use wharf_core::model::{PullRequest, PullResult, QueueMetrics};
use wharf_core::{validate, AccountId, QueueId, WharfError, WharfResult};

use super::{variant, PULL_STATEMENTS};
use crate::admin::id_bytes;
use crate::combine::places_for;
use crate::due::DUE_SQL;
use crate::rows::{self, u64_of};
use crate::{db_error, ms, prepared, PostgresBroker};

/// Most pulls one statement serves (each up to 100 messages).
const MAX_PULLS_PER_STATEMENT: usize = 32;

/// Pulls run together only with pulls of the same queue asking the same.
pub(crate) type PullKey = (AccountId, QueueId, Option<u32>, Option<u64>);

impl PostgresBroker {
    pub(crate) async fn pull_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        request: PullRequest,
    ) -> WharfResult<PullResult> {
        if let Err(invalid) = self.check_pull_request(&request) {
            // The queue's own problems come first, as in the engine.
            self.pull_context(account, queue).await?;
            return Err(invalid);
        }
        let key = (account, queue, request.batch_size, request.visibility_timeout_ms);
        // Without a batch size the consumer's applies, 5 by default: small.
        let places = places_for(request.batch_size.unwrap_or(1) as usize);
        self.pulls
            .run(key, (), places, MAX_PULLS_PER_STATEMENT, |batch| async move {
                match self.pull_statement(account, queue, &request, batch.len()).await {
                    Ok(results) => results.into_iter().map(Ok).collect(),
                    Err(error) => batch.iter().map(|_| Err(error.clone())).collect(),
                }
            })
            .await
    }

    /// One statement leasing up to `pulls` batches; one result per pull, in
    /// order, the oldest messages going to the first.
    async fn pull_statement(
        &self,
        account: AccountId,
        queue: QueueId,
        request: &PullRequest,
        pulls: usize,
    ) -> WharfResult<Vec<PullResult>> {
        let now_ms = self.now_ms();
        let client = self.client().await?;
        let cached = self.oldest.fresh(queue, now_ms);
        let stmt = prepared(&client, variant(&PULL_STATEMENTS, cached)).await?;
        let batch_size = request.batch_size.map(i64::from);
        let timeout_ms = request.visibility_timeout_ms.map(ms);
        let (queue_bytes, account_bytes) = (id_bytes(queue.0), id_bytes(account.0));
        let pulls_param = pulls as i64;
        let params: [&(dyn ToSql + Sync); 6] =
            [&queue_bytes, &account_bytes, &now_ms, &batch_size, &timeout_ms, &pulls_param];
        let found = if self.due.is_due(queue, now_ms) {
            let due = prepared(&client, DUE_SQL).await?;
            // Polled together, the two are sent back to back: one round trip.
            let (housekept, found) =
                tokio::join!(self.run_due(&client, &due, &queue_bytes, now_ms), client.query(&stmt, &params));
            let found = found.map_err(db_error)?;
            self.settle_due(account, queue, now_ms, housekept).await?;
            found
        } else {
            client.query(&stmt, &params).await.map_err(db_error)?
        };
        let first = found.first().ok_or(WharfError::QueueNotFound)?;
        if !rows::get::<bool>(first, "pull_consumer")? {
            return Err(WharfError::PullConsumerMissing);
        }
        if rows::get::<bool>(first, "paused")? {
            return Err(WharfError::DeliveryPaused);
        }
        let each = usize::try_from(rows::get::<i64>(first, "batch_size")?).unwrap_or(1).max(1);
        let lease_ms: i64 = rows::get(first, "lease_ms")?;
        let backlog_count = u64_of(first, "backlog_count")?;
        let looked_up = rows::get::<Option<i64>>(first, "oldest")?;
        let metrics = QueueMetrics {
            backlog_count,
            backlog_bytes: u64_of(first, "backlog_bytes")?,
            oldest_message_timestamp_ms: self.oldest.resolve(queue, looked_up, cached, backlog_count, now_ms),
        };
        let leased: Vec<Row> = found.into_iter().filter(is_message).collect();
        if !leased.is_empty() {
            self.due.expect(queue, now_ms.saturating_add(lease_ms));
            self.vacuum.note(leased.len() as u64, &self.pool);
        }
        let mut views = self.views(queue, &leased, HandleKind::Lease)?.into_iter();
        Ok((0..pulls).map(|_| PullResult { messages: views.by_ref().take(each).collect(), metrics }).collect())
    }

    fn check_pull_request(&self, request: &PullRequest) -> WharfResult<()> {
        if let Some(batch_size) = request.batch_size {
            validate::pull_batch_size(batch_size, &self.limits)?;
        }
        if let Some(timeout_ms) = request.visibility_timeout_ms {
            validate::visibility_timeout(timeout_ms, &self.limits)?;
        }
        Ok(())
    }

    /// The queue's context, checked as a pull checks it.
    async fn pull_context(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        let client = self.client().await?;
        let context = self.context(&client, account, queue).await?;
        if !context.has_pull_consumer {
            return Err(WharfError::PullConsumerMissing);
        }
        if context.delivery_paused {
            return Err(WharfError::DeliveryPaused);
        }
        Ok(())
    }
}

/// Whether a row of the pull statement carries a leased message (with none,
/// the statement returns one row of NULL message columns).
fn is_message(row: &Row) -> bool {
    matches!(row.try_get::<_, Option<&[u8]>>("id"), Ok(Some(_)))
}
