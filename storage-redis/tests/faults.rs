//! Faults: nothing listening, a crashed server, a frozen server, a restart.
//! Every call ends within the command timeout (no hang) with
//! `StoreError::Unavailable`, and the same `RedisStore` works again soon
//! after the server is back, without being recreated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Throwaway;
use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, PendingStore, Subject, TokenRecord,
};
use tessera::{
    ClientId, ClientRegistry, OsRandom, Random, Scope, Secret, SecretKey, StoreError, TokenKind,
};
use tessera_redis::{ConnectError, RedisStore};
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a busy 2-core CI machine.
const SLACK: Duration = Duration::from_millis(700);

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn key(kind: TokenKind) -> SecretKey {
    Secret::mint(kind, OsRandom.grant_id(), OsRandom.bytes32()).key()
}

fn code(now: OffsetDateTime) -> CodeRecord {
    CodeRecord {
        client_id: ClientId::new("c").unwrap(),
        redirect_uri: None,
        challenge: None,
        subject: Subject::new("alice"),
        scope: Scope::parse("a").unwrap(),
        audience: None,
        expires_at: now + time::Duration::seconds(60),
        dpop_jkt: None,
    }
}

/// Every kind of call fails with `Unavailable`, each within the timeout.
async fn all_unavailable(store: &RedisStore, what: &str) {
    let now = now();
    let t = || NewTokens {
        access: (
            key(TokenKind::Access).hash,
            TokenRecord {
                client_id: ClientId::new("c").unwrap(),
                subject: None,
                scope: Scope::parse("a").unwrap(),
                audience: None,
                issued_at: now,
                expires_at: now + time::Duration::seconds(60),
                family_expires_at: None,
                actor: None,
                dpop_jkt: None,
            },
        ),
        refresh: None,
    };
    macro_rules! expect_unavailable {
        ($name:literal, $call:expr) => {{
            let start = Instant::now();
            let r = $call.await;
            let took = start.elapsed();
            assert!(
                matches!(r, Err(StoreError::Unavailable(_))),
                "{what}: {}: expected Unavailable, got {r:?}",
                $name
            );
            assert!(
                took <= TIMEOUT + SLACK,
                "{what}: {} took {took:?} (timeout {TIMEOUT:?})",
                $name
            );
        }};
    }
    expect_unavailable!("put_code", store.put_code(key(TokenKind::Code), code(now)));
    expect_unavailable!("take_code", store.take_code(key(TokenKind::Code), now));
    expect_unavailable!("issue", store.issue(OsRandom.grant_id(), t()));
    expect_unavailable!(
        "access_token",
        store.access_token(key(TokenKind::Access), now)
    );
    expect_unavailable!(
        "refresh_token",
        store.refresh_token(key(TokenKind::Refresh), now)
    );
    let old = key(TokenKind::Refresh);
    expect_unavailable!("rotate_refresh", store.rotate_refresh(old, t(), now));
    expect_unavailable!(
        "revoke_access_token",
        store.revoke_access_token(key(TokenKind::Access))
    );
    expect_unavailable!("revoke_grant", store.revoke_grant(OsRandom.grant_id()));
    expect_unavailable!(
        "get_pending",
        store.get_pending(key(TokenKind::Pending), now)
    );
    expect_unavailable!(
        "take_pending",
        store.take_pending(key(TokenKind::Pending), now)
    );
    expect_unavailable!("client", store.client(&ClientId::new("c").unwrap()));
    expect_unavailable!("has_clients", store.has_clients());
}

/// Polls until a full code flow works on `store`; panics after `limit`.
async fn works_again_within(store: &RedisStore, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let now = now();
        let c = key(TokenKind::Code);
        let ok = store.put_code(c, code(now)).await.is_ok()
            && matches!(store.take_code(c, now).await, Ok(CodeTake::Taken(_)));
        if ok {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: store not working again after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast_and_clearly() {
    let port = common::free_port();
    let start = Instant::now();
    let r = RedisStore::connect(format!("redis://127.0.0.1:{port}/"))
        .connect_timeout(Duration::from_secs(1))
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(1) + SLACK,
        "took {:?}",
        start.elapsed()
    );
    let err = r.expect_err("nothing listens there");
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&port.to_string()),
        "names the target: {err}"
    );

    let start = Instant::now();
    let r = RedisStore::connect_cluster([format!("redis://127.0.0.1:{port}/")])
        .connect_timeout(Duration::from_secs(1))
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(1) + SLACK,
        "cluster took {:?}",
        start.elapsed()
    );
    assert!(matches!(r, Err(ConnectError::Unreachable { .. })), "{r:?}");
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let r = RedisStore::connect("redis://127.0.0.1:1/")
        .prefix("a{b}:")
        .await;
    assert!(matches!(r, Err(ConnectError::InvalidPrefix(_))), "{r:?}");
    let r = RedisStore::connect("http://nope").await;
    assert!(matches!(r, Err(ConnectError::InvalidUrl { .. })), "{r:?}");
    let r = RedisStore::connect_cluster(Vec::<String>::new()).await;
    assert!(matches!(r, Err(ConnectError::NoNodes)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_server_then_restart() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let mut server = Throwaway::start(&bin);
    let store = RedisStore::connect(server.url())
        .command_timeout(TIMEOUT)
        .await
        .unwrap();
    works_again_within(&store, Duration::from_secs(2), "before the crash").await;

    server.kill();
    all_unavailable(&store, "server killed").await;
    // Stay down a while (longer than the reconnect backoff runs).
    tokio::time::sleep(Duration::from_secs(3)).await;
    all_unavailable(&store, "server still down").await;

    server.restart();
    let took = works_again_within(&store, Duration::from_secs(2), "after restart").await;
    eprintln!("store worked again {took:?} after the restart");

    // And once more, restarting right away.
    server.kill();
    all_unavailable(&store, "killed again").await;
    server.restart();
    works_again_within(&store, Duration::from_secs(2), "after the second restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_times_out_then_recovers() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let server = Throwaway::start(&bin);
    let store = RedisStore::connect(server.url())
        .command_timeout(TIMEOUT)
        .await
        .unwrap();
    works_again_within(&store, Duration::from_secs(2), "before freezing").await;

    server.freeze();
    all_unavailable(&store, "server frozen").await;
    server.thaw();
    works_again_within(&store, Duration::from_secs(2), "after thawing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_frozen_server_is_bounded() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let server = Throwaway::start(&bin);
    server.freeze();
    let start = Instant::now();
    let r = RedisStore::connect(server.url())
        .command_timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(1))
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(1) + SLACK,
        "took {:?}",
        start.elapsed()
    );
    assert!(matches!(r, Err(ConnectError::Unreachable { .. })), "{r:?}");
    server.thaw();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_crash_then_restart() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let mut cluster = common::ThrowawayCluster::start(&bin);
    let store = RedisStore::connect_cluster(cluster.urls())
        .command_timeout(TIMEOUT)
        .await
        .unwrap();
    works_again_within(&store, Duration::from_secs(2), "cluster before the crash").await;

    // A master dies: every call ends within the timeout, Ok (slots of the
    // other masters, until the cluster notices) or Unavailable.
    cluster.nodes[1].kill();
    let mut unavailable = 0;
    for _ in 0..40 {
        let now = now();
        let c = key(TokenKind::Code);
        let start = Instant::now();
        let r = store.put_code(c, code(now)).await;
        let took = start.elapsed();
        assert!(
            took <= TIMEOUT + SLACK,
            "put_code took {took:?} with a master down"
        );
        match r {
            Ok(()) => {}
            Err(StoreError::Unavailable(_)) => unavailable += 1,
            Err(e) => panic!("with a master down: expected Ok or Unavailable, got {e:?}"),
        }
    }
    assert!(
        unavailable > 0,
        "40 random grants never hit the dead master's slots"
    );

    // It comes back (same node id and slots, from its nodes.conf): the same
    // store works again without being recreated.
    cluster.nodes[1].restart();
    cluster.wait_ok(Duration::from_secs(20));
    let took = works_again_within(&store, Duration::from_secs(10), "cluster after restart").await;
    eprintln!("cluster store worked again {took:?} after cluster_state:ok");
    // All slots, not just one: 50 random grants in a row.
    let start = Instant::now();
    let mut streak = 0;
    while streak < 50 {
        let now = now();
        let c = key(TokenKind::Code);
        let ok = store.put_code(c, code(now)).await.is_ok()
            && matches!(store.take_code(c, now).await, Ok(CodeTake::Taken(_)));
        streak = if ok { streak + 1 } else { 0 };
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cluster store flaky after restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_under_load() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let mut server = Throwaway::start(&bin);
    let store = RedisStore::connect(server.url())
        .command_timeout(TIMEOUT)
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (oks, downs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Workers: code flows in a loop; every answer is a success or Unavailable,
    // each within the timeout; a taken code is never taken twice.
    let workers: Vec<_> = (0..16)
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
                    let c = key(TokenKind::Code);
                    let start = Instant::now();
                    let r = match store.put_code(c, code(now)).await {
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
                        // The server restarted between put and take (data is not persisted).
                        Ok(Some(CodeTake::Unknown)) => downs.fetch_add(1, Ordering::Relaxed),
                        Ok(other) => panic!("unexpected answer {other:?}"),
                        Err(StoreError::Unavailable(_)) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            downs.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("expected Unavailable, got {e:?}"),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..2 {
        server.kill();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = downs.load(Ordering::Relaxed);
        assert!(before > 0, "no failure seen while the server was down");
        server.restart();
        let restarted = Instant::now();
        let ok_before = oks.load(Ordering::Relaxed);
        while oks.load(Ordering::Relaxed) < ok_before + 100 {
            assert!(
                restarted.elapsed() < Duration::from_secs(2),
                "under load, the store did not recover within 2 s of the restart"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "100 flows succeeded {:?} after the restart",
            restarted.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
}
