//! The real `wharf serve` binary: start-up lines, account bootstrap,
//! configuration errors, graceful shutdown on SIGTERM, restart on the same data.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wharf");

struct Running {
    child: Child,
    /// Lines printed on stdout before the listening line, and that line's URL.
    lines: Vec<String>,
    base: String,
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("WHARF_ACCOUNT_ID")
        .env_remove("WHARF_API_TOKEN")
        .env_remove("WHARF_CONFIG")
        .env_remove("WHARF_BACKEND")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

fn start(mut command: Command) -> Running {
    let mut child = command.spawn().expect("wharf starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout line");
        if let Some(base) = line.strip_prefix("wharf listening on ") {
            let base = base.to_string();
            return Running { child, lines, base };
        }
        lines.push(line);
    }
    let status = child.wait().expect("wharf exits");
    panic!("wharf exited ({status}) before listening; printed {lines:?}");
}

fn terminate(mut running: Running) -> ExitStatus {
    let pid = running.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "wharf did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn value_after<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines.iter().find_map(|line| line.strip_prefix(prefix))
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn first_start_prints_credentials_and_restart_reuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(command(dir.path()));
    let account = value_after(&running.lines, "account id: ").expect("account id printed").to_string();
    let token = value_after(&running.lines, "admin token: ").expect("admin token printed").to_string();
    assert_eq!(account.len(), 32);

    let health = reqwest::get(format!("{}/healthz", running.base)).await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let queues = format!("{}/client/v4/accounts/{account}/queues", running.base);
    let client = reqwest::Client::new();
    let created = client.post(&queues).bearer_auth(&token).body(r#"{"queue_name":"kept"}"#).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 200);
    assert!(terminate(running).success(), "graceful shutdown exits 0");

    let again = start(command(dir.path()));
    assert!(again.lines.is_empty(), "a restart prints only the listening line: {:?}", again.lines);
    let queues = format!("{}/client/v4/accounts/{account}/queues", again.base);
    let (status, body) = get(&queues, &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"][0]["queue_name"], "kept");
    assert!(terminate(again).success());
}

#[tokio::test]
async fn configured_account_and_token_are_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = "0123456789abcdef0123456789abcdef";
    let mut command = command(dir.path());
    command.env("WHARF_ACCOUNT_ID", account).env("WHARF_API_TOKEN", "my-secret-token-0123456789");
    let running = start(command);
    assert_eq!(running.lines, [format!("account id: {account}")], "a given token is not printed");
    let (status, _) =
        get(&format!("{}/client/v4/accounts/{account}/queues", running.base), "my-secret-token-0123456789").await;
    assert_eq!(status, 200);
    assert!(terminate(running).success());
}

#[test]
fn bad_configuration_exits_with_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("wharf.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 1\n").unwrap();
    let output = command(dir.path()).arg("--config").arg(&config).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_port"), "the error names the key");

    let output = command(dir.path()).env("WHARF_ACCOUNT_ID", "nope").stderr(Stdio::piped()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));

    let output = command(dir.path()).env("WHARF_API_TOKEN", "short-secret").stderr(Stdio::piped()).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "a token under 20 characters is refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 20"), "the error says why");

    let output = command(dir.path()).env_remove("WHARF_DATABASE_URL").args(["--backend", "postgres"]).output();
    assert_eq!(output.unwrap().status.code(), Some(2), "postgres needs a database url");
}

#[test]
fn example_config_starts_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wharf.example.toml");
    let mut command = command(&dir.path().join("data"));
    command.arg("--config").arg(example);
    let running = start(command);
    assert!(running.base.starts_with("http://127.0.0.1:"));
    assert!(terminate(running).success());
}
