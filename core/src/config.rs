//! Server configuration: the issuer, lifetimes and policies, with safe defaults.

use std::collections::{BTreeMap, BTreeSet};

use time::Duration;

use crate::resource::ResourceIndicator;
use crate::scope::{Scope, ScopeToken};

/// How long each kind of secret lives. Built from the defaults with the
/// `with_*` methods, so that lifetimes added later keep their defaults:
///
/// ```
/// use tessera::Lifetimes;
/// let lifetimes = Lifetimes::default().with_access_token(time::Duration::minutes(5));
/// assert_eq!(lifetimes.access_token, time::Duration::minutes(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lifetimes {
    /// Authorization codes: 60 s by default (RFC 6749 §4.1.2 recommends at most 10 minutes).
    pub code: Duration,
    /// Access tokens: 1 hour by default.
    pub access_token: Duration,
    /// Refresh tokens: 30 days by default, renewed on every rotation.
    pub refresh_token: Duration,
    /// A refresh token family, from the code exchange that started it: 90
    /// days by default. Rotation renews a refresh token's life but never
    /// past this, so a grant cannot live forever by being used (RFC 9700
    /// §4.14.2, RFC 6819 §5.2.2.3 limited lifetimes).
    pub refresh_family: Duration,
    /// Pending authorization requests (login and consent pages): 10 minutes by default.
    pub pending: Duration,
    /// Device codes and their user codes (RFC 8628 §3.2 `expires_in`): 10
    /// minutes by default.
    pub device_code: Duration,
    /// Pushed authorization requests (RFC 9126 §2.2 `expires_in`): 60 s by
    /// default (the RFC's suggestion is between 5 and 600 s).
    pub request_uri: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            code: Duration::seconds(60),
            access_token: Duration::hours(1),
            refresh_token: Duration::days(30),
            refresh_family: Duration::days(90),
            pending: Duration::minutes(10),
            device_code: Duration::minutes(10),
            request_uri: Duration::seconds(60),
        }
    }
}

impl Lifetimes {
    /// Authorization codes live `code`.
    #[must_use]
    pub fn with_code(mut self, code: Duration) -> Self {
        self.code = code;
        self
    }

    /// Access tokens live `access_token`.
    #[must_use]
    pub fn with_access_token(mut self, access_token: Duration) -> Self {
        self.access_token = access_token;
        self
    }

    /// Refresh tokens live `refresh_token` from their last rotation.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: Duration) -> Self {
        self.refresh_token = refresh_token;
        self
    }

    /// Refresh token families end `refresh_family` after they started.
    #[must_use]
    pub fn with_refresh_family(mut self, refresh_family: Duration) -> Self {
        self.refresh_family = refresh_family;
        self
    }

    /// Pushed authorization requests live `request_uri`.
    #[must_use]
    pub fn with_request_uri(mut self, request_uri: Duration) -> Self {
        self.request_uri = request_uri;
        self
    }

    /// Device codes live `device_code`.
    #[must_use]
    pub fn with_device_code(mut self, device_code: Duration) -> Self {
        self.device_code = device_code;
        self
    }

    /// Pending authorization requests live `pending`.
    #[must_use]
    pub fn with_pending(mut self, pending: Duration) -> Self {
        self.pending = pending;
        self
    }
}

/// Which clients must use PKCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PkcePolicy {
    /// Every client, confidential ones included (RFC 9700 §2.1.1): the default.
    #[default]
    RequiredForAll,
    /// Only public clients. Confidential clients then rely on their secret
    /// alone against code injection: weaker, so it is named as dangerous in
    /// the builder.
    DangerousRequiredForPublicOnly,
}

/// The paths endpoints are served at, relative to the issuer's path. Built
/// from the defaults with the `with_*` methods; every path is checked when
/// the server is built (see [`crate::BuildError::InvalidPath`]).
///
/// ```
/// use tessera::EndpointPaths;
/// let paths = EndpointPaths::default().with_token("/oauth2/token");
/// assert_eq!(paths.token, "/oauth2/token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointPaths {
    /// The authorization endpoint.
    pub authorize: String,
    /// The token endpoint.
    pub token: String,
    /// The revocation endpoint (RFC 7009).
    pub revoke: String,
    /// The introspection endpoint (RFC 7662).
    pub introspect: String,
    /// The device authorization endpoint (RFC 8628 §3.1), served when the
    /// device grant is enabled.
    pub device_authorization: String,
    /// The pushed authorization request endpoint (RFC 9126 §2).
    pub pushed_authorization: String,
    /// The embedder's device verification page (RFC 8628 §3.3), like the
    /// authorization endpoint the embedder's own.
    pub device_verification: String,
    /// The client registration endpoint (RFC 7591 §3), served when dynamic
    /// registration is enabled.
    pub registration: String,
    /// The JWKS endpoint (RFC 7517 §5), served when the server has signing keys.
    pub jwks: String,
}

impl Default for EndpointPaths {
    fn default() -> Self {
        Self {
            authorize: "/authorize".into(),
            token: "/token".into(),
            revoke: "/revoke".into(),
            introspect: "/introspect".into(),
            device_authorization: "/device_authorization".into(),
            pushed_authorization: "/par".into(),
            device_verification: "/device".into(),
            registration: "/register".into(),
            jwks: "/jwks".into(),
        }
    }
}

impl EndpointPaths {
    /// The authorization endpoint (the embedder's pages) at `path`.
    #[must_use]
    pub fn with_authorize(mut self, path: impl Into<String>) -> Self {
        self.authorize = path.into();
        self
    }

    /// The token endpoint at `path`.
    #[must_use]
    pub fn with_token(mut self, path: impl Into<String>) -> Self {
        self.token = path.into();
        self
    }

    /// The revocation endpoint at `path`.
    #[must_use]
    pub fn with_revoke(mut self, path: impl Into<String>) -> Self {
        self.revoke = path.into();
        self
    }

    /// The device authorization endpoint at `path`.
    #[must_use]
    pub fn with_device_authorization(mut self, path: impl Into<String>) -> Self {
        self.device_authorization = path.into();
        self
    }

    /// The pushed authorization request endpoint at `path`.
    #[must_use]
    pub fn with_pushed_authorization(mut self, path: impl Into<String>) -> Self {
        self.pushed_authorization = path.into();
        self
    }

    /// The embedder's device verification page at `path`.
    #[must_use]
    pub fn with_device_verification(mut self, path: impl Into<String>) -> Self {
        self.device_verification = path.into();
        self
    }

    /// The client registration endpoint at `path`.
    #[must_use]
    pub fn with_registration(mut self, path: impl Into<String>) -> Self {
        self.registration = path.into();
        self
    }

    /// The JWKS endpoint at `path`.
    #[must_use]
    pub fn with_jwks(mut self, path: impl Into<String>) -> Self {
        self.jwks = path.into();
        self
    }

    /// The introspection endpoint at `path`.
    #[must_use]
    pub fn with_introspect(mut self, path: impl Into<String>) -> Self {
        self.introspect = path.into();
        self
    }
}

/// Everything that tunes the protocol.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2), also sent as `iss` (RFC 9207).
    pub issuer: String,
    /// Lifetimes of codes and tokens.
    pub lifetimes: Lifetimes,
    /// Which clients must use PKCE.
    pub pkce: PkcePolicy,
    /// Endpoint paths.
    pub paths: EndpointPaths,
    /// Known scopes with a human-readable description for consent pages.
    pub scopes: BTreeMap<ScopeToken, String>,
    /// The realm in `WWW-Authenticate` challenges.
    pub realm: String,
    /// The largest request body an adapter should accept: 64 KiB.
    pub max_body_bytes: usize,
    /// Seconds a device waits between polls (RFC 8628 §3.2 `interval`): 5.
    pub device_poll_interval: u32,
    /// Whether every client must push its authorization requests (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// Dynamic client registration (RFC 7591), when enabled.
    pub registration: Option<crate::registration::RegistrationPolicy>,
    /// The resources tokens may be requested for (RFC 8707 §2): any other
    /// `resource` is `invalid_target`. Empty: `resource` is always refused.
    pub resources: BTreeSet<ResourceIndicator>,
    /// The audience of tokens requested without `resource` (one of
    /// [`resources`](Self::resources)); `None`: such tokens have no audience.
    pub default_resource: Option<ResourceIndicator>,
    /// How DPoP proofs (RFC 9449) are accepted: the `iat` window, nonces.
    pub dpop: crate::dpop::DpopPolicy,
    /// Which endpoints pages of other origins may call with `fetch`
    /// (CORS): the public documents by default; see [`CrossOrigin`].
    pub cross_origin: CrossOrigin,
}

/// Which endpoints a page of another origin may call with `fetch` and read
/// (the Fetch standard's CORS protocol): always with
/// `Access-Control-Allow-Origin: *` and never with credentials (no endpoint
/// here takes a cookie). Introspection (a resource server's back channel)
/// and the authorization endpoint (a navigation, not a `fetch`) never
/// answer pages. Set with [`ServerBuilder::cross_origin`](crate::ServerBuilder::cross_origin);
/// an embedder with CORS middleware of its own picks [`Off`](Self::Off),
/// so no header is sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CrossOrigin {
    /// No CORS headers anywhere.
    Off,
    /// The public documents a browser-based client discovers the server
    /// with: authorization server metadata, JWKS, protected resource
    /// metadata (RFC 8414, RFC 7517, RFC 9728). Always sent with
    /// `Access-Control-Allow-Origin: *`, so a shared cache keeps one
    /// version for pages and servers alike.
    #[default]
    Documents,
    /// The documents, and the endpoints a browser app calls: token,
    /// revocation, registration, PAR and device authorization (single-page
    /// apps, browser-based MCP clients). Opt in knowingly: any page a user
    /// visits may then call them from the user's browser, so a server only
    /// reachable from the user's machine or network (localhost, an
    /// intranet) can be reached by any website (to start device flows or
    /// register clients, say) as it could not be from the site's own
    /// servers.
    ClientEndpoints,
}

impl Config {
    /// The resource a stored token is for: its audience, or the default
    /// resource for a token stored without one (before the default was
    /// configured), so that such a token is not valid everywhere.
    pub fn audience_of<'a>(
        &'a self,
        record: &'a crate::storage::TokenRecord,
    ) -> Option<&'a ResourceIndicator> {
        record.audience.as_ref().or(self.default_resource.as_ref())
    }

    /// All known scopes.
    pub fn scopes_supported(&self) -> Scope {
        Scope::from_tokens(self.scopes.keys().cloned())
    }
}
