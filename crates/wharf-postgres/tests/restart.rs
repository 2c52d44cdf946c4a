//! A database restart in the middle of a load, on a private PostgreSQL
//! cluster (port 5439, a temporary directory) so that the shared test
//! database is never disturbed: requests in flight fail with 503, the node
//! reconnects by itself, and no acknowledged push or ack is lost.
//!
//! Ignored by default: it needs the PostgreSQL server binaries and a
//! `postgres` system user (the server refuses to run as root).
//! `cargo test -p wharf-postgres --test restart -- --ignored`

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest, QueueSettings,
};
use wharf_core::{AccountId, Broker, Limits, SystemClock, WharfError};
use wharf_postgres::{PostgresBroker, PostgresConfig};

const PORT: u16 = 5439;

/// A throw-away cluster, stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("postgresql server binaries in /usr/lib/postgresql")
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())
            .expect("an initdb");
        let dir = std::env::temp_dir().join(format!("wharf-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        run("chown", &["postgres:postgres", path(&dir)]);
        let data = dir.join("data");
        as_postgres(&bin.join("initdb"), &["-D", path(&data), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let cluster = Cluster { dir, bin };
        cluster.pg_ctl("start");
        cluster
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!("-p {PORT} -k {} -c listen_addresses=127.0.0.1", path(&self.dir));
        let mut args = vec![action, "-D", path(&data), "-l", path(&log), "-w", "-o", &options];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        as_postgres(&self.bin.join("pg_ctl"), &args);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg_ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect("command runs");
    assert!(status.success(), "{program} {args:?} failed");
}

fn as_postgres(program: &Path, args: &[&str]) {
    let mut all = vec!["-u", "postgres", "--", path(program)];
    all.extend_from_slice(args);
    run("runuser", &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL server binaries and a postgres user; run with --ignored"]
async fn a_restart_costs_only_the_requests_in_flight() {
    let cluster = Cluster::start();
    let config = PostgresConfig {
        database_url: format!("postgres://postgres@127.0.0.1:{PORT}/postgres"),
        pool_size: 8,
        limits: Limits::cloudflare(),
        clock: Arc::new(SystemClock),
        schema: None,
    };
    let broker = PostgresBroker::connect(config).await.expect("connects");
    let account = Account { id: AccountId(1), email: "ops@example.com".into(), created_on_ms: 0 };
    broker.ensure_account(&account, "secret").await.expect("account");
    let queue = broker.create_queue(account.id, "load", QueueSettings::default()).await.expect("queue").id;
    let mut settings = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    settings.visibility_timeout_ms = 600_000;
    let spec = ConsumerSpec { kind: ConsumerKind::HttpPull, dead_letter_queue: None, settings };
    broker.create_consumer(account.id, queue, &spec).await.expect("consumer");

    // Four pushers and a puller that acks, for three seconds.
    let until = Instant::now() + Duration::from_secs(3);
    let mut pushers = Vec::new();
    for pusher in 0..4 {
        let broker = broker.clone();
        pushers.push(tokio::spawn(async move {
            let (mut acknowledged, mut failures) = (Vec::new(), Vec::new());
            let mut n = 0;
            while Instant::now() < until {
                let body = format!("{pusher}-{n}");
                n += 1;
                let message = NewMessage {
                    body: body.clone().into_bytes(),
                    content_type: ContentType::Text,
                    delay_seconds: None,
                };
                match broker.push(account.id, queue, vec![message]).await {
                    Ok(_) => acknowledged.push(body),
                    Err(error) => failures.push((Instant::now(), error)),
                }
            }
            (acknowledged, failures)
        }));
    }
    let puller = {
        let broker = broker.clone();
        tokio::spawn(async move {
            let (mut acked, mut failures) = (HashSet::new(), Vec::new());
            while Instant::now() < until {
                let request = PullRequest { batch_size: Some(10), visibility_timeout_ms: None };
                let pulled = match broker.pull(account.id, queue, request).await {
                    Ok(pulled) => pulled.messages,
                    Err(error) => {
                        failures.push((Instant::now(), error));
                        continue;
                    }
                };
                let leases: Vec<String> = pulled.iter().map(|message| message.handle.clone()).collect();
                match broker.ack(account.id, queue, &leases, &[]).await {
                    Ok(outcome) if outcome.ack_count == leases.len() as u64 => {
                        acked.extend(pulled.iter().map(|message| String::from_utf8_lossy(&message.body).into_owned()));
                    }
                    Ok(outcome) => panic!("leases of this node went stale: {outcome:?}"),
                    Err(error) => failures.push((Instant::now(), error)),
                }
            }
            (acked, failures)
        })
    };
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let restarted_at = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.pg_ctl("restart");
        cluster
    })
    .await
    .expect("restart");
    let back_at = Instant::now();

    let mut acknowledged = Vec::new();
    let mut failures = Vec::new();
    for pusher in pushers {
        let (ok, failed) = pusher.await.expect("pusher");
        acknowledged.extend(ok);
        failures.extend(failed);
    }
    let (acked, pull_failures) = puller.await.expect("puller");
    failures.extend(pull_failures);
    for (at, error) in &failures {
        assert!(matches!(error, WharfError::BackendUnavailable { .. }), "{error:?}");
        assert!(*at >= restarted_at, "a failure before the restart: {error:?}");
    }
    println!(
        "restart took {:?}; {} pushes acknowledged, {} acked, {} requests failed with 503",
        back_at - restarted_at,
        acknowledged.len(),
        acked.len(),
        failures.len()
    );

    // Every acknowledged push is either still queued or was acked; no acked
    // message is back.
    let mut left = HashSet::new();
    loop {
        let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
        let pulled = broker.pull(account.id, queue, request).await.expect("pull after the restart").messages;
        if pulled.is_empty() {
            break;
        }
        left.extend(pulled.iter().map(|message| String::from_utf8_lossy(&message.body).into_owned()));
    }
    for body in &acknowledged {
        assert!(left.contains(body) || acked.contains(body), "acknowledged push {body} lost");
    }
    assert!(left.is_disjoint(&acked), "an acked message came back");
    broker.shutdown().await.expect("shutdown");
    drop(cluster);
}
