//! `wharf-bench`: see the library for what it measures.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "wharf-bench", version, about)]
struct Cli {
    #[command(flatten)]
    args: wharf_bench::BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wharf_bench::run(cli.args)) {
        Ok(report) if report.results.iter().all(|row| row.error.is_none()) => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("error: some phases failed (see the table)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
