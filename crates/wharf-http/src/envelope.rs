//! The Cloudflare v4 envelope around every answer, success or failure.

use axum::http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use wharf_core::WharfError;

/// `result_info` of a paged list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResultInfo {
    pub count: u64,
    pub page: u64,
    pub per_page: u64,
    pub total_count: u64,
    pub total_pages: u64,
}

impl ResultInfo {
    pub fn new(count: usize, page: u32, per_page: u32, total_count: u64) -> Self {
        let per_page = u64::from(per_page.max(1));
        Self {
            count: count as u64,
            page: u64::from(page),
            per_page,
            total_count,
            total_pages: total_count.div_ceil(per_page),
        }
    }
}

/// A successful answer: the `result` and, on lists, `result_info`.
#[derive(Debug)]
pub struct Success {
    result: SuccessResult,
    result_info: Option<ResultInfo>,
}

#[derive(Debug)]
enum SuccessResult {
    Value(Value),
    /// The whole body, already serialized, for hot paths that skip the
    /// `Value` tree.
    Encoded(Vec<u8>),
}

/// The success envelope, borrowing its result so nothing is copied.
#[derive(Serialize)]
struct SuccessEnvelope<'a> {
    success: bool,
    errors: [(); 0],
    messages: [(); 0],
    result: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_info: Option<ResultInfo>,
}

const ENCODED_PREFIX: &[u8] = br#"{"success":true,"errors":[],"messages":[],"result":"#;

impl Success {
    pub fn new(result: Value) -> Self {
        Self { result: SuccessResult::Value(result), result_info: None }
    }

    pub fn paged(result: Value, info: ResultInfo) -> Self {
        Self { result: SuccessResult::Value(result), result_info: Some(info) }
    }

    /// A result serialized by `write_result` (one JSON value) straight into
    /// the response body; `size_hint` pre-sizes the buffer.
    pub fn encoded(size_hint: usize, write_result: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut body = Vec::with_capacity(ENCODED_PREFIX.len() + size_hint + 1);
        body.extend_from_slice(ENCODED_PREFIX);
        write_result(&mut body);
        body.push(b'}');
        Self { result: SuccessResult::Encoded(body), result_info: None }
    }

    /// The whole response body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.result {
            SuccessResult::Value(result) => {
                let envelope =
                    SuccessEnvelope { success: true, errors: [], messages: [], result, result_info: self.result_info };
                // Serializing a `Value` cannot fail: its map keys are strings.
                serde_json::to_vec(&envelope).unwrap_or_default()
            }
            SuccessResult::Encoded(body) => body.clone(),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self.result {
            SuccessResult::Encoded(body) => body,
            SuccessResult::Value(_) => self.to_bytes(),
        }
    }
}

impl IntoResponse for Success {
    fn into_response(self) -> Response {
        bytes_response(StatusCode::OK, self.into_bytes())
    }
}

/// A failed answer. `allow` is set for 405 answers.
#[derive(Debug)]
pub struct Failure {
    pub error: WharfError,
    pub allow: Vec<Method>,
}

impl From<WharfError> for Failure {
    fn from(error: WharfError) -> Self {
        Self { error, allow: Vec::new() }
    }
}

/// The failure body of an error. When the catalogue has a nested cause it
/// goes inside the error entry (`errors[0].error_chain`), where Cloudflare
/// puts it and where wrangler's error rendering looks for it.
pub fn failure_body(error: &WharfError) -> Value {
    let code = error.code();
    let mut entry = json!({"code": code.code, "message": error.to_string()});
    if let (Some(chained), Some(object)) = (error.chained(), entry.as_object_mut()) {
        object.insert("error_chain".to_string(), json!([{"code": chained.code, "message": chained.message}]));
    }
    json!({
        "success": false,
        "errors": [entry],
        "messages": [],
        "result": null,
    })
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.code().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(status, &failure_body(&self.error));
        if self.error == WharfError::Overloaded {
            // Busy now, not broken: a second is long enough for the
            // requests in flight to finish.
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if !self.allow.is_empty() {
            let allowed: Vec<&str> = self.allow.iter().map(Method::as_str).collect();
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
        }
        response
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    // Serializing a `Value` cannot fail: its map keys are strings.
    bytes_response(status, serde_json::to_vec(body).unwrap_or_default())
}

fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_code_message_and_chain() {
        let body = failure_body(&WharfError::MalformedAuthorizationHeader);
        assert_eq!(body["success"], false);
        assert_eq!(body["errors"][0]["code"], 6003);
        assert_eq!(body["errors"][0]["error_chain"][0]["code"], 6111);
        assert!(body.get("error_chain").is_none(), "the chain belongs inside the error entry");
        assert_eq!(body["result"], Value::Null);
        let unchained = failure_body(&WharfError::QueueNotFound);
        assert!(unchained["errors"][0].get("error_chain").is_none());
        assert!(unchained.get("error_chain").is_none());
    }

    #[test]
    fn result_info_counts_pages() {
        let info = ResultInfo::new(2, 2, 2, 5);
        assert_eq!((info.count, info.total_pages), (2, 3));
        assert_eq!(ResultInfo::new(0, 1, 100, 0).total_pages, 0);
    }
}
