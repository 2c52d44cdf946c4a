//! Command-line options, as a `clap::Args` struct so the `wharf` CLI can
//! embed them as `wharf bench`.

use std::path::PathBuf;

use crate::target::TargetKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadChoice {
    W1,
    W2,
    W3,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetChoice {
    Wharf,
    Pgmq,
    Both,
}

impl TargetChoice {
    pub fn kinds(self) -> Vec<TargetKind> {
        match self {
            TargetChoice::Wharf => vec![TargetKind::Wharf],
            TargetChoice::Pgmq => vec![TargetKind::Pgmq],
            TargetChoice::Both => vec![TargetKind::Wharf, TargetKind::Pgmq],
        }
    }
}

/// Drive a Wharf server and the pgmq pattern on PostgreSQL with the same
/// named workloads, and report throughput, latency, duplicates, losses and
/// server resources side by side.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Base URL of the Wharf API.
    #[arg(long, default_value = "http://127.0.0.1:8787/client/v4")]
    pub url: String,
    /// Account id (32 hex) of the Wharf account to create bench queues in.
    #[arg(long, env = "WHARF_ACCOUNT_ID")]
    pub account: Option<String>,
    /// API token with write scope on that account.
    #[arg(long, env = "WHARF_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Which workload to run: w1 (batches of 100), w2 (one message per
    /// request), w3 (latency at a fixed offered rate), or all.
    #[arg(long, value_enum, default_value = "all")]
    pub workload: WorkloadChoice,
    /// Which system to drive.
    #[arg(long, value_enum, default_value = "both")]
    pub target: TargetChoice,
    /// Messages per phase (overrides the workload's default; W3 derives it
    /// from --rate and --duration-secs).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Multiplies every message count and the W3 duration (e.g. 0.01 for a smoke run).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// PostgreSQL for the pgmq target (trust auth as role postgres by default).
    #[arg(long, env = "WHARF_BENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub database_url: String,
    /// Pid of the Wharf server, for its CPU time and memory (default: the
    /// process listening on the --url port).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Pid of the PostgreSQL postmaster (default: the process listening on
    /// the --database-url port); its children are counted too.
    #[arg(long)]
    pub postgres_pid: Option<u32>,
    /// The Wharf server under test keeps its data in the PostgreSQL at
    /// --database-url (`wharf serve --backend postgres`): count that
    /// PostgreSQL's CPU in the wharf rows too, so that they compare with
    /// the pgmq rows, which count PostgreSQL.
    #[arg(long)]
    pub wharf_database_cpu: bool,
    /// Also write the full report as JSON to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Producer tasks and consumer tasks (one connection each) for W2.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// W3 offered rate, messages per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// W3 duration in seconds (before --scale).
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_bytes: usize,
    /// Long-poll wait Wharf pulls ask for (`wait_time_ms`, a Wharf extension)
    /// so idle consumers do not spin. 0 = short polls, with --empty-poll-ms
    /// between empty ones, exactly as pgmq is polled.
    #[arg(long, default_value_t = 500)]
    pub pull_wait_ms: u64,
    /// Sleep after an empty pull: always for pgmq (it has no long poll), for
    /// Wharf only when --pull-wait-ms is 0.
    #[arg(long, default_value_t = 1)]
    pub empty_poll_ms: u64,
    /// End a phase (and report the missing messages as lost) after this many
    /// seconds without progress.
    #[arg(long, default_value_t = 30)]
    pub stall_secs: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}
