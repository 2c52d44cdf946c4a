//! Token and account administration on Cloudflare's paths: `/user/tokens`
//! (the caller's account's tokens) and `POST /accounts` (operator only; the
//! router checks that before calling in). Secrets are shown once, in the
//! answer that creates them; lists show neither secrets nor hashes.

use serde::Deserialize;
use serde_json::{json, Value};
use wharf_core::auth::{generate_secret, hash_secret};
use wharf_core::clock::format_rfc3339_ms;
use wharf_core::model::{Account, Scope, TokenRecord};
use wharf_core::{AccountId, Clock, SystemClock, TokenId, WharfError, WharfResult};

use super::{ok, Context};
use crate::envelope::{ResultInfo, Success};
use crate::identity::account_json;

/// Cloudflare's limit on token names.
const MAX_TOKEN_NAME_CHARS: usize = 120;
/// Cloudflare's page sizes for token lists.
const DEFAULT_TOKEN_PAGE: u32 = 20;
const MAX_TOKEN_PAGE: u32 = 50;
/// The email a new account gets when the request names none.
const DEFAULT_EMAIL: &str = "admin@localhost";

fn invalid(detail: impl Into<String>) -> WharfError {
    WharfError::JsonInvalid { detail: detail.into() }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "read",
        Scope::Write => "write",
    }
}

/// A token as listed: never its secret nor its hash.
fn token_json(token: &TokenRecord) -> Value {
    let issued_on = format_rfc3339_ms(token.created_on_ms);
    json!({
        "id": token.id.to_string(),
        "name": token.name,
        "status": "active",
        "scope": scope_name(token.scope),
        "issued_on": issued_on,
        "modified_on": issued_on,
    })
}

/// A token just created, with its secret as `value` (as Cloudflare does).
fn issued_json(token: &TokenRecord, secret: &str) -> Value {
    let mut rendered = token_json(token);
    if let Some(object) = rendered.as_object_mut() {
        object.insert("value".to_string(), Value::String(secret.to_string()));
    }
    rendered
}

pub async fn list_tokens(cx: &Context<'_>) -> WharfResult<Success> {
    let page = cx.query.number("page", 1, 1..=u32::MAX)?;
    let per_page = cx.query.number("per_page", DEFAULT_TOKEN_PAGE, 1..=MAX_TOKEN_PAGE)?;
    let mut tokens = cx.broker.list_tokens(cx.account).await?;
    // Oldest first, ties by id: a total order, so pages never overlap.
    tokens.sort_by(|a, b| a.created_on_ms.cmp(&b.created_on_ms).then_with(|| a.id.cmp(&b.id)));
    let total = tokens.len() as u64;
    let skip = usize::try_from(u64::from(page - 1) * u64::from(per_page)).unwrap_or(usize::MAX);
    let items: Vec<Value> = tokens.iter().skip(skip).take(per_page as usize).map(token_json).collect();
    let info = ResultInfo::new(items.len(), page, per_page, total);
    Ok(Success::paged(Value::Array(items), info))
}

#[derive(Debug, Deserialize)]
struct CreateTokenBody {
    name: String,
    scope: Option<String>,
}

fn parse_scope(text: Option<&str>) -> WharfResult<Scope> {
    match text.unwrap_or("read") {
        "read" => Ok(Scope::Read),
        "write" => Ok(Scope::Write),
        _ => Err(invalid("scope must be \"read\" or \"write\"")),
    }
}

pub async fn create_token(cx: &Context<'_>) -> WharfResult<Success> {
    let body: CreateTokenBody = cx.json()?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(format!("name must be 1-{MAX_TOKEN_NAME_CHARS} characters, without control characters")));
    }
    let scope = parse_scope(body.scope.as_deref())?;
    let issued = cx.broker.create_token(cx.account, name, scope).await?;
    ok(issued_json(&issued.record, &issued.secret))
}

/// Revokes a token of the caller's account. The account's last write token
/// is kept (409): without it nobody could manage the account's queues or
/// tokens again. A token may revoke itself otherwise, which is how a write
/// token is rotated: create the new one, then revoke the old one with itself.
pub async fn revoke_token(cx: &Context<'_>, raw_id: &str) -> WharfResult<Success> {
    // A malformed id names no token: same answer as an unknown one.
    let id: TokenId = raw_id.parse().map_err(|_| WharfError::TokenNotFound)?;
    let tokens = cx.broker.list_tokens(cx.account).await?;
    let target = tokens.iter().find(|token| token.id == id).ok_or(WharfError::TokenNotFound)?;
    let write_tokens = tokens.iter().filter(|token| token.scope == Scope::Write).count();
    if target.scope == Scope::Write && write_tokens <= 1 {
        return Err(WharfError::LastWriteToken);
    }
    if !cx.broker.revoke_token(cx.account, id).await? {
        // Revoked by a concurrent request between the list and now.
        return Err(WharfError::TokenNotFound);
    }
    ok(json!({"id": id.to_string()}))
}

#[derive(Debug, Deserialize)]
struct CreateAccountBody {
    /// Accepted for Cloudflare's shape; Wharf accounts have no name of their
    /// own (they are shown as "<email> (wharf)").
    #[allow(dead_code)]
    name: Option<String>,
    email: Option<String>,
    id: Option<String>,
}

fn check_email(email: &str) -> WharfResult<()> {
    let well_formed = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(())
    } else {
        Err(invalid("email must look like name@domain, without spaces"))
    }
}

/// Creates an account with an admin write token; the answer is the account
/// plus `token` (with `value`, its secret, shown this once).
pub async fn create_account(cx: &Context<'_>) -> WharfResult<Success> {
    let body: CreateAccountBody = cx.json()?;
    let id = match body.id.as_deref() {
        Some(text) => text.parse::<AccountId>().map_err(|_| invalid("id must be 32 hexadecimal characters"))?,
        None => AccountId::random(),
    };
    let email = body.email.as_deref().map(str::trim).unwrap_or(DEFAULT_EMAIL).to_string();
    check_email(&email)?;
    let account = Account { id, email, created_on_ms: SystemClock.now_ms() };
    let secret = generate_secret();
    if !cx.broker.ensure_account(&account, &secret).await? {
        return Err(WharfError::AccountExists);
    }
    let token = cx
        .broker
        .find_token(&hash_secret(&secret))
        .await?
        .ok_or_else(|| WharfError::internal("the new account's admin token is missing"))?;
    let mut rendered = account_json(&account);
    if let Some(object) = rendered.as_object_mut() {
        object.insert("email".to_string(), Value::String(account.email.clone()));
        object.insert("token".to_string(), issued_json(&token, &secret));
    }
    ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_defaults_to_read_and_rejects_others() {
        assert_eq!(parse_scope(None), Ok(Scope::Read));
        assert_eq!(parse_scope(Some("write")), Ok(Scope::Write));
        assert!(parse_scope(Some("admin")).is_err());
    }

    #[test]
    fn emails_need_both_sides_of_the_at() {
        assert!(check_email("a@b").is_ok());
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b\n"] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}
