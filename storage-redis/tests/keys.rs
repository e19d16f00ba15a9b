//! The key layout: prefixes isolate issuers, every grant key expires, grant
//! meta lives as long as its longest record; clients and seeding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Target;
use std::sync::Arc;
use tessera::storage::{
    CodeRecord, CodeTake, GrantStore, NewTokens, PendingAuthorization, PendingStore, Subject,
    TokenRecord,
};
use tessera::{
    Client, ClientId, ClientRegistry, OsRandom, Random, Scope, Secret, SecretKey, TokenKind,
};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn key(kind: TokenKind, g: tessera::GrantId) -> SecretKey {
    Secret::mint(kind, g, OsRandom.bytes32()).key()
}

fn token(now: OffsetDateTime, ttl: i64) -> TokenRecord {
    TokenRecord {
        client_id: ClientId::new("c").unwrap(),
        subject: None,
        scope: Scope::parse("a").unwrap(),
        audience: None,
        issued_at: now,
        expires_at: now + Duration::seconds(ttl),
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    }
}

#[tokio::test]
async fn every_key_expires_and_meta_outlives_its_records() {
    let Some(target) = Target::standalone() else {
        return;
    };
    let Target::Standalone(url) = &target else {
        unreachable!()
    };
    let store = common::standalone(url).await;
    let mut raw = target.raw().await;
    let now = now();
    let g = OsRandom.grant_id();
    let c = key(TokenKind::Code, g);
    store
        .put_code(
            c,
            CodeRecord {
                client_id: ClientId::new("c").unwrap(),
                redirect_uri: None,
                challenge: None,
                subject: Subject::new("alice"),
                scope: Scope::parse("a").unwrap(),
                audience: None,
                expires_at: now + Duration::seconds(60),
                dpop_jkt: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store.take_code(c, now).await.unwrap(),
        CodeTake::Taken(_)
    ));
    let (a, r) = (key(TokenKind::Access, g), key(TokenKind::Refresh, g));
    let t = NewTokens {
        access: (a.hash, token(now, 600)),
        refresh: Some((r.hash, token(now, 7200))),
    };
    assert!(store.issue(g, t).await.unwrap());
    let r2 = key(TokenKind::Refresh, g);
    let t = NewTokens {
        access: (key(TokenKind::Access, g).hash, token(now, 600)),
        refresh: Some((r2.hash, token(now, 3600))),
    };
    assert!(store.rotate_refresh(r, t, now).await.unwrap());
    store.revoke_grant(OsRandom.grant_id()).await.unwrap();
    let p = key(TokenKind::Pending, OsRandom.grant_id());
    store
        .put_pending(
            p,
            PendingAuthorization {
                client_id: ClientId::new("c").unwrap(),
                redirect_uri: "https://c.example/cb".into(),
                redirect_uri_sent: false,
                scope: Scope::parse("a").unwrap(),
                audience: None,
                state: None,
                challenge: None,
                expires_at: now + Duration::seconds(600),
                dpop_jkt: None,
            },
        )
        .await
        .unwrap();
    store
        .put_client(&Client::public(ClientId::new("c").unwrap(), "C"))
        .await
        .unwrap();

    let keys: Vec<String> = raw
        .query(redis::cmd("KEYS").arg(format!("{}*", store.key_prefix())))
        .await;
    assert!(keys.len() >= 8, "{keys:?}");
    for k in &keys {
        let ttl: i64 = raw.query(redis::cmd("PTTL").arg(k)).await;
        let is_client = k.ends_with("clients") || k.contains("client:");
        if is_client {
            assert_eq!(ttl, -1, "clients are registrations, kept: {k}");
        } else {
            assert!(ttl > 0, "{k} has no expiry (PTTL {ttl})");
        }
    }
    // The grant meta lives as long as the longest record (the first refresh token, 2 h).
    let meta = format!("{}{{{}}}:g", store.key_prefix(), g.to_key());
    let meta_ttl: i64 = raw.query(redis::cmd("PTTL").arg(&meta)).await;
    let longest: i64 = raw
        .query(redis::cmd("PTTL").arg(format!(
            "{}{{{}}}:r:{}",
            store.key_prefix(),
            g.to_key(),
            r.hash.to_key()
        )))
        .await;
    assert!(
        meta_ttl >= longest && longest > 7_000_000,
        "meta {meta_ttl} ms, longest record {longest} ms"
    );
    // Keys of one grant share the hash tag.
    for k in keys.iter().filter(|k| k.contains(&g.to_key())) {
        assert!(
            k.starts_with(&format!("{}{{{}}}:", store.key_prefix(), g.to_key())),
            "{k}"
        );
    }
}

#[tokio::test]
async fn prefixes_isolate_issuers() {
    let Some(Target::Standalone(url)) = Target::standalone() else {
        return;
    };
    let a = common::standalone(&url).await;
    let b = common::standalone(&url).await;
    let now = now();
    let g = OsRandom.grant_id();
    let at = key(TokenKind::Access, g);
    let t = NewTokens {
        access: (at.hash, token(now, 60)),
        refresh: None,
    };
    assert!(a.issue(g, t).await.unwrap());
    assert!(a.access_token(at, now).await.unwrap().is_some());
    assert!(b.access_token(at, now).await.unwrap().is_none());
    b.revoke_grant(g).await.unwrap();
    assert!(
        a.access_token(at, now).await.unwrap().is_some(),
        "b's revocation is b's"
    );
}

async fn clients(target: Target) {
    let store = match &target {
        Target::Standalone(u) => common::standalone(u).await,
        Target::Cluster(u) => common::cluster(u).await,
    };
    assert!(store.is_empty().await.unwrap());
    assert!(!store.has_clients().await.unwrap());
    let id = ClientId::new("photo {app}").unwrap();
    assert_eq!(store.client(&id).await.unwrap(), None);
    let client = Client::public(id.clone(), "Photos");
    store.put_client(&client).await.unwrap();
    assert!(store.has_clients().await.unwrap());
    assert!(!store.is_empty().await.unwrap());
    assert_eq!(
        store.client(&id).await.unwrap(),
        Some(Arc::new(client.clone()))
    );
    // Replacing is fine.
    let renamed = Client::public(id.clone(), "Photos 2");
    store.put_client(&renamed).await.unwrap();
    assert_eq!(store.client(&id).await.unwrap(), Some(Arc::new(renamed)));
    // Another prefix sees none of it.
    let other = common::with_prefix(&target, &common::unique_prefix()).await;
    assert!(other.is_empty().await.unwrap());
    assert_eq!(other.client(&id).await.unwrap(), None);
}

#[tokio::test]
async fn clients_standalone() {
    if let Some(t) = Target::standalone() {
        clients(t).await;
    }
}

#[tokio::test]
async fn clients_cluster() {
    if let Some(t) = Target::cluster() {
        clients(t).await;
    }
}

/// A fresh client-credentials grant is one `SET` of a standalone record
/// (`…:s:<hash>`, no grant meta) when the token expires within the
/// revoked-grant TTL, and a revocation mark outlives it; a longer-lived
/// token gets the grant meta.
#[tokio::test]
async fn a_fresh_grant_is_one_standalone_record_that_a_revocation_outlives() {
    let Some(target) = Target::standalone() else {
        return;
    };
    let Target::Standalone(url) = &target else {
        unreachable!()
    };
    let prefix = common::unique_prefix();
    let store = tessera_redis::RedisStore::connect(url.as_str())
        .prefix(prefix.clone())
        .revoked_grant_ttl(std::time::Duration::from_secs(600))
        .await
        .unwrap();
    let mut raw = target.raw().await;
    let now = now();
    let grant_key = |g: tessera::GrantId, tail: &str| format!("{prefix}{{{}}}:{tail}", g.to_key());
    let fresh = |ttl: i64| {
        let g = OsRandom.grant_id();
        let a = key(TokenKind::Access, g);
        let t = NewTokens {
            access: (a.hash, token(now, ttl)),
            refresh: None,
        };
        (g, a, t)
    };
    let pttl = |k: String| redis::cmd("PTTL").arg(k).clone();

    // Within the TTL: the standalone record alone, expiring with the token.
    let (g, a, t) = fresh(300);
    assert!(store.issue_new_grant(g, t).await.unwrap());
    let standalone = grant_key(g, &format!("s:{}", a.hash.to_key()));
    let exists: i64 = raw
        .query(
            redis::cmd("EXISTS")
                .arg(grant_key(g, "g"))
                .arg(grant_key(g, &format!("a:{}", a.hash.to_key()))),
        )
        .await;
    assert_eq!(exists, 0, "no meta, no grant record");
    let token_ttl: i64 = raw.query(&pttl(standalone.clone())).await;
    assert!((290_000..=300_000).contains(&token_ttl), "{token_ttl}");
    assert!(store.access_token(a, now).await.unwrap().is_some());
    // Revoked: the mark (a tombstone) outlives the record.
    store.revoke_grant(g).await.unwrap();
    assert_eq!(store.access_token(a, now).await.unwrap(), None);
    let mark_ttl: i64 = raw.query(&pttl(grant_key(g, "g"))).await;
    let token_ttl: i64 = raw.query(&pttl(standalone)).await;
    assert!(
        mark_ttl > token_ttl,
        "mark {mark_ttl} ms, token {token_ttl} ms"
    );

    // A token joins a standalone grant, shorter-lived; a revocation mark
    // on the meta then still outlives the standalone record.
    let (g, a, t) = fresh(500);
    assert!(store.issue_new_grant(g, t).await.unwrap());
    let (_, _, joined) = fresh(30);
    let b = key(TokenKind::Access, g);
    let joined = NewTokens {
        access: (b.hash, joined.access.1),
        refresh: None,
    };
    assert!(store.issue(g, joined).await.unwrap());
    assert!(store.access_token(a, now).await.unwrap().is_some());
    store.revoke_grant(g).await.unwrap();
    assert_eq!(store.access_token(a, now).await.unwrap(), None);
    assert_eq!(store.access_token(b, now).await.unwrap(), None);
    let mark_ttl: i64 = raw.query(&pttl(grant_key(g, "g"))).await;
    let token_ttl: i64 = raw
        .query(&pttl(grant_key(g, &format!("s:{}", a.hash.to_key()))))
        .await;
    assert!(
        mark_ttl > token_ttl,
        "mark {mark_ttl} ms, token {token_ttl} ms"
    );

    // Beyond the TTL: the grant meta and a grant record, as `issue` writes.
    let (g, a, t) = fresh(1200);
    assert!(store.issue_new_grant(g, t).await.unwrap());
    let exists: i64 = raw
        .query(
            redis::cmd("EXISTS")
                .arg(grant_key(g, "g"))
                .arg(grant_key(g, &format!("a:{}", a.hash.to_key())))
                .arg(grant_key(g, &format!("s:{}", a.hash.to_key()))),
        )
        .await;
    assert_eq!(exists, 2, "meta and grant record, no standalone one");
    store.revoke_grant(g).await.unwrap();
    assert_eq!(store.access_token(a, now).await.unwrap(), None);
}
