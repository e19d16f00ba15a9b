//! # tessera-redis: a shared Redis / Redis Cluster store for Tessera
//!
//! [`RedisStore`] implements [`ClientRegistry`], [`GrantStore`] and
//! [`PendingStore`] on one Redis server or a Redis Cluster, so many instances
//! of an authorization server can share codes, tokens and pending requests.
//!
//! - **One round trip per step.** Every trait method is exactly one command
//!   or one Lua script (`EVALSHA`), so atomic steps (taking a code, rotating
//!   a refresh token, issuing into a grant that may be revoked concurrently)
//!   are atomic on the server, not guarded by client-side locks. The first
//!   call of a script on a node that has not cached it yet costs one more
//!   round trip (`NOSCRIPT`, then `EVAL`).
//! - **Cluster-ready keys.** All keys of one grant share a hash tag (the
//!   grant id), hence one cluster slot, so a script can touch all of them:
//!   `<prefix>{<grant>}:g` (grant meta), `…:c:<hash>` (code), `…:a:<hash>`
//!   (access token), `…:r:<hash>` (refresh token), `…:p:<hash>` (pending
//!   request). Only SHA-256 hashes of secrets are stored.
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
//! - **Shared servers.** A key prefix (default `tessera:`) lets several
//!   issuers share one Redis.
//!
//! Run Redis with `maxmemory-policy noeviction` (or no `maxmemory`):
//! eviction would silently log users out. It never revives a revoked token,
//! though: a grant whose meta is gone answers none of its records live.
//!
//! # What callers must know
//!
//! - The tokens in [`NewTokens`] must be minted for the grant they are
//!   issued into (`issue`'s `grant`, or the grant of `rotate_refresh`'s
//!   `old`): the store files them under that grant, and lookups find a token
//!   under the grant its secret carries. (A token of another grant would not
//!   be found; on a cluster the step fails with `StoreError::Other`, `CROSSSLOT`.)
//! - `revoke_grant` of a grant with records keeps the revocation as long as
//!   the grant's longest record; of a grant with nothing stored, it leaves a
//!   mark for [`RedisStoreBuilder::revoked_grant_ttl`] (default 1 h).
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

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Script, Value};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, PendingAuthorization, PendingStore, RefreshLookup,
    TokenRecord,
};
use tessera::{Client, ClientId, ClientRegistry, GrantId, SecretKey, StoreError};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "tessera:";
/// The default bound on one call to Redis.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on connecting.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default life of a revocation mark for a grant nothing was stored in.
pub const DEFAULT_REVOKED_GRANT_TTL: Duration = Duration::from_secs(3600);

/// A Lua script: the shared prelude followed by one step's body.
macro_rules! script {
    ($file:literal) => {
        concat!(
            include_str!("scripts/prelude.lua"),
            include_str!(concat!("scripts/", $file))
        )
    };
}

/// One Lua script: its text (for `EVAL` on a node that has not cached it)
/// and its `redis::Script` (for the SHA-1 used with `EVALSHA`).
struct Lua {
    code: &'static str,
    script: Script,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Self {
            code,
            script: Script::new(code),
        }
    }
}

/// The grant scripts, hashed once per store.
struct Scripts {
    put_code: Lua,
    take_code: Lua,
    issue: Lua,
    access_token: Lua,
    refresh_token: Lua,
    rotate_refresh: Lua,
    revoke_grant: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            put_code: Lua::new(script!("put_code.lua")),
            take_code: Lua::new(script!("take_code.lua")),
            issue: Lua::new(script!("issue.lua")),
            access_token: Lua::new(script!("access_token.lua")),
            refresh_token: Lua::new(script!("refresh_token.lua")),
            rotate_refresh: Lua::new(script!("rotate_refresh.lua")),
            revoke_grant: Lua::new(script!("revoke_grant.lua")),
        }
    }
}

/// The connection: a reconnecting single-server manager or a cluster connection.
/// Both are cheap handles over one multiplexed connection (per node), cloned per call.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }
}

/// Why connecting to Redis failed. URLs in it have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A URL could not be parsed as a Redis URL.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A cluster was asked for without any node URL.
    #[error("no Redis Cluster node URL given")]
    NoNodes,
    /// The key prefix contains `{` or `}`, which would break the per-grant hash tags.
    #[error("invalid key prefix {0:?}: it must not contain '{{' or '}}'")]
    InvalidPrefix(String),
    /// The server or cluster did not answer in time or refused the connection.
    #[error("cannot reach Redis at {target}: {reason}")]
    Unreachable {
        /// The URL(s) tried.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<ConnectError> for StoreError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Unreachable { .. } => StoreError::unavailable(e),
            _ => StoreError::other(e),
        }
    }
}

#[derive(Clone)]
enum Target {
    Single(String),
    Cluster(Vec<String>),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Single(url) => f.debug_tuple("Single").field(&redact(url)).finish(),
            Target::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// A URL fit for errors and logs: a password in it is replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{hidden}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

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
}

impl RedisStoreBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            revoked_grant_ttl: DEFAULT_REVOKED_GRANT_TTL,
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

    /// How long a revocation is remembered for a grant that had nothing
    /// stored when it was revoked (default 1 h). A grant with records keeps
    /// its revocation mark as long as its longest record.
    pub fn revoked_grant_ttl(mut self, ttl: Duration) -> Self {
        self.revoked_grant_ttl = ttl;
        self
    }

    /// Connects and checks the server (or cluster) answers. Fails with a
    /// [`ConnectError`] saying what was tried when it is unreachable.
    pub async fn build(self) -> Result<RedisStore, ConnectError> {
        if self.prefix.contains(['{', '}']) {
            return Err(ConnectError::InvalidPrefix(self.prefix));
        }
        let per_try = self.command_timeout.min(self.connect_timeout);
        let (conn, target) = match &self.target {
            Target::Single(url) => {
                let client =
                    redis::Client::open(url.as_str()).map_err(|e| ConnectError::InvalidUrl {
                        url: redact(url),
                        reason: e.to_string(),
                    })?;
                // Reconnection: quick, capped backoff so a restarted server is
                // found again within about half a second; the command timeout
                // still bounds every call while it is down.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(per_try))
                    .set_response_timeout(Some(self.command_timeout))
                    .set_min_delay(Duration::from_millis(20))
                    .set_max_delay(Duration::from_millis(500))
                    .set_number_of_retries(3);
                let unreachable = |reason: String| ConnectError::Unreachable {
                    target: redact(url),
                    reason,
                };
                let manager = tokio::time::timeout(
                    self.connect_timeout,
                    ConnectionManager::new_with_config(client, config),
                )
                .await
                .map_err(|_| unreachable(format!("timed out after {:?}", self.connect_timeout)))?
                .map_err(|e| unreachable(e.to_string()))?;
                (Conn::Single(manager), redact(url))
            }
            Target::Cluster(urls) => {
                if urls.is_empty() {
                    return Err(ConnectError::NoNodes);
                }
                let joined = urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(",");
                let client =
                    redis::cluster::ClusterClient::builder(urls.iter().map(String::as_str))
                        .connection_timeout(per_try)
                        .response_timeout(self.command_timeout)
                        .retries(3)
                        .min_retry_wait(10)
                        .max_retry_wait(200)
                        .build()
                        .map_err(|e| ConnectError::InvalidUrl {
                            url: joined.clone(),
                            reason: e.to_string(),
                        })?;
                let unreachable = |reason: String| ConnectError::Unreachable {
                    target: joined.clone(),
                    reason,
                };
                let conn =
                    tokio::time::timeout(self.connect_timeout, client.get_async_connection())
                        .await
                        .map_err(|_| {
                            unreachable(format!("timed out after {:?}", self.connect_timeout))
                        })?
                        .map_err(|e| unreachable(e.to_string()))?;
                (Conn::Cluster(conn), joined)
            }
        };
        let store = RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix: self.prefix,
                timeout: self.command_timeout,
                revoked_grant_ttl: self.revoked_grant_ttl,
                scripts: Scripts::new(),
            }),
        };
        // The reachability check: a store that cannot answer PING now is an error now.
        store
            .exec(&redis::cmd("PING"))
            .await
            .map_err(|e| ConnectError::Unreachable {
                target,
                reason: e.to_string(),
            })?;
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

struct Inner {
    conn: Conn,
    prefix: String,
    timeout: Duration,
    revoked_grant_ttl: Duration,
    scripts: Scripts,
}

/// A Tessera store on Redis or Redis Cluster. Cheap to clone: clones share
/// one connection (standalone) or one set of node connections (cluster).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field(
                "mode",
                &match self.inner.conn {
                    Conn::Single(_) => "standalone",
                    Conn::Cluster(_) => "cluster",
                },
            )
            .field("prefix", &self.inner.prefix)
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Maps a Redis failure: unreachable or overloaded is `Unavailable`, a
/// foreign value type is `Corrupt`, anything else `Other`.
fn map_err(e: RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    if e.code() == Some("WRONGTYPE") {
        return StoreError::corrupt(e);
    }
    let unavailable = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        // Redirections left over after the client's retries:
                        // the cluster's topology is in flux (a master down).
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        );
    if unavailable {
        StoreError::unavailable(e)
    } else {
        StoreError::other(e)
    }
}

/// Milliseconds since the epoch, saturating (Redis expiries are ms epochs).
fn epoch_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// A record's expiry as a Redis `PXAT`: ms since the epoch, at least 1 (an
/// expiry at or before the epoch means "already expired", which `PXAT 1` does).
fn pxat(t: OffsetDateTime) -> i64 {
    epoch_ms(t).max(1)
}

fn decode<T: DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw)
        .map_err(|e| StoreError::corrupt(format!("{what} does not decode: {e}")))
}

fn encode<T: serde::Serialize>(record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(StoreError::other)
}

/// A script's answer: a tag and an optional payload.
struct Reply {
    tag: String,
    payload: Option<Vec<u8>>,
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

impl Reply {
    fn parse(v: Value) -> Result<Self, StoreError> {
        let unexpected = || StoreError::other("unexpected reply from a tessera script");
        let Value::Array(items) = v else {
            return Err(unexpected());
        };
        let mut items = items.into_iter();
        let tag = items
            .next()
            .and_then(bytes)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(unexpected)?;
        let payload = items.next().and_then(bytes);
        Ok(Self { tag, payload })
    }

    /// The payload of a reply that must carry one.
    fn record(self) -> Result<Vec<u8>, StoreError> {
        self.payload.ok_or_else(|| {
            StoreError::other(format!(
                "tessera script answered {:?} without a record",
                self.tag
            ))
        })
    }

    /// Fails with `Corrupt` for a `corrupt` reply, naming the key.
    fn check(self, key: &str) -> Result<Self, StoreError> {
        if self.tag == "corrupt" {
            let why = self
                .payload
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_default();
            return Err(StoreError::corrupt(format!("{key}: {why}")));
        }
        Ok(self)
    }

    fn unexpected(self) -> StoreError {
        StoreError::other(format!("unexpected tessera script answer {:?}", self.tag))
    }
}

impl RedisStore {
    /// Starts configuring a store on one Redis server (`redis://host:port/db`,
    /// `rediss://` for TLS if the `redis` crate's TLS feature is on). Finish with `.await`.
    pub fn connect(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Single(url.into()))
    }

    /// Starts configuring a store on a Redis Cluster, given some of its node
    /// URLs (the others are discovered). Finish with `.await`.
    pub fn connect_cluster<I, S>(urls: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreBuilder::new(Target::Cluster(urls.into_iter().map(Into::into).collect()))
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Registers or replaces a client (`<prefix>client:<id>`, JSON, no
    /// expiry) and records its id in the `<prefix>clients` set. Two commands;
    /// repeating it is harmless.
    pub async fn put_client(&self, client: &Client) -> Result<(), StoreError> {
        let json = encode(client)?;
        self.exec(redis::cmd("SET").arg(self.client_key(&client.id)).arg(json))
            .await?;
        self.exec(
            redis::cmd("SADD")
                .arg(self.clients_key())
                .arg(client.id.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Whether any client is registered under this prefix (one command).
    pub async fn has_clients(&self) -> Result<bool, StoreError> {
        let v = self
            .exec(redis::cmd("EXISTS").arg(self.clients_key()))
            .await?;
        match v {
            Value::Int(n) => Ok(n > 0),
            _ => Err(StoreError::other("unexpected reply to EXISTS")),
        }
    }

    /// Whether no client is registered under this prefix: the demo seeds
    /// its clients only then, so restarts keep what was registered.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(!self.has_clients().await?)
    }

    fn client_key(&self, id: &ClientId) -> String {
        format!("{}client:{}", self.inner.prefix, id.as_str())
    }

    fn clients_key(&self) -> String {
        format!("{}clients", self.inner.prefix)
    }

    /// `<prefix>{<grant>}`: the hash tag all keys of one grant share.
    fn grant_tag(&self, grant: &GrantId) -> String {
        format!("{}{{{}}}", self.inner.prefix, grant.to_key())
    }

    fn meta_key(&self, grant: &GrantId) -> String {
        format!("{}:g", self.grant_tag(grant))
    }

    fn record_key(&self, kind: char, key: &SecretKey) -> String {
        format!(
            "{}:{kind}:{}",
            self.grant_tag(&key.grant),
            key.hash.to_key()
        )
    }

    /// One command, bounded by the command timeout.
    async fn exec(&self, cmd: &Cmd) -> Result<Value, StoreError> {
        let t = self.inner.timeout;
        match tokio::time::timeout(t, self.inner.conn.query(cmd)).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(StoreError::unavailable(format!(
                "Redis did not answer within {t:?}"
            ))),
        }
    }

    /// One script run: `EVALSHA`, or `EVAL` when the node has not cached the
    /// script yet (after a restart or `SCRIPT FLUSH`). Bounded as a whole by
    /// the command timeout.
    async fn eval(&self, lua: &Lua, keys: &[&str], args: &[&str]) -> Result<Reply, StoreError> {
        let build = |name: &str, first: &[u8]| {
            let mut cmd = redis::cmd(name);
            cmd.arg(first).arg(keys.len()).arg(keys);
            cmd.arg(args);
            cmd
        };
        let evalsha = build("EVALSHA", lua.script.get_hash().as_bytes());
        let conn = &self.inner.conn;
        let run = async {
            match conn.query(&evalsha).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    conn.query(&build("EVAL", lua.code.as_bytes())).await
                }
                other => other,
            }
        };
        let t = self.inner.timeout;
        let value = match tokio::time::timeout(t, run).await {
            Ok(r) => r.map_err(map_err)?,
            Err(_) => {
                return Err(StoreError::unavailable(format!(
                    "Redis did not answer within {t:?}"
                )));
            }
        };
        Reply::parse(value)
    }

    /// Reads a plain JSON record; `None` when absent.
    async fn get_json<T: DeserializeOwned>(
        &self,
        what: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.exec(redis::cmd("GET").arg(key)).await? {
            Value::Nil => Ok(None),
            v => {
                let raw =
                    bytes(v).ok_or_else(|| StoreError::corrupt(format!("{key}: not a string")))?;
                decode(what, &raw).map(Some)
            }
        }
    }
}

#[async_trait]
impl ClientRegistry for RedisStore {
    /// `GET <prefix>client:<id>`: one command.
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let key = self.client_key(id);
        let client: Option<Client> = self.get_json("client", &key).await?;
        match client {
            Some(c) if c.id != *id => Err(StoreError::corrupt(format!(
                "{key} holds client {:?}",
                c.id.as_str()
            ))),
            other => Ok(other.map(Arc::new)),
        }
    }
}

#[async_trait]
impl GrantStore for RedisStore {
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError> {
        let meta = self.meta_key(&code.grant);
        let key = self.record_key('c', &code);
        let json = encode(&record)?;
        let exp = pxat(record.expires_at).to_string();
        let reply = self
            .eval(&self.inner.scripts.put_code, &[&meta, &key], &[&json, &exp])
            .await?
            .check(&meta)?;
        match reply.tag.as_str() {
            "ok" => Ok(()),
            _ => Err(reply.unexpected()),
        }
    }

    async fn take_code(
        &self,
        code: SecretKey,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        let meta = self.meta_key(&code.grant);
        let key = self.record_key('c', &code);
        let hash = code.hash.to_key();
        let reply = self
            .eval(
                &self.inner.scripts.take_code,
                &[&meta, &key],
                &[&hash, &epoch_ms(now).to_string()],
            )
            .await?
            .check(&key)?;
        match reply.tag.as_str() {
            "taken" => {
                // The script removed the record and marked it taken; a record
                // that does not decode here is still gone (never served twice).
                let record: CodeRecord = decode("code record", &reply.record()?)?;
                Ok(CodeTake::Taken(record))
            }
            "already" => Ok(CodeTake::AlreadyTaken),
            "unknown" => Ok(CodeTake::Unknown),
            _ => Err(reply.unexpected()),
        }
    }

    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        let meta = self.meta_key(&grant);
        let (access_hash, access) = &tokens.access;
        let access_key = self.record_key(
            'a',
            &SecretKey {
                grant,
                hash: *access_hash,
            },
        );
        let access_json = encode(access)?;
        let access_exp = pxat(access.expires_at).to_string();
        let reply = match &tokens.refresh {
            None => {
                self.eval(
                    &self.inner.scripts.issue,
                    &[&meta, &access_key],
                    &[&access_json, &access_exp],
                )
                .await?
            }
            Some((refresh_hash, refresh)) => {
                let refresh_key = self.record_key(
                    'r',
                    &SecretKey {
                        grant,
                        hash: *refresh_hash,
                    },
                );
                let refresh_json = encode(refresh)?;
                self.eval(
                    &self.inner.scripts.issue,
                    &[&meta, &access_key, &refresh_key],
                    &[
                        &access_json,
                        &access_exp,
                        &refresh_json,
                        &pxat(refresh.expires_at).to_string(),
                        &refresh_hash.to_key(),
                    ],
                )
                .await?
            }
        }
        .check(&meta)?;
        match reply.tag.as_str() {
            "ok" => Ok(true),
            "revoked" => Ok(false),
            _ => Err(reply.unexpected()),
        }
    }

    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let meta = self.meta_key(&token.grant);
        let key = self.record_key('a', &token);
        let reply = self
            .eval(&self.inner.scripts.access_token, &[&meta, &key], &[])
            .await?
            .check(&key)?;
        match reply.tag.as_str() {
            "found" => {
                let record: TokenRecord = decode("access token record", &reply.record()?)?;
                Ok((now < record.expires_at).then_some(record))
            }
            "none" => Ok(None),
            _ => Err(reply.unexpected()),
        }
    }

    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        let meta = self.meta_key(&token.grant);
        let key = self.record_key('r', &token);
        let hash = token.hash.to_key();
        let reply = self
            .eval(&self.inner.scripts.refresh_token, &[&meta, &key], &[&hash])
            .await?
            .check(&key)?;
        let current = match reply.tag.as_str() {
            "current" => true,
            "retired" => false,
            "none" => return Ok(RefreshLookup::Unknown),
            _ => return Err(reply.unexpected()),
        };
        let record: TokenRecord = decode("refresh token record", &reply.record()?)?;
        Ok(if now >= record.expires_at {
            RefreshLookup::Unknown
        } else if current {
            RefreshLookup::Current(record)
        } else {
            RefreshLookup::Retired
        })
    }

    async fn rotate_refresh(
        &self,
        old: SecretKey,
        tokens: NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // Every new token belongs to the old token's grant (a refresh family is
        // one grant), so all keys share the grant's slot.
        let grant = old.grant;
        let meta = self.meta_key(&grant);
        let old_key = self.record_key('r', &old);
        let old_hash = old.hash.to_key();
        let now_ms = epoch_ms(now).to_string();
        let (access_hash, access) = &tokens.access;
        let access_key = self.record_key(
            'a',
            &SecretKey {
                grant,
                hash: *access_hash,
            },
        );
        let access_json = encode(access)?;
        let access_exp = pxat(access.expires_at).to_string();
        let reply = match &tokens.refresh {
            None => {
                self.eval(
                    &self.inner.scripts.rotate_refresh,
                    &[&meta, &old_key, &access_key],
                    &[&old_hash, &now_ms, &access_json, &access_exp],
                )
                .await?
            }
            Some((refresh_hash, refresh)) => {
                let refresh_key = self.record_key(
                    'r',
                    &SecretKey {
                        grant,
                        hash: *refresh_hash,
                    },
                );
                let refresh_json = encode(refresh)?;
                self.eval(
                    &self.inner.scripts.rotate_refresh,
                    &[&meta, &old_key, &access_key, &refresh_key],
                    &[
                        &old_hash,
                        &now_ms,
                        &access_json,
                        &access_exp,
                        &refresh_json,
                        &pxat(refresh.expires_at).to_string(),
                        &refresh_hash.to_key(),
                    ],
                )
                .await?
            }
        }
        .check(&old_key)?;
        match reply.tag.as_str() {
            "rotated" => Ok(true),
            "refused" => Ok(false),
            _ => Err(reply.unexpected()),
        }
    }

    /// `DEL` of the access token's key: one command.
    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        self.exec(redis::cmd("DEL").arg(self.record_key('a', &token)))
            .await
            .map(drop)
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        let meta = self.meta_key(&grant);
        let tombstone = SystemTime::now()
            .checked_add(self.inner.revoked_grant_ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            });
        let reply = self
            .eval(
                &self.inner.scripts.revoke_grant,
                &[&meta],
                &[&tombstone.to_string()],
            )
            .await?
            .check(&meta)?;
        match reply.tag.as_str() {
            "ok" => Ok(()),
            _ => Err(reply.unexpected()),
        }
    }
}

#[async_trait]
impl PendingStore for RedisStore {
    /// `SET <key> <json> PXAT <expiry>`: one command.
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError> {
        let json = encode(&request)?;
        self.exec(
            redis::cmd("SET")
                .arg(self.record_key('p', &handle))
                .arg(json)
                .arg("PXAT")
                .arg(pxat(request.expires_at)),
        )
        .await
        .map(drop)
    }

    /// `GET`: one command; an expired request is `None`.
    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let key = self.record_key('p', &handle);
        let request: Option<PendingAuthorization> = self.get_json("pending request", &key).await?;
        Ok(request.filter(|r| now < r.expires_at))
    }

    /// `GETDEL`: one command, so at most one caller gets the request.
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let key = self.record_key('p', &handle);
        match self.exec(redis::cmd("GETDEL").arg(&key)).await? {
            Value::Nil => Ok(None),
            v => {
                let raw =
                    bytes(v).ok_or_else(|| StoreError::corrupt(format!("{key}: not a string")))?;
                let request: PendingAuthorization = decode("pending request", &raw)?;
                Ok((now < request.expires_at).then_some(request))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(redact("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("rediss://bob:s3cret@h:1/"), "rediss://bob:***@h:1/");
        assert_eq!(redact("redis://token@h/"), "redis://***@h/");
        assert_eq!(redact("redis://h/x@y"), "redis://h/x@y");
        assert_eq!(redact("nonsense"), "nonsense");
        let b = RedisStore::connect("redis://u:pw@h:1/");
        assert!(!format!("{b:?}").contains("pw"));
    }

    #[test]
    fn scripts_carry_the_prelude() {
        let s = Scripts::new();
        for lua in [
            &s.put_code,
            &s.take_code,
            &s.issue,
            &s.access_token,
            &s.refresh_token,
            &s.rotate_refresh,
            &s.revoke_grant,
        ] {
            assert!(lua.code.contains("local function meta_ok"));
            assert_eq!(lua.script.get_hash().len(), 40);
        }
    }

    #[test]
    fn expiries_are_positive_ms() {
        assert_eq!(pxat(OffsetDateTime::UNIX_EPOCH), 1);
        let t = OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(1_700_000_000_123);
        assert_eq!(pxat(t), 1_700_000_000_123);
        assert_eq!(epoch_ms(t), 1_700_000_000_123);
    }

    #[test]
    fn corrupt_replies_name_the_key() {
        let r = Reply {
            tag: "corrupt".into(),
            payload: Some(b"why".to_vec()),
        };
        match r.check("k") {
            Err(StoreError::Corrupt(m)) => assert_eq!(m.to_string(), "k: why"),
            other => panic!("{:?}", other.map(|r| r.tag)),
        }
        assert!(Reply::parse(Value::Int(1)).is_err());
        assert!(Reply::parse(Value::Array(vec![])).is_err());
    }
}
