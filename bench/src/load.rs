//! A closed-loop HTTP/1.1 load generator: `concurrency` workers, each with
//! its own keep-alive connection (hyper's client connection, the lightest
//! client there is), sending one request after another for a fixed time.
//! Latencies go to an HDR histogram per worker, merged at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use axum::http::{Method, Request};
use hdrhistogram::Histogram;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::apps::BoxError;

/// Single-use bodies (authorization codes), handed out once each; or,
/// with `cycle`, round and round (for the bare handler, which does not
/// look at the code).
#[derive(Debug)]
pub struct CodePool {
    codes: Vec<String>,
    next: AtomicUsize,
    cycle: bool,
}

impl CodePool {
    pub fn new(codes: Vec<String>, cycle: bool) -> Self {
        Self {
            codes,
            next: AtomicUsize::new(0),
            cycle,
        }
    }

    fn take(&self) -> Option<&str> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let i = if self.cycle {
            i % self.codes.len().max(1)
        } else {
            i
        };
        self.codes.get(i).map(String::as_str)
    }

    /// How many codes were handed out (capped at the pool's size).
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.codes.len())
    }
}

/// What a request's body is.
#[derive(Debug)]
pub enum BodySource {
    /// No body (a GET).
    Empty,
    /// The same form body every time.
    Form(Bytes),
    /// `grant_type=authorization_code&code=<next code><tail>`.
    Codes { pool: Arc<CodePool>, tail: String },
}

/// One kind of request, sent over and over.
#[derive(Debug)]
pub struct RequestSpec {
    pub method: Method,
    pub path: &'static str,
    pub authorization: String,
    pub body: BodySource,
}

impl RequestSpec {
    /// `None` when the codes ran out.
    fn request(&self) -> Option<Request<Body>> {
        let b = Request::builder()
            .method(self.method.clone())
            .uri(self.path)
            .header(HOST, "127.0.0.1")
            .header(AUTHORIZATION, &self.authorization);
        let r = match &self.body {
            BodySource::Empty => b.body(Body::empty()),
            BodySource::Form(bytes) => b
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(bytes.clone())),
            BodySource::Codes { pool, tail } => {
                let code = pool.take()?;
                b.header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(format!(
                        "grant_type=authorization_code&code={code}{tail}"
                    )))
            }
        };
        r.ok()
    }
}

/// The outcome of one timed run.
#[derive(Debug)]
pub struct RunResult {
    /// 2xx answers completed inside the measured window.
    pub ok: u64,
    /// 2xx answers over the whole run, warm-up included.
    pub ok_all: u64,
    /// Other answers and transport errors (whole run, warm-up included).
    pub errors: u64,
    pub first_error: Option<String>,
    /// The measured window (shorter than asked when the codes ran out).
    pub elapsed: Duration,
    pub exhausted: bool,
    /// Latency of measured requests, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl RunResult {
    /// Adds another slice's counts, window and latencies to this one.
    pub fn absorb(&mut self, other: RunResult) {
        self.ok += other.ok;
        self.ok_all += other.ok_all;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
        self.exhausted |= other.exhausted;
        let _ = self.latency.add(&other.latency);
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p50_us(&self) -> f64 {
        self.latency.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_us(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

type Conn = SendRequest<Body>;

async fn connect(addr: SocketAddr) -> Result<Conn, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send(conn: &mut Conn, request: Request<Body>) -> Result<(u16, Bytes), BoxError> {
    conn.ready().await?;
    let response = conn.send_request(request).await?;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20).await?;
    Ok((status, body))
}

struct WorkerResult {
    ok: u64,
    ok_all: u64,
    errors: u64,
    first_error: Option<String>,
    last_done: Instant,
    exhausted: bool,
    latency: Histogram<u64>,
}

async fn worker(
    addr: SocketAddr,
    spec: Arc<RequestSpec>,
    measure_from: Instant,
    end: Instant,
) -> WorkerResult {
    let mut r = WorkerResult {
        ok: 0,
        ok_all: 0,
        errors: 0,
        first_error: None,
        last_done: measure_from,
        exhausted: false,
        latency: histogram(),
    };
    let mut conn: Option<Conn> = None;
    while Instant::now() < end {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    r.errors += 1;
                    r.first_error.get_or_insert_with(|| format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(request) = spec.request() else {
            r.exhausted = true;
            break;
        };
        let start = Instant::now();
        match send(c, request).await {
            Ok((status, body)) => {
                let done = Instant::now();
                if (200..300).contains(&status) {
                    r.ok_all += 1;
                    if start >= measure_from {
                        r.ok += 1;
                        r.last_done = done;
                        let ns = u64::try_from((done - start).as_nanos()).unwrap_or(u64::MAX);
                        r.latency.saturating_record(ns.max(1));
                    }
                } else {
                    r.errors += 1;
                    r.first_error.get_or_insert_with(|| {
                        format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                    });
                }
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| e.to_string());
                conn = None;
            }
        }
    }
    r
}

/// Whether the load thread busy-polls during closed-loop runs (`--no-spin`
/// clears it). A load thread that sleeps in `epoll_wait` between answers
/// must be woken by every answer the server writes, and on a VM that wakeup
/// (an inter-processor interrupt) is charged to the *server's* core: the
/// slower of two servers leaves the client idle more often and pays more of
/// it, which widens the very gap being measured. Spinning keeps the client
/// awake for both servers alike, so what differs is the servers' own work.
pub static SPIN: AtomicBool = AtomicBool::new(true);

/// Drives `addr` with `spec` from `concurrency` connections for `warmup`
/// (not measured) and then `duration`.
pub async fn run(
    addr: SocketAddr,
    spec: Arc<RequestSpec>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> RunResult {
    let measure_from = Instant::now() + warmup;
    let end = measure_from + duration;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(addr, Arc::clone(&spec), measure_from, end)))
        .collect();
    // An always-ready task: the current-thread runtime then never parks,
    // polling its sockets without blocking between tasks (see `SPIN`).
    let spinner = SPIN.load(Ordering::Relaxed).then(|| {
        tokio::spawn(async move {
            while Instant::now() < end {
                tokio::task::yield_now().await;
            }
        })
    });
    let mut total = RunResult {
        ok: 0,
        ok_all: 0,
        errors: 0,
        first_error: None,
        elapsed: duration,
        exhausted: false,
        latency: histogram(),
    };
    let mut last_done = measure_from;
    for w in workers {
        let Ok(w) = w.await else {
            total.errors += 1;
            continue;
        };
        total.ok += w.ok;
        total.ok_all += w.ok_all;
        total.errors += w.errors;
        if total.first_error.is_none() {
            total.first_error = w.first_error;
        }
        total.exhausted |= w.exhausted;
        last_done = last_done.max(w.last_done);
        let _ = total.latency.add(&w.latency);
    }
    if let Some(spinner) = spinner {
        spinner.abort();
    }
    if total.exhausted {
        total.elapsed = last_done.saturating_duration_since(measure_from);
    }
    total
}

/// Sends `rate` requests per second in total (open loop, spread over
/// `concurrency` connections) until `end`; returns how many succeeded and failed.
pub async fn run_at_rate(
    addr: SocketAddr,
    spec: Arc<RequestSpec>,
    concurrency: usize,
    rate: u64,
    end: Instant,
) -> (u64, u64) {
    let concurrency = concurrency.max(1);
    let period = Duration::from_secs_f64(concurrency as f64 / rate.max(1) as f64);
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let spec = Arc::clone(&spec);
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, 0u64);
                // Stagger the workers across one period.
                let first = Instant::now() + period.mul_f64(i as f64 / concurrency as f64);
                let mut ticks = tokio::time::interval_at(first, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut conn: Option<Conn> = None;
                loop {
                    ticks.tick().await;
                    if Instant::now() >= end {
                        break;
                    }
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => match connect(addr).await {
                            Ok(c) => conn.insert(c),
                            Err(_) => {
                                failed += 1;
                                continue;
                            }
                        },
                    };
                    let Some(request) = spec.request() else { break };
                    match send(c, request).await {
                        Ok((status, _)) if (200..300).contains(&status) => ok += 1,
                        Ok(_) => failed += 1,
                        Err(_) => {
                            failed += 1;
                            conn = None;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut total = (0, 0);
    for w in workers {
        if let Ok((ok, failed)) = w.await {
            total.0 += ok;
            total.1 += failed;
        }
    }
    total
}
