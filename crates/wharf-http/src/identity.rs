//! `GET /user`, `/accounts` and `/memberships`: outside the Queues API, but
//! wrangler calls them to find the account when none is configured. Each
//! describes the token's own account, so wrangler picks it without asking.

use serde_json::{json, Value};
use wharf_core::clock::format_rfc3339_ms;
use wharf_core::model::Account;

use crate::endpoint::Route;
use crate::envelope::{ResultInfo, Success};

pub fn account_json(account: &Account) -> Value {
    json!({
        "id": account.id.to_string(),
        "name": format!("{} (wharf)", account.email),
        "type": "standard",
        "created_on": format_rfc3339_ms(account.created_on_ms),
        "settings": {},
    })
}

pub fn render(route: &Route, account: &Account) -> Success {
    let one_page = ResultInfo::new(1, 1, 20, 1);
    match route {
        Route::ListAccounts => Success::paged(json!([account_json(account)]), one_page),
        Route::Memberships => Success::paged(
            json!([{
                "id": account.id.to_string(),
                "status": "accepted",
                "account": account_json(account),
                "roles": ["Administrator"],
            }]),
            one_page,
        ),
        _ => Success::new(json!({"id": account.id.to_string(), "email": account.email})),
    }
}
