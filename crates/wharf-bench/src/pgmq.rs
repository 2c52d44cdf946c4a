//! The pgmq pattern on PostgreSQL, as pgmq itself runs it: one table per
//! queue, INSERT to send, `UPDATE … FOR UPDATE SKIP LOCKED … RETURNING` with a
//! visibility timeout to read, DELETE to ack. Every statement commits on its
//! own, with the server's default `synchronous_commit = on`, so a successful
//! send or ack is as durable as a Wharf 2xx.

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use crate::body::{self, BodyHeader};
use crate::error::{BenchError, BenchResult};
use crate::wharf::VISIBILITY_TIMEOUT_MS;

/// A queue table created for one workload.
pub struct PgmqQueue {
    database_url: String,
    table: String,
}

async fn connect(database_url: &str) -> BenchResult<Client> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .map_err(|source| BenchError::Postgres { operation: "connect", source })?;
    // The connection task ends when the client is dropped.
    tokio::spawn(connection);
    Ok(client)
}

impl PgmqQueue {
    /// `name` must be a plain identifier (lowercase letters, digits, `_`).
    pub async fn create(database_url: &str, name: &str) -> BenchResult<Self> {
        let table = format!("q_{}", name.replace('-', "_"));
        let client = connect(database_url).await?;
        let ddl = format!(
            "CREATE TABLE {table} (
                msg_id BIGINT PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
                read_ct INT DEFAULT 0 NOT NULL,
                enqueued_at TIMESTAMPTZ DEFAULT now() NOT NULL,
                vt TIMESTAMPTZ NOT NULL,
                message JSONB
            );
            CREATE INDEX {table}_vt_idx ON {table} (vt ASC);"
        );
        client
            .batch_execute(&ddl)
            .await
            .map_err(|source| BenchError::Postgres { operation: "create table", source })?;
        Ok(Self { database_url: database_url.to_owned(), table })
    }

    pub async fn backlog(&self) -> BenchResult<u64> {
        let client = connect(&self.database_url).await?;
        let row = client
            .query_one(&format!("SELECT count(*) FROM {}", self.table), &[])
            .await
            .map_err(|source| BenchError::Postgres { operation: "count", source })?;
        let count: i64 = row.try_get(0).map_err(|source| BenchError::Postgres { operation: "count", source })?;
        Ok(count.max(0) as u64)
    }

    pub async fn delete(&self) -> BenchResult<()> {
        let client = connect(&self.database_url).await?;
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {}", self.table))
            .await
            .map_err(|source| BenchError::Postgres { operation: "drop table", source })
    }

    pub async fn session(&self, phase: u8, body_len: usize, pull_size: usize) -> BenchResult<PgmqSession> {
        let client = connect(&self.database_url).await?;
        let table = &self.table;
        let prepare = |sql: String| {
            let client = &client;
            async move { client.prepare(&sql).await.map_err(|source| BenchError::Postgres { operation: "prepare", source }) }
        };
        let send_one =
            prepare(format!("INSERT INTO {table} (vt, message) VALUES (clock_timestamp(), to_jsonb($1::text))"))
                .await?;
        let send_batch = prepare(format!(
            "INSERT INTO {table} (vt, message) SELECT clock_timestamp(), to_jsonb(m) FROM unnest($1::text[]) AS m"
        ))
        .await?;
        let read = prepare(format!(
            "WITH cte AS (SELECT msg_id FROM {table} WHERE vt <= clock_timestamp() ORDER BY msg_id ASC \
             LIMIT $1 FOR UPDATE SKIP LOCKED) \
             UPDATE {table} m SET vt = clock_timestamp() + $2 * interval '1 millisecond', read_ct = read_ct + 1 \
             FROM cte WHERE m.msg_id = cte.msg_id \
             RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message"
        ))
        .await?;
        let delete_one = prepare(format!("DELETE FROM {table} WHERE msg_id = $1")).await?;
        let delete_batch = prepare(format!("DELETE FROM {table} WHERE msg_id = ANY($1)")).await?;
        Ok(PgmqSession {
            client,
            send_one,
            send_batch,
            read,
            delete_one,
            delete_batch,
            phase,
            body_len,
            bodies: Vec::new(),
            scratch: String::new(),
            pull_size: pull_size as i64,
            staged: Vec::with_capacity(pull_size),
        })
    }
}

/// A jsonb (or json/text) column read without copying: jsonb's binary form is
/// a version byte followed by the JSON text.
struct RawJson<'a>(&'a [u8]);

impl<'a> FromSql<'a> for RawJson<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawJson(if *ty == Type::JSONB { raw.get(1..).unwrap_or_default() } else { raw }))
    }

    fn accepts(ty: &Type) -> bool {
        [Type::JSONB, Type::JSON, Type::TEXT].contains(ty)
    }
}

/// One task's connection with its prepared statements and body buffers.
pub struct PgmqSession {
    client: Client,
    send_one: Statement,
    send_batch: Statement,
    read: Statement,
    delete_one: Statement,
    delete_batch: Statement,
    phase: u8,
    body_len: usize,
    bodies: Vec<String>,
    scratch: String,
    pull_size: i64,
    staged: Vec<i64>,
}

impl PgmqSession {
    pub async fn push(&mut self, first_seq: u64, count: usize, sent_us: u64) -> BenchResult<()> {
        while self.bodies.len() < count {
            self.bodies.push(body::body_text(self.phase, self.body_len));
        }
        for (index, text) in self.bodies[..count].iter_mut().enumerate() {
            body::patch(text, 0, &mut self.scratch, first_seq + index as u64, sent_us);
        }
        let outcome = if count == 1 {
            self.client.execute(&self.send_one, &[&self.bodies[0]]).await
        } else {
            self.client.execute(&self.send_batch, &[&&self.bodies[..count]]).await
        };
        outcome.map_err(|source| BenchError::Postgres { operation: "send", source })?;
        Ok(())
    }

    pub async fn pull(&mut self, out: &mut Vec<BodyHeader>) -> BenchResult<()> {
        let visibility_ms = VISIBILITY_TIMEOUT_MS as f64;
        let rows = self
            .client
            .query(&self.read, &[&self.pull_size, &visibility_ms])
            .await
            .map_err(|source| BenchError::Postgres { operation: "read", source })?;
        self.staged.clear();
        for row in &rows {
            let read = |source| BenchError::Postgres { operation: "read", source };
            let msg_id: i64 = row.try_get(0).map_err(read)?;
            let RawJson(raw) = row.try_get(4).map_err(read)?;
            let header = body::parse(raw).ok_or_else(|| BenchError::ForeignBody { preview: body::preview(raw) })?;
            out.push(header);
            self.staged.push(msg_id);
        }
        Ok(())
    }

    pub async fn ack(&mut self) -> BenchResult<u64> {
        let outcome = match self.staged.as_slice() {
            [] => return Ok(0),
            [one] => self.client.execute(&self.delete_one, &[one]).await,
            many => self.client.execute(&self.delete_batch, &[&many]).await,
        };
        self.staged.clear();
        outcome.map_err(|source| BenchError::Postgres { operation: "delete", source })
    }
}
