//! How a store is configured: the builder and its defaults.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

#[cfg(doc)]
use tessera::StoreError;

use crate::connection::{Conn, Target};
use crate::errors::ConnectError;
use crate::store::{CacheConfig, RedisStore};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "tessera:";
/// The default bound on one call to Redis.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on connecting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on how long a cached client is answered
/// ([`RedisStoreBuilder::client_cache_ttl`]).
pub const DEFAULT_CLIENT_CACHE_TTL: Duration = Duration::from_secs(10);
/// The default number of clients cached ([`RedisStoreBuilder::client_cache_capacity`]).
pub const DEFAULT_CLIENT_CACHE_CAPACITY: usize = 10_000;
/// The default least life of a revocation mark (24 h): far beyond the
/// usual access-token lifetime (1 h), so a fresh client-credentials token
/// is written as one standalone `SET` with a day of margin for clocks that
/// disagree between instances.
pub const DEFAULT_REVOKED_GRANT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Configures and opens a [`RedisStore`]; made by [`RedisStore::connect`] or
/// [`RedisStore::connect_cluster`], finished with `.await` (or [`build`](Self::build)).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until awaited"]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    revoked_grant_ttl: Duration,
    client_cache_ttl: Duration,
    client_cache_capacity: usize,
}

impl RedisStoreBuilder {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            revoked_grant_ttl: DEFAULT_REVOKED_GRANT_TTL,
            client_cache_ttl: DEFAULT_CLIENT_CACHE_TTL,
            client_cache_capacity: DEFAULT_CLIENT_CACHE_CAPACITY,
        }
    }

    /// The prefix of every key (default `tessera:`), so several issuers can
    /// share one Redis. It must not contain `{` or `}`: the grant id is the hash tag.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on each call to Redis (default 2 s). A call that takes
    /// longer answers [`StoreError::Unavailable`] instead of hanging a request.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The bound on connecting, including the first reachability check (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a revocation is remembered at least (default 24 h). A grant
    /// with records keeps its revocation mark as long as its longest record.
    /// It also decides which client-credentials tokens are written with one
    /// `SET` and no grant meta: those that expire within this time (the
    /// mark of a later revocation outlives them); longer-lived ones cost a
    /// pipeline of three commands.
    pub fn revoked_grant_ttl(mut self, ttl: Duration) -> Self {
        self.revoked_grant_ttl = ttl;
        self
    }

    /// The longest a registered client read from Redis is answered from
    /// this process's memory (default 10 s); `Duration::ZERO` turns the
    /// cache off (every lookup is a `GET`). Client writes through any
    /// `RedisStore` on the same Redis and prefix reach every store's cache
    /// at once (pub/sub on `<prefix>clients:changed`), and the cache is
    /// bypassed while that subscription is down; this bound is for what
    /// invalidation can miss: client keys written by other means, or
    /// expired by Redis, and a subscription connection that died silently.
    pub fn client_cache_ttl(mut self, ttl: Duration) -> Self {
        self.client_cache_ttl = ttl;
        self
    }

    /// The most clients cached at once (default 10,000); 0 turns the cache off.
    pub fn client_cache_capacity(mut self, capacity: usize) -> Self {
        self.client_cache_capacity = capacity;
        self
    }

    /// Connects and checks the server (or cluster) answers. Fails with a
    /// [`ConnectError`] saying what was tried when it is unreachable.
    pub async fn build(self) -> Result<RedisStore, ConnectError> {
        if self.prefix.contains(['{', '}']) {
            return Err(ConnectError::InvalidPrefix(self.prefix));
        }
        let (conn, target) =
            Conn::open(&self.target, self.command_timeout, self.connect_timeout).await?;
        let cache = (self.client_cache_capacity > 0 && !self.client_cache_ttl.is_zero()).then_some(
            CacheConfig {
                target: &self.target,
                capacity: self.client_cache_capacity,
                ttl: self.client_cache_ttl,
                connect_timeout: self.connect_timeout,
            },
        );
        let (store, mut subscribed) = RedisStore::new(
            conn,
            self.prefix,
            self.command_timeout,
            self.revoked_grant_ttl,
            cache,
        );
        // The reachability check: a store that cannot answer PING now is an error now.
        store
            .exec(&redis::cmd("PING"))
            .await
            .map_err(|e| ConnectError::Unreachable {
                target,
                reason: e.to_string(),
            })?;
        // Let the first requests use the cache: wait (bounded) for the
        // invalidation subscription. Not an error if it is late: the cache
        // is bypassed until it is up.
        if let Some(up) = subscribed.as_mut() {
            let _ = tokio::time::timeout(self.connect_timeout, up.wait_for(|up| *up)).await;
        }
        Ok(store)
    }
}

impl IntoFuture for RedisStoreBuilder {
    type Output = Result<RedisStore, ConnectError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.build())
    }
}
