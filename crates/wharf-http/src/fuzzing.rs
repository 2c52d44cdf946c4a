//! Entry points for the fuzz targets in `fuzz/` and the codec benchmarks:
//! the request-parsing code
//! that faces untrusted bytes, without a server or a storage backend.
//! Every function must return (an error is fine) and never panic.

use axum::http::Method;
use wharf_core::Limits;

use crate::body::parse_json;
use crate::requests::{
    AckBody, BatchBody, BatchSizeBody, ConsumerBody, CreateQueueBody, ExtendBody, MessageBody, PullBody, PurgeBody,
    PurgeRefsBody, UpdateQueueBody,
};

/// Parses `body` as every request body the API accepts and converts each
/// one that parses into the domain request, as the handlers do.
pub fn parse_every_body(body: &[u8]) {
    let limits = Limits::cloudflare();
    if let Ok(create) = parse_json::<CreateQueueBody>(body) {
        let _ = create.settings.map(|settings| settings.or_defaults());
    }
    if let Ok(update) = parse_json::<UpdateQueueBody>(body) {
        let _ = (update.replacement(), update.merge());
    }
    if let Ok(consumer) = parse_json::<ConsumerBody>(body) {
        let _ = consumer.into_spec();
    }
    if let Ok(message) = parse_json::<MessageBody>(body) {
        let _ = message.into_new_message(&limits);
    }
    if let Ok(batch) = parse_json::<BatchBody>(body) {
        let _ = batch.into_new_messages(&limits);
    }
    if let Ok(pull) = parse_json::<PullBody>(body) {
        let _ = pull.wait_ms();
    }
    if let Ok(ack) = parse_json::<AckBody>(body) {
        let _ = ack.retry_requests(&limits);
        let _ = ack.into_lease_ids();
    }
    if let Ok(size) = parse_json::<BatchSizeBody>(body) {
        let _ = size.batch_size();
    }
    let _ = parse_json::<PurgeRefsBody>(body);
    let _ = parse_json::<ExtendBody>(body);
    let _ = parse_json::<PurgeBody>(body);
}

/// Routes an arbitrary method and path.
pub fn route(method: &[u8], path: &str) {
    if let Ok(method) = Method::from_bytes(method) {
        let _ = crate::endpoint::parse(&method, path);
    }
}

/// The decode half of a batch push, as its handler runs it (for benchmarks).
pub fn decode_batch(body: &[u8], limits: &Limits) -> wharf_core::WharfResult<Vec<wharf_core::model::NewMessage>> {
    parse_json::<BatchBody>(body)?.into_new_messages(limits)
}

/// The encode half of a pull: the whole v4 response body (for benchmarks).
pub fn encode_pull(result: &wharf_core::model::PullResult) -> Vec<u8> {
    let size = crate::render::pull_result_size(result);
    crate::envelope::Success::encoded(size, |out| crate::render::write_pull_result(out, result)).to_bytes()
}
