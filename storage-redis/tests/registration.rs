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

/// A public client registered dynamically at `now`, unused for an hour.
fn dynamic_client(id: &str, name: &str, now: time::OffsetDateTime) -> tessera::Client {
    use tessera::{Client, ClientId, DynamicRegistration, RedirectUri, Scope};
    let mut c = Client::public(ClientId::new(id).unwrap(), name)
        .with_redirect_uri(RedirectUri::new("https://app.example/cb").unwrap())
        .with_grant_types(["authorization_code", "refresh_token"])
        .with_scope(Scope::parse("photos.read").unwrap());
    c.registration = Some(Box::new(DynamicRegistration::new(
        now,
        now + time::Duration::hours(1),
    )));
    c
}

/// Removing a used dynamic client gives its place under the cap back: a used
/// registration no longer expires from `<prefix>dynamic-clients`, so only
/// `remove_client` can free it (else a full cap would stay full forever).
#[tokio::test]
async fn removing_a_used_dynamic_client_frees_its_place_under_the_cap() {
    use tessera::{ClientId, ClientRegistry, RegisterOutcome};
    let Some(url) = common::standalone_url() else {
        return;
    };
    let store = common::standalone(&url).await;
    let now = time::OffsetDateTime::now_utc();
    let client = |id: &str| dynamic_client(id, "Checked", now);
    let first = ClientId::new("dyn_cap_first").unwrap();
    assert!(matches!(
        store
            .register_client(client("dyn_cap_first"), 1, now)
            .await
            .unwrap(),
        RegisterOutcome::Registered
    ));
    store.mark_client_used(&first, now, None).await.unwrap();
    assert!(matches!(
        store
            .register_client(client("dyn_cap_second"), 1, now)
            .await
            .unwrap(),
        RegisterOutcome::CapReached
    ));
    store.remove_client(&first).await.unwrap();
    assert_eq!(store.dynamic_client_count(now).await.unwrap(), 0);
    assert!(matches!(
        store
            .register_client(client("dyn_cap_second"), 1, now)
            .await
            .unwrap(),
        RegisterOutcome::Registered
    ));
}

/// Marking a dynamic client used writes back the record as it is in Redis,
/// never a stale copy: here the store's client cache still holds the
/// registration as first written, while the record was replaced behind its
/// back (no invalidation published). The mark keeps the replacement and
/// drops `unused_until` and the key's expiry.
async fn marking_used_keeps_what_is_in_redis(target: common::Target) {
    use tessera::{Client, ClientId, ClientRegistry, RegisterOutcome};
    let prefix = common::unique_prefix();
    let store = common::with_prefix(&target, &prefix).await;
    let now = time::OffsetDateTime::now_utc();
    let id = ClientId::new("dyn_stale").unwrap();
    let named = |name: &str| dynamic_client("dyn_stale", name, now);
    assert!(matches!(
        store.register_client(named("v1"), 10, now).await.unwrap(),
        RegisterOutcome::Registered
    ));
    // The store hears its own publication too: let it pass, then cache v1.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(store.client(&id).await.unwrap().unwrap().name, "v1");
    let key = format!("{prefix}client:dyn_stale");
    let mut raw = target.raw().await;
    let () = raw
        .query(
            redis::cmd("SET")
                .arg(&key)
                .arg(serde_json::to_string(&named("v2")).unwrap())
                .arg("PX")
                .arg(3_600_000),
        )
        .await;
    store.mark_client_used(&id, now, None).await.unwrap();
    let json: String = raw.query(redis::cmd("GET").arg(&key)).await;
    let stored: Client = serde_json::from_str(&json).unwrap();
    assert_eq!(stored.name, "v2", "a stale copy was written back");
    assert!(stored.registration.unwrap().unused_until.is_none());
    let ttl: i64 = raw.query(redis::cmd("PTTL").arg(&key)).await;
    assert_eq!(ttl, -1, "a used client does not expire");
    assert_eq!(store.dynamic_client_count(now).await.unwrap(), 1);
}

#[tokio::test]
async fn marking_used_keeps_what_is_in_redis_standalone() {
    let Some(t) = common::Target::standalone() else {
        return;
    };
    marking_used_keeps_what_is_in_redis(t).await;
}

#[tokio::test]
async fn marking_used_keeps_what_is_in_redis_cluster() {
    let Some(t) = common::Target::cluster() else {
        return;
    };
    marking_used_keeps_what_is_in_redis(t).await;
}

/// Recording a use with an idle deadline moves everything that expires the
/// client in Redis: the key's `PXAT` and its score in the set that counts
/// dynamic clients, both to the deadline; a later, earlier deadline moves
/// neither (`ZADD ... GT`).
#[tokio::test]
async fn an_idle_deadline_moves_the_key_expiry_and_the_score() {
    use tessera::{ClientId, ClientRegistry, RegisterOutcome};
    let Some(target) = common::Target::standalone() else {
        return;
    };
    let prefix = common::unique_prefix();
    let store = common::with_prefix(&target, &prefix).await;
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let id = ClientId::new("dyn_idle").unwrap();
    assert!(matches!(
        store
            .register_client(dynamic_client("dyn_idle", "Idle", now), 10, now)
            .await
            .unwrap(),
        RegisterOutcome::Registered
    ));
    let until = now + time::Duration::days(90);
    store.mark_client_used(&id, now, Some(until)).await.unwrap();
    let mut raw = target.raw().await;
    let key = format!("{prefix}client:dyn_idle");
    let expiry: i64 = raw.query(redis::cmd("PEXPIRETIME").arg(&key)).await;
    let until_ms = i64::try_from(until.unix_timestamp_nanos() / 1_000_000).unwrap();
    assert_eq!(expiry, until_ms, "the key expires at the idle deadline");
    let set = format!("{prefix}dynamic-clients");
    let score: f64 = raw
        .query(redis::cmd("ZSCORE").arg(&set).arg("dyn_idle"))
        .await;
    assert_eq!(score, until_ms as f64, "the set counts it until then");
    store
        .mark_client_used(&id, now, Some(now + time::Duration::days(30)))
        .await
        .unwrap();
    let expiry: i64 = raw.query(redis::cmd("PEXPIRETIME").arg(&key)).await;
    assert_eq!(expiry, until_ms, "an earlier deadline never shortens it");
    let score: f64 = raw
        .query(redis::cmd("ZSCORE").arg(&set).arg("dyn_idle"))
        .await;
    assert_eq!(score, until_ms as f64);
    assert_eq!(
        store
            .dynamic_client_count(until - time::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.dynamic_client_count(until).await.unwrap(), 0);
}

/// The score follows the record even when an update to it was lost: a
/// member dropped from the set is added back at the next recorded use, a
/// `+inf` score (a client kept for good) is lowered to the deadline, and a
/// later score is never lowered.
#[tokio::test]
async fn the_score_follows_the_record_after_a_lost_update() {
    use tessera::{ClientId, ClientRegistry, RegisterOutcome};
    let Some(target) = common::Target::standalone() else {
        return;
    };
    let prefix = common::unique_prefix();
    let store = common::with_prefix(&target, &prefix).await;
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as f64;
    let id = ClientId::new("dyn_lost").unwrap();
    assert!(matches!(
        store
            .register_client(dynamic_client("dyn_lost", "Lost", now), 10, now)
            .await
            .unwrap(),
        RegisterOutcome::Registered
    ));
    let mut raw = target.raw().await;
    let set = format!("{prefix}dynamic-clients");
    let zscore = || {
        let mut c = redis::cmd("ZSCORE");
        c.arg(&set).arg("dyn_lost");
        c
    };
    // The member is lost (a failed ZADD, a reservation swept too early).
    let () = raw
        .query(redis::cmd("ZREM").arg(&set).arg("dyn_lost"))
        .await;
    let t1 = now + time::Duration::days(10);
    store.mark_client_used(&id, now, Some(t1)).await.unwrap();
    let s: Option<f64> = raw.query(&zscore()).await;
    assert_eq!(s, Some(ms(t1)), "added back");
    assert_eq!(store.dynamic_client_count(now).await.unwrap(), 1);
    // A +inf score while the record has a deadline is lowered to it.
    let () = raw
        .query(redis::cmd("ZADD").arg(&set).arg("+inf").arg("dyn_lost"))
        .await;
    let t2 = now + time::Duration::days(20);
    store.mark_client_used(&id, now, Some(t2)).await.unwrap();
    let s: Option<f64> = raw.query(&zscore()).await;
    assert_eq!(s, Some(ms(t2)), "lowered from +inf");
    // A later score is never lowered by an older deadline.
    let t4 = now + time::Duration::days(40);
    let () = raw
        .query(redis::cmd("ZADD").arg(&set).arg(ms(t4)).arg("dyn_lost"))
        .await;
    let t3 = now + time::Duration::days(30);
    store.mark_client_used(&id, now, Some(t3)).await.unwrap();
    let s: Option<f64> = raw.query(&zscore()).await;
    assert_eq!(s, Some(ms(t4)), "never lowered");
}
