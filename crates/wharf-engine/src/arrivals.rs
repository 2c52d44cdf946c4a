//! Long-polling pulls waiting on a queue, and the pushes that wake them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use wharf_core::QueueId;

use crate::lock;

#[derive(Default)]
pub(crate) struct Arrivals {
    queues: Mutex<HashMap<QueueId, Arc<Notify>>>,
}

impl Arrivals {
    fn signal(&self, queue: QueueId) -> Arc<Notify> {
        Arc::clone(lock(&self.queues).entry(queue).or_default())
    }

    /// Wakes whoever long-polls the queue; cheap when nobody does.
    pub(crate) fn announce(&self, queue: QueueId) {
        if let Some(signal) = lock(&self.queues).get(&queue) {
            signal.notify_waiters();
        }
    }

    /// Waits up to `max_wait` for an arrival on the queue. `ready` is asked
    /// after the wait is registered, so an arrival announced between the
    /// caller's empty pull and this wait is not missed (missing one cost a
    /// whole long-poll interval, or the wait for the next push).
    pub(crate) async fn wait(&self, queue: QueueId, max_wait: Duration, ready: impl FnOnce() -> bool) {
        let signal = self.signal(queue);
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready() {
            return;
        }
        let _ = tokio::time::timeout(max_wait, notified).await;
    }
}
