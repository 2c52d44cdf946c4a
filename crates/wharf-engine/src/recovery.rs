//! Rebuilding the in-memory state from the catalog and the log segments.
//!
//! Segments are replayed oldest first. A record that is cut short or fails
//! its checksum ends the replay of that segment: everything intact before it
//! is kept, what follows is reported and dropped. In the last segment the
//! damaged tail is truncated so appends continue from clean data.

use std::fs::{self, OpenOptions};
use std::path::Path;

use wharf_core::{WharfError, WharfResult};

use crate::catalog::Catalog;
use crate::log::{list_segments, segment_path, BodyLocation};
use crate::record::{self, DecodeStop, Record, PUSH_FIXED_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::state::State;

/// What recovery found, for the start-up log and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    /// (segment, byte offset, reason, bytes dropped) per damaged place.
    pub damage: Vec<Damage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub segment: u64,
    pub offset: u64,
    pub reason: String,
    pub dropped_bytes: u64,
}

pub struct Recovered {
    pub state: State,
    /// Segment to append to and its valid length (0: start it fresh).
    pub append_segment: u64,
    pub append_len: u64,
    pub report: RecoveryReport,
}

pub fn recover(dir: &Path, now_ms: u64) -> WharfResult<Recovered> {
    fs::create_dir_all(dir).map_err(storage("creating the data directory"))?;
    let catalog = match Catalog::load(dir)? {
        Some(catalog) => catalog,
        None => {
            let catalog = Catalog::new();
            catalog.save(dir)?;
            catalog
        }
    };
    let segments = list_segments(dir).map_err(storage("listing segments"))?;
    let mut state = State::new(catalog, segments.first().copied().unwrap_or(1));
    let mut report = RecoveryReport { segments: segments.len(), ..RecoveryReport::default() };
    let mut append_segment = 1;
    let mut append_len = 0;
    for (position, &segment) in segments.iter().enumerate() {
        let is_last = position + 1 == segments.len();
        let path = segment_path(dir, segment);
        let bytes = fs::read(&path).map_err(storage("reading a segment"))?;
        let valid_len = replay_segment(&mut state, segment, &bytes, now_ms, &mut report);
        if is_last {
            if valid_len == 0 {
                // Even the header is unusable: leave the file for inspection
                // and continue in a new segment.
                append_segment = segment + 1;
            } else {
                if valid_len < bytes.len() as u64 {
                    let file = OpenOptions::new().write(true).open(&path).map_err(storage("opening the tail"))?;
                    file.set_len(valid_len).map_err(storage("truncating a torn tail"))?;
                    file.sync_all().map_err(storage("syncing the truncated tail"))?;
                }
                append_segment = segment;
                append_len = valid_len;
            }
        }
    }
    Ok(Recovered { state, append_segment, append_len, report })
}

/// Replays one segment; returns the length of its intact prefix (0 if the
/// header itself is bad).
fn replay_segment(state: &mut State, segment: u64, bytes: &[u8], now_ms: u64, report: &mut RecoveryReport) -> u64 {
    match record::parse_segment_header(bytes) {
        Ok(number) if number == segment => {}
        Ok(number) => {
            report.damage.push(damage(segment, 0, format!("header names segment {number}"), bytes.len()));
            return 0;
        }
        Err(problem) => {
            report.damage.push(damage(segment, 0, format!("bad segment header: {problem:?}"), bytes.len()));
            return 0;
        }
    }
    let mut offset = SEGMENT_HEADER_LEN as usize;
    loop {
        match record::decode(&bytes[offset..]) {
            Ok((record, len)) => {
                let body = matches!(record, Record::Push { .. }).then(|| BodyLocation {
                    segment: segment as u32,
                    offset: (offset as u64 + RECORD_HEADER_LEN + PUSH_FIXED_LEN) as u32,
                });
                state.apply(&record, body, now_ms);
                report.records += 1;
                offset += len;
            }
            Err(DecodeStop::End) => return offset as u64,
            Err(stop) => {
                let reason = match stop {
                    DecodeStop::Torn => "record cut short (torn write)".to_string(),
                    DecodeStop::BadChecksum => "checksum mismatch".to_string(),
                    DecodeStop::Malformed(what) => format!("malformed record: {what}"),
                    DecodeStop::End => String::new(),
                };
                report.damage.push(damage(segment, offset as u64, reason, bytes.len() - offset));
                return offset as u64;
            }
        }
    }
}

fn damage(segment: u64, offset: u64, reason: String, dropped: usize) -> Damage {
    Damage { segment, offset, reason, dropped_bytes: dropped as u64 }
}

fn storage(context: &'static str) -> impl Fn(std::io::Error) -> WharfError {
    move |error| WharfError::StorageFailed { detail: format!("{context}: {error}") }
}
