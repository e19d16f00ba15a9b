//! # photo-provider: PhotoBook on axum
//!
//! The demo's provider (DEMO-CONTRACT.md) as an axum app: the pages and the
//! login/consent dance come from the framework-neutral [`photobook`] crate,
//! the OAuth endpoints and the bearer check from `tessera-axum`.
//!
//! | route | what |
//! |---|---|
//! | `GET /authorize` | login page, consent page, `303` to the client, or an error page (400) |
//! | `POST /login` | form `csrf_token`, `handle`, `username`, `password` |
//! | `POST /consent` | form `csrf_token`, `handle`, `decision` = `allow` / `deny` |
//! | `GET /device` | the device verification page (RFC 8628 §3.3): one form, input `user_code` (prefilled from `?user_code=`) |
//! | `POST /device` | form `csrf_token`, `user_code`: the login page, or the consent page if signed in |
//! | `POST /device/login` | form `csrf_token`, `user_code`, `username`, `password` |
//! | `POST /device/consent` | form `csrf_token`, `user_code`, `decision` = `allow` / `deny` |
//! | `GET /api/photos` | bearer token with `photos.read`: `{"owner", "photos": [{"id", "title", "owner"}]}` |
//! | `POST`/`GET /mcp` | the MCP server ([`mcp`]): Streamable HTTP, tool `list_photos`, bearer token with `photos.read` |
//! | `GET /.well-known/oauth-protected-resource/mcp` | its protected resource metadata (RFC 9728) |
//! | `GET /.well-known/oauth-authorization-server`, `/token`, `/revoke`, `/introspect`, `/device_authorization` | `tessera_axum::router` |
//! | `GET /` | a short page about the provider |
//!
//! (all below the issuer's path, if it has one). Form bodies are capped at
//! 64 KiB (`413`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod connections;
pub mod mcp;

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRef, FromRequest, RawQuery, Request, State,
};
use axum::http::header::{CACHE_CONTROL, CONNECTION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use photobook::logsafe::escape;
use photobook::photos::{PHOTOS_READ, photos_for};
use photobook::{Args, Demo, StartError};
use tessera::Server;
use tessera_axum::{AuthorizationQuery, Bearer, BearerRejection, respond};
use tokio::net::TcpListener;

/// The MCP how-to (`MCP.md`), compiled as a doc test so it cannot drift
/// from the API.
#[cfg(doctest)]
#[doc = include_str!("../MCP.md")]
pub struct McpHowTo;

/// The app's state: the demo and its Tessera server (for the bearer extractor).
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    /// The demo.
    pub demo: Demo,
    /// The demo's server.
    pub oauth: Server,
}

/// The path prefix of the issuer (`""` for `http://127.0.0.1:9000`).
fn issuer_prefix(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The whole provider as a router, ready for [`axum::serve()`]. Serve it
/// with `into_make_service_with_connect_info::<SocketAddr>()`, as [`run`]
/// does: the device page counts wrong user codes of a browser not signed in
/// by the connection's address, and without it by the browser's cookie,
/// which anyone can renew (RFC 8628 §5.1).
pub fn app(demo: Demo) -> Router {
    let server = demo.server().clone();
    let config = server.config();
    let prefix = issuer_prefix(&config.issuer);
    let authorize = server.authorization_path().to_owned();
    // The forms post relative to the authorization endpoint (`action="login"`).
    let base = authorize
        .rsplit_once('/')
        .map(|(base, _)| base.to_owned())
        .unwrap_or_default();
    let home = if prefix.is_empty() {
        "/".to_owned()
    } else {
        prefix.clone()
    };
    let pages = Router::new()
        .route(&authorize, get(authorize_page))
        .route(&format!("{base}/login"), post(login))
        .route(&format!("{base}/consent"), post(consent))
        .route(&home, get(home_page));
    // The device verification page (RFC 8628 §3.3) and its forms.
    let pages = if server.device_grant_enabled() {
        let device = demo.device_path().to_owned();
        pages
            .route(&device, get(device_page).post(device_submit))
            .route(&demo.device_login_path(), post(device_login))
            .route(&demo.device_consent_path(), post(device_consent))
    } else {
        pages
    };
    let pages = pages.layer(DefaultBodyLimit::max(config.max_body_bytes));
    let api = Router::new().route(&format!("{prefix}/api/photos"), get(photos));
    let state = AppState {
        demo,
        oauth: server.clone(),
    };
    Router::new()
        .merge(pages)
        .merge(api)
        .fallback(not_found)
        .with_state(state)
        .merge(mcp::router(&server))
        .merge(tessera_axum::router(server))
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    photobook::session::cookie_value(
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

async fn authorize_page(
    State(demo): State<Demo>,
    headers: HeaderMap,
    AuthorizationQuery(query): AuthorizationQuery,
) -> Response {
    respond(demo.authorize(&query, session_cookie(&headers)).await)
}

/// A page form's body: within the body limit (413 page beyond), and
/// arrived within `tessera::BODY_READ_TIMEOUT`, as at the adapter's own
/// endpoints: a body trickled a byte at a time cannot hold its connection
/// and task (408 page, connection closed).
struct FormBody(Bytes);

impl<S> FromRequest<S> for FormBody
where
    Demo: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let read = Bytes::from_request(req, state);
        match tokio::time::timeout(tessera::BODY_READ_TIMEOUT, read).await {
            Ok(Ok(body)) => Ok(Self(body)),
            Ok(Err(rejection)) => Err(form_rejection(&Demo::from_ref(state), &rejection)),
            Err(_) => {
                let mut response = respond(Demo::from_ref(state).problem_page(
                    408,
                    "This form took too long to arrive",
                    "Go back to the app and try again.",
                ));
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                Err(response)
            }
        }
    }
}

fn form_rejection(demo: &Demo, rejection: &BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        respond(demo.too_large())
    } else {
        respond(demo.problem_page(
            400,
            "This form could not be read",
            "Go back to the app and try again.",
        ))
    }
}

async fn login(State(demo): State<Demo>, headers: HeaderMap, FormBody(body): FormBody) -> Response {
    respond(demo.login(&body, session_cookie(&headers)).await)
}

async fn consent(
    State(demo): State<Demo>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    respond(demo.consent(&body, session_cookie(&headers)).await)
}

async fn device_page(
    State(demo): State<Demo>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(demo.device_page(query.as_deref().unwrap_or(""), session_cookie(&headers)))
}

async fn device_submit(
    State(demo): State<Demo>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    // Wrong codes from a browser not signed in count against its address
    // (RFC 8628 §5.1): a fresh cookie is free, a fresh address is not.
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    respond(
        demo.device_submit_from(&body, session_cookie(&headers), peer)
            .await,
    )
}

async fn device_login(
    State(demo): State<Demo>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    respond(demo.device_login(&body, session_cookie(&headers)).await)
}

async fn device_consent(
    State(demo): State<Demo>,
    headers: HeaderMap,
    FormBody(body): FormBody,
) -> Response {
    respond(demo.device_consent(&body, session_cookie(&headers)).await)
}

async fn photos(token: Result<Bearer, BearerRejection>) -> Result<Response, BearerRejection> {
    // A `401` names the scope this route requires (RFC 6750 §3), not
    // every scope the photo API declares. (`require_scope` does the same
    // as a layer; the extractor alone costs less per request.)
    let token = token.map_err(|r| r.with_scope_hint(Some(PHOTOS_READ.to_owned())))?;
    token.require(&[PHOTOS_READ])?;
    tracing::info!(
        principal = %escape(token.principal()),
        client = %escape(token.client_id.as_str()),
        "photos listed"
    );
    Ok(([(CACHE_CONTROL, "no-store")], Json(photos_for(&token))).into_response())
}

async fn home_page(State(demo): State<Demo>) -> Response {
    respond(demo.home())
}

async fn not_found(State(demo): State<Demo>) -> Response {
    respond(demo.not_found())
}

/// Why the provider stopped: one line, fit for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The store or the server could not be set up.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(io::Error),
}

/// Binds `--listen`, opens `--store`, prints the one start-up line (with the
/// issuer) on stdout, and serves until Ctrl-C or SIGTERM (then open
/// connections get [`demo_cli::shutdown::SHUTDOWN_GRACE`] to finish).
pub async fn run(args: Args) -> Result<(), RunError> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: args.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| RunError::Bind {
        addr: args.listen,
        source,
    })?;
    let issuer = args.issuer_for(local);
    let demo = Demo::start_for(&args, &issuer).await?;
    let max_connections =
        photobook::connections::max_connections(photobook::connections::raise_open_file_limit());
    // Listened for before the start is announced (and not before: Ctrl-C
    // while the stores open still ends the process at once).
    let stop = demo_cli::shutdown::signal();
    tracing::info!(listen = %local, issuer = %issuer, store = %args.store, max_connections, "PhotoBook provider started");
    println!("photo-provider: PhotoBook listening on {local}, issuer {issuer}");
    // `tap_io` gives the bounded listener axum's `ConnectInfo<SocketAddr>`.
    // One network holds at most a quarter of the table.
    let listener = connections::Bounded::new(listener, max_connections)
        .with_network_max(max_connections / 4)
        .tap_io(|_| {});
    let app = app(demo).into_make_service_with_connect_info::<SocketAddr>();
    demo_cli::shutdown::serve_until(
        |stop| {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .into_future()
        },
        stop,
        demo_cli::shutdown::SHUTDOWN_GRACE,
    )
    .await
    .map_err(RunError::Serve)
}
