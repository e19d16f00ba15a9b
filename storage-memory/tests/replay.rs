//! The testkit's replay cache checks (RFC 9449 §11.1, RFC 7523 §3) against
//! the memory store, and its bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera::StoreError;
use tessera::storage::{ReplayKey, ReplayNamespace, ReplayStore};
use tessera_memory::MemoryStore;
use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_checks() {
    testkit::run_replay(|| async { Arc::new(MemoryStore::new()) }).await;
}

/// At the cap, one namespace is refused (503, never a silent replay) while
/// the others keep working; the sweeper frees expired entries.
#[tokio::test]
async fn a_full_replay_cache_refuses_only_the_flooded_namespace() {
    let store = MemoryStore::new().with_replay_capacity(100);
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::seconds(60);
    for i in 0..100 {
        let key = ReplayKey::new(ReplayNamespace::Dpop, "flooder", &i.to_string());
        assert!(store.first_use(key, until, now).await.unwrap());
    }
    let next = ReplayKey::new(ReplayNamespace::Dpop, "someone", "x");
    assert!(matches!(
        store.first_use(next, until, now).await,
        Err(StoreError::Unavailable(_))
    ));
    let assertion = ReplayKey::new(ReplayNamespace::ClientAssertion, "printshop", "x");
    assert!(store.first_use(assertion, until, now).await.unwrap());
    assert_eq!(store.stats().replay_entries, 101);
    store.sweep(until);
    assert_eq!(store.stats().replay_entries, 0);
    assert!(
        store
            .first_use(next, until + time::Duration::seconds(60), until)
            .await
            .unwrap()
    );
}
