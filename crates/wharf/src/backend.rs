//! Backend selection: every storage backend is opened here as an
//! `Arc<dyn Broker>`, so adding one is a variant and a match arm.

use std::sync::Arc;

use serde::Deserialize;
use wharf_core::{Broker, SystemClock};
use wharf_engine::{Engine, EngineConfig};

use crate::config::ServeConfig;
use crate::Fatal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded engine: durable storage in `data_dir`.
    Engine,
    /// PostgreSQL at `database_url`.
    Postgres,
}

pub async fn open(config: &ServeConfig) -> Result<Arc<dyn Broker>, Fatal> {
    match config.backend {
        BackendKind::Engine => {
            let data_dir = &config.data_dir;
            std::fs::create_dir_all(data_dir).map_err(|error| {
                Fatal::runtime(format!("cannot create data directory {}: {error}", data_dir.display()))
            })?;
            let engine_config = EngineConfig {
                data_dir: data_dir.clone(),
                limits: config.limits.clone(),
                clock: Arc::new(SystemClock),
            };
            let engine = Engine::open(engine_config).await.map_err(|error| {
                Fatal::runtime(format!("cannot open data directory {}: {error}", data_dir.display()))
            })?;
            Ok(engine)
        }
        BackendKind::Postgres => {
            let Some(url) = config.database_url.as_deref() else {
                return Err(Fatal::config("--backend postgres needs --database-url or WHARF_DATABASE_URL"));
            };
            let broker = wharf_postgres::open_from_url(
                url,
                config.pool_size,
                config.vacuum_after_rows,
                config.limits.clone(),
                Arc::new(SystemClock),
            )
            .await
            .map_err(|error| Fatal::runtime(format!("cannot open the postgres database: {error}")))?;
            Ok(broker)
        }
    }
}
