//! Credentials: `Authorization: Bearer <secret>`, or `X-Auth-Email` with
//! `X-Auth-Key` (the key is a token secret and the email must be the
//! account's). Failures use Cloudflare's codes: 400/6003 for missing or
//! malformed headers, 403/10000 for anything else.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use wharf_core::auth::{hash_secret, is_well_formed_secret, permits};
use wharf_core::model::{Scope, TokenRecord};
use wharf_core::{AccountId, Broker, WharfError, WharfResult};

const AUTH_EMAIL: &str = "x-auth-email";
const AUTH_KEY: &str = "x-auth-key";

/// The credentials a request presents, before they are checked.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    Bearer(String),
    EmailKey { email: String, key: String },
}

fn presented(headers: &HeaderMap) -> WharfResult<Credentials> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().map_err(|_| WharfError::MalformedAuthorizationHeader)?;
        let (scheme, secret) = text.trim().split_once(' ').ok_or(WharfError::MalformedAuthorizationHeader)?;
        let secret = secret.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || !is_well_formed_secret(secret) {
            return Err(WharfError::MalformedAuthorizationHeader);
        }
        return Ok(Credentials::Bearer(secret.to_string()));
    }
    let Some(key) = headers.get(AUTH_KEY) else {
        return Err(WharfError::MissingCredentials);
    };
    let key = key.to_str().map_err(|_| WharfError::MalformedAuthKeyHeader)?.trim();
    if !is_well_formed_secret(key) {
        return Err(WharfError::MalformedAuthKeyHeader);
    }
    let email = headers
        .get(AUTH_EMAIL)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|email| !email.is_empty())
        .ok_or(WharfError::MissingCredentials)?;
    Ok(Credentials::EmailKey { email: email.to_string(), key: key.to_string() })
}

/// Whether the request presents credentials at all (well-formed or not).
pub fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION) || headers.contains_key(AUTH_KEY) || headers.contains_key(AUTH_EMAIL)
}

/// Finds the live token the request's credentials name.
pub async fn authenticate(broker: &dyn Broker, headers: &HeaderMap) -> WharfResult<TokenRecord> {
    let credentials = presented(headers)?;
    let secret = match &credentials {
        Credentials::Bearer(secret) => secret,
        Credentials::EmailKey { key, .. } => key,
    };
    let token = broker.find_token(&hash_secret(secret)).await?.ok_or(WharfError::InvalidCredentials)?;
    if let Credentials::EmailKey { email, .. } = &credentials {
        let account = broker.get_account(token.account).await?.ok_or(WharfError::InvalidCredentials)?;
        if !account.email.eq_ignore_ascii_case(email) {
            return Err(WharfError::InvalidCredentials);
        }
    }
    Ok(token)
}

/// Checks that `token` may run an operation needing `scope` on the account
/// named in the path; a malformed account id is refused like a foreign one.
pub fn authorize(token: &TokenRecord, account_in_path: &str, scope: Scope) -> WharfResult<AccountId> {
    let wrong_account = || WharfError::WrongAccount { account: account_in_path.chars().take(64).collect() };
    let account: AccountId = account_in_path.parse().map_err(|_| wrong_account())?;
    if account != token.account {
        return Err(wrong_account());
    }
    require_scope(token, scope, "change queues (it has read scope)")?;
    Ok(account)
}

/// Checks that `token` has `scope`; `action` says in the error what the
/// token was refused.
pub fn require_scope(token: &TokenRecord, scope: Scope, action: &'static str) -> WharfResult<()> {
    if permits(token.scope, scope) {
        Ok(())
    } else {
        Err(WharfError::InsufficientScope { action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_bearer_and_email_key() {
        assert_eq!(presented(&headers(&[("authorization", b"Bearer abc")])), Ok(Credentials::Bearer("abc".into())));
        assert_eq!(
            presented(&headers(&[("x-auth-email", b"a@b.c"), ("x-auth-key", b"k")])),
            Ok(Credentials::EmailKey { email: "a@b.c".into(), key: "k".into() })
        );
    }

    #[test]
    fn classifies_bad_headers() {
        assert_eq!(presented(&HeaderMap::new()), Err(WharfError::MissingCredentials));
        for bad in [&b"Bearer"[..], b"Basic abc", b"Bearer a b", b"Bearer \xff"] {
            assert_eq!(presented(&headers(&[("authorization", bad)])), Err(WharfError::MalformedAuthorizationHeader));
        }
        assert_eq!(presented(&headers(&[("x-auth-key", b"a b")])), Err(WharfError::MalformedAuthKeyHeader));
        assert_eq!(presented(&headers(&[("x-auth-key", b"abc")])), Err(WharfError::MissingCredentials));
    }
}
