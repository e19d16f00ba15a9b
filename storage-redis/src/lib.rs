//! # tessera-redis: a shared Redis / Redis Cluster store for Tessera
//!
//! [`RedisStore`] implements [`ClientRegistry`], [`GrantStore`] and
//! [`PendingStore`] on one Redis server or a Redis Cluster, so many instances
//! of an authorization server can share codes, tokens and pending requests.
//!
//! - **One round trip per step.** Every trait method is at most one command
//!   or one Lua script (`EVALSHA`), so atomic steps (taking a code, rotating
//!   a refresh token, issuing into a grant that may be revoked concurrently)
//!   are atomic on the server, not guarded by client-side locks. The first
//!   call of a script on a node that has not cached it yet costs one more
//!   round trip (`NOSCRIPT`, then `EVAL`).
//! - **Clients cached in process.** A registered client read once is kept
//!   in memory (bounded: [`RedisStoreBuilder::client_cache_capacity`]), so
//!   a token request costs one round trip, the grant step. Client writes
//!   through any `RedisStore` ([`RedisStore::put_client`],
//!   [`RedisStore::remove_client`]) are published on
//!   `<prefix>clients:changed` and drop every store's copy at once; while a
//!   store's subscription is down its cache is bypassed; and no copy is
//!   answered longer than [`RedisStoreBuilder::client_cache_ttl`] (10 s by
//!   default), which bounds what invalidation can miss (client keys
//!   written by other means). One connection per server (or per cluster
//!   node), multiplexed: requests are pipelined on it, never checked out
//!   of a pool; plus one subscription connection.
//! - **Cluster-ready keys.** All keys of one grant share a hash tag (the
//!   grant id), hence one cluster slot, so a script can touch all of them:
//!   `<prefix>{<grant>}:g` (grant meta), `…:c:<hash>` (code), `…:a:<hash>`
//!   (access token), `…:s:<hash>` (the standalone access token of a fresh
//!   client-credentials grant: one `SET`, no meta, dead under a revocation
//!   mark, which outlives it), `…:r:<hash>` (refresh token), `…:p:<hash>`
//!   (pending request), and for a grant with refresh tokens `…:ai` and
//!   `…:ri`, sorted sets of its access token hashes by issue time and of
//!   its retired refresh token hashes by retirement time, by which a
//!   rotation keeps the grant within the core's bounds
//!   (`tessera::storage::MAX_ACCESS_TOKENS_PER_GRANT`,
//!   `MAX_RETIRED_REFRESH_PER_GRANT`): the first issued and the first
//!   retired go, their records deleted by the rotation script (record keys
//!   it names from the index, in the grant's slot, not declared in `KEYS`).
//!   Only SHA-256 hashes of secrets are stored.
//! - **Everything expires.** Every record key gets an absolute expiry from
//!   the record's `expires_at`; a grant's meta lives as long as its longest
//!   record. Expired records are never answered live, even before Redis
//!   drops them: each lookup also checks `expires_at` against the `now` the
//!   caller passes. Registered clients are the only keys without expiry.
//! - **Bounded waits.** Every call is wrapped in a timeout
//!   ([`RedisStoreBuilder::command_timeout`]); a timeout or connection failure
//!   is [`StoreError::Unavailable`], a value that does not decode is
//!   [`StoreError::Corrupt`]. A standalone store reconnects by itself
//!   (`ConnectionManager`), a cluster store follows topology changes.
//! - **Retries.** A cluster store retries a command whose answer was lost
//!   (up to 3 times), so a script may run twice. A refresh rotation run
//!   twice finds the new access token it stored and answers as the first
//!   time, rather than taking itself for a reuse that revokes the grant. A
//!   code take run twice still answers "already taken" (the exchange fails
//!   and the code's grant is revoked, as for a replay): rare, and safe.
//! - **Shared servers.** A key prefix (default `tessera:`) lets several
//!   issuers share one Redis.
//!
//! # Memory policy
//!
//! Run Redis with `maxmemory-policy noeviction` (or no `maxmemory`):
//! eviction would silently log users out. It never revives a revoked token,
//! though: a grant whose meta is gone answers none of its records live.
//! With `maxmemory` and `noeviction`, a full Redis refuses writes with
//! `OOM`: the store answers [`StoreError::Unavailable`] (the core's `503
//! temporarily_unavailable`), while reads (bearer validation, introspection,
//! revocation of what exists) keep working, and writing resumes as records
//! expire. Size `maxmemory` for the live tokens (a few hundred bytes
//! each, and ~150 more per grant with refresh tokens for each of its
//! indexes: `MEMORY USAGE` of a one-member index is 152);
//! anonymous requests cannot fill it, since the core stores nothing for a
//! browser that has not signed in (see `tessera`'s login handles). Tested
//! against a real `maxmemory` in `tests/maxmemory.rs`.
//!
//! # What callers must know
//!
//! - The tokens in [`NewTokens`] must be minted for the grant they are
//!   issued into (`issue`'s `grant`, or the grant of `rotate_refresh`'s
//!   `old`): the store files them under that grant, and lookups find a token
//!   under the grant its secret carries. (A token of another grant would not
//!   be found; on a cluster the step fails with `StoreError::Other`, `CROSSSLOT`.)
//! - `revoke_grant` keeps the revocation as long as the grant's longest
//!   record, and at least [`RedisStoreBuilder::revoked_grant_ttl`]
//!   (default 24 h), which outlives every standalone record.
//! - A code of a revoked grant is `Unknown` when taken (unless it was taken
//!   before: then `AlreadyTaken`).
//!
//! ```no_run
//! use std::time::Duration;
//! use tessera::{Client, ClientId};
//! use tessera_redis::RedisStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379/")
//!     .prefix("photos:")
//!     .command_timeout(Duration::from_millis(500))
//!     .await?;
//! // Seed the demo client only into an empty store.
//! if store.is_empty().await? {
//!     let id = ClientId::new("printshop").ok_or("bad client id")?;
//!     store.put_client(&Client::public(id, "Printshop")).await?;
//! }
//!
//! // The same for a cluster: any reachable nodes; the rest is discovered.
//! let cluster = RedisStore::connect_cluster(["redis://redis-a:7000/", "redis://redis-b:7000/"])
//!     .await?;
//! # drop(cluster);
//! # Ok(())
//! # }
//! ```
//!
//! # Testing
//!
//! The tests need real servers: `eval "$(storage-redis/scripts/redis-up.sh)"`
//! starts a standalone server and a 3-master cluster on free loopback ports
//! and exports `TESSERA_REDIS_URL` and `TESSERA_REDIS_CLUSTER_URLS`; then
//! `cargo test -p tessera-redis`; `storage-redis/scripts/redis-down.sh` stops
//! them. Without those variables the tests fail, unless `TESSERA_REDIS_SKIP=1`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

// The crate docs link these.
#[cfg(doc)]
use tessera::storage::{GrantStore, NewTokens, PendingStore};
#[cfg(doc)]
use tessera::{ClientRegistry, StoreError};

mod client_cache;
mod connection;
mod errors;
mod invalidation;
mod keys;
mod options;
mod registration;
mod replay;
mod scripts;
mod store;

pub use errors::ConnectError;
pub use options::{
    DEFAULT_CLIENT_CACHE_CAPACITY, DEFAULT_CLIENT_CACHE_TTL, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX, DEFAULT_REVOKED_GRANT_TTL, RedisStoreBuilder,
};
pub use store::RedisStore;
