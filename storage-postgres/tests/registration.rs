//! The testkit's dynamic registration checks (RFC 7591) against PostgreSQL,
//! each store in a fresh schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_checks() {
    let Some(url) = common::url() else {
        return;
    };
    testkit::run_registration(|| {
        let url = url.clone();
        async move { Arc::new(common::fresh(&url).await) }
    })
    .await;
}
