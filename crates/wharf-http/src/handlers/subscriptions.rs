//! Event subscriptions (#24–#28) with queues as destinations.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::Value;
use wharf_core::broker::NewSubscription;
use wharf_core::limits::defaults;
use wharf_core::model::{Subscription, SubscriptionUpdate};
use wharf_core::{QueueId, SubscriptionId, WharfError, WharfResult};

use super::{ok, queue_id, Context};
use crate::envelope::{ResultInfo, Success};
use crate::render;

const DESTINATION_TYPE: &str = "queues.queue";
/// Page size used to read every subscription before sorting them.
const FETCH_PAGE: u32 = 100;

fn invalid(detail: impl Into<String>) -> WharfError {
    WharfError::JsonInvalid { detail: detail.into() }
}

#[derive(Debug, Deserialize)]
struct DestinationBody {
    #[serde(rename = "type")]
    kind: String,
    queue_id: String,
}

impl DestinationBody {
    fn queue(&self) -> WharfResult<QueueId> {
        if self.kind != DESTINATION_TYPE {
            return Err(invalid(format!("destination.type must be \"{DESTINATION_TYPE}\"")));
        }
        queue_id(&self.queue_id)
    }
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    name: String,
    enabled: bool,
    source: Value,
    destination: DestinationBody,
    events: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PatchBody {
    name: Option<String>,
    enabled: Option<bool>,
    events: Option<Vec<String>>,
    destination: Option<DestinationBody>,
}

fn check_name(name: &str) -> WharfResult<()> {
    if name.trim().is_empty() {
        return Err(invalid("name must not be empty"));
    }
    Ok(())
}

fn check_events(events: &[String]) -> WharfResult<()> {
    if events.is_empty() || events.iter().any(|event| event.is_empty()) {
        return Err(invalid("events must list at least one event name"));
    }
    Ok(())
}

fn check_source(source: &Value) -> WharfResult<()> {
    match source.get("type") {
        Some(Value::String(kind)) if !kind.is_empty() => Ok(()),
        _ => Err(invalid("source must be an object with a \"type\"")),
    }
}

#[derive(Debug, Clone, Copy)]
enum Order {
    CreatedAt,
    Name,
    Enabled,
    Source,
}

fn order(text: Option<&str>) -> WharfResult<Order> {
    match text.unwrap_or("name") {
        "created_at" => Ok(Order::CreatedAt),
        "name" => Ok(Order::Name),
        "enabled" => Ok(Order::Enabled),
        "source" => Ok(Order::Source),
        _ => Err(invalid("order must be one of created_at, name, enabled, source")),
    }
}

fn source_type(subscription: &Subscription) -> &str {
    subscription.source.get("type").and_then(Value::as_str).unwrap_or("")
}

fn compare(order: Order, a: &Subscription, b: &Subscription) -> Ordering {
    let primary = match order {
        Order::CreatedAt => a.created_at_ms.cmp(&b.created_at_ms),
        Order::Name => a.name.cmp(&b.name),
        Order::Enabled => a.enabled.cmp(&b.enabled),
        Order::Source => source_type(a).cmp(source_type(b)),
    };
    // A total order, so pages never overlap or skip.
    primary.then_with(|| a.id.cmp(&b.id))
}

/// Reads every subscription (the broker pages in its own order), sorts them
/// as asked and cuts the requested page.
pub async fn list(cx: &Context<'_>) -> WharfResult<Success> {
    let page = cx.query.number("page", 1, 1..=u32::MAX)?;
    let per_page = cx.query.number("per_page", defaults::SUBSCRIPTION_PAGE_SIZE, 1..=100)?;
    let order = order(cx.query.get("order"))?;
    let descending = match cx.query.get("direction").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        _ => return Err(invalid("direction must be asc or desc")),
    };
    let destination = cx.query.get("queue_id").map(queue_id).transpose()?;
    let mut all: Vec<Subscription> = Vec::new();
    for fetch in 1.. {
        let batch = cx.broker.list_subscriptions(cx.account, destination, fetch, FETCH_PAGE).await?;
        let done = batch.items.is_empty() || all.len() as u64 + batch.items.len() as u64 >= batch.total_count;
        all.extend(batch.items);
        if done {
            break;
        }
    }
    all.sort_by(|a, b| if descending { compare(order, b, a) } else { compare(order, a, b) });
    let total = all.len() as u64;
    let skip = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    let items: Vec<Value> = all.iter().skip(skip).take(per_page as usize).map(render::subscription).collect();
    let info = ResultInfo::new(items.len(), page, per_page, total);
    Ok(Success::paged(Value::Array(items), info))
}

pub async fn create(cx: &Context<'_>) -> WharfResult<Success> {
    let body: CreateBody = cx.json()?;
    check_name(&body.name)?;
    check_source(&body.source)?;
    check_events(&body.events)?;
    let new = NewSubscription {
        name: body.name,
        enabled: body.enabled,
        source: body.source,
        destination_queue: body.destination.queue()?,
        events: body.events,
    };
    ok(render::subscription(&cx.broker.create_subscription(cx.account, &new).await?))
}

pub async fn get(cx: &Context<'_>, id: SubscriptionId) -> WharfResult<Success> {
    ok(render::subscription(&cx.broker.get_subscription(cx.account, id).await?))
}

pub async fn patch(cx: &Context<'_>, id: SubscriptionId) -> WharfResult<Success> {
    let body: PatchBody = cx.json()?;
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(events) = &body.events {
        check_events(events)?;
    }
    let update = SubscriptionUpdate {
        name: body.name,
        enabled: body.enabled,
        events: body.events,
        destination_queue: body.destination.as_ref().map(DestinationBody::queue).transpose()?,
    };
    ok(render::subscription(&cx.broker.update_subscription(cx.account, id, &update).await?))
}

pub async fn delete(cx: &Context<'_>, id: SubscriptionId) -> WharfResult<Success> {
    ok(render::subscription(&cx.broker.delete_subscription(cx.account, id).await?))
}
