//! Every workload at tiny scale against the pgmq pattern on the local
//! PostgreSQL (`WHARF_TEST_DATABASE_URL`, default the trust-auth `test`
//! database): every message comes back exactly once, and the report holds
//! what the tool promises.

use clap::Parser;
use wharf_bench::BenchArgs;

mod common;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn database_url() -> String {
    std::env::var("WHARF_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgmq_target_delivers_every_message_once() {
    let json = tempfile::NamedTempFile::new().expect("temp file");
    let url = database_url();
    let cli = Cli::parse_from([
        "wharf-bench",
        "--target",
        "pgmq",
        "--workload",
        "all",
        "--scale",
        "0.005",
        "--connections",
        "4",
        "--quiet",
        "--database-url",
        &url,
        "--json-out",
        json.path().to_str().expect("utf-8 path"),
    ]);
    let report = wharf_bench::run(cli.args).await.expect("bench runs");
    common::assert_clean(&report.results, 7);
    assert_eq!(report.results[0].messages, 1000, "w1 at scale 0.005");
    assert!(report.ratios.is_empty(), "no ratio without a wharf run");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.path()).expect("json written")).expect("the json report parses");
    assert_eq!(written["results"].as_array().map(Vec::len), Some(7));
    assert_eq!(written["results"][0]["target"], "pgmq");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_wharf_fails_its_rows_and_not_the_pgmq_ones() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{closed_port}/client/v4");
    let database_url = database_url();
    let cli = Cli::parse_from([
        "wharf-bench",
        "--url",
        &url,
        "--account",
        "0123456789abcdef0123456789abcdef",
        "--token",
        "nope",
        "--target",
        "both",
        "--workload",
        "w2",
        "--scale",
        "0.005",
        "--connections",
        "2",
        "--quiet",
        "--database-url",
        &database_url,
    ]);
    let report = wharf_bench::run(cli.args).await.expect("the run itself completes");
    let wharf: Vec<_> = report.results.iter().filter(|row| row.target == "wharf").collect();
    assert_eq!(wharf.len(), 1, "{wharf:#?}");
    assert_eq!(wharf[0].phase, "setup");
    assert!(wharf[0].error.as_deref().is_some_and(|error| error.contains("cannot connect")), "{wharf:#?}");
    let pgmq: Vec<_> = report.results.iter().filter(|row| row.target == "pgmq").cloned().collect();
    common::assert_clean(&pgmq, 3);
    assert!(report.ratios.is_empty());
}
