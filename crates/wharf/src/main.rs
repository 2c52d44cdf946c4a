//! The `wharf` command. Each subcommand lives in its own module; `serve`
//! runs the server.

mod backend;
mod client;
mod config;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Wharf: a self-hosted server for the Cloudflare Queues REST API.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about)]
struct Cli {
    /// Log filter when RUST_LOG is not set (error, warn, info, debug, trace,
    /// or a full filter such as `wharf_http=debug`).
    #[arg(long, global = true, env = "WHARF_LOG_LEVEL", default_value = "info")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (and create the first account on first start).
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// A reason to stop, with the exit code that tells scripts what went wrong.
#[derive(Debug)]
pub struct Fatal {
    pub message: String,
    /// 2: bad configuration or usage; 1: failure while running.
    pub exit_code: u8,
}

impl Fatal {
    pub fn config(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 2 }
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        Self { message: message.into(), exit_code: 1 }
    }
}

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wharf: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Client(command) => client::run(command).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("wharf: {}", fatal.message);
            ExitCode::from(fatal.exit_code)
        }
    }
}
