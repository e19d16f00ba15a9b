//! Expiry: the batched sweeper deletes what expired and nothing else,
//! bounded per sweep; the spawned sweeper stops with the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{code, key, now, tokens};
use tessera::TokenKind;
use tessera::storage::{CodeTake, GrantStore, PendingStore, RefreshLookup};
use tessera_postgres::PostgresStore;

async fn count(raw: &mut sqlx::PgConnection, schema: &str, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{schema}\".{table}"))
        .fetch_one(raw)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_what_expired_and_keeps_what_lives() {
    let Some(url) = common::url() else { return };
    let store = common::fresh(&url).await;
    let s = store.schema().to_owned();
    let mut raw = common::raw(&url).await;
    let now = now();

    // A client-credentials grant (access token for 300 s).
    let g1 = common::grant();
    let (a1, _, t1) = tokens(g1, now, false);
    assert!(store.issue(g1, t1).await.unwrap());
    // A code grant: code (60 s) taken, tokens (300 s / 600 s), rotated once.
    let g2 = common::grant();
    let c2 = key(TokenKind::Code, g2);
    store.put_code(c2, code(now, 60)).await.unwrap();
    assert!(matches!(
        store.take_code(c2, now).await.unwrap(),
        CodeTake::Taken(_)
    ));
    let (_, r2, t2) = tokens(g2, now, true);
    assert!(store.issue(g2, t2).await.unwrap());
    let (a3, r3, t3) = tokens(g2, now + time::Duration::seconds(100), true);
    assert!(store.rotate_refresh(r2.unwrap(), t3, now).await.unwrap());
    // An untaken code of its own grant, and a pending request (60 s each).
    let g4 = common::grant();
    let c4 = key(TokenKind::Code, g4);
    store.put_code(c4, code(now, 60)).await.unwrap();
    let p = key(TokenKind::Pending, common::grant());
    store
        .put_pending(p, common::pending(now, 60))
        .await
        .unwrap();

    // Nothing has expired yet: nothing goes.
    assert_eq!(store.sweep(now).await.unwrap().total(), 0);

    // At +120 s: the untaken code (and its grant), the pending request go;
    // the taken code stays (its grant lives), so a replay is still seen.
    let at = now + time::Duration::seconds(120);
    let swept = store.sweep(at).await.unwrap();
    assert_eq!(swept.grants, 1, "{swept:?}"); // g4
    assert_eq!(swept.pending, 1, "{swept:?}");
    assert_eq!(
        store.take_code(c2, at).await.unwrap(),
        CodeTake::AlreadyTaken
    );
    assert!(store.access_token(a1, at).await.unwrap().is_some());
    assert_eq!(count(&mut raw, &s, "codes").await, 1);

    // At +350 s: g1 (its only token expired at 300 s) and the first access
    // token of g2 go; the rotated-to tokens live on.
    let at = now + time::Duration::seconds(350);
    let swept = store.sweep(at).await.unwrap();
    assert_eq!(swept.grants, 1, "{swept:?}");
    assert_eq!(swept.access_tokens, 1, "{swept:?}");
    assert!(store.access_token(a3, at).await.unwrap().is_some());
    assert!(matches!(
        store.refresh_token(r3.unwrap(), at).await.unwrap(),
        RefreshLookup::Current(_)
    ));
    assert_eq!(count(&mut raw, &s, "grants").await, 1);

    // At +800 s everything expired: all of it goes, cascades included.
    let swept = store
        .sweep(now + time::Duration::seconds(800))
        .await
        .unwrap();
    assert!(swept.grants == 1, "{swept:?}");
    for table in [
        "grants",
        "codes",
        "access_tokens",
        "refresh_tokens",
        "pending",
    ] {
        assert_eq!(
            count(&mut raw, &s, table).await,
            0,
            "{table} after the last sweep"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_is_bounded_in_batches() {
    let Some(url) = common::url() else { return };
    let schema = common::unique_schema();
    let store = PostgresStore::connect(&url)
        .schema(&schema)
        .sweep_batches(500, 3)
        .command_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    let mut raw = common::raw(&url).await;
    // 4,000 expired client-credentials grants with one token each, in bulk.
    sqlx::query(&format!(
        "WITH g AS (
            INSERT INTO \"{schema}\".grants (grant_id, expires_at)
            SELECT substring(sha256(i::text::bytea) for 16), now() - interval '1 hour'
            FROM generate_series(1, 4000) i RETURNING grant_id
        )
        INSERT INTO \"{schema}\".access_tokens (grant_id, hash, expires_at, record)
        SELECT grant_id, sha256(grant_id), now() - interval '1 hour', '{{}}'::jsonb FROM g"
    ))
    .execute(&mut raw)
    .await
    .unwrap();

    // One sweep: at most 3 batches of 500 grants.
    let swept = store.sweep(now()).await.unwrap();
    assert_eq!(swept.grants, 1500, "{swept:?}");
    assert_eq!(count(&mut raw, &schema, "grants").await, 2500);
    // Their tokens went with them (ON DELETE CASCADE), and the same sweep
    // deleted 3 batches of 500 of the other (expired) tokens.
    assert_eq!(swept.access_tokens, 1500, "{swept:?}");
    assert_eq!(count(&mut raw, &schema, "access_tokens").await, 1000);
    let mut sweeps = 1;
    while count(&mut raw, &schema, "grants").await > 0 {
        store.sweep(now()).await.unwrap();
        sweeps += 1;
        assert!(sweeps <= 3, "4,000 rows need 3 sweeps of 1,500");
    }
    assert_eq!(count(&mut raw, &schema, "access_tokens").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spawned_sweeper_sweeps_and_stops_with_the_store() {
    let Some(url) = common::url() else { return };
    let store = common::fresh(&url).await;
    let s = store.schema().to_owned();
    let mut raw = common::raw(&url).await;
    // An already expired pending request, planted directly.
    sqlx::query(&format!(
        "INSERT INTO \"{s}\".pending (grant_id, hash, expires_at, record)
         VALUES (substring(sha256('x') for 16), sha256('y'), now() - interval '1 minute', '{{}}'::jsonb)"
    ))
    .execute(&mut raw)
    .await
    .unwrap();
    let handle = store.spawn_sweeper(Duration::from_secs(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&mut raw, &s, "pending").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper did not sweep"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the sweeper ends once the store is dropped")
        .unwrap();
}
