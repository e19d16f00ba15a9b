//! The memory policy the store needs, on a real Redis with `maxmemory` and
//! `noeviction` (issue 11): once Redis is full, writes answer
//! `StoreError::Unavailable` (the core's `503 temporarily_unavailable`,
//! never a 500), reads of what exists keep working, and writing works again
//! once room is made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Throwaway;
use tessera::storage::{GrantStore, NewTokens, Subject, TokenRecord};
use tessera::{ClientId, OsRandom, Random, Scope, Secret, SecretKey, StoreError, TokenKind};
use tessera_redis::RedisStore;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn tokens(now: OffsetDateTime) -> (tessera::GrantId, SecretKey, NewTokens) {
    let grant = OsRandom.grant_id();
    let access = Secret::mint(TokenKind::Access, grant, OsRandom.bytes32()).key();
    let record = TokenRecord {
        client_id: ClientId::new("backup-job").unwrap(),
        subject: Some(Subject::new("alice")),
        scope: Scope::parse("photos.read").unwrap(),
        audience: None,
        issued_at: now,
        expires_at: now + time::Duration::hours(1),
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    };
    (
        grant,
        access,
        NewTokens {
            access: (access.hash, record),
            refresh: None,
        },
    )
}

#[tokio::test]
async fn a_full_redis_refuses_writes_as_unavailable_and_keeps_reading() {
    let Some(bin) = common::redis_server_bin() else {
        return;
    };
    let redis = Throwaway::start_with(
        &bin,
        common::free_port(),
        &["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
    );
    let store = RedisStore::connect(redis.url()).await.unwrap();
    let now = now();
    // A token issued while there is room.
    let (grant, issued, t) = tokens(now);
    assert!(store.issue(grant, t).await.unwrap());
    // Fill Redis with something else until it refuses (small values, so that
    // no big request buffer is freed after the refusal and Redis stays over
    // its limit).
    let mut admin = redis.admin();
    let filler = "x".repeat(512);
    let mut full = false;
    for i in 0..100_000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query(&mut admin);
        if r.is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "Redis never reached maxmemory");
    // Well over the limit from now on, whatever buffers come and go.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1mb")
        .query(&mut admin)
        .unwrap();
    // Writes: Unavailable, promptly, never Other (a 500).
    let (grant, _, t) = tokens(now);
    let r = store.issue(grant, t).await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {r:?}"
    );
    let e: tessera::OAuthError = r.unwrap_err().into();
    assert_eq!(e.status(), 503);
    // Reads of what exists still work: resource servers keep validating.
    assert!(store.access_token(issued, now).await.unwrap().is_some());
    // Room made: writing works again, with the same store.
    let _: () = redis::cmd("FLUSHDB").query(&mut admin).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("64mb")
        .query(&mut admin)
        .unwrap();
    let (grant, again, t) = tokens(now);
    assert!(store.issue(grant, t).await.unwrap());
    assert!(store.access_token(again, now).await.unwrap().is_some());
}
