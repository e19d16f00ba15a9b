//! PrintShop: the photo-sharing demo's third-party web client.
//!
//! PrintShop links a visitor's PhotoBook account with the OAuth 2 authorization
//! code grant (RFC 6749 §4.1) with PKCE S256 (RFC 7636), `state`, and the `iss`
//! authorization response parameter (RFC 9207). It knows the provider only by
//! its issuer URL and discovers every endpoint from RFC 8414 metadata.
//!
//! Routes:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | home page with a "Connect PhotoBook" link |
//! | `GET /connect` | starts the dance: PKCE + `state` kept server-side, redirect to the provider |
//! | `GET /callback` | checks `state` and `iss`, exchanges the code (client_secret_basic), then shows the photos, as `/photos` does |
//! | `GET /photos` | calls the provider's `/api/photos` with the bearer token (refreshing it once on 401) |
//! | `POST /disconnect` | revokes the refresh token (if the provider has a revocation endpoint) and forgets the link |
//!
//! Tokens never leave the server: the browser holds only an opaque, `HttpOnly`,
//! `SameSite=Lax` session cookie. Sessions live in memory or, with
//! `--store redis://HOST:PORT[/DB]` or `--store postgres://USER:PASS@HOST:PORT/DB`,
//! in Redis or PostgreSQL (see [`session`]).

pub mod config;
pub mod html;
pub mod provider;
pub mod session;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use oauth2::basic::{BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, RequestTokenError, Scope, TokenResponse,
};
use tokio::net::TcpListener;

pub use config::Config;
use html::{ErrorPage, PhotoView};
use provider::{ApiError, DiscoveryError, LazyProvider, Provider};
use session::{Link, Pending, SessionLocks, SessionStore, StoreError};

/// The scopes PrintShop asks for.
pub const SCOPES: [&str; 2] = ["photos.read", "profile"];

/// Shared application state.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    http: reqwest::Client,
    provider: LazyProvider,
    sessions: SessionStore,
    locks: SessionLocks,
}

impl App {
    /// Builds the application state for `config`, keeping sessions in `sessions`
    /// (see [`SessionStore::open`]).
    pub fn new(config: Config, sessions: SessionStore) -> io::Result<Self> {
        // Redirects are never followed on the back channel (SSRF, per the oauth2 crate's advice).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(provider::HTTP_TIMEOUT)
            .connect_timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("printshop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| io::Error::other(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                provider: LazyProvider::default(),
                sessions,
                locks: SessionLocks::default(),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The session store.
    pub fn sessions(&self) -> &SessionStore {
        &self.inner.sessions
    }

    /// The id of the session named by the request's cookie, if it is live.
    async fn find_session(&self, headers: &HeaderMap) -> Result<Option<String>, ErrorPage> {
        self.inner.sessions.find(headers).await.map_err(store_down)
    }

    /// The discovered provider (discovering it now if needed), or a friendly error page.
    async fn provider(&self) -> Result<Provider, ErrorPage> {
        self.inner
            .provider
            .get(&self.inner.config, &self.inner.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "PhotoBook discovery failed");
                match e {
                    DiscoveryError::Unreachable(_) => ErrorPage::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "PhotoBook is not reachable",
                        "PrintShop could not reach PhotoBook right now. Please try again in a moment.",
                    ),
                    DiscoveryError::Invalid(_) => ErrorPage::new(
                        StatusCode::BAD_GATEWAY,
                        "PhotoBook is misconfigured",
                        "PhotoBook's sign-in service described itself in a way PrintShop cannot use safely. Please try again later.",
                    ),
                }
            })
    }

    /// The router serving every PrintShop page.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/connect", get(connect))
            .route("/callback", get(callback))
            .route("/photos", get(photos))
            .route("/disconnect", post(disconnect))
            .fallback(not_found)
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self.clone())
    }
}

/// Opens `config.store` (connecting to Redis or PostgreSQL and checking it answers), or
/// says in one line why it cannot.
pub async fn open_store(config: &Config) -> io::Result<SessionStore> {
    SessionStore::open(&config.store)
        .await
        .map_err(io::Error::other)
}

/// Opens `--store`, then serves PrintShop on `listener` until `shutdown` completes.
///
/// When `--public-url` is not given, the public URL (and so the redirect URI)
/// is derived from the listener's actual address, so port 0 works.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let sessions = open_store(&config).await?;
    serve_with(listener, config, sessions, shutdown).await
}

/// How long open connections get to finish once PrintShop is told to
/// stop (`shutdown` completes); what is still open then is not waited for
/// (the binary's runtime closes it as it ends).
pub use demo_cli::shutdown::SHUTDOWN_GRACE;

/// Serves PrintShop on `listener` with an opened session store until
/// `shutdown` completes, then at most [`SHUTDOWN_GRACE`] longer.
pub async fn serve_with(
    listener: TcpListener,
    mut config: Config,
    sessions: SessionStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    config.listen = listener.local_addr()?;
    let app = App::new(config, sessions)?;
    let config = app.config();
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_base(),
        redirect_uri = %config.redirect_uri(),
        provider = %config.expected_issuer(),
        store = %session::redact(&config.store),
        "PrintShop is up"
    );
    // Discover early if the provider is already up; if not, the first request retries.
    let warm = app.clone();
    tokio::spawn(async move {
        let _ = warm.provider().await;
    });
    // Graceful, then bounded: a client holding a half-sent request
    // cannot keep PrintShop running.
    demo_cli::shutdown::serve_until(
        |stop| {
            axum::serve(listener, app.router())
                .with_graceful_shutdown(stop)
                .into_future()
        },
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await
}

/// Opens `--store`, binds `config.listen` and serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> io::Result<()> {
    let sessions = open_store(&config).await?;
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    // Listened for before the start is announced (and not before: Ctrl-C
    // while the store opens still ends the process at once).
    let stop = demo_cli::shutdown::signal();
    serve_with(listener, config, sessions, stop).await
}

/// Headers on every response: nothing is cached, framed, sniffed, or leaked via `Referer`
/// (the callback URL carries the authorization code).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Result<Response, ErrorPage> {
    let linked = match app.find_session(&headers).await? {
        Some(id) => app
            .inner
            .sessions
            .link(&id)
            .await
            .map_err(store_down)?
            .is_some(),
        None => false,
    };
    Ok(html::home(linked).into_response())
}

/// The page for a session store that failed (Redis down or too slow, or the memory store full).
fn store_down(error: StoreError) -> ErrorPage {
    match error {
        StoreError::Full => ErrorPage::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PrintShop is busy",
            "Too many people are connecting right now. Please try again in a few minutes.",
        ),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "session store failed");
            ErrorPage::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PrintShop is having trouble",
                "PrintShop could not reach its session storage. Please try again in a moment.",
            )
        }
    }
}

async fn not_found() -> ErrorPage {
    ErrorPage::new(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
    )
    .without_connect()
}

/// `GET /connect`: start the authorization code dance.
async fn connect(State(app): State<App>, headers: HeaderMap) -> Result<Response, ErrorPage> {
    let provider = app.provider().await?;
    let (session_id, is_new) = match app.find_session(&headers).await? {
        Some(id) => (id, false),
        None => (app.inner.sessions.create().await.map_err(store_down)?, true),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = provider
        .client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    app.inner
        .sessions
        .push_pending(&session_id, Pending::new(state, verifier))
        .await
        .map_err(store_down)?;
    let mut response = Redirect::to(url.as_str()).into_response();
    if is_new {
        let cookie = session::set_cookie(&session_id, app.config().secure_cookies());
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Parses a query string into a map, refusing repeated parameters (RFC 6749 §3.1).
fn parse_query(query: &str) -> Result<HashMap<String, String>, ErrorPage> {
    let mut params = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if value.is_empty() {
            continue;
        }
        if params
            .insert(key.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "Something went wrong",
                format!(
                    "The answer from PhotoBook was malformed (parameter {key:?} appeared twice)."
                ),
            ));
        }
    }
    Ok(params)
}

fn state_mismatch() -> ErrorPage {
    ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "This sign-in does not match",
        "PrintShop could not match this answer from PhotoBook to a sign-in started in this browser. \
         It may have expired, been used already, or not have been started by you. Nothing was linked.",
    )
}

fn relink(message: &str) -> ErrorPage {
    ErrorPage::new(StatusCode::UNAUTHORIZED, "Please connect again", message)
}

/// `GET /callback`: the authorization response.
async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ErrorPage> {
    let params = parse_query(query.as_deref().unwrap_or(""))?;
    let Some(session_id) = app.find_session(&headers).await? else {
        tracing::info!("callback without a session");
        return Err(state_mismatch());
    };
    let provider = app.provider().await?;

    // 1. state: binds the answer to a request this browser started (CSRF).
    //    Taking it is atomic: of racing callbacks with one state, one wins.
    let taken = match params.get("state") {
        Some(state) => app
            .inner
            .sessions
            .take_pending(&session_id, state)
            .await
            .map_err(store_down)?,
        None => None,
    };
    let pending = taken.ok_or_else(|| {
        tracing::info!("callback with unknown or missing state");
        state_mismatch()
    })?;
    if pending.is_expired(SystemTime::now()) {
        return Err(ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "That took too long",
            "The sign-in at PhotoBook took too long to complete. Please connect again.",
        ));
    }

    // 2. iss (RFC 9207): the answer comes from the provider we asked (mix-up defence).
    check_iss(params.get("iss").map(String::as_str), &provider.metadata)?;

    // 3. An error answer, e.g. the person clicked "Deny".
    if let Some(error) = params.get("error") {
        return Err(authorization_error(
            error,
            params.get("error_description").map(String::as_str),
        ));
    }

    // 4. Exchange the code on the back channel.
    let Some(code) = params.get("code") else {
        return Err(ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            "PhotoBook's answer carried neither an authorization code nor an error.",
        ));
    };
    let token = provider
        .client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(pending.verifier)
        .request_async(&app.inner.http)
        .await
        .map_err(|e| match e {
            // The code came from the browser's query: a malformed one (too
            // long, say) is the request's fault, not PhotoBook's.
            RequestTokenError::ServerResponse(r)
                if *r.error() == BasicErrorResponseType::InvalidRequest =>
            {
                tracing::info!(description = ?r.error_description(), "code refused as malformed");
                ErrorPage::new(
                    StatusCode::BAD_REQUEST,
                    "This sign-in answer cannot be used",
                    "PhotoBook refused the code this page was given. Please connect again.",
                )
            }
            e => token_error("code exchange", e),
        })?;
    let link = link_from(&token, None)?;
    let replaced = {
        let _guard = app.inner.locks.lock(&session_id).await;
        app.inner
            .sessions
            .replace_link(&session_id, &link)
            .await
            .map_err(store_down)?
    };
    tracing::info!("PhotoBook account linked");
    // A link made again ("Connect PhotoBook" once linked) replaces the old
    // one, whose tokens are revoked as on "Disconnect" (RFC 7009), not left
    // valid for the rest of their refresh family's life.
    if let Some(old) = replaced {
        revoke(&app, old).await;
    }
    // DEMO-CONTRACT: the dance ends on `/callback`, which shows the linked
    // user's photos (as `/photos` does, with the link just stored). A
    // reload finds its `state` taken and says the sign-in does not match.
    photos(State(app), headers).await
}

/// RFC 9207 §2.4: an authorization response's `iss` must be the provider's
/// issuer, and must be there if the provider's metadata promises it. What the
/// callback carried is logged escaped (`?`): it is anyone's text.
fn check_iss(iss: Option<&str>, metadata: &provider::Metadata) -> Result<(), ErrorPage> {
    match iss {
        Some(iss) if iss != metadata.issuer => {
            tracing::warn!(?iss, expected = ?metadata.issuer, "callback with wrong iss");
            Err(wrong_issuer())
        }
        None if metadata.authorization_response_iss_parameter_supported => {
            tracing::warn!("callback without iss although the provider promises it");
            Err(wrong_issuer())
        }
        _ => Ok(()),
    }
}

fn wrong_issuer() -> ErrorPage {
    ErrorPage::new(
        StatusCode::BAD_REQUEST,
        "This answer did not come from PhotoBook",
        "The sign-in answer names a different server than the PhotoBook PrintShop asked. \
         For your safety it was ignored and nothing was linked.",
    )
}

/// The page for an error answer from the authorization endpoint. Both values
/// come from the callback's query (anyone's text): they are logged escaped.
fn authorization_error(error: &str, description: Option<&str>) -> ErrorPage {
    tracing::info!(?error, ?description, "authorization refused");
    match error {
        "access_denied" => ErrorPage::new(
            StatusCode::FORBIDDEN,
            "You declined access",
            "You chose not to let PrintShop see your PhotoBook photos, so nothing was shared. \
             You can connect again whenever you like.",
        ),
        "temporarily_unavailable" | "server_error" => ErrorPage::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PhotoBook is having trouble",
            "PhotoBook could not complete the sign-in right now. Please try again in a moment.",
        ),
        "invalid_scope" => ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "PhotoBook refused the request",
            "PhotoBook does not allow PrintShop to ask for these permissions.",
        ),
        other => {
            let detail = match description {
                Some(d) => format!(" (error {other}: {d})"),
                None => format!(" (error {other})"),
            };
            ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "PhotoBook could not complete the sign-in",
                format!("PhotoBook refused to link your account{detail}."),
            )
        }
    }
}

type TokenError = RequestTokenError<
    oauth2::HttpClientError<reqwest::Error>,
    oauth2::StandardErrorResponse<BasicErrorResponseType>,
>;

/// The page for a failed token request.
fn token_error(what: &str, error: TokenError) -> ErrorPage {
    match error {
        RequestTokenError::ServerResponse(response) => {
            tracing::warn!(what, error = ?response.error().to_string(), description = ?response.error_description(), "token endpoint refused");
            match response.error() {
                BasicErrorResponseType::InvalidGrant => relink(
                    "PhotoBook no longer accepts this sign-in (it expired or was already used). Please connect again.",
                ),
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => ErrorPage::new(
                    StatusCode::BAD_GATEWAY,
                    "PrintShop is not recognised by PhotoBook",
                    "PhotoBook did not accept PrintShop's credentials. This is our fault; please try again later.",
                ),
                _ => ErrorPage::new(
                    StatusCode::BAD_GATEWAY,
                    "PhotoBook could not complete the sign-in",
                    "PhotoBook refused to issue access for PrintShop. Please try again later.",
                ),
            }
        }
        RequestTokenError::Request(e) => {
            tracing::warn!(what, error = %e, "token request failed");
            ErrorPage::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PhotoBook is not reachable",
                "PrintShop could not reach PhotoBook to finish the sign-in. Please try again in a moment.",
            )
        }
        RequestTokenError::Parse(e, _) => {
            tracing::warn!(what, error = %e, "token response unreadable");
            bad_gateway()
        }
        RequestTokenError::Other(e) => {
            tracing::warn!(what, error = %e, "token request failed");
            bad_gateway()
        }
    }
}

fn bad_gateway() -> ErrorPage {
    ErrorPage::new(
        StatusCode::BAD_GATEWAY,
        "PhotoBook sent an unexpected answer",
        "PrintShop did not understand PhotoBook's answer. Please try again later.",
    )
}

/// Turns a token response into a [`Link`], keeping `previous_refresh` when the
/// provider did not send a new refresh token.
fn link_from(
    token: &BasicTokenResponse,
    previous_refresh: Option<oauth2::RefreshToken>,
) -> Result<Link, ErrorPage> {
    // The oauth2 crate matches "bearer" case-sensitively; RFC 6749 §5.1 says case-insensitive.
    if !token.token_type().as_ref().eq_ignore_ascii_case("bearer") {
        tracing::warn!(token_type = ?token.token_type().as_ref(), "unsupported token type");
        return Err(bad_gateway());
    }
    Ok(Link {
        access: token.access_token().clone(),
        refresh: token.refresh_token().cloned().or(previous_refresh),
        expires_at: token
            .expires_in()
            .and_then(|d| SystemTime::now().checked_add(d)),
    })
}

/// Forgets session `id`'s link (its tokens are dead).
async fn forget_link(app: &App, id: &str) {
    if let Err(e) = app.inner.sessions.take_link(id).await {
        tracing::warn!(error = %e, "could not forget a dead link");
    }
}

/// Uses the refresh token to get a new access token (and, with rotation, a
/// new refresh token), stores the new link and returns it.
async fn refresh(app: &App, provider: &Provider, id: &str, link: &Link) -> Result<Link, ErrorPage> {
    let Some(refresh_token) = link.refresh.clone() else {
        forget_link(app, id).await;
        return Err(relink(
            "Your PhotoBook access has expired. Please connect again.",
        ));
    };
    match provider
        .client
        .exchange_refresh_token(&refresh_token)
        .request_async(&app.inner.http)
        .await
    {
        Ok(token) => {
            let link = link_from(&token, Some(refresh_token))?;
            app.inner
                .sessions
                .set_link(id, &link)
                .await
                .map_err(store_down)?;
            tracing::info!("access token refreshed");
            Ok(link)
        }
        Err(error) => {
            let server_said_no = matches!(error, RequestTokenError::ServerResponse(_));
            let page = token_error("refresh", error);
            if server_said_no {
                // The refresh token is dead (expired, revoked, or its family revoked).
                forget_link(app, id).await;
                return Err(relink(
                    "PhotoBook no longer accepts PrintShop's access (it expired or was revoked). Please connect again.",
                ));
            }
            Err(page)
        }
    }
}

/// `GET /photos`: the linked user's photos.
async fn photos(State(app): State<App>, headers: HeaderMap) -> Result<Response, ErrorPage> {
    let Some(id) = app.find_session(&headers).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    // One request per session at a time in this process: a refresh must not race another.
    let _guard = app.inner.locks.lock(&id).await;
    let Some(mut link) = app.inner.sessions.link(&id).await.map_err(store_down)? else {
        return Ok(Redirect::to("/").into_response());
    };
    let provider = app.provider().await?;
    let mut refreshed = false;
    if link.is_expired(SystemTime::now()) {
        link = refresh(&app, &provider, &id, &link).await?;
        refreshed = true;
    }
    loop {
        match provider::fetch_photos(&app.inner.http, &provider, &link.access).await {
            Ok(api) => {
                let views: Vec<PhotoView> = api
                    .photos
                    .into_iter()
                    .map(|p| PhotoView {
                        id: match p.id {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        },
                        title: p.title,
                    })
                    .collect();
                return Ok(html::photos(&api.owner, &views).into_response());
            }
            Err(ApiError::Unauthorized) if !refreshed => {
                link = refresh(&app, &provider, &id, &link).await?;
                refreshed = true;
            }
            Err(ApiError::Unauthorized) => {
                forget_link(&app, &id).await;
                return Err(relink(
                    "PhotoBook no longer accepts PrintShop's access. Please connect again.",
                ));
            }
            Err(ApiError::Forbidden) => {
                return Err(ErrorPage::new(
                    StatusCode::FORBIDDEN,
                    "PrintShop may not see your photos",
                    "The access you granted does not include reading your photos. Connect again and allow photo access.",
                ));
            }
            Err(ApiError::Other(e)) => {
                tracing::warn!(error = %e, "photos API failed");
                return Err(ErrorPage::new(
                    StatusCode::BAD_GATEWAY,
                    "Your photos could not be loaded",
                    "PhotoBook did not hand over your photos just now. Please try again in a moment.",
                )
                .without_connect());
            }
        }
    }
}

/// `POST /disconnect`: revoke and forget the link.
async fn disconnect(State(app): State<App>, headers: HeaderMap) -> Result<Response, ErrorPage> {
    if let Some(id) = app.find_session(&headers).await? {
        let _guard = app.inner.locks.lock(&id).await;
        if let Some(link) = app
            .inner
            .sessions
            .take_link(&id)
            .await
            .map_err(store_down)?
        {
            revoke(&app, link).await;
        }
    }
    Ok(Redirect::to("/").into_response())
}

/// Best-effort RFC 7009 revocation of a link's tokens.
async fn revoke(app: &App, link: Link) {
    let Ok(provider) = app.provider().await else {
        return;
    };
    let Some(url) = provider.revocation_url.as_ref() else {
        tracing::info!("provider has no revocation endpoint; link forgotten");
        return;
    };
    // Revoking the refresh token also ends its access tokens (RFC 7009 §2.1).
    let (token, hint) = match &link.refresh {
        Some(refresh) => (refresh.secret().as_str(), "refresh_token"),
        None => (link.access.secret().as_str(), "access_token"),
    };
    match provider::revoke(&app.inner.http, app.config(), url, token, hint).await {
        Ok(()) => tracing::info!("PhotoBook link revoked"),
        Err(e) => tracing::warn!(error = %e, "revocation failed"),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_rejects_duplicates_and_ignores_empty() {
        let params = parse_query("code=abc&state=xyz&iss=http%3A%2F%2Fa&error=").expect("valid");
        assert_eq!(params.get("code").map(String::as_str), Some("abc"));
        assert_eq!(params.get("iss").map(String::as_str), Some("http://a"));
        assert!(!params.contains_key("error"));
        assert!(parse_query("state=a&state=b").is_err());
    }

    /// Logs written while the guard lives (this thread only).
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(
                self.0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
            )
            .expect("UTF-8 logs")
        }
    }

    /// Issue 11, defect 4: what the callback's query carries (`error`,
    /// `error_description`, `iss`: anyone can send the browser there with
    /// any of them) is logged escaped, so it cannot forge a log line.
    #[test]
    fn callback_values_are_logged_escaped() {
        let (logs, _guard) = capture();
        let forged = "x\n2026-01-01T00:00:00Z  INFO printshop: PhotoBook account linked";
        authorization_error(forged, Some("d\r\nINFO forged"));
        let metadata: provider::Metadata = serde_json::from_value(serde_json::json!({
            "issuer": "http://127.0.0.1:9000",
            "authorization_endpoint": "http://127.0.0.1:9000/authorize",
            "token_endpoint": "http://127.0.0.1:9000/token",
            "authorization_response_iss_parameter_supported": true,
        }))
        .expect("metadata");
        assert!(check_iss(Some(forged), &metadata).is_err());
        assert!(check_iss(None, &metadata).is_err());
        assert!(check_iss(Some("http://127.0.0.1:9000"), &metadata).is_ok());
        let text = logs.text();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            !text
                .lines()
                .any(|l| l.contains("account linked") && !l.contains("\\n")),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("INFO forged")),
            "{text}"
        );
        assert!(text.contains("x\\n2026"), "{text}");
    }

    /// The provider's token response is anyone's text too.
    #[test]
    fn token_response_values_are_logged_escaped() {
        let (logs, _guard) = capture();
        let token = BasicTokenResponse::new(
            oauth2::AccessToken::new("tsa_x".into()),
            oauth2::basic::BasicTokenType::Extension("evil\nINFO forged".into()),
            oauth2::EmptyExtraTokenFields {},
        );
        assert!(link_from(&token, None).is_err());
        let text = logs.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("evil\\nINFO forged"), "{text}");
    }

    #[test]
    fn access_denied_is_friendly() {
        let page = authorization_error("access_denied", None);
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(page.title, "You declined access");
    }
}
