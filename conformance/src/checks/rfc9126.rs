//! RFC 9126: pushed authorization requests. The client pushes its request
//! on the back channel (authenticated) and the browser carries only
//! `client_id` and `request_uri`.

use crate::demo::{ALICE, PRINTSHOP};
use crate::flow::{self, CodeGrant, Decision, Pkce};
use crate::http::{Auth, Exchange};
use crate::{CheckResult, Ctx, Failure, Target};

/// The endpoint from the metadata (RFC 9126 §5).
fn endpoint(ctx: &Ctx) -> Result<String, Failure> {
    ctx.meta
        .raw
        .get("pushed_authorization_request_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ctx.meta
                .exchange
                .failure("metadata has no pushed_authorization_request_endpoint (RFC 9126 §5)")
        })
}

/// Pushes printshop's request; the exchange, and the PKCE and state used.
async fn push(
    ctx: &Ctx,
    auth: Auth<'_>,
    extra: &[(&str, &str)],
) -> Result<(Exchange, Pkce, String), Failure> {
    let pkce = Pkce::new();
    let state = flow::random_string();
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", PRINTSHOP.id),
        ("redirect_uri", redirect),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    let ex = ctx.http.post_form(&endpoint(ctx)?, auth, &pairs).await?;
    Ok((ex, pkce, state))
}

fn by_reference(ctx: &Ctx, request_uri: &str) -> String {
    flow::authorize_url(
        ctx,
        &[("client_id", PRINTSHOP.id), ("request_uri", request_uri)],
    )
}

/// §2.2 and §4: `201` with a `request_uri`; the browser carries only it and
/// the code flow ends with tokens bound to the pushed PKCE challenge.
pub async fn pushed_request_runs_the_code_flow(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (ex, pkce, state) = push(&ctx, PRINTSHOP.basic(), &[]).await?;
    ex.expect_status(201)?.expect_no_store()?;
    let request_uri = ex.json_str("request_uri")?;
    ex.ensure(
        request_uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "request_uri must be a urn:ietf:params:oauth:request_uri: URN (RFC 9126 §2.2)",
    )?;
    ex.ensure(
        ex.json()?
            .get("expires_in")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n > 0),
        "expires_in must be a positive number",
    )?;
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let browser = ctx.fresh_browser()?;
    let landing = flow::browse(
        &browser,
        &by_reference(&ctx, &request_uri),
        redirect,
        &ALICE,
        Decision::Allow,
    )
    .await?;
    landing.expect_state_and_iss(&ctx, Some(&state))?;
    let grant = CodeGrant::from_landing(landing, pkce, redirect.to_owned(), state)?;
    flow::expect_tokens(&flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await?)?;
    Ok(())
}

/// §4: a `request_uri` is used once; again, it is an error page, never a redirect.
pub async fn request_uri_is_single_use(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (ex, _, _) = push(&ctx, PRINTSHOP.basic(), &[]).await?;
    let request_uri = ex.expect_status(201)?.json_str("request_uri")?;
    let url = by_reference(&ctx, &request_uri);
    ctx.fresh_browser()?
        .http
        .get(&url)
        .await?
        .expect_status(200)?;
    let again = ctx.fresh_browser()?.http.get(&url).await?;
    again.ensure(
        again.location().is_none(),
        "a used request_uri must not redirect",
    )?;
    again.expect_status(400)?;
    Ok(())
}

/// §2.3: the push needs client authentication (`401 invalid_client`).
pub async fn push_without_client_authentication_is_401(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (ex, _, _) = push(&ctx, Auth::Nothing, &[]).await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    Ok(())
}

/// §2.3: the authorization endpoint's validation, answered as JSON.
pub async fn push_with_unregistered_redirect_uri_is_400(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = [("scope", "photos.write")];
    let (ex, _, _) = push(&ctx, PRINTSHOP.basic(), &pairs).await?;
    ex.expect_oauth_error(400, "invalid_scope")?;
    let pkce = Pkce::new();
    let ex = ctx
        .http
        .post_form(
            &endpoint(&ctx)?,
            PRINTSHOP.basic(),
            &[
                ("response_type", "code"),
                ("client_id", PRINTSHOP.id),
                ("redirect_uri", "https://evil.example/callback"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// §6: a client that registers (RFC 7591) with
/// `require_pushed_authorization_requests: true` gets it echoed; a plain
/// authorization request in its name is then refused with an error page
/// (its redirect URI is the registrant's choice: RFC 9700 §4.11.2), and a
/// pushed one runs the code flow to tokens.
pub async fn a_client_registered_for_par_must_push(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = flow::loopback_redirect_uri()?;
    let info = super::rfc7591::register(
        &ctx,
        serde_json::json!({
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "scope": "photos.read",
            "require_pushed_authorization_requests": true,
        }),
    )
    .await?;
    let id = info["client_id"].as_str().unwrap_or_default().to_owned();
    let pkce = Pkce::new();
    let state = flow::random_string();
    let params = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", "photos.read"),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // Refused; and since nobody vetted a self-registered client's redirect
    // URI, with an error page, not a redirect there (RFC 9700 §4.11.2).
    let plain = ctx.http.get(&flow::authorize_url(&ctx, &params)).await?;
    super::rfc6749_authorize::expect_error_page(&plain)?;
    // `Auth::ClientId` sends `client_id`.
    let pushed: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(name, _)| *name != "client_id")
        .collect();
    let ex = ctx
        .http
        .post_form(&endpoint(&ctx)?, Auth::ClientId(&id), &pushed)
        .await?;
    let request_uri = ex.expect_status(201)?.json_str("request_uri")?;
    let landing = flow::browse(
        &ctx.fresh_browser()?,
        &flow::authorize_url(
            &ctx,
            &[("client_id", id.as_str()), ("request_uri", &request_uri)],
        ),
        &redirect,
        &ALICE,
        Decision::Allow,
    )
    .await?;
    let grant = CodeGrant::from_landing(landing, pkce, redirect.clone(), state)?;
    flow::expect_tokens(&flow::redeem(&ctx, &grant, Auth::ClientId(&id)).await?)?;
    Ok(())
}
