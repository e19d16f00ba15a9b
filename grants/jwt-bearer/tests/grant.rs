//! The JWT bearer grant (RFC 7523 §2.1) through the server's token
//! endpoint, on the memory store: the happy path and every refusal of §3,
//! each `invalid_grant` (§3.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera::{
    Client, ClientId, Endpoint, FixedClock, HttpRequest, JwsAlgorithm, OsRandom, Random, Scope,
    ScopeToken, SecretHash, Server, SigningKey, Subject,
};
use tessera_jwt_bearer::{GRANT_TYPE, JwtBearerGrant, TrustedIssuer};
use tessera_memory::MemoryStore;
use time::OffsetDateTime;

const AS: &str = "https://as.example";
const IDP: &str = "https://idp.example";
const NOW: i64 = 1_800_000_000;
const ENC_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

struct World {
    server: Server,
    idp: SigningKey,
    idp_ed: SigningKey,
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn world_with(f: impl FnOnce(JwtBearerGrant) -> JwtBearerGrant) -> World {
    let idp = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
    let idp_ed = SigningKey::generate(JwsAlgorithm::EdDsa, &OsRandom);
    let trusted = TrustedIssuer::from_jwks(
        IDP,
        &[
            idp.verifying_key().to_jwk(),
            idp_ed.verifying_key().to_jwk(),
        ],
    )
    .unwrap();
    let grant = JwtBearerGrant::new(|issuer: &str, sub: &str| {
        (issuer == IDP && ["alice", "bob"].contains(&sub)).then(|| Subject::new(sub))
    })
    .trust(trusted);
    let batch = Client::confidential(id("batch"), "Batch", SecretHash::of("batch-secret"))
        .with_grant_types([GRANT_TYPE])
        .with_scope(Scope::parse("photos.read profile").unwrap());
    let api = Client::confidential(id("api"), "API", SecretHash::of("api-secret"))
        .with_introspect_any_token(true);
    let other = Client::confidential(id("other"), "Other", SecretHash::of("other-secret"))
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse("photos.read").unwrap());
    let server = Server::builder()
        .issuer(AS)
        .scope(ScopeToken::new("photos.read").unwrap(), "View your photos")
        .scope(ScopeToken::new("profile").unwrap(), "Your profile")
        .store(Arc::new(MemoryStore::with_clients([batch, api, other])))
        .clock(Arc::new(FixedClock::new(
            OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
        )))
        .grant(f(grant))
        .build()
        .unwrap();
    World {
        server,
        idp,
        idp_ed,
    }
}

/// A change made to good claims, to see them refused.
type Change = Box<dyn Fn(&mut Value)>;

fn world() -> World {
    world_with(|g| g)
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn claims() -> Value {
    json!({"iss": IDP, "sub": "alice", "aud": AS, "exp": NOW + 120, "iat": NOW,
           "jti": URL_SAFE_NO_PAD.encode(OsRandom.bytes32())})
}

impl World {
    async fn post(&self, endpoint: Endpoint, body: &str, auth: &str) -> (u16, Value) {
        let r = self
            .server
            .handle(endpoint, &HttpRequest::form_post(body, Some(auth)))
            .await;
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    async fn exchange(&self, assertion: &str, extra: &str) -> (u16, Value) {
        let body = format!("grant_type={ENC_GRANT}&assertion={assertion}{extra}");
        self.post(Endpoint::Token, &body, &basic("batch", "batch-secret"))
            .await
    }

    fn sign(&self, claims: &Value) -> String {
        self.idp.sign_jwt("JWT", claims).unwrap()
    }
}

fn error(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["error"].as_str().unwrap_or("-"))
}

#[tokio::test]
async fn a_trusted_assertion_gets_a_token_for_its_user_rfc7523_2_1() {
    let w = world();
    let (status, body) = w.exchange(&w.sign(&claims()), "&scope=photos.read").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "photos.read");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let (status, info) = w
        .post(
            Endpoint::Introspection,
            &format!("token={token}"),
            &basic("api", "api-secret"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["client_id"], "batch");
    // EdDSA keys of the issuer work too.
    let ed = w.idp_ed.sign_jwt("JWT", &claims()).unwrap();
    assert_eq!(w.exchange(&ed, "").await.0, 200);
}

#[tokio::test]
async fn a_jti_is_accepted_once_rfc7523_3_item_7() {
    let w = world();
    let assertion = w.sign(&claims());
    assert_eq!(w.exchange(&assertion, "").await.0, 200);
    assert_eq!(
        error(&w.exchange(&assertion, "").await),
        (400, "invalid_grant")
    );
}

/// RFC 7523 §3 item 7: an assertion accepted within the clock skew after its
/// `exp` is remembered until the skew ends too, not only until `exp` (which
/// has passed, so the replay cache would forget it at once).
#[tokio::test]
async fn a_jti_accepted_after_exp_within_the_skew_is_still_accepted_once() {
    let w = world();
    let mut c = claims();
    c["exp"] = json!(NOW - 10);
    c["iat"] = json!(NOW - 60);
    let assertion = w.sign(&c);
    assert_eq!(w.exchange(&assertion, "").await.0, 200);
    assert_eq!(
        error(&w.exchange(&assertion, "").await),
        (400, "invalid_grant")
    );
}

#[tokio::test]
async fn concurrent_replays_get_one_token() {
    let w = Arc::new(world());
    let assertion = Arc::new(w.sign(&claims()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (w, a) = (w.clone(), assertion.clone());
            tokio::spawn(async move { w.exchange(&a, "").await.0 })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn every_claim_refusal_is_invalid_grant_rfc7523_3_1() {
    let w = world();
    let cases: Vec<(&str, Change)> = vec![
        (
            "untrusted iss",
            Box::new(|c| c["iss"] = json!("https://evil.example")),
        ),
        (
            "no iss",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        (
            "no sub",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        ("unknown sub", Box::new(|c| c["sub"] = json!("mallory"))),
        (
            "aud another server",
            Box::new(|c| c["aud"] = json!("https://other.example")),
        ),
        (
            "aud the token endpoint",
            Box::new(|c| c["aud"] = json!(format!("{AS}/token"))),
        ),
        (
            "aud two values",
            Box::new(|c| c["aud"] = json!([AS, "https://other.example"])),
        ),
        (
            "no aud",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        ("expired", Box::new(|c| c["exp"] = json!(NOW - 60))),
        (
            "no exp",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "exp a day ahead",
            Box::new(|c| c["exp"] = json!(NOW + 86_400)),
        ),
        ("nbf ahead", Box::new(|c| c["nbf"] = json!(NOW + 600))),
        ("iat ahead", Box::new(|c| c["iat"] = json!(NOW + 600))),
        ("iat long ago", Box::new(|c| c["iat"] = json!(NOW - 86_400))),
        (
            "no jti",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
    ];
    for (what, change) in cases {
        let mut c = claims();
        change(&mut c);
        assert_eq!(
            error(&w.exchange(&w.sign(&c), "").await),
            (400, "invalid_grant"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn signatures_are_the_trusted_issuers_rfc8725_3_1() {
    let w = world();
    let stranger = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
    let forged = stranger.sign_jwt("JWT", &claims()).unwrap();
    assert_eq!(
        error(&w.exchange(&forged, "").await),
        (400, "invalid_grant"),
        "unknown kid"
    );
    let good = w.sign(&claims());
    let mut parts = good.split('.');
    let (h, p) = (parts.next().unwrap(), parts.next().unwrap());
    let stranger_sig = forged.rsplit('.').next().unwrap();
    let swapped = format!("{h}.{p}.{stranger_sig}");
    assert_eq!(
        error(&w.exchange(&swapped, "").await),
        (400, "invalid_grant"),
        "bad signature"
    );
    for alg in ["none", "HS256", "EdDSA", "Ed25519"] {
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, w.idp.kid()));
        for sig in ["", "c2ln"] {
            let forged = format!("{header}.{p}.{sig}");
            assert_eq!(
                error(&w.exchange(&forged, "").await),
                (400, "invalid_grant"),
                "{alg}"
            );
        }
    }
    // An access token of that issuer is not an assertion.
    let at = w.idp.sign_jwt("at+jwt", &claims()).unwrap();
    assert_eq!(
        error(&w.exchange(&at, "").await),
        (400, "invalid_grant"),
        "at+jwt"
    );
    // Nor is a client's authentication assertion (RFC 8725 §3.12), while
    // `JWT` is.
    let client_auth = w
        .idp
        .sign_jwt("client-authentication+jwt", &claims())
        .unwrap();
    assert_eq!(
        error(&w.exchange(&client_auth, "").await),
        (400, "invalid_grant"),
        "client-authentication+jwt"
    );
    let typed = w.idp.sign_jwt("JWT", &claims()).unwrap();
    assert_eq!(w.exchange(&typed, "").await.0, 200, "typ JWT");
    for junk in ["x", "a.b.c", "a.b", &"a".repeat(3000)] {
        let r = w.exchange(junk, "").await;
        assert!(
            matches!(error(&r), (400, "invalid_grant" | "invalid_request")),
            "{junk}: {r:?}"
        );
    }
}

#[tokio::test]
async fn request_errors() {
    let w = world();
    // RFC 7521 §4.1: assertion is required.
    let body = format!("grant_type={ENC_GRANT}");
    let r = w
        .post(Endpoint::Token, &body, &basic("batch", "batch-secret"))
        .await;
    assert_eq!(error(&r), (400, "invalid_request"));
    // Beyond the client's scope.
    assert_eq!(
        error(&w.exchange(&w.sign(&claims()), "&scope=photos.write").await),
        (400, "invalid_scope")
    );
    // A client not registered for the grant.
    let body = format!("grant_type={ENC_GRANT}&assertion={}", w.sign(&claims()));
    let r = w
        .post(Endpoint::Token, &body, &basic("other", "other-secret"))
        .await;
    assert_eq!(error(&r), (400, "unauthorized_client"));
    // A wrong client secret: the server refuses before the grant runs.
    let r = w
        .post(Endpoint::Token, &body, &basic("batch", "nope"))
        .await;
    assert_eq!(error(&r), (401, "invalid_client"));
}

#[tokio::test]
async fn the_token_endpoint_audience_when_allowed() {
    let w = world_with(JwtBearerGrant::accepting_token_endpoint_audience);
    let mut c = claims();
    c["aud"] = json!([format!("{AS}/token"), "https://other.example"]);
    assert_eq!(w.exchange(&w.sign(&c), "").await.0, 200);
    c["aud"] = json!("https://other.example/token");
    c["jti"] = json!("another");
    assert_eq!(
        error(&w.exchange(&w.sign(&c), "").await),
        (400, "invalid_grant")
    );
}

#[test]
fn bad_issuer_keys_are_configuration_errors() {
    let jwk: tessera::Jwk =
        serde_json::from_value(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})).unwrap();
    assert!(TrustedIssuer::from_jwks(IDP, &[jwk]).is_err());
}
