//! Memory: bytes per live token in the memory store, and a soak run showing
//! that expiry keeps the resident size flat.

use std::sync::Arc;
use std::time::Duration;

use tessera::{HttpRequest, Lifetimes};
use tessera_memory::MemoryStore;
use tokio::runtime::Runtime;
use tokio::time::Instant;

use crate::apps::{self, BACKUP_SECRET, BoxError, CC_BODY};
use crate::load::{self, BodySource, RequestSpec};
use crate::sys;

/// RSS growth over `n` client-credentials tokens issued through the core.
#[derive(Debug)]
pub struct PerToken {
    pub tokens: usize,
    pub live_tokens: usize,
    pub rss_before: u64,
    pub rss_after: u64,
    pub seconds: f64,
}

impl PerToken {
    pub fn bytes_per_token(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.tokens.max(1) as f64
    }
}

/// Issues `n` client-credentials tokens (1 h lifetime, so all stay live)
/// through `Server::token_response` on one thread and measures RSS around it.
pub fn per_token(n: usize) -> Result<PerToken, BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Arc::new(MemoryStore::with_clients(apps::clients()));
        let server = apps::server(Arc::clone(&store) as _, Lifetimes::default())?;
        let auth = apps::basic("backup-job", BACKUP_SECRET);
        // One token first, so lazily built state (the thread's RNG, the
        // interned token metadata) is not counted per token.
        server
            .token_response(&HttpRequest::form_post(CC_BODY, Some(&auth)))
            .await
            .map_err(|e| format!("client_credentials: {e}"))?;
        let rss_before = sys::rss_bytes();
        let start = Instant::now();
        for _ in 0..n {
            server
                .token_response(&HttpRequest::form_post(CC_BODY, Some(&auth)))
                .await
                .map_err(|e| format!("client_credentials: {e}"))?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let rss_after = sys::rss_bytes();
        Ok(PerToken {
            tokens: n,
            live_tokens: store.stats().access_tokens.saturating_sub(1),
            rss_before,
            rss_after,
            seconds,
        })
    })
}

/// One RSS sample of the soak.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Duration,
    pub rss: u64,
    pub live_tokens: usize,
}

/// The soak's outcome.
#[derive(Debug)]
pub struct Soak {
    pub samples: Vec<Sample>,
    pub steady_from: Duration,
    pub ok: u64,
    pub failed: u64,
    pub rate: u64,
    pub lifetime: Duration,
}

impl Soak {
    /// (min, max) RSS over the steady part.
    pub fn steady_range(&self) -> (u64, u64) {
        let steady = self.samples.iter().filter(|s| s.at >= self.steady_from);
        let min = steady.clone().map(|s| s.rss).min().unwrap_or(0);
        let max = steady.map(|s| s.rss).max().unwrap_or(0);
        (min, max)
    }
}

/// Runs the provider with 5 s access tokens and the store's sweeper (every
/// second) for `duration`, issuing client-credentials tokens over HTTP at
/// `rate` per second, and samples RSS every second.
pub fn soak(
    server_rt: &Runtime,
    load_rt: &Runtime,
    duration: Duration,
    rate: u64,
    concurrency: usize,
) -> Result<Soak, BoxError> {
    let lifetime = Duration::from_secs(5);
    let sweep_every = Duration::from_secs(1);
    let lifetimes = Lifetimes::default().with_access_token(time::Duration::seconds(5));
    let store = Arc::new(MemoryStore::with_clients(apps::clients()));
    let sweeper = {
        let _guard = server_rt.enter();
        store.spawn_sweeper(sweep_every)
    };
    let demo_store: Arc<dyn tessera::Store> = Arc::clone(&store) as _;
    let server = apps::server(demo_store, lifetimes)?;
    let addr = crate::serve(server_rt, apps::provider_app(server)?)?;
    let spec = Arc::new(RequestSpec {
        method: axum::http::Method::POST,
        path: "/token",
        authorization: apps::basic("backup-job", BACKUP_SECRET),
        body: BodySource::Form(CC_BODY.into()),
    });
    // Steady once several lifetimes and sweeps have passed and the
    // allocator has reached its working set.
    let steady_from = Duration::from_secs(30).min(duration / 2);
    let result = load_rt.block_on(async {
        let start = Instant::now();
        let end = start + duration;
        let driver = tokio::spawn(load::run_at_rate(addr, spec, concurrency, rate, end));
        let mut samples = Vec::new();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        println!("| t (s) | RSS (MiB) | tokens held |");
        println!("|---:|---:|---:|");
        loop {
            ticks.tick().await;
            let at = start.elapsed();
            let s = Sample {
                at,
                rss: sys::rss_bytes(),
                live_tokens: store.stats().access_tokens,
            };
            samples.push(s);
            let secs = at.as_secs();
            if secs.is_multiple_of(10) || at >= duration {
                println!(
                    "| {secs} | {:.1} | {} |",
                    s.rss as f64 / 1048576.0,
                    s.live_tokens
                );
            }
            if at >= duration {
                break;
            }
        }
        let (ok, failed) = driver.await.unwrap_or((0, 0));
        (samples, ok, failed)
    });
    sweeper.abort();
    Ok(Soak {
        samples: result.0,
        steady_from,
        ok: result.1,
        failed: result.2,
        rate,
        lifetime,
    })
}
