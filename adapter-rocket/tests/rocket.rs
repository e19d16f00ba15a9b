//! The adapter end to end, through rocket's local asynchronous client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{Build, Rocket, catch, catchers, get, post, put, routes};
use serde_json::Value;
use tessera::EndpointPaths;
use tessera::{
    AuthMethod, Client as OAuthClient, ClientId, Clock, FixedClock, Scope, ScopeToken, SecretHash,
    Server,
};
use tessera_memory::MemoryStore;
use tessera_rocket::{Bearer, BearerRejection, OAuthRequest, Scoped};

const ISSUER: &str = "http://127.0.0.1:9000";
const BACKUP_SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";
const WRITER_SECRET: &str = "writer-secret-0123456789abcdef0123456789abcdef";
const API_SECRET: &str = "photo-api-secret-0123456789abcdef0123456789abcd";
const LIMIT: usize = 64 * 1024;

tessera_rocket::required_scopes! {
    /// Reading photos.
    PhotosRead => ["photos.read"];
}

#[get("/api/photos")]
fn photos(token: Scoped<PhotosRead>) -> String {
    format!("photos of {}", token.principal())
}

#[get("/api/whoami")]
fn whoami(token: Bearer) -> String {
    token.principal().to_owned()
}

#[get("/api/write")]
fn write(token: Result<Bearer, BearerRejection>) -> Result<String, BearerRejection> {
    let token = token?;
    token.require(&["photos.write"])?;
    Ok(format!("{} may write", token.principal()))
}

#[get("/api/greet")]
fn greet(token: Result<Bearer, BearerRejection>) -> Result<String, BearerRejection> {
    match token {
        Ok(token) => Ok(format!("hello, {}", token.principal())),
        Err(rejection) if rejection.is_missing_token() => Ok("hello, stranger".into()),
        Err(rejection) => Err(rejection),
    }
}

#[post("/custom", data = "<request>")]
fn custom(request: OAuthRequest) -> String {
    format!(
        "{} {}",
        request.as_http().method,
        request.as_http().body.len()
    )
}

/// The embedder's authorization page (GET only) and a route of its own
/// that keeps rocket's `_method` convention.
#[get("/authorize")]
fn authorize_page() -> &'static str {
    "the authorization page"
}

#[put("/profile")]
fn profile() -> &'static str {
    "profile updated"
}

/// The embedder's own catcher: the fairing must still put the core's
/// challenge in place of it.
#[catch(401)]
fn unauthorized() -> &'static str {
    "a page of the embedder's"
}

fn client(id: &str, secret: &str, scope: &str) -> OAuthClient {
    OAuthClient::confidential(ClientId::new(id).unwrap(), id, SecretHash::of(secret))
        .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse(scope).unwrap())
}

fn server(issuer: &str, clock: Arc<FixedClock>) -> Server {
    server_with(issuer, clock, tessera::CrossOrigin::default())
}

fn server_with(issuer: &str, clock: Arc<FixedClock>, cross_origin: tessera::CrossOrigin) -> Server {
    let store = MemoryStore::with_clients([
        client("backup-job", BACKUP_SECRET, "photos.read"),
        client("writer", WRITER_SECRET, "photos.write"),
        OAuthClient::confidential(
            ClientId::new("photo-api").unwrap(),
            "Photo API",
            SecretHash::of(API_SECRET),
        )
        .with_introspect_any_token(true),
    ]);
    let mut builder = Server::builder()
        .issuer(issuer)
        .store(Arc::new(store))
        .clock(clock as Arc<dyn Clock>)
        .cross_origin(cross_origin);
    for s in ["photos.read", "photos.write"] {
        builder = builder.scope(ScopeToken::new(s).unwrap(), s);
    }
    builder.build().unwrap()
}

fn app(server: Server) -> Rocket<Build> {
    let config = rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        cli_colors: false,
        ..rocket::Config::debug_default()
    };
    rocket::custom(config)
        .attach(tessera_rocket::fairing(server))
        .mount(
            "/",
            routes![
                photos,
                whoami,
                write,
                greet,
                custom,
                authorize_page,
                profile
            ],
        )
        .register("/", catchers![unauthorized])
}

struct Harness {
    client: Client,
    clock: Arc<FixedClock>,
}

async fn harness() -> Harness {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let client = Client::tracked(app(server(ISSUER, clock.clone())))
        .await
        .unwrap();
    Harness { client, clock }
}

fn basic(id: &str, secret: &str) -> Header<'static> {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    Header::new("Authorization", format!("Basic {credentials}"))
}

fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

async fn json(response: LocalResponse<'_>) -> Value {
    serde_json::from_str(&response.into_string().await.unwrap_or_default()).unwrap()
}

fn header(response: &LocalResponse<'_>, name: &str) -> Option<String> {
    response.headers().get_one(name).map(str::to_owned)
}

impl Harness {
    async fn token(&self, id: &str, secret: &str) -> String {
        let response = self
            .client
            .post("/token")
            .header(ContentType::Form)
            .header(basic(id, secret))
            .body("grant_type=client_credentials")
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
        let body = json(response).await;
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> LocalResponse<'_> {
        let mut request = self.client.get(path.to_owned());
        if let Some(token) = token {
            request = request.header(bearer(token));
        }
        request.dispatch().await
    }
}

// ---- Endpoints ------------------------------------------------------------------

#[tokio::test]
async fn metadata_is_served_for_get_and_head_only() {
    let h = harness().await;
    let response = h
        .client
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    let metadata = json(response).await;
    assert_eq!(metadata["issuer"], ISSUER);
    assert_eq!(metadata["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(metadata["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(
        metadata["introspection_endpoint"],
        format!("{ISSUER}/introspect")
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );

    let head = h
        .client
        .head("/.well-known/oauth-authorization-server")
        .dispatch()
        .await;
    assert_eq!(head.status(), Status::Ok);
    assert!(head.into_bytes().await.unwrap_or_default().is_empty());

    let post = h
        .client
        .post("/.well-known/oauth-authorization-server")
        .dispatch()
        .await;
    assert_eq!(post.status(), Status::MethodNotAllowed);
    assert_eq!(header(&post, "allow").as_deref(), Some("GET, HEAD"));
}

#[tokio::test]
async fn client_credentials_issues_a_token() {
    let h = harness().await;
    let response = h
        .client
        .post("/token")
        .header(ContentType::Form)
        .header(basic("backup-job", BACKUP_SECRET))
        .body("grant_type=client_credentials")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "photos.read");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["access_token"].as_str().unwrap().starts_with("tsa_"));

    // client_secret_post too.
    let response = h
        .client
        .post("/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=client_credentials&client_id=backup-job&client_secret={BACKUP_SECRET}"
        ))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
}

/// Rocket reads a form POST whose first field is `_method` as that method;
/// the fairing puts the POST back (RFC 6749 §3.2), as axum answers it.
#[tokio::test]
async fn a_method_field_in_the_form_does_not_change_the_method() {
    let h = harness().await;
    for method in ["put", "get", "delete", "PATCH"] {
        let response = h
            .client
            .post("/token")
            .header(ContentType::Form)
            .header(basic("backup-job", BACKUP_SECRET))
            .body(format!("_method={method}&grant_type=client_credentials"))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok, "_method={method}");
    }
    // The authorization endpoint, however rocket spells its path, is not
    // reached as a GET; the embedder's own routes keep the convention.
    for path in ["/authorize", "/authorize/", "//authorize"] {
        let response = h
            .client
            .post(path)
            .header(ContentType::Form)
            .body("_method=get&response_type=code")
            .dispatch()
            .await;
        assert_ne!(response.status(), Status::Ok, "{path}");
    }
    let response = h
        .client
        .post("/profile")
        .header(ContentType::Form)
        .body("_method=put&name=x")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    // A real PUT stays a PUT: 405.
    let response = h
        .client
        .put("/token")
        .header(ContentType::Form)
        .body("grant_type=client_credentials")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::MethodNotAllowed);
}

#[tokio::test]
async fn token_errors_come_from_the_core() {
    let h = harness().await;
    // A wrong secret over Basic: 401 with a Basic challenge (RFC 6749 §5.2).
    let response = h
        .client
        .post("/token")
        .header(ContentType::Form)
        .header(basic("backup-job", "wrong"))
        .body("grant_type=client_credentials")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Basic realm=\"tessera\"")
    );
    assert_eq!(json(response).await["error"], "invalid_client");

    // Every method reaches the core: 405 with `Allow: POST`.
    for request in [
        h.client.get("/token"),
        h.client.put("/token"),
        h.client.delete("/token"),
        h.client.patch("/token"),
        h.client.options("/revoke"),
        h.client.get("/introspect"),
    ] {
        let response = request.dispatch().await;
        assert_eq!(response.status(), Status::MethodNotAllowed);
        assert_eq!(header(&response, "allow").as_deref(), Some("POST"));
        assert_eq!(json(response).await["error"], "invalid_request");
    }

    // Only the exact path: rocket would also route `/token/` and `//token`
    // here, where axum answers 404.
    for path in [
        "/token/",
        "//token",
        "/revoke/",
        "/.well-known/oauth-authorization-server/",
    ] {
        let response = h.client.post(path).dispatch().await;
        assert_eq!(response.status(), Status::NotFound, "{path}");
    }

    // Not a form: the core says invalid_request.
    let response = h
        .client
        .post("/token")
        .header(ContentType::JSON)
        .header(basic("backup-job", BACKUP_SECRET))
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    assert_eq!(json(response).await["error"], "invalid_request");

    // An unsupported grant type.
    let response = h
        .client
        .post("/token")
        .header(ContentType::Form)
        .header(basic("backup-job", BACKUP_SECRET))
        .body("grant_type=password")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    assert_eq!(json(response).await["error"], "unsupported_grant_type");
}

/// With `CrossOrigin::ClientEndpoints`, a page reads the adapter's own 413
/// (made before the core sees the request) as it reads the core's
/// answers, and the preflight reaches the core through the routes.
#[tokio::test]
async fn pages_read_the_adapters_own_answers_when_allowed() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let server = server_with(ISSUER, clock, tessera::CrossOrigin::ClientEndpoints);
    let client = Client::tracked(app(server)).await.unwrap();
    let origin = Header::new("Origin", "https://spa.example");
    let preflight = client
        .options("/token")
        .header(origin.clone())
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .dispatch()
        .await;
    assert_eq!(preflight.status(), Status::NoContent);
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let over = "a".repeat(LIMIT + 1);
    let too_big = client
        .post("/token")
        .header(ContentType::Form)
        .header(origin)
        .header(Header::new("Content-Length", over.len().to_string()))
        .body(over.clone())
        .dispatch()
        .await;
    assert_eq!(too_big.status(), Status::PayloadTooLarge);
    assert_eq!(
        header(&too_big, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let plain = client
        .post("/token")
        .header(ContentType::Form)
        .header(Header::new("Content-Length", over.len().to_string()))
        .body(over)
        .dispatch()
        .await;
    assert_eq!(plain.status(), Status::PayloadTooLarge);
    assert_eq!(header(&plain, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn bodies_over_64_kib_get_413_and_the_server_goes_on() {
    let h = harness().await;
    // Padded with parameters of 1,000 bytes, each within the 2 KiB a value
    // may have: only the body's size is at stake.
    let mut exactly = String::from("grant_type=client_credentials");
    let mut i = 0;
    while exactly.len() < LIMIT {
        let name = format!("&p{i}=");
        let room = LIMIT - exactly.len();
        if room <= name.len() {
            exactly.push_str(&"a".repeat(room));
            break;
        }
        exactly.push_str(&name);
        exactly.push_str(&"a".repeat((room - name.len()).min(1000)));
        i += 1;
    }
    assert_eq!(exactly.len(), LIMIT);
    let over = format!("{exactly}a");

    // Announced by Content-Length.
    let response = h
        .client
        .post("/token")
        .header(ContentType::Form)
        .header(basic("backup-job", BACKUP_SECRET))
        .header(Header::new("Content-Length", over.len().to_string()))
        .body(over.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::PayloadTooLarge);
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_request");

    // Found while reading (no Content-Length): never truncated and accepted.
    for path in ["/token", "/revoke", "/introspect"] {
        let response = h
            .client
            .post(path)
            .header(ContentType::Form)
            .header(basic("backup-job", BACKUP_SECRET))
            .body(over.clone())
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::PayloadTooLarge, "{path}");
    }

    // Exactly at the limit is fine.
    let response = h
        .client
        .post("/token")
        .header(ContentType::Form)
        .header(basic("backup-job", BACKUP_SECRET))
        .body(exactly)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);

    // The data guard has the same cap, and its 413 is the core-shaped one.
    let response = h.client.post("/custom").body(over).dispatch().await;
    assert_eq!(response.status(), Status::PayloadTooLarge);
    assert_eq!(json(response).await["error"], "invalid_request");
    let response = h.client.post("/custom").body("abc").dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("POST 3"));

    // And the server still serves.
    h.token("backup-job", BACKUP_SECRET).await;
}

#[tokio::test]
async fn revocation_and_introspection() {
    let h = harness().await;
    let token = h.token("backup-job", BACKUP_SECRET).await;

    let response = h
        .client
        .post("/introspect")
        .header(ContentType::Form)
        .header(basic("photo-api", API_SECRET))
        .body(format!("token={token}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let body = json(response).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "backup-job");

    let response = h
        .client
        .post("/introspect")
        .header(ContentType::Form)
        .body(format!("token={token}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Unauthorized);

    let response = h
        .client
        .post("/revoke")
        .header(ContentType::Form)
        .header(basic("backup-job", BACKUP_SECRET))
        .body(format!("token={token}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);

    let response = h
        .client
        .post("/introspect")
        .header(ContentType::Form)
        .header(basic("photo-api", API_SECRET))
        .body(format!("token={token}"))
        .dispatch()
        .await;
    assert_eq!(json(response).await["active"], false);
}

#[tokio::test]
async fn an_issuer_with_a_path_moves_the_endpoints() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let issuer = "http://127.0.0.1:9000/tenant";
    let client = Client::tracked(app(server(issuer, clock))).await.unwrap();
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/tenant/.well-known/oauth-authorization-server",
    ] {
        let response = client.get(path).dispatch().await;
        assert_eq!(response.status(), Status::Ok, "{path}");
        let metadata = json(response).await;
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
    }
    let response = client.get("/tenant/token").dispatch().await;
    assert_eq!(response.status(), Status::MethodNotAllowed);
    let response = client.get("/token").dispatch().await;
    assert_eq!(response.status(), Status::NotFound);
}

#[test]
fn an_unroutable_path_is_refused_when_the_server_is_built() {
    // The core checks its endpoint table in `build()`: no adapter ever sees
    // a path it cannot route.
    let result = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::new()))
        .paths(EndpointPaths::default().with_token("/<token>"))
        .build();
    assert!(matches!(
        result,
        Err(tessera::BuildError::InvalidPath {
            endpoint: "token",
            ..
        })
    ));
}

#[tokio::test]
async fn authorization_path_follows_the_issuer() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    assert_eq!(
        server(ISSUER, clock.clone()).authorization_path(),
        "/authorize"
    );
    assert_eq!(
        server("https://a.example/t/", clock).authorization_path(),
        "/t/authorize"
    );
}

// ---- The bearer guard ---------------------------------------------------------------

#[tokio::test]
async fn a_valid_token_passes() {
    let h = harness().await;
    let token = h.token("backup-job", BACKUP_SECRET).await;
    let response = h.get("/api/photos", Some(&token)).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("photos of backup-job")
    );
    let response = h.get("/api/whoami", Some(&token)).await;
    assert_eq!(response.into_string().await.as_deref(), Some("backup-job"));
}

#[tokio::test]
async fn missing_token_is_401_with_a_bare_challenge() {
    let h = harness().await;
    // RFC 6750 §3: a `Scoped` route's challenge names what it requires.
    for (path, challenge) in [
        (
            "/api/photos",
            "Bearer realm=\"tessera\", scope=\"photos.read\"",
        ),
        ("/api/whoami", "Bearer realm=\"tessera\""),
        ("/api/write", "Bearer realm=\"tessera\""),
    ] {
        let response = h.get(path, None).await;
        assert_eq!(response.status(), Status::Unauthorized, "{path}");
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some(challenge),
            "{path}"
        );
        // The embedder's catcher was replaced by the core's answer.
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("application/json")
        );
        // RFC 6750 §3.1: no error information when no credentials came.
        assert_eq!(json(response).await, serde_json::json!({}));
    }
    // Another scheme counts as no bearer token.
    let response = h
        .client
        .get("/api/photos")
        .header(basic("backup-job", BACKUP_SECRET))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(
        header(&response, "www-authenticate").as_deref(),
        Some("Bearer realm=\"tessera\", scope=\"photos.read\"")
    );
    // A bad token at a `Scoped` route: `invalid_token`, naming its scope.
    let response = h.get("/api/photos", Some("tsa_nope")).await;
    assert_invalid_token(&response);
    let challenge = header(&response, "www-authenticate").unwrap();
    assert!(challenge.contains("scope=\"photos.read\""), "{challenge}");
}

fn assert_invalid_token(response: &LocalResponse<'_>) {
    assert_eq!(response.status(), Status::Unauthorized);
    let challenge = header(response, "www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"tessera\""),
        "{challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token() {
    let h = harness().await;
    for token in [
        "nonsense",
        "tsa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "tsr_whatever",
    ] {
        for path in ["/api/photos", "/api/whoami", "/api/write"] {
            let response = h.get(path, Some(token)).await;
            assert_invalid_token(&response);
            assert_eq!(json(response).await["error"], "invalid_token");
        }
    }
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let h = harness().await;
    let token = h.token("backup-job", BACKUP_SECRET).await;
    // A token in the query is refused (RFC 9700 §4.3.2), even with a good header.
    let response = h
        .get(&format!("/api/photos?access_token={token}"), Some(&token))
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    let challenge = header(&response, "www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );

    let response = h.get("/api/photos", Some("a b")).await;
    assert_eq!(response.status(), Status::BadRequest);

    // Two Authorization headers reach the core as one malformed value.
    let response = h
        .client
        .get("/api/photos")
        .header(bearer(&token))
        .header(bearer(&token))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::BadRequest);
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let h = harness().await;
    let token = h.token("backup-job", BACKUP_SECRET).await;
    assert_eq!(
        h.get("/api/photos", Some(&token)).await.status(),
        Status::Ok
    );
    let response = h
        .client
        .post("/revoke")
        .header(ContentType::Form)
        .header(basic("backup-job", BACKUP_SECRET))
        .body(format!("token={token}&token_type_hint=access_token"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_invalid_token(&h.get("/api/photos", Some(&token)).await);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let h = harness().await;
    let token = h.token("backup-job", BACKUP_SECRET).await;
    h.clock.advance(time::Duration::minutes(59));
    assert_eq!(
        h.get("/api/photos", Some(&token)).await.status(),
        Status::Ok
    );
    h.clock.advance(time::Duration::minutes(1));
    assert_invalid_token(&h.get("/api/photos", Some(&token)).await);
    assert_invalid_token(&h.get("/api/whoami", Some(&token)).await);
}

#[tokio::test]
async fn insufficient_scope_is_403_naming_the_scope() {
    let h = harness().await;
    // The typed guard.
    let writer = h.token("writer", WRITER_SECRET).await;
    let response = h.get("/api/photos", Some(&writer)).await;
    assert_eq!(response.status(), Status::Forbidden);
    let challenge = header(&response, "www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"tessera\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"photos.read\""), "{challenge}");
    assert_eq!(json(response).await["error"], "insufficient_scope");

    // `require` in the route, answered by the rejection as a responder.
    let reader = h.token("backup-job", BACKUP_SECRET).await;
    let response = h.get("/api/write", Some(&reader)).await;
    assert_eq!(response.status(), Status::Forbidden);
    let challenge = header(&response, "www-authenticate").unwrap();
    assert!(challenge.contains("scope=\"photos.write\""), "{challenge}");
    let response = h.get("/api/write", Some(&writer)).await;
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("writer may write")
    );
}

#[tokio::test]
async fn without_the_fairing_the_guards_fail_closed() {
    let config = rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    };
    let rocket = rocket::custom(config).mount("/", routes![photos, custom]);
    let client = Client::tracked(rocket).await.unwrap();
    let response = client
        .get("/api/photos")
        .header(bearer("tsa_x"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::InternalServerError);
    let response = client.post("/custom").body("x").dispatch().await;
    assert_eq!(response.status(), Status::InternalServerError);
}

#[tokio::test]
async fn optional_authentication_still_refuses_bad_tokens() {
    let h = harness().await;
    let response = h.get("/api/greet", None).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("hello, stranger")
    );
    let token = h.token("backup-job", BACKUP_SECRET).await;
    let response = h.get("/api/greet", Some(&token)).await;
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("hello, backup-job")
    );
    assert_invalid_token(&h.get("/api/greet", Some("tsa_forged")).await);
}

/// The adapter tells the core where a request came from (the connection's
/// peer, never `X-Real-IP`, which anybody can forge): one network's share
/// of open registration is counted, `503` past it, while another network
/// still registers (RFC 6819 §4.4.1.11).
#[tokio::test]
async fn the_client_address_reaches_the_core() {
    let server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::new()))
        .scope(ScopeToken::new("photos.read").unwrap(), "photos.read")
        .rate_limiter(tessera::MemoryRateLimiter::default().with_network_limit(
            tessera::Action::ClientRegistration,
            tessera::Limit::new(1, time::Duration::minutes(1)),
        ))
        .enable_dynamic_registration(tessera::RegistrationPolicy::open())
        .build()
        .unwrap();
    let client = Client::tracked(app(server)).await.unwrap();
    let body =
        r#"{"redirect_uris":["http://127.0.0.1:4567/cb"],"token_endpoint_auth_method":"none"}"#;
    let register = |remote: &str, real_ip: Option<&str>| {
        let mut request = client
            .post("/register")
            .header(ContentType::JSON)
            .remote(remote.parse().unwrap())
            .body(body);
        if let Some(ip) = real_ip {
            request = request.header(Header::new("X-Real-IP", ip.to_owned()));
        }
        async move { request.dispatch().await.status() }
    };
    assert_eq!(register("192.0.2.1:5000", None).await, Status::Created);
    assert_eq!(
        register("192.0.2.1:5001", None).await,
        Status::ServiceUnavailable
    );
    assert_eq!(register("192.0.2.2:5000", None).await, Status::Created);
    // A forged header neither spends another's share nor gets a new one.
    assert_eq!(
        register("10.0.0.1:5000", Some("192.0.2.1")).await,
        Status::Created
    );
    assert_eq!(
        register("10.0.0.1:5000", Some("198.51.100.3")).await,
        Status::ServiceUnavailable
    );
}
