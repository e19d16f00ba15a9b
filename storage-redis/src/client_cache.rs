//! The in-process cache of registered clients, so that a token request
//! costs one round trip (the grant step) instead of two (the client, then
//! the step).
//!
//! **Staleness guarantee.** A cached client is answered only while
//! (a) this store's subscription to `<prefix>clients:changed` is up, and
//! (b) the copy is younger than the TTL ([`RedisStoreBuilder::client_cache_ttl`]).
//! Every client write through a [`RedisStore`] drops its own copy and
//! `PUBLISH`es the id there; every subscribed store drops its copy when
//! the message arrives (normally well under a millisecond on one network).
//! While the subscription is down (not yet up, a lost connection,
//! reconnecting) the cache is empty and bypassed, and it is emptied again
//! when the subscription comes back, since messages may have been missed
//! meanwhile. What can still be missed: a write that does not publish
//! (a client key changed by other tools, or expired by Redis itself) and
//! a subscription connection that died silently. The TTL bounds both: no
//! copy is answered after it, whatever was missed.
//!
//! **Races.** A lookup that read a client from Redis before a write, but
//! would cache it after the write's invalidation arrived, would keep the
//! old client until the TTL; so every invalidation bumps an epoch, and a
//! lookup caches its result only if the epoch did not move between before
//! its `GET` and the insert (checked under the write lock the
//! invalidation also takes). Unknown clients are not cached: ids come from
//! unauthenticated requests, and must not fill the cache or hide a client
//! registered a moment later.
//!
//! **Bounded.** At most [`RedisStoreBuilder::client_cache_capacity`]
//! entries; inserting into a full cache first drops expired entries, then
//! an arbitrary one.

#[cfg(doc)]
use crate::{RedisStore, RedisStoreBuilder};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tessera::{Client, ClientId};

struct Entry {
    client: Arc<Client>,
    fetched: Instant,
}

/// The cache: entries, the invalidation epoch, and whether invalidations
/// are being received.
pub(crate) struct ClientCache {
    entries: RwLock<HashMap<ClientId, Entry>>,
    capacity: usize,
    ttl: Duration,
    epoch: AtomicU64,
    live: AtomicBool,
}

impl ClientCache {
    /// A cache of at most `capacity` clients, each answered for at most `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
            ttl,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
        }
    }

    /// The client cached for `id`, if the subscription is up and the copy
    /// is younger than the TTL.
    pub(crate) fn get(&self, id: &ClientId) -> Option<Arc<Client>> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(id)?;
        (entry.fetched.elapsed() < self.ttl).then(|| Arc::clone(&entry.client))
    }

    /// The epoch to hand to [`insert`](Self::insert): read it before the `GET`.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches `client` (read from Redis at `fetched`), unless an
    /// invalidation arrived since `epoch` was read, or the cache is not live.
    pub(crate) fn insert(&self, client: Arc<Client>, epoch: u64, fetched: Instant) {
        if self.capacity == 0 || !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(&client.id) {
            let ttl = self.ttl;
            entries.retain(|_, e| e.fetched.elapsed() < ttl);
            if entries.len() >= self.capacity {
                let victim = entries.keys().next().cloned();
                if let Some(victim) = victim {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(client.id.clone(), Entry { client, fetched });
    }

    /// Drops `id`'s copy; lookups in flight will not cache what they read.
    pub(crate) fn invalidate(&self, id: &ClientId) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Drops every copy.
    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Whether invalidations are being received. Either change empties the
    /// cache: going down, because invalidations may be missed from now on;
    /// coming up, because some may have been missed while it was down.
    pub(crate) fn set_live(&self, live: bool) {
        if self.live.swap(live, Ordering::AcqRel) != live {
            self.clear();
        }
    }

    /// How many entries are held (expired ones included).
    pub(crate) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str) -> Arc<Client> {
        Arc::new(Client::public(ClientId::new(id).unwrap(), id))
    }

    fn id(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }

    #[test]
    fn answers_only_while_live_and_fresh() {
        let cache = ClientCache::new(10, Duration::from_millis(50));
        let e = cache.epoch();
        cache.insert(client("a"), e, Instant::now());
        assert!(cache.get(&id("a")).is_none(), "not live: nothing cached");
        cache.set_live(true);
        let e = cache.epoch();
        cache.insert(client("a"), e, Instant::now());
        assert!(cache.get(&id("a")).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&id("a")).is_none(), "older than the TTL");
        cache.insert(client("a"), cache.epoch(), Instant::now());
        cache.set_live(false);
        cache.set_live(true);
        assert!(
            cache.get(&id("a")).is_none(),
            "a lost subscription empties it"
        );
    }

    #[test]
    fn an_invalidation_during_a_lookup_keeps_its_result_out() {
        let cache = ClientCache::new(10, Duration::from_secs(60));
        cache.set_live(true);
        let before = cache.epoch();
        cache.invalidate(&id("a"));
        cache.insert(client("a"), before, Instant::now());
        assert!(cache.get(&id("a")).is_none());
        cache.insert(client("a"), cache.epoch(), Instant::now());
        assert!(cache.get(&id("a")).is_some());
        cache.invalidate(&id("a"));
        assert!(cache.get(&id("a")).is_none());
    }

    #[test]
    fn the_size_is_bounded() {
        let cache = ClientCache::new(100, Duration::from_secs(60));
        cache.set_live(true);
        for i in 0..1000 {
            cache.insert(client(&format!("c{i}")), cache.epoch(), Instant::now());
            assert!(cache.len() <= 100);
        }
        assert!(cache.get(&id("c999")).is_some(), "the newest is kept");
        let none = ClientCache::new(0, Duration::from_secs(60));
        none.set_live(true);
        none.insert(client("a"), none.epoch(), Instant::now());
        assert_eq!(none.len(), 0);
    }
}
