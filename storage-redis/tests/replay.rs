//! The testkit's replay cache checks (RFC 9449 §11.1, RFC 7523 §3) against
//! a standalone Redis and a Redis Cluster, and a value replayed through
//! another store instance on the same Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use tessera::storage::{ReplayKey, ReplayNamespace, ReplayStore};
use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_checks_standalone() {
    let Some(url) = common::standalone_url() else {
        return;
    };
    testkit::run_replay(|| {
        let url = url.clone();
        async move { Arc::new(common::standalone(&url).await) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_checks_cluster() {
    let Some(urls) = common::cluster_urls() else {
        return;
    };
    testkit::run_replay(|| {
        let urls = urls.clone();
        async move { Arc::new(common::cluster(&urls).await) }
    })
    .await;
}

/// Two instances (two connections, one key prefix), as two servers behind
/// a load balancer: a value used through one is a replay through the other,
/// and 200 racers split across both have exactly one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_used_on_one_instance_is_a_replay_on_another() {
    let Some(url) = common::standalone_url() else {
        return;
    };
    let prefix = common::unique_prefix();
    let target = common::Target::Standalone(url);
    let a = Arc::new(common::with_prefix(&target, &prefix).await);
    let b = Arc::new(common::with_prefix(&target, &prefix).await);
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::seconds(60);
    let key = ReplayKey::new(ReplayNamespace::Dpop, "thumbprint", "jti-1");
    assert!(a.first_use(key, until, now).await.unwrap());
    assert!(!b.first_use(key, until, now).await.unwrap());
    testkit::race_first_use_across_instances(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn across_instances_on_a_cluster() {
    let Some(urls) = common::cluster_urls() else {
        return;
    };
    let prefix = common::unique_prefix();
    let target = common::Target::Cluster(urls);
    let a = Arc::new(common::with_prefix(&target, &prefix).await);
    let b = Arc::new(common::with_prefix(&target, &prefix).await);
    testkit::race_first_use_across_instances(vec![a, b]).await;
}
