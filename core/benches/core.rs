//! Single-threaded cost of each grant in the core, with the memory store.
//!
//! `cargo bench -p tessera` runs criterion on every operation, then prints
//! each one's median time beside a baseline: the "minimal honest work" of a
//! token endpoint (parse the form and the Basic header, one SHA-256, one
//! 32-byte random token, a JSON body), so the figures read as ratios.
//!
//! The timed closures use `iter_custom`, so setup (minting the refresh
//! tokens a rotation needs) stays outside the measurement, and each run of
//! `iters` operations is awaited inside one `block_on` on a current-thread
//! runtime: no per-iteration runtime overhead is counted. What they measure
//! is the thread's on-CPU time (`CLOCK_THREAD_CPUTIME_ID`; wall time where
//! that is missing), so a busy machine inflates the figures less.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::Criterion;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tessera::CodeChallenge;
use tessera::{
    Action, AuthMethod, AuthorizeOutcome, Client, ClientId, Decision, HttpRequest, Limit,
    MemoryRateLimiter, RedirectUri, Scope, ScopeToken, SecretHash, Server, Subject,
};
use tessera_memory::MemoryStore;

const BACKUP_SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";
const PRINTSHOP_SECRET: &str = "printshop-secret-0123456789abcdef0123456789abcdef";
const API_SECRET: &str = "photo-api-secret-0123456789abcdef0123456789abcd";
const REDIRECT: &str = "http://127.0.0.1:9001/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CC_BODY: &str = "grant_type=client_credentials&scope=photos.read";

/// Measures the calling thread's on-CPU time (`CLOCK_THREAD_CPUTIME_ID`),
/// so that other load on a shared machine does not count; wall time where
/// the clock is missing.
enum Timer {
    Cpu(cpu_time::ThreadTime),
    Wall(Instant),
}

impl Timer {
    fn start() -> Self {
        match cpu_time::ThreadTime::try_now() {
            Ok(t) => Self::Cpu(t),
            Err(_) => Self::Wall(Instant::now()),
        }
    }

    fn elapsed(&self) -> Duration {
        match self {
            Self::Cpu(t) => t.try_elapsed().unwrap_or_default(),
            Self::Wall(t) => t.elapsed(),
        }
    }
}

/// ns/op samples per benchmark, in the order they ran.
static SAMPLES: Mutex<Vec<(&'static str, Vec<f64>)>> = Mutex::new(Vec::new());

fn record(name: &'static str, elapsed: Duration, iters: u64) {
    let per_op = elapsed.as_nanos() as f64 / iters.max(1) as f64;
    let mut all = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    match all.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => v.push(per_op),
        None => all.push((name, vec![per_op])),
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The demo provider's clients (DEMO-CONTRACT.md), with its secrets.
fn server() -> Server {
    let id = |s: &str| ClientId::new(s).unwrap();
    let clients = [
        Client::confidential(
            id("backup-job"),
            "Nightly backup",
            SecretHash::of(BACKUP_SECRET),
        )
        .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse("photos.read").unwrap()),
        Client::confidential(
            id("printshop"),
            "PrintShop",
            SecretHash::of(PRINTSHOP_SECRET),
        )
        .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
        .with_redirect_uri(RedirectUri::new(REDIRECT).unwrap())
        .with_grant_types(["authorization_code", "refresh_token"])
        .with_scope(Scope::parse("photos.read profile").unwrap()),
        Client::confidential(id("photo-api"), "Photo API", SecretHash::of(API_SECRET))
            .with_introspect_any_token(true),
    ];
    let store = Arc::new(MemoryStore::with_clients(clients));
    // As a deployment runs it (README, the demo): a sweeper on its own
    // schedule, which turns off the store's sweep as it is written. Its
    // hour never comes due within a run: the figures are the operations'
    // own cost, as the sweep's share depends on how many grants expire.
    drop(store.spawn_sweeper(Duration::from_secs(3600)));
    Server::builder()
        .issuer("http://127.0.0.1:9000")
        .shared_store(store)
        .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
        .scope(ScopeToken::new("profile").unwrap(), "See your profile")
        // The built-in limiter, but one owner (alice) may run the code flow
        // as fast as the bench can: a server's flows come from many users,
        // each well under `Action::ConsentPrompt`'s 60 a minute, and every
        // prompt is still counted.
        .rate_limiter(MemoryRateLimiter::default().with_limit(
            Action::ConsentPrompt,
            Limit::new(u32::MAX, time::Duration::minutes(1)),
        ))
        .build()
        .unwrap()
}

fn auth_query() -> String {
    format!(
        "response_type=code&client_id=printshop&redirect_uri={}&scope=photos.read%20profile&state=af0ifjsldkj&code_challenge={}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        CodeChallenge::s256(VERIFIER)
    )
}

/// The code in a redirect's query. The client's side of the dance, kept
/// cheap so that the figures are the server's: a code is base64url with a
/// prefix, so it is never percent-encoded.
fn code_of(location: &str) -> String {
    let query = location.split_once('?').unwrap().1;
    let start = query.find("code=").unwrap() + "code=".len();
    let code = &query[start..];
    code[..code.find('&').unwrap_or(code.len())].to_owned()
}

struct Fixture {
    server: Server,
    alice: Subject,
    query: String,
    printshop: String,
    exchange_tail: String,
}

impl Fixture {
    fn new() -> Self {
        Self {
            server: server(),
            alice: Subject::new("alice"),
            query: auth_query(),
            printshop: basic("printshop", PRINTSHOP_SECRET),
            exchange_tail: format!(
                "&redirect_uri={}&code_verifier={VERIFIER}",
                url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
            ),
        }
    }

    /// authorize (owner logged in) -> consent page -> decide(Allow) -> the code.
    async fn code(&self) -> String {
        let owner = &self.alice;
        let handle = match self.server.authorize(&self.query, Some(owner)).await {
            AuthorizeOutcome::Consent(p) => p.handle,
            other => panic!("expected a consent prompt, got {other:?}"),
        };
        match self.server.decide(&handle, owner, Decision::Allow).await {
            AuthorizeOutcome::Redirect(r) => code_of(r.location()),
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    /// The code exchanged at the token endpoint: (access token, refresh token).
    async fn exchange(&self, code: &str) -> (String, String) {
        let body = format!(
            "grant_type=authorization_code&code={code}{}",
            self.exchange_tail
        );
        let r = self
            .server
            .token_response(&HttpRequest::form_post(&body, Some(&self.printshop)))
            .await
            .unwrap();
        (r.access_token, r.refresh_token.unwrap())
    }

    async fn refresh(&self, refresh_token: &str) -> String {
        let body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
        let r = self
            .server
            .token_response(&HttpRequest::form_post(&body, Some(&self.printshop)))
            .await
            .unwrap();
        r.refresh_token.unwrap()
    }
}

/// The minimal honest work of a token endpoint, without Tessera: parse the
/// form and the Basic header, check the secret with one SHA-256, mint one
/// 32-byte random token, answer a JSON body.
fn minimal(body: &str, authorization: &str, secret_hash: &[u8; 32]) -> Option<String> {
    let mut grant_type = None;
    let mut scope = None;
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        match &*k {
            "grant_type" => grant_type = Some(v),
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    let grant_type = grant_type?;
    let raw = STANDARD
        .decode(authorization.strip_prefix("Basic ")?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (_id, secret) = text.split_once(':')?;
    if Sha256::digest(secret.as_bytes()).as_slice() != secret_hash {
        return None;
    }
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let token = URL_SAFE_NO_PAD.encode(random);
    serde_json::to_string(&serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope.as_deref().unwrap_or(&grant_type),
    }))
    .ok()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The store's sweeper is spawned on it (`server`).
    let _entered = rt.enter();
    let rt = &rt;
    let mut g = c.benchmark_group("core");

    let backup = basic("backup-job", BACKUP_SECRET);
    let backup_hash: [u8; 32] = Sha256::digest(BACKUP_SECRET.as_bytes()).into();
    g.bench_function("baseline_minimal_token_endpoint", |b| {
        b.iter_custom(|iters| {
            let start = Timer::start();
            for _ in 0..iters {
                black_box(minimal(black_box(CC_BODY), black_box(&backup), &backup_hash).unwrap());
            }
            let t = start.elapsed();
            record("baseline_minimal_token_endpoint", t, iters);
            t
        })
    });

    let f = Fixture::new();
    g.bench_function("client_credentials", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Timer::start();
                for _ in 0..iters {
                    let request = HttpRequest::form_post(black_box(CC_BODY), Some(&backup));
                    black_box(f.server.token_response(&request).await.unwrap());
                }
                let t = start.elapsed();
                record("client_credentials", t, iters);
                t
            })
        })
    });

    let f = Fixture::new();
    g.bench_function("code_issue_and_exchange_pkce", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Timer::start();
                for _ in 0..iters {
                    let code = f.code().await;
                    black_box(f.exchange(&code).await);
                }
                let t = start.elapsed();
                record("code_issue_and_exchange_pkce", t, iters);
                t
            })
        })
    });

    // Rotations run along chains of ROTATIONS per refresh family, minted
    // before the clock starts, so no family's retired list grows without end.
    const ROTATIONS: u64 = 8;
    let f = Fixture::new();
    g.bench_function("refresh_rotation", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let families = iters.div_ceil(ROTATIONS);
                let mut heads = Vec::with_capacity(families as usize);
                for _ in 0..families {
                    let code = f.code().await;
                    heads.push(f.exchange(&code).await.1);
                }
                let start = Timer::start();
                let mut left = iters;
                for head in heads {
                    let mut token = head;
                    for _ in 0..ROTATIONS.min(left) {
                        token = f.refresh(&token).await;
                    }
                    left = left.saturating_sub(ROTATIONS);
                    black_box(token);
                }
                let t = start.elapsed();
                record("refresh_rotation", t, iters);
                t
            })
        })
    });

    let f = Fixture::new();
    let (access, _) = rt.block_on(async { f.exchange(&f.code().await).await });
    let introspect_body = format!("token={access}");
    let api = basic("photo-api", API_SECRET);
    g.bench_function("introspection", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Timer::start();
                for _ in 0..iters {
                    let request = HttpRequest::form_post(&introspect_body, Some(&api));
                    let r = f
                        .server
                        .handle(tessera::Endpoint::Introspection, black_box(&request))
                        .await;
                    debug_assert!(r.body.starts_with(br#"{"active":true"#));
                    black_box(r);
                }
                let t = start.elapsed();
                record("introspection", t, iters);
                t
            })
        })
    });

    let bearer = format!("Bearer {access}");
    g.bench_function("verify_bearer", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Timer::start();
                for _ in 0..iters {
                    black_box(
                        f.server
                            .verify_bearer(black_box(Some(&bearer)), None)
                            .await
                            .unwrap(),
                    );
                }
                let t = start.elapsed();
                record("verify_bearer", t, iters);
                t
            })
        })
    });
    g.finish();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The bars of issue 6, in ns per operation.
fn bars() -> BTreeMap<&'static str, f64> {
    BTreeMap::from([
        ("client_credentials", 2_000.0),
        ("code_issue_and_exchange_pkce", 5_000.0),
    ])
}

fn summary(sample_size: usize) {
    let mut all = SAMPLES.lock().unwrap_or_else(|p| p.into_inner());
    // Criterion warms up first (few, growing runs), then takes `sample_size`
    // samples: the median of the last ones is the measurement.
    let mut rows: Vec<(&str, f64)> = all
        .iter_mut()
        .map(|(name, v)| {
            let keep = v.len().min(sample_size);
            let start = v.len() - keep;
            (*name, median(&mut v[start..]))
        })
        .collect();
    let Some(&(_, base)) = rows
        .iter()
        .find(|(n, _)| *n == "baseline_minimal_token_endpoint")
    else {
        return;
    };
    let bars = bars();
    println!();
    println!(
        "tessera core, memory store, one thread: on-CPU time per operation (median of criterion samples)"
    );
    println!(
        "{:<34} {:>12} {:>10} {:>16}",
        "operation", "us/op", "x baseline", "bar"
    );
    for (name, ns) in rows.drain(..) {
        let bar = match bars.get(name) {
            Some(&limit) => format!(
                "<= {:.0} us {}",
                limit / 1000.0,
                if ns <= limit { "met" } else { "MISSED" }
            ),
            None => String::new(),
        };
        println!(
            "{:<34} {:>12.3} {:>10.2} {:>16}",
            name,
            ns / 1000.0,
            ns / base,
            bar
        );
    }
}

/// `TESSERA_BENCH_OPS=OPERATION:N cargo bench -p tessera --bench core`
/// skips criterion and runs N operations inside [`run_ops`], so that
/// `valgrind --tool=callgrind --toggle-collect='*run_ops*'` counts the
/// instructions of exactly N operations, setup excluded: a figure that other
/// load on the machine cannot disturb (before/after comparisons).
fn ops_mode(spec: &str) {
    let (op, n) = spec.split_once(':').unwrap_or((spec, "10000"));
    let n: u64 = n.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let f = Fixture::new();
    let backup = basic("backup-job", BACKUP_SECRET);
    let backup_hash: [u8; 32] = Sha256::digest(BACKUP_SECRET.as_bytes()).into();
    let (access, _) = rt.block_on(async { f.exchange(&f.code().await).await });
    let mut heads = Vec::new();
    if op == "refresh_rotation" {
        for _ in 0..n {
            heads.push(rt.block_on(async { f.exchange(&f.code().await).await.1 }));
        }
    }
    let introspect_body = format!("token={access}");
    let api = basic("photo-api", API_SECRET);
    let bearer = format!("Bearer {access}");
    let inputs = OpsInputs {
        f: &f,
        backup: &backup,
        backup_hash: &backup_hash,
        heads,
        introspect_body: &introspect_body,
        api: &api,
        bearer: &bearer,
    };
    let start = Timer::start();
    run_ops(&rt, op, n, inputs);
    let t = start.elapsed();
    println!(
        "{op}: {n} operations, {:.3} us/op",
        t.as_nanos() as f64 / 1000.0 / n as f64
    );
}

struct OpsInputs<'a> {
    f: &'a Fixture,
    backup: &'a str,
    backup_hash: &'a [u8; 32],
    heads: Vec<String>,
    introspect_body: &'a str,
    api: &'a str,
    bearer: &'a str,
}

#[inline(never)]
fn run_ops(rt: &tokio::runtime::Runtime, op: &str, n: u64, i: OpsInputs<'_>) {
    rt.block_on(ops(op, n, i));
}

async fn ops(op: &str, n: u64, i: OpsInputs<'_>) {
    let f = i.f;
    match op {
        "baseline" => {
            for _ in 0..n {
                black_box(minimal(black_box(CC_BODY), i.backup, i.backup_hash).unwrap());
            }
        }
        "client_credentials" => {
            for _ in 0..n {
                let request = HttpRequest::form_post(black_box(CC_BODY), Some(i.backup));
                black_box(f.server.token_response(&request).await.unwrap());
            }
        }
        "code_issue_and_exchange_pkce" => {
            for _ in 0..n {
                let code = f.code().await;
                black_box(f.exchange(&code).await);
            }
        }
        "refresh_rotation" => {
            for head in i.heads {
                black_box(f.refresh(&head).await);
            }
        }
        "introspection" => {
            for _ in 0..n {
                let request = HttpRequest::form_post(i.introspect_body, Some(i.api));
                black_box(
                    f.server
                        .handle(tessera::Endpoint::Introspection, black_box(&request))
                        .await,
                );
            }
        }
        "verify_bearer" => {
            for _ in 0..n {
                black_box(f.server.verify_bearer(Some(i.bearer), None).await.unwrap());
            }
        }
        other => panic!("unknown operation {other}"),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("TESSERA_BENCH_OPS") {
        ops_mode(&spec);
        return;
    }
    let sample_size = 60;
    let mut c = Criterion::default()
        .sample_size(sample_size)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary(sample_size);
}
