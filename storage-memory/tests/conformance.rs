//! The store conformance suite of `tessera_testkit`, against `MemoryStore`:
//! once as a whole, and check by check so a failure names its behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera_memory::MemoryStore;
use tessera_testkit as testkit;

fn fresh() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite() {
    testkit::run_all(|| async { fresh() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite_on_one_shared_store() {
    // Checks use fresh random grant ids, so they must also pass side by side
    // in one store.
    let shared = fresh();
    testkit::run_all(|| {
        let s = Arc::clone(&shared);
        async move { s }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_through_dyn_store() {
    testkit::run_all(|| async { fresh() as Arc<dyn tessera::Store> }).await;
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            testkit::$name(fresh()).await;
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
    at_hand_steps_match_async,
);

/// The memory store takes the code flow's steps at hand (so the server
/// spares their boxed futures), and the at-hand check above is not passed
/// trivially.
#[test]
fn codes_and_pending_requests_are_at_hand() {
    use tessera::storage::{GrantStore, PendingStore};
    let store = fresh();
    assert!(store.codes_at_hand().is_some());
    assert!(store.pending_at_hand().is_some());
    // Also through `dyn Store`, as the server holds it.
    let store: Arc<dyn tessera::Store> = store;
    assert!(store.codes_at_hand().is_some());
    assert!(store.pending_at_hand().is_some());
}

/// Racers taking one code, half at hand and half through the async method:
/// exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_take_code_at_hand_and_async() {
    use tessera::storage::{CodeTake, GrantStore};
    use tessera::{OsRandom, Random, Secret, TokenKind};
    let store = fresh();
    let now = time::OffsetDateTime::now_utc();
    for _ in 0..20 {
        let code = Secret::mint(TokenKind::Code, OsRandom.grant_id(), OsRandom.bytes32()).key();
        store
            .put_code(code, testkit::code_record(now, 60))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let racers: Vec<_> = (0..64)
            .map(|i| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let take = if i % 2 == 0 {
                        store.codes_at_hand().unwrap().take_code_now(code, now)
                    } else {
                        store.take_code(code, now).await
                    };
                    matches!(take, Ok(CodeTake::Taken(_)))
                })
            })
            .collect();
        let mut winners = 0;
        for r in racers {
            winners += usize::from(r.await.unwrap());
        }
        assert_eq!(winners, 1);
    }
}
