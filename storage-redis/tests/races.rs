//! Races across server instances: two `RedisStore`s (two separate
//! connections, as two authorization server processes would have) on one
//! keyspace, 200 racers split between them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::Target;
use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, RefreshLookup, Subject, TokenRecord,
};
use tessera::{ClientId, OsRandom, Random, Scope, Secret, SecretKey, TokenKind};
use tessera_redis::RedisStore;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

const RACERS: usize = 200;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn key(kind: TokenKind, grant: tessera::GrantId) -> SecretKey {
    Secret::mint(kind, grant, OsRandom.bytes32()).key()
}

fn token(now: OffsetDateTime, ttl: i64) -> TokenRecord {
    TokenRecord {
        client_id: ClientId::new("racer").unwrap(),
        subject: Some(Subject::new("alice")),
        scope: Scope::parse("a").unwrap(),
        audience: None,
        issued_at: now,
        expires_at: now + Duration::seconds(ttl),
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    }
}

/// Two stores on the same keyspace (same prefix), each with its own connection.
async fn two_instances(target: &Target) -> [Arc<RedisStore>; 2] {
    let prefix = common::unique_prefix();
    let a = common::with_prefix(target, &prefix).await;
    let b = common::with_prefix(target, &prefix).await;
    [Arc::new(a), Arc::new(b)]
}

/// Runs `n` tasks, task `i` on instance `i % 2`, released together.
async fn race<T, F, Fut>(stores: &[Arc<RedisStore>; 2], f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Arc<RedisStore>) -> Fut,
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

async fn take_code_race(target: Target) {
    let stores = two_instances(&target).await;
    let now = now();
    for _round in 0..3 {
        let code = key(TokenKind::Code, OsRandom.grant_id());
        let record = CodeRecord {
            client_id: ClientId::new("racer").unwrap(),
            redirect_uri: None,
            challenge: None,
            subject: Subject::new("alice"),
            scope: Scope::parse("a").unwrap(),
            audience: None,
            expires_at: now + Duration::seconds(60),
            dpop_jkt: None,
        };
        stores[0].put_code(code, record.clone()).await.unwrap();
        let answers = race(&stores, |_, s| async move {
            s.take_code(code, now).await.unwrap()
        })
        .await;
        let taken: Vec<_> = answers
            .iter()
            .filter(|a| matches!(a, CodeTake::Taken(_)))
            .collect();
        assert_eq!(taken.len(), 1, "exactly one Taken");
        assert_eq!(taken[0], &CodeTake::Taken(record));
        assert_eq!(
            answers
                .iter()
                .filter(|a| **a == CodeTake::AlreadyTaken)
                .count(),
            RACERS - 1,
            "all others AlreadyTaken"
        );
    }
}

async fn rotate_race(target: Target) {
    let stores = two_instances(&target).await;
    let now = now();
    let g = OsRandom.grant_id();
    let (a0, r0) = (key(TokenKind::Access, g), key(TokenKind::Refresh, g));
    let first = NewTokens {
        access: (a0.hash, token(now, 300)),
        refresh: Some((r0.hash, token(now, 600))),
    };
    assert!(stores[1].issue(g, first).await.unwrap());
    let mut old = r0;
    for _round in 0..3 {
        let contenders: Arc<Vec<(SecretKey, SecretKey)>> = Arc::new(
            (0..RACERS)
                .map(|_| (key(TokenKind::Access, g), key(TokenKind::Refresh, g)))
                .collect(),
        );
        let c = Arc::clone(&contenders);
        let answers = race(&stores, move |i, s| {
            let (a, r) = c[i];
            async move {
                let t = NewTokens {
                    access: (a.hash, token(now, 300)),
                    refresh: Some((r.hash, token(now, 600))),
                };
                s.rotate_refresh(old, t, now).await.unwrap()
            }
        })
        .await;
        let winners: Vec<usize> = (0..RACERS).filter(|&i| answers[i]).collect();
        assert_eq!(winners.len(), 1, "exactly one rotation succeeds");
        let (wa, wr) = contenders[winners[0]];
        // Seen from the other instance too.
        let other = &stores[(winners[0] + 1) % 2];
        assert_eq!(
            other.refresh_token(old, now).await.unwrap(),
            RefreshLookup::Retired
        );
        assert!(matches!(
            other.refresh_token(wr, now).await.unwrap(),
            RefreshLookup::Current(_)
        ));
        assert!(other.access_token(wa, now).await.unwrap().is_some());
        for (i, (a, r)) in contenders.iter().enumerate() {
            if i != winners[0] {
                assert_eq!(
                    other.access_token(*a, now).await.unwrap(),
                    None,
                    "loser's access token"
                );
                assert_eq!(
                    other.refresh_token(*r, now).await.unwrap(),
                    RefreshLookup::Unknown
                );
            }
        }
        old = wr;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_code_two_instances_standalone() {
    if let Some(t) = Target::standalone() {
        take_code_race(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_code_two_instances_cluster() {
    if let Some(t) = Target::cluster() {
        take_code_race(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_two_instances_standalone() {
    if let Some(t) = Target::standalone() {
        rotate_race(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_two_instances_cluster() {
    if let Some(t) = Target::cluster() {
        rotate_race(t).await;
    }
}

/// RFC 8628 §3.5: many pollers of one approved device code, across two
/// instances, get the approval once.
async fn poll_device_race(target: Target) {
    use tessera::storage::{DevicePoll, DeviceRecord, DeviceStatus, DeviceStore};
    let stores = two_instances(&target).await;
    let now = now();
    for _round in 0..3 {
        let device = key(TokenKind::Device, OsRandom.grant_id());
        let user_code = tessera::TokenHash::of(&format!("user_code:{:?}", OsRandom.bytes32()));
        let record = DeviceRecord {
            client_id: ClientId::new("racer").unwrap(),
            scope: Scope::parse("a").unwrap(),
            resource: None,
            status: DeviceStatus::Pending,
            interval: 5,
            last_polled_at: None,
            expires_at: now + Duration::seconds(600),
        };
        assert!(
            stores[0]
                .put_device(device, user_code, record, now)
                .await
                .unwrap()
        );
        let approved = DeviceStatus::Approved {
            subject: Subject::new("alice"),
        };
        assert!(
            stores[1]
                .decide_device(user_code, approved, now)
                .await
                .unwrap()
        );
        let answers = race(&stores, move |_, store| async move {
            store
                .poll_device(device, &ClientId::new("racer").unwrap(), now)
                .await
                .unwrap()
        })
        .await;
        let winners = answers
            .iter()
            .filter(|a| matches!(a, DevicePoll::Approved(_)))
            .count();
        assert_eq!(winners, 1, "pollers that got the approval");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poll_device_two_instances_standalone() {
    if let Some(t) = Target::standalone() {
        poll_device_race(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poll_device_two_instances_cluster() {
    if let Some(t) = Target::cluster() {
        poll_device_race(t).await;
    }
}
