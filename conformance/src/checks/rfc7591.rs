//! RFC 7591 (dynamic client registration) against the demo: discovery of
//! `registration_endpoint`, the 201 answer, every error path of §3.2.2, and
//! the code flow run by a client that registered itself, with the `oauth2`
//! crate on the client side.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse as _, TokenUrl,
};

use super::oauth::Recorder;
use crate::demo::ALICE;
use crate::flow::{self, Decision};
use crate::http::{Exchange, Request};
use crate::{CheckResult, Ctx, Failure, Target};

/// The registration endpoint from the metadata (RFC 8414 §2).
fn endpoint(ctx: &Ctx) -> Result<String, Failure> {
    ctx.meta
        .raw
        .get("registration_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ctx.meta
                .exchange
                .failure("the metadata has no registration_endpoint")
        })
}

/// POSTs `body` as JSON to the registration endpoint.
async fn post_json(ctx: &Ctx, body: &serde_json::Value) -> Result<Exchange, Failure> {
    let url = endpoint(ctx)?;
    ctx.http
        .send(
            Request::get(url)
                .method(reqwest::Method::POST)
                .content_type("application/json")
                .body(body.to_string()),
        )
        .await
}

/// Registers `metadata`, requiring `201` (§3.2.1), `no-store` and every
/// value echoed; the client information.
pub(crate) async fn register(
    ctx: &Ctx,
    metadata: serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    let ex = post_json(ctx, &metadata).await?;
    ex.expect_status(201)?
        .expect_media_type("application/json")?
        .expect_no_store()?;
    let info = ex.json()?;
    ex.ensure(
        info.get("client_id")
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty()),
        "the answer has no client_id",
    )?;
    ex.ensure(
        info.get("client_id_issued_at")
            .and_then(|v| v.as_i64())
            .is_some(),
        "the answer has no client_id_issued_at",
    )?;
    if let Some(obj) = metadata.as_object() {
        for (name, value) in obj {
            ex.ensure(
                info.get(name) == Some(value),
                format!("the registered {name} is not echoed as sent (RFC 7591 §3.2.1)"),
            )?;
        }
    }
    Ok(info)
}

fn redirect_uri() -> Result<String, Failure> {
    flow::loopback_redirect_uri()
}

/// The code flow for a registered client, through the `oauth2` crate, as
/// alice; the access token.
async fn code_flow(ctx: &Ctx, info: &serde_json::Value, redirect: &str) -> Result<String, Failure> {
    let id = info["client_id"].as_str().unwrap_or_default().to_owned();
    let bad = |what: &str, e: &dyn std::fmt::Display| Failure::new(format!("{what}: {e}"));
    let mut client = BasicClient::new(ClientId::new(id))
        .set_auth_uri(
            AuthUrl::new(ctx.meta.authorization_endpoint.clone())
                .map_err(|e| bad("authorization_endpoint", &e))?,
        )
        .set_token_uri(
            TokenUrl::new(ctx.meta.token_endpoint.clone())
                .map_err(|e| bad("token_endpoint", &e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect.to_owned()).map_err(|e| bad("redirect_uri", &e))?,
        );
    if let Some(secret) = info.get("client_secret").and_then(|s| s.as_str()) {
        client = client.set_client_secret(ClientSecret::new(secret.to_owned()));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("photos.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = ctx.fresh_browser()?;
    let landing = flow::browse(&browser, url.as_str(), redirect, &ALICE, Decision::Allow).await?;
    landing.expect_state_and_iss(ctx, Some(csrf.secret()))?;
    // DEMO-CONTRACT "Pages a person sees": the consent page of a
    // self-registered client says PhotoBook has not verified it.
    let consent = landing
        .trace
        .iter()
        .find(|ex| {
            crate::html::forms(&ex.body)
                .iter()
                .any(|f| f.submit_button("decision", "allow").is_some())
        })
        .ok_or_else(|| landing.failure("no consent page in the dance"))?;
    consent.ensure(
        consent.body.contains("has not verified this app"),
        "the consent page of a self-registered client must say PhotoBook has not verified it",
    )?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let rec = Recorder::new()?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&rec)
        .await
        .map_err(|e| rec.failure(format!("the oauth2 crate's token request failed: {e:?}")))?;
    let raw = rec
        .last()
        .ok_or_else(|| Failure::new("no token exchange was recorded"))?;
    flow::expect_tokens(&raw)?;
    raw.ensure(
        token.refresh_token().is_some(),
        "a client registered for refresh_token gets one",
    )?;
    Ok(token.access_token().secret().clone())
}

/// The metadata lists `registration_endpoint` (RFC 8414 §2); a public
/// client (`none`, the MCP case) registers, gets no secret, and runs the
/// code flow with PKCE through the `oauth2` crate; its token reads alice's
/// photos.
pub async fn public_client_registers_and_runs_the_code_flow(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = redirect_uri()?;
    let info = register(
        &ctx,
        serde_json::json!({
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "Conformance MCP client",
            "scope": "photos.read",
        }),
    )
    .await?;
    if info.get("client_secret").is_some() {
        return Err(Failure::new(format!(
            "a public client must not get a client_secret: {info}"
        )));
    }
    let access = code_flow(&ctx, &info, &redirect).await?;
    super::rfc6749_happy::expect_photos(&ctx, &access, "alice", ALICE.photos).await?;
    Ok(())
}

/// RFC 9700 §4.11.2: anybody can register a redirect URI, so an erroneous
/// authorization request in a self-registered client's name (an unknown
/// scope, no PKCE) is answered with an error page, never an automatic
/// redirect to that URI, while printshop, the operator's client, still
/// hears the same error at its redirect URI (RFC 6749 §4.1.2.1).
pub async fn a_self_registered_clients_errors_are_pages_not_redirects(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = redirect_uri()?;
    let info = register(
        &ctx,
        serde_json::json!({
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "scope": "photos.read",
        }),
    )
    .await?;
    let id = info["client_id"].as_str().unwrap_or_default().to_owned();
    let pkce = flow::Pkce::new();
    let printshop = crate::demo::PRINTSHOP;
    let clients = [
        (id.as_str(), redirect.as_str()),
        (printshop.id, printshop.redirect_uri.unwrap_or_default()),
    ];
    for (client, redirect) in clients {
        let bad_scope = [
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("scope", "no-such-scope"),
            ("state", "s1"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let no_pkce = &bad_scope[..3];
        for params in [&bad_scope[..], no_pkce] {
            let ex = ctx.http.get(&flow::authorize_url(&ctx, params)).await?;
            if client == id {
                super::rfc6749_authorize::expect_error_page(&ex)?;
            } else {
                let location = ex.location().unwrap_or_default();
                ex.ensure(
                    location.starts_with(redirect) && location.contains("error="),
                    format!("printshop's error goes to its redirect URI, got {location:?}"),
                )?;
            }
        }
    }
    Ok(())
}

/// A confidential client (`client_secret_basic`) gets a secret with
/// `client_secret_expires_at` 0 (§3.2.1), and authenticates with it at the
/// token endpoint; a wrong secret is `401 invalid_client`.
pub async fn confidential_client_registers_and_authenticates(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = redirect_uri()?;
    let info = register(
        &ctx,
        serde_json::json!({
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Conformance web app",
        }),
    )
    .await?;
    let ok = info
        .get("client_secret")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.len() >= 43)
        && info.get("client_secret_expires_at") == Some(&serde_json::json!(0));
    if !ok {
        return Err(Failure::new(format!(
            "a confidential client needs a 256-bit client_secret and client_secret_expires_at 0: {info}"
        )));
    }
    code_flow(&ctx, &info, &redirect).await?;
    let id = info["client_id"].as_str().unwrap_or_default();
    let ex = ctx
        .http
        .send(Request::post_form(
            &ctx.meta.token_endpoint,
            crate::http::Auth::Basic(id, "not-the-secret"),
            &[("grant_type", "authorization_code"), ("code", "x")],
        ))
        .await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    Ok(())
}

/// Every §3.2.2 error path: `400` JSON with `invalid_redirect_uri` or
/// `invalid_client_metadata` (DEMO-CONTRACT: https or loopback redirect
/// URIs; only authorization_code and refresh_token; only known scopes,
/// never silently dropped), and nothing registered.
pub async fn bad_metadata_is_refused_with_its_error(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let cases = [
        (
            serde_json::json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["http://10.0.0.1/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb#f"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["com.example.app:/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb"], "scope": "photos.read admin"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!({"redirect_uris": ["https://app.example/cb"], "logo_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
        ),
        (
            serde_json::json!(["not", "an", "object"]),
            "invalid_client_metadata",
        ),
    ];
    for (body, code) in cases {
        let ex = post_json(&ctx, &body).await?;
        ex.expect_oauth_error(400, code)?;
        ex.expect_no_store()?;
    }
    // Not JSON at all.
    let ex = ctx
        .http
        .send(Request::post_form(
            endpoint(&ctx)?,
            crate::http::Auth::Nothing,
            &[("redirect_uris", "https://app.example/cb")],
        ))
        .await?;
    ex.expect_oauth_error(400, "invalid_client_metadata")?;
    // Only POST.
    let ex = ctx.http.get(&endpoint(&ctx)?).await?;
    ex.expect_status(405)?;
    Ok(())
}
