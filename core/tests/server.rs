//! Service-layer tests: the whole protocol through `Server`, with a fixed
//! clock and the in-memory store, no HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use tessera::CodeChallenge;
use tessera::SecretHash;
use tessera::{
    AuthorizeOutcome, Client, ClientId, Decision, ErrorCode, FixedClock, HttpRequest, RedirectUri,
    Scope, ScopeToken, Server, SkipForFirstParty, Subject,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const SHOP_SECRET: &str = "shop-secret";

struct Fixture {
    server: Server,
    clock: Arc<FixedClock>,
}

fn fixture() -> Fixture {
    fixture_with(|b| b)
}

fn fixture_with(f: impl FnOnce(tessera::ServerBuilder) -> tessera::ServerBuilder) -> Fixture {
    let clients = [
        Client::confidential(
            ClientId::new("shop").unwrap(),
            "Print Shop",
            SecretHash::of(SHOP_SECRET),
        )
        .with_auth_methods([
            tessera::AuthMethod::ClientSecretBasic,
            tessera::AuthMethod::ClientSecretPost,
        ])
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code", "refresh_token"])
        .with_scope(Scope::parse("photos.read profile").unwrap()),
        Client::public(ClientId::new("cli").unwrap(), "CLI")
            .with_redirect_uri(RedirectUri::new("http://127.0.0.1/callback").unwrap())
            .with_grant_types(["authorization_code", "refresh_token", "client_credentials"])
            .with_scope(Scope::parse("photos.read").unwrap())
            .with_first_party(true),
        Client::confidential(
            ClientId::new("job").unwrap(),
            "Job",
            SecretHash::of("job-secret"),
        )
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse("photos.read").unwrap()),
        Client::confidential(
            ClientId::new("api").unwrap(),
            "API",
            SecretHash::of("api-secret"),
        )
        .with_introspect_any_token(true),
    ];
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let builder = Server::builder()
        .issuer("https://as.example/")
        .store(Arc::new(MemoryStore::with_clients(clients)))
        .scope(ScopeToken::new("photos.read").unwrap(), "View your photos")
        .scope(ScopeToken::new("profile").unwrap(), "See your profile")
        .clock(clock.clone())
        .random(Arc::new(tessera::CountingRandom::default()));
    Fixture {
        server: f(builder).build().unwrap(),
        clock,
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn alice() -> Subject {
    Subject::new("alice")
}

fn auth_query(client: &str, extra: &str) -> String {
    let challenge = CodeChallenge::s256(VERIFIER);
    format!(
        "response_type=code&client_id={client}&state=xyz&code_challenge={}&code_challenge_method=S256{extra}",
        challenge
    )
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs login + consent and returns the redirect location.
async fn authorize(f: &Fixture, client: &str, extra: &str, decision: Decision) -> String {
    let handle = match f.server.authorize(&auth_query(client, extra), None).await {
        AuthorizeOutcome::Login(p) => p.handle,
        other => panic!("expected login, got {other:?}"),
    };
    match f.server.resume(&handle, &alice()).await {
        AuthorizeOutcome::Consent(p) => {
            assert_eq!(p.handle, handle);
            assert_eq!(p.client.name, "Print Shop");
        }
        other => panic!("expected consent, got {other:?}"),
    }
    match f.server.decide(&handle, &alice(), decision).await {
        AuthorizeOutcome::Redirect(r) => r.location().to_owned(),
        other => panic!("expected redirect, got {other:?}"),
    }
}

async fn token(f: &Fixture, body: &str, auth: Option<&str>) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(
            tessera::Endpoint::Token,
            &HttpRequest::form_post(body, auth),
        )
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

async fn code_for_shop(f: &Fixture) -> String {
    let loc = authorize(f, "shop", "", Decision::Allow).await;
    query_param(&loc, "code").unwrap()
}

async fn redeem(f: &Fixture, code: &str) -> (u16, serde_json::Value) {
    let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    token(f, &body, Some(&basic("shop", SHOP_SECRET))).await
}

fn err(v: &serde_json::Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn code_flow_issues_tokens_with_state_and_iss() {
    let f = fixture();
    let loc = authorize(&f, "shop", "", Decision::Allow).await;
    assert!(loc.starts_with("https://shop.example/cb?code=tsc_"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some("https://as.example")
    );
    let (status, body) = redeem(&f, &query_param(&loc, "code").unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "photos.read profile");
    assert!(body["access_token"].as_str().unwrap().starts_with("tsa_"));
    assert!(body["refresh_token"].as_str().unwrap().starts_with("tsr_"));
    let at = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let token = f.server.verify_bearer(Some(&at), None).await.unwrap();
    assert_eq!(token.subject, Some(alice()));
    assert!(token.require(&["photos.read"]).is_ok());
    assert_eq!(token.require(&["photos.write"]).unwrap_err().status(), 403);
}

#[tokio::test]
async fn deny_redirects_access_denied() {
    let f = fixture();
    let loc = authorize(&f, "shop", "", Decision::Deny).await;
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some("https://as.example")
    );
    assert_eq!(query_param(&loc, "code"), None);
}

#[tokio::test]
async fn pending_handles_are_single_use_and_expire() {
    let f = fixture();
    let AuthorizeOutcome::Login(p) = f.server.authorize(&auth_query("shop", ""), None).await else {
        panic!()
    };
    assert!(f.server.pending(&p.handle).await.unwrap().is_some());
    assert!(matches!(
        f.server.decide(&p.handle, &alice(), Decision::Allow).await,
        AuthorizeOutcome::Redirect(_)
    ));
    assert!(matches!(
        f.server.decide(&p.handle, &alice(), Decision::Allow).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
    let AuthorizeOutcome::Login(p) = f.server.authorize(&auth_query("shop", ""), None).await else {
        panic!()
    };
    f.clock.advance(Duration::minutes(11));
    assert!(f.server.pending(&p.handle).await.unwrap().is_none());
    assert!(matches!(
        f.server.resume(&p.handle, &alice()).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
    assert!(matches!(
        f.server.decide("garbage", &alice(), Decision::Allow).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
}

#[tokio::test]
async fn consent_policy_may_skip_the_page() {
    let f = fixture_with(|b| b.consent(SkipForFirstParty));
    let q = auth_query(
        "cli",
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2Fcallback",
    );
    match f.server.authorize(&q, Some(&alice())).await {
        AuthorizeOutcome::Redirect(r) => assert!(
            r.location()
                .starts_with("http://127.0.0.1:4711/callback?code=")
        ),
        other => panic!("{other:?}"),
    }
    // Not first-party: still asked.
    assert!(matches!(
        f.server
            .authorize(&auth_query("shop", ""), Some(&alice()))
            .await,
        AuthorizeOutcome::Consent(_)
    ));
}

/// Remembers allowed (client, owner) pairs, and every decision it is told.
#[derive(Default)]
struct Remember {
    allowed: std::sync::Mutex<Vec<(String, String)>>,
    told: std::sync::Mutex<Vec<Decision>>,
}

#[async_trait::async_trait]
impl tessera::ConsentPolicy for Remember {
    async fn requirement(
        &self,
        client: &Client,
        owner: &Subject,
        _: &Scope,
    ) -> Result<tessera::ConsentRequirement, tessera::StoreError> {
        let key = (client.id.to_string(), owner.as_str().to_owned());
        Ok(if self.allowed.lock().unwrap().contains(&key) {
            tessera::ConsentRequirement::Granted
        } else {
            tessera::ConsentRequirement::Prompt
        })
    }

    async fn record(
        &self,
        client: &Client,
        owner: &Subject,
        _: &Scope,
        decision: Decision,
    ) -> Result<(), tessera::StoreError> {
        self.told.lock().unwrap().push(decision);
        if decision == Decision::Allow {
            let key = (client.id.to_string(), owner.as_str().to_owned());
            self.allowed.lock().unwrap().push(key);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_recording_consent_policy_is_told_each_decision() {
    let policy = Arc::new(Remember::default());
    struct Shared(Arc<Remember>);
    #[async_trait::async_trait]
    impl tessera::ConsentPolicy for Shared {
        async fn requirement(
            &self,
            c: &Client,
            o: &Subject,
            s: &Scope,
        ) -> Result<tessera::ConsentRequirement, tessera::StoreError> {
            self.0.requirement(c, o, s).await
        }
        async fn record(
            &self,
            c: &Client,
            o: &Subject,
            s: &Scope,
            d: Decision,
        ) -> Result<(), tessera::StoreError> {
            self.0.record(c, o, s, d).await
        }
    }
    let f = fixture_with(|b| b.consent(Shared(policy.clone())));
    // Denied first: told, nothing remembered, asked again.
    let denied = authorize(&f, "shop", "", Decision::Deny).await;
    assert_eq!(
        query_param(&denied, "error").as_deref(),
        Some("access_denied")
    );
    let location = authorize(&f, "shop", "", Decision::Allow).await;
    assert!(query_param(&location, "code").is_some());
    assert_eq!(
        *policy.told.lock().unwrap(),
        [Decision::Deny, Decision::Allow]
    );
    // Remembered: the next request skips the page.
    match f
        .server
        .authorize(&auth_query("shop", ""), Some(&alice()))
        .await
    {
        AuthorizeOutcome::Redirect(r) => assert!(query_param(r.location(), "code").is_some()),
        other => panic!("{other:?}"),
    }
    // The built-in policies keep nothing, so the server need not call them.
    assert!(!tessera::ConsentPolicy::records_decisions(
        &SkipForFirstParty
    ));
    assert!(tessera::ConsentPolicy::records_decisions(&Shared(policy)));
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    f.clock.advance(Duration::seconds(61));
    let (status, body) = redeem(&f, &code).await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn code_replay_revokes_tokens_rfc6749_4_1_2() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (_, first) = redeem(&f, &code).await;
    let (status, body) = redeem(&f, &code).await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
    let at = format!("Bearer {}", first["access_token"].as_str().unwrap());
    let e = f.server.verify_bearer(Some(&at), None).await.unwrap_err();
    assert_eq!(e, tessera::BearerError::Invalid);
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&basic("shop", SHOP_SECRET)),
    )
    .await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_family_rfc9700_4_14() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (_, first) = redeem(&f, &code).await;
    let auth = basic("shop", SHOP_SECRET);
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt1}&scope=photos.read"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["scope"], "photos.read");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // The narrowed refresh keeps the original scope for the next refresh.
    let (status, third) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt2}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(third["scope"], "photos.read profile");
    // Reuse of rt1: the whole family dies.
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt1}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
    let rt3 = third["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt3}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 400);
    let at3 = format!("Bearer {}", third["access_token"].as_str().unwrap());
    assert!(f.server.verify_bearer(Some(&at3), None).await.is_err());
}

#[tokio::test]
async fn refresh_errors() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (_, first) = redeem(&f, &code).await;
    let auth = basic("shop", SHOP_SECRET);
    let rt = first["refresh_token"].as_str().unwrap();
    let cases = [
        ("grant_type=refresh_token".to_owned(), "invalid_request"),
        (
            "grant_type=refresh_token&refresh_token=tsr_nope".to_owned(),
            "invalid_grant",
        ),
        (
            format!("grant_type=refresh_token&refresh_token={rt}&scope=photos.write"),
            "invalid_scope",
        ),
    ];
    for (body, code) in cases {
        let (status, v) = token(&f, &body, Some(&auth)).await;
        assert_eq!((status, err(&v)), (400, code), "{body}");
    }
    // Still usable after those failures.
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200);
    // Expired refresh token.
    f.clock.advance(Duration::days(31));
    let (status, v) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
}

#[tokio::test]
async fn token_endpoint_errors_rfc6749_5_2() {
    let f = fixture();
    let shop = basic("shop", SHOP_SECRET);
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("", Some(shop.clone()), 400, "invalid_request"),
        (
            "grant_type=password&username=a&password=b",
            Some(shop.clone()),
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=client_credentials",
            Some(shop.clone()),
            400,
            "unauthorized_client",
        ),
        (
            "grant_type=client_credentials",
            Some(basic("shop", "wrong")),
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials",
            Some(basic("nobody", "x")),
            401,
            "invalid_client",
        ),
        ("grant_type=client_credentials", None, 401, "invalid_client"),
        (
            "grant_type=client_credentials&client_id=shop",
            None,
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&client_secret=x",
            None,
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            Some(shop.clone()),
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&client_id=shop&client_secret=shop-secret",
            Some(shop.clone()),
            400,
            "invalid_request",
        ),
        (
            "grant_type=authorization_code",
            Some(shop.clone()),
            400,
            "invalid_request",
        ),
        (
            "grant_type=authorization_code&code=tsc_bogus",
            Some(shop.clone()),
            400,
            "invalid_grant",
        ),
        (
            "grant_type=client_credentials&scope=photos.write",
            Some(basic("job", "job-secret")),
            400,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials&client_id=cli",
            None,
            400,
            "unauthorized_client",
        ),
    ];
    for (body, auth, status, code) in cases {
        let r = f
            .server
            .handle(
                tessera::Endpoint::Token,
                &HttpRequest::form_post(body, auth.as_deref()),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((r.status, err(&v)), (status, code), "{body}");
        // Every 401 names a scheme (RFC 9110 §15.5.2), also when the client
        // sent no Authorization header (RFC 6749 §5.2 requires it only then).
        if code == "invalid_client" {
            assert_eq!(
                r.header("www-authenticate"),
                Some("Basic realm=\"tessera\""),
                "{body}"
            );
        } else {
            assert_eq!(r.header("www-authenticate"), None, "{body}");
        }
    }
    // Wrong method and content type.
    let mut get = HttpRequest::form_post("grant_type=client_credentials", Some(&shop));
    get.method = "GET";
    let r = f.server.handle(tessera::Endpoint::Token, &get).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let mut json = HttpRequest::form_post("{}", Some(&shop));
    json.content_type = Some("application/json");
    assert_eq!(
        f.server
            .handle(tessera::Endpoint::Token, &json)
            .await
            .status,
        400
    );
    let mut query = HttpRequest::form_post("grant_type=client_credentials", Some(&shop));
    query.query = Some("client_secret=x");
    assert_eq!(
        f.server
            .handle(tessera::Endpoint::Token, &query)
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn code_bound_to_client_redirect_and_verifier() {
    let f = fixture();
    let auth = basic("shop", SHOP_SECRET);
    // A code redeemed by another client.
    let code = code_for_shop(&f).await;
    let body =
        format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&client_id=cli");
    let (status, v) = token(&f, &body, None).await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
    // Missing verifier.
    let code = code_for_shop(&f).await;
    let (status, v) = token(
        &f,
        &format!("grant_type=authorization_code&code={code}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
    // Wrong verifier.
    let code = code_for_shop(&f).await;
    let wrong = "x".repeat(43);
    let (status, v) = token(
        &f,
        &format!("grant_type=authorization_code&code={code}&code_verifier={wrong}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
    // redirect_uri sent in the authorization request must be repeated.
    let loc = authorize(
        &f,
        "shop",
        "&redirect_uri=https%3A%2F%2Fshop.example%2Fcb",
        Decision::Allow,
    )
    .await;
    let code = query_param(&loc, "code").unwrap();
    let (status, v) = token(
        &f,
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
}

#[tokio::test]
async fn client_credentials_basic_and_post() {
    let f = fixture();
    let (status, v) = token(
        &f,
        "grant_type=client_credentials",
        Some(&basic("job", "job-secret")),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("refresh_token").is_none());
    // The job is registered for basic only: post is refused.
    let (status, v) = token(
        &f,
        "grant_type=client_credentials&client_id=job&client_secret=job-secret",
        None,
    )
    .await;
    assert_eq!((status, err(&v)), (401, "invalid_client"));
    let at = format!(
        "Bearer {}",
        v.get("access_token")
            .and_then(|t| t.as_str())
            .unwrap_or("tsa_x")
    );
    assert!(f.server.verify_bearer(Some(&at), None).await.is_err());
}

#[tokio::test]
async fn revocation_rfc7009() {
    let f = fixture();
    let auth = basic("shop", SHOP_SECRET);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let bearer = format!("Bearer {at}");
    // Another client cannot revoke it; the answer is the same 200.
    let r = f
        .server
        .handle(
            tessera::Endpoint::Revocation,
            &HttpRequest::form_post(&format!("token={at}"), Some(&basic("job", "job-secret"))),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(f.server.verify_bearer(Some(&bearer), None).await.is_ok());
    // Unknown tokens: 200.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post("token=whatever", Some(&auth))
            )
            .await
            .status,
        200
    );
    // Missing token: invalid_request. Bad auth: 401.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post("", Some(&auth))
            )
            .await
            .status,
        400
    );
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post(&format!("token={at}"), Some(&basic("shop", "no")))
            )
            .await
            .status,
        401
    );
    // Own access token.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post(&format!("token={at}"), Some(&auth))
            )
            .await
            .status,
        200
    );
    assert!(f.server.verify_bearer(Some(&bearer), None).await.is_err());
    // Own refresh token: the grant dies.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post(
                    &format!("token={rt}&token_type_hint=refresh_token"),
                    Some(&auth)
                )
            )
            .await
            .status,
        200
    );
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn introspection_rfc7662() {
    let f = fixture();
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let (_, job) = token(
        &f,
        "grant_type=client_credentials",
        Some(&basic("job", "job-secret")),
    )
    .await;
    let job_at = job["access_token"].as_str().unwrap();
    let introspect = |body: String, auth: Option<String>| {
        let f = &f;
        async move {
            let r = f
                .server
                .handle(
                    tessera::Endpoint::Introspection,
                    &HttpRequest::form_post(&body, auth.as_deref()),
                )
                .await;
            (
                r.status,
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
            )
        }
    };
    let (status, v) = introspect(format!("token={at}"), Some(basic("api", "api-secret"))).await;
    assert_eq!(status, 200);
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "shop");
    assert_eq!(v["username"], "alice");
    assert_eq!(v["scope"], "photos.read profile");
    assert_eq!(v["iss"], "https://as.example");
    assert_eq!(v["token_type"], "Bearer");
    // A refresh token is active but has no `token_type`: RFC 7662 §2.2 takes
    // it from RFC 6749 §5.1, which types access tokens only.
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, v) = introspect(format!("token={rt}"), Some(basic("api", "api-secret"))).await;
    assert_eq!(
        (v["active"].clone(), v.get("token_type")),
        (true.into(), None)
    );
    // Own token: visible. Another client's: inactive.
    assert_eq!(
        introspect(format!("token={at}"), Some(basic("shop", SHOP_SECRET)))
            .await
            .1["active"],
        true
    );
    let (_, v) = introspect(format!("token={job_at}"), Some(basic("shop", SHOP_SECRET))).await;
    assert_eq!(v, serde_json::json!({"active": false}));
    // Unauthenticated, and public clients.
    assert_eq!(introspect(format!("token={at}"), None).await.0, 401);
    assert_eq!(
        introspect(format!("token={at}&client_id=cli"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        introspect(String::new(), Some(basic("api", "api-secret")))
            .await
            .0,
        400
    );
    // Expired.
    f.clock.advance(Duration::hours(2));
    assert_eq!(
        introspect(format!("token={at}"), Some(basic("api", "api-secret")))
            .await
            .1["active"],
        false
    );
}

#[tokio::test]
async fn bearer_errors_rfc6750_3() {
    let f = fixture();
    let none = f.server.verify_bearer(None, None).await.unwrap_err();
    assert_eq!(
        (none.status(), none.challenge("r")),
        (401, "Bearer realm=\"r\"".to_owned())
    );
    let bad = f
        .server
        .verify_bearer(Some("Bearer tsa_nope"), None)
        .await
        .unwrap_err();
    assert_eq!(bad.status(), 401);
    assert!(bad.challenge("r").contains("invalid_token"));
    let query = f
        .server
        .verify_bearer(None, Some("access_token=tsa_x"))
        .await
        .unwrap_err();
    assert_eq!(query.status(), 400);
    let malformed = f
        .server
        .verify_bearer(Some("Bearer a b"), None)
        .await
        .unwrap_err();
    assert_eq!(malformed.status(), 400);
}

#[tokio::test]
async fn metadata_rfc8414() {
    let f = fixture();
    let m = f.server.metadata();
    assert_eq!(m.issuer, "https://as.example");
    assert_eq!(m.token_endpoint, "https://as.example/token");
    assert_eq!(m.code_challenge_methods_supported, vec!["S256"]);
    assert!(m.authorization_response_iss_parameter_supported);
    let v: serde_json::Value = serde_json::from_slice(
        &f.server
            .handle(
                tessera::Endpoint::Metadata,
                &tessera::HttpRequest::new("GET"),
            )
            .await
            .body,
    )
    .unwrap();
    assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        v["scopes_supported"],
        serde_json::json!(["photos.read", "profile"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_redemptions_yield_one_token() {
    let f = Arc::new(fixture());
    let code = code_for_shop(&f).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let f = Arc::clone(&f);
        let code = code.clone();
        tasks.push(tokio::spawn(async move { redeem(&f, &code).await.0 }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_refreshes_rotate_once_and_revoke_the_family() {
    let f = Arc::new(fixture());
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let f = Arc::clone(&f);
        let body = format!("grant_type=refresh_token&refresh_token={rt}");
        tasks.push(tokio::spawn(async move {
            token(&f, &body, Some(&basic("shop", SHOP_SECRET))).await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        if status == 200 {
            winners.push(v);
        }
    }
    assert_eq!(winners.len(), 1);
    let newest = winners[0]["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={newest}"),
        Some(&basic("shop", SHOP_SECRET)),
    )
    .await;
    assert_eq!(
        status, 400,
        "the family must be revoked after concurrent reuse"
    );
}

/// A store on which a replay revokes the grant between the winner's take of
/// the code and the storing of its tokens: the narrowest race there is.
struct ReplayBetweenTakeAndIssue(MemoryStore);

#[async_trait::async_trait]
impl tessera::ClientRegistry for ReplayBetweenTakeAndIssue {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, tessera::StoreError> {
        self.0.client(id).await
    }
}

#[async_trait::async_trait]
impl tessera::storage::PendingStore for ReplayBetweenTakeAndIssue {
    async fn put_pending(
        &self,
        h: tessera::SecretKey,
        r: tessera::storage::PendingAuthorization,
    ) -> Result<(), tessera::StoreError> {
        self.0.put_pending(h, r).await
    }
    async fn get_pending(
        &self,
        h: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::PendingAuthorization>, tessera::StoreError> {
        self.0.get_pending(h, now).await
    }
    async fn take_pending(
        &self,
        h: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::PendingAuthorization>, tessera::StoreError> {
        self.0.take_pending(h, now).await
    }
}

#[async_trait::async_trait]
impl tessera::storage::GrantStore for ReplayBetweenTakeAndIssue {
    async fn put_code(
        &self,
        c: tessera::SecretKey,
        r: tessera::storage::CodeRecord,
    ) -> Result<(), tessera::StoreError> {
        self.0.put_code(c, r).await
    }
    async fn take_code(
        &self,
        c: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<tessera::storage::CodeTake, tessera::StoreError> {
        let taken = self.0.take_code(c, now).await?;
        // The replay: it finds the code taken and revokes the grant.
        assert_eq!(
            self.0.take_code(c, now).await?,
            tessera::storage::CodeTake::AlreadyTaken
        );
        self.0.revoke_grant(c.grant).await?;
        Ok(taken)
    }
    async fn issue(
        &self,
        g: tessera::GrantId,
        t: tessera::storage::NewTokens,
    ) -> Result<bool, tessera::StoreError> {
        self.0.issue(g, t).await
    }
    async fn access_token(
        &self,
        t: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::TokenRecord>, tessera::StoreError> {
        self.0.access_token(t, now).await
    }
    async fn refresh_token(
        &self,
        t: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<tessera::storage::RefreshLookup, tessera::StoreError> {
        self.0.refresh_token(t, now).await
    }
    async fn rotate_refresh(
        &self,
        o: tessera::SecretKey,
        t: tessera::storage::NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, tessera::StoreError> {
        self.0.rotate_refresh(o, t, now).await
    }
    async fn revoke_access_token(&self, t: tessera::SecretKey) -> Result<(), tessera::StoreError> {
        self.0.revoke_access_token(t).await
    }
    async fn revoke_grant(&self, g: tessera::GrantId) -> Result<(), tessera::StoreError> {
        self.0.revoke_grant(g).await
    }
}

/// RFC 6749 §4.1.2 denies the *second* use: the first still gets its answer
/// (tokens already revoked by the replay), so a race always has one winner.
#[tokio::test]
async fn replay_between_take_and_issue_still_answers_the_first_use() {
    let shop = Client::confidential(
        ClientId::new("shop").unwrap(),
        "Print Shop",
        SecretHash::of(SHOP_SECRET),
    )
    .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
    .with_grant_types(["authorization_code", "refresh_token"])
    .with_scope(Scope::parse("photos.read").unwrap());
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(ReplayBetweenTakeAndIssue(
            MemoryStore::with_clients([shop]),
        )))
        .build()
        .unwrap();
    let AuthorizeOutcome::Consent(p) = server
        .authorize(&auth_query("shop", ""), Some(&alice()))
        .await
    else {
        panic!()
    };
    let AuthorizeOutcome::Redirect(r) = server.decide(&p.handle, &alice(), Decision::Allow).await
    else {
        panic!()
    };
    let code = query_param(r.location(), "code").unwrap();
    let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    let response = server
        .handle(
            tessera::Endpoint::Token,
            &HttpRequest::form_post(&body, Some(&basic("shop", SHOP_SECRET))),
        )
        .await;
    assert_eq!(response.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let at = format!("Bearer {}", v["access_token"].as_str().unwrap());
    assert!(
        server.verify_bearer(Some(&at), None).await.is_err(),
        "the replay's revocation holds"
    );
}
