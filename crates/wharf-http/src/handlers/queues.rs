//! Queues (#1–#6), consumers (#7–#11), purge (#21–#22) and metrics (#23).

use serde_json::Value;
use wharf_core::limits::defaults;
use wharf_core::model::{Consumer, QueueListRequest};
use wharf_core::{ConsumerId, QueueId, WharfError, WharfResult};

use super::{ok, Context};
use crate::envelope::{ResultInfo, Success};
use crate::render;
use crate::requests::{ConsumerBody, CreateQueueBody, PurgeBody, UpdateQueueBody};

/// Largest `per_page` of a queue list.
const MAX_QUEUES_PER_PAGE: u32 = 1000;

pub async fn list(cx: &Context<'_>) -> WharfResult<Success> {
    let request = QueueListRequest {
        names: cx.query.all("name").into_iter().filter(|name| !name.is_empty()).collect(),
        page: cx.query.number("page", 1, 1..=u32::MAX)?,
        per_page: cx.query.number("per_page", defaults::PAGE_SIZE, 1..=MAX_QUEUES_PER_PAGE)?,
    };
    let page = cx.broker.list_queues(cx.account, &request).await?;
    let items: Vec<Value> = page.items.iter().map(render::queue).collect();
    let info = ResultInfo::new(items.len(), request.page, request.per_page, page.total_count);
    Ok(Success::paged(Value::Array(items), info))
}

pub async fn create(cx: &Context<'_>) -> WharfResult<Success> {
    let body: CreateQueueBody = cx.json()?;
    let settings = body.settings.unwrap_or_default().or_defaults();
    let queue = cx.broker.create_queue(cx.account, &body.queue_name, settings).await?;
    ok(render::queue(&queue))
}

pub async fn get(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    ok(render::queue(&cx.broker.get_queue(cx.account, queue).await?))
}

/// PUT (`replace`) overwrites every setting; PATCH merges.
pub async fn update(cx: &Context<'_>, queue: QueueId, replace: bool) -> WharfResult<Success> {
    let body: UpdateQueueBody = cx.json()?;
    let update = if replace { body.replacement() } else { body.merge() };
    ok(render::queue(&cx.broker.update_queue(cx.account, queue, &update).await?))
}

pub async fn delete(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    cx.broker.delete_queue(cx.account, queue).await?;
    cx.counts.forget(queue);
    ok(Value::Null)
}

/// Consumers are rendered with their queue's name, so look it up once.
async fn queue_name(cx: &Context<'_>, queue: QueueId) -> WharfResult<String> {
    Ok(cx.broker.get_queue(cx.account, queue).await?.name)
}

fn render_consumer(consumer: &Consumer, name: &str) -> WharfResult<Success> {
    ok(render::consumer(consumer, name))
}

pub async fn list_consumers(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let consumers = cx.broker.list_consumers(cx.account, queue).await?;
    let name = queue_name(cx, queue).await?;
    ok(Value::Array(consumers.iter().map(|consumer| render::consumer(consumer, &name)).collect()))
}

pub async fn create_consumer(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let spec = cx.json::<ConsumerBody>()?.into_spec()?;
    let consumer = cx.broker.create_consumer(cx.account, queue, &spec).await?;
    render_consumer(&consumer, &queue_name(cx, queue).await?)
}

pub async fn get_consumer(cx: &Context<'_>, queue: QueueId, id: ConsumerId) -> WharfResult<Success> {
    let consumer = cx.broker.get_consumer(cx.account, queue, id).await?;
    render_consumer(&consumer, &queue_name(cx, queue).await?)
}

pub async fn put_consumer(cx: &Context<'_>, queue: QueueId, id: ConsumerId) -> WharfResult<Success> {
    let spec = cx.json::<ConsumerBody>()?.into_spec()?;
    let consumer = cx.broker.put_consumer(cx.account, queue, id, &spec).await?;
    render_consumer(&consumer, &queue_name(cx, queue).await?)
}

pub async fn delete_consumer(cx: &Context<'_>, queue: QueueId, id: ConsumerId) -> WharfResult<Success> {
    cx.broker.delete_consumer(cx.account, queue, id).await?;
    ok(Value::Null)
}

pub async fn purge(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    let body: PurgeBody = cx.json()?;
    if body.delete_messages_permanently != Some(true) {
        return Err(WharfError::PurgeNotConfirmed);
    }
    ok(render::queue(&cx.broker.purge(cx.account, queue).await?))
}

pub async fn purge_status(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    ok(render::purge_status(&cx.broker.purge_status(cx.account, queue).await?))
}

pub async fn metrics(cx: &Context<'_>, queue: QueueId) -> WharfResult<Success> {
    ok(render::metrics(&cx.broker.metrics(cx.account, queue).await?))
}
