//! RFC 8707: resource indicators. The demo knows `{issuer}/api` (the
//! default) and `{issuer}/mcp` (DEMO-CONTRACT "Resource indicators"); a
//! token is audience-restricted to its resource, introspection shows `aud`,
//! and the photo API refuses a token for the MCP server.

use crate::demo::{ALICE, BACKUP_JOB, PRINTSHOP};
use crate::flow::{self, Decision, Pkce};
use crate::http::Exchange;
use crate::{CheckResult, Ctx, Failure, Target};

fn api(ctx: &Ctx) -> String {
    format!("{}/api", ctx.meta.issuer)
}

fn mcp(ctx: &Ctx) -> String {
    format!("{}/mcp", ctx.meta.issuer)
}

/// A state to see echoed on error redirects.
const STATE: &str = "rs-8707";

/// printshop's authorization request with PKCE, plus `extra`.
fn authorization_url(ctx: &Ctx, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", PRINTSHOP.id),
        ("redirect_uri", PRINTSHOP.redirect_uri.unwrap_or_default()),
        ("state", STATE),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    flow::authorize_url(ctx, &pairs)
}

/// Runs printshop's code flow as alice with `auth_extra` on the
/// authorization request, then redeems the code with `token_extra`.
async fn code_flow(
    ctx: &Ctx,
    auth_extra: &[(&str, &str)],
    token_extra: &[(&str, &str)],
) -> Result<Exchange, Failure> {
    let pkce = Pkce::new();
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let landing = flow::browse(
        &ctx.fresh_browser()?,
        &authorization_url(ctx, &pkce, auth_extra),
        redirect,
        &ALICE,
        Decision::Allow,
    )
    .await?;
    let Some(code) = landing.param("code") else {
        return Err(landing.failure("the redirect carries no code"));
    };
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    pairs.extend_from_slice(token_extra);
    ctx.http
        .post_form(&ctx.meta.token_endpoint, PRINTSHOP.basic(), &pairs)
        .await
}

/// Checks introspection shows `aud` = `expected` (RFC 7662 §2.2).
async fn expect_aud(ctx: &Ctx, token: &str, expected: &str, what: &str) -> CheckResult {
    let (json, ex) = flow::introspect(ctx, token).await?;
    let aud = json.get("aud").and_then(|v| v.as_str());
    ex.ensure(
        aud == Some(expected),
        format!("{what}: introspection must show \"aud\": {expected:?}, got {aud:?}"),
    )?;
    Ok(())
}

/// Checks an authorization request is answered `invalid_target` at the
/// redirect URI, with `state` and `iss` (RFC 8707 §2, RFC 6749 §4.1.2.1).
async fn expect_redirect_invalid_target(ctx: &Ctx, extra: &[(&str, &str)]) -> CheckResult {
    let ex = ctx
        .fresh_browser()?
        .http
        .get(&authorization_url(ctx, &Pkce::new(), extra))
        .await?;
    ex.expect_status_in(&[302, 303])?;
    let loc = ex
        .location()
        .ok_or_else(|| ex.failure("a redirect without Location"))?;
    let location = url::Url::parse(loc)
        .map_err(|e| ex.failure(format!("Location must be the absolute redirect URI: {e}")))?;
    let landing = flow::Landing {
        location,
        exchange: ex.clone(),
        trace: vec![ex.clone()],
    };
    landing.expect_error(ctx, "invalid_target", Some(STATE))
}

/// The code flow with `resource={issuer}/mcp` (repeated at the token
/// endpoint): the tokens are for the MCP server (introspection `aud`), and
/// the photo API refuses them with `401 invalid_token` (RFC 8707 §2).
pub async fn code_flow_with_resource_is_audience_restricted(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mcp = mcp(&ctx);
    let ex = code_flow(&ctx, &[("resource", &mcp)], &[("resource", &mcp)]).await?;
    let tokens = flow::expect_tokens(&ex)?;
    expect_aud(&ctx, &tokens.access, &mcp, "an access token for /mcp").await?;
    expect_aud(&ctx, tokens.refresh()?, &mcp, "its refresh token").await?;
    let at_api = flow::api(&ctx, &tokens.access).await?;
    flow::expect_invalid_token(&at_api, "a token for {issuer}/mcp at /api/photos")?;
    Ok(())
}

/// Without `resource` a token is for `{issuer}/api` (the contract's
/// default), and the photo API takes it.
pub async fn omitted_resource_means_the_api(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, Some("photos.read")).await?;
    expect_aud(
        &ctx,
        &tokens.access,
        &api(&ctx),
        "a code-flow token without resource",
    )
    .await?;
    flow::api(&ctx, &tokens.access).await?.expect_status(200)?;
    let backup = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
    expect_aud(
        &ctx,
        &backup.access,
        &api(&ctx),
        "a client_credentials token without resource",
    )
    .await?;
    Ok(())
}

/// An unknown resource at the authorization endpoint: `invalid_target` at
/// the redirect URI (§2).
pub async fn unknown_resource_redirects_invalid_target(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let other = format!("{}/elsewhere", ctx.meta.issuer);
    for resource in ["https://evil.example/api", other.as_str()] {
        expect_redirect_invalid_target(&ctx, &[("resource", resource)]).await?;
    }
    Ok(())
}

/// A resource that is not an absolute URI, or has a fragment: `invalid_target` (§2).
pub async fn malformed_resource_redirects_invalid_target(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let fragment = format!("{}#frag", api(&ctx));
    for resource in ["/api", "api", fragment.as_str()] {
        expect_redirect_invalid_target(&ctx, &[("resource", resource)]).await?;
    }
    Ok(())
}

/// `resource` sent twice: the demo grants one resource per token, so
/// `invalid_target` (§2 allows the repeat on the wire; never
/// `invalid_request` for it).
pub async fn several_resources_are_invalid_target(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (api, mcp) = (api(&ctx), mcp(&ctx));
    expect_redirect_invalid_target(&ctx, &[("resource", &api), ("resource", &mcp)]).await?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("resource", &api),
                ("resource", &mcp),
            ],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_target")?;
    Ok(())
}

/// Client credentials: a known resource is granted, an unknown or
/// malformed one is `400 invalid_target`.
pub async fn client_credentials_resource(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mcp = mcp(&ctx);
    let token = |resource: &str| {
        let resource = resource.to_owned();
        let ctx = ctx.clone();
        async move {
            ctx.http
                .post_form(
                    &ctx.meta.token_endpoint,
                    BACKUP_JOB.basic(),
                    &[
                        ("grant_type", "client_credentials"),
                        ("resource", &resource),
                    ],
                )
                .await
        }
    };
    let ok = flow::expect_tokens(&token(&mcp).await?)?;
    expect_aud(
        &ctx,
        &ok.access,
        &mcp,
        "client_credentials with resource=/mcp",
    )
    .await?;
    for bad in ["https://evil.example/", "relative/path"] {
        token(bad)
            .await?
            .expect_oauth_error(400, "invalid_target")?;
    }
    Ok(())
}

/// At the token endpoint a code may be redeemed repeating its resource or
/// omitting it, never naming another (`400 invalid_target`).
pub async fn changed_resource_at_token_endpoint_is_invalid_target(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (api, mcp) = (api(&ctx), mcp(&ctx));
    let ex = code_flow(&ctx, &[("resource", &mcp)], &[("resource", &api)]).await?;
    ex.expect_oauth_error(400, "invalid_target")?;
    // A code for the default resource asked for the MCP server: a change too.
    let ex = code_flow(&ctx, &[], &[("resource", &mcp)]).await?;
    ex.expect_oauth_error(400, "invalid_target")?;
    // Omitted at the token endpoint: the authorization request's resource.
    let tokens = flow::expect_tokens(&code_flow(&ctx, &[("resource", &mcp)], &[]).await?)?;
    expect_aud(
        &ctx,
        &tokens.access,
        &mcp,
        "a code for /mcp redeemed without resource",
    )
    .await?;
    Ok(())
}

/// A refresh may repeat the grant's resource or omit it (the audience
/// stays); another resource is `invalid_target` (contract).
pub async fn refresh_keeps_the_audience(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (api, mcp) = (api(&ctx), mcp(&ctx));
    let tokens =
        flow::expect_tokens(&code_flow(&ctx, &[("resource", &mcp)], &[("resource", &mcp)]).await?)?;
    let refresh = |token: String, resource: Option<String>| {
        let ctx = ctx.clone();
        async move {
            let mut pairs = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", token),
            ];
            if let Some(r) = resource {
                pairs.push(("resource", r));
            }
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ctx.http
                .post_form(&ctx.meta.token_endpoint, PRINTSHOP.basic(), &refs)
                .await
        }
    };
    let first = flow::expect_tokens(&refresh(tokens.refresh()?.to_owned(), None).await?)?;
    expect_aud(&ctx, &first.access, &mcp, "a refresh without resource").await?;
    let second =
        flow::expect_tokens(&refresh(first.refresh()?.to_owned(), Some(mcp.clone())).await?)?;
    expect_aud(&ctx, &second.access, &mcp, "a refresh repeating resource").await?;
    refresh(second.refresh()?.to_owned(), Some(api))
        .await?
        .expect_oauth_error(400, "invalid_target")?;
    Ok(())
}
