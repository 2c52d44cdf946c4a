//! A node's figures for `GET /metrics`: its connection pool.

mod common;

use common::broker;
use wharf_core::stats::{Stat, StatKind};
use wharf_core::{Broker, ManualClock};

fn gauge(stats: &[Stat], name: &str) -> f64 {
    let stat = stats.iter().find(|stat| stat.name == name).unwrap_or_else(|| panic!("{name} in {stats:?}"));
    assert_eq!(stat.kind, StatKind::Gauge, "{name}");
    stat.value
}

#[tokio::test]
async fn the_pool_gauges_follow_the_connections_in_use() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = broker(&clock).await;
    let stats = node.stats();
    // The test nodes have a pool of 4 (common::config); opening used one.
    assert_eq!(gauge(&stats, "wharf_postgres_pool_max_connections"), 4.0);
    let open = gauge(&stats, "wharf_postgres_pool_connections");
    assert!((1.0..=4.0).contains(&open), "{stats:?}");
    assert_eq!(gauge(&stats, "wharf_postgres_pool_idle_connections"), open, "nothing runs: every connection is idle");
    assert_eq!(gauge(&stats, "wharf_postgres_pool_waiting_requests"), 0.0);

    // Two requests at once take two connections, and give them back.
    let (first, second) = tokio::join!(node.list_accounts(), node.list_accounts());
    first.expect("list");
    second.expect("list");
    let after = node.stats();
    assert_eq!(
        gauge(&after, "wharf_postgres_pool_idle_connections"),
        gauge(&after, "wharf_postgres_pool_connections"),
        "connections go back to the pool"
    );
    node.shutdown().await.expect("shutdown");
}
