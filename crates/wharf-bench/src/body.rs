//! Message bodies: a fixed-size text whose header carries the phase, the
//! sequence number and the send time, so a consumer can count duplicates and
//! losses and measure push-to-pull latency without any shared state but the
//! body itself. Bodies are built once per task and patched in place.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

const MARKER: &str = "wb p=";
const SEQ_DIGITS: usize = 10;
const SENT_DIGITS: usize = 16;
/// `wb p=P seq=SSSSSSSSSS us=UUUUUUUUUUUUUUUU ` then padding.
const PHASE_AT: usize = MARKER.len();
const SEQ_AT: usize = PHASE_AT + 1 + " seq=".len();
const SENT_AT: usize = SEQ_AT + SEQ_DIGITS + " us=".len();
pub const HEADER_LEN: usize = SENT_AT + SENT_DIGITS + 1;

/// What a consumer reads back from a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyHeader {
    pub phase: u8,
    pub seq: u64,
    pub sent_us: u64,
}

/// Microseconds since the Unix epoch: the clock producers and consumers share.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_micros() as u64).unwrap_or(0)
}

/// A body text of `len` bytes (at least the header) for `phase`, seq 0.
pub fn body_text(phase: u8, len: usize) -> String {
    let mut text = String::with_capacity(len.max(HEADER_LEN));
    let _ = write!(text, "{MARKER}{} seq={:0SEQ_DIGITS$} us={:0SENT_DIGITS$} ", phase % 10, 0, 0);
    while text.len() < len {
        text.push('x');
    }
    text
}

/// Rewrites the seq and send time of the body that starts at `at` in `text`.
/// Same-length ASCII replacements, so no reallocation.
pub fn patch(text: &mut String, at: usize, scratch: &mut String, seq: u64, sent_us: u64) {
    scratch.clear();
    let _ = write!(scratch, "{:0SEQ_DIGITS$}", seq % 10u64.pow(SEQ_DIGITS as u32));
    text.replace_range(at + SEQ_AT..at + SEQ_AT + SEQ_DIGITS, scratch);
    scratch.clear();
    let _ = write!(scratch, "{:0SENT_DIGITS$}", sent_us % 10u64.pow(SENT_DIGITS as u32));
    text.replace_range(at + SENT_AT..at + SENT_AT + SENT_DIGITS, scratch);
}

/// Finds the header near the start of `raw` (a plain body, or a body inside
/// JSON quotes or a jsonb value) and decodes it.
pub fn parse(raw: &[u8]) -> Option<BodyHeader> {
    let window = &raw[..raw.len().min(16 + MARKER.len())];
    let start = window.windows(MARKER.len()).position(|w| w == MARKER.as_bytes())?;
    let header = raw.get(start..start + HEADER_LEN)?;
    let phase = header[PHASE_AT].checked_sub(b'0').filter(|digit| *digit < 10)?;
    Some(BodyHeader {
        phase,
        seq: digits(&header[SEQ_AT..SEQ_AT + SEQ_DIGITS])?,
        sent_us: digits(&header[SENT_AT..SENT_AT + SENT_DIGITS])?,
    })
}

fn digits(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |value, byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit < 10)?;
        Some(value * 10 + u64::from(digit))
    })
}

/// Up to 40 characters of an unexpected body, for an error message.
pub fn preview(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patched_body_parses_back_and_keeps_its_length() {
        let mut text = body_text(3, 1024);
        let mut scratch = String::new();
        patch(&mut text, 0, &mut scratch, 123_456, 1_700_000_000_123_456);
        assert_eq!(text.len(), 1024);
        let header = parse(text.as_bytes()).expect("header");
        assert_eq!(header, BodyHeader { phase: 3, seq: 123_456, sent_us: 1_700_000_000_123_456 });
    }

    #[test]
    fn header_is_found_inside_json_quotes_and_jsonb() {
        let text = body_text(1, 64);
        let quoted = format!("\u{1}\"{text}\"");
        assert_eq!(parse(quoted.as_bytes()).map(|h| h.phase), Some(1));
        assert_eq!(parse(b"{\"hello\":1}"), None);
        assert_eq!(parse(b"wb p=1 seq=12"), None, "a truncated header is not a header");
    }
}
