//! Request bodies and query strings. Bodies are read as bytes whatever the
//! Content-Type says (wrangler sends JSON as `text/plain`), bounded by
//! `Limits::max_request_bytes`, then parsed; a body that does not parse
//! takes two steps so that bad JSON (10208) and JSON of the wrong shape
//! (10207) get different codes.

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wharf_core::WharfError;

/// The body length the request declares (`Content-Length`), if readable.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
}

/// Reads the whole body, refusing more than `limit` bytes. A body that
/// arrived in one piece is handed on as it is, not copied.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, WharfError> {
    let too_large = WharfError::RequestTooLarge { limit };
    if declared_length(headers).is_some_and(|length| length > limit) {
        return Err(too_large);
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match axum::body::to_bytes(body, limit_usize).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            let is_limit = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
                || error.into_inner().is::<http_body_util::LengthLimitError>();
            if is_limit {
                Err(too_large)
            } else {
                Err(WharfError::JsonMalformed { detail: "the request body could not be read".to_string() })
            }
        }
    }
}

/// Parses a JSON body; an empty (or all-whitespace) body counts as `{}`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WharfError> {
    // The common case in one pass, straight into the request type: building
    // a `Value` tree first cost a map, keys and a copy of every body of a
    // batch. Only a body that fails it takes the two steps, which tell bad
    // JSON from JSON of the wrong shape, so every error (and every
    // acceptance, duplicate keys included) is exactly what they give.
    let is_object = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if is_object {
        if let Ok(parsed) = serde_json::from_slice(bytes) {
            return Ok(parsed);
        }
    }
    let value = parse_value(bytes)?;
    from_value(value)
}

/// Parses bytes into a JSON value: 10208 if they are not UTF-8 JSON.
pub fn parse_value(bytes: &[u8]) -> Result<Value, WharfError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|error| WharfError::JsonMalformed { detail: format!("body is not utf-8: {error}") })?;
    serde_json::from_str(text).map_err(|error| WharfError::JsonMalformed { detail: error.to_string() })
}

/// Converts a JSON value into the request type: 10207 if its shape is wrong.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, WharfError> {
    if !value.is_object() {
        return Err(WharfError::JsonInvalid { detail: "the body must be a json object".to_string() });
    }
    serde_json::from_value(value).map_err(|error| WharfError::JsonInvalid { detail: error.to_string() })
}

/// A decoded query string: `(name, value)` pairs in order, repeats kept.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Self { pairs }
    }

    /// Every value of a repeated parameter.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs.iter().filter(|(key, _)| key == name).map(|(_, value)| value.clone()).collect()
    }

    /// The last value of a parameter, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|v| !v.is_empty())
    }

    /// A number within `range`, or `default` when absent.
    pub fn number(&self, name: &str, default: u32, range: std::ops::RangeInclusive<u32>) -> Result<u32, WharfError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        let invalid = || WharfError::JsonInvalid {
            detail: format!("query parameter {name} must be an integer between {} and {}", range.start(), range.end()),
        };
        let number: u32 = text.trim().parse().map_err(|_| invalid())?;
        if range.contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Pull {
        batch_size: Option<u32>,
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        let pull: Pull = parse_json(b"  \n").unwrap();
        assert_eq!(pull.batch_size, None);
    }

    #[test]
    fn malformed_and_misshapen_json_get_distinct_errors() {
        assert!(matches!(parse_json::<Pull>(b"{"), Err(WharfError::JsonMalformed { .. })));
        assert!(matches!(parse_json::<Pull>(b"\xff\xfe"), Err(WharfError::JsonMalformed { .. })));
        assert!(matches!(parse_json::<Pull>(br#"{"batch_size":"x"}"#), Err(WharfError::JsonInvalid { .. })));
        assert!(matches!(parse_json::<Pull>(b"[1]"), Err(WharfError::JsonInvalid { .. })));
        let extra: Pull = parse_json(br#"{"batch_size":2,"environment_name":""}"#).unwrap();
        assert_eq!(extra.batch_size, Some(2));
    }

    #[test]
    fn the_one_pass_parse_accepts_and_refuses_what_the_two_steps_do() {
        // A repeated key: the one-pass parse refuses it, the two steps keep
        // the last value, as they always did.
        let repeated: Pull = parse_json(br#"{"batch_size":1,"batch_size":3}"#).unwrap();
        assert_eq!(repeated.batch_size, Some(3));
        // An array would fill a struct field by field in one pass.
        assert!(matches!(parse_json::<Pull>(b" [5]"), Err(WharfError::JsonInvalid { .. })));
        assert!(matches!(parse_json::<Pull>(br#"{"batch_size":1} x"#), Err(WharfError::JsonMalformed { .. })));
        assert!(matches!(parse_json::<Pull>(b"{\"batch_size\":\"\xff\"}"), Err(WharfError::JsonMalformed { .. })));
    }

    #[test]
    fn query_keeps_repeated_names() {
        let query = Query::parse(Some("name=a&page=2&name=b%2Dc&per_page="));
        assert_eq!(query.all("name"), vec!["a", "b-c"]);
        assert_eq!(query.number("page", 1, 1..=10).unwrap(), 2);
        assert_eq!(query.number("per_page", 100, 1..=1000).unwrap(), 100);
        assert!(query.number("page", 1, 3..=10).is_err());
    }
}
