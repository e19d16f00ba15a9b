//! The RFC 7523 checks shared by both providers' tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tessera_conformance::demo::{ALICE, BACKUP_JOB};
use tessera_conformance::http::{Auth, Exchange, Request};
use tessera_conformance::{CheckResult, Ctx, Failure, Target};

/// The identity provider whose assertions the providers trust.
pub const IDP: &str = "https://idp.test";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A change made to good claims, to see them refused.
type Change = Box<dyn Fn(&mut Value) + Send + Sync>;

/// A check: the target and the identity provider's keys.
pub type Check = fn(Target, Arc<Keys>) -> Pin<Box<dyn Future<Output = CheckResult> + Send>>;

/// A P-256 key pair made with ring: the private key signs with
/// `jsonwebtoken`, the public one is published as a JWK.
pub struct Keys {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl Keys {
    /// A fresh key pair named `kid`.
    pub fn generate(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key just made");
        Self {
            kid: kid.to_owned(),
            pkcs8: pkcs8.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    /// The public JWK (RFC 7518 §6.2.1): uncompressed point 0x04 ‖ x ‖ y.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&self.public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&self.public[33..65]),
        })
    }

    /// Writes the JWK Set to a temp file and returns the provider's flags
    /// (after the store) that trust it as [`IDP`].
    pub fn provider_flags(self: &Arc<Self>) -> String {
        let path = std::env::temp_dir().join(format!(
            "tessera-idp-{}-{}.json",
            std::process::id(),
            URL_SAFE_NO_PAD.encode(&self.public[1..9])
        ));
        // A few hundred bytes in the temp dir, left there: the provider
        // reads it at start, and the name is unique per key.
        std::fs::write(&path, json!({"keys": [self.jwk()]}).to_string()).expect("a temp file");
        format!("memory --trust-assertion-issuer {IDP}={}", path.display())
    }

    /// `claims` signed ES256 with `kid` in the header, by jsonwebtoken.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .expect("a signed JWT")
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// A dynamically registered private_key_jwt client (RFC 7591 §2 `jwks`)
/// allowed the JWT bearer grant, and its keys.
struct Registered {
    id: String,
    keys: Keys,
}

async fn register(ctx: &Ctx) -> Result<Registered, Failure> {
    let keys = Keys::generate("client-key-1");
    let url = ctx.meta.raw["registration_endpoint"]
        .as_str()
        .ok_or_else(|| ctx.meta.exchange.failure("no registration_endpoint"))?
        .to_owned();
    let metadata = json!({
        "client_name": "Assertion app",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [keys.jwk()]},
        "grant_types": [JWT_BEARER],
        "scope": "photos.read",
    });
    let ex = ctx
        .http
        .send(
            Request::get(url)
                .method(reqwest::Method::POST)
                .content_type("application/json")
                .body(metadata.to_string()),
        )
        .await?;
    ex.expect_status(201)?;
    let info = ex.json()?;
    ex.ensure(
        info["token_endpoint_auth_method"] == "private_key_jwt",
        "token_endpoint_auth_method echoed (RFC 7591 §3.2.1)",
    )?;
    ex.ensure(
        info.get("client_secret").is_none(),
        "no secret for a private_key_jwt client",
    )?;
    ex.ensure(
        info["jwks"]["keys"][0]["kid"] == "client-key-1",
        "jwks echoed",
    )?;
    let id = info["client_id"].as_str().unwrap_or_default().to_owned();
    Ok(Registered { id, keys })
}

impl Registered {
    /// The claims of a good client assertion (RFC 7523 §3: iss = sub =
    /// client_id, aud = the issuer, exp soon, a fresh jti).
    fn claims(&self, ctx: &Ctx) -> Value {
        let now = now();
        json!({"iss": self.id, "sub": self.id, "aud": ctx.meta.issuer,
               "exp": now + 60, "iat": now, "jti": jti()})
    }

    fn assertion(&self, ctx: &Ctx) -> String {
        self.keys.sign(&self.claims(ctx))
    }
}

async fn post(
    ctx: &Ctx,
    url: &str,
    auth: Auth<'_>,
    pairs: &[(&str, &str)],
) -> Result<Exchange, Failure> {
    ctx.http.post_form(url, auth, pairs).await
}

/// POSTs to `url` authenticated by `assertion`, plus `pairs`.
async fn with_assertion(
    ctx: &Ctx,
    url: &str,
    assertion: &str,
    pairs: &[(&str, &str)],
) -> Result<Exchange, Failure> {
    let mut all = vec![
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    all.extend_from_slice(pairs);
    post(ctx, url, Auth::Nothing, &all).await
}

/// RFC 8414 §2 lists the method and its algorithms (asymmetric only); a
/// client registered with `private_key_jwt` and `jwks` authenticates at
/// the introspection and revocation endpoints with signed assertions.
pub async fn private_key_jwt_authenticates_a_registered_client(
    t: Target,
    _idp: Arc<Keys>,
) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    let meta = &ctx.meta.raw;
    let methods = &meta["token_endpoint_auth_methods_supported"];
    ctx.meta.exchange.ensure(
        methods
            .as_array()
            .is_some_and(|m| m.iter().any(|v| v == "private_key_jwt")),
        "token_endpoint_auth_methods_supported lists private_key_jwt",
    )?;
    let algs = meta["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ctx.meta.exchange.ensure(
        algs.iter().any(|a| a == "ES256")
            && !algs
                .iter()
                .any(|a| a == "none" || a.as_str().is_some_and(|a| a.starts_with("HS"))),
        "token_endpoint_auth_signing_alg_values_supported: ES256, never none or HMAC (RFC 8414 §2)",
    )?;
    let client = register(&ctx).await?;
    let ex = with_assertion(
        &ctx,
        &ctx.meta.introspection_endpoint,
        &client.assertion(&ctx),
        &[("token", "unknown")],
    )
    .await?;
    ex.expect_status(200)?;
    ex.ensure(
        ex.json()?["active"] == false,
        "an unknown token is inactive",
    )?;
    let ex = with_assertion(
        &ctx,
        &ctx.meta.revocation_endpoint,
        &client.assertion(&ctx),
        &[("token", "unknown")],
    )
    .await?;
    ex.expect_status(200)?;
    Ok(())
}

/// Every refused client assertion is `401 invalid_client` with a
/// `WWW-Authenticate` challenge (RFC 6749 §5.2, RFC 7523 §3.2): a replayed
/// `jti`, the token endpoint as `aud` (the issuer is required: the
/// audience-injection fix), expired, `exp` far ahead, `iss` not the client,
/// a foreign key, `alg: none`, HS256 keyed with the public key; and two
/// methods at once is `400 invalid_request` (RFC 6749 §2.3).
pub async fn client_assertion_refusals_are_401_invalid_client(
    t: Target,
    idp: Arc<Keys>,
) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    let client = register(&ctx).await?;
    let url = ctx.meta.introspection_endpoint.clone();
    let pairs = [("token", "unknown")];
    let refused = |ex: &Exchange, what: &str| -> CheckResult {
        ex.expect_oauth_error(401, "invalid_client")
            .map_err(|f| Failure::new(format!("{what}: {f}")))?;
        ex.ensure(
            ex.header("www-authenticate").is_some(),
            format!("{what}: 401 without WWW-Authenticate"),
        )?;
        Ok(())
    };
    let good = client.assertion(&ctx);
    with_assertion(&ctx, &url, &good, &pairs)
        .await?
        .expect_status(200)?;
    refused(
        &with_assertion(&ctx, &url, &good, &pairs).await?,
        "replayed jti",
    )?;
    let variants: Vec<(&str, Change)> = vec![
        ("aud the token endpoint", {
            let te = ctx.meta.token_endpoint.clone();
            Box::new(move |c| c["aud"] = json!(te))
        }),
        (
            "aud another server",
            Box::new(|c| c["aud"] = json!("https://evil.example")),
        ),
        ("expired", Box::new(|c| c["exp"] = json!(now() - 120))),
        (
            "exp a day ahead",
            Box::new(|c| c["exp"] = json!(now() + 86_400)),
        ),
        (
            "iss not the client",
            Box::new(|c| c["iss"] = json!("someone-else")),
        ),
        (
            "no jti",
            Box::new(|c| {
                c.as_object_mut().map(|o| o.remove("jti"));
            }),
        ),
    ];
    for (what, change) in variants {
        let mut claims = client.claims(&ctx);
        change(&mut claims);
        refused(
            &with_assertion(&ctx, &url, &client.keys.sign(&claims), &pairs).await?,
            what,
        )?;
    }
    // Signed by another key (the IdP's), under its own kid and under the client's.
    let claims = client.claims(&ctx);
    refused(
        &with_assertion(&ctx, &url, &idp.sign(&claims), &pairs).await?,
        "foreign key",
    )?;
    let foreign = Keys {
        kid: "client-key-1".into(),
        ..Keys::generate("x")
    };
    refused(
        &with_assertion(&ctx, &url, &foreign.sign(&claims), &pairs).await?,
        "foreign key, client's kid",
    )?;
    // alg none, and HS256 keyed with the client's public x coordinate.
    let payload = URL_SAFE_NO_PAD.encode(client.claims(&ctx).to_string());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"client-key-1"}"#)
    );
    refused(
        &with_assertion(&ctx, &url, &none, &pairs).await?,
        "alg none",
    )?;
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("client-key-1".into());
    let x = client.keys.jwk()["x"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let hmac = jsonwebtoken::encode(
        &hs,
        &client.claims(&ctx),
        &EncodingKey::from_secret(x.as_bytes()),
    )
    .map_err(|e| Failure::new(format!("HS256: {e}")))?;
    refused(&with_assertion(&ctx, &url, &hmac, &pairs).await?, "HS256")?;
    // Two methods at once: the assertion and Basic.
    let ex = ctx
        .http
        .post_form(
            &url,
            Auth::Basic(BACKUP_JOB.id, BACKUP_JOB.secret.unwrap_or_default()),
            &[
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &client.assertion(&ctx)),
                ("token", "unknown"),
            ],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// The IdP's assertion for alice (RFC 7523 §2.1), presented by the
/// registered client (authenticated by private_key_jwt), gets an access
/// token for alice that reads her photos; the metadata lists the grant.
pub async fn jwt_bearer_grant_issues_a_token_for_the_user(
    t: Target,
    idp: Arc<Keys>,
) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    ctx.meta.exchange.ensure(
        ctx.meta.raw["grant_types_supported"]
            .as_array()
            .is_some_and(|g| g.iter().any(|v| v == JWT_BEARER)),
        "grant_types_supported lists the JWT bearer grant",
    )?;
    let client = register(&ctx).await?;
    let assertion = idp.sign(&idp_claims(&ctx, ALICE.username));
    let ex = with_assertion(
        &ctx,
        &ctx.meta.token_endpoint,
        &client.assertion(&ctx),
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", &assertion),
            ("scope", "photos.read"),
        ],
    )
    .await?;
    ex.expect_status(200)?.expect_no_store()?;
    let json = ex.json()?;
    ex.ensure(json["token_type"] == "Bearer", "token_type Bearer")?;
    ex.ensure(
        json.get("refresh_token").is_none(),
        "no refresh token for an assertion",
    )?;
    let token = json["access_token"].as_str().unwrap_or_default().to_owned();
    let photos = ctx
        .http
        .send(
            Request::get(format!("{}/api/photos", ctx.target.base_url))
                .header("authorization", format!("Bearer {token}")),
        )
        .await?;
    photos.expect_status(200)?;
    let body = photos.json()?;
    photos.ensure(body["owner"] == ALICE.username, "the token is alice's")?;
    photos.ensure(
        body["photos"]
            .as_array()
            .is_some_and(|p| p.len() == ALICE.photos),
        "alice's photos",
    )?;
    Ok(())
}

fn idp_claims(ctx: &Ctx, sub: &str) -> Value {
    let now = now();
    json!({"iss": IDP, "sub": sub, "aud": ctx.meta.issuer, "exp": now + 60, "iat": now, "jti": jti()})
}

/// RFC 7523 §3.1: every refused assertion is `400 invalid_grant`: replayed
/// `jti`, wrong `aud`, expired, an untrusted issuer, a subject who is no
/// user here, a bad signature; a missing `assertion` is
/// `invalid_request`; a seeded client not registered for the grant is
/// `unauthorized_client`.
pub async fn jwt_bearer_refusals_are_invalid_grant(t: Target, idp: Arc<Keys>) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    let client = register(&ctx).await?;
    let exchange = |assertion: String| {
        let ctx = &ctx;
        let client = &client;
        async move {
            with_assertion(
                ctx,
                &ctx.meta.token_endpoint,
                &client.assertion(ctx),
                &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            )
            .await
        }
    };
    let good = idp.sign(&idp_claims(&ctx, ALICE.username));
    exchange(good.clone()).await?.expect_status(200)?;
    exchange(good)
        .await?
        .expect_oauth_error(400, "invalid_grant")
        .map_err(|f| Failure::new(format!("replayed jti: {f}")))?;
    let variants: Vec<(&str, Change)> = vec![
        ("aud the token endpoint", {
            let te = ctx.meta.token_endpoint.clone();
            Box::new(move |c| c["aud"] = json!(te))
        }),
        (
            "aud another server",
            Box::new(|c| c["aud"] = json!("https://evil.example")),
        ),
        ("expired", Box::new(|c| c["exp"] = json!(now() - 120))),
        (
            "untrusted iss",
            Box::new(|c| c["iss"] = json!("https://evil.example")),
        ),
        ("unknown sub", Box::new(|c| c["sub"] = json!("mallory"))),
        (
            "no jti",
            Box::new(|c| {
                c.as_object_mut().map(|o| o.remove("jti"));
            }),
        ),
    ];
    for (what, change) in variants {
        let mut claims = idp_claims(&ctx, ALICE.username);
        change(&mut claims);
        exchange(idp.sign(&claims))
            .await?
            .expect_oauth_error(400, "invalid_grant")
            .map_err(|f| Failure::new(format!("{what}: {f}")))?;
    }
    // Signed by the client's key instead of the IdP's.
    exchange(client.keys.sign(&idp_claims(&ctx, ALICE.username)))
        .await?
        .expect_oauth_error(400, "invalid_grant")
        .map_err(|f| Failure::new(format!("foreign key: {f}")))?;
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"idp-key"}"#),
        URL_SAFE_NO_PAD.encode(idp_claims(&ctx, ALICE.username).to_string())
    );
    exchange(none)
        .await?
        .expect_oauth_error(400, "invalid_grant")
        .map_err(|f| Failure::new(format!("alg none: {f}")))?;
    // RFC 7521 §4.1: assertion is required.
    with_assertion(
        &ctx,
        &ctx.meta.token_endpoint,
        &client.assertion(&ctx),
        &[("grant_type", JWT_BEARER)],
    )
    .await?
    .expect_oauth_error(400, "invalid_request")?;
    // A seeded client not registered for the grant.
    let ex = post(
        &ctx,
        &ctx.meta.token_endpoint,
        BACKUP_JOB.basic(),
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", &idp.sign(&idp_claims(&ctx, ALICE.username))),
        ],
    )
    .await?;
    ex.expect_oauth_error(400, "unauthorized_client")?;
    Ok(())
}
