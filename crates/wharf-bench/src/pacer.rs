//! Precise sleeps for paced producers.
//!
//! Tokio's timer rounds every deadline up to its next millisecond tick, so
//! a paced send left on average about half a millisecond after its
//! scheduled time, and W3 counts from the scheduled time: the load
//! generator's own timer added ~0.5 ms to every delivery latency it
//! reported, for Wharf and pgmq alike. One thread per phase sleeps to each
//! deadline with the kernel's high-resolution timers instead and wakes the
//! waiting task.

use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use tokio::sync::oneshot;

/// A deadline and whom to wake, earliest first in the heap.
struct Sleeper(Instant, oneshot::Sender<()>);

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Sleeper {}
impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.cmp(&self.0)
    }
}

pub struct Pacer {
    requests: mpsc::Sender<Sleeper>,
}

impl Pacer {
    /// Starts the timer thread; it ends when the pacer is dropped.
    pub fn start() -> std::io::Result<Pacer> {
        let (requests, incoming) = mpsc::channel::<Sleeper>();
        std::thread::Builder::new().name("bench-pacer".into()).spawn(move || {
            let mut heap = BinaryHeap::new();
            loop {
                let now = Instant::now();
                while heap.peek().is_some_and(|Sleeper(at, _)| *at <= now) {
                    if let Some(Sleeper(_, wake)) = heap.pop() {
                        let _ = wake.send(());
                    }
                }
                let next = match heap.peek() {
                    Some(Sleeper(at, _)) => incoming.recv_timeout(at.saturating_duration_since(now)),
                    None => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(sleeper) => heap.push(sleeper),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        })?;
        Ok(Pacer { requests })
    }

    /// Resolves at `deadline`, give or take the kernel's timer slack.
    pub async fn sleep_until(&self, deadline: Instant) {
        if deadline <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        if self.requests.send(Sleeper(deadline, wake)).is_err() {
            // The thread is gone: fall back to the coarse timer.
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        let _ = woken.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paced_sleeps_end_close_to_their_deadlines() {
        let pacer = Arc::new(Pacer::start().expect("pacer thread"));
        let start = Instant::now();
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let pacer = Arc::clone(&pacer);
                tokio::spawn(async move {
                    let mut worst = Duration::ZERO;
                    for n in 0..100u64 {
                        let deadline = start + Duration::from_micros((n * 8 + task) * 500);
                        pacer.sleep_until(deadline).await;
                        worst = worst.max(Instant::now() - deadline);
                    }
                    worst
                })
            })
            .collect();
        for task in tasks {
            let worst = task.await.expect("task");
            assert!(worst < Duration::from_millis(20), "a sleep ended {worst:?} late");
        }
    }
}
