//! The error catalogue: every way a Wharf operation can fail, each mapped to
//! one HTTP status and one Cloudflare v4 error code. The mapping is an
//! exhaustive match, so adding a variant forces a decision about both.

use std::fmt;

pub type WharfResult<T> = Result<T, WharfError>;

/// A Cloudflare v4 error code with the HTTP status it is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: u32,
    pub status: u16,
}

/// Secondary error shown in the v4 `error_chain` (e.g. 6003 → 6111).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainedCode {
    pub code: u32,
    pub message: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WharfError {
    // --- credentials ---
    #[error("missing credentials: send Authorization: Bearer <token> or X-Auth-Email with X-Auth-Key")]
    MissingCredentials,
    #[error("invalid request headers")]
    MalformedAuthorizationHeader,
    #[error("invalid request headers")]
    MalformedAuthKeyHeader,
    #[error("authentication error")]
    InvalidCredentials,
    #[error("authentication error: this token may not {action}")]
    InsufficientScope { action: &'static str },
    #[error("authentication error: the token does not belong to account {account}")]
    WrongAccount { account: String },

    // --- routing ---
    #[error("no route for the uri")]
    NoRoute,
    #[error("method {method} is not allowed on this path")]
    MethodNotAllowed { method: String },
    #[error("request body is larger than {limit} bytes")]
    RequestTooLarge { limit: u64 },
    /// A Cloudflare operation Wharf knows by name but does not serve.
    #[error("{operation} is not implemented by wharf")]
    NotImplemented { operation: &'static str },

    // --- request bodies ---
    #[error("request body is not valid json: {detail}")]
    JsonMalformed { detail: String },
    #[error("request body does not match the schema: {detail}")]
    JsonInvalid { detail: String },

    // --- queues ---
    #[error("queue id is malformed: it must be 32 hexadecimal characters")]
    QueueIdMalformed,
    #[error("queue not found")]
    QueueNotFound,
    #[error("invalid queue name: {name}. Must match ^[a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?$")]
    QueueNameInvalid { name: String },
    #[error("a queue named {name} already exists")]
    QueueNameTaken { name: String },
    #[error("invalid queue settings: {detail}")]
    QueueSettingsInvalid { detail: String },
    #[error("purge requires delete_messages_permanently: true")]
    PurgeNotConfirmed,
    #[error("the account already has {limit} queues, the most it may have: delete one before creating another")]
    QueueLimitExceeded { limit: u64 },

    // --- consumers ---
    #[error("consumer id is malformed: it must be 32 hexadecimal characters")]
    ConsumerIdMalformed,
    #[error("consumer not found")]
    ConsumerNotFound,
    #[error("this queue already has a consumer; remove it before adding another")]
    ConsumerExists,
    #[error("invalid consumer settings: {detail}")]
    ConsumerSettingsInvalid { detail: String },
    #[error(
        "queue has no http_pull consumer: add one with POST /queues/{{queue_id}}/consumers {{\"type\":\"http_pull\"}}"
    )]
    PullConsumerMissing,

    // --- messages ---
    #[error("message body is {size} bytes, more than the {limit} byte limit")]
    MessageTooLarge { size: u64, limit: u64 },
    #[error("batch is {size} bytes, more than the {limit} byte limit")]
    BatchTooLarge { size: u64, limit: u64 },
    #[error("batch has {count} messages, more than the {limit} message limit")]
    BatchTooManyMessages { count: u64, limit: u64 },
    #[error("batch delay_seconds must be between 0 and {limit}")]
    BatchDelayInvalid { limit: u32 },
    #[error("invalid message metadata: {detail}")]
    MessageMetadataInvalid { detail: String },
    #[error("queue_delivery_paused: delivery is paused on this queue; resume it to pull")]
    DeliveryPaused,
    #[error("queue storage limit exceeded: the backlog would pass {limit} bytes; consume or purge messages first")]
    QueueStorageLimitExceeded { limit: u64 },

    // --- event subscriptions ---
    #[error("subscription id is malformed: it must be 32 hexadecimal characters")]
    SubscriptionIdMalformed,
    #[error("subscription not found")]
    SubscriptionNotFound,
    #[error("queue does not exist or resource not found on source")]
    SubscriptionDestinationMissing,
    #[error("multiple subscriptions on same resource not supported")]
    SubscriptionExists,
    // --- redrive (Wharf extension) ---
    #[error("redrive destination: {detail}")]
    RedriveDestination { detail: String },

    // --- accounts and tokens ---
    #[error("token not found")]
    TokenNotFound,
    #[error("this is the account's last write token: create another write token before revoking it")]
    LastWriteToken,
    #[error("an account with this id already exists")]
    AccountExists,

    // --- server side ---
    #[error("storage failed and the server accepts no more writes until it is restarted: {detail}")]
    StorageFailed { detail: String },
    #[error("storage is full: free disk space and retry")]
    StorageFull,
    #[error("backend unavailable, retry: {detail}")]
    BackendUnavailable { detail: String },
    #[error("server is busy, retry")]
    Overloaded,
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl WharfError {
    /// The v4 code and HTTP status this error is sent with.
    pub fn code(&self) -> ErrorCode {
        use WharfError::*;
        let (code, status) = match self {
            MissingCredentials | MalformedAuthorizationHeader | MalformedAuthKeyHeader => (6003, 400),
            InvalidCredentials | InsufficientScope { .. } | WrongAccount { .. } => (10000, 403),
            NoRoute => (7003, 404),
            MethodNotAllowed { .. } => (7001, 405),
            RequestTooLarge { .. } => (10209, 413),
            NotImplemented { .. } => (7010, 501),
            JsonMalformed { .. } => (10208, 400),
            JsonInvalid { .. } => (10207, 400),
            QueueIdMalformed => (10107, 400),
            QueueNotFound => (10104, 404),
            QueueNameInvalid { .. } => (11003, 400),
            QueueNameTaken { .. } => (11009, 409),
            QueueSettingsInvalid { .. } => (100128, 400),
            PurgeNotConfirmed => (10210, 400),
            QueueLimitExceeded { .. } => (11024, 400),
            ConsumerIdMalformed => (11005, 400),
            ConsumerNotFound => (11006, 404),
            ConsumerExists => (11004, 409),
            ConsumerSettingsInvalid { .. } => (100127, 400),
            PullConsumerMissing => (11007, 400),
            MessageTooLarge { .. } => (10204, 400),
            BatchTooLarge { .. } => (10205, 400),
            BatchTooManyMessages { .. } => (10206, 400),
            BatchDelayInvalid { .. } => (10202, 400),
            MessageMetadataInvalid { .. } => (10203, 400),
            DeliveryPaused => (11008, 409),
            QueueStorageLimitExceeded { .. } => (10251, 429),
            SubscriptionIdMalformed => (11011, 400),
            SubscriptionNotFound => (11012, 404),
            SubscriptionDestinationMissing => (11013, 404),
            SubscriptionExists => (11014, 405),
            RedriveDestination { .. } => (11025, 400),
            TokenNotFound => (11021, 404),
            LastWriteToken => (11022, 409),
            AccountExists => (11023, 409),
            StorageFailed { .. } => (15001, 503),
            StorageFull => (15002, 507),
            BackendUnavailable { .. } => (15003, 503),
            Overloaded => (10250, 429),
            Internal { .. } => (15000, 500),
        };
        ErrorCode { code, status }
    }

    /// The nested cause Cloudflare reports in `error_chain`, if any.
    pub fn chained(&self) -> Option<ChainedCode> {
        match self {
            WharfError::MissingCredentials | WharfError::MalformedAuthKeyHeader => {
                Some(ChainedCode { code: 6103, message: "Invalid format for X-Auth-Key header" })
            }
            WharfError::MalformedAuthorizationHeader => {
                Some(ChainedCode { code: 6111, message: "Invalid format for Authorization header" })
            }
            _ => None,
        }
    }

    /// True for failures of the server rather than of the request.
    pub fn is_server_error(&self) -> bool {
        self.code().status >= 500
    }

    pub fn internal(detail: impl fmt::Display) -> Self {
        WharfError::Internal { detail: detail.to_string() }
    }
}

/// One instance of every variant, for tests that walk the whole catalogue.
pub fn catalogue() -> Vec<WharfError> {
    use WharfError::*;
    let text = String::new;
    vec![
        MissingCredentials,
        MalformedAuthorizationHeader,
        MalformedAuthKeyHeader,
        InvalidCredentials,
        InsufficientScope { action: "write" },
        WrongAccount { account: text() },
        NoRoute,
        MethodNotAllowed { method: text() },
        RequestTooLarge { limit: 0 },
        NotImplemented { operation: "r2 event notifications" },
        JsonMalformed { detail: text() },
        JsonInvalid { detail: text() },
        QueueIdMalformed,
        QueueNotFound,
        QueueNameInvalid { name: text() },
        QueueNameTaken { name: text() },
        QueueSettingsInvalid { detail: text() },
        PurgeNotConfirmed,
        QueueLimitExceeded { limit: 0 },
        ConsumerIdMalformed,
        ConsumerNotFound,
        ConsumerExists,
        ConsumerSettingsInvalid { detail: text() },
        PullConsumerMissing,
        MessageTooLarge { size: 0, limit: 0 },
        BatchTooLarge { size: 0, limit: 0 },
        BatchTooManyMessages { count: 0, limit: 0 },
        BatchDelayInvalid { limit: 0 },
        MessageMetadataInvalid { detail: text() },
        DeliveryPaused,
        QueueStorageLimitExceeded { limit: 0 },
        SubscriptionIdMalformed,
        SubscriptionNotFound,
        SubscriptionDestinationMissing,
        SubscriptionExists,
        RedriveDestination { detail: text() },
        TokenNotFound,
        LastWriteToken,
        AccountExists,
        StorageFailed { detail: text() },
        StorageFull,
        BackendUnavailable { detail: text() },
        Overloaded,
        Internal { detail: text() },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Codes may be shared only by variants that are the same failure seen
    /// from different angles (the credential errors); everything else must be
    /// distinguishable by code alone.
    #[test]
    fn codes_are_unique_outside_shared_families() {
        let shared = [6003, 10000];
        let mut seen: HashMap<u32, String> = HashMap::new();
        for error in catalogue() {
            let code = error.code().code;
            if shared.contains(&code) {
                continue;
            }
            if let Some(previous) = seen.insert(code, format!("{error:?}")) {
                panic!("code {code} used by {previous} and {error:?}");
            }
        }
    }

    #[test]
    fn every_code_is_a_v4_code_with_an_error_status() {
        for error in catalogue() {
            let ErrorCode { code, status } = error.code();
            assert!(code >= 1000, "{error:?}");
            assert!((400..600).contains(&status), "{error:?}");
        }
    }

    #[test]
    fn messages_are_lowercase_first() {
        for error in catalogue() {
            let message = error.to_string();
            let first = message.chars().next().unwrap_or('a');
            assert!(!first.is_uppercase(), "{message}");
        }
    }
}
