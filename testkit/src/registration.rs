//! Checks of the client registry's dynamic registration (RFC 7591):
//! [`ClientRegistry::register_client`] and its companions.
//!
//! They register clients with fresh random ids and compare counts relative
//! to what the store held before, so they pass on a store other checks
//! share (counts of dynamic clients are per store, not per check); they
//! must not run at the same time as each other on one store.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::Barrier;

use tessera::{
    Argon2idVerifier, AuthMethod, Client, ClientId, ClientRegistry, DynamicRegistration, Jwks,
    JwsAlgorithm, OsRandom, Random, RedirectUri, RegisterOutcome, Scope, SecretHash,
    SecretVerifier, SigningKey,
};

use crate::{RACERS, base_now, ok, require_multi_thread, secs};

/// A dynamically registered public client with a fresh id, unused until `until`.
fn dynamic_client(now: OffsetDateTime, until: OffsetDateTime) -> Client {
    use std::fmt::Write;
    let mut id = String::from("dyn_check_");
    for b in &OsRandom.bytes32()[..12] {
        let _ = write!(id, "{b:02x}");
    }
    let mut c = Client::public(ClientId::new(&id).expect("a valid client id"), "Checked")
        .with_redirect_uri(RedirectUri::new("https://app.example/cb").expect("a redirect URI"))
        .with_grant_types(["authorization_code", "refresh_token"])
        .with_scope(Scope::parse("photos.read").expect("a scope"));
    let mut r = DynamicRegistration::new(now, until);
    r.client_name = Some("Checked".into());
    r.logo_uri = Some("https://app.example/logo.png".into());
    c.registration = Some(Box::new(r));
    c
}

async fn count<S: ClientRegistry + ?Sized>(store: &S, now: OffsetDateTime, check: &str) -> u64 {
    ok(store.dynamic_client_count(now).await, check)
}

/// A registered client is found as registered, counted, refused a second
/// time under its id, and once marked used for good (`until` `None`) no
/// longer expires.
pub async fn registration_lifecycle<S: ClientRegistry + ?Sized>(store: Arc<S>) {
    let check = "registration_lifecycle";
    let now = base_now();
    let before = count(&*store, now, check).await;
    let c = dynamic_client(now, now + secs(60));
    let id = c.id.clone();
    assert_eq!(
        ok(
            store.register_client(c.clone(), usize::MAX, now).await,
            check
        ),
        RegisterOutcome::Registered,
        "{check}: a new client is registered"
    );
    let found = ok(store.client(&id).await, check).expect("the registered client is found");
    assert_eq!(*found, c, "{check}: the client comes back as stored");
    assert_eq!(
        count(&*store, now, check).await,
        before + 1,
        "{check}: counted"
    );
    assert_eq!(
        ok(
            store.register_client(c.clone(), usize::MAX, now).await,
            check
        ),
        RegisterOutcome::IdTaken,
        "{check}: an id is registered once"
    );
    ok(store.mark_client_used(&id, now, None).await, check);
    let used = ok(store.client(&id).await, check).expect("still there");
    assert_eq!(
        used.registration.as_ref().and_then(|r| r.unused_until),
        None,
        "{check}: a used client has no unused_until"
    );
    assert_eq!(
        used.registration
            .as_ref()
            .and_then(|r| r.logo_uri.as_deref()),
        Some("https://app.example/logo.png"),
        "{check}: marking keeps the metadata"
    );
    // Marking twice is harmless; an unknown id is ignored.
    ok(store.mark_client_used(&id, now, None).await, check);
    let unknown = dynamic_client(now, now + secs(60));
    ok(store.mark_client_used(&unknown.id, now, None).await, check);
    assert!(ok(store.client(&unknown.id).await, check).is_none());
    // A used client outlives its former deadline.
    let later = now + secs(120);
    ok(store.expire_unused_clients(later).await, check);
    assert!(
        ok(store.client(&id).await, check).is_some(),
        "{check}: a used client does not expire"
    );
    assert!(
        count(&*store, later, check).await >= 1,
        "{check}: a used client still counts"
    );
}

/// A registration never used is gone once its `unused_until` passed: not
/// counted, removed by `expire_unused_clients`, and its place is free.
pub async fn unused_registrations_expire<S: ClientRegistry + ?Sized>(store: Arc<S>) {
    let check = "unused_registrations_expire";
    let now = base_now();
    let later = now + secs(120);
    ok(store.expire_unused_clients(later).await, check);
    let before = count(&*store, now, check).await;
    let c = dynamic_client(now, now + secs(60));
    let id = c.id.clone();
    assert_eq!(
        ok(store.register_client(c, usize::MAX, now).await, check),
        RegisterOutcome::Registered
    );
    assert_eq!(count(&*store, now, check).await, before + 1);
    let at_later = count(&*store, later, check).await;
    assert!(
        at_later <= before,
        "{check}: an expired registration is not counted ({at_later} > {before})"
    );
    let removed = ok(store.expire_unused_clients(later).await, check);
    assert!(removed >= 1, "{check}: expire_unused_clients removed it");
    assert!(
        ok(store.client(&id).await, check).is_none(),
        "{check}: an expired registration is forgotten"
    );
    // Its place is free: at a cap of what is live now plus one, one more fits.
    let live = count(&*store, later, check).await;
    let next = dynamic_client(later, later + secs(60));
    assert_eq!(
        ok(
            store
                .register_client(next, usize::try_from(live + 1).unwrap_or(usize::MAX), later)
                .await,
            check
        ),
        RegisterOutcome::Registered
    );
}

/// The `unused_until` a store holds for `id` (`None` when the client is gone
/// or has none).
async fn until_of<S: ClientRegistry + ?Sized>(
    store: &S,
    id: &ClientId,
    check: &str,
) -> Option<OffsetDateTime> {
    ok(store.client(id).await, check)
        .and_then(|c| c.registration.as_ref().and_then(|r| r.unused_until))
}

/// A client used with an idle lifetime (`until` `Some`) is kept until then,
/// past its first deadline, and forgotten after it: counted meanwhile,
/// never moved earlier by a later mark, never brought back once expired.
/// A client kept for good (marked with `None` before, as stores did) gets
/// an expiry again when marked with one.
pub async fn used_clients_expire_when_idle<S: ClientRegistry + ?Sized>(store: Arc<S>) {
    let check = "used_clients_expire_when_idle";
    let now = base_now();
    let c = dynamic_client(now, now + secs(60));
    let id = c.id.clone();
    assert_eq!(
        ok(store.register_client(c, usize::MAX, now).await, check),
        RegisterOutcome::Registered
    );
    let kept_until = now + secs(300);
    ok(
        store
            .mark_client_used(&id, now + secs(10), Some(kept_until))
            .await,
        check,
    );
    assert_eq!(
        until_of(&*store, &id, check).await,
        Some(kept_until),
        "{check}: the expiry moved to the idle deadline"
    );
    assert!(
        ok(store.client(&id).await, check)
            .and_then(|c| c.registration.as_ref().and_then(|r| r.logo_uri.clone()))
            .is_some(),
        "{check}: marking keeps the metadata"
    );
    // An earlier deadline (a slower instance) changes nothing.
    ok(
        store
            .mark_client_used(&id, now + secs(20), Some(now + secs(200)))
            .await,
        check,
    );
    assert_eq!(until_of(&*store, &id, check).await, Some(kept_until));
    // Past the first deadline it is kept and counted.
    let later = now + secs(120);
    ok(store.expire_unused_clients(later).await, check);
    assert!(
        ok(store.client(&id).await, check).is_some(),
        "{check}: a used client outlives its first deadline"
    );
    let counted = count(&*store, later, check).await;
    let after = now + secs(301);
    let counted_after = count(&*store, after, check).await;
    assert!(
        counted_after < counted,
        "{check}: an idle client stops counting at its deadline ({counted_after} >= {counted})"
    );
    // Once expired, a token recorded late does not bring it back, with a
    // deadline or without one.
    ok(
        store
            .mark_client_used(&id, after, Some(after + secs(300)))
            .await,
        check,
    );
    ok(store.mark_client_used(&id, after, None).await, check);
    assert!(
        ok(store.client(&id).await, check).is_none_or(|c| !c.is_live(after)),
        "{check}: an expired client stays expired"
    );
    ok(store.expire_unused_clients(after).await, check);
    assert!(
        ok(store.client(&id).await, check).is_none(),
        "{check}: an idle client is forgotten after its deadline"
    );

    // A client kept for good gets a deadline again when marked with one.
    let c = dynamic_client(now, now + secs(60));
    let id = c.id.clone();
    assert_eq!(
        ok(store.register_client(c, usize::MAX, now).await, check),
        RegisterOutcome::Registered
    );
    ok(store.mark_client_used(&id, now, None).await, check);
    assert_eq!(until_of(&*store, &id, check).await, None);
    ok(
        store.mark_client_used(&id, now, Some(kept_until)).await,
        check,
    );
    assert_eq!(
        until_of(&*store, &id, check).await,
        Some(kept_until),
        "{check}: a client kept for good gets the idle deadline"
    );
    ok(store.expire_unused_clients(after).await, check);
    assert!(
        ok(store.client(&id).await, check).is_none(),
        "{check}: and is forgotten after it"
    );
}

/// Many instances recording the same client's use at once (each
/// re-arming it with the same deadline): every one succeeds, and the
/// client ends with that deadline, counted once.
pub async fn race_marking_used<S: ClientRegistry + ?Sized + 'static>(store: Arc<S>) {
    let check = "race_marking_used";
    require_multi_thread(check);
    let now = base_now();
    let before = count(&*store, now, check).await;
    let c = dynamic_client(now, now + secs(60));
    let id = c.id.clone();
    assert_eq!(
        ok(store.register_client(c, usize::MAX, now).await, check),
        RegisterOutcome::Registered
    );
    let until = now + secs(3_600);
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let id = id.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.mark_client_used(&id, now, Some(until)).await
            })
        })
        .collect();
    for t in tasks {
        ok(t.await.expect("a racer panicked"), check);
    }
    assert_eq!(until_of(&*store, &id, check).await, Some(until));
    assert_eq!(count(&*store, now + secs(120), check).await, before + 1);
}

/// `evict_unused_client` forgets the registration nearest its deadline,
/// only when that comes before `before`, and never one with a later
/// deadline (a client that obtained tokens) or none (kept for good).
pub async fn unused_registrations_make_room<S: ClientRegistry + ?Sized>(store: Arc<S>) {
    let check = "unused_registrations_make_room";
    let now = base_now();
    // Clear what earlier checks left due before our deadlines.
    ok(store.expire_unused_clients(now + secs(40_000)).await, check);
    while ok(store.evict_unused_client(now + secs(40_000)).await, check).is_some() {}
    let first = dynamic_client(now, now + secs(30_000));
    let second = dynamic_client(now, now + secs(30_100));
    let used = dynamic_client(now, now + secs(30_050));
    for c in [&first, &second, &used] {
        assert_eq!(
            ok(
                store.register_client(c.clone(), usize::MAX, now).await,
                check
            ),
            RegisterOutcome::Registered
        );
    }
    ok(
        store
            .mark_client_used(&used.id, now, Some(now + secs(90_000)))
            .await,
        check,
    );
    let before = count(&*store, now, check).await;
    // Not due before: nothing.
    assert_eq!(
        ok(store.evict_unused_client(now + secs(29_000)).await, check),
        None,
        "{check}: nothing is due that soon"
    );
    assert_eq!(
        ok(store.evict_unused_client(now + secs(31_000)).await, check),
        Some(first.id.clone()),
        "{check}: the one nearest its deadline goes first"
    );
    assert!(ok(store.client(&first.id).await, check).is_none());
    assert_eq!(
        ok(store.evict_unused_client(now + secs(31_000)).await, check),
        Some(second.id.clone())
    );
    assert_eq!(
        ok(store.evict_unused_client(now + secs(31_000)).await, check),
        None,
        "{check}: a used client is not evicted"
    );
    assert!(ok(store.client(&used.id).await, check).is_some());
    assert_eq!(count(&*store, now, check).await, before - 2);
}

/// Many instances making room at once: each forgets a different
/// registration, none twice, and never more than are due.
pub async fn race_evicting<S: ClientRegistry + ?Sized + 'static>(store: Arc<S>) {
    let check = "race_evicting";
    require_multi_thread(check);
    let now = base_now();
    let before = now + secs(50_000);
    ok(store.expire_unused_clients(before).await, check);
    while ok(store.evict_unused_client(before).await, check).is_some() {}
    const DUE: usize = 10;
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..DUE {
        let c = dynamic_client(now, now + secs(40_000));
        ids.insert(c.id.clone());
        assert_eq!(
            ok(store.register_client(c, usize::MAX, now).await, check),
            RegisterOutcome::Registered
        );
    }
    const RACERS_HERE: usize = 30;
    let barrier = Arc::new(Barrier::new(RACERS_HERE));
    let tasks: Vec<_> = (0..RACERS_HERE)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.evict_unused_client(before).await
            })
        })
        .collect();
    let mut evicted = Vec::new();
    for t in tasks {
        if let Some(id) = ok(t.await.expect("a racer panicked"), check) {
            evicted.push(id);
        }
    }
    let distinct: std::collections::BTreeSet<_> = evicted.iter().cloned().collect();
    assert_eq!(distinct.len(), evicted.len(), "{check}: one evicted twice");
    assert!(distinct.is_subset(&ids), "{check}: only due ones");
    assert!(!evicted.is_empty(), "{check}: some room was made");
    for id in &distinct {
        assert!(ok(store.client(id).await, check).is_none());
    }
}

/// The cap counts live dynamic clients: at it, nothing more is stored.
pub async fn registration_cap<S: ClientRegistry + ?Sized>(store: Arc<S>) {
    let check = "registration_cap";
    let now = base_now();
    let before = count(&*store, now, check).await;
    let cap = usize::try_from(before + 3).unwrap_or(usize::MAX);
    for _ in 0..3 {
        let c = dynamic_client(now, now + secs(60));
        assert_eq!(
            ok(store.register_client(c, cap, now).await, check),
            RegisterOutcome::Registered
        );
    }
    let over = dynamic_client(now, now + secs(60));
    assert_eq!(
        ok(store.register_client(over.clone(), cap, now).await, check),
        RegisterOutcome::CapReached,
        "{check}: the cap holds"
    );
    assert!(
        ok(store.client(&over.id).await, check).is_none(),
        "{check}: a refused registration stores nothing"
    );
    assert_eq!(count(&*store, now, check).await, before + 3);
}

/// Many registrations racing at the cap: exactly as many as it allows win.
pub async fn race_register_at_the_cap<S: ClientRegistry + ?Sized + 'static>(store: Arc<S>) {
    let check = "race_register_at_the_cap";
    require_multi_thread(check);
    let now = base_now();
    let before = count(&*store, now, check).await;
    const ROOM: u64 = 20;
    let cap = usize::try_from(before + ROOM).unwrap_or(usize::MAX);
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let c = dynamic_client(now, now + secs(60));
            tokio::spawn(async move {
                barrier.wait().await;
                store.register_client(c, cap, now).await
            })
        })
        .collect();
    let mut registered = 0;
    for t in tasks {
        match ok(t.await.expect("a racer panicked"), check) {
            RegisterOutcome::Registered => registered += 1,
            RegisterOutcome::CapReached => {}
            other => panic!("{check}: unexpected {other:?}"),
        }
    }
    assert_eq!(registered, ROOM, "{check}: exactly the room left is taken");
    assert_eq!(count(&*store, now, check).await, before + ROOM);
}

/// Every registration check, in turn, on stores from `make_store`.
pub async fn run_registration<S, F, Fut>(mut make_store: F)
where
    S: ClientRegistry + ?Sized + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Arc<S>>,
{
    registration_lifecycle(make_store().await).await;
    client_credentials_round_trip(make_store().await).await;
    unused_registrations_expire(make_store().await).await;
    used_clients_expire_when_idle(make_store().await).await;
    race_marking_used(make_store().await).await;
    unused_registrations_make_room(make_store().await).await;
    race_evicting(make_store().await).await;
    registration_cap(make_store().await).await;
    race_register_at_the_cap(make_store().await).await;
}

/// What a client authenticates with survives the store: a SHA-256 secret
/// hash, an Argon2id one (each says its scheme, so one store holds both),
/// and a `private_key_jwt` client's `jwks`. Each is read back equal, and
/// the secrets still verify.
pub async fn client_credentials_round_trip<S: ClientRegistry + ?Sized>(store: Arc<S>) {
    let check = "client_credentials_round_trip";
    let now = base_now();
    let argon2 = Argon2idVerifier::with_cost(64, 1, 1).expect("cheap Argon2id parameters");
    let slow = argon2
        .hash("a person's password", &OsRandom)
        .expect("an Argon2id hash");
    let key = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
    let with_secret = |hash: SecretHash| {
        let mut c = dynamic_client(now, now + secs(60));
        let mut confidential = Client::confidential(c.id.clone(), "Checked", hash)
            .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]);
        confidential.registration = c.registration.take();
        confidential
    };
    let mut keyed = dynamic_client(now, now + secs(60));
    keyed = {
        let mut k = Client::with_private_key_jwt(
            keyed.id.clone(),
            "Keyed",
            Jwks::new([key.verifying_key().to_jwk()]),
        );
        k.registration = keyed.registration.take();
        k
    };
    let clients = [
        with_secret(SecretHash::of("a 256-bit generated secret")),
        with_secret(slow),
        keyed,
    ];
    for client in clients {
        let registered = ok(
            store.register_client(client.clone(), usize::MAX, now).await,
            check,
        );
        assert_eq!(registered, RegisterOutcome::Registered, "[{check}]");
        let back = ok(store.client(&client.id).await, check)
            .unwrap_or_else(|| panic!("[{check}] a registered client is found"));
        assert_eq!(*back, client, "[{check}] read back as stored");
        if let Some(hash) = back.secret_hash() {
            let secret = match hash.scheme() {
                "sha256" => "a 256-bit generated secret",
                "argon2id" => "a person's password",
                other => panic!("[{check}] unexpected scheme {other}"),
            };
            assert!(
                hash.verify(secret),
                "[{check}] {} secret verifies",
                hash.scheme()
            );
            assert!(!hash.verify("wrong"), "[{check}] a wrong secret does not");
        }
    }
}
