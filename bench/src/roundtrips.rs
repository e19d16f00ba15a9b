//! Redis round trips per grant step, counted on the wire.
//!
//! The store talks to Redis through a counting TCP proxy that parses the
//! RESP commands the client sends (`INFO commandstats` would also count the
//! commands Lua scripts run inside Redis, which are no round trips), and is
//! wrapped in a [`Counting`] store that counts the core's store calls. Each
//! step runs `n` times sequentially, so every write from the client that
//! completes commands is one round trip: one command, or a pipeline of
//! several (counted as [`BATCHES`], the commands listed beside).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tessera::storage::{
    CodeRecord, CodeTake, DevicePoll, DeviceRecord, DeviceStatus, DeviceStore, GrantStore,
    NewTokens, PendingAuthorization, PendingStore, RefreshLookup, TokenRecord,
};
use tessera::{
    Client, ClientId, ClientRegistry, GrantId, HttpRequest, Lifetimes, SecretKey, StoreError,
    TokenHash,
};
use tessera_redis::RedisStore;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::apps::{self, API_SECRET, BACKUP_SECRET, BoxError, CC_BODY, PRINTSHOP_SECRET};

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// The count of client writes that completed at least one command: round
/// trips (not a Redis command name, which are upper case).
const BATCHES: &str = "(batches)";

/// Incremental parser of the RESP arrays a Redis client sends.
#[derive(Debug, Default)]
struct RespCounter {
    line: Vec<u8>,
    /// Arguments left in the current command.
    args_left: u64,
    /// Bytes left in the current bulk string (including its CRLF).
    bulk_left: u64,
    /// Commands completed so far.
    finished: u64,
    name: Vec<u8>,
    first_arg: bool,
}

impl RespCounter {
    fn feed(&mut self, mut data: &[u8], counts: &Counts) {
        while !data.is_empty() {
            if self.bulk_left > 0 {
                let n = usize::try_from(self.bulk_left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                if self.first_arg {
                    let keep = n.min(32usize.saturating_sub(self.name.len()));
                    self.name.extend_from_slice(&data[..keep]);
                }
                self.bulk_left -= n as u64;
                data = &data[n..];
                if self.bulk_left == 0 {
                    self.first_arg = false;
                    self.args_left = self.args_left.saturating_sub(1);
                    if self.args_left == 0 {
                        self.finish(counts);
                    }
                }
                continue;
            }
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                self.line.extend_from_slice(data);
                return;
            };
            self.line.extend_from_slice(&data[..=nl]);
            data = &data[nl + 1..];
            let line = std::mem::take(&mut self.line);
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if let Some(n) = text.strip_prefix('*') {
                self.args_left = n.parse().unwrap_or(0);
                self.first_arg = true;
                self.name.clear();
                if self.args_left == 0 {
                    self.finish(counts);
                }
            } else if let Some(len) = text.strip_prefix('$') {
                // The bulk's bytes plus the CRLF after them.
                self.bulk_left = len.parse::<u64>().unwrap_or(0) + 2;
            } else if !text.is_empty() {
                // An inline command.
                self.name = text.split(' ').next().unwrap_or("").as_bytes().to_vec();
                self.finish(counts);
            }
        }
    }

    fn finish(&mut self, counts: &Counts) {
        // The 2 CRLF bytes of the name's bulk may have been captured.
        let name = String::from_utf8_lossy(&self.name)
            .trim_end()
            .to_ascii_uppercase();
        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry(name).or_default() += 1;
        self.name.clear();
        self.finished += 1;
    }
}

/// A TCP proxy in front of Redis that counts the commands sent through it.
#[derive(Debug)]
struct CountingProxy {
    addr: SocketAddr,
    counts: Counts,
}

impl CountingProxy {
    async fn start(upstream: SocketAddr) -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts: Counts = Arc::default();
        let c = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = Arc::clone(&c);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut parser = RespCounter::default();
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let before = parser.finished;
                            parser.feed(&buf[..n], &counts);
                            if parser.finished > before {
                                let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                                *c.entry(BATCHES.to_owned()).or_default() += 1;
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Ok(Self { addr, counts })
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Counts the core's calls into its store.
#[derive(Debug)]
struct Counting<S> {
    inner: S,
    calls: AtomicU64,
}

impl<S> Counting<S> {
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl<S: ClientRegistry> ClientRegistry for Counting<S> {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        self.tick();
        self.inner.client(id).await
    }
}

#[async_trait]
impl<S: GrantStore> GrantStore for Counting<S> {
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError> {
        self.tick();
        self.inner.put_code(code, record).await
    }
    async fn take_code(
        &self,
        code: SecretKey,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        self.tick();
        self.inner.take_code(code, now).await
    }
    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        self.tick();
        self.inner.issue(grant, tokens).await
    }
    async fn issue_new_grant(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        self.tick();
        self.inner.issue_new_grant(grant, tokens).await
    }
    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.tick();
        self.inner.access_token(token, now).await
    }
    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        self.tick();
        self.inner.refresh_token(token, now).await
    }
    async fn rotate_refresh(
        &self,
        old: SecretKey,
        tokens: NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.tick();
        self.inner.rotate_refresh(old, tokens, now).await
    }
    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        self.tick();
        self.inner.revoke_access_token(token).await
    }
    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        self.tick();
        self.inner.revoke_grant(grant).await
    }
}

#[async_trait]
impl<S: PendingStore> PendingStore for Counting<S> {
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError> {
        self.tick();
        self.inner.put_pending(handle, request).await
    }
    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.tick();
        self.inner.get_pending(handle, now).await
    }
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.tick();
        self.inner.take_pending(handle, now).await
    }
}

/// One measured step.
#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub store_calls: f64,
    pub round_trips: f64,
    pub commands: String,
}

/// The `host:port` of a `redis://` URL.
pub async fn redis_addr(url: &str) -> Result<SocketAddr, BoxError> {
    let u = url::Url::parse(url)?;
    let host = u.host_str().ok_or("redis URL without a host")?;
    let port = u.port().unwrap_or(6379);
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| format!("{host}:{port} does not resolve").into())
}

/// Runs every step `n` times through a server on a Redis store behind the
/// counting proxy, and reports store calls and round trips per operation.
pub async fn measure(url: &str, prefix: &str, n: usize) -> Result<Vec<Step>, BoxError> {
    let upstream = redis_addr(url).await?;
    let proxy = CountingProxy::start(upstream).await?;
    let mut proxied = url::Url::parse(url)?;
    proxied
        .set_host(Some("127.0.0.1"))
        .map_err(|e| format!("{e}"))?;
    proxied
        .set_port(Some(proxy.addr.port()))
        .map_err(|()| "cannot set the port")?;
    let redis = RedisStore::connect(proxied.as_str()).prefix(prefix).await?;
    for c in apps::clients() {
        redis.put_client(&c).await?;
    }
    let store = Arc::new(Counting {
        inner: redis,
        calls: AtomicU64::new(0),
    });
    let server = apps::server(Arc::clone(&store) as _, Lifetimes::default())?;
    let minter = apps::CodeMinter::new(server.clone());
    let backup = apps::basic("backup-job", BACKUP_SECRET);
    let printshop = apps::basic("printshop", PRINTSHOP_SECRET);
    let api = apps::basic("photo-api", API_SECRET);
    let tail = apps::exchange_tail();

    // Warm up: loads every script into Redis's cache (the first EVALSHA of
    // a script answers NOSCRIPT and costs one more round trip).
    let (access, refresh) = minter.tokens().await?;
    let _ = server
        .token_response(&HttpRequest::form_post(CC_BODY, Some(&backup)))
        .await;
    let _ = server
        .token_response(&HttpRequest::form_post(
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            Some(&printshop),
        ))
        .await;
    let _ = server
        .handle(
            tessera::Endpoint::Introspection,
            &HttpRequest::form_post(&format!("token={access}"), Some(&api)),
        )
        .await;
    let _ = server
        .verify_bearer(Some(&format!("Bearer {access}")), None)
        .await;

    let mut steps = Vec::new();
    let mut window = |name: &'static str,
                      before: (u64, BTreeMap<String, u64>),
                      after: (u64, BTreeMap<String, u64>)| {
        let mut total = 0u64;
        let mut parts = Vec::new();
        for (cmd, count) in &after.1 {
            let d = count - before.1.get(cmd).copied().unwrap_or(0);
            if cmd == BATCHES {
                total = d;
            } else if d > 0 {
                parts.push(format!("{cmd} {:.2}", d as f64 / n as f64));
            }
        }
        steps.push(Step {
            name,
            store_calls: (after.0 - before.0) as f64 / n as f64,
            round_trips: total as f64 / n as f64,
            commands: parts.join(", "),
        });
    };
    let snap = || (store.calls.load(Ordering::Relaxed), proxy.snapshot());

    let before = snap();
    for _ in 0..n {
        server
            .token_response(&HttpRequest::form_post(CC_BODY, Some(&backup)))
            .await
            .map_err(|e| format!("client_credentials: {e}"))?;
    }
    window("client_credentials token request", before, snap());

    let before = snap();
    let mut codes = Vec::with_capacity(n);
    for _ in 0..n {
        codes.push(minter.code().await?);
    }
    window("authorize + decide(Allow) (code issued)", before, snap());

    let before = snap();
    let mut refreshes = Vec::with_capacity(n);
    for code in &codes {
        let body = format!("grant_type=authorization_code&code={code}{tail}");
        let r = server
            .token_response(&HttpRequest::form_post(&body, Some(&printshop)))
            .await
            .map_err(|e| format!("code exchange: {e}"))?;
        refreshes.push(r.refresh_token.ok_or("no refresh token")?);
    }
    window("code exchange (PKCE)", before, snap());

    let before = snap();
    for rt in &refreshes {
        let body = format!("grant_type=refresh_token&refresh_token={rt}");
        server
            .token_response(&HttpRequest::form_post(&body, Some(&printshop)))
            .await
            .map_err(|e| format!("refresh: {e}"))?;
    }
    window("refresh rotation", before, snap());

    let body = format!("token={access}");
    let before = snap();
    for _ in 0..n {
        let r = server
            .handle(
                tessera::Endpoint::Introspection,
                &HttpRequest::form_post(&body, Some(&api)),
            )
            .await;
        if r.status != 200 {
            return Err(format!("introspection answered {}", r.status).into());
        }
    }
    window("introspection", before, snap());

    let bearer = format!("Bearer {access}");
    let before = snap();
    for _ in 0..n {
        server
            .verify_bearer(Some(&bearer), None)
            .await
            .map_err(|e| format!("verify_bearer: {e}"))?;
    }
    window("bearer validation", before, snap());
    Ok(steps)
}

#[async_trait]
impl<S: DeviceStore> DeviceStore for Counting<S> {
    async fn put_device(
        &self,
        device: SecretKey,
        user_code: TokenHash,
        record: DeviceRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.tick();
        self.inner.put_device(device, user_code, record, now).await
    }
    async fn device_by_user_code(
        &self,
        user_code: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.tick();
        self.inner.device_by_user_code(user_code, now).await
    }
    async fn decide_device(
        &self,
        user_code: TokenHash,
        decision: DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.tick();
        self.inner.decide_device(user_code, decision, now).await
    }
    async fn poll_device(
        &self,
        device: SecretKey,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        self.tick();
        self.inner.poll_device(device, client, now).await
    }
}

#[async_trait]
impl<S: tessera::storage::ReplayStore> tessera::storage::ReplayStore for Counting<S> {
    async fn first_use(
        &self,
        key: tessera::storage::ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.tick();
        tessera::storage::ReplayStore::first_use(&self.inner, key, expires_at, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_resp_commands_split_anywhere() {
        let wire = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n0\r\nPING\r\n";
        for split in 0..wire.len() {
            let counts: Counts = Arc::default();
            let mut p = RespCounter::default();
            p.feed(&wire[..split], &counts);
            p.feed(&wire[split..], &counts);
            let c = counts.lock().map(|c| c.clone()).unwrap_or_default();
            assert_eq!(c.get("GET"), Some(&1), "split at {split}");
            assert_eq!(c.get("EVALSHA"), Some(&1), "split at {split}");
            assert_eq!(c.get("PING"), Some(&1), "split at {split}");
        }
    }
}
