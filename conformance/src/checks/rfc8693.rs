//! RFC 8693: token exchange, as the demo contract has it: `photo-api`
//! exchanges a user's access token for a narrower one of its own, which
//! introspects with `act: {"sub": "photo-api"}`.

use serde_json::Value;

use crate::demo::{ALICE, BACKUP_JOB, PHOTO_API, PRINTSHOP};
use crate::flow;
use crate::http::{Auth, Exchange};
use crate::{CheckResult, Ctx, Failure, Target};

/// The grant type (RFC 8693 §2.1).
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The access-token type URI (RFC 8693 §3).
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// POSTs a token-exchange request with `auth` and the given parameters
/// (besides `grant_type`).
async fn exchange(ctx: &Ctx, auth: Auth<'_>, pairs: &[(&str, &str)]) -> Result<Exchange, Failure> {
    let mut all = vec![("grant_type", GRANT)];
    all.extend_from_slice(pairs);
    ctx.http
        .post_form(&ctx.meta.token_endpoint, auth, &all)
        .await
}

/// A printshop access token of alice's, scope `photos.read profile`.
async fn subject_token(ctx: &Ctx) -> Result<flow::Tokens, Failure> {
    flow::tokens(ctx, &PRINTSHOP, &ALICE, None).await
}

fn sorted_scope(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    s.sort();
    s
}

/// §2.2.1: photo-api exchanges alice's printshop token for a narrower one:
/// `issued_token_type`, `token_type` Bearer, `expires_in`, the scope asked,
/// no refresh token, `no-store`; the new token reads alice's photos and
/// introspects with `act: {"sub": "photo-api"}` (§4.1); an omitted `scope`
/// keeps the subject token's; the metadata lists the grant type.
pub async fn photo_api_exchanges_a_users_token(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let listed = ctx.meta.raw["grant_types_supported"]
        .as_array()
        .is_some_and(|g| g.iter().any(|v| v == GRANT));
    ctx.meta
        .exchange
        .ensure(listed, "grant_types_supported must list token exchange")?;
    let subject = subject_token(&ctx).await?;
    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", &subject.access),
            ("subject_token_type", ACCESS_TOKEN),
            ("scope", "photos.read"),
        ],
    )
    .await?;
    let tokens = flow::expect_tokens(&ex)?;
    let json = ex.json()?;
    ex.ensure(
        json["issued_token_type"] == ACCESS_TOKEN,
        "issued_token_type must be the access-token type (RFC 8693 §2.2.1)",
    )?;
    ex.ensure(json["scope"] == "photos.read", "expected scope photos.read")?;
    ex.ensure(
        tokens.refresh.is_none(),
        "the demo issues no refresh token for an exchange",
    )?;
    ex.ensure(tokens.access != subject.access, "a new access token")?;

    let api = flow::api(&ctx, &tokens.access).await?;
    api.expect_status(200)?;
    let photos = api.json()?;
    api.ensure(
        photos["owner"] == ALICE.username
            && photos["photos"].as_array().map(Vec::len) == Some(ALICE.photos),
        "the exchanged token reads alice's photos",
    )?;

    let (intro, ex) = flow::introspect(&ctx, &tokens.access).await?;
    ex.ensure(
        intro["active"] == true
            && intro["client_id"] == PHOTO_API.id
            && intro["sub"] == ALICE.username
            && intro["scope"] == "photos.read",
        "the exchanged token: active, client_id photo-api, sub alice, scope photos.read",
    )?;
    ex.ensure(
        intro["act"] == serde_json::json!({"sub": "photo-api"}),
        "introspection must show act: {\"sub\": \"photo-api\"} (RFC 8693 §4.1)",
    )?;

    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", &subject.access),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await?;
    flow::expect_tokens(&ex)?;
    ex.ensure(
        sorted_scope(&ex.json()?) == ["photos.read", "profile"],
        "an omitted scope keeps the subject token's (photos.read profile)",
    )?;
    Ok(())
}

/// A scope wider than the subject token's is `invalid_scope`, never narrowed.
pub async fn wider_scope_is_invalid_scope(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let subject = subject_token(&ctx).await?;
    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", &subject.access),
            ("subject_token_type", ACCESS_TOKEN),
            ("scope", "photos.read photos.write"),
        ],
    )
    .await?;
    ex.expect_oauth_error(400, "invalid_scope")?;
    Ok(())
}

/// An unknown or revoked subject token is `invalid_grant`.
pub async fn inactive_subject_token_is_invalid_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", "no-such-token"),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    let subject = subject_token(&ctx).await?;
    flow::revoke(&ctx, PRINTSHOP.basic(), &subject.access)
        .await?
        .expect_status(200)?;
    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", &subject.access),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// §2.2.2: a live subject token "unacceptable based on policy" is
/// `invalid_request`: backup-job's client-credentials token has no user
/// for photo-api to act for. (An inactive one is `invalid_grant`, above.)
pub async fn a_token_without_a_user_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let issued = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[("grant_type", "client_credentials")],
        )
        .await?;
    let tokens = flow::expect_tokens(&issued)?;
    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", &tokens.access),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// §2.1, §2.2.2: a missing or unsupported `subject_token_type`, a missing
/// `subject_token`, and an `actor_token` (not supported) are `invalid_request`.
pub async fn malformed_exchange_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let subject = subject_token(&ctx).await?;
    let s = subject.access.as_str();
    let cases: [&[(&str, &str)]; 5] = [
        &[("subject_token", s)],
        &[
            ("subject_token", s),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
        ],
        &[("subject_token_type", ACCESS_TOKEN)],
        &[
            ("subject_token", s),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", s),
            ("actor_token_type", ACCESS_TOKEN),
        ],
        &[
            ("subject_token", s),
            ("subject_token_type", ACCESS_TOKEN),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ],
    ];
    for pairs in cases {
        exchange(&ctx, PHOTO_API.basic(), pairs)
            .await?
            .expect_oauth_error(400, "invalid_request")?;
    }
    Ok(())
}

/// Only photo-api may exchange tokens: printshop and backup-job (confidential,
/// authenticated) are `unauthorized_client`.
pub async fn other_clients_are_unauthorized_client(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let subject = subject_token(&ctx).await?;
    for client in [PRINTSHOP, BACKUP_JOB] {
        exchange(
            &ctx,
            client.basic(),
            &[
                ("subject_token", &subject.access),
                ("subject_token_type", ACCESS_TOKEN),
            ],
        )
        .await?
        .expect_oauth_error(400, "unauthorized_client")?;
    }
    Ok(())
}

/// §2.1 `resource` (RFC 8707): the new token is for the named resource
/// (`{issuer}/mcp`; introspection shows it as `aud`); an unknown resource
/// is `invalid_target` (§2.2.2), and so is a logical `audience`.
pub async fn resource_names_the_new_tokens_audience(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let subject = subject_token(&ctx).await?;
    let mcp = format!("{}/mcp", ctx.meta.issuer);
    let ex = exchange(
        &ctx,
        PHOTO_API.basic(),
        &[
            ("subject_token", &subject.access),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", &mcp),
        ],
    )
    .await?;
    let tokens = flow::expect_tokens(&ex)?;
    let (intro, ex) = flow::introspect(&ctx, &tokens.access).await?;
    let aud_is_mcp = intro["aud"] == mcp.as_str()
        || intro["aud"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0] == mcp.as_str());
    ex.ensure(
        intro["active"] == true && aud_is_mcp,
        format!("the exchanged token's aud must be {mcp}"),
    )?;
    let unknown = format!("{}/elsewhere", ctx.meta.issuer);
    for extra in [("resource", unknown.as_str()), ("audience", "photo-api")] {
        exchange(
            &ctx,
            PHOTO_API.basic(),
            &[
                ("subject_token", &subject.access),
                ("subject_token_type", ACCESS_TOKEN),
                extra,
            ],
        )
        .await?
        .expect_oauth_error(400, "invalid_target")?;
    }
    Ok(())
}
