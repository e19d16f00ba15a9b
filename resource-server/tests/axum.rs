//! A resource server in its own axum app (another "process": its own port,
//! no `Server`), validating tokens of a Tessera authorization server over
//! HTTP: locally against the fetched JWKS, and by remote introspection
//! (RFC 7662). Every refusal path is checked for its RFC 6750 §3 answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use tessera::{KeySet, RemoteResource, TokenVerifier};
use tessera_axum::{Bearer, BearerRejection, require_scope};
use tessera_resource_server::{FetchLimits, IntrospectionVerifier, JwksVerifier};

use common::{API_SECRET, As, api, closed_port, forged, get as fetch, listener, mcp};

async fn photos<V: TokenVerifier + Clone>(
    token: Bearer<V>,
) -> Result<axum::Json<Value>, BearerRejection> {
    token.require(&["photos.read"])?;
    Ok(axum::Json(
        json!({ "owner": token.principal(), "client": token.client_id.as_str() }),
    ))
}

async fn tools<V: TokenVerifier + Clone>(token: Bearer<V>) -> String {
    token.client_id.to_string()
}

/// The resource server's protected resource metadata (RFC 9728 §3).
async fn metadata(
    State(rs): State<RemoteResource>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    match rs.metadata_response(uri.path()) {
        Some(r) => tessera_axum::TesseraResponse(r).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

use axum::response::IntoResponse;

/// The resource server: `/api/photos` (photos.read, checked in the
/// handler), `/api/upload` (photos.write, by the layer), `/mcp/tools`
/// (another resource), and its metadata documents.
fn app<V: TokenVerifier + Clone>(verifier: V, rs: RemoteResource) -> Router {
    let api = Router::new()
        .route("/api/photos", get(photos::<V>))
        .route("/mcp/tools", get(tools::<V>))
        .with_state(verifier.clone());
    let write = Router::new()
        .route("/api/upload", get(|| async { "uploaded" }))
        .route_layer(require_scope(verifier, &["photos.write"]));
    let meta = Router::new()
        .route("/.well-known/oauth-protected-resource/api", get(metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata))
        .with_state(rs);
    api.merge(write).merge(meta)
}

async fn serve(app: Router, l: tokio::net::TcpListener) {
    tokio::spawn(async move { axum::serve(l, app).await });
}

#[tokio::test]
async fn jwks_verifier_validates_locally_across_a_key_rotation() {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr))
        .with_resource(mcp(rs_addr))
        .with_realm("photos")
        .with_leeway(time::Duration::seconds(2));
    // RFC 8414 discovery of `jwks_uri` from the issuer.
    let verifier = JwksVerifier::builder(rs.clone())
        .refresh_cooldown(Duration::from_millis(300))
        .build()
        .unwrap();
    serve(app(verifier.clone(), rs), l).await;
    let base = format!("http://{rs_addr}");
    let http = reqwest::Client::new();

    let token = auth.token("backup-job", None).await;
    let (status, body, _) = fetch(&http, &format!("{base}/api/photos"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["owner"], "backup-job",
        "client credentials: the client acts"
    );
    assert_eq!(auth.jwks_fetches(), 1);
    // Many requests, no more fetches: validation is local.
    for _ in 0..20 {
        assert_eq!(
            fetch(&http, &format!("{base}/api/photos"), Some(&token))
                .await
                .0,
            200
        );
    }
    assert_eq!(auth.jwks_fetches(), 1);
    assert_eq!(verifier.fetch_count(), 1);

    // Key rotation: tokens of the new key name a kid the resource server
    // has not seen; it fetches the set again (once the cooldown allows).
    tokio::time::sleep(Duration::from_millis(350)).await;
    auth.rotate();
    let rotated = auth.token("backup-job", None).await;
    let (status, body, _) = fetch(&http, &format!("{base}/api/photos"), Some(&rotated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(auth.jwks_fetches(), 2);
    // The old key still verifies its tokens (RFC 7517: both published).
    assert_eq!(
        fetch(&http, &format!("{base}/api/photos"), Some(&token))
            .await
            .0,
        200
    );
    assert_eq!(auth.jwks_fetches(), 2);

    // RS256, which RFC 9068 §2.1 says a resource server "MUST include",
    // verifies by default.
    tokio::time::sleep(Duration::from_millis(350)).await;
    auth.rotate_to_rsa();
    let rsa = auth.token("backup-job", None).await;
    assert!(
        rsa.starts_with("eyJhbGciOiJSUzI1NiI"),
        "an RS256 header first"
    );
    let (status, body, _) = fetch(&http, &format!("{base}/api/photos"), Some(&rsa)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(auth.jwks_fetches(), 3);

    // The layer: photos.write is missing: 403 insufficient_scope (RFC 6750 §3.1).
    let (status, _, challenge) = fetch(&http, &format!("{base}/api/upload"), Some(&token)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"photos.write\""), "{challenge}");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"http://{rs_addr}/.well-known/oauth-protected-resource/api\""
        )),
        "RFC 9728 §5.1: {challenge}"
    );

    // The token is for /api: /mcp refuses it (RFC 8707 §2, 401 invalid_token);
    // a token for /mcp passes there.
    let (status, _, challenge) = fetch(&http, &format!("{base}/mcp/tools"), Some(&token)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("oauth-protected-resource/mcp"),
        "{challenge}"
    );
    let mcp_token = auth
        .token("backup-job", Some(&format!("http://{rs_addr}/mcp")))
        .await;
    assert_eq!(
        fetch(&http, &format!("{base}/mcp/tools"), Some(&mcp_token))
            .await
            .0,
        200
    );
    assert_eq!(
        fetch(&http, &format!("{base}/api/photos"), Some(&mcp_token))
            .await
            .0,
        401
    );

    // No token: 401 with a bare challenge naming the metadata (RFC 6750
    // §3.1, RFC 9728 §5.1), whose document names the authorization server.
    let (status, _, challenge) = fetch(&http, &format!("{base}/api/photos"), None).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("Bearer resource_metadata=\""),
        "{challenge}"
    );
    assert!(challenge.contains("realm=\"photos\""), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
    let url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let doc: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], format!("http://{rs_addr}/api"));
    assert_eq!(doc["authorization_servers"][0], auth.issuer);

    // A token in the query: 400 invalid_request (RFC 6750 §2.3, RFC 9700 §4.3.2).
    let r = http
        .get(format!("{base}/api/photos?access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn jwks_verifier_refuses_every_bad_token_rfc9068_4() {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs =
        RemoteResource::new(&auth.issuer, api(rs_addr)).with_leeway(time::Duration::seconds(2));
    let verifier = JwksVerifier::builder(rs.clone())
        .jwks_uri(format!("{}/jwks", auth.issuer))
        .refresh_cooldown(Duration::from_secs(60))
        .build()
        .unwrap();
    serve(app(verifier.clone(), rs), l).await;
    let url = format!("http://{rs_addr}/api/photos");
    let http = reqwest::Client::new();
    let aud = format!("http://{rs_addr}/api");
    let good = auth.sign("at+jwt", &auth.claims(&aud));
    let (status, body, _) = fetch(&http, &url, Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["owner"], "alice");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let altered = |f: &dyn Fn(&mut Value)| {
        let mut c = auth.claims(&aud);
        f(&mut c);
        c
    };
    let kid = auth
        .keys
        .signing_key(time::OffsetDateTime::now_utc())
        .kid()
        .to_owned();
    let public_jwk = serde_json::to_vec(
        &auth
            .keys
            .signing_key(time::OffsetDateTime::now_utc())
            .verifying_key()
            .to_jwk(),
    )
    .unwrap();
    let hmac_with_public_key = {
        use hmac::Mac;
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
        let unsigned = forged(&header, &auth.claims(&aud), b"");
        let input = unsigned.trim_end_matches('.');
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&public_jwk).unwrap();
        mac.update(input.as_bytes());
        forged(&header, &auth.claims(&aud), &mac.finalize().into_bytes())
    };
    let cases: Vec<(&str, String)> = vec![
        // RFC 9068 §4 step 7 / RFC 7519 §4.1.4: expired beyond the leeway.
        (
            "expired",
            auth.sign("at+jwt", &altered(&|c| c["exp"] = json!(now - 10))),
        ),
        // §4 step 6: another audience.
        (
            "wrong audience",
            auth.sign(
                "at+jwt",
                &altered(&|c| c["aud"] = json!("https://elsewhere/api")),
            ),
        ),
        // §4 step 2: another issuer.
        (
            "wrong issuer",
            auth.sign(
                "at+jwt",
                &altered(&|c| c["iss"] = json!("https://evil.example")),
            ),
        ),
        // §4 step 1 / RFC 8725 §3.11: typ must be at+jwt.
        ("typ JWT", auth.sign("JWT", &auth.claims(&aud))),
        // RFC 8725 §3.1: alg none selects no key.
        (
            "alg none",
            forged(
                &json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
                &auth.claims(&aud),
                b"",
            ),
        ),
        // RFC 8725 §2.1: an HMAC keyed with the public key.
        ("HS256 with the public key", hmac_with_public_key),
        ("bad signature", {
            let mut t = good.clone();
            t.truncate(t.len() - 4);
            t.push_str("AAAA");
            t
        }),
        (
            "not yet valid",
            auth.sign("at+jwt", &altered(&|c| c["nbf"] = json!(now + 600))),
        ),
        (
            "no client_id",
            auth.sign(
                "at+jwt",
                &altered(&|c| {
                    c.as_object_mut().unwrap().remove("client_id");
                }),
            ),
        ),
        // RFC 9449 §6.1: a DPoP-bound token presented as a bearer token.
        (
            "cnf-bound",
            auth.sign(
                "at+jwt",
                &altered(&|c| {
                    c["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
                }),
            ),
        ),
        ("garbage", "abc.def.ghi".into()),
        ("opaque", "tsa_notajwt".into()),
    ];
    for (what, token) in cases {
        let (status, body, challenge) = fetch(&http, &url, Some(&token)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "invalid_token", "{what}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    // One fetch for all of them: none named an unknown kid.
    assert_eq!(auth.jwks_fetches(), 1);
}

#[tokio::test]
async fn an_unknown_kid_flood_fetches_the_jwks_at_most_once_per_cooldown() {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    let cooldown = Duration::from_millis(800);
    let verifier = JwksVerifier::builder(rs.clone())
        .refresh_cooldown(cooldown)
        .build()
        .unwrap();
    serve(app(verifier.clone(), rs), l).await;
    let url = format!("http://{rs_addr}/api/photos");
    let http = reqwest::Client::new();
    let aud = format!("http://{rs_addr}/api");
    let good = auth.token("backup-job", None).await;
    assert_eq!(fetch(&http, &url, Some(&good)).await.0, 200);
    assert_eq!(auth.jwks_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(850)).await;
    // 200 tokens, each signed by a key of its own (a random kid), sent 8 at a time.
    let tokens: Vec<String> = (0..200)
        .map(|_| {
            let key =
                tessera::SigningKey::generate(tessera::JwsAlgorithm::Es256, &tessera::OsRandom);
            key.sign_jwt("at+jwt", &auth.claims(&aud)).unwrap()
        })
        .collect();
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move { fetch(&http, &url, Some(&token)).await.0 });
        if tasks.len() >= 8 {
            assert_eq!(tasks.join_next().await.unwrap().unwrap(), 401);
        }
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    // At most one fetch per cooldown began while the flood ran.
    let cooldowns = started.elapsed().as_millis() / cooldown.as_millis() + 1;
    let during = auth.jwks_fetches() - 1;
    assert!(
        during >= 1 && u128::from(during) <= cooldowns,
        "{during} JWKS fetches in {:?} ({cooldowns} cooldowns) for 200 unknown kids",
        started.elapsed()
    );
    // And the real token still passes.
    assert_eq!(fetch(&http, &url, Some(&good)).await.0, 200);
}

#[tokio::test]
async fn an_unreachable_authorization_server_is_503_never_accepted() {
    let (l, rs_addr) = listener().await;
    let down = closed_port().await;
    let rs = RemoteResource::new(format!("http://{down}"), api(rs_addr));
    let limits = FetchLimits::default();
    let jwks = JwksVerifier::builder(rs.clone())
        .limits(limits)
        .refresh_cooldown(Duration::from_millis(100))
        .build()
        .unwrap();
    let (l2, rs2) = listener().await;
    let rs_b = RemoteResource::new(format!("http://{down}"), api(rs2));
    let introspect = IntrospectionVerifier::builder(rs_b.clone(), "photo-api", API_SECRET)
        .build()
        .unwrap();
    serve(app(jwks, rs), l).await;
    serve(app(introspect, rs_b), l2).await;
    let http = reqwest::Client::new();
    for url in [
        format!("http://{rs_addr}/api/photos"),
        format!("http://{rs2}/api/photos"),
    ] {
        for token in ["a.b.c", "tsa_abc"] {
            let (status, body, challenge) = fetch(&http, &url, Some(token)).await;
            assert_eq!(status, 503, "{url}: {body}");
            assert_eq!(body["error"], "temporarily_unavailable");
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            // RFC 6750 §3.1 has no such code for a resource: bare challenge.
            assert!(!challenge.contains("error="), "{challenge}");
        }
    }

    // An authorization server that accepts and never answers: the timeout.
    let (hang, hang_addr) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((s, _)) = hang.accept().await {
                held.push(s);
            }
        }
    });
    let (l3, rs3) = listener().await;
    let rs_c = RemoteResource::new(format!("http://{hang_addr}"), api(rs3));
    let mut limits = FetchLimits::default();
    limits.timeout = Duration::from_millis(300);
    let slow = IntrospectionVerifier::builder(rs_c.clone(), "photo-api", API_SECRET)
        .introspection_endpoint(format!("http://{hang_addr}/introspect"))
        .limits(limits)
        .build()
        .unwrap();
    serve(app(slow, rs_c), l3).await;
    let started = std::time::Instant::now();
    let (status, _, _) = fetch(&http, &format!("http://{rs3}/api/photos"), Some("tsa_abc")).await;
    assert_eq!(status, 503);
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A set that cannot be fetched again is used only up to `max_stale`:
/// whoever can make the fetches fail cannot keep a withdrawn key verifying
/// for ever. Then 503, and the tokens work again once a fetch succeeds.
#[tokio::test]
async fn a_jwk_set_that_cannot_be_refreshed_expires_after_max_stale() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    // The server's JWK Set, served by a host that can be taken down.
    let jwks: Value = reqwest::get(format!("{}/jwks", auth.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let up = Arc::new(AtomicBool::new(true));
    let (jl, jwks_addr) = listener().await;
    let flag = Arc::clone(&up);
    let jwks_app = Router::new().route(
        "/jwks",
        get(move || {
            let (flag, jwks) = (Arc::clone(&flag), jwks.clone());
            async move {
                if flag.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, axum::Json(jwks))
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({})),
                    )
                }
            }
        }),
    );
    serve(jwks_app, jl).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    let verifier = JwksVerifier::builder(rs.clone())
        .jwks_uri(format!("http://{jwks_addr}/jwks"))
        .refresh_cooldown(Duration::from_millis(50))
        .max_age(Duration::from_millis(100))
        .max_stale(Duration::from_millis(2000))
        .build()
        .unwrap();
    serve(app(verifier, rs), l).await;
    let url = format!("http://{rs_addr}/api/photos");
    let http = reqwest::Client::new();
    let token = auth.token("backup-job", None).await;
    assert_eq!(fetch(&http, &url, Some(&token)).await.0, 200);
    // The host goes down: the last set serves for a while...
    up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fetch(&http, &url, Some(&token)).await.0, 200);
    // ...then no more.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(fetch(&http, &url, Some(&token)).await.0, 503);
    // Back up: fetched again, accepted again.
    up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(fetch(&http, &url, Some(&token)).await.0, 200);
}

/// A fake authorization server answering every path with `body`.
async fn fake_as(body: Vec<u8>, content_type: &'static str) -> String {
    let (l, addr) = listener().await;
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", content_type)], body) }
    });
    serve(app, l).await;
    format!("http://{addr}")
}

#[tokio::test]
async fn bad_documents_from_the_authorization_server_are_503() {
    let (l, rs_addr) = listener().await;
    let http = reqwest::Client::new();
    let token = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.e30.AAAA";
    // A JWK Set over the size limit, one that is not a JWK Set, metadata
    // naming another issuer (RFC 8414 §3.3).
    let huge = fake_as(vec![b' '; 100 * 1024], "application/json").await;
    let html = fake_as(b"<html>".to_vec(), "text/html").await;
    let other_issuer = fake_as(
        br#"{"issuer":"https://evil.example","jwks_uri":"https://evil.example/jwks"}"#.to_vec(),
        "application/json",
    )
    .await;
    let mut servers = Vec::new();
    for (issuer, jwks_uri) in [
        (huge.clone(), Some(format!("{huge}/jwks"))),
        (html.clone(), Some(format!("{html}/jwks"))),
        (other_issuer.clone(), None),
    ] {
        let rs = RemoteResource::new(&issuer, api(rs_addr));
        let mut b = JwksVerifier::builder(rs);
        if let Some(u) = jwks_uri {
            b = b.jwks_uri(u);
        }
        servers.push(b.build().unwrap());
    }
    drop(l);
    let header = format!("Bearer {token}");
    for v in servers {
        let request =
            tessera::ResourceRequest::new("/api/photos").with_authorization(Some(&header));
        let e = v.verify(&request).await.unwrap_err();
        assert_eq!(e.status(), 503, "{e:?}");
    }
    // An introspection endpoint answering HTML: 503, not accepted.
    let rs = RemoteResource::new(&html, api(rs_addr));
    let v = IntrospectionVerifier::builder(rs, "photo-api", API_SECRET)
        .introspection_endpoint(format!("{html}/introspect"))
        .build()
        .unwrap();
    let e = v
        .verify(&tessera::ResourceRequest::new("/api").with_authorization(Some("Bearer tsa_x")))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    let _ = http;
}

#[tokio::test]
async fn introspection_sees_revocation_once_the_cache_entry_expires() {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr)).with_resource(mcp(rs_addr));
    // RFC 8414 discovery of the introspection endpoint.
    let verifier = IntrospectionVerifier::builder(rs.clone(), "photo-api", API_SECRET)
        .max_ttl(Duration::from_millis(700))
        .negative_ttl(Duration::from_millis(500))
        .build()
        .unwrap();
    serve(app(verifier.clone(), rs), l).await;
    let url = format!("http://{rs_addr}/api/photos");
    let http = reqwest::Client::new();

    // Opaque and JWT tokens alike.
    for client in ["opaque-job", "backup-job"] {
        let token = auth.token(client, None).await;
        assert_eq!(client == "opaque-job", token.starts_with("tsa_"));
        let before = auth.introspections();
        let (status, body, _) = fetch(&http, &url, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["client"], client);
        // Cached: no second call.
        assert_eq!(fetch(&http, &url, Some(&token)).await.0, 200);
        assert_eq!(auth.introspections(), before + 1);
        // Its audience is /api: /mcp refuses it from the same cached answer.
        assert_eq!(
            fetch(&http, &format!("http://{rs_addr}/mcp/tools"), Some(&token))
                .await
                .0,
            401
        );
        assert_eq!(auth.introspections(), before + 1);

        auth.revoke(client, &token).await;
        // Within the cache entry's life the revocation is not seen yet
        // (RFC 7662 §4: the cost of caching) ...
        assert_eq!(fetch(&http, &url, Some(&token)).await.0, 200);
        tokio::time::sleep(Duration::from_millis(750)).await;
        // ... after it, it is.
        let (status, body, challenge) = fetch(&http, &url, Some(&token)).await;
        assert_eq!(status, 401, "{body}");
        assert!(challenge.contains("error=\"invalid_token\""));
        assert_eq!(auth.introspections(), before + 2);
        // The negative answer is cached too.
        assert_eq!(fetch(&http, &url, Some(&token)).await.0, 401);
        assert_eq!(auth.introspections(), before + 2);
    }

    // Concurrent requests with one new token make one call.
    let token = auth.token("opaque-job", None).await;
    let before = auth.introspections();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let v = verifier.clone();
        let header = format!("Bearer {token}");
        tasks.spawn(async move {
            let request =
                tessera::ResourceRequest::new("/api/photos").with_authorization(Some(&header));
            v.verify(&request).await.is_ok()
        });
    }
    while let Some(ok) = tasks.join_next().await {
        assert!(ok.unwrap());
    }
    assert_eq!(auth.introspections(), before + 1, "coalesced");

    // An unknown token: 401, and its negative answer is cached.
    let before = auth.introspections();
    for _ in 0..3 {
        assert_eq!(fetch(&http, &url, Some("tsa_unknown")).await.0, 401);
    }
    assert_eq!(auth.introspections(), before + 1);
}

/// A stolen refresh token is no access token here. Tessera's authorization
/// server answers it `active` to a resource server that may introspect any
/// token (DEMO-CONTRACT: `photo-api` may), without `token_type` (RFC 7662
/// §2.2 types access tokens only): the resource server refuses it for that.
#[tokio::test]
async fn a_refresh_token_is_refused_as_an_access_token_rfc7662_2_2() {
    use tessera::storage::{NewTokens, TokenRecord};
    use tessera::{ClientId, GrantId, OsRandom, Random, Scope, Secret, Subject, TokenKind};

    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    let verifier = IntrospectionVerifier::builder(rs.clone(), "photo-api", API_SECRET)
        .build()
        .unwrap();
    serve(app(verifier, rs), l).await;

    // A grant with an access and a refresh token, as a code exchange leaves it.
    let now = auth.server.now();
    let grant = GrantId::mint(now, &OsRandom);
    let access = Secret::mint(TokenKind::Access, grant, OsRandom.bytes32());
    let refresh = Secret::mint(TokenKind::Refresh, grant, OsRandom.bytes32());
    let record = |ttl| TokenRecord {
        client_id: ClientId::new("opaque-job").unwrap(),
        subject: Some(Subject::new("alice")),
        scope: Scope::parse("photos.read").unwrap(),
        audience: Some(api(rs_addr).identifier().clone()),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
        family_expires_at: None,
        actor: None,
        dpop_jkt: None,
    };
    let tokens = NewTokens {
        access: (access.hash(), record(600)),
        refresh: Some((refresh.hash(), record(86_400))),
    };
    assert!(auth.server.store().issue(grant, tokens).await.unwrap());

    let url = format!("http://{rs_addr}/api/photos");
    let http = reqwest::Client::new();
    assert_eq!(fetch(&http, &url, Some(access.expose())).await.0, 200);
    let (status, body, challenge) = fetch(&http, &url, Some(refresh.expose())).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn introspection_cache_is_bounded_and_keyed_by_hash() {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    let verifier = IntrospectionVerifier::builder(rs.clone(), "photo-api", API_SECRET)
        .max_entries(10)
        .build()
        .unwrap();
    drop(l);
    // An active answer, cached...
    let token = auth.token("opaque-job", None).await;
    let header = format!("Bearer {token}");
    let good = tessera::ResourceRequest::new("/api").with_authorization(Some(&header));
    assert!(verifier.verify(&good).await.is_ok());
    let calls = verifier.call_count();
    for i in 0..50 {
        let header = format!("Bearer tsa_flood{i}");
        let request = tessera::ResourceRequest::new("/api").with_authorization(Some(&header));
        assert_eq!(verifier.verify(&request).await.unwrap_err().status(), 401);
    }
    assert!(verifier.cached() <= 20, "{} cached", verifier.cached());
    // ...outlives a flood of junk tokens: inactive answers are bounded apart.
    let calls = calls + 50;
    assert_eq!(verifier.call_count(), calls);
    assert!(verifier.verify(&good).await.is_ok());
    assert_eq!(verifier.call_count(), calls, "still cached");
}

#[tokio::test]
async fn wrong_resource_server_credentials_are_503_not_accepted() {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    let verifier = IntrospectionVerifier::builder(rs, "photo-api", "wrong-secret")
        .build()
        .unwrap();
    drop(l);
    let token = auth.token("opaque-job", None).await;
    let header = format!("Bearer {token}");
    let request = tessera::ResourceRequest::new("/api").with_authorization(Some(&header));
    assert_eq!(verifier.verify(&request).await.unwrap_err().status(), 503);
}
