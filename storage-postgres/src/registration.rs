//! Dynamically registered clients (RFC 7591) in PostgreSQL: rows of
//! `clients` with `dynamic = true` and an `unused_until` (migration
//! `0004_client_registration.sql`): the deadline to obtain a first token,
//! then the idle deadline each token moves, or none for a client kept for
//! good.
//!
//! A registration is one short transaction holding a transaction-scoped
//! advisory lock (one per schema), so racing registrations on any number of
//! instances are counted one after the other and never exceed the cap;
//! readers of `clients` are not blocked. Registrations that lapsed
//! are deleted in the same transaction, so the table holds at most the cap
//! of dynamic clients plus those lapsed since the last registration.

use sqlx::{Acquire, Row};
use time::OffsetDateTime;

use tessera::{Client, ClientId, RegisterOutcome, StoreError};

use crate::{PostgresStore, encode};

impl PostgresStore {
    fn registration_sql(&self, text: &str) -> String {
        text.replace("{s}", &format!("\"{}\"", self.schema()))
    }

    /// [`tessera::ClientRegistry::register_client`].
    pub(crate) async fn register_dynamic(
        &self,
        client: Client,
        max_dynamic: usize,
        now: OffsetDateTime,
    ) -> Result<RegisterOutcome, StoreError> {
        let json = encode(&client)?;
        let until = client.registration.as_ref().and_then(|r| r.unused_until);
        let lock = self.registration_sql("SELECT pg_advisory_xact_lock(hashtext($1))");
        let sweep = self.registration_sql("DELETE FROM {s}.clients WHERE unused_until <= $1");
        let count = self.registration_sql("SELECT count(*) FROM {s}.clients WHERE dynamic");
        let insert = self.registration_sql(
            "INSERT INTO {s}.clients (id, record, dynamic, unused_until)
             VALUES ($1, $2::jsonb, true, $3)
             ON CONFLICT (id) DO NOTHING",
        );
        let lock_key = format!("tessera.registration.{}", self.schema());
        let max = i64::try_from(max_dynamic).unwrap_or(i64::MAX);
        let pool = self.pool().clone();
        self.bounded(async move {
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin().await?;
            sqlx::query(&lock).bind(&lock_key).execute(&mut *tx).await?;
            sqlx::query(&sweep).bind(now).execute(&mut *tx).await?;
            let live: i64 = sqlx::query(&count).fetch_one(&mut *tx).await?.try_get(0)?;
            if live >= max {
                tx.rollback().await?;
                return Ok(RegisterOutcome::CapReached);
            }
            let done = sqlx::query(&insert)
                .bind(client.id.as_str())
                .bind(json)
                .bind(until)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(if done.rows_affected() == 1 {
                RegisterOutcome::Registered
            } else {
                RegisterOutcome::IdTaken
            })
        })
        .await
    }

    /// [`tessera::ClientRegistry::dynamic_client_count`]: one statement.
    pub(crate) async fn count_dynamic(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let text = self.registration_sql(
            "SELECT count(*) FROM {s}.clients
             WHERE dynamic AND (unused_until IS NULL OR unused_until > $1)",
        );
        let n: i64 = self
            .bounded(sqlx::query_scalar(&text).bind(now).fetch_one(self.pool()))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// [`tessera::ClientRegistry::mark_client_used`]: one statement that
    /// sets the column and the record's `registration.unused_until` to
    /// `until` (or clears both), by [`DynamicRegistration::mark_used`]'s
    /// rule: never earlier than it was, and never for a registration that
    /// expired before `now`.
    ///
    /// [`DynamicRegistration::mark_used`]: tessera::DynamicRegistration::mark_used
    pub(crate) async fn mark_dynamic_used(
        &self,
        id: &ClientId,
        now: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let Some(until) = until else {
            let text = self.registration_sql(
                "UPDATE {s}.clients
                 SET unused_until = NULL, updated_at = now(),
                     record = jsonb_set(record, '{registration}', (record->'registration') - 'unused_until')
                 WHERE id = $1 AND unused_until > $2 AND record ? 'registration'",
            );
            return self
                .bounded(
                    sqlx::query(&text)
                        .bind(id.as_str())
                        .bind(now)
                        .execute(self.pool()),
                )
                .await
                .map(drop);
        };
        // The record keeps whole seconds (`time::serde::timestamp`).
        let until = until.replace_nanosecond(0).unwrap_or(until);
        let text = self.registration_sql(
            "UPDATE {s}.clients
             SET unused_until = $3, updated_at = now(),
                 record = jsonb_set(record, '{registration,unused_until}', to_jsonb($4::bigint))
             WHERE id = $1 AND record ? 'registration'
               AND (unused_until IS NULL OR (unused_until > $2 AND unused_until < $3))",
        );
        self.bounded(
            sqlx::query(&text)
                .bind(id.as_str())
                .bind(now)
                .bind(until)
                .bind(until.unix_timestamp())
                .execute(self.pool()),
        )
        .await
        .map(drop)
    }

    /// [`tessera::ClientRegistry::evict_unused_client`]: one statement,
    /// the row nearest its deadline if before `before` (rows another
    /// transaction holds are skipped).
    pub(crate) async fn evict_dynamic(
        &self,
        before: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        let text = self.registration_sql(
            "DELETE FROM {s}.clients WHERE id = (
                 SELECT id FROM {s}.clients
                 WHERE dynamic AND unused_until < $1
                 ORDER BY unused_until LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        );
        let id: Option<String> = self
            .bounded(
                sqlx::query_scalar(&text)
                    .bind(before)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(id.as_deref().and_then(ClientId::new))
    }

    /// [`tessera::ClientRegistry::expire_unused_clients`]: one statement.
    pub(crate) async fn expire_dynamic(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let text = self.registration_sql("DELETE FROM {s}.clients WHERE unused_until <= $1");
        let done = self
            .bounded(sqlx::query(&text).bind(now).execute(self.pool()))
            .await?;
        Ok(done.rows_affected())
    }
}
