//! `wharf tokens …` and `wharf accounts create` against a running
//! `wharf serve`: exit codes (0 ok, 1 API error, 2 usage), what they print,
//! and that the tokens they create work as their scope says.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wharf");
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "admin-cli-test-token-0123456789abcdefgh";

struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory");
        Self::start_in(data, Some(ACCOUNT))
    }

    /// Serves the data in `data`, bootstrapping `account` (or, without one,
    /// reusing the operator account found there).
    fn start_in(data: tempfile::TempDir, account: Option<&str>) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("WHARF_ACCOUNT_ID")
            .env("WHARF_API_TOKEN", TOKEN)
            .env_remove("WHARF_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(account) = account {
            command.env("WHARF_ACCOUNT_ID", account);
        }
        let mut child = command.spawn().expect("wharf starts");
        let stdout = child.stdout.take().expect("stdout");
        let url = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("wharf listening on ").map(str::to_string))
            .expect("listening line");
        Server { child, url, data }
    }

    /// `wharf ARGS` as the holder of `token` (none if empty), with no
    /// account id unless `account` is given (administration needs none).
    fn run(&self, token: &str, account: Option<&str>, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("WHARF_URL", &self.url)
            .env("WHARF_API_TOKEN", token)
            .env_remove("WHARF_ACCOUNT_ID")
            .env("XDG_CONFIG_HOME", self.data.path().join("no-config"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if token.is_empty() {
            command.env_remove("WHARF_API_TOKEN");
        }
        if let Some(account) = account {
            command.env("WHARF_ACCOUNT_ID", account);
        }
        command.output().expect("wharf client runs")
    }

    /// Runs a command that must exit `code`; returns its stdout.
    #[track_caller]
    fn expect(&self, code: i32, token: &str, account: Option<&str>, args: &[&str]) -> String {
        let output = self.run(token, account, args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert_eq!(
            output.status.code(),
            Some(code),
            "wharf {args:?}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// `--json` output of a command that must succeed.
    #[track_caller]
    fn json(&self, token: &str, account: Option<&str>, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let stdout = self.expect(0, token, account, &with_json);
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: not JSON:\n{stdout}"))
    }
}

impl Server {
    /// Stops the server (SIGTERM) and hands its data directory back.
    fn stop(mut self) -> tempfile::TempDir {
        self.terminate();
        let placeholder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory");
        std::mem::replace(&mut self.data, placeholder)
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_string()
}

#[test]
fn tokens_create_list_and_revoke() {
    let server = Server::start();
    let reader = server.json(TOKEN, None, &["tokens", "create", "dashboard"]);
    assert_eq!((reader["name"].as_str(), reader["scope"].as_str()), (Some("dashboard"), Some("read")));
    let (reader_id, reader_secret) = (text(&reader["id"]), text(&reader["value"]));

    // A read token lists queues but cannot create one, nor manage tokens.
    server.expect(0, &reader_secret, Some(ACCOUNT), &["queues", "list"]);
    server.expect(1, &reader_secret, Some(ACCOUNT), &["queues", "create", "nope"]);
    server.expect(1, &reader_secret, None, &["tokens", "list"]);

    let human = server.expect(0, TOKEN, None, &["tokens", "create", "deployer", "--scope", "write"]);
    assert!(human.contains("created write token deployer"), "{human}");
    let writer_secret = human
        .lines()
        .find_map(|line| line.strip_prefix("secret:").map(|rest| rest.trim().to_string()))
        .unwrap_or_else(|| panic!("no secret line: {human}"));
    server.expect(0, &writer_secret, Some(ACCOUNT), &["queues", "create", "made-by-deployer"]);

    let listed = server.json(TOKEN, None, &["tokens", "list"]);
    let names: Vec<String> = listed.as_array().expect("array").iter().map(|token| text(&token["name"])).collect();
    assert_eq!(names.len(), 3, "{listed}");
    for name in ["admin", "dashboard", "deployer"] {
        assert!(names.iter().any(|listed| listed == name), "{name} missing from {names:?}");
    }
    let table = server.expect(0, TOKEN, None, &["tokens", "list"]);
    assert!(table.starts_with("ID") && table.contains(&reader_id), "{table}");
    for secret in [TOKEN, reader_secret.as_str(), writer_secret.as_str()] {
        assert!(!table.contains(secret) && !listed.to_string().contains(secret), "a secret was listed");
    }

    let revoked = server.json(TOKEN, None, &["tokens", "revoke", &reader_id]);
    assert_eq!(revoked["id"], reader_id.as_str());
    server.expect(1, &reader_secret, Some(ACCOUNT), &["queues", "list"]);
    server.expect(1, TOKEN, None, &["tokens", "revoke", &reader_id]);

    // The last write token stays: revoke the admin with the deployer, then
    // the deployer cannot revoke itself.
    let admin_id = listed
        .as_array()
        .and_then(|tokens| tokens.iter().find(|token| token["name"] == "admin"))
        .map(|token| text(&token["id"]))
        .expect("admin token");
    server.expect(0, &writer_secret, None, &["tokens", "revoke", &admin_id]);
    let left = server.json(&writer_secret, None, &["tokens", "list"]);
    let writer_id = text(&left[0]["id"]);
    server.expect(1, &writer_secret, None, &["tokens", "revoke", &writer_id]);

    server.expect(2, TOKEN, None, &["tokens", "create", "x", "--scope", "admin"]);
    server.expect(2, &writer_secret, None, &["tokens", "list", "--url", "https://example.com"]);
}

#[test]
fn accounts_create_is_for_the_operator() {
    let server = Server::start();
    let created = server.json(TOKEN, None, &["accounts", "create", "--email", "team@example.com"]);
    let (account, secret) = (text(&created["id"]), text(&created["token"]["value"]));
    assert_eq!(created["email"], "team@example.com");

    // The new account's token works on its own account only.
    server.expect(0, &secret, Some(&account), &["queues", "create", "team-jobs"]);
    let theirs = server.json(&secret, Some(&account), &["queues", "list"]);
    assert_eq!(theirs.as_array().map(Vec::len), Some(1));
    server.expect(1, &secret, Some(ACCOUNT), &["queues", "list"]);
    let operators = server.json(TOKEN, Some(ACCOUNT), &["queues", "list"]);
    assert_eq!(operators.as_array().map(Vec::len), Some(0));

    // Only the operator creates accounts.
    server.expect(1, &secret, None, &["accounts", "create"]);
    let human = server.expect(0, TOKEN, None, &["accounts", "create", "--id", "ffffffffffffffffffffffffffffffff"]);
    assert!(human.contains("created account ffffffffffffffffffffffffffffffff"), "{human}");
    assert!(human.contains("admin token:"), "{human}");
    server.expect(1, TOKEN, None, &["accounts", "create", "--id", "ffffffffffffffffffffffffffffffff"]);
    server.expect(2, "", None, &["accounts", "create"]);
    server.expect(2, TOKEN, Some("not-hex"), &["tokens", "list"]);
}

/// Accounts created over the API must not take the operator's place when the
/// server restarts without WHARF_ACCOUNT_ID (the engine lists accounts by id).
#[test]
fn the_operator_survives_a_restart_without_an_account_id() {
    let server = Server::start();
    server.expect(0, TOKEN, None, &["accounts", "create", "--id", "00000000000000000000000000000001"]);
    let data = server.stop();
    let restarted = Server::start_in(data, None);
    let created = restarted.json(TOKEN, None, &["accounts", "create"]);
    assert_eq!(created["token"]["scope"], "write");
}
