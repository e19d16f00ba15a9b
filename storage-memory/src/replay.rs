//! The replay cache ([`ReplayStore`]): one-time values (DPoP proof and JWT
//! assertion `jti`s) remembered until they expire, bounded per namespace.
//!
//! ## When it is full
//!
//! Entries are chosen by whoever presents a validly signed value, so their
//! number is capped, per [`ReplayNamespace`]
//! ([`MemoryStore::with_replay_capacity`]). At the cap, expired entries are
//! swept first (that shard at once; the whole namespace at most once a
//! second); if the namespace is still full, the new value is refused with
//! [`StoreError::Unavailable`] (the client hears `503
//! temporarily_unavailable` and may retry) rather than a live entry being
//! dropped, which would let a replay through. Namespaces are independent:
//! a flood of DPoP proofs does not refuse client assertions. Entries live
//! only as long as the core's acceptance window (about a minute), so a
//! flooder must keep presenting `capacity / window` validly signed values a
//! second to hold a namespace full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use tessera::StoreError;
use tessera::storage::{ReplayKey, ReplayNamespace};
use time::OffsetDateTime;

use crate::shard::Shards;

/// The default cap on live entries per namespace: about 25 MB at most.
pub(crate) const DEFAULT_REPLAY_CAPACITY: usize = 250_000;

/// Shards of each namespace's map.
const SHARDS: usize = 16;

/// Namespaces the cache knows (an unknown future one shares the last slot).
const NAMESPACES: usize = 3;

fn slot(ns: ReplayNamespace) -> usize {
    match ns {
        ReplayNamespace::Dpop => 0,
        ReplayNamespace::ClientAssertion => 1,
        _ => 2,
    }
}

/// The key hashes are SHA-256 of values an attacker chooses (and can grind
/// offline), so the maps use the standard library's keyed SipHash.
type Entries = HashMap<[u8; 32], OffsetDateTime>;

struct Namespace {
    shards: Shards<Entries>,
    live: AtomicUsize,
    /// Unix seconds of the last whole-namespace sweep done at the cap.
    last_full_sweep: AtomicI64,
}

pub(crate) struct ReplayCache {
    namespaces: [Namespace; NAMESPACES],
    capacity: usize,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            namespaces: std::array::from_fn(|_| Namespace {
                shards: Shards::new(SHARDS),
                live: AtomicUsize::new(0),
                last_full_sweep: AtomicI64::new(i64::MIN),
            }),
            capacity,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held in `ns` (expired-but-unswept included).
    pub(crate) fn len(&self, ns: ReplayNamespace) -> usize {
        self.namespaces[slot(ns)].live.load(Ordering::Relaxed)
    }

    pub(crate) fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let ns = &self.namespaces[slot(key.namespace())];
        let hash = *key.hash();
        let mut shard = ns.shards.lock(hash[0]);
        if let Some(until) = shard.get_mut(&hash) {
            if *until > now {
                return Ok(false);
            }
            *until = expires_at;
            return Ok(true);
        }
        if ns.live.load(Ordering::Relaxed) >= self.capacity {
            let before = shard.len();
            shard.retain(|_, until| *until > now);
            ns.live.fetch_sub(before - shard.len(), Ordering::Relaxed);
            if ns.live.load(Ordering::Relaxed) >= self.capacity {
                drop(shard);
                self.sweep_namespace_at_most_once_a_second(ns, now);
                shard = ns.shards.lock(hash[0]);
                if ns.live.load(Ordering::Relaxed) >= self.capacity {
                    return Err(StoreError::unavailable(format!(
                        "the replay cache for {} is full ({} live entries)",
                        key.namespace(),
                        self.capacity
                    )));
                }
            }
        }
        // Another caller may have inserted it while the lock was released.
        if shard.get(&hash).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if shard.insert(hash, expires_at).is_none() {
            ns.live.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    fn sweep_namespace_at_most_once_a_second(&self, ns: &Namespace, now: OffsetDateTime) {
        let second = now.unix_timestamp();
        let last = ns.last_full_sweep.load(Ordering::Relaxed);
        if last >= second
            || ns
                .last_full_sweep
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        sweep_namespace(ns, now);
    }

    /// Forgets every entry expired by `now`.
    pub(crate) fn sweep(&self, now: OffsetDateTime) {
        for ns in &self.namespaces {
            sweep_namespace(ns, now);
        }
    }
}

fn sweep_namespace(ns: &Namespace, now: OffsetDateTime) {
    for mut shard in ns.shards.each() {
        let before = shard.len();
        shard.retain(|_, until| *until > now);
        ns.live.fetch_sub(before - shard.len(), Ordering::Relaxed);
        crate::shard::shrink_if_sparse(&mut shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: ReplayNamespace, jti: &str) -> ReplayKey {
        ReplayKey::new(ns, "owner", jti)
    }

    #[test]
    fn a_full_namespace_refuses_only_itself_and_frees_expired_entries() {
        let cache = ReplayCache::new(3);
        let now = OffsetDateTime::now_utc();
        let soon = now + time::Duration::seconds(10);
        for i in 0..3 {
            assert!(
                cache
                    .first_use(key(ReplayNamespace::Dpop, &i.to_string()), soon, now)
                    .unwrap()
            );
        }
        let full = cache.first_use(key(ReplayNamespace::Dpop, "x"), soon, now);
        assert!(matches!(full, Err(StoreError::Unavailable(_))));
        // A replay is still recognised at the cap.
        assert!(
            !cache
                .first_use(key(ReplayNamespace::Dpop, "0"), soon, now)
                .unwrap()
        );
        // Another namespace is not refused.
        assert!(
            cache
                .first_use(key(ReplayNamespace::ClientAssertion, "x"), soon, now)
                .unwrap()
        );
        // Once the entries expired, the namespace takes new values again.
        let later = soon + time::Duration::seconds(1);
        let after = later + time::Duration::seconds(10);
        assert!(
            cache
                .first_use(key(ReplayNamespace::Dpop, "x"), after, later)
                .unwrap()
        );
        cache.sweep(later);
        assert_eq!(cache.len(ReplayNamespace::Dpop), 1);
    }
}
