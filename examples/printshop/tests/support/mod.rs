//! A tiny fake PhotoBook provider implementing just the demo contract's surface
//! that PrintShop touches: RFC 8414 metadata, an authorization endpoint that
//! answers at once (no login page), the token endpoint (code + refresh with
//! rotation), revocation, and `/api/photos`. Plus helpers to run PrintShop
//! in-process and drive it like a browser.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::Parser as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// The secret the fake provider expects from `printshop`.
pub const CLIENT_SECRET: &str = "printshop-secret-0123456789abcdef0123456789abcdef";

/// What `iss` the fake authorization endpoint puts in its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iss {
    /// The real issuer.
    Correct,
    /// Some other server's issuer (a mix-up attack).
    Wrong,
    /// No `iss` at all.
    Missing,
}

/// Knobs to make the fake misbehave.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Answer `error=access_denied` as if the person clicked "Deny".
    pub deny: bool,
    /// Echo a `state` other than the one sent.
    pub wrong_state: bool,
    /// The `iss` on authorization responses.
    pub iss: Iss,
    /// `authorization_response_iss_parameter_supported` in the metadata.
    pub advertise_iss: bool,
    /// `issuer` in the metadata, if not the real one.
    pub metadata_issuer: Option<String>,
    /// `expires_in` of access tokens.
    pub expires_in: u64,
    /// Refuse every code as `invalid_request` (as a provider refuses a
    /// code over 2 KiB).
    pub refuse_code_as_malformed: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            deny: false,
            wrong_state: false,
            iss: Iss::Correct,
            advertise_iss: true,
            metadata_issuer: None,
            expires_in: 3600,
            refuse_code_as_malformed: false,
        }
    }
}

#[derive(Debug)]
struct CodeRecord {
    challenge: String,
    redirect_uri: String,
}

/// Everything the fake knows and records.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Current knobs.
    pub behaviour: Behaviour,
    codes: HashMap<String, CodeRecord>,
    /// Access tokens and whether each is still valid.
    pub access: HashMap<String, bool>,
    /// Refresh tokens and whether each is the current (unrotated, unrevoked) one.
    pub refresh: HashMap<String, bool>,
    /// Query parameters of every authorization request.
    pub authorize_requests: Vec<HashMap<String, String>>,
    /// Number of token endpoint calls.
    pub token_calls: usize,
    /// Number of successful refresh grants.
    pub refresh_grants: usize,
    /// Number of calls to `/api/photos`.
    pub api_calls: usize,
    /// Tokens revoked through the revocation endpoint.
    pub revoked: Vec<String>,
    counter: u64,
}

impl FakeState {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!(
            "{prefix}{}x{:016x}",
            self.counter,
            self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }
}

/// A running fake provider.
#[derive(Debug, Clone)]
pub struct FakeProvider {
    /// Its issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeProvider {
    /// Starts a fake provider on a free loopback port.
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        Self::start_on(listener, behaviour)
    }

    /// Starts a fake provider on `listener`.
    pub fn start_on(listener: TcpListener, behaviour: Behaviour) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let issuer = format!("http://{addr}");
        let state = Arc::new(Mutex::new(FakeState {
            behaviour,
            ..FakeState::default()
        }));
        let fake = Self { issuer, state };
        let router = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route("/oauth/revoke", post(revoke))
            .route("/api/photos", get(photos))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake provider serves");
        });
        fake
    }

    /// The fake's state, for inspection and tweaks.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every access token issued so far invalid (as if expired).
    pub fn expire_access_tokens(&self) {
        for valid in self.state().access.values_mut() {
            *valid = false;
        }
    }

    /// Revokes every token issued so far.
    pub fn revoke_everything(&self) {
        let mut state = self.state();
        for valid in state.access.values_mut() {
            *valid = false;
        }
        for current in state.refresh.values_mut() {
            *current = false;
        }
    }
}

async fn metadata(State(fake): State<FakeProvider>) -> Json<serde_json::Value> {
    let b = fake.state().behaviour.clone();
    let issuer = b.metadata_issuer.unwrap_or_else(|| fake.issuer.clone());
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/oauth/authorize", fake.issuer),
        "token_endpoint": format!("{}/oauth/token", fake.issuer),
        "revocation_endpoint": format!("{}/oauth/revoke", fake.issuer),
        "introspection_endpoint": format!("{}/oauth/introspect", fake.issuer),
        "scopes_supported": ["photos.read", "photos.write", "profile"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": b.advertise_iss,
    }))
}

fn error_json(status: StatusCode, error: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "error": error })),
    )
        .into_response()
}

async fn authorize(
    State(fake): State<FakeProvider>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut state = fake.state();
    state.authorize_requests.push(query.clone());
    let b = state.behaviour.clone();
    if query.get("client_id").map(String::as_str) != Some("printshop") {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let Some(redirect_uri) = query.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "no redirect_uri").into_response();
    };
    if query.get("response_type").map(String::as_str) != Some("code")
        || query.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad request").into_response();
    }
    let Some(challenge) = query.get("code_challenge").cloned() else {
        return (StatusCode::BAD_REQUEST, "no PKCE").into_response();
    };
    let echoed_state = if b.wrong_state {
        "forged-state".to_owned()
    } else {
        query.get("state").cloned().unwrap_or_default()
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if b.deny {
        pairs.push(("error", "access_denied".into()));
        pairs.push(("error_description", "The user said no".into()));
    } else {
        let code = state.next("code-");
        state.codes.insert(
            code.clone(),
            CodeRecord {
                challenge,
                redirect_uri: redirect_uri.clone(),
            },
        );
        pairs.push(("code", code));
    }
    pairs.push(("state", echoed_state));
    match b.iss {
        Iss::Correct => pairs.push(("iss", fake.issuer.clone())),
        Iss::Wrong => pairs.push(("iss", "http://127.0.0.2:6666".into())),
        Iss::Missing => {}
    }
    let query = serde_urlencoded::to_string(&pairs).expect("encode");
    Redirect::to(&format!("{redirect_uri}?{query}")).into_response()
}

fn client_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded) else {
        return false;
    };
    decoded == format!("printshop:{CLIENT_SECRET}").as_bytes()
}

fn issue(state: &mut FakeState) -> Response {
    let access = state.next("tsa_fake_access_");
    let refresh = state.next("tsr_fake_refresh_");
    state.access.insert(access.clone(), true);
    state.refresh.insert(refresh.clone(), true);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": state.behaviour.expires_in,
            "refresh_token": refresh,
            "scope": "photos.read profile",
        })),
    )
        .into_response()
}

async fn token(
    State(fake): State<FakeProvider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut state = fake.state();
    state.token_calls += 1;
    if !client_ok(&headers) {
        return error_json(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            if state.behaviour.refuse_code_as_malformed {
                return error_json(StatusCode::BAD_REQUEST, "invalid_request");
            }
            let Some(record) = form.get("code").and_then(|c| state.codes.remove(c)) else {
                return error_json(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if form.get("redirect_uri") != Some(&record.redirect_uri) {
                return error_json(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let Some(verifier) = form.get("code_verifier") else {
                return error_json(StatusCode::BAD_REQUEST, "invalid_request");
            };
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != record.challenge {
                return error_json(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            issue(&mut state)
        }
        Some("refresh_token") => {
            let Some(presented) = form.get("refresh_token").cloned() else {
                return error_json(StatusCode::BAD_REQUEST, "invalid_request");
            };
            match state.refresh.get(&presented).copied() {
                Some(true) => {
                    state.refresh.insert(presented, false);
                    state.refresh_grants += 1;
                    issue(&mut state)
                }
                Some(false) => {
                    // A retired token: revoke the whole family (here: everything).
                    for valid in state.access.values_mut() {
                        *valid = false;
                    }
                    for current in state.refresh.values_mut() {
                        *current = false;
                    }
                    error_json(StatusCode::BAD_REQUEST, "invalid_grant")
                }
                None => error_json(StatusCode::BAD_REQUEST, "invalid_grant"),
            }
        }
        _ => error_json(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(
    State(fake): State<FakeProvider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !client_ok(&headers) {
        return error_json(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut state = fake.state();
    if let Some(token) = form.get("token") {
        state.revoked.push(token.clone());
        if let Some(current) = state.refresh.get_mut(token) {
            *current = false;
        }
        if let Some(valid) = state.access.get_mut(token) {
            *valid = false;
        }
    }
    StatusCode::OK.into_response()
}

async fn photos(State(fake): State<FakeProvider>, headers: HeaderMap) -> Response {
    let mut state = fake.state();
    state.api_calls += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    };
    if state.access.get(token).copied() != Some(true) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response();
    }
    Json(json!({
        "owner": "alice",
        "photos": [
            { "id": 1, "title": "Sunset over the bay" },
            { "id": 2, "title": "Grandma's <garden>" },
            { "id": "p3", "title": "First snow" },
        ],
    }))
    .into_response()
}

/// The Redis server for the Redis-store tests: `TESSERA_REDIS_URL`, as
/// `storage-redis/scripts/redis-up.sh` (and `scripts/test.sh`) sets it.
///
/// Unset, it panics (so CI cannot pass silently without Redis) unless
/// `TESSERA_REDIS_SKIP=1`, which skips (passes) the test with a note instead:
/// the same convention as the `tessera-redis` and conformance tests.
pub fn redis_url() -> Option<String> {
    match std::env::var("TESSERA_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("TESSERA_REDIS_SKIP").is_ok_and(|v| v == "1") => {
            eprintln!("skipped: TESSERA_REDIS_URL is not set and TESSERA_REDIS_SKIP=1");
            None
        }
        _ => panic!(
            "TESSERA_REDIS_URL is not set: this test needs a standalone redis-server. Start one with \
             `bash storage-redis/scripts/redis-up.sh /tmp/r.env && . /tmp/r.env` (stop it with \
             storage-redis/scripts/redis-down.sh /tmp/r.env), or set TESSERA_REDIS_SKIP=1 to skip."
        ),
    }
}

/// Starts PrintShop in-process on a free port, pointed at `provider`; returns its base URL.
pub async fn start_printshop(provider: &str) -> String {
    start_printshop_on(provider, "memory").await
}

/// Like [`start_printshop`], with `--store store`.
pub async fn start_printshop_on(provider: &str, store: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind printshop");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    let config = printshop::Config::try_parse_from([
        "printshop",
        "--listen",
        &addr.to_string(),
        "--provider",
        provider,
        "--store",
        store,
    ])
    .expect("valid flags");
    // Open the store before returning, so that the first request finds it.
    let sessions = printshop::open_store(&config).await.expect("store opens");
    tokio::spawn(async move {
        printshop::serve_with(listener, config, sessions, std::future::pending())
            .await
            .expect("printshop serves");
    });
    format!("http://{addr}")
}

/// A browser-like HTTP client: keeps cookies, follows redirects.
pub fn browser() -> reqwest::Client {
    browser_with(Arc::new(reqwest::cookie::Jar::default()))
}

/// A browser-like HTTP client keeping its cookies in `jar`.
pub fn browser_with(jar: Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .expect("client")
}

/// A page as the browser ended up on it.
#[derive(Debug)]
pub struct Page {
    /// Final URL after redirects.
    pub url: reqwest::Url,
    /// Final status.
    pub status: reqwest::StatusCode,
    /// Final headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub body: String,
}

/// GETs `url` with `client`, following redirects.
pub async fn visit(client: &reqwest::Client, url: &str) -> Page {
    let response = client.get(url).send().await.expect("request");
    let url = response.url().clone();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Page {
        url,
        status,
        headers,
        body,
    }
}

/// The value of cookie `name` that `jar` would send to `base`.
pub fn cookie(jar: &reqwest::cookie::Jar, base: &str, name: &str) -> String {
    use reqwest::cookie::CookieStore as _;
    let url: reqwest::Url = base.parse().expect("url");
    let header = jar.cookies(&url).expect("cookies for the site");
    header
        .to_str()
        .expect("ascii")
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .expect("the cookie")
}
