//! Bounds the request-body bytes the server holds at once. Every request
//! with a body reserves its declared length (the largest body allowed when
//! it is sent chunked) before the body is read, and keeps the reservation
//! until it is answered. A request that does not fit is refused at once
//! with 429, 10250 and `Retry-After`, rather than queued: under a flood of
//! large pushes memory stays bounded and clients back off.

use std::sync::Arc;

use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wharf_core::{WharfError, WharfResult};

/// Reservations are counted in KiB: a u32 of them covers any body allowed.
const UNIT: u64 = 1024;

pub struct Admission {
    permits: Arc<Semaphore>,
    total_units: u64,
}

impl Admission {
    pub fn new(max_inflight_bytes: u64) -> Self {
        let total_units = (max_inflight_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Self { permits: Arc::new(Semaphore::new(total_units as usize)), total_units }
    }

    /// Reserves room for this request's body, which may be at most
    /// `body_limit` bytes; `None` when it has none (no length, not chunked).
    pub fn admit(&self, headers: &HeaderMap, body_limit: u64) -> WharfResult<Option<OwnedSemaphorePermit>> {
        let declared = headers.get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
        let bytes = match declared {
            Some(length) => length.min(body_limit),
            None if headers.contains_key(TRANSFER_ENCODING) => body_limit,
            None => 0,
        };
        if bytes == 0 {
            return Ok(None);
        }
        // A body larger than the whole budget (a budget set below
        // `max_request_bytes`) waits for every other one to finish.
        let units = bytes.div_ceil(UNIT).min(self.total_units);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        match Arc::clone(&self.permits).try_acquire_many_owned(units) {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => Err(WharfError::Overloaded),
        }
    }
}

#[cfg(test)]
mod tests {
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
        let small = admission.admit(&with_length(100), 1 << 20).expect("one KiB still fits");
        assert!(admission.admit(&HeaderMap::new(), 1 << 20).expect("no body").is_none());
        drop((first, small));
        assert!(admission.admit(&with_length(10 * 1024), 1 << 20).expect("all free again").is_some());
        let mut chunked = HeaderMap::new();
        chunked.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(admission.admit(&chunked, 4 * 1024).expect("chunked reserves the limit").is_some());
    }
}
