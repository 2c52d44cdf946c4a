//! The API conformance suite: each case is an `async fn(&TestServer)` that
//! drives the server through real HTTP. [`crate::api_conformance_suite!`]
//! turns every case into a test of the backend it is given.

pub mod access;
pub mod admin;
pub mod consumers;
pub mod delivery;
pub mod expiry;
pub mod limits;
pub mod messages;
pub mod monitoring;
pub mod queues;
pub mod redrive;
pub mod subscriptions;

use serde_json::Value;

/// A random 32-hex identifier.
pub fn random_hex() -> String {
    format!("{:032x}", wharf_core::QueueId::random().0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`
pub fn is_rfc3339_ms(value: &Value) -> bool {
    let Some(text) = value.as_str() else { return false };
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    bytes.len() == 24
        && digits(0..4)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[19] == b'.'
        && digits(20..23)
        && bytes[23] == b'Z'
}
