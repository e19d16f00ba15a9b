//! Each store method is exactly one round trip: measured twice, on a
//! dedicated throwaway `redis-server` behind a counting TCP proxy:
//! - the proxy counts the top-level commands the store sends (round trips);
//! - `INFO commandstats` on the dedicated server shows which command it was
//!   (`evalsha` for scripts: never a `SCRIPT LOAD` or `EVAL` once warm).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::future::Future;

use common::{CountingProxy, Throwaway};
use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, PendingAuthorization, PendingStore, Subject,
    TokenRecord,
};
use tessera::{
    Client, ClientId, ClientRegistry, GrantId, OsRandom, Random, Scope, Secret, SecretKey,
    TokenKind,
};
use tessera_redis::RedisStore;
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn key(kind: TokenKind, grant: GrantId) -> SecretKey {
    Secret::mint(kind, grant, OsRandom.bytes32()).key()
}

fn client_id() -> ClientId {
    ClientId::new("rt-client").unwrap()
}

fn code(now: OffsetDateTime) -> CodeRecord {
    CodeRecord {
        client_id: client_id(),
        redirect_uri: None,
        challenge: None,
        subject: Subject::new("alice"),
        scope: Scope::parse("a b").unwrap(),
        audience: None,
        expires_at: now + Duration::seconds(60),
        dpop_jkt: None,
    }
}

fn token(now: OffsetDateTime, ttl: i64) -> TokenRecord {
    TokenRecord {
        client_id: client_id(),
        subject: Some(Subject::new("alice")),
        scope: Scope::parse("a b").unwrap(),
        audience: None,
        issued_at: now,
        expires_at: now + Duration::seconds(ttl),
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    }
}

fn tokens(
    grant: GrantId,
    now: OffsetDateTime,
    refresh: bool,
) -> (SecretKey, Option<SecretKey>, NewTokens) {
    let a = key(TokenKind::Access, grant);
    let r = refresh.then(|| key(TokenKind::Refresh, grant));
    let t = NewTokens {
        access: (a.hash, token(now, 300)),
        refresh: r.map(|r| (r.hash, token(now, 600))),
    };
    (a, r, t)
}

fn pending(now: OffsetDateTime) -> PendingAuthorization {
    PendingAuthorization {
        client_id: client_id(),
        redirect_uri: "https://c.example/cb".to_owned(),
        redirect_uri_sent: false,
        scope: Scope::parse("a").unwrap(),
        audience: None,
        state: None,
        challenge: None,
        expires_at: now + Duration::seconds(600),
        dpop_jkt: None,
    }
}

struct Meter {
    server: Throwaway,
    proxy: CountingProxy,
}

impl Meter {
    /// Runs `op` and checks it cost exactly one round trip, which was `command`.
    async fn one<T, Fut: Future<Output = T>>(&self, what: &str, command: &str, op: Fut) -> T {
        let (n0, s0) = (self.proxy.count(), stats(&self.server));
        let out = op.await;
        let (n1, s1) = (self.proxy.count(), stats(&self.server));
        assert_eq!(n1 - n0, 1, "{what}: round trips (commands sent)");
        let top: u64 = ["evalsha", "eval", "script|load", command]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|c| delta(&s0, &s1, c))
            .sum();
        assert_eq!(delta(&s0, &s1, command), 1, "{what}: {command} calls");
        assert_eq!(
            top, 1,
            "{what}: top-level calls (evalsha/eval/script load/{command})"
        );
        if command != "evalsha" {
            // A plain command: nothing else ran on the server at all.
            let total: u64 = s1.keys().map(|c| delta(&s0, &s1, c)).sum();
            assert_eq!(total, 1, "{what}: all command calls: {s0:?} -> {s1:?}");
        }
        out
    }
}

/// Command calls on the server, leaving out the meter's own `INFO` and connection setup.
fn stats(server: &Throwaway) -> BTreeMap<String, u64> {
    server
        .commandstats()
        .into_iter()
        .filter(|(c, _)| c != "info" && !c.starts_with("client") && c != "hello")
        .collect()
}

fn delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, c: &str) -> u64 {
    b.get(c).copied().unwrap_or(0) - a.get(c).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_is_one_round_trip() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let server = Throwaway::start(&bin);
    let proxy = CountingProxy::start(([127, 0, 0, 1], server.port).into()).await;
    let store = RedisStore::connect(proxy.url()).await.unwrap();
    let m = Meter { server, proxy };
    let now = now();

    // Warm the script cache (first use of a script on a node is NOSCRIPT + EVAL).
    {
        let g = OsRandom.grant_id();
        let c = key(TokenKind::Code, g);
        store.put_code(c, code(now)).await.unwrap();
        store.take_code(c, now).await.unwrap();
        let (a, r, t) = tokens(g, now, true);
        store.issue(g, t).await.unwrap();
        store.access_token(a, now).await.unwrap();
        store.refresh_token(r.unwrap(), now).await.unwrap();
        store
            .rotate_refresh(r.unwrap(), tokens(g, now, true).2, now)
            .await
            .unwrap();
        store.revoke_grant(g).await.unwrap();
    }

    let g = OsRandom.grant_id();
    let c = key(TokenKind::Code, g);
    let record = code(now);
    m.one("put_code", "evalsha", store.put_code(c, record.clone()))
        .await
        .unwrap();
    assert_eq!(
        m.one("take_code (taken)", "evalsha", store.take_code(c, now))
            .await
            .unwrap(),
        CodeTake::Taken(record)
    );
    assert_eq!(
        m.one("take_code (replay)", "evalsha", store.take_code(c, now))
            .await
            .unwrap(),
        CodeTake::AlreadyTaken
    );
    assert_eq!(
        m.one(
            "take_code (unknown)",
            "evalsha",
            store.take_code(key(TokenKind::Code, g), now)
        )
        .await
        .unwrap(),
        CodeTake::Unknown
    );
    let (a, r, t) = tokens(g, now, true);
    assert!(
        m.one("issue (access + refresh)", "evalsha", store.issue(g, t))
            .await
            .unwrap()
    );
    let (a2, _, t2) = tokens(g, now, false);
    assert!(
        m.one("issue (access only)", "evalsha", store.issue(g, t2))
            .await
            .unwrap()
    );
    // A fresh client-credentials grant: one plain SET, nothing else on the server.
    let fresh = OsRandom.grant_id();
    let (a3, _, t4) = tokens(fresh, now, false);
    assert!(
        m.one(
            "issue_new_grant (access only)",
            "set",
            store.issue_new_grant(fresh, t4)
        )
        .await
        .unwrap()
    );
    assert!(
        m.one(
            "access_token (standalone)",
            "evalsha",
            store.access_token(a3, now)
        )
        .await
        .unwrap()
        .is_some()
    );
    assert!(
        m.one("access_token", "evalsha", store.access_token(a, now))
            .await
            .unwrap()
            .is_some()
    );
    m.one(
        "refresh_token",
        "evalsha",
        store.refresh_token(r.unwrap(), now),
    )
    .await
    .unwrap();
    let (_, r2, t3) = tokens(g, now, true);
    assert!(
        m.one(
            "rotate_refresh",
            "evalsha",
            store.rotate_refresh(r.unwrap(), t3, now)
        )
        .await
        .unwrap()
    );
    assert!(
        !m.one(
            "rotate_refresh (refused)",
            "evalsha",
            store.rotate_refresh(r.unwrap(), tokens(g, now, true).2, now)
        )
        .await
        .unwrap()
    );
    let (_, _, t4) = tokens(g, now, false);
    assert!(
        m.one(
            "rotate_refresh (no new refresh)",
            "evalsha",
            store.rotate_refresh(r2.unwrap(), t4, now)
        )
        .await
        .unwrap()
    );
    m.one("revoke_access_token", "del", store.revoke_access_token(a2))
        .await
        .unwrap();
    m.one("revoke_grant", "evalsha", store.revoke_grant(g))
        .await
        .unwrap();
    assert!(
        !m.one(
            "issue (revoked)",
            "evalsha",
            store.issue(g, tokens(g, now, true).2)
        )
        .await
        .unwrap()
    );
    m.one(
        "revoke_grant (unknown grant)",
        "evalsha",
        store.revoke_grant(OsRandom.grant_id()),
    )
    .await
    .unwrap();

    let h = key(TokenKind::Pending, OsRandom.grant_id());
    m.one("put_pending", "set", store.put_pending(h, pending(now)))
        .await
        .unwrap();
    assert!(
        m.one("get_pending", "get", store.get_pending(h, now))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        m.one("take_pending", "getdel", store.take_pending(h, now))
            .await
            .unwrap()
            .is_some()
    );

    let id = client_id();
    assert!(
        m.one("client (unknown)", "get", store.client(&id))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !m.one("has_clients", "exists", store.has_clients())
            .await
            .unwrap()
    );
    store
        .put_client(&Client::public(id.clone(), "RT"))
        .await
        .unwrap();
    assert!(
        m.one("client", "get", store.client(&id))
            .await
            .unwrap()
            .is_some()
    );
    // Then from the client cache: no round trip at all. The store hears
    // its own `put_client` invalidation too, and when that arrives after
    // the read above the copy is (rightly) not kept: the next read fetches
    // it again and caches it. So: at most one more read, then free ones.
    let mut free = false;
    for _ in 0..50 {
        let before = m.proxy.count();
        assert!(store.client(&id).await.unwrap().is_some());
        if m.proxy.count() == before {
            free = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(free, "a cached client costs no round trip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_cache_costs_one_more_round_trip_once() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let server = Throwaway::start(&bin);
    let proxy = CountingProxy::start(([127, 0, 0, 1], server.port).into()).await;
    let store = RedisStore::connect(proxy.url()).await.unwrap();
    let now = now();
    let g = OsRandom.grant_id();
    let c = key(TokenKind::Code, g);

    // Cold: EVALSHA answers NOSCRIPT, then EVAL runs (and caches) the script.
    let n0 = proxy.count();
    store.put_code(c, code(now)).await.unwrap();
    assert_eq!(proxy.count() - n0, 2, "cold put_code: EVALSHA + EVAL");
    let n0 = proxy.count();
    assert!(matches!(
        store.take_code(c, now).await.unwrap(),
        CodeTake::Taken(_)
    ));
    assert_eq!(proxy.count() - n0, 2, "cold take_code: EVALSHA + EVAL");
    // Warm: one EVALSHA.
    let n0 = proxy.count();
    assert_eq!(
        store.take_code(c, now).await.unwrap(),
        CodeTake::AlreadyTaken
    );
    assert_eq!(proxy.count() - n0, 1, "warm take_code: one EVALSHA");

    // After SCRIPT FLUSH (or a server restart) the store recovers by itself.
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut raw).unwrap();
    let n0 = proxy.count();
    assert_eq!(
        store.take_code(c, now).await.unwrap(),
        CodeTake::AlreadyTaken
    );
    assert_eq!(proxy.count() - n0, 2, "flushed: EVALSHA + EVAL");
    let n0 = proxy.count();
    assert_eq!(
        store.take_code(c, now).await.unwrap(),
        CodeTake::AlreadyTaken
    );
    assert_eq!(proxy.count() - n0, 1, "warm again");
}
