//! A lean HTTP/1.1 client: one kept-alive hyper connection per task, requests
//! built from pre-parsed URIs and shared header values, so the load generator
//! spends its share of the two cores on as little work as possible.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{BenchError, BenchResult};

/// Longest any single request may take; pulls wait at most a second or two.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the API lives and how to authenticate: parsed once, shared by tasks.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port`, for connecting.
    address: String,
    /// The path prefix of the API, e.g. `/client/v4`, without a trailing slash.
    base_path: String,
    host: HeaderValue,
    authorization: HeaderValue,
    json: HeaderValue,
}

impl Endpoint {
    /// Accepts `http://HOST:PORT[/PATH]` only: the bench speaks plain HTTP on
    /// the local machine.
    pub fn parse(url: &str, token: &str) -> BenchResult<Self> {
        let invalid = |reason| BenchError::InvalidUrl { url: url.to_owned(), reason };
        let rest = url.strip_prefix("http://").ok_or(invalid("only http:// urls are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        let address = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
        Ok(Self {
            address,
            base_path: path.to_owned(),
            host: HeaderValue::from_str(authority).map_err(|_| invalid("host is not a valid header value"))?,
            authorization: HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| invalid("token is not a valid header value"))?,
            json: HeaderValue::from_static("application/json"),
        })
    }

    /// The origin-form URI of `path` at the server's root, outside the API
    /// base, e.g. `/metrics`.
    pub fn origin_uri(&self, path: &str) -> BenchResult<Uri> {
        path.parse().map_err(|_| BenchError::InvalidUrl { url: path.to_owned(), reason: "not a valid request path" })
    }

    /// The origin-form URI of `path` below the API base, e.g. `/accounts/…`.
    pub fn uri(&self, path: &str) -> BenchResult<Uri> {
        let full = format!("{}{path}", self.base_path);
        full.parse().map_err(|_| BenchError::InvalidUrl { url: full.clone(), reason: "not a valid request path" })
    }
}

/// One kept-alive connection.
pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Arc<Endpoint>,
}

impl HttpConn {
    pub async fn connect(endpoint: Arc<Endpoint>) -> BenchResult<Self> {
        let stream = TcpStream::connect(&endpoint.address)
            .await
            .map_err(|source| BenchError::Connect { address: endpoint.address.clone(), source })?;
        // Small request/response pairs: Nagle would add delayed-ACK stalls.
        stream.set_nodelay(true).map_err(|source| BenchError::Connect { address: endpoint.address.clone(), source })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| BenchError::Http { operation: "handshake", source })?;
        // The connection task ends when the sender is dropped or the peer closes.
        tokio::spawn(connection);
        Ok(Self { sender, endpoint })
    }

    /// Sends one request and returns the body of a 2xx answer.
    pub async fn send(
        &mut self,
        operation: &'static str,
        method: Method,
        uri: &Uri,
        body: Bytes,
    ) -> BenchResult<Bytes> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.send_inner(operation, method, uri, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(BenchError::Timeout { operation, timeout: REQUEST_TIMEOUT }),
        }
    }

    async fn send_inner(
        &mut self,
        operation: &'static str,
        method: Method,
        uri: &Uri,
        body: Bytes,
    ) -> BenchResult<Bytes> {
        let http = |source| BenchError::Http { operation, source };
        self.sender.ready().await.map_err(http)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.endpoint.host.clone());
        headers.insert(AUTHORIZATION, self.endpoint.authorization.clone());
        headers.insert(CONTENT_TYPE, self.endpoint.json.clone());
        let response = self.sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(http)?.to_bytes();
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
            return Err(BenchError::Status { operation, status: status.as_u16(), body });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_parses_host_port_and_base_path() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8787/client/v4/", "secret").expect("parse");
        assert_eq!(endpoint.address, "127.0.0.1:8787");
        assert_eq!(endpoint.uri("/accounts/a/queues").expect("uri").path(), "/client/v4/accounts/a/queues");
        assert!(Endpoint::parse("https://example.com", "t").is_err());
        assert_eq!(Endpoint::parse("http://localhost/x", "t").expect("parse").address, "localhost:80");
    }
}
