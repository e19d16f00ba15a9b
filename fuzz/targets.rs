//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/*.rs`) and by the replay of their corpora in the
//! ordinary test suite (`core/tests/fuzz_corpora.rs`), so the two cannot
//! drift apart.
//!
//! Each target takes arbitrary bytes, drives one parser of untrusted input
//! through the public API of `tessera`, and panics when an invariant fails.
//! Where a target needs two inputs (a header and a body, a registered and a
//! requested URI), the bytes are split at the first `\n`.
//!
//! Everything here is synchronous: the memory store never waits, so the
//! server's futures are polled to completion with a no-op waker.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use base64::Engine;
use tessera::{
    AccessTokenValidator, Action, AuthMethod, AuthorizeOutcome, Client, ClientId, CodeChallenge,
    Endpoint, FixedClock, HttpRequest, Jwks, JwsAlgorithm, Limited, OsRandom, Params, RateLimiter,
    RedirectUri, RegistrationPolicy, RotatingKeys, Scope, ScopeToken, SecretHash, Server,
    SkipForFirstParty, Subject, VerifyingKey,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

/// The longest parameter name or value `Params` may accept (issue 11).
pub const MAX: usize = 2048;
/// The issuer of the fuzzed server.
pub const ISSUER: &str = "https://as.example";
/// The confidential client's secret.
pub const SHOP_SECRET: &str = "shop-secret";
/// The web app's secret (registered for `client_secret_post` only).
pub const APP_SECRET: &str = "app-secret";
/// The device authorization grant's type (RFC 8628 §3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// A PKCE verifier the seeds use.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The names of the targets, which are also the corpus directories.
pub const TARGETS: [&str; 14] = [
    "authorize",
    "token",
    "basic",
    "scope",
    "redirect_uri",
    "params",
    "login_handle",
    "bearer",
    "par",
    "device",
    "registration",
    "jwt",
    "dpop",
    "client_assertion",
];

/// Runs the target called `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "authorize" => authorize(data),
        "token" => token(data),
        "basic" => basic(data),
        "scope" => scope(data),
        "redirect_uri" => redirect_uri(data),
        "params" => params(data),
        "login_handle" => login_handle(data),
        "bearer" => bearer(data),
        "par" => par(data),
        "device" => device(data),
        "registration" => registration(data),
        "jwt" => jwt(data),
        "dpop" => dpop(data),
        "client_assertion" => {
            client_assertion(data);
        }
        other => panic!("no fuzz target {other}"),
    }
}

/// Polls a future that never waits to completion.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0u32;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        polls += 1;
        assert!(polls < 1_000_000, "a core future never completed");
    }
}

/// No rate limit: a fuzzer failing client authentication millions of times
/// must not lock the seeds' clients out (the limiter has tests of its own).
#[derive(Debug)]
struct NoLimit;

impl RateLimiter for NoLimit {
    fn check(&self, _: Action, _: &str, _: OffsetDateTime) -> Result<(), Limited> {
        Ok(())
    }
    fn record(&self, _: Action, _: &str, _: OffsetDateTime) {}
}

/// Handles and tokens the harness itself obtained: the only ones the
/// server may accept from the fuzzer.
#[derive(Debug, Default)]
struct Genuine {
    login_handle: String,
    consent_handle: String,
    access_tokens: Vec<String>,
    /// A pending device code of `cli` (RFC 8628 §3.2) and its user code.
    device_code: String,
    user_code: String,
    /// Every user code issued since the last renewal (the genuine one and
    /// those the `device` target obtained), uppercase without the dash: the
    /// only ones the verification page may find.
    user_codes: HashSet<String>,
}

/// One server, built once per process, with three clients.
#[derive(Debug)]
pub struct Harness {
    server: Server,
    store: Arc<MemoryStore>,
    clock: Arc<FixedClock>,
    /// Each client's registered redirect URIs.
    redirects: Vec<(&'static str, Vec<RedirectUri>)>,
    genuine: Mutex<Genuine>,
    calls: AtomicU64,
}

fn uri(s: &str) -> RedirectUri {
    RedirectUri::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap_or_else(|| panic!("client id {s}"))
}

fn scope_of(s: &str) -> Scope {
    Scope::parse(s).unwrap_or_else(|e| panic!("scope {s}: {e}"))
}

/// The owner the harness signs in as.
pub fn alice() -> Subject {
    Subject::new("alice")
}

/// `Basic` credentials as RFC 6749 §2.3.1 has them.
pub fn basic_header(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// The shared harness.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::new)
}

impl Harness {
    fn new() -> Self {
        let redirects = vec![
            ("shop", vec![uri("https://shop.example/cb")]),
            (
                "cli",
                vec![uri("http://127.0.0.1/callback"), uri("http://[::1]/cb")],
            ),
            ("app", vec![uri("https://app.example/cb?tenant=1")]),
        ];
        let with_uris = |mut client: Client, name: &str| {
            for (n, uris) in &redirects {
                if *n == name {
                    for u in uris {
                        client = client.with_redirect_uri(u.clone());
                    }
                }
            }
            client
        };
        let clients = [
            with_uris(
                Client::confidential(id("shop"), "Print Shop", SecretHash::of(SHOP_SECRET))
                    .with_auth_methods([
                        AuthMethod::ClientSecretBasic,
                        AuthMethod::ClientSecretPost,
                    ])
                    .with_grant_types([
                        "authorization_code",
                        "refresh_token",
                        "client_credentials",
                        DEVICE_GRANT,
                    ])
                    .with_scope(scope_of("photos.read profile")),
                "shop",
            ),
            with_uris(
                Client::public(id("cli"), "CLI")
                    .with_grant_types(["authorization_code", "refresh_token", DEVICE_GRANT])
                    .with_scope(scope_of("photos.read"))
                    .with_first_party(true),
                "cli",
            ),
            with_uris(
                Client::confidential(id("app"), "App", SecretHash::of(APP_SECRET))
                    .with_auth_methods([AuthMethod::ClientSecretPost])
                    .with_grant_types(["authorization_code"])
                    .with_scope(scope_of("photos.read")),
                "app",
            ),
        ];
        let store = Arc::new(MemoryStore::with_clients(clients));
        let clock = Arc::new(FixedClock::new(
            OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        ));
        let token = |s: &str| ScopeToken::new(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let server = Server::builder()
            .issuer(ISSUER)
            .store(store.clone())
            .scope(token("photos.read"), "View your photos")
            .scope(token("profile"), "See your profile")
            .consent(SkipForFirstParty)
            .rate_limiter(NoLimit)
            .enable_device_grant()
            // Open registration (RFC 7591 §3), bounded: unused clients
            // expire before the next sweep (`tick`).
            .enable_dynamic_registration(
                RegistrationPolicy::open()
                    .with_unused_lifetime(Duration::minutes(10))
                    .with_max_clients(8192),
            )
            .clock(clock.clone())
            .build()
            .unwrap_or_else(|e| panic!("build: {e}"));
        let harness = Self {
            server,
            store,
            clock,
            redirects,
            genuine: Mutex::new(Genuine::default()),
            calls: AtomicU64::new(0),
        };
        harness.renew();
        harness
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Obtains fresh genuine handles and an access token, and checks the
    /// server accepts them.
    fn renew(&self) {
        let s = &self.server;
        let query = format!(
            "response_type=code&client_id=shop&state=s&code_challenge={}&code_challenge_method=S256",
            CodeChallenge::s256(VERIFIER)
        );
        let AuthorizeOutcome::Login(login) = block_on(s.authorize(&query, None)) else {
            panic!("a valid anonymous request must ask for a login")
        };
        let AuthorizeOutcome::Consent(consent) = block_on(s.resume(&login.handle, &alice())) else {
            panic!("a genuine login handle must lead to consent")
        };
        assert!(matches!(block_on(s.pending(&login.handle)), Ok(Some(_))));
        assert!(matches!(block_on(s.pending(&consent.handle)), Ok(Some(_))));
        let body = "grant_type=client_credentials&scope=photos.read";
        let auth = basic_header("shop", SHOP_SECRET);
        let tokens = block_on(s.token_response(&HttpRequest::form_post(body, Some(&auth))))
            .unwrap_or_else(|e| panic!("client credentials: {e}"));
        let bearer = format!("Bearer {}", tokens.access_token);
        assert!(block_on(s.verify_bearer(Some(&bearer), None)).is_ok());
        let device = HttpRequest::form_post("client_id=cli&scope=photos.read", None);
        let response = block_on(s.handle(Endpoint::DeviceAuthorization, &device));
        assert_eq!(response.status, 200, "device authorization for cli");
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("device authorization: {e}"));
        let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
        let mut genuine = self.genuine.lock().unwrap_or_else(|e| e.into_inner());
        genuine.login_handle = login.handle;
        genuine.consent_handle = consent.handle;
        // Kept for ever: a token once issued is the harness's, expired or not.
        genuine.access_tokens.push(tokens.access_token);
        genuine.device_code = field("device_code");
        genuine.user_code = field("user_code");
        // The clock has moved past every earlier user code's lifetime.
        genuine.user_codes.clear();
        let user_code = typed_code(&genuine.user_code);
        genuine.user_codes.insert(user_code);
    }

    /// Counts a call; every 4096 calls, moves the clock past every pending
    /// request and code, sweeps the store (so a long run keeps memory
    /// bounded) and renews the genuine handles and token.
    fn tick(&self) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if n & 4095 == 0 {
            self.clock.advance(Duration::minutes(11));
            self.store.sweep(tessera::Clock::now(self.clock.as_ref()));
            self.renew();
        }
    }

    fn genuine<T>(&self, f: impl FnOnce(&Genuine) -> T) -> T {
        f(&self.genuine.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether `location` is one of `client`'s registered redirect URIs
    /// followed by the response's query.
    fn registered_prefix(&self, client: &str, location: &str) -> bool {
        let Some((_, uris)) = self.redirects.iter().find(|(n, _)| *n == client) else {
            return false;
        };
        location
            .char_indices()
            .filter(|&(_, c)| c == '?' || c == '&')
            .any(|(i, _)| uris.iter().any(|u| u.matches(&location[..i])))
    }
}

/// Splits at the first `\n`: (before, after); `None` after if there is none.
fn split(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

/// The decoded pairs of a form, lossily (the reference decoder).
fn pairs(encoded: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(encoded)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Whether the form has a piece whose name or value is not UTF-8 once decoded.
fn has_non_utf8(encoded: &[u8]) -> bool {
    let mut decoded = Vec::new();
    encoded
        .split(|&b| b == b'&')
        .flat_map(|piece| {
            let mut parts = piece.splitn(2, |&b| b == b'=');
            [
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            ]
        })
        .any(|part| {
            // `+` is a space, and never part of an escape: decoding as is
            // gives the same bytes but for `+`, which is ASCII either way.
            decoded.clear();
            percent_decode_into(part, &mut decoded);
            std::str::from_utf8(&decoded).is_err()
        })
}

/// Percent-decoding as the WHATWG URL standard has it (a `%` not followed
/// by two hex digits is kept).
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    percent_decode_into(bytes, &mut out);
    out
}

/// [`percent_decode`] appending to `out`.
fn percent_decode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
}

/// The authorization endpoint: `Server::authorize` anonymous and signed in,
/// then the login handle it returns resumed. Never a redirect to a URI that
/// is not registered for the requested client; never a panic.
pub fn authorize(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let h = harness();
    h.tick();
    let s = &h.server;
    let raw = pairs(query.as_bytes());
    let count = |name: &str| raw.iter().filter(|(k, _)| k == name).count();
    let first = |name: &str| raw.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let check = |outcome: &AuthorizeOutcome, owner: Option<&Subject>| match outcome {
        AuthorizeOutcome::Redirect(r) => {
            let location = r.location();
            assert_eq!(
                count("client_id"),
                1,
                "redirect with client_id not given once"
            );
            assert!(
                count("redirect_uri") <= 1,
                "redirect with a repeated redirect_uri"
            );
            let client = first("client_id").unwrap_or_default();
            assert!(
                h.registered_prefix(client, location),
                "redirect to an unregistered URI: {location:?} for {client:?}"
            );
            if let Some(asked) = first("redirect_uri").filter(|v| !v.is_empty()) {
                assert!(
                    location.starts_with(asked),
                    "redirect elsewhere than the requested redirect_uri: {location:?}"
                );
            }
            let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let answer = pairs(query.as_bytes());
            assert!(
                answer.iter().any(|(k, v)| k == "iss" && v == ISSUER),
                "no iss in {location:?}"
            );
            assert!(
                answer.iter().any(|(k, _)| k == "code" || k == "error"),
                "neither code nor error in {location:?}"
            );
            if answer.iter().any(|(k, _)| k == "code") {
                assert!(owner.is_some(), "a code without a signed-in owner");
            }
        }
        AuthorizeOutcome::Login(p) => {
            assert!(owner.is_none(), "login asked of a signed-in owner");
            assert!(!p.handle.is_empty());
        }
        AuthorizeOutcome::Consent(p) => {
            assert!(owner.is_some(), "consent asked of nobody");
            assert!(!p.handle.is_empty());
        }
        AuthorizeOutcome::ErrorPage(e) => {
            assert!(!e.to_string().is_empty());
        }
        _ => {}
    };
    let anonymous = block_on(s.authorize(query, None));
    check(&anonymous, None);
    if let AuthorizeOutcome::Login(p) = &anonymous {
        assert!(
            matches!(block_on(s.pending(&p.handle)), Ok(Some(_))),
            "a fresh login handle is not pending"
        );
        let resumed = block_on(s.resume(&p.handle, &alice()));
        assert!(
            !matches!(resumed, AuthorizeOutcome::Login(_)),
            "a resumed request asks for a login again"
        );
        check(&resumed, Some(&alice()));
    }
    let signed_in = block_on(s.authorize(query, Some(&alice())));
    check(&signed_in, Some(&alice()));
    // The same request gets the same kind of answer either way.
    assert_eq!(
        matches!(anonymous, AuthorizeOutcome::ErrorPage(_)),
        matches!(signed_in, AuthorizeOutcome::ErrorPage(_)),
        "error page for one owner only"
    );
}

/// The token endpoint through `Server::handle`: the bytes before the first
/// `\n` are the `Authorization` header (absent without a `\n`), the rest the
/// form body (not necessarily UTF-8). The answer is 200/400/401/413/503
/// with a JSON body, never 500.
pub fn token(data: &[u8]) {
    let (head, body) = split(data);
    let (authorization, body) = match body {
        Some(body) => (std::str::from_utf8(head).ok(), body),
        None => (None, head),
    };
    let h = harness();
    h.tick();
    let request = HttpRequest::new("POST")
        .with_content_type(Some("application/x-www-form-urlencoded"))
        .with_authorization(authorization)
        .with_body(body);
    let response = block_on(h.server.handle(Endpoint::Token, &request));
    assert!(
        matches!(response.status, 200 | 400 | 401 | 413 | 503),
        "token endpoint answered {}",
        response.status
    );
    let json: serde_json::Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("token endpoint body is not JSON: {e}"));
    if response.status == 200 {
        assert!(json["access_token"].is_string(), "200 without access_token");
        assert_eq!(response.header("cache-control"), Some("no-store"));
    } else {
        assert!(json["error"].is_string(), "error without an error code");
    }
    if response.status == 401 {
        assert!(
            response.header("www-authenticate").is_some(),
            "401 without a challenge"
        );
    }
}

/// Form-decodes one part of Basic credentials (RFC 6749 §2.3.1).
fn form_decode(s: &str) -> Option<String> {
    let plus: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8(percent_decode(&plus)).ok()
}

/// Whether `header` is Basic credentials of exactly `id` and `secret`.
fn basic_is(header: &str, id: &str, secret: &str) -> bool {
    let Some((scheme, payload)) = header.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(payload.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((i, s)) = decoded.split_once(':') else {
        return false;
    };
    form_decode(i).as_deref() == Some(id) && form_decode(s).as_deref() == Some(secret)
}

/// Client authentication alone (`Server::authenticate_client`): the bytes
/// before the first `\n` are the `Authorization` header, the rest the form.
/// A client is authenticated only with its own secret, or, public, with its
/// id alone.
pub fn basic(data: &[u8]) {
    let (head, rest) = split(data);
    let Ok(header) = std::str::from_utf8(head) else {
        return;
    };
    let form = rest.and_then(|r| std::str::from_utf8(r).ok()).unwrap_or("");
    let Ok(params) = Params::parse(form) else {
        return;
    };
    let h = harness();
    h.tick();
    let header = (!header.is_empty()).then_some(header);
    let Ok(client) = block_on(h.server.authenticate_client(header, &params)) else {
        return;
    };
    assert_authenticated(client.id.as_str(), header, &params);
}

/// Panics unless `client` may be authenticated by this `Authorization`
/// header and form: a confidential client only with its own secret by a
/// method registered for it (checked with an independent RFC 6749 §2.3.1
/// decoder), the public client only by its `client_id` alone.
fn assert_authenticated(client: &str, header: Option<&str>, params: &Params) {
    let header = header.unwrap_or_default();
    let basic = header
        .split_once(' ')
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    match client {
        "shop" => assert!(
            basic_is(header, "shop", SHOP_SECRET)
                || (!basic
                    && params.get("client_id") == Some("shop")
                    && params.get("client_secret") == Some(SHOP_SECRET)),
            "shop authenticated without its secret"
        ),
        "app" => assert!(
            !basic
                && params.get("client_id") == Some("app")
                && params.get("client_secret") == Some(APP_SECRET),
            "app authenticated without its secret in the form"
        ),
        "cli" => assert!(
            !basic && params.get("client_id") == Some("cli") && !params.contains("client_secret"),
            "public client authenticated otherwise than by its id"
        ),
        other => panic!("unknown client {other} authenticated"),
    }
}

/// Whether `t` is a scope token (RFC 6749 §3.3).
fn is_scope_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// `Scope::parse`: accepts exactly the space-separated lists of valid
/// tokens; the result is sorted, distinct, exactly the given tokens, and
/// parses back to itself.
///
/// Linear in the input: the set of given tokens is compared once, sorted,
/// with the scope's (which proves sorted, distinct, none lost, none
/// invented together); `contains` and `is_subset`, linear scans each, are
/// checked on a sample of eight tokens rather than on every one.
pub fn scope(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut given: Vec<&str> = s.split(' ').collect();
    let valid = given.iter().all(|t| is_scope_token(t));
    for t in &given {
        assert_eq!(
            ScopeToken::new(*t).is_ok(),
            is_scope_token(t),
            "token {t:?}"
        );
    }
    match Scope::parse(s) {
        Ok(scope) => {
            assert!(valid, "accepted an invalid scope {s:?}");
            let again = Scope::parse(scope.as_str())
                .unwrap_or_else(|e| panic!("{scope:?} does not parse back: {e}"));
            assert_eq!(again, scope);
            assert_eq!(scope.as_str(), scope.to_string());
            let tokens: Vec<&str> = scope.iter().collect();
            given.sort_unstable();
            given.dedup();
            assert_eq!(
                tokens, given,
                "not the given tokens, sorted, each once: {s:?}"
            );
            assert!(!scope.is_empty());
            // A sample: the first and last two tokens and four between.
            let step = (tokens.len() / 4).max(1);
            let sample: Vec<&str> = tokens
                .iter()
                .take(2)
                .chain(tokens.iter().rev().take(2))
                .chain(tokens.iter().step_by(step).take(4))
                .copied()
                .collect();
            for t in &sample {
                assert!(scope.contains(t), "{t:?} lost");
            }
            assert!(!scope.contains(""), "the empty token is in {s:?}");
            let part = Scope::from_tokens(sample.iter().filter_map(|t| ScopeToken::new(*t).ok()));
            assert!(part.is_subset(&scope), "a part is not a subset");
            assert_eq!(
                scope.is_subset(&part),
                part == scope,
                "a scope is a subset of its part"
            );
            if tokens.len() <= 64 {
                assert!(scope.is_subset(&scope));
            }
        }
        Err(e) => {
            assert!(!valid, "refused a valid scope {s:?}: {e}");
            assert_eq!(e.code.as_str(), "invalid_scope");
        }
    }
}

const LOOPBACKS: [&str; 3] = ["http://127.0.0.1", "http://[::1]", "http://localhost"];

/// `RedirectUri::new` and `matches`: the bytes before the first `\n` are
/// registered, the rest requested. What is accepted is absolute, without
/// fragment or dangerous scheme, `https` or loopback `http`; a URI matches
/// itself, and another string only if it is the same loopback URI with a port.
pub fn redirect_uri(data: &[u8]) {
    let (head, rest) = split(data);
    let Ok(registered) = std::str::from_utf8(head) else {
        return;
    };
    let requested = rest.and_then(|r| std::str::from_utf8(r).ok());
    let strict = RedirectUri::new(registered);
    let lax = RedirectUri::dangerous_allow_plain_http(registered);
    if strict.is_ok() {
        assert!(
            lax.is_ok(),
            "strict accepts what lax refuses: {registered:?}"
        );
    }
    let Ok(r) = lax else {
        return;
    };
    assert_eq!(r.as_str(), registered);
    assert!(
        !registered.contains('#'),
        "fragment accepted: {registered:?}"
    );
    let parsed = url::Url::parse(registered)
        .unwrap_or_else(|e| panic!("accepted a non-URI {registered:?}: {e}"));
    assert!(
        !["javascript", "data", "vbscript", "file", "blob", "about"].contains(&parsed.scheme()),
        "dangerous scheme accepted: {registered:?}"
    );
    if strict.is_ok() && parsed.scheme() == "http" {
        assert!(
            matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")),
            "plain http to {registered:?}"
        );
    }
    assert!(
        r.matches(registered),
        "does not match itself: {registered:?}"
    );
    assert_eq!(
        RedirectUri::dangerous_allow_plain_http(r.as_str().to_owned()),
        Ok(r.clone())
    );
    let Some(requested) = requested else {
        return;
    };
    if r.matches(requested) && requested != registered {
        // Only an http loopback (IP literal or `localhost`) registered
        // without a port matches another string: the same one with a port
        // (RFC 8252 §7.3, §8.3).
        let host = LOOPBACKS
            .iter()
            .find(|p| registered.starts_with(**p) && requested.starts_with(**p))
            .unwrap_or_else(|| panic!("{requested:?} matches {registered:?}"));
        let reg_rest = &registered[host.len()..];
        let req_rest = &requested[host.len()..];
        assert!(
            reg_rest.is_empty() || reg_rest.starts_with('/') || reg_rest.starts_with('?'),
            "{registered:?} has a port or a longer host"
        );
        let port = req_rest
            .strip_prefix(':')
            .unwrap_or_else(|| panic!("{requested:?} matches {registered:?} without a port"));
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        assert!((1..=5).contains(&digits), "port of {requested:?}");
        assert!(
            port[..digits]
                .parse::<u32>()
                .is_ok_and(|p| (1..=65535).contains(&p)),
            "{requested:?} matches with no port (1..=65535)"
        );
        assert_eq!(
            &port[digits..],
            reg_rest,
            "{requested:?} matches {registered:?}"
        );
    }
}

/// Whether this core lets `resource` repeat (RFC 8707 §2, with resource
/// indicators): every other name sent twice is `invalid_request` (RFC 6749
/// §3.1, §3.2).
fn resource_repeats() -> bool {
    static REPEATS: OnceLock<bool> = OnceLock::new();
    *REPEATS.get_or_init(|| Params::parse("resource=a&resource=b").is_ok())
}

/// `Params::parse` against the reference decoder: accepted forms have no
/// repeated name, nothing over `MAX` bytes, nothing that is not UTF-8, and
/// decode to the reference's pairs without the empty values.
pub fn params(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let reference = pairs(s.as_bytes());
    let mut names: Vec<&str> = reference.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    let repeated = names
        .windows(2)
        .any(|w| w[0] == w[1] && !(w[0] == "resource" && resource_repeats()));
    let too_long = reference
        .iter()
        .any(|(k, v)| k.len() > MAX || v.len() > MAX);
    let non_utf8 = has_non_utf8(s.as_bytes());
    match Params::parse(s) {
        Ok(p) => {
            assert!(!repeated, "repeated name accepted in {s:?}");
            assert!(!too_long, "over-long parameter accepted");
            assert!(!non_utf8, "non-UTF-8 parameter accepted in {s:?}");
            let got: Vec<(&str, &str)> = p.iter().collect();
            let want: Vec<(&str, &str)> = reference
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, want, "decoded differently from {s:?}");
            for (k, v) in &got {
                assert!(k.len() <= MAX && v.len() <= MAX);
                assert!(!v.is_empty());
            }
            // `get` is a linear scan: looked up for a sample of eight names
            // (the first and last two, four between), so that a form of a
            // thousand pairs costs no million comparisons.
            let step = (got.len() / 4).max(1);
            for (k, v) in got
                .iter()
                .take(2)
                .chain(got.iter().rev().take(2))
                .chain(got.iter().step_by(step).take(4))
            {
                // The first value of the name (`resource` may repeat).
                let first = got.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
                assert_eq!(p.get(k), first);
                assert!(first == Some(*v) || *k == "resource");
                assert!(p.contains(k));
            }
            // A name sent without a value is treated as omitted (RFC 6749 §3.1).
            if let Some((k, _)) = reference.iter().find(|(_, v)| v.is_empty()) {
                assert_eq!(p.get(k), None, "empty value of {k:?} kept");
            }
            // The same pairs again compare equal (`PartialEq` compares the
            // kept pairs, not the buffer with dropped empty values' text).
            let again = Params::from_pairs(got.iter().copied())
                .unwrap_or_else(|e| panic!("its own pairs refused: {e}"));
            assert!(again.iter().eq(got.iter().copied()));
            assert_eq!(again, p);
        }
        Err(e) => {
            assert!(
                repeated || too_long || non_utf8,
                "refused a well-formed form {s:?}: {e}"
            );
            assert_eq!(e.code.as_str(), "invalid_request");
        }
    }
}

/// Applies the fuzzer's edits to a genuine handle or token: pairs of
/// (position, byte) replace characters, then a tail byte may truncate
/// or extend it.
fn mutate(genuine: &str, edits: &[u8]) -> String {
    let mut bytes = genuine.as_bytes().to_vec();
    let mut chunks = edits.chunks_exact(2);
    for pair in &mut chunks {
        if bytes.is_empty() {
            break;
        }
        let at = pair[0] as usize % bytes.len();
        bytes[at] = pair[1];
    }
    match chunks.remainder() {
        [n] if n % 2 == 0 => bytes.truncate(*n as usize % (bytes.len() + 1)),
        [n] => bytes.push(*n),
        _ => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Login and consent handles (`Server::pending`, `Server::resume`): the
/// first byte picks raw text (0), an altered login handle (1) or an altered
/// consent handle (2); the server accepts no handle it did not make.
pub fn login_handle(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    h.tick();
    let (login, consent) = h.genuine(|g| (g.login_handle.clone(), g.consent_handle.clone()));
    let handle = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => mutate(&login, rest),
        _ => mutate(&consent, rest),
    };
    if handle == login || handle == consent {
        return;
    }
    let s = &h.server;
    assert!(
        matches!(block_on(s.pending(&handle)), Ok(None)),
        "pending accepted a forged handle {handle:?}"
    );
    let outcome = block_on(s.resume(&handle, &alice()));
    assert!(
        matches!(outcome, AuthorizeOutcome::ErrorPage(_)),
        "resume accepted a forged handle {handle:?}: {outcome:?}"
    );
    let decided = block_on(s.decide(&handle, &alice(), tessera::Decision::Allow));
    assert!(
        matches!(decided, AuthorizeOutcome::ErrorPage(_)),
        "decide accepted a forged handle {handle:?}: {decided:?}"
    );
}

/// `Server::verify_bearer`: the first byte picks raw text (even) or an
/// altered genuine token (odd) in a `Bearer` header; after the first `\n`
/// comes the query string. Only a genuine token, in the header, is accepted.
pub fn bearer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (head, query) = split(rest);
    let query = query.and_then(|q| std::str::from_utf8(q).ok());
    let h = harness();
    h.tick();
    let tokens = h.genuine(|g| g.access_tokens.clone());
    let header = if mode % 2 == 0 {
        String::from_utf8_lossy(head).into_owned()
    } else {
        let latest = tokens.last().map(String::as_str).unwrap_or_default();
        format!("Bearer {}", mutate(latest, head))
    };
    match block_on(h.server.verify_bearer(Some(&header), query)) {
        Ok(token) => {
            let presented = header
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim_start_matches(' '))
                .unwrap_or_else(|| panic!("accepted without a Bearer scheme: {header:?}"));
            assert!(
                tokens.iter().any(|t| t == presented),
                "accepted a token the server did not issue: {header:?}"
            );
            assert_eq!(token.principal(), "shop");
            assert!(
                !pairs(query.unwrap_or_default().as_bytes())
                    .iter()
                    .any(|(k, _)| k == "access_token"),
                "accepted a token beside one in the query"
            );
        }
        Err(e) => {
            assert!(
                matches!(e.status(), 400 | 401),
                "bearer error status {}",
                e.status()
            );
            let challenge = e.challenge("r");
            assert!(challenge.starts_with("Bearer realm=\"r\""), "{challenge}");
        }
    }
}

/// Splits `header\nbody` as the endpoint targets take it: without a `\n`
/// there is no `Authorization` header and everything is the body.
fn header_and_body(data: &[u8]) -> (Option<&str>, &[u8]) {
    match split(data) {
        (head, Some(body)) => (std::str::from_utf8(head).ok(), body),
        (body, None) => (None, body),
    }
}

/// A form POST with an `Authorization` header, as an adapter passes it.
fn form_request<'a>(authorization: Option<&'a str>, body: &'a [u8]) -> HttpRequest<'a> {
    HttpRequest::new("POST")
        .with_content_type(Some("application/x-www-form-urlencoded"))
        .with_authorization(authorization)
        .with_body(body)
}

/// Checks what every JSON endpoint owes an answer: a status among
/// `allowed`, never a 5xx but 503; a JSON object body, `no-store` (RFC 6749
/// §5.1), an `error` code on an error and a challenge on 401 (§5.2).
fn check_json_answer(response: &tessera::HttpResponse, ok: u16) -> serde_json::Value {
    assert!(
        response.status == ok || matches!(response.status, 400 | 401 | 413 | 503),
        "answered {}",
        response.status
    );
    let json: serde_json::Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("the body is not JSON: {e}"));
    assert!(json.is_object(), "the body is not a JSON object");
    if response.status == 413 {
        return json;
    }
    assert_eq!(response.header("cache-control"), Some("no-store"));
    if response.status != ok {
        assert!(json["error"].is_string(), "error without an error code");
    }
    if response.status == 401 {
        assert!(
            response.header("www-authenticate").is_some(),
            "401 without a challenge"
        );
    }
    json
}

/// The form of a request the server accepted, which must parse (the
/// server parsed it).
fn accepted_form(body: &[u8]) -> Params {
    let form =
        std::str::from_utf8(body).unwrap_or_else(|_| panic!("a body that is not UTF-8 accepted"));
    Params::parse(form).unwrap_or_else(|e| panic!("a malformed form accepted: {e}"))
}

/// The client a request authenticated as, by the independent reference:
/// the form's `client_id`, or the Basic credentials' id.
fn claimed_client(authorization: Option<&str>, params: &Params) -> String {
    if let Some(id) = params.get("client_id") {
        return id.to_owned();
    }
    let payload = authorization
        .and_then(|h| h.split_once(' '))
        .map(|(_, p)| p.trim())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| d.split_once(':').and_then(|(i, _)| form_decode(i)))
        .unwrap_or_default()
}

/// Form-encodes a value (`application/x-www-form-urlencoded`).
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Whether `location` is a redirect a signed-in `owner`'s request of
/// `client` may get: to a registered URI (the requested one if any),
/// carrying `iss` and a `code` or an `error` (RFC 9207, RFC 6749 §4.1.2).
fn check_redirect(h: &Harness, client: &str, asked: Option<&str>, location: &str) {
    assert!(
        h.registered_prefix(client, location),
        "redirect to an unregistered URI: {location:?} for {client:?}"
    );
    if let Some(asked) = asked {
        assert!(
            location.starts_with(asked),
            "redirect elsewhere than the requested redirect_uri: {location:?}"
        );
    }
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let answer = pairs(query.as_bytes());
    assert!(
        answer.iter().any(|(k, v)| k == "iss" && v == ISSUER),
        "no iss in {location:?}"
    );
    assert!(
        answer.iter().any(|(k, _)| k == "code" || k == "error"),
        "neither code nor error in {location:?}"
    );
}

/// The pushed authorization request endpoint (RFC 9126) through
/// `Server::handle(Endpoint::PushedAuthorization, ..)`: the bytes before
/// the first `\n` are the `Authorization` header (absent without a `\n`),
/// the rest the form body. Answers are 201/400/401/413/503 with a JSON body
/// and `no-store`, never 500 (§2.2, §2.3). A 201 only for an authenticated
/// client naming itself, without a `request_uri`; its `request_uri` then
/// works at the authorization endpoint once, for that client only, and
/// leads to login, consent or a registered redirect URI.
pub fn par(data: &[u8]) {
    let (authorization, body) = header_and_body(data);
    let h = harness();
    h.tick();
    let s = &h.server;
    let response = block_on(s.handle(
        Endpoint::PushedAuthorization,
        &form_request(authorization, body),
    ));
    let json = check_json_answer(&response, 201);
    if response.status != 201 {
        return;
    }
    let params = accepted_form(body);
    let client = claimed_client(authorization, &params);
    assert_authenticated(&client, authorization, &params);
    assert_eq!(
        params.get("client_id"),
        Some(client.as_str()),
        "pushed without its client_id"
    );
    assert!(
        !params.contains("request_uri"),
        "a pushed request_uri accepted"
    );
    let request_uri = json["request_uri"].as_str().unwrap_or_default();
    assert!(
        request_uri.starts_with(tessera::REQUEST_URI_PREFIX),
        "request_uri {request_uri:?}"
    );
    assert!(
        json["expires_in"].as_i64().is_some_and(|n| n > 0),
        "expires_in"
    );
    let query = |id: &str| {
        format!(
            "client_id={}&request_uri={}",
            encode(id),
            encode(request_uri)
        )
    };
    // Another client's id neither uses it nor burns it (RFC 9126 §4).
    let other = if client == "cli" { "shop" } else { "cli" };
    let outcome = block_on(s.authorize(&query(other), Some(&alice())));
    assert!(
        matches!(outcome, AuthorizeOutcome::ErrorPage(_)),
        "another client used a pushed request: {outcome:?}"
    );
    let asked = params.get("redirect_uri");
    match block_on(s.authorize(&query(&client), Some(&alice()))) {
        AuthorizeOutcome::Redirect(r) => check_redirect(h, &client, asked, r.location()),
        AuthorizeOutcome::Consent(p) => assert!(!p.handle.is_empty()),
        other => panic!("a pushed request of {client} did not work: {other:?}"),
    }
    // Single use.
    let again = block_on(s.authorize(&query(&client), Some(&alice())));
    assert!(
        matches!(again, AuthorizeOutcome::ErrorPage(_)),
        "a request_uri used twice: {again:?}"
    );
}

/// What a person typed as a user code, read as RFC 8628 §6.1 suggests:
/// case and dashes and spaces ignored (the reference for `UserCode::parse`).
fn typed_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The device authorization grant (RFC 8628). The first byte picks:
///
/// - 0: the device authorization endpoint through `Server::handle`, the
///   rest split like `par`'s. Answers are 200/400/401/413/503 with a JSON
///   body and `no-store`, never 500 (§3.2); a 200 only for an
///   authenticated client allowed the grant, with a user code of eight
///   letters shown `XXXX-XXXX` that the verification page finds (in any
///   case), and a device code that polls as `authorization_pending` (§3.5).
/// - 1: a `device_code` token request with the genuine pending device code
///   altered by the fuzzer's edits: anything but the genuine code is
///   `invalid_grant` (`invalid_request` if cut to nothing), the genuine one
///   `authorization_pending` or `slow_down`; never tokens.
/// - 2: the verification page with raw typed text (`Server::device_prompt`,
///   `Server::device_decide`): only a user code the server issued is found;
///   deciding on anything else changes nothing.
pub fn device(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    h.tick();
    let s = &h.server;
    match mode % 3 {
        0 => {
            let (authorization, body) = header_and_body(rest);
            let request = form_request(authorization, body);
            let response = block_on(s.handle(Endpoint::DeviceAuthorization, &request));
            let json = check_json_answer(&response, 200);
            if response.status != 200 {
                return;
            }
            let params = accepted_form(body);
            let client = claimed_client(authorization, &params);
            assert_authenticated(&client, authorization, &params);
            assert!(
                client == "cli" || client == "shop",
                "{client} may not use the device grant"
            );
            let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
            let user_code = field("user_code");
            let b = user_code.as_bytes();
            assert!(
                b.len() == 9
                    && b[4] == b'-'
                    && b.iter()
                        .enumerate()
                        .all(|(i, c)| i == 4 || c.is_ascii_uppercase()),
                "user code {user_code:?}"
            );
            let verification = field("verification_uri");
            assert_eq!(verification, s.device_verification_uri());
            assert_eq!(
                field("verification_uri_complete"),
                format!("{verification}?user_code={}", encode(&user_code))
            );
            assert!(
                json["expires_in"].as_i64().is_some_and(|n| n > 0),
                "expires_in"
            );
            assert!(
                json["interval"].as_u64().is_some_and(|n| n >= 5),
                "interval"
            );
            h.genuine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .user_codes
                .insert(typed_code(&user_code));
            let prompt = block_on(s.device_prompt(&user_code.to_lowercase(), "fuzz"))
                .unwrap_or_else(|e| panic!("its own user code not found: {e}"));
            assert_eq!(prompt.client.id.as_str(), client);
            let device_code = field("device_code");
            let poll = format!(
                "grant_type={}&device_code={}",
                encode(DEVICE_GRANT),
                encode(&device_code)
            );
            let (auth, poll) = if client == "shop" {
                (Some(basic_header("shop", SHOP_SECRET)), poll)
            } else {
                (None, format!("{poll}&client_id=cli"))
            };
            let answer = block_on(s.handle(
                Endpoint::Token,
                &form_request(auth.as_deref(), poll.as_bytes()),
            ));
            let json = check_json_answer(&answer, 200);
            assert_eq!(answer.status, 400, "a fresh device code polled {json}");
            assert_eq!(json["error"], "authorization_pending");
        }
        1 => {
            let genuine = h.genuine(|g| g.device_code.clone());
            let presented = mutate(&genuine, rest);
            let body = format!(
                "grant_type={}&client_id=cli&device_code={}",
                encode(DEVICE_GRANT),
                encode(&presented)
            );
            let answer = block_on(s.handle(Endpoint::Token, &form_request(None, body.as_bytes())));
            let json = check_json_answer(&answer, 200);
            assert_eq!(
                answer.status, 400,
                "device code {presented:?} polled {json}"
            );
            let error = json["error"].as_str().unwrap_or_default();
            if presented == genuine {
                assert!(
                    matches!(error, "authorization_pending" | "slow_down"),
                    "the genuine device code polled {error}"
                );
            } else if presented.is_empty() {
                // Sent without a value: omitted (RFC 6749 §3.2), so missing.
                assert_eq!(error, "invalid_request", "an empty device code");
            } else {
                assert_eq!(error, "invalid_grant", "device code {presented:?}");
            }
        }
        _ => {
            let typed = String::from_utf8_lossy(rest);
            let issued = h.genuine(|g| g.user_codes.contains(&typed_code(&typed)));
            if let Ok(prompt) = block_on(s.device_prompt(&typed, "fuzz")) {
                assert!(
                    issued,
                    "a user code the server did not issue found: {typed:?}"
                );
                assert_eq!(typed_code(&prompt.user_code), typed_code(&typed));
            }
            if !issued {
                let decided = block_on(s.device_decide(&typed, &alice(), tessera::Decision::Allow));
                assert!(
                    matches!(decided, Ok(false)),
                    "a user code the server did not issue decided: {typed:?}"
                );
            }
        }
    }
}

/// Dynamic client registration (RFC 7591) through
/// `Server::handle(Endpoint::Registration, ..)`, open to anyone: the bytes
/// are the JSON body. Answers are 201/400/503 with a JSON body and
/// `no-store`, never 500 (§3.2). A 201 only for a JSON object, and what it
/// registers is safe: redirect URIs that `RedirectUri::new` accepts (https
/// or loopback http, no fragment; the ones sent, when sent), at least one
/// for the code grant, grant types the policy allows, known scopes only, a
/// secret exactly when the method is not `none`; the client is stored, and
/// can start an authorization request at its first redirect URI.
pub fn registration(data: &[u8]) {
    let h = harness();
    h.tick();
    let s = &h.server;
    let request = HttpRequest::new("POST")
        .with_content_type(Some("application/json"))
        .with_body(data);
    let response = block_on(s.handle(Endpoint::Registration, &request));
    let json = check_json_answer(&response, 201);
    assert_ne!(response.status, 401, "open registration answered 401");
    if response.status != 201 {
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            matches!(
                error,
                "invalid_client_metadata"
                    | "invalid_redirect_uri"
                    | "invalid_request"
                    | "temporarily_unavailable"
            ),
            "registration error {error}"
        );
        return;
    }
    let sent: serde_json::Value = serde_json::from_slice(data)
        .unwrap_or_else(|e| panic!("registered from a body that is not JSON: {e}"));
    assert!(sent.is_object(), "registered from JSON that is no object");
    let texts = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = json["client_id"].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "no client_id");
    let redirects = texts(&json["redirect_uris"]);
    for uri in &redirects {
        assert!(
            RedirectUri::new(uri.as_str()).is_ok(),
            "registered an unsafe redirect URI {uri:?}"
        );
    }
    if sent.get("redirect_uris").is_some() {
        // The ones sent, each once (a repeat may be dropped: RFC 7591 §3.2.1
        // lets the server replace what it registers, and the response says
        // what it did).
        let once = |uris: Vec<String>| {
            let mut kept: Vec<String> = Vec::new();
            for uri in uris {
                if !kept.contains(&uri) {
                    kept.push(uri);
                }
            }
            kept
        };
        assert_eq!(
            once(redirects.clone()),
            once(texts(&sent["redirect_uris"])),
            "redirect URIs not as sent"
        );
    }
    let grants = texts(&json["grant_types"]);
    for grant in &grants {
        assert!(
            matches!(grant.as_str(), "authorization_code" | "refresh_token"),
            "registered grant {grant:?}"
        );
    }
    let code = grants.iter().any(|g| g == "authorization_code");
    assert!(
        !code || !redirects.is_empty(),
        "a code client without redirect URIs"
    );
    let method = json["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or_default();
    assert!(
        matches!(
            method,
            "none" | "client_secret_basic" | "client_secret_post"
        ),
        "registered method {method:?}"
    );
    assert_eq!(
        json["client_secret"].is_string(),
        method != "none",
        "a secret for method {method}"
    );
    let scope = json["scope"].as_str().unwrap_or_default();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        assert!(
            matches!(token, "photos.read" | "profile"),
            "registered unknown scope {token:?}"
        );
    }
    let client_id = ClientId::new(id.as_str()).unwrap_or_else(|| panic!("client id {id:?}"));
    let stored = block_on(s.store().client(&client_id))
        .unwrap_or_else(|e| panic!("store: {e}"))
        .unwrap_or_else(|| panic!("registered client {id} not stored"));
    assert_eq!(stored.id.as_str(), id);
    if let (true, Some(first)) = (code, redirects.first()) {
        let query = format!(
            "response_type=code&client_id={}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
            encode(&id),
            encode(first),
            CodeChallenge::s256(VERIFIER)
        );
        let outcome = block_on(s.authorize(&query, None));
        assert!(
            matches!(outcome, AuthorizeOutcome::Login(_)),
            "a registered client cannot start a code flow: {outcome:?}"
        );
    }
}

/// The JWT validator of resource servers (RFC 9068 §4) and the JWK Set
/// parser: the first byte picks a JWT (even: `AccessTokenValidator::validate`
/// with the rest as text) or a JWK Set document (odd:
/// `Jwks::parse_verifying_keys`). No JWT the fuzzer makes is valid (it
/// cannot sign with the harness's keys); a JWK Set gives at most
/// `MAX_JWKS_KEYS` keys with distinct `kid`s, each of which round-trips
/// through its JWK with the same thumbprint.
pub fn jwt(data: &[u8]) {
    static VALIDATOR: OnceLock<AccessTokenValidator<Arc<RotatingKeys>>> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let validator = VALIDATOR.get_or_init(|| {
            let keys = Arc::new(RotatingKeys::generate(JwsAlgorithm::Es256, &OsRandom));
            AccessTokenValidator::new(ISSUER, format!("{ISSUER}/api"), keys)
        });
        let token = String::from_utf8_lossy(rest);
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        if let Ok(claims) = validator.validate(&token, now) {
            panic!("a token the fuzzer made validated: {claims:?}");
        }
    } else if let Some(keys) = Jwks::parse_verifying_keys(rest) {
        assert!(
            keys.len() <= tessera::MAX_JWKS_KEYS,
            "{} keys kept",
            keys.len()
        );
        let mut kids: Vec<&str> = keys.iter().map(VerifyingKey::kid).collect();
        kids.sort_unstable();
        assert!(kids.windows(2).all(|w| w[0] != w[1]), "a kid kept twice");
        for key in &keys {
            let again = VerifyingKey::from_jwk(&key.to_jwk())
                .unwrap_or_else(|e| panic!("a parsed key does not round-trip: {e}"));
            assert_eq!(again.kid(), key.kid());
            assert_eq!(again.algorithm(), key.algorithm());
            assert_eq!(again.thumbprint(), key.thumbprint());
        }
    }
}

/// `dpop`: the DPoP proof parser and checks (RFC 9449 §4.3) on any bytes.
/// The first byte picks the mode: even, a proof at the token endpoint
/// (`POST https://as.example/token`); odd but not 3 mod 4, a proof at a
/// resource (`GET .../api/photos` with `ath` of a fixed token); 3 mod 4, an
/// `htu` comparison of two URIs split at a NUL byte. Never a panic; an
/// accepted proof names the request it was checked against, has a 43-
/// character thumbprint and a `jti` within bounds; `htu` comparison is
/// symmetric, and a URI that compares at all compares equal to itself.
pub fn dpop(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if mode % 4 == 3 {
        let (a, b) = text.split_once('\0').unwrap_or((&text, ""));
        assert_eq!(
            tessera::same_htu(a, b),
            tessera::same_htu(b, a),
            "htu comparison is symmetric"
        );
        if tessera::same_htu(a, b) {
            assert!(tessera::same_htu(a, a) && tessera::same_htu(b, b));
        }
        return;
    }
    // The seeds' fixed time: UNIX_EPOCH + 20,000 days.
    let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let token = "tsa_fuzz-access-token";
    let (method, uri) = if mode % 2 == 0 {
        ("POST", "https://as.example/token")
    } else {
        ("GET", "https://as.example/api/photos")
    };
    let mut context = tessera::ProofContext::new(method, uri, now);
    if mode % 2 == 1 {
        context = context.with_access_token(token);
    }
    let policy = tessera::DpopPolicy::new();
    match tessera::verify_dpop_proof(Some(&text), &context, &policy) {
        Ok(proof) => {
            assert_eq!(proof.jkt.len(), 43, "a SHA-256 thumbprint, base64url");
            assert!(!proof.jti.is_empty() && proof.jti.len() <= tessera::MAX_DPOP_JTI_BYTES);
            assert!(proof.iat <= now + policy.max_skew && proof.iat >= now - policy.max_age);
            assert!(text.len() <= tessera::MAX_DPOP_PROOF_BYTES);
        }
        Err(e) => {
            // Every refusal is an RFC 9449 error code, never a server error.
            let code = e.to_oauth_error().code;
            assert!(
                matches!(
                    code,
                    tessera::ErrorCode::InvalidDpopProof | tessera::ErrorCode::UseDpopNonce
                ),
                "{code:?}"
            );
        }
    }
}

/// The `client_assertion` target's server: one client authenticating with
/// `private_key_jwt` (RFC 7523 §2.2) and the key it signs with.
struct AssertionHarness {
    server: Server,
    key: tessera::SigningKey,
    /// Every `jti` an accepted assertion carried: none may be accepted twice.
    accepted: Mutex<HashSet<String>>,
}

fn assertion_harness() -> &'static AssertionHarness {
    static H: OnceLock<AssertionHarness> = OnceLock::new();
    H.get_or_init(|| {
        let key = tessera::SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
        let jwks = Jwks::new([key.verifying_key().to_jwk()]);
        let client =
            Client::with_private_key_jwt(ClientId::new("signer").expect("id"), "Signer", jwks)
                .with_grant_types(["client_credentials"])
                .with_scope(scope_of("photos.read"));
        let clock = Arc::new(FixedClock::new(
            OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
        ));
        let server = Server::builder()
            .issuer(ISSUER)
            .store(Arc::new(MemoryStore::with_clients([client])))
            .scope(
                ScopeToken::new("photos.read").expect("scope"),
                "View your photos",
            )
            .clock(clock)
            .rate_limiter(NoLimit)
            .client_auth_method(tessera::PrivateKeyJwt::new())
            .build()
            .expect("server");
        AssertionHarness {
            server,
            key,
            accepted: Mutex::new(HashSet::new()),
        }
    })
}

/// `client_assertion`: `private_key_jwt` client authentication (RFC 7523
/// §2.2, §3) at the token endpoint. Mode byte even: the rest is the
/// assertion's text as sent (the JWS parser). Odd: the rest is a claims
/// JSON object the harness signs with the client's real key (the claim
/// rules: what a signature cannot make acceptable). Never a server error;
/// a token only for claims RFC 7523 §3 accepts, and each `jti` once.
/// Answers the token endpoint's status (0 when nothing was sent).
pub fn client_assertion(data: &[u8]) -> u16 {
    let Some((&mode, rest)) = data.split_first() else {
        return 0;
    };
    let h = assertion_harness();
    let now = (OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)).unix_timestamp();
    let (assertion, claims) = if mode % 2 == 0 {
        (String::from_utf8_lossy(rest).into_owned(), None)
    } else {
        let Ok(claims) = serde_json::from_slice::<serde_json::Value>(rest) else {
            return 0;
        };
        let Some(jws) = h.key.sign_jwt("JWT", &claims) else {
            return 0;
        };
        (jws, Some(claims))
    };
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={}",
        encode(tessera::CLIENT_ASSERTION_TYPE_JWT_BEARER),
        encode(&assertion)
    );
    let response = block_on(
        h.server
            .handle(Endpoint::Token, &HttpRequest::form_post(&body, None)),
    );
    let answer = check_json_answer(&response, 200);
    if response.status != 200 {
        assert!(
            matches!(response.status, 400 | 401 | 503),
            "status {} for an assertion: {answer}",
            response.status
        );
        return response.status;
    }
    let claims =
        claims.unwrap_or_else(|| panic!("an assertion the fuzzer wrote was accepted: {assertion}"));
    assert_eq!(claims["iss"], "signer", "iss is the client (§3 item 1)");
    assert_eq!(claims["sub"], "signer", "sub is the client (§3 item 2)");
    let aud_ok = match &claims["aud"] {
        serde_json::Value::String(a) => a == ISSUER,
        serde_json::Value::Array(all) => all.iter().any(|a| a == ISSUER),
        _ => false,
    };
    assert!(aud_ok, "aud names the issuer (§3 item 3): {claims}");
    let exp = claims["exp"].as_f64().unwrap_or(f64::NAN);
    // §3 item 4 allows clock skew: the rules' default is 30 seconds.
    assert!(
        exp > (now - 30) as f64,
        "an expired assertion accepted (§3 item 4): {claims}"
    );
    let jti = claims["jti"]
        .as_str()
        .unwrap_or_else(|| panic!("accepted without a jti: {claims}"));
    let fresh = h
        .accepted
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(jti.to_owned());
    assert!(fresh, "jti {jti:?} accepted twice (§3 item 7)");
    response.status
}
