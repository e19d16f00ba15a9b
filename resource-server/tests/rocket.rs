//! A resource server in its own rocket app (no `Server`: the
//! `resource_server` fairing manages a remote verifier), validating tokens
//! of a Tessera authorization server on a real port: JWTs against the
//! fetched JWKS across a key rotation, and remote introspection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket, get, routes};
use serde_json::json;
use tessera::{RemoteResource, TokenVerifier};
use tessera_resource_server::{IntrospectionVerifier, JwksVerifier};
use tessera_rocket::{Bearer, Scoped};

use common::{API_SECRET, As, api, closed_port, mcp};

tessera_rocket::required_scopes! {
    /// Reading photos.
    PhotosRead => ["photos.read"];
    /// Writing photos.
    PhotosWrite => ["photos.write"];
}

#[get("/api/photos")]
fn photos(token: Scoped<PhotosRead>) -> String {
    token.principal().to_owned()
}

#[get("/api/upload")]
fn upload(_token: Scoped<PhotosWrite>) -> &'static str {
    "uploaded"
}

#[get("/mcp/tools")]
fn tools(token: Bearer) -> String {
    token.client_id.to_string()
}

fn app(verifier: impl TokenVerifier) -> Rocket<Build> {
    let config = rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    };
    rocket::custom(config)
        .attach(tessera_rocket::resource_server(verifier))
        .mount("/", routes![photos, upload, tools])
}

/// The resource server's address (its identifiers' origin; the local
/// client needs no socket).
const RS: &str = "127.0.0.1:7443";

async fn get(client: &Client, path: &str, token: Option<&str>) -> (Status, String, String) {
    let mut r = client.get(path);
    if let Some(t) = token {
        r = r.header(Header::new("Authorization", format!("Bearer {t}")));
    }
    let r = r.dispatch().await;
    let status = r.status();
    let challenge = r
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap_or_default()
        .to_owned();
    (status, challenge, r.into_string().await.unwrap_or_default())
}

#[tokio::test]
async fn rocket_resource_server_validates_jwts_against_the_remote_jwks() {
    let rs: SocketAddr = RS.parse().unwrap();
    let auth = As::start(rs).await;
    let remote = RemoteResource::new(&auth.issuer, api(rs)).with_resource(mcp(rs));
    let verifier = JwksVerifier::builder(remote)
        .refresh_cooldown(Duration::from_millis(200))
        .build()
        .unwrap();
    let client = Client::tracked(app(verifier.clone())).await.unwrap();

    let token = auth.token("backup-job", None).await;
    let (status, _, body) = get(&client, "/api/photos", Some(&token)).await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(body, "backup-job");
    // Scoped<PhotosWrite>: 403 insufficient_scope naming the scope (RFC 6750 §3.1).
    let (status, challenge, _) = get(&client, "/api/upload", Some(&token)).await;
    assert_eq!(status, Status::Forbidden);
    assert!(challenge.contains("scope=\"photos.write\""), "{challenge}");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"http://{RS}/.well-known/oauth-protected-resource/api\""
        )),
        "{challenge}"
    );
    // /mcp is another resource (RFC 8707 §2).
    let (status, challenge, _) = get(&client, "/mcp/tools", Some(&token)).await;
    assert_eq!(status, Status::Unauthorized);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("oauth-protected-resource/mcp"),
        "{challenge}"
    );
    // No token: a bare challenge.
    let (status, challenge, _) = get(&client, "/api/photos", None).await;
    assert_eq!(status, Status::Unauthorized);
    assert!(!challenge.contains("error="), "{challenge}");

    // Rotation: the new kid is fetched on demand, once.
    tokio::time::sleep(Duration::from_millis(250)).await;
    auth.rotate();
    let rotated = auth.token("backup-job", None).await;
    assert_eq!(
        get(&client, "/api/photos", Some(&rotated)).await.0,
        Status::Ok
    );
    assert_eq!(
        get(&client, "/api/photos", Some(&token)).await.0,
        Status::Ok
    );
    assert_eq!(auth.jwks_fetches(), 2);

    // Refusals: expired, wrong issuer, alg none.
    let aud = format!("http://{RS}/api");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut expired = auth.claims(&aud);
    expired["exp"] = json!(now - 60);
    let mut other_iss = auth.claims(&aud);
    other_iss["iss"] = json!("https://evil.example");
    let none = common::forged(
        &json!({"alg": "none", "typ": "at+jwt", "kid": "x"}),
        &auth.claims(&aud),
        b"",
    );
    for bad in [
        auth.sign("at+jwt", &expired),
        auth.sign("at+jwt", &other_iss),
        none,
    ] {
        let (status, challenge, _) = get(&client, "/api/photos", Some(&bad)).await;
        assert_eq!(status, Status::Unauthorized);
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
}

#[tokio::test]
async fn rocket_resource_server_introspects_and_fails_closed() {
    let rs: SocketAddr = RS.parse().unwrap();
    let auth = As::start(rs).await;
    let remote = RemoteResource::new(&auth.issuer, api(rs));
    let verifier = IntrospectionVerifier::builder(remote, "photo-api", API_SECRET)
        .max_ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    let client = Client::tracked(app(verifier)).await.unwrap();
    let token = auth.token("opaque-job", None).await;
    assert_eq!(
        get(&client, "/api/photos", Some(&token)).await.0,
        Status::Ok
    );
    auth.revoke("opaque-job", &token).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, challenge, _) = get(&client, "/api/photos", Some(&token)).await;
    assert_eq!(status, Status::Unauthorized);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // The authorization server unreachable: 503, the core's body.
    let down = closed_port().await;
    let remote = RemoteResource::new(format!("http://{down}"), api(rs));
    let verifier = IntrospectionVerifier::builder(remote, "photo-api", API_SECRET)
        .build()
        .unwrap();
    let client = Client::tracked(app(verifier)).await.unwrap();
    let (status, challenge, body) = get(&client, "/api/photos", Some("tsa_abc")).await;
    assert_eq!(status, Status::ServiceUnavailable);
    assert!(body.contains("temporarily_unavailable"), "{body}");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
}

#[path = "../../core/tests/dpop_client/mod.rs"]
mod dpop_client;

/// `GET /api/photos` with `Authorization` and `DPoP` headers: status and
/// `WWW-Authenticate`.
async fn get_dpop(client: &Client, authorization: &str, proof: Option<&str>) -> (Status, String) {
    let mut r = client
        .get("/api/photos")
        .header(Header::new("authorization", authorization.to_owned()));
    if let Some(p) = proof {
        r = r.header(Header::new("dpop", p.to_owned()));
    }
    let r = r.dispatch().await;
    let challenge = r
        .headers()
        .get_one("www-authenticate")
        .unwrap_or_default()
        .to_owned();
    (r.status(), challenge)
}

/// RFC 9449 §7 through the rocket guard, for both remote verifiers: the
/// guard passes the method, target and `DPoP` header; a bound token works
/// only with a proof by its key, once.
#[tokio::test]
async fn rocket_resource_server_checks_dpop_proofs() {
    let rs: SocketAddr = RS.parse().unwrap();
    let auth = As::start(rs).await;
    let remote = RemoteResource::new(&auth.issuer, api(rs));
    let jwks = JwksVerifier::builder(remote.clone())
        .jwks_uri(format!("{}/jwks", auth.issuer))
        .build()
        .unwrap();
    let introspection = IntrospectionVerifier::builder(remote, "photo-api", API_SECRET)
        .build()
        .unwrap();
    let url = format!("http://{RS}/api/photos");
    for (client, verifier) in [
        ("backup-job", tessera::SharedVerifier::new(jwks)),
        ("opaque-job", tessera::SharedVerifier::new(introspection)),
    ] {
        let http = Client::tracked(app(verifier)).await.unwrap();
        let key = dpop_client::DpopKey::es256();
        let answer = auth
            .dpop_token(
                client,
                &key.proof("POST", &format!("{}/token", auth.issuer), None),
            )
            .await;
        let token = answer["access_token"].as_str().unwrap().to_owned();
        let dpop = format!("DPoP {token}");
        let proof = key.proof("GET", &url, Some(&token));
        assert_eq!(
            get_dpop(&http, &dpop, Some(&proof)).await.0,
            Status::Ok,
            "{client}"
        );
        for (what, authorization, proof) in [
            ("replayed", dpop.clone(), Some(proof.clone())),
            ("no proof", dpop.clone(), None),
            (
                "another key",
                dpop.clone(),
                Some(dpop_client::DpopKey::es256().proof("GET", &url, Some(&token))),
            ),
            (
                "htm POST",
                dpop.clone(),
                Some(key.proof("POST", &url, Some(&token))),
            ),
        ] {
            let (status, challenge) = get_dpop(&http, &authorization, proof.as_deref()).await;
            assert_eq!(status, Status::Unauthorized, "{client}: {what}");
            assert!(
                challenge.starts_with("DPoP ")
                    && challenge.contains("error=\"invalid_dpop_proof\""),
                "{client}: {what}: {challenge}"
            );
        }
        // §7.2: as Bearer, refused with a DPoP challenge.
        let (status, challenge) = get_dpop(&http, &format!("Bearer {token}"), None).await;
        assert_eq!(status, Status::Unauthorized, "{client}: as Bearer");
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_token\""),
            "{client}: as Bearer: {challenge}"
        );
    }
}
