//! Who waits for which group commit.
//!
//! Every LSN belongs to one group commit: the one being written and synced
//! now, or the open one collecting appends for the next sync. A request
//! waits on its own group's signal only, so a finished sync wakes exactly
//! the requests it made durable. (A broadcast of the durable LSN woke every
//! waiter on every sync, including all those whose records were still
//! waiting for the next one; each such wake-up is a task poll and often a
//! thread wake-up for nothing.)

use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

/// One group commit's outcome, shared by every request whose records are in it.
#[derive(Default)]
pub(super) struct Batch {
    outcome: OnceLock<Result<(), String>>,
    done: Notify,
}

impl Batch {
    /// Publishes the outcome and wakes the group's waiters. The first
    /// outcome stays.
    pub(super) fn complete(&self, outcome: Result<(), String>) {
        let _ = self.outcome.set(outcome);
        self.done.notify_waiters();
    }

    pub(super) async fn wait(&self) -> Result<(), String> {
        // Registered before the outcome is looked at: `complete` sets the
        // outcome before notifying, so either the look sees it or the
        // notification reaches this waiter.
        let notified = self.done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(outcome) = self.outcome.get() {
            return outcome.clone();
        }
        notified.await;
        self.outcome.get().cloned().unwrap_or_else(|| Err("group commit ended without an outcome".into()))
    }
}

/// What a wait for an LSN has to do.
pub(super) enum Wait {
    Ready,
    Failed(String),
    On(Arc<Batch>),
}

/// How far the log is durable and which group holds each later LSN. Kept
/// under the log's append lock, so an LSN handed out by an append is always
/// in the open group at that moment.
#[derive(Default)]
pub(super) struct Durability {
    durable_lsn: u64,
    /// The group being written: its last LSN and its signal.
    flushing: Option<(u64, Arc<Batch>)>,
    open: Arc<Batch>,
    /// Set once the flusher has stopped: nothing past `durable_lsn` will
    /// ever become durable.
    stopped: Option<String>,
}

impl Durability {
    pub(super) fn wait_for(&self, lsn: u64) -> Wait {
        if lsn <= self.durable_lsn {
            return Wait::Ready;
        }
        if let Some(failure) = &self.stopped {
            return Wait::Failed(failure.clone());
        }
        match &self.flushing {
            Some((last, batch)) if lsn <= *last => Wait::On(Arc::clone(batch)),
            _ => Wait::On(Arc::clone(&self.open)),
        }
    }

    /// The open group, whose last LSN is `last_lsn`, starts being written;
    /// later appends join a new one.
    pub(super) fn start_flush(&mut self, last_lsn: u64) -> Arc<Batch> {
        debug_assert!(self.flushing.is_none(), "one group is written at a time");
        let batch = std::mem::take(&mut self.open);
        self.flushing = Some((last_lsn, Arc::clone(&batch)));
        batch
    }

    /// The group being written is durable.
    pub(super) fn finish_flush(&mut self) {
        if let Some((last, _)) = self.flushing.take() {
            self.durable_lsn = last;
        }
    }

    /// The flusher stops: the groups not yet durable fail with `failure`,
    /// as does every later wait past the durable LSN.
    pub(super) fn stop(&mut self, failure: &str) -> Vec<Arc<Batch>> {
        if self.stopped.is_none() {
            self.stopped = Some(failure.to_string());
        }
        let mut failed: Vec<Arc<Batch>> = self.flushing.take().map(|(_, batch)| batch).into_iter().collect();
        failed.push(Arc::clone(&self.open));
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(wait: Wait) -> Arc<Batch> {
        match wait {
            Wait::On(batch) => batch,
            Wait::Ready => panic!("expected a wait, got ready"),
            Wait::Failed(failure) => panic!("expected a wait, got failure {failure}"),
        }
    }

    #[tokio::test]
    async fn a_sync_wakes_its_own_group_and_not_the_next() {
        let mut durability = Durability::default();
        // LSNs 1-2 are appended, then their group starts being written.
        let first = durability.start_flush(2);
        // LSN 3 is appended while it is written: it joins the next group.
        let waits_for_first = batch_of(durability.wait_for(2));
        let waits_for_next = batch_of(durability.wait_for(3));
        assert!(Arc::ptr_eq(&waits_for_first, &first));
        assert!(!Arc::ptr_eq(&waits_for_next, &first));

        let next_waiter = tokio::spawn(async move { waits_for_next.wait().await });
        tokio::task::yield_now().await;
        durability.finish_flush();
        first.complete(Ok(()));
        assert_eq!(waits_for_first.wait().await, Ok(()));
        assert!(matches!(durability.wait_for(2), Wait::Ready));
        // The next group's waiter is still waiting: its sync has not run.
        tokio::task::yield_now().await;
        assert!(!next_waiter.is_finished());

        let second = durability.start_flush(3);
        durability.finish_flush();
        second.complete(Ok(()));
        assert_eq!(next_waiter.await.ok(), Some(Ok(())));
    }

    #[tokio::test]
    async fn a_stopped_flusher_fails_every_wait_past_the_durable_lsn() {
        let mut durability = Durability::default();
        let first = durability.start_flush(1);
        durability.finish_flush();
        first.complete(Ok(()));
        let written = durability.start_flush(2);
        let open = batch_of(durability.wait_for(3));
        for batch in durability.stop("disk gone") {
            batch.complete(Err("disk gone".into()));
        }
        assert_eq!(written.wait().await, Err("disk gone".into()));
        assert_eq!(open.wait().await, Err("disk gone".into()));
        assert!(matches!(durability.wait_for(1), Wait::Ready));
        assert!(matches!(durability.wait_for(4), Wait::Failed(failure) if failure == "disk gone"));
    }
}
