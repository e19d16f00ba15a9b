//! RFC 6749 happy paths, with the `oauth2` crate as the client.

use oauth2::basic::BasicTokenType;
use oauth2::{
    AuthType, AuthorizationCode, CsrfToken, PkceCodeChallenge, RefreshToken, RequestTokenError,
    Scope, TokenResponse as _,
};

use super::oauth::{self, Recorder};
use crate::demo::{ALICE, BACKUP_JOB, BOB, PHOTO_CLI, PRINTSHOP, User};
use crate::flow::{self, Decision};
use crate::html;
use crate::http::{Auth, Exchange, Request};
use crate::{CheckResult, Ctx, Failure, Target};

/// Tokens obtained by the `oauth2` crate.
struct CrateTokens {
    access: String,
    refresh: Option<String>,
}

fn request_error<E: std::fmt::Debug>(rec: &Recorder, e: E) -> Failure {
    rec.failure(format!("the oauth2 crate's token request failed: {e:?}"))
}

/// Checks a token the crate obtained against the raw response: `Bearer`,
/// `expires_in`, `no-store`.
fn check_crate_token<T: oauth2::TokenResponse<TokenType = BasicTokenType>>(
    rec: &Recorder,
    token: &T,
    want_refresh: bool,
) -> Result<CrateTokens, Failure> {
    let raw = rec
        .last()
        .ok_or_else(|| Failure::new("no token exchange was recorded"))?;
    flow::expect_tokens(&raw)?;
    raw.ensure(
        *token.token_type() == BasicTokenType::Bearer,
        format!("the crate read token_type {:?}", token.token_type()),
    )?;
    raw.ensure(
        token.expires_in().is_some(),
        "the crate found no expires_in",
    )?;
    if want_refresh {
        raw.ensure(
            token.refresh_token().is_some(),
            "the token response has no refresh_token",
        )?;
    }
    Ok(CrateTokens {
        access: token.access_token().secret().clone(),
        refresh: token.refresh_token().map(|r| r.secret().clone()),
    })
}

/// The whole dance for `printshop` as `user` through the `oauth2` crate:
/// PKCE S256, state, `client_secret_basic`.
async fn printshop_with_crate(
    ctx: &Ctx,
    user: &User,
) -> Result<(oauth::Client, Recorder, CrateTokens), Failure> {
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let client = oauth::client(ctx, &PRINTSHOP, redirect)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("photos.read".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = ctx.fresh_browser()?;
    let landing = flow::browse(&browser, url.as_str(), redirect, user, Decision::Allow).await?;
    landing.expect_state_and_iss(ctx, Some(csrf.secret()))?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let rec = Recorder::new()?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&rec)
        .await
        .map_err(|e| request_error(&rec, e))?;
    let raw = rec
        .last()
        .ok_or_else(|| Failure::new("no token exchange was recorded"))?;
    raw.ensure(
        raw.request_headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.starts_with("Basic ")),
        "the crate was expected to use client_secret_basic",
    )?;
    let tokens = check_crate_token(&rec, &token, true)?;
    if let Some(scopes) = token.scopes() {
        let mut got: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        got.sort_unstable();
        raw.ensure(
            got == ["photos.read", "profile"],
            format!("granted scope should be `photos.read profile`, got {got:?}"),
        )?;
    }
    Ok((client, rec, tokens))
}

/// Checks `/api/photos` answers 200 for `token` with `owner` and `count` photos.
pub(crate) async fn expect_photos(
    ctx: &Ctx,
    token: &str,
    owner: &str,
    count: usize,
) -> Result<Exchange, Failure> {
    let ex = flow::api(ctx, token).await?;
    ex.expect_status(200)?
        .expect_media_type("application/json")?;
    let json = ex.json()?;
    ex.ensure(
        json.get("owner").and_then(|o| o.as_str()) == Some(owner),
        format!("expected \"owner\": {owner:?}"),
    )?;
    let photos = json
        .get("photos")
        .and_then(|p| p.as_array())
        .ok_or_else(|| ex.failure("the body has no `photos` array"))?;
    ex.ensure(
        photos.len() == count,
        format!("expected {count} photos, got {}", photos.len()),
    )?;
    for p in photos {
        ex.ensure(
            p.get("id").is_some_and(|v| !v.is_null())
                && p.get("title").and_then(|v| v.as_str()).is_some(),
            format!("each photo needs `id` and `title`, got {p}"),
        )?;
    }
    Ok(ex)
}

/// printshop: code flow with PKCE S256 and state through the `oauth2` crate;
/// the token response is `Bearer`, has `expires_in`, a refresh token and
/// `Cache-Control: no-store`; the token reads alice's 3 photos and is active
/// at introspection with her name.
pub async fn printshop_code_flow_with_oauth2_crate(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (_, _, tokens) = printshop_with_crate(&ctx, &ALICE).await?;
    expect_photos(&ctx, &tokens.access, "alice", ALICE.photos).await?;
    let (json, ex) = flow::introspect(&ctx, &tokens.access).await?;
    ex.ensure(
        json["active"] == true && json["username"] == "alice" && json["client_id"] == "printshop",
        "expected active, username alice, client_id printshop",
    )?;
    Ok(())
}

/// Refresh with rotation through the `oauth2` crate: a new refresh token; the
/// old one then fails with `invalid_grant` and the family's access tokens
/// become inactive.
pub async fn printshop_refresh_rotates(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let (client, _, first) = printshop_with_crate(&ctx, &ALICE).await?;
    let r1 = first.refresh.clone().unwrap_or_default();
    let rec = Recorder::new()?;
    let token = client
        .exchange_refresh_token(&RefreshToken::new(r1.clone()))
        .request_async(&rec)
        .await
        .map_err(|e| request_error(&rec, e))?;
    let second = check_crate_token(&rec, &token, true)?;
    let r2 = second.refresh.clone().unwrap_or_default();
    crate::ensure(r2 != r1, || {
        "the refresh token must rotate: the same one came back".into()
    })?;
    crate::ensure(second.access != first.access, || {
        "a new access token was expected".into()
    })?;
    expect_photos(&ctx, &second.access, "alice", ALICE.photos).await?;
    let again = client
        .exchange_refresh_token(&RefreshToken::new(r1))
        .request_async(&rec)
        .await;
    match again {
        Err(RequestTokenError::ServerResponse(_)) => {
            let raw = rec.last().ok_or_else(|| Failure::new("nothing recorded"))?;
            raw.expect_oauth_error(400, "invalid_grant")?;
        }
        Ok(_) => return Err(rec.failure("the rotated refresh token was accepted again")),
        Err(e) => return Err(request_error(&rec, e)),
    }
    flow::expect_active(
        &ctx,
        &second.access,
        false,
        "the family's newest access token after reuse of a rotated refresh token",
    )
    .await?;
    flow::expect_active(
        &ctx,
        &r2,
        false,
        "the family's newest refresh token after reuse of a rotated refresh token",
    )
    .await?;
    Ok(())
}

/// photo-cli (public): code flow with PKCE from a loopback redirect URI on a
/// random port (RFC 8252 §7.3), `client_id` in the body, no secret.
pub async fn photo_cli_loopback_any_port_with_pkce(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = flow::loopback_redirect_uri()?;
    let client = oauth::client(&ctx, &PHOTO_CLI, &redirect)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let landing = flow::browse(&ctx, url.as_str(), &redirect, &ALICE, Decision::Allow).await?;
    landing.expect_state_and_iss(&ctx, Some(csrf.secret()))?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let rec = Recorder::new()?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&rec)
        .await
        .map_err(|e| request_error(&rec, e))?;
    let tokens = check_crate_token(&rec, &token, true)?;
    expect_photos(&ctx, &tokens.access, "alice", ALICE.photos).await?;
    let (json, ex) = flow::introspect(&ctx, &tokens.access).await?;
    let scope = json["scope"].as_str().unwrap_or_default();
    let mut got: Vec<&str> = scope.split(' ').collect();
    got.sort_unstable();
    ex.ensure(
        got == ["photos.read", "photos.write"],
        "an omitted scope means every scope photo-cli is registered for: photos.read photos.write",
    )?;
    Ok(())
}

async fn backup_job(t: &Target, auth: AuthType) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let post = matches!(auth, AuthType::RequestBody);
    let client = oauth::client(&ctx, &BACKUP_JOB, "http://127.0.0.1/unused")?.set_auth_type(auth);
    let rec = Recorder::new()?;
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("photos.read".into()))
        .request_async(&rec)
        .await
        .map_err(|e| request_error(&rec, e))?;
    let raw = rec.last().ok_or_else(|| Failure::new("nothing recorded"))?;
    let used_basic = raw
        .request_headers
        .iter()
        .any(|(k, _)| k == "authorization");
    let body_secret = raw
        .request_body
        .as_deref()
        .unwrap_or_default()
        .contains("client_secret=");
    raw.ensure(
        used_basic != post && body_secret == post,
        "the crate did not use the intended client authentication method",
    )?;
    let tokens = check_crate_token(&rec, &token, false)?;
    expect_photos(
        &ctx,
        &tokens.access,
        "backup-job",
        ALICE.photos + BOB.photos,
    )
    .await?;
    Ok(())
}

/// backup-job: client credentials with `client_secret_basic`; the token reads
/// every user's photos (5) as owner `backup-job`.
pub async fn backup_job_client_credentials_basic(t: &Target) -> CheckResult {
    backup_job(t, AuthType::BasicAuth).await
}

/// backup-job: client credentials with `client_secret_post`.
pub async fn backup_job_client_credentials_post(t: &Target) -> CheckResult {
    backup_job(t, AuthType::RequestBody).await
}

/// `/api/photos`: alice 3, bob 2, backup-job all 5 (ids distinct).
pub async fn photos_api_answers_per_owner(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let alice = flow::tokens(&ctx, &PRINTSHOP, &ALICE, Some("photos.read")).await?;
    expect_photos(&ctx, &alice.access, "alice", ALICE.photos).await?;
    let bob = flow::tokens(&ctx, &PRINTSHOP, &BOB, Some("photos.read")).await?;
    expect_photos(&ctx, &bob.access, "bob", BOB.photos).await?;
    let job = flow::client_token(&ctx, &BACKUP_JOB, Some("photos.read")).await?;
    let ex = expect_photos(&ctx, &job.access, "backup-job", ALICE.photos + BOB.photos).await?;
    let json = ex.json()?;
    let mut ids: Vec<String> = json["photos"]
        .as_array()
        .map(|a| a.iter().map(|p| p["id"].to_string()).collect())
        .unwrap_or_default();
    ids.sort();
    ids.dedup();
    ex.ensure(
        ids.len() == 5,
        "the backup job's 5 photos must have distinct ids",
    )?;
    Ok(())
}

/// Wrong credentials: the login page again (200 or 401) with its form; the
/// right ones then go on to consent and a code.
pub async fn login_with_wrong_password_shows_login_again(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let redirect = PRINTSHOP.redirect_uri.unwrap_or_default();
    let pkce = flow::Pkce::new();
    let state = flow::random_string();
    let url = flow::authorize_url(
        &ctx,
        &[
            ("response_type", "code"),
            ("client_id", PRINTSHOP.id),
            ("redirect_uri", redirect),
            ("state", &state),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let mut current = url::Url::parse(&url).map_err(|e| Failure::new(e.to_string()))?;
    let page = ctx.http.get(&url).await?;
    page.expect_status(200)?;
    let forms: Vec<html::Form> = html::forms(&page.body)
        .into_iter()
        .filter(|f| f.method == "post")
        .collect();
    let [login] = forms.as_slice() else {
        return page.fail("expected exactly one <form method=\"post\"> on the login page");
    };
    page.ensure(
        login.field("username").is_some() && login.field("password").is_some(),
        "the login form needs `username` and `password` inputs",
    )?;
    let action = login
        .action
        .as_deref()
        .map_or(Ok(current.clone()), |a| current.join(a));
    let action = action.map_err(|e| page.failure(format!("bad action: {e}")))?;
    let pairs = login.submission(
        &[("username", "alice"), ("password", "wrong-password")],
        None,
    );
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut ex = ctx
        .http
        .send(
            Request::post_form(action.as_str(), Auth::Nothing, &refs)
                .header("origin", current.origin().ascii_serialization()),
        )
        .await?;
    current = action;
    for _ in 0..5 {
        if !(300..400).contains(&ex.status) {
            break;
        }
        let loc = ex.location().unwrap_or_default().to_owned();
        let next = current
            .join(&loc)
            .map_err(|e| ex.failure(format!("bad Location: {e}")))?;
        if next.as_str().starts_with(redirect) {
            return ex.fail("wrong credentials must not lead back to the client");
        }
        ex = ctx.http.get(next.as_str()).await?;
        current = next;
    }
    ex.expect_status_in(&[200, 401])?;
    let forms: Vec<html::Form> = html::forms(&ex.body)
        .into_iter()
        .filter(|f| f.method == "post")
        .collect();
    let [again] = forms.as_slice() else {
        return ex.fail("expected the login page again, with exactly one <form method=\"post\">");
    };
    ex.ensure(
        again.field("username").is_some() && again.field("password").is_some(),
        "expected the login page again (username and password inputs)",
    )?;
    let action = again
        .action
        .as_deref()
        .map_or(Ok(current.clone()), |a| current.join(a));
    let action = action.map_err(|e| ex.failure(format!("bad action: {e}")))?;
    let pairs = again.submission(
        &[("username", ALICE.username), ("password", ALICE.password)],
        None,
    );
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let landing = flow::browse_request(
        &ctx,
        Request::post_form(action.as_str(), Auth::Nothing, &refs)
            .header("origin", current.origin().ascii_serialization()),
        redirect,
        &ALICE,
        Decision::Allow,
        true,
    )
    .await?;
    landing.expect_state_and_iss(&ctx, Some(&state))?;
    if landing.param("code").is_none() {
        return Err(landing.failure("after logging in correctly the dance must end with a code"));
    }
    Ok(())
}

/// Every cookie the provider sets during the dance is `HttpOnly` and `SameSite=Lax`.
pub async fn session_cookie_is_httponly_and_lax(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let grant = flow::authorize(&ctx, &PRINTSHOP, &ALICE, None).await?;
    for ex in &grant.landing.trace {
        for cookie in ex.headers_named("set-cookie") {
            let attrs: Vec<String> = cookie
                .split(';')
                .skip(1)
                .map(|a| a.trim().to_ascii_lowercase().replace(' ', ""))
                .collect();
            let http_only = attrs.iter().any(|a| a == "httponly");
            let lax = attrs.iter().any(|a| a == "samesite=lax");
            if !(http_only && lax) {
                return Err(grant.landing.failure(format!(
                    "cookie must be HttpOnly and SameSite=Lax: {cookie}"
                )));
            }
        }
    }
    Ok(())
}
