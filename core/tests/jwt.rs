//! JWT access tokens (RFC 9068), the JWKS endpoint and key rotation,
//! through the service layer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use tessera::{
    AccessTokenFormat, Client, ClientId, Endpoint, HttpRequest, JwsAlgorithm, JwtError, KeySet,
    RotatingKeys, Scope, SecretHash, Server, SigningKey,
};
use time::Duration;

const ISSUER: &str = "https://as.example";

fn keys() -> Arc<RotatingKeys> {
    Arc::new(RotatingKeys::generate(
        JwsAlgorithm::Es256,
        &tessera::CountingRandom::default(),
    ))
}

fn jwt_fixture(keys: &Arc<RotatingKeys>) -> Fixture {
    let k: Arc<dyn KeySet> = keys.clone();
    fixture_with(|b| b.jwt_access_tokens(k))
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let p = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

async fn introspect(f: &Fixture, token: &str) -> serde_json::Value {
    let r = f
        .server
        .handle(
            Endpoint::Introspection,
            &HttpRequest::form_post(&format!("token={token}"), Some(&basic("api", "api-secret"))),
        )
        .await;
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

async fn bearer_ok(server: &Server, token: &str) -> bool {
    server
        .verify_bearer(Some(&format!("Bearer {token}")), None)
        .await
        .is_ok()
}

async fn get(server: &Server, endpoint: Endpoint) -> tessera::HttpResponse {
    server.handle(endpoint, &HttpRequest::new("GET")).await
}

#[tokio::test]
async fn opaque_stays_the_default_and_publishes_no_keys() {
    let f = fixture();
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    assert!(t["access_token"].as_str().unwrap().starts_with("tsa_"));
    assert!(f.server.metadata().jwks_uri.is_none());
    assert!(
        f.server
            .routes()
            .iter()
            .all(|r| r.endpoint != Endpoint::Jwks)
    );
    assert!(f.server.jwks().is_none());
    let m: serde_json::Value =
        serde_json::from_slice(&get(&f.server, Endpoint::Metadata).await.body).unwrap();
    assert!(m.get("jwks_uri").is_none());
}

#[tokio::test]
async fn jwks_endpoint_publishes_public_keys_with_cache_headers_rfc7517() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let uri = f.server.metadata().jwks_uri.unwrap();
    assert_eq!(uri, format!("{ISSUER}/jwks"));
    assert!(
        f.server
            .routes()
            .iter()
            .any(|r| r.endpoint == Endpoint::Jwks && r.path == "/jwks")
    );
    let r = get(&f.server, Endpoint::Jwks).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/jwk-set+json"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    let set: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let jwks = set["keys"].as_array().unwrap();
    assert_eq!(jwks.len(), 1);
    let k = &jwks[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kid"], keys.signing_key(f.server.now()).kid());
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(k.get(private).is_none(), "{private}");
    }
    // Only GET and HEAD.
    let post = f
        .server
        .handle(Endpoint::Jwks, &HttpRequest::form_post("", None))
        .await;
    assert_eq!(post.status, 405);
    // A configured path and max-age.
    let k: Arc<dyn KeySet> = keys.clone();
    let g = fixture_with(|b| {
        b.signing_keys(k)
            .paths(tessera::EndpointPaths::default().with_jwks("/oauth/keys.json"))
            .jwks_max_age(Duration::hours(1))
    });
    assert_eq!(
        g.server.metadata().jwks_uri.as_deref(),
        Some("https://as.example/oauth/keys.json")
    );
    assert_eq!(
        get(&g.server, Endpoint::Jwks).await.header("cache-control"),
        Some("public, max-age=3600")
    );
}

#[tokio::test]
async fn issued_jwt_has_the_rfc9068_header_and_claims() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (status, t) = redeem(&f, &code_for_shop(&f).await).await;
    assert_eq!(status, 200);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    let at = t["access_token"].as_str().unwrap();
    // The refresh token stays opaque.
    assert!(t["refresh_token"].as_str().unwrap().starts_with("tsr_"));
    let header = part(at, 0);
    assert_eq!(header["typ"], "at+jwt"); // §2.1
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], keys.signing_key(f.server.now()).kid());
    let c = part(at, 1);
    let now = f.server.now().unix_timestamp();
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["sub"], "alice");
    // No resource indicators configured: the audience is the issuer.
    assert_eq!(c["aud"], ISSUER);
    assert_eq!(c["client_id"], "shop");
    assert_eq!(c["scope"], "photos.read profile");
    assert_eq!(c["iat"], now);
    assert_eq!(c["exp"], now + 3600);
    assert_eq!(c["jti"].as_str().unwrap().len(), 43);
    // Accepted by the server's own bearer check and introspection.
    assert!(bearer_ok(&f.server, at).await);
    let i = introspect(&f, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], "alice");
    assert_eq!(i["client_id"], "shop");
    assert_eq!(i["token_type"], "Bearer");
    // And by a local validator over the server's keys.
    let v = f.server.access_token_validator(ISSUER).unwrap();
    let claims = v.validate(at, f.server.now()).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(
        claims.scopes().collect::<Vec<_>>(),
        ["photos.read", "profile"]
    );
}

#[tokio::test]
async fn client_credentials_jwt_names_the_client_as_subject() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (status, t) = token(
        &f,
        "grant_type=client_credentials",
        Some(&basic("job", "job-secret")),
    )
    .await;
    assert_eq!(status, 200);
    let c = part(t["access_token"].as_str().unwrap(), 1);
    assert_eq!(c["sub"], "job");
    assert_eq!(c["client_id"], "job");
}

#[tokio::test]
async fn revoked_jwt_is_inactive_and_refused_rfc7009() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    // Another client's revocation changes nothing.
    let r = f
        .server
        .handle(
            Endpoint::Revocation,
            &HttpRequest::form_post(&format!("token={at}"), Some(&basic("job", "job-secret"))),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(bearer_ok(&f.server, at).await);
    let r = f
        .server
        .handle(
            Endpoint::Revocation,
            &HttpRequest::form_post(
                &format!("token={at}&token_type_hint=access_token"),
                Some(&basic("shop", SHOP_SECRET)),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!bearer_ok(&f.server, at).await);
    assert_eq!(
        introspect(&f, at).await,
        serde_json::json!({"active": false})
    );
    // Revoking the refresh token revokes the grant, JWTs included.
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert!(bearer_ok(&f.server, at).await);
    f.server
        .handle(
            Endpoint::Revocation,
            &HttpRequest::form_post(&format!("token={rt}"), Some(&basic("shop", SHOP_SECRET))),
        )
        .await;
    assert!(!bearer_ok(&f.server, at).await);
    assert_eq!(introspect(&f, at).await["active"], false);
}

#[tokio::test]
async fn refreshed_jwt_is_a_new_jwt_and_family_reuse_kills_it() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let body = format!("grant_type=refresh_token&refresh_token={rt}");
    let (status, t2) = token(&f, &body, Some(&basic("shop", SHOP_SECRET))).await;
    assert_eq!(status, 200);
    let at2 = t2["access_token"].as_str().unwrap();
    assert_eq!(part(at2, 0)["typ"], "at+jwt");
    assert!(bearer_ok(&f.server, at2).await);
    // Presenting the rotated refresh token again revokes the family.
    let (status, _) = token(&f, &body, Some(&basic("shop", SHOP_SECRET))).await;
    assert_eq!(status, 400);
    assert!(!bearer_ok(&f.server, at2).await);
}

#[tokio::test]
async fn expired_jwt_is_refused() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let v = f.server.access_token_validator(ISSUER).unwrap();
    f.clock.advance(Duration::hours(1));
    assert!(!bearer_ok(&f.server, at).await);
    assert_eq!(introspect(&f, at).await["active"], false);
    assert_eq!(v.validate(at, f.server.now()), Err(JwtError::Expired));
}

/// Tokens no key of the server signed, or that ask for another algorithm
/// or type, are refused everywhere: the bearer check, introspection, a
/// local validator (RFC 8725 §2.1, §3.1, §3.11).
#[tokio::test]
async fn forged_tokens_are_refused_rfc8725() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let header = part(at, 0);
    let claims = part(at, 1);
    let kid = header["kid"].as_str().unwrap();
    let now = f.server.now();
    let v = f.server.access_token_validator(ISSUER).unwrap();
    let input = |h: &serde_json::Value| {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };

    // alg none, with and without a signature part.
    let none = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    let unsigned = format!("{}.", input(&none));
    // HS256 keyed with the public key (the JWK's JSON, and the point's bytes).
    let hs = serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let public = serde_json::to_string(&keys.signing_key(now).verifying_key().to_jwk()).unwrap();
    let hmac_with = |secret: &[u8]| {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(input(&hs).as_bytes());
        format!(
            "{}.{}",
            input(&hs),
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let hs_jwk = hmac_with(public.as_bytes());
    let x = keys.signing_key(now).verifying_key().to_jwk().x;
    let hs_x = hmac_with(&URL_SAFE_NO_PAD.decode(&x).unwrap());
    // EdDSA named in the header of an ES256 key's kid.
    let ed = SigningKey::generate(JwsAlgorithm::EdDsa, &tessera::OsRandom);
    let mut ed_header = header.clone();
    ed_header["alg"] = "EdDSA".into();
    let ed_sig = {
        let t = ed.sign_jwt("at+jwt", &claims).unwrap();
        let sig = t.rsplit('.').next().unwrap().to_owned();
        format!("{}.{sig}", input(&ed_header))
    };
    // A key the server does not have, under its own kid and under the server's kid.
    let rogue = SigningKey::generate(JwsAlgorithm::Es256, &tessera::OsRandom);
    let unknown_kid = rogue.sign_jwt("at+jwt", &claims).unwrap();
    let rogue_same_kid = SigningKey::from_pem(
        &{
            use p256::pkcs8::EncodePrivateKey;
            p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into())
                .unwrap()
                .to_pkcs8_pem(Default::default())
                .unwrap()
                .to_string()
        },
        Some(kid),
    )
    .unwrap()
    .sign_jwt("at+jwt", &claims)
    .unwrap();
    // The server's own key, but the wrong typ, or none.
    let signer = keys.signing_key(now);
    let plain_jwt = signer.sign_jwt("JWT", &claims).unwrap();
    let dpop = signer.sign_jwt("dpop+jwt", &claims).unwrap();
    // The server's own key, another issuer.
    let mut other_iss = claims.clone();
    other_iss["iss"] = "https://evil.example".into();
    let wrong_iss = signer.sign_jwt("at+jwt", &other_iss).unwrap();
    // A signed token with a crit header.
    let mut crit_header = header.clone();
    crit_header["crit"] = serde_json::json!(["exp"]);
    let crit = {
        let sig = signer
            .sign_jwt("at+jwt", &claims)
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_owned();
        format!("{}.{sig}", input(&crit_header))
    };
    // A valid signature over other claims, spliced.
    let mut more_scope = claims.clone();
    more_scope["scope"] = "photos.read photos.write profile".into();
    let spliced = format!(
        "{}.{}.{}",
        at.split('.').next().unwrap(),
        URL_SAFE_NO_PAD.encode(more_scope.to_string()),
        at.rsplit('.').next().unwrap()
    );

    let cases: [(&str, &str, JwtError); 12] = [
        ("alg none", &unsigned, JwtError::AlgorithmMismatch),
        (
            "alg none, signed",
            &format!("{unsigned}AAAA"),
            JwtError::AlgorithmMismatch,
        ),
        (
            "HS256 keyed by the public JWK",
            &hs_jwk,
            JwtError::AlgorithmMismatch,
        ),
        (
            "HS256 keyed by the public point",
            &hs_x,
            JwtError::AlgorithmMismatch,
        ),
        (
            "EdDSA under an ES256 kid",
            &ed_sig,
            JwtError::AlgorithmMismatch,
        ),
        ("unknown kid", &unknown_kid, JwtError::UnknownKey),
        (
            "another key under our kid",
            &rogue_same_kid,
            JwtError::BadSignature,
        ),
        ("typ JWT", &plain_jwt, JwtError::WrongType),
        ("typ dpop+jwt", &dpop, JwtError::WrongType),
        ("wrong iss", &wrong_iss, JwtError::WrongIssuer),
        ("crit", &crit, JwtError::CriticalHeader),
        ("spliced claims", &spliced, JwtError::BadSignature),
    ];
    for (what, token, why) in cases {
        assert_eq!(v.validate(token, now).err(), Some(why), "{what}");
        assert!(!bearer_ok(&f.server, token).await, "{what}");
        assert_eq!(introspect(&f, token).await["active"], false, "{what}");
        // Revoking a forged token is a harmless 200 and leaves the real one.
        let r = f
            .server
            .handle(
                Endpoint::Revocation,
                &HttpRequest::form_post(
                    &format!("token={token}"),
                    Some(&basic("shop", SHOP_SECRET)),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{what}");
    }
    assert!(bearer_ok(&f.server, at).await);
    // Garbage is malformed, never a panic.
    for junk in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "e30.e30.",
        &"A".repeat(9000),
    ] {
        assert!(v.validate(junk, now).is_err(), "{junk}");
    }
    // Another audience: refused by a resource server for it.
    let mcp = f
        .server
        .access_token_validator(format!("{ISSUER}/mcp"))
        .unwrap();
    assert_eq!(mcp.validate(at, now).err(), Some(JwtError::WrongAudience));
}

/// A DPoP-bound JWT (`cnf.jkt`, RFC 9449 §6.1) is no bearer token:
/// `validate` refuses it, `validate_with_binding` hands its `cnf` to the
/// caller, who must check the request's proof against it.
#[tokio::test]
async fn a_bound_jwt_is_refused_as_a_bearer_token_rfc9449_6_1() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let now = f.server.now();
    let v = f.server.access_token_validator(ISSUER).unwrap();
    assert!(v.validate(at, now).is_ok(), "unbound: a bearer token");
    let mut claims = part(at, 1);
    claims["cnf"] = serde_json::json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let bound = keys.signing_key(now).sign_jwt("at+jwt", &claims).unwrap();
    assert_eq!(v.validate(&bound, now), Err(JwtError::SenderConstrained));
    let claims = v.validate_with_binding(&bound, now).unwrap();
    assert_eq!(
        claims.cnf.map(|c| c.jkt),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned())
    );
}

#[tokio::test]
async fn tokens_verify_across_a_key_rotation() {
    let keys = keys();
    let f = jwt_fixture(&keys);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let old = t["access_token"].as_str().unwrap().to_owned();
    let old_kid = part(&old, 0)["kid"].as_str().unwrap().to_owned();
    let v = f.server.access_token_validator(ISSUER).unwrap();
    // Rotate to an Ed25519 key; the old one verifies for the token lifetime.
    let next = SigningKey::generate(JwsAlgorithm::EdDsa, &tessera::OsRandom);
    let next_kid = next.kid().to_owned();
    keys.rotate(next, f.server.now(), Duration::hours(1))
        .unwrap();
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let new = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(part(&new, 0)["kid"], next_kid.as_str());
    assert_eq!(part(&new, 0)["alg"], "EdDSA");
    let kids: Vec<String> = f
        .server
        .jwks()
        .unwrap()
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect();
    assert_eq!(kids, [next_kid.clone(), old_kid.clone()]);
    for token in [&old, &new] {
        assert!(bearer_ok(&f.server, token).await);
        assert!(v.validate(token, f.server.now()).is_ok());
        assert_eq!(introspect(&f, token).await["active"], true);
    }
    // An hour on, the old key and its tokens are gone; the new key's stay.
    f.clock.advance(Duration::minutes(59));
    assert!(v.validate(&old, f.server.now()).is_ok());
    f.clock.advance(Duration::minutes(1));
    assert_eq!(f.server.jwks().unwrap().keys.len(), 1);
    assert_eq!(
        v.validate(&old, f.server.now()).err(),
        Some(JwtError::UnknownKey)
    );
}

#[tokio::test]
async fn jwt_is_opt_in_per_client() {
    let keys = keys();
    let k: Arc<dyn KeySet> = keys.clone();
    let job = |id: &str| {
        Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of("s"))
            .with_grant_types(["client_credentials"])
            .with_scope(Scope::parse("photos.read").unwrap())
    };
    let store = tessera_memory::MemoryStore::with_clients([
        job("plain"),
        job("signed").with_access_token_format(AccessTokenFormat::Jwt),
    ]);
    let server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(store))
        .scope(tessera::ScopeToken::new("photos.read").unwrap(), "read")
        .signing_keys(k)
        .build()
        .unwrap();
    let issue = |id: &'static str| {
        let server = server.clone();
        async move {
            let r = server
                .handle(
                    Endpoint::Token,
                    &HttpRequest::form_post("grant_type=client_credentials", Some(&basic(id, "s"))),
                )
                .await;
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let plain = issue("plain").await;
    let signed = issue("signed").await;
    assert!(plain.starts_with("tsa_"));
    assert_eq!(part(&signed, 0)["typ"], "at+jwt");
    assert!(bearer_ok(&server, &plain).await);
    assert!(bearer_ok(&server, &signed).await);
    // With keys, the JWKS is served even though opaque is the default.
    assert!(server.metadata().jwks_uri.is_some());
    // The other way round: JWT by default, one client opting out.
    let k: Arc<dyn KeySet> = keys.clone();
    let store = tessera_memory::MemoryStore::with_clients([
        job("plain").with_access_token_format(AccessTokenFormat::Opaque),
        job("signed"),
    ]);
    let server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(store))
        .scope(tessera::ScopeToken::new("photos.read").unwrap(), "read")
        .jwt_access_tokens(k)
        .build()
        .unwrap();
    let r = server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post("grant_type=client_credentials", Some(&basic("plain", "s"))),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["access_token"].as_str().unwrap().starts_with("tsa_"));
}

#[tokio::test]
async fn jwks_path_clashes_are_build_errors() {
    let k: Arc<dyn KeySet> = keys();
    let r = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(tessera_memory::MemoryStore::with_clients(Vec::<
            Client,
        >::new(
        ))))
        .signing_keys(k)
        .paths(tessera::EndpointPaths::default().with_jwks("/token"))
        .build();
    assert_eq!(
        r.err(),
        Some(tessera::BuildError::DuplicatePath("/token".into()))
    );
}

/// RFC 9068 §2.1: "Authorization servers and resource servers conforming
/// to this specification MUST include RS256 [...] among their supported
/// signature algorithms." A server given an RSA key signs RS256, publishes
/// the key as `kty: RSA` (`n`, `e`), and its tokens verify, are revoked and
/// refuse another algorithm's header.
#[tokio::test]
async fn an_rsa_key_signs_rs256_rfc9068_2_1() {
    let key = SigningKey::from_pem(include_str!("../testdata/rsa-2048.pem"), None).unwrap();
    let keys = Arc::new(RotatingKeys::new(Arc::new(key)));
    let f = jwt_fixture(&keys);
    let (status, t) = redeem(&f, &code_for_shop(&f).await).await;
    assert_eq!(status, 200);
    let at = t["access_token"].as_str().unwrap();
    let header = part(at, 0);
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("RS256"), Some("at+jwt"))
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(at.split('.').nth(2).unwrap())
            .unwrap()
            .len(),
        256
    );
    assert!(bearer_ok(&f.server, at).await);
    assert_eq!(introspect(&f, at).await["active"], true);
    let v = f.server.access_token_validator(ISSUER).unwrap();
    assert_eq!(v.validate(at, f.server.now()).unwrap().sub, "alice");
    // The JWKS: the public RSA key, nothing private.
    let jwks: serde_json::Value =
        serde_json::from_slice(&get(&f.server, Endpoint::Jwks).await.body).unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["e"].as_str()),
        (Some("RSA"), Some("RS256"), Some("AQAB"))
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    for private in ["d", "p", "q", "dp", "dq", "qi", "x", "crv"] {
        assert!(jwk.get(private).is_none(), "{private}");
    }
    // The same signature under another `alg` (RFC 8725 §3.1), and a
    // changed payload, are refused.
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    let mut h = header.clone();
    h["alg"] = "PS256".into();
    parts[0] = URL_SAFE_NO_PAD.encode(h.to_string());
    assert!(!bearer_ok(&f.server, &parts.join(".")).await);
    let mut c = part(at, 1);
    c["sub"] = "mallory".into();
    let mut parts: Vec<&str> = at.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(c.to_string());
    parts[1] = &forged;
    assert!(!bearer_ok(&f.server, &parts.join(".")).await);
    // Revoked: refused and inactive.
    let r = f
        .server
        .handle(
            Endpoint::Revocation,
            &HttpRequest::form_post(&format!("token={at}"), Some(&basic("shop", "shop-secret"))),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!bearer_ok(&f.server, at).await);
    assert_eq!(introspect(&f, at).await["active"], false);
}
