//! The systems under test behind one interface: a queue per workload, and a
//! session (one connection) per task.

use std::sync::Arc;
use std::time::Duration;

use crate::body::BodyHeader;
use crate::error::BenchResult;
use crate::http::Endpoint;
use crate::pgmq::{PgmqQueue, PgmqSession};
use crate::wharf::{WharfQueue, WharfSession};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Wharf,
    Pgmq,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Wharf => "wharf",
            TargetKind::Pgmq => "pgmq",
        }
    }
}

/// How a target is reached.
#[derive(Debug, Clone)]
pub enum Connection {
    Wharf { endpoint: Arc<Endpoint>, account: String, pull_wait_ms: u64, empty_poll_ms: u64 },
    Pgmq { database_url: String, empty_poll_ms: u64 },
}

/// The queue one workload runs on; deleted at the end of the workload.
pub enum Queue {
    Wharf { queue: WharfQueue, pull_wait_ms: u64, empty_poll_ms: u64 },
    Pgmq { queue: PgmqQueue, empty_poll_ms: u64 },
}

impl Queue {
    pub async fn create(connection: &Connection, name: &str) -> BenchResult<Self> {
        Ok(match connection {
            Connection::Wharf { endpoint, account, pull_wait_ms, empty_poll_ms } => Queue::Wharf {
                queue: WharfQueue::create(endpoint.clone(), account, name).await?,
                pull_wait_ms: *pull_wait_ms,
                empty_poll_ms: *empty_poll_ms,
            },
            Connection::Pgmq { database_url, empty_poll_ms } => {
                Queue::Pgmq { queue: PgmqQueue::create(database_url, name).await?, empty_poll_ms: *empty_poll_ms }
            }
        })
    }

    pub async fn backlog(&self) -> BenchResult<u64> {
        match self {
            Queue::Wharf { queue, .. } => queue.backlog().await,
            Queue::Pgmq { queue, .. } => queue.backlog().await,
        }
    }

    pub async fn delete(&self) -> BenchResult<()> {
        match self {
            Queue::Wharf { queue, .. } => queue.delete().await,
            Queue::Pgmq { queue, .. } => queue.delete().await,
        }
    }

    /// Opens one connection for a task of `phase`.
    pub async fn session(&self, phase: u8, body_len: usize, pull_size: usize) -> BenchResult<Session> {
        Ok(match self {
            Queue::Wharf { queue, pull_wait_ms, empty_poll_ms } => Session::Wharf {
                session: queue.session(phase, body_len, pull_size, *pull_wait_ms).await?,
                // A long poll already waited on the server; a short poll sleeps here.
                empty_poll: Duration::from_millis(if *pull_wait_ms == 0 { *empty_poll_ms } else { 0 }),
            },
            Queue::Pgmq { queue, empty_poll_ms } => Session::Pgmq {
                session: queue.session(phase, body_len, pull_size).await?,
                empty_poll: Duration::from_millis(*empty_poll_ms),
            },
        })
    }
}

pub enum Session {
    Wharf {
        session: WharfSession,
        empty_poll: Duration,
    },
    /// pgmq has no long poll: an empty read is followed by a short sleep.
    Pgmq {
        session: PgmqSession,
        empty_poll: Duration,
    },
}

impl Session {
    pub async fn push(&mut self, first_seq: u64, count: usize, sent_us: u64) -> BenchResult<()> {
        match self {
            Session::Wharf { session, .. } => session.push(first_seq, count, sent_us).await,
            Session::Pgmq { session, .. } => session.push(first_seq, count, sent_us).await,
        }
    }

    /// Pulls one batch into `out`; the leases are staged for `ack`.
    pub async fn pull(&mut self, out: &mut Vec<BodyHeader>) -> BenchResult<()> {
        match self {
            Session::Wharf { session, .. } => session.pull(out).await,
            Session::Pgmq { session, .. } => session.pull(out).await,
        }
    }

    pub async fn ack(&mut self) -> BenchResult<u64> {
        match self {
            Session::Wharf { session, .. } => session.ack().await,
            Session::Pgmq { session, .. } => session.ack().await,
        }
    }

    /// Called after a pull that returned nothing.
    pub async fn idle(&mut self) {
        let (Session::Wharf { empty_poll, .. } | Session::Pgmq { empty_poll, .. }) = self;
        if !empty_poll.is_zero() {
            tokio::time::sleep(*empty_poll).await;
        }
    }
}
