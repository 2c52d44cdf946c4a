//! Where the client connects and as whom: flags, then environment variables,
//! then a small TOML file, then the default URL.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::api::ClientError;

/// The server `wharf serve` listens on by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";

/// Connection options shared by every client command (global: they may
/// follow the subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Server URL, e.g. http://127.0.0.1:8787 (the /client/v4 suffix is optional)
    #[arg(long, global = true, env = "WHARF_URL")]
    pub url: Option<String>,
    /// Account id (32 hex)
    #[arg(long = "account-id", global = true, env = "WHARF_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// API token secret
    #[arg(long, global = true, env = "WHARF_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Client config file (TOML: url, account_id, token)
    /// [default: $XDG_CONFIG_HOME/wharf/client.toml or ~/.config/wharf/client.toml, if it exists]
    #[arg(long = "client-config", global = true, env = "WHARF_CLIENT_CONFIG")]
    pub client_config: Option<PathBuf>,
    /// Print the API's JSON result instead of text for people
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client config file. Unknown keys are refused so a typo is not
/// silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    url: Option<String>,
    account_id: Option<String>,
    token: Option<String>,
}

/// Resolved, validated connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `http://host:port/client/v4`, no trailing slash.
    pub api_base: String,
    pub account_id: String,
    pub token: String,
}

impl Connection {
    pub fn resolve(&self) -> Result<Settings, ClientError> {
        self.resolve_with(true)
    }

    /// For commands on the token's own account (token and account
    /// administration): the account id may be absent, and is then empty.
    pub fn resolve_without_account(&self) -> Result<Settings, ClientError> {
        self.resolve_with(false)
    }

    fn resolve_with(&self, account_required: bool) -> Result<Settings, ClientError> {
        let file = match self.config_path() {
            Some((path, explicit)) => load(&path, explicit)?,
            None => ClientFile::default(),
        };
        let url = self.url.clone().or(file.url).unwrap_or_else(|| DEFAULT_URL.to_string());
        let account_id = match self.account_id.clone().or(file.account_id) {
            Some(id) => id,
            None if !account_required => String::new(),
            None => {
                return Err(ClientError::Usage(
                    "no account id: pass --account-id, set WHARF_ACCOUNT_ID or add account_id to the client config"
                        .into(),
                ))
            }
        };
        let token = self.token.clone().or(file.token).ok_or_else(|| {
            ClientError::Usage(
                "no API token: pass --token, set WHARF_API_TOKEN or add token to the client config".into(),
            )
        })?;
        let well_formed = account_id.len() == 32 && account_id.bytes().all(|b| b.is_ascii_hexdigit());
        let absent_and_optional = account_id.is_empty() && !account_required;
        if !well_formed && !absent_and_optional {
            return Err(ClientError::Usage(format!("account id must be 32 hex characters, got {account_id:?}")));
        }
        Ok(Settings { api_base: api_base(&url)?, account_id: account_id.to_ascii_lowercase(), token })
    }

    /// The config file to read and whether it was asked for explicitly (then
    /// it must exist).
    fn config_path(&self) -> Option<(PathBuf, bool)> {
        if let Some(path) = &self.client_config {
            return Some((path.clone(), true));
        }
        let dir = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
        Some((dir.join("wharf").join("client.toml"), false))
    }
}

fn load(path: &Path, explicit: bool) -> Result<ClientFile, ClientError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if !explicit && error.kind() == std::io::ErrorKind::NotFound => return Ok(ClientFile::default()),
        Err(error) => return Err(ClientError::Usage(format!("cannot read client config {}: {error}", path.display()))),
    };
    toml::from_str(&text)
        .map_err(|error| ClientError::Usage(format!("invalid client config {}: {error}", path.display())))
}

/// `http://host:port[/client/v4]` → `http://host:port/client/v4`.
fn api_base(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim_end_matches('/');
    if !trimmed.starts_with("http://") {
        // The client is built without TLS: a https URL would fail on every call.
        return Err(ClientError::Usage(format!("server URL must start with http://, got {url:?}")));
    }
    if trimmed.ends_with("/client/v4") {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/client/v4"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection {
            url: Some("http://127.0.0.1:9000/".into()),
            account_id: Some("0123456789ABCDEF0123456789abcdef".into()),
            token: Some("secret".into()),
            client_config: Some(PathBuf::from("/nonexistent/wharf-client.toml")),
            json: false,
        }
    }

    #[test]
    fn the_api_suffix_is_added_once() {
        assert_eq!(api_base("http://h:1").unwrap(), "http://h:1/client/v4");
        assert_eq!(api_base("http://h:1/client/v4/").unwrap(), "http://h:1/client/v4");
        assert!(api_base("https://h:1").is_err());
    }

    #[test]
    fn an_explicit_config_file_must_exist() {
        assert!(matches!(connection().resolve(), Err(ClientError::Usage(_))));
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(
            &path,
            "url = \"http://file:1\"\naccount_id = \"ffffffffffffffffffffffffffffffff\"\ntoken = \"t\"\n",
        )
        .unwrap();
        let mut flags = connection();
        flags.client_config = Some(path.clone());
        let settings = flags.resolve().unwrap();
        assert_eq!(settings.api_base, "http://127.0.0.1:9000/client/v4");
        assert_eq!(settings.account_id, "0123456789abcdef0123456789abcdef");

        let only_file = Connection { url: None, account_id: None, token: None, client_config: Some(path), json: false };
        let settings = only_file.resolve().unwrap();
        assert_eq!(settings.api_base, "http://file:1/client/v4");
        assert_eq!(settings.token, "t");
    }

    #[test]
    fn unknown_keys_and_bad_ids_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(&path, "tokn = \"x\"\n").unwrap();
        let typo = Connection { url: None, account_id: None, token: None, client_config: Some(path), json: false };
        assert!(matches!(typo.resolve(), Err(ClientError::Usage(message)) if message.contains("tokn")));

        let mut bad = connection();
        bad.client_config = None;
        bad.account_id = Some("xyz".into());
        assert!(matches!(bad.resolve(), Err(ClientError::Usage(_))));
    }
}
