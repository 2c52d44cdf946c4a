//! Every workload at tiny scale against a real `wharf serve` started here,
//! and the pgmq target in the same run, so the ratios are filled in. The
//! binary is `WHARF_BIN`, else the workspace's `target/release/wharf`; when
//! neither exists the test says so loudly and skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use clap::Parser;
use wharf_bench::BenchArgs;

mod common;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn wharf_bin() -> Option<PathBuf> {
    let path = std::env::var_os("WHARF_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/wharf"));
    path.is_file().then_some(path)
}

/// The server process; killed when dropped so a failed test leaves nothing behind.
struct Server {
    child: Child,
    url: String,
    account: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &PathBuf, data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("WHARF_ACCOUNT_ID")
        .env_remove("WHARF_API_TOKEN")
        .env("WHARF_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wharf serve starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (mut account, mut token) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read server stdout");
        if let Some(value) = line.strip_prefix("account id: ") {
            account = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("admin token: ") {
            token = value.trim().to_owned();
        } else if let Some(address) = line.strip_prefix("wharf listening on ") {
            assert!(!account.is_empty() && !token.is_empty(), "a fresh data dir prints its credentials first");
            return Server { child, url: format!("{}/client/v4", address.trim()), account, token };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("wharf serve exited before it was listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wharf_and_pgmq_deliver_every_message_once() {
    let Some(bin) = wharf_bin() else {
        eprintln!(
            "\n*** SKIPPED wharf_and_pgmq_deliver_every_message_once: no wharf binary; \
             run `cargo build --release -p wharf` or set WHARF_BIN ***\n"
        );
        return;
    };
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = start(&bin, data_dir.path());
    let pid = server.child.id().to_string();
    let database_url =
        std::env::var("WHARF_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let cli = Cli::parse_from([
        "wharf-bench",
        "--url",
        &server.url,
        "--account",
        &server.account,
        "--token",
        &server.token,
        "--server-pid",
        &pid,
        "--database-url",
        &database_url,
        "--target",
        "both",
        "--workload",
        "all",
        "--scale",
        "0.005",
        "--connections",
        "4",
        "--quiet",
    ]);
    let report = wharf_bench::run(cli.args).await.expect("bench runs");
    common::assert_clean(&report.results, 14);
    let wharf_rows: Vec<_> = report.results.iter().filter(|row| row.target == "wharf").collect();
    assert_eq!(wharf_rows.len(), 7);
    assert!(wharf_rows.iter().all(|row| row.server_vm_hwm_bytes.is_some()), "the server's VmHWM is read");
    assert!(wharf_rows[0].rss_per_queued_message_bytes.is_some(), "memory per queued message is reported");
    assert_eq!(report.ratios.len(), 7, "one ratio per workload and phase: {:#?}", report.ratios);
    assert!(report.ratios.iter().all(|ratio| ratio.throughput_ratio > 0.0));
}
