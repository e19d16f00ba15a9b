//! RFC 7009: token revocation.

use crate::demo::{ALICE, BACKUP_JOB, PHOTO_CLI, PRINTSHOP};
use crate::flow;
use crate::http::Auth;
use crate::{CheckResult, Ctx, Target};

/// printshop revokes its own access token: 200; the API then answers 401
/// `invalid_token` and introspection says inactive.
pub async fn revoke_own_access_token(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    flow::api(&ctx, &tokens.access).await?.expect_status(200)?;
    flow::revoke(&ctx, PRINTSHOP.basic(), &tokens.access)
        .await?
        .expect_status(200)?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &tokens.access).await?,
        "the API after revocation",
    )?;
    flow::expect_active(&ctx, &tokens.access, false, "a revoked access token").await
}

/// Revoking a refresh token kills its grant: the refresh token fails with
/// `invalid_grant` and the grant's access token is inactive (§2.1).
pub async fn revoke_refresh_token_kills_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let refresh = tokens.refresh()?;
    flow::revoke(&ctx, PRINTSHOP.post(), refresh)
        .await?
        .expect_status(200)?;
    flow::refresh(&ctx, PRINTSHOP.basic(), refresh, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")?;
    flow::expect_active(
        &ctx,
        &tokens.access,
        false,
        "the access token of a grant whose refresh token was revoked",
    )
    .await?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &tokens.access).await?,
        "the API with the access token of a revoked grant",
    )
}

/// backup-job revoking printshop's tokens: 200, and they keep working.
pub async fn revoke_other_clients_token_changes_nothing(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    for token in [tokens.access.as_str(), tokens.refresh()?] {
        flow::revoke(&ctx, BACKUP_JOB.basic(), token)
            .await?
            .expect_status(200)?;
    }
    flow::api(&ctx, &tokens.access).await?.expect_status(200)?;
    flow::expect_active(
        &ctx,
        &tokens.access,
        true,
        "printshop's access token after another client tried to revoke it",
    )
    .await?;
    flow::expect_tokens(&flow::refresh(&ctx, PRINTSHOP.basic(), tokens.refresh()?, None).await?)?;
    Ok(())
}

/// Unknown tokens: 200 (§2.2).
pub async fn revoke_unknown_token_is_200(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for token in [
        "not-a-token",
        "tsa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "tsr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        flow::revoke(&ctx, PRINTSHOP.basic(), token)
            .await?
            .expect_status(200)?;
    }
    Ok(())
}

/// No `token` parameter: 400 `invalid_request`.
pub async fn revoke_without_token_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.revocation_endpoint,
            PRINTSHOP.basic(),
            &[("token_type_hint", "access_token")],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// Bad client authentication: 401 `invalid_client` (and the token survives).
pub async fn revoke_with_bad_client_auth_is_401(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let ex = flow::revoke(
        &ctx,
        Auth::Basic(PRINTSHOP.id, "wrong-secret"),
        &tokens.access,
    )
    .await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    ex.ensure(
        ex.header("www-authenticate")
            .and_then(|v| v.split_whitespace().next())
            .is_some_and(|s| s.eq_ignore_ascii_case("basic")),
        "a failed Basic authentication must answer `WWW-Authenticate: Basic`",
    )?;
    flow::revoke(&ctx, Auth::Nothing, &tokens.access)
        .await?
        .expect_oauth_error(401, "invalid_client")?;
    flow::api(&ctx, &tokens.access).await?.expect_status(200)?;
    Ok(())
}

/// photo-cli (public) names itself with `client_id` and revokes its own token.
pub async fn public_client_revokes_own_token_with_client_id(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PHOTO_CLI, &ALICE, None).await?;
    flow::api(&ctx, &tokens.access).await?.expect_status(200)?;
    flow::revoke(&ctx, Auth::ClientId(PHOTO_CLI.id), &tokens.access)
        .await?
        .expect_status(200)?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &tokens.access).await?,
        "the API after photo-cli revoked its token",
    )
}

/// A wrong `token_type_hint` does not stop revocation: the server extends its
/// search (§2.1).
pub async fn wrong_token_type_hint_still_revokes(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    ctx.http
        .post_form(
            &ctx.meta.revocation_endpoint,
            PRINTSHOP.basic(),
            &[
                ("token", &tokens.access),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await?
        .expect_status(200)?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &tokens.access).await?,
        "the API after revoking with a wrong token_type_hint",
    )
}
