//! Every operation of the Cloudflare Queues API, parsed once from method and
//! path. Identifiers stay raw text here: they are checked after
//! authentication, so that a caller without credentials learns nothing about
//! which identifiers are well formed.

use axum::http::Method;
use wharf_core::model::Scope;
use wharf_core::WharfError;

/// One operation of the API, with its path parameters (unparsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    // #1–#6 queues
    ListQueues,
    CreateQueue,
    GetQueue {
        queue: String,
    },
    ReplaceQueue {
        queue: String,
    },
    PatchQueue {
        queue: String,
    },
    DeleteQueue {
        queue: String,
    },
    // #7–#11 consumers
    ListConsumers {
        queue: String,
    },
    CreateConsumer {
        queue: String,
    },
    GetConsumer {
        queue: String,
        consumer: String,
    },
    PutConsumer {
        queue: String,
        consumer: String,
    },
    DeleteConsumer {
        queue: String,
        consumer: String,
    },
    // #12–#20 messages
    PushMessage {
        queue: String,
    },
    PushBatch {
        queue: String,
    },
    Pull {
        queue: String,
    },
    Ack {
        queue: String,
    },
    Preview {
        queue: String,
    },
    PreviewAck {
        queue: String,
    },
    Peek {
        queue: String,
    },
    PurgeRefs {
        queue: String,
    },
    Extend {
        queue: String,
    },
    /// Wharf extension: DLQ redrive.
    Redrive {
        queue: String,
    },
    // #21–#23 purge and metrics
    Purge {
        queue: String,
    },
    PurgeStatus {
        queue: String,
    },
    Metrics {
        queue: String,
    },
    // #24–#28 event subscriptions
    ListSubscriptions,
    CreateSubscription,
    GetSubscription {
        subscription: String,
    },
    PatchSubscription {
        subscription: String,
    },
    DeleteSubscription {
        subscription: String,
    },
    // #29–#31 R2 event notifications (not implemented)
    PutR2Notification {
        bucket: String,
        queue: String,
    },
    DeleteR2Notification {
        bucket: String,
        queue: String,
    },
    GetR2Notification {
        bucket: String,
        queue: String,
    },
    // Outside the Queues API: token and account administration, on
    // Cloudflare's paths (`/user/tokens`, `/accounts`).
    ListTokens,
    CreateToken,
    RevokeToken {
        token: String,
    },
    CreateAccount,
}

/// A parsed API path: the operation and the account it is addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    /// `GET /dashboard/…`: the web dashboard's static files.
    Dashboard(crate::dashboard::Asset),
    /// `GET /metrics`: Prometheus figures (see `telemetry`).
    Metrics,
    VerifyToken,
    /// `GET /user`, `/accounts` and `/memberships`: what wrangler asks when
    /// no account id is configured. They describe the token's own account.
    User,
    ListAccounts,
    Memberships,
    Account {
        account: String,
        endpoint: Endpoint,
    },
    /// An operation on the caller's own account: the token names it, not
    /// the path (`/user/tokens…`, `POST /accounts`).
    Caller {
        endpoint: Endpoint,
    },
}

/// Why a request did not name an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NoRoute,
    /// The path exists but not with this method; `allowed` lists the methods it takes.
    MethodNotAllowed {
        allowed: Vec<Method>,
    },
}

impl RouteError {
    pub fn into_error(self, method: &Method) -> WharfError {
        match self {
            RouteError::NoRoute => WharfError::NoRoute,
            RouteError::MethodNotAllowed { .. } => {
                WharfError::MethodNotAllowed { method: method.as_str().chars().take(32).collect() }
            }
        }
    }
}

const API_PREFIX: &str = "/client/v4/";

/// Parses method and path (without query) into a route.
pub fn parse(method: &Method, path: &str) -> Result<Route, RouteError> {
    if path == "/healthz" {
        return only(method, &[Method::GET], Route::Healthz);
    }
    if path == "/metrics" {
        return only(method, &[Method::GET], Route::Metrics);
    }
    if let Some(asset) = crate::dashboard::Asset::at(path) {
        return only(method, &[Method::GET], Route::Dashboard(asset));
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return Err(RouteError::NoRoute);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["user", "tokens", "verify"] => only(method, &[Method::GET], Route::VerifyToken),
        ["user", "tokens"] => {
            let endpoint =
                pick(method, vec![(Method::GET, Endpoint::ListTokens), (Method::POST, Endpoint::CreateToken)])?;
            Ok(Route::Caller { endpoint })
        }
        ["user", "tokens", token] if !token.is_empty() => {
            let endpoint = pick(method, vec![(Method::DELETE, Endpoint::RevokeToken { token: (*token).to_string() })])?;
            Ok(Route::Caller { endpoint })
        }
        ["user"] => only(method, &[Method::GET], Route::User),
        ["accounts"] => match *method {
            Method::GET => Ok(Route::ListAccounts),
            Method::POST => Ok(Route::Caller { endpoint: Endpoint::CreateAccount }),
            _ => Err(RouteError::MethodNotAllowed { allowed: vec![Method::GET, Method::POST] }),
        },
        ["memberships"] => only(method, &[Method::GET], Route::Memberships),
        ["accounts", account, tail @ ..] if !account.is_empty() => {
            let endpoint = parse_account_path(method, tail)?;
            Ok(Route::Account { account: (*account).to_string(), endpoint })
        }
        _ => Err(RouteError::NoRoute),
    }
}

fn only(method: &Method, allowed: &[Method], route: Route) -> Result<Route, RouteError> {
    if allowed.contains(method) {
        Ok(route)
    } else {
        Err(RouteError::MethodNotAllowed { allowed: allowed.to_vec() })
    }
}

/// Picks the endpoint for `method` among the ones a path shape offers.
fn pick(method: &Method, choices: Vec<(Method, Endpoint)>) -> Result<Endpoint, RouteError> {
    let allowed: Vec<Method> = choices.iter().map(|(m, _)| m.clone()).collect();
    choices
        .into_iter()
        .find(|(m, _)| m == method)
        .map(|(_, endpoint)| endpoint)
        .ok_or(RouteError::MethodNotAllowed { allowed })
}

fn non_empty(segment: &str) -> Result<String, RouteError> {
    if segment.is_empty() {
        Err(RouteError::NoRoute)
    } else {
        Ok(segment.to_string())
    }
}

fn parse_account_path(method: &Method, tail: &[&str]) -> Result<Endpoint, RouteError> {
    use Endpoint::*;
    let post = Method::POST;
    match tail {
        ["queues"] => pick(method, vec![(Method::GET, ListQueues), (post, CreateQueue)]),
        ["queues", queue, rest @ ..] => {
            let queue = non_empty(queue)?;
            parse_queue_path(method, queue, rest)
        }
        ["event_subscriptions", "subscriptions"] => {
            pick(method, vec![(Method::GET, ListSubscriptions), (post, CreateSubscription)])
        }
        ["event_subscriptions", "subscriptions", id] => {
            let id = non_empty(id)?;
            pick(
                method,
                vec![
                    (Method::GET, GetSubscription { subscription: id.clone() }),
                    (Method::PATCH, PatchSubscription { subscription: id.clone() }),
                    (Method::DELETE, DeleteSubscription { subscription: id }),
                ],
            )
        }
        ["event_notifications", "r2", bucket, "configuration", "queues", queue] => {
            let (bucket, queue) = (non_empty(bucket)?, non_empty(queue)?);
            pick(
                method,
                vec![
                    (Method::GET, GetR2Notification { bucket: bucket.clone(), queue: queue.clone() }),
                    (Method::PUT, PutR2Notification { bucket: bucket.clone(), queue: queue.clone() }),
                    (Method::DELETE, DeleteR2Notification { bucket, queue }),
                ],
            )
        }
        _ => Err(RouteError::NoRoute),
    }
}

fn parse_queue_path(method: &Method, queue: String, rest: &[&str]) -> Result<Endpoint, RouteError> {
    use Endpoint::*;
    let q = || queue.clone();
    let post_only = |endpoint: Endpoint| pick(method, vec![(Method::POST, endpoint)]);
    match rest {
        [] => pick(
            method,
            vec![
                (Method::GET, GetQueue { queue: q() }),
                (Method::PUT, ReplaceQueue { queue: q() }),
                (Method::PATCH, PatchQueue { queue: q() }),
                (Method::DELETE, DeleteQueue { queue: q() }),
            ],
        ),
        ["consumers"] => pick(
            method,
            vec![(Method::GET, ListConsumers { queue: q() }), (Method::POST, CreateConsumer { queue: q() })],
        ),
        ["consumers", consumer] => {
            let consumer = non_empty(consumer)?;
            pick(
                method,
                vec![
                    (Method::GET, GetConsumer { queue: q(), consumer: consumer.clone() }),
                    (Method::PUT, PutConsumer { queue: q(), consumer: consumer.clone() }),
                    (Method::DELETE, DeleteConsumer { queue: q(), consumer }),
                ],
            )
        }
        ["messages"] => post_only(PushMessage { queue: q() }),
        ["messages", "batch"] => post_only(PushBatch { queue: q() }),
        ["messages", "pull"] => post_only(Pull { queue: q() }),
        ["messages", "ack"] => post_only(Ack { queue: q() }),
        ["messages", "preview"] => post_only(Preview { queue: q() }),
        ["messages", "preview", "ack"] => post_only(PreviewAck { queue: q() }),
        ["messages", "peek"] => post_only(Peek { queue: q() }),
        ["messages", "purge"] => post_only(PurgeRefs { queue: q() }),
        ["messages", "extend"] => post_only(Extend { queue: q() }),
        ["messages", "redrive"] => post_only(Redrive { queue: q() }),
        ["purge"] => {
            pick(method, vec![(Method::POST, Purge { queue: q() }), (Method::GET, PurgeStatus { queue: q() })])
        }
        ["metrics"] => pick(method, vec![(Method::GET, Metrics { queue: q() })]),
        _ => Err(RouteError::NoRoute),
    }
}

impl Endpoint {
    /// The Cloudflare operationId, used in logs.
    pub fn operation_id(&self) -> &'static str {
        use Endpoint::*;
        match self {
            ListQueues => "queues-list",
            CreateQueue => "queues-create",
            GetQueue { .. } => "queues-get",
            ReplaceQueue { .. } => "queues-update",
            PatchQueue { .. } => "queues-update-partial",
            DeleteQueue { .. } => "queues-delete",
            ListConsumers { .. } => "queues-list-consumers",
            CreateConsumer { .. } => "queues-create-consumer",
            GetConsumer { .. } => "queues-get-consumer",
            PutConsumer { .. } => "queues-update-consumer",
            DeleteConsumer { .. } => "queues-delete-consumer",
            PushMessage { .. } => "queues-push-message",
            PushBatch { .. } => "queues-push-messages",
            Pull { .. } => "queues-pull-messages",
            Ack { .. } => "queues-ack-messages",
            Preview { .. } => "queues-preview-messages",
            PreviewAck { .. } => "queues-ack-preview-messages",
            Peek { .. } => "queues-peek-messages",
            PurgeRefs { .. } => "queues-purge-messages",
            Extend { .. } => "queues-extend-messages",
            Redrive { .. } => "queues-redrive-messages",
            Purge { .. } => "queues-purge",
            PurgeStatus { .. } => "queues-purge-get",
            Metrics { .. } => "queues-get-metrics",
            ListSubscriptions => "subscriptions-list",
            CreateSubscription => "subscriptions-create",
            GetSubscription { .. } => "subscriptions-get",
            PatchSubscription { .. } => "subscriptions-patch",
            DeleteSubscription { .. } => "subscriptions-delete",
            PutR2Notification { .. } => "event-notification-create-queue-config",
            DeleteR2Notification { .. } => "event-notification-delete-queue-config",
            GetR2Notification { .. } => "event-notification-get-queue-config",
            ListTokens => "user-api-tokens-list-tokens",
            CreateToken => "user-api-tokens-create-token",
            RevokeToken { .. } => "user-api-tokens-delete-token",
            CreateAccount => "accounts-create-account",
        }
    }

    /// The token scope the operation needs (reference §1.2): pulling, acking
    /// and purging mutate the queue, so they need write. Administration
    /// needs write even to list: a read token is for consumers of data, and
    /// must not learn which other tokens exist.
    pub fn required_scope(&self) -> Scope {
        use Endpoint::*;
        match self {
            ListQueues
            | GetQueue { .. }
            | ListConsumers { .. }
            | GetConsumer { .. }
            | Preview { .. }
            | Peek { .. }
            | PurgeStatus { .. }
            | Metrics { .. }
            | ListSubscriptions
            | GetR2Notification { .. } => Scope::Read,
            CreateQueue
            | ReplaceQueue { .. }
            | PatchQueue { .. }
            | DeleteQueue { .. }
            | CreateConsumer { .. }
            | PutConsumer { .. }
            | DeleteConsumer { .. }
            | PushMessage { .. }
            | PushBatch { .. }
            | Pull { .. }
            | Ack { .. }
            | PreviewAck { .. }
            | PurgeRefs { .. }
            | Extend { .. }
            | Redrive { .. }
            | Purge { .. }
            | CreateSubscription
            | GetSubscription { .. }
            | PatchSubscription { .. }
            | DeleteSubscription { .. }
            | PutR2Notification { .. }
            | DeleteR2Notification { .. }
            | ListTokens
            | CreateToken
            | RevokeToken { .. }
            | CreateAccount => Scope::Write,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(method: Method, path: &str) -> Endpoint {
        match parse(&method, path) {
            Ok(Route::Account { endpoint, .. }) => endpoint,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_every_queue_operation() {
        let base = "/client/v4/accounts/acc/queues/q";
        assert_eq!(endpoint(Method::GET, "/client/v4/accounts/acc/queues"), Endpoint::ListQueues);
        assert_eq!(endpoint(Method::PATCH, base), Endpoint::PatchQueue { queue: "q".into() });
        assert_eq!(
            endpoint(Method::PUT, &format!("{base}/consumers/c")),
            Endpoint::PutConsumer { queue: "q".into(), consumer: "c".into() }
        );
        assert_eq!(
            endpoint(Method::POST, &format!("{base}/messages/preview/ack")),
            Endpoint::PreviewAck { queue: "q".into() }
        );
        assert_eq!(endpoint(Method::GET, &format!("{base}/purge")), Endpoint::PurgeStatus { queue: "q".into() });
        assert_eq!(
            endpoint(Method::DELETE, "/client/v4/accounts/acc/event_subscriptions/subscriptions/s"),
            Endpoint::DeleteSubscription { subscription: "s".into() }
        );
    }

    #[test]
    fn unknown_paths_and_wrong_methods_are_told_apart() {
        assert_eq!(parse(&Method::GET, "/client/v4/accounts/acc/queuez"), Err(RouteError::NoRoute));
        assert_eq!(parse(&Method::GET, "/client/v4/accounts//queues"), Err(RouteError::NoRoute));
        assert_eq!(parse(&Method::GET, "/client/v4/accounts/acc/queues/"), Err(RouteError::NoRoute));
        assert_eq!(parse(&Method::GET, "/"), Err(RouteError::NoRoute));
        assert_eq!(parse(&Method::GET, "/client/v4/accounts"), Ok(Route::ListAccounts));
        assert!(matches!(
            parse(&Method::GET, "/client/v4/accounts/acc/queues/q/messages/pull"),
            Err(RouteError::MethodNotAllowed { .. })
        ));
        assert!(matches!(parse(&Method::POST, "/healthz"), Err(RouteError::MethodNotAllowed { .. })));
    }

    #[test]
    fn administration_routes_address_the_caller() {
        let caller = |method: Method, path: &str| match parse(&method, path) {
            Ok(Route::Caller { endpoint }) => endpoint,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(caller(Method::GET, "/client/v4/user/tokens"), Endpoint::ListTokens);
        assert_eq!(caller(Method::POST, "/client/v4/user/tokens"), Endpoint::CreateToken);
        assert_eq!(caller(Method::DELETE, "/client/v4/user/tokens/t"), Endpoint::RevokeToken { token: "t".into() });
        assert_eq!(caller(Method::POST, "/client/v4/accounts"), Endpoint::CreateAccount);
        assert_eq!(parse(&Method::GET, "/client/v4/user/tokens/verify"), Ok(Route::VerifyToken));
        assert!(matches!(
            parse(&Method::DELETE, "/client/v4/user/tokens/verify"),
            Err(RouteError::MethodNotAllowed { .. })
        ));
        assert!(matches!(parse(&Method::GET, "/client/v4/user/tokens/t"), Err(RouteError::MethodNotAllowed { .. })));
        assert!(matches!(parse(&Method::DELETE, "/client/v4/accounts"), Err(RouteError::MethodNotAllowed { .. })));
        assert_eq!(parse(&Method::DELETE, "/client/v4/user/tokens/"), Err(RouteError::NoRoute));
        for endpoint in [Endpoint::ListTokens, Endpoint::CreateToken, Endpoint::CreateAccount] {
            assert_eq!(endpoint.required_scope(), Scope::Write);
        }
    }

    #[test]
    fn reading_operations_need_only_read_scope() {
        assert_eq!(Endpoint::Peek { queue: String::new() }.required_scope(), Scope::Read);
        assert_eq!(Endpoint::Pull { queue: String::new() }.required_scope(), Scope::Write);
        assert_eq!(Endpoint::Purge { queue: String::new() }.required_scope(), Scope::Write);
    }
}
