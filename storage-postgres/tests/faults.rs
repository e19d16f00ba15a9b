//! Faults: the database stopped, crashed or hanging under use. Every call
//! ends within the command timeout with `StoreError::Unavailable` (never a
//! hang, never a panic, never another error), and the same store works
//! again once the database is back. Each test runs its own throwaway
//! cluster (postgres-up.sh), so stopping it disturbs no other test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, Proxy, code, key, now, tokens};
use tessera::storage::{CodeTake, GrantStore};
use tessera::{ClientId, ClientRegistry, StoreError, TokenKind};
use tessera_postgres::{ConnectError, PostgresStore};

/// The store's bound on one call in these tests.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// Scheduling slack on 2 busy cores.
const SLACK: Duration = Duration::from_millis(1500);

async fn store_on(url: &str) -> PostgresStore {
    PostgresStore::connect(url)
        .schema("faults")
        .command_timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(20))
        .await
        .unwrap()
}

/// A full code step (put, take) works within `limit`; returns how long it took to.
async fn works_again_within(store: &PostgresStore, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let now = now();
        let c = key(TokenKind::Code, common::grant());
        let ok = store.put_code(c, code(now, 60)).await.is_ok()
            && matches!(store.take_code(c, now).await, Ok(CodeTake::Taken(_)));
        if ok {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: the store did not work again within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every kind of call, while the database is down: Unavailable, each within
/// the bound. The calls run at once (each waits for its own bound).
async fn all_unavailable(store: &PostgresStore, what: &str) {
    let now = now();
    let g = common::grant();
    let c = key(TokenKind::Code, g);
    let (a, r, t) = tokens(g, now, true);
    let r = r.unwrap();
    let id = ClientId::new("printshop").unwrap();
    type Probe =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;
    let s = store.clone();
    let probes: Vec<(&str, Probe)> = vec![
        ("put_code", {
            let s = s.clone();
            Box::pin(async move { s.put_code(c, code(now, 60)).await })
        }),
        ("take_code", {
            let s = s.clone();
            Box::pin(async move { s.take_code(c, now).await.map(drop) })
        }),
        ("issue", {
            let (s, t) = (s.clone(), t.clone());
            Box::pin(async move { s.issue(g, t).await.map(drop) })
        }),
        ("access_token", {
            let s = s.clone();
            Box::pin(async move { s.access_token(a, now).await.map(drop) })
        }),
        ("refresh_token", {
            let s = s.clone();
            Box::pin(async move { s.refresh_token(r, now).await.map(drop) })
        }),
        ("rotate_refresh", {
            let s = s.clone();
            Box::pin(async move { s.rotate_refresh(r, t, now).await.map(drop) })
        }),
        ("revoke_grant", {
            let s = s.clone();
            Box::pin(async move { s.revoke_grant(g).await })
        }),
        ("client", {
            let s = s.clone();
            Box::pin(async move { s.client(&id).await.map(drop) })
        }),
        ("sweep", {
            let s = s.clone();
            Box::pin(async move { s.sweep(now).await.map(drop) })
        }),
    ];
    let answers = futures::future::join_all(probes.into_iter().map(|(name, probe)| async move {
        let start = Instant::now();
        let r = probe.await;
        (name, start.elapsed(), r)
    }))
    .await;
    for (name, took, r) in answers {
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "{what}: {name} answered {r:?}, expected Unavailable"
        );
        assert!(
            took <= TIMEOUT + SLACK,
            "{what}: {name} took {took:?} (bound {TIMEOUT:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_database_is_unavailable_then_works_again() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let store = store_on(&cluster.url).await;
    works_again_within(&store, Duration::from_secs(2), "before the stop").await;
    // Data written before the stop survives it.
    let now = now();
    let g = common::grant();
    let (a, _, t) = tokens(g, now, true);
    assert!(store.issue(g, t).await.unwrap());

    // A clean, fast stop: open sessions are terminated, new ones refused.
    cluster.stop();
    all_unavailable(&store, "after a fast stop").await;
    // Still down a while later (every pooled connection now dead): the same.
    tokio::time::sleep(Duration::from_secs(1)).await;
    all_unavailable(&store, "still down").await;

    cluster.restart();
    let took = works_again_within(&store, Duration::from_secs(5), "after the restart").await;
    eprintln!("the store worked again {took:?} after the restart");
    assert!(store.access_token(a, now).await.unwrap().is_some());

    // A crash (immediate stop), and back.
    cluster.kill();
    all_unavailable(&store, "after a crash").await;
    cluster.restart();
    works_again_within(&store, Duration::from_secs(5), "after the crash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_database_times_out_then_recovers() {
    // A proxy that stops relaying: connections stay open, nothing answers.
    // Only the store's own bound can end the calls.
    let Some(url) = common::url() else { return };
    let proxy = Proxy::start(common::socket_of(&url)).await;
    let store = PostgresStore::connect(proxy.url_for(&url))
        .schema(common::unique_schema())
        .command_timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(20))
        .await
        .unwrap();
    works_again_within(&store, Duration::from_secs(2), "before the freeze").await;

    proxy.freeze();
    let answers = futures::future::join_all((0..4).map(|_| {
        let store = store.clone();
        async move {
            let start = Instant::now();
            let r = store
                .take_code(key(TokenKind::Code, common::grant()), now())
                .await;
            (start.elapsed(), r)
        }
    }))
    .await;
    for (took, r) in answers {
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(took <= TIMEOUT + SLACK, "took {took:?}");
    }
    proxy.thaw();
    let took = works_again_within(&store, Duration::from_secs(5), "after the thaw").await;
    eprintln!("the store worked again {took:?} after the thaw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_a_prompt_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let e = PostgresStore::connect(format!("postgres://u:secret@127.0.0.1:{port}/db"))
        .connect_timeout(Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(e, ConnectError::Unreachable { .. }), "{e:?}");
    assert!(!e.to_string().contains("secret"), "{e}");
    assert!(matches!(StoreError::from(e), StoreError::Unavailable(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_database_is_refused_not_unreachable() {
    let Some(url) = common::url() else { return };
    let mut u = url::Url::parse(&url).unwrap();
    u.set_path("/no_such_database_here");
    let e = PostgresStore::connect(u.as_str()).await.unwrap_err();
    assert!(matches!(e, ConnectError::Refused { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_under_load() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let store = store_on(&cluster.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (oks, downs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Code flows in a loop: every answer a success or Unavailable, each
    // within the bound; a code is never taken twice.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (store, stop, oks, downs) = (
                store.clone(),
                Arc::clone(&stop),
                Arc::clone(&oks),
                Arc::clone(&downs),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let now = now();
                    let c = key(TokenKind::Code, common::grant());
                    let start = Instant::now();
                    let r = match store.put_code(c, code(now, 60)).await {
                        Ok(()) => store.take_code(c, now).await.map(Some),
                        Err(e) => Err(e),
                    };
                    assert!(
                        start.elapsed() <= 2 * TIMEOUT + SLACK,
                        "a step hung: {:?}",
                        start.elapsed()
                    );
                    match r {
                        Ok(Some(CodeTake::Taken(_))) => oks.fetch_add(1, Ordering::Relaxed),
                        Ok(other) => panic!("unexpected answer {other:?}"),
                        Err(StoreError::Unavailable(_)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            downs.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("expected Unavailable, got {e:?}"),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        oks.load(Ordering::Relaxed) > 0,
        "no flow succeeded before the stop"
    );
    cluster.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        downs.load(Ordering::Relaxed) > 0,
        "no failure while the database was down"
    );
    cluster.restart();
    let restarted = Instant::now();
    let before = oks.load(Ordering::Relaxed);
    while oks.load(Ordering::Relaxed) < before + 100 {
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "under load, the store did not recover within 5 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "100 flows succeeded {:?} after the restart",
        restarted.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
}
