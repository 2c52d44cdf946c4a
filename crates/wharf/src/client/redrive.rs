//! `wharf redrive`: moves a dead letter queue's ready messages back into the
//! queue that dead-letters into it (or the one named), calling the redrive
//! extension until nothing more moves or `--max` is reached.

use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use super::api::ClientError;
use super::{connect, output, Connection};

/// Most messages one call of the API moves (the server's bound).
const CALL_MAX: u64 = 10_000;

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The queue to move messages out of (name or id), usually a dead letter queue
    queue: String,
    /// Queue to move them into (name or id); default: the one queue whose
    /// consumer dead-letters into QUEUE
    #[arg(long = "to")]
    destination: Option<String>,
    /// Move at most this many messages (default: every ready message)
    #[arg(long = "max", value_parser = clap::value_parser!(u64).range(1..))]
    max_messages: Option<u64>,
    #[command(flatten)]
    connection: Connection,
}

pub async fn redrive(args: RedriveArgs) -> Result<(), ClientError> {
    let (api, as_json) = connect(&args.connection)?;
    let id = api.queue_id(&args.queue).await?;
    let destination = match &args.destination {
        Some(name_or_id) => Some(api.queue_id(name_or_id).await?),
        None => None,
    };
    let mut moved = 0u64;
    let last = loop {
        let wanted = args.max_messages.map_or(CALL_MAX, |max| (max - moved).min(CALL_MAX));
        let mut body = json!({ "max_messages": wanted });
        if let Some(destination) = &destination {
            body["destination_queue_id"] = json!(destination);
        }
        let reply: Value = api.result(Method::POST, &format!("/queues/{id}/messages/redrive"), Some(&body)).await?;
        let this_call = reply["moved"].as_u64().unwrap_or(0);
        moved += this_call;
        // A call that moved less than it asked for found no more ready messages.
        if this_call < wanted || args.max_messages.is_some_and(|max| moved >= max) {
            break reply;
        }
    };
    if as_json {
        output::json(&json!({
            "moved": moved,
            "destination_queue_id": last["destination_queue_id"],
            "metrics": last["metrics"],
        }));
    } else {
        println!(
            "moved {moved} messages from {} to queue {} ({} left in {})",
            args.queue,
            output::text(&last["destination_queue_id"]),
            output::text(&last["metrics"]["backlog_count"]),
            args.queue
        );
    }
    Ok(())
}
