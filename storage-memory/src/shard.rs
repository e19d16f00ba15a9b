//! Sharded maps: many small mutexes instead of one big one, so concurrent
//! requests for different grants rarely wait on each other.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

/// A hasher for keys that are already uniformly random (pending requests'
/// keys: a grant id, and the SHA-256 of a random secret): it folds the
/// bytes instead of running SipHash. (Grants are kept in a B-tree by their
/// time-ordered ids.)
///
/// Why this is safe against hash flooding: every key *inserted* into a map
/// is minted by the server from a CSPRNG. A client can only make the store
/// *look up* keys of its choosing, and a lookup costs at most the probe
/// length that the random keys already in the table produce.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // One multiply spreads the folded bits into the high bits that
        // hashbrown uses for its control tags.
        (self.0 ^ (self.0 >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(23) ^ u64::from_le_bytes(b);
        }
    }

    fn write_usize(&mut self, _len: usize) {
        // Only the length prefix of fixed-size arrays arrives here: no information.
    }
}

/// A `HashMap` keyed by random ids.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A mutex on its own cache line, so that two shards never share one and
/// cores locking neighbouring shards do not slow each other down.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Padded<T>(Mutex<T>);

/// `N` independently locked parts of one logical map.
#[derive(Debug)]
pub(crate) struct Shards<T> {
    shards: Box<[Padded<T>]>,
}

impl<T: Default> Shards<T> {
    /// `count` empty shards; `count` must be a power of two.
    pub(crate) fn new(count: usize) -> Self {
        Self::with(count, T::default)
    }
}

impl<T> Shards<T> {
    /// `count` shards made by `make`; `count` must be a power of two.
    pub(crate) fn with(count: usize, make: impl Fn() -> T) -> Self {
        debug_assert!(count.is_power_of_two());
        Self {
            shards: (0..count).map(|_| Padded(Mutex::new(make()))).collect(),
        }
    }
}

impl<T> Shards<T> {
    /// Locks the shard `selector` falls into. A poisoned lock is recovered:
    /// every critical section leaves the map consistent before anything can
    /// panic, so the data behind a poisoned lock is still sound.
    pub(crate) fn lock(&self, selector: u8) -> MutexGuard<'_, T> {
        let i = usize::from(selector) & (self.shards.len() - 1);
        lock(&self.shards[i].0)
    }

    /// Every shard's lock, one at a time.
    pub(crate) fn each(&self) -> impl Iterator<Item = MutexGuard<'_, T>> {
        self.shards.iter().map(|s| lock(&s.0))
    }
}

/// Locks a mutex, recovering from poisoning (see [`Shards::lock`]).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shrinks a map whose table is mostly empty (after a sweep removed most
/// entries), so memory follows the live load back down.
pub(crate) fn shrink_if_sparse<K: Hash + Eq, V, S: std::hash::BuildHasher>(
    map: &mut HashMap<K, V, S>,
) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}
