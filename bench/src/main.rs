//! `tessera-bench`: Tessera's provider endpoints under HTTP load beside a
//! bare axum handler doing the minimal honest work of a token endpoint, on
//! the memory store and optionally Redis and PostgreSQL (there beside the
//! same work plus one `INSERT`); Redis round trips per grant step;
//! bytes per live token in the memory store; and a soak run.
//!
//! ```text
//! cargo run --profile bench -p tessera-bench -- [--duration 10s] [--concurrency 32] [--redis redis://...] [--postgres postgres://...] [--only postgres] [--soak 600s]
//! ```
//!
//! Everything runs in this process on loopback: the servers on a dedicated
//! one-worker Tokio runtime pinned to one core, the load generator on the
//! main thread pinned to another. See `bench/README.md`.

mod apps;
mod load;
mod memory;
mod roundtrips;
mod sys;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use clap::Parser;
use futures::StreamExt;
use tessera::{Lifetimes, Server};
use tessera_memory::MemoryStore;
use tokio::runtime::Runtime;

use crate::apps::{API_SECRET, BACKUP_SECRET, BoxError, CC_BODY, PRINTSHOP_SECRET};
use crate::load::{BodySource, CodePool, RequestSpec, RunResult};
use crate::sys::{Cores, ThreadCpu};

/// Load, memory and soak benchmarks for Tessera (see bench/README.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Measured time per run (each scenario runs once against each server).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before each run.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Alternating slices per scenario: provider, bare, provider, bare, ...
    /// (`duration / rounds` measured each), so load from elsewhere on the
    /// machine hits both alike.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
    /// Also run the provider on this Redis (e.g. the TESSERA_REDIS_URL that
    /// storage-redis/scripts/redis-up.sh prints) and count round trips.
    #[arg(long)]
    redis: Option<String>,
    /// Also run the provider on this PostgreSQL database (e.g. the
    /// TESSERA_POSTGRES_URL that storage-postgres/scripts/postgres-up.sh
    /// prints) beside a bare handler doing one INSERT into it.
    #[arg(long)]
    postgres: Option<String>,
    /// Also run the provider on these Redis Clusters: each value is one
    /// cluster's comma-separated node URLs (e.g. the
    /// TESSERA_REDIS_CLUSTER_URLS of storage-redis/scripts/redis-up.sh,
    /// REDIS_CLUSTER_MASTERS=1 for a one-master cluster); repeatable.
    #[arg(long)]
    redis_cluster: Vec<String>,
    /// Run only these parts, comma-separated: `tokens` (bytes per live
    /// token), `memory`, `jwt` (the provider issuing JWT access tokens
    /// beside itself issuing opaque ones), `redis` (with its round trips),
    /// `cluster`, `postgres`. Everything given by default.
    #[arg(long, value_delimiter = ',', value_parser = ["tokens", "memory", "jwt", "redis", "cluster", "postgres"])]
    only: Vec<String>,
    /// Where the provider's log goes: the demo's logging as shipped
    /// (`photobook::init_logging`'s filter and batching writer; `RUST_LOG`
    /// if set), into this file (emptied before each scenario, so it does
    /// not fill the disk), or `off` for no subscriber at all. Default: a
    /// file in the temp directory.
    #[arg(long)]
    provider_log: Option<String>,
    /// Tokens issued to measure bytes per live token (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    tokens: usize,
    /// Also run a soak of this length (e.g. 600s) after the rest.
    #[arg(long, value_parser = parse_duration)]
    soak: Option<Duration>,
    /// Client-credentials requests per second during the soak.
    #[arg(long, default_value_t = 3_000)]
    soak_rate: u64,
    /// Run only the soak.
    #[arg(long, requires = "soak")]
    soak_only: bool,
    /// Sequential operations per step when counting Redis round trips.
    #[arg(long, default_value_t = 1000)]
    round_trip_ops: usize,
    /// Instead of the benchmarks: send this many client_credentials requests
    /// straight into each app's router (no sockets, one thread) and print
    /// the time per request, to profile the framework and app layers
    /// (logging only if `--provider-log` names a file; with `--redis`, the
    /// provider on that Redis and the bare handler plus one `SET`).
    #[arg(long)]
    router_only: Option<usize>,
    /// With --router-only: which of `provider`, `bare`, `core` to run (all by default).
    #[arg(long, requires = "router_only", value_parser = ["provider", "bare", "core"])]
    router_app: Option<String>,
    /// Do not pin the server and the load generator to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// Let the load thread sleep between answers instead of busy-polling
    /// (then each server also pays for waking the client; see bench/README.md).
    #[arg(long)]
    no_spin: bool,
    /// Instead of the benchmarks: serve the bare handler on this address
    /// until killed (for an outside load generator such as `wrk`), on a
    /// default multi-threaded Tokio runtime as `photo-provider` uses; with
    /// `--redis`, the bare handler plus one Redis round trip per request.
    #[arg(long)]
    serve_bare: Option<SocketAddr>,
    /// Instead of the benchmarks: serve the bare handler plus one insert
    /// of each minted token's hash into an in-memory map (the least an
    /// in-memory token store does) on this address until killed.
    #[arg(long, conflicts_with = "serve_bare")]
    serve_bare_map: Option<SocketAddr>,
    /// Set when this program re-runs itself for the soak: no header.
    #[arg(long, hide = true)]
    child: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {s:?}: {e}"))
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => return demo_cli::flags::exit("tessera-bench", &error),
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--serve-bare` (the bare app, or bare+SET on `redis`) and
/// `--serve-bare-map` (`map`: bare+insert) on `addr`, until killed.
fn serve_bare(addr: SocketAddr, redis: Option<&str>, map: bool) -> Result<(), BoxError> {
    let rt = Runtime::new()?;
    rt.block_on(async {
        let (app, what) = match redis {
            _ if map => (apps::bare_map_app(), " + one in-memory insert"),
            Some(url) => {
                let conn = redis::aio::ConnectionManager::new(redis::Client::open(url)?).await?;
                (apps::bare_redis_app(conn), " + one SET")
            }
            None => (apps::bare_app(), ""),
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        println!("tessera-bench: bare handler{what} on {addr}");
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Serves `app` on an ephemeral loopback port from `rt`.
pub(crate) fn serve(rt: &Runtime, app: Router) -> Result<SocketAddr, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    rt.spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => {
                if let Err(e) = axum::serve(l, app).await {
                    eprintln!("tessera-bench: server on {addr} stopped: {e}");
                }
            }
            Err(e) => eprintln!("tessera-bench: cannot listen on {addr}: {e}"),
        }
    });
    Ok(addr)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into())
}

fn run(args: Args) -> Result<(), BoxError> {
    if let Some(addr) = args.serve_bare {
        return serve_bare(addr, args.redis.as_deref(), false);
    }
    if let Some(addr) = args.serve_bare_map {
        return serve_bare(addr, None, true);
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    load::SPIN.store(!args.no_spin, std::sync::atomic::Ordering::Relaxed);
    let cores = Cores::plan(!args.no_pin);
    let pinned = sys::pin(cores.load);
    let server_core = cores.server;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-server")
        .on_thread_start(move || {
            sys::pin(server_core);
        })
        .enable_all()
        .build()?;
    let load_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    if !args.child {
        header(&args, cpus, cores, pinned);
    }
    // The provider's logging as shipped, its writer thread on the server's
    // core and counted as server CPU (named `bench-server-log`). Held to the end.
    // With --router-only, only when --provider-log names a file: then the
    // logging's own cost per request can be counted (callgrind).
    let log_wanted = if args.router_only.is_some() {
        args.provider_log.is_some()
    } else {
        !args.child
    };
    let _log = if log_wanted {
        provider_logging(args.provider_log.as_deref(), cores)?
    } else {
        None
    };
    if let Some(n) = args.router_only {
        return router_only(
            n,
            args.router_app.as_deref(),
            args.redis.as_deref(),
            &load_rt,
        );
    }
    if !args.soak_only {
        let part = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
        if args.tokens > 0 && part("tokens") {
            report_per_token(args.tokens)?;
        }
        let memory = if part("memory") {
            throughput_memory(&args, &server_rt, &load_rt)?
        } else {
            Vec::new()
        };
        if part("jwt") {
            throughput_jwt(&args, &server_rt, &load_rt)?;
        }
        let redis = match &args.redis {
            Some(url) if part("redis") => {
                Some(throughput_redis(url, &args, &server_rt, &load_rt, cores)?)
            }
            _ => None,
        };
        let clusters = if part("cluster") {
            args.redis_cluster
                .iter()
                .map(|urls| throughput_cluster(urls, &args, &server_rt, &load_rt, cores))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let postgres = match &args.postgres {
            Some(url) if part("postgres") => Some(throughput_postgres(
                url, &args, &server_rt, &load_rt, cores,
            )?),
            _ => None,
        };
        report_throughput(&memory, redis.as_ref(), postgres.as_ref(), &args);
        report_clusters(&clusters);
        if let Some(url) = &args.redis
            && part("redis")
        {
            report_round_trips(url, &args, &load_rt)?;
        }
    }
    if let Some(d) = args.soak {
        if args.soak_only {
            report_soak(&server_rt, &load_rt, d, &args)?;
        } else {
            soak_in_child(d, &args)?;
        }
    }
    Ok(())
}

/// Runs the soak in a fresh process, so that the heap the other
/// measurements grew does not hide (or fake) the soak's own growth.
fn soak_in_child(d: Duration, args: &Args) -> Result<(), BoxError> {
    use std::io::Write;
    std::io::stdout().flush()?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["--child", "--soak-only", "--soak"])
        .arg(format!("{}ms", d.as_millis()))
        .arg("--soak-rate")
        .arg(args.soak_rate.to_string())
        .arg("--concurrency")
        .arg(args.concurrency.to_string());
    if args.no_pin {
        cmd.arg("--no-pin");
    }
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the soak process failed: {status}").into())
    }
}

fn header(args: &Args, cpus: usize, cores: Cores, pinned: bool) {
    println!("# tessera-bench");
    println!();
    println!("- machine: {} ({} logical CPUs)", cpu_model(), cpus);
    println!(
        "- {}{}",
        cores.describe(),
        if pinned || cores.load.is_none() {
            ""
        } else {
            " (pinning the load thread failed)"
        }
    );
    println!(
        "- servers: one Tokio worker thread; load: one thread, {} keep-alive HTTP/1.1 connections (hyper client), closed loop, {}",
        args.concurrency,
        if args.no_spin {
            "sleeping between answers (--no-spin)"
        } else {
            "busy-polling so that it never has to be woken"
        }
    );
    println!(
        "- each scenario: provider and bare alternate in {} slices each; per server {:?} warm-up and {:?} measured in all",
        args.rounds, args.warmup, args.duration
    );
    println!(
        "- load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

// ---- The provider's logging -------------------------------------------------------

/// The provider log file, emptied before each measured run.
static PROVIDER_LOG: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Installs `photo-provider`'s logging as it ships (its default filter,
/// `RUST_LOG` if set, the batching writer) over a file, from a thread
/// pinned to the server's core so that the writer thread it starts runs
/// there too.
fn provider_logging(
    setting: Option<&str>,
    cores: Cores,
) -> Result<Option<photobook::logging::LogGuard>, BoxError> {
    if setting == Some("off") {
        println!("- provider logging: off (--provider-log off)");
        return Ok(None);
    }
    let path = setting.map_or_else(
        || std::env::temp_dir().join(format!("tessera-bench-provider-{}.log", std::process::id())),
        std::path::PathBuf::from,
    );
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    file.set_len(0)?;
    let truncate = file.try_clone()?;
    let _ = PROVIDER_LOG.set(truncate);
    let server_core = cores.server;
    let guard = std::thread::spawn(move || {
        sys::pin(server_core);
        photobook::logging::init_to(
            photobook::logging::AXUM_PROVIDER_FILTER,
            file,
            false,
            "bench-server-log",
        )
    })
    .join()
    .map_err(|_| "the logging setup thread panicked")?;
    println!(
        "- provider logging: as shipped (`{}`{}), batching writer into {} (emptied before each run)",
        photobook::logging::AXUM_PROVIDER_FILTER,
        if std::env::var_os("RUST_LOG").is_some() {
            "; RUST_LOG is set and wins"
        } else {
            ""
        },
        path.display()
    );
    Ok(guard)
}

/// Empties the provider log, so that long runs do not fill the disk.
fn empty_provider_log() {
    if let Some(f) = PROVIDER_LOG.get() {
        let _ = f.set_len(0);
    }
}

// ---- Router only ------------------------------------------------------------------

fn router_only(
    n: usize,
    only: Option<&str>,
    redis: Option<&str>,
    load_rt: &Runtime,
) -> Result<(), BoxError> {
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    use tower::ServiceExt;
    println!();
    println!(
        "## client_credentials through each router, no sockets, one thread{}",
        if redis.is_some() {
            " (Redis: the provider on the store, bare+SET)"
        } else {
            ""
        }
    );
    println!();
    // With --redis: the store as `photo-provider --store URL` opens it, and
    // the bare handler plus one SET, both on this runtime's one thread (so
    // callgrind counts the client side of every round trip).
    let store: Arc<dyn tessera::Store> = match redis {
        Some(url) => load_rt.block_on(photobook::store::open(&photobook::StoreSpec::Redis(
            url.to_owned(),
        )))?,
        None => Arc::new(MemoryStore::with_clients(apps::clients())),
    };
    let server = apps::server(store, bench_lifetimes())?;
    let backup = apps::basic("backup-job", BACKUP_SECRET);
    let request = || {
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/token")
            .header("host", "127.0.0.1")
            .header("authorization", &backup)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", CC_BODY.len())
            .body(axum::body::Body::from(CC_BODY))
    };
    let mut apps = Vec::new();
    if wanted("provider") {
        apps.push(("photo-provider app", apps::provider_app(server.clone())?));
    }
    if wanted("bare") {
        match redis {
            Some(url) => {
                let conn = load_rt.block_on(async {
                    redis::aio::ConnectionManager::new(redis::Client::open(url)?).await
                })?;
                apps.push(("bare handler + one SET", apps::bare_redis_app(conn)));
            }
            None => apps.push(("bare handler", apps::bare_app())),
        }
    }
    for (name, app) in apps {
        let elapsed = load_rt.block_on(async {
            let start = std::time::Instant::now();
            for _ in 0..n {
                let response = app.clone().oneshot(request()?).await?;
                if !response.status().is_success() {
                    return Err(format!("{name} answered {}", response.status()).into());
                }
                std::hint::black_box(axum::body::to_bytes(response.into_body(), 1 << 20).await?);
            }
            Ok::<_, BoxError>(start.elapsed())
        })?;
        println!(
            "- {name}: {:.2} µs per request",
            elapsed.as_secs_f64() * 1e6 / n as f64
        );
    }
    if wanted("core") {
        let direct = load_rt.block_on(async {
            let start = std::time::Instant::now();
            for _ in 0..n {
                let r = tessera::HttpRequest::form_post(CC_BODY, Some(&backup));
                std::hint::black_box(server.handle(tessera::Endpoint::Token, &r).await);
            }
            start.elapsed()
        });
        println!(
            "- `Server::token` alone (the core with its JSON body): {:.2} µs per request",
            direct.as_secs_f64() * 1e6 / n as f64
        );
    }
    Ok(())
}

// ---- Bytes per token --------------------------------------------------------------

fn report_per_token(n: usize) -> Result<(), BoxError> {
    println!();
    println!("## Bytes per live token (memory store)");
    println!();
    let m = memory::per_token(n)?;
    let per = m.bytes_per_token();
    println!(
        "{} client_credentials tokens issued through `Server::token_response` in {:.2} s ({} live in the store); RSS {:.1} MiB -> {:.1} MiB (/proc/self/statm)",
        m.tokens,
        m.seconds,
        m.live_tokens,
        m.rss_before as f64 / 1048576.0,
        m.rss_after as f64 / 1048576.0
    );
    println!();
    println!(
        "**{per:.0} bytes per live token** (bar <= 400: {})",
        if per <= 400.0 { "met" } else { "MISSED" }
    );
    Ok(())
}

// ---- Throughput -------------------------------------------------------------------

/// One scenario against one server.
#[derive(Debug)]
struct Measured {
    run: RunResult,
    server_cpu: Option<f64>,
    load_cpu: Option<f64>,
    /// Server-thread CPU per answered request, in µs (warm-up included on both sides).
    server_us_per_request: f64,
}

/// One scenario: the provider, and the bare handler beside it (memory only).
#[derive(Debug)]
struct Row {
    name: &'static str,
    provider: Measured,
    bare: Option<Measured>,
    note: String,
}

/// Raw sums over the slices of one server's runs.
#[derive(Debug, Default)]
struct Sums {
    run: Option<RunResult>,
    server_ns: u64,
    load_ns: u64,
    wall: Duration,
}

impl Sums {
    fn slice(
        &mut self,
        load_rt: &Runtime,
        addr: SocketAddr,
        spec: RequestSpec,
        warmup: Duration,
        duration: Duration,
        concurrency: usize,
    ) {
        let before = ThreadCpu::read();
        let started = std::time::Instant::now();
        let run = load_rt.block_on(load::run(
            addr,
            Arc::new(spec),
            concurrency,
            warmup,
            duration,
        ));
        self.wall += started.elapsed();
        let after = ThreadCpu::read();
        self.server_ns += after.server_ns_since(&before);
        self.load_ns += after.other_ns_since(&before);
        match &mut self.run {
            Some(total) => total.absorb(run),
            None => self.run = Some(run),
        }
    }

    fn finish(self, addr: SocketAddr) -> Option<Measured> {
        let run = self.run?;
        if run.errors > 0 {
            eprintln!(
                "tessera-bench: {} failed requests to {addr}; first: {}",
                run.errors,
                run.first_error.as_deref().unwrap_or("?")
            );
        }
        let wall_ns = self.wall.as_nanos().max(1) as f64;
        Some(Measured {
            server_cpu: Some(100.0 * self.server_ns as f64 / wall_ns),
            load_cpu: Some(100.0 * self.load_ns as f64 / wall_ns),
            server_us_per_request: self.server_ns as f64 / 1000.0 / run.ok_all.max(1) as f64,
            run,
        })
    }
}

/// Runs the provider and the bare server (when given) in alternating
/// slices (`--rounds` of each, `duration / rounds` measured per slice), so
/// that whatever else the machine does hits both alike.
fn drive_pair(
    load_rt: &Runtime,
    provider: SocketAddr,
    bare: Option<SocketAddr>,
    make_provider: &dyn Fn() -> RequestSpec,
    make_bare: &dyn Fn() -> RequestSpec,
    args: &Args,
) -> Result<(Measured, Option<Measured>), BoxError> {
    empty_provider_log();
    let rounds = args.rounds.max(1);
    let slice = args.duration / rounds;
    let warm = args.warmup / rounds;
    let (mut p, mut b) = (Sums::default(), Sums::default());
    for _ in 0..rounds {
        p.slice(
            load_rt,
            provider,
            make_provider(),
            warm,
            slice,
            args.concurrency,
        );
        if let Some(addr) = bare {
            b.slice(load_rt, addr, make_bare(), warm, slice, args.concurrency);
        }
        if p.run.as_ref().is_some_and(|r| r.exhausted) {
            break;
        }
    }
    let p = p.finish(provider).ok_or("no provider run")?;
    let b = bare.and_then(|addr| b.finish(addr));
    Ok((p, b))
}

fn post(path: &'static str, auth: String, body: String) -> RequestSpec {
    RequestSpec {
        method: Method::POST,
        path,
        authorization: auth,
        body: BodySource::Form(body.into()),
    }
}

/// How [`scenarios`] runs on one store.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Codes minted concurrently through the core before the code exchange.
    mint_concurrency: usize,
    /// Codes minted: this many times the client-credentials rate's worth.
    code_margin: f64,
    /// Only the token endpoint's scenarios (client_credentials, code exchange).
    token_only: bool,
}

/// The scenarios, provider (and bare, when given) back to back.
fn scenarios(
    server: &Server,
    provider: SocketAddr,
    bare: Option<SocketAddr>,
    args: &Args,
    load_rt: &Runtime,
    plan: Plan,
) -> Result<Vec<Row>, BoxError> {
    let Plan {
        mint_concurrency,
        code_margin,
        token_only,
    } = plan;
    let minter = apps::CodeMinter::new(server.clone());
    let (access, _) = load_rt.block_on(minter.tokens())?;
    let backup = apps::basic("backup-job", BACKUP_SECRET);
    let printshop = apps::basic("printshop", PRINTSHOP_SECRET);
    let api = apps::basic("photo-api", API_SECRET);
    let mut rows = Vec::new();
    let mut both = |name: &'static str,
                    make: &dyn Fn() -> RequestSpec,
                    note: String|
     -> Result<(), BoxError> {
        eprintln!("tessera-bench: running {name}");
        let (p, b) = drive_pair(load_rt, provider, bare, make, make, args)?;
        rows.push(Row {
            name,
            provider: p,
            bare: b,
            note,
        });
        Ok(())
    };

    both(
        "client_credentials (POST /token)",
        &|| post("/token", backup.clone(), CC_BODY.into()),
        String::new(),
    )?;

    // Enough codes for the whole run at the client-credentials rate (a code
    // exchange is never faster), minted through the core into the same store.
    let cc_rps = rows.first().map_or(10_000.0, |r| r.provider.run.rps());
    let total = args.warmup + args.duration;
    let n = ((cc_rps * total.as_secs_f64() * code_margin) as usize + 2_000).min(5_000_000);
    eprintln!("tessera-bench: minting {n} authorization codes through the core");
    let start = std::time::Instant::now();
    let codes: Vec<String> = load_rt.block_on(async {
        futures::stream::iter(0..n)
            .map(|_| minter.code())
            .buffer_unordered(mint_concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
    })?;
    let minted_in = start.elapsed();
    let provider_pool = Arc::new(CodePool::new(codes.clone(), false));
    let bare_pool = Arc::new(CodePool::new(codes, true));
    let tail = apps::exchange_tail();
    let pool_for_provider = Arc::clone(&provider_pool);
    let make_code = |pool: &Arc<CodePool>| RequestSpec {
        method: Method::POST,
        path: "/token",
        authorization: printshop.clone(),
        body: BodySource::Codes {
            pool: Arc::clone(pool),
            tail: tail.clone(),
        },
    };
    eprintln!("tessera-bench: running code exchange");
    let (p, b) = drive_pair(
        load_rt,
        provider,
        bare,
        &|| make_code(&pool_for_provider),
        &|| make_code(&bare_pool),
        args,
    )?;
    let mut note = format!(
        "{} codes minted in {:.1} s before the run, {} used",
        n,
        minted_in.as_secs_f64(),
        provider_pool.used()
    );
    if p.run.exhausted {
        note.push_str("; ran out of codes, window shortened");
    }
    rows.push(Row {
        name: "code exchange + PKCE (POST /token)",
        provider: p,
        bare: b,
        note,
    });
    if token_only {
        return Ok(rows);
    }

    let mut both = |name: &'static str,
                    make: &dyn Fn() -> RequestSpec,
                    note: String|
     -> Result<(), BoxError> {
        eprintln!("tessera-bench: running {name}");
        let (p, b) = drive_pair(load_rt, provider, bare, make, make, args)?;
        rows.push(Row {
            name,
            provider: p,
            bare: b,
            note,
        });
        Ok(())
    };
    both(
        "introspection (POST /introspect)",
        &|| post("/introspect", api.clone(), format!("token={access}")),
        String::new(),
    )?;
    both(
        "protected API (GET /api/photos)",
        &|| RequestSpec {
            method: Method::GET,
            path: "/api/photos",
            authorization: format!("Bearer {access}"),
            body: BodySource::Empty,
        },
        String::new(),
    )?;
    Ok(rows)
}

/// Lifetimes for the throughput runs: the defaults, except codes live 10
/// minutes so that codes minted before a long run are still valid.
fn bench_lifetimes() -> Lifetimes {
    Lifetimes::default().with_code(time::Duration::minutes(10))
}

fn throughput_memory(
    args: &Args,
    server_rt: &Runtime,
    load_rt: &Runtime,
) -> Result<Vec<Row>, BoxError> {
    println!();
    println!("## HTTP, memory store");
    // The store `photo-provider --store memory` opens: the demo clients and
    // a sweeper every `photobook::store::SWEEP_EVERY`.
    let memory = Arc::new(MemoryStore::with_clients(apps::clients()));
    let _sweeper = {
        let _guard = server_rt.enter();
        memory.spawn_sweeper(photobook::store::SWEEP_EVERY)
    };
    let store: Arc<dyn tessera::Store> = memory;
    let server = apps::server(store, bench_lifetimes())?;
    let provider = serve(server_rt, apps::provider_app(server.clone())?)?;
    let bare = serve(server_rt, apps::bare_app())?;
    scenarios(
        &server,
        provider,
        Some(bare),
        args,
        load_rt,
        Plan {
            mint_concurrency: 1,
            code_margin: 2.5,
            token_only: false,
        },
    )
}

/// The provider issuing JWT access tokens (RFC 9068, ES256 and EdDSA)
/// beside the same provider issuing opaque ones, each on a memory store of
/// its own, alternating slices in one run: token endpoint and protected
/// API req/s, JWT as a ratio of opaque.
fn throughput_jwt(args: &Args, server_rt: &Runtime, load_rt: &Runtime) -> Result<(), BoxError> {
    println!();
    println!("## HTTP, JWT access tokens beside opaque ones (memory store)");
    println!();
    let start = |keys: Option<Arc<dyn tessera::KeySet>>| -> Result<(Server, SocketAddr), BoxError> {
        let memory = Arc::new(MemoryStore::with_clients(apps::clients()));
        let store: Arc<dyn tessera::Store> = memory;
        let server = apps::server_with_keys(store, bench_lifetimes(), keys)?;
        let addr = serve(server_rt, apps::provider_app(server.clone())?)?;
        Ok((server, addr))
    };
    let (opaque_server, opaque) = start(None)?;
    let (opaque_access, _) = load_rt.block_on(apps::CodeMinter::new(opaque_server).tokens())?;
    let backup = apps::basic("backup-job", BACKUP_SECRET);
    println!("| scenario | opaque req/s | JWT req/s | JWT / opaque | server µs/req opaque | JWT |");
    println!("|---|---|---|---|---|---|");
    for alg in [tessera::JwsAlgorithm::Es256, tessera::JwsAlgorithm::EdDsa] {
        let keys: Arc<dyn tessera::KeySet> =
            Arc::new(tessera::RotatingKeys::generate(alg, &tessera::OsRandom));
        let (jwt_server, jwt) = start(Some(keys))?;
        let (jwt_access, _) = load_rt.block_on(apps::CodeMinter::new(jwt_server).tokens())?;
        let cc = || post("/token", backup.clone(), CC_BODY.into());
        eprintln!("tessera-bench: running client_credentials, opaque vs JWT {alg}");
        let (o, j) = drive_pair(load_rt, opaque, Some(jwt), &cc, &cc, args)?;
        let api = |token: &str| {
            let authorization = format!("Bearer {token}");
            move || RequestSpec {
                method: Method::GET,
                path: "/api/photos",
                authorization: authorization.clone(),
                body: BodySource::Empty,
            }
        };
        eprintln!("tessera-bench: running GET /api/photos, opaque vs JWT {alg}");
        let (ao, aj) = drive_pair(
            load_rt,
            opaque,
            Some(jwt),
            &api(&opaque_access),
            &api(&jwt_access),
            args,
        )?;
        for (name, o, j) in [
            ("client_credentials (POST /token)", o, j),
            ("protected API (GET /api/photos)", ao, aj),
        ] {
            let j = j.ok_or("no JWT run")?;
            println!(
                "| {name}, {alg} | {:.0} | {:.0} | {:.2}x | {:.1} | {:.1} |",
                o.run.rps(),
                j.run.rps(),
                j.run.rps() / o.run.rps(),
                o.server_us_per_request,
                j.server_us_per_request
            );
        }
    }
    Ok(())
}

/// Pins the Redis server to the server core when it runs on this machine.
fn pin_redis(url: &str, load_rt: &Runtime, cores: Cores) -> String {
    let Some(core) = cores.server else {
        return "redis-server not pinned".into();
    };
    let pid: Result<u32, BoxError> = load_rt.block_on(async {
        let client = redis::Client::open(url)?;
        let mut con = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut con)
            .await?;
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| "no process_id in INFO server".into())
    });
    let Ok(pid) = pid else {
        return "redis-server not pinned (its pid is unknown)".into();
    };
    let is_local = std::path::Path::new(&format!("/proc/{pid}")).exists();
    let pinned = is_local
        && std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", &core.id.to_string(), &pid.to_string()])
            .output()
            .is_ok_and(|o| o.status.success());
    if pinned {
        format!(
            "redis-server (pid {pid}) pinned with taskset to cpu{}, beside the server",
            core.id
        )
    } else {
        format!("redis-server (pid {pid}) not pinned (taskset failed or not local)")
    }
}

fn throughput_redis(
    url: &str,
    args: &Args,
    server_rt: &Runtime,
    load_rt: &Runtime,
    cores: Cores,
) -> Result<Vec<Row>, BoxError> {
    println!();
    println!("## HTTP, Redis store");
    println!();
    println!("- {}", pin_redis(url, load_rt, cores));
    // Opened as `photo-provider --store URL` opens it (seeding the demo
    // clients into an empty store), from the server runtime, so that the
    // connection's driver task runs on the server's core.
    let spec = photobook::StoreSpec::Redis(url.to_owned());
    let store = server_rt.block_on(photobook::store::open(&spec))?;
    let server = apps::server(store, bench_lifetimes())?;
    let provider = serve(server_rt, apps::provider_app(server.clone())?)?;
    println!(
        "- bare+SET: the minimal work plus one `SET <sha256 of the token> <client scope> EX 3600` through one multiplexed connection (`ConnectionManager`, as the store uses) to the same Redis"
    );
    let conn = server_rt.block_on(async {
        let client = redis::Client::open(url)?;
        redis::aio::ConnectionManager::new(client).await
    })?;
    let bare = serve(server_rt, apps::bare_redis_app(conn))?;
    scenarios(
        &server,
        provider,
        Some(bare),
        args,
        load_rt,
        Plan {
            mint_concurrency: 64,
            code_margin: 1.5,
            token_only: false,
        },
    )
}

/// One Redis Cluster: its masters' count and the provider's rows.
#[derive(Debug)]
struct ClusterRun {
    masters: usize,
    rows: Vec<Row>,
}

/// The provider on a Redis Cluster (the demo clients put into it as
/// `photobook::store::open` seeds them), every node pinned beside the server.
fn throughput_cluster(
    urls: &str,
    args: &Args,
    server_rt: &Runtime,
    load_rt: &Runtime,
    cores: Cores,
) -> Result<ClusterRun, BoxError> {
    let nodes: Vec<String> = urls
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    let first = nodes.first().ok_or("--redis-cluster: no node URL")?.clone();
    let masters = load_rt.block_on(async {
        let client = redis::Client::open(first.as_str())?;
        let mut con = client.get_multiplexed_async_connection().await?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut con)
            .await?;
        Ok::<_, BoxError>(text.lines().filter(|l| l.contains("master")).count())
    })?;
    println!();
    println!("## HTTP, Redis Cluster store, {masters} master(s)");
    println!();
    for node in &nodes {
        println!("- {}", pin_redis(node, load_rt, cores));
    }
    let prefix = format!("tessera-bench-{}:", std::process::id());
    let store = server_rt.block_on(async {
        let store = tessera_redis::RedisStore::connect_cluster(nodes.iter().cloned())
            .prefix(prefix)
            .await?;
        for client in apps::clients() {
            store.put_client(&client).await?;
        }
        Ok::<_, BoxError>(store)
    })?;
    let store: Arc<dyn tessera::Store> = Arc::new(store);
    let server = apps::server(store, bench_lifetimes())?;
    let provider = serve(server_rt, apps::provider_app(server.clone())?)?;
    let rows = scenarios(
        &server,
        provider,
        None,
        args,
        load_rt,
        Plan {
            mint_concurrency: 64,
            code_margin: 1.5,
            token_only: true,
        },
    )?;
    Ok(ClusterRun { masters, rows })
}

fn report_clusters(clusters: &[ClusterRun]) {
    if clusters.is_empty() {
        return;
    }
    println!();
    println!("Redis Cluster (every node pinned beside the server; the provider alone):");
    println!();
    println!("| masters | scenario | req/s | p50 | p99 | CPU/req (server threads) |");
    println!("|---:|---|---:|---:|---:|---:|");
    for c in clusters {
        for r in &c.rows {
            let p = &r.provider;
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} |",
                c.masters,
                r.name,
                p.run.rps(),
                p.run.p50_us(),
                p.run.p99_us(),
                p.server_us_per_request
            );
        }
    }
}

/// Pins the PostgreSQL server (its postmaster, whose forked backends
/// inherit the mask) to the server core when it runs on this machine;
/// called before the store and the bare handler open their connections.
fn pin_postgres(url: &str, load_rt: &Runtime, cores: Cores) -> String {
    let Some(core) = cores.server else {
        return "PostgreSQL not pinned".into();
    };
    let backend: Result<i32, BoxError> = load_rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        Ok(pid)
    });
    let Ok(backend) = backend else {
        return "PostgreSQL not pinned (its backend pid is unknown)".into();
    };
    // The backend's parent is the postmaster: field 4 of /proc/PID/stat.
    let postmaster = std::fs::read_to_string(format!("/proc/{backend}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            rest.split_whitespace().nth(1)?.parse::<u32>().ok()
        });
    let Some(pid) = postmaster else {
        return "PostgreSQL not pinned (not local, or its postmaster is unknown)".into();
    };
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &core.id.to_string(), &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    if pinned {
        format!(
            "PostgreSQL's postmaster (pid {pid}) pinned with taskset to cpu{}, beside the server; the backends it forks after this inherit it",
            core.id
        )
    } else {
        format!("PostgreSQL (postmaster pid {pid}) not pinned (taskset failed)")
    }
}

/// Connections of the bare handler's pool: the PostgreSQL store's default.
const BARE_PG_CONNECTIONS: u32 = 10;

fn throughput_postgres(
    url: &str,
    args: &Args,
    server_rt: &Runtime,
    load_rt: &Runtime,
    cores: Cores,
) -> Result<Vec<Row>, BoxError> {
    println!();
    println!("## HTTP, PostgreSQL store");
    println!();
    println!("- {}", pin_postgres(url, load_rt, cores));
    println!(
        "- bare: the minimal work plus one `INSERT INTO {}` (SHA-256 of the token, expiry) through a sqlx pool of {BARE_PG_CONNECTIONS} connections to the same database",
        apps::BARE_TABLE
    );
    // Opened as `photo-provider --store URL` opens it (migrations, the demo
    // clients seeded into an empty store, the sweeper), from the server
    // runtime, so that its pool's connections are driven on the server's core.
    let spec = photobook::StoreSpec::Postgres(url.to_owned());
    let store = server_rt.block_on(photobook::store::open(&spec))?;
    let pool = server_rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(BARE_PG_CONNECTIONS)
            .connect(url)
            .await?;
        apps::bare_pg_table(&pool).await?;
        Ok::<_, BoxError>(pool)
    })?;
    let server = apps::server(store, bench_lifetimes())?;
    // Open every connection of both pools now, from the server runtime: a
    // sqlx connection's socket belongs to the runtime it was opened on, and
    // the codes are minted from the load thread's.
    server_rt.block_on(async {
        let backup = apps::basic("backup-job", BACKUP_SECRET);
        let request = tessera::HttpRequest::form_post(CC_BODY, Some(&backup));
        let issued = futures::stream::iter(0..256)
            .map(|_| server.token_response(&request))
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        if let Some(Err(e)) = issued.into_iter().find(Result::is_err) {
            return Err(format!("client_credentials on PostgreSQL: {e}").into());
        }
        futures::stream::iter(0..BARE_PG_CONNECTIONS)
            .map(|_| sqlx::query("SELECT pg_sleep(0.05)").execute(&pool))
            .buffer_unordered(BARE_PG_CONNECTIONS as usize)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, BoxError>(())
    })?;
    let provider = serve(server_rt, apps::provider_app(server.clone())?)?;
    let bare = serve(server_rt, apps::bare_pg_app(pool))?;
    scenarios(
        &server,
        provider,
        Some(bare),
        args,
        load_rt,
        Plan {
            mint_concurrency: 32,
            code_margin: 1.5,
            token_only: true,
        },
    )
}

fn fmt_cpu(c: Option<f64>) -> String {
    c.map_or_else(|| "-".into(), |c| format!("{c:.0}%"))
}

/// The provider beside its bare handler, one row per scenario.
fn pair_table(rows: &[Row], bare_name: &str) {
    println!(
        "| scenario | provider req/s | p50 | p99 | CPU/req | {bare_name} req/s | p50 | p99 | CPU/req | provider/bare req/s | bare/provider CPU/req | CPU provider | CPU bare |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for r in rows {
        let p = &r.provider;
        let (bare_cols, ratio, cpu_ratio, cpu_b) = match &r.bare {
            Some(b) => (
                format!(
                    "{:.0} | {:.0} | {:.0} | {:.1}",
                    b.run.rps(),
                    b.run.p50_us(),
                    b.run.p99_us(),
                    b.server_us_per_request
                ),
                format!("{:.2}x", p.run.rps() / b.run.rps().max(1e-9)),
                format!(
                    "{:.2}x",
                    b.server_us_per_request / p.server_us_per_request.max(1e-9)
                ),
                format!("{} / {}", fmt_cpu(b.server_cpu), fmt_cpu(b.load_cpu)),
            ),
            None => ("- | - | - | -".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {bare_cols} | {ratio} | {cpu_ratio} | {} / {} | {cpu_b} |",
            r.name,
            p.run.rps(),
            p.run.p50_us(),
            p.run.p99_us(),
            p.server_us_per_request,
            fmt_cpu(p.server_cpu),
            fmt_cpu(p.load_cpu),
        );
    }
}

fn report_throughput(
    memory: &[Row],
    redis: Option<&Vec<Row>>,
    postgres: Option<&Vec<Row>>,
    args: &Args,
) {
    println!();
    println!("## HTTP results");
    println!();
    println!(
        "req/s over {:?}; latency in µs; CPU/req = on-CPU time of the server threads per answered request, in µs; CPU = server / load-generator threads' on-CPU time in % of one core",
        args.duration
    );
    if !memory.is_empty() {
        println!();
        pair_table(memory, "bare");
    }
    for r in memory
        .iter()
        .chain(redis.into_iter().flatten())
        .chain(postgres.into_iter().flatten())
    {
        if !r.note.is_empty() {
            println!();
            println!("- {}: {}", r.name, r.note);
        }
    }
    if let Some(r) = memory.first()
        && let Some(b) = &r.bare
    {
        let cc = r.provider.run.rps() / b.run.rps().max(1e-9);
        let by_cpu = b.server_us_per_request / r.provider.server_us_per_request.max(1e-9);
        println!();
        println!(
            "client_credentials over HTTP: **{cc:.3}x** the bare handler's req/s (issue 16's bar >= 0.90x: {}); by server CPU per request {by_cpu:.3}x",
            if cc >= 0.90 { "met" } else { "MISSED" }
        );
    }
    if let Some(redis) = redis {
        println!();
        println!(
            "Redis store, beside a bare handler doing the minimal work plus one `SET ... EX` on the same Redis, alternating in the same run:"
        );
        println!();
        pair_table(redis, "bare+SET");
        if let Some(r) = redis.first()
            && let Some(b) = &r.bare
        {
            let cc = r.provider.run.rps() / b.run.rps().max(1e-9);
            println!();
            println!(
                "client_credentials on Redis: **{cc:.2}x** the bare handler plus one Redis round trip (bar >= 0.70x: {})",
                if cc >= 0.70 { "met" } else { "MISSED" }
            );
        }
    }
    if let Some(redis) = redis
        && !memory.is_empty()
    {
        println!();
        println!(
            "| scenario (Redis store) | req/s | p50 | p99 | CPU/req (server threads) | Redis/memory req/s | Redis/bare req/s | CPU server / load |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---|");
        for (r, m) in redis.iter().zip(memory) {
            let p = &r.provider;
            let bare = m
                .bare
                .as_ref()
                .map_or(f64::NAN, |b| p.run.rps() / b.run.rps().max(1e-9));
            println!(
                "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2}x | {:.2}x | {} / {} |",
                r.name,
                p.run.rps(),
                p.run.p50_us(),
                p.run.p99_us(),
                p.server_us_per_request,
                p.run.rps() / m.provider.run.rps().max(1e-9),
                bare,
                fmt_cpu(p.server_cpu),
                fmt_cpu(p.load_cpu),
            );
        }
        println!();
        println!("(redis-server's own CPU is not in CPU/req: it is another process.)");
    }
    if let Some(postgres) = postgres {
        println!();
        println!(
            "PostgreSQL store, beside a bare handler doing the minimal work plus one INSERT into the same database, alternating in the same run:"
        );
        println!();
        pair_table(postgres, "bare+INSERT");
        println!();
        println!(
            "(the PostgreSQL backends' own CPU is not in CPU/req: they are other processes. Statements per grant step: one per store call, counted on the wire by storage-postgres/tests/statements.rs: client_credentials 2 (client, issue), code exchange 3 (client, take code, issue); the bare handler 1.)"
        );
    }
}

// ---- Redis round trips ------------------------------------------------------------

fn report_round_trips(url: &str, args: &Args, load_rt: &Runtime) -> Result<(), BoxError> {
    println!();
    println!("## Redis round trips per operation");
    println!();
    let prefix = format!("tessera-bench-rt-{}:", std::process::id());
    let steps = load_rt.block_on(roundtrips::measure(url, &prefix, args.round_trip_ops))?;
    println!(
        "{} sequential operations per step through the core; commands counted on the wire by a proxy; store calls counted by a wrapper",
        args.round_trip_ops
    );
    println!();
    println!("| operation | store calls | round trips | commands per operation |");
    println!("|---|---:|---:|---|");
    let mut all_one = true;
    for s in &steps {
        all_one &= s.round_trips <= s.store_calls + 0.01;
        println!(
            "| {} | {:.2} | {:.2} | {} |",
            s.name, s.store_calls, s.round_trips, s.commands
        );
    }
    println!();
    println!(
        "at most one round trip per store call (a client lookup the client cache answers costs none): {}",
        if all_one { "met" } else { "MISSED" }
    );
    Ok(())
}

// ---- Soak -------------------------------------------------------------------------

fn report_soak(
    server_rt: &Runtime,
    load_rt: &Runtime,
    duration: Duration,
    args: &Args,
) -> Result<(), BoxError> {
    println!();
    println!("## Soak (memory store)");
    println!();
    println!(
        "client_credentials over HTTP at {} req/s for {:?}; access tokens live 5 s; the store's sweeper runs every second",
        args.soak_rate, duration
    );
    println!();
    let s = memory::soak(
        server_rt,
        load_rt,
        duration,
        args.soak_rate,
        args.concurrency,
    )?;
    let (min, max) = s.steady_range();
    let ratio = max as f64 / (min.max(1)) as f64;
    println!();
    println!(
        "{} requests succeeded, {} failed ({:.0} req/s achieved, {} asked); access token lifetime {:?}",
        s.ok,
        s.failed,
        s.ok as f64 / duration.as_secs_f64(),
        s.rate,
        s.lifetime
    );
    let held = s
        .samples
        .iter()
        .filter(|x| x.at >= s.steady_from)
        .map(|x| x.live_tokens);
    let (held_min, held_max) = (held.clone().min().unwrap_or(0), held.max().unwrap_or(0));
    println!(
        "tokens held (live plus expired-but-unswept) from {:?} on: {held_min} .. {held_max}; without expiry the {} tokens issued would hold about {:.0} MiB more (at ~200 bytes each)",
        s.steady_from,
        s.ok,
        s.ok as f64 * 200.0 / 1048576.0
    );
    println!(
        "RSS from {:?} on: min {:.1} MiB, max {:.1} MiB, **max/min {ratio:.3}** (bar <= 1.10: {})",
        s.steady_from,
        min as f64 / 1048576.0,
        max as f64 / 1048576.0,
        if ratio <= 1.10 { "met" } else { "MISSED" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn args_parse() {
        let a = Args::try_parse_from(["tessera-bench", "--duration", "3s", "--concurrency", "4"]);
        assert!(a.is_ok_and(|a| a.duration == Duration::from_secs(3) && a.concurrency == 4));
    }
}
