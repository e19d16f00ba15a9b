//! The replay cache ([`ReplayStore`]) on Redis: one `SET NX PX` per value.

use async_trait::async_trait;
use redis::Value;
use time::OffsetDateTime;

use tessera::StoreError;
use tessera::storage::{ReplayKey, ReplayStore};

use crate::store::RedisStore;

#[async_trait]
impl ReplayStore for RedisStore {
    /// `SET <prefix>r:<namespace>:<hash> 1 NX PX <expires_at - now>`: one
    /// command on one key (any cluster slot), which Redis runs atomically:
    /// of racing callers exactly one sets the key. The entry lives as long
    /// as the value can be accepted, counted from now on Redis's clock: an
    /// absolute `PXAT` from this instance's clock would let a Redis whose
    /// clock runs ahead forget the value while it is still accepted (a
    /// replay). Bounded like every key, by the server's `maxmemory` (with
    /// `noeviction`, a full Redis refuses the write: `Unavailable`, never a
    /// silent replay).
    async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let ttl_ms = i64::try_from((expires_at - now).whole_milliseconds()).unwrap_or(i64::MAX);
        if ttl_ms <= 0 {
            // Over already: nothing to remember; a first use unless a live
            // entry holds the value (as the other stores answer).
            let reply = self
                .exec(redis::cmd("EXISTS").arg(self.keys().replay(&key)))
                .await?;
            return match reply {
                Value::Int(n) => Ok(n == 0),
                _ => Err(StoreError::other("unexpected reply to EXISTS")),
            };
        }
        let reply = self
            .exec(
                redis::cmd("SET")
                    .arg(self.keys().replay(&key))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms),
            )
            .await?;
        match reply {
            Value::Nil => Ok(false),
            Value::Okay | Value::SimpleString(_) => Ok(true),
            _ => Err(StoreError::other("unexpected reply to SET NX")),
        }
    }
}
