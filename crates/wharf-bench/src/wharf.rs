//! The Wharf target: the Cloudflare Queues v4 API over HTTP.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, Uri};
use serde::Deserialize;

use crate::body::{self, BodyHeader};
use crate::error::{BenchError, BenchResult};
use crate::http::{Endpoint, HttpConn};

/// Visibility timeout of the bench consumer: long enough that nothing is
/// redelivered during a run, so every duplicate is a real one.
pub const VISIBILITY_TIMEOUT_MS: u64 = 60_000;

/// A queue created for one workload, with its http_pull consumer.
pub struct WharfQueue {
    endpoint: Arc<Endpoint>,
    account: String,
    queue_id: String,
    consumer_id: String,
    uris: Arc<MessageUris>,
}

struct MessageUris {
    push: Uri,
    batch: Uri,
    pull: Uri,
    ack: Uri,
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

#[derive(Deserialize)]
struct CreatedQueue {
    queue_id: String,
}

#[derive(Deserialize)]
struct CreatedConsumer {
    consumer_id: String,
}

#[derive(Deserialize)]
struct Metrics {
    backlog_count: u64,
}

#[derive(Deserialize)]
struct PullResult<'a> {
    #[serde(borrow)]
    messages: Vec<PulledMessage<'a>>,
}

#[derive(Deserialize)]
struct PulledMessage<'a> {
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(borrow)]
    lease_id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AckResult {
    ack_count: u64,
}

fn decode<'a, T: Deserialize<'a>>(operation: &'static str, bytes: &'a [u8]) -> BenchResult<T> {
    serde_json::from_slice::<Envelope<T>>(bytes)
        .map(|envelope| envelope.result)
        .map_err(|source| BenchError::Decode { operation, source })
}

impl WharfQueue {
    pub async fn create(endpoint: Arc<Endpoint>, account: &str, name: &str) -> BenchResult<Self> {
        let mut conn = HttpConn::connect(endpoint.clone()).await?;
        let queues = endpoint.uri(&format!("/accounts/{account}/queues"))?;
        let body = serde_json::json!({ "queue_name": name }).to_string();
        let created = conn.send("create queue", Method::POST, &queues, body.into()).await?;
        let queue_id = decode::<CreatedQueue>("create queue", &created)?.queue_id;
        let base = format!("/accounts/{account}/queues/{queue_id}");
        let consumer = serde_json::json!({
            "type": "http_pull",
            "settings": { "batch_size": 100, "max_retries": 100, "visibility_timeout_ms": VISIBILITY_TIMEOUT_MS },
        });
        let consumers = endpoint.uri(&format!("{base}/consumers"))?;
        let created = conn.send("create consumer", Method::POST, &consumers, consumer.to_string().into()).await?;
        let consumer_id = decode::<CreatedConsumer>("create consumer", &created)?.consumer_id;
        let uris = MessageUris {
            push: endpoint.uri(&format!("{base}/messages"))?,
            batch: endpoint.uri(&format!("{base}/messages/batch"))?,
            pull: endpoint.uri(&format!("{base}/messages/pull"))?,
            ack: endpoint.uri(&format!("{base}/messages/ack"))?,
        };
        Ok(Self { endpoint, account: account.to_owned(), queue_id, consumer_id, uris: Arc::new(uris) })
    }

    /// Messages not yet acked (ready, leased or delayed).
    pub async fn backlog(&self) -> BenchResult<u64> {
        let mut conn = HttpConn::connect(self.endpoint.clone()).await?;
        let uri = self.endpoint.uri(&format!("/accounts/{}/queues/{}/metrics", self.account, self.queue_id))?;
        let bytes = conn.send("metrics", Method::GET, &uri, Bytes::new()).await?;
        Ok(decode::<Metrics>("metrics", &bytes)?.backlog_count)
    }

    pub async fn delete(&self) -> BenchResult<()> {
        let mut conn = HttpConn::connect(self.endpoint.clone()).await?;
        let base = format!("/accounts/{}/queues/{}", self.account, self.queue_id);
        let consumer = self.endpoint.uri(&format!("{base}/consumers/{}", self.consumer_id))?;
        conn.send("delete consumer", Method::DELETE, &consumer, Bytes::new()).await?;
        conn.send("delete queue", Method::DELETE, &self.endpoint.uri(&base)?, Bytes::new()).await?;
        Ok(())
    }

    pub async fn session(
        &self,
        phase: u8,
        body_len: usize,
        pull_size: usize,
        wait_ms: u64,
    ) -> BenchResult<WharfSession> {
        let pull = serde_json::json!({
            "batch_size": pull_size,
            "visibility_timeout_ms": VISIBILITY_TIMEOUT_MS,
            "wait_time_ms": wait_ms,
        });
        Ok(WharfSession {
            conn: HttpConn::connect(self.endpoint.clone()).await?,
            uris: self.uris.clone(),
            phase,
            body_len,
            request: String::new(),
            offsets: Vec::new(),
            scratch: String::new(),
            pull_body: Bytes::from(pull.to_string()),
            ack_body: Vec::with_capacity(pull_size * 128 + 16),
            staged: 0,
        })
    }
}

/// One task's connection plus its reusable request buffers.
pub struct WharfSession {
    conn: HttpConn,
    uris: Arc<MessageUris>,
    phase: u8,
    body_len: usize,
    /// The push request of the last used size; bodies are patched in place.
    request: String,
    /// Where each body starts in `request`.
    offsets: Vec<usize>,
    scratch: String,
    pull_body: Bytes,
    ack_body: Vec<u8>,
    staged: u64,
}

impl WharfSession {
    fn build_request(&mut self, count: usize) {
        let text = body::body_text(self.phase, self.body_len);
        self.request.clear();
        self.offsets.clear();
        if count != 1 {
            self.request.push_str("{\"messages\":[");
        }
        for index in 0..count {
            if index > 0 {
                self.request.push(',');
            }
            self.request.push_str("{\"content_type\":\"text\",\"body\":\"");
            self.offsets.push(self.request.len());
            self.request.push_str(&text);
            self.request.push_str("\"}");
        }
        if count != 1 {
            self.request.push_str("]}");
        }
    }

    /// Pushes `count` messages numbered from `first_seq`: one message per
    /// request when `count` is 1, else one batch request.
    pub async fn push(&mut self, first_seq: u64, count: usize, sent_us: u64) -> BenchResult<()> {
        if self.offsets.len() != count {
            self.build_request(count);
        }
        for (index, at) in self.offsets.iter().enumerate() {
            body::patch(&mut self.request, *at, &mut self.scratch, first_seq + index as u64, sent_us);
        }
        let payload = Bytes::copy_from_slice(self.request.as_bytes());
        let (operation, uri) = if count == 1 { ("push", &self.uris.push) } else { ("push batch", &self.uris.batch) };
        self.conn.send(operation, Method::POST, uri, payload).await?;
        Ok(())
    }

    /// Pulls one batch, appends the decoded headers to `out` and stages the
    /// leases for the next `ack`.
    pub async fn pull(&mut self, out: &mut Vec<BodyHeader>) -> BenchResult<()> {
        let bytes = self.conn.send("pull", Method::POST, &self.uris.pull, self.pull_body.clone()).await?;
        let result: PullResult<'_> = decode("pull", &bytes)?;
        self.ack_body.clear();
        self.ack_body.extend_from_slice(b"{\"acks\":[");
        for (index, message) in result.messages.iter().enumerate() {
            let header = body::parse(message.body.as_bytes())
                .ok_or_else(|| BenchError::ForeignBody { preview: body::preview(message.body.as_bytes()) })?;
            out.push(header);
            if index > 0 {
                self.ack_body.push(b',');
            }
            self.ack_body.extend_from_slice(b"{\"lease_id\":");
            serde_json::to_writer(&mut self.ack_body, message.lease_id.as_ref())
                .map_err(|source| BenchError::Decode { operation: "pull", source })?;
            self.ack_body.push(b'}');
        }
        self.ack_body.extend_from_slice(b"]}");
        self.staged = result.messages.len() as u64;
        Ok(())
    }

    /// Acks what the last pull returned; returns how many the server acked.
    pub async fn ack(&mut self) -> BenchResult<u64> {
        if self.staged == 0 {
            return Ok(0);
        }
        let payload = Bytes::copy_from_slice(&self.ack_body);
        let bytes = self.conn.send("ack", Method::POST, &self.uris.ack, payload).await?;
        self.staged = 0;
        Ok(decode::<AckResult>("ack", &bytes)?.ack_count)
    }
}
