//! The store conformance suite of `tessera_testkit`, against a standalone
//! Redis and a Redis Cluster: once as a whole per deployment, and check by
//! check (standalone) so a failure names its behaviour. Every store gets a
//! fresh random key prefix, so the tests run in parallel on shared servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite_standalone() {
    let Some(url) = common::standalone_url() else {
        return;
    };
    testkit::run_all(|| {
        let url = url.clone();
        async move { Arc::new(common::standalone(&url).await) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite_cluster() {
    let Some(urls) = common::cluster_urls() else {
        return;
    };
    testkit::run_all(|| {
        let urls = urls.clone();
        async move { Arc::new(common::cluster(&urls).await) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite_on_one_shared_prefix() {
    // Checks use fresh random grant ids, so they must also pass side by side
    // under one prefix (one issuer's keyspace).
    let Some(url) = common::standalone_url() else {
        return;
    };
    let shared = Arc::new(common::standalone(&url).await);
    testkit::run_all(|| {
        let s = Arc::clone(&shared);
        async move { s }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_through_dyn_store() {
    let Some(urls) = common::cluster_urls() else {
        return;
    };
    testkit::run_all(|| {
        let urls = urls.clone();
        async move { Arc::new(common::cluster(&urls).await) as Arc<dyn tessera::Store> }
    })
    .await;
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(url) = common::standalone_url() else {
                return;
            };
            testkit::$name(Arc::new(common::standalone(&url).await)).await;
        }
    )*};
}

checks!(
    code_is_taken_once,
    unknown_codes_are_unknown,
    expired_code_is_unknown,
    taken_code_is_remembered_while_grant_lives,
    access_token_lookup,
    new_grant_tokens,
    delegated_access_token,
    access_token_revocation,
    grant_revocation,
    refresh_token_lookup,
    refresh_rotation,
    a_retried_rotation_is_the_same_rotation,
    failed_rotation_changes_nothing,
    a_refresh_loop_is_bounded_per_grant,
    kinds_do_not_mix,
    pending_lifecycle,
    expired_pending_is_gone,
    audience_is_kept,
    grants_are_independent,
    race_take_code,
    race_rotate_refresh,
    race_take_pending,
    race_issue_and_revoke,
    device_lifecycle,
    device_polling_rules,
    device_user_codes_are_unique_while_live,
    race_poll_device,
);
