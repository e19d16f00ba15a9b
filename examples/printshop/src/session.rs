//! Server-side sessions keyed by an opaque, HttpOnly cookie.
//!
//! Everything sensitive (PKCE verifiers, `state` values, access and refresh
//! tokens) stays on the server: in process memory (`--store memory`), in
//! Redis (`--store redis://…`) or in PostgreSQL (`--store postgres://…`,
//! [`postgres`]). The browser only ever holds a random 256-bit session id.
//!
//! In Redis a session is one hash, `printshop:session:<id>`, whose TTL is
//! [`IDLE_TIMEOUT`] (renewed on every visit). Its fields are `created`,
//! `link` (the tokens, as JSON) and one `p:<state>` per authorization in
//! flight (the PKCE verifier and start time, as JSON). Adding and taking
//! fields are Lua scripts, so they are atomic: a pending authorization can be
//! taken once, however many callbacks race for it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use oauth2::{AccessToken, CsrfToken, PkceCodeVerifier, RefreshToken};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

pub mod postgres;
pub use postgres::PostgresSessions;

/// Name of PrintShop's session cookie.
pub const COOKIE_NAME: &str = "printshop_session";
/// A session unused for this long is forgotten.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// An authorization started longer ago than this cannot be completed.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// At most this many authorizations may be in flight per session (e.g. in several tabs).
pub const MAX_PENDING: usize = 4;
/// At most this many sessions are kept in memory (or live in PostgreSQL);
/// beyond it new visitors are turned away. (Redis bounds its sessions by
/// their TTLs and its own `maxmemory`.)
pub const MAX_SESSIONS: usize = 10_000;
/// The prefix of every Redis key PrintShop writes.
pub const REDIS_PREFIX: &str = "printshop:session:";
/// How long connecting to Redis (and its first PING) may take at start-up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The bound on every later Redis call.
pub const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// A `state` longer than this is not looked up (PrintShop's own are 43 characters).
const MAX_STATE_LEN: usize = 256;

/// An authorization request sent to the provider and not yet answered.
#[derive(Debug)]
pub struct Pending {
    /// The `state` sent with the request.
    pub state: CsrfToken,
    /// The PKCE verifier whose S256 challenge was sent.
    pub verifier: PkceCodeVerifier,
    /// When the request was made (wall clock, so that it means the same in Redis).
    pub started: SystemTime,
}

impl Pending {
    /// An authorization started now.
    pub fn new(state: CsrfToken, verifier: PkceCodeVerifier) -> Self {
        Self {
            state,
            verifier,
            started: SystemTime::now(),
        }
    }

    /// Whether it was started more than [`PENDING_TIMEOUT`] before `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now.duration_since(self.started)
            .is_ok_and(|age| age > PENDING_TIMEOUT)
    }
}

/// The tokens of a linked PhotoBook account.
#[derive(Debug, Clone)]
pub struct Link {
    /// Current access token.
    pub access: AccessToken,
    /// Current refresh token, if the provider issued one.
    pub refresh: Option<RefreshToken>,
    /// When the access token expires, if the provider said.
    pub expires_at: Option<SystemTime>,
}

impl Link {
    /// Whether the access token is known to have expired (with a small margin).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at
            .is_some_and(|at| now + Duration::from_secs(5) >= at)
    }
}

/// Why a session operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store (memory or PostgreSQL) holds [`MAX_SESSIONS`] sessions; try later.
    #[error("too many sessions")]
    Full,
    /// Redis did not answer, refused, or held something unreadable.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        Self::Unavailable(one_line(&error.to_string()))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Unavailable(format!("unreadable session data: {error}"))
    }
}

/// The `--store` could not be opened: `cannot use the Redis store URL: reason`
/// (or `PostgreSQL`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot use the {kind} store {store}: {reason}")]
pub struct OpenError {
    /// `Redis` or `PostgreSQL`.
    pub kind: &'static str,
    /// The store, its password masked.
    pub store: String,
    /// What went wrong, on one line.
    pub reason: String,
}

/// All sessions: in memory, in Redis or in PostgreSQL, as `--store` says.
#[derive(Debug)]
pub enum SessionStore {
    /// In process memory (lost on restart).
    Memory(MemorySessions),
    /// In Redis, shared by every PrintShop process using it.
    Redis(RedisSessions),
    /// In PostgreSQL, shared by every PrintShop process using it.
    Postgres(PostgresSessions),
}

impl Default for SessionStore {
    fn default() -> Self {
        Self::Memory(MemorySessions::default())
    }
}

impl SessionStore {
    /// Opens `store`: `memory`; a `redis://` URL, which is connected to and
    /// PINGed (within [`REDIS_CONNECT_TIMEOUT`]) before this returns; or a
    /// `postgres://` URL, connected to and its tables created if missing
    /// (within [`postgres::POSTGRES_CONNECT_TIMEOUT`]).
    pub async fn open(store: &str) -> Result<Self, OpenError> {
        if store == "memory" {
            return Ok(Self::default());
        }
        let scheme = store.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            return PostgresSessions::connect(store).await.map(Self::Postgres);
        }
        RedisSessions::connect(store).await.map(Self::Redis)
    }

    /// Finds the session named by the request's cookie, if it exists and was
    /// not idle too long, and marks it used; returns its id.
    pub async fn find(&self, headers: &HeaderMap) -> Result<Option<String>, StoreError> {
        // Ids are 43 characters; anything much longer is not looked up.
        let Some(id) = cookie_value(headers, COOKIE_NAME).filter(|id| id.len() <= 64) else {
            return Ok(None);
        };
        let found = match self {
            Self::Memory(m) => m.with(&id, |_| ()).is_some(),
            Self::Redis(r) => r.touch(&id).await?,
            Self::Postgres(p) => p.touch(&id).await?,
        };
        Ok(found.then_some(id))
    }

    /// Creates a fresh, empty session and returns its id.
    pub async fn create(&self) -> Result<String, StoreError> {
        let id = CsrfToken::new_random_len(32).into_secret();
        match self {
            Self::Memory(m) => m.create(&id)?,
            Self::Redis(r) => r.create(&id).await?,
            Self::Postgres(p) => p.create(&id).await?,
        }
        Ok(id)
    }

    /// Records a new authorization in flight in session `id`, forgetting
    /// expired ones and the oldest beyond [`MAX_PENDING`]. Does nothing if the
    /// session is gone.
    pub async fn push_pending(&self, id: &str, pending: Pending) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.with(id, |entry| {
                    let now = SystemTime::now();
                    entry.pending.retain(|p| !p.is_expired(now));
                    if entry.pending.len() >= MAX_PENDING {
                        entry.pending.remove(0);
                    }
                    entry.pending.push(pending);
                });
                Ok(())
            }
            Self::Redis(r) => r.push_pending(id, pending).await,
            Self::Postgres(p) => p.push_pending(id, pending).await,
        }
    }

    /// Takes (atomically, so at most once) session `id`'s pending
    /// authorization whose `state` equals `state`, if any. An expired one is
    /// still returned, for the caller to say so.
    pub async fn take_pending(&self, id: &str, state: &str) -> Result<Option<Pending>, StoreError> {
        if state.is_empty() || state.len() > MAX_STATE_LEN {
            return Ok(None);
        }
        match self {
            Self::Memory(m) => Ok(m
                .with(id, |entry| {
                    let index = entry.pending.iter().position(|p| {
                        bool::from(p.state.secret().as_bytes().ct_eq(state.as_bytes()))
                    })?;
                    Some(entry.pending.remove(index))
                })
                .flatten()),
            Self::Redis(r) => r.take_pending(id, state).await,
            Self::Postgres(p) => p.take_pending(id, state).await,
        }
    }

    /// Number of authorizations in flight in session `id` (expired ones included until pruned).
    pub async fn pending_count(&self, id: &str) -> Result<usize, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.with(id, |entry| entry.pending.len()).unwrap_or(0)),
            Self::Redis(r) => r.pending_count(id).await,
            Self::Postgres(p) => p.pending_count(id).await,
        }
    }

    /// Session `id`'s linked account, if any.
    pub async fn link(&self, id: &str) -> Result<Option<Link>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.with(id, |entry| entry.link.clone()).flatten()),
            Self::Redis(r) => r.link(id).await,
            Self::Postgres(p) => p.link(id).await,
        }
    }

    /// Stores session `id`'s linked account (replacing any). Does nothing if the session is gone.
    pub async fn set_link(&self, id: &str, link: &Link) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.with(id, |entry| entry.link = Some(link.clone()));
                Ok(())
            }
            Self::Redis(r) => r.set_link(id, link).await,
            Self::Postgres(p) => p.set_link(id, link).await,
        }
    }

    /// Stores session `id`'s linked account and returns the one it replaced,
    /// in one atomic step (so that two callbacks racing in two processes
    /// each get back a link to revoke, and none is lost). Does nothing if
    /// the session is gone.
    pub async fn replace_link(&self, id: &str, link: &Link) -> Result<Option<Link>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m
                .with(id, |entry| entry.link.replace(link.clone()))
                .flatten()),
            Self::Redis(r) => r.replace_link(id, link).await,
            Self::Postgres(p) => p.replace_link(id, link).await,
        }
    }

    /// Removes and returns session `id`'s linked account, if any (atomically).
    pub async fn take_link(&self, id: &str) -> Result<Option<Link>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.with(id, |entry| entry.link.take()).flatten()),
            Self::Redis(r) => r.take_link(id).await,
            Self::Postgres(p) => p.take_link(id).await,
        }
    }
}

/// The memory backend. Its `Debug` shows how many sessions it holds, never
/// their ids (a session id is a bearer credential for the linked account).
#[derive(Default)]
pub struct MemorySessions {
    entries: Mutex<HashMap<String, Entry>>,
}

impl fmt::Debug for MemorySessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySessions")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Entry {
    last_seen: Instant,
    /// Authorizations in flight, oldest first.
    pending: Vec<Pending>,
    link: Option<Link>,
}

impl MemorySessions {
    /// Runs `f` on live session `id` (marking it used); `None` if there is none.
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let entry = entries.get_mut(id)?;
        if now.duration_since(entry.last_seen) > IDLE_TIMEOUT {
            entries.remove(id);
            return None;
        }
        entry.last_seen = now;
        Some(f(entry))
    }

    fn create(&self, id: &str) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if entries.len() >= MAX_SESSIONS {
            entries.retain(|_, e| now.duration_since(e.last_seen) <= IDLE_TIMEOUT);
        }
        if entries.len() >= MAX_SESSIONS {
            return Err(StoreError::Full);
        }
        entries.insert(
            id.to_owned(),
            Entry {
                last_seen: now,
                pending: Vec::new(),
                link: None,
            },
        );
        Ok(())
    }

    /// Number of sessions held (idle ones included until swept).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The Redis backend: one shared, auto-reconnecting connection.
#[derive(Clone)]
pub struct RedisSessions {
    conn: ConnectionManager,
    target: String,
}

impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A pending authorization as stored in Redis (its `state` is the field name).
#[derive(Serialize, Deserialize)]
struct StoredPending {
    verifier: String,
    started_ms: u64,
}

/// A link as stored in Redis or PostgreSQL.
#[derive(Serialize, Deserialize)]
struct StoredLink {
    access: String,
    refresh: Option<String>,
    expires_at_ms: Option<u64>,
}

impl StoredLink {
    fn of(link: &Link) -> Self {
        Self {
            access: link.access.secret().clone(),
            refresh: link.refresh.as_ref().map(|r| r.secret().clone()),
            expires_at_ms: link.expires_at.map(unix_ms),
        }
    }
}

/// Adds a pending authorization: drops expired ones and the oldest beyond
/// the limit, adds the new one, renews the session's TTL. 0 if the session is gone.
/// KEYS[1] session; ARGV: field, value, now ms, pending timeout ms, max pending, idle ms.
static PUSH_PENDING: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = tonumber(ARGV[3])
local timeout = tonumber(ARGV[4])
local max = tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local field = all[i]
  if string.sub(field, 1, 2) == 'p:' then
    local ok, value = pcall(cjson.decode, all[i + 1])
    local started = ok and type(value) == 'table' and tonumber(value.started_ms)
    if started and now - started <= timeout then
      table.insert(live, {field, started})
    else
      redis.call('HDEL', KEYS[1], field)
    end
  end
end
table.sort(live, function(a, b)
  if a[2] == b[2] then return a[1] < b[1] end
  return a[2] < b[2]
end)
for i = 1, #live - max + 1 do
  redis.call('HDEL', KEYS[1], live[i][1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
",
    )
});

/// Takes a field: returns its value and deletes it, atomically (nil if absent).
/// KEYS[1] session; ARGV[1] field.
static TAKE_FIELD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then redis.call('HDEL', KEYS[1], ARGV[1]) end
return value
",
    )
});

/// Sets a field of an existing session and renews its TTL. 0 if the session is gone.
/// KEYS[1] session; ARGV: field, value, idle ms.
static SET_FIELD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

/// Sets a field of an existing session, renews its TTL, and returns the
/// field's previous value (nil if none, or if the session is gone).
/// KEYS[1] session; ARGV: field, value, idle ms.
static SWAP_FIELD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return old
",
    )
});

/// Counts the pending fields of a session.
/// KEYS[1] session.
static COUNT_PENDING: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'p:' then n = n + 1 end
end
return n
",
    )
});

const LINK_FIELD: &str = "link";

impl RedisSessions {
    /// Connects to `url` and checks that the server answers PING, all within
    /// [`REDIS_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let target = redact(url);
        let fail = |reason: String| OpenError {
            kind: "Redis",
            store: target.clone(),
            reason: one_line(&reason),
        };
        let client = redis::Client::open(url).map_err(|e| fail(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
            .set_response_timeout(Some(REDIS_COMMAND_TIMEOUT))
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let check = async {
            let mut conn = ConnectionManager::new_with_config(client, config).await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, check)
            .await
            .map_err(|_| fail(format!("no answer within {REDIS_CONNECT_TIMEOUT:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self { conn, target })
    }

    fn key(id: &str) -> String {
        format!("{REDIS_PREFIX}{id}")
    }

    async fn touch(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let renewed: bool = redis::cmd("PEXPIRE")
            .arg(Self::key(id))
            .arg(millis(IDLE_TIMEOUT))
            .query_async(&mut conn)
            .await?;
        Ok(renewed)
    }

    async fn create(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = Self::key(id);
        redis::pipe()
            .atomic()
            .hset(&key, "created", unix_ms(SystemTime::now()))
            .ignore()
            .pexpire(&key, millis(IDLE_TIMEOUT).try_into().unwrap_or(i64::MAX))
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn push_pending(&self, id: &str, pending: Pending) -> Result<(), StoreError> {
        let now = unix_ms(SystemTime::now());
        let value = serde_json::to_string(&StoredPending {
            verifier: pending.verifier.secret().clone(),
            started_ms: unix_ms(pending.started),
        })?;
        let mut conn = self.conn.clone();
        PUSH_PENDING
            .key(Self::key(id))
            .arg(format!("p:{}", pending.state.secret()))
            .arg(value)
            .arg(now)
            .arg(millis(PENDING_TIMEOUT))
            .arg(MAX_PENDING)
            .arg(millis(IDLE_TIMEOUT))
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    async fn take_pending(&self, id: &str, state: &str) -> Result<Option<Pending>, StoreError> {
        let Some(value) = self.take_field(id, &format!("p:{state}")).await? else {
            return Ok(None);
        };
        let stored: StoredPending = serde_json::from_str(&value)?;
        Ok(Some(Pending {
            state: CsrfToken::new(state.to_owned()),
            verifier: PkceCodeVerifier::new(stored.verifier),
            started: from_unix_ms(stored.started_ms),
        }))
    }

    async fn pending_count(&self, id: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let n: usize = COUNT_PENDING
            .key(Self::key(id))
            .invoke_async(&mut conn)
            .await?;
        Ok(n)
    }

    async fn link(&self, id: &str) -> Result<Option<Link>, StoreError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("HGET")
            .arg(Self::key(id))
            .arg(LINK_FIELD)
            .query_async(&mut conn)
            .await?;
        value.as_deref().map(decode_link).transpose()
    }

    async fn set_link(&self, id: &str, link: &Link) -> Result<(), StoreError> {
        let value = serde_json::to_string(&StoredLink::of(link))?;
        let mut conn = self.conn.clone();
        SET_FIELD
            .key(Self::key(id))
            .arg(LINK_FIELD)
            .arg(value)
            .arg(millis(IDLE_TIMEOUT))
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    async fn replace_link(&self, id: &str, link: &Link) -> Result<Option<Link>, StoreError> {
        let value = serde_json::to_string(&StoredLink::of(link))?;
        let mut conn = self.conn.clone();
        let old: Option<String> = SWAP_FIELD
            .key(Self::key(id))
            .arg(LINK_FIELD)
            .arg(value)
            .arg(millis(IDLE_TIMEOUT))
            .invoke_async(&mut conn)
            .await?;
        old.as_deref().map(decode_link).transpose()
    }

    async fn take_link(&self, id: &str) -> Result<Option<Link>, StoreError> {
        self.take_field(id, LINK_FIELD)
            .await?
            .as_deref()
            .map(decode_link)
            .transpose()
    }

    async fn take_field(&self, id: &str, field: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = TAKE_FIELD
            .key(Self::key(id))
            .arg(field)
            .invoke_async(&mut conn)
            .await?;
        Ok(value)
    }
}

fn decode_link(value: &str) -> Result<Link, StoreError> {
    let stored: StoredLink = serde_json::from_str(value)?;
    Ok(Link {
        access: AccessToken::new(stored.access),
        refresh: stored.refresh.map(RefreshToken::new),
        expires_at: stored.expires_at_ms.map(from_unix_ms),
    })
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `url` with its password, if any, masked.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Per-session locks within this process, so that one session's requests
/// that may refresh its tokens run one at a time (a rotated refresh token
/// must not be used twice). Entries go away when no request holds them.
/// Its `Debug` shows how many are held, never the session ids.
#[derive(Default)]
pub struct SessionLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for SessionLocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|lock| lock.strong_count() > 0)
            .count();
        f.debug_struct("SessionLocks")
            .field("held", &held)
            .finish_non_exhaustive()
    }
}

impl SessionLocks {
    /// Waits for, and holds until dropped, session `id`'s lock.
    pub async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// The `Set-Cookie` value for session `id`: a browser-session cookie (the
/// server forgets idle sessions after [`IDLE_TIMEOUT`]).
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// The value of cookie `name` in the request's `Cookie` headers, if present.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cookie_headers(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let cookie = format!("{COOKIE_NAME}={id}");
        headers.append(
            COOKIE,
            HeaderValue::from_str(&cookie).expect("valid header"),
        );
        headers
    }

    #[test]
    fn finds_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; printshop_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&headers, COOKIE_NAME).as_deref(), Some("xyz"));
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(COOKIE, HeaderValue::from_static("printshop_session=abc"));
        assert_eq!(cookie_value(&headers, COOKIE_NAME).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&HeaderMap::new(), COOKIE_NAME), None);
    }

    #[tokio::test]
    async fn unknown_session_is_not_found() {
        let store = SessionStore::default();
        assert_eq!(store.find(&cookie_headers("nope")).await, Ok(None));
        let id = store.create().await.expect("room for a session");
        assert_eq!(store.find(&cookie_headers(&id)).await, Ok(Some(id)));
    }

    #[test]
    fn cookie_attributes() {
        let cookie = set_cookie("abc", false);
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        assert!(set_cookie("abc", true).contains("; Secure"));
    }

    #[tokio::test]
    async fn pending_is_matched_by_state_and_taken_once() {
        let store = SessionStore::default();
        let id = store.create().await.expect("room for a session");
        let mut states = Vec::new();
        for _ in 0..6 {
            let (_, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
            let state = CsrfToken::new_random();
            states.push(state.secret().clone());
            store
                .push_pending(&id, Pending::new(state, verifier))
                .await
                .expect("memory");
        }
        assert_eq!(store.pending_count(&id).await, Ok(MAX_PENDING));
        assert!(
            store
                .take_pending(&id, &states[0])
                .await
                .expect("memory")
                .is_none(),
            "oldest dropped"
        );
        assert!(
            store
                .take_pending(&id, "wrong")
                .await
                .expect("memory")
                .is_none()
        );
        assert!(
            store
                .take_pending(&id, &states[3])
                .await
                .expect("memory")
                .is_some()
        );
        assert!(
            store
                .take_pending(&id, &states[3])
                .await
                .expect("memory")
                .is_none()
        );
    }

    /// Issue 11, defect 7: session ids, `state` values and PKCE verifiers
    /// never show in `Debug` output (a session id is a bearer credential for
    /// the linked account; `state` and the verifier protect the callback).
    #[tokio::test]
    async fn debug_shows_no_session_id_state_or_verifier() {
        let store = SessionStore::default();
        let id = store.create().await.expect("room for a session");
        let (_, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let verifier_text = verifier.secret().clone();
        let state = CsrfToken::new_random();
        let state_text = state.secret().clone();
        let pending = Pending::new(state, verifier);
        let pending_shown = format!("{pending:?}");
        store.push_pending(&id, pending).await.expect("memory");
        store
            .set_link(
                &id,
                &Link {
                    access: AccessToken::new("tsa_access-secret".into()),
                    refresh: Some(RefreshToken::new("tsr_refresh-secret".into())),
                    expires_at: None,
                },
            )
            .await
            .expect("memory");
        let locks = SessionLocks::default();
        let _held = locks.lock(&id).await;
        let shown = format!("{store:?} {locks:?} {pending_shown}");
        for secret in [
            id.as_str(),
            &state_text,
            &verifier_text,
            "access-secret",
            "refresh-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("len: 1"), "{shown}");
        assert!(shown.contains("held: 1"), "{shown}");
    }

    #[test]
    fn redact_masks_passwords() {
        assert_eq!(redact("redis://:hunter2@h:1/0"), "redis://:****@h:1/0");
        assert_eq!(redact("redis://127.0.0.1:1"), "redis://127.0.0.1:1");
    }
}
