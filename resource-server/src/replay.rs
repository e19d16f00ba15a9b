//! The default replay cache of DPoP proofs' `jti`s (RFC 9449 §11.1) for a
//! resource server without a Tessera store: in this process, bounded.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use tessera::StoreError;
use tessera::storage::{ReplayKey, ReplayStore};
use time::OffsetDateTime;

/// The default cap on live entries: about 10 MB at most.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// A [`ReplayStore`] in this process's memory, for one resource server
/// instance: each DPoP proof's `jti` is remembered until the proof could no
/// longer be accepted (its `iat` window, about a minute), so a proof is
/// used once here (RFC 9449 §11.1).
///
/// Bounded: at most `capacity` live entries. At the cap, expired entries
/// are swept (at most once a second); if it is still full, the new proof
/// is refused with [`StoreError::Unavailable`] (the request hears `503
/// temporarily_unavailable` and may retry) rather than a live entry being
/// forgotten, which would let its replay through. Entries are only made
/// for proofs by the key a valid access token is bound to, so filling it
/// takes a bound token, its key, and `capacity` proofs a minute.
///
/// Several instances of a resource server must share one store instead
/// (e.g. `tessera_redis::RedisStore`), or a proof used at one is accepted
/// at another: see `replay_store` on the verifier builders.
pub struct MemoryReplayCache {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    /// The key's expiry. Keys are SHA-256 hashes of values an attacker
    /// chooses; the map is the standard library's keyed SipHash.
    entries: HashMap<ReplayKey, OffsetDateTime>,
    /// Unix second of the last full sweep done at the cap.
    last_sweep: Option<i64>,
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` live entries (see
    /// [`DEFAULT_REPLAY_CAPACITY`]).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity,
        }
    }

    /// The cap on live entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryReplayCache {
    /// A cache of [`DEFAULT_REPLAY_CAPACITY`] entries.
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayCache {
    async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if let Some(until) = state.entries.get_mut(&key) {
            if *until > now {
                return Ok(false);
            }
            *until = expires_at;
            return Ok(true);
        }
        if state.entries.len() >= self.capacity {
            let second = now.unix_timestamp();
            if state.last_sweep.is_none_or(|last| last < second) {
                state.last_sweep = Some(second);
                state.entries.retain(|_, until| *until > now);
                if state.entries.len() < state.entries.capacity() / 4 {
                    state.entries.shrink_to_fit();
                }
            }
            if state.entries.len() >= self.capacity {
                return Err(StoreError::unavailable(format!(
                    "the DPoP replay cache is full ({} live entries)",
                    self.capacity
                )));
            }
        }
        state.entries.insert(key, expires_at);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera::storage::ReplayNamespace;
    use time::Duration;

    fn key(jti: &str) -> ReplayKey {
        ReplayKey::new(ReplayNamespace::Dpop, "jkt", jti)
    }

    #[tokio::test]
    async fn a_full_cache_refuses_new_values_and_never_forgets_a_live_one() {
        let cache = MemoryReplayCache::new(2);
        let now = OffsetDateTime::now_utc();
        let soon = now + Duration::seconds(60);
        assert!(cache.first_use(key("a"), soon, now).await.unwrap());
        assert!(
            !cache.first_use(key("a"), soon, now).await.unwrap(),
            "a replay"
        );
        assert!(cache.first_use(key("b"), soon, now).await.unwrap());
        // Full of live entries: refused (503), not evicted.
        assert!(matches!(
            cache.first_use(key("c"), soon, now).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(!cache.first_use(key("a"), soon, now).await.unwrap());
        assert!(!cache.first_use(key("b"), soon, now).await.unwrap());
        // Once they expired, new values are taken again.
        let later = soon + Duration::seconds(1);
        assert!(
            cache
                .first_use(key("c"), later + Duration::seconds(60), later)
                .await
                .unwrap()
        );
        assert_eq!(cache.len(), 1);
        // An expired entry is a first use again (its proof is refused by
        // the iat window long before).
        assert!(
            cache
                .first_use(key("a"), later + Duration::seconds(60), later)
                .await
                .unwrap()
        );
    }
}
