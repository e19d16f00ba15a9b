//! Device authorization requests (RFC 8628) in PostgreSQL: one table, found
//! by device code or user code. Putting, finding and deciding are one
//! statement each; a poll is one short transaction that locks the row,
//! applies [`DeviceRecord::poll`] (the core's pure transition) and writes
//! the outcome, so of many pollers of an approved code exactly one gets it.

use async_trait::async_trait;
use time::OffsetDateTime;

use tessera::storage::{DevicePoll, DeviceRecord, DeviceStatus, DeviceStore};
use tessera::{ClientId, SecretKey, StoreError, TokenHash};

use crate::{PostgresStore, decode, encode};

/// How long an expired request is kept, so that a late poll hears
/// `expired_token` rather than `invalid_grant` (RFC 8628 §3.5).
const GRACE: time::Duration = time::Duration::minutes(10);

/// The device statements, for one schema.
#[derive(Debug)]
pub(crate) struct DeviceSql {
    put: String,
    by_user_code: String,
    decide: String,
    lock: String,
    update: String,
    delete: String,
    pub(crate) sweep: String,
}

impl DeviceSql {
    pub(crate) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let q = |text: &str| text.replace("{s}", &s);
        Self {
            // $1 grant, $2 hash, $3 user code, $4 expires_at, $5 keep_until,
            // $6 record, $7 now. A user code still live is not taken over.
            put: q("INSERT INTO {s}.devices AS d
                    (device_grant, device_hash, user_code, expires_at, keep_until, record)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb)
                ON CONFLICT (user_code) DO UPDATE
                    SET device_grant = EXCLUDED.device_grant, device_hash = EXCLUDED.device_hash,
                        expires_at = EXCLUDED.expires_at, keep_until = EXCLUDED.keep_until,
                        record = EXCLUDED.record
                    WHERE d.expires_at <= $7
                RETURNING 1"),
            by_user_code: q("SELECT record::text FROM {s}.devices
                WHERE user_code = $1 AND expires_at > $2"),
            // $1 user code, $2 status JSON, $3 now: only a pending, live request.
            decide: q(
                "UPDATE {s}.devices SET record = jsonb_set(record, '{status}', $2::jsonb)
                WHERE user_code = $1 AND expires_at > $3 AND record->'status'->>'state' = 'pending'
                RETURNING 1",
            ),
            lock: q("SELECT record::text FROM {s}.devices
                WHERE device_grant = $1 AND device_hash = $2 FOR UPDATE"),
            update: q("UPDATE {s}.devices SET record = $3::jsonb
                WHERE device_grant = $1 AND device_hash = $2"),
            delete: q("DELETE FROM {s}.devices WHERE device_grant = $1 AND device_hash = $2"),
            sweep: q(
                "DELETE FROM {s}.devices WHERE (device_grant, device_hash) IN (
                     SELECT device_grant, device_hash FROM {s}.devices WHERE keep_until <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)",
            ),
        }
    }
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn put_device(
        &self,
        device: SecretKey,
        user_code: TokenHash,
        record: DeviceRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let json = encode(&record)?;
        let row = self
            .bounded(
                sqlx::query(&self.inner.devices.put)
                    .bind(&device.grant.0[..])
                    .bind(&device.hash.0[..])
                    .bind(&user_code.0[..])
                    .bind(record.expires_at)
                    .bind(record.expires_at + GRACE)
                    .bind(json)
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        Ok(row.is_some())
    }

    async fn device_by_user_code(
        &self,
        user_code: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let raw: Option<String> = self
            .bounded(
                sqlx::query_scalar(&self.inner.devices.by_user_code)
                    .bind(&user_code.0[..])
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        raw.map(|raw| decode("device record", &raw)).transpose()
    }

    async fn decide_device(
        &self,
        user_code: TokenHash,
        decision: DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let status = encode(&decision)?;
        let row = self
            .bounded(
                sqlx::query(&self.inner.devices.decide)
                    .bind(&user_code.0[..])
                    .bind(status)
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        Ok(row.is_some())
    }

    async fn poll_device(
        &self,
        device: SecretKey,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        let sql = &self.inner.devices;
        let pool = &self.inner.pool;
        let poll = async {
            let mut tx = pool.begin().await?;
            let raw: Option<String> = sqlx::query_scalar(&sql.lock)
                .bind(&device.grant.0[..])
                .bind(&device.hash.0[..])
                .fetch_optional(&mut *tx)
                .await?;
            let Some(raw) = raw else {
                return Ok(Ok(DevicePoll::Unknown));
            };
            let record: DeviceRecord = match decode("device record", &raw) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let (answer, keep) = record.poll(client, now);
            match keep {
                Some(next) => {
                    let json = match encode(&next) {
                        Ok(j) => j,
                        Err(e) => return Ok(Err(e)),
                    };
                    sqlx::query(&sql.update)
                        .bind(&device.grant.0[..])
                        .bind(&device.hash.0[..])
                        .bind(json)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    sqlx::query(&sql.delete)
                        .bind(&device.grant.0[..])
                        .bind(&device.hash.0[..])
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Ok(answer))
        };
        self.bounded(poll).await?
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_name_the_schema() {
        let sql = super::DeviceSql::new("tenant_a");
        assert!(sql.put.contains("\"tenant_a\".devices"));
        assert!(sql.sweep.contains("\"tenant_a\".devices"));
    }
}
