//! Checks of JWT access tokens (RFC 9068) and the JWKS (RFC 7517), shared by
//! the JWT-mode suites of both providers. Signatures are verified with
//! `jsonwebtoken` (ring), an implementation independent of Tessera's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_conformance::demo::{ALICE, BACKUP_JOB, PRINTSHOP};
use tessera_conformance::http::Request;
use tessera_conformance::{CheckResult, Ctx, Failure, Target, flow};

fn decode_part(token: &str, i: usize) -> Result<Value, Failure> {
    let part = token
        .split('.')
        .nth(i)
        .ok_or_else(|| Failure::new(format!("not a JWS: {token:.20}...")))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| Failure::new(format!("JWS part {i} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| Failure::new(format!("JWS part {i}: {e}")))
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> CheckResult {
    if cond {
        Ok(())
    } else {
        Err(Failure::new(what()))
    }
}

/// The JWKS at `jwks_uri` (RFC 8414 §2), public keys only, cacheable.
async fn jwks(ctx: &Ctx) -> Result<jsonwebtoken::jwk::JwkSet, Failure> {
    let meta = ctx.http.get(&ctx.target.metadata_url()).await?;
    let meta = meta.json()?;
    let uri = meta["jwks_uri"]
        .as_str()
        .ok_or_else(|| Failure::new("metadata has no jwks_uri"))?
        .to_owned();
    ensure(uri == format!("{}/jwks", ctx.target.base_url), || {
        format!("jwks_uri {uri} is not under the issuer")
    })?;
    let ex = ctx.http.send(Request::get(uri)).await?;
    ex.expect_status(200)?;
    ex.expect_media_type("application/jwk-set+json")?;
    ex.ensure(
        ex.header("cache-control")
            .is_some_and(|c| c.contains("max-age")),
        "the JWKS should say how long it may be cached",
    )?;
    let set = ex.json()?;
    for key in set["keys"].as_array().into_iter().flatten() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            ex.ensure(
                key.get(private).is_none(),
                format!("a JWK carries {private}"),
            )?;
        }
        ex.ensure(key["kid"].is_string(), "a JWK without kid")?;
    }
    serde_json::from_value(set).map_err(|e| ex.failure(format!("not a JWK Set: {e}")))
}

/// Verifies `token` with an independent JOSE library against the JWKS and
/// returns its claims; the header must say `typ: at+jwt` (RFC 9068 §2.1).
fn verify(
    set: &jsonwebtoken::jwk::JwkSet,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<Value, Failure> {
    let header = decode_part(token, 0)?;
    ensure(header["typ"] == "at+jwt", || {
        format!("typ is {}, expected at+jwt", header["typ"])
    })?;
    let jh =
        jsonwebtoken::decode_header(token).map_err(|e| Failure::new(format!("header: {e}")))?;
    ensure(
        matches!(
            jh.alg,
            jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::EdDSA
        ),
        || format!("alg {:?} is not asymmetric", jh.alg),
    )?;
    let kid = jh.kid.ok_or_else(|| Failure::new("no kid in the header"))?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| Failure::new(format!("kid {kid} is not in the JWKS")))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
        .map_err(|e| Failure::new(format!("JWK {kid}: {e}")))?;
    let mut validation = jsonwebtoken::Validation::new(jh.alg);
    validation.set_issuer(&[issuer]);
    // DEMO-CONTRACT "Resource indicators": a token without `resource` is
    // for `{issuer}/api`; a provider without resource indicators names
    // itself (the issuer) instead.
    validation.set_audience(&[audience, issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| Failure::new(format!("the JWT does not verify: {e}")))?;
    Ok(data.claims)
}

/// Discovery, the JWKS, an access token of the code flow and one of
/// client credentials: each an RFC 9068 JWT verified by another library,
/// with the claims the contract lists; the photo API accepts it, and after
/// revocation refuses it and introspection calls it inactive.
pub async fn jwt_access_tokens_rfc9068(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let set = jwks(&ctx).await?;
    let issuer = ctx.target.base_url.clone();
    let api = format!("{issuer}/api");

    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let claims = verify(&set, &tokens.access, &issuer, &api)?;
    ensure(claims["sub"] == ALICE.username, || {
        format!("sub is {}", claims["sub"])
    })?;
    ensure(claims["client_id"] == "printshop", || {
        format!("client_id is {}", claims["client_id"])
    })?;
    ensure(claims["jti"].is_string(), || "no jti".into())?;
    let mut scope: Vec<&str> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    scope.sort_unstable();
    ensure(scope == ["photos.read", "profile"], || {
        format!("scope is {}", claims["scope"])
    })?;
    ensure(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .is_some_and(|(e, i)| e > i),
        || "exp is not after iat".into(),
    )?;
    ensure(tokens.exchange.json()?["token_type"] == "Bearer", || {
        "token_type is not Bearer".into()
    })?;

    // The provider's own resource server accepts it, then refuses it revoked.
    flow::api(&ctx, &tokens.access).await?.expect_status(200)?;
    flow::revoke(&ctx, PRINTSHOP.basic(), &tokens.access)
        .await?
        .expect_status(200)?;
    let refused = flow::api(&ctx, &tokens.access).await?;
    refused.expect_status(401)?;
    refused.ensure(
        refused
            .header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token")),
        "a revoked JWT should get error=\"invalid_token\"",
    )?;
    let (json, ex) = flow::introspect(&ctx, &tokens.access).await?;
    ex.ensure(
        json["active"] == false,
        "a revoked JWT is inactive at introspection",
    )?;

    // Client credentials: the client is the subject (RFC 9068 §2.2).
    let job = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    let claims = verify(&set, &job.access, &issuer, &api)?;
    ensure(claims["sub"] == "backup-job", || {
        format!("sub is {}", claims["sub"])
    })?;
    flow::api(&ctx, &job.access).await?.expect_status(200)?;

    // A token re-signed with HS256 keyed by the public JWK is refused.
    let header = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": decode_part(&job.access, 0)?["kid"]})
            .to_string(),
    );
    let body = job.access.split('.').nth(1).unwrap_or_default();
    let forged = format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
    flow::api(&ctx, &forged).await?.expect_status(401)?;
    Ok(())
}
