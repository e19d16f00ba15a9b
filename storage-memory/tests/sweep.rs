//! Expiry: `sweep` forgets what expired, the sweeper task runs it and stops
//! when the store is dropped; plus what the store costs per live token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, PendingAuthorization, PendingStore, RefreshLookup,
    TokenRecord,
};
use tessera::{ClientId, GrantId, OsRandom, Random, Scope, Secret, SecretKey, Subject, TokenKind};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn key(kind: TokenKind, grant: GrantId) -> SecretKey {
    Secret::mint(kind, grant, OsRandom.bytes32()).key()
}

fn record(at: OffsetDateTime, ttl: Duration, subject: Option<&str>) -> TokenRecord {
    TokenRecord {
        client_id: ClientId::new("svc").unwrap(),
        subject: subject.map(Subject::new),
        scope: Scope::parse("read write").unwrap(),
        audience: None,
        issued_at: at,
        expires_at: at + ttl,
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    }
}

/// A client-credentials grant: one access token, no refresh token.
async fn cc(store: &MemoryStore, at: OffsetDateTime, ttl: Duration) -> SecretKey {
    let g = OsRandom.grant_id();
    let access = key(TokenKind::Access, g);
    let tokens = NewTokens {
        access: (access.hash, record(at, ttl, None)),
        refresh: None,
    };
    assert!(store.issue(g, tokens).await.unwrap());
    access
}

fn code_record(at: OffsetDateTime, ttl: Duration) -> CodeRecord {
    CodeRecord {
        client_id: ClientId::new("web").unwrap(),
        redirect_uri: None,
        challenge: None,
        subject: Subject::new("alice"),
        scope: Scope::parse("read").unwrap(),
        audience: None,
        expires_at: at + ttl,
        dpop_jkt: None,
    }
}

fn pending(at: OffsetDateTime, ttl: Duration) -> PendingAuthorization {
    PendingAuthorization {
        client_id: ClientId::new("web").unwrap(),
        redirect_uri: "https://web.example/cb".into(),
        redirect_uri_sent: false,
        scope: Scope::parse("read").unwrap(),
        audience: None,
        state: None,
        challenge: None,
        expires_at: at + ttl,
        dpop_jkt: None,
    }
}

/// An authorization-code grant: code taken, access + refresh issued, rotated once.
async fn code_grant(store: &MemoryStore, at: OffsetDateTime) -> (GrantId, SecretKey, SecretKey) {
    let g = OsRandom.grant_id();
    let code = key(TokenKind::Code, g);
    store
        .put_code(code, code_record(at, Duration::seconds(60)))
        .await
        .unwrap();
    assert!(matches!(
        store.take_code(code, at).await.unwrap(),
        CodeTake::Taken(_)
    ));
    let r1 = key(TokenKind::Refresh, g);
    let issued = NewTokens {
        access: (
            key(TokenKind::Access, g).hash,
            record(at, Duration::seconds(300), Some("alice")),
        ),
        refresh: Some((r1.hash, record(at, Duration::seconds(600), Some("alice")))),
    };
    assert!(store.issue(g, issued).await.unwrap());
    let r2 = key(TokenKind::Refresh, g);
    let rotated = NewTokens {
        access: (
            key(TokenKind::Access, g).hash,
            record(at, Duration::seconds(300), Some("alice")),
        ),
        refresh: Some((r2.hash, record(at, Duration::seconds(3600), Some("alice")))),
    };
    assert!(store.rotate_refresh(r1, rotated, at).await.unwrap());
    (g, code, r1)
}

#[tokio::test]
async fn sweep_forgets_everything_expired() {
    let store = MemoryStore::new();
    let t = now();
    for _ in 0..100 {
        cc(&store, t, Duration::seconds(60)).await;
    }
    for _ in 0..10 {
        code_grant(&store, t).await;
    }
    for _ in 0..5 {
        store
            .put_pending(
                key(TokenKind::Pending, OsRandom.grant_id()),
                pending(t, Duration::seconds(600)),
            )
            .await
            .unwrap();
    }
    let s = store.stats();
    assert_eq!(s.grants, 110);
    assert_eq!(s.access_tokens, 100 + 20);
    assert_eq!(s.refresh_tokens, 10);
    assert_eq!(s.retired_refresh_tokens, 10);
    assert_eq!(s.codes, 10);
    assert_eq!(s.pending, 5);
    assert_eq!(s.shared_token_metadata, 2);

    // Nothing has expired yet.
    store.sweep(t);
    assert_eq!(store.stats(), s);

    // The client-credentials tokens have expired; the code grants' codes
    // are taken and stay while their grants live.
    store.sweep(t + Duration::seconds(120));
    let s = store.stats();
    assert_eq!((s.grants, s.access_tokens, s.codes), (10, 20, 10));
    assert_eq!(s.shared_token_metadata, 1);

    // Access tokens (300 s) and the retired refresh tokens (600 s) expire;
    // the current refresh token (3600 s) keeps its grant.
    store.sweep(t + Duration::seconds(700));
    let s = store.stats();
    assert_eq!(s.grants, 10);
    assert_eq!(s.access_tokens, 0);
    assert_eq!(s.retired_refresh_tokens, 0);
    assert_eq!(s.refresh_tokens, 10);
    assert_eq!(s.pending, 0);

    store.sweep(t + Duration::seconds(7200));
    let s = store.stats();
    assert_eq!(
        (
            s.grants,
            s.access_tokens,
            s.refresh_tokens,
            s.retired_refresh_tokens,
            s.codes,
            s.pending,
            s.shared_token_metadata
        ),
        (0, 0, 0, 0, 0, 0, 0)
    );
}

#[tokio::test]
async fn sweep_keeps_what_the_contract_needs() {
    let store = MemoryStore::new();
    let t = now();
    let (g, code, r1) = code_grant(&store, t).await;

    // Past the code's expiry, the grant lives: a replay is still detected,
    // and the retired refresh token is still reuse.
    store.sweep(t + Duration::seconds(120));
    let later = t + Duration::seconds(120);
    assert_eq!(
        store.take_code(code, later).await.unwrap(),
        CodeTake::AlreadyTaken
    );
    assert_eq!(
        store.refresh_token(r1, later).await.unwrap(),
        RefreshLookup::Retired
    );

    // A revoked grant is remembered (refusing new tokens) until it expires.
    store.revoke_grant(g).await.unwrap();
    store.sweep(later);
    assert_eq!(store.stats().grants, 1);
    let late = NewTokens {
        access: (
            key(TokenKind::Access, g).hash,
            record(t, Duration::seconds(60), None),
        ),
        refresh: None,
    };
    assert!(!store.issue(g, late).await.unwrap());
    assert_eq!(
        store.take_code(code, later).await.unwrap(),
        CodeTake::AlreadyTaken
    );
    store.sweep(t + Duration::seconds(3600));
    assert_eq!(store.stats().grants, 0);
}

#[tokio::test]
async fn revoking_a_grants_last_token_frees_it() {
    let store = MemoryStore::new();
    let access = cc(&store, now(), Duration::seconds(60)).await;
    assert_eq!(store.stats().grants, 1);
    store.revoke_access_token(access).await.unwrap();
    assert_eq!(store.stats().grants, 0);
    assert_eq!(store.access_token(access, now()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_task_sweeps_with_the_real_clock() {
    let store = Arc::new(MemoryStore::new());
    let t = now();
    for _ in 0..10 {
        cc(&store, t, Duration::milliseconds(200)).await;
    }
    let keep = cc(&store, t, Duration::seconds(600)).await;
    assert_eq!(store.stats().grants, 11);
    let sweeper = store.spawn_sweeper(StdDuration::from_millis(20));

    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while store.stats().grants != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sweeper did not sweep"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert!(store.access_token(keep, now()).await.unwrap().is_some());
    assert!(!sweeper.is_finished());
    sweeper.abort();
}

#[tokio::test]
async fn sweeper_task_stops_when_store_is_dropped() {
    let store = Arc::new(MemoryStore::new());
    let sweeper = store.spawn_sweeper(StdDuration::from_millis(5));
    tokio::time::sleep(StdDuration::from_millis(30)).await;
    assert!(!sweeper.is_finished());
    drop(store);
    tokio::time::timeout(StdDuration::from_secs(5), sweeper)
        .await
        .expect("the sweeper ends once the store is gone")
        .expect("the sweeper ends cleanly");
}

/// Bytes per live client-credentials access token, measured as resident
/// memory growth over a million grants (allocator overhead included). The
/// bar is 400. Slow in debug builds, so opt in:
/// `cargo test -p tessera-memory --release -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measures memory over a million grants; run on demand in release"]
async fn bytes_per_client_credentials_token() {
    const N: usize = 1_000_000;
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }
    let store = MemoryStore::new();
    let t = now();
    // Keys are minted up front so only the store's growth is measured.
    let keys: Vec<(GrantId, SecretKey)> = (0..N)
        .map(|_| {
            let g = OsRandom.grant_id();
            (g, key(TokenKind::Access, g))
        })
        .collect();
    let template = record(t, Duration::seconds(3600), None);
    let before = resident_bytes();
    for (g, k) in &keys {
        let tokens = NewTokens {
            access: (k.hash, template.clone()),
            refresh: None,
        };
        assert!(store.issue(*g, tokens).await.unwrap());
    }
    let after = resident_bytes();
    assert_eq!(store.stats().access_tokens, N);
    let per_token = (after.saturating_sub(before)) / N;
    println!("resident bytes per live client-credentials token: {per_token}");
    assert!(per_token <= 400, "{per_token} bytes per token");
}

/// Grants minted on one thread share a shard (`GrantId::mint`), which the
/// sweep walks a few thousand grants per lock: over many steps, every
/// expired grant goes and every live one stays.
#[tokio::test]
async fn a_shard_of_many_grants_is_swept_step_by_step() {
    let store = MemoryStore::new();
    let t = now();
    let n = 3 * 4096 + 5;
    let mut kept = Vec::new();
    let mut gone = Vec::new();
    for i in 0..n {
        let g = GrantId::mint(t, &OsRandom);
        let access = key(TokenKind::Access, g);
        let ttl = Duration::seconds(if i % 2 == 0 { 600 } else { 60 });
        let tokens = NewTokens {
            access: (access.hash, record(t, ttl, None)),
            refresh: None,
        };
        assert!(store.issue(g, tokens).await.unwrap());
        if i % 2 == 0 {
            kept.push(access)
        } else {
            gone.push(access)
        }
    }
    assert!(
        kept.iter()
            .chain(&gone)
            .all(|k| k.grant.0[8] == kept[0].grant.0[8])
    );
    store.sweep(t + Duration::seconds(120));
    let s = store.stats();
    assert_eq!((s.grants, s.access_tokens), (kept.len(), kept.len()));
    let later = t + Duration::seconds(120);
    for k in &kept {
        assert!(store.access_token(*k, later).await.unwrap().is_some());
    }
    for k in &gone {
        assert!(store.access_token(*k, t).await.unwrap().is_none());
    }
    store.sweep(t + Duration::seconds(7200));
    assert_eq!(store.stats().grants, 0);
}

/// Client-credentials grants of `count`, minted at `at` (their ids carry
/// it), living `ttl`.
async fn cc_at(store: &MemoryStore, at: OffsetDateTime, ttl: Duration, count: usize) {
    for _ in 0..count {
        let g = GrantId::mint(at, &OsRandom);
        let tokens = NewTokens {
            access: (key(TokenKind::Access, g).hash, record(at, ttl, None)),
            refresh: None,
        };
        assert!(store.issue(g, tokens).await.unwrap());
    }
}

/// With no sweeper started, the store sweeps as it is written (DESIGN
/// "Storage": nothing grows without bound): what expired goes, by the
/// server's clock as the new grants' ids tell it, and nothing live does.
#[tokio::test]
async fn without_a_sweeper_the_store_sweeps_as_it_is_written() {
    let store = MemoryStore::new();
    let t0 = now() - Duration::hours(2);
    cc_at(&store, t0, Duration::minutes(1), 2_000).await;
    for _ in 0..100 {
        let g = GrantId::mint(t0, &OsRandom);
        store
            .put_pending(
                key(TokenKind::Pending, g),
                pending(t0, Duration::minutes(1)),
            )
            .await
            .unwrap();
    }
    // Written at t0, nothing has expired yet by the writes' clock.
    assert_eq!(store.stats().grants, 2_000);
    assert_eq!(store.stats().pending, 100);
    // A round of every shard, written two hours later: the expired go.
    cc_at(&store, now(), Duration::hours(1), 20_000).await;
    let stats = store.stats();
    assert_eq!(stats.grants, 20_000, "{stats:?}");
    assert_eq!(stats.pending, 0, "{stats:?}");
}

/// Once a sweeper runs, writes sweep nothing: the sweeper does the work.
#[tokio::test]
async fn a_sweeper_takes_over_from_the_writes() {
    let store = Arc::new(MemoryStore::new());
    let _sweeper = store.spawn_sweeper(StdDuration::from_secs(3600));
    let t0 = now() - Duration::hours(2);
    cc_at(&store, t0, Duration::minutes(1), 2_000).await;
    cc_at(&store, now(), Duration::hours(1), 20_000).await;
    assert_eq!(store.stats().grants, 22_000);
}

/// A write whose time is ahead of the system's clock (random or forged
/// grant ids, a test clock ahead) is not trusted as "now": it sweeps
/// nothing, so nothing live is lost on its word.
#[tokio::test]
async fn a_write_from_the_future_sweeps_nothing() {
    let store = MemoryStore::new();
    let t0 = now() - Duration::hours(2);
    cc_at(&store, t0, Duration::minutes(1), 2_000).await;
    cc_at(
        &store,
        now() + Duration::days(1),
        Duration::hours(1),
        20_000,
    )
    .await;
    assert_eq!(store.stats().grants, 22_000);
}

/// A sweeper that ends while its store lives (its runtime gone) hands the
/// work back to the writes.
#[test]
fn a_store_whose_sweeper_ended_sweeps_as_it_is_written_again() {
    let store = Arc::new(MemoryStore::new());
    let sweeper = tokio::runtime::Runtime::new().unwrap();
    sweeper.block_on(async {
        drop(store.spawn_sweeper(StdDuration::from_secs(3600)));
    });
    drop(sweeper);
    let writes = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    writes.block_on(async {
        let t0 = now() - Duration::hours(2);
        cc_at(&store, t0, Duration::minutes(1), 2_000).await;
        cc_at(&store, now(), Duration::hours(1), 20_000).await;
    });
    assert_eq!(store.stats().grants, 20_000);
}
