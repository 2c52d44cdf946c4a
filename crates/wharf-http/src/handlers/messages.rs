//! Messages (#12–#20): push, batch, pull (with optional long-poll), ack,
//! preview, preview/ack, peek, purge by ref, extend.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use wharf_core::model::{PullRequest, PullResult};
use wharf_core::{QueueId, WharfResult};

use super::{ok, Context};
use crate::envelope::Success;
use crate::queue_counts::Counts;
use crate::requests::{
    AckBody, BatchBody, BatchSizeBody, ExtendBody, MessageBody, PullBody, PurgeRefsBody, RedriveBody,
};
use crate::{json_out, render};

/// How often a long-poll pull looks again for a message.
const LONG_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Push and batch answer the queue's metrics, written without a `Value` tree.
fn metrics_result(metrics: &wharf_core::model::QueueMetrics) -> WharfResult<Success> {
    Ok(Success::encoded(128, |out| json_out::write_push_result(out, metrics)))
}

pub async fn push(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let message = cx.json::<MessageBody>()?.into_new_message(cx.limits)?;
    let metrics = cx.broker.push(cx.account, queue, vec![message]).await?;
    cx.counts.add(queue, Counts { pushed: 1, ..Counts::default() });
    metrics_result(&metrics)
}

pub async fn push_batch(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let messages = cx.json::<BatchBody>()?.into_new_messages(cx.limits)?;
    let pushed = messages.len() as u64;
    let metrics = cx.broker.push(cx.account, queue, messages).await?;
    cx.counts.add(queue, Counts { pushed, ..Counts::default() });
    metrics_result(&metrics)
}

/// Pulls once; with `wait_time_ms` (a Wharf extension) pulls again whenever
/// the backend signals an arrival, at least every [`LONG_POLL_INTERVAL`],
/// until a message arrives or the wait is over.
pub async fn pull(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: PullBody = cx.json()?;
    let wait = Duration::from_millis(body.wait_ms()?);
    let request = PullRequest {
        batch_size: body.batch_size,
        visibility_timeout_ms: body.visibility_timeout_ms.or(body.visibility_timeout),
    };
    let deadline = tokio::time::Instant::now() + wait;
    let result = loop {
        let result: PullResult = cx.broker.pull(cx.account, queue, request).await?;
        let now = tokio::time::Instant::now();
        if !result.messages.is_empty() || now >= deadline {
            break result;
        }
        // Wake on the backend's arrival signal when it has one; the interval
        // still bounds the wait, for arrivals the signal cannot see (a delay
        // running out) and for one missed between the pull and the wait.
        let wait = LONG_POLL_INTERVAL.min(deadline - now);
        if !cx.broker.wait_for_messages(queue, wait.as_millis() as u64).await {
            tokio::time::sleep(wait).await;
        }
    };
    if !result.messages.is_empty() {
        cx.counts.add(queue, Counts { delivered: result.messages.len() as u64, ..Counts::default() });
    }
    Ok(Success::encoded(render::pull_result_size(&result), |out| render::write_pull_result(out, &result)))
}

pub async fn ack(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: AckBody = cx.json()?;
    let retries = body.retry_requests(cx.limits)?;
    let outcome = cx.broker.ack(cx.account, queue, &body.into_lease_ids(), &retries).await?;
    let (acked, retried) = (outcome.ack_count, outcome.retry_count);
    if acked + retried > 0 {
        cx.counts.add(queue, Counts { acked, retried, ..Counts::default() });
    }
    Ok(Success::encoded(64, |out| {
        json_out::write_ack_result(out, outcome.ack_count, outcome.retry_count, &outcome.warnings)
    }))
}

pub async fn preview(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: BatchSizeBody = cx.json()?;
    let messages = cx.broker.preview(cx.account, queue, body.batch_size()).await?;
    ok(json!({"messages": messages.iter().map(render::leased_message).collect::<Vec<_>>()}))
}

pub async fn preview_ack(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: AckBody = cx.json()?;
    let retries = body.retry_requests(cx.limits)?;
    let outcome = cx.broker.preview_ack(cx.account, queue, &body.into_lease_ids(), &retries).await?;
    ok(json!({"warnings": outcome.warnings}))
}

pub async fn peek(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: BatchSizeBody = cx.json()?;
    let messages = cx.broker.peek(cx.account, queue, body.batch_size()).await?;
    ok(json!({"messages": messages.iter().map(render::peeked_message).collect::<Vec<_>>()}))
}

pub async fn purge_refs(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: PurgeRefsBody = cx.json()?;
    let refs: Vec<String> = body.refs.into_iter().map(|peeked| peeked.reference).collect();
    let warnings: BTreeMap<String, String> = cx.broker.purge_refs(cx.account, queue, &refs).await?;
    ok(json!({"warnings": warnings}))
}

/// Result `{"leases": {old lease id: new lease id}, "warnings": {...}}`.
pub async fn extend(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: ExtendBody = cx.json()?;
    let leases: Vec<String> = body.extend.into_iter().map(|lease| lease.lease_id).collect();
    let outcome = cx.broker.extend(cx.account, queue, &leases, body.visibility_timeout_ms).await?;
    ok(json!({"leases": outcome.extended, "warnings": outcome.warnings}))
}

/// Result `{"moved", "destination_queue_id", "metrics"}`; `metrics` is the
/// redriven queue's after the move, so a client repeats until its
/// `backlog_count` stops falling or `moved` is 0.
pub async fn redrive(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    // Every field has a default, and an empty body parses as `{}`.
    let body: RedriveBody = cx.json()?;
    let outcome = cx.broker.redrive(cx.account, queue, body.into_request()?).await?;
    ok(json!({
        "moved": outcome.moved,
        "destination_queue_id": outcome.destination.to_string(),
        "metrics": render::metrics(&outcome.metrics),
    }))
}
