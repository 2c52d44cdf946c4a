//! Queue and consumer administration: `wharf queues …`, `wharf consumer …`,
//! `purge`, `pause`, `resume`, `metrics`.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::api::ClientError;
use super::{connect, output, Connection};

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Create a queue.
    Create {
        /// Queue name: 1–63 of a-z, 0-9 and '-', alphanumeric at both ends
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// List every queue.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Show a queue, its settings and consumers.
    Info(QueueArg),
    /// Change a queue's settings (the ones not given are kept).
    Update {
        /// Queue name or id
        queue: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a queue and its messages.
    Delete(QueueArg),
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Delay, in seconds, of every message sent without its own delay
    #[arg(long)]
    delivery_delay: Option<u64>,
    /// How long an unconsumed message is kept, in seconds
    #[arg(long)]
    retention: Option<u64>,
}

impl SettingsArgs {
    fn to_json(&self) -> Map<String, Value> {
        let mut settings = Map::new();
        if let Some(delay) = self.delivery_delay {
            settings.insert("delivery_delay".into(), delay.into());
        }
        if let Some(retention) = self.retention {
            settings.insert("message_retention_period".into(), retention.into());
        }
        settings
    }
}

/// A command that names one queue.
#[derive(Debug, Args)]
pub struct QueueArg {
    /// Queue name or id
    queue: String,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Queue name or id
    queue: String,
    /// Confirm: purging deletes every message and cannot be undone
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum ConsumerCommand {
    /// Add the queue's consumer (a queue has at most one).
    Add(ConsumerAddArgs),
    /// Remove a consumer (the queue's only one when no id is given).
    Remove {
        /// Queue name or id
        queue: String,
        /// Consumer id
        consumer_id: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConsumerKind {
    /// Pulled over HTTP (`wharf pull`, the SDKs' pull)
    HttpPull,
    /// A Worker script (recorded, for clients such as wrangler)
    Worker,
}

#[derive(Debug, Args)]
pub struct ConsumerAddArgs {
    /// Queue name or id
    queue: String,
    /// Kind of consumer
    #[arg(long = "type", value_enum, default_value = "http-pull")]
    kind: ConsumerKind,
    /// Worker script name (worker consumers only)
    #[arg(long, required_if_eq("kind", "worker"))]
    script: Option<String>,
    /// Queue that receives messages once their retries are exhausted
    #[arg(long)]
    dead_letter_queue: Option<String>,
    #[arg(long)]
    batch_size: Option<u64>,
    #[arg(long)]
    max_retries: Option<u64>,
    /// Seconds before a retried message is delivered again
    #[arg(long)]
    retry_delay: Option<u64>,
    /// Lease length of pulled messages, in milliseconds (http-pull only)
    #[arg(long)]
    visibility_timeout_ms: Option<u64>,
    #[command(flatten)]
    connection: Connection,
}

pub async fn run_queues(command: QueuesCommand) -> Result<(), ClientError> {
    match command {
        QueuesCommand::Create { name, settings, connection } => {
            let (api, as_json) = connect(&connection)?;
            let mut body = json!({ "queue_name": name });
            let settings = settings.to_json();
            if !settings.is_empty() {
                body["settings"] = Value::Object(settings);
            }
            let queue = api.result(Method::POST, "/queues", Some(&body)).await?;
            show_queue(&queue, as_json, "created");
        }
        QueuesCommand::List { connection } => {
            let (api, as_json) = connect(&connection)?;
            let queues = api.all_queues().await?;
            if as_json {
                output::json(&Value::Array(queues));
            } else if queues.is_empty() {
                println!("no queues");
            } else {
                let rows: Vec<Vec<String>> = queues
                    .iter()
                    .map(|queue| {
                        vec![
                            output::text(&queue["queue_name"]),
                            output::text(&queue["queue_id"]),
                            output::text(&queue["consumers_total_count"]),
                            if queue["settings"]["delivery_paused"] == true { "paused" } else { "active" }.to_string(),
                            output::text(&queue["created_on"]),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ID", "CONSUMERS", "DELIVERY", "CREATED"], &rows);
            }
        }
        QueuesCommand::Info(QueueArg { queue, connection }) => {
            let (api, as_json) = connect(&connection)?;
            let queue = api.find_queue(&queue).await?;
            show_queue(&queue, as_json, "");
        }
        QueuesCommand::Update { queue, settings, connection } => {
            let settings = settings.to_json();
            if settings.is_empty() {
                return Err(ClientError::Usage("nothing to update: pass --delivery-delay and/or --retention".into()));
            }
            let (api, as_json) = connect(&connection)?;
            let id = api.queue_id(&queue).await?;
            let updated = api.patch_settings(&id, Value::Object(settings)).await?;
            show_queue(&updated, as_json, "updated");
        }
        QueuesCommand::Delete(QueueArg { queue, connection }) => {
            let (api, as_json) = connect(&connection)?;
            let id = api.queue_id(&queue).await?;
            api.call(Method::DELETE, &format!("/queues/{id}"), None).await?;
            if as_json {
                output::json(&json!({ "deleted": id }));
            } else {
                println!("deleted queue {queue} ({id})");
            }
        }
    }
    Ok(())
}

/// A queue for people (with a leading verb when it was just changed) or as JSON.
fn show_queue(queue: &Value, as_json: bool, verb: &str) {
    if as_json {
        output::json(queue);
        return;
    }
    if !verb.is_empty() {
        println!("{verb} queue {}", output::text(&queue["queue_name"]));
    }
    let settings = &queue["settings"];
    output::fields(&[
        ("name", output::text(&queue["queue_name"])),
        ("id", output::text(&queue["queue_id"])),
        ("created", output::text(&queue["created_on"])),
        ("modified", output::text(&queue["modified_on"])),
        ("delivery delay (s)", output::text(&settings["delivery_delay"])),
        ("delivery paused", output::text(&settings["delivery_paused"])),
        ("retention (s)", output::text(&settings["message_retention_period"])),
        ("consumers", output::text(&queue["consumers_total_count"])),
    ]);
    for consumer in queue["consumers"].as_array().into_iter().flatten() {
        let script =
            consumer.get("script_name").map(|name| format!(" script={}", output::text(name))).unwrap_or_default();
        let dlq = output::text(&consumer["dead_letter_queue"]);
        let dlq = if dlq.is_empty() { "-".to_string() } else { dlq };
        println!(
            "  consumer {} type={}{script} dead_letter_queue={dlq} settings={}",
            output::text(&consumer["consumer_id"]),
            output::text(&consumer["type"]),
            consumer["settings"]
        );
    }
}

pub async fn run_consumer(command: ConsumerCommand) -> Result<(), ClientError> {
    match command {
        ConsumerCommand::Add(args) => {
            let (api, as_json) = connect(&args.connection)?;
            let id = api.queue_id(&args.queue).await?;
            let mut settings = Map::new();
            let numbers = [
                ("batch_size", args.batch_size),
                ("max_retries", args.max_retries),
                ("retry_delay", args.retry_delay),
                ("visibility_timeout_ms", args.visibility_timeout_ms),
            ];
            for (key, value) in numbers {
                if let Some(value) = value {
                    settings.insert(key.into(), value.into());
                }
            }
            let mut body = match args.kind {
                ConsumerKind::HttpPull => json!({ "type": "http_pull" }),
                ConsumerKind::Worker => json!({ "type": "worker", "script_name": args.script }),
            };
            body["settings"] = Value::Object(settings);
            if let Some(dlq) = args.dead_letter_queue {
                body["dead_letter_queue"] = dlq.into();
            }
            let consumer = api.result(Method::POST, &format!("/queues/{id}/consumers"), Some(&body)).await?;
            if as_json {
                output::json(&consumer);
            } else {
                println!(
                    "added {} consumer {} to queue {}",
                    output::text(&consumer["type"]),
                    output::text(&consumer["consumer_id"]),
                    args.queue
                );
            }
        }
        ConsumerCommand::Remove { queue, consumer_id, connection } => {
            let (api, as_json) = connect(&connection)?;
            let found = api.find_queue(&queue).await?;
            let queue_id = output::text(&found["queue_id"]);
            let consumer_id = match consumer_id {
                Some(id) => id,
                None => only_consumer(&found)?,
            };
            api.call(Method::DELETE, &format!("/queues/{queue_id}/consumers/{consumer_id}"), None).await?;
            if as_json {
                output::json(&json!({ "deleted": consumer_id }));
            } else {
                println!("removed consumer {consumer_id} from queue {queue}");
            }
        }
    }
    Ok(())
}

fn only_consumer(queue: &Value) -> Result<String, ClientError> {
    let consumers = queue["consumers"].as_array().cloned().unwrap_or_default();
    match consumers.as_slice() {
        [only] => Ok(output::text(&only["consumer_id"])),
        [] => Err(ClientError::Api {
            status: 404,
            code: 11006,
            message: format!("queue {} has no consumer", output::text(&queue["queue_name"])),
        }),
        _ => Err(ClientError::Usage("the queue has several consumers: name the consumer id to remove".into())),
    }
}

pub async fn purge(args: PurgeArgs) -> Result<(), ClientError> {
    if !args.yes {
        return Err(ClientError::Usage(format!(
            "purging deletes every message of {} for good: repeat with --yes",
            args.queue
        )));
    }
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    api.call(Method::POST, &format!("/queues/{id}/purge"), Some(&json!({ "delete_messages_permanently": true })))
        .await?;
    let status = api.result(Method::GET, &format!("/queues/{id}/purge"), None).await?;
    if as_json {
        output::json(&status);
    } else {
        println!("purged queue {} (started {})", args.queue, output::text(&status["started_at"]));
    }
    Ok(())
}

pub async fn set_paused(args: QueueArg, paused: bool) -> Result<(), ClientError> {
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    let queue = api.patch_settings(&id, json!({ "delivery_paused": paused })).await?;
    if as_json {
        output::json(&queue);
    } else {
        println!("{} delivery of queue {}", if paused { "paused" } else { "resumed" }, args.queue);
    }
    Ok(())
}

pub async fn metrics(args: QueueArg) -> Result<(), ClientError> {
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    let metrics = api.result(Method::GET, &format!("/queues/{id}/metrics"), None).await?;
    if as_json {
        output::json(&metrics);
    } else {
        let oldest = metrics["oldest_message_timestamp_ms"].as_u64().unwrap_or(0);
        output::fields(&[
            ("backlog messages", output::text(&metrics["backlog_count"])),
            ("backlog bytes", output::text(&metrics["backlog_bytes"])),
            ("oldest message", if oldest == 0 { "-".to_string() } else { format!("{oldest} ms since epoch") }),
        ]);
    }
    Ok(())
}
