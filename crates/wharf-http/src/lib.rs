//! Wharf's HTTP layer: the Cloudflare Queues REST API (v4) over any
//! [`Broker`]. It routes, authenticates, parses bodies and renders the v4
//! envelope; it holds no queue logic.
//!
//! Every request goes through one handler, so that nothing axum would answer
//! on its own (rejections, 404s, 405s) escapes the v4 failure envelope.

mod admission;
mod auth;
mod body;
mod dashboard;
pub mod endpoint;
mod envelope;
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
mod identity;
mod integral;
mod json_out;
mod queue_counts;
mod render;
mod requests;
mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;
use wharf_core::{AccountId, Broker, Limits, WharfError};

pub use endpoint::{Endpoint, Route};
pub use envelope::failure_body;
pub use requests::MAX_PULL_WAIT_MS;

use crate::body::{read_body, Query};
use crate::endpoint::RouteError;
use crate::envelope::{json_response, Failure, Success};
use crate::telemetry::Telemetry;

/// What the handler needs: the backend, the limits requests are held to,
/// and the operator account (the only one whose tokens may create accounts).
struct Api {
    broker: Arc<dyn Broker>,
    limits: Limits,
    admission: admission::Admission,
    counts: queue_counts::QueueCounts,
    operator: AccountId,
    telemetry: Telemetry,
}

/// The router serving `/healthz`, `/metrics`, `/dashboard/` and `/client/v4/...`. `operator` is the
/// account `wharf serve` bootstrapped: only its write tokens may create
/// other accounts.
pub fn router(broker: Arc<dyn Broker>, limits: Limits, operator: AccountId) -> Router {
    let telemetry = Telemetry::new(Arc::clone(&broker));
    let admission = admission::Admission::new(limits.max_inflight_request_bytes);
    let counts = queue_counts::QueueCounts::default();
    let api = Api { broker, limits, admission, counts, operator, telemetry };
    Router::new().fallback(handle).with_state(Arc::new(api))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn handle(State(api): State<Arc<Api>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let (operation, response) = match endpoint::parse(&method, &path) {
        Ok(route) => {
            let operation = match &route {
                Route::Healthz => "healthz",
                Route::Dashboard(_) => "dashboard",
                Route::Metrics => "metrics",
                Route::VerifyToken => "user-tokens-verify",
                Route::User => "user-details",
                Route::ListAccounts => "accounts-list",
                Route::Memberships => "memberships-list",
                Route::Account { endpoint, .. } | Route::Caller { endpoint } => endpoint.operation_id(),
            };
            let query = Query::parse(parts.uri.query());
            let outcome = dispatch(&api, route, &parts.headers, &query, body).await;
            (operation, outcome.map_or_else(|error| fail(Failure::from(error)), IntoResponse::into_response))
        }
        Err(RouteError::MethodNotAllowed { allowed }) => {
            let error = WharfError::MethodNotAllowed { method: method.as_str().chars().take(32).collect() };
            ("method-not-allowed", fail(Failure { error, allow: allowed }))
        }
        Err(RouteError::NoRoute) => ("no-route", fail(Failure::from(WharfError::NoRoute))),
    };
    let elapsed = started.elapsed();
    api.telemetry.observe(operation, response.status().as_u16(), elapsed);
    tracing::debug!(
        %method,
        path = %path,
        operation,
        status = response.status().as_u16(),
        elapsed_ms = elapsed.as_millis() as u64,
        "request"
    );
    response
}

fn fail(failure: Failure) -> Response {
    let error = &failure.error;
    match error {
        WharfError::NotImplemented { .. } => {}
        // A database restart or failover answers every request in flight
        // with this; it is retryable and expected, not a bug to page on.
        WharfError::BackendUnavailable { .. } => {
            tracing::warn!(%error, code = error.code().code, "request failed: the backend is unavailable");
        }
        _ if error.is_server_error() => {
            tracing::error!(%error, code = error.code().code, "request failed on the server side");
        }
        _ => {}
    }
    failure.into_response()
}

async fn dispatch(
    api: &Api,
    route: Route,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Result<Response, WharfError> {
    match route {
        Route::Healthz => Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
        Route::Dashboard(asset) => Ok(dashboard::respond(asset)),
        Route::Metrics => {
            // Per-queue figures name queues, so only a token of their account
            // gets them; without credentials the totals are public.
            let queues = if auth::has_credentials(headers) {
                let token = auth::authenticate(api.broker.as_ref(), headers).await?;
                Some(api.broker.queue_backlogs(token.account).await?)
            } else {
                None
            };
            let text = api.telemetry.render(queues.as_deref(), &api.counts);
            Ok(([(CONTENT_TYPE, HeaderValue::from_static(telemetry::CONTENT_TYPE))], text).into_response())
        }
        Route::VerifyToken => {
            let token = auth::authenticate(api.broker.as_ref(), headers).await?;
            Ok(Success::new(json!({"id": token.id.to_string(), "status": "active"})).into_response())
        }
        Route::User | Route::ListAccounts | Route::Memberships => {
            let token = auth::authenticate(api.broker.as_ref(), headers).await?;
            let account = api.broker.get_account(token.account).await?.ok_or(WharfError::InvalidCredentials)?;
            Ok(identity::render(&route, &account).into_response())
        }
        Route::Account { account, endpoint } => {
            let token = auth::authenticate(api.broker.as_ref(), headers).await?;
            let account = auth::authorize(&token, &account, endpoint.required_scope())?;
            let _reserved = api.admission.admit(headers, api.limits.max_request_bytes)?;
            let bytes = read_body(headers, body, api.limits.max_request_bytes).await?;
            let cx = handlers::Context {
                broker: api.broker.as_ref(),
                counts: &api.counts,
                limits: &api.limits,
                account,
                query,
                body: &bytes,
            };
            Ok(handlers::run(&endpoint, &cx).await?.into_response())
        }
        Route::Caller { endpoint } => {
            let token = auth::authenticate(api.broker.as_ref(), headers).await?;
            auth::require_scope(&token, endpoint.required_scope(), "manage tokens or accounts (it has read scope)")?;
            if endpoint == Endpoint::CreateAccount && token.account != api.operator {
                return Err(WharfError::InsufficientScope {
                    action: "create accounts: only tokens of the operator account may",
                });
            }
            let _reserved = api.admission.admit(headers, api.limits.max_request_bytes)?;
            let bytes = read_body(headers, body, api.limits.max_request_bytes).await?;
            let cx = handlers::Context {
                broker: api.broker.as_ref(),
                counts: &api.counts,
                limits: &api.limits,
                account: token.account,
                query,
                body: &bytes,
            };
            Ok(handlers::run(&endpoint, &cx).await?.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    /// docs/api.md keeps its error table by hand; this keeps it complete.
    #[test]
    fn api_docs_list_every_error_code() {
        let docs = include_str!("../../../docs/api.md");
        for error in wharf_core::error::catalogue() {
            let code = error.code();
            let row = format!("| {} | {} |", code.code, code.status);
            assert!(docs.contains(&row), "docs/api.md lacks the row {row} ({error:?})");
        }
    }
}
