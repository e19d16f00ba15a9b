//! The replay cache ([`ReplayStore`]) on Redis: one `SET NX PXAT` per value.

use async_trait::async_trait;
use redis::Value;
use time::OffsetDateTime;

use tessera::StoreError;
use tessera::storage::{ReplayKey, ReplayStore};

use crate::store::{RedisStore, pxat};

#[async_trait]
impl ReplayStore for RedisStore {
    /// `SET <prefix>r:<namespace>:<hash> 1 NX PXAT <expires_at>`: one
    /// command on one key (any cluster slot), which Redis runs atomically:
    /// of racing callers exactly one sets the key. Redis forgets the entry
    /// at `expires_at` by its own clock; bounded like every key, by the
    /// server's `maxmemory` (with `noeviction`, a full Redis refuses the
    /// write: `Unavailable`, never a silent replay).
    async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let reply = self
            .exec(
                redis::cmd("SET")
                    .arg(self.keys().replay(&key))
                    .arg(1)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(pxat(expires_at)),
            )
            .await?;
        match reply {
            Value::Nil => Ok(false),
            Value::Okay | Value::SimpleString(_) => Ok(true),
            _ => Err(StoreError::other("unexpected reply to SET NX")),
        }
    }
}
