//! # photo-provider-rocket: PhotoBook on rocket
//!
//! The demo's provider (DEMO-CONTRACT.md) as a rocket app, the same provider
//! as `photo-provider` (axum): the pages and the login/consent dance come
//! from the framework-neutral [`photobook`] crate, the OAuth endpoints and
//! the bearer check from `tessera-rocket`. This crate only routes.
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
//! | `POST /mcp` (and `GET`, `DELETE`) | the MCP server (Streamable HTTP), bearer token for `{issuer}/mcp` with `photos.read`: `photobook::mcp`, as on the axum provider |
//! | `GET /.well-known/oauth-authorization-server`, `/token`, `/revoke`, `/introspect`, `/device_authorization` | `tessera_rocket::fairing` |
//! | `GET /` | a short page about the provider |
//!
//! (all below the issuer's path, if it has one). Form bodies are capped at
//! 64 KiB (`413`). Other methods on these paths get `405` with `Allow`, and
//! unknown paths PhotoBook's 404 page, as from the axum provider.
//!
//! Rocket is configured from code ([`rocket_config`]): no `Rocket.toml`, no
//! `ROCKET_*` variables, no `Server` header, no colours, and rocket's own
//! log quiet (the provider logs through `tracing`, `RUST_LOG`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::net::SocketAddr;

use photobook::logsafe::escape;
use photobook::photos::{PHOTOS_READ, photos_for};
use photobook::{Args, Demo, StartError};
use rocket::config::{Ident, LogLevel};
use rocket::data::{ByteUnit, Data, FromData, Limits};
use rocket::fairing::AdHoc;
use rocket::http::{Method, Status};
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::route::{self, Handler, Route};
use rocket::shield::Shield;
use rocket::{Build, Rocket, State, catch, catchers, get, post, routes};
use tessera::HttpResponse;
use tessera_rocket::{RequiredScopes, Scoped, TesseraResponse};

/// Undoes rocket's `_method` override on every path
/// ([`tessera_rocket::undo_method_override`]): none of the demo's routes
/// takes it, and the axum provider answers the POST that was sent.
struct PostStaysPost;

#[rocket::async_trait]
impl rocket::fairing::Fairing for PostStaysPost {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "POST stays POST",
            kind: rocket::fairing::Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, data: &mut Data<'_>) {
        tessera_rocket::undo_method_override(req, data).await;
    }
}

/// Rocket's configuration for listening on `listen`, from code only.
pub fn rocket_config(listen: SocketAddr) -> rocket::Config {
    rocket::Config {
        address: listen.ip(),
        port: listen.port(),
        log_level: LogLevel::Off,
        cli_colors: false,
        ident: Ident::none(),
        // The pages read their own bodies (see `FormBody`); this keeps any
        // rocket form guard at the same 64 KiB as everything else.
        limits: Limits::default().limit("form", ByteUnit::Kibibyte(64)),
        ..rocket::Config::release_default()
    }
}

/// The issuer's path is not one rocket can mount routes at.
#[derive(Debug, thiserror::Error)]
#[error("the issuer's path {0:?} cannot be served (use letters, digits and `-._~!$&'()*+,;=:@/`)")]
pub struct UnservablePath(String);

/// A path rocket mounts as it is: `/`, then no parameter syntax or escapes.
fn static_path(path: &str) -> Result<&str, UnservablePath> {
    let plain = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>?#%\\\"{}|^`[]".contains(&b));
    if plain {
        Ok(path)
    } else {
        Err(UnservablePath(path.to_owned()))
    }
}

/// The path prefix of the issuer (`""` for `http://127.0.0.1:9000`).
fn issuer_prefix(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The whole provider as a rocket, ready to launch with `config` (see
/// [`rocket_config`]).
pub fn app(demo: Demo, config: rocket::Config) -> Result<Rocket<Build>, UnservablePath> {
    let server = demo.server().clone();
    let prefix = issuer_prefix(&server.config().issuer);
    let authorize = server.authorization_path().to_owned();
    // The forms post relative to the authorization endpoint (`action="login"`).
    let base = authorize
        .rsplit_once('/')
        .map(|(base, _)| base.to_owned())
        .unwrap_or_default();
    let root = if prefix.is_empty() { "/" } else { &prefix };
    let prefix_base = static_path(root)?;
    let pages_base = if base.is_empty() { "/" } else { &base };
    let (authorize, root, pages_base) = (
        static_path(&authorize)?,
        static_path(root)?,
        static_path(pages_base)?,
    );
    let login = format!("{}/login", base);
    let consent = format!("{}/consent", base);
    let api = format!("{prefix}/api/photos");
    let mcp = format!("{prefix}{}", photobook::MCP_PATH);
    // Every other method on a page's path: `405` with `Allow`, as axum's
    // method routers answer.
    let mut not_allowed = Vec::new();
    for (path, allow) in [
        (authorize, "GET,HEAD"),
        (root, "GET,HEAD"),
        (api.as_str(), "GET,HEAD"),
        (login.as_str(), "POST"),
        (consent.as_str(), "POST"),
    ] {
        not_allowed.extend(MethodNotAllowed::routes(static_path(path)?, allow));
    }
    not_allowed.extend(McpOtherMethod::routes(static_path(&mcp)?));
    // The device verification page (RFC 8628 §3.3) and its forms.
    let mut device_routes = Vec::new();
    if server.device_grant_enabled() {
        let device = demo.device_path().to_owned();
        let (device_login, device_consent) = (demo.device_login_path(), demo.device_consent_path());
        for (page, method, path) in [
            (DevicePage::Verify, Method::Get, device.as_str()),
            (DevicePage::Submit, Method::Post, device.as_str()),
            (DevicePage::Login, Method::Post, device_login.as_str()),
            (DevicePage::Consent, Method::Post, device_consent.as_str()),
        ] {
            device_routes.push(page.route(method, static_path(path)?));
        }
        for (path, allow) in [
            (device.as_str(), "GET,HEAD,POST"),
            (device_login.as_str(), "POST"),
            (device_consent.as_str(), "POST"),
        ] {
            not_allowed.extend(MethodNotAllowed::routes(static_path(path)?, allow));
        }
    }
    Ok(rocket::custom(config)
        // No default security headers: the pages carry their own, and the
        // JSON answers are exactly the core's.
        .attach(Shield::new())
        .attach(tessera_rocket::fairing(server))
        // The demo's own pages take no `_method` either: a form POST stays
        // a POST on every path, as the axum provider answers it.
        .attach(PostStaysPost)
        .manage(demo)
        .mount(
            "/",
            vec![Page::Authorize.route(authorize), Page::Home.route(root)],
        )
        .mount(pages_base, routes![login_form, consent_form])
        .mount("/", device_routes)
        .mount(prefix_base, routes![photos, mcp_post, mcp_get, mcp_delete])
        .mount("/", not_allowed)
        .register("/", catchers![not_found, any_error]))
}

/// The value of the `photobook_session` cookie, if sent.
struct SessionCookie(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionCookie {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let cookie = photobook::session::cookie_value(req.headers().get("Cookie"));
        Outcome::Success(Self(cookie.map(str::to_owned)))
    }
}

impl SessionCookie {
    fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A page's form body, read whole up to the server's `max_body_bytes`
/// (64 KiB) within `tessera::BODY_READ_TIMEOUT` (a trickled body cannot
/// hold its connection), as at the adapter's endpoints. Never fails: the
/// route answers the problem with a page.
enum FormBody {
    Read(Vec<u8>),
    TooLarge,
    Unreadable,
    TimedOut,
}

#[rocket::async_trait]
impl<'r> FromData<'r> for FormBody {
    type Error = std::convert::Infallible;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> rocket::data::Outcome<'r, Self> {
        let limit = req
            .rocket()
            .state::<Demo>()
            .map_or(64 * 1024, |demo| demo.server().config().max_body_bytes);
        let announced = req
            .headers()
            .get_one("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Outcome::Success(Self::TooLarge);
        }
        let read = data.open(ByteUnit::from(limit)).into_bytes();
        Outcome::Success(
            match rocket::tokio::time::timeout(tessera::BODY_READ_TIMEOUT, read).await {
                Ok(Ok(body)) if body.is_complete() => Self::Read(body.into_inner()),
                Ok(Ok(_)) => Self::TooLarge,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "could not read a form body");
                    Self::Unreadable
                }
                Err(_) => Self::TimedOut,
            },
        )
    }
}

impl FormBody {
    /// The body, or the page answering why there is none.
    fn bytes(&self, demo: &Demo) -> Result<&[u8], TesseraResponse> {
        match self {
            Self::Read(body) => Ok(body),
            Self::TooLarge => Err(demo.too_large().into()),
            Self::Unreadable => Err(demo
                .problem_page(
                    400,
                    "This form could not be read",
                    "Go back to the app and try again.",
                )
                .into()),
            Self::TimedOut => {
                let mut page = demo.problem_page(
                    408,
                    "This form took too long to arrive",
                    "Go back to the app and try again.",
                );
                page.headers.push(("connection", "close".into()));
                Err(page.into())
            }
        }
    }
}

/// Rocket routes `/login/` and `//login` to `/login` too; axum (and so
/// the contract's provider) does not. A route taking this guard first
/// forwards anything but its exact path, which then gets the 404 page.
struct ExactPath;

fn is_exact(req: &Request<'_>, path: &str) -> bool {
    req.uri().path().as_str() == path
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ExactPath {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        match req.route() {
            Some(route) if is_exact(req, route.uri.path()) => Outcome::Success(Self),
            _ => Outcome::Forward(Status::NotFound),
        }
    }
}

/// The pages at paths known only at run time (they follow the issuer and
/// the server's configured authorization path).
#[derive(Debug, Clone, Copy)]
enum Page {
    /// `GET /authorize`: [`Demo::authorize`].
    Authorize,
    /// `GET /`: [`Demo::home`].
    Home,
}

#[derive(Clone)]
struct PageHandler {
    page: Page,
    path: std::sync::Arc<str>,
}

impl Page {
    fn route(self, path: &str) -> Route {
        let handler = PageHandler {
            page: self,
            path: path.into(),
        };
        let mut route = Route::new(Method::Get, path, handler);
        route.name = Some(format!("{self:?}").into());
        route
    }
}

#[rocket::async_trait]
impl Handler for PageHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        let demo = match req.rocket().state::<Demo>() {
            Some(demo) if is_exact(req, &self.path) => demo,
            _ => return route::Outcome::forward(data, Status::NotFound),
        };
        let response = match self.page {
            Page::Authorize => {
                let query = req.uri().query().map_or("", |q| q.as_str());
                let cookie = photobook::session::cookie_value(req.headers().get("Cookie"));
                demo.authorize(query, cookie).await
            }
            Page::Home => demo.home(),
        };
        route::Outcome::from(req, TesseraResponse(response))
    }
}

/// The device verification page and its forms, at paths known only at run
/// time ([`Demo::device_path`]).
#[derive(Debug, Clone, Copy)]
enum DevicePage {
    /// `GET {device}`: [`Demo::device_page`].
    Verify,
    /// `POST {device}`: [`Demo::device_submit`].
    Submit,
    /// `POST {device}/login`: [`Demo::device_login`].
    Login,
    /// `POST {device}/consent`: [`Demo::device_consent`].
    Consent,
}

#[derive(Clone)]
struct DeviceHandler {
    page: DevicePage,
    path: std::sync::Arc<str>,
}

impl DevicePage {
    fn route(self, method: Method, path: &str) -> Route {
        let handler = DeviceHandler {
            page: self,
            path: path.into(),
        };
        let mut route = Route::new(method, path, handler);
        route.name = Some(format!("device {self:?}").into());
        route
    }
}

#[rocket::async_trait]
impl Handler for DeviceHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        let demo = match req.rocket().state::<Demo>() {
            Some(demo) if is_exact(req, &self.path) => demo,
            _ => return route::Outcome::forward(data, Status::NotFound),
        };
        let cookie = photobook::session::cookie_value(req.headers().get("Cookie"));
        let response = if let DevicePage::Verify = self.page {
            let query = req.uri().query().map_or("", |q| q.as_str());
            demo.device_page(query, cookie)
        } else {
            let body = match FormBody::from_data(req, data).await {
                Outcome::Success(body) => body,
                _ => FormBody::Unreadable,
            };
            match body.bytes(demo) {
                Ok(body) => match self.page {
                    DevicePage::Login => demo.device_login(body, cookie).await,
                    DevicePage::Consent => demo.device_consent(body, cookie).await,
                    // The connection's address, never a header (RFC 8628
                    // §5.1: wrong codes of a browser not signed in count
                    // against it).
                    _ => {
                        let peer = req.remote().map(|addr| addr.ip());
                        demo.device_submit_from(body, cookie, peer).await
                    }
                },
                Err(page) => page.0,
            }
        };
        route::Outcome::from(req, TesseraResponse(response))
    }
}

#[post("/login", data = "<body>")]
async fn login_form(
    _exact: ExactPath,
    demo: &State<Demo>,
    cookie: SessionCookie,
    body: FormBody,
) -> TesseraResponse {
    match body.bytes(demo) {
        Ok(body) => demo.login(body, cookie.as_deref()).await.into(),
        Err(page) => page,
    }
}

#[post("/consent", data = "<body>")]
async fn consent_form(
    _exact: ExactPath,
    demo: &State<Demo>,
    cookie: SessionCookie,
    body: FormBody,
) -> TesseraResponse {
    match body.bytes(demo) {
        Ok(body) => demo.consent(body, cookie.as_deref()).await.into(),
        Err(page) => page,
    }
}

/// The scope `GET /api/photos` and `/mcp` need.
struct PhotosRead;

impl RequiredScopes for PhotosRead {
    const SCOPES: &'static [&'static str] = &[PHOTOS_READ];
}

#[get("/api/photos")]
fn photos(_exact: ExactPath, token: Scoped<PhotosRead>) -> TesseraResponse {
    tracing::info!(
        principal = %escape(token.principal()),
        client = %escape(token.client_id.as_str()),
        "photos listed"
    );
    let body = serde_json::to_vec(&photos_for(&token)).unwrap_or_default();
    TesseraResponse(HttpResponse {
        status: 200,
        headers: vec![
            ("content-type", "application/json".into()),
            ("cache-control", "no-store".into()),
        ],
        body,
    })
}

/// What `/mcp` passes on to the MCP service: the request's method, path
/// and query, and headers (rocket drops the ones that are not UTF-8).
struct McpRequest {
    method: &'static str,
    uri: String,
    headers: Vec<(String, String)>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for McpRequest {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        Outcome::Success(Self {
            method: req.method().as_str(),
            uri: req.uri().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|h| (h.name().as_str().to_owned(), h.value().to_owned()))
                .collect(),
        })
    }
}

/// `{issuer}/mcp` (DEMO-CONTRACT "MCP server"), as on the axum provider: the
/// bearer guard checks the token (audience `{issuer}/mcp`, scope
/// `photos.read`; its refusals name the resource's metadata, RFC 9728 §5.1),
/// then the shared MCP service answers (`photobook::mcp`); never cached.
async fn mcp(
    token: Scoped<PhotosRead>,
    request: McpRequest,
    body: Vec<u8>,
    demo: &Demo,
) -> TesseraResponse {
    let answer = photobook::mcp::call(
        demo.mcp(),
        request.method,
        &request.uri,
        &request.headers,
        body,
        token.token().clone(),
    )
    .await;
    McpResponse(answer).into()
}

#[post("/mcp", data = "<body>")]
async fn mcp_post(
    _exact: ExactPath,
    token: Scoped<PhotosRead>,
    request: McpRequest,
    body: FormBody,
    demo: &State<Demo>,
) -> TesseraResponse {
    // As on the axum provider: a body that never arrived whole is the MCP
    // endpoint's own answer, not a page.
    let problem = match body {
        FormBody::Read(body) => return mcp(token, request, body, demo).await,
        FormBody::TooLarge => {
            photobook::mcp::BodyProblem::TooLarge(demo.server().config().max_body_bytes)
        }
        FormBody::Unreadable => photobook::mcp::BodyProblem::Unreadable,
        FormBody::TimedOut => photobook::mcp::BodyProblem::TimedOut,
    };
    McpResponse(photobook::mcp::body_refusal(problem)).into()
}

#[get("/mcp")]
async fn mcp_get(
    _exact: ExactPath,
    token: Scoped<PhotosRead>,
    request: McpRequest,
    demo: &State<Demo>,
) -> TesseraResponse {
    mcp(token, request, Vec::new(), demo).await
}

#[rocket::delete("/mcp")]
async fn mcp_delete(
    _exact: ExactPath,
    token: Scoped<PhotosRead>,
    request: McpRequest,
    demo: &State<Demo>,
) -> TesseraResponse {
    mcp(token, request, Vec::new(), demo).await
}

/// An MCP answer as a rocket answer, with `Cache-Control: no-store`.
struct McpResponse(photobook::mcp::McpAnswer);

impl From<McpResponse> for TesseraResponse {
    fn from(McpResponse(answer): McpResponse) -> Self {
        let mut headers: Vec<(&'static str, std::borrow::Cow<'static, str>)> = answer
            .headers
            .into_iter()
            .filter_map(|(name, value)| Some((mcp_header(&name)?, value.into())))
            .collect();
        headers.push(("cache-control", "no-store".into()));
        TesseraResponse(HttpResponse {
            status: answer.status,
            headers,
            body: answer.body,
        })
    }
}

/// The headers an MCP answer may carry, by their static names (the answer
/// type names headers statically); others are not passed on.
fn mcp_header(name: &str) -> Option<&'static str> {
    [
        "content-type",
        "allow",
        "mcp-session-id",
        "mcp-protocol-version",
        "www-authenticate",
        "retry-after",
        "connection",
    ]
    .into_iter()
    .find(|known| known.eq_ignore_ascii_case(name))
}

#[catch(404)]
fn not_found(req: &Request<'_>) -> TesseraResponse {
    match req.rocket().state::<Demo>() {
        Some(demo) => demo.not_found().into(),
        None => TesseraResponse(HttpResponse {
            status: 404,
            headers: Vec::new(),
            body: Vec::new(),
        }),
    }
}

/// Anything else rocket itself refuses (e.g. a malformed request): the
/// status with an empty body, as hyper answers under axum.
#[catch(default)]
fn any_error(status: Status, _: &Request<'_>) -> TesseraResponse {
    TesseraResponse(HttpResponse {
        status: status.code,
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// `405 Method Not Allowed`, empty, with `Allow`.
#[derive(Clone)]
struct MethodNotAllowed(&'static str);

const METHODS: [Method; 9] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
    Method::Options,
    Method::Patch,
    Method::Trace,
    Method::Connect,
];

impl MethodNotAllowed {
    /// Routes for every method `allow` (`"GET,HEAD"` or `"POST"`) leaves out.
    fn routes(path: &str, allow: &'static str) -> Vec<Route> {
        other_methods(path, allow, "method not allowed", Self(allow))
    }
}

/// Routes to `handler` at `path` for every method `served` (`"GET,HEAD"`)
/// leaves out, ranked after the path's own routes.
fn other_methods(
    path: &str,
    served: &str,
    name: &'static str,
    handler: impl Handler + Clone,
) -> Vec<Route> {
    METHODS
        .into_iter()
        .filter(|m| !served.split(',').any(|a| a == m.as_str()))
        .map(|m| {
            let mut route = Route::ranked(100, m, path, handler.clone());
            route.name = Some(name.into());
            route
        })
        .collect()
}

/// Every method `/mcp` has no route of its own for (`PUT`, `PATCH`,
/// `OPTIONS`, `TRACE`, `CONNECT`) goes through the bearer guard to the MCP
/// service, as on the axum provider, whose guard runs before the service
/// whatever the method: `401` without a valid token, then the SDK's own
/// answer (`405` with `Allow: POST`, the one method it serves, or `403` for a
/// foreign `Origin`). A `405` of the provider's own would list methods the
/// service then refuses too (RFC 9110 §15.5.6: `Allow` names the methods
/// the resource supports).
#[derive(Clone)]
struct McpOtherMethod;

impl McpOtherMethod {
    fn routes(path: &str) -> Vec<Route> {
        other_methods(path, "GET,HEAD,POST,DELETE", "mcp, other methods", Self)
    }
}

#[rocket::async_trait]
impl Handler for McpOtherMethod {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        if !req.route().is_some_and(|r| is_exact(req, r.uri.path())) {
            return route::Outcome::forward(data, Status::NotFound);
        }
        let token = match req.guard::<Scoped<PhotosRead>>().await {
            Outcome::Success(token) => token,
            // The catcher answers with the guard's rejection, as for `POST`.
            Outcome::Error((status, _)) => return route::Outcome::Error(status),
            Outcome::Forward(status) => return route::Outcome::forward(data, status),
        };
        let (Outcome::Success(request), Some(demo)) = (
            req.guard::<McpRequest>().await,
            req.rocket().state::<Demo>(),
        ) else {
            return route::Outcome::Error(Status::InternalServerError);
        };
        route::Outcome::from(req, mcp(token, request, Vec::new(), demo).await)
    }
}

#[rocket::async_trait]
impl Handler for MethodNotAllowed {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        if !req.route().is_some_and(|r| is_exact(req, r.uri.path())) {
            return route::Outcome::forward(data, Status::NotFound);
        }
        let response = HttpResponse {
            status: 405,
            headers: vec![("allow", self.0.to_owned().into())],
            body: Vec::new(),
        };
        route::Outcome::from(req, TesseraResponse(response))
    }
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
    /// The issuer's path cannot be routed.
    #[error(transparent)]
    Path(#[from] UnservablePath),
    /// Rocket refused to launch or failed while serving.
    #[error("server error: {0}")]
    Serve(String),
}

impl RunError {
    fn from_rocket(error: rocket::Error, addr: SocketAddr) -> Self {
        // Looking at the kind marks the error handled (rocket panics on
        // dropping one that was not).
        match error.kind() {
            rocket::error::ErrorKind::Bind(e) => Self::Bind {
                addr,
                source: io::Error::new(e.kind(), e.to_string()),
            },
            kind => Self::Serve(kind.to_string().lines().next().unwrap_or("").to_owned()),
        }
    }
}

/// Binds `--listen`, opens `--store`, prints the one start-up line (with the
/// issuer) on stdout once rocket listens, and serves until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> Result<(), RunError> {
    // Bind first, as the axum provider does, for the same one-line error and
    // to learn the port of `--listen IP:0`; rocket 0.5 binds by itself, so
    // the probe is closed just before launch.
    let bind_error = |source| RunError::Bind {
        addr: args.listen,
        source,
    };
    let probe = std::net::TcpListener::bind(args.listen).map_err(bind_error)?;
    let local = probe.local_addr().map_err(bind_error)?;
    let issuer = args.issuer_for(local);
    let demo = Demo::start_for(&args, &issuer).await?;
    let store = args.store.to_string();
    // Rocket 0.5 serves its own listener, without a bound on connections
    // or a timeout on a request head: the raised open-file limit is the
    // defence here (photobook::connections; the manual's deployment notes).
    let open_files = photobook::connections::raise_open_file_limit();
    tracing::debug!(?open_files, "open-file limit");
    let rocket = app(demo, rocket_config(local))?.attach(AdHoc::on_liftoff(
        "start-up line",
        move |_| {
            Box::pin(async move {
                tracing::info!(listen = %local, issuer = %issuer, store = %store, "PhotoBook provider started");
                println!("photo-provider-rocket: PhotoBook listening on {local}, issuer {issuer}");
            })
        },
    ));
    drop(probe);
    match rocket.launch().await {
        Ok(_) => {
            tracing::info!("shut down");
            Ok(())
        }
        Err(e) => Err(RunError::from_rocket(e, local)),
    }
}
