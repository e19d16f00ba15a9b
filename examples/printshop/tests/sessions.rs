//! The session store, memory and Redis side by side: pending authorizations
//! are single use (also when callbacks race), links round-trip, and the
//! limits and timeouts are the same. The Redis half needs `TESSERA_REDIS_URL`
//! (see `support::redis_url`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use oauth2::{AccessToken, CsrfToken, PkceCodeChallenge, RefreshToken};
use printshop::session::{
    COOKIE_NAME, IDLE_TIMEOUT, Link, MAX_PENDING, PENDING_TIMEOUT, Pending, REDIS_PREFIX,
    SessionStore, StoreError,
};
use support::redis_url;
use tokio::sync::Barrier;

/// The stores under test: memory, and Redis when it is configured.
async fn stores() -> Vec<(&'static str, SessionStore)> {
    let mut stores = vec![("memory", SessionStore::open("memory").await.unwrap())];
    if let Some(url) = redis_url() {
        stores.push(("redis", SessionStore::open(&url).await.unwrap()));
    }
    stores
}

/// A raw connection to the test Redis, for looking at keys.
async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn pending_started(started: SystemTime) -> (String, Pending) {
    let (_, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new_random();
    let secret = state.secret().clone();
    (
        secret,
        Pending {
            state,
            verifier,
            started,
        },
    )
}

fn pending() -> (String, Pending) {
    pending_started(SystemTime::now())
}

fn cookie(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.append(
        COOKIE,
        HeaderValue::from_str(&format!("{COOKIE_NAME}={id}")).unwrap(),
    );
    headers
}

#[tokio::test]
async fn pending_is_single_use_and_keeps_its_verifier() {
    for (name, store) in stores().await {
        let id = store.create().await.unwrap();
        assert_eq!(
            store.find(&cookie(&id)).await,
            Ok(Some(id.clone())),
            "{name}"
        );
        let (state, p) = pending();
        let verifier = p.verifier.secret().clone();
        store.push_pending(&id, p).await.unwrap();
        assert!(
            store.take_pending(&id, "wrong").await.unwrap().is_none(),
            "{name}"
        );
        let taken = store.take_pending(&id, &state).await.unwrap().expect(name);
        assert_eq!(taken.state.secret(), &state, "{name}");
        assert_eq!(taken.verifier.secret(), &verifier, "{name}");
        assert!(!taken.is_expired(SystemTime::now()), "{name}");
        assert!(
            store.take_pending(&id, &state).await.unwrap().is_none(),
            "{name}: single use"
        );
        // Another session cannot take this session's state.
        let (state, p) = pending();
        store.push_pending(&id, p).await.unwrap();
        let other = store.create().await.unwrap();
        assert!(
            store.take_pending(&other, &state).await.unwrap().is_none(),
            "{name}"
        );
        assert!(
            store.take_pending(&id, &state).await.unwrap().is_some(),
            "{name}"
        );
    }
}

/// 16 callbacks with the same `state` at once: exactly one gets the verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_takes_of_one_state_yield_exactly_one() {
    const RACERS: usize = 16;
    let mut backends: Vec<(&str, Vec<Arc<SessionStore>>)> = vec![(
        "memory",
        vec![Arc::new(SessionStore::open("memory").await.unwrap())],
    )];
    if let Some(url) = redis_url() {
        // Two stores, two connections: as two PrintShop processes would race.
        let a = SessionStore::open(&url).await.unwrap();
        let b = SessionStore::open(&url).await.unwrap();
        backends.push(("redis", vec![Arc::new(a), Arc::new(b)]));
    }
    for (name, stores) in backends {
        for round in 0..10 {
            let id = stores[0].create().await.unwrap();
            let (state, p) = pending();
            stores[0].push_pending(&id, p).await.unwrap();
            let barrier = Arc::new(Barrier::new(RACERS));
            let tasks: Vec<_> = (0..RACERS)
                .map(|i| {
                    let store = Arc::clone(&stores[i % stores.len()]);
                    let barrier = Arc::clone(&barrier);
                    let (id, state) = (id.clone(), state.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.take_pending(&id, &state).await.unwrap().is_some()
                    })
                })
                .collect();
            let mut wins = 0;
            for task in tasks {
                if task.await.unwrap() {
                    wins += 1;
                }
            }
            assert_eq!(
                wins, 1,
                "{name}, round {round}: {wins} callbacks took one state"
            );
        }
    }
}

#[tokio::test]
async fn link_round_trips_and_is_taken_once() {
    for (name, store) in stores().await {
        let id = store.create().await.unwrap();
        assert!(store.link(&id).await.unwrap().is_none(), "{name}");
        let expires_at = SystemTime::now() + Duration::from_secs(3600);
        let link = Link {
            access: AccessToken::new("tsa_access_1".into()),
            refresh: Some(RefreshToken::new("tsr_refresh_1".into())),
            expires_at: Some(expires_at),
        };
        store.set_link(&id, &link).await.unwrap();
        let got = store.link(&id).await.unwrap().expect(name);
        assert_eq!(got.access.secret(), "tsa_access_1", "{name}");
        assert_eq!(
            got.refresh.as_ref().map(|r| r.secret().as_str()),
            Some("tsr_refresh_1")
        );
        let skew = got
            .expires_at
            .unwrap()
            .duration_since(expires_at)
            .unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_millis(2), "{name}: {skew:?}");
        assert!(!got.is_expired(SystemTime::now()), "{name}");

        // Replaced (a refresh), then without refresh token or expiry.
        let rotated = Link {
            access: AccessToken::new("tsa_access_2".into()),
            refresh: None,
            expires_at: None,
        };
        store.set_link(&id, &rotated).await.unwrap();
        let got = store.link(&id).await.unwrap().expect(name);
        assert_eq!(got.access.secret(), "tsa_access_2", "{name}");
        assert!(got.refresh.is_none() && got.expires_at.is_none(), "{name}");

        let taken = store.take_link(&id).await.unwrap().expect(name);
        assert_eq!(taken.access.secret(), "tsa_access_2", "{name}");
        assert!(store.take_link(&id).await.unwrap().is_none(), "{name}");
        assert!(store.link(&id).await.unwrap().is_none(), "{name}");
        // The session itself lives on.
        assert!(store.find(&cookie(&id)).await.unwrap().is_some(), "{name}");
    }
}

#[tokio::test]
async fn pending_limit_and_timeout_match_memory() {
    for (name, store) in stores().await {
        let id = store.create().await.unwrap();
        let base = SystemTime::now() - Duration::from_secs(60);
        let mut states = Vec::new();
        for i in 0..MAX_PENDING + 2 {
            let (state, p) = pending_started(base + Duration::from_secs(i as u64));
            states.push(state);
            store.push_pending(&id, p).await.unwrap();
        }
        assert_eq!(store.pending_count(&id).await, Ok(MAX_PENDING), "{name}");
        for (i, state) in states.iter().enumerate() {
            let taken = store.take_pending(&id, state).await.unwrap();
            assert_eq!(
                taken.is_some(),
                i >= 2,
                "{name}: the two oldest were dropped ({i})"
            );
        }

        // An expired one is still returned by take (for the "took too long" page)...
        let long_ago = SystemTime::now() - PENDING_TIMEOUT - Duration::from_secs(1);
        let (old, p) = pending_started(long_ago);
        store.push_pending(&id, p).await.unwrap();
        let taken = store.take_pending(&id, &old).await.unwrap().expect(name);
        assert!(taken.is_expired(SystemTime::now()), "{name}");
        // ...but the next push forgets it.
        let (old, p) = pending_started(long_ago);
        store.push_pending(&id, p).await.unwrap();
        let (fresh, p) = pending();
        store.push_pending(&id, p).await.unwrap();
        assert_eq!(store.pending_count(&id).await, Ok(1), "{name}");
        assert!(
            store.take_pending(&id, &old).await.unwrap().is_none(),
            "{name}"
        );
        assert!(
            store.take_pending(&id, &fresh).await.unwrap().is_some(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn gone_sessions_are_not_recreated() {
    for (name, store) in stores().await {
        let id = "no-such-session-0123456789";
        let (state, p) = pending();
        store.push_pending(id, p).await.unwrap();
        let link = Link {
            access: AccessToken::new("a".into()),
            refresh: None,
            expires_at: None,
        };
        store.set_link(id, &link).await.unwrap();
        assert!(
            store.take_pending(id, &state).await.unwrap().is_none(),
            "{name}"
        );
        assert!(store.link(id).await.unwrap().is_none(), "{name}");
        assert_eq!(store.find(&cookie(id)).await, Ok(None), "{name}");
    }
}

#[tokio::test]
async fn redis_keys_are_prefixed_and_expire_after_idle_timeout() {
    let Some(url) = redis_url() else { return };
    let store = SessionStore::open(&url).await.unwrap();
    let mut conn = raw(&url).await;
    let idle = i64::try_from(IDLE_TIMEOUT.as_millis()).unwrap();
    let probe = conn.clone();
    let pttl = |key: String| {
        let mut conn = probe.clone();
        async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };

    let id = store.create().await.unwrap();
    let key = format!("{REDIS_PREFIX}{id}");
    let ttl = pttl(key.clone()).await;
    assert!(
        ttl > idle - 10_000 && ttl <= idle,
        "fresh session TTL {ttl}"
    );

    // A visit renews the TTL.
    let _: bool = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.find(&cookie(&id)).await.unwrap().is_some());
    let ttl = pttl(key.clone()).await;
    assert!(ttl > idle - 10_000, "renewed TTL {ttl}");

    // What is stored: the verifier and tokens, under this session's key only.
    let (state, p) = pending();
    let verifier = p.verifier.secret().clone();
    store.push_pending(&id, p).await.unwrap();
    let link = Link {
        access: AccessToken::new("tsa_in_redis".into()),
        refresh: None,
        expires_at: None,
    };
    store.set_link(&id, &link).await.unwrap();
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let pending_field = format!("p:{state}");
    assert!(
        fields
            .iter()
            .any(|(f, v)| *f == pending_field && v.contains(&verifier)),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|(f, v)| f == "link" && v.contains("tsa_in_redis")),
        "{fields:?}"
    );
    assert!(pttl(key.clone()).await > idle - 10_000);

    // Idle too long: Redis forgets it, and so does PrintShop.
    let _: bool = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.find(&cookie(&id)).await, Ok(None));
    assert!(store.take_pending(&id, &state).await.unwrap().is_none());
    assert!(store.link(&id).await.unwrap().is_none());
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists, "nothing recreated without a TTL");
}

#[tokio::test]
async fn corrupt_redis_data_is_an_error_not_a_panic() {
    let Some(url) = redis_url() else { return };
    let store = SessionStore::open(&url).await.unwrap();
    let mut conn = raw(&url).await;
    let id = store.create().await.unwrap();
    let key = format!("{REDIS_PREFIX}{id}");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("link")
        .arg("{not json")
        .arg("p:somestate")
        .arg("[]")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        store.link(&id).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.take_pending(&id, "somestate").await,
        Err(StoreError::Unavailable(_))
    ));
    // A push drops the unreadable pending entry instead of failing.
    let (state, p) = pending();
    store.push_pending(&id, p).await.unwrap();
    assert_eq!(store.pending_count(&id).await, Ok(1));
    assert!(store.take_pending(&id, &state).await.unwrap().is_some());
}

#[tokio::test]
async fn unreachable_redis_is_a_one_line_open_error() {
    let started = std::time::Instant::now();
    let error = SessionStore::open("redis://:secret@127.0.0.1:1/0")
        .await
        .expect_err("nothing listens on port 1");
    let text = error.to_string();
    assert!(
        text.starts_with("cannot use the Redis store redis://:****@127.0.0.1:1/0: "),
        "{text}"
    );
    assert!(!text.contains("secret") && !text.contains('\n'), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
