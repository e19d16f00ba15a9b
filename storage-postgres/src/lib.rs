#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod device;
mod error;
mod registration;
mod replay;
mod sql;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, PgConnection, Row};
use time::OffsetDateTime;

use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, PendingAuthorization, PendingStore, RefreshLookup,
    TokenRecord,
};
use tessera::{Client, ClientId, ClientRegistry, GrantId, SecretKey, StoreError};

pub use error::{ConnectError, redact};

use crate::error::{is_unreachable, map_err};
use crate::sql::Sql;

/// The default schema the store's tables live in.
pub const DEFAULT_SCHEMA: &str = "tessera";
/// The default bound on one store call (pool wait and statement together).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on connecting and migrating at start.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default pool size.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// The default life of a revocation mark for a grant nothing was stored in.
pub const DEFAULT_REVOKED_GRANT_TTL: Duration = Duration::from_secs(3600);
/// The default number of rows one sweeper statement deletes.
pub const DEFAULT_SWEEP_BATCH: u32 = 1000;
/// The default number of batches per table and sweep.
pub const DEFAULT_SWEEP_MAX_BATCHES: u32 = 100;

/// A pooled connection idle this long is pinged before use, so connections
/// left over from before a database restart are replaced instead of failing
/// a request. Busy connections are not pinged (no extra round trip).
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The schema migrations shipped with the crate (`migrations/`), embedded.
/// [`PostgresStore`] runs them on start unless told not to
/// ([`PostgresStoreBuilder::migrate`]); they run with `search_path` set to
/// the store's schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Configures and opens a [`PostgresStore`]; made by
/// [`PostgresStore::connect`], finished with `.await` (or [`build`](Self::build)).
#[derive(Clone)]
#[must_use = "a builder does nothing until awaited"]
pub struct PostgresStoreBuilder {
    url: String,
    schema: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    max_connections: u32,
    migrate: bool,
    revoked_grant_ttl: Duration,
    sweep_batch: u32,
    sweep_max_batches: u32,
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_connections", &self.max_connections)
            .field("migrate", &self.migrate)
            .finish_non_exhaustive()
    }
}

/// Whether `name` is a plain lower-case SQL identifier, safe to quote into statements.
fn valid_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    (1..=63).contains(&name.len())
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A duration as whole milliseconds for a server setting, at least 1.
fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

impl PostgresStoreBuilder {
    fn new(url: String) -> Self {
        Self {
            url,
            schema: DEFAULT_SCHEMA.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            migrate: true,
            revoked_grant_ttl: DEFAULT_REVOKED_GRANT_TTL,
            sweep_batch: DEFAULT_SWEEP_BATCH,
            sweep_max_batches: DEFAULT_SWEEP_MAX_BATCHES,
        }
    }

    /// The schema of the store's tables (default `tessera`), created if
    /// missing. Several issuers can share one database with one schema each.
    /// A plain lower-case identifier: `a-z`, `0-9`, `_`, at most 63 bytes.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The bound on each store call, waiting for a pooled connection
    /// included (default 2 s). It is also the server-side
    /// `statement_timeout`. A call that takes longer answers
    /// [`StoreError::Unavailable`] instead of hanging a request.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The bound on connecting and migrating at start (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most connections the pool opens (default 10, at least 1).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Whether to create the schema and run [`MIGRATOR`] on start (default
    /// `true`). Turn it off when migrations are applied by a deployment step
    /// (`sqlx migrate run --source storage-postgres/migrations` with
    /// `search_path` set to the schema, or the SQL files by hand).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How long a revocation is remembered for a grant that had nothing
    /// stored when it was revoked (default 1 h). A grant with records keeps
    /// its revocation as long as its longest record.
    pub fn revoked_grant_ttl(mut self, ttl: Duration) -> Self {
        self.revoked_grant_ttl = ttl;
        self
    }

    /// How many rows one sweeper statement deletes (default 1000, at least
    /// 1), and how many such batches one [`sweep`](PostgresStore::sweep)
    /// runs per table at most (default 100, at least 1): a sweep holds no
    /// lock for long and ends even when far behind.
    pub fn sweep_batches(mut self, batch: u32, max_batches: u32) -> Self {
        self.sweep_batch = batch.max(1);
        self.sweep_max_batches = max_batches.max(1);
        self
    }

    /// Connects, creates the schema and runs the migrations (unless turned
    /// off), all within the connect timeout. Fails with a [`ConnectError`]
    /// saying what was tried.
    pub async fn build(self) -> Result<PostgresStore, ConnectError> {
        if !valid_schema(&self.schema) {
            return Err(ConnectError::InvalidSchema(self.schema));
        }
        let target = redact(&self.url);
        let scheme = url::Url::parse(&self.url).map(|u| u.scheme().to_owned());
        if !matches!(scheme.as_deref(), Ok("postgres" | "postgresql")) {
            return Err(ConnectError::InvalidUrl {
                url: target,
                reason: "expected postgres://USER:PASS@HOST:PORT/DB".to_owned(),
            });
        }
        let options =
            PgConnectOptions::from_str(&self.url).map_err(|e| ConnectError::InvalidUrl {
                url: target.clone(),
                reason: e.to_string(),
            })?;
        // Bounded on the server too: a statement (or a lock wait) never
        // outlives the client's patience by much.
        let timeout = format!("{}ms", millis(self.command_timeout));
        let options = options.application_name("tessera").options([
            ("statement_timeout", timeout.as_str()),
            ("lock_timeout", timeout.as_str()),
            ("idle_in_transaction_session_timeout", timeout.as_str()),
        ]);

        // The first connection proves the server reachable and does the
        // schema work, within the connect timeout.
        let connect_timeout = self.connect_timeout;
        let timed_out = || ConnectError::Unreachable {
            target: target.clone(),
            reason: format!("no answer within {connect_timeout:?}"),
        };
        let first = async {
            let mut conn = PgConnection::connect_with(&options)
                .await
                .map_err(|e| connect_failure(&target, e))?;
            if self.migrate {
                migrate(&mut conn, &self.schema).await.map_err(|reason| {
                    ConnectError::Migration {
                        target: target.clone(),
                        reason,
                    }
                })?;
            }
            let _ = conn.close().await;
            Ok::<(), ConnectError>(())
        };
        tokio::time::timeout(connect_timeout, first)
            .await
            .map_err(|_| timed_out())??;

        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(0)
            .acquire_timeout(self.command_timeout)
            // Released connections are pinged by sqlx anyway; on acquire,
            // only long-idle ones are (see PING_IDLE_AFTER).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(&self.schema),
                devices: device::DeviceSql::new(&self.schema),
                replay: replay::ReplaySql::new(&self.schema),
                schema: self.schema,
                target,
                timeout: self.command_timeout,
                revoked_grant_ttl: self.revoked_grant_ttl,
                sweep_batch: self.sweep_batch,
                sweep_max_batches: self.sweep_max_batches,
            }),
        })
    }
}

impl IntoFuture for PostgresStoreBuilder {
    type Output = Result<PostgresStore, ConnectError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.build())
    }
}

fn connect_failure(target: &str, e: sqlx::Error) -> ConnectError {
    let reason = one_line(&e.to_string());
    if is_unreachable(&e) {
        ConnectError::Unreachable {
            target: target.to_owned(),
            reason,
        }
    } else {
        ConnectError::Refused {
            target: target.to_owned(),
            reason,
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Creates the schema if missing and runs the migrations in it, under an
/// advisory lock so that several instances starting at once do it once.
async fn migrate(conn: &mut PgConnection, schema: &str) -> Result<(), String> {
    // One lock key per schema: pg_advisory_lock(hashtext('tessera-migrate:<schema>')).
    let key = format!("tessera-migrate:{schema}");
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await
        .map_err(|e| one_line(&e.to_string()))?;
    let result = async {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            // The name was validated: a plain identifier, quoted.
            conn.execute(format!("CREATE SCHEMA \"{schema}\"").as_str())
                .await?;
        }
        // Unqualified names in the migrations (and sqlx's own
        // `_sqlx_migrations`) land in the store's schema.
        conn.execute(format!("SET search_path TO \"{schema}\"").as_str())
            .await?;
        MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(sqlx::Error::from)?;
        Ok::<(), sqlx::Error>(())
    }
    .await
    .map_err(|e| one_line(&e.to_string()));
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked.map(drop).map_err(|e| one_line(&e.to_string()))
}

struct Inner {
    pool: PgPool,
    sql: Sql,
    devices: device::DeviceSql,
    replay: replay::ReplaySql,
    schema: String,
    target: String,
    timeout: Duration,
    revoked_grant_ttl: Duration,
    sweep_batch: u32,
    sweep_max_batches: u32,
}

/// A Tessera store in PostgreSQL. Cheap to clone: clones share one pool.
///
/// Implements [`ClientRegistry`], [`GrantStore`], [`PendingStore`] and
/// [`tessera::storage::DeviceStore`] (so it is a [`tessera::Store`]); every
/// method is one statement, but a device poll (one short transaction).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// What one [`PostgresStore::sweep`] deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Swept {
    /// Expired grants (with whatever was left of them: taken codes, ...).
    pub grants: u64,
    /// Expired, untaken authorization codes.
    pub codes: u64,
    /// Expired access tokens.
    pub access_tokens: u64,
    /// Expired refresh tokens, current or retired.
    pub refresh_tokens: u64,
    /// Expired pending authorization requests.
    pub pending: u64,
    /// Device authorization requests past their grace period.
    pub devices: u64,
    /// Expired replay cache entries (DPoP proofs, assertions).
    pub replay: u64,
}

impl Swept {
    /// All rows deleted.
    pub fn total(&self) -> u64 {
        self.grants
            + self.codes
            + self.access_tokens
            + self.refresh_tokens
            + self.pending
            + self.devices
            + self.replay
    }
}

/// A row's JSON body, decoded; `Corrupt` when it is not the record.
fn decode<T: DeserializeOwned>(what: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw)
        .map_err(|e| StoreError::corrupt(format!("{what} does not decode: {e}")))
}

fn encode<T: serde::Serialize>(record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(StoreError::other)
}

/// A column of a row; a value of another type is `Corrupt`.
fn column<'r, T>(row: &'r PgRow, index: usize) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(index).map_err(map_err)
}

impl PostgresStore {
    /// Starts configuring a store on the database at `url`
    /// (`postgres://USER:PASS@HOST:PORT/DB`, any parameter sqlx knows, e.g.
    /// `?sslmode=require` with the `rustls` feature). Finish with `.await`.
    pub fn connect(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(url.into())
    }

    /// The schema the tables are in.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The pool, e.g. for metrics or to run the embedder's own queries on
    /// the same connections.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Runs one statement-producing future bounded by the command timeout.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let t = self.inner.timeout;
        match tokio::time::timeout(t, work).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(StoreError::unavailable(format!(
                "PostgreSQL did not answer within {t:?}"
            ))),
        }
    }

    /// Registers or replaces a client (one statement, an upsert; repeating
    /// it is harmless).
    pub async fn put_client(&self, client: &Client) -> Result<(), StoreError> {
        let json = encode(client)?;
        self.bounded(
            sqlx::query(&self.inner.sql.put_client)
                .bind(client.id.as_str())
                .bind(json)
                .execute(&self.inner.pool),
        )
        .await
        .map(drop)
    }

    /// Unregisters a client; whether there was one. Tokens already issued
    /// to it stay until they expire or are revoked (the server checks the
    /// client on use).
    pub async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let done = self
            .bounded(
                sqlx::query(&self.inner.sql.remove_client)
                    .bind(id.as_str())
                    .execute(&self.inner.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether any client is registered in this schema (one statement).
    pub async fn has_clients(&self) -> Result<bool, StoreError> {
        self.bounded(
            sqlx::query_scalar::<_, bool>(&self.inner.sql.has_clients).fetch_one(&self.inner.pool),
        )
        .await
    }

    /// Whether no client is registered: the demo seeds its clients only
    /// then, so restarts keep what was registered.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(!self.has_clients().await?)
    }

    /// Deletes what expired by `now`, in batches (see
    /// [`PostgresStoreBuilder::sweep_batches`]): expired grants first (with
    /// what is left of them), then expired codes, tokens and pending
    /// requests of live grants. Each batch is one short statement that
    /// skips rows other transactions hold, so sweeping never blocks a grant
    /// step, and several instances may sweep at once.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<Swept, StoreError> {
        let sql = &self.inner.sql;
        let mut swept = Swept::default();
        for (text, count) in [
            (&sql.sweep_grants, &mut swept.grants),
            (&sql.sweep_codes, &mut swept.codes),
            (&sql.sweep_access_tokens, &mut swept.access_tokens),
            (&sql.sweep_refresh_tokens, &mut swept.refresh_tokens),
            (&sql.sweep_pending, &mut swept.pending),
            (&self.inner.devices.sweep, &mut swept.devices),
            (&self.inner.replay.sweep, &mut swept.replay),
        ] {
            for _ in 0..self.inner.sweep_max_batches {
                let done = self
                    .bounded(
                        sqlx::query(text)
                            .bind(now)
                            .bind(i64::from(self.inner.sweep_batch))
                            .execute(&self.inner.pool),
                    )
                    .await?;
                *count += done.rows_affected();
                if done.rows_affected() < u64::from(self.inner.sweep_batch) {
                    break;
                }
            }
        }
        Ok(swept)
    }

    /// Starts a Tokio task that calls [`sweep`](Self::sweep) with the system
    /// clock every `every` (at least 1 s). The task holds only a weak
    /// reference, so it ends by itself once every clone of the store is
    /// dropped. A failed sweep is logged (`tracing`) and retried next time.
    ///
    /// # Panics
    ///
    /// Like [`tokio::spawn`], when called outside a Tokio runtime.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let store = PostgresStore { inner };
                match store.sweep(OffsetDateTime::now_utc()).await {
                    Ok(swept) if swept.total() > 0 => {
                        tracing::debug!(?swept, "swept expired Tessera records");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "sweeping expired Tessera records failed")
                    }
                }
            }
        })
    }

    /// The expiry of a revocation mark for a grant with no row.
    fn tombstone_expiry(&self) -> OffsetDateTime {
        let ttl = time::Duration::try_from(self.inner.revoked_grant_ttl)
            .unwrap_or(time::Duration::days(1));
        OffsetDateTime::now_utc().saturating_add(ttl)
    }
}

#[async_trait]
impl ClientRegistry for PostgresStore {
    /// One short transaction under an advisory lock (see the `registration` module).
    async fn register_client(
        &self,
        client: Client,
        max_dynamic: usize,
        now: OffsetDateTime,
    ) -> Result<tessera::RegisterOutcome, StoreError> {
        self.register_dynamic(client, max_dynamic, now).await
    }

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

    /// One `SELECT` by primary key.
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let raw: Option<String> = self
            .bounded(
                sqlx::query_scalar(&self.inner.sql.client)
                    .bind(id.as_str())
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let client: Client = decode("client record", &raw)?;
        if client.id != *id {
            return Err(StoreError::corrupt(format!(
                "the row of client {:?} holds client {:?}",
                id.as_str(),
                client.id.as_str()
            )));
        }
        Ok(Some(Arc::new(client)))
    }
}

#[async_trait]
impl GrantStore for PostgresStore {
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError> {
        let json = encode(&record)?;
        self.bounded(
            sqlx::query(&self.inner.sql.put_code)
                .bind(&code.grant.0[..])
                .bind(&code.hash.0[..])
                .bind(record.expires_at)
                .bind(json)
                .execute(&self.inner.pool),
        )
        .await
        .map(drop)
    }

    async fn take_code(
        &self,
        code: SecretKey,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        let row = self
            .bounded(
                sqlx::query(&self.inner.sql.take_code)
                    .bind(&code.grant.0[..])
                    .bind(&code.hash.0[..])
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        let Some(row) = row else {
            return Ok(CodeTake::Unknown);
        };
        let taken: bool = column(&row, 0)?;
        let record: Option<String> = column(&row, 1)?;
        let won: bool = column(&row, 2)?;
        if won {
            // The statement marked it taken; a record that does not decode
            // is still spent (never served twice).
            let raw = record.ok_or_else(|| StoreError::corrupt("a code row without a record"))?;
            return decode("code record", &raw).map(CodeTake::Taken);
        }
        Ok(if taken {
            CodeTake::AlreadyTaken
        } else {
            CodeTake::Unknown
        })
    }

    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        let until = tokens.expires_at();
        let (access_hash, access) = &tokens.access;
        let access_json = encode(access)?;
        let (refresh_hash, refresh_exp, refresh_json) = match &tokens.refresh {
            Some((h, r)) => (Some(&h.0[..]), Some(r.expires_at), Some(encode(r)?)),
            None => (None, None, None),
        };
        let stored: i64 = self
            .bounded(
                sqlx::query_scalar(&self.inner.sql.issue)
                    .bind(&grant.0[..])
                    .bind(until)
                    .bind(&access_hash.0[..])
                    .bind(access.expires_at)
                    .bind(access_json)
                    .bind(refresh_hash)
                    .bind(refresh_exp)
                    .bind(refresh_json)
                    .fetch_one(&self.inner.pool),
            )
            .await?;
        Ok(stored > 0)
    }

    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let raw: Option<String> = self
            .bounded(
                sqlx::query_scalar(&self.inner.sql.access_token)
                    .bind(&token.grant.0[..])
                    .bind(&token.hash.0[..])
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let record: TokenRecord = decode("access token record", &raw)?;
        Ok((now < record.expires_at).then_some(record))
    }

    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        let row = self
            .bounded(
                sqlx::query(&self.inner.sql.refresh_token)
                    .bind(&token.grant.0[..])
                    .bind(&token.hash.0[..])
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        let Some(row) = row else {
            return Ok(RefreshLookup::Unknown);
        };
        let raw: String = column(&row, 0)?;
        let current: bool = column(&row, 1)?;
        let record: TokenRecord = decode("refresh token record", &raw)?;
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
        // Every new token belongs to the old token's grant (a refresh family is one grant).
        let until = tokens.expires_at();
        let (access_hash, access) = &tokens.access;
        let access_json = encode(access)?;
        let (refresh_hash, refresh_exp, refresh_json) = match &tokens.refresh {
            Some((h, r)) => (Some(&h.0[..]), Some(r.expires_at), Some(encode(r)?)),
            None => (None, None, None),
        };
        let rotated: i64 = self
            .bounded(
                sqlx::query_scalar(&self.inner.sql.rotate_refresh)
                    .bind(&old.grant.0[..])
                    .bind(&old.hash.0[..])
                    .bind(now)
                    .bind(until)
                    .bind(refresh_hash)
                    .bind(&access_hash.0[..])
                    .bind(access.expires_at)
                    .bind(access_json)
                    .bind(refresh_exp)
                    .bind(refresh_json)
                    .fetch_one(&self.inner.pool),
            )
            .await?;
        Ok(rotated > 0)
    }

    /// One `DELETE` by primary key.
    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        self.bounded(
            sqlx::query(&self.inner.sql.revoke_access_token)
                .bind(&token.grant.0[..])
                .bind(&token.hash.0[..])
                .execute(&self.inner.pool),
        )
        .await
        .map(drop)
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        let _: i64 = self
            .bounded(
                sqlx::query_scalar(&self.inner.sql.revoke_grant)
                    .bind(&grant.0[..])
                    .bind(self.tombstone_expiry())
                    .fetch_one(&self.inner.pool),
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl PendingStore for PostgresStore {
    /// One upsert.
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError> {
        let json = encode(&request)?;
        self.bounded(
            sqlx::query(&self.inner.sql.put_pending)
                .bind(&handle.grant.0[..])
                .bind(&handle.hash.0[..])
                .bind(request.expires_at)
                .bind(json)
                .execute(&self.inner.pool),
        )
        .await
        .map(drop)
    }

    /// One `SELECT`; an expired request is `None`.
    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let raw: Option<String> = self
            .bounded(
                sqlx::query_scalar(&self.inner.sql.get_pending)
                    .bind(&handle.grant.0[..])
                    .bind(&handle.hash.0[..])
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let request: PendingAuthorization = decode("pending request", &raw)?;
        Ok((now < request.expires_at).then_some(request))
    }

    /// One `DELETE … RETURNING`, so at most one caller gets the request.
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = self
            .bounded(
                sqlx::query(&self.inner.sql.take_pending)
                    .bind(&handle.grant.0[..])
                    .bind(&handle.hash.0[..])
                    .bind(now)
                    .fetch_optional(&self.inner.pool),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let raw: String = column(&row, 0)?;
        let live: bool = column(&row, 1)?;
        let request: PendingAuthorization = decode("pending request", &raw)?;
        Ok((live && now < request.expires_at).then_some(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["tessera", "_t", "t_1", &"a".repeat(63)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in [
            "",
            "1t",
            "Tessera",
            "t-1",
            "t\"x",
            "t x",
            &"a".repeat(64),
            "té",
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_schema_and_url_are_refused_before_connecting() {
        let e = PostgresStore::connect("postgres://u@127.0.0.1:1/db")
            .schema("no;drop")
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::InvalidSchema(_)), "{e}");
        let e = PostgresStore::connect("mysql://u:pw@h/db")
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::InvalidUrl { .. }), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let b = PostgresStore::connect("postgres://u:hunter2@h:5432/db");
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
