//! `wharf send`, `wharf pull`, `wharf ack`.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use super::api::{ApiClient, ClientError};
use super::{connect, output, Connection};

/// Most messages one batch request may carry (the API's limit).
const BATCH_MESSAGES: usize = 100;
/// Body bytes per batch request: under the API's 256 KB batch limit, leaving
/// room for the JSON around the bodies and per-message overhead.
const BATCH_BODY_BYTES: usize = 192_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContentType {
    /// The body is sent as a string
    Text,
    /// The body must parse as JSON and is sent as that value
    Json,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Queue name or id
    queue: String,
    /// The message body (or use --file)
    #[arg(conflicts_with = "file", required_unless_present = "file")]
    body: Option<String>,
    /// Send every line of this file as one message ('-' reads stdin)
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// How bodies are sent
    #[arg(long, value_enum, default_value = "text")]
    content_type: ContentType,
    /// Delay delivery by this many seconds
    #[arg(long)]
    delay_seconds: Option<u64>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Queue name or id (it needs an http-pull consumer)
    queue: String,
    /// Most messages to lease
    #[arg(long, default_value_t = 10)]
    batch_size: u32,
    /// Lease length in milliseconds [default: the consumer's]
    #[arg(long)]
    visibility_timeout_ms: Option<u64>,
    /// Acknowledge every pulled message after printing it
    #[arg(long)]
    ack: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// Queue name or id
    queue: String,
    /// Lease ids to acknowledge
    lease_ids: Vec<String>,
    /// Lease id to retry instead (repeatable)
    #[arg(long = "retry", value_name = "LEASE_ID")]
    retries: Vec<String>,
    /// Delay of the retries, in seconds [default: the consumer's retry_delay]
    #[arg(long)]
    delay_seconds: Option<u64>,
    #[command(flatten)]
    connection: Connection,
}

fn message(body: &str, content_type: ContentType, line: Option<usize>) -> Result<Value, ClientError> {
    match content_type {
        ContentType::Text => Ok(json!({ "body": body, "content_type": "text" })),
        ContentType::Json => {
            let value: Value = serde_json::from_str(body).map_err(|error| {
                let place = line.map(|n| format!(" on line {n}")).unwrap_or_default();
                ClientError::Usage(format!("body{place} is not valid JSON: {error}"))
            })?;
            Ok(json!({ "body": value, "content_type": "json" }))
        }
    }
}

pub async fn send(args: SendArgs) -> Result<(), ClientError> {
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    let Some(path) = &args.file else {
        let body = args.body.as_deref().unwrap_or_default();
        let mut single = message(body, args.content_type, None)?;
        if let Some(delay) = args.delay_seconds {
            single["delay_seconds"] = delay.into();
        }
        let result = api.result(Method::POST, &format!("/queues/{id}/messages"), Some(&single)).await?;
        if as_json {
            output::json(&result);
        } else {
            println!("sent 1 message to {}", args.queue);
        }
        return Ok(());
    };

    let (reader, size): (Box<dyn Read>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(path)
            .map_err(|error| ClientError::Usage(format!("cannot open {}: {error}", path.display())))?;
        let size = file.metadata().ok().map(|meta| meta.len());
        (Box::new(file), size)
    };
    let progress = progress_bar(size, as_json);
    let mut batch: Vec<Value> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut sent = 0u64;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|error| ClientError::Usage(format!("reading {}: {error}", path.display())))?;
        progress.inc(line.len() as u64 + 1);
        if line.is_empty() {
            continue;
        }
        if !batch.is_empty() && (batch.len() == BATCH_MESSAGES || batch_bytes + line.len() > BATCH_BODY_BYTES) {
            sent += flush(&api, &id, &mut batch, args.delay_seconds).await?;
            batch_bytes = 0;
            progress.set_message(format!("{sent} sent"));
        }
        batch_bytes += line.len();
        batch.push(message(&line, args.content_type, Some(index + 1))?);
    }
    sent += flush(&api, &id, &mut batch, args.delay_seconds).await?;
    progress.finish_and_clear();
    if as_json {
        output::json(&json!({ "sent": sent }));
    } else {
        println!("sent {sent} messages to {}", args.queue);
    }
    Ok(())
}

/// Sends the batch (if any) and empties it; returns how many were sent.
async fn flush(
    api: &ApiClient,
    queue_id: &str,
    batch: &mut Vec<Value>,
    delay: Option<u64>,
) -> Result<u64, ClientError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let mut body = json!({ "messages": std::mem::take(batch) });
    if let Some(delay) = delay {
        body["delay_seconds"] = delay.into();
    }
    let count = body["messages"].as_array().map_or(0, Vec::len) as u64;
    api.call(Method::POST, &format!("/queues/{queue_id}/messages/batch"), Some(&body)).await?;
    Ok(count)
}

/// A bar over the input's bytes when its size is known, else a spinner;
/// hidden for `--json` and when stderr is not a terminal.
fn progress_bar(size: Option<u64>, as_json: bool) -> ProgressBar {
    if as_json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match size {
        Some(total) => {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)") {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let spinner = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {bytes} read, {msg}") {
                spinner.set_style(style);
            }
            spinner
        }
    }
}

/// A pulled body as people read it: text as is, json/bytes decoded from
/// base64 when that gives UTF-8.
fn readable_body(message: &Value) -> String {
    let body = output::text(&message["body"]);
    if message["metadata"]["CF-Content-Type"] == "text" {
        return body;
    }
    STANDARD.decode(body.as_bytes()).ok().and_then(|bytes| String::from_utf8(bytes).ok()).unwrap_or(body)
}

pub async fn pull(args: PullArgs) -> Result<(), ClientError> {
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    let mut request = json!({ "batch_size": args.batch_size });
    if let Some(timeout) = args.visibility_timeout_ms {
        request["visibility_timeout_ms"] = timeout.into();
    }
    let result = api.result(Method::POST, &format!("/queues/{id}/messages/pull"), Some(&request)).await?;
    let messages = result["messages"].as_array().cloned().unwrap_or_default();
    if as_json {
        output::json(&result);
    } else {
        for message in &messages {
            println!(
                "{} attempts={} lease={}\n  {}",
                output::text(&message["id"]),
                output::text(&message["attempts"]),
                output::text(&message["lease_id"]),
                readable_body(message)
            );
        }
        eprintln!(
            "{} messages pulled, {} in the backlog",
            messages.len(),
            output::text(&result["message_backlog_count"])
        );
    }
    if args.ack && !messages.is_empty() {
        let acks: Vec<Value> = messages.iter().map(|m| json!({ "lease_id": m["lease_id"] })).collect();
        let acked =
            api.result(Method::POST, &format!("/queues/{id}/messages/ack"), Some(&json!({ "acks": acks }))).await?;
        let warnings = acked["warnings"].as_object().map_or(0, |warnings| warnings.len());
        if !as_json {
            eprintln!("acked {}", output::text(&acked["ackCount"]));
        }
        if warnings > 0 {
            return Err(ClientError::Partial(format!("{warnings} acks were not applied: {}", acked["warnings"])));
        }
    }
    Ok(())
}

pub async fn ack(args: AckArgs) -> Result<(), ClientError> {
    if args.lease_ids.is_empty() && args.retries.is_empty() {
        return Err(ClientError::Usage("give lease ids to ack and/or --retry LEASE_ID".into()));
    }
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    let acks: Vec<Value> = args.lease_ids.iter().map(|lease| json!({ "lease_id": lease })).collect();
    let retries: Vec<Value> = args
        .retries
        .iter()
        .map(|lease| match args.delay_seconds {
            Some(delay) => json!({ "lease_id": lease, "delay_seconds": delay }),
            None => json!({ "lease_id": lease }),
        })
        .collect();
    let body = json!({ "acks": acks, "retries": retries });
    let result = api.result(Method::POST, &format!("/queues/{id}/messages/ack"), Some(&body)).await?;
    if as_json {
        output::json(&result);
    } else {
        println!("acked {}, retried {}", output::text(&result["ackCount"]), output::text(&result["retryCount"]));
        for (lease, warning) in result["warnings"].as_object().into_iter().flatten() {
            eprintln!("warning: {lease}: {}", output::text(warning));
        }
    }
    // A lease the server did not apply is a failure a script must see.
    if result["warnings"].as_object().is_some_and(|warnings| !warnings.is_empty()) {
        return Err(ClientError::Partial("some leases were not applied (see warnings)".into()));
    }
    Ok(())
}
