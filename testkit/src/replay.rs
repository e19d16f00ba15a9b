//! The replay cache checks ([`ReplayStore`]): a one-time value is accepted
//! once, namespaces and owners do not mix, expired entries are forgotten,
//! and of many racing callers (on one or several store instances sharing
//! a backend) exactly one wins.

use std::sync::Arc;

use tessera::storage::{ReplayKey, ReplayNamespace, ReplayStore};
use tessera::{OsRandom, Random};
use time::OffsetDateTime;

use crate::{RACERS, base_now, ok, race, require_multi_thread, secs};

/// A `jti` no other check uses.
fn fresh_jti() -> String {
    OsRandom.grant_id().to_key()
}

async fn first_use<S: ReplayStore + ?Sized>(
    store: &S,
    key: ReplayKey,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
    check: &str,
) -> bool {
    ok(store.first_use(key, expires_at, now).await, check)
}

/// A value is accepted once; the same `jti` of another owner or in another
/// namespace is another value (RFC 9449 §11.1: unique per key; RFC 7523 §3).
pub async fn replay_first_use_once<S: ReplayStore + ?Sized>(store: Arc<S>) {
    const C: &str = "replay_first_use_once";
    let now = base_now();
    let until = now + secs(60);
    let jti = fresh_jti();
    let key = ReplayKey::new(ReplayNamespace::Dpop, "thumbprint-a", &jti);
    assert!(
        first_use(&*store, key, until, now, C).await,
        "[{C}] the first use is accepted"
    );
    assert!(
        !first_use(&*store, key, until, now, C).await,
        "[{C}] the second use is a replay"
    );
    assert!(
        !first_use(&*store, key, until, now + secs(30), C).await,
        "[{C}] still a replay while the entry lives"
    );
    for (what, other) in [
        (
            "another owner",
            ReplayKey::new(ReplayNamespace::Dpop, "thumbprint-b", &jti),
        ),
        (
            "another namespace",
            ReplayKey::new(ReplayNamespace::ClientAssertion, "thumbprint-a", &jti),
        ),
        (
            "the third namespace",
            ReplayKey::new(ReplayNamespace::JwtBearer, "thumbprint-a", &jti),
        ),
    ] {
        assert!(
            first_use(&*store, other, until, now, C).await,
            "[{C}] the same jti of {what} is another value"
        );
        assert!(
            !first_use(&*store, other, until, now, C).await,
            "[{C}] ... and is itself accepted once"
        );
    }
}

/// An entry whose expiry has passed is forgotten: the value is accepted
/// again (the window it was remembered for is over).
pub async fn replay_expired_entry_is_forgotten<S: ReplayStore + ?Sized>(store: Arc<S>) {
    const C: &str = "replay_expired_entry_is_forgotten";
    let now = base_now();
    let key = ReplayKey::new(ReplayNamespace::Dpop, "thumbprint", &fresh_jti());
    // Remembered until a moment already past (by the store's clock too).
    assert!(first_use(&*store, key, now - secs(5), now, C).await);
    assert!(
        first_use(&*store, key, now + secs(60), now, C).await,
        "[{C}] an entry that expired before `now` counts as absent"
    );
    assert!(
        !first_use(&*store, key, now + secs(60), now, C).await,
        "[{C}] the renewed entry is remembered"
    );
    assert!(
        !first_use(&*store, key, now - secs(5), now, C).await,
        "[{C}] while it lives, even a use whose own window is over is a replay"
    );
}

/// [`RACERS`] tasks present one value at once, in several rounds: exactly
/// one is accepted each time.
pub async fn race_first_use<S: ReplayStore + ?Sized + 'static>(store: Arc<S>) {
    race_first_use_across_instances(vec![store]).await;
}

/// [`RACERS`] tasks present one value at once through `stores` in turn
/// (e.g. two instances on one Redis): exactly one is accepted, whichever
/// instance it went through. With one store, [`race_first_use`].
pub async fn race_first_use_across_instances<S: ReplayStore + ?Sized + 'static>(
    stores: Vec<Arc<S>>,
) {
    const C: &str = "race_first_use";
    require_multi_thread(C);
    assert!(!stores.is_empty(), "[{C}] at least one store");
    let now = base_now();
    for round in 0..5 {
        let key = ReplayKey::new(ReplayNamespace::Dpop, "racer", &fresh_jti());
        let answers = race(RACERS, |i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            async move { ok(store.first_use(key, now + secs(60), now).await, C) }
        })
        .await;
        let winners = answers.iter().filter(|a| **a).count();
        assert_eq!(
            winners, 1,
            "[{C}] round {round}: exactly one of {RACERS} racers is accepted"
        );
    }
}

/// [`RACERS`] tasks present different values at once: every one is
/// accepted (no false replays under contention).
pub async fn race_distinct_values<S: ReplayStore + ?Sized + 'static>(store: Arc<S>) {
    const C: &str = "race_distinct_values";
    require_multi_thread(C);
    let now = base_now();
    let answers = race(RACERS, |_| {
        let store = Arc::clone(&store);
        let key = ReplayKey::new(ReplayNamespace::ClientAssertion, "client", &fresh_jti());
        async move { ok(store.first_use(key, now + secs(60), now).await, C) }
    })
    .await;
    assert!(
        answers.iter().all(|a| *a),
        "[{C}] every distinct value is a first use"
    );
}

/// Every replay cache check, in turn, on stores from `make_store`.
pub async fn run_replay<S, F, Fut>(mut make_store: F)
where
    S: ReplayStore + ?Sized + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Arc<S>>,
{
    replay_first_use_once(make_store().await).await;
    replay_expired_entry_is_forgotten(make_store().await).await;
    race_first_use(make_store().await).await;
    race_distinct_values(make_store().await).await;
}
