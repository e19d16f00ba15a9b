//! The store: [`RedisStore`] and its trait implementations, one command or
//! one script per step.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::{Cmd, Value};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use tessera::storage::{
    CodeRecord, CodeTake, DevicePoll, DeviceRecord, DeviceStatus, DeviceStore, GrantStore,
    NewTokens, PendingAuthorization, PendingStore, RefreshLookup, TokenRecord,
};
use tessera::{Client, ClientId, ClientRegistry, GrantId, SecretKey, StoreError, TokenHash};

use crate::client_cache::ClientCache;
use crate::connection::{Conn, Target};
use crate::invalidation::{self, Subscription};
use crate::keys::Keys;
use crate::options::RedisStoreBuilder;
use crate::scripts::{self, Lua, Reply, Scripts, bytes};

struct Inner {
    conn: Conn,
    keys: Keys,
    timeout: Duration,
    revoked_grant_ttl: Duration,
    scripts: Scripts,
    /// The client cache, and the subscription that keeps it honest
    /// (aborted when the last clone of the store is dropped).
    client_cache: Option<(Arc<ClientCache>, Subscription)>,
    /// `<prefix>clients:changed`: where client writes are published.
    clients_channel: String,
}

/// How the builder asks for a client cache.
pub(crate) struct CacheConfig<'a> {
    pub(crate) target: &'a Target,
    pub(crate) capacity: usize,
    pub(crate) ttl: Duration,
    pub(crate) connect_timeout: Duration,
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
            .field("prefix", &self.inner.keys.prefix())
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch, saturating (Redis expiries are ms epochs).
pub(crate) fn epoch_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// A record's expiry as a Redis `PXAT`: ms since the epoch, at least 1 (an
/// expiry at or before the epoch means "already expired", which `PXAT 1` does).
pub(crate) fn pxat(t: OffsetDateTime) -> i64 {
    epoch_ms(t).max(1)
}

fn decode<T: DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw)
        .map_err(|e| StoreError::corrupt(format!("{what} does not decode: {e}")))
}

pub(crate) fn encode<T: serde::Serialize>(record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(StoreError::other)
}

impl RedisStore {
    /// The key layout (for the modules beside this one).
    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The scripts (for the modules beside this one).
    pub(crate) fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    /// Until when (ms since the epoch) a revocation mark made now lives:
    /// now plus `revoked_grant_ttl`, on this machine's clock.
    fn revocation_mark_until(&self) -> i64 {
        SystemTime::now()
            .checked_add(self.inner.revoked_grant_ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            })
    }

    /// What every issue writes for the access token: the grant meta's
    /// key, the record's key, its JSON and its expiry (ms since the epoch).
    fn access_parts(
        &self,
        grant: GrantId,
        tokens: &NewTokens,
    ) -> Result<(String, String, String, String), StoreError> {
        let (hash, access) = &tokens.access;
        let key = self
            .inner
            .keys
            .record('a', &SecretKey { grant, hash: *hash });
        Ok((
            self.inner.keys.meta(&grant),
            key,
            encode(access)?,
            pxat(access.expires_at).to_string(),
        ))
    }

    /// One script run, bounded by the command timeout.
    pub(crate) async fn eval_script(
        &self,
        lua: &Lua,
        keys: &[&str],
        args: &[&str],
    ) -> Result<Reply, StoreError> {
        scripts::eval(&self.inner.conn, self.inner.timeout, lua, keys, args).await
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
        self.inner.keys.prefix()
    }

    /// Registers or replaces a client (`<prefix>client:<id>`, JSON, no
    /// expiry), records its id in the `<prefix>clients` set and tells
    /// every store's client cache (`PUBLISH <prefix>clients:changed <id>`).
    /// Three commands; repeating it is harmless. When the `PUBLISH` fails
    /// the client is written but other processes may answer their cached
    /// copy for up to their cache TTL: the error says so.
    pub async fn put_client(&self, client: &Client) -> Result<(), StoreError> {
        let json = encode(client)?;
        self.exec(
            redis::cmd("SET")
                .arg(self.inner.keys.client(&client.id))
                .arg(json),
        )
        .await?;
        // The record changed: tell the caches before anything else can fail.
        let told = self.client_changed(&client.id).await;
        self.exec(
            redis::cmd("SADD")
                .arg(self.inner.keys.clients())
                .arg(client.id.as_str()),
        )
        .await?;
        told
    }

    /// Removes a registered client (its key, its id in the `<prefix>clients`
    /// set and, for a dynamically registered one, its place under the cap in
    /// `<prefix>dynamic-clients`) and tells every store's client cache, as
    /// [`put_client`](Self::put_client) does (four commands). Its grants
    /// and tokens are not touched.
    pub async fn remove_client(&self, id: &ClientId) -> Result<(), StoreError> {
        self.exec(redis::cmd("DEL").arg(self.inner.keys.client(id)))
            .await?;
        // The record is gone: no cache may keep answering it, whatever
        // happens to the bookkeeping below.
        let told = self.client_changed(id).await;
        self.exec(
            redis::cmd("SREM")
                .arg(self.inner.keys.clients())
                .arg(id.as_str()),
        )
        .await?;
        // A registration's score lapses only at its deadline (never for
        // one kept for good): without this its place under the cap would
        // come back that late.
        self.exec(
            redis::cmd("ZREM")
                .arg(self.inner.keys.dynamic_clients())
                .arg(id.as_str()),
        )
        .await?;
        told
    }

    /// Call after every write of a client key: drops this store's cached
    /// copy of `id`, then publishes `id` on `<prefix>clients:changed` so
    /// that every other store drops its own (one command).
    pub(crate) async fn client_changed(&self, id: &ClientId) -> Result<(), StoreError> {
        if let Some((cache, _)) = &self.inner.client_cache {
            cache.invalidate(id);
        }
        self.exec(
            redis::cmd("PUBLISH")
                .arg(&self.inner.clients_channel)
                .arg(id.as_str()),
        )
        .await
        .map(drop)
        .map_err(|e| {
            StoreError::unavailable(format!(
                "client {:?} written, but its cache invalidation was not published ({e}); other processes may use their copy for up to their client cache TTL",
                id.as_str()
            ))
        })
    }

    /// How many clients this store holds in its cache now (for tests and
    /// monitoring; expired copies not yet replaced included).
    pub fn cached_clients(&self) -> usize {
        self.inner
            .client_cache
            .as_ref()
            .map_or(0, |(cache, _)| cache.len())
    }

    /// Whether any client is registered under this prefix (one command).
    pub async fn has_clients(&self) -> Result<bool, StoreError> {
        let v = self
            .exec(redis::cmd("EXISTS").arg(self.inner.keys.clients()))
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

    /// A store over an open connection (the builder has checked `prefix`),
    /// with a client cache when `cache` is given; then also a receiver
    /// that turns `true` once the invalidation subscription is up.
    pub(crate) fn new(
        conn: Conn,
        prefix: String,
        timeout: Duration,
        revoked_grant_ttl: Duration,
        cache: Option<CacheConfig<'_>>,
    ) -> (Self, Option<tokio::sync::watch::Receiver<bool>>) {
        let keys = Keys::new(prefix);
        let clients_channel = keys.clients_channel();
        let (client_cache, subscribed) = match cache {
            Some(c) => {
                let cache = Arc::new(ClientCache::new(c.capacity, c.ttl));
                let (subscription, up) = invalidation::spawn(
                    c.target,
                    clients_channel.clone(),
                    &cache,
                    c.connect_timeout,
                );
                (Some((cache, subscription)), Some(up))
            }
            None => (None, None),
        };
        let store = Self {
            inner: Arc::new(Inner {
                conn,
                keys,
                timeout,
                revoked_grant_ttl,
                scripts: Scripts::new(),
                client_cache,
                clients_channel,
            }),
        };
        (store, subscribed)
    }

    /// One command, bounded by the command timeout.
    pub(crate) async fn exec(&self, cmd: &Cmd) -> Result<Value, StoreError> {
        self.inner.conn.exec(cmd, self.inner.timeout).await
    }

    /// One script run, bounded by the command timeout.
    async fn eval(&self, lua: &Lua, keys: &[&str], args: &[&str]) -> Result<Reply, StoreError> {
        scripts::eval(&self.inner.conn, self.inner.timeout, lua, keys, args).await
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
    /// One script on `<prefix>dynamic-clients` (the cap), then `SET … NX
    /// PXAT` of the record (see the `registration` module).
    async fn register_client(
        &self,
        client: Client,
        max_dynamic: usize,
        now: OffsetDateTime,
    ) -> Result<tessera::RegisterOutcome, StoreError> {
        self.register_dynamic(client, max_dynamic, now).await
    }

    /// `ZCOUNT` (one command).
    async fn dynamic_client_count(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.count_dynamic(now).await
    }

    async fn mark_client_used(
        &self,
        id: &ClientId,
        now: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        self.mark_dynamic_used(id, now, until).await
    }

    async fn evict_unused_client(
        &self,
        before: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        self.evict_dynamic(before).await
    }

    async fn expire_unused_clients(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.expire_dynamic(now).await
    }

    /// From the client cache when it holds a fresh copy (no round trip;
    /// see [`RedisStoreBuilder::client_cache_ttl`]), else `GET
    /// <prefix>client:<id>`: one command, its answer cached.
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let cache = self.inner.client_cache.as_ref().map(|(c, _)| c);
        if let Some(hit) = cache.and_then(|c| c.get(id)) {
            return Ok(Some(hit));
        }
        // Read before the GET: an invalidation from here on keeps this
        // answer out of the cache.
        let epoch = cache.map(|c| c.epoch());
        let fetched = std::time::Instant::now();
        let key = self.inner.keys.client(id);
        let client: Option<Client> = self.get_json("client", &key).await?;
        match client {
            Some(c) if c.id != *id => Err(StoreError::corrupt(format!(
                "{key} holds client {:?}",
                c.id.as_str()
            ))),
            Some(c) => {
                let c = Arc::new(c);
                if let (Some(cache), Some(epoch)) = (cache, epoch) {
                    cache.insert(Arc::clone(&c), epoch, fetched);
                }
                Ok(Some(c))
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl GrantStore for RedisStore {
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError> {
        let meta = self.inner.keys.meta(&code.grant);
        let key = self.inner.keys.record('c', &code);
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
        let meta = self.inner.keys.meta(&code.grant);
        let key = self.inner.keys.record('c', &code);
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
        let (meta, access_key, access_json, access_exp) = self.access_parts(grant, &tokens)?;
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
                let refresh_key = self.inner.keys.record(
                    'r',
                    &SecretKey {
                        grant,
                        hash: *refresh_hash,
                    },
                );
                let refresh_json = encode(refresh)?;
                let access_index = self.inner.keys.index(&grant, "ai");
                self.eval(
                    &self.inner.scripts.issue,
                    &[&meta, &access_key, &refresh_key, &access_index],
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

    /// A fresh grant with an access token only (client credentials): one
    /// `SET` of a *standalone* record (`…:s:<hash>`), no grant meta, no
    /// script: a third of the CPU Redis spends on the `issue` script, and
    /// nothing to write partially. A standalone record needs no meta to be
    /// live; only a revocation mark on the grant kills it, and a mark lives
    /// at least `revoked_grant_ttl` from when it is made (`revoke_grant`),
    /// so a record is standalone only when it expires within that time
    /// from now (with the default 24 h, a day of margin for instances whose
    /// clocks disagree). A longer-lived token gets the meta, in one pipeline.
    async fn issue_new_grant(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        if tokens.refresh.is_some() {
            return self.issue(grant, tokens).await;
        }
        let (hash, access) = &tokens.access;
        let until = pxat(access.expires_at);
        if until <= self.revocation_mark_until() {
            let key = self
                .inner
                .keys
                .record('s', &SecretKey { grant, hash: *hash });
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(encode(access)?).arg("PXAT").arg(until);
            self.exec(&cmd).await?;
            return Ok(true);
        }
        // A partial write is safe: a record without its meta is dead
        // (every lookup checks the meta first), a meta without a record is
        // inert and expires with it.
        let (meta, access_key, access_json, exp) = self.access_parts(grant, &tokens)?;
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(&meta)
            .arg("exp")
            .arg(&exp)
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&meta)
            .arg(&exp)
            .ignore()
            .cmd("SET")
            .arg(&access_key)
            .arg(&access_json)
            .arg("PXAT")
            .arg(&exp)
            .ignore();
        self.inner.conn.exec_pipe(&pipe, self.inner.timeout).await?;
        Ok(true)
    }

    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let meta = self.inner.keys.meta(&token.grant);
        let key = self.inner.keys.record('a', &token);
        let standalone = self.inner.keys.record('s', &token);
        let reply = self
            .eval(
                &self.inner.scripts.access_token,
                &[&meta, &key, &standalone],
                &[],
            )
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
        let meta = self.inner.keys.meta(&token.grant);
        let key = self.inner.keys.record('r', &token);
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
        let meta = self.inner.keys.meta(&grant);
        let old_key = self.inner.keys.record('r', &old);
        let old_hash = old.hash.to_key();
        let now_ms = epoch_ms(now).to_string();
        let (access_hash, access) = &tokens.access;
        let access_key = self.inner.keys.record(
            'a',
            &SecretKey {
                grant,
                hash: *access_hash,
            },
        );
        let access_json = encode(access)?;
        let access_exp = pxat(access.expires_at).to_string();
        let access_index = self.inner.keys.index(&grant, "ai");
        let retired_index = self.inner.keys.index(&grant, "ri");
        let reply = match &tokens.refresh {
            None => {
                self.eval(
                    &self.inner.scripts.rotate_refresh,
                    &[&meta, &old_key, &access_key, &access_index, &retired_index],
                    &[&old_hash, &now_ms, &access_json, &access_exp],
                )
                .await?
            }
            Some((refresh_hash, refresh)) => {
                let refresh_key = self.inner.keys.record(
                    'r',
                    &SecretKey {
                        grant,
                        hash: *refresh_hash,
                    },
                );
                let refresh_json = encode(refresh)?;
                self.eval(
                    &self.inner.scripts.rotate_refresh,
                    &[
                        &meta,
                        &old_key,
                        &access_key,
                        &access_index,
                        &retired_index,
                        &refresh_key,
                    ],
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

    /// `DEL` of the access token's keys (grant record or standalone, one
    /// slot): one command.
    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        self.exec(
            redis::cmd("DEL")
                .arg(self.inner.keys.record('a', &token))
                .arg(self.inner.keys.record('s', &token)),
        )
        .await
        .map(drop)
    }

    /// Marks the grant revoked. The mark lives as long as the grant's
    /// longest record, and at least `revoked_grant_ttl` from now: past
    /// every standalone record of the grant (see `issue_new_grant`).
    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        let meta = self.inner.keys.meta(&grant);
        let tombstone = self.revocation_mark_until();
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
                .arg(self.inner.keys.record('p', &handle))
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
        let key = self.inner.keys.record('p', &handle);
        let request: Option<PendingAuthorization> = self.get_json("pending request", &key).await?;
        Ok(request.filter(|r| now < r.expires_at))
    }

    /// `GETDEL`: one command, so at most one caller gets the request.
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let key = self.inner.keys.record('p', &handle);
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

/// How long an expired device request is kept, so that a late poll hears
/// `expired_token` rather than `invalid_grant` (RFC 8628 §3.5).
const DEVICE_GRACE: time::Duration = time::Duration::minutes(10);

impl RedisStore {
    /// The device record a user code's index entry names, if any.
    async fn device_key_of(&self, user_code: &TokenHash) -> Result<Option<String>, StoreError> {
        let index = self.inner.keys.user_code(user_code);
        match self.exec(redis::cmd("GET").arg(&index)).await? {
            Value::Nil => Ok(None),
            v => bytes(v)
                .and_then(|b| String::from_utf8(b).ok())
                .map(Some)
                .ok_or_else(|| StoreError::corrupt(format!("{index}: not a key name"))),
        }
    }
}

/// Device requests: the record under the device code's grant (one slot, so
/// each poll and decision is one script), and a user code index beside it.
/// Putting a request and finding one by user code are two commands each
/// (the two keys live in different cluster slots); polling, the hot path,
/// is one.
#[async_trait]
impl DeviceStore for RedisStore {
    /// `SET NX` of the user code index (refused while live), then `SET` of
    /// the record, kept ten minutes past its expiry (so a late poll still reads `expired_token`).
    async fn put_device(
        &self,
        device: SecretKey,
        user_code: TokenHash,
        record: DeviceRecord,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let key = self.inner.keys.record('d', &device);
        let index = self.inner.keys.user_code(&user_code);
        let claimed = self
            .exec(
                redis::cmd("SET")
                    .arg(&index)
                    .arg(&key)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(pxat(record.expires_at)),
            )
            .await?;
        if claimed == Value::Nil {
            return Ok(false);
        }
        let json = encode(&record)?;
        self.exec(
            redis::cmd("SET")
                .arg(&key)
                .arg(json)
                .arg("PXAT")
                .arg(pxat(record.expires_at + DEVICE_GRACE)),
        )
        .await?;
        Ok(true)
    }

    async fn device_by_user_code(
        &self,
        user_code: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let Some(key) = self.device_key_of(&user_code).await? else {
            return Ok(None);
        };
        let record: Option<DeviceRecord> = self.get_json("device record", &key).await?;
        Ok(record.filter(|r| now < r.expires_at))
    }

    async fn decide_device(
        &self,
        user_code: TokenHash,
        decision: DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let Some(key) = self.device_key_of(&user_code).await? else {
            return Ok(false);
        };
        let status = encode(&decision)?;
        let now = now.unix_timestamp().to_string();
        let reply = self
            .eval(&self.inner.scripts.decide_device, &[&key], &[&status, &now])
            .await?
            .check(&key)?;
        match reply.tag.as_str() {
            "decided" => Ok(true),
            "unchanged" => Ok(false),
            _ => Err(reply.unexpected()),
        }
    }

    /// One script: the poll transition, atomically.
    async fn poll_device(
        &self,
        device: SecretKey,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        let key = self.inner.keys.record('d', &device);
        let now = now.unix_timestamp().to_string();
        let reply = self
            .eval(
                &self.inner.scripts.poll_device,
                &[&key],
                &[client.as_str(), &now],
            )
            .await?
            .check(&key)?;
        Ok(match reply.tag.as_str() {
            "approved" => DevicePoll::Approved(decode("device record", &reply.record()?)?),
            "pending" => DevicePoll::Pending,
            "slow_down" => DevicePoll::SlowDown,
            "denied" => DevicePoll::Denied,
            "expired" => DevicePoll::Expired,
            "unknown" => DevicePoll::Unknown,
            _ => return Err(reply.unexpected()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_positive_ms() {
        assert_eq!(pxat(OffsetDateTime::UNIX_EPOCH), 1);
        let t = OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(1_700_000_000_123);
        assert_eq!(pxat(t), 1_700_000_000_123);
        assert_eq!(epoch_ms(t), 1_700_000_000_123);
    }
}
