//! RFC 6749 §4.1.1 and §4.1.2.1: the authorization endpoint's errors, with
//! raw HTTP. Before the client and redirect URI are verified: an HTML error
//! page (400), never a redirect. After: a redirect to the client carrying
//! `error`, `state` and `iss` (RFC 9207).

use crate::demo::{ALICE, BACKUP_JOB, PHOTO_CLI, PRINTSHOP};
use crate::flow::{self, Decision, Landing, Pkce};
use crate::http::Exchange;
use crate::{CheckResult, Ctx, Failure, Target};

/// A `state` of printable ASCII that needs percent-encoding (RFC 6749
/// Appendix A.5: `1*VSCHAR`), to show it is echoed exactly.
const STATE: &str = "st 4f&8a=~.Z_9/+%?#";

/// A valid printshop request's parameters, to be varied.
fn printshop_pairs(pkce: &Pkce) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", PRINTSHOP.id.into()),
        (
            "redirect_uri",
            PRINTSHOP.redirect_uri.unwrap_or_default().into(),
        ),
        ("state", STATE.into()),
        ("code_challenge", pkce.challenge.clone()),
        ("code_challenge_method", "S256".into()),
        ("scope", "photos.read".into()),
    ]
}

async fn get(ctx: &Ctx, pairs: &[(&str, String)]) -> Result<Exchange, Failure> {
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ctx.http.get(&flow::authorize_url(ctx, &refs)).await
}

fn without(pairs: &[(&'static str, String)], name: &str) -> Vec<(&'static str, String)> {
    pairs.iter().filter(|(k, _)| *k != name).cloned().collect()
}

fn with(
    pairs: &[(&'static str, String)],
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut p = without(pairs, name);
    p.push((name, value.to_owned()));
    p
}

/// An HTML error page: 400, `text/html`, no `Location`.
pub(crate) fn expect_error_page(ex: &Exchange) -> CheckResult {
    ex.ensure(
        ex.location().is_none(),
        "the client or redirect URI is not verified or not trusted: an error page, never a redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2)",
    )?;
    ex.expect_status(400)?.expect_media_type("text/html")?;
    Ok(())
}

/// A 302/303 to `redirect_uri` carrying `error`, `state` (if sent) and `iss`.
fn expect_error_redirect(
    ctx: &Ctx,
    ex: &Exchange,
    redirect_uri: &str,
    error: &str,
    state: Option<&str>,
) -> CheckResult {
    ex.expect_status_in(&[302, 303])?;
    let loc = ex
        .location()
        .ok_or_else(|| ex.failure("a redirect without Location"))?;
    let location = url::Url::parse(loc)
        .map_err(|e| ex.failure(format!("Location must be the absolute redirect URI: {e}")))?;
    let base = loc.split('?').next().unwrap_or_default();
    ex.ensure(
        base == redirect_uri,
        format!("the error must go to the registered redirect URI {redirect_uri}"),
    )?;
    let landing = Landing {
        location,
        exchange: ex.clone(),
        trace: vec![ex.clone()],
    };
    landing.expect_error(ctx, error, state)
}

/// An unknown `client_id`: an HTML error page (400), no redirect.
pub async fn unknown_client_gets_error_page(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = with(
        &printshop_pairs(&Pkce::new()),
        "client_id",
        "no-such-client",
    );
    expect_error_page(&get(&ctx, &pairs).await?)
}

/// A `redirect_uri` not registered for the client: 400 error page, no redirect.
pub async fn unregistered_redirect_uri_gets_error_page(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let base = printshop_pairs(&Pkce::new());
    for uri in [
        "http://127.0.0.1:9001/callback/evil",
        "http://127.0.0.1:9001/Callback",
        "http://127.0.0.1:9001/callback/",
        "http://evil.example/callback",
        "http://127.0.0.1:9001/callback?x=1",
    ] {
        expect_error_page(&get(&ctx, &with(&base, "redirect_uri", uri)).await?)?;
    }
    Ok(())
}

/// printshop is a web client registered with `http://127.0.0.1:9001/callback`:
/// the contract gives "any port" (RFC 8252 §7.3) to photo-cli only, so the
/// same URI on another port is not registered for printshop.
pub async fn web_client_redirect_port_is_exact(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = with(
        &printshop_pairs(&Pkce::new()),
        "redirect_uri",
        "http://127.0.0.1:9002/callback",
    );
    expect_error_page(&get(&ctx, &pairs).await?)
}

/// No `response_type`: redirect with `invalid_request`, `state`, `iss`.
pub async fn missing_response_type_redirects_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = without(&printshop_pairs(&Pkce::new()), "response_type");
    let ex = get(&ctx, &pairs).await?;
    expect_error_redirect(
        &ctx,
        &ex,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        "invalid_request",
        Some(STATE),
    )
}

/// `response_type=token` (implicit): `unsupported_response_type`.
pub async fn response_type_token_redirects_unsupported_response_type(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = with(&printshop_pairs(&Pkce::new()), "response_type", "token");
    let ex = get(&ctx, &pairs).await?;
    expect_error_redirect(
        &ctx,
        &ex,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        "unsupported_response_type",
        Some(STATE),
    )
}

/// No `code_challenge`: `invalid_request` (PKCE is required for every client).
pub async fn missing_code_challenge_redirects_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = without(
        &without(&printshop_pairs(&Pkce::new()), "code_challenge"),
        "code_challenge_method",
    );
    let ex = get(&ctx, &pairs).await?;
    expect_error_redirect(
        &ctx,
        &ex,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        "invalid_request",
        Some(STATE),
    )?;
    // A public client too, from a loopback URI.
    let redirect = flow::loopback_redirect_uri()?;
    let pairs = vec![
        ("response_type", "code".to_owned()),
        ("client_id", PHOTO_CLI.id.to_owned()),
        ("redirect_uri", redirect.clone()),
        ("state", STATE.to_owned()),
    ];
    let ex = get(&ctx, &pairs).await?;
    expect_error_redirect(&ctx, &ex, &redirect, "invalid_request", Some(STATE))
}

/// `code_challenge_method=plain`: `invalid_request`.
pub async fn plain_code_challenge_method_redirects_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pkce = Pkce::new();
    let mut pairs = with(&printshop_pairs(&pkce), "code_challenge_method", "plain");
    pairs = with(&pairs, "code_challenge", &pkce.verifier);
    let ex = get(&ctx, &pairs).await?;
    expect_error_redirect(
        &ctx,
        &ex,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        "invalid_request",
        Some(STATE),
    )
}

/// A scope the client is not registered for (printshop asking `photos.write`):
/// `invalid_scope`, never silently narrowed.
pub async fn unregistered_scope_redirects_invalid_scope(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    for scope in ["photos.write", "photos.read photos.write"] {
        let pairs = with(&printshop_pairs(&Pkce::new()), "scope", scope);
        let ex = get(&ctx, &pairs).await?;
        expect_error_redirect(
            &ctx,
            &ex,
            PRINTSHOP.redirect_uri.unwrap_or_default(),
            "invalid_scope",
            Some(STATE),
        )?;
    }
    Ok(())
}

/// A scope that does not exist: `invalid_scope`.
pub async fn unknown_scope_redirects_invalid_scope(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pairs = with(
        &printshop_pairs(&Pkce::new()),
        "scope",
        "photos.read photos.delete",
    );
    let ex = get(&ctx, &pairs).await?;
    expect_error_redirect(
        &ctx,
        &ex,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        "invalid_scope",
        Some(STATE),
    )
}

/// `state` sent twice: `invalid_request` (RFC 6749 §3.1) at the redirect URI.
pub async fn duplicate_state_redirects_invalid_request(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut pairs = printshop_pairs(&Pkce::new());
    pairs.push(("state", "second-state".into()));
    let ex = get(&ctx, &pairs).await?;
    // Which `state` to echo is not fixed when it was sent twice: the first, or none.
    let echoed = ex
        .location()
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
        });
    let state = echoed.as_ref().map(|_| STATE);
    expect_error_redirect(
        &ctx,
        &ex,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        "invalid_request",
        state,
    )
}

/// DEMO-CONTRACT "Limits against floods": every parameter value is at most
/// 2 KiB, `invalid_request` beyond, also one the server does not read; an
/// unread one within the bound is ignored, even sent twice (RFC 6749 §3.1).
pub async fn value_over_2_kib_redirects_invalid_request_whatever_its_name(
    t: &Target,
) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut pairs = printshop_pairs(&Pkce::new());
    pairs.push(("x_unrecognized", "x".repeat(2049)));
    let ex = get(&ctx, &pairs).await?;
    let redirect_uri = PRINTSHOP.redirect_uri.unwrap_or_default();
    expect_error_redirect(&ctx, &ex, redirect_uri, "invalid_request", Some(STATE))?;
    let mut pairs = printshop_pairs(&Pkce::new());
    pairs.push(("x_unrecognized", "x".repeat(2048)));
    pairs.push(("x_unrecognized", "again".into()));
    let ex = get(&ctx, &pairs).await?;
    ex.ensure(
        ex.location().is_none_or(|l| !l.contains("error=")),
        "an unrecognized parameter within 2 KiB, even sent twice, is ignored (RFC 6749 §3.1)",
    )?;
    ex.expect_status_in(&[200, 302, 303])?;
    Ok(())
}

/// `client_id` sent twice: nothing can be trusted, so an error page (400), no redirect.
pub async fn duplicate_client_id_gets_error_page(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let mut pairs = printshop_pairs(&Pkce::new());
    pairs.push(("client_id", PRINTSHOP.id.into()));
    expect_error_page(&get(&ctx, &pairs).await?)?;
    let mut pairs = printshop_pairs(&Pkce::new());
    pairs.push((
        "redirect_uri",
        PRINTSHOP.redirect_uri.unwrap_or_default().into(),
    ));
    expect_error_page(&get(&ctx, &pairs).await?)
}

/// backup-job (no authorization_code grant, no redirect URI): an error page,
/// with or without a `redirect_uri`.
pub async fn client_without_code_grant_gets_error_page(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let base = with(&printshop_pairs(&Pkce::new()), "client_id", BACKUP_JOB.id);
    expect_error_page(&get(&ctx, &without(&base, "redirect_uri")).await?)?;
    expect_error_page(&get(&ctx, &base).await?)
}

/// The owner clicks deny: a redirect with `error=access_denied`, `state`, `iss`.
pub async fn deny_redirects_access_denied(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let pkce = Pkce::new();
    let pairs = printshop_pairs(&pkce);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = flow::authorize_url(&ctx, &refs);
    let landing = flow::browse(
        &ctx,
        &url,
        PRINTSHOP.redirect_uri.unwrap_or_default(),
        &ALICE,
        Decision::Deny,
    )
    .await?;
    landing.expect_error(&ctx, "access_denied", Some(STATE))
}

/// The consent page names the client (contract: "The page names the client
/// and lists each requested scope in words").
pub async fn consent_page_names_the_client(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let grant = flow::authorize(&ctx, &PRINTSHOP, &ALICE, None).await?;
    let consent = grant
        .landing
        .trace
        .iter()
        .find(|ex| {
            crate::html::forms(&ex.body)
                .iter()
                .any(|f| f.submit_button("decision", "allow").is_some())
        })
        .ok_or_else(|| grant.landing.failure("no consent page in the dance"))?;
    consent.ensure(
        consent.body.to_ascii_lowercase().contains("printshop"),
        "the consent page must name the client (printshop)",
    )?;
    Ok(())
}
