//! The one error type of the bench tool.

use std::time::Duration;

/// Why a benchmark run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid url {url}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("missing {what}: pass {flag} or set {env}")]
    MissingCredential { what: &'static str, flag: &'static str, env: &'static str },
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("http request {operation} failed: {source}")]
    Http { operation: &'static str, source: hyper::Error },
    #[error("http request {operation} timed out after {timeout:?}")]
    Timeout { operation: &'static str, timeout: Duration },
    #[error("{operation} answered http {status}: {body}")]
    Status { operation: &'static str, status: u16, body: String },
    #[error("cannot decode the answer to {operation}: {source}")]
    Decode { operation: &'static str, source: serde_json::Error },
    #[error("postgresql {operation} failed: {source}")]
    Postgres { operation: &'static str, source: tokio_postgres::Error },
    #[error("a pulled body has no bench header (seq=…): {preview:?}")]
    ForeignBody { preview: String },
    #[error("cannot write the report to {path}: {source}")]
    WriteReport { path: String, source: std::io::Error },
    #[error("cannot start the pacing thread: {0}")]
    Pacer(std::io::Error),
    #[error("a bench task panicked or was cancelled: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type BenchResult<T> = Result<T, BenchError>;
