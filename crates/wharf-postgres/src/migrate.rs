//! Numbered migrations, applied at start-up. Every node runs this; a
//! transaction-scoped advisory lock makes concurrent start-ups take turns, and
//! the `wharf_migrations` table makes a second run a no-op.

use tokio_postgres::GenericClient;
use wharf_core::{WharfError, WharfResult};

use crate::db_error;

pub(crate) struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// In version order; never edit a shipped one, add the next number.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration {
        version: 2,
        name: "messages_without_queue_key",
        sql: include_str!("../migrations/0002_messages_without_queue_key.sql"),
    },
    Migration {
        version: 3,
        name: "counters_fillfactor",
        sql: include_str!("../migrations/0003_counters_fillfactor.sql"),
    },
    Migration {
        version: 4,
        name: "messages_keyed_by_queue",
        sql: include_str!("../migrations/0004_messages_keyed_by_queue.sql"),
    },
];

/// Advisory lock key of Wharf migrations ("wharf" in ASCII), mixed with the
/// schema so that isolated schemas migrate independently.
const LOCK_KEY: i64 = 0x0077_6861_7266;

/// Settings key of the lease-token HMAC key shared by all nodes.
const HANDLE_KEY: &str = "lease_handle_key";

pub(crate) async fn run(client: &mut deadpool_postgres::Object, schema: Option<&str>) -> WharfResult<()> {
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)]).await.map_err(db_error)?;
    if let Some(schema) = schema {
        // The name was checked to be a plain identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}"))
            .await
            .map_err(db_error)?;
    }
    // Checked first: CREATE TABLE IF NOT EXISTS needs the CREATE privilege
    // even when the table exists, and an up-to-date node should not need it.
    let tracked: bool = tx
        .query_one("SELECT to_regclass('wharf_migrations') IS NOT NULL", &[])
        .await
        .map_err(db_error)?
        .try_get(0)
        .map_err(db_error)?;
    if !tracked {
        tx.batch_execute("CREATE TABLE wharf_migrations (version integer PRIMARY KEY, name text NOT NULL)")
            .await
            .map_err(db_error)?;
    }
    let applied: Vec<i32> = tx
        .query("SELECT version FROM wharf_migrations ORDER BY version", &[])
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    if let Some(newest) = applied.iter().max() {
        let known = MIGRATIONS.last().map_or(0, |migration| migration.version);
        if *newest > known {
            return Err(WharfError::internal(format!(
                "the database schema is at version {newest}, newer than this wharf knows ({known}); upgrade wharf"
            )));
        }
    }
    for migration in MIGRATIONS.iter().filter(|migration| !applied.contains(&migration.version)) {
        tx.batch_execute(migration.sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO wharf_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(db_error)?;
        tracing::info!(version = migration.version, name = migration.name, "applied database migration");
    }
    tx.commit().await.map_err(db_error)
}

/// The lease-token key: made by the first node, read by every other one.
pub(crate) async fn handle_key(client: &impl GenericClient) -> WharfResult<[u8; 32]> {
    let fresh: [u8; 32] = rand::random();
    client
        .execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&HANDLE_KEY, &fresh.as_slice()],
        )
        .await
        .map_err(db_error)?;
    let row = client.query_one("SELECT value FROM settings WHERE key = $1", &[&HANDLE_KEY]).await.map_err(db_error)?;
    let stored: Vec<u8> = row.try_get(0).map_err(db_error)?;
    stored.try_into().map_err(|_| WharfError::internal("the stored lease handle key is not 32 bytes"))
}

fn lock_key(schema: Option<&str>) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in schema.unwrap_or("").bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    LOCK_KEY ^ (hash as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration file that is not listed would never run: every
    /// `migrations/NNNN_name.sql` must be in `MIGRATIONS` with that version,
    /// name and text, and the versions must run 1, 2, 3, … without gaps.
    #[test]
    fn every_migration_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<(i32, String, String)> = std::fs::read_dir(&dir)
            .expect("migrations directory")
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .map(|path| {
                let stem = path.file_stem().and_then(|stem| stem.to_str()).expect("utf-8 file name").to_string();
                let (number, name) = stem.split_once('_').unwrap_or_else(|| panic!("{stem}.sql is not NNNN_name.sql"));
                let version = number.parse().unwrap_or_else(|_| panic!("{stem}.sql does not start with a number"));
                (version, name.to_string(), std::fs::read_to_string(&path).expect("readable migration"))
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no migration files in {}", dir.display());
        let listed: Vec<(i32, String, String)> = MIGRATIONS
            .iter()
            .map(|migration| (migration.version, migration.name.to_string(), migration.sql.to_string()))
            .collect();
        let summary = |all: &[(i32, String, String)]| -> Vec<(i32, String)> {
            all.iter().map(|(version, name, _)| (*version, name.clone())).collect()
        };
        assert_eq!(summary(&listed), summary(&files), "MIGRATIONS must list exactly the files, in order");
        assert_eq!(listed, files, "each listed migration includes its own file");
        for (position, (version, _, _)) in listed.iter().enumerate() {
            assert_eq!(*version as usize, position + 1, "versions are 1, 2, 3, … without gaps");
        }
    }
}
