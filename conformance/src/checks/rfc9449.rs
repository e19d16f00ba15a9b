//! RFC 9449: DPoP. A client proves possession of a key with a signed proof
//! in the `DPoP` header; tokens issued with one are bound to the key
//! (`token_type: DPoP`, `cnf.jkt`), and the photos API accepts a bound
//! token only as `Authorization: DPoP` with a fresh proof by that key.
//!
//! The client side is written here from the RFC, independently of the
//! server: P-256 (ES256) and Ed25519 (EdDSA) keys from the RustCrypto
//! crates, proofs signed by hand.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::demo::{ALICE, BACKUP_JOB, PHOTO_CLI, PRINTSHOP};
use crate::flow;
use crate::http::{Exchange, Request};
use crate::{CheckResult, Ctx, Failure, Target};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A DPoP key pair (RFC 9449 §4.2).
#[derive(Debug)]
pub enum DpopKey {
    /// ES256.
    Es256(p256::ecdsa::SigningKey),
    /// EdDSA.
    Ed25519(ed25519_dalek::SigningKey),
}

impl DpopKey {
    /// A fresh P-256 key.
    pub fn es256() -> Self {
        loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
                return Self::Es256(k);
            }
        }
    }

    /// A fresh Ed25519 key.
    pub fn ed25519() -> Self {
        Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
    }

    fn members(&self) -> (String, Option<String>) {
        match self {
            Self::Es256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                (
                    p.x().map(|x| b64(x)).unwrap_or_default(),
                    p.y().map(|y| b64(y)),
                )
            }
            Self::Ed25519(k) => (b64(k.verifying_key().as_bytes()), None),
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match self.members() {
            (x, Some(y)) => json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            (x, None) => json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint.
    pub fn thumbprint(&self) -> String {
        let canonical = match self.members() {
            (x, Some(y)) => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            (x, None) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// Signs `header` and `claims` as a compact JWS.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            Self::Es256(k) => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    /// A fresh proof for `htm` `htu` (with `ath` of `access_token`), §4.2.
    pub fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()});
        let mut claims = json!({
            "jti": b64(&rand::random::<[u8; 16]>()),
            "htm": htm,
            "htu": htu,
            "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        });
        if let Some(t) = access_token {
            claims["ath"] = json!(b64(&Sha256::digest(t.as_bytes())));
        }
        self.sign(&header, &claims)
    }
}

/// A DPoP-bound token response: 200, `token_type: DPoP`, `no-store`.
fn expect_dpop_tokens(ex: &Exchange) -> Result<(String, Option<String>), Failure> {
    ex.expect_status(200)?.expect_no_store()?;
    let token_type = ex.json_str("token_type")?;
    ex.ensure(
        token_type == "DPoP",
        format!("token_type must be `DPoP` for a request with a proof (§5), got {token_type:?}"),
    )?;
    let json = ex.json()?;
    let refresh = json
        .get("refresh_token")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok((ex.json_str("access_token")?, refresh))
}

async fn backup_job_token(ctx: &Ctx, proof: &str) -> Result<Exchange, Failure> {
    ctx.http
        .send(
            Request::post_form(
                &ctx.meta.token_endpoint,
                BACKUP_JOB.basic(),
                &[("grant_type", "client_credentials")],
            )
            .header("dpop", proof),
        )
        .await
}

async fn api_dpop(ctx: &Ctx, token: &str, proof: Option<&str>) -> Result<Exchange, Failure> {
    let mut request =
        Request::get(ctx.photos_url()).header("authorization", format!("DPoP {token}"));
    if let Some(p) = proof {
        request = request.header("dpop", p);
    }
    ctx.http.send(request).await
}

/// A refusal at the API with a `DPoP` challenge (§7.1) naming `error`.
fn expect_dpop_challenge(ex: &Exchange, error: &str, what: &str) -> CheckResult {
    ex.expect_status(401)?;
    let challenges = ex.headers_named("www-authenticate").join(", ");
    ex.ensure(
        challenges.starts_with("DPoP ") || challenges.contains(", DPoP "),
        format!("{what}: expected a `WWW-Authenticate: DPoP` challenge (§7.1), got {challenges:?}"),
    )?;
    ex.ensure(
        challenges.contains(&format!("error=\"{error}\"")),
        format!("{what}: expected error=\"{error}\", got {challenges:?}"),
    )?;
    ex.ensure(
        challenges.contains("algs="),
        format!("{what}: the DPoP challenge lists the accepted algs (§7.1)"),
    )?;
    Ok(())
}

/// §5.1: metadata lists `dpop_signing_alg_values_supported`, asymmetric only.
pub async fn metadata_lists_dpop_algorithms(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let algs: Vec<String> = ctx
        .meta
        .raw
        .get("dpop_signing_alg_values_supported")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if algs.is_empty() || algs.iter().any(|a| a == "none" || a.starts_with("HS")) {
        return Err(Failure::new(format!(
            "dpop_signing_alg_values_supported must list asymmetric algorithms, got {algs:?}"
        )));
    }
    Ok(())
}

/// §5, §6: a token request with a proof gets a bound token: `token_type:
/// DPoP`, `cnf.jkt` the key's thumbprint at introspection (§6.2) and, for a
/// JWT access token, in the token itself (§6.1).
pub async fn token_request_with_a_proof_binds_the_token(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for key in [DpopKey::es256(), DpopKey::ed25519()] {
        let ex = backup_job_token(&ctx, &key.proof("POST", &ctx.meta.token_endpoint, None)).await?;
        let (access, _) = expect_dpop_tokens(&ex)?;
        let (json, ex) = flow::introspect(&ctx, &access).await?;
        let jkt = json.pointer("/cnf/jkt").and_then(|v| v.as_str());
        ex.ensure(
            jkt == Some(key.thumbprint().as_str()),
            format!("introspection must show cnf.jkt = the key's thumbprint (§6.2), got {jkt:?}"),
        )?;
        if let Some(payload) = access.split('.').nth(1) {
            let claims: Value = URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            let jkt = claims.pointer("/cnf/jkt").and_then(|v| v.as_str());
            ex.ensure(
                jkt == Some(key.thumbprint().as_str()),
                format!("a JWT access token carries cnf.jkt (§6.1), got {jkt:?}"),
            )?;
        }
    }
    Ok(())
}

/// §4.3, §5: a bad proof at the token endpoint is `400 invalid_dpop_proof`:
/// for another URI or method, `alg: none`, a private key in `jwk`, a replay.
pub async fn bad_proofs_at_the_token_endpoint_are_invalid_dpop_proof(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let key = DpopKey::es256();
    let url = ctx.meta.token_endpoint.clone();
    let replayed = key.proof("POST", &url, None);
    expect_dpop_tokens(&backup_job_token(&ctx, &replayed).await?)?;
    let mut none_header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()});
    let claims = json!({"jti": "x1", "htm": "POST", "htu": url, "iat": time::OffsetDateTime::now_utc().unix_timestamp()});
    let unsigned = format!(
        "{}.{}.",
        b64(none_header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    none_header["alg"] = json!("ES256");
    none_header["jwk"]["d"] = json!(b64(&[1u8; 32]));
    let private = key.sign(&none_header, &claims);
    for (what, proof) in [
        ("a replayed proof (§11.1)", replayed),
        (
            "a proof for another URI",
            key.proof("POST", &format!("{url}/x"), None),
        ),
        ("a proof for GET", key.proof("GET", &url, None)),
        ("alg none", unsigned),
        ("a private key in jwk", private),
        ("not a JWS", "garbage".to_owned()),
    ] {
        let ex = backup_job_token(&ctx, &proof).await?;
        ex.expect_oauth_error(400, "invalid_dpop_proof")
            .map_err(|e| Failure::new(format!("{what}: {e}")))?;
    }
    Ok(())
}

/// §7: a bound token works at the API only as `DPoP` with a fresh proof by
/// its key (`ath` its hash); a stolen one is refused: as a bearer token
/// (§7.2), with the thief's own key, or with a replayed proof (§11.1).
pub async fn bound_token_needs_its_proof_at_the_api(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let key = DpopKey::es256();
    let ex = backup_job_token(&ctx, &key.proof("POST", &ctx.meta.token_endpoint, None)).await?;
    let (access, _) = expect_dpop_tokens(&ex)?;
    let url = ctx.photos_url();
    let proof = key.proof("GET", &url, Some(&access));
    let ex = api_dpop(&ctx, &access, Some(&proof)).await?;
    ex.expect_status(200)?;
    let ex = api_dpop(&ctx, &access, Some(&proof)).await?;
    expect_dpop_challenge(&ex, "invalid_dpop_proof", "a replayed proof")?;
    let ex = flow::api(&ctx, &access).await?;
    ex.expect_status(401)?;
    let c = ex.headers_named("www-authenticate").join(", ");
    ex.ensure(
        c.contains("error=\"invalid_token\""),
        format!("a bound token sent as Bearer: 401 invalid_token (§7.2), got {c:?}"),
    )?;
    let thief = DpopKey::es256();
    let ex = api_dpop(
        &ctx,
        &access,
        Some(&thief.proof("GET", &url, Some(&access))),
    )
    .await?;
    expect_dpop_challenge(&ex, "invalid_dpop_proof", "a proof by another key")?;
    let ex = api_dpop(&ctx, &access, None).await?;
    expect_dpop_challenge(&ex, "invalid_dpop_proof", "no proof")?;
    let ex = api_dpop(&ctx, &access, Some(&key.proof("GET", &url, None))).await?;
    expect_dpop_challenge(&ex, "invalid_dpop_proof", "a proof without ath")?;
    // Still good with a fresh proof.
    let ex = api_dpop(&ctx, &access, Some(&key.proof("GET", &url, Some(&access)))).await?;
    ex.expect_status(200)?;
    // A token the server does not know, in the DPoP scheme with a good
    // proof for it: `invalid_token`, challenged in the scheme the request
    // used (§7.1), not as Bearer.
    let last = if access.ends_with('A') { "B" } else { "A" };
    let unknown = format!("{}{last}", &access[..access.len() - 1]);
    let ex = api_dpop(
        &ctx,
        &unknown,
        Some(&key.proof("GET", &url, Some(&unknown))),
    )
    .await?;
    expect_dpop_challenge(&ex, "invalid_token", "an unknown token in the DPoP scheme")?;
    Ok(())
}

/// §5: a public client's refresh token is bound to its key: refused
/// without a proof or with another key's, good with its own.
pub async fn public_clients_refresh_token_is_bound(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let key = DpopKey::ed25519();
    let url = ctx.meta.token_endpoint.clone();
    let grant = flow::authorize(
        &ctx.fresh_browser()?,
        &PHOTO_CLI,
        &ALICE,
        Some("photos.read"),
    )
    .await?;
    let ex = ctx
        .http
        .send(
            Request::post_form(
                &url,
                PHOTO_CLI.basic(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &grant.code),
                    ("redirect_uri", &grant.redirect_uri),
                    ("code_verifier", &grant.pkce.verifier),
                ],
            )
            .header("dpop", key.proof("POST", &url, None)),
        )
        .await?;
    let (_, refresh) = expect_dpop_tokens(&ex)?;
    let refresh = refresh.ok_or_else(|| ex.failure("no refresh_token"))?;
    let request = |proof: Option<String>| {
        let r = Request::post_form(
            &url,
            PHOTO_CLI.basic(),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        );
        match proof {
            Some(p) => r.header("dpop", p),
            None => r,
        }
    };
    let ex = ctx.http.send(request(None)).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    let other = DpopKey::es256();
    let ex = ctx
        .http
        .send(request(Some(other.proof("POST", &url, None))))
        .await?;
    ex.expect_oauth_error(400, "invalid_dpop_proof")?;
    let ex = ctx
        .http
        .send(request(Some(key.proof("POST", &url, None))))
        .await?;
    expect_dpop_tokens(&ex)?;
    Ok(())
}

/// Pushes printshop's authorization request (RFC 9126 §2.1) with `extra`
/// parameters and an optional `DPoP` header; with `proof_key`, alice then
/// allows it in a browser and the code is returned with its PKCE verifier.
async fn push_with_proof(
    ctx: &Ctx,
    extra: &[(&str, &str)],
    proof: Option<String>,
) -> Result<(Exchange, flow::Pkce), Failure> {
    let endpoint = ctx
        .meta
        .raw
        .get("pushed_authorization_request_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ctx.meta
                .exchange
                .failure("no pushed_authorization_request_endpoint")
        })?;
    let pkce = flow::Pkce::new();
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", PRINTSHOP.id),
        ("redirect_uri", redirect),
        ("state", "s"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    let mut request = Request::post_form(&endpoint, PRINTSHOP.basic(), &pairs);
    if let Some(p) = proof {
        request = request.header("dpop", p);
    }
    Ok((ctx.http.send(request).await?, pkce))
}

/// Alice allows the pushed request; printshop redeems the code with the
/// `DPoP` header `proof` (if any).
async fn redeem_pushed(
    ctx: &Ctx,
    pushed: &Exchange,
    pkce: &flow::Pkce,
    proof: Option<String>,
) -> Result<Exchange, Failure> {
    let request_uri = pushed.expect_status(201)?.json_str("request_uri")?;
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let url = flow::authorize_url(
        ctx,
        &[("client_id", PRINTSHOP.id), ("request_uri", &request_uri)],
    );
    let landing = flow::browse(
        &ctx.fresh_browser()?,
        &url,
        redirect,
        &ALICE,
        flow::Decision::Allow,
    )
    .await?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let mut request = Request::post_form(
        &ctx.meta.token_endpoint,
        PRINTSHOP.basic(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &pkce.verifier),
        ],
    );
    if let Some(p) = proof {
        request = request.header("dpop", p);
    }
    ctx.http.send(request).await
}

/// §10.1: a `DPoP` header at the pushed authorization request endpoint
/// binds the code to its key (redeemed with another key's proof: `400
/// invalid_dpop_proof`; with its own: a DPoP token); a proof of another key
/// than `dpop_jkt` names, or a bad proof, is `400 invalid_dpop_proof`.
pub async fn a_proof_at_par_binds_the_code(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let par = ctx
        .meta
        .raw
        .get("pushed_authorization_request_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ctx.meta
                .exchange
                .failure("no pushed_authorization_request_endpoint")
        })?;
    let token = ctx.meta.token_endpoint.clone();
    let key = DpopKey::es256();
    let thief = DpopKey::ed25519();

    let (pushed, pkce) = push_with_proof(&ctx, &[], Some(key.proof("POST", &par, None))).await?;
    let ex = redeem_pushed(
        &ctx,
        &pushed,
        &pkce,
        Some(thief.proof("POST", &token, None)),
    )
    .await?;
    ex.expect_oauth_error(400, "invalid_dpop_proof")
        .map_err(|f| {
            Failure::new(format!(
                "a code bound at PAR, redeemed with another key: {f}"
            ))
        })?;
    let (pushed, pkce) = push_with_proof(&ctx, &[], Some(key.proof("POST", &par, None))).await?;
    let ex = redeem_pushed(&ctx, &pushed, &pkce, Some(key.proof("POST", &token, None))).await?;
    expect_dpop_tokens(&ex)?;

    let jkt = key.thumbprint();
    for (what, extra, proof) in [
        (
            "dpop_jkt of another key than the proof's",
            vec![("dpop_jkt", jkt.as_str())],
            thief.proof("POST", &par, None),
        ),
        (
            "a proof for the token endpoint",
            vec![],
            key.proof("POST", &token, None),
        ),
        ("a proof for GET", vec![], key.proof("GET", &par, None)),
        ("not a JWS", vec![], "garbage".to_owned()),
    ] {
        let (ex, _) = push_with_proof(&ctx, &extra, Some(proof)).await?;
        ex.expect_oauth_error(400, "invalid_dpop_proof")
            .map_err(|f| Failure::new(format!("PAR with {what}: {f}")))?;
    }
    Ok(())
}

/// RFC 9449 §5.2: a client that registers (RFC 7591) with
/// `dpop_bound_access_tokens: true` gets it echoed, and the server "MUST
/// reject token requests from the client that do not contain the DPoP
/// header": its code exchange without a proof is `400 invalid_dpop_proof`
/// (the code is not spent), and with one it gets DPoP-bound tokens.
pub async fn a_client_registered_for_dpop_needs_a_proof(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = flow::loopback_redirect_uri()?;
    let info = super::rfc7591::register(
        &ctx,
        json!({
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "photos.read",
            "dpop_bound_access_tokens": true,
        }),
    )
    .await?;
    let id = info["client_id"].as_str().unwrap_or_default().to_owned();
    let pkce = flow::Pkce::new();
    let start = flow::authorize_url(
        &ctx,
        &[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", &redirect),
            ("scope", "photos.read"),
            ("state", "dpop-bound"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let browser = ctx.fresh_browser()?;
    let landing = flow::browse(&browser, &start, &redirect, &ALICE, flow::Decision::Allow).await?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let url = ctx.meta.token_endpoint.clone();
    let exchange = Request::post_form(
        &url,
        crate::http::Auth::ClientId(&id),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &pkce.verifier),
        ],
    );
    let ex = ctx.http.send(exchange.clone()).await?;
    ex.expect_oauth_error(400, "invalid_dpop_proof")?;
    let key = DpopKey::es256();
    let ex = ctx
        .http
        .send(exchange.header("dpop", key.proof("POST", &url, None)))
        .await?;
    expect_dpop_tokens(&ex)?;
    Ok(())
}
