//! PrintShop's sessions in PostgreSQL (`--store postgres://…`), shared by
//! every PrintShop process using the database, as with Redis.
//!
//! Two tables in the schema `printshop`, created at start if missing:
//! `sessions` (id, the link's tokens as JSON, when the session ends: renewed
//! on every visit, [`IDLE_TIMEOUT`] ahead) and `pending` (one row per
//! authorization in flight: session, `state`, PKCE verifier, start time).
//! Taking a pending authorization or a link is one `DELETE … RETURNING` or
//! `UPDATE … RETURNING` statement, so it is atomic: of racing callbacks with
//! one `state`, one wins. Ended sessions are deleted a few at a time as new
//! ones are created, and at most [`MAX_SESSIONS`] live at once (then new
//! visitors are turned away, as with the memory store).

use std::fmt;
use std::time::{Duration, SystemTime};

use std::str::FromStr;

use oauth2::{CsrfToken, PkceCodeVerifier};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::{
    IDLE_TIMEOUT, Link, MAX_PENDING, MAX_SESSIONS, OpenError, PENDING_TIMEOUT, Pending, StoreError,
    StoredLink, decode_link, from_unix_ms, millis, one_line, redact, unix_ms,
};

/// How long connecting to PostgreSQL (and creating the tables) may take at start-up.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound on every later statement.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The tables, created if missing (statements run one at a time).
const SCHEMA: [&str; 4] = [
    "CREATE SCHEMA IF NOT EXISTS printshop",
    "CREATE TABLE IF NOT EXISTS printshop.sessions (
        id text PRIMARY KEY,
        link jsonb,
        ends_at timestamptz NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS printshop.pending (
        session_id text NOT NULL REFERENCES printshop.sessions (id) ON DELETE CASCADE,
        state text NOT NULL,
        verifier text NOT NULL,
        started_ms bigint NOT NULL,
        PRIMARY KEY (session_id, state)
    )",
    "CREATE INDEX IF NOT EXISTS sessions_ends_at ON printshop.sessions (ends_at)",
];

/// The PostgreSQL backend.
pub struct PostgresSessions {
    pool: PgPool,
    target: String,
}

impl fmt::Debug for PostgresSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSessions")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unavailable(one_line(&error.to_string()))
    }
}

/// Milliseconds as PostgreSQL's `bigint`.
fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Seconds as a float, for `make_interval`.
fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl PostgresSessions {
    /// Connects to `url` and creates the tables if missing, all within
    /// [`POSTGRES_CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let target = redact(url);
        let fail = |reason: String| OpenError {
            kind: "PostgreSQL",
            store: target.clone(),
            reason: one_line(&reason),
        };
        let setup = async {
            // The server ends what the client stops waiting for, so a stuck
            // statement does not keep its pooled connection busy.
            let options = PgConnectOptions::from_str(url)?.options([
                ("statement_timeout", "2s"),
                ("lock_timeout", "2s"),
                ("idle_in_transaction_session_timeout", "5s"),
            ]);
            // One connection first: a pool that cannot connect reports only
            // that it timed out waiting, not why (refused, bad password).
            options.connect().await?.close().await?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(STATEMENT_TIMEOUT)
                .connect_with(options)
                .await?;
            // `IF NOT EXISTS` is not safe against a second PrintShop creating
            // the same table at the same moment: one at a time.
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(7410153101)")
                .execute(&mut *tx)
                .await?;
            for statement in SCHEMA {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(pool)
        };
        let pool = tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, setup)
            .await
            .map_err(|_| fail(format!("no answer within {POSTGRES_CONNECT_TIMEOUT:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self { pool, target })
    }

    /// Runs `statement` within [`STATEMENT_TIMEOUT`].
    async fn bounded<T>(
        &self,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(STATEMENT_TIMEOUT, statement)
            .await
            .map_err(|_| StoreError::Unavailable("PostgreSQL did not answer in time".into()))?
            .map_err(StoreError::from)
    }

    pub(super) async fn touch(&self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .bounded(
                sqlx::query(
                    "UPDATE printshop.sessions
                     SET ends_at = now() + make_interval(secs => $2)
                     WHERE id = $1 AND ends_at > now()",
                )
                .bind(id)
                .bind(secs(IDLE_TIMEOUT))
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn create(&self, id: &str) -> Result<(), StoreError> {
        // A few ended sessions go with each new one, so the table holds
        // about the live ones without a sweeper.
        self.bounded(
            sqlx::query(
                "DELETE FROM printshop.sessions WHERE id IN (
                     SELECT id FROM printshop.sessions WHERE ends_at <= now() LIMIT 16)",
            )
            .execute(&self.pool),
        )
        .await?;
        // At most `MAX_SESSIONS` live sessions per PrintShop database, as in
        // memory: every visitor without a cookie makes one.
        let done = self
            .bounded(
                sqlx::query(
                    "INSERT INTO printshop.sessions (id, ends_at)
                     SELECT $1, now() + make_interval(secs => $2)
                     WHERE (SELECT count(*) FROM printshop.sessions WHERE ends_at > now()) < $3",
                )
                .bind(id)
                .bind(secs(IDLE_TIMEOUT))
                .bind(i64::try_from(MAX_SESSIONS).unwrap_or(i64::MAX))
                .execute(&self.pool),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    pub(super) async fn push_pending(&self, id: &str, pending: Pending) -> Result<(), StoreError> {
        let now = unix_ms(SystemTime::now());
        let expired_before = now.saturating_sub(millis(PENDING_TIMEOUT));
        let keep = i64::try_from(MAX_PENDING.saturating_sub(1)).unwrap_or(0);
        let mut tx = self.bounded(self.pool.begin()).await?;
        // The session row, locked: concurrent pushes to one session queue here.
        let live = self
            .bounded(
                sqlx::query_scalar::<_, String>(
                    "SELECT id FROM printshop.sessions WHERE id = $1 AND ends_at > now() FOR UPDATE",
                )
                .bind(id)
                .fetch_optional(&mut *tx),
            )
            .await?;
        if live.is_none() {
            return Ok(());
        }
        self.bounded(
            sqlx::query(
                "DELETE FROM printshop.pending WHERE session_id = $1 AND (started_ms < $2
                     OR state NOT IN (SELECT state FROM printshop.pending WHERE session_id = $1
                                      ORDER BY started_ms DESC LIMIT $3))",
            )
            .bind(id)
            .bind(ms(expired_before))
            .bind(keep)
            .execute(&mut *tx),
        )
        .await?;
        self.bounded(
            sqlx::query(
                "INSERT INTO printshop.pending (session_id, state, verifier, started_ms)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (session_id, state) DO NOTHING",
            )
            .bind(id)
            .bind(pending.state.secret())
            .bind(pending.verifier.secret())
            .bind(ms(unix_ms(pending.started)))
            .execute(&mut *tx),
        )
        .await?;
        self.bounded(tx.commit()).await
    }

    pub(super) async fn take_pending(
        &self,
        id: &str,
        state: &str,
    ) -> Result<Option<Pending>, StoreError> {
        let row = self
            .bounded(
                sqlx::query_as::<_, (String, i64)>(
                    "DELETE FROM printshop.pending WHERE session_id = $1 AND state = $2
                     RETURNING verifier, started_ms",
                )
                .bind(id)
                .bind(state)
                .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(|(verifier, started_ms)| Pending {
            state: CsrfToken::new(state.to_owned()),
            verifier: PkceCodeVerifier::new(verifier),
            started: from_unix_ms(u64::try_from(started_ms).unwrap_or(0)),
        }))
    }

    pub(super) async fn pending_count(&self, id: &str) -> Result<usize, StoreError> {
        let n = self
            .bounded(
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM printshop.pending WHERE session_id = $1",
                )
                .bind(id)
                .fetch_one(&self.pool),
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub(super) async fn link(&self, id: &str) -> Result<Option<Link>, StoreError> {
        let value = self
            .bounded(
                sqlx::query_scalar::<_, Option<String>>(
                    "SELECT link::text FROM printshop.sessions WHERE id = $1 AND ends_at > now()",
                )
                .bind(id)
                .fetch_optional(&self.pool),
            )
            .await?
            .flatten();
        value.as_deref().map(decode_link).transpose()
    }

    pub(super) async fn set_link(&self, id: &str, link: &Link) -> Result<(), StoreError> {
        let value = serde_json::to_string(&StoredLink::of(link))?;
        self.bounded(
            sqlx::query(
                "UPDATE printshop.sessions SET link = $2::jsonb WHERE id = $1 AND ends_at > now()",
            )
            .bind(id)
            .bind(value)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn replace_link(
        &self,
        id: &str,
        link: &Link,
    ) -> Result<Option<Link>, StoreError> {
        let value = serde_json::to_string(&StoredLink::of(link))?;
        let old = self
            .bounded(
                sqlx::query_scalar::<_, Option<String>>(
                    "UPDATE printshop.sessions AS s SET link = $2::jsonb
                     FROM (SELECT id, link FROM printshop.sessions
                           WHERE id = $1 AND ends_at > now() FOR UPDATE) AS old
                     WHERE s.id = old.id
                     RETURNING old.link::text",
                )
                .bind(id)
                .bind(value)
                .fetch_optional(&self.pool),
            )
            .await?
            .flatten();
        old.as_deref().map(decode_link).transpose()
    }

    pub(super) async fn take_link(&self, id: &str) -> Result<Option<Link>, StoreError> {
        let value = self
            .bounded(
                sqlx::query_scalar::<_, Option<String>>(
                    "UPDATE printshop.sessions AS s SET link = NULL
                     FROM (SELECT id, link FROM printshop.sessions WHERE id = $1 FOR UPDATE) AS old
                     WHERE s.id = old.id
                     RETURNING old.link::text",
                )
                .bind(id)
                .fetch_optional(&self.pool),
            )
            .await?
            .flatten();
        value.as_deref().map(decode_link).transpose()
    }
}
