//! Push: one statement stores the messages of every push in the batch.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use wharf_core::model::{NewMessage, QueueMetrics};
use wharf_core::{validate, AccountId, QueueId, WharfError, WharfResult};

use super::{time_ordered_id, variant, PUSH_STATEMENTS};
use crate::admin::id_bytes;
use crate::combine::places_for;
use crate::rows::{self, u64_of};
use crate::{db_error, prepared, PostgresBroker};

/// Most pushes one statement carries (each up to 100 messages).
const MAX_PUSHES_PER_STATEMENT: usize = 32;

/// What one push statement did.
enum Stored {
    /// The metrics to answer each push of the batch with, in order.
    Yes(Vec<QueueMetrics>),
    /// The backlog (of `bytes`) had no room for the whole batch.
    NoRoom { bytes: u64 },
}

impl PostgresBroker {
    pub(crate) async fn push_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        messages: Vec<NewMessage>,
    ) -> WharfResult<QueueMetrics> {
        validate::messages(&messages, &self.limits)?;
        let places = places_for(messages.len());
        self.pushes
            .run((account, queue), messages, places, MAX_PUSHES_PER_STATEMENT, |batch| {
                self.push_batch(account, queue, batch)
            })
            .await
    }

    /// Answers for each push of `batch`, in order.
    async fn push_batch(
        &self,
        account: AccountId,
        queue: QueueId,
        batch: Vec<Vec<NewMessage>>,
    ) -> Vec<WharfResult<QueueMetrics>> {
        match self.push_statement(account, queue, &batch).await {
            Ok(Stored::Yes(metrics)) => metrics.into_iter().map(Ok).collect(),
            Ok(Stored::NoRoom { bytes }) if batch.len() == 1 => {
                let incoming = batch[0].iter().map(|message| message.body.len() as u64).sum();
                vec![validate::backlog_room(bytes, incoming, &self.limits)
                    .and(Err(WharfError::internal("backlog check disagrees with the statement's")))]
            }
            // Together they do not fit: each on its own, so that those that
            // fit are stored and the others get the limit's error.
            Ok(Stored::NoRoom { .. }) => {
                let mut answers = Vec::with_capacity(batch.len());
                for push in batch {
                    answers.push(Box::pin(self.push_batch(account, queue, vec![push])).await.remove(0));
                }
                answers
            }
            Err(error) => batch.iter().map(|_| Err(error.clone())).collect(),
        }
    }

    /// One statement storing every message of `pushes`, or none of them.
    async fn push_statement(
        &self,
        account: AccountId,
        queue: QueueId,
        pushes: &[Vec<NewMessage>],
    ) -> WharfResult<Stored> {
        let now_ms = self.now_ms();
        let messages = || pushes.iter().flatten();
        let total = messages().count();
        let incoming: i64 = messages().map(|message| message.body.len() as i64).sum();
        let ids: Vec<Vec<u8>> = messages().map(|_| time_ordered_id(now_ms).to_bytes().to_vec()).collect();
        let delays: Vec<Option<i32>> =
            messages().map(|message| message.delay_seconds.map(|delay| delay as i32)).collect();
        let content_types: Vec<i16> = messages().map(|message| message.content_type.to_byte() as i16).collect();
        let bodies: Vec<&[u8]> = messages().map(|message| message.body.as_slice()).collect();
        let limit = i64::try_from(self.limits.max_queue_backlog_bytes).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let cached = self.oldest.fresh(queue, now_ms);
        let stmt = prepared(&client, variant(&PUSH_STATEMENTS, cached)).await?;
        let params: [&(dyn ToSql + Sync); 10] = [
            &id_bytes(queue.0),
            &id_bytes(account.0),
            &now_ms,
            &ids,
            &delays,
            &content_types,
            &bodies,
            &incoming,
            &limit,
            &(total as i64),
        ];
        let row = match client.query_one(&stmt, &params).await {
            Ok(row) => row,
            // The queue was deleted during the statement: its counters' key.
            Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                return Err(WharfError::QueueNotFound)
            }
            Err(error) => return Err(db_error(error)),
        };
        if !rows::get::<bool>(&row, "found")? {
            return Err(WharfError::QueueNotFound);
        }
        let (count, bytes) = (u64_of(&row, "count")?, u64_of(&row, "bytes")?);
        if !rows::get::<bool>(&row, "admitted")? {
            return Ok(Stored::NoRoom { bytes });
        }
        if let Some(at) = rows::get::<Option<i64>>(&row, "next_visible")? {
            self.due.expect(queue, at);
        }
        // An empty queue's oldest message is now this batch's first.
        let looked_up = rows::get::<Option<i64>>(&row, "oldest")?;
        let oldest = match count {
            0 => now_ms.max(0) as u64,
            _ => self.oldest.resolve(queue, looked_up, cached, count, now_ms),
        };
        // Each push is answered as if it ran alone right after the ones
        // before it in the batch.
        let (mut count, mut bytes) = (count, bytes);
        let metrics = pushes
            .iter()
            .map(|push| {
                count += push.len() as u64;
                bytes += push.iter().map(|message| message.body.len() as u64).sum::<u64>();
                QueueMetrics { backlog_count: count, backlog_bytes: bytes, oldest_message_timestamp_ms: oldest }
            })
            .collect();
        Ok(Stored::Yes(metrics))
    }
}
