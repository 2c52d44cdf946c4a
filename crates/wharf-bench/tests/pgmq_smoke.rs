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
