//! The testkit's replay cache checks (RFC 9449 §11.1, RFC 7523 §3) against
//! PostgreSQL, a value replayed through another store instance on the same
//! schema, and the sweeper deleting expired entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use tessera::storage::{ReplayKey, ReplayNamespace, ReplayStore};
use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_checks() {
    let Some(url) = common::url() else {
        return;
    };
    testkit::run_replay(|| {
        let url = url.clone();
        async move { Arc::new(common::fresh(&url).await) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_used_on_one_instance_is_a_replay_on_another() {
    let Some(url) = common::url() else {
        return;
    };
    let schema = common::unique_schema();
    let a = Arc::new(common::in_schema(&url, &schema).await);
    let b = Arc::new(common::in_schema(&url, &schema).await);
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::seconds(60);
    let key = ReplayKey::new(ReplayNamespace::Dpop, "thumbprint", "jti-1");
    assert!(a.first_use(key, until, now).await.unwrap());
    assert!(!b.first_use(key, until, now).await.unwrap());
    // A later `now` past the entry's expiry: accepted again (the row is taken over).
    let later = until + time::Duration::seconds(1);
    assert!(
        b.first_use(key, later + time::Duration::seconds(60), later)
            .await
            .unwrap()
    );
    testkit::race_first_use_across_instances(vec![a, b]).await;
}

#[tokio::test]
async fn the_sweeper_deletes_expired_entries() {
    let Some(url) = common::url() else {
        return;
    };
    let store = common::fresh(&url).await;
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::seconds(60);
    for i in 0..3 {
        let key = ReplayKey::new(ReplayNamespace::ClientAssertion, "c", &i.to_string());
        assert!(store.first_use(key, until, now).await.unwrap());
    }
    assert_eq!(store.sweep(now).await.unwrap().replay, 0);
    assert_eq!(store.sweep(until).await.unwrap().replay, 3);
}
