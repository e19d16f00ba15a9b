//! The adapter over real HTTP: the router merged into an app with its own
//! state and resource routes, served on an ephemeral port with a
//! `MemoryStore`, driven with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::get;
use axum::{Extension, Json, Router};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::{AccessToken, AuthMethod, Client, ClientId, Scope, ScopeToken, SecretHash, Server};
use tessera_axum::{Bearer, BearerRejection, require_scope};
use tessera_memory::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BACKUP_SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";
const PROFILE_SECRET: &str = "profile-job-secret-0123456789abcdef0123456789";
const API_SECRET: &str = "photo-api-secret-0123456789abcdef0123456789abcd";
const REALM: &str = "photobook";

#[derive(Clone, FromRef)]
struct AppState {
    oauth: Server,
    greeting: Arc<str>,
}

fn client(id: &str, secret: &str) -> Client {
    Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of(secret))
}

fn server(issuer: &str) -> Server {
    server_with(issuer, tessera::CrossOrigin::default())
}

fn server_with(issuer: &str, cross_origin: tessera::CrossOrigin) -> Server {
    let store = MemoryStore::with_clients([
        client("backup-job", BACKUP_SECRET)
            .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
            .with_grant_types(["client_credentials"])
            .with_scope(Scope::parse("photos.read").unwrap()),
        client("profile-job", PROFILE_SECRET)
            .with_grant_types(["client_credentials"])
            .with_scope(Scope::parse("profile").unwrap()),
        client("photo-api", API_SECRET).with_introspect_any_token(true),
    ]);
    Server::builder()
        .issuer(issuer)
        .store(Arc::new(store))
        .realm(REALM)
        .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
        .scope(ScopeToken::new("photos.write").unwrap(), "Add photos")
        .scope(ScopeToken::new("profile").unwrap(), "See your name")
        .cross_origin(cross_origin)
        .build()
        .unwrap()
}

/// A resource handler checking the scope with `?`.
async fn photos(token: Bearer) -> Result<Json<Value>, BearerRejection> {
    token.require(&["photos.read"])?;
    Ok(Json(json!({ "owner": token.principal(), "photos": [] })))
}

/// A resource route behind the layer.
async fn layered(Extension(token): Extension<AccessToken>) -> Json<Value> {
    Json(json!({ "owner": token.principal() }))
}

/// The extractor behind the layer reuses the layer's token.
async fn layered_extractor(token: Bearer) -> String {
    token.principal().to_owned()
}

/// Optional authentication, and the app's own state beside the server.
async fn optional(
    axum::extract::State(greeting): axum::extract::State<Arc<str>>,
    token: Option<Bearer>,
) -> String {
    match token {
        Some(t) => format!("{greeting}, {}", t.principal()),
        None => format!("{greeting}, stranger"),
    }
}

struct App {
    base: String,
    http: reqwest::Client,
}

async fn spawn(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn start() -> App {
    // The issuer does not need to match the port for these tests.
    let server = server("http://127.0.0.1:9000");
    let protected = Router::new()
        .route("/api/layered", get(layered))
        .route("/api/layered/extractor", get(layered_extractor))
        .route_layer(require_scope(server.clone(), &["photos.read"]));
    let app = Router::new()
        .route("/api/photos", get(photos))
        .route("/api/optional", get(optional))
        .merge(protected)
        .merge(tessera_axum::router(server.clone()))
        .with_state(AppState {
            oauth: server,
            greeting: "hello".into(),
        });
    let addr = spawn(app).await;
    App {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn token_basic(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    async fn access_token(&self, id: &str, secret: &str) -> String {
        let response = self.token_basic(id, secret).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn metadata_lists_the_endpoints() {
    let app = start().await;
    let response = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "application/json");
    let m: Value = response.json().await.unwrap();
    assert_eq!(m["issuer"], "http://127.0.0.1:9000");
    assert_eq!(
        m["authorization_endpoint"],
        "http://127.0.0.1:9000/authorize"
    );
    assert_eq!(m["token_endpoint"], "http://127.0.0.1:9000/token");
    assert_eq!(m["revocation_endpoint"], "http://127.0.0.1:9000/revoke");
    assert_eq!(
        m["introspection_endpoint"],
        "http://127.0.0.1:9000/introspect"
    );
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let scopes = m["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("photos.read")));
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")));
    assert!(grants.contains(&json!("authorization_code")));
    let auth = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(auth.contains(&json!("client_secret_basic")));

    let head = app
        .http
        .head(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    let post = app
        .http
        .post(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(header(&post, "allow").contains("GET"));
}

#[tokio::test]
async fn client_credentials_with_basic_and_post() {
    let app = start().await;
    let basic = app.token_basic("backup-job", BACKUP_SECRET).await;
    assert_eq!(basic.status(), StatusCode::OK);
    assert_eq!(header(&basic, "cache-control"), "no-store");
    assert_eq!(header(&basic, "content-type"), "application/json");
    let body: Value = basic.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("tsa_"));
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(body["scope"], "photos.read");
    assert!(body.get("refresh_token").is_none());

    let post = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backup-job"),
            ("client_secret", BACKUP_SECRET),
            ("scope", "photos.read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    assert_eq!(header(&post, "cache-control"), "no-store");
    let body: Value = post.json().await.unwrap();
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn token_endpoint_errors_come_from_the_core() {
    let app = start().await;

    let wrong = app.token_basic("backup-job", "not-the-secret").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&wrong, "www-authenticate").starts_with("Basic"));
    assert_eq!(header(&wrong, "cache-control"), "no-store");
    assert_eq!(error_of(wrong).await, "invalid_client");

    let missing = app
        .http
        .post(app.url("/token"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("scope", "photos.read")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(missing).await, "invalid_request");

    let unsupported = app
        .http
        .post(app.url("/token"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(unsupported.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(unsupported).await, "unsupported_grant_type");

    let get = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&get, "allow"), "POST");
    assert_eq!(error_of(get).await, "invalid_request");

    let json_body = app
        .http
        .post(app.url("/token"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(json_body).await, "invalid_request");

    // RFC 6749 §3.2: the query is ignored (unrecognized parameters MUST
    // be), but a secret in it is refused (§2.3.1).
    let ignored = app
        .http
        .post(app.url("/token?utm_source=x&grant_type=password"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(ignored.status(), StatusCode::OK);
    let secret_in_query = app
        .http
        .post(app.url("/token?client_secret=x"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(secret_in_query.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(secret_in_query).await, "invalid_request");

    for path in ["/revoke", "/introspect"] {
        let r = app.http.put(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_and_the_server_goes_on() {
    let app = start().await;
    let limit = 64 * 1024;

    // Exactly at the limit: read and answered by the core.
    // Padded with parameters of 1,000 bytes, each within the 2 KiB a value
    // may have: only the body's size is at stake.
    let mut at_limit = String::from("grant_type=client_credentials");
    let mut i = 0;
    while at_limit.len() < limit {
        let name = format!("&p{i}=");
        let room = limit - at_limit.len();
        if room <= name.len() {
            at_limit.push_str(&"a".repeat(room));
            break;
        }
        at_limit.push_str(&name);
        at_limit.push_str(&"a".repeat((room - name.len()).min(1000)));
        i += 1;
    }
    assert_eq!(at_limit.len(), limit);
    let ok = app
        .http
        .post(app.url("/token"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(at_limit.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // One byte more: 413 with an OAuth error body, on each endpoint.
    for path in ["/token", "/revoke", "/introspect"] {
        let big = format!("{at_limit}a");
        let response = app
            .http
            .post(app.url(path))
            .basic_auth("backup-job", Some(BACKUP_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(error_of(response).await, "invalid_request");

        // And the next request works (same client, pooled connection).
        let next = app.token_basic("backup-job", BACKUP_SECRET).await;
        assert_eq!(next.status(), StatusCode::OK);
    }

    // Far beyond: answered too, and the server still serves.
    let huge = "a".repeat(4 * 1024 * 1024);
    let response = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await;
    if let Ok(response) = response {
        // The answer may race the upload; when it arrives it is a 413.
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let next = app.token_basic("backup-job", BACKUP_SECRET).await;
    assert_eq!(next.status(), StatusCode::OK);
}

/// With `CrossOrigin::ClientEndpoints`, a page reads the adapter's own
/// answers too (the 413 made before the core sees the request), as it
/// reads the core's; the preflight passes through the router to the core.
#[tokio::test]
async fn pages_read_the_adapters_own_answers_when_allowed() {
    let server = server_with(
        "http://127.0.0.1:9000",
        tessera::CrossOrigin::ClientEndpoints,
    );
    let addr = spawn(tessera_axum::router(server)).await;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/token");
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    let too_big = http
        .post(&url)
        .header("origin", "https://spa.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a".repeat(64 * 1024 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(header(&too_big, "access-control-allow-origin"), "*");
    // Not from a page: no CORS header.
    let plain = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a".repeat(64 * 1024 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(plain.headers().get("access-control-allow-origin").is_none());
}

/// A chunked body announces no length: the limit layer and the handler's
/// read cut it off.
#[tokio::test]
async fn oversized_chunked_bodies_get_413() {
    let app = start().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "a".repeat(16 * 1024);
    for _ in 0..5 {
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(framed.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");

    let next = app.token_basic("backup-job", BACKUP_SECRET).await;
    assert_eq!(next.status(), StatusCode::OK);
}

#[tokio::test]
async fn bearer_extractor_answers_per_rfc_6750() {
    let app = start().await;

    let none = app.http.get(app.url("/api/photos")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&none, "www-authenticate"),
        format!("Bearer realm=\"{REALM}\"")
    );

    let bad = app.get_bearer("/api/photos", "tsa_not-a-real-token").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&bad, "www-authenticate");
    assert!(challenge.starts_with("Bearer realm=\"photobook\""));
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let token = app.access_token("backup-job", BACKUP_SECRET).await;

    let in_query = app
        .http
        .get(app.url(&format!("/api/photos?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), StatusCode::BAD_REQUEST);
    assert!(header(&in_query, "www-authenticate").contains("error=\"invalid_request\""));

    let malformed = app
        .http
        .get(app.url("/api/photos"))
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    let good = app.get_bearer("/api/photos", &token).await;
    assert_eq!(good.status(), StatusCode::OK);
    let body: Value = good.json().await.unwrap();
    assert_eq!(body["owner"], "backup-job");

    let profile_only = app.access_token("profile-job", PROFILE_SECRET).await;
    let forbidden = app.get_bearer("/api/photos", &profile_only).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let challenge = header(&forbidden, "www-authenticate");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"photos.read\""), "{challenge}");
    assert_eq!(error_of(forbidden).await, "insufficient_scope");
}

#[tokio::test]
async fn require_scope_layer_guards_routes() {
    let app = start().await;
    // RFC 6750 §3: a `401`'s `scope` names what the route requires.
    let none = app.http.get(app.url("/api/layered")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&none, "www-authenticate"),
        format!("Bearer realm=\"{REALM}\", scope=\"photos.read\"")
    );

    let bad = app.get_bearer("/api/layered", "tsa_nope").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&bad, "www-authenticate");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(challenge.contains("scope=\"photos.read\""), "{challenge}");

    let profile_only = app.access_token("profile-job", PROFILE_SECRET).await;
    let forbidden = app.get_bearer("/api/layered", &profile_only).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(header(&forbidden, "www-authenticate").contains("insufficient_scope"));

    let token = app.access_token("backup-job", BACKUP_SECRET).await;
    let good = app.get_bearer("/api/layered", &token).await;
    assert_eq!(good.status(), StatusCode::OK);
    let body: Value = good.json().await.unwrap();
    assert_eq!(body["owner"], "backup-job");

    let extractor = app.get_bearer("/api/layered/extractor", &token).await;
    assert_eq!(extractor.status(), StatusCode::OK);
    assert_eq!(extractor.text().await.unwrap(), "backup-job");

    // Unknown paths are still 404, not 401.
    let missing = app.http.get(app.url("/api/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn optional_bearer() {
    let app = start().await;
    let anonymous = app.http.get(app.url("/api/optional")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert_eq!(anonymous.text().await.unwrap(), "hello, stranger");

    let bad = app.get_bearer("/api/optional", "tsa_nope").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    let token = app.access_token("backup-job", BACKUP_SECRET).await;
    let good = app.get_bearer("/api/optional", &token).await;
    assert_eq!(good.text().await.unwrap(), "hello, backup-job");
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let app = start().await;
    let token = app.access_token("backup-job", BACKUP_SECRET).await;
    assert_eq!(
        app.get_bearer("/api/photos", &token).await.status(),
        StatusCode::OK
    );

    let revoked = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(header(&revoked, "cache-control"), "no-store");

    let after = app.get_bearer("/api/photos", &token).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&after, "www-authenticate").contains("error=\"invalid_token\""));

    // Unknown tokens: 200 as well (RFC 7009 §2.2).
    let unknown = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("token", "tsa_unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
}

#[tokio::test]
async fn introspection_active_and_inactive() {
    let app = start().await;
    let token = app.access_token("backup-job", BACKUP_SECRET).await;
    let introspect = |token: String| {
        app.http
            .post(app.url("/introspect"))
            .basic_auth("photo-api", Some(API_SECRET))
            .form(&[("token", token)])
            .send()
    };

    let active = introspect(token.clone()).await.unwrap();
    assert_eq!(active.status(), StatusCode::OK);
    assert_eq!(header(&active, "cache-control"), "no-store");
    let body: Value = active.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "backup-job");
    assert_eq!(body["scope"], "photos.read");
    assert_eq!(body["iss"], "http://127.0.0.1:9000");

    let inactive = introspect("tsa_unknown".into()).await.unwrap();
    assert_eq!(inactive.status(), StatusCode::OK);
    let body: Value = inactive.json().await.unwrap();
    assert_eq!(body, json!({ "active": false }));

    let anonymous = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(anonymous).await, "invalid_client");
}

/// An issuer with a path: endpoints below it, metadata per RFC 8414 §3.1.
/// Also: the router alone is a complete app (`Router<()>`).
#[tokio::test]
async fn issuer_with_a_path() {
    let server = server("http://127.0.0.1:9000/tenant");
    assert_eq!(server.authorization_path(), "/tenant/authorize");
    let addr = spawn(tessera_axum::router(server)).await;
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/tenant/.well-known/oauth-authorization-server",
    ] {
        let r = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["token_endpoint"], "http://127.0.0.1:9000/tenant/token");
    }
    let r = http
        .post(format!("http://{addr}/tenant/token"))
        .basic_auth("backup-job", Some(BACKUP_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(format!("http://{addr}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// After a `413` for a body announced by `Content-Length`, the body is
/// drained and the same connection carries the next request.
#[tokio::test]
async fn the_connection_survives_a_413() {
    let app = start().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let body = "a".repeat(64 * 1024 + 1);
    let oversized = format!(
        "POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(oversized.as_bytes()).await.unwrap();
    let first = read_response(&mut stream).await;
    assert!(first.starts_with("HTTP/1.1 413"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );

    let next = format!(
        "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(next.as_bytes()).await.unwrap();
    let mut second = Vec::new();
    stream.read_to_end(&mut second).await.unwrap();
    let second = String::from_utf8_lossy(&second);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.contains("\"issuer\""), "{second}");
}

/// A body announced over the limit that is not drained: the client waits
/// for `100 Continue` (RFC 9110 §10.1.1) and has sent nothing, or it is
/// larger than the adapter drains. `413` with `Connection: close`, at once,
/// for any method (the `405` would come from the core, which never sees it).
#[tokio::test]
async fn undrained_oversized_bodies_get_413_and_close() {
    let app = start().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for (method, extra, length) in [
        ("POST", "expect: 100-continue\r\n", 64 * 1024 + 1),
        ("POST", "", 2 * 1024 * 1024),
        ("GET", "", 2 * 1024 * 1024),
    ] {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "{method} /introspect HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             {extra}content-length: {length}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            read_response(&mut stream),
        )
        .await
        .expect("answered without the body");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("connection: close"), "{answer}");
        assert!(lower.contains("cache-control: no-store"), "{answer}");
        assert!(answer.contains("\"invalid_request\""), "{answer}");
    }
    let next = app.token_basic("backup-job", BACKUP_SECRET).await;
    assert_eq!(next.status(), StatusCode::OK);
}

/// Reads one response with a `content-length` body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    format!("{head}{}", String::from_utf8_lossy(&body))
}

/// The adapter tells the core where a request came from when the app is
/// served with `ConnectInfo`: one network's share of open registration is
/// then counted (`503` past it), and without it nothing is counted per
/// network (RFC 6819 §4.4.1.11; `tessera::SourceNetwork`).
#[tokio::test]
async fn the_peer_address_reaches_the_core_with_connect_info() {
    let registering = || {
        Server::builder()
            .issuer("http://127.0.0.1:9000")
            .store(Arc::new(MemoryStore::new()))
            .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
            .rate_limiter(tessera::MemoryRateLimiter::default().with_network_limit(
                tessera::Action::ClientRegistration,
                tessera::Limit::new(1, time::Duration::minutes(1)),
            ))
            .enable_dynamic_registration(tessera::RegistrationPolicy::open())
            .build()
            .unwrap()
    };
    let body = json!({"redirect_uris": ["http://127.0.0.1:4567/cb"], "token_endpoint_auth_method": "none"});
    let register = |addr: SocketAddr| {
        let body = body.clone();
        async move {
            reqwest::Client::new()
                .post(format!("http://{addr}/register"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let with_peer = listener.local_addr().unwrap();
    let app = tessera_axum::router(registering());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    assert_eq!(register(with_peer).await, StatusCode::CREATED);
    assert_eq!(register(with_peer).await, StatusCode::SERVICE_UNAVAILABLE);
    let without = spawn(tessera_axum::router(registering())).await;
    for _ in 0..3 {
        assert_eq!(register(without).await, StatusCode::CREATED);
    }
}
