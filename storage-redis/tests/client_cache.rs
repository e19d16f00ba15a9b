//! The client cache on real Redis: a client changed or removed through one
//! store is seen by another store within the invalidation's delivery (not
//! the TTL), on one server and on a cluster; a write that does not publish
//! is seen within the TTL; a lost subscription empties the cache; the
//! cache stays within its capacity; and readers racing a writer end on the
//! writer's last version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Target, Throwaway, unique_prefix};
use tessera::{Client, ClientId, ClientRegistry};
use tessera_redis::RedisStore;

fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

async fn store(target: &Target, prefix: &str, ttl: Duration) -> RedisStore {
    match target {
        Target::Standalone(url) => RedisStore::connect(url.as_str()),
        Target::Cluster(urls) => RedisStore::connect_cluster(urls.iter().cloned()),
    }
    .prefix(prefix)
    .command_timeout(Duration::from_secs(5))
    .client_cache_ttl(ttl)
    .await
    .expect("connect")
}

/// Polls `b` until `done` holds for its answer; the time it took.
async fn seen_within(
    b: &RedisStore,
    id: &ClientId,
    limit: Duration,
    done: impl Fn(Option<&Client>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = b.client(id).await.unwrap();
        if done(got.as_deref()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "not seen within {limit:?}: still {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads `id` through `store` until the copy stays cached. The writer's
/// `PUBLISH` reaches every subscriber, the reader included, and may be
/// handled after the reader's first `GET` (dropping the fresh copy): a
/// correct outcome, so the test waits it out rather than racing it.
async fn cached_after_reads(store: &RedisStore, id: &ClientId, name: &str) {
    let start = Instant::now();
    loop {
        assert_eq!(store.client(id).await.unwrap().unwrap().name, name);
        if store.cached_clients() == 1 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never cached: the invalidation subscription is not up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Changes and removals through `a` reach `b`'s cache by pub/sub: far
/// sooner than the (long) TTL, which they would otherwise wait for.
async fn changes_reach_the_other_store(target: Target) {
    let prefix = unique_prefix();
    let ttl = Duration::from_secs(600);
    let a = store(&target, &prefix, ttl).await;
    let b = store(&target, &prefix, ttl).await;
    let cid = id("photo-app");
    a.put_client(&Client::public(cid.clone(), "v1"))
        .await
        .unwrap();
    cached_after_reads(&b, &cid, "v1").await;

    a.put_client(&Client::public(cid.clone(), "v2"))
        .await
        .unwrap();
    let took = seen_within(&b, &cid, Duration::from_secs(2), |c| {
        c.is_some_and(|c| c.name == "v2")
    })
    .await;
    eprintln!("change seen after {took:?}");
    // The writer's own copy is dropped before it returns.
    assert_eq!(a.client(&cid).await.unwrap().unwrap().name, "v2");

    a.remove_client(&cid).await.unwrap();
    assert!(a.client(&cid).await.unwrap().is_none());
    let took = seen_within(&b, &cid, Duration::from_secs(2), |c| c.is_none()).await;
    eprintln!("removal seen after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_store_reaches_the_other_standalone() {
    let Some(t) = Target::standalone() else {
        return;
    };
    changes_reach_the_other_store(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_store_reaches_the_other_cluster() {
    let Some(t) = Target::cluster() else {
        return;
    };
    changes_reach_the_other_store(t).await;
}

/// A client key written behind the stores' backs (no PUBLISH) is answered
/// from the cache at most for the TTL.
async fn the_ttl_bounds_what_invalidation_misses(target: Target) {
    let prefix = unique_prefix();
    let ttl = Duration::from_millis(1500);
    let a = store(&target, &prefix, ttl).await;
    let cid = id("quiet-app");
    a.put_client(&Client::public(cid.clone(), "v1"))
        .await
        .unwrap();
    // The store hears its own publication too (dropping a copy it no
    // longer has): let that pass before caching.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.client(&cid).await.unwrap().unwrap().name, "v1");
    let cached_at = Instant::now();
    let mut raw = target.raw().await;
    let json = serde_json::to_string(&Client::public(cid.clone(), "v2")).unwrap();
    let () = raw
        .query(
            redis::cmd("SET")
                .arg(format!("{prefix}client:quiet-app"))
                .arg(json),
        )
        .await;
    // Still the cached copy right after (the write was not published)...
    if cached_at.elapsed() < ttl / 2 {
        assert_eq!(a.client(&cid).await.unwrap().unwrap().name, "v1");
    }
    // ...and the new one once the copy is older than the TTL.
    seen_within(&a, &cid, ttl + Duration::from_secs(1), |c| {
        c.is_some_and(|c| c.name == "v2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_bounds_staleness_standalone() {
    let Some(t) = Target::standalone() else {
        return;
    };
    the_ttl_bounds_what_invalidation_misses(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_bounds_staleness_cluster() {
    let Some(t) = Target::cluster() else {
        return;
    };
    the_ttl_bounds_what_invalidation_misses(t).await;
}

/// When the subscription is cut (here by the server: `CLIENT KILL TYPE
/// pubsub`), the cache is emptied and bypassed until it is back, so an
/// unpublished write made meanwhile is seen at once; then caching resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_empties_the_cache() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let server = Throwaway::start(&bin);
    let target = Target::Standalone(server.url());
    let prefix = unique_prefix();
    let a = store(&target, &prefix, Duration::from_secs(600)).await;
    let cid = id("cut-app");
    a.put_client(&Client::public(cid.clone(), "v1"))
        .await
        .unwrap();
    cached_after_reads(&a, &cid, "v1").await;

    let mut admin = server.admin();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut admin)
        .unwrap();
    assert_eq!(killed, 1, "the store's one subscription");
    let start = Instant::now();
    while a.cached_clients() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "cache not emptied"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let json = serde_json::to_string(&Client::public(cid.clone(), "v2")).unwrap();
    let () = redis::cmd("SET")
        .arg(format!("{prefix}client:cut-app"))
        .arg(json)
        .query(&mut admin)
        .unwrap();
    assert_eq!(a.client(&cid).await.unwrap().unwrap().name, "v2");

    // The subscription comes back (a backoff of 50 ms first), and with it the cache.
    let start = Instant::now();
    loop {
        let _ = a.client(&cid).await.unwrap();
        if a.cached_clients() == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never resubscribed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let subscribers: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query(&mut admin)
        .unwrap();
    assert_eq!(subscribers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_holds_at_most_its_capacity() {
    let Some(t) = Target::standalone() else {
        return;
    };
    let Target::Standalone(url) = &t else {
        unreachable!()
    };
    let prefix = unique_prefix();
    let store = RedisStore::connect(url.as_str())
        .prefix(&prefix)
        .client_cache_capacity(50)
        .await
        .unwrap();
    for i in 0..200 {
        let c = Client::public(id(&format!("app-{i}")), "app");
        store.put_client(&c).await.unwrap();
    }
    // Let the store hear its own 200 publications before it caches.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 0..2 {
        for i in 0..200 {
            let c = store.client(&id(&format!("app-{i}"))).await.unwrap();
            assert!(c.is_some(), "round {round}: app-{i}");
            assert!(store.cached_clients() <= 50);
        }
    }
    assert_eq!(store.cached_clients(), 50);
    // Unknown ids (anyone can send them) are not cached at all.
    let empty = RedisStore::connect(url.as_str())
        .prefix(unique_prefix())
        .await
        .unwrap();
    for i in 0..500 {
        assert!(
            empty
                .client(&id(&format!("nobody-{i}")))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(empty.cached_clients(), 0);
    // Off: nothing is cached.
    let off = RedisStore::connect(url.as_str())
        .prefix(&prefix)
        .client_cache_capacity(0)
        .await
        .unwrap();
    assert!(off.client(&id("app-1")).await.unwrap().is_some());
    assert_eq!(off.cached_clients(), 0);
}

/// Readers on one store race a writer on another that replaces the client
/// 200 times: a reader may see an older version for as long as its
/// invalidation is on the way, but once the writer is done every reader
/// sees the last version promptly (no read that raced an invalidation
/// left an old version cached).
async fn racing_readers_end_on_the_last_version(target: Target) {
    let prefix = unique_prefix();
    let ttl = Duration::from_secs(600);
    let writer = store(&target, &prefix, ttl).await;
    let reader = Arc::new(store(&target, &prefix, ttl).await);
    let cid = id("raced-app");
    writer
        .put_client(&Client::public(cid.clone(), "0"))
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let reader = Arc::clone(&reader);
            let stop = Arc::clone(&stop);
            let cid = cid.clone();
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let c = reader.client(&cid).await.unwrap().unwrap();
                    assert!(c.name.parse::<u32>().unwrap() <= 200);
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    for v in 1..=200u32 {
        writer
            .put_client(&Client::public(cid.clone(), v.to_string()))
            .await
            .unwrap();
    }
    let took = seen_within(&reader, &cid, Duration::from_secs(2), |c| {
        c.is_some_and(|c| c.name == "200")
    })
    .await;
    // Stays on the last version: nothing older was cached after its invalidation.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..50 {
        assert_eq!(reader.client(&cid).await.unwrap().unwrap().name, "200");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    eprintln!("{reads} racing reads; last version seen after {took:?}");
    assert!(reads > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_readers_end_on_the_last_version_standalone() {
    let Some(t) = Target::standalone() else {
        return;
    };
    racing_readers_end_on_the_last_version(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_readers_end_on_the_last_version_cluster() {
    let Some(t) = Target::cluster() else {
        return;
    };
    racing_readers_end_on_the_last_version(t).await;
}
