//! A throw-away PostgreSQL cluster for fault tests (restarts), in a
//! temporary directory on a free port, so the shared test database is never
//! disturbed. Stopped and removed on drop.
//!
//! Used by `wharf-postgres/tests/restart.rs` and, through `#[path]`, by
//! `wharf/tests/postgres_nodes.rs`. It needs the PostgreSQL server binaries
//! (`initdb`, `pg_ctl` under /usr/lib/postgresql/*/bin, Debian's layout); when
//! they are missing it panics, so the test fails instead of silently skipping.
//! PostgreSQL refuses to run as root: as root the binaries run as the
//! `postgres` system user through `runuser`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// initdb and start; `name` keeps the directories of different tests apart.
    pub fn start(name: &str) -> Cluster {
        let bin = server_binaries();
        let dir = std::env::temp_dir().join(format!("wharf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if running_as_root() {
            run("chown", &["postgres:postgres", path(&dir)]);
        }
        let data = dir.join("data");
        as_server_user(&bin.join("initdb"), &["-D", path(&data), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let cluster = Cluster { dir, bin, port: free_port() };
        cluster.pg_ctl("start");
        cluster
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server (fast shutdown: open sessions are cut off), waiting
    /// until it is down.
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts it again, waiting until it accepts connections.
    pub fn resume(&self) {
        self.pg_ctl("start");
    }

    /// Stop, stay down for `down`, start.
    pub fn restart_after(&self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.resume();
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, path(&self.dir));
        let mut args = vec![action, "-D", path(&data), "-l", path(&log), "-w", "-t", "30", "-o", &options];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        as_server_user(&self.bin.join("pg_ctl"), &args);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Best effort: a failed stop must not turn a test panic into an abort.
        let data = self.dir.join("data");
        let _ = server_user_command(&self.bin.join("pg_ctl"), &["stop", "-D", path(&data), "-m", "immediate", "-w"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `bin` directory under /usr/lib/postgresql with an initdb.
fn server_binaries() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin"))).collect())
        .unwrap_or_default();
    found.retain(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: \
             install the postgresql package; this fault test does not skip"
        )
    })
}

/// A port nothing listens on right now (the OS picks it).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(status.success(), "{program} {args:?} failed");
}

fn server_user_command(program: &Path, args: &[&str]) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn as_server_user(program: &Path, args: &[&str]) {
    let output = server_user_command(program, args)
        .output()
        .unwrap_or_else(|error| panic!("{} (as the postgres user): {error}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed (as root it runs as the postgres user):\n{}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
