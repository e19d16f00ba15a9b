//! Shared test support: where the test Redis servers are, fresh stores with
//! unique key prefixes, throwaway `redis-server` processes, and a counting proxy.
//!
//! Environment:
//! - `TESSERA_REDIS_URL`: a standalone server, e.g. `redis://127.0.0.1:6379/`;
//! - `TESSERA_REDIS_CLUSTER_URLS`: comma-separated node URLs of a 3-master cluster;
//! - `TESSERA_REDIS_SERVER`: the `redis-server` binary for throwaway servers
//!   (default: `redis-server` on `PATH`);
//! - `TESSERA_REDIS_SKIP=1`: skip (pass) tests whose server is not given,
//!   instead of failing them. Without it a missing server fails the test, so
//!   CI cannot pass silently without Redis.
//!
//! `storage-redis/scripts/redis-up.sh` starts suitable servers and prints the variables.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tessera_redis::RedisStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn skipping() -> bool {
    std::env::var("TESSERA_REDIS_SKIP").is_ok_and(|v| v == "1")
}

/// A variable naming a test server; `None` (skip) only with `TESSERA_REDIS_SKIP=1`.
fn required(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if skipping() => {
            eprintln!("skipped: {var} is not set and TESSERA_REDIS_SKIP=1");
            None
        }
        _ => panic!(
            "{var} is not set: this test needs {what}. Start one with \
             `eval \"$(storage-redis/scripts/redis-up.sh)\"` (and stop it with \
             storage-redis/scripts/redis-down.sh), or set TESSERA_REDIS_SKIP=1 to skip."
        ),
    }
}

/// The standalone server's URL.
pub fn standalone_url() -> Option<String> {
    required("TESSERA_REDIS_URL", "a standalone redis-server")
}

/// The cluster's node URLs.
pub fn cluster_urls() -> Option<Vec<String>> {
    required(
        "TESSERA_REDIS_CLUSTER_URLS",
        "a Redis Cluster (3 masters), as comma-separated node URLs",
    )
    .map(|v| {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// The `redis-server` binary for throwaway servers; `None` (skip) only with `TESSERA_REDIS_SKIP=1`.
pub fn redis_server_bin() -> Option<String> {
    let bin = std::env::var("TESSERA_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let found = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Some(bin)
    } else if skipping() {
        eprintln!("skipped: {bin} not found and TESSERA_REDIS_SKIP=1");
        None
    } else {
        panic!(
            "{bin} not found: this test starts its own throwaway redis-server. Install it \
             (apt-get install -y redis-server), set TESSERA_REDIS_SERVER, or set TESSERA_REDIS_SKIP=1."
        )
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("tt{:016x}:", rand::random::<u64>())
}

/// A fresh standalone store (unique prefix) on `url`.
pub async fn standalone(url: &str) -> RedisStore {
    RedisStore::connect(url)
        .prefix(unique_prefix())
        .command_timeout(Duration::from_secs(5))
        .await
        .expect("connect to TESSERA_REDIS_URL")
}

/// A fresh cluster store (unique prefix) on `urls`.
pub async fn cluster(urls: &[String]) -> RedisStore {
    RedisStore::connect_cluster(urls.iter().cloned())
        .prefix(unique_prefix())
        .command_timeout(Duration::from_secs(5))
        .await
        .expect("connect to TESSERA_REDIS_CLUSTER_URLS")
}

/// A store for the given prefix, standalone or cluster.
pub async fn with_prefix(target: &Target, prefix: &str) -> RedisStore {
    match target {
        Target::Standalone(url) => RedisStore::connect(url.as_str()),
        Target::Cluster(urls) => RedisStore::connect_cluster(urls.iter().cloned()),
    }
    .prefix(prefix)
    .command_timeout(Duration::from_secs(5))
    .await
    .expect("connect")
}

/// Which deployment a test runs against.
#[derive(Debug, Clone)]
pub enum Target {
    /// One server.
    Standalone(String),
    /// A cluster.
    Cluster(Vec<String>),
}

impl Target {
    pub fn standalone() -> Option<Self> {
        standalone_url().map(Self::Standalone)
    }

    pub fn cluster() -> Option<Self> {
        cluster_urls().map(Self::Cluster)
    }

    /// A raw connection to write foreign values with.
    pub async fn raw(&self) -> Raw {
        match self {
            Target::Standalone(url) => Raw::Single(
                redis::Client::open(url.as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            ),
            Target::Cluster(urls) => Raw::Cluster(
                redis::cluster::ClusterClient::new(urls.clone())
                    .unwrap()
                    .get_async_connection()
                    .await
                    .unwrap(),
            ),
        }
    }
}

/// A raw Redis connection for the tests' own commands.
pub enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    pub async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        match self {
            Raw::Single(c) => cmd.query_async(c).await.unwrap(),
            Raw::Cluster(c) => cmd.query_async(c).await.unwrap(),
        }
    }
}

/// A free loopback TCP port (bound and released; races are unlikely in tests).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `redis-server` child process on a loopback port, killed on drop.
pub struct Throwaway {
    bin: String,
    pub port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
    extra: Vec<String>,
}

impl Throwaway {
    /// Starts a server on a free port and waits until it answers.
    pub fn start(bin: &str) -> Self {
        Self::start_with(bin, free_port(), &[])
    }

    /// Starts a server on `port` with extra arguments, in its own temp dir
    /// (kept across restarts, removed on drop).
    pub fn start_with(bin: &str, port: u16, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tessera-redis-test-{port}-{:08x}",
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut t = Self {
            bin: bin.to_owned(),
            port,
            child: None,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        t.restart();
        t
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let child = Command::new(&self.bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &self.dir.to_string_lossy(),
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "throwaway redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: like a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// A blocking connection to the server, for setup commands.
    pub fn admin(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// `INFO commandstats` as (command, calls) pairs.
    pub fn commandstats(&self) -> Vec<(String, u64)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut conn)
            .unwrap();
        info.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("cmdstat_")?;
                let (name, fields) = rest.split_once(':')?;
                let calls = fields
                    .split(',')
                    .find_map(|f| f.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        // SIGKILL ends a frozen (SIGSTOPped) server too.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// A TCP proxy in front of a Redis server that counts the commands clients
/// send (top-level RESP frames): the round trips, whatever a script does inside.
pub struct CountingProxy {
    pub addr: SocketAddr,
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut frames = FrameCounter::default();
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            counter.fetch_add(frames.feed(&buf[..n]), Ordering::SeqCst);
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
        Self { addr, count, task }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Commands seen so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts complete RESP request frames (`*N` arrays of `$len` bulk strings)
/// in a byte stream fed in arbitrary chunks.
#[derive(Default)]
struct FrameCounter {
    buf: Vec<u8>,
}

impl FrameCounter {
    fn feed(&mut self, bytes: &[u8]) -> usize {
        self.buf.extend_from_slice(bytes);
        let mut frames = 0;
        while let Some(len) = frame_len(&self.buf) {
            self.buf.drain(..len);
            frames += 1;
        }
        frames
    }
}

/// The length of the complete frame at the start of `b`, if there is one.
fn frame_len(b: &[u8]) -> Option<usize> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let rest = b.get(at..)?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..end], at + end + 2))
    }
    let (head, mut at) = line(b, 0)?;
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    for _ in 0..n {
        let (h, next) = line(b, at)?;
        let len: usize = std::str::from_utf8(h.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        at = next + len + 2;
        if b.len() < at {
            return None;
        }
    }
    Some(at)
}

/// A throwaway 3-master Redis Cluster (no replicas) of `redis-server` child
/// processes, assembled with CLUSTER ADDSLOTSRANGE / MEET (no redis-cli needed).
pub struct ThrowawayCluster {
    pub nodes: Vec<Throwaway>,
}

impl ThrowawayCluster {
    pub fn start(bin: &str) -> Self {
        let mut ports = Vec::new();
        while ports.len() < 3 {
            let p = free_port();
            // A cluster node also listens on port + 10000 (its bus).
            if p < 55_000
                && !ports.contains(&p)
                && StdListener::bind(("127.0.0.1", p + 10_000)).is_ok()
            {
                ports.push(p);
            }
        }
        let nodes: Vec<Throwaway> = ports
            .iter()
            .map(|&p| {
                Throwaway::start_with(
                    bin,
                    p,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                    ],
                )
            })
            .collect();
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (lo, hi)) in nodes.iter().zip(ranges) {
            let mut c = node.admin();
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(lo)
                .arg(hi)
                .query(&mut c)
                .unwrap();
        }
        let mut first = nodes[0].admin();
        for n in &nodes[1..] {
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(n.port)
                .query(&mut first)
                .unwrap();
        }
        let cluster = Self { nodes };
        cluster.wait_ok(Duration::from_secs(20));
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Throwaway::url).collect()
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub fn wait_ok(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ok = self.nodes.iter().all(|n| {
                let Ok(client) = redis::Client::open(n.url()) else {
                    return false;
                };
                let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200))
                else {
                    return false;
                };
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut c)
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "cluster not ok after {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
