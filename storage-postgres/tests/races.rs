//! Races across server instances: two `PostgresStore`s (two pools, as two
//! authorization server processes would have) on one schema, 200 racers
//! split between them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{code, key, now, tokens};
use tessera::TokenKind;
use tessera::storage::{CodeTake, GrantStore, PendingStore, RefreshLookup};
use tessera_postgres::PostgresStore;
use tokio::sync::Barrier;

const RACERS: usize = 200;

/// Two stores on one schema, each with its own pool.
async fn two_instances(url: &str) -> [Arc<PostgresStore>; 2] {
    let schema = common::unique_schema();
    let a = common::in_schema(url, &schema).await;
    let b = common::in_schema(url, &schema).await;
    [Arc::new(a), Arc::new(b)]
}

/// Runs `RACERS` tasks, task `i` on instance `i % 2`, released together.
async fn race<T, F, Fut>(stores: &[Arc<PostgresStore>; 2], f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Arc<PostgresStore>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let fut = f(i, Arc::clone(&stores[i % 2]));
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for h in futures::future::join_all(handles).await {
        out.push(h.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_two_instances_one_winner() {
    let Some(url) = common::url() else { return };
    let stores = two_instances(&url).await;
    let now = now();
    for round in 0..3 {
        let c = key(TokenKind::Code, common::grant());
        let record = code(now, 60);
        stores[round % 2].put_code(c, record.clone()).await.unwrap();
        let answers = race(
            &stores,
            |_, s| async move { s.take_code(c, now).await.unwrap() },
        )
        .await;
        let winners: Vec<_> = answers
            .iter()
            .filter(|a| matches!(a, CodeTake::Taken(_)))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: takers that got the code");
        assert_eq!(winners[0], &CodeTake::Taken(record));
        let replays = answers
            .iter()
            .filter(|a| **a == CodeTake::AlreadyTaken)
            .count();
        assert_eq!(
            replays,
            RACERS - 1,
            "round {round}: the others see a replay"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_token_two_instances_one_rotation() {
    let Some(url) = common::url() else { return };
    let stores = two_instances(&url).await;
    let now = now();
    let g = common::grant();
    let (_, first, t) = tokens(g, now, true);
    assert!(stores[0].issue(g, t).await.unwrap());
    let old = first.unwrap();

    let contenders: Arc<Vec<_>> = Arc::new((0..RACERS).map(|_| tokens(g, now, true)).collect());
    let c = Arc::clone(&contenders);
    let answers = race(&stores, move |i, s| {
        let mine = c[i].2.clone();
        async move { s.rotate_refresh(old, mine, now).await.unwrap() }
    })
    .await;
    let winners: Vec<usize> = (0..RACERS).filter(|&i| answers[i]).collect();
    assert_eq!(winners.len(), 1, "successful rotations");
    let w = winners[0];

    // Seen alike from both instances: the old token retired, only the winner's stored.
    for s in &stores {
        assert_eq!(
            s.refresh_token(old, now).await.unwrap(),
            RefreshLookup::Retired
        );
        for (i, (a, r, _)) in contenders.iter().enumerate() {
            let access = s.access_token(*a, now).await.unwrap();
            let refresh = s.refresh_token(r.unwrap(), now).await.unwrap();
            if i == w {
                assert!(access.is_some());
                assert!(matches!(refresh, RefreshLookup::Current(_)));
            } else {
                assert_eq!(access, None, "a loser's access token was stored");
                assert_eq!(refresh, RefreshLookup::Unknown, "a loser's refresh token");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_pending_request_two_instances_one_taker() {
    let Some(url) = common::url() else { return };
    let stores = two_instances(&url).await;
    let now = now();
    let p = key(TokenKind::Pending, common::grant());
    stores[1]
        .put_pending(p, common::pending(now, 600))
        .await
        .unwrap();
    let answers = race(&stores, |_, s| async move {
        s.take_pending(p, now).await.unwrap()
    })
    .await;
    assert_eq!(answers.iter().flatten().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_racing_revoke_across_instances_leaves_nothing_live() {
    let Some(url) = common::url() else { return };
    let stores = two_instances(&url).await;
    let now = now();
    for round in 0..5 {
        let g = common::grant();
        let (seed_a, seed_r, t) = tokens(g, now, true);
        assert!(stores[0].issue(g, t).await.unwrap());
        let minted: Arc<Vec<_>> = Arc::new((0..RACERS).map(|_| tokens(g, now, true)).collect());
        let m = Arc::clone(&minted);
        let revoker = (round * 37) % RACERS;
        race(&stores, move |i, s| {
            let t = m[i].2.clone();
            async move {
                if i == revoker {
                    s.revoke_grant(g).await.unwrap();
                } else {
                    s.issue(g, t).await.unwrap();
                }
            }
        })
        .await;
        for s in &stores {
            assert_eq!(s.access_token(seed_a, now).await.unwrap(), None);
            assert_eq!(
                s.refresh_token(seed_r.unwrap(), now).await.unwrap(),
                RefreshLookup::Unknown
            );
            for (a, r, _) in minted.iter() {
                assert_eq!(
                    s.access_token(*a, now).await.unwrap(),
                    None,
                    "round {round}: an access token outlived the revocation"
                );
                assert_eq!(
                    s.refresh_token(r.unwrap(), now).await.unwrap(),
                    RefreshLookup::Unknown,
                    "round {round}: a refresh token outlived the revocation"
                );
            }
        }
        assert!(!stores[1].issue(g, tokens(g, now, false).2).await.unwrap());
    }
}
