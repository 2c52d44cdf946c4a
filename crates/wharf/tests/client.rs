//! `wharf` as a client of a running `wharf serve`: every client subcommand,
//! its exit code (0 ok, 1 API error, 2 usage) and what it leaves on the server.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wharf");
const ACCOUNT: &str = "00112233445566778899aabbccddeeff";
const TOKEN: &str = "client-test-token-0123456789abcdefghijkl";

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory");
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env("WHARF_ACCOUNT_ID", ACCOUNT)
            .env("WHARF_API_TOKEN", TOKEN)
            .env_remove("WHARF_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("wharf starts");
        let stdout = child.stdout.take().expect("stdout");
        let url = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("wharf listening on ").map(str::to_string))
            .expect("listening line");
        Server { child, url, _data: data }
    }

    /// `wharf ARGS` with the connection in the environment (as a user would
    /// export it) and no client config file.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("WHARF_URL", &self.url)
            .env("WHARF_ACCOUNT_ID", ACCOUNT)
            .env("WHARF_API_TOKEN", TOKEN)
            .env("XDG_CONFIG_HOME", self._data.path().join("no-config"))
            .env("RUST_LOG", "warn")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("wharf client starts");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("wharf client exits")
    }

    /// Runs a command that must exit `code`; returns its stdout.
    #[track_caller]
    fn expect(&self, code: i32, args: &[&str]) -> String {
        self.expect_with_stdin(code, args, None)
    }

    #[track_caller]
    fn expect_with_stdin(&self, code: i32, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
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
    fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let stdout = self.expect(0, &with_json);
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: not JSON:\n{stdout}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
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
    }
}

#[test]
fn queue_admin_round_trip() {
    let server = Server::start();
    let created = server.json(&["queues", "create", "orders", "--delivery-delay", "0", "--retention", "3600"]);
    assert_eq!(created["queue_name"], "orders");
    assert_eq!(created["settings"]["message_retention_period"], 3600);
    let id = created["queue_id"].as_str().expect("queue id").to_string();

    let listed = server.json(&["queues", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let table = server.expect(0, &["queues", "list"]);
    assert!(table.contains("orders") && table.contains(&id), "{table}");

    assert_eq!(server.json(&["queues", "info", "orders"])["queue_id"], id.as_str());
    assert_eq!(server.json(&["queues", "info", &id])["queue_name"], "orders", "info also takes an id");

    let updated = server.json(&["queues", "update", "orders", "--delivery-delay", "7"]);
    assert_eq!(updated["settings"]["delivery_delay"], 7);
    assert_eq!(updated["settings"]["message_retention_period"], 3600, "update keeps other settings");

    assert!(server.json(&["pause", "orders"])["settings"]["delivery_paused"] == true);
    assert!(server.json(&["resume", "orders"])["settings"]["delivery_paused"] == false);

    let consumer = server.json(&["consumer", "add", "orders", "--max-retries", "2", "--visibility-timeout-ms", "9000"]);
    assert_eq!(consumer["type"], "http_pull");
    assert_eq!(consumer["settings"]["max_retries"], 2);
    server.expect(1, &["consumer", "add", "orders", "--type", "worker", "--script", "w"]);
    server.expect(0, &["consumer", "remove", "orders"]);
    assert_eq!(server.json(&["queues", "info", "orders"])["consumers_total_count"], 0);
    server.expect(1, &["consumer", "remove", "orders"]);

    server.expect(0, &["queues", "delete", "orders"]);
    assert_eq!(server.json(&["queues", "list"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn send_pull_ack_purge_and_metrics() {
    let server = Server::start();
    server.expect(0, &["queues", "create", "jobs"]);
    server.expect(0, &["consumer", "add", "jobs"]);

    server.expect(0, &["send", "jobs", "hello"]);
    server.expect(0, &["send", "jobs", "{\"n\": 1}", "--content-type", "json"]);
    let lines: String = (0..250).map(|i| format!("line {i}\n")).collect();
    let sent = server.expect_with_stdin(0, &["send", "jobs", "--file", "-", "--json"], Some(&lines));
    assert_eq!(serde_json::from_str::<Value>(&sent).expect("json")["sent"], 250);
    assert_eq!(server.json(&["metrics", "jobs"])["backlog_count"], 252);

    let file = server._data.path().join("bodies.jsonl");
    std::fs::write(&file, "{\"a\":1}\n\n{\"a\":2}\n").expect("write file");
    let file_arg = file.to_string_lossy().to_string();
    server.expect(0, &["send", "jobs", "--file", &file_arg, "--content-type", "json"]);
    assert_eq!(server.json(&["metrics", "jobs"])["backlog_count"], 254, "empty lines are skipped");

    let pulled = server.json(&["pull", "jobs", "--batch-size", "2"]);
    let messages = pulled["messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["body"], "hello");
    let leases: Vec<&str> = messages.iter().map(|m| m["lease_id"].as_str().expect("lease")).collect();
    let acked = server.json(&["ack", "jobs", leases[0], "--retry", leases[1], "--delay-seconds", "0"]);
    assert_eq!((acked["ackCount"].as_u64(), acked["retryCount"].as_u64()), (Some(1), Some(1)));
    assert_eq!(server.json(&["metrics", "jobs"])["backlog_count"], 253);

    server.expect(1, &["ack", "jobs", "not-a-lease"]);

    // The retried message went to the back of the queue: next is the first line of stdin.
    let printed = server.expect(0, &["pull", "jobs", "--batch-size", "1", "--ack"]);
    assert!(printed.contains("line 0"), "{printed}");
    assert_eq!(server.json(&["metrics", "jobs"])["backlog_count"], 252);

    server.expect(0, &["queues", "create", "typed"]);
    server.expect(0, &["consumer", "add", "typed"]);
    server.expect(0, &["send", "typed", "{\"n\": 1}", "--content-type", "json"]);
    let printed = server.expect(0, &["pull", "typed"]);
    assert!(printed.contains("{\"n\":1}"), "json bodies are shown decoded: {printed}");

    server.expect(2, &["purge", "jobs"]);
    assert_eq!(server.json(&["metrics", "jobs"])["backlog_count"], 252, "no purge without --yes");
    server.expect(0, &["purge", "jobs", "--yes"]);
    let metrics = server.json(&["metrics", "jobs"]);
    assert_eq!(
        (metrics["backlog_count"].as_u64(), metrics["oldest_message_timestamp_ms"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn exit_codes_tell_usage_from_api_errors() {
    let server = Server::start();
    server.expect(1, &["queues", "info", "missing"]);
    server.expect(1, &["queues", "create", "Bad_Name"]);
    server.expect(1, &["send", "missing", "x"]);
    server.expect(2, &["send", "anything"]);
    server.expect(2, &["queues", "frobnicate"]);
    server.expect(0, &["queues", "create", "q"]);
    server.expect(2, &["send", "q", "not json", "--content-type", "json"]);
    server.expect(2, &["queues", "update", "q"]);
    // pull needs an http_pull consumer: an API error, not a usage error
    server.expect(1, &["pull", "q"]);

    let wrong_token = Command::new(BIN)
        .args(["queues", "list", "--url", &server.url, "--account-id", ACCOUNT, "--token", "wrong"])
        .env("XDG_CONFIG_HOME", server._data.path().join("no-config"))
        .output()
        .expect("runs");
    assert_eq!(wrong_token.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_token.stderr).contains("10000"), "the API code is shown");

    let no_token = Command::new(BIN)
        .args(["queues", "list", "--url", &server.url, "--account-id", ACCOUNT])
        .env_remove("WHARF_API_TOKEN")
        .env("XDG_CONFIG_HOME", server._data.path().join("no-config"))
        .output()
        .expect("runs");
    assert_eq!(no_token.status.code(), Some(2));
}

#[test]
fn connection_from_a_client_config_file() {
    let server = Server::start();
    let config: PathBuf = server._data.path().join("client.toml");
    std::fs::write(&config, format!("url = \"{}\"\naccount_id = \"{ACCOUNT}\"\ntoken = \"{TOKEN}\"\n", server.url))
        .expect("write config");
    let output = Command::new(BIN)
        .args(["queues", "create", "from-file", "--client-config"])
        .arg(&config)
        .env_remove("WHARF_URL")
        .env_remove("WHARF_ACCOUNT_ID")
        .env_remove("WHARF_API_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(server.json(&["queues", "info", "from-file"])["queue_name"], "from-file");
}

#[test]
fn redrive_returns_dead_letters_to_their_queue() {
    let server = Server::start();
    server.expect(0, &["queues", "create", "work"]);
    server.expect(0, &["consumer", "add", "work", "--dead-letter-queue", "work-dlq", "--max-retries", "0"]);
    for body in ["one", "two", "three"] {
        server.expect(0, &["send", "work", body]);
    }
    let pulled = server.json(&["pull", "work", "--batch-size", "3"]);
    let messages = pulled["messages"].as_array().expect("messages").clone();
    let mut ack = vec!["ack", "work", "--delay-seconds", "0"];
    for message in &messages {
        ack.extend(["--retry", message["lease_id"].as_str().expect("lease")]);
    }
    server.expect(0, &ack);
    assert_eq!(server.json(&["metrics", "work-dlq"])["backlog_count"], 3, "dead-lettered");

    let first = server.json(&["redrive", "work-dlq", "--max", "2"]);
    let work_id = server.json(&["queues", "info", "work"])["queue_id"].clone();
    assert_eq!((first["moved"].as_u64(), &first["destination_queue_id"]), (Some(2), &work_id), "{first}");
    let printed = server.expect(0, &["redrive", "work-dlq"]);
    assert!(printed.contains("moved 1 messages"), "{printed}");
    assert_eq!(server.json(&["metrics", "work"])["backlog_count"], 3);
    assert_eq!(server.json(&["metrics", "work-dlq"])["backlog_count"], 0);

    server.expect(1, &["redrive", "work-dlq", "--to", "work-dlq"]);
    server.expect(1, &["redrive", "no-such-queue"]);
    server.expect(2, &["redrive", "work-dlq", "--max", "0"]);
}
