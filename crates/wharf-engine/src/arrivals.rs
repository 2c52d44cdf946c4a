//! Long-polling pulls parked on a queue, and the pushes that wake them.
//!
//! A push that finds pulls parked on its queue does not start a group
//! commit of its own right away: the pull it wakes logs its delivery
//! records moments later, and that append starts the commit, so the push
//! and the delivery share one fdatasync instead of taking two in a row
//! (push, then delivery). A short grace bounds how long the push waits for
//! that to happen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use wharf_core::QueueId;

use crate::lock;

/// Longest a push waits for a woken pull to start the shared commit before
/// it starts one itself (the pull found nothing, or was cancelled).
pub(crate) const SHARED_COMMIT_GRACE: Duration = Duration::from_millis(1);

#[derive(Default)]
pub(crate) struct Arrival {
    notify: Notify,
    parked: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct Arrivals {
    queues: Mutex<HashMap<QueueId, Arc<Arrival>>>,
}

impl Arrivals {
    fn signal(&self, queue: QueueId) -> Arc<Arrival> {
        Arc::clone(lock(&self.queues).entry(queue).or_default())
    }

    /// Whether a long-polling pull waits on the queue now.
    pub(crate) fn has_parked(&self, queue: QueueId) -> bool {
        lock(&self.queues).get(&queue).is_some_and(|arrival| arrival.parked.load(Ordering::SeqCst) > 0)
    }

    /// Wakes whoever long-polls the queue; cheap when nobody does.
    pub(crate) fn announce(&self, queue: QueueId) {
        if let Some(arrival) = lock(&self.queues).get(&queue) {
            arrival.notify.notify_waiters();
        }
    }

    /// Waits up to `max_wait` for an arrival on the queue. `ready` is asked
    /// after the wait is registered, so an arrival announced between the
    /// caller's empty pull and this wait is not missed (missing one cost a
    /// whole long-poll interval, or the wait for the next push).
    pub(crate) async fn wait(&self, queue: QueueId, max_wait: Duration, ready: impl FnOnce() -> bool) {
        let arrival = self.signal(queue);
        let notified = arrival.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let _parked = Parked::new(&arrival);
        if ready() {
            return;
        }
        let _ = tokio::time::timeout(max_wait, notified).await;
    }
}

/// Counts a parked pull for as long as it lives, also when the pull's
/// future is dropped mid-wait (the client went away).
struct Parked<'a>(&'a Arrival);

impl<'a> Parked<'a> {
    fn new(arrival: &'a Arrival) -> Self {
        arrival.parked.fetch_add(1, Ordering::SeqCst);
        Parked(arrival)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.parked.fetch_sub(1, Ordering::SeqCst);
    }
}
