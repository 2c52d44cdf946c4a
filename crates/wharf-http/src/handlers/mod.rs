//! One function per operation. Each gets the authenticated account, the
//! decoded query and the raw body, and returns the `result` to wrap.

mod admin;
mod messages;
mod queues;
mod subscriptions;

use serde_json::Value;
use wharf_core::{AccountId, Broker, ConsumerId, Limits, QueueId, SubscriptionId, WharfError, WharfResult};

use crate::body::{parse_json, Query};
use crate::endpoint::Endpoint;
use crate::envelope::Success;

/// What every operation may need of the request.
pub struct Context<'a> {
    pub broker: &'a dyn Broker,
    /// Per-queue message counts for `/metrics`.
    pub counts: &'a crate::queue_counts::QueueCounts,
    pub limits: &'a Limits,
    pub account: AccountId,
    pub query: &'a Query,
    pub body: &'a [u8],
}

impl Context<'_> {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> WharfResult<T> {
        parse_json(self.body)
    }
}

pub fn queue_id(raw: &str) -> WharfResult<QueueId> {
    raw.parse().map_err(|_| WharfError::QueueIdMalformed)
}

pub fn consumer_id(raw: &str) -> WharfResult<ConsumerId> {
    raw.parse().map_err(|_| WharfError::ConsumerIdMalformed)
}

pub fn subscription_id(raw: &str) -> WharfResult<SubscriptionId> {
    raw.parse().map_err(|_| WharfError::SubscriptionIdMalformed)
}

fn ok(result: Value) -> WharfResult<Success> {
    Ok(Success::new(result))
}

/// Runs one operation for an authenticated, authorized caller.
pub async fn run(endpoint: &Endpoint, cx: &Context<'_>) -> WharfResult<Success> {
    use Endpoint::*;
    match endpoint {
        ListQueues => queues::list(cx).await,
        CreateQueue => queues::create(cx).await,
        GetQueue { queue } => queues::get(cx, queue_id(queue)?).await,
        ReplaceQueue { queue } => queues::update(cx, queue_id(queue)?, true).await,
        PatchQueue { queue } => queues::update(cx, queue_id(queue)?, false).await,
        DeleteQueue { queue } => queues::delete(cx, queue_id(queue)?).await,
        ListConsumers { queue } => queues::list_consumers(cx, queue_id(queue)?).await,
        CreateConsumer { queue } => queues::create_consumer(cx, queue_id(queue)?).await,
        GetConsumer { queue, consumer } => queues::get_consumer(cx, queue_id(queue)?, consumer_id(consumer)?).await,
        PutConsumer { queue, consumer } => queues::put_consumer(cx, queue_id(queue)?, consumer_id(consumer)?).await,
        DeleteConsumer { queue, consumer } => {
            queues::delete_consumer(cx, queue_id(queue)?, consumer_id(consumer)?).await
        }
        PushMessage { queue } => messages::push(cx, queue_id(queue)?).await,
        PushBatch { queue } => messages::push_batch(cx, queue_id(queue)?).await,
        Pull { queue } => messages::pull(cx, queue_id(queue)?).await,
        Ack { queue } => messages::ack(cx, queue_id(queue)?).await,
        Preview { queue } => messages::preview(cx, queue_id(queue)?).await,
        PreviewAck { queue } => messages::preview_ack(cx, queue_id(queue)?).await,
        Peek { queue } => messages::peek(cx, queue_id(queue)?).await,
        PurgeRefs { queue } => messages::purge_refs(cx, queue_id(queue)?).await,
        Extend { queue } => messages::extend(cx, queue_id(queue)?).await,
        Redrive { queue } => messages::redrive(cx, queue_id(queue)?).await,
        Purge { queue } => queues::purge(cx, queue_id(queue)?).await,
        PurgeStatus { queue } => queues::purge_status(cx, queue_id(queue)?).await,
        Metrics { queue } => queues::metrics(cx, queue_id(queue)?).await,
        ListSubscriptions => subscriptions::list(cx).await,
        CreateSubscription => subscriptions::create(cx).await,
        GetSubscription { subscription } => subscriptions::get(cx, subscription_id(subscription)?).await,
        PatchSubscription { subscription } => subscriptions::patch(cx, subscription_id(subscription)?).await,
        DeleteSubscription { subscription } => subscriptions::delete(cx, subscription_id(subscription)?).await,
        PutR2Notification { .. } | DeleteR2Notification { .. } | GetR2Notification { .. } => {
            Err(WharfError::NotImplemented { operation: "r2 event notifications" })
        }
        ListTokens => admin::list_tokens(cx).await,
        CreateToken => admin::create_token(cx).await,
        RevokeToken { token } => admin::revoke_token(cx, token).await,
        CreateAccount => admin::create_account(cx).await,
    }
}
