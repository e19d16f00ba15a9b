//! RFC 6750: bearer tokens at the photos API.

use crate::demo::{ALICE, PRINTSHOP};
use crate::flow;
use crate::http::Request;
use crate::{CheckResult, Ctx, Target};

/// No token: 401, `WWW-Authenticate: Bearer realm=...` without an error code (§3.1).
pub async fn no_token_is_401_bearer_without_error(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx.http.get(&ctx.photos_url()).await?;
    ex.expect_status(401)?;
    let c = ex.header("www-authenticate").unwrap_or_default();
    ex.ensure(
        flow::is_bearer_challenge(c) && c.contains("realm=") && !c.contains("error="),
        format!("expected `WWW-Authenticate: Bearer realm=\"...\"` without error, got {c:?}"),
    )?;
    Ok(())
}

/// §3: a challenge's `scope` is "the required scope of the access token
/// for accessing the requested resource": at `GET /api/photos`, which
/// needs `photos.read` only, a `401` (no token, or a bad one) names
/// `photos.read` if it names a scope at all, not every scope the API
/// declares.
pub async fn a_401_names_the_routes_scope(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let no_token = ctx.http.get(&ctx.photos_url()).await?;
    let bad_token = flow::api(&ctx, "not-a-real-token").await?;
    for (ex, what) in [(&no_token, "no token"), (&bad_token, "a bad token")] {
        ex.expect_status(401)?;
        let c = ex.header("www-authenticate").unwrap_or_default();
        let scope = c
            .split("scope=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        ex.ensure(
            scope.is_none_or(|s| s == "photos.read"),
            format!("{what}: the challenge's scope must be the route's (photos.read), got {c:?}"),
        )?;
    }
    Ok(())
}

/// An unknown or malformed-looking token: 401 `error="invalid_token"`.
pub async fn bad_token_is_401_invalid_token(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for token in [
        "tsa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "not-a-real-token",
    ] {
        flow::expect_invalid_token(&flow::api(&ctx, token).await?, "an unknown token")?;
    }
    Ok(())
}

/// `?access_token=` in the query (§2.3) is refused: 400 `invalid_request` or 401.
pub async fn token_in_query_is_refused(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, Some("photos.read")).await?;
    let url = format!("{}?access_token={}", ctx.photos_url(), tokens.access);
    let ex = ctx.http.send(Request::get(url)).await?;
    ex.expect_status_in(&[400, 401])?;
    let c = ex.header("www-authenticate").unwrap_or_default();
    ex.ensure(
        flow::is_bearer_challenge(c),
        "expected a `WWW-Authenticate: Bearer` challenge",
    )?;
    if ex.status == 400 {
        ex.ensure(
            c.contains("error=\"invalid_request\""),
            "a 400 must say error=\"invalid_request\"",
        )?;
    }
    Ok(())
}

/// A token without `photos.read` (printshop, scope=profile): 403 `insufficient_scope`.
pub async fn insufficient_scope_is_403(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, Some("profile")).await?;
    let ex = flow::api(&ctx, &tokens.access).await?;
    flow::expect_bearer_error(
        &ex,
        403,
        "insufficient_scope",
        "a token without photos.read",
    )?;
    Ok(())
}

/// The auth scheme is case-insensitive (RFC 9110 §11.1): `bearer TOKEN` works.
pub async fn scheme_is_case_insensitive(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::client_token(&ctx, &crate::demo::BACKUP_JOB, None).await?;
    for scheme in ["bearer", "BEARER"] {
        let ex = ctx
            .http
            .send(
                Request::get(ctx.photos_url())
                    .header("authorization", format!("{scheme} {}", tokens.access)),
            )
            .await?;
        ex.expect_status(200)?;
    }
    Ok(())
}

/// `Authorization: Bearer` with no token is a malformed request (§3.1):
/// 400 with `error="invalid_request"`, not the 401 of a request without
/// credentials.
pub async fn scheme_without_token_is_400_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx
        .http
        .send(Request::get(ctx.photos_url()).header("authorization", "Bearer"))
        .await?;
    flow::expect_bearer_error(&ex, 400, "invalid_request", "`Authorization: Bearer` alone")?;
    Ok(())
}
