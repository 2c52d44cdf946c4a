//! The queue-count and backlog limits on PostgreSQL, through HTTP: the
//! conformance case that needs a backend opened with small limits.

mod common;

use std::sync::Arc;

use wharf_core::{Broker, ManualClock};
use wharf_postgres::PostgresBroker;
use wharf_testkit::conformance::limits::{queue_count_and_backlog_limits, small_limits};
use wharf_testkit::{TestServer, START_MS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_count_and_backlog_limits_are_enforced() {
    let clock = ManualClock::new(START_MS);
    let schema = common::fresh_schema();
    let config = wharf_postgres::PostgresConfig { limits: small_limits(), ..common::config(&clock, &schema) };
    let broker = PostgresBroker::connect_without_sweeper(config).await.expect("postgres backend opens");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let server = TestServer::start(broker, clock, small_limits()).await;
    queue_count_and_backlog_limits(&server).await;
    server.stop().await;
    common::drop_schema(&schema).await;
}
