//! Bounds the request-body bytes the server holds at once. Every request
//! with a body reserves its declared length (the largest body allowed when
//! it is sent chunked) before the body is read, and keeps the reservation
//! until it is answered. A request that does not fit is refused at once
//! with 429, 10250 and `Retry-After`, rather than queued: under a flood of
//! large pushes memory stays bounded and clients back off.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::header::TRANSFER_ENCODING;
use axum::http::HeaderMap;
use wharf_core::{WharfError, WharfResult};

use crate::body::declared_length;

/// The budget: a plain atomic count of reserved bytes. (A tokio semaphore
/// takes a mutex to give permits back, on every request with a body.)
pub struct Admission {
    reserved: AtomicU64,
    max_bytes: u64,
}

/// Bytes reserved for one request, given back when it is dropped.
pub struct Reservation<'a> {
    reserved: &'a AtomicU64,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(max_bytes: u64) -> Self {
        Self { reserved: AtomicU64::new(0), max_bytes }
    }

    /// Reserves room for this request's body, which may be at most
    /// `body_limit` bytes; `None` when it has none (no length, not chunked).
    pub fn admit(&self, headers: &HeaderMap, body_limit: u64) -> WharfResult<Option<Reservation<'_>>> {
        let wanted = match declared_length(headers) {
            Some(length) => length.min(body_limit),
            None if headers.contains_key(TRANSFER_ENCODING) => body_limit,
            None => 0,
        };
        if wanted == 0 {
            return Ok(None);
        }
        // A body larger than the whole budget (a budget set below
        // `max_request_bytes`) fits only when nothing else is held.
        let bytes = wanted.min(self.max_bytes);
        let before = self.reserved.fetch_add(bytes, Ordering::AcqRel);
        // Handed back at once when it does not fit: the reservation was
        // never granted, and the request changes nothing.
        let reservation = Reservation { reserved: &self.reserved, bytes };
        if before + bytes > self.max_bytes {
            return Err(WharfError::Overloaded);
        }
        Ok(Some(reservation))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::CONTENT_LENGTH;
    use axum::http::HeaderValue;

    use super::*;

    fn with_length(length: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        headers
    }

    #[test]
    fn bodies_are_admitted_until_the_budget_is_spent_and_again_once_answered() {
        let admission = Admission::new(10 * 1024);
        let first = admission.admit(&with_length(6 * 1024), 1 << 20).expect("fits");
        assert!(first.is_some());
        assert_eq!(admission.admit(&with_length(5 * 1024), 1 << 20).err(), Some(WharfError::Overloaded));
        let small = admission.admit(&with_length(4 * 1024), 1 << 20).expect("the rest still fits");
        assert_eq!(admission.admit(&with_length(1), 1 << 20).err(), Some(WharfError::Overloaded), "all spent");
        assert!(admission.admit(&HeaderMap::new(), 1 << 20).expect("no body").is_none());
        drop((first, small));
        assert!(admission.admit(&with_length(10 * 1024), 1 << 20).expect("all free again").is_some());
        let mut chunked = HeaderMap::new();
        chunked.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(admission.admit(&chunked, 4 * 1024).expect("chunked reserves the limit").is_some());
    }
}
