//! The store conformance suite: the behaviours every storage backend must
//! show, as async checks any backend can run from its own tests.
//!
//! Add `tessera-testkit` to your dev-dependencies and run the whole suite
//! against fresh, empty stores:
//!
//! ```ignore
//! use std::sync::Arc;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn conformance() {
//!     tessera_testkit::run_all(|| async { Arc::new(MyStore::connect_empty().await) }).await;
//! }
//! ```
//!
//! or call single checks ([`code_is_taken_once`], [`race_take_code`], ...)
//! from separate `#[tokio::test]`s, each with its own fresh store. A failed
//! check panics with a message naming the check and what went wrong.
//!
//! # The contract about time
//!
//! The checks pass `now` explicitly and never sleep, yet they suit stores
//! that expire records by real time (Redis TTLs):
//!
//! - the base `now` of every check is the **real** clock
//!   (`OffsetDateTime::now_utc()`, truncated to whole seconds because stores
//!   may keep Unix seconds), and every record is created with an expiry in
//!   the future of the real clock (at least `now + 60 s`), so a TTL never
//!   removes a record while a check runs;
//! - "expired" is tested by passing a later `now` (e.g. `now + 120 s`) to
//!   lookups. A store must therefore compare a record's `expires_at` with the
//!   `now` it is given (`expires_at <= now` is dead) and must not rely on
//!   its TTLs alone;
//! - an operation given a later `now` must not be assumed to have destroyed
//!   anything: no check depends on whether it did, except where the
//!   contract says nothing changes (a failed `rotate_refresh`).
//!
//! Records' times are whole seconds, so a store that keeps Unix seconds
//! returns records equal to those stored.
//!
//! # Concurrency
//!
//! The `race_*` checks start many tasks at once (through a barrier) and need
//! a multi-thread Tokio runtime to race for real:
//! `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]`. They panic
//! on a current-thread runtime rather than pass without racing.
//!
//! # Scope
//!
//! The suite checks what `tessera::storage` promises and nothing a backend
//! may reasonably decide otherwise: e.g. whether `put_code` into a revoked
//! grant stores anything, or what `revoke_grant` of a grant the store never
//! saw leaves behind, is not checked.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed check panics, by design

use std::future::Future;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use tessera::storage::{
    CodeRecord, CodeTake, DevicePoll, DeviceRecord, DeviceStatus, DeviceStore, GrantStore,
    MAX_ACCESS_TOKENS_PER_GRANT, MAX_RETIRED_REFRESH_PER_GRANT, NewTokens, PendingAuthorization,
    PendingStore, RefreshLookup, Subject, TokenRecord,
};
use tessera::{
    ClientId, ClientRegistry, CodeChallenge, GrantId, OsRandom, Random, ResourceIndicator, Scope,
    Secret, SecretKey, StoreError, TokenKind,
};

mod registration;
pub use registration::{
    client_credentials_round_trip, race_evicting, race_marking_used, race_register_at_the_cap,
    registration_cap, registration_lifecycle, run_registration, unused_registrations_expire,
    unused_registrations_make_room, used_clients_expire_when_idle,
};
mod replay;
pub use replay::{
    race_distinct_values, race_first_use, race_first_use_across_instances,
    replay_expired_entry_is_forgotten, replay_first_use_once, run_replay,
};

/// How many tasks each `race_*` check starts.
pub const RACERS: usize = 200;

/// Runs every check, each against a fresh store from `make_store`.
///
/// `make_store` must return an empty store (or one whose contents cannot
/// collide with new random grant ids). Run it on a multi-thread runtime
/// (see the [module docs](self)).
pub async fn run_all<S, F, Fut>(mut make_store: F)
where
    S: ClientRegistry + GrantStore + PendingStore + DeviceStore + ?Sized + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<S>>,
{
    code_is_taken_once(make_store().await).await;
    unknown_codes_are_unknown(make_store().await).await;
    expired_code_is_unknown(make_store().await).await;
    taken_code_is_remembered_while_grant_lives(make_store().await).await;
    taken_code_outlives_its_expiry(make_store().await).await;
    access_token_lookup(make_store().await).await;
    new_grant_tokens(make_store().await).await;
    delegated_access_token(make_store().await).await;
    access_token_revocation(make_store().await).await;
    grant_revocation(make_store().await).await;
    a_grant_revoked_before_its_first_issue_stays_revoked(make_store().await).await;
    refresh_token_lookup(make_store().await).await;
    refresh_rotation(make_store().await).await;
    failed_rotation_changes_nothing(make_store().await).await;
    a_refresh_loop_is_bounded_per_grant(make_store().await).await;
    kinds_do_not_mix(make_store().await).await;
    pending_lifecycle(make_store().await).await;
    expired_pending_is_gone(make_store().await).await;
    audience_is_kept(make_store().await).await;
    dpop_binding_is_kept(make_store().await).await;
    grants_are_independent(make_store().await).await;
    race_take_code(make_store().await).await;
    race_rotate_refresh(make_store().await).await;
    race_take_pending(make_store().await).await;
    race_issue_and_revoke(make_store().await).await;
    at_hand_steps_match_async(make_store().await).await;
    device_lifecycle(make_store().await).await;
    device_polling_rules(make_store().await).await;
    device_user_codes_are_unique_while_live(make_store().await).await;
    race_poll_device(make_store().await).await;
}

// ----- fixtures ---------------------------------------------------------

/// The real time, whole seconds: the base of every check.
pub(crate) fn base_now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

pub(crate) fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

fn grant() -> GrantId {
    OsRandom.grant_id()
}

fn mint(kind: TokenKind, grant: GrantId) -> SecretKey {
    Secret::mint(kind, grant, OsRandom.bytes32()).key()
}

fn client_id() -> ClientId {
    match ClientId::new("conformance-client") {
        Some(id) => id,
        None => unreachable!("a valid client id"),
    }
}

fn scope() -> Scope {
    match Scope::parse("photos.read photos.write") {
        Ok(s) => s,
        Err(e) => unreachable!("a valid scope: {e}"),
    }
}

/// A code record of the checks' client for alice, expiring `ttl` seconds
/// after `now`: for store tests beside the suite.
pub fn code_record(now: OffsetDateTime, ttl: i64) -> CodeRecord {
    CodeRecord {
        client_id: client_id(),
        redirect_uri: Some("https://client.example/cb".to_owned()),
        challenge: Some(CodeChallenge::s256(
            "conformance-verifier-0123456789-abcdefghijklmnop",
        )),
        subject: Subject::new("alice"),
        scope: scope(),
        audience: None,
        expires_at: now + secs(ttl),
        dpop_jkt: None,
    }
}

fn token_record(now: OffsetDateTime, ttl: i64, subject: Option<&str>) -> TokenRecord {
    TokenRecord {
        client_id: client_id(),
        subject: subject.map(Subject::new),
        scope: scope(),
        audience: None,
        issued_at: now,
        expires_at: now + secs(ttl),
        // Stores keep it as given (the core caps rotations with it).
        family_expires_at: Some(now + secs(ttl * 2)),
        actor: None,
        dpop_jkt: None,
    }
}

/// Tokens of one grant minted together, with their keys.
struct Minted {
    access: SecretKey,
    refresh: Option<SecretKey>,
    tokens: NewTokens,
}

fn mint_tokens(
    g: GrantId,
    now: OffsetDateTime,
    access_ttl: i64,
    refresh_ttl: Option<i64>,
) -> Minted {
    let access = mint(TokenKind::Access, g);
    let refresh = refresh_ttl.map(|ttl| (mint(TokenKind::Refresh, g), ttl));
    Minted {
        access,
        refresh: refresh.map(|(k, _)| k),
        tokens: NewTokens {
            access: (access.hash, token_record(now, access_ttl, Some("alice"))),
            refresh: refresh.map(|(k, ttl)| (k.hash, token_record(now, ttl, Some("alice")))),
        },
    }
}

fn pending(now: OffsetDateTime, ttl: i64) -> PendingAuthorization {
    PendingAuthorization {
        client_id: client_id(),
        redirect_uri: "https://client.example/cb".to_owned(),
        redirect_uri_sent: true,
        scope: scope(),
        audience: None,
        state: Some("xyz".to_owned()),
        challenge: Some(CodeChallenge::s256(
            "conformance-verifier-0123456789-abcdefghijklmnop",
        )),
        expires_at: now + secs(ttl),
        dpop_jkt: None,
    }
}

/// Unwraps a store result; a store error fails the check.
#[track_caller]
pub(crate) fn ok<T>(r: Result<T, StoreError>, check: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("[{check}] store error: {e}"),
    }
}

#[track_caller]
pub(crate) fn require_multi_thread(check: &str) {
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread
    {
        panic!(
            "[{check}] race checks need a multi-thread runtime: \
             #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]"
        );
    }
}

/// Issues `m` into `g`, requiring success.
/// Tokens minted into the revoked grant `g`: `issue` stores nothing and
/// says so, and the access token is unknown. They are returned for further
/// checks.
async fn issue_is_refused<S: GrantStore + ?Sized>(
    store: &S,
    g: GrantId,
    now: OffsetDateTime,
    check: &str,
) -> Minted {
    let later = mint_tokens(g, now, 600, Some(3600));
    assert!(
        !ok(store.issue(g, later.tokens.clone()).await, check),
        "[{check}] issue after revocation"
    );
    assert_eq!(
        ok(store.access_token(later.access, now).await, check),
        None,
        "[{check}] token issued after revocation"
    );
    later
}

async fn issue_ok<S: GrantStore + ?Sized>(store: &S, g: GrantId, m: &Minted, check: &str) {
    let stored = ok(store.issue(g, m.tokens.clone()).await, check);
    assert!(stored, "[{check}] issue into a fresh grant returned false");
}

/// The refresh key of tokens minted with a refresh token.
#[track_caller]
fn refresh_of(m: &Minted) -> SecretKey {
    match m.refresh {
        Some(k) => k,
        None => unreachable!("minted with a refresh token"),
    }
}

// ----- at hand ----------------------------------------------------------

/// A store that answers [`GrantStore::codes_at_hand`] or
/// [`PendingStore::pending_at_hand`] does there exactly what its async
/// methods do, on the same records: what one side puts the other takes,
/// once; expiry and replay answers agree. A store that answers `None`
/// (networked ones) passes trivially, the server then using the async
/// methods the other checks cover.
pub async fn at_hand_steps_match_async<S: GrantStore + PendingStore + ?Sized>(store: Arc<S>) {
    const C: &str = "at_hand_steps_match_async";
    let now = base_now();
    if let Some(codes) = store.codes_at_hand() {
        // Put at hand, taken async; then the replay is seen at hand.
        let code = mint(TokenKind::Code, grant());
        let record = code_record(now, 60);
        ok(codes.put_code_now(code, record.clone()), C);
        let first = ok(store.take_code(code, now).await, C);
        assert_eq!(
            first,
            CodeTake::Taken(record),
            "[{C}] async take of a code put at hand"
        );
        let again = ok(codes.take_code_now(code, now), C);
        assert_eq!(again, CodeTake::AlreadyTaken, "[{C}] replay at hand");
        // Put async, taken at hand, once; replay async.
        let code = mint(TokenKind::Code, grant());
        let record = code_record(now, 60);
        ok(store.put_code(code, record.clone()).await, C);
        assert_eq!(
            ok(codes.take_code_now(code, now), C),
            CodeTake::Taken(record),
            "[{C}] take at hand of a code put async"
        );
        assert_eq!(
            ok(store.take_code(code, now).await, C),
            CodeTake::AlreadyTaken,
            "[{C}] replay async"
        );
        // Unknown and expired codes are unknown at hand too.
        let stranger = mint(TokenKind::Code, grant());
        assert_eq!(
            ok(codes.take_code_now(stranger, now), C),
            CodeTake::Unknown,
            "[{C}] unknown code at hand"
        );
        let code = mint(TokenKind::Code, grant());
        ok(codes.put_code_now(code, code_record(now, 5)), C);
        assert_eq!(
            ok(codes.take_code_now(code, now + secs(5)), C),
            CodeTake::Unknown,
            "[{C}] expired code at hand"
        );
    }
    if let Some(pending_store) = store.pending_at_hand() {
        // Put at hand, taken async, once (at hand and async).
        let handle = mint(TokenKind::Pending, grant());
        let request = pending(now, 60);
        if pending_store
            .put_pending_now(handle, Box::new(request.clone()))
            .is_err()
        {
            panic!("[{C}] put_pending_now failed");
        }
        assert_eq!(
            ok(store.take_pending(handle, now).await, C),
            Some(request.clone()),
            "[{C}] async take of a request put at hand"
        );
        assert_eq!(
            ok(pending_store.take_pending_now(handle, now), C),
            None,
            "[{C}] second take at hand"
        );
        // Put async, taken at hand, once.
        let handle = mint(TokenKind::Pending, grant());
        ok(store.put_pending(handle, request.clone()).await, C);
        assert_eq!(
            ok(pending_store.take_pending_now(handle, now), C),
            Some(request),
            "[{C}] take at hand of a request put async"
        );
        assert_eq!(
            ok(store.take_pending(handle, now).await, C),
            None,
            "[{C}] second take async"
        );
        // An expired request is gone at hand too.
        let handle = mint(TokenKind::Pending, grant());
        if pending_store
            .put_pending_now(handle, Box::new(pending(now, 5)))
            .is_err()
        {
            panic!("[{C}] put_pending_now failed");
        }
        assert_eq!(
            ok(pending_store.take_pending_now(handle, now + secs(5)), C),
            None,
            "[{C}] expired request at hand"
        );
    }
}

// ----- codes ------------------------------------------------------------

/// A code is `Taken` exactly once, with the record stored; every later take
/// is `AlreadyTaken`.
pub async fn code_is_taken_once<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "code_is_taken_once";
    let now = base_now();
    let g = grant();
    let code = mint(TokenKind::Code, g);
    let record = code_record(now, 60);
    ok(store.put_code(code, record.clone()).await, C);

    let first = ok(store.take_code(code, now).await, C);
    assert_eq!(first, CodeTake::Taken(record), "[{C}] first take");
    for _ in 0..2 {
        let again = ok(store.take_code(code, now).await, C);
        assert_eq!(again, CodeTake::AlreadyTaken, "[{C}] replay");
    }
}

/// A code never stored, or another code of the same grant, is `Unknown`,
/// and asking for it does not disturb the real one.
pub async fn unknown_codes_are_unknown<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "unknown_codes_are_unknown";
    let now = base_now();
    let stranger = mint(TokenKind::Code, grant());
    assert_eq!(
        ok(store.take_code(stranger, now).await, C),
        CodeTake::Unknown,
        "[{C}] code of an unknown grant"
    );

    let g = grant();
    let code = mint(TokenKind::Code, g);
    let record = code_record(now, 60);
    ok(store.put_code(code, record.clone()).await, C);
    let sibling = mint(TokenKind::Code, g);
    assert_eq!(
        ok(store.take_code(sibling, now).await, C),
        CodeTake::Unknown,
        "[{C}] wrong hash, same grant"
    );
    assert_eq!(
        ok(store.take_code(code, now).await, C),
        CodeTake::Taken(record),
        "[{C}] the real code after a wrong guess"
    );
}

/// A code is dead from its `expires_at` on (`expires_at <= now`).
pub async fn expired_code_is_unknown<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "expired_code_is_unknown";
    let now = base_now();
    let code = mint(TokenKind::Code, grant());
    ok(store.put_code(code, code_record(now, 60)).await, C);
    assert_eq!(
        ok(store.take_code(code, now + secs(120)).await, C),
        CodeTake::Unknown,
        "[{C}] long after expiry"
    );
    let code = mint(TokenKind::Code, grant());
    ok(store.put_code(code, code_record(now, 60)).await, C);
    assert_eq!(
        ok(store.take_code(code, now + secs(60)).await, C),
        CodeTake::Unknown,
        "[{C}] at exactly expires_at"
    );

    // The code's own expiry counts, even while its grant lives on.
    let g = grant();
    let code = mint(TokenKind::Code, g);
    ok(store.put_code(code, code_record(now, 60)).await, C);
    issue_ok(&*store, g, &mint_tokens(g, now, 3600, Some(7200)), C).await;
    assert_eq!(
        ok(store.take_code(code, now + secs(120)).await, C),
        CodeTake::Unknown,
        "[{C}] expired code in a live grant"
    );
}

/// After a code was taken and tokens issued into its grant, a replay is
/// `AlreadyTaken` for as long as the grant lives, even past the code's own
/// expiry (so the server can revoke what the code produced, RFC 6749 §4.1.2).
pub async fn taken_code_is_remembered_while_grant_lives<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "taken_code_is_remembered_while_grant_lives";
    let now = base_now();
    let g = grant();
    let code = mint(TokenKind::Code, g);
    ok(store.put_code(code, code_record(now, 60)).await, C);
    assert!(
        matches!(ok(store.take_code(code, now).await, C), CodeTake::Taken(_)),
        "[{C}] first take"
    );
    let m = mint_tokens(g, now, 3600, Some(7200));
    issue_ok(&*store, g, &m, C).await;
    assert_eq!(
        ok(store.take_code(code, now + secs(120)).await, C),
        CodeTake::AlreadyTaken,
        "[{C}] replay after the code's expiry, grant alive"
    );
}

/// A code taken at its last moment keeps its grant (and the taken marker)
/// alive past its expiry even before the exchange issues its tokens, at
/// least five minutes past the take: a replay in between is `AlreadyTaken`
/// (RFC 6749 §4.1.2: the replay revokes what the code got), not unknown
/// because the grant lapsed with the code.
pub async fn taken_code_outlives_its_expiry<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "taken_code_outlives_its_expiry";
    let now = base_now();
    let g = grant();
    let code = mint(TokenKind::Code, g);
    ok(store.put_code(code, code_record(now, 60)).await, C);
    assert!(
        matches!(
            ok(store.take_code(code, now + secs(59)).await, C),
            CodeTake::Taken(_)
        ),
        "[{C}] taken a second before it expires"
    );
    assert_eq!(
        ok(store.take_code(code, now + secs(120)).await, C),
        CodeTake::AlreadyTaken,
        "[{C}] replay after the code's expiry, before any token was issued"
    );
}

// ----- access tokens ----------------------------------------------------

/// `issue` stores an access token that is found while live, with its record;
/// expired (`expires_at <= now`) or unknown tokens are `None`.
pub async fn access_token_lookup<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "access_token_lookup";
    let now = base_now();
    let g = grant();
    let m = mint_tokens(g, now, 60, None);
    issue_ok(&*store, g, &m, C).await;

    let found = ok(store.access_token(m.access, now).await, C);
    assert_eq!(found.as_ref(), Some(&m.tokens.access.1), "[{C}] live token");
    let found = ok(store.access_token(m.access, now + secs(59)).await, C);
    assert!(found.is_some(), "[{C}] a second before expiry");
    assert_eq!(
        ok(store.access_token(m.access, now + secs(60)).await, C),
        None,
        "[{C}] at exactly expires_at"
    );
    assert_eq!(
        ok(store.access_token(m.access, now + secs(120)).await, C),
        None,
        "[{C}] after expiry"
    );
    assert_eq!(
        ok(store.access_token(mint(TokenKind::Access, g), now).await, C),
        None,
        "[{C}] unknown token of a known grant"
    );
    assert_eq!(
        ok(
            store
                .access_token(mint(TokenKind::Access, grant()), now)
                .await,
            C
        ),
        None,
        "[{C}] token of an unknown grant"
    );

    // A client-credentials token: no subject, no refresh token.
    let g2 = grant();
    let cc = mint(TokenKind::Access, g2);
    let record = token_record(now, 60, None);
    let tokens = NewTokens {
        access: (cc.hash, record.clone()),
        refresh: None,
    };
    assert!(
        ok(store.issue(g2, tokens).await, C),
        "[{C}] issue (no subject)"
    );
    assert_eq!(
        ok(store.access_token(cc, now).await, C),
        Some(record),
        "[{C}] token without subject"
    );

    // Several tokens in one grant are all live; each expires on its own,
    // whatever the grant's life.
    let m2 = mint_tokens(g, now, 600, None);
    issue_ok(&*store, g, &m2, C).await;
    assert!(
        ok(store.access_token(m.access, now).await, C).is_some(),
        "[{C}] first of two"
    );
    assert!(
        ok(store.access_token(m2.access, now).await, C).is_some(),
        "[{C}] second of two"
    );
    assert_eq!(
        ok(store.access_token(m.access, now + secs(120)).await, C),
        None,
        "[{C}] expired token in a live grant"
    );
    assert!(
        ok(store.access_token(m2.access, now + secs(120)).await, C).is_some(),
        "[{C}] longer-lived sibling"
    );
}

/// The first tokens of a fresh grant (`issue_new_grant`, what client
/// credentials use): found as issued, expiring on time, and the grant
/// behaves as any other: more tokens join it, revoking it kills them all.
pub async fn new_grant_tokens<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "new_grant_tokens";
    let now = base_now();
    let g = grant();
    let first = mint(TokenKind::Access, g);
    let record = token_record(now, 60, None);
    let tokens = NewTokens {
        access: (first.hash, record.clone()),
        refresh: None,
    };
    assert!(
        ok(store.issue_new_grant(g, tokens).await, C),
        "[{C}] issue_new_grant"
    );
    assert_eq!(
        ok(store.access_token(first, now).await, C),
        Some(record),
        "[{C}] found as issued"
    );
    assert_eq!(
        ok(store.access_token(first, now + secs(60)).await, C),
        None,
        "[{C}] at exactly expires_at"
    );
    // A grant started with refresh tokens too (stores may take another path).
    let g2 = grant();
    let m2 = mint_tokens(g2, now, 60, Some(600));
    assert!(
        ok(store.issue_new_grant(g2, m2.tokens.clone()).await, C),
        "[{C}] issue_new_grant with a refresh token"
    );
    assert!(
        ok(store.access_token(m2.access, now).await, C).is_some(),
        "[{C}] access token of a grant with a refresh token"
    );
    // Another token joins the fresh grant; revoking it kills both.
    let later = mint_tokens(g, now, 600, None);
    issue_ok(&*store, g, &later, C).await;
    assert!(
        ok(store.access_token(later.access, now).await, C).is_some(),
        "[{C}] a later token of the grant"
    );
    ok(store.revoke_grant(g).await, C);
    assert_eq!(
        ok(store.access_token(first, now).await, C),
        None,
        "[{C}] first token after revoking the grant"
    );
    assert_eq!(
        ok(store.access_token(later.access, now).await, C),
        None,
        "[{C}] later token after revoking the grant"
    );
    assert!(
        !ok(store.issue(g, later.tokens.clone()).await, C),
        "[{C}] nothing joins a revoked grant"
    );
    assert!(
        ok(store.access_token(m2.access, now).await, C).is_some(),
        "[{C}] other grants are untouched"
    );
    // A fresh grant's only token dies with the grant, and on its own.
    for revoke_grant in [true, false] {
        let g = grant();
        let alone = mint(TokenKind::Access, g);
        let tokens = NewTokens {
            access: (alone.hash, token_record(now, 120, None)),
            refresh: None,
        };
        assert!(ok(store.issue_new_grant(g, tokens).await, C));
        assert!(ok(store.access_token(alone, now).await, C).is_some());
        if revoke_grant {
            ok(store.revoke_grant(g).await, C);
        } else {
            ok(store.revoke_access_token(alone).await, C);
        }
        assert_eq!(
            ok(store.access_token(alone, now).await, C),
            None,
            "[{C}] a fresh grant's only token after revoke_{}",
            if revoke_grant {
                "grant"
            } else {
                "access_token"
            }
        );
    }
}

/// A token issued by delegation (RFC 8693 token exchange): its actor,
/// nested, is kept; it can join a grant that already has a current
/// refresh token, which stays current; revoking the grant kills it.
pub async fn delegated_access_token<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "delegated_access_token";
    let now = base_now();
    let g = grant();
    let m = mint_tokens(g, now, 300, Some(600));
    issue_ok(&*store, g, &m, C).await;

    let exchanged = mint(TokenKind::Access, g);
    let mut record = token_record(now, 120, Some("alice"));
    record.family_expires_at = None;
    record.actor = Some(
        tessera::Actor::new("resource-server").with_prior(Some(tessera::Actor::new("first-actor"))),
    );
    let tokens = NewTokens {
        access: (exchanged.hash, record.clone()),
        refresh: None,
    };
    assert!(
        ok(store.issue(g, tokens).await, C),
        "[{C}] issue into a live grant"
    );
    assert_eq!(
        ok(store.access_token(exchanged, now).await, C),
        Some(record),
        "[{C}] the record, actor included, as stored"
    );
    assert!(
        matches!(
            ok(store.refresh_token(refresh_of(&m), now).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] the grant's refresh token stays current"
    );
    ok(store.revoke_grant(g).await, C);
    assert_eq!(
        ok(store.access_token(exchanged, now).await, C),
        None,
        "[{C}] revoked with its grant"
    );
}

/// `revoke_access_token` kills one token and no other; revoking an unknown
/// token is not an error.
pub async fn access_token_revocation<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "access_token_revocation";
    let now = base_now();
    let g = grant();
    let a = mint_tokens(g, now, 60, Some(600));
    let b = mint_tokens(g, now, 60, None);
    issue_ok(&*store, g, &a, C).await;
    issue_ok(&*store, g, &b, C).await;

    ok(store.revoke_access_token(a.access).await, C);
    assert_eq!(
        ok(store.access_token(a.access, now).await, C),
        None,
        "[{C}] revoked token"
    );
    assert!(
        ok(store.access_token(b.access, now).await, C).is_some(),
        "[{C}] sibling token"
    );
    assert!(
        matches!(
            ok(store.refresh_token(refresh_of(&a), now).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] the grant's refresh token survives an access-token revocation"
    );
    ok(
        store.revoke_access_token(mint(TokenKind::Access, g)).await,
        C,
    );
    ok(
        store
            .revoke_access_token(mint(TokenKind::Access, grant()))
            .await,
        C,
    );
    assert!(
        ok(store.access_token(b.access, now).await, C).is_some(),
        "[{C}] after no-op revocations"
    );
}

/// A grant revoked before anything was issued into it stays revoked: "any
/// \[token\] issued later is dead" ([`GrantStore::revoke_grant`]), also when
/// the store held nothing of the grant yet (a grant of one's own may
/// revoke first).
pub async fn a_grant_revoked_before_its_first_issue_stays_revoked<S: GrantStore + ?Sized>(
    store: Arc<S>,
) {
    const C: &str = "a_grant_revoked_before_its_first_issue_stays_revoked";
    let now = base_now();
    let g = grant();
    ok(store.revoke_grant(g).await, C);
    issue_is_refused(&*store, g, now, C).await;
}

/// `revoke_grant` kills every token of the grant, and every later `issue` or
/// `rotate_refresh` into it stores nothing and returns `false`.
pub async fn grant_revocation<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "grant_revocation";
    let now = base_now();
    let g = grant();
    let code = mint(TokenKind::Code, g);
    ok(store.put_code(code, code_record(now, 60)).await, C);
    assert!(
        matches!(ok(store.take_code(code, now).await, C), CodeTake::Taken(_)),
        "[{C}] take"
    );
    let first = mint_tokens(g, now, 600, Some(3600));
    issue_ok(&*store, g, &first, C).await;
    let second = mint_tokens(g, now, 600, None);
    issue_ok(&*store, g, &second, C).await;

    ok(store.revoke_grant(g).await, C);
    assert_eq!(
        ok(store.access_token(first.access, now).await, C),
        None,
        "[{C}] first access token"
    );
    assert_eq!(
        ok(store.access_token(second.access, now).await, C),
        None,
        "[{C}] second access token"
    );
    assert_eq!(
        ok(store.refresh_token(refresh_of(&first), now).await, C),
        RefreshLookup::Unknown,
        "[{C}] refresh token of a revoked grant"
    );

    let later = issue_is_refused(&*store, g, now, C).await;
    assert_eq!(
        ok(store.refresh_token(refresh_of(&later), now).await, C),
        RefreshLookup::Unknown,
        "[{C}] refresh token issued after revocation"
    );

    let rotated = mint_tokens(g, now, 600, Some(3600));
    assert!(
        !ok(
            store
                .rotate_refresh(refresh_of(&first), rotated.tokens.clone(), now)
                .await,
            C
        ),
        "[{C}] rotate after revocation"
    );
    assert_eq!(
        ok(store.access_token(rotated.access, now).await, C),
        None,
        "[{C}] token of a refused rotation"
    );

    // Revoking twice is harmless.
    ok(store.revoke_grant(g).await, C);
    assert!(
        !ok(
            store.issue(g, mint_tokens(g, now, 60, None).tokens).await,
            C
        ),
        "[{C}] issue after second revocation"
    );
}

// ----- refresh tokens ---------------------------------------------------

/// A refresh token is `Current` while live, `Unknown` when expired or unknown.
pub async fn refresh_token_lookup<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "refresh_token_lookup";
    let now = base_now();
    let g = grant();
    // The access token outlives the refresh token: the grant lives on.
    let m = mint_tokens(g, now, 600, Some(60));
    issue_ok(&*store, g, &m, C).await;
    let r = refresh_of(&m);
    let expected = m.tokens.refresh.as_ref().map(|(_, rec)| rec.clone());

    match ok(store.refresh_token(r, now).await, C) {
        RefreshLookup::Current(rec) => assert_eq!(Some(rec), expected, "[{C}] record"),
        other => panic!("[{C}] live refresh token: {other:?}"),
    }
    assert_eq!(
        ok(store.refresh_token(r, now + secs(60)).await, C),
        RefreshLookup::Unknown,
        "[{C}] at exactly expires_at"
    );
    assert_eq!(
        ok(store.refresh_token(r, now + secs(120)).await, C),
        RefreshLookup::Unknown,
        "[{C}] after expiry"
    );
    assert_eq!(
        ok(
            store.refresh_token(mint(TokenKind::Refresh, g), now).await,
            C
        ),
        RefreshLookup::Unknown,
        "[{C}] unknown token of a known grant"
    );
    assert_eq!(
        ok(
            store
                .refresh_token(mint(TokenKind::Refresh, grant()), now)
                .await,
            C
        ),
        RefreshLookup::Unknown,
        "[{C}] token of an unknown grant"
    );
}

/// A rotation run twice with the same new tokens, as a store that retries a
/// command whose answer was lost (Redis Cluster) runs it, answers as the
/// first run did and revokes nothing: the retry is not a second party using
/// the token (RFC 9700 §4.14.2). Other rotations of the old token are still
/// refused. For stores that retry; the others may refuse the second run.
pub async fn a_retried_rotation_is_the_same_rotation<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "a_retried_rotation_is_the_same_rotation";
    let now = base_now();
    let g = grant();
    let first = mint_tokens(g, now, 300, Some(600));
    issue_ok(&*store, g, &first, C).await;
    let r1 = refresh_of(&first);
    let second = mint_tokens(g, now, 300, Some(1200));
    for run in ["first run", "the retry"] {
        assert!(
            ok(
                store.rotate_refresh(r1, second.tokens.clone(), now).await,
                C
            ),
            "[{C}] {run}"
        );
    }
    let other = mint_tokens(g, now, 300, Some(1200));
    assert!(
        !ok(store.rotate_refresh(r1, other.tokens.clone(), now).await, C),
        "[{C}] another rotation of the old token"
    );
    let r2 = refresh_of(&second);
    assert!(
        matches!(
            ok(store.refresh_token(r2, now).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] the new refresh token is current: nothing was revoked"
    );
}

/// Rotation is a compare-and-swap: it succeeds once per refresh token; the
/// old token is then `Retired` (until its own expiry), the new one `Current`;
/// a losing rotation stores nothing.
pub async fn refresh_rotation<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "refresh_rotation";
    let now = base_now();
    let g = grant();
    let first = mint_tokens(g, now, 300, Some(600));
    issue_ok(&*store, g, &first, C).await;
    let r1 = refresh_of(&first);

    let second = mint_tokens(g, now, 300, Some(1200));
    assert!(
        ok(
            store.rotate_refresh(r1, second.tokens.clone(), now).await,
            C
        ),
        "[{C}] first rotation"
    );
    let loser = mint_tokens(g, now, 300, Some(1200));
    assert!(
        !ok(store.rotate_refresh(r1, loser.tokens.clone(), now).await, C),
        "[{C}] second rotation of the same token"
    );

    let r2 = refresh_of(&second);
    assert_eq!(
        ok(store.refresh_token(r1, now).await, C),
        RefreshLookup::Retired,
        "[{C}] old token"
    );
    assert!(
        matches!(
            ok(store.refresh_token(r2, now).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] new token"
    );
    assert_eq!(
        ok(store.refresh_token(refresh_of(&loser), now).await, C),
        RefreshLookup::Unknown,
        "[{C}] refresh token of the losing rotation"
    );
    assert_eq!(
        ok(store.access_token(loser.access, now).await, C),
        None,
        "[{C}] access token of the losing rotation"
    );
    assert!(
        ok(store.access_token(second.access, now).await, C).is_some(),
        "[{C}] access token of the rotation"
    );
    assert!(
        ok(store.access_token(first.access, now).await, C).is_some(),
        "[{C}] rotation leaves earlier access tokens alone"
    );

    // Rotate again: both predecessors are retired.
    let third = mint_tokens(g, now, 300, Some(1800));
    assert!(
        ok(store.rotate_refresh(r2, third.tokens.clone(), now).await, C),
        "[{C}] rotation of the new token"
    );
    assert_eq!(
        ok(store.refresh_token(r1, now).await, C),
        RefreshLookup::Retired,
        "[{C}] first token, two rotations on"
    );
    assert_eq!(
        ok(store.refresh_token(r2, now).await, C),
        RefreshLookup::Retired,
        "[{C}] second token"
    );
    assert!(
        !ok(
            store
                .rotate_refresh(r1, mint_tokens(g, now, 300, Some(600)).tokens, now)
                .await,
            C
        ),
        "[{C}] rotating a retired token"
    );

    // A retired token is remembered until its own expiry, not longer.
    assert_eq!(
        ok(store.refresh_token(r1, now + secs(599)).await, C),
        RefreshLookup::Retired,
        "[{C}] retired token just before its expiry"
    );
    assert_eq!(
        ok(store.refresh_token(r1, now + secs(700)).await, C),
        RefreshLookup::Unknown,
        "[{C}] retired token after its expiry"
    );
    assert_eq!(
        ok(store.refresh_token(r2, now + secs(700)).await, C),
        RefreshLookup::Retired,
        "[{C}] second token, still before its expiry"
    );
}

/// A client refreshing in a loop cannot grow its grant without end (the
/// [`GrantStore`] bounds, RFC 6819 §4.4.1.11): of the access tokens only
/// the newest [`MAX_ACCESS_TOKENS_PER_GRANT`] stay live, of the retired
/// refresh tokens the newest [`MAX_RETIRED_REFRESH_PER_GRANT`] are still
/// recognised as reuse (RFC 9700 §4.14.2), older ones are unknown. Each
/// rotation comes a second after the last, and every token expires at the
/// same instant (as refresh tokens do near their family's end): "oldest"
/// is the order of issue, never a tie broken by hash, so the token retired
/// a moment ago is never the one forgotten.
pub async fn a_refresh_loop_is_bounded_per_grant<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "a_refresh_loop_is_bounded_per_grant";
    let now = base_now();
    let rotations = MAX_RETIRED_REFRESH_PER_GRANT + 10;
    let g = grant();
    let first = mint_tokens(g, now, 3600, Some(7200));
    issue_ok(&*store, g, &first, C).await;
    let mut access = vec![first.access];
    let mut refresh = vec![refresh_of(&first)];
    let mut at = now;
    for i in 1..=rotations {
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        at = now + secs(i);
        let old = refresh[refresh.len() - 1];
        let next = mint_tokens(g, at, 3600 - i, Some(7200 - i));
        assert!(
            ok(store.rotate_refresh(old, next.tokens.clone(), at).await, C),
            "[{C}] rotation {i}"
        );
        access.push(next.access);
        refresh.push(refresh_of(&next));
    }
    // Access tokens: 1 + rotations issued, the newest 256 live.
    let kept = access.len() - MAX_ACCESS_TOKENS_PER_GRANT;
    for (i, expect) in [
        (0, false),
        (kept - 1, false),
        (kept, true),
        (access.len() - 1, true),
    ] {
        assert_eq!(
            ok(store.access_token(access[i], at).await, C).is_some(),
            expect,
            "[{C}] access token {i} of {}",
            access.len()
        );
    }
    // Refresh tokens: all but the last retired, the newest 1,024 of them remembered.
    let forgotten = rotations - MAX_RETIRED_REFRESH_PER_GRANT;
    for (i, expect) in [
        (0, RefreshLookup::Unknown),
        (forgotten - 1, RefreshLookup::Unknown),
        (forgotten, RefreshLookup::Retired),
        (rotations - 1, RefreshLookup::Retired),
    ] {
        assert_eq!(
            ok(store.refresh_token(refresh[i], at).await, C),
            expect,
            "[{C}] refresh token {i} of {}",
            refresh.len()
        );
    }
    assert!(
        matches!(
            ok(store.refresh_token(refresh[rotations], at).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] the current refresh token"
    );
}

/// A rotation that fails (expired or unknown old token, or an access token
/// passed as the old one) changes nothing.
pub async fn failed_rotation_changes_nothing<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "failed_rotation_changes_nothing";
    let now = base_now();
    let g = grant();
    // The access token outlives the refresh token: the grant lives on.
    let m = mint_tokens(g, now, 600, Some(60));
    issue_ok(&*store, g, &m, C).await;
    let r = refresh_of(&m);

    let late = mint_tokens(g, now, 300, Some(600));
    assert!(
        !ok(
            store
                .rotate_refresh(r, late.tokens.clone(), now + secs(120))
                .await,
            C
        ),
        "[{C}] rotating an expired token"
    );
    let unknown = mint_tokens(g, now, 300, Some(600));
    assert!(
        !ok(
            store
                .rotate_refresh(mint(TokenKind::Refresh, g), unknown.tokens.clone(), now)
                .await,
            C
        ),
        "[{C}] rotating an unknown token"
    );
    let stranger_grant = grant();
    let stranger = mint_tokens(stranger_grant, now, 300, Some(600));
    assert!(
        !ok(
            store
                .rotate_refresh(
                    mint(TokenKind::Refresh, stranger_grant),
                    stranger.tokens.clone(),
                    now
                )
                .await,
            C
        ),
        "[{C}] rotating a token of an unknown grant"
    );
    let by_access = mint_tokens(g, now, 300, Some(600));
    assert!(
        !ok(
            store
                .rotate_refresh(m.access, by_access.tokens.clone(), now)
                .await,
            C
        ),
        "[{C}] rotating with an access token"
    );

    assert!(
        matches!(
            ok(store.refresh_token(r, now).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] the token is still current"
    );
    for (what, failed) in [
        ("expired", &late),
        ("unknown", &unknown),
        ("by access token", &by_access),
    ] {
        assert_eq!(
            ok(store.access_token(failed.access, now).await, C),
            None,
            "[{C}] access token of a failed rotation ({what})"
        );
        assert_eq!(
            ok(store.refresh_token(refresh_of(failed), now).await, C),
            RefreshLookup::Unknown,
            "[{C}] refresh token of a failed rotation ({what})"
        );
    }
    assert_eq!(
        ok(store.access_token(stranger.access, now).await, C),
        None,
        "[{C}] unknown grant stays unknown"
    );
}

/// A secret of one kind is never answered as another kind.
pub async fn kinds_do_not_mix<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "kinds_do_not_mix";
    let now = base_now();
    let g = grant();
    let code = mint(TokenKind::Code, g);
    ok(store.put_code(code, code_record(now, 60)).await, C);
    let m = mint_tokens(g, now, 300, Some(600));
    issue_ok(&*store, g, &m, C).await;
    let r = refresh_of(&m);

    assert_eq!(
        ok(store.access_token(r, now).await, C),
        None,
        "[{C}] refresh token as access token"
    );
    assert_eq!(
        ok(store.access_token(code, now).await, C),
        None,
        "[{C}] code as access token"
    );
    assert_eq!(
        ok(store.refresh_token(m.access, now).await, C),
        RefreshLookup::Unknown,
        "[{C}] access token as refresh token"
    );
    assert_eq!(
        ok(store.refresh_token(code, now).await, C),
        RefreshLookup::Unknown,
        "[{C}] code as refresh token"
    );
    assert_eq!(
        ok(store.take_code(m.access, now).await, C),
        CodeTake::Unknown,
        "[{C}] access token as code"
    );
    assert_eq!(
        ok(store.take_code(r, now).await, C),
        CodeTake::Unknown,
        "[{C}] refresh token as code"
    );
    assert!(
        matches!(ok(store.take_code(code, now).await, C), CodeTake::Taken(_)),
        "[{C}] the code itself"
    );
}

// ----- pending requests -------------------------------------------------

/// A pending request can be read any number of times and taken once.
pub async fn pending_lifecycle<S: PendingStore + ?Sized>(store: Arc<S>) {
    const C: &str = "pending_lifecycle";
    let now = base_now();
    let handle = mint(TokenKind::Pending, grant());
    let request = pending(now, 600);
    assert_eq!(
        ok(store.get_pending(handle, now).await, C),
        None,
        "[{C}] before put"
    );
    ok(store.put_pending(handle, request.clone()).await, C);

    for _ in 0..2 {
        assert_eq!(
            ok(store.get_pending(handle, now).await, C).as_ref(),
            Some(&request),
            "[{C}] get"
        );
    }
    assert_eq!(
        ok(
            store
                .get_pending(mint(TokenKind::Pending, grant()), now)
                .await,
            C
        ),
        None,
        "[{C}] unknown handle"
    );
    assert_eq!(
        ok(store.take_pending(handle, now).await, C),
        Some(request),
        "[{C}] take"
    );
    assert_eq!(
        ok(store.take_pending(handle, now).await, C),
        None,
        "[{C}] second take"
    );
    assert_eq!(
        ok(store.get_pending(handle, now).await, C),
        None,
        "[{C}] get after take"
    );
}

/// The resource a grant is for (RFC 8707) is kept with the code, the
/// pending request and every token, through rotation, and records that
/// differ only in it are not confused (a store that shares equal parts of
/// records must keep the audience apart).
pub async fn audience_is_kept<S: GrantStore + PendingStore + ?Sized>(store: Arc<S>) {
    const C: &str = "audience_is_kept";
    let now = base_now();
    let resource = |uri: &str| match ResourceIndicator::new(uri) {
        Ok(r) => Some(r),
        Err(e) => unreachable!("a valid resource: {e}"),
    };
    let (api, mcp) = (
        resource("https://rs.example/api"),
        resource("https://rs.example/mcp"),
    );

    let g = grant();
    let code = mint(TokenKind::Code, g);
    let mut record = code_record(now, 60);
    record.audience = mcp.clone();
    ok(store.put_code(code, record.clone()).await, C);
    assert_eq!(
        ok(store.take_code(code, now).await, C),
        CodeTake::Taken(record),
        "[{C}] code"
    );

    let handle = mint(TokenKind::Pending, grant());
    let mut request = pending(now, 600);
    request.audience = mcp.clone();
    ok(store.put_pending(handle, request.clone()).await, C);
    assert_eq!(
        ok(store.get_pending(handle, now).await, C).as_ref(),
        Some(&request),
        "[{C}] pending"
    );

    let with = |mut m: Minted, audience: &Option<ResourceIndicator>| {
        m.tokens.access.1.audience = audience.clone();
        if let Some((_, r)) = m.tokens.refresh.as_mut() {
            r.audience = audience.clone();
        }
        m
    };
    let first = with(mint_tokens(g, now, 300, Some(600)), &mcp);
    issue_ok(&*store, g, &first, C).await;
    // Same client, subject and scope, another audience, another grant.
    let g2 = grant();
    let other = with(mint_tokens(g2, now, 300, None), &api);
    issue_ok(&*store, g2, &other, C).await;
    let audience_of = |r: Option<TokenRecord>| r.and_then(|r| r.audience);
    assert_eq!(
        audience_of(ok(store.access_token(first.access, now).await, C)),
        mcp,
        "[{C}] access token"
    );
    assert_eq!(
        audience_of(ok(store.access_token(other.access, now).await, C)),
        api,
        "[{C}] another grant's access token"
    );
    let r1 = refresh_of(&first);
    match ok(store.refresh_token(r1, now).await, C) {
        RefreshLookup::Current(r) => assert_eq!(r.audience, mcp, "[{C}] refresh token"),
        other => panic!("[{C}] refresh token: {other:?}"),
    }
    let second = with(mint_tokens(g, now, 300, Some(600)), &mcp);
    assert!(
        ok(
            store.rotate_refresh(r1, second.tokens.clone(), now).await,
            C
        ),
        "[{C}] rotation"
    );
    match ok(store.refresh_token(refresh_of(&second), now).await, C) {
        RefreshLookup::Current(r) => assert_eq!(r.audience, mcp, "[{C}] rotated refresh token"),
        other => panic!("[{C}] rotated refresh token: {other:?}"),
    }
    assert_eq!(
        audience_of(ok(store.access_token(second.access, now).await, C)),
        mcp,
        "[{C}] access token of the rotation"
    );
}

/// The DPoP key a token is bound to (RFC 9449 §6: `dpop_jkt`) is kept on
/// every token, through rotation; a bound access token and an unbound one
/// that say the same otherwise are not confused, nor an access token bound
/// and its refresh token not (a confidential client's, §5).
pub async fn dpop_binding_is_kept<S: GrantStore + ?Sized>(store: Arc<S>) {
    const C: &str = "dpop_binding_is_kept";
    let now = base_now();
    let jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned());
    let g = grant();
    let mut first = mint_tokens(g, now, 300, Some(600));
    first.tokens.access.1.dpop_jkt = jkt.clone();
    issue_ok(&*store, g, &first, C).await;
    let g2 = grant();
    let unbound = mint_tokens(g2, now, 300, None);
    issue_ok(&*store, g2, &unbound, C).await;
    let jkt_of = |r: Option<TokenRecord>| r.and_then(|r| r.dpop_jkt);
    assert_eq!(
        jkt_of(ok(store.access_token(first.access, now).await, C)),
        jkt,
        "[{C}] bound access token"
    );
    assert_eq!(
        jkt_of(ok(store.access_token(unbound.access, now).await, C)),
        None,
        "[{C}] an unbound access token saying the same otherwise"
    );
    let r1 = refresh_of(&first);
    match ok(store.refresh_token(r1, now).await, C) {
        RefreshLookup::Current(r) => assert_eq!(r.dpop_jkt, None, "[{C}] unbound refresh token"),
        other => panic!("[{C}] refresh token: {other:?}"),
    }
    // A public client's rotation: both tokens bound.
    let mut second = mint_tokens(g, now, 300, Some(600));
    second.tokens.access.1.dpop_jkt = jkt.clone();
    if let Some((_, r)) = second.tokens.refresh.as_mut() {
        r.dpop_jkt = jkt.clone();
    }
    assert!(
        ok(
            store.rotate_refresh(r1, second.tokens.clone(), now).await,
            C
        ),
        "[{C}] rotation"
    );
    match ok(store.refresh_token(refresh_of(&second), now).await, C) {
        RefreshLookup::Current(r) => assert_eq!(r.dpop_jkt, jkt, "[{C}] bound refresh token"),
        other => panic!("[{C}] rotated refresh token: {other:?}"),
    }
    assert_eq!(
        jkt_of(ok(store.access_token(second.access, now).await, C)),
        jkt,
        "[{C}] access token of the rotation"
    );
}

/// A pending request is dead from its `expires_at` on.
pub async fn expired_pending_is_gone<S: PendingStore + ?Sized>(store: Arc<S>) {
    const C: &str = "expired_pending_is_gone";
    let now = base_now();
    let handle = mint(TokenKind::Pending, grant());
    ok(store.put_pending(handle, pending(now, 60)).await, C);
    assert_eq!(
        ok(store.get_pending(handle, now + secs(60)).await, C),
        None,
        "[{C}] get at exactly expires_at"
    );
    assert_eq!(
        ok(store.get_pending(handle, now + secs(120)).await, C),
        None,
        "[{C}] get after expiry"
    );
    assert_eq!(
        ok(store.take_pending(handle, now + secs(120)).await, C),
        None,
        "[{C}] take after expiry"
    );
}

// ----- isolation --------------------------------------------------------

/// Records of different grants do not interfere, and a key whose grant and
/// hash do not belong together finds nothing.
pub async fn grants_are_independent<S: GrantStore + PendingStore + ?Sized>(store: Arc<S>) {
    const C: &str = "grants_are_independent";
    let now = base_now();
    let (ga, gb) = (grant(), grant());
    let (code_a, code_b) = (mint(TokenKind::Code, ga), mint(TokenKind::Code, gb));
    let record_b = code_record(now, 60);
    ok(store.put_code(code_a, code_record(now, 60)).await, C);
    ok(store.put_code(code_b, record_b.clone()).await, C);
    assert!(
        matches!(
            ok(store.take_code(code_a, now).await, C),
            CodeTake::Taken(_)
        ),
        "[{C}] code A"
    );

    let a = mint_tokens(ga, now, 300, Some(600));
    let b = mint_tokens(gb, now, 300, Some(600));
    issue_ok(&*store, ga, &a, C).await;
    issue_ok(&*store, gb, &b, C).await;
    ok(store.revoke_grant(ga).await, C);

    assert_eq!(
        ok(store.take_code(code_b, now).await, C),
        CodeTake::Taken(record_b),
        "[{C}] code B after A's revocation"
    );
    assert!(
        ok(store.access_token(b.access, now).await, C).is_some(),
        "[{C}] B's access token"
    );
    assert!(
        matches!(
            ok(store.refresh_token(refresh_of(&b), now).await, C),
            RefreshLookup::Current(_)
        ),
        "[{C}] B's refresh token"
    );
    let more_b = mint_tokens(gb, now, 300, None);
    issue_ok(&*store, gb, &more_b, C).await;

    // Mismatched keys: B's grant id with A's hash and the other way round.
    let crossed = SecretKey {
        grant: ga,
        hash: b.access.hash,
    };
    assert_eq!(
        ok(store.access_token(crossed, now).await, C),
        None,
        "[{C}] B's hash under A's grant"
    );
    let c = mint_tokens(grant(), now, 300, None);
    issue_ok(&*store, c.access.grant, &c, C).await;
    let crossed = SecretKey {
        grant: gb,
        hash: c.access.hash,
    };
    assert_eq!(
        ok(store.access_token(crossed, now).await, C),
        None,
        "[{C}] C's hash under B's grant"
    );

    // Pending handles are independent of each other too.
    let (p1, p2) = (mint(TokenKind::Pending, ga), mint(TokenKind::Pending, ga));
    ok(store.put_pending(p1, pending(now, 600)).await, C);
    ok(store.put_pending(p2, pending(now, 600)).await, C);
    assert!(
        ok(store.take_pending(p1, now).await, C).is_some(),
        "[{C}] first pending"
    );
    assert!(
        ok(store.get_pending(p2, now).await, C).is_some(),
        "[{C}] second pending after first taken"
    );
}

// ----- races ------------------------------------------------------------

/// [`RACERS`] tasks take one code at once: exactly one gets `Taken`, all
/// others `AlreadyTaken`.
pub async fn race_take_code<S: GrantStore + ?Sized + 'static>(store: Arc<S>) {
    const C: &str = "race_take_code";
    require_multi_thread(C);
    let now = base_now();
    let code = mint(TokenKind::Code, grant());
    ok(store.put_code(code, code_record(now, 60)).await, C);

    let answers = race(RACERS, |_| {
        let store = Arc::clone(&store);
        async move { ok(store.take_code(code, now).await, C) }
    })
    .await;
    let taken = answers
        .iter()
        .filter(|a| matches!(a, CodeTake::Taken(_)))
        .count();
    let replays = answers
        .iter()
        .filter(|a| **a == CodeTake::AlreadyTaken)
        .count();
    assert_eq!(taken, 1, "[{C}] takers that got the code");
    assert_eq!(
        replays,
        RACERS - 1,
        "[{C}] the others must see AlreadyTaken"
    );
}

/// [`RACERS`] tasks rotate one refresh token at once, each with its own new
/// tokens: exactly one succeeds, and only its tokens are stored.
pub async fn race_rotate_refresh<S: GrantStore + ?Sized + 'static>(store: Arc<S>) {
    const C: &str = "race_rotate_refresh";
    require_multi_thread(C);
    let now = base_now();
    let g = grant();
    let first = mint_tokens(g, now, 300, Some(600));
    issue_ok(&*store, g, &first, C).await;
    let old = refresh_of(&first);

    let contenders: Vec<Minted> = (0..RACERS)
        .map(|_| mint_tokens(g, now, 300, Some(600)))
        .collect();
    let tokens: Vec<NewTokens> = contenders.iter().map(|m| m.tokens.clone()).collect();
    let tokens = Arc::new(tokens);
    let answers = race(RACERS, |i| {
        let store = Arc::clone(&store);
        let tokens = Arc::clone(&tokens);
        async move {
            let mine = tokens.get(i).cloned();
            match mine {
                Some(t) => ok(store.rotate_refresh(old, t, now).await, C),
                None => unreachable!("one set of tokens per racer"),
            }
        }
    })
    .await;
    let winners: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, w)| **w)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "[{C}] successful rotations");
    let winner = winners[0];

    assert_eq!(
        ok(store.refresh_token(old, now).await, C),
        RefreshLookup::Retired,
        "[{C}] the rotated token"
    );
    for (i, m) in contenders.iter().enumerate() {
        let access = ok(store.access_token(m.access, now).await, C);
        let refresh = ok(store.refresh_token(refresh_of(m), now).await, C);
        if i == winner {
            assert!(access.is_some(), "[{C}] winner's access token");
            assert!(
                matches!(refresh, RefreshLookup::Current(_)),
                "[{C}] winner's refresh token"
            );
        } else {
            assert_eq!(access, None, "[{C}] a loser's access token was stored");
            assert_eq!(
                refresh,
                RefreshLookup::Unknown,
                "[{C}] a loser's refresh token was stored"
            );
        }
    }
}

/// [`RACERS`] tasks take one pending request at once: exactly one gets it.
pub async fn race_take_pending<S: PendingStore + ?Sized + 'static>(store: Arc<S>) {
    const C: &str = "race_take_pending";
    require_multi_thread(C);
    let now = base_now();
    let handle = mint(TokenKind::Pending, grant());
    let request = pending(now, 600);
    ok(store.put_pending(handle, request.clone()).await, C);

    let answers = race(RACERS, |_| {
        let store = Arc::clone(&store);
        async move { ok(store.take_pending(handle, now).await, C) }
    })
    .await;
    let got: Vec<_> = answers.into_iter().flatten().collect();
    assert_eq!(got.len(), 1, "[{C}] takers that got the request");
    assert_eq!(got.first(), Some(&request), "[{C}] the request taken");
}

/// `issue` racing `revoke_grant`: whatever the order, once both are done no
/// token of the grant is live, and later issues are refused. Repeated over
/// several grants to vary the interleaving.
pub async fn race_issue_and_revoke<S: GrantStore + ?Sized + 'static>(store: Arc<S>) {
    const C: &str = "race_issue_and_revoke";
    require_multi_thread(C);
    const ROUNDS: usize = 10;
    let now = base_now();
    for round in 0..ROUNDS {
        let g = grant();
        // The grant exists before the race (as after a code was taken).
        let seed = mint_tokens(g, now, 300, Some(600));
        issue_ok(&*store, g, &seed, C).await;

        let issuers = RACERS / 10;
        let minted: Vec<Minted> = (0..issuers)
            .map(|_| mint_tokens(g, now, 300, Some(600)))
            .collect();
        let tokens = Arc::new(minted.iter().map(|m| m.tokens.clone()).collect::<Vec<_>>());
        // Racer `round % (issuers + 1)` revokes; the others issue.
        let revoker = round % (issuers + 1);
        race(issuers + 1, |i| {
            let store = Arc::clone(&store);
            let tokens = Arc::clone(&tokens);
            async move {
                if i == revoker {
                    ok(store.revoke_grant(g).await, C);
                } else {
                    let idx = if i < revoker { i } else { i - 1 };
                    if let Some(t) = tokens.get(idx).cloned() {
                        ok(store.issue(g, t).await, C);
                    }
                }
            }
        })
        .await;

        for m in std::iter::once(&seed).chain(minted.iter()) {
            assert_eq!(
                ok(store.access_token(m.access, now).await, C),
                None,
                "[{C}] round {round}: an access token outlived the revocation"
            );
            assert_eq!(
                ok(store.refresh_token(refresh_of(m), now).await, C),
                RefreshLookup::Unknown,
                "[{C}] round {round}: a refresh token outlived the revocation"
            );
        }
        let after = mint_tokens(g, now, 300, None);
        assert!(
            !ok(store.issue(g, after.tokens).await, C),
            "[{C}] round {round}: issue after the race"
        );
    }
}

/// Runs `n` tasks made by `task(i)`, released together by a barrier, and
/// returns their answers in task order. A panicking task fails the check.
pub(crate) async fn race<T, F, Fut>(n: usize, mut task: F) -> Vec<T>
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let fut = task(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for joined in futures::future::join_all(handles).await {
        match joined {
            Ok(a) => answers.push(a),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a racing task was cancelled: {e}"),
        }
    }
    answers
}

// ----- device authorization (RFC 8628) -----------------------------------

fn device_record(now: OffsetDateTime, ttl: i64) -> DeviceRecord {
    DeviceRecord {
        client_id: client_id(),
        scope: scope(),
        // Kept through every transition (the Redis store re-encodes the
        // record in Lua): compared whole when the approval is taken.
        resource: tessera::ResourceIndicator::new("https://photos.example/api").ok(),
        status: DeviceStatus::Pending,
        interval: 5,
        last_polled_at: None,
        expires_at: now + secs(ttl),
    }
}

fn user_code() -> tessera::TokenHash {
    tessera::TokenHash::of(&format!("user_code:{:?}", OsRandom.bytes32()))
}

/// A request is found by its user code, decided once, and an approved one
/// yields `Approved` to one poll and `Unknown` after.
pub async fn device_lifecycle<S: DeviceStore + ?Sized>(store: Arc<S>) {
    const C: &str = "device_lifecycle";
    let now = base_now();
    let device = mint(TokenKind::Device, grant());
    let code = user_code();
    assert!(
        ok(
            store
                .put_device(device, code, device_record(now, 600), now)
                .await,
            C
        ),
        "[{C}] put"
    );
    let found = ok(store.device_by_user_code(code, now).await, C);
    assert_eq!(
        found,
        Some(device_record(now, 600)),
        "[{C}] found by user code"
    );
    assert_eq!(
        ok(store.device_by_user_code(user_code(), now).await, C),
        None,
        "[{C}] another user code"
    );
    let alice = DeviceStatus::Approved {
        subject: Subject::new("alice"),
    };
    assert!(
        ok(store.decide_device(code, alice.clone(), now).await, C),
        "[{C}] decide"
    );
    assert!(
        !ok(
            store.decide_device(code, DeviceStatus::Denied, now).await,
            C
        ),
        "[{C}] a decided request is not decided again"
    );
    match ok(store.poll_device(device, &client_id(), now).await, C) {
        DevicePoll::Approved(r) => {
            assert_eq!(r.status, alice, "[{C}] approved by alice");
            assert_eq!(
                r.resource,
                device_record(now, 600).resource,
                "[{C}] the device's resource is kept through its decision"
            );
        }
        other => panic!("[{C}] expected Approved, got {other:?}"),
    }
    assert_eq!(
        ok(store.poll_device(device, &client_id(), now).await, C),
        DevicePoll::Unknown,
        "[{C}] a device code yields tokens once"
    );
    // A denied request answers Denied, and again to a later poll (a
    // device whose answer was lost, RFC 8628 §3.5), until it expires.
    let device = mint(TokenKind::Device, grant());
    let code = user_code();
    ok(
        store
            .put_device(device, code, device_record(now, 600), now)
            .await,
        C,
    );
    assert!(ok(
        store.decide_device(code, DeviceStatus::Denied, now).await,
        C
    ));
    for _ in 0..2 {
        assert_eq!(
            ok(store.poll_device(device, &client_id(), now).await, C),
            DevicePoll::Denied
        );
    }
}

/// Polling follows [`DeviceRecord::poll`]: pending, then slow_down when
/// early (interval +5), another client's poll changes nothing, expired
/// after `expires_at`.
pub async fn device_polling_rules<S: DeviceStore + ?Sized>(store: Arc<S>) {
    const C: &str = "device_polling_rules";
    let now = base_now();
    let device = mint(TokenKind::Device, grant());
    let code = user_code();
    ok(
        store
            .put_device(device, code, device_record(now, 600), now)
            .await,
        C,
    );
    let other = ClientId::new("another-client").unwrap_or_else(client_id);
    assert_eq!(
        ok(store.poll_device(device, &other, now).await, C),
        DevicePoll::Unknown
    );
    assert_eq!(
        ok(store.poll_device(device, &client_id(), now).await, C),
        DevicePoll::Pending
    );
    assert_eq!(
        ok(
            store.poll_device(device, &client_id(), now + secs(1)).await,
            C
        ),
        DevicePoll::SlowDown,
        "[{C}] polled 1 s after the last poll"
    );
    let kept = ok(store.device_by_user_code(code, now).await, C);
    assert_eq!(
        kept.map(|r| r.interval),
        Some(10),
        "[{C}] interval grew by 5 s"
    );
    // 10 s after the last poll is on time again.
    assert_eq!(
        ok(
            store
                .poll_device(device, &client_id(), now + secs(11))
                .await,
            C
        ),
        DevicePoll::Pending
    );
    // After expires_at, and again to a later poll within the grace period.
    for at in [600, 700] {
        assert_eq!(
            ok(
                store
                    .poll_device(device, &client_id(), now + secs(at))
                    .await,
                C
            ),
            DevicePoll::Expired,
            "[{C}] {at} s after the request"
        );
    }
    assert_eq!(
        ok(store.device_by_user_code(code, now + secs(600)).await, C),
        None,
        "[{C}] an expired user code is not found"
    );
}

/// A user code names one live request: a second put with it is refused.
pub async fn device_user_codes_are_unique_while_live<S: DeviceStore + ?Sized>(store: Arc<S>) {
    const C: &str = "device_user_codes_are_unique_while_live";
    let now = base_now();
    let code = user_code();
    let first = mint(TokenKind::Device, grant());
    assert!(ok(
        store
            .put_device(first, code, device_record(now, 600), now)
            .await,
        C
    ));
    let second = mint(TokenKind::Device, grant());
    assert!(
        !ok(
            store
                .put_device(second, code, device_record(now, 600), now)
                .await,
            C
        ),
        "[{C}] a live user code is not reused"
    );
    assert_eq!(
        ok(store.poll_device(second, &client_id(), now).await, C),
        DevicePoll::Unknown,
        "[{C}] the refused request was not stored"
    );
}

/// [`RACERS`] pollers of one approved device code: exactly one gets it.
pub async fn race_poll_device<S: DeviceStore + ?Sized + 'static>(store: Arc<S>) {
    const C: &str = "race_poll_device";
    require_multi_thread(C);
    let now = base_now();
    let device = mint(TokenKind::Device, grant());
    let code = user_code();
    ok(
        store
            .put_device(device, code, device_record(now, 600), now)
            .await,
        C,
    );
    let approved = DeviceStatus::Approved {
        subject: Subject::new("alice"),
    };
    assert!(ok(store.decide_device(code, approved, now).await, C));
    let answers = race(RACERS, |_| {
        let store = Arc::clone(&store);
        async move { ok(store.poll_device(device, &client_id(), now).await, C) }
    })
    .await;
    let winners = answers
        .iter()
        .filter(|a| matches!(a, DevicePoll::Approved(_)))
        .count();
    assert_eq!(winners, 1, "[{C}] pollers that got the approval");
}
