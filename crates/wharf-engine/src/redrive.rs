//! DLQ redrive (a Wharf extension): ready messages of one queue move into
//! another as `Move` records, the same record dead-lettering writes, so a
//! redriven message is ready at once in its new queue with no attempts
//! counted, keeps its body where it is on disk and keeps its timestamp.

use wharf_core::model::{RedriveOutcome, RedriveRequest};
use wharf_core::{validate, AccountId, QueueId, WharfError, WharfResult};

use crate::messages::metrics_of;
use crate::record::Record;
use crate::state::State;
use crate::Engine;

impl Engine {
    pub(crate) async fn redrive_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        request: RedriveRequest,
    ) -> WharfResult<RedriveOutcome> {
        let (lsn, outcome) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            let source_name = state.catalog.queue(account, queue)?.name.clone();
            validate::redrive_batch(request.max_messages)?;
            let destination = destination_of(&state, account, queue, &source_name, request.destination)?;
            self.ensure_writable()?;
            let housekeeping = self.housekeep_queue(&mut state, queue, now_ms)?;
            let movable = self.movable(&state, queue, destination, request.max_messages, now_ms)?;
            let records: Vec<Record> = movable
                .into_iter()
                .map(|seq| Record::Move { queue, seq, to_queue: destination, new_seq: state.allocate_seq() })
                .collect();
            let lsn = if records.is_empty() { housekeeping } else { Some(self.commit(&mut state, &records, now_ms)?) };
            let outcome =
                RedriveOutcome { moved: records.len() as u64, destination, metrics: metrics_of(&state, queue) };
            (lsn, outcome)
        };
        if outcome.moved > 0 {
            self.announce_arrivals(outcome.destination);
        }
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).await?;
        }
        Ok(outcome)
    }

    /// The ready messages to move, oldest in line first, as many as the
    /// destination's backlog limit has room for.
    fn movable(
        &self,
        state: &State,
        queue: QueueId,
        destination: QueueId,
        max_messages: u32,
        now_ms: u64,
    ) -> WharfResult<Vec<u64>> {
        let Some(index) = state.queues.get(&queue) else { return Ok(Vec::new()) };
        let ready = index.first_ready(max_messages as usize, now_ms);
        let held = state.queues.get(&destination).map_or(0, |index| index.backlog_bytes());
        let mut room = self.limits.max_queue_backlog_bytes.saturating_sub(held);
        let mut movable = Vec::with_capacity(ready.len());
        for seq in &ready {
            let len = index.get(*seq).map_or(0, |entry| u64::from(entry.body_len));
            if len > room {
                break;
            }
            room -= len;
            movable.push(*seq);
        }
        if movable.is_empty() && !ready.is_empty() {
            return Err(WharfError::QueueStorageLimitExceeded { limit: self.limits.max_queue_backlog_bytes });
        }
        Ok(movable)
    }
}

/// The queue named by the request, or the one whose consumer dead-letters
/// into `queue` (named `source_name`).
fn destination_of(
    state: &State,
    account: AccountId,
    queue: QueueId,
    source_name: &str,
    named: Option<QueueId>,
) -> WharfResult<QueueId> {
    if let Some(destination) = named {
        validate::redrive_destination(queue, destination, state.catalog.queue(account, destination).is_ok())?;
        return Ok(destination);
    }
    let mut feeding: Vec<QueueId> = state
        .catalog
        .queues_of(account)
        .filter(|meta| meta.id != queue)
        .filter(|meta| {
            meta.consumer.as_ref().and_then(|consumer| consumer.dead_letter_queue.as_deref()) == Some(source_name)
        })
        .map(|meta| meta.id)
        .collect();
    feeding.sort();
    validate::default_redrive_destination(source_name, &feeding)
}
