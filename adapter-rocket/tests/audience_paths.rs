//! The bearer guard checks the audience of the resource the *routed* path
//! belongs to (RFC 8707 §2, RFC 9728): rocket routes `/%61pi/photos` and
//! `//api/photos` to `/api/photos`, so the guard must see them as `/api/...`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use serde_json::Value;
use tessera::{
    AuthMethod, Client as OAuthClient, ClientId, ProtectedResource, ResourceIndicator, Scope,
    ScopeToken, SecretHash, Server,
};
use tessera_memory::MemoryStore;
use tessera_rocket::{Bearer, Scoped};

const ISSUER: &str = "http://127.0.0.1:9000";
const SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";

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

async fn client() -> Client {
    let api = ResourceIndicator::new(format!("{ISSUER}/api")).unwrap();
    let mcp = ResourceIndicator::new(format!("{ISSUER}/mcp")).unwrap();
    let store = MemoryStore::with_clients([OAuthClient::confidential(
        ClientId::new("backup-job").unwrap(),
        "backup-job",
        SecretHash::of(SECRET),
    )
    .with_auth_methods([AuthMethod::ClientSecretBasic])
    .with_grant_types(["client_credentials"])
    .with_scope(Scope::parse("photos.read").unwrap())]);
    let server: Server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(store))
        .scope(ScopeToken::new("photos.read").unwrap(), "read")
        .default_resource(api.clone())
        .protected_resource(ProtectedResource::new(api).unwrap())
        .protected_resource(ProtectedResource::new(mcp).unwrap())
        .build()
        .unwrap();
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .attach(tessera_rocket::fairing(server))
    .mount("/", routes![photos, whoami]);
    Client::tracked(rocket).await.unwrap()
}

async fn token_for(client: &Client, resource: &str) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("backup-job:{SECRET}"));
    let response = client
        .post("/token")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Basic {credentials}")))
        .body(format!("grant_type=client_credentials&resource={resource}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let body: Value = serde_json::from_str(&response.into_string().await.unwrap()).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(client: &Client, path: &str, token: &str) -> (Status, Option<String>) {
    let response = client
        .get(path.to_owned())
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    let challenge = response
        .headers()
        .get_one("WWW-Authenticate")
        .map(str::to_owned);
    (response.status(), challenge)
}

#[rocket::async_test]
async fn a_token_for_another_resource_is_refused_however_the_path_is_spelled() {
    let client = client().await;
    let mcp_token = token_for(&client, "http%3A%2F%2F127.0.0.1%3A9000%2Fmcp").await;
    for path in [
        "/api/photos",
        "/%61pi/photos",
        "//api/photos",
        "/api//photos",
        "/api/whoami",
        "/%61pi/whoami",
    ] {
        let (status, challenge) = get(&client, path, &mcp_token).await;
        assert_eq!(status, Status::Unauthorized, "{path}");
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{path}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata=\"http://127.0.0.1:9000/.well-known/oauth-protected-resource/api\""),
            "{path}: {challenge}"
        );
    }
    // The API's own token passes on every spelling the router accepts.
    let api_token = token_for(&client, "http%3A%2F%2F127.0.0.1%3A9000%2Fapi").await;
    for path in ["/api/photos", "/%61pi/photos", "//api/photos"] {
        assert_eq!(get(&client, path, &api_token).await.0, Status::Ok, "{path}");
    }
}
