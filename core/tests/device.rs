//! The device authorization grant (RFC 8628) through the core's endpoints:
//! the device authorization endpoint, the verification step, and every
//! polling answer of §3.5.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera::{
    Client, ClientId, Decision, Endpoint, FixedClock, GrantType, HttpRequest, Lifetimes, Scope,
    ScopeToken, Server, Subject, UserCodeError,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

struct Fixture {
    server: Server,
    clock: Arc<FixedClock>,
}

fn fixture() -> Fixture {
    fixture_with(|b| b)
}

fn fixture_with(f: impl FnOnce(tessera::ServerBuilder) -> tessera::ServerBuilder) -> Fixture {
    let clients = [
        Client::public(ClientId::new("tv").unwrap(), "Living-room TV")
            .with_grant_types([GrantType::DEVICE_CODE, "refresh_token"])
            .with_scope(Scope::parse("photos.read").unwrap()),
        Client::public(ClientId::new("other-tv").unwrap(), "Another TV")
            .with_grant_types([GrantType::DEVICE_CODE])
            .with_scope(Scope::parse("photos.read").unwrap()),
        Client::public(ClientId::new("web").unwrap(), "Web app")
            .with_grant_types(["authorization_code"])
            .with_scope(Scope::parse("photos.read").unwrap()),
        Client::confidential(
            ClientId::new("shop").unwrap(),
            "Shop",
            tessera::SecretHash::of("shop-secret"),
        )
        .with_grant_types(["authorization_code"])
        .with_scope(Scope::parse("photos.read").unwrap()),
    ];
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let builder = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::with_clients(clients)))
        .scope(ScopeToken::new("photos.read").unwrap(), "View your photos")
        .clock(clock.clone())
        .lifetimes(Lifetimes::default().with_device_code(Duration::minutes(10)))
        .enable_device_grant();
    Fixture {
        server: f(builder).build().unwrap(),
        clock,
    }
}

async fn post(f: &Fixture, endpoint: Endpoint, body: &str) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(endpoint, &HttpRequest::form_post(body, None))
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

async fn authorize_device(f: &Fixture, client: &str) -> (String, String) {
    let (status, body) = post(
        f,
        Endpoint::DeviceAuthorization,
        &format!("client_id={client}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

async fn poll(f: &Fixture, client: &str, device_code: &str) -> (u16, serde_json::Value) {
    post(
        f,
        Endpoint::Token,
        &format!("grant_type={DEVICE_GRANT}&device_code={device_code}&client_id={client}"),
    )
    .await
}

fn error(body: &serde_json::Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn device_authorization_response_rfc8628_3_2() {
    let f = fixture();
    let (status, body) = post(&f, Endpoint::DeviceAuthorization, "client_id=tv").await;
    assert_eq!(status, 200);
    assert!(body["device_code"].as_str().unwrap().starts_with("tsd_"));
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(body["verification_uri"], "https://as.example/device");
    assert_eq!(
        body["verification_uri_complete"],
        format!("https://as.example/device?user_code={user_code}")
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    // The metadata advertises the endpoint and the grant type (RFC 8628 §4).
    let m = f.server.metadata();
    assert_eq!(
        m.device_authorization_endpoint.as_deref(),
        Some("https://as.example/device_authorization")
    );
    assert!(m.grant_types_supported.iter().any(|g| g == DEVICE_GRANT));
}

#[tokio::test]
async fn device_authorization_errors_rfc8628_3_1() {
    let f = fixture();
    // A client not registered for the grant.
    let (status, body) = post(&f, Endpoint::DeviceAuthorization, "client_id=web").await;
    assert_eq!((status, error(&body)), (400, "unauthorized_client"));
    // A confidential one too, when it names itself by `client_id` alone as
    // a device would (DEMO-CONTRACT: printshop); a wrong secret is still a
    // failed authentication.
    let (status, body) = post(&f, Endpoint::DeviceAuthorization, "client_id=shop").await;
    assert_eq!((status, error(&body)), (400, "unauthorized_client"));
    let (status, body) = post(
        &f,
        Endpoint::DeviceAuthorization,
        "client_id=shop&client_secret=wrong",
    )
    .await;
    assert_eq!((status, error(&body)), (401, "invalid_client"));
    // An unknown client, and none at all.
    let (status, body) = post(&f, Endpoint::DeviceAuthorization, "client_id=nobody").await;
    assert_eq!((status, error(&body)), (401, "invalid_client"));
    let (status, body) = post(&f, Endpoint::DeviceAuthorization, "scope=photos.read").await;
    assert_eq!((status, error(&body)), (401, "invalid_client"));
    // A scope beyond the registration.
    let (status, body) = post(
        &f,
        Endpoint::DeviceAuthorization,
        "client_id=tv&scope=photos.write",
    )
    .await;
    assert_eq!((status, error(&body)), (400, "invalid_scope"));
    // Only POST.
    let r = f
        .server
        .handle(Endpoint::DeviceAuthorization, &HttpRequest::new("GET"))
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
}

#[tokio::test]
async fn polling_answers_every_state_rfc8628_3_5() {
    let f = fixture();
    let (device, user) = authorize_device(&f, "tv").await;
    let (status, body) = poll(&f, "tv", &device).await;
    assert_eq!((status, error(&body)), (400, "authorization_pending"));
    // Again at once: too fast.
    let (status, body) = poll(&f, "tv", &device).await;
    assert_eq!((status, error(&body)), (400, "slow_down"));
    // Now the interval is 10 s: 6 s later is still too fast, 11 s is fine.
    f.clock.advance(Duration::seconds(6));
    assert_eq!(error(&poll(&f, "tv", &device).await.1), "slow_down");
    f.clock.advance(Duration::seconds(16));
    assert_eq!(
        error(&poll(&f, "tv", &device).await.1),
        "authorization_pending"
    );
    // Another client polling with the code learns nothing and changes nothing.
    assert_eq!(
        error(&poll(&f, "other-tv", &device).await.1),
        "invalid_grant"
    );
    // The person approves: tokens, once.
    let prompt = f
        .server
        .device_prompt(&user.to_lowercase(), "browser-1")
        .await
        .unwrap();
    assert_eq!(prompt.client.name, "Living-room TV");
    assert_eq!(prompt.scope.to_string(), "photos.read");
    assert!(
        f.server
            .device_decide(&prompt.user_code, &Subject::new("alice"), Decision::Allow)
            .await
            .unwrap()
    );
    // A second decision changes nothing.
    assert!(
        !f.server
            .device_decide(&user, &Subject::new("mallory"), Decision::Deny)
            .await
            .unwrap()
    );
    let (status, body) = poll(&f, "tv", &device).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap();
    let token = f
        .server
        .verify_bearer(Some(&format!("Bearer {access}")), None)
        .await
        .unwrap();
    assert_eq!(token.principal(), "alice");
    // The device code is single use.
    assert_eq!(error(&poll(&f, "tv", &device).await.1), "invalid_grant");
}

#[tokio::test]
async fn denied_expired_and_unknown_codes_rfc8628_3_5() {
    let f = fixture();
    let (device, user) = authorize_device(&f, "tv").await;
    assert!(
        f.server
            .device_decide(&user, &Subject::new("alice"), Decision::Deny)
            .await
            .unwrap()
    );
    // Answered again to a later poll: a device whose answer was lost
    // (§3.5 has it retry after a timeout) hears it, not invalid_grant.
    for _ in 0..2 {
        assert_eq!(error(&poll(&f, "tv", &device).await.1), "access_denied");
    }
    let (device, user) = authorize_device(&f, "tv").await;
    f.clock.advance(Duration::minutes(10));
    for _ in 0..2 {
        assert_eq!(error(&poll(&f, "tv", &device).await.1), "expired_token");
    }
    // An expired user code is unknown on the verification page.
    assert_eq!(
        f.server.device_prompt(&user, "browser-1").await.err(),
        Some(UserCodeError::Unknown)
    );
    let (status, body) = poll(&f, "tv", "tsd_not-a-code").await;
    assert_eq!((status, error(&body)), (400, "invalid_grant"));
    let (status, body) = post(
        &f,
        Endpoint::Token,
        &format!("grant_type={DEVICE_GRANT}&client_id=tv"),
    )
    .await;
    assert_eq!((status, error(&body)), (400, "invalid_request"));
    // A client not registered for the grant cannot poll.
    let (status, body) = poll(&f, "web", &device).await;
    assert_eq!((status, error(&body)), (400, "unauthorized_client"));
}

#[tokio::test]
async fn user_code_guessing_is_bounded_rfc8628_5_1() {
    let f = fixture();
    let (_, user) = authorize_device(&f, "tv").await;
    for guess in [
        "BCDF-GHJK",
        "bcdf-ghjl",
        "nonsense",
        "BCDF-GHJM",
        "",
        "B",
        "BBBB-BBBB",
        "CCCC-CCCC",
        "DDDD-DDDD",
        "FFFF-FFFF",
    ] {
        assert_eq!(
            f.server.device_prompt(guess, "attacker").await.err(),
            Some(UserCodeError::Unknown),
            "{guess}"
        );
    }
    // Ten wrong codes: even the right one is refused for a while.
    assert!(matches!(
        f.server.device_prompt(&user, "attacker").await,
        Err(UserCodeError::Limited(_))
    ));
    // Others are not affected, and the attacker may try again later.
    assert!(
        f.server
            .device_prompt(&user, "alice's browser")
            .await
            .is_ok()
    );
    f.clock.advance(Duration::minutes(15));
    let (_, fresh) = authorize_device(&f, "tv").await;
    assert!(f.server.device_prompt(&fresh, "attacker").await.is_ok());
}

/// A code counts before its lookup (so concurrent guesses cannot all pass
/// the check while their lookups wait on the store, §5.1), and a right one
/// is taken back: a person who enters right codes again and again is never
/// held up, while the wrong ones still add up.
#[tokio::test]
async fn right_codes_are_taken_back_wrong_ones_add_up_rfc8628_5_1() {
    let f = fixture();
    let (_, user) = authorize_device(&f, "tv").await;
    for _ in 0..25 {
        assert!(f.server.device_prompt(&user, "browser").await.is_ok());
    }
    for i in 0..10 {
        assert_eq!(
            f.server
                .device_prompt(&format!("BCDF-GH{:02}", i), "browser")
                .await
                .err(),
            Some(UserCodeError::Unknown)
        );
    }
    assert!(matches!(
        f.server.device_prompt(&user, "browser").await,
        Err(UserCodeError::Limited(_))
    ));
}

/// A page that posts typed codes straight to `device_decide` is bounded
/// too: codes that decide nothing count against the signed-in person, and
/// past the limit even a right code is refused (RFC 8628 §5.1).
#[tokio::test]
async fn deciding_guessed_codes_is_bounded_rfc8628_5_1() {
    let f = fixture();
    let (_, user) = authorize_device(&f, "tv").await;
    let mallory = Subject::new("mallory");
    for i in 0..10 {
        let decided = f
            .server
            .device_decide(&format!("BCDF-GH{:02}", i), &mallory, Decision::Allow)
            .await
            .unwrap();
        assert!(!decided);
    }
    let refused = f
        .server
        .device_decide(&user, &mallory, Decision::Allow)
        .await
        .unwrap_err();
    assert_eq!(refused.code, tessera::ErrorCode::TemporarilyUnavailable);
    // Alice is not affected.
    assert!(
        f.server
            .device_decide(&user, &Subject::new("alice"), Decision::Allow)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn racing_pollers_get_one_token_response() {
    let f = Arc::new(fixture());
    let (device, user) = authorize_device(&f, "tv").await;
    f.server
        .device_decide(&user, &Subject::new("alice"), Decision::Allow)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let f = Arc::clone(&f);
            let device = device.clone();
            tokio::spawn(async move { poll(&f, "tv", &device).await.0 })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[test]
fn the_device_grant_is_off_unless_enabled() {
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    assert!(!server.device_grant_enabled());
    assert!(server.metadata().device_authorization_endpoint.is_none());
    assert!(
        server
            .routes()
            .iter()
            .all(|r| r.endpoint != Endpoint::DeviceAuthorization)
    );
    assert!(!server.grant_types().any(|g| g == DEVICE_GRANT));
}

/// A client over its rate of device authorization requests: `503
/// temporarily_unavailable` with `Retry-After` (RFC 9110 §10.2.3), rounded
/// up so that waiting that long is not early.
#[tokio::test]
async fn a_client_over_its_rate_is_told_when_to_retry() {
    use tessera::{Action, Limit, MemoryRateLimiter};
    let f = fixture_with(|b| {
        b.rate_limiter(MemoryRateLimiter::default().with_limit(
            Action::DeviceAuthorization,
            Limit::new(1, Duration::minutes(1)),
        ))
    });
    authorize_device(&f, "tv").await;
    let r = f
        .server
        .handle(
            Endpoint::DeviceAuthorization,
            &HttpRequest::form_post("client_id=tv", None),
        )
        .await;
    assert_eq!(r.status, 503);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("60"));
    f.clock.advance(Duration::minutes(1));
    authorize_device(&f, "tv").await;
}

/// Only a valid device authorization request counts against the client's
/// budget: a flood of invalid ones in a public client's name (an
/// independent audit spent photo-cli's 6,000 a minute with a bad scope)
/// keeps nothing and spends nothing.
#[tokio::test]
async fn invalid_requests_do_not_spend_the_clients_budget() {
    use tessera::{Action, Limit, MemoryRateLimiter};
    let f = fixture_with(|b| {
        b.rate_limiter(MemoryRateLimiter::default().with_limit(
            Action::DeviceAuthorization,
            Limit::new(1, Duration::minutes(1)),
        ))
    });
    for _ in 0..5 {
        let r = f
            .server
            .handle(
                Endpoint::DeviceAuthorization,
                &HttpRequest::form_post("client_id=tv&scope=not-a-scope", None),
            )
            .await;
        assert_eq!(r.status, 400);
    }
    authorize_device(&f, "tv").await;
}

/// A public client's device authorization requests (anybody can make them
/// in its name) count against their network's share first: one host
/// spends at most that of the client's budget (`503` with `Retry-After`
/// beyond), while the client's users on other networks still start device
/// flows (RFC 8628 §5.2, RFC 6819 §4.4.1.11).
#[tokio::test]
async fn one_network_spends_only_its_share_of_a_public_clients_budget() {
    use tessera::{Action, Limit, MemoryRateLimiter};
    let f = fixture_with(|b| {
        b.rate_limiter(MemoryRateLimiter::default().with_network_limit(
            Action::DeviceAuthorization,
            Limit::new(2, Duration::minutes(1)),
        ))
    });
    let from = |body: &'static str, peer: &'static str| {
        let server = f.server.clone();
        async move {
            let r = server
                .handle(
                    Endpoint::DeviceAuthorization,
                    &HttpRequest::form_post(body, None).with_peer(Some(peer.parse().unwrap())),
                )
                .await;
            (r.status, r.header("retry-after").map(str::to_owned))
        }
    };
    // An invalid request is not counted.
    for _ in 0..3 {
        assert_eq!(
            from("client_id=tv&scope=nope", "2001:db8:5::1").await.0,
            400
        );
    }
    for _ in 0..2 {
        assert_eq!(from("client_id=tv", "2001:db8:5::1").await.0, 200);
    }
    // The same /64: the same network.
    assert_eq!(
        from("client_id=tv", "2001:db8:5::2").await,
        (503, Some("60".to_owned()))
    );
    assert_eq!(from("client_id=tv", "2001:db8:6::1").await.0, 200);
    f.clock.advance(Duration::minutes(1));
    assert_eq!(from("client_id=tv", "2001:db8:5::1").await.0, 200);
}

/// RFC 6749 §3.2 at the device authorization endpoint: a parameter it does
/// not read is ignored, also when sent twice or malformed; `client_id` and
/// `scope` are `invalid_request` twice.
#[tokio::test]
async fn unread_parameters_are_ignored_read_ones_refused_twice_rfc6749_3_2() {
    let f = fixture();
    for extra in ["&foo=1&foo=2", "&foo=%FF"] {
        let body = format!("client_id=tv{extra}");
        let (status, v) = post(&f, Endpoint::DeviceAuthorization, &body).await;
        assert_eq!(status, 200, "{extra}: {v}");
    }
    for extra in [
        "&client_id=tv",
        "&scope=photos.read&scope=photos.read",
        "&scope=%FF",
    ] {
        let body = format!("client_id=tv{extra}");
        let (status, v) = post(&f, Endpoint::DeviceAuthorization, &body).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{extra}"
        );
    }
}
