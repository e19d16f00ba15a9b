//! The replay cache ([`ReplayStore`]) in PostgreSQL: one table, one
//! statement per value. `INSERT … ON CONFLICT DO UPDATE … WHERE expired`
//! is atomic per row: of racing inserters of one key exactly one inserts
//! (or takes over an expired row); the others see the live row and get
//! nothing back. Expired rows are deleted by [`PostgresStore::sweep`].

use async_trait::async_trait;
use time::OffsetDateTime;

use tessera::StoreError;
use tessera::storage::{ReplayKey, ReplayStore};

use crate::PostgresStore;

/// The replay cache statements, for one schema.
#[derive(Debug)]
pub(crate) struct ReplaySql {
    first_use: String,
    pub(crate) sweep: String,
}

impl ReplaySql {
    pub(crate) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let q = |text: &str| text.replace("{s}", &s);
        Self {
            // $1 namespace, $2 hash, $3 expires_at, $4 now.
            first_use: q(
                "INSERT INTO {s}.replay_cache AS r (namespace, hash, expires_at)
                VALUES ($1, $2, $3)
                ON CONFLICT (namespace, hash) DO UPDATE SET expires_at = EXCLUDED.expires_at
                    WHERE r.expires_at <= $4
                RETURNING 1",
            ),
            sweep: q("DELETE FROM {s}.replay_cache WHERE (namespace, hash) IN (
                     SELECT namespace, hash FROM {s}.replay_cache WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"),
        }
    }
}

#[async_trait]
impl ReplayStore for PostgresStore {
    /// One statement. The table is bounded by the sweeper: rows live only
    /// as long as the core's acceptance window.
    async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let row = self
            .bounded(
                sqlx::query(&self.inner.replay.first_use)
                    .bind(key.namespace().as_str())
                    .bind(&key.hash()[..])
                    .bind(expires_at)
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_schema() {
        let sql = ReplaySql::new("tenant_a");
        assert!(sql.first_use.contains("\"tenant_a\".replay_cache"));
        assert!(sql.sweep.contains("\"tenant_a\".replay_cache"));
    }
}
