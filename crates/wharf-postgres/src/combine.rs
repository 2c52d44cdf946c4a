//! Requests for the same queue that arrive while one of them is in the
//! database run together as one statement.
//!
//! On PostgreSQL each statement costs a backend a fixed amount of work and
//! each commit a WAL flush, whatever the statement carries. So while a push
//! (or pull, or ack) of a queue runs, the next small ones wait in line; when
//! a running one finishes, the first in line runs everything that queued up
//! behind it as one statement, answers the others, and hands on to whoever
//! queued up meanwhile. A request that finds a free place runs at once: this
//! adds no wait that was not already there, it only fills the wait. Big
//! requests (batches of many messages) are mostly row work, not fixed cost:
//! up to [`IN_FLIGHT_BIG`] of them run at once, so they keep using more than
//! one database core.
//!
//! If a request is dropped while it leads (its client went away), the guard
//! hands the line to the next in it, and the requests of the batch it was
//! running get an error: their change may or may not have committed, as
//! with any request whose answer was lost, and the client's retry is safe.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::oneshot;
use wharf_core::{WharfError, WharfResult};

/// What a waiting request is woken with.
enum Wake<R, A> {
    /// Its answer: another request ran it.
    Done(WharfResult<A>),
    /// It leads now: run these (itself first) and answer the rest.
    Lead(Vec<Waiting<R, A>>),
}

struct Waiting<R, A> {
    request: R,
    wake: oneshot::Sender<Wake<R, A>>,
}

/// Statements of one key that may run at once when a big request arrives;
/// a small one waits behind any running statement.
pub(crate) const IN_FLIGHT_BIG: usize = 4;

/// From this many messages a request counts as big.
pub(crate) const BIG_REQUEST: usize = 10;

/// Places a request of `messages` messages may start a statement in.
pub(crate) fn places_for(messages: usize) -> usize {
    if messages >= BIG_REQUEST {
        IN_FLIGHT_BIG
    } else {
        1
    }
}

/// One key's statements: how many run, and who waits.
struct Line<R, A> {
    running: usize,
    waiting: Vec<Waiting<R, A>>,
}

/// Lines of waiting requests, one per key (a queue, or a queue and the
/// request's settings); a key is present while one of its requests runs.
pub(crate) struct Combiner<K, R, A> {
    lines: Mutex<HashMap<K, Line<R, A>>>,
}

impl<K, R, A> Default for Combiner<K, R, A> {
    fn default() -> Self {
        Self { lines: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone, R, A> Combiner<K, R, A> {
    /// Runs `request`, alone or with others of the same key: at once if
    /// fewer than `places` statements of the key run, else in line. `execute`
    /// gets the requests of one batch (never empty, at most `max_batch`) and
    /// returns one answer per request, in order.
    pub async fn run<F, Fut>(&self, key: K, request: R, places: usize, max_batch: usize, execute: F) -> WharfResult<A>
    where
        F: Fn(Vec<R>) -> Fut,
        Fut: Future<Output = Vec<WharfResult<A>>>,
    {
        // Queued behind a running batch, or leading a new line.
        let mut request = Some(request);
        let queued = {
            let mut lines = crate::lock(&self.lines);
            let line = lines.entry(key.clone()).or_insert_with(|| Line { running: 0, waiting: Vec::new() });
            match request.take() {
                Some(request) if line.running >= places => {
                    let (wake, woken) = oneshot::channel();
                    line.waiting.push(Waiting { request, wake });
                    Some(woken)
                }
                own => {
                    line.running += 1;
                    request = own;
                    None
                }
            }
        };
        let mut batch = match (queued, request) {
            (Some(woken), _) => match woken.await {
                Ok(Wake::Done(answer)) => return answer,
                Ok(Wake::Lead(batch)) => batch,
                Err(_) => return Err(interrupted()),
            },
            (None, Some(request)) => vec![Waiting { request, wake: oneshot::channel().0 }],
            (None, None) => return Err(interrupted()),
        };
        let mut guard = Leading { combiner: self, key, handed_on: false };
        // Beyond `max_batch`, the rest wait for the next turn.
        let rest = if batch.len() > max_batch { batch.split_off(max_batch) } else { Vec::new() };
        guard.requeue(rest);
        let (requests, wakes): (Vec<R>, Vec<_>) = batch.into_iter().map(|w| (w.request, w.wake)).unzip();
        let mut answers = execute(requests).await.into_iter();
        let own = answers.next().unwrap_or_else(|| Err(interrupted()));
        for wake in wakes.into_iter().skip(1) {
            let answer = answers.next().unwrap_or_else(|| Err(interrupted()));
            // A request that went away no longer needs its answer.
            let _ = wake.send(Wake::Done(answer));
        }
        guard.hand_on();
        own
    }
}

/// The lead of one key's line; gives it on when done or dropped.
struct Leading<'a, K: Hash + Eq, R, A> {
    combiner: &'a Combiner<K, R, A>,
    key: K,
    handed_on: bool,
}

impl<K: Hash + Eq, R, A> Leading<'_, K, R, A> {
    /// Puts requests back at the front of the line.
    fn requeue(&self, mut waiting: Vec<Waiting<R, A>>) {
        if waiting.is_empty() {
            return;
        }
        let mut lines = crate::lock(&self.combiner.lines);
        if let Some(line) = lines.get_mut(&self.key) {
            waiting.append(&mut line.waiting);
            line.waiting = waiting;
        }
    }

    /// The first in line leads the whole line in this one's place; with
    /// nobody waiting, the place is free (and an idle line removed).
    fn hand_on(&mut self) {
        self.handed_on = true;
        let mut lines = crate::lock(&self.combiner.lines);
        let Some(line) = lines.get_mut(&self.key) else { return };
        let mut waiting = std::mem::take(&mut line.waiting);
        while !waiting.is_empty() {
            let first = waiting.remove(0);
            let wake = first.wake;
            let batch = std::iter::once(Waiting { request: first.request, wake: oneshot::channel().0 })
                .chain(waiting)
                .collect();
            match wake.send(Wake::Lead(batch)) {
                Ok(()) => return,
                // The first went away: its batch comes back; try the next.
                Err(Wake::Lead(back)) => waiting = back.into_iter().skip(1).collect(),
                Err(Wake::Done(_)) => return,
            }
        }
        line.running = line.running.saturating_sub(1);
        if line.running == 0 {
            lines.remove(&self.key);
        }
    }
}

impl<K: Hash + Eq, R, A> Drop for Leading<'_, K, R, A> {
    fn drop(&mut self) {
        if !self.handed_on {
            self.hand_on();
        }
    }
}

fn interrupted() -> WharfError {
    WharfError::BackendUnavailable { detail: "the request was interrupted before its answer; retry it".into() }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_lone_request_runs_alone_and_waiting_ones_run_together() {
        let combiner: Arc<Combiner<u8, u32, u32>> = Arc::default();
        let statements = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for value in 0..20u32 {
            let (combiner, statements) = (combiner.clone(), statements.clone());
            tasks.push(tokio::spawn(async move {
                combiner
                    .run(1, value, 1, 8, |batch: Vec<u32>| {
                        let statements = statements.clone();
                        async move {
                            statements.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            batch.into_iter().map(|v| Ok(v * 10)).collect()
                        }
                    })
                    .await
            }));
        }
        for (value, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.expect("task").expect("answer"), value as u32 * 10, "each gets its own answer");
        }
        let ran = statements.load(Ordering::SeqCst);
        assert!((3..20).contains(&ran), "20 requests in {ran} statements of at most 8");
        assert!(crate::lock(&combiner.lines).is_empty(), "the line is gone once idle");
    }

    #[tokio::test]
    async fn a_dropped_leader_hands_the_line_on() {
        let combiner: Arc<Combiner<u8, u32, u32>> = Arc::default();
        // Every place taken by a statement that never ends.
        let slow: Vec<_> = (0..IN_FLIGHT_BIG as u32)
            .map(|value| {
                let combiner = combiner.clone();
                tokio::spawn(async move {
                    combiner
                        .run(1, value, IN_FLIGHT_BIG, 8, |_batch: Vec<u32>| async {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            Vec::new()
                        })
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiting = {
            let combiner = combiner.clone();
            tokio::spawn(async move {
                combiner
                    .run(1, 99, IN_FLIGHT_BIG, 8, |batch: Vec<u32>| async move { batch.into_iter().map(Ok).collect() })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "it waits while every place is taken");
        slow[0].abort();
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("not stuck").expect("task");
        assert_eq!(answer.expect("answer"), 99);
        for task in slow {
            task.abort();
        }
    }
}
