//! The browser's part of the authorization dance, done with raw HTTP the way
//! the demo's pages work, and small helpers for the client's part.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::demo::{DemoClient, User};
use crate::html;
use crate::http::{Auth, Exchange, Request};
use crate::{Ctx, Failure};

/// How many pages a dance may go through before it is deemed stuck.
const MAX_STEPS: usize = 12;

/// A PKCE pair (RFC 7636).
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The verifier (43 characters).
    pub verifier: String,
    /// Its S256 challenge.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random verifier and its S256 challenge.
    pub fn new() -> Self {
        let verifier = random_string();
        let challenge = s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 32 random bytes, base64url: a state value or a PKCE verifier.
pub fn random_string() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// `http://127.0.0.1:{port}/callback` with a port nobody listens on.
pub fn loopback_redirect_uri() -> Result<String, Failure> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Failure::new(format!("cannot bind a loopback port: {e}")))?;
    let port = l
        .local_addr()
        .map_err(|e| Failure::new(format!("cannot read the bound port: {e}")))?
        .port();
    Ok(format!("http://127.0.0.1:{port}/callback"))
}

/// The authorization endpoint with `pairs` as its query (in order, repeats kept).
pub fn authorize_url(ctx: &Ctx, pairs: &[(&str, &str)]) -> String {
    let base = &ctx.meta.authorization_endpoint;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", crate::http::form(pairs))
}

/// What a person does on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Clicks `decision=allow`.
    Allow,
    /// Clicks `decision=deny`.
    Deny,
}

impl Decision {
    fn value(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// Where a dance ended: the redirect back to the client.
#[derive(Debug, Clone)]
pub struct Landing {
    /// The redirect's `Location`, absolute.
    pub location: url::Url,
    /// The exchange that carried it.
    pub exchange: Exchange,
    /// Every exchange of the dance, in order.
    pub trace: Vec<Exchange>,
}

impl Landing {
    /// A query parameter of the redirect (the first if repeated).
    pub fn param(&self, name: &str) -> Option<String> {
        self.location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// How many times a query parameter appears.
    pub fn count(&self, name: &str) -> usize {
        self.location
            .query_pairs()
            .filter(|(k, _)| k == name)
            .count()
    }

    /// A failure with the whole dance attached.
    pub fn failure(&self, what: impl std::fmt::Display) -> Failure {
        let mut s = format!("{what}\nthe dance:\n");
        for ex in &self.trace {
            s.push_str(&ex.describe());
            s.push_str("  ---\n");
        }
        Failure::new(s)
    }

    /// Checks an RFC 6749 §4.1.2.1 error redirect: `error`, `state` echoed
    /// exactly, `iss` equal to the issuer (RFC 9207), and no `code`.
    pub fn expect_error(&self, ctx: &Ctx, error: &str, state: Option<&str>) -> Result<(), Failure> {
        let got = self.param("error");
        if got.as_deref() != Some(error) {
            return Err(self.failure(format!(
                "expected a redirect with error={error}, got error={got:?}"
            )));
        }
        if self.param("code").is_some() {
            return Err(self.failure("an error redirect must not carry a code"));
        }
        self.expect_state_and_iss(ctx, state)
    }

    /// Checks `state` (echoed exactly, once) and `iss` (= the issuer, once).
    pub fn expect_state_and_iss(&self, ctx: &Ctx, state: Option<&str>) -> Result<(), Failure> {
        let got_state = self.param("state");
        if got_state.as_deref() != state || self.count("state") > 1 {
            return Err(self.failure(format!(
                "expected state={state:?} echoed exactly once, got {got_state:?} ({} times)",
                self.count("state")
            )));
        }
        let iss = self.param("iss");
        if iss.as_deref() != Some(ctx.meta.issuer.as_str()) || self.count("iss") != 1 {
            return Err(self.failure(format!(
                "expected iss={:?} exactly once (RFC 9207), got {iss:?} ({} times)",
                ctx.meta.issuer,
                self.count("iss")
            )));
        }
        Ok(())
    }
}

fn same_endpoint(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

fn trace_failure(trace: &[Exchange], what: impl std::fmt::Display) -> Failure {
    let mut s = format!("{what}\nthe dance:\n");
    for ex in trace {
        s.push_str(&ex.describe());
        s.push_str("  ---\n");
    }
    Failure::new(s)
}

/// Plays the browser from `start` (a URL to GET) until a redirect reaches
/// `redirect_uri`: logs in as `user` on the login page, clicks `decision` on
/// the consent page, follows redirects within the provider. Checks the
/// contract's page rules on the way (status 200, exactly one `<form
/// method="post">`, the named inputs and buttons, a 302 or 303 back).
pub async fn browse(
    ctx: &Ctx,
    start: &str,
    redirect_uri: &str,
    user: &User,
    decision: Decision,
) -> Result<Landing, Failure> {
    browse_request(
        ctx,
        Request::get(start),
        redirect_uri,
        user,
        decision,
        false,
    )
    .await
}

/// Like [`browse`], from any first request; `logged_in` says the login form
/// was already submitted (a second login page is then a failure).
pub async fn browse_request(
    ctx: &Ctx,
    first: Request,
    redirect_uri: &str,
    user: &User,
    decision: Decision,
    logged_in: bool,
) -> Result<Landing, Failure> {
    let target = url::Url::parse(redirect_uri)
        .map_err(|e| Failure::new(format!("bad redirect URI {redirect_uri}: {e}")))?;
    let mut trace: Vec<Exchange> = Vec::new();
    let mut next = first;
    let mut logged_in = logged_in;
    let mut decided = false;
    for _ in 0..MAX_STEPS {
        let current = url::Url::parse(&next.url)
            .map_err(|e| Failure::new(format!("bad URL {}: {e}", next.url)))?;
        let ex = ctx.http.send(next).await?;
        trace.push(ex.clone());
        if (300..400).contains(&ex.status) {
            let Some(loc) = ex.location() else {
                return Err(trace_failure(&trace, "a redirect without Location"));
            };
            let loc = current
                .join(loc)
                .map_err(|e| trace_failure(&trace, format!("unparsable Location: {e}")))?;
            if same_endpoint(&loc, &target) {
                if !matches!(ex.status, 302 | 303) {
                    return Err(trace_failure(
                        &trace,
                        format!(
                            "the redirect back to the client must be 302 or 303, got {}",
                            ex.status
                        ),
                    ));
                }
                return Ok(Landing {
                    location: loc,
                    exchange: ex,
                    trace,
                });
            }
            next = Request::get(loc.as_str());
            continue;
        }
        let post_forms: Vec<html::Form> = html::forms(&ex.body)
            .into_iter()
            .filter(|f| f.method == "post")
            .collect();
        let login_status_ok = ex.status == 200 || (logged_in && ex.status == 401);
        if !login_status_ok {
            return Err(trace_failure(
                &trace,
                format!("expected a page (200) or a redirect, got {}", ex.status),
            ));
        }
        let [form] = post_forms.as_slice() else {
            return Err(trace_failure(
                &trace,
                format!(
                    "expected exactly one <form method=\"post\">, found {}",
                    post_forms.len()
                ),
            ));
        };
        let action = match &form.action {
            Some(a) => current
                .join(a)
                .map_err(|e| trace_failure(&trace, format!("unparsable form action: {e}")))?,
            None => current.clone(),
        };
        let pairs = if form.field("password").is_some() {
            if logged_in {
                return Err(trace_failure(
                    &trace,
                    format!(
                        "the login page came back after logging in as {}",
                        user.username
                    ),
                ));
            }
            if form.field("username").is_none() {
                return Err(trace_failure(
                    &trace,
                    "the login form has no `username` input",
                ));
            }
            logged_in = true;
            form.submission(
                &[("username", user.username), ("password", user.password)],
                None,
            )
        } else if form.submit_button("decision", "allow").is_some()
            && form.submit_button("decision", "deny").is_some()
        {
            if decided {
                return Err(trace_failure(
                    &trace,
                    "the consent page came back after deciding",
                ));
            }
            decided = true;
            form.submission(&[], Some(("decision", decision.value())))
        } else {
            return Err(trace_failure(
                &trace,
                "a page that is neither the login page (username, password) nor the consent page (decision=allow, decision=deny)",
            ));
        };
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let origin = current.origin().ascii_serialization();
        next = Request::post_form(action.as_str(), Auth::Nothing, &refs)
            .header("origin", origin)
            .header("referer", current.as_str());
    }
    Err(trace_failure(
        &trace,
        format!("no redirect back to the client after {MAX_STEPS} steps"),
    ))
}

/// A code obtained through the dance.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    /// The authorization code.
    pub code: String,
    /// The PKCE pair sent.
    pub pkce: Pkce,
    /// The redirect URI used.
    pub redirect_uri: String,
    /// The state sent.
    pub state: String,
    /// The landing redirect.
    pub landing: Landing,
}

impl CodeGrant {
    /// The code `landing` carries, with what the request sent for it;
    /// a landing without `code` is a failure.
    pub fn from_landing(
        landing: Landing,
        pkce: Pkce,
        redirect_uri: String,
        state: String,
    ) -> Result<Self, Failure> {
        let Some(code) = landing.param("code") else {
            return Err(landing.failure("the redirect carries no code"));
        };
        Ok(Self {
            code,
            pkce,
            redirect_uri,
            state,
            landing,
        })
    }
}

/// Runs the dance for `client` as `user` with PKCE S256 and a random state,
/// asking for `scope` (omitted when `None`), allows, and returns the code.
/// Checks the landing carries `code`, `state` and `iss`.
pub async fn authorize(
    ctx: &Ctx,
    client: &DemoClient,
    user: &User,
    scope: Option<&str>,
) -> Result<CodeGrant, Failure> {
    let redirect_uri = if client.secret.is_none() {
        loopback_redirect_uri()?
    } else {
        client
            .redirect_uri
            .ok_or_else(|| Failure::new(format!("{} has no redirect URI", client.id)))?
            .to_owned()
    };
    let pkce = Pkce::new();
    let state = random_string();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client.id),
        ("redirect_uri", redirect_uri.as_str()),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    let url = authorize_url(ctx, &pairs);
    let landing = browse(ctx, &url, &redirect_uri, user, Decision::Allow).await?;
    if let Some(e) = landing.param("error") {
        return Err(landing.failure(format!("expected a code, got error={e}")));
    }
    landing.expect_state_and_iss(ctx, Some(&state))?;
    CodeGrant::from_landing(landing, pkce, redirect_uri, state)
}

/// POSTs the token request redeeming `grant` with `auth`.
pub async fn redeem(ctx: &Ctx, grant: &CodeGrant, auth: Auth<'_>) -> Result<Exchange, Failure> {
    ctx.http
        .post_form(
            &ctx.meta.token_endpoint,
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", &grant.code),
                ("redirect_uri", &grant.redirect_uri),
                ("code_verifier", &grant.pkce.verifier),
            ],
        )
        .await
}

/// Tokens from a successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token.
    pub access: String,
    /// The refresh token, if any.
    pub refresh: Option<String>,
    /// The exchange.
    pub exchange: Exchange,
}

impl Tokens {
    /// The refresh token, or a failure.
    pub fn refresh(&self) -> Result<&str, Failure> {
        self.refresh.as_deref().ok_or_else(|| {
            self.exchange
                .failure("the token response has no refresh_token")
        })
    }
}

/// Checks a successful token response (RFC 6749 §5.1 and the contract):
/// 200, JSON, `Cache-Control: no-store`, `token_type` Bearer, `expires_in`.
pub fn expect_tokens(ex: &Exchange) -> Result<Tokens, Failure> {
    ex.expect_status(200)?
        .expect_media_type("application/json")?
        .expect_no_store()?;
    let json = ex.json()?;
    let access = ex.json_str("access_token")?;
    let token_type = ex.json_str("token_type")?;
    ex.ensure(
        token_type == "Bearer",
        format!("token_type must be `Bearer`, got {token_type:?}"),
    )?;
    ex.ensure(
        json.get("expires_in")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n > 0),
        "expires_in must be a positive integer",
    )?;
    let refresh = json
        .get("refresh_token")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok(Tokens {
        access,
        refresh,
        exchange: ex.clone(),
    })
}

/// The dance plus the code exchange for `client` (HTTP Basic for a
/// confidential client, `client_id` for a public one).
pub async fn tokens(
    ctx: &Ctx,
    client: &DemoClient,
    user: &User,
    scope: Option<&str>,
) -> Result<Tokens, Failure> {
    let grant = authorize(&ctx.fresh_browser()?, client, user, scope).await?;
    let ex = redeem(ctx, &grant, client.basic()).await?;
    expect_tokens(&ex)
}

/// A client-credentials token for `client` (HTTP Basic).
pub async fn client_token(
    ctx: &Ctx,
    client: &DemoClient,
    scope: Option<&str>,
) -> Result<Tokens, Failure> {
    let mut pairs = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    let ex = ctx
        .http
        .post_form(&ctx.meta.token_endpoint, client.basic(), &pairs)
        .await?;
    expect_tokens(&ex)
}

/// POSTs a refresh request.
pub async fn refresh(
    ctx: &Ctx,
    auth: Auth<'_>,
    refresh_token: &str,
    scope: Option<&str>,
) -> Result<Exchange, Failure> {
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    ctx.http
        .post_form(&ctx.meta.token_endpoint, auth, &pairs)
        .await
}

/// Introspects `token` as `photo-api` and returns the JSON answer (checks
/// 200, JSON, `no-store`).
pub async fn introspect(ctx: &Ctx, token: &str) -> Result<(serde_json::Value, Exchange), Failure> {
    introspect_as(ctx, crate::demo::PHOTO_API.basic(), token).await
}

/// Introspects `token` with client authentication `auth`.
pub async fn introspect_as(
    ctx: &Ctx,
    auth: Auth<'_>,
    token: &str,
) -> Result<(serde_json::Value, Exchange), Failure> {
    let ex = ctx
        .http
        .post_form(&ctx.meta.introspection_endpoint, auth, &[("token", token)])
        .await?;
    ex.expect_status(200)?
        .expect_media_type("application/json")?
        .expect_no_store()?;
    Ok((ex.json()?, ex))
}

/// Checks `token` is active (`true`) or inactive (`false`) at introspection.
pub async fn expect_active(
    ctx: &Ctx,
    token: &str,
    active: bool,
    what: &str,
) -> Result<(), Failure> {
    let (json, ex) = introspect(ctx, token).await?;
    let got = json.get("active").and_then(|v| v.as_bool());
    ex.ensure(
        got == Some(active),
        format!("{what}: expected \"active\": {active} at introspection, got {got:?}"),
    )?;
    Ok(())
}

/// GET `/api/photos` with `Authorization: Bearer {token}`.
pub async fn api(ctx: &Ctx, token: &str) -> Result<Exchange, Failure> {
    ctx.http
        .send(Request::get(ctx.photos_url()).header("authorization", format!("Bearer {token}")))
        .await
}

/// Checks a `401` with `WWW-Authenticate: Bearer ... error="invalid_token"`.
pub fn expect_invalid_token(ex: &Exchange, what: &str) -> Result<(), Failure> {
    expect_bearer_error(ex, 401, "invalid_token", what)
}

/// A resource-server error (RFC 6750 §3.1): `status` and a
/// `WWW-Authenticate: Bearer` challenge naming `error`.
pub fn expect_bearer_error(
    ex: &Exchange,
    status: u16,
    error: &str,
    what: &str,
) -> Result<(), Failure> {
    ex.ensure(
        ex.status == status,
        format!("{what}: expected {status}, got {}", ex.status),
    )?;
    let challenge = ex.header("www-authenticate").unwrap_or_default();
    ex.ensure(
        is_bearer_challenge(challenge) && challenge.contains(&format!("error=\"{error}\"")),
        format!(
            "{what}: expected `WWW-Authenticate: Bearer` with error=\"{error}\", got {challenge:?}"
        ),
    )?;
    Ok(())
}

/// Whether a `WWW-Authenticate` value uses the Bearer scheme.
pub fn is_bearer_challenge(value: &str) -> bool {
    value
        .split_whitespace()
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
}

/// Revokes `token` with `auth`; returns the exchange.
pub async fn revoke(ctx: &Ctx, auth: Auth<'_>, token: &str) -> Result<Exchange, Failure> {
    ctx.http
        .post_form(&ctx.meta.revocation_endpoint, auth, &[("token", token)])
        .await
}
