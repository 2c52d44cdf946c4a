//! Copying forward: a few long-lived messages (long delays, long retention,
//! a consumer that never acks) must not pin old segments, since segments are
//! deleted oldest first. When the oldest segment holds few live messages and
//! newer segments have piled up behind it, its messages are rewritten into
//! the current segment with their state, and the old one can then go.

use std::time::{Duration, Instant};

use wharf_core::{QueueId, WharfResult};

use crate::index::Entry;
use crate::record::Record;
use crate::Engine;

/// Newer segments that must exist before the oldest one is compacted.
const SEGMENTS_BEHIND: u64 = 4;
/// Most live messages a segment may hold to be worth copying forward.
const MAX_LIVE_TO_COPY: u64 = 4096;
/// Finding a segment's messages scans the index, so do it at most this often.
const MIN_INTERVAL: Duration = Duration::from_secs(2);

impl Engine {
    /// Copies the oldest segment's live messages forward if it qualifies.
    /// Returns how many were copied.
    pub(crate) async fn copy_forward_oldest(&self, force: bool) -> WharfResult<usize> {
        {
            let mut last = crate::lock(&self.last_compaction);
            if !force && last.is_some_and(|at| at.elapsed() < MIN_INTERVAL) {
                return Ok(0);
            }
            *last = Some(Instant::now());
        }
        let candidates = {
            let state = self.state();
            let (_, current) = self.log.position();
            let oldest = state.oldest_segment;
            let live = state.segment_live.get(&oldest).copied().unwrap_or(0);
            if current < oldest + SEGMENTS_BEHIND || live == 0 || live > MAX_LIVE_TO_COPY {
                return Ok(0);
            }
            let mut candidates: Vec<(QueueId, u64, Entry)> = Vec::new();
            for (queue, index) in &state.queues {
                for (seq, entry) in index.entries() {
                    // Leased messages are copied on a later pass, once settled.
                    if entry.location.segment as u64 == oldest && !entry.is_leased() {
                        candidates.push((*queue, seq, *entry));
                    }
                }
            }
            candidates
        };
        // Bodies are read without the state lock; anything that changed
        // meanwhile is skipped below.
        let mut bodies = Vec::with_capacity(candidates.len());
        for (queue, seq, entry) in candidates {
            if let Some(body) = self.log.read_body(entry.location, entry.body_len)? {
                bodies.push((queue, seq, entry, body));
            }
        }
        let (lsn, copied) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            let records: Vec<Record> = bodies
                .into_iter()
                .filter(|(queue, seq, entry, _)| {
                    let current = state.queues.get(queue).and_then(|index| index.get(*seq));
                    current.is_some_and(|now| now.location == entry.location && !now.is_leased())
                })
                .map(|(queue, seq, entry, body)| Record::Push {
                    queue,
                    seq,
                    timestamp_ms: entry.timestamp_ms,
                    visible_at_ms: entry.visible_at_ms(),
                    attempts: entry.attempts(),
                    content_type: entry.content_type,
                    body,
                })
                .collect();
            if records.is_empty() {
                return Ok(0);
            }
            (self.commit(&mut state, &records, now_ms)?, records.len())
        };
        self.log.wait_durable(lsn).await?;
        tracing::debug!(copied, "copied messages forward out of the oldest segment");
        Ok(copied)
    }
}
