//! Token and account administration: `wharf tokens …` on the token's own
//! account (`/user/tokens`), and `wharf accounts create` (operator only).
//! Secrets are printed once, when they are created; the server never shows
//! them again.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use super::api::{ApiClient, ClientError};
use super::{output, Connection};

/// Page size used to walk the token list (the server's maximum).
const TOKEN_PAGE_SIZE: u32 = 50;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token of your account; its secret is printed once.
    Create {
        /// A name to recognise the token by
        name: String,
        /// What the token may do: read (list, inspect, peek) or write (everything)
        #[arg(long, value_enum, default_value = "read")]
        scope: ScopeArg,
        #[command(flatten)]
        connection: Connection,
    },
    /// List your account's tokens (never their secrets).
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke a token by id; the account's last write token is refused.
    Revoke {
        /// Token id (32 hex), as `wharf tokens list` shows it
        token_id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Read,
    Write,
}

impl ScopeArg {
    fn as_str(self) -> &'static str {
        match self {
            ScopeArg::Read => "read",
            ScopeArg::Write => "write",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account with an admin write token (needs a write token of the operator account).
    Create(AccountCreateArgs),
}

#[derive(Debug, Args)]
pub struct AccountCreateArgs {
    /// Email of the account, checked against X-Auth-Email [default: admin@localhost]
    #[arg(long)]
    email: Option<String>,
    /// Id of the account (32 hex) [default: random]
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

/// A client for the token's own account: no account id needed.
fn connect_caller(connection: &Connection) -> Result<(ApiClient, bool), ClientError> {
    let settings = connection.resolve_without_account()?;
    Ok((ApiClient::new(&settings)?, connection.json))
}

pub async fn run_tokens(command: TokensCommand) -> Result<(), ClientError> {
    match command {
        TokensCommand::Create { name, scope, connection } => {
            let (api, as_json) = connect_caller(&connection)?;
            let body = json!({ "name": name, "scope": scope.as_str() });
            let token = api.call_root(Method::POST, "/user/tokens", Some(&body)).await?["result"].take();
            if as_json {
                output::json(&token);
            } else {
                println!("created {} token {}", output::text(&token["scope"]), output::text(&token["name"]));
                output::fields(&[("id", output::text(&token["id"])), ("secret", output::text(&token["value"]))]);
                eprintln!("the secret is shown only this once: store it now");
            }
        }
        TokensCommand::List { connection } => {
            let (api, as_json) = connect_caller(&connection)?;
            let tokens = all_tokens(&api).await?;
            if as_json {
                output::json(&Value::Array(tokens));
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|token| {
                        ["id", "name", "scope", "status", "issued_on"]
                            .iter()
                            .map(|key| output::text(&token[*key]))
                            .collect()
                    })
                    .collect();
                output::table(&["ID", "NAME", "SCOPE", "STATUS", "ISSUED"], &rows);
            }
        }
        TokensCommand::Revoke { token_id, connection } => {
            let (api, as_json) = connect_caller(&connection)?;
            let path = format!("/user/tokens/{}", token_id.to_ascii_lowercase());
            let revoked = api.call_root(Method::DELETE, &path, None).await?["result"].take();
            if as_json {
                output::json(&revoked);
            } else {
                println!("revoked token {}", output::text(&revoked["id"]));
            }
        }
    }
    Ok(())
}

/// Every token, walking the pages until `total_count` is reached or a page
/// comes back empty.
async fn all_tokens(api: &ApiClient) -> Result<Vec<Value>, ClientError> {
    let mut tokens = Vec::new();
    for page in 1u32.. {
        let path = format!("/user/tokens?page={page}&per_page={TOKEN_PAGE_SIZE}");
        let mut envelope = api.call_root(Method::GET, &path, None).await?;
        let items = match envelope["result"].take() {
            Value::Array(items) => items,
            other => return Err(ClientError::Transport(format!("token list result is not an array: {other}"))),
        };
        let total = envelope["result_info"]["total_count"].as_u64();
        let empty = items.is_empty();
        tokens.extend(items);
        if empty || total.is_none_or(|total| tokens.len() as u64 >= total) {
            break;
        }
    }
    Ok(tokens)
}

pub async fn run_accounts(command: AccountsCommand) -> Result<(), ClientError> {
    match command {
        AccountsCommand::Create(args) => {
            let (api, as_json) = connect_caller(&args.connection)?;
            let mut body = json!({});
            if let Some(email) = args.email {
                body["email"] = email.into();
            }
            if let Some(id) = args.id {
                body["id"] = id.into();
            }
            let account = api.call_root(Method::POST, "/accounts", Some(&body)).await?["result"].take();
            if as_json {
                output::json(&account);
            } else {
                println!("created account {}", output::text(&account["id"]));
                output::fields(&[
                    ("account id", output::text(&account["id"])),
                    ("email", output::text(&account["email"])),
                    ("admin token id", output::text(&account["token"]["id"])),
                    ("admin token", output::text(&account["token"]["value"])),
                ]);
                eprintln!("the admin token is shown only this once: store it now");
            }
        }
    }
    Ok(())
}
