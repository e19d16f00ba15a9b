//! The authorization endpoint is the embedder's: a minimal one built with
//! the adapter's helpers (`AuthorizationQuery`, `respond`), then the whole
//! authorization-code dance over real HTTP, ending at a protected route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tessera::{
    AuthMethod, AuthorizeOutcome, Client, ClientId, CodeChallenge, Decision, RedirectUri, Scope,
    ScopeToken, SecretHash, Server, Subject,
};
use tessera_axum::{AuthorizationQuery, Bearer, BearerRejection, respond};
use tessera_memory::MemoryStore;
use tokio::net::TcpListener;

const SECRET: &str = "printshop-secret-0123456789abcdef0123456789abcdef";
const REDIRECT: &str = "http://127.0.0.1:9001/callback";
const ISSUER: &str = "http://127.0.0.1:9000";

#[derive(Clone, FromRef)]
struct AppState {
    oauth: Server,
}

/// The test's stand-in for a session: the user named in a header.
fn owner(headers: &HeaderMap) -> Option<Subject> {
    headers
        .get("x-test-user")
        .and_then(|v| v.to_str().ok())
        .map(Subject::new)
}

/// Pages are JSON here, so the test can read the handle.
fn page(kind: &str, handle: &str) -> Response {
    Json(json!({ "page": kind, "handle": handle })).into_response()
}

async fn authorize(
    State(server): State<Server>,
    headers: HeaderMap,
    AuthorizationQuery(query): AuthorizationQuery,
) -> Response {
    match server.authorize(&query, owner(&headers).as_ref()).await {
        AuthorizeOutcome::Redirect(redirect) => respond(redirect),
        AuthorizeOutcome::Login(prompt) => page("login", &prompt.handle),
        AuthorizeOutcome::Consent(prompt) => page("consent", &prompt.handle),
        AuthorizeOutcome::ErrorPage(error) => (
            StatusCode::BAD_REQUEST,
            format!("error page: {}", error.code),
        )
            .into_response(),
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ConsentForm {
    handle: String,
    decision: String,
}

async fn consent(
    State(server): State<Server>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let Some(owner) = owner(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let decision = if form.decision == "allow" {
        Decision::Allow
    } else {
        Decision::Deny
    };
    match server.decide(&form.handle, &owner, decision).await {
        AuthorizeOutcome::Redirect(redirect) => respond(redirect),
        _ => (StatusCode::BAD_REQUEST, "error page").into_response(),
    }
}

async fn photos(token: Bearer) -> Result<Json<Value>, BearerRejection> {
    token.require(&["photos.read"])?;
    Ok(Json(json!({ "owner": token.principal() })))
}

async fn start() -> String {
    let printshop = Client::confidential(
        ClientId::new("printshop").unwrap(),
        "PrintShop",
        SecretHash::of(SECRET),
    )
    .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
    .with_redirect_uri(RedirectUri::new(REDIRECT).unwrap())
    .with_grant_types(["authorization_code", "refresh_token"])
    .with_scope(Scope::parse("photos.read profile").unwrap());
    let server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([printshop])))
        .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
        .scope(ScopeToken::new("profile").unwrap(), "See your name")
        .build()
        .unwrap();
    let app = Router::new()
        .route(server.authorization_path(), get(authorize))
        .route("/consent", post(consent))
        .route("/api/photos", get(photos))
        .merge(tessera_axum::router(server.clone()))
        .with_state(AppState { oauth: server });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    serde_urlencoded::from_str(query).unwrap()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn authorization_code_dance_through_the_helpers() {
    let base = start().await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let verifier = "a-code-verifier-of-at-least-43-characters-0123456789";
    let challenge = CodeChallenge::s256(verifier);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "printshop"),
        ("redirect_uri", REDIRECT),
        ("scope", "photos.read"),
        ("state", "xyz 123"),
        ("code_challenge", challenge.to_string().as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();

    // Without a session: the login page, with a handle.
    let login: Value = http
        .get(format!("{base}/authorize?{query}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["page"], "login");

    // With a session: the consent page.
    let consent: Value = http
        .get(format!("{base}/authorize?{query}"))
        .header("x-test-user", "alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(consent["page"], "consent");
    let handle = consent["handle"].as_str().unwrap();

    // Allow: 303 to the client with code, state and iss.
    let allowed = http
        .post(format!("{base}/consent"))
        .header("x-test-user", "alice")
        .form(&[("handle", handle), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::SEE_OTHER);
    assert_eq!(allowed.headers().get("cache-control").unwrap(), "no-store");
    let location = allowed
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let pairs = query_of(&location);
    assert_eq!(param(&pairs, "state"), Some("xyz 123"));
    assert_eq!(param(&pairs, "iss"), Some(ISSUER));
    let code = param(&pairs, "code").unwrap().to_owned();

    // The code for tokens, with the verifier.
    let tokens = http
        .post(format!("{base}/token"))
        .basic_auth("printshop", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), StatusCode::OK);
    assert_eq!(tokens.headers().get("cache-control").unwrap(), "no-store");
    let tokens: Value = tokens.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].is_string());

    let photos = http
        .get(format!("{base}/api/photos"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(photos.status(), StatusCode::OK);
    let body: Value = photos.json().await.unwrap();
    assert_eq!(body["owner"], "alice");

    // A second redemption of the code: invalid_grant.
    let replay = http
        .post(format!("{base}/token"))
        .basic_auth("printshop", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn deny_and_unverified_redirects() {
    let base = start().await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let challenge = CodeChallenge::s256("another-code-verifier-of-at-least-43-characters-xyz");
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "printshop"),
        ("state", "s"),
        ("code_challenge", challenge.to_string().as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let consent: Value = http
        .get(format!("{base}/authorize?{query}"))
        .header("x-test-user", "bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let handle = consent["handle"].as_str().unwrap();
    let denied = http
        .post(format!("{base}/consent"))
        .header("x-test-user", "bob")
        .form(&[("handle", handle), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let location = denied.headers().get("location").unwrap().to_str().unwrap();
    let pairs = query_of(location);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(param(&pairs, "state"), Some("s"));
    assert_eq!(param(&pairs, "iss"), Some(ISSUER));

    // An unregistered redirect URI: the embedder's error page, no redirect.
    let bad = http
        .get(format!(
            "{base}/authorize?response_type=code&client_id=printshop&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.headers().get("location").is_none());
}
