//! Unauthenticated requests make the server keep nothing (issue 11; RFC
//! 6819 §4.4.1.11 resource exhaustion): an anonymous authorization request
//! is answered with a login page whose handle carries the sealed request,
//! and nothing is stored until its owner has signed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tessera::storage::{
    CodeRecord, CodeTake, DevicePoll, DeviceRecord, DeviceStatus, DeviceStore, GrantStore,
    NewTokens, PendingAuthorization, PendingStore, RefreshLookup, TokenRecord,
};
use tessera::{
    AuthorizeOutcome, Client, ClientId, ClientRegistry, CodeChallenge, Decision, ErrorCode,
    FixedClock, GrantId, Reason, RedirectUri, Scope, SecretHash, SecretKey, Server, StoreError,
    Subject, TokenHash,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

/// The memory store, counting what is written to it.
#[derive(Debug)]
struct Counting {
    inner: MemoryStore,
    pending_writes: AtomicUsize,
}

#[async_trait]
impl ClientRegistry for Counting {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        self.inner.client(id).await
    }
}

#[async_trait]
impl GrantStore for Counting {
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError> {
        self.inner.put_code(code, record).await
    }
    async fn take_code(
        &self,
        code: SecretKey,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        self.inner.take_code(code, now).await
    }
    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        self.inner.issue(grant, tokens).await
    }
    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.access_token(token, now).await
    }
    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        self.inner.refresh_token(token, now).await
    }
    async fn rotate_refresh(
        &self,
        old: SecretKey,
        tokens: NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.rotate_refresh(old, tokens, now).await
    }
    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        self.inner.revoke_access_token(token).await
    }
    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        self.inner.revoke_grant(grant).await
    }
}

#[async_trait]
impl PendingStore for Counting {
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError> {
        self.pending_writes.fetch_add(1, Ordering::Relaxed);
        self.inner.put_pending(handle, request).await
    }
    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.inner.get_pending(handle, now).await
    }
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.inner.take_pending(handle, now).await
    }
}

struct Fixture {
    server: Server,
    store: Arc<Counting>,
    clock: Arc<FixedClock>,
}

fn fixture() -> Fixture {
    let shop = Client::confidential(ClientId::new("shop").unwrap(), "Shop", SecretHash::of("s"))
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code"])
        .with_scope(Scope::parse("read").unwrap());
    let store = Arc::new(Counting {
        inner: MemoryStore::with_clients([shop]),
        pending_writes: AtomicUsize::new(0),
    });
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let server = Server::builder()
        .issuer("https://as.example")
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    Fixture {
        server,
        store,
        clock,
    }
}

fn query(state: &str) -> String {
    format!(
        "response_type=code&client_id=shop&state={state}&code_challenge={}&code_challenge_method=S256",
        CodeChallenge::s256(&"v".repeat(43))
    )
}

async fn login_handle(f: &Fixture, state: &str) -> String {
    match f.server.authorize(&query(state), None).await {
        AuthorizeOutcome::Login(prompt) => prompt.handle,
        other => panic!("login expected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flood_of_anonymous_requests_stores_nothing() {
    let f = fixture();
    let state = "s".repeat(2048);
    for _ in 0..5_000 {
        login_handle(&f, &state).await;
    }
    assert_eq!(f.store.pending_writes.load(Ordering::Relaxed), 0);
    // A victim's login still works, and only now is a request stored (the
    // consent page's, under a single-use handle).
    let handle = login_handle(&f, "victim").await;
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = f.server.resume(&handle, &alice).await else {
        panic!("consent expected")
    };
    assert_eq!(f.store.pending_writes.load(Ordering::Relaxed), 1);
    assert!(f.server.pending(&prompt.handle).await.unwrap().is_some());
    let AuthorizeOutcome::Redirect(r) = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await
    else {
        panic!("redirect expected")
    };
    assert!(r.location().contains("code=") && r.location().contains("state=victim"));
    // The consent handle is single use.
    let again = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await;
    assert!(
        matches!(again, AuthorizeOutcome::ErrorPage(e) if e.reason() == Reason::PendingRequestExpired)
    );
}

/// A signed-in account cannot store pending requests as fast as it can
/// send them: 60 consent prompts a minute per owner (`Action::ConsentPrompt`),
/// then `temporarily_unavailable` at the redirect URI; other owners are not
/// affected, and the owner may go on after the window.
#[tokio::test]
async fn a_signed_in_flood_of_consent_prompts_is_bounded_per_owner() {
    let f = fixture();
    let mallory = Subject::new("mallory");
    for i in 0..60 {
        let outcome = f.server.authorize(&query("x"), Some(&mallory)).await;
        assert!(matches!(outcome, AuthorizeOutcome::Consent(_)), "{i}");
    }
    let stored = f.store.pending_writes.load(Ordering::Relaxed);
    assert_eq!(stored, 60);
    for _ in 0..1_000 {
        let AuthorizeOutcome::Redirect(r) = f.server.authorize(&query("x"), Some(&mallory)).await
        else {
            panic!("redirect expected")
        };
        assert!(
            r.location()
                .starts_with("https://shop.example/cb?error=temporarily_unavailable"),
            "{}",
            r.location()
        );
        assert!(r.location().contains("&state=x&iss="), "{}", r.location());
    }
    assert_eq!(f.store.pending_writes.load(Ordering::Relaxed), stored);
    // Another owner's consent, and mallory's after the window.
    let alice = Subject::new("alice");
    assert!(matches!(
        f.server.authorize(&query("a"), Some(&alice)).await,
        AuthorizeOutcome::Consent(_)
    ));
    f.clock.advance(Duration::minutes(1));
    assert!(matches!(
        f.server.authorize(&query("x"), Some(&mallory)).await,
        AuthorizeOutcome::Consent(_)
    ));
}

/// Only prompts still waiting count: an owner who decides each prompt
/// (DEMO-CONTRACT: correct credentials lead to a consent page) runs 200
/// flows in one minute, allowing or denying, and is never refused.
#[tokio::test]
async fn decided_consent_prompts_do_not_count_against_their_owner() {
    let f = fixture();
    let alice = Subject::new("alice");
    for i in 0..200 {
        let AuthorizeOutcome::Consent(prompt) = f.server.authorize(&query("a"), Some(&alice)).await
        else {
            panic!("{i}: consent expected")
        };
        let decision = if i % 2 == 0 {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let AuthorizeOutcome::Redirect(r) = f.server.decide(&prompt.handle, &alice, decision).await
        else {
            panic!("{i}: redirect expected")
        };
        assert!(!r.location().contains("temporarily_unavailable"), "{i}");
    }
    // Undecided prompts still count: 60 more, then refused.
    for i in 0..60 {
        let outcome = f.server.authorize(&query("a"), Some(&alice)).await;
        assert!(matches!(outcome, AuthorizeOutcome::Consent(_)), "{i}");
    }
    let AuthorizeOutcome::Redirect(r) = f.server.authorize(&query("a"), Some(&alice)).await else {
        panic!("redirect expected")
    };
    assert!(
        r.location().contains("error=temporarily_unavailable"),
        "{}",
        r.location()
    );
}

/// A request accepted with the largest `state` there is (2 KiB of control
/// characters, each six bytes once escaped in the sealed JSON) makes a login
/// handle the server opens again: its owner can sign in.
#[tokio::test]
async fn the_largest_accepted_request_makes_a_handle_that_opens() {
    let f = fixture();
    let state = "%01".repeat(2048);
    let handle = login_handle(&f, &state).await;
    assert!(handle.len() > 16 * 1024, "{}", handle.len());
    assert!(f.server.pending(&handle).await.unwrap().is_some());
    let alice = Subject::new("alice");
    assert!(matches!(
        f.server.resume(&handle, &alice).await,
        AuthorizeOutcome::Consent(_)
    ));
}

#[tokio::test]
async fn login_handles_cannot_be_altered_and_expire() {
    let f = fixture();
    let handle = login_handle(&f, "xyz").await;
    // The login page can be shown again from the handle alone.
    let prompt = f.server.pending(&handle).await.unwrap().unwrap();
    assert_eq!(prompt.client.id.as_str(), "shop");
    // One character changed: refused as an expired request, never redirected.
    let mut altered = handle.clone().into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let outcome = f.server.resume(&altered, &Subject::new("alice")).await;
    assert!(
        matches!(&outcome, AuthorizeOutcome::ErrorPage(e) if e.code == ErrorCode::InvalidRequest),
        "{outcome:?}"
    );
    assert!(f.server.pending(&altered).await.unwrap().is_none());
    // A handle of another server (another key) is refused as well.
    let other = Server::builder()
        .issuer("https://as.example")
        .store(f.store.clone())
        .build()
        .unwrap();
    assert!(other.pending(&handle).await.unwrap().is_none());
    // Ten minutes on (the pending lifetime), the handle is dead.
    f.clock.advance(Duration::minutes(10));
    let outcome = f.server.resume(&handle, &Subject::new("alice")).await;
    assert!(
        matches!(outcome, AuthorizeOutcome::ErrorPage(e) if e.reason() == Reason::PendingRequestExpired)
    );
}

#[tokio::test]
async fn servers_sharing_a_key_accept_each_others_login_handles() {
    let f = fixture();
    let key = [42; 32];
    let a = Server::builder()
        .issuer("https://as.example")
        .store(f.store.clone())
        .login_handle_key(key)
        .build()
        .unwrap();
    let b = Server::builder()
        .issuer("https://as.example")
        .store(f.store.clone())
        .login_handle_key(key)
        .build()
        .unwrap();
    let AuthorizeOutcome::Login(prompt) = a.authorize(&query("s"), None).await else {
        panic!("login expected")
    };
    assert!(matches!(
        b.resume(&prompt.handle, &Subject::new("alice")).await,
        AuthorizeOutcome::Consent(_)
    ));
}

#[tokio::test]
async fn an_oversized_state_is_refused_at_the_redirect_uri_without_echoing_it() {
    let f = fixture();
    let AuthorizeOutcome::Redirect(r) = f.server.authorize(&query(&"s".repeat(2049)), None).await
    else {
        panic!("redirect expected")
    };
    assert!(
        r.location()
            .starts_with("https://shop.example/cb?error=invalid_request")
    );
    assert!(!r.location().contains("sss"), "{}", r.location());
    // A client_id that is not UTF-8 is never redirected.
    let outcome = f
        .server
        .authorize("response_type=code&client_id=shop%FF", None)
        .await;
    assert!(matches!(outcome, AuthorizeOutcome::ErrorPage(_)));
}

#[test]
fn absurd_lifetimes_are_build_errors_not_panics() {
    for (lifetimes, which) in [
        (
            tessera::Lifetimes::default().with_access_token(Duration::MAX),
            "access_token",
        ),
        (
            tessera::Lifetimes::default().with_code(Duration::ZERO),
            "code",
        ),
        (
            tessera::Lifetimes::default().with_refresh_family(Duration::days(-1)),
            "refresh_family",
        ),
        (
            tessera::Lifetimes::default().with_pending(Duration::days(4000)),
            "pending",
        ),
    ] {
        let built = Server::builder()
            .issuer("https://as.example")
            .store(Arc::new(MemoryStore::new()))
            .lifetimes(lifetimes)
            .build();
        assert!(
            matches!(built, Err(tessera::BuildError::InvalidLifetime { which: w }) if w == which),
            "{which}"
        );
    }
}

/// The realm goes into every `WWW-Authenticate` challenge as a quoted
/// string (RFC 9110 §11.6.1): one that would break it is refused at build.
#[test]
fn a_realm_that_would_break_a_challenge_is_refused() {
    let build = |realm: &str| {
        Server::builder()
            .issuer("https://as.example")
            .store(Arc::new(MemoryStore::new()))
            .realm(realm)
            .build()
    };
    for bad in ["", "a\"b", "a\\b", "caf\u{e9}", "line\nbreak", "tab\t"] {
        assert!(
            matches!(build(bad), Err(tessera::BuildError::InvalidRealm(r)) if r == bad),
            "{bad:?}"
        );
    }
    assert!(build("PhotoBook API, v2").is_ok());
}

#[async_trait]
impl DeviceStore for Counting {
    async fn put_device(
        &self,
        device: SecretKey,
        user_code: TokenHash,
        record: DeviceRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.put_device(device, user_code, record, now).await
    }
    async fn device_by_user_code(
        &self,
        user_code: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.inner.device_by_user_code(user_code, now).await
    }
    async fn decide_device(
        &self,
        user_code: TokenHash,
        decision: DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.decide_device(user_code, decision, now).await
    }
    async fn poll_device(
        &self,
        device: SecretKey,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        self.inner.poll_device(device, client, now).await
    }
}

#[async_trait]
impl tessera::storage::ReplayStore for Counting {
    async fn first_use(
        &self,
        key: tessera::storage::ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        tessera::storage::ReplayStore::first_use(&self.inner, key, expires_at, now).await
    }
}
