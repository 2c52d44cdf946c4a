//! Ack (without retries): one statement deletes what every ack in the batch
//! names.

use std::collections::HashSet;

use tokio_postgres::types::ToSql;
use wharf_core::lease::HandleKind;
use wharf_core::model::AckOutcome;
use wharf_core::{AccountId, QueueId, WharfError, WharfResult};

use super::ACK_SQL;
use crate::admin::id_bytes;
use crate::combine::places_for;
use crate::due::DEFAULT_MAX_RETRIES;
use crate::messages::{warn, GONE};
use crate::{db_error, prepared, rows, PostgresBroker};

/// Most acks one statement carries (each up to 100 leases).
const MAX_ACKS_PER_STATEMENT: usize = 32;

impl PostgresBroker {
    pub(crate) async fn ack_only(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
    ) -> WharfResult<AckOutcome> {
        let claims = self.decode_all(queue, acks, HandleKind::Lease);
        let ids: Vec<Vec<u8>> =
            claims.iter().filter_map(|claims| claims.as_ref().ok()).map(|c| id_bytes(c.message.0)).collect();
        let places = places_for(ids.len());
        let deleted = self
            .acks
            .run((account, queue), ids, places, MAX_ACKS_PER_STATEMENT, |batch| self.ack_batch(account, queue, batch))
            .await?;
        let mut outcome = AckOutcome::default();
        let mut settled = HashSet::new();
        for (lease, claims) in acks.iter().zip(&claims) {
            match claims {
                Ok(claims) if deleted.contains(&id_bytes(claims.message.0)) && settled.insert(claims.message) => {
                    outcome.ack_count += 1;
                }
                Ok(_) => warn(&mut outcome.warnings, lease, GONE),
                Err(problem) => warn(&mut outcome.warnings, lease, problem),
            }
        }
        Ok(outcome)
    }

    /// Deletes the messages every ack of `batch` names; answers each with
    /// the ids it deleted (a message named twice is the first ack's).
    async fn ack_batch(
        &self,
        account: AccountId,
        queue: QueueId,
        batch: Vec<Vec<Vec<u8>>>,
    ) -> Vec<WharfResult<HashSet<Vec<u8>>>> {
        let mut ids: Vec<&Vec<u8>> = batch.iter().flatten().collect();
        // Sorted, so that two statements deleting the same messages lock
        // them in one order.
        ids.sort_unstable();
        ids.dedup();
        let mut deleted = match self.ack_statement(account, queue, &ids).await {
            Ok(deleted) => deleted,
            Err(error) => return batch.iter().map(|_| Err(error.clone())).collect(),
        };
        batch.iter().map(|named| Ok(named.iter().filter_map(|id| deleted.take(id)).collect())).collect()
    }

    async fn ack_statement(
        &self,
        account: AccountId,
        queue: QueueId,
        ids: &[&Vec<u8>],
    ) -> WharfResult<HashSet<Vec<u8>>> {
        let now_ms = self.now_ms();
        let client = self.client().await?;
        let stmt = prepared(&client, ACK_SQL).await?;
        let params: [&(dyn ToSql + Sync); 5] =
            [&id_bytes(queue.0), &id_bytes(account.0), &ids, &now_ms, &DEFAULT_MAX_RETRIES];
        let row = client.query_one(&stmt, &params).await.map_err(db_error)?;
        if !rows::get::<bool>(&row, "found")? {
            return Err(WharfError::QueueNotFound);
        }
        let acked: HashSet<Vec<u8>> = rows::get::<Vec<Vec<u8>>>(&row, "acked")?.into_iter().collect();
        self.vacuum.note(acked.len() as u64, &self.pool);
        Ok(acked)
    }
}
