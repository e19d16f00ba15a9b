//! The testkit's dynamic registration checks (RFC 7591) against the memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera_memory::MemoryStore;
use tessera_testkit as testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_checks() {
    testkit::run_registration(|| async { Arc::new(MemoryStore::new()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_checks_on_one_shared_store() {
    let shared = Arc::new(MemoryStore::new());
    testkit::run_registration(|| {
        let s = Arc::clone(&shared);
        async move { s }
    })
    .await;
}
