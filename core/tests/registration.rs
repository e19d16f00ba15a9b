//! Dynamic client registration (RFC 7591) through the core's endpoint
//! table: the answers, the bounds (rate, count, expiry of unused
//! registrations on a fixed clock), an attacker's flood, and the code flow
//! run by a client that registered itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dpop_client;

use std::sync::Arc;

use base64::Engine;
use tessera::{
    Action, AuthorizeOutcome, Client, ClientId, ClientRegistry, CodeChallenge, Decision, Endpoint,
    FixedClock, HttpRequest, Limit, MemoryRateLimiter, RegistrationPolicy, Scope, ScopeToken,
    SecretHash, Server, ServerBuilder, Subject,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Fixture {
    server: Server,
    store: Arc<MemoryStore>,
    clock: Arc<FixedClock>,
}

fn fixture_with(f: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Fixture {
    let job = Client::confidential(
        ClientId::new("backup-job").unwrap(),
        "Backup",
        SecretHash::of("job-secret"),
    )
    .with_grant_types(["client_credentials"])
    .with_scope(Scope::parse("photos.read").unwrap());
    let store = Arc::new(MemoryStore::with_clients([job]));
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    ));
    let mut builder = Server::builder()
        .issuer("https://as.example")
        .store(store.clone())
        .clock(clock.clone());
    for s in ["photos.read", "photos.write", "profile"] {
        builder = builder.scope(ScopeToken::new(s).unwrap(), s);
    }
    Fixture {
        server: f(builder).build().unwrap(),
        store,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(|b| b.enable_dynamic_registration(RegistrationPolicy::open()))
}

fn json_post<'a>(body: &'a str, auth: Option<&'a str>) -> HttpRequest<'a> {
    HttpRequest::new("POST")
        .with_content_type(Some("application/json"))
        .with_authorization(auth)
        .with_body(body.as_bytes())
}

async fn register(f: &Fixture, body: &str) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(Endpoint::Registration, &json_post(body, None))
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

const PUBLIC: &str = r#"{"redirect_uris":["http://127.0.0.1:4567/callback"],"token_endpoint_auth_method":"none",
    "grant_types":["authorization_code","refresh_token"],"client_name":"Some MCP client","scope":"photos.read"}"#;

/// HTTP Basic credentials (RFC 6749 §2.3.1).
fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn client_credentials(f: &Fixture) -> u16 {
    let auth = basic("backup-job", "job-secret");
    f.server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post("grant_type=client_credentials", Some(&auth)),
        )
        .await
        .status
}

/// Runs the code flow for `client_id` as alice; the token endpoint's answer.
async fn code_flow(f: &Fixture, client_id: &str, auth: Option<&str>) -> (u16, serde_json::Value) {
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback&state=s1&code_challenge={}&code_challenge_method=S256",
        CodeChallenge::s256(VERIFIER)
    );
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = f.server.authorize(&query, Some(&alice)).await else {
        panic!("consent expected")
    };
    // The consent page can tell the app registered itself.
    assert!(prompt.client.is_dynamically_registered());
    let AuthorizeOutcome::Redirect(r) = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await
    else {
        panic!("redirect expected")
    };
    let location = r.location();
    let code = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut body = format!(
        "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback"
    );
    if auth.is_none() {
        body.push_str(&format!("&client_id={client_id}"));
    }
    let r = f
        .server
        .handle(Endpoint::Token, &HttpRequest::form_post(&body, auth))
        .await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

#[tokio::test]
async fn the_endpoint_is_listed_only_when_enabled_rfc8414_2() {
    let off = fixture_with(|b| b);
    assert!(off.server.metadata().registration_endpoint.is_none());
    assert!(off.server.endpoint_at("/register").is_none());
    let on = fixture();
    assert_eq!(
        on.server.metadata().registration_endpoint.as_deref(),
        Some("https://as.example/register")
    );
    assert_eq!(
        on.server.endpoint_at("/register"),
        Some(Endpoint::Registration)
    );
    let moved = fixture_with(|b| {
        b.paths(tessera::EndpointPaths::default().with_registration("/oauth/clients"))
            .enable_dynamic_registration(RegistrationPolicy::open())
    });
    assert_eq!(
        moved.server.metadata().registration_endpoint.as_deref(),
        Some("https://as.example/oauth/clients")
    );
}

#[tokio::test]
async fn a_public_client_registers_and_runs_the_code_flow_rfc7591_3() {
    let f = fixture();
    let (status, body) = register(&f, PUBLIC).await;
    assert_eq!(status, 201, "{body}");
    let id = body["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("dyn_"));
    assert!(body.get("client_secret").is_none());
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 0);
    assert_eq!(
        body["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:4567/callback"])
    );
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(
        body["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["response_types"], serde_json::json!(["code"]));
    assert_eq!(body["scope"], "photos.read");
    assert_eq!(body["client_name"], "Some MCP client");

    let stored = f
        .store
        .client(&ClientId::new(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.registration.as_ref().unwrap().unused_until.is_some());
    let (status, token) = code_flow(&f, &id, None).await;
    assert_eq!(status, 200, "{token}");
    assert!(token["refresh_token"].is_string());
    // Used: it is kept for the idle lifetime (90 days by default) and up
    // to a day more, no longer for the unused lifetime.
    let stored = f
        .store
        .client(&ClientId::new(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.registration.as_ref().unwrap().unused_until,
        Some(f.server.now() + Duration::days(91))
    );
    f.clock.advance(Duration::days(30));
    assert!(stored.is_live(f.server.now()));
}

async fn unused_until(f: &Fixture, id: &str) -> Option<OffsetDateTime> {
    f.store
        .client(&ClientId::new(id).unwrap())
        .await
        .unwrap()
        .and_then(|c| c.registration.as_ref().and_then(|r| r.unused_until))
}

/// A client that obtained tokens and then none for its idle lifetime is
/// forgotten, so clients nobody uses any more cannot fill the cap for
/// good; every token moves the deadline, with one store write per client
/// and day at most; the idle lifetime is never shorter than a refresh
/// token lives, so no live refresh token outlives its client.
#[tokio::test]
async fn a_used_client_is_forgotten_after_its_idle_lifetime() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(
            RegistrationPolicy::open()
                .with_max_clients(1)
                .with_idle_lifetime(Some(Duration::days(120))),
        )
    });
    let (_, body) = register(&f, PUBLIC).await;
    let id = body["client_id"].as_str().unwrap().to_owned();
    let t0 = f.server.now();
    assert_eq!(code_flow(&f, &id, None).await.0, 200);
    assert_eq!(unused_until(&f, &id).await, Some(t0 + Duration::days(121)));
    // Within the day, another token writes nothing.
    f.clock.advance(Duration::hours(20));
    assert_eq!(code_flow(&f, &id, None).await.0, 200);
    assert_eq!(unused_until(&f, &id).await, Some(t0 + Duration::days(121)));
    // More than a day on, the deadline moves with the next token.
    f.clock.advance(Duration::hours(5));
    let t1 = f.server.now();
    assert_eq!(code_flow(&f, &id, None).await.0, 200);
    assert_eq!(unused_until(&f, &id).await, Some(t1 + Duration::days(121)));
    // Kept (and counted: the cap of one is full) until then...
    f.clock.advance(Duration::days(120));
    assert_eq!(register(&f, PUBLIC).await.0, 503);
    assert_eq!(code_flow(&f, &id, None).await.0, 200);
    // ...and forgotten after a whole idle lifetime without a token; its
    // place under the cap is free.
    let t2 = f.server.now();
    f.clock.advance(Duration::days(121));
    let query = format!(
        "response_type=code&client_id={id}&state=s&code_challenge={}&code_challenge_method=S256",
        CodeChallenge::s256(VERIFIER)
    );
    assert!(matches!(
        f.server.authorize(&query, None).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
    assert!(f.server.now() >= t2 + Duration::days(121));
    assert_eq!(register(&f, PUBLIC).await.0, 201);
    f.store.sweep(f.server.now());
    assert!(unused_until(&f, &id).await.is_none());
    assert!(
        f.store
            .client(&ClientId::new(&id).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

/// The idle lifetime is never shorter than the refresh token family: a
/// client whose refresh token still works is still registered.
#[tokio::test]
async fn the_idle_lifetime_covers_the_refresh_family() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(
            RegistrationPolicy::open()
                .with_unused_lifetime(Duration::minutes(30))
                .with_idle_lifetime(Some(Duration::hours(1))),
        )
    });
    let (_, body) = register(&f, PUBLIC).await;
    let id = body["client_id"].as_str().unwrap().to_owned();
    let t0 = f.server.now();
    let (status, token) = code_flow(&f, &id, None).await;
    assert_eq!(status, 200);
    // The default refresh family is 90 days: the client is kept as long.
    assert_eq!(unused_until(&f, &id).await, Some(t0 + Duration::days(91)));
    f.clock.advance(Duration::days(29));
    let refresh = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={id}",
        token["refresh_token"].as_str().unwrap()
    );
    let r = f
        .server
        .handle(Endpoint::Token, &HttpRequest::form_post(&refresh, None))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// `with_idle_lifetime(None)`: a client that obtained a token once is kept
/// until it is removed.
#[tokio::test]
async fn without_an_idle_lifetime_used_clients_are_kept() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(RegistrationPolicy::open().with_idle_lifetime(None))
    });
    let (_, body) = register(&f, PUBLIC).await;
    let id = body["client_id"].as_str().unwrap().to_owned();
    assert!(unused_until(&f, &id).await.is_some());
    assert_eq!(code_flow(&f, &id, None).await.0, 200);
    assert_eq!(unused_until(&f, &id).await, None);
    f.clock.advance(Duration::days(3650));
    assert_eq!(code_flow(&f, &id, None).await.0, 200);
}

/// RFC 7591 §2 asks no scheme of the display URIs: a client in development
/// names its own loopback page over plain http, as its redirect URI may be.
#[tokio::test]
async fn display_uris_may_be_loopback_http_rfc7591_2() {
    let f = fixture();
    let body = r#"{"redirect_uris":["http://localhost:3000/callback"],"token_endpoint_auth_method":"none",
        "client_uri":"http://localhost:3000/","logo_uri":"http://127.0.0.1:3000/logo.png"}"#;
    let (status, v) = register(&f, body).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["client_uri"], "http://localhost:3000/");
    assert_eq!(v["logo_uri"], "http://127.0.0.1:3000/logo.png");
}

#[tokio::test]
async fn a_confidential_client_gets_a_secret_that_authenticates_rfc7591_3_2_1() {
    let f = fixture();
    let (status, body) = register(
        &f,
        r#"{"redirect_uris":["http://127.0.0.1:4567/callback"],"token_endpoint_auth_method":"client_secret_basic"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(body["client_secret_expires_at"], 0);
    // Stored only as a hash.
    let stored = f
        .store
        .client(&ClientId::new(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!format!("{stored:?}").contains(secret));
    let auth = basic(id, secret);
    let (status, token) = code_flow(&f, id, Some(&auth)).await;
    assert_eq!(status, 200, "{token}");
    // A wrong secret is refused.
    let wrong = basic(id, "nope");
    let r = f
        .server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post("grant_type=authorization_code&code=x", Some(&wrong)),
        )
        .await;
    assert_eq!(r.status, 401);
}

/// RFC 6749 §2.3.1: the server "MUST support the HTTP Basic authentication
/// scheme" for clients issued a password, so one registered for
/// `client_secret_post` may use Basic too.
#[tokio::test]
async fn a_client_secret_post_client_may_use_basic_too_rfc6749_2_3_1() {
    let f = fixture();
    let (status, body) = register(
        &f,
        r#"{"redirect_uris":["http://127.0.0.1:4567/callback"],"token_endpoint_auth_method":"client_secret_post"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    let auth = basic(id, secret);
    let (status, token) = code_flow(&f, id, Some(&auth)).await;
    assert_eq!(status, 200, "{token}");
}

#[tokio::test]
async fn transport_errors_rfc7591_3() {
    let f = fixture();
    // Not JSON: invalid_client_metadata.
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &HttpRequest::form_post("redirect_uris=https://a.example/cb", None),
        )
        .await;
    assert_eq!(r.status, 400);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"], "invalid_client_metadata");
    assert!(v["error_description"].is_string());
    // A member named twice (RFC 8259 §4: which one counts is
    // unpredictable): refused, nothing registered.
    let (status, v) = register(
        &f,
        r#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}"#,
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{v}"
    );
    assert!(
        v["error_description"].as_str().unwrap().contains("twice"),
        "{v}"
    );
    // No content type at all.
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &HttpRequest::new("POST").with_body(PUBLIC.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 400);
    // A charset parameter is fine.
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &HttpRequest::new("POST")
                .with_content_type(Some("application/json; charset=utf-8"))
                .with_body(PUBLIC.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 201);
    // Only POST.
    let r = f
        .server
        .handle(Endpoint::Registration, &HttpRequest::new("GET"))
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // Over the body limit: 413.
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(70 * 1024));
    let r = f
        .server
        .handle(Endpoint::Registration, &json_post(&big, None))
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn every_metadata_error_is_answered_400_with_its_code_rfc7591_3_2_2() {
    let f = fixture();
    for (body, code) in [
        (
            r#"{"token_endpoint_auth_method":"none"}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["http://app.example/cb"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["com.example:/cb"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb#x"]}"#,
            "invalid_redirect_uri",
        ),
        // Characters no URI holds (RFC 3986 §2), which a URL parser would
        // drop or encode while the raw text went back in `Location`.
        (
            r#"{"redirect_uris":["https://a.example/cb\n"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/c\tb"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/c b"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/caf\u00e9"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb?x=\"y\""]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"],"response_types":["token"]}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"scope":"photos.read admin"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:x"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_uri":"http://a.example/"}"#,
            "invalid_client_metadata",
        ),
        // A name that reads as another (RFC 7591 §5): bidi overrides and
        // invisible characters are refused like control characters.
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":"Evil\u202epohStnirP"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":"Print\u200bShop"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":"A\u2067B"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":"\u3164"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":"A\u2028B"}"#,
            "invalid_client_metadata",
        ),
        ("{", "invalid_client_metadata"),
    ] {
        let (status, v) = register(&f, body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(v["error"], code, "{body}");
    }
    // Nothing was kept.
    assert_eq!(
        f.store.dynamic_client_count(f.server.now()).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn an_initial_access_token_guards_the_endpoint_rfc7591_3_and_rfc6750_3() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(
            RegistrationPolicy::open().with_initial_access_token(SecretHash::of("iat-123")),
        )
    });
    let r = f
        .server
        .handle(Endpoint::Registration, &json_post(PUBLIC, None))
        .await;
    assert_eq!(r.status, 401);
    // No token sent: a challenge without an error code (RFC 6750 §3.1).
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"tessera\"")
    );
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &json_post(PUBLIC, Some("Bearer wrong")),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &json_post(PUBLIC, Some("Basic aWF0LTEyMw==")),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &json_post(PUBLIC, Some("Bearer iat-123")),
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn registrations_are_rate_limited_through_the_abuse_hook() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(RegistrationPolicy::open())
            .rate_limiter(MemoryRateLimiter::new().with_limit(
                Action::ClientRegistration,
                Limit::new(2, Duration::minutes(1)),
            ))
    });
    assert_eq!(register(&f, PUBLIC).await.0, 201);
    assert_eq!(register(&f, PUBLIC).await.0, 201);
    let (status, v) = register(&f, PUBLIC).await;
    assert_eq!(status, 503);
    assert_eq!(v["error"], "temporarily_unavailable");
    // Invalid requests are not counted, and the window passes.
    f.clock.advance(Duration::minutes(1));
    assert_eq!(register(&f, PUBLIC).await.0, 201);
}

#[tokio::test]
async fn the_count_is_capped_and_unused_registrations_expire() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(
            RegistrationPolicy::open()
                .with_max_clients(3)
                .with_unused_lifetime(Duration::hours(2)),
        )
    });
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, v) = register(&f, PUBLIC).await;
        assert_eq!(status, 201);
        ids.push(v["client_id"].as_str().unwrap().to_owned());
    }
    let (status, v) = register(&f, PUBLIC).await;
    assert_eq!(status, 503);
    assert_eq!(v["error"], "temporarily_unavailable");
    // The first one is used; the others are not.
    assert_eq!(code_flow(&f, &ids[0], None).await.0, 200);
    f.clock.advance(Duration::hours(2));
    // Expired unused registrations are gone for the server at once,
    // whether or not the store has removed them yet.
    let query = format!(
        "response_type=code&client_id={}&state=s&code_challenge={}&code_challenge_method=S256",
        ids[1],
        CodeChallenge::s256(VERIFIER)
    );
    assert!(matches!(
        f.server.authorize(&query, None).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
    let r = f
        .server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post(
                &format!("grant_type=authorization_code&code=x&client_id={}", ids[2]),
                None,
            ),
        )
        .await;
    assert_eq!(r.status, 401);
    // The used one lives on, and the freed places can be taken again.
    assert_eq!(code_flow(&f, &ids[0], None).await.0, 200);
    assert_eq!(
        f.store.dynamic_client_count(f.server.now()).await.unwrap(),
        1
    );
    assert_eq!(register(&f, PUBLIC).await.0, 201);
    assert_eq!(register(&f, PUBLIC).await.0, 201);
    assert_eq!(register(&f, PUBLIC).await.0, 503);
    // The store's sweep removes what expired.
    f.clock.advance(Duration::hours(2));
    f.store.sweep(f.server.now());
    assert_eq!(f.store.stats().clients, 2, "backup-job and the used client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registration_flood_stops_at_the_cap_and_other_clients_keep_working() {
    const CAP: usize = 50;
    let f = Arc::new(fixture_with(|b| {
        b.enable_dynamic_registration(RegistrationPolicy::open().with_max_clients(CAP))
            .rate_limiter(MemoryRateLimiter::new())
    }));
    let barrier = Arc::new(tokio::sync::Barrier::new(400));
    let tasks: Vec<_> = (0..400)
        .map(|_| {
            let f = f.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                register(&f, PUBLIC).await
            })
        })
        .collect();
    // Meanwhile, an existing client's token requests are answered.
    for _ in 0..20 {
        assert_eq!(client_credentials(&f).await, 200);
    }
    let mut created = 0;
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            201 => created += 1,
            503 => assert_eq!(v["error"], "temporarily_unavailable"),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(created, CAP);
    assert_eq!(
        f.store.dynamic_client_count(f.server.now()).await.unwrap(),
        CAP as u64
    );
    assert_eq!(client_credentials(&f).await, 200);
}

#[tokio::test]
async fn the_default_limiter_bounds_the_rate_of_open_registration() {
    let f = fixture();
    let mut created = 0;
    for _ in 0..200 {
        if register(&f, PUBLIC).await.0 == 201 {
            created += 1;
        }
    }
    assert_eq!(created, 120, "the default: 120 per minute");
    assert_eq!(client_credentials(&f).await, 200);
}

/// A client_credentials request with Basic `auth` and a DPoP `proof`: the
/// status and the answer.
async fn dpop_client_credentials(f: &Fixture, auth: &str, proof: &str) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post("grant_type=client_credentials", Some(auth))
                .with_dpop(Some(proof)),
        )
        .await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

/// RFC 9449 §11.1 keeps every proof's `jti` for the acceptance window, and
/// the replay cache refuses every DPoP request once full. Anybody can
/// register a client, so the proofs of all self-registered clients are
/// counted together ([`Action::DpopProof`]): past the limit they hear
/// `503 temporarily_unavailable`, at the token endpoint and at PAR, and
/// nothing more is kept, while a client the operator registered is not
/// held back.
#[tokio::test]
async fn self_registered_clients_cannot_fill_the_dpop_replay_cache() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(RegistrationPolicy::open().with_grant_types([
            "authorization_code",
            "refresh_token",
            "client_credentials",
        ]))
        .rate_limiter(
            MemoryRateLimiter::default()
                .with_limit(Action::DpopProof, Limit::new(4, Duration::minutes(1))),
        )
    });
    let key = dpop_client::DpopKey::es256();
    let token_url = "https://as.example/token";
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = register(&f, PUBLIC).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["client_id"].as_str().unwrap().to_owned());
    }
    let token = |id: &str| {
        format!(
            "grant_type=authorization_code&code=not-a-code&client_id={id}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback&code_verifier={VERIFIER}"
        )
    };
    let post = |body: String, proof: String| {
        let server = f.server.clone();
        async move {
            let r = server
                .handle(
                    Endpoint::Token,
                    &HttpRequest::form_post(&body, None).with_dpop(Some(&proof)),
                )
                .await;
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (r.status, v["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    // A proof that does not verify is refused before it is counted.
    let (status, error) = post(token(&ids[0]), "not-a-proof".to_owned()).await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));
    // A confidential self-registered client's DPoP-bound token: one proof.
    let (status, body) = register(
        &f,
        r#"{"grant_types":["client_credentials"],"scope":"photos.read","token_endpoint_auth_method":"client_secret_basic"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let auth = basic(
        body["client_id"].as_str().unwrap(),
        body["client_secret"].as_str().unwrap(),
    );
    let (_, v) = dpop_client_credentials(&f, &auth, &key.proof("POST", token_url, None)).await;
    assert_eq!(v["token_type"], "DPoP", "{v}");
    let bound = v["access_token"].as_str().unwrap().to_owned();
    let at_resource = || {
        let server = f.server.clone();
        let proof = key.proof("GET", "https://as.example/api/photos", Some(&bound));
        let authorization = format!("DPoP {bound}");
        async move {
            server
                .verify_access_at(
                    "/api/photos",
                    Some(&authorization),
                    None,
                    Some(tessera::DpopFacts::new("GET", "/api/photos", Some(&proof))),
                )
                .await
        }
    };
    // Its proofs at a resource count too.
    assert!(at_resource().await.is_ok());
    // Two more proofs are accepted (and kept) at the token endpoint: the
    // code is what is wrong.
    for _ in 0..2 {
        let (status, error) = post(token(&ids[0]), key.proof("POST", token_url, None)).await;
        assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    }
    let kept = f.store.stats().replay_entries;
    assert_eq!(kept, 4);
    // The fifth is refused before it is kept, at the resource too.
    let refused = at_resource().await.map(|_| ()).unwrap_err();
    assert!(
        matches!(refused, tessera::BearerError::Unavailable(_)) && refused.status() == 503,
        "{refused:?}"
    );
    // The fourth is refused before it is kept, for every self-registered client.
    for id in &ids {
        let (status, error) = post(token(id), key.proof("POST", token_url, None)).await;
        assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
    }
    let par = format!(
        "client_id={}&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback\
         &scope=photos.read&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        ids[1]
    );
    let proof = key.proof("POST", "https://as.example/par", None);
    let r = f
        .server
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(&par, None).with_dpop(Some(&proof)),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (r.status, v["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{v}"
    );
    assert_eq!(
        f.store.stats().replay_entries,
        kept,
        "nothing more was kept"
    );
    // A client the operator registered still gets its DPoP-bound token.
    let auth = basic("backup-job", "job-secret");
    let (status, v) = dpop_client_credentials(&f, &auth, &key.proof("POST", token_url, None)).await;
    assert_eq!(
        (status, v["token_type"].as_str()),
        (200, Some("DPoP")),
        "{v}"
    );
    // A minute later the self-registered clients' proofs count again.
    f.clock.advance(Duration::seconds(61));
    let mut claims = key.claims("POST", token_url, None);
    claims["iat"] = (OffsetDateTime::now_utc() + Duration::seconds(61))
        .unix_timestamp()
        .into();
    let later = key.sign(&key.header(), &claims);
    let (status, error) = post(token(&ids[1]), later).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
}

/// Pushed authorization requests are kept until used or expired; anyone
/// can register a client, so the self-registered clients share one budget
/// (RFC 6819 §4.4.1.11) on top of each client's own: a flood spread over
/// many fresh clients stops there.
#[tokio::test]
async fn self_registered_clients_share_one_budget_of_pushed_requests() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(RegistrationPolicy::open())
            .rate_limiter(MemoryRateLimiter::default().with_limit(
                Action::PushedAuthorization,
                Limit::new(3, Duration::minutes(1)),
            ))
    });
    let push = |id: String| {
        let server = f.server.clone();
        async move {
            let body = format!(
                "response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback\
                 &state=s&code_challenge={}&code_challenge_method=S256",
                CodeChallenge::s256(VERIFIER)
            );
            let r = server
                .handle(
                    Endpoint::PushedAuthorization,
                    &HttpRequest::form_post(&body, None),
                )
                .await;
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            let retry = r.header("retry-after").map(str::to_owned);
            (
                r.status,
                v["error"].as_str().unwrap_or_default().to_owned(),
                retry,
            )
        }
    };
    // Three fresh clients, one push each: the shared budget of 3 is spent.
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (status, body) = register(&f, PUBLIC).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["client_id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..3] {
        assert_eq!(push(id.clone()).await.0, 201);
    }
    // A fourth fresh client, within its own budget, is refused: 503 (it is
    // not over its own number, RFC 9126 §2.3's 429), saying when to try
    // again (RFC 9110 §10.2.3).
    let (status, error, retry) = push(ids[3].clone()).await;
    assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // After the window, it may push again.
    f.clock.advance(Duration::minutes(1));
    assert_eq!(push(ids[3].clone()).await.0, 201);
}

/// A client a store kept for good (used before idle lifetimes existed, or
/// under `with_idle_lifetime(None)`) gets the idle deadline at its next
/// token; with registration turned off, the default policy's idle
/// lifetime applies, and the deadline is not cleared.
#[tokio::test]
async fn clients_kept_for_good_get_the_idle_deadline_at_their_next_token() {
    for registration_on in [true, false] {
        let f = fixture_with(|b| {
            b.enable_dynamic_registration(RegistrationPolicy::open().with_idle_lifetime(None))
        });
        let (_, body) = register(&f, PUBLIC).await;
        let id = body["client_id"].as_str().unwrap().to_owned();
        assert_eq!(code_flow(&f, &id, None).await.0, 200);
        assert_eq!(unused_until(&f, &id).await, None, "kept for good");
        // The same store, served by a server with the default policy (or
        // with registration off).
        let store = f.store.clone();
        let clock = f.clock.clone();
        let mut builder = Server::builder()
            .issuer("https://as.example")
            .store(store.clone())
            .clock(clock.clone())
            .scope(ScopeToken::new("photos.read").unwrap(), "photos.read");
        if registration_on {
            builder = builder.enable_dynamic_registration(RegistrationPolicy::open());
        }
        let g = Fixture {
            server: builder.build().unwrap(),
            store,
            clock,
        };
        assert_eq!(code_flow(&g, &id, None).await.0, 200);
        assert_eq!(
            unused_until(&g, &id).await,
            Some(g.server.now() + Duration::days(91)),
            "registration on: {registration_on}"
        );
    }
}

/// The registration policy's lifetimes are bounded like every other (one
/// second to ten years): `now + lifetime` cannot leave the calendar, so no
/// token request can panic on it.
#[test]
fn registration_lifetimes_out_of_range_are_refused() {
    let policies = [
        (
            RegistrationPolicy::open().with_idle_lifetime(Some(Duration::days(5_000_000))),
            "idle registration",
        ),
        (
            RegistrationPolicy::open().with_idle_lifetime(Some(Duration::ZERO)),
            "idle registration",
        ),
        (
            RegistrationPolicy::open().with_unused_lifetime(Duration::MAX),
            "unused registration",
        ),
        // A used client's deadline must lie beyond an unused one's, or
        // making room at the cap could push out clients in use.
        (
            RegistrationPolicy::open()
                .with_unused_lifetime(Duration::days(100))
                .with_idle_lifetime(Some(Duration::days(90))),
            "idle registration (longer than the unused one)",
        ),
    ];
    for (policy, which) in policies {
        let built = Server::builder()
            .issuer("https://as.example")
            .store(Arc::new(MemoryStore::new()))
            .enable_dynamic_registration(policy)
            .build();
        assert!(
            matches!(built, Err(tessera::BuildError::InvalidLifetime { which: w }) if w == which),
            "{which}"
        );
    }
}

/// A public client the operator registered (photo-cli) takes no
/// authentication: anybody can present its id with a fresh DPoP proof and
/// a bogus refresh token, and the proof's `jti` is kept although the grant
/// fails. Its proofs count with the self-registered clients'
/// ([`Action::DpopProof`]), so such a flood cannot fill the replay cache,
/// while a confidential client the operator registered is not held back.
#[tokio::test]
async fn a_public_clients_proofs_are_counted_so_anyone_cannot_fill_the_replay_cache() {
    let f = fixture_with(|b| {
        b.rate_limiter(
            MemoryRateLimiter::default()
                .with_limit(Action::DpopProof, Limit::new(3, Duration::minutes(1))),
        )
    });
    f.store.insert_client(
        Client::public(ClientId::new("photo-cli").unwrap(), "PhotoBook CLI")
            .with_grant_types(["refresh_token"])
            .with_scope(Scope::parse("photos.read").unwrap()),
    );
    let key = dpop_client::DpopKey::es256();
    let token_url = "https://as.example/token";
    let bogus = |key: &dpop_client::DpopKey| {
        let server = f.server.clone();
        let proof = key.proof("POST", token_url, None);
        async move {
            let r = server
                .handle(
                    Endpoint::Token,
                    &HttpRequest::form_post(
                        "grant_type=refresh_token&refresh_token=tsr_bogus&client_id=photo-cli",
                        None,
                    )
                    .with_dpop(Some(&proof)),
                )
                .await;
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (r.status, v["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    for _ in 0..3 {
        assert_eq!(bogus(&key).await, (400, "invalid_grant".to_owned()));
    }
    assert_eq!(f.store.stats().replay_entries, 3);
    // The fourth is refused before it is kept.
    assert_eq!(
        bogus(&key).await,
        (503, "temporarily_unavailable".to_owned())
    );
    assert_eq!(f.store.stats().replay_entries, 3);
    // backup-job, confidential and the operator's, is not held back.
    let (status, v) = dpop_client_credentials(
        &f,
        &basic("backup-job", "job-secret"),
        &key.proof("POST", token_url, None),
    )
    .await;
    assert_eq!(
        (status, v["token_type"].as_str()),
        (200, Some("DPoP")),
        "{v}"
    );
}

/// At the cap, the registration nearest its unused deadline (registered
/// longest ago, never used) is forgotten to make room, so a flood of
/// registrations nobody uses cannot shut registration for their lifetime
/// (the independent flood audit: a thousand POSTs kept it shut for a day);
/// a client that obtained tokens is not pushed out (its idle deadline is
/// far beyond the unused lifetime), and when every one has, the cap
/// refuses.
#[tokio::test]
async fn at_the_cap_the_oldest_unused_registration_makes_room() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(
            RegistrationPolicy::open()
                .with_max_clients(3)
                .with_unused_lifetime(Duration::hours(2)),
        )
    });
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, v) = register(&f, PUBLIC).await;
        assert_eq!(status, 201);
        ids.push(v["client_id"].as_str().unwrap().to_owned());
        f.clock.advance(Duration::minutes(1));
    }
    // The second one is used.
    assert_eq!(code_flow(&f, &ids[1], None).await.0, 200);
    let known = |id: &str| {
        let store = f.store.clone();
        let id = ClientId::new(id).unwrap();
        async move { store.client(&id).await.unwrap().is_some() }
    };
    // The fourth pushes out the first (the oldest unused), then the fifth
    // the third: never the used second.
    let (status, v) = register(&f, PUBLIC).await;
    assert_eq!(status, 201, "{v}");
    let fourth = v["client_id"].as_str().unwrap().to_owned();
    assert!(!known(&ids[0]).await && known(&ids[1]).await && known(&ids[2]).await);
    f.clock.advance(Duration::minutes(1));
    let (status, v) = register(&f, PUBLIC).await;
    assert_eq!(status, 201, "{v}");
    let fifth = v["client_id"].as_str().unwrap().to_owned();
    assert!(known(&ids[1]).await && !known(&ids[2]).await && known(&fourth).await);
    assert_eq!(
        f.store.dynamic_client_count(f.server.now()).await.unwrap(),
        3
    );
    // Once every one has obtained tokens, the cap refuses.
    assert_eq!(code_flow(&f, &fourth, None).await.0, 200);
    assert_eq!(code_flow(&f, &fifth, None).await.0, 200);
    f.clock.advance(Duration::minutes(1));
    let (status, v) = register(&f, PUBLIC).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
}

/// A registration from `peer` (the address the adapter saw).
async fn register_from(f: &Fixture, body: &str, peer: &str) -> (u16, Option<String>) {
    let r = f
        .server
        .handle(
            Endpoint::Registration,
            &json_post(body, None).with_peer(Some(peer.parse().unwrap())),
        )
        .await;
    (r.status, r.header("retry-after").map(str::to_owned))
}

/// RFC 6819 §4.4.1.11: open registration is one budget for everybody (120
/// a minute), so one host could spend it all and shut registration for
/// everyone else. Each network (an IPv4 address, an IPv6 /64) may spend a
/// tenth: past it, `503` with `Retry-After` for that network only, while
/// other networks, and requests whose adapter named no address, still
/// register. An invalid request costs the network nothing.
#[tokio::test]
async fn one_network_spends_a_tenth_of_open_registration_rfc6819_4_4_1_11() {
    let f = fixture();
    let bad = r#"{"redirect_uris":["javascript:alert(1)"]}"#;
    for _ in 0..20 {
        assert_eq!(register_from(&f, bad, "203.0.113.7").await.0, 400);
    }
    for _ in 0..12 {
        assert_eq!(register_from(&f, PUBLIC, "203.0.113.7").await.0, 201);
    }
    let (status, retry_after) = register_from(&f, PUBLIC, "203.0.113.7").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("60")));
    // The same host through a dual-stack socket is the same network.
    assert_eq!(register_from(&f, PUBLIC, "::ffff:203.0.113.7").await.0, 503);
    // Others register.
    assert_eq!(register_from(&f, PUBLIC, "203.0.113.8").await.0, 201);
    assert_eq!(register(&f, PUBLIC).await.0, 201);
    // An IPv6 host's /64 is one network, whatever address in it.
    for i in 0..12 {
        let peer = format!("2001:db8:7:7::{i:x}");
        assert_eq!(register_from(&f, PUBLIC, &peer).await.0, 201);
    }
    assert_eq!(
        register_from(&f, PUBLIC, "2001:db8:7:7:ffff::1").await.0,
        503
    );
    assert_eq!(register_from(&f, PUBLIC, "2001:db8:7:8::1").await.0, 201);
    // The window passes.
    f.clock.advance(Duration::minutes(1));
    assert_eq!(register_from(&f, PUBLIC, "203.0.113.7").await.0, 201);
}

/// The share is taken atomically: 64 registrations racing from one
/// network, exactly a tenth of the budget gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_registrations_from_one_network_get_exactly_its_share() {
    let f = Arc::new(fixture());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { register_from(&f, PUBLIC, "198.51.100.20").await.0 })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            201 => created += 1,
            status => assert_eq!(status, 503),
        }
    }
    assert_eq!(created, 12);
}

/// A public client's DPoP proofs (anybody can present them) count against
/// their network's share before the budget all such clients share: one
/// host spends at most its share of the replay cache's budget, and proofs
/// from other hosts are still taken.
#[tokio::test]
async fn a_public_clients_proofs_from_one_network_spend_only_its_share() {
    let f = fixture_with(|b| {
        b.rate_limiter(
            MemoryRateLimiter::default()
                .with_limit(Action::DpopProof, Limit::new(100, Duration::minutes(1)))
                .with_network_limit(Action::DpopProof, Limit::new(3, Duration::minutes(1))),
        )
    });
    f.store.insert_client(
        Client::public(ClientId::new("photo-cli").unwrap(), "PhotoBook CLI")
            .with_grant_types(["refresh_token"])
            .with_scope(Scope::parse("photos.read").unwrap()),
    );
    let key = dpop_client::DpopKey::es256();
    let bogus = |peer: &'static str| {
        let server = f.server.clone();
        let proof = key.proof("POST", "https://as.example/token", None);
        async move {
            let r = server
                .handle(
                    Endpoint::Token,
                    &HttpRequest::form_post(
                        "grant_type=refresh_token&refresh_token=tsr_bogus&client_id=photo-cli",
                        None,
                    )
                    .with_dpop(Some(&proof))
                    .with_peer(Some(peer.parse().unwrap())),
                )
                .await;
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (r.status, v["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    for _ in 0..3 {
        assert_eq!(bogus("192.0.2.1").await, (400, "invalid_grant".to_owned()));
    }
    assert_eq!(
        bogus("192.0.2.1").await,
        (503, "temporarily_unavailable".to_owned())
    );
    assert_eq!(f.store.stats().replay_entries, 3);
    assert_eq!(bogus("192.0.2.2").await, (400, "invalid_grant".to_owned()));
    assert_eq!(f.store.stats().replay_entries, 4);
}

/// RFC 9700 §4.11.2: anybody can register a client with a redirect URI of
/// their choosing, so an erroneous authorization request in its name (a
/// bad scope, no PKCE, a repeated parameter) must not make this server
/// redirect a browser there at once: the server "SHOULD only automatically
/// redirect the user agent if it trusts the redirection URI". A
/// self-registered client's errors are error pages, signed in or not; the
/// operator's client still hears its errors at its redirect URI (RFC 6749
/// §4.1.2.1), and the self-registered client's valid requests go on.
#[tokio::test]
async fn a_self_registered_clients_errors_are_pages_not_redirects_rfc9700_4_11_2() {
    let f = fixture();
    f.store.insert_client(
        Client::public(ClientId::new("operators-app").unwrap(), "Operator's app")
            .with_redirect_uri(tessera::RedirectUri::new("http://127.0.0.1:4567/callback").unwrap())
            .with_grant_types(["authorization_code"])
            .with_scope(Scope::parse("photos.read").unwrap()),
    );
    let (status, body) = register(&f, PUBLIC).await;
    assert_eq!(status, 201, "{body}");
    let registered = body["client_id"].as_str().unwrap().to_owned();
    let challenge = CodeChallenge::s256(VERIFIER);
    let good = format!(
        "response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback&state=s1&code_challenge={challenge}&code_challenge_method=S256"
    );
    let alice = Subject::new("alice");
    for bad in [
        format!("{good}&scope=not-a-scope"),
        "response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback&state=s1"
            .to_owned(),
        format!("{good}&response_type=code"),
        format!("{good}&response_mode=fragment"),
    ] {
        for owner in [None, Some(&alice)] {
            let query = format!("client_id={registered}&{bad}");
            let outcome = f.server.authorize(&query, owner).await;
            assert!(
                matches!(&outcome, AuthorizeOutcome::ErrorPage(_)),
                "{bad}: {outcome:?}"
            );
            let query = format!("client_id=operators-app&{bad}");
            let outcome = f.server.authorize(&query, owner).await;
            let AuthorizeOutcome::Redirect(r) = outcome else {
                panic!("{bad}: {outcome:?}")
            };
            assert!(r.location().contains("error="), "{}", r.location());
        }
    }
    let query = format!("client_id={registered}&{good}");
    assert!(matches!(
        f.server.authorize(&query, None).await,
        AuthorizeOutcome::Login(_)
    ));
}

/// The per-owner consent-prompt limit, which anybody can drive a signed-in
/// owner's browser into with links, refuses a self-registered client's
/// request with an error page too, not at its redirect URI (RFC 9700
/// §4.11.2).
#[tokio::test]
async fn a_self_registered_clients_prompt_over_the_limit_is_a_page() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(RegistrationPolicy::open())
            .rate_limiter(
                MemoryRateLimiter::default()
                    .with_limit(Action::ConsentPrompt, Limit::new(1, Duration::minutes(1))),
            )
    });
    let (status, body) = register(&f, PUBLIC).await;
    assert_eq!(status, 201, "{body}");
    let query = format!(
        "response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback&state=s1&code_challenge={}&code_challenge_method=S256",
        body["client_id"].as_str().unwrap(),
        CodeChallenge::s256(VERIFIER)
    );
    let alice = Subject::new("alice");
    assert!(matches!(
        f.server.authorize(&query, Some(&alice)).await,
        AuthorizeOutcome::Consent(_)
    ));
    let outcome = f.server.authorize(&query, Some(&alice)).await;
    let AuthorizeOutcome::ErrorPage(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(e.code.as_str(), "temporarily_unavailable");
}

/// A self-registered client that expires unused while one of its requests
/// waits for the owner to sign in or decide (as a pushed request does, RFC
/// 9126 §4: validated "as it would any other") gets no code: an error page.
#[tokio::test]
async fn a_client_that_expired_while_its_request_waited_gets_no_code() {
    let f = fixture_with(|b| {
        b.enable_dynamic_registration(
            RegistrationPolicy::open().with_unused_lifetime(Duration::minutes(5)),
        )
    });
    let (_, body) = register(&f, PUBLIC).await;
    let id = body["client_id"].as_str().unwrap().to_owned();
    let query = format!(
        "response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4567%2Fcallback&state=s1&code_challenge={}&code_challenge_method=S256",
        CodeChallenge::s256(VERIFIER)
    );
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Login(login) = f.server.authorize(&query, None).await else {
        panic!("login expected")
    };
    let AuthorizeOutcome::Consent(prompt) = f.server.authorize(&query, Some(&alice)).await else {
        panic!("consent expected")
    };
    f.clock.advance(Duration::minutes(6));
    let resumed = f.server.resume(&login.handle, &alice).await;
    assert!(
        matches!(&resumed, AuthorizeOutcome::ErrorPage(e) if e.code == tessera::ErrorCode::InvalidClient),
        "{resumed:?}"
    );
    // Nor while its consent page was open: no redirect to its unvetted URI.
    let decided = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await;
    assert!(
        matches!(&decided, AuthorizeOutcome::ErrorPage(e) if e.code == tessera::ErrorCode::InvalidClient),
        "{decided:?}"
    );
}
