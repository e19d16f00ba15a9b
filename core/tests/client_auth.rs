//! Client authentication as an extension point (RFC 6749 §2.3): the
//! built-in methods behind `ClientAuthMethod`, `private_key_jwt` (RFC 7523
//! §2.2, §3) with every refusal, Argon2id secrets and the abuse hook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tessera::{
    Argon2idVerifier, AssertionAudience, AuthMethod, CLIENT_ASSERTION_TYPE_JWT_BEARER, Client,
    ClientId, Endpoint, FixedClock, HttpRequest, Jwks, JwsAlgorithm, OsRandom, Params,
    PrivateKeyJwt, Reason, Scope, ScopeToken, SecretHash, SecretVerifier, Server, SigningKey,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const ISSUER: &str = "https://as.example";
const TOKEN_ENDPOINT: &str = "https://as.example/token";
const PAR_ENDPOINT: &str = "https://as.example/par";

struct Fixture {
    server: Server,
    clock: Arc<FixedClock>,
    key: SigningKey,
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn fixture_with(method: PrivateKeyJwt) -> Fixture {
    fixture_with_key(method, SigningKey::generate(JwsAlgorithm::Es256, &OsRandom))
}

fn fixture_with_key(method: PrivateKeyJwt, key: SigningKey) -> Fixture {
    let jwks = Jwks::new([key.verifying_key().to_jwk()]);
    let weak = Argon2idVerifier::with_cost(64, 1, 1)
        .unwrap()
        .hash("tr0ub4dor", &OsRandom)
        .unwrap();
    let clients = [
        Client::with_private_key_jwt(id("signer"), "Signer", jwks.clone())
            .with_grant_types(["client_credentials"])
            .with_scope(Scope::parse("photos.read").unwrap()),
        // Registered for secrets only, though it has keys too.
        Client::confidential(id("secretive"), "Secretive", SecretHash::of("s3cret"))
            .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
            .with_jwks(jwks)
            .with_grant_types(["client_credentials"])
            .with_scope(Scope::parse("photos.read").unwrap()),
        Client::confidential(id("weak"), "Weak", weak)
            .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
            .with_grant_types(["client_credentials"])
            .with_scope(Scope::parse("photos.read").unwrap()),
        Client::public(id("cli"), "CLI"),
    ];
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients(clients)))
        .scope(ScopeToken::new("photos.read").unwrap(), "View your photos")
        .clock(clock.clone())
        .client_auth_method(method)
        .build()
        .unwrap();
    Fixture { server, clock, key }
}

/// A change made to good claims, to see them refused.
type Change = Box<dyn Fn(&mut Value)>;

fn fixture() -> Fixture {
    fixture_with(PrivateKeyJwt::new())
}

impl Fixture {
    fn now(&self) -> i64 {
        tessera::Clock::now(self.clock.as_ref()).unix_timestamp()
    }

    fn claims(&self) -> Value {
        let now = self.now();
        json!({"iss": "signer", "sub": "signer", "aud": ISSUER, "exp": now + 60, "iat": now,
               "jti": format!("jti-{}", rand_suffix())})
    }

    fn assertion(&self, claims: &Value) -> String {
        self.key.sign_jwt("JWT", claims).unwrap()
    }

    fn form(&self, assertion: &str) -> String {
        format!(
            "grant_type=client_credentials&client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion={assertion}"
        )
    }

    async fn post(
        &self,
        endpoint: Endpoint,
        body: &str,
        auth: Option<&str>,
    ) -> (u16, Value, Option<String>) {
        let r = self
            .server
            .handle(endpoint, &HttpRequest::form_post(body, auth))
            .await;
        let challenge = r.header("www-authenticate").map(str::to_owned);
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            challenge,
        )
    }

    /// The reason client authentication fails for `body`, or `None`.
    async fn reason(&self, body: &str, auth: Option<&str>) -> Option<Reason> {
        let params = Params::parse(body).unwrap();
        self.server
            .authenticate_client(auth, &params)
            .await
            .err()
            .map(|e| e.reason())
    }
}

fn rand_suffix() -> String {
    URL_SAFE_NO_PAD.encode(tessera::Random::bytes32(&OsRandom))
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[tokio::test]
async fn private_key_jwt_authenticates_at_the_token_endpoint_rfc7523_2_2() {
    let f = fixture();
    let assertion = f.assertion(&f.claims());
    let (status, body, _) = f.post(Endpoint::Token, &f.form(&assertion), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    // RFC 7523 §3 item 7: the same jti again is a replay.
    let (status, body, challenge) = f.post(Endpoint::Token, &f.form(&assertion), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        challenge.is_some(),
        "401 carries WWW-Authenticate (RFC 6749 §5.2)"
    );
    assert_eq!(
        f.reason(&f.form(&assertion), None).await,
        Some(Reason::AssertionReplayed)
    );
    // The same claims with a fresh jti work; the client_id may be repeated.
    let again = f.assertion(&f.claims());
    let body = format!("{}&client_id=signer", f.form(&again));
    assert_eq!(f.post(Endpoint::Token, &body, None).await.0, 200);
}

/// RFC 7523 §3 items 4 and 7: an assertion is acceptable until its `exp`
/// plus the clock skew (30 s), so its `jti` must be remembered that long.
/// Found by the `client_assertion` fuzz target: one accepted a second
/// after its `exp` was remembered only until `exp`, i.e. not at all, and
/// the very same assertion was accepted again.
#[tokio::test]
async fn an_assertion_is_used_once_through_the_clock_skew_rfc7523_3() {
    let f = fixture();
    // Accepted 1 s after its exp (within the skew): a replay is refused.
    let mut late = f.claims();
    late["exp"] = json!(f.now() - 1);
    late["iat"] = json!(f.now() - 60);
    let late = f.assertion(&late);
    assert_eq!(f.post(Endpoint::Token, &f.form(&late), None).await.0, 200);
    assert_eq!(
        f.reason(&f.form(&late), None).await,
        Some(Reason::AssertionReplayed)
    );
    // Accepted before its exp, replayed after it but within the skew.
    let mut soon = f.claims();
    soon["exp"] = json!(f.now() + 5);
    let soon = f.assertion(&soon);
    assert_eq!(f.post(Endpoint::Token, &f.form(&soon), None).await.0, 200);
    f.clock.advance(time::Duration::seconds(20));
    assert_eq!(
        f.reason(&f.form(&soon), None).await,
        Some(Reason::AssertionReplayed)
    );
    let (status, body, _) = f.post(Endpoint::Token, &f.form(&soon), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Past exp plus the skew it is refused as expired, not as a replay.
    f.clock.advance(time::Duration::seconds(20));
    assert_eq!(
        f.reason(&f.form(&soon), None).await,
        Some(Reason::AssertionExpired)
    );
}

#[tokio::test]
async fn private_key_jwt_at_revocation_introspection_and_par() {
    let f = fixture();
    let form = |f: &Fixture| {
        format!(
            "token=unknown&client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion={}",
            f.assertion(&f.claims())
        )
    };
    let (status, body, _) = f.post(Endpoint::Introspection, &form(&f), None).await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(false)));
    assert_eq!(f.post(Endpoint::Revocation, &form(&f), None).await.0, 200);
    // Without the assertion: no client authentication at all.
    let (status, body, _) = f.post(Endpoint::Introspection, "token=unknown", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn every_claim_refusal_is_invalid_client_with_its_reason_rfc7523_3() {
    let f = fixture();
    let now = f.now();
    let cases: Vec<(&str, Change, Reason)> = vec![
        (
            "aud another server",
            Box::new(|c| c["aud"] = json!("https://evil.example")),
            Reason::AssertionAudienceMismatch,
        ),
        (
            "aud the token endpoint (not accepted by default)",
            Box::new(|c| c["aud"] = json!(TOKEN_ENDPOINT)),
            Reason::AssertionAudienceMismatch,
        ),
        (
            "aud with a second value",
            Box::new(|c| c["aud"] = json!([ISSUER, "https://rs.example"])),
            Reason::AssertionAudienceMismatch,
        ),
        (
            "no aud",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            Reason::AssertionAudienceMismatch,
        ),
        (
            "expired",
            Box::new(move |c| c["exp"] = json!(now - 60)),
            Reason::AssertionExpired,
        ),
        (
            "no exp",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Reason::AssertionExpired,
        ),
        (
            "exp a day ahead",
            Box::new(move |c| c["exp"] = json!(now + 86_400)),
            Reason::AssertionExpired,
        ),
        (
            "nbf ahead",
            Box::new(move |c| c["nbf"] = json!(now + 600)),
            Reason::AssertionTimeInvalid,
        ),
        (
            "iat ahead",
            Box::new(move |c| c["iat"] = json!(now + 600)),
            Reason::AssertionTimeInvalid,
        ),
        (
            "iat an hour ago",
            Box::new(move |c| c["iat"] = json!(now - 3600)),
            Reason::AssertionTimeInvalid,
        ),
        (
            "no jti",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Reason::AssertionTimeInvalid,
        ),
        (
            "iss not the client",
            Box::new(|c| c["iss"] = json!("someone-else")),
            Reason::AssertionIssuerMismatch,
        ),
        (
            "no iss",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
            Reason::AssertionIssuerMismatch,
        ),
    ];
    for (what, change, reason) in cases {
        let mut claims = f.claims();
        change(&mut claims);
        let form = f.form(&f.assertion(&claims));
        let (status, body, challenge) = f.post(Endpoint::Token, &form, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}"
        );
        assert!(challenge.is_some(), "{what}");
        assert_eq!(f.reason(&form, None).await, Some(reason), "{what}");
    }
}

#[tokio::test]
async fn signatures_are_checked_with_the_clients_key_only_rfc8725_3_1() {
    let f = fixture();
    let claims = f.claims();
    // Another key, even under the client's kid.
    let stranger = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
    let forged = stranger.sign_jwt("JWT", &claims).unwrap();
    assert_eq!(
        f.reason(&f.form(&forged), None).await,
        Some(Reason::AssertionSignatureInvalid)
    );
    let good = f.assertion(&claims);
    let (h, p, _) = {
        let mut it = good.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let stranger_sig = forged.rsplit('.').next().unwrap();
    let swapped = format!("{h}.{p}.{stranger_sig}");
    assert_eq!(
        f.reason(&f.form(&swapped), None).await,
        Some(Reason::AssertionSignatureInvalid)
    );
    // alg none, HMAC (keyed with the public key, the classic confusion), EdDSA.
    for alg in ["none", "HS256", "EdDSA", "Ed25519", "RS256"] {
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"{alg}","kid":"{}","typ":"JWT"}}"#,
            f.key.kid()
        ));
        let forged = format!("{header}.{p}.{}", URL_SAFE_NO_PAD.encode(b"sig"));
        assert_eq!(
            f.reason(&f.form(&forged), None).await,
            Some(Reason::AssertionSignatureInvalid),
            "{alg}"
        );
        let forged = format!("{header}.{p}.");
        assert_eq!(
            f.reason(&f.form(&forged), None).await,
            Some(Reason::AssertionSignatureInvalid),
            "{alg} unsigned"
        );
    }
    // An unknown kid.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"nope","typ":"JWT"}"#);
    assert_eq!(
        f.reason(&f.form(&format!("{header}.{p}.{stranger_sig}")), None)
            .await,
        Some(Reason::AssertionSignatureInvalid)
    );
    // An access token (typ at+jwt) signed by the client's key is not an assertion.
    let at = f.key.sign_jwt("at+jwt", &f.claims()).unwrap();
    assert_eq!(
        f.reason(&f.form(&at), None).await,
        Some(Reason::AssertionSignatureInvalid)
    );
    // Garbage.
    let (status, body, _) = f.post(Endpoint::Token, &f.form("not-a-jwt"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn the_method_must_be_registered_for_the_client_and_on_the_server() {
    let f = fixture();
    // `secretive` has keys but is registered for secrets only.
    let mut claims = f.claims();
    claims["iss"] = json!("secretive");
    claims["sub"] = json!("secretive");
    let form = f.form(&f.assertion(&claims));
    assert_eq!(f.post(Endpoint::Token, &form, None).await.0, 401);
    assert_eq!(
        f.reason(&form, None).await,
        Some(Reason::ClientAuthenticationFailed)
    );
    // An assertion naming an unknown client.
    claims["iss"] = json!("ghost");
    claims["sub"] = json!("ghost");
    assert_eq!(
        f.post(Endpoint::Token, &f.form(&f.assertion(&claims)), None)
            .await
            .0,
        401
    );
    // A server without PrivateKeyJwt: the assertion is nobody's method.
    let plain = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([Client::public(
            id("cli"),
            "CLI",
        )])))
        .build()
        .unwrap();
    let form = format!("client_id=cli&{}", f.form(&f.assertion(&f.claims())));
    let r = plain
        .handle(Endpoint::Token, &HttpRequest::form_post(&form, None))
        .await;
    assert_eq!(r.status, 401);
    let methods = plain.metadata().token_endpoint_auth_methods_supported;
    assert_eq!(
        methods,
        ["client_secret_basic", "client_secret_post", "none"]
    );
    assert!(
        plain
            .metadata()
            .token_endpoint_auth_signing_alg_values_supported
            .is_empty()
    );
}

#[tokio::test]
async fn two_methods_at_once_are_invalid_request_rfc6749_2_3() {
    let f = fixture();
    let form = f.form(&f.assertion(&f.claims()));
    let (status, body, _) = f
        .post(Endpoint::Token, &form, Some(&basic("signer", "x")))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let both = format!("{form}&client_secret=x&client_id=signer");
    let (status, body, _) = f.post(Endpoint::Token, &both, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body, _) = f
        .post(
            Endpoint::Token,
            "grant_type=client_credentials&client_id=secretive&client_secret=s3cret",
            Some(&basic("secretive", "s3cret")),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

/// RFC 7523 §3 item 3 and RFC 9126 §2: once configured, the token
/// endpoint's URL and the PAR endpoint's URL name this server too, at
/// either endpoint.
#[tokio::test]
async fn the_token_endpoint_audience_when_configured() {
    let f =
        fixture_with(PrivateKeyJwt::new().with_audience(AssertionAudience::IssuerOrTokenEndpoint));
    for aud in [json!([TOKEN_ENDPOINT]), json!(PAR_ENDPOINT), json!(ISSUER)] {
        let mut claims = f.claims();
        claims["aud"] = aud.clone();
        assert_eq!(
            f.post(Endpoint::Token, &f.form(&f.assertion(&claims)), None)
                .await
                .0,
            200,
            "aud {aud} at the token endpoint"
        );
    }
    let mut claims = f.claims();
    claims["aud"] = json!(TOKEN_ENDPOINT);
    let form = format!(
        "response_type=code&client_id=signer&redirect_uri=https%3A%2F%2Fsigner.example%2Fcb\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
         &client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion={}",
        f.assertion(&claims)
    );
    let (status, body, _) = f.post(Endpoint::PushedAuthorization, &form, None).await;
    assert_ne!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "aud the token endpoint at PAR"
    );
    let mut claims = f.claims();
    claims["aud"] = json!("https://evil.example/token");
    assert_eq!(
        f.post(Endpoint::Token, &f.form(&f.assertion(&claims)), None)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn metadata_lists_the_registered_methods_and_algorithms_rfc8414_2() {
    let f = fixture();
    let m = f.server.metadata();
    assert_eq!(
        m.token_endpoint_auth_methods_supported,
        [
            "client_secret_basic",
            "client_secret_post",
            "none",
            "private_key_jwt"
        ]
    );
    assert_eq!(
        m.token_endpoint_auth_signing_alg_values_supported,
        ["ES256", "EdDSA", "Ed25519", "RS256"]
    );
    assert!(
        !m.introspection_endpoint_auth_methods_supported
            .contains(&"none".to_owned())
    );
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(
        v["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "Ed25519", "RS256"])
    );
    assert!(
        !v["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "none" || a.as_str().unwrap().starts_with("HS"))
    );
}

#[tokio::test]
async fn argon2id_secrets_authenticate_and_their_failures_are_limited() {
    let f = fixture();
    let ok = "grant_type=client_credentials";
    assert_eq!(
        f.post(Endpoint::Token, ok, Some(&basic("weak", "tr0ub4dor")))
            .await
            .0,
        200
    );
    let post = "grant_type=client_credentials&client_id=weak&client_secret=tr0ub4dor";
    assert_eq!(f.post(Endpoint::Token, post, None).await.0, 200);
    // Wrong guesses: invalid_client, counted; after the default limit (10
    // per minute) even the right secret is refused before any hashing.
    for _ in 0..10 {
        assert_eq!(
            f.reason(ok, Some(&basic("weak", "guess"))).await,
            Some(Reason::ClientSecretMismatch)
        );
    }
    assert_eq!(
        f.reason(ok, Some(&basic("weak", "tr0ub4dor"))).await,
        Some(Reason::RateLimited)
    );
    let (status, body, _) = f
        .post(Endpoint::Token, ok, Some(&basic("weak", "tr0ub4dor")))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // SHA-256 secrets (256-bit, generated) are not locked out by default.
    for _ in 0..20 {
        assert_eq!(
            f.reason(ok, Some(&basic("secretive", "guess"))).await,
            Some(Reason::ClientSecretMismatch)
        );
    }
    assert_eq!(
        f.reason(ok, Some(&basic("secretive", "s3cret"))).await,
        None
    );
    // The window passes.
    f.clock.advance(Duration::minutes(2));
    assert_eq!(f.reason(ok, Some(&basic("weak", "tr0ub4dor"))).await, None);
}

#[tokio::test]
async fn a_custom_secret_verifier_is_chosen_by_the_hash_scheme() {
    /// A scheme that accepts the reversed secret (a stand-in for an
    /// embedder's legacy hash format).
    #[derive(Debug)]
    struct Reversed;
    #[async_trait::async_trait]
    impl SecretVerifier for Reversed {
        fn scheme(&self) -> &str {
            "reversed"
        }
        fn hash(
            &self,
            secret: &str,
            _: &dyn tessera::Random,
        ) -> Result<SecretHash, tessera::SecretHashError> {
            SecretHash::from_phc(&format!(
                "$reversed${}",
                secret.chars().rev().collect::<String>()
            ))
        }
        async fn verify(
            &self,
            stored: &SecretHash,
            presented: &str,
        ) -> Result<bool, tessera::OAuthError> {
            Ok(stored.to_phc()
                == format!("$reversed${}", presented.chars().rev().collect::<String>()))
        }
    }
    let legacy = Reversed.hash("olleh", &OsRandom).unwrap();
    assert_eq!(legacy.scheme(), "reversed");
    let client = Client::confidential(id("old"), "Old", legacy)
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse("photos.read").unwrap());
    let build = |with: bool| {
        let b = Server::builder()
            .issuer(ISSUER)
            .scope(ScopeToken::new("photos.read").unwrap(), "x")
            .store(Arc::new(MemoryStore::with_clients([client.clone()])));
        if with { b.secret_verifier(Reversed) } else { b }
            .build()
            .unwrap()
    };
    let params = Params::parse("grant_type=client_credentials").unwrap();
    let with = build(true);
    assert!(
        with.authenticate_client(Some(&basic("old", "olleh")), &params)
            .await
            .is_ok()
    );
    assert!(
        with.authenticate_client(Some(&basic("old", "hello")), &params)
            .await
            .is_err()
    );
    // Without a verifier for the scheme: refused, never accepted.
    let without = build(false);
    let e = without
        .authenticate_client(Some(&basic("old", "olleh")), &params)
        .await
        .err();
    assert_eq!(e.map(|e| e.code.as_str()), Some("invalid_client"));
}

#[tokio::test]
async fn a_public_client_names_itself_and_a_confidential_one_cannot() {
    let f = fixture();
    let p = Params::parse("client_id=cli").unwrap();
    assert!(f.server.authenticate_client(None, &p).await.is_ok());
    for who in ["signer", "weak", "secretive"] {
        let p = Params::parse(&format!("client_id={who}")).unwrap();
        assert!(
            f.server.authenticate_client(None, &p).await.is_err(),
            "{who}"
        );
    }
}

/// Registers a client (RFC 7591) with `body`: the status and the answer.
async fn register(server: &Server, body: Value) -> (u16, Value) {
    let body = body.to_string();
    let request = HttpRequest::new("POST")
        .with_content_type(Some("application/json"))
        .with_body(body.as_bytes());
    let r = server.handle(Endpoint::Registration, &request).await;
    (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
}

/// RFC 7591 §2 with RFC 7523 §2.2: a client registers with
/// `token_endpoint_auth_method` `private_key_jwt` and its keys in `jwks`
/// (echoed, no secret issued), then authenticates with an assertion; every
/// malformed registration is `invalid_client_metadata`.
#[tokio::test]
async fn dynamic_registration_of_a_private_key_jwt_client() {
    let build = |with_method: bool| {
        let b = Server::builder()
            .issuer(ISSUER)
            .store(Arc::new(MemoryStore::default()))
            .scope(ScopeToken::new("photos.read").unwrap(), "View your photos")
            .enable_dynamic_registration(
                tessera::RegistrationPolicy::open().with_grant_types(["client_credentials"]),
            );
        if with_method {
            b.client_auth_method(PrivateKeyJwt::new())
        } else {
            b
        }
        .build()
        .unwrap()
    };
    let server = build(true);
    let key = SigningKey::generate(JwsAlgorithm::EdDsa, &OsRandom);
    let jwks = json!({"keys": [key.verifying_key().to_jwk()]});
    let (status, info) = register(
        &server,
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
               "grant_types": ["client_credentials"], "scope": "photos.read"}),
    )
    .await;
    assert_eq!(status, 201, "{info}");
    assert!(info.get("client_secret").is_none());
    assert_eq!(info["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(info["jwks"], jwks);
    let id = info["client_id"].as_str().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let assertion = key
        .sign_jwt(
            "JWT",
            &json!({"iss": id, "sub": id, "aud": ISSUER, "exp": now + 60, "jti": "one"}),
        )
        .unwrap();
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion={assertion}"
    );
    let r = server
        .handle(Endpoint::Token, &HttpRequest::form_post(&form, None))
        .await;
    assert_eq!(r.status, 200);

    let jwk = key.verifying_key().to_jwk();
    let mut no_kid = serde_json::to_value(&jwk).unwrap();
    no_kid.as_object_mut().unwrap().remove("kid");
    let secret_key = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"});
    let bad = [
        (
            "no jwks",
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
        ),
        (
            "jwks_uri",
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks"}),
        ),
        (
            "jwks not a set",
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": [jwk]}),
        ),
        (
            "empty set",
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
        ),
        (
            "no kid",
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [no_kid]}}),
        ),
        (
            "a symmetric key",
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [secret_key]}}),
        ),
        (
            "two keys, one kid",
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk, jwk]}}),
        ),
    ];
    for (what, mut body) in bad {
        body["grant_types"] = json!(["client_credentials"]);
        let (status, e) = register(&server, body).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{what}"
        );
    }
    // A server that does not serve the method does not register it.
    let (status, e) = register(
        &build(false),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
               "grant_types": ["client_credentials"]}),
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
}

/// RFC 7523 §3 item 7 under racing requests: one client assertion sent by
/// 16 tasks at once authenticates exactly one of them (the replay cache's
/// `first_use` is atomic).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_assertion_wins_once_among_racers() {
    let f = Arc::new(fixture());
    let form = Arc::new(f.form(&f.assertion(&f.claims())));
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (f, form, barrier) = (f.clone(), form.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                f.post(Endpoint::Token, &form, None).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

/// A built-in method replaced by one of the embedder's (same name): the
/// server then asks the registered methods through the trait (no fast
/// path), and the replacement is the one that verifies.
#[derive(Debug, Default)]
struct CountingBasic(Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl tessera::ClientAuthMethod for CountingBasic {
    fn method(&self) -> AuthMethod {
        AuthMethod::ClientSecretBasic
    }

    fn presented(
        &self,
        request: &tessera::ClientAuthRequest<'_>,
    ) -> Result<Option<tessera::Presented>, tessera::OAuthError> {
        tessera::ClientSecretBasic.presented(request)
    }

    async fn verify(
        &self,
        ctx: &tessera::ClientAuthContext<'_>,
        request: &tessera::ClientAuthRequest<'_>,
        client: &Client,
    ) -> Result<(), tessera::OAuthError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tessera::ClientSecretBasic
            .verify(ctx, request, client)
            .await
    }
}

#[tokio::test]
async fn a_replaced_builtin_method_is_the_one_asked_rfc6749_2_3() {
    use std::sync::atomic::Ordering;
    let counting = CountingBasic::default();
    let verified = counting.0.clone();
    let clients = [
        Client::confidential(id("app"), "App", SecretHash::of("s3cret"))
            .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]),
        Client::public(id("cli"), "CLI"),
    ];
    let server = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients(clients)))
        .client_auth_method(counting)
        .build()
        .unwrap();
    let none = Params::parse("").unwrap();
    let good = basic("app", "s3cret");
    assert!(server.authenticate_client(Some(&good), &none).await.is_ok());
    assert_eq!(verified.load(Ordering::SeqCst), 1);
    let wrong = basic("app", "nope");
    let e = server.authenticate_client(Some(&wrong), &none).await.err();
    assert_eq!(e.map(|e| e.reason()), Some(Reason::ClientSecretMismatch));
    assert_eq!(verified.load(Ordering::SeqCst), 2);
    // The other built-in methods still work beside it.
    let post = Params::parse("client_id=app&client_secret=s3cret").unwrap();
    assert!(server.authenticate_client(None, &post).await.is_ok());
    let public = Params::parse("client_id=cli").unwrap();
    assert!(server.authenticate_client(None, &public).await.is_ok());
    assert_eq!(verified.load(Ordering::SeqCst), 2);
    // Two methods at once are still refused, before anything is verified.
    let e = server.authenticate_client(Some(&good), &post).await.err();
    assert_eq!(e.map(|e| e.code), Some(tessera::ErrorCode::InvalidRequest));
    assert_eq!(verified.load(Ordering::SeqCst), 2);
}

/// RFC 7523 §3 keeps each assertion's `jti` until its `exp`, and anybody
/// can register a client with keys of its own, so the assertions of all
/// self-registered clients are counted together (`Action::ClientAssertion`):
/// past the limit they hear `503 temporarily_unavailable` and nothing more
/// is kept, while a client the operator registered is not held back.
#[tokio::test]
async fn self_registered_clients_assertions_are_counted_together() {
    let limiter = tessera::MemoryRateLimiter::default().with_limit(
        tessera::Action::ClientAssertion,
        tessera::Limit::new(2, Duration::minutes(1)),
    );
    let (server, store, key, signer, registered) = assertion_clients(limiter).await;
    let token = |key, id| assertion_token(&server, key, id, None);
    for _ in 0..2 {
        assert_eq!(token(&key, &registered).await, (200, String::new()));
    }
    let kept = store.stats().replay_entries;
    assert_eq!(kept, 2);
    assert_eq!(
        token(&key, &registered).await,
        (503, "temporarily_unavailable".to_owned())
    );
    assert_eq!(store.stats().replay_entries, kept, "nothing more was kept");
    // The operator's client is not counted.
    for _ in 0..3 {
        assert_eq!(token(&signer, "signer").await, (200, String::new()));
    }
}

/// A self-registered client's assertions count against their network's
/// share before the budget all such clients share (RFC 6819 §4.4.1.11):
/// one host spends at most that, and the client's requests from another
/// network still pass; the operator's client is not counted per network.
#[tokio::test]
async fn one_network_spends_only_its_share_of_the_assertion_budget() {
    let limiter = tessera::MemoryRateLimiter::default()
        .with_limit(
            tessera::Action::ClientAssertion,
            tessera::Limit::new(100, Duration::minutes(1)),
        )
        .with_network_limit(
            tessera::Action::ClientAssertion,
            tessera::Limit::new(2, Duration::minutes(1)),
        );
    let (server, store, key, signer, registered) = assertion_clients(limiter).await;
    let from = |key, id, peer: &str| assertion_token(&server, key, id, peer.parse().ok());
    for _ in 0..2 {
        assert_eq!(
            from(&key, &registered, "192.0.2.3").await,
            (200, String::new())
        );
    }
    assert_eq!(
        from(&key, &registered, "192.0.2.3").await,
        (503, "temporarily_unavailable".to_owned())
    );
    assert_eq!(store.stats().replay_entries, 2, "nothing more was kept");
    assert_eq!(
        from(&key, &registered, "192.0.2.4").await,
        (200, String::new())
    );
    for _ in 0..3 {
        assert_eq!(
            from(&signer, "signer", "192.0.2.3").await,
            (200, String::new())
        );
    }
}

/// A server with the operator's `private_key_jwt` client `signer` and open
/// registration, `limiter` counting; one client registered itself with
/// its own key: the server, its store, that key, the operator's key and
/// the registered client's id.
async fn assertion_clients(
    limiter: tessera::MemoryRateLimiter,
) -> (Server, Arc<MemoryStore>, SigningKey, SigningKey, String) {
    let signer = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
    let operators = Client::with_private_key_jwt(
        id("signer"),
        "Signer",
        Jwks::new([signer.verifying_key().to_jwk()]),
    )
    .with_grant_types(["client_credentials"])
    .with_scope(Scope::parse("photos.read").unwrap());
    let store = Arc::new(MemoryStore::with_clients([operators]));
    let server = Server::builder()
        .issuer(ISSUER)
        .store(store.clone())
        .scope(ScopeToken::new("photos.read").unwrap(), "View your photos")
        .client_auth_method(PrivateKeyJwt::new())
        .rate_limiter(limiter)
        .enable_dynamic_registration(
            tessera::RegistrationPolicy::open().with_grant_types(["client_credentials"]),
        )
        .build()
        .unwrap();
    let key = SigningKey::generate(JwsAlgorithm::EdDsa, &OsRandom);
    let (status, info) = register(
        &server,
        json!({"token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.verifying_key().to_jwk()]},
            "grant_types": ["client_credentials"], "scope": "photos.read"}),
    )
    .await;
    assert_eq!(status, 201, "{info}");
    let registered = info["client_id"].as_str().unwrap().to_owned();
    (server, store, key, signer, registered)
}

/// A client_credentials request authenticated by an assertion of `id`
/// signed with `key`, from `peer`: the status and the error.
async fn assertion_token(
    server: &Server,
    key: &SigningKey,
    id: &str,
    peer: Option<std::net::IpAddr>,
) -> (u16, String) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let assertion = key
        .sign_jwt(
            "JWT",
            &json!({"iss": id, "sub": id, "aud": ISSUER, "exp": now + 60, "jti": rand_suffix()}),
        )
        .unwrap();
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion={assertion}"
    );
    let r = server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post(&form, None).with_peer(peer),
        )
        .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    (r.status, v["error"].as_str().unwrap_or_default().to_owned())
}

/// RS256 assertions (RFC 7518 §3.3), which many client libraries sign by
/// default, from a client that registered an RSA key; another key's are
/// refused.
#[tokio::test]
async fn an_rsa_key_authenticates_with_rs256_rfc7523_2_2() {
    let key = SigningKey::from_pem(include_str!("../testdata/rsa-2048.pem"), None).unwrap();
    let f = fixture_with_key(PrivateKeyJwt::new(), key);
    let assertion = f.assertion(&f.claims());
    assert!(
        assertion.starts_with("eyJhbGciOiJSUzI1NiI"),
        "an RS256 header first"
    );
    let (status, body, _) = f.post(Endpoint::Token, &f.form(&assertion), None).await;
    assert_eq!(status, 200, "{body}");
    // The same claims signed by a P-256 key under the RSA key's kid.
    let other = SigningKey::from_pem(
        &{
            use p256::pkcs8::EncodePrivateKey as _;
            p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into())
                .unwrap()
                .to_pkcs8_pem(Default::default())
                .unwrap()
                .to_string()
        },
        Some(f.key.kid()),
    )
    .unwrap();
    let forged = other.sign_jwt("JWT", &f.claims()).unwrap();
    assert_eq!(
        f.reason(&f.form(&forged), None).await,
        Some(Reason::AssertionSignatureInvalid)
    );
}
