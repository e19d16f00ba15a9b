//! The provider's store: in memory, Redis or PostgreSQL (`--store`).

use std::sync::Arc;
use std::time::Duration;

use tessera::Store;
use tessera_memory::MemoryStore;
use tessera_postgres::PostgresStore;
use tessera_redis::{ConnectError, RedisStore};

use crate::clients::seeded_clients;
use crate::config::StoreSpec;

/// How long connecting to Redis may take at start-up before giving up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long connecting to PostgreSQL (and creating or migrating its
/// schema) may take at start-up before giving up.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the memory and PostgreSQL stores forget expired records.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Why the store could not be opened: one line, fit for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Redis did not answer, or refused.
    #[error("cannot use the Redis store {store}: {reason}")]
    Redis {
        /// The store, password masked.
        store: String,
        /// What went wrong, on one line.
        reason: String,
    },
    /// PostgreSQL did not answer, refused, or its schema could not be migrated.
    #[error("cannot use the PostgreSQL store {store}: {reason}")]
    Postgres {
        /// The store, password masked.
        store: String,
        /// What went wrong, on one line.
        reason: String,
    },
}

/// A connection error without the URL (which may hold a password).
fn describe(error: &ConnectError) -> String {
    match error {
        ConnectError::Unreachable { reason, .. } => format!("unreachable ({reason})"),
        ConnectError::InvalidUrl { reason, .. } => format!("invalid URL ({reason})"),
        other => other.to_string(),
    }
}

/// A PostgreSQL connection error without the URL (which the message names already).
fn describe_postgres(error: &tessera_postgres::ConnectError) -> String {
    use tessera_postgres::ConnectError as E;
    match error {
        E::Unreachable { reason, .. } => format!("unreachable ({reason})"),
        E::Refused { reason, .. } => format!("refused ({reason})"),
        E::InvalidUrl { reason, .. } => format!("invalid URL ({reason})"),
        E::Migration { reason, .. } => format!("cannot migrate its schema ({reason})"),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A memory store holding the demo clients (no sweeper: see [`open`]).
pub fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::with_clients(seeded_clients()))
}

/// Opens the store `spec` names and seeds it: in process memory with the
/// demo clients, or Redis or PostgreSQL, seeded with them if it had no
/// clients. Either way the server holds it as `Arc<dyn Store>`. Must run on
/// a Tokio runtime (the memory and PostgreSQL stores' sweepers are spawned on it).
pub async fn open(spec: &StoreSpec) -> Result<Arc<dyn Store>, OpenError> {
    match spec {
        StoreSpec::Memory => {
            let store = Arc::new(MemoryStore::with_clients(seeded_clients()));
            // Ends by itself once the store is dropped.
            drop(store.spawn_sweeper(SWEEP_EVERY));
            Ok(store)
        }
        StoreSpec::Redis(url) => {
            let fail = |reason: String| OpenError::Redis {
                store: spec.to_string(),
                reason: one_line(&reason),
            };
            let store = RedisStore::connect(url.clone())
                .connect_timeout(REDIS_CONNECT_TIMEOUT)
                .await
                .map_err(|e| fail(describe(&e)))?;
            if store.is_empty().await.map_err(|e| fail(e.to_string()))? {
                for client in seeded_clients() {
                    store
                        .put_client(&client)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                }
                tracing::info!(store = %spec, "seeded the demo clients into an empty Redis store");
            } else {
                tracing::info!(store = %spec, "Redis store already has clients; not seeding");
            }
            Ok(Arc::new(store))
        }
        StoreSpec::Postgres(url) => {
            let fail = |reason: String| OpenError::Postgres {
                store: spec.to_string(),
                reason: one_line(&reason),
            };
            let store = PostgresStore::connect(url.clone())
                .connect_timeout(POSTGRES_CONNECT_TIMEOUT)
                .await
                .map_err(|e| fail(describe_postgres(&e)))?;
            if store.is_empty().await.map_err(|e| fail(e.to_string()))? {
                for client in seeded_clients() {
                    store
                        .put_client(&client)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                }
                tracing::info!(store = %spec, "seeded the demo clients into an empty PostgreSQL store");
            } else {
                tracing::info!(store = %spec, "PostgreSQL store already has clients; not seeding");
            }
            // Expired rows are deleted in batches; every instance may sweep
            // (SKIP LOCKED). Ends by itself once the store is dropped.
            drop(store.spawn_sweeper(SWEEP_EVERY));
            Ok(Arc::new(store))
        }
    }
}
