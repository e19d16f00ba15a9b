//! A flood of anonymous authorization requests against the demo provider
//! (issue 11, DEMO-CONTRACT "Limits against floods"): memory stays bounded,
//! nothing reaches the store, and other users' logins and token requests go
//! on working — on the memory store and on a Redis with `maxmemory` and
//! `noeviction` (where a flood used to fill Redis and turn every token
//! request into a 500).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tessera_conformance::demo::{ALICE, BACKUP_JOB, PRINTSHOP};
use tessera_conformance::flow::{self, Pkce};
use tessera_conformance::provider::{ProviderProcess, locate_binary};
use tessera_conformance::{Ctx, Failure};

/// Requests in the flood, each with a `state` at the 2 KiB limit.
const FLOOD: usize = 20_000;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn flood(ctx: &Ctx) -> Result<(), Failure> {
    let pkce = Pkce::new();
    let state = "s".repeat(2048);
    let url = flow::authorize_url(
        ctx,
        &[
            ("response_type", "code"),
            ("client_id", PRINTSHOP.id),
            ("redirect_uri", PRINTSHOP.redirect_uri.unwrap_or_default()),
            ("state", &state),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::new(format!("client: {e}")))?;
    let failures = stream::iter(0..FLOOD)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            async move {
                // Cookieless, as a flood is.
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => 0usize,
                    _ => 1,
                }
            }
        })
        .buffer_unordered(32)
        .fold(0, |a, b| async move { a + b })
        .await;
    if failures > 0 {
        return Err(Failure::new(format!("{failures} flood requests failed")));
    }
    Ok(())
}

/// After the flood: a person signs in and links PrintShop, and a backup
/// job gets its token.
async fn others_still_work(ctx: &Ctx) -> Result<(), Failure> {
    flow::tokens(ctx, &PRINTSHOP, &ALICE, None).await?;
    flow::client_token(ctx, &BACKUP_JOB, None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_on_the_memory_store_keeps_memory_bounded() {
    let bin = locate_binary("photo-provider").unwrap();
    let provider = ProviderProcess::spawn(&bin, &["--store", "memory"])
        .await
        .unwrap();
    let ctx = Ctx::new(provider.target()).await.unwrap();
    others_still_work(&ctx).await.unwrap();
    let before = rss_kib(provider.pid());
    flood(&ctx).await.unwrap();
    let after = rss_kib(provider.pid());
    others_still_work(&ctx).await.unwrap();
    // Kept, the flood's requests alone would be 20,000 × 2 KiB of state
    // and more (RSS grew from 7 to 502 MiB with 8,000 larger ones).
    let grown = after.saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "RSS grew by {grown} KiB ({before} -> {after}) over {FLOOD} anonymous requests\n{}",
        provider.log_tail()
    );
}

/// A throwaway `redis-server` with a small `maxmemory` and `noeviction`.
struct SmallRedis(Child, u16);

impl Drop for SmallRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_on_a_full_size_redis_stores_nothing() {
    if std::env::var("TESSERA_REDIS_SKIP").is_ok_and(|v| v == "1") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let child =
        Command::new(std::env::var("TESSERA_REDIS_SERVER").unwrap_or("redis-server".into()))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server, or TESSERA_REDIS_SKIP=1)");
    let redis = SmallRedis(child, port);
    for _ in 0..100 {
        if redis_cli(redis.1, &["PING"]) == "PONG" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bin = locate_binary("photo-provider").unwrap();
    let url = format!("redis://127.0.0.1:{}/", redis.1);
    let provider = ProviderProcess::spawn(&bin, &["--store", &url])
        .await
        .unwrap();
    let ctx = Ctx::new(provider.target()).await.unwrap();
    others_still_work(&ctx).await.unwrap();
    let keys_before: u64 = redis_cli(redis.1, &["DBSIZE"]).parse().unwrap_or(0);
    flood(&ctx).await.unwrap();
    let keys_after: u64 = redis_cli(redis.1, &["DBSIZE"]).parse().unwrap_or(0);
    // Kept, 20,000 requests of 2 KiB would need 40 MiB: five times maxmemory.
    assert_eq!(
        keys_before,
        keys_after,
        "the flood wrote to Redis\n{}",
        provider.log_tail()
    );
    others_still_work(&ctx).await.unwrap();
}
