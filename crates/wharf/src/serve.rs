//! `wharf serve`: open the backend, make sure an account exists, serve the
//! API until SIGTERM or SIGINT, then drain requests and shut the backend down.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use wharf_core::auth::{configured_secret_problem, generate_secret};
use wharf_core::model::Account;
use wharf_core::{AccountId, Broker, Clock, SystemClock};

use crate::backend::{self, BackendKind};
use crate::config::{FileConfig, Overrides, ServeConfig};
use crate::Fatal;

/// Environment variable holding the admin token secret of a new account.
const API_TOKEN_ENV: &str = "WHARF_API_TOKEN";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT (port 0 picks a free port) [default: 127.0.0.1:8787]
    #[arg(long, env = "WHARF_LISTEN")]
    listen: Option<String>,
    /// Directory of the embedded engine's data [default: ./wharf-data]
    #[arg(long, env = "WHARF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file (see wharf.example.toml); flags and env override it.
    #[arg(long, env = "WHARF_CONFIG")]
    config: Option<PathBuf>,
    /// Storage backend [default: engine]
    #[arg(long, env = "WHARF_BACKEND", value_enum)]
    backend: Option<BackendKind>,
    /// PostgreSQL URL for `--backend postgres`.
    #[arg(long, env = "WHARF_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Most PostgreSQL connections this node opens, for `--backend postgres` [default: 16].
    #[arg(long, env = "WHARF_POOL_SIZE")]
    pool_size: Option<usize>,
    /// With `--backend postgres`, vacuum the messages table after this node
    /// leased or removed this many rows; 0 leaves it to autovacuum [default: 20000].
    #[arg(long, env = "WHARF_VACUUM_AFTER_ROWS")]
    vacuum_after_rows: Option<u64>,
    /// Id (32 hex) of the account to create on first start [default: random].
    #[arg(long, env = "WHARF_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Email of that account, checked against X-Auth-Email [default: admin@localhost].
    #[arg(long, env = "WHARF_ACCOUNT_EMAIL")]
    account_email: Option<String>,
}

impl ServeArgs {
    fn into_config(self) -> Result<ServeConfig, Fatal> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let overrides = Overrides {
            listen: self.listen,
            data_dir: self.data_dir,
            backend: self.backend,
            database_url: self.database_url,
            pool_size: self.pool_size,
            vacuum_after_rows: self.vacuum_after_rows,
            account_id: self.account_id,
            account_email: self.account_email,
        };
        ServeConfig::resolve(file, overrides)
    }
}

pub async fn run(args: ServeArgs) -> Result<(), Fatal> {
    let config = args.into_config()?;
    // Checked on every start, before the backend opens, so a weak token is
    // refused whether or not this start would store it.
    configured_secret()?;
    let broker = backend::open(&config).await?;
    let account = bootstrap_account(broker.as_ref(), &config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| Fatal::runtime(format!("cannot listen on {}: {error}", config.listen)))?;
    let address = listener.local_addr().map_err(|error| Fatal::runtime(format!("no local address: {error}")))?;
    let shutdown = shutdown_signal()?;
    tracing::info!(%address, account = %account, backend = ?config.backend, "serving");
    announce(&format!("wharf listening on http://{address}"));

    // The bootstrapped account is the operator: only its tokens may create accounts.
    let router = wharf_http::router(Arc::clone(&broker), config.limits.clone(), account);
    let served = wharf_http::serve(listener, router, shutdown).await;
    tracing::info!("stopped accepting requests; shutting the backend down");
    let closed = broker.shutdown().await;
    served.map_err(|error| Fatal::runtime(format!("server failed: {error}")))?;
    closed.map_err(|error| Fatal::runtime(format!("backend did not shut down cleanly: {error}")))?;
    Ok(())
}

/// Prints a line on stdout and flushes it: scripts wait for these lines.
fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Makes sure the account exists. Without a configured id, the oldest
/// existing account is reused, so restarts never create a second one and
/// the operator stays the same once `POST /accounts` has added others
/// (backends list accounts in their own order). The admin token is printed
/// only when Wharf generated it, and only once.
async fn bootstrap_account(broker: &dyn Broker, config: &ServeConfig) -> Result<AccountId, Fatal> {
    let storage = |error: wharf_core::WharfError| Fatal::runtime(format!("cannot set up the account: {error}"));
    let existing = broker.list_accounts().await.map_err(storage)?;
    let id = match config.account_id {
        Some(id) => id,
        None => match existing.iter().min_by_key(|account| (account.created_on_ms, account.id)) {
            Some(account) => return Ok(account.id),
            None => AccountId::random(),
        },
    };
    if existing.iter().any(|account| account.id == id) {
        return Ok(id);
    }
    let (secret, generated) = match configured_secret()? {
        Some(secret) => (secret, false),
        None => (generate_secret(), true),
    };
    let account = Account { id, email: config.account_email.clone(), created_on_ms: SystemClock.now_ms() };
    let created = broker.ensure_account(&account, &secret).await.map_err(storage)?;
    if created {
        announce(&format!("account id: {id}"));
        if generated {
            announce(&format!("admin token: {secret}"));
        }
    }
    Ok(id)
}

/// The admin token secret set in the environment, if any and acceptable.
fn configured_secret() -> Result<Option<String>, Fatal> {
    match std::env::var(API_TOKEN_ENV) {
        Ok(secret) if !secret.is_empty() => match configured_secret_problem(&secret) {
            Some(problem) => Err(Fatal::config(format!("{API_TOKEN_ENV} {problem}"))),
            None => Ok(Some(secret)),
        },
        _ => Ok(None),
    }
}

/// Installs the SIGINT and SIGTERM handlers now, before the listening line
/// is printed, so a signal sent right after it stops the server gracefully
/// instead of killing it. The returned future resolves on either signal.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Fatal> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|error| Fatal::runtime(format!("cannot listen for {name}: {error}")))
    };
    let mut interrupt = install(SignalKind::interrupt(), "sigint")?;
    let mut terminate = install(SignalKind::terminate(), "sigterm")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received sigint"),
            _ = terminate.recv() => tracing::info!("received sigterm"),
        }
    })
}
