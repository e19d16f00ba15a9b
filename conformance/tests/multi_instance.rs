//! Provider-level tests on a shared Redis store, with real processes: two
//! `photo-provider` instances on one throwaway `redis-server`, Redis killed
//! and restarted under load, and tokens surviving a Redis restart.
//!
//! Each test starts its own `redis-server` (a free loopback port, a temp dir,
//! `--appendonly yes --appendfsync always`, killed on drop) and its own
//! providers (`--store redis://127.0.0.1:PORT/`, killed on drop). Without
//! `redis-server` (or `TESSERA_REDIS_SERVER`) the tests fail, unless
//! `TESSERA_REDIS_SKIP=1`. The tests of this file run one at a time (their
//! timing bounds are about the provider, not about sharing two cores). They
//! always spawn their own processes (`TESSERA_CONFORMANCE_BASE_URL` does not
//! apply); `TESSERA_CONFORMANCE_KEEP_LOGS` keeps the logs and Redis's dir.
//!
//! - [`two_instances_share_codes_and_tokens`]: both instances issue under one
//!   issuer (A's URL); a code from one is redeemed at the other; 200 racers
//!   on one code across both get one winner; refresh-token reuse across
//!   instances revokes the family everywhere.
//! - [`dpop_proofs_are_used_once_across_instances`]: a DPoP proof accepted
//!   by A is refused by B (token endpoint and `/api/photos`), RFC 9449 §11.1.
//! - [`redis_outage_under_load`]: Redis killed while `backup-job` asks for
//!   tokens in a loop: every answer is a prompt `503 temporarily_unavailable`
//!   (no hang, no panic, no reset), the protected API answers `503` (not
//!   `401`); Redis restarted on the same port and dir: the same provider
//!   process issues again within 2 s of Redis answering `PING`.
//! - [`frozen_redis_times_out_then_recovers`]: Redis stopped with `SIGSTOP`
//!   (connections stay open, nothing answers): every request ends with `503`
//!   once the provider's Redis command timeout (2 s) runs out, and the
//!   provider issues again within 2 s of `SIGCONT`.
//! - [`tokens_survive_a_redis_restart`]: with `appendfsync always`, 50
//!   client-credentials tokens and a code grant's tokens answered 200 stay
//!   active after `kill -9` and after `SHUTDOWN NOSAVE`; the refresh token
//!   still rotates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_conformance::checks::races::{RACERS, one_winner, race};
use tessera_conformance::demo::{ALICE, BACKUP_JOB, PHOTO_API, PRINTSHOP};
use tessera_conformance::flow;
use tessera_conformance::http::{Exchange, Request};
use tessera_conformance::{CheckResult, Ctx, Failure, ProviderProcess, ensure, locate_binary};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The provider's bound on one Redis call: `tessera_redis::DEFAULT_COMMAND_TIMEOUT`
/// (2 s), which photobook's store (`examples/photobook/src/store.rs`) keeps.
const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest a token request may take while Redis is down: a failing
/// request makes at most two store calls (client lookup, then issuing), each
/// bounded by the command timeout, plus scheduling slack on 2 cores.
const OUTAGE_ANSWER_BOUND: Duration = Duration::from_secs(2 * REDIS_COMMAND_TIMEOUT.as_secs() + 2);

/// The client-side timeout during faults: an answer later than this is a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How soon after Redis answers `PING` again the provider must issue tokens.
const RECOVERY_BOUND: Duration = Duration::from_secs(2);

/// How long Redis stays down (longer than the store's reconnect backoff).
const OUTAGE: Duration = Duration::from_secs(3);

/// How long a whole test may take once its processes run.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The tests of this file run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// A throwaway redis-server
// ---------------------------------------------------------------------------

/// A `redis-server` child process on a loopback port, with its data in a
/// temp dir that survives restarts; killed (and the dir removed) on drop.
#[derive(Debug)]
struct Redis {
    bin: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// The `redis-server` to run: `TESSERA_REDIS_SERVER` or `redis-server` on
/// `PATH`. `None` (skip) only with `TESSERA_REDIS_SKIP=1`; otherwise a
/// missing binary panics with what to do.
fn redis_server_bin() -> Option<String> {
    let bin = std::env::var("TESSERA_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let found = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Some(bin)
    } else if std::env::var("TESSERA_REDIS_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("skipped: {bin} not found and TESSERA_REDIS_SKIP=1");
        None
    } else {
        panic!(
            "`{bin}` not found: these tests start their own throwaway redis-server. Install it \
             (apt-get install -y redis-server), point TESSERA_REDIS_SERVER at one, or set \
             TESSERA_REDIS_SKIP=1 to skip them."
        )
    }
}

fn free_port() -> Result<u16, Failure> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::new(format!("cannot bind a loopback port: {e}")))
}

/// Sends one command in RESP and returns the first chunk of the reply
/// (enough for `+PONG`); `None` on any failure or after `limit`.
async fn redis_command(port: u16, args: &[&str], limit: Duration) -> Option<Vec<u8>> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(cmd.as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.ok()?;
        buf.truncate(n);
        Some(buf)
    };
    tokio::time::timeout(limit, attempt).await.ok().flatten()
}

async fn answers_ping(port: u16) -> bool {
    redis_command(port, &["PING"], Duration::from_millis(500))
        .await
        .is_some_and(|r| r.starts_with(b"+PONG"))
}

impl Redis {
    /// Starts a server on a free port in a new temp dir and waits until it
    /// answers `PING`. `Ok(None)`: skipped (see [`redis_server_bin`]).
    async fn start() -> Result<Option<Self>, Failure> {
        let Some(bin) = redis_server_bin() else {
            return Ok(None);
        };
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "tessera-multi-instance-redis-{}-{port}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
        let mut redis = Self {
            bin,
            port,
            dir,
            child: None,
        };
        redis.restart().await?;
        Ok(Some(redis))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// (Re)starts the server on the same port and dir (so it loads its
    /// append-only file) and waits until it answers `PING` (at most 20 s).
    /// Returns when it did.
    async fn restart(&mut self) -> Result<Instant, Failure> {
        if self.child.is_some() {
            return Err(Failure::new("redis-server is already running"));
        }
        let child = Command::new(&self.bin)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Failure::new(format!("cannot start {}: {e}", self.bin)))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if answers_ping(self.port).await {
                return Ok(Instant::now());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(Failure::new(format!(
                    "redis-server on port {} exited at start ({status})\n--- redis log ---\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Failure::new(format!(
            "redis-server on port {} did not answer PING within 20 s\n--- redis log ---\n{}",
            self.port,
            self.log_tail()
        )))
    }

    /// `kill -9`: a crash. Waits for the process to be gone.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `SHUTDOWN NOSAVE` (no RDB snapshot; the append-only file is all there
    /// is), then waits (at most 10 s) for the process to exit.
    async fn shutdown_nosave(&mut self) -> Result<(), Failure> {
        let Some(mut child) = self.child.take() else {
            return Err(Failure::new("redis-server is not running"));
        };
        // The server closes the connection without a reply when it complies.
        let _ = redis_command(self.port, &["SHUTDOWN", "NOSAVE"], Duration::from_secs(5)).await;
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failure::new(format!(
                        "redis-server did not exit within 10 s of SHUTDOWN NOSAVE\n--- redis log ---\n{}",
                        self.log_tail()
                    )));
                }
            }
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to the server: frozen, its
    /// connections stay open and nothing answers.
    fn signal(&self, sig: &str) -> CheckResult {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return Err(Failure::new("redis-server is not running"));
        };
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        ensure(ok, || format!("kill {sig} {pid} failed"))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("TESSERA_CONFORMANCE_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// The processes of one test
// ---------------------------------------------------------------------------

/// A throwaway Redis and the providers on it; `providers[0]` is A, whose
/// URL is every instance's issuer.
#[derive(Debug)]
struct Env {
    redis: Redis,
    providers: Vec<ProviderProcess>,
}

impl Env {
    /// Redis, then `instances` `photo-provider` processes on it, A first (it
    /// seeds the empty store), the others with `--issuer` A's URL.
    /// `Ok(None)`: skipped (no redis-server, `TESSERA_REDIS_SKIP=1`).
    async fn start(instances: usize) -> Result<Option<Self>, Failure> {
        let bin = locate_binary("photo-provider")?;
        let Some(redis) = Redis::start().await? else {
            return Ok(None);
        };
        let store = redis.url();
        let args = ["--store", store.as_str()];
        let a = ProviderProcess::spawn(&bin, &args).await?;
        let issuer = a.target().base_url.clone();
        let mut providers = vec![a];
        for _ in 1..instances {
            providers.push(ProviderProcess::spawn_with_issuer(&bin, Some(&issuer), &args).await?);
        }
        Ok(Some(Self { redis, providers }))
    }

    /// Where instance `i` listens, e.g. `http://127.0.0.1:PORT`.
    fn base(&self, i: usize) -> &str {
        &self.providers[i].target().base_url
    }

    /// A context for instance `i`: its own metadata (which must name A's
    /// issuer), with every endpoint moved to where `i` listens.
    async fn ctx(&self, i: usize) -> Result<Ctx, Failure> {
        let mut ctx = Ctx::new(self.providers[i].target()).await?;
        let issuer = self.base(0).to_owned();
        ctx.meta.exchange.ensure(
            ctx.meta.issuer == issuer,
            format!(
                "instance {i} must issue as {issuer} (--issuer), its metadata says {:?}",
                ctx.meta.issuer
            ),
        )?;
        let base = self.base(i).to_owned();
        for endpoint in [
            &mut ctx.meta.authorization_endpoint,
            &mut ctx.meta.token_endpoint,
            &mut ctx.meta.revocation_endpoint,
            &mut ctx.meta.introspection_endpoint,
        ] {
            let Some(path) = endpoint.strip_prefix(issuer.as_str()) else {
                return Err(Failure::new(format!(
                    "instance {i}: endpoint {endpoint} is not below the issuer {issuer}"
                )));
            };
            *endpoint = format!("{base}{path}");
        }
        Ok(ctx)
    }

    /// Every provider is still running (no crash, no panic exit).
    fn check_alive(&mut self) -> CheckResult {
        for (i, p) in self.providers.iter_mut().enumerate() {
            p.check_running()
                .map_err(|f| Failure::new(format!("instance {i}: {f}")))?;
        }
        Ok(())
    }

    /// Panics with `failure`, each provider's log tail and Redis's.
    fn finish(&self, name: &str, outcome: Result<CheckResult, tokio::time::error::Elapsed>) {
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(f)) => f,
            Err(_) => Failure::new(format!("the test did not finish within {TEST_TIMEOUT:?}")),
        };
        let mut report = format!("{name} failed:\n{failure}");
        for (i, p) in self.providers.iter().enumerate() {
            report.push_str(&format!(
                "\n--- provider {} ({}) log (tail) ---\n{}",
                ["A", "B", "C", "D"].get(i).copied().unwrap_or("?"),
                p.target().base_url,
                p.log_tail()
            ));
        }
        report.push_str(&format!(
            "\n--- redis-server (port {}) log (tail) ---\n{}",
            self.redis.port,
            self.redis.log_tail()
        ));
        panic!("{report}");
    }
}

/// Runs `test` on a fresh [`Env`] of `instances` providers, one test at a time.
macro_rules! run {
    ($name:literal, $instances:expr, $test:ident) => {{
        let _serial = SERIAL.lock().await;
        let mut env = match Env::start($instances).await {
            Ok(Some(env)) => env,
            Ok(None) => return,
            Err(f) => panic!("{}: cannot start the processes: {f}", $name),
        };
        let outcome = tokio::time::timeout(TEST_TIMEOUT, $test(&mut env)).await;
        env.finish($name, outcome);
    }};
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `GET {base}/api/photos` with the bearer token.
async fn api_at(ctx: &Ctx, base: &str, token: &str) -> Result<Exchange, Failure> {
    ctx.http
        .send(
            Request::get(format!("{base}/api/photos"))
                .header("authorization", format!("Bearer {token}")),
        )
        .await
}

/// `/api/photos` at `base` answers 200 for `owner` with `photos` photos.
async fn expect_photos(
    ctx: &Ctx,
    base: &str,
    token: &str,
    owner: &str,
    photos: usize,
) -> CheckResult {
    let ex = api_at(ctx, base, token).await?;
    ex.expect_status(200)?;
    let json = ex.json()?;
    ex.ensure(
        json["owner"] == owner && json["photos"].as_array().map(Vec::len) == Some(photos),
        format!("expected {{\"owner\": \"{owner}\"}} with {photos} photos"),
    )?;
    Ok(())
}

/// Introspection (as `photo-api`) at `ctx`'s instance says `active`.
async fn expect_active(ctx: &Ctx, token: &str, active: bool, what: &str) -> CheckResult {
    flow::expect_active(ctx, token, active, what).await
}

/// How one raw token request ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 200 with an access token.
    Issued,
    /// 503, JSON `{"error": "temporarily_unavailable"}`.
    Unavailable,
    /// Anything else: status and body, or the transport error.
    Other(String),
}

/// One request of the load loop.
#[derive(Debug, Clone)]
struct Sample {
    /// When it was sent.
    at: Instant,
    /// How long the answer took.
    took: Duration,
    /// The answer.
    outcome: Outcome,
}

/// A plain client for the fault tests: no cookies, [`CLIENT_TIMEOUT`].
fn fault_client() -> Result<reqwest::Client, Failure> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CLIENT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Failure::new(format!("cannot build an HTTP client: {e}")))
}

/// Classifies a response: `Issued` needs `access_token`, `Unavailable` the
/// RFC 6749 §5.2 error JSON.
async fn classify(r: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout (a hang)"
            } else if e.is_connect() {
                "connect error"
            } else {
                "transport error (reset?)"
            };
            return Outcome::Other(format!("{kind}: {e:?}"));
        }
    };
    let status = r.status().as_u16();
    let json_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = match r.bytes().await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return Outcome::Other(format!("{status}, body cut off: {e:?}")),
    };
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    match status {
        200 if json["access_token"].is_string() => Outcome::Issued,
        503 if json_type && json["error"] == "temporarily_unavailable" => Outcome::Unavailable,
        _ => Outcome::Other(format!("{status} {body}")),
    }
}

/// A `client_credentials` request as `backup-job` (HTTP Basic).
async fn backup_job_token(client: &reqwest::Client, token_endpoint: &str) -> (Duration, Outcome) {
    let started = Instant::now();
    let r = client
        .post(token_endpoint)
        .header(
            "authorization",
            tessera_conformance::http::basic(BACKUP_JOB.id, BACKUP_JOB.secret()),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await;
    let outcome = classify(r).await;
    (started.elapsed(), outcome)
}

/// Polls with `backup-job` token requests until one is issued; every
/// failure on the way must be a prompt `503`. Returns how long it took from
/// `since`; fails after `limit`.
async fn wait_until_issuing(
    client: &reqwest::Client,
    token_endpoint: &str,
    since: Instant,
    limit: Duration,
) -> Result<Duration, Failure> {
    loop {
        let (took, outcome) = backup_job_token(client, token_endpoint).await;
        match outcome {
            Outcome::Issued => return Ok(since.elapsed()),
            Outcome::Unavailable if took <= OUTAGE_ANSWER_BOUND => {}
            other => {
                return Err(Failure::new(format!(
                    "while waiting for the provider to issue again: {other:?} after {took:?}"
                )));
            }
        }
        if since.elapsed() > limit {
            return Err(Failure::new(format!(
                "the provider did not issue a token within {limit:?} of Redis answering PING \
                 (still 503 temporarily_unavailable)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks an exchange made while Redis is down: `503`, JSON
/// `temporarily_unavailable`, answered within [`OUTAGE_ANSWER_BOUND`].
fn expect_outage_answer(ex: &Exchange, took: Duration, what: &str) -> CheckResult {
    ex.expect_oauth_error(503, "temporarily_unavailable")
        .map_err(|f| Failure::new(format!("{what}, Redis down: {f}")))?;
    ex.ensure(
        took <= OUTAGE_ANSWER_BOUND,
        format!("{what}, Redis down: answered after {took:?} (bound {OUTAGE_ANSWER_BOUND:?})"),
    )?;
    Ok(())
}

/// How many answers carried each `error_description` (with the status).
fn error_descriptions(results: &[Result<Exchange, Failure>]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ex in results.iter().flatten() {
        let json = ex.json().unwrap_or_default();
        let key = format!(
            "{} {}: {}",
            ex.status,
            json["error"].as_str().unwrap_or("-"),
            json["error_description"].as_str().unwrap_or("-")
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}

// ---------------------------------------------------------------------------
// 1. Two instances, one store
// ---------------------------------------------------------------------------

async fn two_instances(env: &mut Env) -> CheckResult {
    let a = env.ctx(0).await?;
    let b = env.ctx(1).await?;
    let (base_a, base_b) = (env.base(0).to_owned(), env.base(1).to_owned());

    // A code from a dance on A, redeemed at B's token endpoint.
    let grant = flow::authorize(&a.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let tokens = flow::expect_tokens(&flow::redeem(&b, &grant, PRINTSHOP.basic()).await?)
        .map_err(|f| Failure::new(format!("a code issued by A, redeemed at B: {f}")))?;
    for (base, name) in [(&base_b, "B"), (&base_a, "A")] {
        expect_photos(&a, base, &tokens.access, "alice", ALICE.photos)
            .await
            .map_err(|f| Failure::new(format!("/api/photos at {name} with B's token: {f}")))?;
    }
    expect_active(&a, &tokens.access, true, "B's token introspected at A").await?;

    // And the other way round: a dance on B, the code redeemed at A.
    let grant = flow::authorize(&b.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let tokens = flow::expect_tokens(&flow::redeem(&a, &grant, PRINTSHOP.basic()).await?)
        .map_err(|f| Failure::new(format!("a code issued by B, redeemed at A: {f}")))?;
    expect_photos(&b, &base_b, &tokens.access, "alice", ALICE.photos).await?;

    // 200 concurrent redemptions of one code, alternating A and B.
    let grant = flow::authorize(&a.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let turn = AtomicUsize::new(0);
    let results = race(|| {
        let ctx = [&a, &b][turn.fetch_add(1, Ordering::Relaxed) % 2].clone();
        let grant = grant.clone();
        async move { flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await }
    })
    .await?;
    let at = |base: &str| {
        results
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_ok_and(|ex| ex.url.starts_with(&format!("{base}/")))
            })
            .count()
    };
    let (at_a, at_b) = (at(&base_a), at(&base_b));
    let reasons = error_descriptions(&results);
    let winner = one_winner(results, "redemptions of one code, across A and B").map_err(|f| {
        let mut s = format!("{f}\nthe refusals' error_description: {reasons:?}");
        if !reasons.keys().any(|k| k.starts_with("200")) {
            // A check_code failure would say so; "already used" for all 200
            // means the racer that took the code was refused afterwards.
            s.push_str(
                "\nno winner: the racer that took the code was refused when storing its tokens, \
                 because a concurrent replay had already revoked the grant (take_code and issue \
                 are two store steps in core/src/grant/authorization_code.rs; a replay between \
                 them makes `issue` return false, answered invalid_grant)",
            );
        }
        Failure::new(s)
    })?;
    ensure(at_a == RACERS / 2 && at_b == RACERS / 2, || {
        format!("the racers must be answered half by A, half by B: {at_a} by A, {at_b} by B")
    })?;
    eprintln!(
        "{RACERS} racers on one code across A and B: one winner, at {}",
        winner.url
    );
    let winner = flow::expect_tokens(&winner)?;
    // The replays revoked the grant, on both instances.
    for (ctx, base, name) in [(&a, &base_a, "A"), (&b, &base_b, "B")] {
        expect_active(
            ctx,
            &winner.access,
            false,
            &format!("the race winner's access token at {name} after the code was replayed"),
        )
        .await?;
        flow::expect_invalid_token(
            &api_at(ctx, base, &winner.access).await?,
            &format!("/api/photos at {name} with the race winner's token"),
        )?;
    }
    flow::refresh(&b, PRINTSHOP.basic(), winner.refresh()?, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")?;

    // Rotation on A, then the old refresh token reused at B.
    let first = flow::tokens(&a, &PRINTSHOP, &ALICE, None).await?;
    let r0 = first.refresh()?.to_owned();
    let rotated = flow::expect_tokens(&flow::refresh(&a, PRINTSHOP.basic(), &r0, None).await?)?;
    expect_photos(&a, &base_b, &rotated.access, "alice", ALICE.photos).await?;
    flow::refresh(&b, PRINTSHOP.basic(), &r0, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")
        .map_err(|f| Failure::new(format!("the rotated refresh token reused at B: {f}")))?;
    for (ctx, base, name) in [(&a, &base_a, "A"), (&b, &base_b, "B")] {
        expect_active(
            ctx,
            &rotated.access,
            false,
            &format!("A's newest access token at {name} after reuse at B"),
        )
        .await?;
        expect_active(
            ctx,
            rotated.refresh()?,
            false,
            &format!("A's newest refresh token at {name} after reuse at B"),
        )
        .await?;
        flow::expect_invalid_token(
            &api_at(ctx, base, &rotated.access).await?,
            &format!("/api/photos at {name} with A's newest access token after reuse at B"),
        )?;
    }
    flow::refresh(&a, PRINTSHOP.basic(), rotated.refresh()?, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")
        .map_err(|f| Failure::new(format!("A's newest refresh token after reuse at B: {f}")))?;
    expect_active(&b, &first.access, false, "the family's first access token").await?;
    env.check_alive()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_codes_and_tokens() {
    run!("two_instances_share_codes_and_tokens", 2, two_instances);
}

/// RFC 9449 §11.1: a DPoP proof used at one instance is a replay at the
/// other (its `jti` is remembered in the shared Redis), at the token
/// endpoint (400 `invalid_dpop_proof`, §5) and at `/api/photos` (401, §7.1).
/// Both instances issue as A, so `htu` names A's URLs wherever a proof is
/// sent; a fresh proof at B is accepted, so the refusals are replays.
async fn dpop_across_instances(env: &mut Env) -> CheckResult {
    use tessera_conformance::checks::rfc9449::DpopKey;
    let a = env.ctx(0).await?;
    let b = env.ctx(1).await?;
    let (base_a, base_b) = (env.base(0).to_owned(), env.base(1).to_owned());
    let key = DpopKey::es256();
    let htu = a.meta.token_endpoint.clone();
    let send = |ctx: &Ctx, proof: &str| {
        Request::post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[("grant_type", "client_credentials")],
        )
        .header("dpop", proof.to_owned())
    };
    // The token endpoint: one proof at A, then the same at B.
    let proof = key.proof("POST", &htu, None);
    let ex = a.http.send(send(&a, &proof)).await?;
    ex.expect_status(200)?;
    let access = ex.json_str("access_token")?;
    b.http
        .send(send(&b, &proof))
        .await?
        .expect_oauth_error(400, "invalid_dpop_proof")
        .map_err(|f| Failure::new(format!("a DPoP proof used at A, replayed at B: {f}")))?;
    b.http
        .send(send(&b, &key.proof("POST", &htu, None)))
        .await?
        .expect_status(200)
        .map_err(|f| Failure::new(format!("a fresh DPoP proof at B: {f}")))?;

    // The protected API: `htu` is the issuer's origin (A) plus the path.
    let api_htu = format!("{base_a}/api/photos");
    let api = |base: &str, proof: &str| {
        Request::get(format!("{base}/api/photos"))
            .header("authorization", format!("DPoP {access}"))
            .header("dpop", proof.to_owned())
    };
    let api_proof = key.proof("GET", &api_htu, Some(&access));
    a.http
        .send(api(&base_a, &api_proof))
        .await?
        .expect_status(200)?;
    for (ctx, base, name) in [(&b, &base_b, "B"), (&a, &base_a, "A")] {
        let replayed = ctx.http.send(api(base, &api_proof)).await?;
        replayed.expect_status(401)?;
        replayed.ensure(
            replayed
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("DPoP ") && c.contains("invalid_dpop_proof")),
            format!("a resource proof used at A, replayed at {name}: 401 with a DPoP invalid_dpop_proof challenge"),
        )?;
    }
    b.http
        .send(api(&base_b, &key.proof("GET", &api_htu, Some(&access))))
        .await?
        .expect_status(200)
        .map_err(|f| Failure::new(format!("a fresh resource proof at B: {f}")))?;
    env.check_alive()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_proofs_are_used_once_across_instances() {
    run!(
        "dpop_proofs_are_used_once_across_instances",
        2,
        dpop_across_instances
    );
}

// ---------------------------------------------------------------------------
// 2. Redis stopped and restarted under load
// ---------------------------------------------------------------------------

async fn outage(env: &mut Env) -> CheckResult {
    let ctx = env.ctx(0).await?;
    let base = env.base(0).to_owned();
    let token_endpoint = ctx.meta.token_endpoint.clone();
    let client = fault_client()?;

    // Tokens issued before the outage.
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    let user = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    expect_photos(&ctx, &base, &job.access, "backup-job", 5).await?;

    // The load: two loops of backup-job token requests.
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
            let (client, url) = (client.clone(), token_endpoint.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    let (took, outcome) = backup_job_token(&client, &url).await;
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Sample { at, took, outcome });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let outcome = outage_under_load(env, &ctx, &base, &client, &job, &user).await;
    if outcome.is_ok() {
        // Some load after the recovery too.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        tokio::time::timeout(CLIENT_TIMEOUT + Duration::from_secs(5), l)
            .await
            .map_err(|_| Failure::new("a load loop did not stop"))?
            .map_err(|e| Failure::new(format!("a load loop panicked: {e}")))?;
    }
    let (killed, restarting, recovered) = outcome?;

    // Every answer of the load: 200 or a prompt 503, never a hang or a reset.
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut issued_after = 0;
    for s in &samples {
        let key = match &s.outcome {
            Outcome::Other(_) => "other".to_owned(),
            o => format!("{o:?}"),
        };
        *counts.entry(key).or_default() += 1;
        slowest = slowest.max(s.took);
        if matches!(s.outcome, Outcome::Other(_)) || s.took > OUTAGE_ANSWER_BOUND {
            bad.push(format!(
                "  sent {:?} after the kill, answered after {:?}: {:?}",
                s.at.saturating_duration_since(killed),
                s.took,
                s.outcome
            ));
        }
        if s.at >= recovered {
            if s.outcome == Outcome::Issued {
                issued_after += 1;
            } else {
                bad.push(format!(
                    "  sent {:?} after the provider recovered: {:?}",
                    s.at.saturating_duration_since(recovered),
                    s.outcome
                ));
            }
        }
    }
    // Answered while Redis was surely down: sent after the kill, answered
    // before the restart began.
    let during = samples
        .iter()
        .filter(|s| s.at >= killed && s.at + s.took <= restarting)
        .collect::<Vec<_>>();
    eprintln!(
        "load: {} requests {counts:?}, slowest answer {slowest:?}; {} while Redis was down",
        samples.len(),
        during.len()
    );
    ensure(bad.is_empty(), || {
        format!(
            "load through the outage: every answer must be 200 or 503 temporarily_unavailable \
             within {OUTAGE_ANSWER_BOUND:?}, and 200 once recovered; these were not:\n{}",
            bad.join("\n")
        )
    })?;
    ensure(!during.is_empty(), || {
        "the load got no answer while Redis was down".to_owned()
    })?;
    let issued_while_down = during
        .iter()
        .filter(|s| s.outcome != Outcome::Unavailable)
        .count();
    ensure(issued_while_down == 0, || {
        format!("{issued_while_down} token requests answered 200 while Redis was down")
    })?;
    ensure(issued_after > 0, || {
        "the load saw no token issued after recovery".to_owned()
    })?;
    env.check_alive()
}

/// Kills Redis, checks the answers while it is down, restarts it and
/// measures the recovery. Returns when Redis was killed, when its restart
/// began, and when the provider issued again.
async fn outage_under_load(
    env: &mut Env,
    ctx: &Ctx,
    base: &str,
    client: &reqwest::Client,
    job: &flow::Tokens,
    user: &flow::Tokens,
) -> Result<(Instant, Instant, Instant), Failure> {
    env.redis.kill();
    let killed = Instant::now();

    // Every endpoint answers promptly with 503 while Redis is down.
    let (ex, took) = timed(ctx.http.post_form(
        &ctx.meta.token_endpoint,
        BACKUP_JOB.basic(),
        &[("grant_type", "client_credentials")],
    ))
    .await;
    expect_outage_answer(&ex?, took, "client_credentials")?;
    let (ex, took) = timed(flow::refresh(ctx, PRINTSHOP.basic(), user.refresh()?, None)).await;
    expect_outage_answer(&ex?, took, "refresh_token grant")?;
    let (ex, took) = timed(ctx.http.post_form(
        &ctx.meta.introspection_endpoint,
        PHOTO_API.basic(),
        &[("token", &job.access)],
    ))
    .await;
    expect_outage_answer(&ex?, took, "introspection")?;
    let (ex, took) = timed(flow::revoke(ctx, PRINTSHOP.basic(), &user.access)).await;
    expect_outage_answer(&ex?, took, "revocation")?;
    for (token, what) in [(&job.access, "backup-job's"), (&user.access, "alice's")] {
        let (ex, took) = timed(api_at(ctx, base, token)).await;
        let ex = ex?;
        ex.ensure(
            ex.status == 503 && took <= OUTAGE_ANSWER_BOUND,
            format!(
                "/api/photos with {what} token, Redis down: expected a prompt 503 (the token \
                 cannot be checked, it is not invalid), got {} after {took:?}",
                ex.status
            ),
        )?;
        ex.ensure(
            ex.json()
                .ok()
                .is_some_and(|j| j["error"] == "temporarily_unavailable"),
            "/api/photos, Redis down: expected JSON error temporarily_unavailable",
        )?;
    }
    // A person's first step: the authorization request needs the client.
    let url = flow::authorize_url(
        ctx,
        &[
            ("response_type", "code"),
            ("client_id", PRINTSHOP.id),
            ("redirect_uri", PRINTSHOP.redirect_uri.unwrap_or_default()),
            ("state", "s"),
            ("code_challenge", &flow::Pkce::new().challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let (ex, took) = timed(ctx.fresh_browser()?.http.get(&url)).await;
    let ex = ex?;
    ex.ensure(
        ex.status == 503 && took <= OUTAGE_ANSWER_BOUND,
        format!(
            "the authorization page, Redis down: expected a prompt 503 page, got {} after {took:?}",
            ex.status
        ),
    )?;
    env.check_alive()?;

    // Stay down longer than the store's reconnect backoff.
    let rest = OUTAGE.saturating_sub(killed.elapsed());
    tokio::time::sleep(rest).await;
    env.check_alive()?;
    let (ex, took) = timed(ctx.http.post_form(
        &ctx.meta.token_endpoint,
        BACKUP_JOB.basic(),
        &[("grant_type", "client_credentials")],
    ))
    .await;
    expect_outage_answer(
        &ex?,
        took,
        &format!("client_credentials {OUTAGE:?} into the outage"),
    )?;

    // Back on the same port and dir; the same provider process recovers.
    let restarting = Instant::now();
    let pinged = env.redis.restart().await?;
    let took = wait_until_issuing(
        client,
        &ctx.meta.token_endpoint,
        pinged,
        Duration::from_secs(15),
    )
    .await?;
    let recovered = Instant::now();
    eprintln!("the provider issued again {took:?} after Redis answered PING");
    ensure(took <= RECOVERY_BOUND, || {
        format!(
            "the provider issued tokens again only {took:?} after Redis answered PING (bound {RECOVERY_BOUND:?})"
        )
    })?;
    // Tokens issued before the outage work again (appendfsync always kept them).
    expect_photos(ctx, base, &job.access, "backup-job", 5).await?;
    expect_photos(ctx, base, &user.access, "alice", ALICE.photos).await?;
    flow::expect_tokens(&flow::refresh(ctx, PRINTSHOP.basic(), user.refresh()?, None).await?)?;
    Ok((killed, restarting, recovered))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_under_load() {
    run!("redis_outage_under_load", 1, outage);
}

/// Redis frozen (`SIGSTOP`: connections open, no answers): this is where
/// the command timeout bounds every request. Each answers `503` within the
/// bound; after `SIGCONT` the provider issues again within 2 s.
async fn frozen(env: &mut Env) -> CheckResult {
    let ctx = env.ctx(0).await?;
    let base = env.base(0).to_owned();
    let client = fault_client()?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;

    env.redis.signal("-STOP")?;
    let frozen_at = Instant::now();
    let outcome = async {
        // Several at once: each waits for its own store call to time out.
        let answers = futures::future::join_all((0..4).map(|_| {
            let (client, url) = (client.clone(), ctx.meta.token_endpoint.clone());
            async move { backup_job_token(&client, &url).await }
        }))
        .await;
        for (took, outcome) in &answers {
            ensure(
                *outcome == Outcome::Unavailable && *took <= OUTAGE_ANSWER_BOUND,
                || {
                    format!(
                        "a token request, Redis frozen: expected 503 temporarily_unavailable within \
                         {OUTAGE_ANSWER_BOUND:?}, got {outcome:?} after {took:?}"
                    )
                },
            )?;
        }
        let slowest = answers.iter().map(|(t, _)| *t).max().unwrap_or_default();
        eprintln!("Redis frozen: 4 concurrent token requests all 503, slowest after {slowest:?}");
        let (ex, took) = timed(api_at(&ctx, &base, &job.access)).await;
        let ex = ex?;
        ex.ensure(
            ex.status == 503 && took <= OUTAGE_ANSWER_BOUND,
            format!(
                "/api/photos, Redis frozen: expected a prompt 503, got {} after {took:?}",
                ex.status
            ),
        )?;
        env.check_alive()
    }
    .await;
    // Thaw whatever happened, so the process can be killed cleanly.
    env.redis.signal("-CONT")?;
    let thawed = Instant::now();
    outcome?;
    let took = wait_until_issuing(
        &client,
        &ctx.meta.token_endpoint,
        thawed,
        Duration::from_secs(15),
    )
    .await?;
    eprintln!(
        "Redis thawed after {:?} frozen: the provider issued again {took:?} later",
        thawed.duration_since(frozen_at)
    );
    ensure(took <= RECOVERY_BOUND, || {
        format!(
            "the provider issued again only {took:?} after Redis was thawed (bound {RECOVERY_BOUND:?})"
        )
    })?;
    expect_photos(&ctx, &base, &job.access, "backup-job", 5).await?;
    env.check_alive()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_times_out_then_recovers() {
    run!("frozen_redis_times_out_then_recovers", 1, frozen);
}

// ---------------------------------------------------------------------------
// 3. Durability
// ---------------------------------------------------------------------------

/// How many client-credentials tokens to issue before the restarts.
const DURABLE_TOKENS: usize = 50;

/// Every token is active at introspection, for its client.
async fn expect_all_active(ctx: &Ctx, tokens: &[(&str, &str)], when: &str) -> CheckResult {
    for (i, (token, client)) in tokens.iter().enumerate() {
        let (json, ex) = flow::introspect(ctx, token).await?;
        ex.ensure(
            json["active"] == true && json["client_id"] == *client,
            format!("{when}: token #{i} (of {client}) must be active, for {client}"),
        )?;
    }
    Ok(())
}

async fn durability(env: &mut Env) -> CheckResult {
    let ctx = env.ctx(0).await?;
    let base = env.base(0).to_owned();
    let client = fault_client()?;

    let mut jobs = Vec::with_capacity(DURABLE_TOKENS);
    for _ in 0..DURABLE_TOKENS {
        jobs.push(flow::client_token(&ctx, &BACKUP_JOB, None).await?.access);
    }
    let user = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let mut live: Vec<(&str, &str)> = jobs.iter().map(|t| (t.as_str(), BACKUP_JOB.id)).collect();
    live.push((&user.access, PRINTSHOP.id));
    live.push((user.refresh()?, PRINTSHOP.id));
    expect_all_active(&ctx, &live, "before any restart").await?;

    // A crash: kill -9, then the same dir again.
    env.redis.kill();
    let pinged = env.redis.restart().await?;
    let took = wait_until_issuing(
        &client,
        &ctx.meta.token_endpoint,
        pinged,
        Duration::from_secs(15),
    )
    .await?;
    eprintln!("after kill -9 and restart, the provider issued again {took:?} after PING");
    expect_all_active(&ctx, &live, "after kill -9 of redis-server and a restart").await?;
    expect_photos(&ctx, &base, &user.access, "alice", ALICE.photos).await?;
    let rotated =
        flow::expect_tokens(&flow::refresh(&ctx, PRINTSHOP.basic(), user.refresh()?, None).await?)
            .map_err(|f| Failure::new(format!("the refresh token after the restart: {f}")))?;
    expect_photos(&ctx, &base, &rotated.access, "alice", ALICE.photos).await?;

    // A clean stop without a snapshot: the append-only file is all there is.
    env.redis.shutdown_nosave().await?;
    let pinged = env.redis.restart().await?;
    let took = wait_until_issuing(
        &client,
        &ctx.meta.token_endpoint,
        pinged,
        Duration::from_secs(15),
    )
    .await?;
    eprintln!("after SHUTDOWN NOSAVE and restart, the provider issued again {took:?} after PING");
    let mut live: Vec<(&str, &str)> = jobs.iter().map(|t| (t.as_str(), BACKUP_JOB.id)).collect();
    live.push((&rotated.access, PRINTSHOP.id));
    live.push((rotated.refresh()?, PRINTSHOP.id));
    expect_all_active(&ctx, &live, "after SHUTDOWN NOSAVE and a restart").await?;
    // The rotation itself was durable: the retired token is still known as retired.
    expect_active(
        &ctx,
        user.refresh()?,
        false,
        "the refresh token rotated before the second restart",
    )
    .await?;
    let again = flow::expect_tokens(
        &flow::refresh(&ctx, PRINTSHOP.basic(), rotated.refresh()?, None).await?,
    )
    .map_err(|f| {
        Failure::new(format!(
            "the rotated refresh token after the second restart: {f}"
        ))
    })?;
    expect_photos(&ctx, &base, &again.access, "alice", ALICE.photos).await?;
    env.check_alive()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_redis_restart() {
    run!("tokens_survive_a_redis_restart", 1, durability);
}
