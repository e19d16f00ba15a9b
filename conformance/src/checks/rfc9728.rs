//! RFC 9728: protected resource metadata. The photo API `{issuer}/api`
//! publishes its metadata at `{issuer}/.well-known/oauth-protected-resource/api`
//! (§3.1) and names it as `resource_metadata` in every challenge (§5.1).

use crate::demo::{ALICE, PRINTSHOP};
use crate::flow;
use crate::http::{Exchange, Request};
use crate::{CheckResult, Ctx, Target};

fn metadata_url(ctx: &Ctx) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/api",
        ctx.meta.issuer
    )
}

/// Checks the challenge of a refusal names the API's metadata (§5.1).
fn expect_resource_metadata(ctx: &Ctx, ex: &Exchange, what: &str) -> CheckResult {
    let challenge = ex.header("www-authenticate").unwrap_or_default();
    let want = format!("resource_metadata=\"{}\"", metadata_url(ctx));
    ex.ensure(
        flow::is_bearer_challenge(challenge) && challenge.contains(&want),
        format!(
            "{what}: the Bearer challenge must carry {want} (RFC 9728 §5.1), got {challenge:?}"
        ),
    )?;
    Ok(())
}

/// §2, §3.1: the API's metadata document: `resource`, the issuer as its
/// authorization server, `bearer_methods_supported: ["header"]`, and
/// `photos.read` among `scopes_supported`.
pub async fn api_metadata_is_served(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx.http.get(&metadata_url(&ctx)).await?;
    ex.expect_status(200)?
        .expect_media_type("application/json")?;
    let json = ex.json()?;
    let resource = json.get("resource").and_then(|v| v.as_str());
    let want = format!("{}/api", ctx.meta.issuer);
    ex.ensure(
        resource == Some(want.as_str()),
        format!("`resource` must be {want:?} (§3.3: the identifier the metadata was fetched for), got {resource:?}"),
    )?;
    let strings = |name: &str| -> Vec<String> {
        json.get(name)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    ex.ensure(
        strings("authorization_servers") == [ctx.meta.issuer.clone()],
        "`authorization_servers` must be [issuer]",
    )?;
    ex.ensure(
        strings("bearer_methods_supported") == ["header"],
        "`bearer_methods_supported` must be [\"header\"]",
    )?;
    ex.ensure(
        strings("scopes_supported")
            .iter()
            .any(|s| s == "photos.read"),
        "`scopes_supported` must list photos.read",
    )?;
    // Metadata is read with GET only.
    let post = ctx
        .http
        .send(Request::get(metadata_url(&ctx)).method(reqwest::Method::POST))
        .await?;
    post.expect_status(405)?;
    Ok(())
}

/// §5.1: every refusal of the API names its metadata: no token (401, no
/// error code), a bad token (401 `invalid_token`), a token for another
/// resource (401 `invalid_token`), too little scope (403).
pub async fn api_challenges_carry_resource_metadata(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let none = ctx.http.get(&ctx.photos_url()).await?;
    none.expect_status(401)?;
    expect_resource_metadata(&ctx, &none, "no token")?;
    let bad = flow::api(&ctx, "tsa_not-a-real-token").await?;
    flow::expect_invalid_token(&bad, "an unknown token")?;
    expect_resource_metadata(&ctx, &bad, "an unknown token")?;
    let mcp = format!("{}/mcp", ctx.meta.issuer);
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            crate::demo::BACKUP_JOB.basic(),
            &[("grant_type", "client_credentials"), ("resource", &mcp)],
        )
        .await?;
    let other = flow::expect_tokens(&ex)?;
    let wrong = flow::api(&ctx, &other.access).await?;
    flow::expect_invalid_token(&wrong, "a token for {issuer}/mcp")?;
    expect_resource_metadata(&ctx, &wrong, "a token for {issuer}/mcp")?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, Some("profile")).await?;
    let scope = flow::api(&ctx, &tokens.access).await?;
    flow::expect_bearer_error(
        &scope,
        403,
        "insufficient_scope",
        "a token without photos.read",
    )?;
    expect_resource_metadata(&ctx, &scope, "a token without photos.read")?;
    Ok(())
}
