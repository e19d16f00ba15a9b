//! Foreign or corrupted values under the store's keys: every method answers
//! `StoreError::Corrupt` or a clean answer, never panics, never `Other`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Raw, Target};
use tessera::storage::{
    CodeRecord, GrantStore, NewTokens, PendingAuthorization, PendingStore, Subject, TokenRecord,
};
use tessera::{
    Client, ClientId, ClientRegistry, GrantId, OsRandom, Random, Scope, Secret, SecretKey,
    StoreError, TokenKind,
};
use tessera_redis::RedisStore;
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn key(kind: TokenKind, grant: GrantId) -> SecretKey {
    Secret::mint(kind, grant, OsRandom.bytes32()).key()
}

fn token(now: OffsetDateTime) -> TokenRecord {
    TokenRecord {
        client_id: ClientId::new("c").unwrap(),
        subject: None,
        scope: Scope::parse("a").unwrap(),
        audience: None,
        issued_at: now,
        expires_at: now + Duration::seconds(300),
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    }
}

fn code(now: OffsetDateTime) -> CodeRecord {
    CodeRecord {
        client_id: ClientId::new("c").unwrap(),
        redirect_uri: None,
        challenge: None,
        subject: Subject::new("alice"),
        scope: Scope::parse("a").unwrap(),
        audience: None,
        expires_at: now + Duration::seconds(60),
        dpop_jkt: None,
    }
}

fn pending(now: OffsetDateTime) -> PendingAuthorization {
    PendingAuthorization {
        client_id: ClientId::new("c").unwrap(),
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

/// The documented key layout (see the crate docs).
fn grant_key(store: &RedisStore, g: GrantId, suffix: &str) -> String {
    format!("{}{{{}}}:{suffix}", store.key_prefix(), g.to_key())
}

fn record_key(store: &RedisStore, kind: char, k: SecretKey) -> String {
    grant_key(store, k.grant, &format!("{kind}:{}", k.hash.to_key()))
}

/// Foreign values to plant: a description and how to write it under a key.
#[derive(Clone, Copy, Debug)]
enum Foreign {
    Text(&'static [u8]),
    Hash,
    List,
    Set,
}

const FOREIGN: &[Foreign] = &[
    Foreign::Text(b"not json"),
    Foreign::Text(b""),
    Foreign::Text(b"\xff\xfe\x00garbage"),
    Foreign::Text(b"null"),
    Foreign::Text(b"[1,2,3]"),
    Foreign::Text(b"{\"expires_at\":\"tomorrow\"}"),
    // Decodes for the script (numeric expiry far ahead) but not as a record.
    Foreign::Text(b"{\"expires_at\":99999999999}"),
    Foreign::Text(b"{\"expires_at\":1e300}"),
    Foreign::Text(b"{\"client_id\":\"c\",\"expires_at\":99999999999,\"scope\":\"bad scope \\\\\"}"),
    Foreign::Hash,
    Foreign::List,
    Foreign::Set,
];

async fn plant(raw: &mut Raw, k: &str, v: Foreign) {
    let _: () = raw.query(redis::cmd("DEL").arg(k)).await;
    match v {
        Foreign::Text(t) => {
            raw.query::<()>(redis::cmd("SET").arg(k).arg(t).arg("EX").arg(600))
                .await
        }
        Foreign::Hash => {
            raw.query::<()>(
                redis::cmd("HSET")
                    .arg(k)
                    .arg("exp")
                    .arg("x")
                    .arg("cur")
                    .arg("y"),
            )
            .await
        }
        Foreign::List => raw.query::<()>(redis::cmd("RPUSH").arg(k).arg("a")).await,
        Foreign::Set => raw.query::<()>(redis::cmd("SADD").arg(k).arg("a")).await,
    }
    let _: () = raw.query(redis::cmd("EXPIRE").arg(k).arg(600)).await;
}

/// A store answer is acceptable: a clean value or `Corrupt`.
#[track_caller]
fn clean_or_corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Ok(_) | Err(StoreError::Corrupt(_)) => {}
        Err(e) => panic!("{what}: expected a clean answer or Corrupt, got {e:?}"),
    }
}

#[track_caller]
fn corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "{what}: expected Corrupt, got {r:?}"
    );
}

/// Every method against every foreign value under every key kind.
async fn sweep(target: Target) {
    let store = match &target {
        Target::Standalone(u) => common::standalone(u).await,
        Target::Cluster(u) => common::cluster(u).await,
    };
    let mut raw = target.raw().await;
    let now = now();

    for (i, v) in FOREIGN.iter().enumerate() {
        let ctx = |slot: &str| format!("foreign value #{i} {v:?} as {slot}");
        let g = OsRandom.grant_id();
        let c = key(TokenKind::Code, g);
        let a = key(TokenKind::Access, g);
        let r = key(TokenKind::Refresh, g);
        let p = key(TokenKind::Pending, g);
        let fresh = |g: GrantId| NewTokens {
            access: (key(TokenKind::Access, g).hash, token(now)),
            refresh: Some((key(TokenKind::Refresh, g).hash, token(now))),
        };

        // Foreign value as grant meta: every grant step is Corrupt (or clean
        // for a step that does not need the meta).
        plant(&mut raw, &grant_key(&store, g, "g"), *v).await;
        let meta_is_hash = matches!(v, Foreign::Hash);
        let checks: Vec<(&str, Result<String, StoreError>)> = vec![
            (
                "put_code",
                store.put_code(c, code(now)).await.map(|x| format!("{x:?}")),
            ),
            (
                "take_code",
                store.take_code(c, now).await.map(|x| format!("{x:?}")),
            ),
            (
                "issue",
                store.issue(g, fresh(g)).await.map(|x| format!("{x:?}")),
            ),
            (
                "access_token",
                store.access_token(a, now).await.map(|x| format!("{x:?}")),
            ),
            (
                "refresh_token",
                store.refresh_token(r, now).await.map(|x| format!("{x:?}")),
            ),
            (
                "rotate_refresh",
                store
                    .rotate_refresh(r, fresh(g), now)
                    .await
                    .map(|x| format!("{x:?}")),
            ),
            (
                "revoke_grant",
                store.revoke_grant(g).await.map(|x| format!("{x:?}")),
            ),
        ];
        for (name, res) in checks {
            if meta_is_hash {
                clean_or_corrupt(&ctx(&format!("grant meta, {name}")), res);
            } else {
                corrupt(&ctx(&format!("grant meta, {name}")), res);
            }
        }

        // Foreign value as a record, with a sound grant meta.
        let g = OsRandom.grant_id();
        let c = key(TokenKind::Code, g);
        let (a, r) = (key(TokenKind::Access, g), key(TokenKind::Refresh, g));
        assert!(
            store
                .issue(
                    g,
                    NewTokens {
                        access: (a.hash, token(now)),
                        refresh: Some((r.hash, token(now)))
                    }
                )
                .await
                .unwrap()
        );
        plant(&mut raw, &record_key(&store, 'c', c), *v).await;
        // Whether the script rejects it or Rust fails to decode what the
        // script handed out, taking it is Corrupt.
        corrupt(&ctx("code record"), store.take_code(c, now).await);
        clean_or_corrupt(&ctx("code record, again"), store.take_code(c, now).await);

        plant(&mut raw, &record_key(&store, 'a', a), *v).await;
        corrupt(&ctx("access record"), store.access_token(a, now).await);
        plant(&mut raw, &record_key(&store, 'r', r), *v).await;
        corrupt(&ctx("refresh record"), store.refresh_token(r, now).await);
        clean_or_corrupt(
            &ctx("refresh record, rotate"),
            store.rotate_refresh(r, fresh(g), now).await,
        );
        clean_or_corrupt(
            &ctx("revoke_access_token"),
            store.revoke_access_token(a).await,
        );

        // Foreign value as a standalone access record (no grant meta).
        let lone = key(TokenKind::Access, OsRandom.grant_id());
        plant(&mut raw, &record_key(&store, 's', lone), *v).await;
        corrupt(
            &ctx("standalone access record"),
            store.access_token(lone, now).await,
        );
        clean_or_corrupt(
            &ctx("standalone, revoke_access_token"),
            store.revoke_access_token(lone).await,
        );

        let pk = record_key(&store, 'p', p);
        plant(&mut raw, &pk, *v).await;
        corrupt(&ctx("pending, get"), store.get_pending(p, now).await);
        corrupt(&ctx("pending, take"), store.take_pending(p, now).await);
        clean_or_corrupt(
            &ctx("pending, put over it"),
            store.put_pending(p, pending(now)).await,
        );

        let id = ClientId::new(format!("client-{i}")).unwrap();
        let ck = format!("{}client:{}", store.key_prefix(), id.as_str());
        plant(&mut raw, &ck, *v).await;
        corrupt(&ctx("client"), store.client(&id).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_values_standalone() {
    if let Some(t) = Target::standalone() {
        sweep(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_values_cluster() {
    if let Some(t) = Target::cluster() {
        sweep(t).await;
    }
}

#[tokio::test]
async fn a_client_stored_under_another_id_is_corrupt() {
    let Some(url) = common::standalone_url() else {
        return;
    };
    let store = common::standalone(&url).await;
    let mut raw = Target::Standalone(url).raw().await;
    let alice = ClientId::new("alice-app").unwrap();
    let json = serde_json::to_string(&Client::public(alice, "Alice")).unwrap();
    let mallory = ClientId::new("mallory-app").unwrap();
    let key = format!("{}client:{}", store.key_prefix(), mallory.as_str());
    let _: () = raw.query(redis::cmd("SET").arg(&key).arg(json)).await;
    corrupt("client under another id", store.client(&mallory).await);
}
