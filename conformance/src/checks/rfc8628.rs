//! RFC 8628: the device authorization grant, as far as HTTP alone reaches
//! (the person's part is the browser tests').

use crate::demo::{PHOTO_CLI, PRINTSHOP};
use crate::http::{Auth, Exchange};
use crate::{CheckResult, Ctx, Failure, Target};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The endpoint from the metadata (RFC 8628 §4).
fn endpoint(ctx: &Ctx) -> Result<String, Failure> {
    ctx.meta
        .raw
        .get("device_authorization_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ctx.meta
                .exchange
                .failure("metadata has no device_authorization_endpoint (RFC 8628 §4)")
        })
}

async fn authorize(ctx: &Ctx) -> Result<Exchange, Failure> {
    ctx.http
        .post_form(
            &endpoint(ctx)?,
            Auth::ClientId(PHOTO_CLI.id),
            &[("scope", "photos.read")],
        )
        .await
}

async fn poll(ctx: &Ctx, device_code: &str) -> Result<Exchange, Failure> {
    ctx.http
        .post_form(
            &ctx.meta.token_endpoint,
            Auth::ClientId(PHOTO_CLI.id),
            &[("grant_type", GRANT), ("device_code", device_code)],
        )
        .await
}

/// §3.2 and the contract: every field, a user code of 8 characters from
/// `BCDFGHJKLMNPQRSTVWXZ` shown `XXXX-XXXX`, and the grant in the metadata.
pub async fn device_authorization_response(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = authorize(&ctx).await?;
    ex.expect_status(200)?.expect_no_store()?;
    let user_code = ex.json_str("user_code")?;
    let well_formed = user_code.len() == 9
        && user_code.as_bytes().get(4) == Some(&b'-')
        && user_code
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b));
    ex.ensure(
        well_formed,
        "user_code must be XXXX-XXXX from BCDFGHJKLMNPQRSTVWXZ",
    )?;
    let verification = ex.json_str("verification_uri")?;
    let complete = ex.json_str("verification_uri_complete")?;
    ex.ensure(
        complete.starts_with(&verification) && complete.contains("user_code="),
        "verification_uri_complete is the verification_uri with the user code",
    )?;
    ex.json_str("device_code")?;
    let json = ex.json()?;
    ex.ensure(
        json.get("expires_in")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n > 0)
            && json
                .get("interval")
                .and_then(|v| v.as_i64())
                .is_some_and(|n| n > 0),
        "expires_in and interval must be positive numbers",
    )?;
    let grants = ctx.meta.raw.get("grant_types_supported");
    ctx.meta.exchange.ensure(
        grants
            .and_then(|g| g.as_array())
            .is_some_and(|g| g.iter().any(|v| v == GRANT)),
        "grant_types_supported must list the device_code grant",
    )?;
    Ok(())
}

/// §3.5: before the person decides, `authorization_pending`; polled again at
/// once, `slow_down`; an unknown device code, `invalid_grant`.
pub async fn polling_before_a_decision(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let device_code = authorize(&ctx)
        .await?
        .expect_status(200)?
        .json_str("device_code")?;
    poll(&ctx, &device_code)
        .await?
        .expect_oauth_error(400, "authorization_pending")?;
    poll(&ctx, &device_code)
        .await?
        .expect_oauth_error(400, "slow_down")?;
    poll(&ctx, "tsd_unknown")
        .await?
        .expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// The contract: a client not registered for the grant (printshop) gets
/// `unauthorized_client`, whether it authenticates or names itself by
/// `client_id` alone, as a device would.
pub async fn printshop_is_unauthorized_client(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for auth in [PRINTSHOP.basic(), Auth::ClientId(PRINTSHOP.id)] {
        let ex = ctx
            .http
            .post_form(&endpoint(&ctx)?, auth, &[("scope", "photos.read")])
            .await?;
        ex.expect_oauth_error(400, "unauthorized_client")?;
    }
    // A wrong secret is still a failed authentication, and an unknown
    // client is unknown.
    ctx.http
        .post_form(&endpoint(&ctx)?, Auth::Basic(PRINTSHOP.id, "wrong"), &[])
        .await?
        .expect_oauth_error(401, "invalid_client")?;
    ctx.http
        .post_form(&endpoint(&ctx)?, Auth::Post(PRINTSHOP.id, "wrong"), &[])
        .await?
        .expect_oauth_error(401, "invalid_client")?;
    ctx.http
        .post_form(&endpoint(&ctx)?, Auth::ClientId("nobody"), &[])
        .await?
        .expect_oauth_error(401, "invalid_client")?;
    Ok(())
}
