//! Server configuration: a TOML file (unknown keys rejected), overridden by
//! flags and environment variables, then validated once at start-up.
//!
//! Precedence, highest first: command-line flag, environment variable,
//! config file, built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use wharf_core::{AccountId, Limits};

use crate::backend::BackendKind;
use crate::Fatal;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_DATA_DIR: &str = "./wharf-data";
pub const DEFAULT_ACCOUNT_EMAIL: &str = "admin@localhost";
pub use wharf_postgres::DEFAULT_POOL_SIZE;

/// The config file as written (see `wharf.example.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    pub database_url: Option<String>,
    pub pool_size: Option<usize>,
    pub vacuum_after_rows: Option<u64>,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub limits: Option<Limits>,
}

impl FileConfig {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    pub fn load(path: &Path) -> Result<Self, Fatal> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Fatal::config(format!("cannot read config file {}: {error}", path.display())))?;
        Self::parse(&text).map_err(|error| Fatal::config(format!("invalid config file {}: {error}", path.display())))
    }
}

/// Values given on the command line or in the environment.
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    pub database_url: Option<String>,
    pub pool_size: Option<usize>,
    pub vacuum_after_rows: Option<u64>,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub backend: BackendKind,
    pub database_url: Option<String>,
    /// Most PostgreSQL connections this node opens (`--backend postgres`).
    pub pool_size: usize,
    /// Rows a node leases or removes between two vacuums of the messages
    /// table (`--backend postgres`; 0: leave it to autovacuum).
    pub vacuum_after_rows: u64,
    /// `None`: reuse the existing account, or create one with a random id.
    pub account_id: Option<AccountId>,
    pub account_email: String,
    pub limits: Limits,
}

impl ServeConfig {
    pub fn resolve(file: FileConfig, overrides: Overrides) -> Result<Self, Fatal> {
        let listen_text = overrides.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen =
            listen_text.parse().map_err(|_| Fatal::config(format!("listen address {listen_text:?} is not IP:PORT")))?;
        let account_id = match overrides.account_id.or(file.account_id) {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse()
                    .map_err(|_| Fatal::config(format!("account id {text:?} must be 32 hexadecimal characters")))?,
            ),
        };
        let account_email = overrides.account_email.or(file.account_email).unwrap_or(DEFAULT_ACCOUNT_EMAIL.into());
        if account_email.trim().is_empty() {
            return Err(Fatal::config("account email must not be empty"));
        }
        let pool_size = overrides.pool_size.or(file.pool_size).unwrap_or(DEFAULT_POOL_SIZE);
        if pool_size == 0 {
            return Err(Fatal::config("pool size must be at least 1"));
        }
        let limits = file.limits.unwrap_or_default();
        check_limits(&limits)?;
        Ok(Self {
            listen,
            data_dir: overrides.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            backend: overrides.backend.or(file.backend).unwrap_or(BackendKind::Engine),
            database_url: overrides.database_url.or(file.database_url),
            pool_size,
            vacuum_after_rows: overrides
                .vacuum_after_rows
                .or(file.vacuum_after_rows)
                .unwrap_or(wharf_postgres::VACUUM_AFTER_ROWS),
            account_id,
            account_email,
            limits,
        })
    }
}

/// Limits must be usable: nothing zero, ranges in order, and a request body
/// limit large enough for the largest batch.
fn check_limits(limits: &Limits) -> Result<(), Fatal> {
    let positive = [
        ("max_message_bytes", limits.max_message_bytes),
        ("max_batch_messages", limits.max_batch_messages),
        ("max_batch_bytes", limits.max_batch_bytes),
        ("max_pull_batch", u64::from(limits.max_pull_batch)),
        ("max_visibility_timeout_ms", limits.max_visibility_timeout_ms),
        ("max_retention_seconds", u64::from(limits.max_retention_seconds)),
        ("max_request_bytes", limits.max_request_bytes),
        ("max_queues_per_account", limits.max_queues_per_account),
        ("max_queue_backlog_bytes", limits.max_queue_backlog_bytes),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
        return Err(Fatal::config(format!("limits.{name} must be greater than 0")));
    }
    if limits.min_retention_seconds > limits.max_retention_seconds {
        return Err(Fatal::config("limits.min_retention_seconds must not exceed limits.max_retention_seconds"));
    }
    if limits.max_message_bytes > limits.max_batch_bytes {
        return Err(Fatal::config("limits.max_message_bytes must not exceed limits.max_batch_bytes"));
    }
    if limits.max_request_bytes < limits.max_batch_bytes {
        return Err(Fatal::config("limits.max_request_bytes must be at least limits.max_batch_bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../wharf.example.toml");

    #[test]
    fn example_config_parses_and_validates() {
        let file = FileConfig::parse(EXAMPLE).expect("wharf.example.toml parses");
        let limits = file.limits.clone().expect("the example documents the limits");
        assert_eq!(limits, Limits::cloudflare(), "the example shows the default limits");
        let config = ServeConfig::resolve(file, Overrides::default()).expect("the example is valid");
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.backend, BackendKind::Engine);
        assert_eq!(file_pool_size(EXAMPLE), Some(DEFAULT_POOL_SIZE), "the example shows the default pool size");
        assert_eq!(config.pool_size, DEFAULT_POOL_SIZE);
        let example_vacuum = FileConfig::parse(EXAMPLE).expect("parses").vacuum_after_rows;
        assert_eq!(example_vacuum, Some(wharf_postgres::VACUUM_AFTER_ROWS), "the example shows the default");
    }

    #[test]
    fn vacuum_pacing_comes_from_flag_env_or_file_and_zero_turns_it_off() {
        let resolve = |text: &str, flag: Option<u64>| {
            let overrides = Overrides { vacuum_after_rows: flag, ..Overrides::default() };
            ServeConfig::resolve(FileConfig::parse(text).unwrap(), overrides).unwrap().vacuum_after_rows
        };
        assert_eq!(resolve("", None), wharf_postgres::VACUUM_AFTER_ROWS);
        assert_eq!(resolve("vacuum_after_rows = 0", None), 0);
        assert_eq!(resolve("vacuum_after_rows = 0", Some(5_000)), 5_000, "the flag (or env) wins");
        assert!(FileConfig::parse("vacuum_after_rows = -1").is_err());
    }

    fn file_pool_size(text: &str) -> Option<usize> {
        FileConfig::parse(text).expect("parses").pool_size
    }

    #[test]
    fn pool_size_comes_from_flag_env_or_file() {
        let resolve = |text: &str, flag: Option<usize>| {
            let overrides = Overrides { pool_size: flag, ..Overrides::default() };
            ServeConfig::resolve(FileConfig::parse(text).unwrap(), overrides)
        };
        assert_eq!(resolve("", None).unwrap().pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(resolve("pool_size = 40", None).unwrap().pool_size, 40);
        assert_eq!(resolve("pool_size = 40", Some(3)).unwrap().pool_size, 3, "the flag (or env) wins");
        assert!(resolve("pool_size = 0", None).unwrap_err().message.contains("pool size"));
        assert!(resolve("", Some(0)).unwrap_err().message.contains("pool size"));
        assert!(FileConfig::parse("pool_size = -1").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(FileConfig::parse("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").is_err());
        assert!(FileConfig::parse("[limits]\nmax_message_byte = 3\n").is_err());
        assert!(FileConfig::parse("backend = \"sqlite\"\n").is_err());
    }

    #[test]
    fn overrides_win_over_the_file() {
        let file = FileConfig::parse("listen = \"127.0.0.1:1\"\ndata_dir = \"/a\"\n").unwrap();
        let overrides = Overrides { listen: Some("127.0.0.1:0".into()), ..Overrides::default() };
        let config = ServeConfig::resolve(file, overrides).unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.data_dir, PathBuf::from("/a"));
        assert_eq!(config.limits, Limits::cloudflare());
    }

    #[test]
    fn bad_values_are_refused_clearly() {
        let resolve = |text: &str| ServeConfig::resolve(FileConfig::parse(text).unwrap(), Overrides::default());
        assert!(resolve("listen = \"localhost\"").unwrap_err().message.contains("IP:PORT"));
        assert!(resolve("account_id = \"abc\"").unwrap_err().message.contains("32 hexadecimal"));
        assert!(resolve("[limits]\nmax_pull_batch = 0").unwrap_err().message.contains("max_pull_batch"));
        let partial = resolve("[limits]\nmax_message_bytes = 200000\nmax_batch_bytes = 400000").unwrap();
        assert_eq!(partial.limits.max_batch_messages, 100, "unset limits keep their defaults");
    }
}
