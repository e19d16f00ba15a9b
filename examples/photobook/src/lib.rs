//! # PhotoBook: the demo provider, without a web framework
//!
//! Everything of the PhotoBook demo (DEMO-CONTRACT.md) that does not depend on
//! a web framework, shared by `photo-provider` (axum) and
//! `photo-provider-rocket`:
//!
//! - [`config::Args`]: the command line (`--listen`, `--issuer`, `--store`;
//!   its errors are one line through the `demo-cli` crate, as every demo
//!   program's);
//! - seeded data: [`users`] (alice, bob), [`clients`] (the four demo clients
//!   and the scope descriptions), [`photos`];
//! - [`store::open`]: the memory or Redis store, as `Arc<dyn tessera::Store>`;
//! - [`build_server`]: the `tessera::Server` of the demo;
//! - [`session`]: the `HttpOnly`, `SameSite=Lax` cookie named
//!   `photobook_session`: before sign-in nothing is stored (the login form's
//!   CSRF token is a MAC binding the cookie to the request's handle); after
//!   it, a bounded server-side session with a CSRF token and the
//!   pending-request handles it was shown (the forms accept no other);
//! - login throttling: 5 wrong passwords per account per 15 minutes, then
//!   `429` with `Retry-After` (RFC 6749 §10.10), through the core's abuse
//!   hook ([`tessera::Server::check_limit`]);
//! - [`logsafe`]: what requests carry is escaped before it is logged, and a
//!   failed sign-in's username is never logged as typed;
//! - [`pages`]: the login, consent and error pages (minijinja, auto-escaped);
//! - [`device`]: the device verification page (RFC 8628 §3.3), then the
//!   same login and consent pages;
//! - [`flow`]: the login/consent dance as methods of [`Demo`] that take the
//!   request's query or form body and the session cookie, and answer a
//!   [`tessera::HttpResponse`] to copy into the framework's response.
//!
//! An adapter binary then only routes:
//!
//! | route | call |
//! |---|---|
//! | `GET /authorize` | [`Demo::authorize`]`(raw_query, cookie)` |
//! | `POST /login` | [`Demo::login`]`(body, cookie)` (64 KiB body limit) |
//! | `POST /consent` | [`Demo::consent`]`(body, cookie)` (64 KiB body limit) |
//! | `GET {device}` | [`Demo::device_page`]`(raw_query, cookie)`: the device verification page |
//! | `POST {device}` | [`Demo::device_submit`]`(body, cookie)` (64 KiB body limit) |
//! | `POST {device}/login` | [`Demo::device_login`]`(body, cookie)` (64 KiB body limit) |
//! | `POST {device}/consent` | [`Demo::device_consent`]`(body, cookie)` (64 KiB body limit) |
//! | `GET /api/photos` | bearer check with `photos.read`, then [`photos::photos_for`] (or [`Demo::photos_response`]) |
//! | `GET /` | [`Demo::home`] |
//! | metadata, `/token`, `/revoke`, `/introspect`, `/device_authorization` | the Tessera adapter's router over [`Demo::server`] |
//!
//! where `{device}` is [`Demo::device_path`] (the server's
//! [`tessera::Server::device_verification_path`], `/device` by default), and `cookie` is the value of the [`session::COOKIE_NAME`] cookie
//! ([`session::cookie_value`] finds it in `Cookie` headers).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod assertions;
pub mod client_metadata;
pub mod clients;
pub mod config;
pub mod connections;
pub mod device;
pub mod flow;
pub mod logging;
pub mod logsafe;
pub mod mcp;
pub mod pages;
pub mod photos;
pub mod session;
pub mod store;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use tessera::{
    BuildError, Clock, ProtectedResource, ResourceIndicator, Scope, Server, ServerBuilder, Store,
    SystemClock,
};

pub use config::{Args, StoreSpec};
pub use flow::{ConsentForm, LoginForm};

use logsafe::AccountTag;
use pages::Pages;
use session::Sessions;
use users::Users;

/// The most dynamically registered clients the demo keeps (RFC 7591).
pub const MAX_REGISTERED_CLIENTS: usize = 1_000;

/// The `WWW-Authenticate` realm of the demo.
pub const REALM: &str = "photobook";

/// The demo's authorization server over `store`, with the demo scopes and
/// the device authorization grant (RFC 8628).
pub fn build_server(issuer: &str, store: Arc<dyn Store>) -> Result<Server, BuildError> {
    server_builder(issuer, store).build()
}

/// The builder of [`build_server`], for tests that set more (e.g. a
/// [`tessera::FixedClock`], then [`Demo::with_clock`] with the same clock).
///
/// Resources (RFC 8707, DEMO-CONTRACT "Resource indicators"): `{issuer}/api`
/// (the photo API, the default for requests without `resource`, declared
/// as a protected resource with its RFC 9728 metadata at
/// `{issuer}/.well-known/oauth-protected-resource/api`) and `{issuer}/mcp`
/// (the MCP server).
pub fn server_builder(issuer: &str, store: Arc<dyn Store>) -> ServerBuilder {
    let mut builder = Server::builder()
        .issuer(issuer)
        .shared_store(store)
        .realm(REALM)
        .enable_device_grant()
        // DEMO-CONTRACT "Dynamic client registration": open (no initial
        // access token), authorization_code and refresh_token only, bounded
        // by rate (the abuse hook), count and expiry of unused ones.
        .enable_dynamic_registration(registration_policy())
        // Token exchange (RFC 8693), from outside the core through the
        // public grant trait: photo-api trades a user's token for its own.
        .grant(tessera_token_exchange::TokenExchangeGrant::new())
        // private_key_jwt (RFC 7523 §2.2) for clients that register keys
        // (an addition to the contract: the seeded clients keep theirs).
        .client_auth_method(tessera::PrivateKeyJwt::new())
        // A key published at `jwks_uri` (DEMO-CONTRACT's discovery list);
        // `Demo::start_for` puts `--signing-key`'s in its place.
        .signing_keys(tokens::generated_keys());
    for (token, words) in clients::scopes() {
        builder = builder.scope(token, words);
    }
    // The resources are named below the issuer in normal form (an issuer
    // written `HTTP://Host:80` names `http://host/api`): a resource
    // identifier must be written so (RFC 8707 §2), and without the
    // resources `/mcp` would take any token with the scope (MCP: a server
    // "MUST validate that access tokens were issued specifically for
    // them"). The binaries' issuers are in normal form already.
    let normal = url::Url::parse(issuer).map_or_else(|_| issuer.to_owned(), String::from);
    let base = normal.strip_suffix('/').unwrap_or(&normal);
    match (api_resource(base), mcp_resource(base)) {
        (Ok(api), Ok(mcp)) => builder
            .default_resource(api.identifier().clone())
            .protected_resource(api)
            .protected_resource(mcp),
        // No URL at all: the issuer fails the build.
        _ => builder,
    }
}

/// The demo's dynamic registration policy (DEMO-CONTRACT "Dynamic client
/// registration"): open, authorization_code and refresh_token, at most
/// [`MAX_REGISTERED_CLIENTS`], unused ones forgotten after 24 hours.
pub fn registration_policy() -> tessera::RegistrationPolicy {
    tessera::RegistrationPolicy::open()
        .with_max_clients(MAX_REGISTERED_CLIENTS)
        .with_unused_lifetime(time::Duration::hours(24))
}

/// The path of the photo API, below the issuer: the resource `{issuer}/api`.
pub const API_PATH: &str = "/api";

/// The path of the MCP server, below the issuer: the resource `{issuer}/mcp`.
pub const MCP_PATH: &str = "/mcp";

/// The photo API as a protected resource (RFC 9728): `{issuer}/api`, the
/// scopes it uses, the issuer as its authorization server.
fn api_resource(issuer: &str) -> Result<ProtectedResource, Box<dyn std::error::Error>> {
    // The scopes the API's routes ask for (`photos.read`; `photos.write`).
    let scopes = Scope::parse("photos.read photos.write")?;
    Ok(
        ProtectedResource::new(ResourceIndicator::new(format!("{issuer}{API_PATH}"))?)?
            .with_scopes(scopes)
            .with_resource_name("PhotoBook photo API"),
    )
}

/// The MCP server as a protected resource (RFC 9728): `{issuer}/mcp`, the
/// scope its tool needs, the issuer as its authorization server.
fn mcp_resource(issuer: &str) -> Result<ProtectedResource, Box<dyn std::error::Error>> {
    Ok(
        ProtectedResource::new(ResourceIndicator::new(format!("{issuer}{MCP_PATH}"))?)?
            .with_scopes(Scope::parse(photos::PHOTOS_READ)?)
            .with_resource_name("PhotoBook MCP server"),
    )
}

/// Logs to stderr with `RUST_LOG` (or `default_filter` when unset), in
/// colour only on a terminal, so log files stay plain text, written off
/// the request path by a batching writer thread ([`logging`]: no line is
/// dropped; a full buffer holds emitting threads back). Call it once, at
/// the start of `main`, and hold the guard until `main` returns: dropping
/// it writes what is still buffered.
pub fn init_logging(default_filter: &str) -> Option<logging::LogGuard> {
    use std::io::IsTerminal;
    logging::init_to(
        default_filter,
        std::io::stderr(),
        std::io::stderr().is_terminal(),
        "log-writer",
    )
}

/// Why the demo could not start: one line, fit for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::OpenError),
    /// The server configuration was refused.
    #[error("invalid server configuration: {0}")]
    Server(#[from] BuildError),
    /// A page template did not compile.
    #[error("page templates: {0}")]
    Templates(#[from] minijinja::Error),
    /// The fetcher of client ID metadata documents could not be built.
    #[error(transparent)]
    ClientMetadata(#[from] tessera_client_metadata::BuildError),
}

/// The PhotoBook provider minus HTTP: the Tessera server, the session table,
/// the users and the pages. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Demo {
    inner: Arc<Inner>,
}

struct Inner {
    server: Server,
    sessions: Sessions,
    pages: Pages,
    users: Users,
    secure_cookies: bool,
    /// The server's clock, for the times the pages show.
    clock: Arc<dyn Clock>,
    /// Names accounts in logs without their text.
    account_tags: AccountTag,
    /// One sign-in attempt per account at a time.
    account_locks: flow::AccountLocks,
    /// The MCP server at `{issuer}/mcp`, for a framework that does not run
    /// tower services ([`mcp::call`]).
    mcp: mcp::McpService,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("server", &self.server)
            .field("sessions", &self.sessions)
            .field("users", &self.users)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// The demo over an already built server (on the system clock).
    pub fn new(server: Server) -> Result<Self, StartError> {
        Self::with_clock(server, Arc::new(SystemClock))
    }

    /// The demo over a server built with `clock` (see [`server_builder`]):
    /// the demo reads the same clock for the times it shows, e.g. when a
    /// throttled account may sign in again.
    pub fn with_clock(server: Server, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let secure_cookies = server.config().issuer.starts_with("https://");
        let mcp = mcp::service(&server.config().issuer, server.config().max_body_bytes);
        Ok(Self {
            inner: Arc::new(Inner {
                mcp,
                server,
                sessions: Sessions::new(),
                pages: Pages::new()?,
                users: Users::seeded(),
                secure_cookies,
                clock,
                account_tags: AccountTag::new(),
                account_locks: flow::AccountLocks::default(),
            }),
        })
    }

    /// Opens the store `--store` names (seeding it), and builds the demo with
    /// `issuer` (see [`Args::issuer_for`]). Runs on a Tokio runtime.
    pub async fn start(store: &StoreSpec, issuer: &str) -> Result<Self, StartError> {
        let store = store::open(store).await?;
        Self::new(build_server(issuer, store)?)
    }

    /// The Tessera server, for the adapter's endpoints and bearer checks.
    pub fn server(&self) -> &Server {
        &self.inner.server
    }

    /// The MCP service at `{issuer}/mcp` ([`mcp::call`]).
    pub fn mcp(&self) -> &mcp::McpService {
        &self.inner.mcp
    }

    /// The session table (signed-in sessions; nobody else has one).
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The users.
    pub fn users(&self) -> &Users {
        &self.inner.users
    }

    /// Whether session cookies carry `Secure` (the issuer is https).
    pub fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }
}
