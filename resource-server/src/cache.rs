//! A cache of answers keyed by a token's SHA-256 (never the token), each
//! entry with its own expiry, bounded in count: when full, the oldest entry
//! goes first.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The key a token is cached under: its SHA-256, so that the cache holds
/// nothing a thief could present.
pub(crate) type TokenKey = [u8; 32];

/// The cache key of `token`.
pub(crate) fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires: Instant,
    /// Which insertion this is, so that the age queue can tell a key's
    /// current entry from one it replaced.
    seq: u64,
}

/// A bounded expiring map.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    map: HashMap<TokenKey, Entry<V>>,
    /// Keys in insertion order, with the insertion they were made by.
    order: VecDeque<(TokenKey, u64)>,
    max: usize,
    seq: u64,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            max,
            seq: 0,
        }
    }

    /// The live value under `key` at `now`.
    pub(crate) fn get(&mut self, key: &TokenKey, now: Instant) -> Option<V> {
        match self.map.get(key) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` under `key` until `expires`, evicting the oldest
    /// entries beyond the bound.
    pub(crate) fn insert(&mut self, key: TokenKey, value: V, expires: Instant) {
        if self.max == 0 {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        self.map.insert(
            key,
            Entry {
                value,
                expires,
                seq,
            },
        );
        self.order.push_back((key, seq));
        while self.map.len() > self.max {
            let Some((old, old_seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| e.seq == old_seq) {
                self.map.remove(&old);
            }
        }
        // Replaced and expired keys leave stale queue entries behind: keep
        // the queue within a constant factor of the map.
        if self.order.len() > 2 * self.max + 16 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    /// How many entries are held (expired ones not yet dropped included).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_expire_and_the_oldest_go_first() {
        let now = Instant::now();
        let mut c = TtlCache::new(2);
        c.insert(token_key("a"), 1, now + Duration::from_secs(10));
        c.insert(token_key("b"), 2, now + Duration::from_secs(1));
        assert_eq!(c.get(&token_key("a"), now), Some(1));
        assert_eq!(c.get(&token_key("b"), now + Duration::from_secs(2)), None);
        c.insert(token_key("b"), 2, now + Duration::from_secs(10));
        c.insert(token_key("c"), 3, now + Duration::from_secs(10));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&token_key("a"), now), None, "oldest evicted");
        for i in 0..1000 {
            c.insert(token_key(&i.to_string()), i, now + Duration::from_secs(10));
        }
        assert_eq!(c.len(), 2);
        assert!(c.order.len() <= 2 * 2 + 16 + 1);
    }
}
