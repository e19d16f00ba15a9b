//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document,
//! "CIMD"; the MCP authorization specification of 2025-11-25 prefers them to
//! dynamic registration): a client names itself with an `https` URL as its
//! `client_id`, and the server fetches the client's metadata from that URL.
//!
//! Off unless the embedder turns it on with
//! [`ServerBuilder::enable_client_id_metadata_documents`](crate::ServerBuilder::enable_client_id_metadata_documents),
//! giving a [`ClientMetadataFetcher`]: the core does no I/O, and the fetcher
//! (the `tessera-client-metadata` crate has one) is where the SSRF
//! defences of §6.5 live. The core checks the URL (§3), validates the
//! document with the rules of dynamic registration plus the draft's own
//! (§4, §4.1), keeps valid documents in a bounded cache (§5.2), and bounds
//! what attacker-chosen URLs can cost: fetches per host through the abuse
//! hook ([`Action::ClientMetadataFetch`]), fetches at once
//! ([`ClientMetadataPolicy::max_concurrent_fetches`]), cached documents in
//! count and bytes.
//!
//! A client found in the registry under the same id wins (a pre-registered
//! Client Identifier URL, §5.2 of the draft's implementation notes): that is
//! how an embedder vouches for a client it knows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::abuse::Action;
use crate::client::{AuthMethod, Client, ClientId, ClientRegistry, GrantType, SecretHash};
use crate::error::{BoxError, ErrorCode, OAuthError, Reason, StoreError};
use crate::registration::{RegistrationPolicy, validate_map};
use crate::scope::{Scope, ScopeToken};
use crate::server::Server;

/// The longest Client Identifier URL accepted, in bytes: a `client_id` is
/// at most 255 characters ([`ClientId::new`]).
pub const MAX_CLIENT_ID_URL_BYTES: usize = 255;

/// The default limit on a document's size: 5 KiB, the draft's recommended
/// maximum (§6.6, "Maximum Response Size").
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// A Client Identifier URL (draft §3): `https`, a host, a path, no
/// userinfo, no `.` or `..` segment, no fragment; held in the canonical
/// form the server fetches, since ids are compared as plain strings
/// (RFC 3986 §6.2.1) and the document's `client_id` must equal it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdUrl {
    url: url::Url,
}

/// Why a `client_id` is not a Client Identifier URL (draft §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIdUrlError {
    /// Not an absolute URL.
    #[error("it is not an absolute URL")]
    NotAUrl,
    /// §3: "MUST use the https URL scheme".
    #[error("it must use the https scheme")]
    NotHttps,
    /// §3: "MUST NOT contain a fragment component".
    #[error("it must not contain a fragment")]
    Fragment,
    /// §3: "MUST NOT contain a userinfo component".
    #[error("it must not contain a user name or password")]
    Credentials,
    /// §3: "MUST contain a path component" (and a host to fetch from).
    #[error("it must contain a host and a path")]
    NoPath,
    /// §3: "MUST NOT contain single-dot or double-dot path components".
    #[error("it must not contain . or .. path segments")]
    DotSegment,
    /// Not in canonical form (upper-case host, default port, escapes a URL
    /// parser rewrites): the server would fetch another string than the id.
    #[error("it is not in canonical form (lower-case host, no default port)")]
    NotCanonical,
    /// Longer than [`MAX_CLIENT_ID_URL_BYTES`].
    #[error("it is longer than 255 bytes")]
    TooLong,
}

impl ClientIdUrl {
    /// Checks `s` against the draft's §3 rules.
    pub fn parse(s: &str) -> Result<Self, ClientIdUrlError> {
        Self::parse_with(s, false)
    }

    /// [`parse`](Self::parse), also accepting `http`: what a server with
    /// [`ClientMetadataPolicy::dangerous_allow_http`] accepts. Dangerous:
    /// for tests against a local server only.
    pub fn dangerous_parse_allowing_http(s: &str) -> Result<Self, ClientIdUrlError> {
        Self::parse_with(s, true)
    }

    /// [`parse`](Self::parse), also accepting `http` when `allow_http`
    /// (tests only: [`ClientMetadataPolicy::dangerous_allow_http`]).
    pub(crate) fn parse_with(s: &str, allow_http: bool) -> Result<Self, ClientIdUrlError> {
        if s.len() > MAX_CLIENT_ID_URL_BYTES {
            return Err(ClientIdUrlError::TooLong);
        }
        let url = url::Url::parse(s).map_err(|_| ClientIdUrlError::NotAUrl)?;
        let scheme = url.scheme();
        if !(scheme == "https" || (allow_http && scheme == "http")) {
            return Err(ClientIdUrlError::NotHttps);
        }
        if s.contains('#') {
            return Err(ClientIdUrlError::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() || s.contains('@') {
            return Err(ClientIdUrlError::Credentials);
        }
        // The raw text after "scheme://": the authority must be followed
        // by a path, not end or go straight to a query.
        let rest = s
            .get(scheme.len()..)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or(ClientIdUrlError::NotCanonical)?;
        let path_start = rest.find(['/', '?']).ok_or(ClientIdUrlError::NoPath)?;
        if path_start == 0
            || !rest[path_start..].starts_with('/')
            || url.host_str().is_none_or(str::is_empty)
        {
            return Err(ClientIdUrlError::NoPath);
        }
        let path = rest[path_start..].split('?').next().unwrap_or_default();
        let dot = |seg: &str| {
            let seg = seg.to_ascii_lowercase().replace("%2e", ".");
            seg == "." || seg == ".."
        };
        if path.split('/').any(dot) {
            return Err(ClientIdUrlError::DotSegment);
        }
        if url.as_str() != s {
            return Err(ClientIdUrlError::NotCanonical);
        }
        Ok(Self { url })
    }

    /// Whether `s` looks like a URL at all (`https://` or `http://`, any
    /// case): such an id is checked as a Client Identifier URL; any other is
    /// an ordinary `client_id` for the registry alone.
    pub fn looks_like_url(s: &str) -> bool {
        let starts = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
        starts("https://") || starts("http://")
    }

    /// The URL, as the client sent it (and as it is fetched).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The URL's scheme: `https` (or `http`, in tests only).
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The host: what a consent page shows (§6.3), and what fetches are
    /// counted under ([`Action::ClientMetadataFetch`]).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, the scheme's default if none is written.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }
}

impl fmt::Display for ClientIdUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fetched document: its bytes, and how long HTTP caching allows keeping
/// it (RFC 9111 `Cache-Control: max-age`; `Some(0)` for `no-store` or
/// `no-cache`), which the server bounds with
/// [`ClientMetadataPolicy::min_cache_age`] and [`max_cache_age`](ClientMetadataPolicy::max_cache_age).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchedDocument {
    /// The response body.
    pub body: Vec<u8>,
    /// The response's freshness lifetime, if it gave one.
    pub max_age: Option<std::time::Duration>,
}

impl FetchedDocument {
    /// A document without caching information.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            max_age: None,
        }
    }

    /// Sets the freshness lifetime the response gave.
    #[must_use]
    pub fn with_max_age(mut self, max_age: std::time::Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

/// Why a fetcher could not deliver a document. Every one refuses the client
/// (draft §4.2, "Metadata Discovery Errors"), and none is cached (§5.2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL's scheme is not one the fetcher uses (`https`).
    #[error("the URL's scheme is not allowed")]
    Scheme,
    /// The host is, or resolves to, a special-use address (RFC 6890;
    /// draft §6.5): loopback, private, link-local, shared, multicast, ...
    #[error("the host resolves to a special-use address ({0})")]
    ForbiddenAddress(std::net::IpAddr),
    /// The host name could not be resolved.
    #[error("the host could not be resolved")]
    Resolve(#[source] BoxError),
    /// No connection, or the exchange failed (TLS included).
    #[error("the document could not be fetched")]
    Connect(#[source] BoxError),
    /// An answer other than 200 (draft §4: "MUST be served with a 200 OK").
    #[error("the answer's status is {0}, not 200")]
    Status(u16),
    /// A redirect, which is never followed (draft §4).
    #[error("the answer is a redirect ({0}), which is not followed")]
    Redirect(u16),
    /// Not `application/json` or `application/*+json` (draft §4).
    #[error("the answer is not JSON (content type {0:?})")]
    NotJson(Option<String>),
    /// Larger than the limit (draft §6.6).
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// The fetch did not finish in time.
    #[error("the document took too long to fetch")]
    Timeout,
}

/// Fetches client ID metadata documents: the core's only window on the
/// network for this feature, so that the core stays free of I/O.
///
/// An implementation must defend against SSRF (draft §6.5): fetch only
/// `https` URLs; refuse hosts that are or resolve to special-use addresses
/// and connect to the address it checked; never follow a redirect; read at
/// most `max_bytes` of body ([`FetchError::TooLarge`] beyond); bound the
/// whole exchange in time. `tessera-client-metadata` is such a fetcher.
#[async_trait]
pub trait ClientMetadataFetcher: Send + Sync + fmt::Debug {
    /// Fetches the document at `url`.
    async fn fetch(
        &self,
        url: &ClientIdUrl,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError>;
}

/// How client ID metadata documents are accepted and kept. Built from
/// [`Default`] with the `with_*` methods.
///
/// ```
/// use tessera::ClientMetadataPolicy;
/// let policy = ClientMetadataPolicy::default()
///     .with_max_cached(500)
///     .with_max_concurrent_fetches(8);
/// assert_eq!(policy.max_document_bytes, 5 * 1024);
/// assert!(!policy.dangerous_allow_http);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientMetadataPolicy {
    /// The largest document accepted: 5 KiB (draft §6.6).
    pub max_document_bytes: usize,
    /// The most documents kept in the cache: 1,000.
    pub max_cached: usize,
    /// The most bytes of documents kept in the cache (an estimate of what
    /// the parsed clients take): 4 MiB.
    pub max_cached_bytes: usize,
    /// The shortest a valid document is kept, whatever its
    /// `Cache-Control` says: 1 minute (the draft lets the server bound it, §5.2).
    pub min_cache_age: Duration,
    /// The longest a document is kept before it is fetched again: 1 day
    /// (the draft asks for periodic re-fetching, §4).
    pub max_cache_age: Duration,
    /// How long a document without `Cache-Control: max-age` is kept: 10 minutes.
    pub default_cache_age: Duration,
    /// The most fetches in progress at once: 16. Beyond, a request naming
    /// an uncached document gets `temporarily_unavailable`; cached clients
    /// and every other client are not affected.
    pub max_concurrent_fetches: usize,
    /// The grant types a document may name: `authorization_code` and
    /// `refresh_token` (each must also be served by the server).
    pub grant_types: BTreeSet<String>,
    /// The scope of a client whose document names none; `None`: every
    /// scope the server knows.
    pub default_scope: Option<Scope>,
    /// Accepts `http://` Client Identifier URLs. For tests against a local
    /// server only: the draft requires `https` (§3), and a plain-HTTP
    /// document can be replaced by anyone on the path.
    pub dangerous_allow_http: bool,
}

impl Default for ClientMetadataPolicy {
    fn default() -> Self {
        Self {
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            max_cached: 1_000,
            max_cached_bytes: 4 * 1024 * 1024,
            min_cache_age: Duration::minutes(1),
            max_cache_age: Duration::days(1),
            default_cache_age: Duration::minutes(10),
            max_concurrent_fetches: 16,
            grant_types: [GrantType::AUTHORIZATION_CODE, GrantType::REFRESH_TOKEN]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            default_scope: None,
            dangerous_allow_http: false,
        }
    }
}

impl ClientMetadataPolicy {
    /// Accepts documents up to `bytes` long.
    #[must_use]
    pub fn with_max_document_bytes(mut self, bytes: usize) -> Self {
        self.max_document_bytes = bytes;
        self
    }

    /// Keeps at most `count` documents.
    #[must_use]
    pub fn with_max_cached(mut self, count: usize) -> Self {
        self.max_cached = count;
        self
    }

    /// Keeps at most about `bytes` of documents.
    #[must_use]
    pub fn with_max_cached_bytes(mut self, bytes: usize) -> Self {
        self.max_cached_bytes = bytes;
        self
    }

    /// Bounds how long documents are kept: at least `min`, at most `max`,
    /// `default` when the response says nothing.
    #[must_use]
    pub fn with_cache_ages(mut self, min: Duration, default: Duration, max: Duration) -> Self {
        self.min_cache_age = min.max(Duration::ZERO);
        self.max_cache_age = max.max(self.min_cache_age);
        self.default_cache_age = default.clamp(self.min_cache_age, self.max_cache_age);
        self
    }

    /// Runs at most `max` fetches at once (at least 1).
    #[must_use]
    pub fn with_max_concurrent_fetches(mut self, max: usize) -> Self {
        self.max_concurrent_fetches = max.max(1);
        self
    }

    /// The grant types documents may name.
    #[must_use]
    pub fn with_grant_types<S: Into<String>>(
        mut self,
        grants: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_types = grants.into_iter().map(Into::into).collect();
        self
    }

    /// The scope of a client whose document names none.
    #[must_use]
    pub fn with_default_scope(mut self, scope: Scope) -> Self {
        self.default_scope = Some(scope);
        self
    }

    /// Accepts `http://` Client Identifier URLs. Dangerous: for tests
    /// against a local server only (the fetcher must allow it too).
    #[must_use]
    pub fn dangerous_allow_http(mut self) -> Self {
        self.dangerous_allow_http = true;
        self
    }
}

/// Why a client ID metadata document was not accepted. At the
/// authorization endpoint [`to_oauth_error`](Self::to_oauth_error) is the
/// error page's error (never a redirect: no redirect URI is verified); at
/// the back-channel endpoints the client is `invalid_client`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientMetadataError {
    /// The `client_id` looks like a URL but breaks a rule of §3.
    #[error("client_id is not a valid client identifier URL: {0}")]
    Url(#[from] ClientIdUrlError),
    /// The fetch failed (§4.2).
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    /// The document is larger than [`ClientMetadataPolicy::max_document_bytes`] (§6.6).
    #[error("the client's metadata document is larger than {0} bytes")]
    TooLarge(usize),
    /// The document is not a JSON object (§4), or names a member twice
    /// (RFC 8259 §4).
    #[error("the client's metadata document is not a JSON object with unique member names")]
    NotJson,
    /// The document's `client_id` is missing or is not the URL it was
    /// fetched from, character for character (§4).
    #[error("the client's metadata document names another client_id")]
    ClientIdMismatch,
    /// The document asks for a shared secret, which no document can
    /// establish (§4.1): a `client_secret*` member, or a
    /// `token_endpoint_auth_method` built on one.
    #[error("the client's metadata document uses a shared secret ({0}), which is not allowed")]
    SharedSecret(String),
    /// A metadata value breaks a rule of dynamic registration (RFC 7591
    /// §2, the same checks as the registration endpoint): `code` is
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    #[error("the client's metadata document is invalid: {description}")]
    Metadata {
        /// The registration endpoint's error code for the same metadata.
        code: ErrorCode,
        /// What is wrong.
        description: String,
    },
    /// [`ClientMetadataPolicy::max_concurrent_fetches`] are in progress.
    #[error("too many client metadata documents are being fetched; try again later")]
    Busy,
    /// The document's host has had its fetches for now
    /// ([`Action::ClientMetadataFetch`]).
    #[error("too many client metadata documents were fetched from this host; try again later")]
    RateLimited {
        /// When a fetch from the host may be tried again.
        retry_at: OffsetDateTime,
    },
}

impl ClientMetadataError {
    /// The protocol error: `invalid_request` for a malformed Client
    /// Identifier URL, `temporarily_unavailable` when fetching is limited
    /// for now, `invalid_client` for every other (the client cannot be
    /// identified, RFC 6749 §4.1.2.1, §5.2). Fetch failures are described
    /// without their cause (which the log has), so that nobody learns about
    /// the server's network by naming URLs.
    pub fn to_oauth_error(&self) -> OAuthError {
        match self {
            Self::Url(_) => OAuthError::invalid_request(self.to_string())
                .with_reason(Reason::MalformedParameter),
            Self::Busy | Self::RateLimited { .. } => {
                OAuthError::new(ErrorCode::TemporarilyUnavailable, self.to_string())
                    .with_reason(Reason::RateLimited)
            }
            // Every fetch failure alike, and a document too large or not
            // JSON too: naming the status, content type or size a URL
            // answered with would make the server a probe of other hosts'
            // ports and pages.
            Self::Fetch(_) | Self::TooLarge(_) | Self::NotJson | Self::ClientIdMismatch => {
                OAuthError::invalid_client(
                    "the client's metadata document could not be fetched as a JSON document",
                )
            }
            _ => OAuthError::invalid_client(self.to_string()),
        }
    }

    /// Whether the refusal is about load, not the document: the
    /// back-channel endpoints then answer `temporarily_unavailable`.
    fn is_load(&self) -> bool {
        matches!(self, Self::Busy | Self::RateLimited { .. })
    }

    /// Whether the refetch of a document valid a moment ago failed for a
    /// reason that says nothing about the document (the network, a server
    /// error, the host's own rate limit: 408, 429, 5xx): the document is
    /// then still used for a while ([`STALE_IF_ERROR`]). Any other 4xx, a
    /// redirect or an invalid document means its owner changed it: never
    /// served stale. (Our own load never gets here: a known document's
    /// refetch takes no fetch slot and is not counted.)
    fn is_passing(&self) -> bool {
        match self {
            Self::Fetch(FetchError::Resolve(_) | FetchError::Connect(_) | FetchError::Timeout) => {
                true
            }
            Self::Fetch(FetchError::Status(s)) => *s >= 500 || *s == 408 || *s == 429,
            _ => false,
        }
    }
}

/// The members that would carry a shared secret (§4.1).
const SECRET_MEMBERS: [&str; 2] = ["client_secret", "client_secret_expires_at"];

/// Validates a fetched document (§4, §4.1) and builds its client: the
/// draft's rules first, then every rule of dynamic registration (RFC 7591
/// §2, as the registration endpoint applies them). Pure.
pub(crate) fn validate_document(
    url: &ClientIdUrl,
    body: &[u8],
    known_scopes: &BTreeMap<ScopeToken, String>,
    policy: &ClientMetadataPolicy,
    served_grants: &dyn Fn(&str) -> bool,
    served_auth: &dyn Fn(&str) -> bool,
    now: OffsetDateTime,
) -> Result<Client, ClientMetadataError> {
    if body.len() > policy.max_document_bytes {
        return Err(ClientMetadataError::TooLarge(policy.max_document_bytes));
    }
    // Member names unique, as a registration's (RFC 8259 §4).
    let Ok(mut map) = crate::registration::json_object(body) else {
        return Err(ClientMetadataError::NotJson);
    };
    // §4: "MUST contain a client_id property whose value MUST match the
    // Client Identifier URL", simple string comparison.
    if map.get("client_id").and_then(Value::as_str) != Some(url.as_str()) {
        return Err(ClientMetadataError::ClientIdMismatch);
    }
    // §4.1: no shared secret can be established with a document.
    if let Some(member) = SECRET_MEMBERS
        .iter()
        .find(|m| map.get(**m).is_some_and(|v| !v.is_null()))
    {
        return Err(ClientMetadataError::SharedSecret((*member).to_owned()));
    }
    match map.get("token_endpoint_auth_method") {
        // RFC 7591's default (client_secret_basic) cannot apply (§4.1): a
        // document that names no method is a public client.
        None | Some(Value::Null) => {
            map.insert(
                "token_endpoint_auth_method".into(),
                Value::String(AuthMethod::None.as_str().into()),
            );
        }
        Some(Value::String(m)) if m == AuthMethod::None.as_str() => {}
        Some(Value::String(m)) if m.starts_with("client_secret_") => {
            return Err(ClientMetadataError::SharedSecret(m.clone()));
        }
        // §6.2: a key published in the document (`jwks`, inline) makes a
        // confidential client, which must then authenticate with it (RFC
        // 7523 §2.2), if the server serves the method.
        Some(Value::String(m)) if m == AuthMethod::PrivateKeyJwt.as_str() && served_auth(m) => {}
        Some(Value::String(m)) => {
            return Err(ClientMetadataError::Metadata {
                code: ErrorCode::InvalidClientMetadata,
                description: format!(
                    "token_endpoint_auth_method {m:?} is not supported for client ID metadata documents here"
                ),
            });
        }
        Some(_) => {
            return Err(ClientMetadataError::Metadata {
                code: ErrorCode::InvalidClientMetadata,
                description: "token_endpoint_auth_method must be a string".into(),
            });
        }
    }
    let id = ClientId::new(url.as_str()).ok_or(ClientIdUrlError::TooLong)?;
    let mut rules = RegistrationPolicy::open().with_grant_types(policy.grant_types.iter().cloned());
    rules.default_scope = policy.default_scope.clone();
    let mut secret_asked = false;
    let validated = validate_map(
        &map,
        known_scopes,
        &rules,
        served_grants,
        id,
        || {
            secret_asked = true;
            (String::new(), SecretHash::of(""))
        },
        now,
    )
    .map_err(|e| ClientMetadataError::Metadata {
        code: e.code,
        description: e.description.unwrap_or_default(),
    })?;
    let mut client = validated.client;
    if secret_asked || client.secret_hash().is_some() {
        // Unreachable with the method forced to `none` above; refused all
        // the same rather than trusting that.
        return Err(ClientMetadataError::SharedSecret(
            "token_endpoint_auth_method".into(),
        ));
    }
    if let Some(registration) = client.registration.as_mut() {
        // Never "unused": a document client is not stored, nothing expires.
        registration.unused_until = None;
        registration.metadata_document_host = Some(url.host().to_owned());
    }
    Ok(client)
}

/// A cached client and what it costs.
#[derive(Debug)]
struct Cached {
    client: Arc<Client>,
    expires_at: OffsetDateTime,
    bytes: usize,
    used: u64,
    /// Lookups it answered: one that answered none since its fetch goes
    /// before any that did (a flood of documents fetched once each, from
    /// many hosts, cannot push out the clients in use).
    hits: u64,
    /// Past its expiry: no refetch before this instant (one is under way,
    /// or the last failed), the document is served as it is.
    retry_at: Option<OffsetDateTime>,
}

/// How long past its expiry a valid document is still used when fetching
/// it again fails for a passing reason (load, network, a 5xx): as HTTP's
/// `stale-if-error` (RFC 5861 §4). Without it, anyone could cut a popular
/// client off by spending its host's fetch budget on URLs that answer 404
/// (or by slowing the fetches down) just as its cached document expires.
pub const STALE_IF_ERROR: Duration = Duration::hours(1);

/// How often a document kept past its expiry is fetched again while that
/// fails (and how long one refetch keeps the others off).
const STALE_RETRY: Duration = Duration::seconds(30);

/// Valid documents, bounded in count and bytes; the least recently used
/// goes first when full. Failures are never cached (§5.2: "MUST NOT cache
/// error responses" nor invalid documents). An expired document is kept
/// for [`STALE_IF_ERROR`] more, used only when fetching it again fails for
/// a passing reason.
#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, Cached>,
    bytes: usize,
    tick: u64,
}

impl Cache {
    fn get(&mut self, url: &str, now: OffsetDateTime) -> Option<Arc<Client>> {
        self.tick += 1;
        let tick = self.tick;
        match self.entries.get_mut(url) {
            Some(c) if now < c.expires_at => {
                c.used = tick;
                c.hits = c.hits.saturating_add(1);
                Some(c.client.clone())
            }
            Some(c) if now < c.expires_at + STALE_IF_ERROR => None,
            Some(_) => {
                self.remove(url);
                None
            }
            None => None,
        }
    }

    /// An expired document still within [`STALE_IF_ERROR`], and whether
    /// the caller should fetch it again now: at most one refetch per
    /// [`STALE_RETRY`] (the caller's claim), so a host that fails is not
    /// asked again by every request naming the client.
    fn stale(&mut self, url: &str, now: OffsetDateTime) -> Option<(Arc<Client>, bool)> {
        self.tick += 1;
        let tick = self.tick;
        let c = self.entries.get_mut(url)?;
        if now >= c.expires_at + STALE_IF_ERROR {
            return None;
        }
        c.used = tick;
        c.hits = c.hits.saturating_add(1);
        let fetch = c.retry_at.is_none_or(|t| now >= t);
        if fetch {
            c.retry_at = Some(now + STALE_RETRY);
        }
        Some((c.client.clone(), fetch))
    }

    fn remove(&mut self, url: &str) {
        if let Some(c) = self.entries.remove(url) {
            self.bytes = self.bytes.saturating_sub(c.bytes);
        }
    }

    fn insert(
        &mut self,
        url: String,
        cached: Cached,
        now: OffsetDateTime,
        max_count: usize,
        max_bytes: usize,
    ) {
        if max_count == 0 || cached.bytes > max_bytes {
            return;
        }
        // A document fetched again keeps the use it had.
        let hits = self.entries.get(&url).map_or(0, |c| c.hits);
        self.remove(&url);
        let before = self.entries.len();
        self.entries
            .retain(|_, c| now < c.expires_at + STALE_IF_ERROR);
        if self.entries.len() != before {
            self.bytes = self.entries.values().map(|c| c.bytes).sum();
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= max_count || self.bytes + cached.bytes > max_bytes)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, c)| (c.hits > 0, c.used))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.remove(&k),
                None => break,
            }
        }
        self.tick += 1;
        self.bytes += cached.bytes;
        self.entries.insert(
            url,
            Cached {
                used: self.tick,
                hits: cached.hits.max(hits),
                ..cached
            },
        );
    }
}

/// The feature's state in a server: the policy, the fetcher, the cache and
/// the count of fetches in progress.
pub(crate) struct DocumentClients {
    policy: ClientMetadataPolicy,
    fetcher: Arc<dyn ClientMetadataFetcher>,
    cache: Mutex<Cache>,
    in_flight: AtomicUsize,
}

impl fmt::Debug for DocumentClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentClients")
            .field("policy", &self.policy)
            .field("fetcher", &self.fetcher)
            .finish_non_exhaustive()
    }
}

/// A fetch in progress, counted until dropped (also when the request's
/// future is dropped mid-fetch).
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DocumentClients {
    pub(crate) fn new(
        policy: ClientMetadataPolicy,
        fetcher: Arc<dyn ClientMetadataFetcher>,
    ) -> Self {
        Self {
            policy,
            fetcher,
            cache: Mutex::new(Cache::default()),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves a cache that is still a
        // cache: keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, url: &str, now: OffsetDateTime) -> Option<Arc<Client>> {
        self.cache().get(url, now)
    }

    /// A fetch counted in progress whatever the count (a known document's
    /// refetch), so that new documents see the load.
    fn slot_anyway(&self) -> Slot<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Slot(&self.in_flight)
    }

    fn slot(&self) -> Option<Slot<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(&self.in_flight);
        (before < self.policy.max_concurrent_fetches).then_some(slot)
    }

    /// How long a fetched document is kept (§5.2: HTTP caching, within
    /// the server's bounds).
    fn cache_age(&self, max_age: Option<std::time::Duration>) -> Duration {
        let p = &self.policy;
        match max_age {
            Some(age) => Duration::try_from(age)
                .unwrap_or(p.max_cache_age)
                .clamp(p.min_cache_age, p.max_cache_age),
            None => p.default_cache_age,
        }
    }
}

/// Why a client lookup failed: the store, or the client's document.
#[derive(Debug)]
pub(crate) enum LookupError {
    Store(StoreError),
    Document(ClientMetadataError),
}

impl From<LookupError> for OAuthError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::Store(e) => e.into(),
            LookupError::Document(e) => e.to_oauth_error(),
        }
    }
}

impl Server {
    /// The client with this id: the registry's, or, when client ID
    /// metadata documents are on and `id` is a URL the registry does not
    /// know, the client its document describes (fetched, or cached).
    /// `Ok(None)`: no such client. A document that cannot be fetched or is
    /// invalid is an error ([`ClientMetadataError::to_oauth_error`]).
    pub async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, OAuthError> {
        self.lookup_client(id).await.map_err(Into::into)
    }

    pub(crate) async fn lookup_client(
        &self,
        id: &ClientId,
    ) -> Result<Option<Arc<Client>>, LookupError> {
        let store = self.store().as_ref();
        let Some(docs) = self
            .documents()
            .filter(|_| ClientIdUrl::looks_like_url(id.as_str()))
        else {
            return crate::client::lookup_client(store, id)
                .await
                .map_err(LookupError::Store);
        };
        let now = self.now();
        if let Some(client) = docs.cached(id.as_str(), now) {
            return Ok(Some(client));
        }
        // A Client Identifier URL the embedder registered wins (the
        // draft's pre-registration).
        if let Some(client) = crate::client::lookup_client(store, id)
            .await
            .map_err(LookupError::Store)?
        {
            return Ok(Some(client));
        }
        match self.document_client(docs, id, now).await {
            Ok(client) => Ok(Some(client)),
            Err(e) => {
                match &e {
                    ClientMetadataError::Fetch(f) => {
                        let cause = std::error::Error::source(f).map(ToString::to_string);
                        tracing::info!(client = id.as_str(), error = %e, cause, "client metadata document refused");
                    }
                    _ => {
                        tracing::info!(client = id.as_str(), error = %e, "client metadata document refused")
                    }
                }
                Err(LookupError::Document(e))
            }
        }
    }

    /// Fetches, validates and caches the document of `id`.
    async fn document_client(
        &self,
        docs: &DocumentClients,
        id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Arc<Client>, ClientMetadataError> {
        let url = ClientIdUrl::parse_with(id.as_str(), docs.policy.dangerous_allow_http)?;
        // A document valid a moment ago (expired, within STALE_IF_ERROR)
        // is fetched again outside its host's count, and still used when
        // that fails for a passing reason: a flood of other URLs on its
        // host cannot cut its client off.
        let stale = docs.cache().stale(url.as_str(), now);
        let stale = match stale {
            // Fetched again a moment ago (or being fetched): as it is.
            Some((client, false)) => return Ok(client),
            Some((client, true)) => Some(client),
            None => None,
        };
        let result = self.fetch_document(docs, &url, stale.is_none(), now).await;
        match (result, stale) {
            (Ok(client), _) => Ok(client),
            (Err(e), Some(stale)) if e.is_passing() => {
                tracing::info!(client = id.as_str(), error = %e, "client metadata document kept past its expiry: fetching it again failed");
                Ok(stale)
            }
            (Err(e), _) => {
                // Withdrawn or changed into an invalid one: forgotten.
                docs.cache().remove(url.as_str());
                Err(e)
            }
        }
    }

    /// Fetches and validates the document at `url`, and caches it;
    /// `counted`: a new document, whose fetch counts against its host's
    /// limit and needs a free fetch slot; a known one's (at most one per
    /// [`STALE_RETRY`] each) does neither, so that neither a flood on its
    /// host nor slow hosts holding the slots can keep it from being seen
    /// changed, or keep its client from working.
    async fn fetch_document(
        &self,
        docs: &DocumentClients,
        url: &ClientIdUrl,
        counted: bool,
        now: OffsetDateTime,
    ) -> Result<Arc<Client>, ClientMetadataError> {
        // Fetches are counted per host: a flood of URLs on one host (or a
        // victim host named by many URLs) is cut off there.
        if counted
            && let Err(limited) = self
                .check_limit(Action::ClientMetadataFetch, url.host())
                .await
        {
            tracing::info!(host = url.host(), retry_at = %limited.retry_at, "client metadata fetch refused: too many from this host");
            return Err(ClientMetadataError::RateLimited {
                retry_at: limited.retry_at,
            });
        }
        let _slot = if counted {
            docs.slot().ok_or_else(|| {
                tracing::info!(
                    host = url.host(),
                    "client metadata fetch refused: too many in progress"
                );
                ClientMetadataError::Busy
            })?
        } else {
            docs.slot_anyway()
        };
        if counted {
            self.record_attempt(Action::ClientMetadataFetch, url.host())
                .await;
        }
        let fetched = docs
            .fetcher
            .fetch(url, docs.policy.max_document_bytes)
            .await?;
        let served = |g: &str| self.grant_types().any(|s| s == g);
        let served_auth = |m: &str| self.client_auth_methods().any(|a| a.method().as_str() == m);
        let client = Arc::new(validate_document(
            url,
            &fetched.body,
            &self.config().scopes,
            &docs.policy,
            &served,
            &served_auth,
            now,
        )?);
        let expires_at = now + docs.cache_age(fetched.max_age);
        // What the parsed client costs, roughly: its text twice over and
        // the fixed parts.
        let bytes = 2 * (fetched.body.len() + url.as_str().len()) + 512;
        docs.cache().insert(
            url.as_str().to_owned(),
            Cached {
                client: client.clone(),
                expires_at,
                bytes,
                used: 0,
                hits: 0,
                retry_at: None,
            },
            now,
            docs.policy.max_cached,
            docs.policy.max_cached_bytes,
        );
        tracing::info!(client = url.as_str(), "client metadata document fetched");
        Ok(client)
    }

    /// The registry the back-channel endpoints authenticate clients
    /// against: the store, and documents when they are on.
    pub(crate) fn clients(&self) -> Clients<'_> {
        Clients(self)
    }
}

/// The server's clients as a [`ClientRegistry`]: the store's, and those of
/// client ID metadata documents. A document that cannot be fetched or is
/// invalid is an unknown client (`invalid_client`, logged); one refused for
/// load is a store that is unavailable (`temporarily_unavailable`).
pub(crate) struct Clients<'a>(&'a Server);

#[async_trait]
impl ClientRegistry for Clients<'_> {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        match self.0.lookup_client(id).await {
            Ok(client) => Ok(client),
            Err(LookupError::Store(e)) => Err(e),
            Err(LookupError::Document(e)) if e.is_load() => Err(StoreError::unavailable(e)),
            Err(LookupError::Document(_)) => Ok(None),
        }
    }

    fn client_at_hand(&self, id: &ClientId) -> Option<Arc<Client>> {
        if let Some(docs) = self
            .0
            .documents()
            .filter(|_| ClientIdUrl::looks_like_url(id.as_str()))
        {
            return docs.cached(id.as_str(), self.0.now());
        }
        self.0.store().client_at_hand(id)
    }

    fn client_at_hand_str(&self, id: &str) -> Option<Arc<Client>> {
        if let Some(docs) = self
            .0
            .documents()
            .filter(|_| ClientIdUrl::looks_like_url(id))
        {
            return docs.cached(id, self.0.now());
        }
        self.0.store().client_at_hand_str(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;
    const URL: &str = "https://app.example/oauth/client.json";

    fn scopes() -> BTreeMap<ScopeToken, String> {
        ["photos.read", "photos.write", "profile"]
            .into_iter()
            .map(|s| (ScopeToken::new(s).unwrap(), s.to_owned()))
            .collect()
    }

    fn check(body: &str) -> Result<Client, ClientMetadataError> {
        let served =
            |g: &str| [GrantType::AUTHORIZATION_CODE, GrantType::REFRESH_TOKEN].contains(&g);
        validate_document(
            &ClientIdUrl::parse(URL).unwrap(),
            body.as_bytes(),
            &scopes(),
            &ClientMetadataPolicy::default(),
            &served,
            &|m: &str| m == "private_key_jwt",
            T0,
        )
    }

    fn doc(extra: &str) -> String {
        format!(
            r#"{{"client_id":"{URL}","client_name":"App","redirect_uris":["https://app.example/cb"]{extra}}}"#
        )
    }

    #[test]
    fn client_identifier_url_rules_draft_3() {
        for ok in [
            URL,
            "https://app.example/",
            "https://app.example:8443/c",
            "https://app.example/c?v=1",
            "https://app.example/a.b/..c/.well-known/x",
        ] {
            assert!(ClientIdUrl::parse(ok).is_ok(), "{ok}");
        }
        use ClientIdUrlError::*;
        for (bad, why) in [
            ("not a url", NotAUrl),
            ("/relative/path", NotAUrl),
            ("http://app.example/c", NotHttps),
            ("ftp://app.example/c", NotHttps),
            ("https://app.example/c#frag", Fragment),
            ("https://app.example/c#", Fragment),
            ("https://user@app.example/c", Credentials),
            ("https://user:pw@app.example/c", Credentials),
            ("https://app.example", NoPath),
            ("https://app.example?x=1", NoPath),
            ("https://app.example/a/../c", DotSegment),
            ("https://app.example/a/./c", DotSegment),
            ("https://app.example/a/%2e%2E/c", DotSegment),
            ("https://app.example/..", DotSegment),
            ("https://APP.example/c", NotCanonical),
            ("https://app.example:443/c", NotCanonical),
            ("https:app.example/c", NotCanonical),
            ("https://app.example/a b", NotCanonical),
        ] {
            assert_eq!(ClientIdUrl::parse(bad), Err(why), "{bad}");
        }
        let long = format!(
            "https://app.example/{}",
            "x".repeat(MAX_CLIENT_ID_URL_BYTES)
        );
        assert_eq!(ClientIdUrl::parse(&long), Err(TooLong));
        // http only by the dangerous option.
        assert!(ClientIdUrl::parse_with("http://127.0.0.1:9/c", true).is_ok());
        assert!(ClientIdUrl::looks_like_url("HTTPS://x"));
        assert!(!ClientIdUrl::looks_like_url("printshop"));
        let url = ClientIdUrl::parse("https://app.example:8443/c").unwrap();
        assert_eq!((url.host(), url.port()), ("app.example", 8443));
    }

    #[test]
    fn a_valid_document_is_a_public_unverified_client_draft_4() {
        let c = check(&doc(r#","scope":"photos.read","grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none""#)).unwrap();
        assert_eq!(c.id.as_str(), URL);
        assert_eq!(c.name, "App");
        assert!(c.is_public());
        assert_eq!(c.auth_methods, [AuthMethod::None].into());
        assert_eq!(c.scope.as_str(), "photos.read");
        assert!(c.allows_grant("refresh_token"));
        assert!(c.is_dynamically_registered());
        assert!(c.is_live(T0 + Duration::days(3650)));
        let r = c.registration.as_ref().unwrap();
        assert_eq!(r.metadata_document_host.as_deref(), Some("app.example"));
        assert_eq!(r.unused_until, None);
        // No method named: public (RFC 7591's client_secret_basic default
        // cannot apply, §4.1); no scope: every known scope.
        let c = check(&doc("")).unwrap();
        assert!(c.is_public());
        assert_eq!(c.scope.as_str(), "photos.read photos.write profile");
    }

    #[test]
    fn client_id_must_equal_the_url_draft_4() {
        for body in [
            r#"{"redirect_uris":["https://app.example/cb"]}"#.to_owned(),
            doc("").replace(URL, "https://app.example/oauth/client.json/"),
            doc("").replace(URL, "https://APP.example/oauth/client.json"),
            doc("").replace(&format!(r#""{URL}""#), "42"),
        ] {
            assert!(
                matches!(check(&body), Err(ClientMetadataError::ClientIdMismatch)),
                "{body}"
            );
        }
    }

    #[test]
    fn shared_secrets_are_refused_draft_4_1() {
        for extra in [
            r#","client_secret":"s3cret""#,
            r#","client_secret_expires_at":0"#,
            r#","token_endpoint_auth_method":"client_secret_basic""#,
            r#","token_endpoint_auth_method":"client_secret_post""#,
            r#","token_endpoint_auth_method":"client_secret_jwt""#,
        ] {
            let e = check(&doc(extra)).unwrap_err();
            assert!(matches!(e, ClientMetadataError::SharedSecret(_)), "{extra}");
            assert_eq!(e.to_oauth_error().code, ErrorCode::InvalidClient);
        }
        for extra in [
            // private_key_jwt needs its keys, inline (no jwks_uri is fetched).
            r#","token_endpoint_auth_method":"private_key_jwt""#,
            r#","token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks""#,
            r#","token_endpoint_auth_method":"tls_client_auth""#,
            r#","token_endpoint_auth_method":7"#,
        ] {
            assert!(
                matches!(
                    check(&doc(extra)),
                    Err(ClientMetadataError::Metadata {
                        code: ErrorCode::InvalidClientMetadata,
                        ..
                    })
                ),
                "{extra}"
            );
        }
    }

    #[test]
    fn registration_rules_apply_rfc7591_2() {
        // RFC 8259 §4: a member named twice is no metadata at all.
        assert!(matches!(
            check(&doc(r#","redirect_uris":["https://app.example/other"]"#)),
            Err(ClientMetadataError::NotJson)
        ));
        for (extra, code) in [
            (
                r#","redirect_uris":["http://app.example/cb"]"#,
                ErrorCode::InvalidRedirectUri,
            ),
            (
                r#","redirect_uris":["https://app.example/cb#f"]"#,
                ErrorCode::InvalidRedirectUri,
            ),
            (r#","redirect_uris":[]"#, ErrorCode::InvalidRedirectUri),
            (
                r#","redirect_uris":["com.example:/cb"]"#,
                ErrorCode::InvalidRedirectUri,
            ),
            (r#","scope":"admin""#, ErrorCode::InvalidClientMetadata),
            (
                r#","grant_types":["client_credentials"]"#,
                ErrorCode::InvalidClientMetadata,
            ),
            (
                r#","response_types":["token"]"#,
                ErrorCode::InvalidClientMetadata,
            ),
            (
                r#","logo_uri":"javascript:alert(1)""#,
                ErrorCode::InvalidClientMetadata,
            ),
        ] {
            // The extra member replaces the document's own (a member
            // named twice is refused before any of these rules).
            let mut merged: serde_json::Map<String, Value> =
                serde_json::from_str(&doc("")).unwrap();
            let extra: serde_json::Map<String, Value> =
                serde_json::from_str(&format!("{{{}}}", &extra[1..])).unwrap();
            merged.extend(extra);
            let body = Value::Object(merged).to_string();
            match check(&body) {
                Err(ClientMetadataError::Metadata { code: c, .. }) => assert_eq!(c, code, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
            // At the authorization endpoint: invalid_client, on an error page.
            assert_eq!(
                check(&body).unwrap_err().to_oauth_error().code,
                ErrorCode::InvalidClient
            );
        }
        let no_uris = format!(r#"{{"client_id":"{URL}"}}"#);
        assert!(matches!(
            check(&no_uris),
            Err(ClientMetadataError::Metadata {
                code: ErrorCode::InvalidRedirectUri,
                ..
            })
        ));
    }

    #[test]
    fn size_and_syntax_draft_6_6() {
        let big = doc(&format!(
            r#","x":"{}""#,
            "a".repeat(DEFAULT_MAX_DOCUMENT_BYTES)
        ));
        assert!(matches!(
            check(&big),
            Err(ClientMetadataError::TooLarge(5120))
        ));
        for body in ["", "not json", "[1]", "\"x\"", "{", "null"] {
            assert!(
                matches!(check(body), Err(ClientMetadataError::NotJson)),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_map_to_rfc_codes() {
        let e = ClientMetadataError::Url(ClientIdUrlError::Fragment).to_oauth_error();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = ClientMetadataError::Busy.to_oauth_error();
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        let e = ClientMetadataError::Fetch(FetchError::ForbiddenAddress([10, 0, 0, 1].into()))
            .to_oauth_error();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        // The cause is for the log, not for whoever named the URL.
        assert!(!e.to_string().contains("10.0.0.1"));
        let e = ClientMetadataError::Fetch(FetchError::Status(404)).to_oauth_error();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    fn entry(at: OffsetDateTime, ttl: Duration, bytes: usize) -> Cached {
        let c = Client::public(ClientId::new("x").unwrap(), "x");
        Cached {
            client: Arc::new(c),
            expires_at: at + ttl,
            bytes,
            used: 0,
            hits: 0,
            retry_at: None,
        }
    }

    #[test]
    fn the_cache_is_bounded_in_count_bytes_and_time_draft_5_2() {
        let mut cache = Cache::default();
        let ttl = Duration::minutes(10);
        for i in 0..1_000 {
            cache.insert(format!("u{i}"), entry(T0, ttl, 100), T0, 10, 10_000);
            assert!(cache.entries.len() <= 10);
        }
        // The most recently used stays when others come.
        cache.insert("keep".into(), entry(T0, ttl, 100), T0, 10, 10_000);
        for i in 0..20 {
            assert!(cache.get("keep", T0).is_some());
            cache.insert(format!("v{i}"), entry(T0, ttl, 100), T0, 10, 10_000);
        }
        assert!(cache.get("keep", T0).is_some());
        // A document that answered a lookup outlives a flood of documents
        // fetched once each and never asked for again, however recent.
        cache.insert("in-use".into(), entry(T0, ttl, 100), T0, 10, 10_000);
        assert!(cache.get("in-use", T0).is_some());
        for i in 0..50 {
            cache.insert(format!("w{i}"), entry(T0, ttl, 100), T0, 10, 10_000);
        }
        assert!(cache.get("in-use", T0).is_some());
        // Bytes: big entries push the others out; one too big is not kept.
        cache.insert("big".into(), entry(T0, ttl, 9_000), T0, 10, 10_000);
        assert!(cache.bytes <= 10_000);
        cache.insert("huge".into(), entry(T0, ttl, 20_000), T0, 10, 10_000);
        assert!(cache.get("huge", T0).is_none());
        // Time: gone at expiry.
        assert!(cache.get("big", T0 + ttl - Duration::seconds(1)).is_some());
        assert!(cache.get("big", T0 + ttl).is_none());
        assert_eq!(
            cache.bytes,
            cache.entries.values().map(|c| c.bytes).sum::<usize>()
        );
    }

    #[test]
    fn cache_ages_honour_max_age_within_bounds() {
        #[derive(Debug)]
        struct Never;
        #[async_trait]
        impl ClientMetadataFetcher for Never {
            async fn fetch(
                &self,
                _: &ClientIdUrl,
                _: usize,
            ) -> Result<FetchedDocument, FetchError> {
                Err(FetchError::Timeout)
            }
        }
        let d = DocumentClients::new(ClientMetadataPolicy::default(), Arc::new(Never));
        let s = std::time::Duration::from_secs;
        assert_eq!(d.cache_age(None), Duration::minutes(10));
        assert_eq!(d.cache_age(Some(s(0))), Duration::minutes(1));
        assert_eq!(d.cache_age(Some(s(300))), Duration::minutes(5));
        assert_eq!(d.cache_age(Some(s(10_000_000))), Duration::days(1));
        // The slot count: at most max_concurrent_fetches at once.
        let d = DocumentClients::new(
            ClientMetadataPolicy::default().with_max_concurrent_fetches(2),
            Arc::new(Never),
        );
        let a = d.slot();
        let b = d.slot();
        assert!(a.is_some() && b.is_some());
        assert!(d.slot().is_none());
        drop(a);
        assert!(d.slot().is_some());
    }
}
