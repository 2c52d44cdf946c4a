//! The in-process server and a small client for tests.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wharf_core::model::Account;
use wharf_core::{AccountId, Broker, Limits, ManualClock};

/// Where the manual clock starts: 2023-11-14T22:13:20Z.
pub const START_MS: u64 = 1_700_000_000_000;

/// What a conformance factory builds: the broker, and anything that must
/// outlive it (an embedded engine's temporary directory), dropped only after
/// the broker has shut down so a test leaves nothing on disk.
pub struct Backend {
    pub broker: Arc<dyn Broker>,
    keep_alive: Option<Box<dyn Any + Send + Sync>>,
}

impl Backend {
    /// `broker`, with `guard` kept until the server has stopped.
    pub fn with_guard(broker: Arc<dyn Broker>, guard: impl Any + Send + Sync) -> Self {
        Self { broker, keep_alive: Some(Box::new(guard)) }
    }
}

impl From<Arc<dyn Broker>> for Backend {
    fn from(broker: Arc<dyn Broker>) -> Self {
        Self { broker, keep_alive: None }
    }
}

/// A running server: the real router over `broker`, on an ephemeral port.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub account: AccountId,
    pub email: String,
    /// Secret of the account's admin (write) token.
    pub token: String,
    pub clock: ManualClock,
    pub broker: Arc<dyn Broker>,
    pub limits: Limits,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Dropped after the backend shuts down (see [`Backend`]).
    keep_alive: Option<Box<dyn Any + Send + Sync>>,
}

/// An answer: status, headers and the JSON body (checked to be a v4 envelope
/// unless it is `/healthz`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts success and returns `result`.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.body);
        assert_eq!(self.body["success"], true, "{}", self.body);
        self.body["result"].clone()
    }

    /// Asserts a failure with this status and v4 code.
    #[track_caller]
    pub fn fails(&self, status: u16, code: u64) {
        assert_eq!((self.status, self.code()), (status, Some(code)), "unexpected answer: {}", self.body);
        assert_eq!(self.body["success"], false, "{}", self.body);
        assert_eq!(self.body["result"], Value::Null, "{}", self.body);
    }

    pub fn code(&self) -> Option<u64> {
        self.body["errors"][0]["code"].as_u64()
    }
}

/// Checks the v4 envelope shape of a body, success or failure.
#[track_caller]
pub fn assert_envelope(body: &Value) {
    let success = body["success"].as_bool().unwrap_or_else(|| panic!("no success flag: {body}"));
    assert!(body["errors"].is_array() && body["messages"].is_array(), "{body}");
    assert!(body.get("result").is_some(), "{body}");
    if success {
        assert!(body["errors"].as_array().is_some_and(Vec::is_empty), "{body}");
    } else {
        assert_eq!(body["result"], Value::Null, "{body}");
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        assert!(!errors.is_empty(), "{body}");
        for error in errors {
            assert!(error["code"].as_u64().is_some_and(|code| code >= 1000), "{body}");
            assert!(error["message"].as_str().is_some_and(|text| !text.is_empty()), "{body}");
        }
    }
}

impl TestServer {
    /// Builds a backend with `factory` on a fresh manual clock and serves it.
    /// The factory returns an `Arc<dyn Broker>` or a [`Backend`].
    pub async fn start_with<F, Fut, B>(factory: F) -> TestServer
    where
        F: FnOnce(ManualClock) -> Fut,
        Fut: Future<Output = B>,
        B: Into<Backend>,
    {
        let clock = ManualClock::new(START_MS);
        let backend: Backend = factory(clock.clone()).await.into();
        let mut server = Self::start(backend.broker, clock, Limits::cloudflare()).await;
        server.keep_alive = backend.keep_alive;
        server
    }

    /// Serves `broker` (whose clock is `clock`) with an account and an admin token.
    pub async fn start(broker: Arc<dyn Broker>, clock: ManualClock, limits: Limits) -> TestServer {
        let account = Account { id: AccountId::random(), email: "ops@example.com".into(), created_on_ms: START_MS };
        let token = wharf_core::auth::generate_secret();
        broker.ensure_account(&account, &token).await.expect("account is created");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        // The first account is the operator, as with `wharf serve`.
        let router = wharf_http::router(broker.clone(), limits.clone(), account.id);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(wharf_http::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        TestServer {
            base: format!("http://{address}"),
            account: account.id,
            email: account.email,
            token,
            clock,
            broker,
            limits,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown),
            task: Some(task),
            keep_alive: None,
        }
    }

    /// Stops serving and shuts the backend down.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ends cleanly");
        }
        self.broker.shutdown().await.expect("backend shuts down");
        drop(self.keep_alive.take());
    }

    /// Moves time forward and runs the backend's due work.
    pub async fn advance(&self, ms: u64) {
        self.clock.advance_ms(ms);
        self.broker.tick().await.expect("tick");
    }

    /// URL of a path outside any account: `/client/v4{path}`.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}/client/v4{}", self.base, path)
    }

    /// URL of a path under this account: `/client/v4/accounts/{id}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/client/v4/accounts/{}{}", self.base, self.account, path)
    }

    /// Sends a request and decodes the answer, checking the envelope.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("status {status}: body is not json: {:?}", String::from_utf8_lossy(&bytes)));
        assert_envelope(&body);
        Reply { status, headers, body }
    }

    /// A request to an account path with the admin token and a JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a queue and returns its id.
    pub async fn create_queue(&self, name: &str) -> String {
        let queue = self.post("/queues", json!({"queue_name": name})).await.ok();
        queue["queue_id"].as_str().expect("queue_id").to_string()
    }

    /// Creates a queue with an http_pull consumer of these settings.
    pub async fn pull_queue(&self, name: &str, settings: Value) -> String {
        let queue = self.create_queue(name).await;
        let consumer = json!({"type": "http_pull", "settings": settings});
        self.post(&format!("/queues/{queue}/consumers"), consumer).await.ok();
        queue
    }

    pub async fn push_text(&self, queue: &str, text: &str) -> Value {
        self.post(&format!("/queues/{queue}/messages"), json!({"body": text, "content_type": "text"})).await.ok()
    }

    /// Pulls and returns the messages.
    pub async fn pull(&self, queue: &str, body: Value) -> Vec<Value> {
        let result = self.post(&format!("/queues/{queue}/messages/pull"), body).await.ok();
        result["messages"].as_array().cloned().expect("messages array")
    }

    pub async fn ack(&self, queue: &str, acks: &[&str], retries: Value) -> Value {
        let acks: Vec<Value> = acks.iter().map(|lease| json!({"lease_id": lease})).collect();
        self.post(&format!("/queues/{queue}/messages/ack"), json!({"acks": acks, "retries": retries})).await.ok()
    }

    pub async fn metrics(&self, queue: &str) -> Value {
        self.get(&format!("/queues/{queue}/metrics")).await.ok()
    }
}
