//! Pushed authorization requests (RFC 9126) through the core's endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use tessera::{
    AuthorizeOutcome, Client, ClientId, CodeChallenge, Decision, Endpoint, FixedClock, HttpRequest,
    RedirectUri, Scope, SecretHash, Server, ServerBuilder, Subject,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Fixture {
    server: Server,
    clock: Arc<FixedClock>,
}

fn fixture_with(f: impl FnOnce(ServerBuilder) -> ServerBuilder, strict: bool) -> Fixture {
    let shop = |id: &str| {
        Client::confidential(
            ClientId::new(id).unwrap(),
            "Print Shop",
            SecretHash::of("s"),
        )
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code"])
        .with_scope(Scope::parse("photos.read").unwrap())
    };
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let builder = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::with_clients([
            shop("shop"),
            shop("other"),
            shop("strict").with_require_pushed_authorization_requests(strict),
            // A native app: anybody can push in its name.
            Client::public(ClientId::new("app").unwrap(), "Photo app")
                .with_redirect_uri(RedirectUri::new("https://app.example/cb").unwrap())
                .with_grant_types(["authorization_code"])
                .with_scope(Scope::parse("photos.read").unwrap()),
        ])))
        .clock(clock.clone());
    Fixture {
        server: f(builder).build().unwrap(),
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(|b| b, true)
}

fn basic(id: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:s"))
    )
}

fn request(client: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client}&state=xyz&code_challenge={}&code_challenge_method=S256{extra}",
        CodeChallenge::s256(VERIFIER)
    )
}

async fn push(f: &Fixture, auth: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(body, auth),
        )
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

async fn pushed_uri(f: &Fixture, client: &str) -> String {
    let (status, body) = push(f, Some(&basic(client)), &request(client, "")).await;
    assert_eq!(status, 201, "{body}");
    body["request_uri"].as_str().unwrap().to_owned()
}

fn by_reference(client: &str, request_uri: &str) -> String {
    format!(
        "client_id={client}&request_uri={}",
        url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn a_pushed_request_runs_the_whole_flow_rfc9126_2_and_4() {
    let f = fixture();
    let (status, body) = push(&f, Some(&basic("shop")), &request("shop", "")).await;
    assert_eq!(status, 201);
    let uri = body["request_uri"].as_str().unwrap();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:tsu_"));
    assert_eq!(body["expires_in"], 60);
    // The browser carries only client_id and request_uri.
    let AuthorizeOutcome::Login(prompt) =
        f.server.authorize(&by_reference("shop", uri), None).await
    else {
        panic!("login expected")
    };
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = f.server.resume(&prompt.handle, &alice).await else {
        panic!("consent expected")
    };
    let AuthorizeOutcome::Redirect(r) = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await
    else {
        panic!("redirect expected")
    };
    let location = r.location();
    assert!(location.starts_with("https://shop.example/cb?code="));
    assert!(location.contains("state=xyz") && location.contains("iss="));
    let code = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let token = f
        .server
        .token_response(&HttpRequest::form_post(
            &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
            Some(&basic("shop")),
        ))
        .await;
    assert!(token.is_ok(), "{token:?}");
    // The metadata advertises the endpoint (RFC 9126 §5).
    let m = f.server.metadata();
    assert_eq!(
        m.pushed_authorization_request_endpoint.as_deref(),
        Some("https://as.example/par")
    );
    assert!(!m.require_pushed_authorization_requests);
}

#[tokio::test]
async fn request_uris_are_single_use_bound_and_short_lived_rfc9126_4() {
    let f = fixture();
    let error_page = |o: AuthorizeOutcome| matches!(o, AuthorizeOutcome::ErrorPage(_));
    // Single use.
    let uri = pushed_uri(&f, "shop").await;
    assert!(!error_page(
        f.server.authorize(&by_reference("shop", &uri), None).await
    ));
    assert!(error_page(
        f.server.authorize(&by_reference("shop", &uri), None).await
    ));
    // Bound to the client that pushed it.
    let uri = pushed_uri(&f, "shop").await;
    assert!(error_page(
        f.server.authorize(&by_reference("other", &uri), None).await
    ));
    // 60 s.
    let uri = pushed_uri(&f, "shop").await;
    f.clock.advance(Duration::seconds(60));
    assert!(error_page(
        f.server.authorize(&by_reference("shop", &uri), None).await
    ));
    // Not one of ours, or without client_id: never a redirect.
    assert!(error_page(
        f.server
            .authorize(
                &by_reference("shop", "urn:ietf:params:oauth:request_uri:x"),
                None
            )
            .await
    ));
    assert!(error_page(
        f.server
            .authorize(
                "request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax",
                None
            )
            .await
    ));
    // A value over 2 KiB beside it, unread or not (DEMO-CONTRACT "Limits
    // against floods"): an error page, and the request is not spent.
    let uri = pushed_uri(&f, "shop").await;
    let oversized = format!("{}&junk={}", by_reference("shop", &uri), "x".repeat(2049));
    assert!(matches!(
        f.server.authorize(&oversized, None).await,
        AuthorizeOutcome::ErrorPage(e) if e.code == tessera::ErrorCode::InvalidRequest
    ));
    assert!(!error_page(
        f.server.authorize(&by_reference("shop", &uri), None).await
    ));
}

#[tokio::test]
async fn push_errors_are_json_rfc9126_2_3() {
    let f = fixture();
    let error = |v: &serde_json::Value| v["error"].as_str().unwrap_or("").to_owned();
    // Client authentication is required.
    let (status, body) = push(&f, None, &request("shop", "")).await;
    assert_eq!((status, error(&body).as_str()), (401, "invalid_client"));
    let (status, body) = push(&f, Some(&basic("nobody")), &request("nobody", "")).await;
    assert_eq!((status, error(&body).as_str()), (401, "invalid_client"));
    // The same validation as the authorization endpoint, answered here.
    for (extra, code) in [
        (
            "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            "invalid_request",
        ),
        ("&scope=photos.write", "invalid_scope"),
        (
            "&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax",
            "invalid_request",
        ),
    ] {
        let (status, body) = push(&f, Some(&basic("shop")), &request("shop", extra)).await;
        assert_eq!((status, error(&body).as_str()), (400, code), "{extra}");
    }
    let no_pkce = "response_type=code&client_id=shop&state=x";
    let (status, body) = push(&f, Some(&basic("shop")), no_pkce).await;
    assert_eq!((status, error(&body).as_str()), (400, "invalid_request"));
    let (status, body) = push(
        &f,
        Some(&basic("shop")),
        &request("shop", "").replace("response_type=code", "response_type=token"),
    )
    .await;
    assert_eq!(
        (status, error(&body).as_str()),
        (400, "unsupported_response_type")
    );
    // client_id must be the authenticated client's.
    let (status, body) = push(&f, Some(&basic("shop")), &request("other", "")).await;
    assert_eq!(status / 100, 4, "{body}");
    let r = f
        .server
        .handle(Endpoint::PushedAuthorization, &HttpRequest::new("GET"))
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
}

#[tokio::test]
async fn clients_may_be_required_to_push_rfc9126_6() {
    let f = fixture();
    // A plain request of a client that must push: refused at its redirect URI.
    let AuthorizeOutcome::Redirect(r) = f.server.authorize(&request("strict", ""), None).await
    else {
        panic!("redirect expected")
    };
    assert!(r.location().contains("error=invalid_request"));
    // Pushed, it goes through.
    let uri = pushed_uri(&f, "strict").await;
    assert!(matches!(
        f.server
            .authorize(&by_reference("strict", &uri), None)
            .await,
        AuthorizeOutcome::Login(_)
    ));
    // Server-wide (RFC 9126 §5), advertised in the metadata.
    let f = fixture_with(|b| b.require_pushed_authorization_requests(), false);
    assert!(f.server.metadata().require_pushed_authorization_requests);
    assert!(matches!(
        f.server.authorize(&request("shop", ""), None).await,
        AuthorizeOutcome::Redirect(_)
    ));
    let uri = pushed_uri(&f, "shop").await;
    assert!(matches!(
        f.server.authorize(&by_reference("shop", &uri), None).await,
        AuthorizeOutcome::Login(_)
    ));
}

// ---------------------------------------------------------------------------
// DPoP at the pushed authorization request endpoint (RFC 9449 §10.1)
// ---------------------------------------------------------------------------

mod dpop_client;

use dpop_client::DpopKey;

const PAR_URL: &str = "https://as.example/par";
const TOKEN_URL: &str = "https://as.example/token";

/// A push by `shop` with `extra` parameters and a `DPoP` header.
async fn push_with_proof(
    f: &Fixture,
    extra: &str,
    proof: Option<&str>,
) -> (tessera::HttpResponse, serde_json::Value) {
    let body = request("shop", extra);
    let auth = basic("shop");
    let r = f
        .server
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(&body, Some(&auth)).with_dpop(proof),
        )
        .await;
    let v = serde_json::from_slice(&r.body).unwrap();
    (r, v)
}

/// The code alice's consent gives for the pushed `request_uri`.
async fn code_for(f: &Fixture, request_uri: &str) -> String {
    let AuthorizeOutcome::Login(prompt) = f
        .server
        .authorize(&by_reference("shop", request_uri), None)
        .await
    else {
        panic!("login expected")
    };
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = f.server.resume(&prompt.handle, &alice).await else {
        panic!("consent expected")
    };
    let AuthorizeOutcome::Redirect(r) = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await
    else {
        panic!("redirect expected")
    };
    url::form_urlencoded::parse(r.location().split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// Redeems `code` as `shop` with an optional DPoP proof: status and body.
async fn redeem(f: &Fixture, code: &str, proof: Option<&str>) -> (u16, serde_json::Value) {
    let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    let auth = basic("shop");
    let r = f
        .server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post(&body, Some(&auth)).with_dpop(proof),
        )
        .await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

fn error_of(v: &serde_json::Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_dpop_proof_at_par_binds_the_code_to_its_key_rfc9449_10_1() {
    let f = fixture();
    let key = DpopKey::es256();
    let (r, v) = push_with_proof(&f, "", Some(&key.proof("POST", PAR_URL, None))).await;
    assert_eq!(r.status, 201, "{v}");
    let uri = v["request_uri"].as_str().unwrap().to_owned();
    let code = code_for(&f, &uri).await;
    // §10: a code bound to a key is redeemed only with a proof by that key:
    // without one, invalid_grant; by another key, invalid_dpop_proof.
    let (status, v) = redeem(&f, &code, None).await;
    assert_eq!((status, error_of(&v)), (400, "invalid_grant"), "{v}");
    let uri = push_with_proof(&f, "", Some(&key.proof("POST", PAR_URL, None)))
        .await
        .1["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = code_for(&f, &uri).await;
    let other = DpopKey::ed25519();
    let (status, v) = redeem(&f, &code, Some(&other.proof("POST", TOKEN_URL, None))).await;
    assert_eq!((status, error_of(&v)), (400, "invalid_dpop_proof"), "{v}");
    let uri = push_with_proof(&f, "", Some(&key.proof("POST", PAR_URL, None)))
        .await
        .1["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = code_for(&f, &uri).await;
    let (status, v) = redeem(&f, &code, Some(&key.proof("POST", TOKEN_URL, None))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");

    // Without a DPoP header the pushed request binds nothing (unchanged).
    let uri = pushed_uri(&f, "shop").await;
    let code = code_for(&f, &uri).await;
    let (status, v) = redeem(&f, &code, None).await;
    assert_eq!((status, v["token_type"].as_str()), (200, Some("Bearer")));
}

#[tokio::test]
async fn dpop_jkt_and_a_proof_at_par_must_name_the_same_key_rfc9449_10_1() {
    let f = fixture();
    let key = DpopKey::es256();
    let other = DpopKey::es256();
    // Both, the same key: accepted, bound to it.
    let same = format!("&dpop_jkt={}", key.thumbprint());
    let (r, v) = push_with_proof(&f, &same, Some(&key.proof("POST", PAR_URL, None))).await;
    assert_eq!(r.status, 201, "{v}");
    let code = code_for(&f, v["request_uri"].as_str().unwrap()).await;
    let (status, v) = redeem(&f, &code, Some(&other.proof("POST", TOKEN_URL, None))).await;
    assert_eq!((status, error_of(&v)), (400, "invalid_dpop_proof"), "{v}");
    // §10.1: "MUST match": another key's thumbprint is invalid_dpop_proof.
    let proof = other.proof("POST", PAR_URL, None);
    let (r, v) = push_with_proof(&f, &same, Some(&proof)).await;
    assert_eq!((r.status, error_of(&v)), (400, "invalid_dpop_proof"), "{v}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The refused proof's jti was not used up: the same proof, alone, binds.
    let (r, v) = push_with_proof(&f, "", Some(&proof)).await;
    assert_eq!(r.status, 201, "{v}");
    let code = code_for(&f, v["request_uri"].as_str().unwrap()).await;
    let (status, v) = redeem(&f, &code, Some(&other.proof("POST", TOKEN_URL, None))).await;
    assert_eq!(
        (status, v["token_type"].as_str()),
        (200, Some("DPoP")),
        "{v}"
    );
    // A malformed dpop_jkt stays invalid_request (§10), proof or not.
    let (r, v) = push_with_proof(
        &f,
        "&dpop_jkt=short",
        Some(&key.proof("POST", PAR_URL, None)),
    )
    .await;
    assert_eq!((r.status, error_of(&v)), (400, "invalid_request"), "{v}");
}

#[tokio::test]
async fn bad_dpop_proofs_at_par_are_invalid_dpop_proof_rfc9449_4_3() {
    let f = fixture();
    let key = DpopKey::es256();
    let mut none_alg = key.header();
    none_alg["alg"] = serde_json::json!("none");
    let mut private = key.header();
    private["jwk"]["d"] = serde_json::json!("AAAA");
    let mut no_typ = key.header();
    no_typ["typ"] = serde_json::json!("JWT");
    let mut stale = key.claims("POST", PAR_URL, None);
    stale["iat"] = serde_json::json!(dpop_client::now_secs() - 3600);
    let mut no_jti = key.claims("POST", PAR_URL, None);
    no_jti.as_object_mut().unwrap().remove("jti");
    let two = format!(
        "{}, {}",
        key.proof("POST", PAR_URL, None),
        key.proof("POST", PAR_URL, None)
    );
    let cases = [
        // §4.3 item 8: htm is the request's method.
        ("htm GET", key.proof("GET", PAR_URL, None)),
        // §4.3 item 9: htu is this endpoint's URL (the token endpoint's is not).
        (
            "htu of the token endpoint",
            key.proof("POST", TOKEN_URL, None),
        ),
        (
            "htu of another host",
            key.proof("POST", "https://evil.example/par", None),
        ),
        ("not a JWS", "not-a-proof".to_owned()),
        (
            "typ JWT",
            key.sign(&no_typ, &key.claims("POST", PAR_URL, None)),
        ),
        (
            "alg none",
            key.sign(&none_alg, &key.claims("POST", PAR_URL, None)),
        ),
        (
            "a private jwk",
            key.sign(&private, &key.claims("POST", PAR_URL, None)),
        ),
        ("iat an hour ago", key.sign(&key.header(), &stale)),
        ("no jti", key.sign(&key.header(), &no_jti)),
        ("two proofs", two),
    ];
    for (what, proof) in cases {
        let (r, v) = push_with_proof(&f, "", Some(&proof)).await;
        assert_eq!(
            (r.status, error_of(&v)),
            (400, "invalid_dpop_proof"),
            "{what}: {v}"
        );
    }
    // §11.1: a proof's jti is used once: a second push with it is refused.
    let proof = key.proof("POST", PAR_URL, None);
    assert_eq!(push_with_proof(&f, "", Some(&proof)).await.0.status, 201);
    let (r, v) = push_with_proof(&f, "", Some(&proof)).await;
    assert_eq!(
        (r.status, error_of(&v)),
        (400, "invalid_dpop_proof"),
        "replay: {v}"
    );
    // Client authentication comes first: an unauthenticated push is
    // invalid_client whatever its proof.
    let r = f
        .server
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(&request("shop", ""), None)
                .with_dpop(Some(&key.proof("POST", PAR_URL, None))),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn par_asks_for_the_server_nonce_when_nonces_are_required_rfc9449_8() {
    let policy = tessera::DpopPolicy::new().with_nonces([9; 32], Duration::seconds(60));
    let f = fixture_with(|b| b.dpop(policy.clone()), true);
    let key = DpopKey::es256();
    let (r, v) = push_with_proof(&f, "", Some(&key.proof("POST", PAR_URL, None))).await;
    assert_eq!((r.status, error_of(&v)), (400, "use_dpop_nonce"), "{v}");
    let nonce = r
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_owned();
    let proof = key.proof_with_nonce("POST", PAR_URL, None, &nonce);
    let (r, v) = push_with_proof(&f, "", Some(&proof)).await;
    assert_eq!(r.status, 201, "{v}");
    // The clock moves far: the nonce is stale again.
    f.clock.advance(Duration::minutes(10));
    let proof = key.proof_with_nonce("POST", PAR_URL, None, &nonce);
    let (r, v) = push_with_proof(&f, "", Some(&proof)).await;
    assert_eq!((r.status, error_of(&v)), (400, "use_dpop_nonce"), "{v}");
}

#[tokio::test]
async fn a_full_replay_cache_at_par_is_503_not_a_silent_replay() {
    // RFC 9449 §11.1 with a bounded cache (one entry): a second proof
    // cannot be remembered, so it is refused (503 temporarily_unavailable,
    // retry later) rather than accepted unrecorded.
    let shop = Client::confidential(
        ClientId::new("shop").unwrap(),
        "Print Shop",
        SecretHash::of("s"),
    )
    .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
    .with_grant_types(["authorization_code"])
    .with_scope(Scope::parse("photos.read").unwrap());
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(
            MemoryStore::with_clients([shop]).with_replay_capacity(1),
        ))
        .clock(clock.clone())
        .build()
        .unwrap();
    let f = Fixture { server, clock };
    let key = DpopKey::es256();
    let (r, v) = push_with_proof(&f, "", Some(&key.proof("POST", PAR_URL, None))).await;
    assert_eq!(r.status, 201, "{v}");
    let (r, v) = push_with_proof(&f, "", Some(&key.proof("POST", PAR_URL, None))).await;
    assert_eq!(
        (r.status, error_of(&v)),
        (503, "temporarily_unavailable"),
        "{v}"
    );
    // Without a proof, pushing is unaffected.
    assert_eq!(push_with_proof(&f, "", None).await.0.status, 201);
}

/// RFC 9126 §2.3: a client over the number of pushed requests the server
/// allows gets `429 Too Many Requests`, with `Retry-After` (RFC 9110
/// §10.2.3); another client is not held up, and the client may push again
/// once the window has passed.
#[tokio::test]
async fn a_client_over_its_rate_gets_429_rfc9126_2_3() {
    use tessera::{Action, Limit, MemoryRateLimiter};
    let f = fixture_with(
        |b| {
            b.rate_limiter(MemoryRateLimiter::default().with_limit(
                Action::PushedAuthorization,
                Limit::new(2, Duration::minutes(1)),
            ))
        },
        true,
    );
    for _ in 0..2 {
        pushed_uri(&f, "shop").await;
    }
    let r = f
        .server
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(&request("shop", ""), Some(&basic("shop"))),
        )
        .await;
    assert_eq!(r.status, 429);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    pushed_uri(&f, "other").await;
    f.clock.advance(Duration::minutes(1));
    pushed_uri(&f, "shop").await;
}

/// Only a valid pushed request counts against the client's budget: a
/// flood of invalid ones (an independent audit spent a public client's
/// budget with requests lacking `code_challenge`) keeps nothing and spends
/// nothing.
#[tokio::test]
async fn invalid_pushed_requests_do_not_spend_the_clients_budget() {
    use tessera::{Action, Limit, MemoryRateLimiter};
    let f = fixture_with(
        |b| {
            b.rate_limiter(MemoryRateLimiter::default().with_limit(
                Action::PushedAuthorization,
                Limit::new(1, Duration::minutes(1)),
            ))
        },
        true,
    );
    for _ in 0..5 {
        let (status, body) = push(
            &f,
            Some(&basic("shop")),
            "response_type=code&client_id=shop&state=xyz",
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    pushed_uri(&f, "shop").await;
}

/// A public client's pushed requests (anybody can push in its name) count
/// against their network's share first: one host spends at most that of
/// the client's budget and is told `429` with `Retry-After` (RFC 9126
/// §2.3), while the app's users elsewhere still push (RFC 6819
/// §4.4.1.11). A confidential client, who authenticates, is not counted
/// per network; nor is an invalid request.
#[tokio::test]
async fn one_network_spends_only_its_share_of_a_public_clients_budget() {
    use tessera::{Action, Limit, MemoryRateLimiter};
    let f = fixture_with(
        |b| {
            b.rate_limiter(MemoryRateLimiter::default().with_network_limit(
                Action::PushedAuthorization,
                Limit::new(2, Duration::minutes(1)),
            ))
        },
        true,
    );
    let push_from =
        |client: &'static str, auth: Option<String>, extra: &'static str, peer: &'static str| {
            let server = f.server.clone();
            async move {
                let body = request(client, extra);
                let r = server
                    .handle(
                        Endpoint::PushedAuthorization,
                        &HttpRequest::form_post(&body, auth.as_deref())
                            .with_peer(Some(peer.parse().unwrap())),
                    )
                    .await;
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                (
                    r.status,
                    v["error"].as_str().unwrap_or_default().to_owned(),
                    r.header("retry-after").map(str::to_owned),
                )
            }
        };
    // Invalid: refused, and not counted.
    for _ in 0..3 {
        let (status, error, _) = push_from("app", None, "&scope=nope", "192.0.2.9").await;
        assert_eq!((status, error.as_str()), (400, "invalid_scope"));
    }
    for _ in 0..2 {
        assert_eq!(push_from("app", None, "", "192.0.2.9").await.0, 201);
    }
    let (status, error, retry) = push_from("app", None, "", "192.0.2.9").await;
    assert_eq!(
        (status, error.as_str(), retry.as_deref()),
        (429, "temporarily_unavailable", Some("60"))
    );
    // The app's users on another network push.
    assert_eq!(push_from("app", None, "", "192.0.2.10").await.0, 201);
    // A confidential client on the spent network is not counted by it.
    for _ in 0..3 {
        assert_eq!(
            push_from("shop", Some(basic("shop")), "", "192.0.2.9")
                .await
                .0,
            201
        );
    }
}

/// RFC 6749 §3.2 (RFC 9126 §2.1 takes the token endpoint's rules): a
/// parameter the authorization request does not use is ignored, also when
/// sent twice or malformed; one it uses is `invalid_request` twice.
#[tokio::test]
async fn unread_parameters_are_ignored_read_ones_refused_twice_rfc6749_3_2() {
    let f = fixture();
    let shop = basic("shop");
    for extra in [
        "&foo=1&foo=2",
        "&foo=%FF",
        "&token_type_hint=a&token_type_hint=b",
    ] {
        let (status, body) = push(&f, Some(&shop), &request("shop", extra)).await;
        assert_eq!(status, 201, "{extra}: {body}");
    }
    for extra in [
        "&scope=photos.read&scope=photos.read",
        "&state=a",
        "&scope=%FF",
        "&client_id=shop",
    ] {
        let (status, body) = push(&f, Some(&shop), &request("shop", extra)).await;
        assert_eq!(
            (status, error_of(&body)),
            (400, "invalid_request"),
            "{extra}"
        );
    }
}
