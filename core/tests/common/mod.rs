//! The shared fixture of the service-layer tests: a server with four
//! clients, a fixed clock and the in-memory store, and helpers that run the
//! protocol through `Server`, no HTTP.
#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine;
use tessera::CodeChallenge;
use tessera::SecretHash;
use tessera::{
    AuthorizeOutcome, Client, ClientId, Decision, FixedClock, HttpRequest, RedirectUri, Scope,
    ScopeToken, Server, Subject,
};
use tessera_memory::MemoryStore;
use time::OffsetDateTime;

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const SHOP_SECRET: &str = "shop-secret";

pub struct Fixture {
    pub server: Server,
    pub clock: Arc<FixedClock>,
}

pub fn fixture() -> Fixture {
    fixture_with(|b| b)
}

pub fn fixture_with(f: impl FnOnce(tessera::ServerBuilder) -> tessera::ServerBuilder) -> Fixture {
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

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub fn alice() -> Subject {
    Subject::new("alice")
}

pub fn auth_query(client: &str, extra: &str) -> String {
    let challenge = CodeChallenge::s256(VERIFIER);
    format!(
        "response_type=code&client_id={client}&state=xyz&code_challenge={}&code_challenge_method=S256{extra}",
        challenge
    )
}

pub fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs login + consent and returns the redirect location. The login page's
/// handle (the sealed request) and the consent page's (the stored request)
/// differ.
pub async fn authorize(f: &Fixture, client: &str, extra: &str, decision: Decision) -> String {
    let login = match f.server.authorize(&auth_query(client, extra), None).await {
        AuthorizeOutcome::Login(p) => p.handle,
        other => panic!("expected login, got {other:?}"),
    };
    let handle = match f.server.resume(&login, &alice()).await {
        AuthorizeOutcome::Consent(p) => {
            assert_ne!(p.handle, login);
            assert_eq!(p.client.name, "Print Shop");
            p.handle
        }
        other => panic!("expected consent, got {other:?}"),
    };
    match f.server.decide(&handle, &alice(), decision).await {
        AuthorizeOutcome::Redirect(r) => r.location().to_owned(),
        other => panic!("expected redirect, got {other:?}"),
    }
}

pub async fn token(f: &Fixture, body: &str, auth: Option<&str>) -> (u16, serde_json::Value) {
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

pub async fn code_for_shop(f: &Fixture) -> String {
    let loc = authorize(f, "shop", "", Decision::Allow).await;
    query_param(&loc, "code").unwrap()
}

pub async fn redeem(f: &Fixture, code: &str) -> (u16, serde_json::Value) {
    let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    token(f, &body, Some(&basic("shop", SHOP_SECRET))).await
}

pub fn err(v: &serde_json::Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

/// RFC 6749 §3.2 at a back-channel endpoint that reads `token` (revocation,
/// introspection): a parameter it does not read is ignored, also when sent
/// twice or malformed (`token_type_hint` among them); `token` and the
/// client's credentials are `invalid_request` twice.
pub async fn unread_parameters_are_ignored_at(endpoint: tessera::Endpoint) {
    let f = fixture();
    let auth = basic("api", "api-secret");
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let post = |body: String, auth: Option<String>| {
        let f = &f;
        async move {
            let r = f
                .server
                .handle(endpoint, &HttpRequest::form_post(&body, auth.as_deref()))
                .await;
            (r.status, r.body)
        }
    };
    for extra in [
        "&foo=1&foo=2",
        "&foo=%FF",
        "&token_type_hint=a&token_type_hint=b",
    ] {
        let (status, body) = post(format!("token={at}{extra}"), Some(auth.clone())).await;
        assert_eq!(status, 200, "{extra}: {}", String::from_utf8_lossy(&body));
    }
    for (body, auth) in [
        (format!("token={at}&token={at}"), Some(auth.clone())),
        (format!("token={at}&token=%FF"), Some(auth.clone())),
        (
            format!("token={at}&client_id=api&client_id=api"),
            Some(auth.clone()),
        ),
        (
            format!("token={at}&client_id=api&client_secret=api-secret&client_secret=x"),
            None,
        ),
    ] {
        let (status, answer) = post(body.clone(), auth).await;
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
}
