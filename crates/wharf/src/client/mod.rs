//! `wharf` as a client of a running server: queue and consumer admin, send,
//! pull, ack, purge, redrive, pause/resume, metrics, tokens and accounts over the v4 REST API, the same
//! API every other Cloudflare Queues client uses.
//!
//! Exit codes scripts can rely on: 0 success, 1 the API (or the connection)
//! failed, 2 bad usage or configuration (clap's own usage errors are 2 too).

mod admin;
mod api;
mod connection;
mod messages;
mod output;
mod queues;
mod redrive;

use clap::Subcommand;

pub use connection::Connection;

use crate::Fatal;
use api::{ApiClient, ClientError};

/// The client subcommands, flattened into `wharf`'s own.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create, list, inspect, update and delete queues.
    #[command(subcommand)]
    Queues(queues::QueuesCommand),
    /// Add or remove a queue's consumer.
    #[command(subcommand)]
    Consumer(queues::ConsumerCommand),
    /// Send one message, or one message per line of a file or stdin.
    Send(messages::SendArgs),
    /// Pull (lease) messages and print them; optionally ack them.
    Pull(messages::PullArgs),
    /// Acknowledge or retry leased messages by lease id.
    Ack(messages::AckArgs),
    /// Delete every message of a queue.
    Purge(queues::PurgeArgs),
    /// Move a dead letter queue's messages back to the queue they failed in.
    Redrive(redrive::RedriveArgs),
    /// Pause delivery (pulls answer 409; sends still work).
    Pause(queues::QueueArg),
    /// Resume delivery.
    Resume(queues::QueueArg),
    /// Backlog count, bytes and oldest message of a queue.
    Metrics(queues::QueueArg),
    /// Create, list and revoke your account's API tokens.
    #[command(subcommand)]
    Tokens(admin::TokensCommand),
    /// Create accounts (operator only).
    #[command(subcommand)]
    Accounts(admin::AccountsCommand),
}

/// Runs one client command; a failure becomes a [`Fatal`] with exit code 1
/// (API or connection) or 2 (usage or configuration).
pub async fn run(command: ClientCommand) -> Result<(), Fatal> {
    let outcome = match command {
        ClientCommand::Queues(command) => queues::run_queues(command).await,
        ClientCommand::Consumer(command) => queues::run_consumer(command).await,
        ClientCommand::Send(args) => messages::send(args).await,
        ClientCommand::Pull(args) => messages::pull(args).await,
        ClientCommand::Ack(args) => messages::ack(args).await,
        ClientCommand::Purge(args) => queues::purge(args).await,
        ClientCommand::Redrive(args) => redrive::redrive(args).await,
        ClientCommand::Pause(args) => queues::set_paused(args, true).await,
        ClientCommand::Resume(args) => queues::set_paused(args, false).await,
        ClientCommand::Metrics(args) => queues::metrics(args).await,
        ClientCommand::Tokens(command) => admin::run_tokens(command).await,
        ClientCommand::Accounts(command) => admin::run_accounts(command).await,
    };
    outcome.map_err(|error| match error {
        ClientError::Usage(message) => Fatal::config(message),
        other => Fatal::runtime(other.to_string()),
    })
}

/// A connected client and whether to print JSON.
fn connect(connection: &Connection) -> Result<(ApiClient, bool), ClientError> {
    let settings = connection.resolve()?;
    Ok((ApiClient::new(&settings)?, connection.json))
}
