//! Model-based property test: random sequences of push, pull, ack, retry,
//! redrive to a second queue and back, time steps and crash-and-reopen run
//! against the engine and against a plain in-memory model of the two
//! queues; every observation must agree.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use wharf_core::model::{ConsumerSpec, NewMessage, PullRequest, RedriveRequest, RetryRequest};
use wharf_core::{AccountId, Broker, ManualClock, QueueId};
use wharf_engine::Engine;

const MAX_RETRIES: u32 = 2;
const VISIBILITY_MS: u64 = 1_000;

#[derive(Debug, Clone)]
enum Op {
    Push {
        count: usize,
        delayed: bool,
    },
    Pull {
        batch: u32,
    },
    Ack {
        handle: usize,
    },
    Retry {
        handle: usize,
        delay_seconds: u32,
    },
    Advance {
        ms: u64,
    },
    Reopen,
    /// One pass of the sweeper (delays, lease expiry, segment deletion and
    /// copy-forward): it must leave what the lazy path would.
    Tick,
    /// Every ready message of the consumed queue to the side queue, or back.
    Redrive {
        back: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..4usize, any::<bool>()).prop_map(|(count, delayed)| Op::Push { count, delayed }),
        3 => (1..5u32).prop_map(|batch| Op::Pull { batch }),
        2 => (0..64usize).prop_map(|handle| Op::Ack { handle }),
        1 => (0..64usize, 0..2u32).prop_map(|(handle, delay_seconds)| Op::Retry { handle, delay_seconds }),
        2 => (0..2_500u64).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Tick),
        1 => any::<bool>().prop_map(|back| Op::Redrive { back }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Ready { visible_at: u64 },
    Leased { until: u64 },
}

#[derive(Debug, Clone)]
struct ModelMessage {
    body: String,
    attempts: u32,
    status: Status,
}

/// One queue with an http_pull consumer, `MAX_RETRIES`, no dead letter
/// queue, and a side queue without a consumer that redrives move between.
#[derive(Default)]
struct Model {
    /// By arrival order, which is the engine's delivery order.
    messages: BTreeMap<u64, ModelMessage>,
    /// Bodies in the side queue: never leased, so only their count and
    /// size are observed.
    side: Vec<String>,
    next: u64,
}

impl Model {
    /// Lazy lease expiry, as the engine does on every access.
    fn expire(&mut self, now: u64) {
        let expired: Vec<u64> = self
            .messages
            .iter()
            .filter(|(_, m)| matches!(m.status, Status::Leased { until } if until <= now))
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.fail_delivery(key, now, 0);
        }
    }

    fn fail_delivery(&mut self, key: u64, now: u64, delay_seconds: u32) {
        let Some(message) = self.messages.get_mut(&key) else { return };
        if message.attempts > MAX_RETRIES {
            self.messages.remove(&key);
        } else {
            message.status = Status::Ready { visible_at: now + delay_seconds as u64 * 1000 };
        }
    }

    /// Checks a pull the engine answered: delivery order is best effort, so
    /// the engine may pick any deliverable messages, but exactly as many as
    /// asked for or available, each one deliverable, with its attempt count.
    fn check_pull(&mut self, batch: u32, now: u64, got: &[(String, u32)]) -> Result<(), TestCaseError> {
        self.expire(now);
        let deliverable = self
            .messages
            .values()
            .filter(|m| matches!(m.status, Status::Ready { visible_at } if visible_at <= now))
            .count();
        prop_assert_eq!(got.len(), deliverable.min(batch as usize), "pull returned the wrong number");
        for (body, attempts) in got {
            let key = self.key_of(body);
            prop_assert!(key.is_some(), "pulled {} which the model does not hold", body);
            let message = self.messages.get_mut(&key.unwrap_or_default()).expect("present");
            prop_assert!(
                matches!(message.status, Status::Ready { visible_at } if visible_at <= now),
                "pulled {} which is not deliverable: {:?}",
                body,
                message.status
            );
            prop_assert!(got.iter().filter(|(other, _)| other == body).count() == 1, "{} pulled twice", body);
            message.attempts += 1;
            prop_assert_eq!(*attempts, message.attempts, "attempts of {}", body);
            message.status = Status::Leased { until: now + VISIBILITY_MS };
        }
        Ok(())
    }

    fn key_of(&self, body: &str) -> Option<u64> {
        self.messages.iter().find(|(_, m)| m.body == body).map(|(key, _)| *key)
    }

    fn backlog(&self) -> (u64, u64) {
        (self.messages.len() as u64, self.messages.values().map(|m| m.body.len() as u64).sum())
    }

    fn side_backlog(&self) -> (u64, u64) {
        (self.side.len() as u64, self.side.iter().map(|body| body.len() as u64).sum())
    }

    /// A redrive of up to more messages than there are: every ready one
    /// moves, ready at once with no attempts in its new queue.
    fn redrive(&mut self, back: bool, now: u64) -> u64 {
        if back {
            let moved = std::mem::take(&mut self.side);
            for body in &moved {
                self.next += 1;
                let message = ModelMessage { body: body.clone(), attempts: 0, status: Status::Ready { visible_at: 0 } };
                self.messages.insert(self.next, message);
            }
            return moved.len() as u64;
        }
        let ready: Vec<u64> = self
            .messages
            .iter()
            .filter(|(_, m)| matches!(m.status, Status::Ready { visible_at } if visible_at <= now))
            .map(|(key, _)| *key)
            .collect();
        for key in &ready {
            if let Some(message) = self.messages.remove(key) {
                self.side.push(message.body);
            }
        }
        ready.len() as u64
    }
}

struct Harness {
    dir: tempfile::TempDir,
    clock: ManualClock,
    engine: Engine,
    account: AccountId,
    queue: QueueId,
    side: QueueId,
    /// Every lease handed out: (handle, body, attempts of that delivery,
    /// the model's key of the message then). A redrive makes a message a
    /// new one (new id, new key): leases of its old self no longer apply.
    handles: Vec<(String, String, u32, u64)>,
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let mut spec: ConsumerSpec = pull_consumer(MAX_RETRIES, None);
    spec.settings.visibility_timeout_ms = VISIBILITY_MS;
    let queue = queue_with_consumer(&engine, account, "model", &spec).await;
    let side = engine.create_queue(account, "side", Default::default()).await.expect("side queue").id;
    let mut harness = Harness { dir, clock, engine, account, queue, side, handles: Vec::new() };
    let mut model = Model::default();

    for op in ops {
        let now = harness.clock.now_ms_value();
        match op {
            Op::Push { count, delayed } => {
                let messages: Vec<NewMessage> = (0..count)
                    .map(|_| {
                        model.next += 1;
                        let body = format!("message-{}", model.next);
                        let visible_at = if delayed { now + 2_000 } else { now };
                        let entry =
                            ModelMessage { body: body.clone(), attempts: 0, status: Status::Ready { visible_at } };
                        model.messages.insert(model.next, entry);
                        let mut message = text(&body);
                        message.delay_seconds = Some(if delayed { 2 } else { 0 });
                        message
                    })
                    .collect();
                harness.engine.push(harness.account, harness.queue, messages).await.expect("push");
            }
            Op::Pull { batch } => {
                let request = PullRequest { batch_size: Some(batch), visibility_timeout_ms: None };
                let pulled = harness.engine.pull(harness.account, harness.queue, request).await.expect("pull");
                let got: Vec<(String, u32)> = pulled
                    .messages
                    .iter()
                    .map(|m| (String::from_utf8_lossy(&m.body).into_owned(), m.attempts))
                    .collect();
                model.check_pull(batch, now, &got)?;
                for (message, (body, attempts)) in pulled.messages.iter().zip(got) {
                    let key = model.key_of(&body).unwrap_or_default();
                    harness.handles.push((message.handle.clone(), body, attempts, key));
                }
            }
            Op::Ack { handle } => {
                let Some((lease, body, _, key)) = harness.handles.get(handle).cloned() else { continue };
                model.expire(now);
                let same = model.messages.get(&key).is_some_and(|message| message.body == body);
                let expected = same && model.messages.remove(&key).is_some();
                let outcome = harness.engine.ack(harness.account, harness.queue, &[lease], &[]).await.expect("ack");
                prop_assert_eq!(outcome.ack_count, expected as u64);
            }
            Op::Retry { handle, delay_seconds } => {
                let Some((lease, body, attempts, key)) = harness.handles.get(handle).cloned() else { continue };
                model.expire(now);
                let current = Some(key).filter(|key| {
                    model.messages.get(key).is_some_and(|message| {
                        message.body == body
                            && message.attempts == attempts
                            && matches!(message.status, Status::Leased { .. })
                    })
                });
                if let Some(key) = current {
                    model.fail_delivery(key, now, delay_seconds);
                }
                let retry = RetryRequest { lease_id: lease, delay_seconds: Some(delay_seconds) };
                let outcome = harness.engine.ack(harness.account, harness.queue, &[], &[retry]).await.expect("retry");
                prop_assert_eq!(outcome.retry_count, current.is_some() as u64);
            }
            Op::Advance { ms } => harness.clock.advance_ms(ms),
            Op::Tick => {
                harness.engine.tick().await.expect("tick");
                model.expire(now);
            }
            Op::Redrive { back } => {
                model.expire(now);
                let expected = model.redrive(back, now);
                let (from, to) = if back { (harness.side, harness.queue) } else { (harness.queue, harness.side) };
                let request = RedriveRequest { destination: Some(to), max_messages: 10_000 };
                let outcome = harness.engine.redrive(harness.account, from, request).await.expect("redrive");
                prop_assert_eq!(outcome.moved, expected, "messages moved by a redrive");
            }
            Op::Reopen => {
                // Every call above waited for durability, so dropping the engine
                // loses nothing that was acknowledged. Leases are soft state:
                // each in-flight delivery ends now, as a failed delivery.
                // The old engine must let go of the directory before the new one opens it.
                let placeholder = tempfile::tempdir().expect("tempdir");
                let closed = std::mem::replace(
                    &mut harness.engine,
                    open_tuned(placeholder.path(), &harness.clock, small_segments()),
                );
                drop(closed);
                harness.engine = open_tuned(harness.dir.path(), &harness.clock, small_segments());
                for message in model.messages.values_mut() {
                    if let Status::Leased { until } = &mut message.status {
                        *until = now;
                    }
                }
            }
        }
        let now = harness.clock.now_ms_value();
        model.expire(now);
        let metrics = harness.engine.metrics(harness.account, harness.queue).await.expect("metrics");
        prop_assert_eq!((metrics.backlog_count, metrics.backlog_bytes), model.backlog());
        let side = harness.engine.metrics(harness.account, harness.side).await.expect("side metrics");
        prop_assert_eq!((side.backlog_count, side.backlog_bytes), model.side_backlog());
    }
    Ok(())
}

trait NowValue {
    fn now_ms_value(&self) -> u64;
}

impl NowValue for ManualClock {
    fn now_ms_value(&self) -> u64 {
        wharf_core::Clock::now_ms(self)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run(ops))?;
    }
}
