//! # tessera-client-metadata: fetching client ID metadata documents safely
//!
//! The [`tessera::ClientMetadataFetcher`] for Tessera's client ID metadata
//! documents (draft-ietf-oauth-client-id-metadata-document): the core names
//! a URL that anyone on the internet chose, and this crate fetches it
//! without letting that anyone reach what the server can reach and they
//! cannot (server-side request forgery, draft §6.5):
//!
//! - `https` only;
//! - the host is resolved here, and refused if it is, or any of its
//!   addresses is, a special-use address ([`is_special_use`]: loopback,
//!   private, link-local, shared (CGNAT), multicast, unspecified, documentation,
//!   IPv4-mapped or -translated forms of those, ...); the connection goes to
//!   the addresses vetted, never to a second resolution (no DNS rebinding
//!   between check and connect);
//! - no proxy from the environment, no redirect followed (draft §4);
//! - at most the core's size limit read ([`tessera::DEFAULT_MAX_DOCUMENT_BYTES`],
//!   5 KiB, draft §6.6), a time limit on the whole exchange
//!   ([`FetcherOptions::timeout`]), a JSON content type, status 200.
//!
//! `Cache-Control: max-age` is passed on for the core's cache (which bounds it).
//!
//! ```no_run
//! use std::sync::Arc;
//! use tessera::ClientMetadataPolicy;
//! use tessera_client_metadata::HttpFetcher;
//! # fn f(builder: tessera::ServerBuilder) -> Result<(), Box<dyn std::error::Error>> {
//! let builder = builder.enable_client_id_metadata_documents(
//!     ClientMetadataPolicy::default(),
//!     Arc::new(HttpFetcher::new()?),
//! );
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod address;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera::{ClientIdUrl, ClientMetadataFetcher, FetchError, FetchedDocument};

pub use address::is_special_use;

/// How an [`HttpFetcher`] fetches. The defaults are for production; the
/// `dangerous_*` switches exist for tests against a local server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetcherOptions {
    /// The most time one fetch may take, resolution, connection, TLS and
    /// body included: 5 seconds.
    pub timeout: Duration,
    /// Fetches `http://` URLs too. Dangerous: a plain-HTTP document can be
    /// replaced by anyone on the path (the draft requires `https`, §3).
    pub dangerous_allow_http: bool,
    /// Fetches from loopback addresses (`127.0.0.0/8`, `::1`) too.
    /// Dangerous: the draft allows it only for a development server on the
    /// same loopback interface (§6.5); in production it lets anyone make the
    /// server call its own local services.
    pub dangerous_allow_loopback: bool,
}

impl Default for FetcherOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            dangerous_allow_http: false,
            dangerous_allow_loopback: false,
        }
    }
}

impl FetcherOptions {
    /// Bounds each fetch to `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Allows `http://` and loopback addresses. Dangerous: for tests
    /// against a server on this machine only.
    #[must_use]
    pub fn dangerous_allow_http_and_loopback(mut self) -> Self {
        self.dangerous_allow_http = true;
        self.dangerous_allow_loopback = true;
        self
    }

    /// Allows `http://` (not loopback). Dangerous: for tests only.
    #[must_use]
    pub fn dangerous_allow_http(mut self) -> Self {
        self.dangerous_allow_http = true;
        self
    }
}

/// Why an [`HttpFetcher`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub struct BuildError(reqwest::Error);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the HTTP client could not be built: {}", self.0)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Fetches client ID metadata documents over HTTPS with the defences the
/// crate documents. Cheap to share: one connection pool for all fetches.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    options: FetcherOptions,
}

/// The answer of the vetting resolver for a host whose addresses include a
/// special-use one; found again in the error chain of the request.
#[derive(Debug)]
struct Forbidden(IpAddr);

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the host resolves to a special-use address ({})", self.0)
    }
}

impl std::error::Error for Forbidden {}

/// The vetting resolver's answer for a host it could not resolve.
#[derive(Debug)]
struct Unresolved(std::io::Error);

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the host could not be resolved: {}", self.0)
    }
}

impl std::error::Error for Unresolved {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Resolves host names for the HTTP client and vets every address: the
/// client connects only to what this returns, so what was checked is what
/// is connected to.
#[derive(Debug)]
struct VettingResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(Unresolved(e)) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            // One special-use address refuses the host: no hoping the
            // connection picks the public one.
            if let Some(bad) = addrs
                .iter()
                .map(SocketAddr::ip)
                .find(|ip| !allowed(*ip, allow_loopback))
            {
                return Err(Box::new(Forbidden(bad)) as Box<dyn std::error::Error + Send + Sync>);
            }
            if addrs.is_empty() {
                let none = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
                return Err(Box::new(Unresolved(none)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether the fetcher may connect to `ip`.
fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_special_use(ip) || (allow_loopback && address::is_loopback(ip))
}

impl HttpFetcher {
    /// A fetcher with the default (production) options.
    pub fn new() -> Result<Self, BuildError> {
        Self::with_options(FetcherOptions::default())
    }

    /// A fetcher with these options.
    pub fn with_options(options: FetcherOptions) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(VettingResolver {
                allow_loopback: options.dangerous_allow_loopback,
            }))
            // Draft §4: "MUST NOT automatically follow HTTP redirects".
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve and connect on
            // its own, past every check here.
            .no_proxy()
            .https_only(!options.dangerous_allow_http)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .pool_max_idle_per_host(1)
            .user_agent(concat!(
                "tessera-client-metadata/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(BuildError)?;
        Ok(Self { client, options })
    }

    /// The options in force.
    pub fn options(&self) -> &FetcherOptions {
        &self.options
    }

    async fn fetch_within_time(
        &self,
        url: &ClientIdUrl,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError> {
        let parsed = url::Url::parse(url.as_str()).map_err(|_| FetchError::Scheme)?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.options.dangerous_allow_http => {}
            _ => return Err(FetchError::Scheme),
        }
        // An address written in the URL is never resolved: vet it here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !allowed(ip, self.options.dangerous_allow_loopback)
        {
            return Err(FetchError::ForbiddenAddress(ip));
        }
        let mut response = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(FetchError::Redirect(status));
        }
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !content_type.as_deref().is_some_and(is_json) {
            return Err(FetchError::NotJson(content_type));
        }
        if response
            .content_length()
            .is_some_and(|n| n > max_bytes as u64)
        {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let max_age = cache_max_age(&max_age);
        // Read no more than the limit, whatever the headers said.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        let document = FetchedDocument::new(body);
        Ok(match max_age {
            Some(age) => document.with_max_age(age),
            None => document,
        })
    }
}

#[async_trait]
impl ClientMetadataFetcher for HttpFetcher {
    async fn fetch(
        &self,
        url: &ClientIdUrl,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError> {
        // The client's own timeout covers the request; this one covers
        // everything, resolution and a trickling body included.
        tokio::time::timeout(self.options.timeout, self.fetch_within_time(url, max_bytes))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }
}

/// `application/json` or `application/<something>+json` (draft §4), any
/// parameters.
fn is_json(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json"
        || media
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"))
}

/// The freshness lifetime of `Cache-Control` (RFC 9111 §5.2.2): `no-store`
/// and `no-cache` give zero (the core then keeps the document for its
/// minimum), `max-age=N` gives N seconds; anything else, none.
fn cache_max_age(cache_control: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = directive.strip_prefix("max-age=") {
            max_age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

/// A reqwest error as the core's [`FetchError`]: the vetting resolver's
/// refusal found in the chain, else a timeout, else a failed exchange.
fn request_error(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(Forbidden(ip)) = s.downcast_ref::<Forbidden>() {
            return FetchError::ForbiddenAddress(*ip);
        }
        source = s.source();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.downcast_ref::<Unresolved>().is_some() {
            return FetchError::Resolve(Box::new(e));
        }
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Connect(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_draft_4() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/oauth-client+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/html",
            "text/json",
            "application/+json",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn cache_control_rfc9111_5_2_2() {
        assert_eq!(cache_max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            cache_max_age("public, max-age=60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(cache_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("max-age=60, no-cache"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("max-age=x"), None);
        assert_eq!(cache_max_age(""), None);
    }
}
