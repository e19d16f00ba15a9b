//! Shared test support: where the test database is, fresh stores in schemas
//! of their own, throwaway clusters for the fault tests, and a TCP proxy
//! that counts statements and can freeze.
//!
//! Environment:
//! - `TESSERA_POSTGRES_URL`: a PostgreSQL server the tests may create schemas
//!   (and databases) on, e.g. `postgres://postgres@127.0.0.1:5432/postgres`;
//! - `TESSERA_POSTGRES_SKIP=1`: skip (pass) tests whose server is not given,
//!   instead of failing them. Without it a missing server fails the test, so
//!   CI cannot pass silently without PostgreSQL.
//!
//! `storage-postgres/scripts/postgres-up.sh` starts a suitable server and
//! prints the variables; the fault tests start their own with it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tessera_postgres::PostgresStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn skipping() -> bool {
    std::env::var("TESSERA_POSTGRES_SKIP").is_ok_and(|v| v == "1")
}

/// The test server's URL; `None` (skip) only with `TESSERA_POSTGRES_SKIP=1`.
pub fn url() -> Option<String> {
    match std::env::var("TESSERA_POSTGRES_URL") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ if skipping() => {
            eprintln!("skipped: TESSERA_POSTGRES_URL is not set and TESSERA_POSTGRES_SKIP=1");
            None
        }
        _ => panic!(
            "TESSERA_POSTGRES_URL is not set: this test needs a PostgreSQL server. Start one with \
             `eval \"$(storage-postgres/scripts/postgres-up.sh)\"` (and stop it with \
             storage-postgres/scripts/postgres-down.sh), or set TESSERA_POSTGRES_SKIP=1 to skip."
        ),
    }
}

/// A schema name no other test uses.
pub fn unique_schema() -> String {
    format!("t_{:016x}", rand::random::<u64>())
}

/// A fresh store in a new schema of its own on `url`. Generous timeouts:
/// the race tests queue 200 racers on a pool, on 2 cores.
pub async fn fresh(url: &str) -> PostgresStore {
    in_schema(url, &unique_schema()).await
}

/// A store in `schema` (created and migrated if new).
pub async fn in_schema(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::connect(url)
        .schema(schema)
        .command_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(20))
        .await
        .expect("connect to TESSERA_POSTGRES_URL")
}

/// A plain connection for the tests' own statements.
pub async fn raw(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .expect("raw connection")
}

// ---------------------------------------------------------------------------
// Throwaway clusters
// ---------------------------------------------------------------------------

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// A cluster of its own (postgres-up.sh), stopped and removed on drop.
pub struct Cluster {
    pub url: String,
    pub port: u16,
    dir: PathBuf,
}

impl Cluster {
    /// Starts one. `None` (skip) only with `TESSERA_POSTGRES_SKIP=1` when
    /// it cannot be started (no PostgreSQL binaries and no way to install them).
    pub fn start() -> Option<Self> {
        let env_file = std::env::temp_dir().join(format!(
            "tessera-pg-test-env-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut last = String::new();
        for _ in 0..3 {
            let out = Command::new("bash")
                .arg(scripts().join("postgres-up.sh"))
                .arg(&env_file)
                .output()
                .expect("run postgres-up.sh");
            if out.status.success() {
                let env = std::fs::read_to_string(&env_file).expect("env file");
                let _ = std::fs::remove_file(&env_file);
                let get = |k: &str| {
                    env.lines()
                        .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                        .map(str::to_owned)
                        .unwrap_or_else(|| panic!("{k} missing from {env}"))
                };
                let url = get("TESSERA_POSTGRES_URL");
                let dir = PathBuf::from(get("TESSERA_POSTGRES_DIR"));
                let port = std::fs::read_to_string(dir.join("port"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                return Some(Self { url, port, dir });
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        if skipping() {
            eprintln!(
                "skipped: cannot start a throwaway cluster and TESSERA_POSTGRES_SKIP=1:\n{last}"
            );
            return None;
        }
        panic!("cannot start a throwaway PostgreSQL cluster (postgres-up.sh):\n{last}");
    }

    fn ctl(&self, what: &str) {
        let ok = Command::new("bash")
            .arg(self.dir.join("ctl"))
            .arg(what)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ctl {what} failed; log:\n{}", self.log_tail());
    }

    /// A clean, fast stop: sessions are terminated (57P01), then it is down.
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// An immediate stop, as a crash would be.
    pub fn kill(&self) {
        self.ctl("kill");
    }

    /// Starts it again on the same port and data; returns once it accepts connections.
    pub fn restart(&self) {
        self.ctl("start");
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(scripts().join("postgres-down.sh"))
            .arg(&self.dir)
            .status();
    }
}

// ---------------------------------------------------------------------------
// A proxy that counts statements and can freeze
// ---------------------------------------------------------------------------

/// Counts, in a PostgreSQL client's byte stream, the statements it runs:
/// extended-protocol `Execute` ('E') and simple `Query` ('Q') messages.
/// The untyped start-up messages (SSLRequest, StartupMessage) come first.
#[derive(Default)]
struct MessageCounter {
    buf: Vec<u8>,
    started: bool,
}

impl MessageCounter {
    fn feed(&mut self, bytes: &[u8]) -> usize {
        self.buf.extend_from_slice(bytes);
        let mut statements = 0;
        loop {
            if !self.started {
                if self.buf.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes(self.buf[0..4].try_into().unwrap()) as usize;
                if self.buf.len() < len {
                    break;
                }
                let code = u32::from_be_bytes(self.buf[4..8].try_into().unwrap());
                self.buf.drain(..len);
                // SSLRequest / GSSENCRequest are followed by the real start-up message.
                if code != 80877103 && code != 80877104 {
                    self.started = true;
                }
                continue;
            }
            if self.buf.len() < 5 {
                break;
            }
            let kind = self.buf[0];
            let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
            if self.buf.len() < 1 + len {
                break;
            }
            if kind == b'E' || kind == b'Q' {
                statements += 1;
            }
            self.buf.drain(..1 + len);
        }
        statements
    }
}

/// A TCP proxy in front of PostgreSQL: counts statements, and when frozen
/// stops relaying in both directions (connections stay open, nothing
/// answers), like a server that hangs.
pub struct Proxy {
    pub addr: SocketAddr,
    statements: Arc<AtomicUsize>,
    frozen: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let statements = Arc::new(AtomicUsize::new(0));
        let frozen = Arc::new(AtomicBool::new(false));
        let (count, freeze) = (Arc::clone(&statements), Arc::clone(&frozen));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (count, freeze) = (Arc::clone(&count), Arc::clone(&freeze));
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let f1 = Arc::clone(&freeze);
                    let up = async move {
                        let mut counter = MessageCounter::default();
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while f1.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            count.fetch_add(counter.feed(&buf[..n]), Ordering::SeqCst);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while freeze.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self {
            addr,
            statements,
            frozen,
            task,
        }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }

    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The socket address of a `postgres://...@host:port/...` URL.
pub fn socket_of(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap().to_owned();
    let port = u.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

use tessera::storage::{CodeRecord, NewTokens, PendingAuthorization, TokenRecord};
use tessera::{GrantId, OsRandom, Random, Secret, SecretKey, TokenKind};
use time::OffsetDateTime;

/// The real time, whole seconds.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

pub fn key(kind: TokenKind, grant: GrantId) -> SecretKey {
    Secret::mint(kind, grant, OsRandom.bytes32()).key()
}

pub fn grant() -> GrantId {
    OsRandom.grant_id()
}

// Records are built from their JSON form, so these helpers keep compiling
// when the core adds an optional field to a record.

pub fn token(now: OffsetDateTime, ttl: i64) -> TokenRecord {
    serde_json::from_value(serde_json::json!({
        "client_id": "pg-test",
        "subject": "alice",
        "scope": "photos.read",
        "issued_at": now.unix_timestamp(),
        "expires_at": now.unix_timestamp() + ttl,
    }))
    .unwrap()
}

pub fn code(now: OffsetDateTime, ttl: i64) -> CodeRecord {
    serde_json::from_value(serde_json::json!({
        "client_id": "pg-test",
        "redirect_uri": null,
        "challenge": null,
        "subject": "alice",
        "scope": "photos.read",
        "expires_at": now.unix_timestamp() + ttl,
    }))
    .unwrap()
}

pub fn pending(now: OffsetDateTime, ttl: i64) -> PendingAuthorization {
    serde_json::from_value(serde_json::json!({
        "client_id": "pg-test",
        "redirect_uri": "https://c.example/cb",
        "redirect_uri_sent": false,
        "scope": "photos.read",
        "state": null,
        "challenge": null,
        "expires_at": now.unix_timestamp() + ttl,
    }))
    .unwrap()
}

/// Tokens for `g`: an access token and (optionally) a refresh token, with their keys.
pub fn tokens(
    g: GrantId,
    now: OffsetDateTime,
    refresh: bool,
) -> (SecretKey, Option<SecretKey>, NewTokens) {
    let a = key(TokenKind::Access, g);
    let r = refresh.then(|| key(TokenKind::Refresh, g));
    let t = NewTokens {
        access: (a.hash, token(now, 300)),
        refresh: r.map(|r| (r.hash, token(now, 600))),
    };
    (a, r, t)
}
