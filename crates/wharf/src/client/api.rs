//! The v4 REST API over HTTP: requests with the bearer token, envelopes
//! unwrapped, failures turned into [`ClientError`]s that keep the API's code.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::connection::Settings;

/// How long one request may take before the client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Page size used to walk the queue list.
const LIST_PAGE_SIZE: u32 = 100;

#[derive(Debug)]
pub enum ClientError {
    /// The server answered with a v4 failure (exit 1).
    Api { status: u16, code: u64, message: String },
    /// No answer, or one that is not a v4 envelope (exit 1).
    Transport(String),
    /// The request succeeded but left part of the work undone, e.g. acks
    /// answered with warnings (exit 1).
    Partial(String),
    /// Bad flags, input or configuration (exit 2).
    Usage(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api { status, code, message } => write!(f, "{message} (code {code}, http {status})"),
            Self::Transport(message) | Self::Partial(message) | Self::Usage(message) => f.write_str(message),
        }
    }
}

pub struct ApiClient {
    http: reqwest::Client,
    /// `http://host:port/client/v4`
    api_base: String,
    account_base: String,
    token: String,
}

impl ApiClient {
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("wharf-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ClientError::Transport(format!("cannot build the http client: {error}")))?;
        Ok(Self {
            http,
            api_base: settings.api_base.clone(),
            account_base: format!("{}/accounts/{}", settings.api_base, settings.account_id),
            token: settings.token.clone(),
        })
    }

    /// A request to `/accounts/{id}{path}`; returns the whole success
    /// envelope (callers take `result` or `result_info`).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        self.send(method, format!("{}{path}", self.account_base), body).await
    }

    /// A request to `/client/v4{path}`, outside the account prefix (token
    /// and account administration); returns the whole success envelope.
    pub async fn call_root(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        self.send(method, format!("{}{path}", self.api_base), body).await
    }

    async fn send(&self, method: Method, url: String, body: Option<&Value>) -> Result<Value, ClientError> {
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response =
            request.send().await.map_err(|error| ClientError::Transport(format!("{method} {url}: {error}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| ClientError::Transport(format!("{method} {url}: reading the answer: {error}")))?;
        let envelope: Value = serde_json::from_str(&text).map_err(|_| {
            ClientError::Transport(format!(
                "{method} {url}: http {status} with a body that is not JSON: {}",
                excerpt(&text)
            ))
        })?;
        if envelope["success"] == Value::Bool(true) {
            return Ok(envelope);
        }
        let first = &envelope["errors"][0];
        match (first["code"].as_u64(), first["message"].as_str()) {
            (Some(code), Some(message)) => Err(ClientError::Api { status, code, message: message.to_string() }),
            _ => Err(ClientError::Transport(format!(
                "{method} {url}: http {status}, not a v4 envelope: {}",
                excerpt(&text)
            ))),
        }
    }

    /// `result` of a request.
    pub async fn result(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        Ok(self.call(method, path, body).await?["result"].take())
    }

    /// Every queue, walking the pages until `total_count` is reached or a
    /// page comes back empty.
    pub async fn all_queues(&self) -> Result<Vec<Value>, ClientError> {
        let mut queues = Vec::new();
        for page in 1u32.. {
            let mut envelope =
                self.call(Method::GET, &format!("/queues?page={page}&per_page={LIST_PAGE_SIZE}"), None).await?;
            let items = match envelope["result"].take() {
                Value::Array(items) => items,
                other => return Err(ClientError::Transport(format!("queue list result is not an array: {other}"))),
            };
            let total = envelope["result_info"]["total_count"].as_u64();
            let empty = items.is_empty();
            queues.extend(items);
            if empty || total.is_some_and(|total| queues.len() as u64 >= total) || total.is_none() {
                break;
            }
        }
        Ok(queues)
    }

    /// The queue named `name_or_id`: by exact name first, then, if it looks
    /// like an id, by id.
    pub async fn find_queue(&self, name_or_id: &str) -> Result<Value, ClientError> {
        let encoded: String = form_urlencoded::byte_serialize(name_or_id.as_bytes()).collect();
        let found = self.result(Method::GET, &format!("/queues?name={encoded}"), None).await?;
        if let Some(queue) = found.as_array().and_then(|queues| queues.iter().find(|q| q["queue_name"] == name_or_id)) {
            return Ok(queue.clone());
        }
        if name_or_id.len() == 32 && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.result(Method::GET, &format!("/queues/{}", name_or_id.to_ascii_lowercase()), None).await;
        }
        Err(ClientError::Api { status: 404, code: 10104, message: format!("no queue named {name_or_id:?}") })
    }

    /// The id of the queue named `name_or_id`.
    pub async fn queue_id(&self, name_or_id: &str) -> Result<String, ClientError> {
        let queue = self.find_queue(name_or_id).await?;
        queue["queue_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Transport(format!("queue without queue_id: {queue}")))
    }

    /// PATCH `settings` of a queue, keeping the others (merge semantics).
    pub async fn patch_settings(&self, queue_id: &str, settings: Value) -> Result<Value, ClientError> {
        self.result(Method::PATCH, &format!("/queues/{queue_id}"), Some(&json!({ "settings": settings }))).await
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(200).collect()
}
