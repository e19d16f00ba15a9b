//! The testkit's dynamic registration checks (RFC 7591) against a standalone
//! Redis and a Redis Cluster, each store under a fresh key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_checks_standalone() {
    let Some(url) = common::standalone_url() else {
        return;
    };
    testkit::run_registration(|| {
        let url = url.clone();
        async move { Arc::new(common::standalone(&url).await) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_checks_cluster() {
    let Some(urls) = common::cluster_urls() else {
        return;
    };
    testkit::run_registration(|| {
        let urls = urls.clone();
        async move { Arc::new(common::cluster(&urls).await) }
    })
    .await;
}
