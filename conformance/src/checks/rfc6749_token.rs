//! RFC 6749 §3.2, §4.1.3, §4.4, §5.2, §6: the token endpoint's errors, with
//! raw HTTP, plus code replay and refresh-token reuse (RFC 9700 §4.14).

use crate::demo::{ALICE, BACKUP_JOB, PHOTO_API, PHOTO_CLI, PRINTSHOP};
use crate::flow::{self, Pkce};
use crate::http::{Auth, Exchange, Request};
use crate::{CheckResult, Ctx, Failure, Target};

fn is_basic_challenge(v: Option<&str>) -> bool {
    v.and_then(|v| v.split_whitespace().next())
        .is_some_and(|s| s.eq_ignore_ascii_case("basic"))
}

/// No `grant_type`: 400 `invalid_request`.
pub async fn missing_grant_type_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[("scope", "photos.read")],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?
        .expect_no_store()?;
    Ok(())
}

/// An unknown `grant_type` (`password`, never supported): 400 `unsupported_grant_type`.
pub async fn unknown_grant_type_is_unsupported_grant_type(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for grant in ["password", "urn:example:no-such-grant"] {
        let ex = ctx
            .http
            .post_form(
                &ctx.meta.token_endpoint,
                PRINTSHOP.basic(),
                &[
                    ("grant_type", grant),
                    ("username", "alice"),
                    ("password", ALICE.password),
                ],
            )
            .await?;
        ex.expect_oauth_error(400, "unsupported_grant_type")?;
    }
    Ok(())
}

/// A wrong secret: 401 `invalid_client`, and `WWW-Authenticate: Basic` when
/// Basic was used (§5.2).
pub async fn wrong_secret_is_401_invalid_client_with_basic_challenge(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let body = [("grant_type", "client_credentials")];
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            Auth::Basic(BACKUP_JOB.id, "wrong-secret"),
            &body,
        )
        .await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    ex.ensure(
        is_basic_challenge(ex.header("www-authenticate")),
        "a failed Basic authentication must answer `WWW-Authenticate: Basic` (RFC 6749 §5.2)",
    )?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            Auth::Post(BACKUP_JOB.id, "wrong-secret"),
            &body,
        )
        .await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    Ok(())
}

/// An unknown client: 401 `invalid_client` (Basic and body), always with a
/// `WWW-Authenticate: Basic` challenge.
pub async fn unknown_client_is_401_invalid_client(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let body = [("grant_type", "client_credentials")];
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            Auth::Basic("no-such-client", "secret"),
            &body,
        )
        .await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    ex.ensure(
        is_basic_challenge(ex.header("www-authenticate")),
        "a failed Basic authentication must answer `WWW-Authenticate: Basic` (RFC 6749 §5.2)",
    )?;
    for auth in [
        Auth::Post("no-such-client", "secret"),
        Auth::ClientId("no-such-client"),
        Auth::Nothing,
    ] {
        let ex = ctx
            .http
            .post_form(&ctx.meta.token_endpoint, auth, &body)
            .await?;
        ex.expect_oauth_error(401, "invalid_client")?;
        ex.ensure(
            is_basic_challenge(ex.header("www-authenticate")),
            "every 401 must name a scheme in `WWW-Authenticate` (RFC 9110 §15.5.2)",
        )?;
    }
    Ok(())
}

/// Basic and `client_secret` in the body at once: 400 `invalid_request` (§2.3).
pub async fn basic_and_body_secret_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", BACKUP_JOB.id),
                ("client_secret", BACKUP_JOB.secret()),
            ],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// GET on the token endpoint: 405 with `Allow: POST` (§3.2; RFC 9110 §15.5.6).
pub async fn get_is_405(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let url = format!("{}?grant_type=client_credentials", ctx.meta.token_endpoint);
    let ex = ctx
        .http
        .send(Request::get(url).header(
            "authorization",
            crate::http::basic(BACKUP_JOB.id, BACKUP_JOB.secret()),
        ))
        .await?;
    ex.expect_status(405)?;
    let allow = ex.header("allow").unwrap_or_default();
    ex.ensure(
        allow
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("POST")),
        format!("a 405 must carry `Allow` listing POST, got {allow:?}"),
    )?;
    Ok(())
}

/// A JSON body: 400 `invalid_request` (the body must be form-encoded, §3.2).
pub async fn json_body_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let req = Request::post_form(&ctx.meta.token_endpoint, BACKUP_JOB.basic(), &[])
        .content_type("application/json")
        .body(r#"{"grant_type":"client_credentials","scope":"photos.read"}"#);
    let ex = ctx.http.send(req).await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// A parameter sent twice: 400 `invalid_request` (§3.2).
pub async fn duplicate_parameter_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "photos.read"),
                ("scope", "photos.read"),
            ],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await?;
    ex.expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// A parameter the endpoint does not read is ignored (§3.2: the server
/// "MUST ignore unrecognized request parameters"), also when it is sent
/// twice: the token is issued. The same at revocation (RFC 7009 §2.1) and
/// introspection (RFC 7662 §2.1), with `token_type_hint` sent twice. A
/// value over 2 KiB is still `invalid_request`, whatever its name
/// (DEMO-CONTRACT "Limits against floods").
pub async fn unrecognized_parameters_are_ignored_even_twice(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("x_unrecognized", "1"),
                ("x_unrecognized", "2"),
            ],
        )
        .await?;
    ex.expect_status(200)?;
    let token = ex.json_str("access_token")?;
    for (endpoint, client) in [
        (&ctx.meta.introspection_endpoint, PHOTO_API),
        (&ctx.meta.revocation_endpoint, BACKUP_JOB),
    ] {
        ctx.http
            .post_form(
                endpoint,
                client.basic(),
                &[
                    ("token", token.as_str()),
                    ("token_type_hint", "access_token"),
                    ("token_type_hint", "refresh_token"),
                    ("x_unrecognized", "1"),
                    ("x_unrecognized", "2"),
                ],
            )
            .await?
            .expect_status(200)?;
    }
    let oversized = "x".repeat(2049);
    ctx.http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("x_unrecognized", oversized.as_str()),
            ],
        )
        .await?
        .expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// A code issued to printshop, redeemed by photo-cli: `invalid_grant`.
pub async fn code_redeemed_by_another_client_is_invalid_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let ex = flow::redeem(&ctx, &grant, PHOTO_CLI.basic()).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// `redirect_uri` differing from the authorization request's: `invalid_grant`.
pub async fn wrong_redirect_uri_is_invalid_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    grant.redirect_uri = "http://127.0.0.1:9001/other".into();
    let ex = flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// No `redirect_uri` at redemption when the authorization request carried
/// one: §4.1.3 makes it "REQUIRED" then, and a required parameter missing
/// is `invalid_request` (§5.2), not a grant that does not match.
pub async fn missing_redirect_uri_is_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    redeem_without(&ctx, "redirect_uri")
        .await?
        .expect_oauth_error(400, "invalid_request")?;
    Ok(())
}

/// printshop's code (its authorization request carried `redirect_uri`)
/// redeemed with every parameter but `left_out`.
async fn redeem_without(ctx: &Ctx, left_out: &str) -> Result<Exchange, Failure> {
    let grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let pairs: Vec<(&str, &str)> = [
        ("grant_type", "authorization_code"),
        ("code", grant.code.as_str()),
        ("redirect_uri", grant.redirect_uri.as_str()),
        ("code_verifier", grant.pkce.verifier.as_str()),
    ]
    .into_iter()
    .filter(|(name, _)| *name != left_out)
    .collect();
    ctx.http
        .post_form(&ctx.meta.token_endpoint, PRINTSHOP.basic(), &pairs)
        .await
}

/// photo-cli authorized from one loopback port and redeeming with another:
/// `invalid_grant` (§4.1.3: identical `redirect_uri`; port freedom applies
/// to the authorization request only).
pub async fn loopback_port_must_match_at_token_endpoint(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut grant = flow::authorize(&ctx.fresh_browser()?, &PHOTO_CLI, &ALICE, None).await?;
    let mut other = flow::loopback_redirect_uri()?;
    while other == grant.redirect_uri {
        other = flow::loopback_redirect_uri()?;
    }
    grant.redirect_uri = other;
    let ex = flow::redeem(&ctx, &grant, PHOTO_CLI.basic()).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// No `code_verifier` for a code issued with a challenge: 400 `invalid_grant`
/// or `invalid_request` (the contract allows both).
pub async fn missing_code_verifier_is_refused(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    redeem_without(&ctx, "code_verifier")
        .await?
        .expect_oauth_error_in(400, &["invalid_grant", "invalid_request"])?;
    Ok(())
}

/// A wrong `code_verifier`: `invalid_grant` (RFC 7636 §4.6).
pub async fn wrong_code_verifier_is_invalid_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    grant.pkce = Pkce::new();
    let ex = flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// A `code_verifier` that is not even 43 unreserved characters cannot match
/// either: `invalid_grant` too (RFC 7636 §4.6), as clients and suites test a
/// wrong verifier with any text.
pub async fn malformed_code_verifier_is_invalid_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    grant.pkce.verifier = "wrong".into();
    let ex = flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// A code redeemed twice: the second gets `invalid_grant`, and every token
/// issued from the code is revoked (§4.1.2): the access token is inactive at
/// introspection and 401 at the API; the refresh token fails.
pub async fn code_replay_is_invalid_grant_and_revokes_tokens(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let grant = flow::authorize(&ctx.fresh_browser()?, &PRINTSHOP, &ALICE, None).await?;
    let first = flow::expect_tokens(&flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await?)?;
    flow::expect_active(
        &ctx,
        &first.access,
        true,
        "the first redemption's access token",
    )
    .await?;
    let second = flow::redeem(&ctx, &grant, PRINTSHOP.basic()).await?;
    second.expect_oauth_error(400, "invalid_grant")?;
    flow::expect_active(
        &ctx,
        &first.access,
        false,
        "the access token after the code was replayed",
    )
    .await?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &first.access).await?,
        "the API with the access token after the code was replayed",
    )?;
    let ex = flow::refresh(&ctx, PRINTSHOP.basic(), first.refresh()?, None).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// photo-cli's code presented under another `client_id`: an unknown id, or a
/// confidential client's id without its secret, is 401 `invalid_client`.
pub async fn public_client_with_wrong_client_id_is_refused(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let grant = flow::authorize(&ctx.fresh_browser()?, &PHOTO_CLI, &ALICE, None).await?;
    for id in ["photo-cli-x", PRINTSHOP.id] {
        let ex = flow::redeem(&ctx, &grant, Auth::ClientId(id)).await?;
        ex.expect_oauth_error(401, "invalid_client")?;
    }
    Ok(())
}

/// printshop is not registered for client_credentials: `unauthorized_client`.
pub async fn client_credentials_for_printshop_is_unauthorized_client(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for auth in [PRINTSHOP.basic(), PRINTSHOP.post()] {
        let ex = ctx
            .http
            .post_form(
                &ctx.meta.token_endpoint,
                auth,
                &[("grant_type", "client_credentials")],
            )
            .await?;
        ex.expect_oauth_error(400, "unauthorized_client")?;
    }
    Ok(())
}

/// client_credentials beyond the registered scope: `invalid_scope`, never narrowed.
pub async fn client_credentials_beyond_registered_scope_is_invalid_scope(
    t: &Target,
) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for scope in [
        "photos.write",
        "photos.read photos.write",
        "photos.read no.such.scope",
    ] {
        let ex = ctx
            .http
            .post_form(
                &ctx.meta.token_endpoint,
                BACKUP_JOB.basic(),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await?;
        ex.expect_oauth_error(400, "invalid_scope")?;
    }
    Ok(())
}

/// Refreshing with a scope broader than the grant's: `invalid_scope` (§6).
pub async fn refresh_with_broader_scope_is_invalid_scope(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, Some("photos.read")).await?;
    let ex = flow::refresh(
        &ctx,
        PRINTSHOP.basic(),
        tokens.refresh()?,
        Some("photos.read profile"),
    )
    .await?;
    ex.expect_oauth_error(400, "invalid_scope")?;
    Ok(())
}

/// §6 lists `grant_type`, `refresh_token` and `scope` only, and asks only
/// confidential clients to authenticate: photo-cli (public) refreshes
/// without `client_id`, and reusing its old token so is caught as reuse;
/// printshop's token without its credentials is still `401
/// invalid_client`.
pub async fn public_client_refreshes_without_client_id(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PHOTO_CLI, &ALICE, None).await?;
    let ex = flow::refresh(&ctx, Auth::Nothing, tokens.refresh()?, None).await?;
    let rotated = flow::expect_tokens(&ex)?;
    // The old token again, still without client_id: reuse (RFC 9700
    // §4.14.2), and the family is revoked.
    flow::refresh(&ctx, Auth::Nothing, tokens.refresh()?, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")?;
    flow::refresh(&ctx, PHOTO_CLI.basic(), rotated.refresh()?, None)
        .await?
        .expect_oauth_error(400, "invalid_grant")?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let ex = flow::refresh(&ctx, Auth::Nothing, tokens.refresh()?, None).await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    Ok(())
}

/// printshop's refresh token presented by photo-cli: `invalid_grant`.
pub async fn refresh_token_of_another_client_is_invalid_grant(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let tokens = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let ex = flow::refresh(&ctx, PHOTO_CLI.basic(), tokens.refresh()?, None).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// Rotation and reuse: r1 gives (a2, r2); r1 again is `invalid_grant` and
/// revokes the family: r2 fails, a2 is inactive and refused by the API.
pub async fn rotated_refresh_token_reuse_revokes_family(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let first = flow::tokens(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let r1 = first.refresh()?.to_owned();
    let second = flow::expect_tokens(&flow::refresh(&ctx, PRINTSHOP.basic(), &r1, None).await?)?;
    let r2 = second.refresh()?.to_owned();
    second
        .exchange
        .ensure(r2 != r1, "the refresh token must rotate")?;
    flow::expect_active(&ctx, &second.access, true, "the refreshed access token").await?;
    let reuse = flow::refresh(&ctx, PRINTSHOP.basic(), &r1, None).await?;
    reuse.expect_oauth_error(400, "invalid_grant")?;
    flow::expect_active(
        &ctx,
        &second.access,
        false,
        "the newest access token after refresh-token reuse",
    )
    .await?;
    flow::expect_invalid_token(
        &flow::api(&ctx, &second.access).await?,
        "the API with the newest access token after refresh-token reuse",
    )?;
    flow::expect_active(
        &ctx,
        &first.access,
        false,
        "the family's first access token after refresh-token reuse",
    )
    .await?;
    let ex = flow::refresh(&ctx, PRINTSHOP.basic(), &r2, None).await?;
    ex.expect_oauth_error(400, "invalid_grant")?;
    Ok(())
}

/// A body over 64 KiB: 413, and the server keeps serving; a body of exactly
/// 64 KiB is still read (unknown parameters are ignored, §3.1).
pub async fn body_over_64_kib_is_413_and_server_keeps_serving(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    // Padded with parameters of 1,000 bytes: each within the 2 KiB a value
    // may have, so only the body's size is at stake.
    let padded = |len: usize| {
        let mut body = String::from("grant_type=client_credentials&scope=photos.read");
        let mut i = 0;
        while body.len() < len {
            let name = format!("&p{i}=");
            let room = len - body.len();
            if room <= name.len() {
                body.push_str(&"a".repeat(room));
                break;
            }
            body.push_str(&name);
            body.push_str(&"a".repeat((room - name.len()).min(1000)));
            i += 1;
        }
        body
    };
    let big = Request::post_form(&ctx.meta.token_endpoint, BACKUP_JOB.basic(), &[])
        .body(padded(64 * 1024 + 1));
    let ex = ctx.http.send(big).await?;
    ex.expect_status(413)?;
    let huge = Request::post_form(&ctx.meta.token_endpoint, BACKUP_JOB.basic(), &[])
        .body(padded(1024 * 1024));
    let ex = crate::http::Http::new()?.send(huge).await?;
    ex.expect_status(413)?;
    // Still serving, on a new connection and on the pooled one.
    crate::http::Http::new()?
        .get(&ctx.target.metadata_url())
        .await?
        .expect_status(200)?;
    flow::client_token(&ctx, &BACKUP_JOB, Some("photos.read")).await?;
    let exact = Request::post_form(&ctx.meta.token_endpoint, BACKUP_JOB.basic(), &[])
        .body(padded(64 * 1024));
    flow::expect_tokens(&ctx.http.send(exact).await?)?;
    Ok(())
}
