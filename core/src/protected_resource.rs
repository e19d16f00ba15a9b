//! Protected resources and their metadata (RFC 9728).
//!
//! A resource server declares each resource once, as a [`ProtectedResource`]
//! given to [`ServerBuilder::protected_resource`](crate::ServerBuilder::protected_resource):
//! its identifier (the URL clients name with `resource`, RFC 8707), the
//! scopes it understands and the authorization servers that issue its
//! tokens. From that one declaration:
//!
//! - the server knows the resource (a `resource` naming it is accepted);
//! - its metadata document (§2) is served at its well-known path (§3.1,
//!   e.g. `/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`)
//!   through the endpoint table, so every adapter mounts it;
//! - the adapters' bearer extractors and guards on a path within the
//!   resource check that a token's audience is this resource (RFC 8707 §2)
//!   and put `resource_metadata` in every `WWW-Authenticate` challenge
//!   (§5.1), so that a client that knows nothing finds its way from a `401`.

use serde::Serialize;

use crate::http::HttpResponse;
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::server::Server;

/// The well-known path segment of protected resource metadata (RFC 9728 §3),
/// inserted between a resource identifier's host and its path (§3.1).
pub const PROTECTED_RESOURCE_WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// Why a URI cannot identify a protected resource (RFC 9728 §1.2, §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectedResourceError {
    /// Not an `http` or `https` URL with a host. §1.2 asks for `https`;
    /// `http` is accepted, for any host, as the issuer's scheme is (a
    /// development setup like the demo, or a deployment behind a TLS
    /// proxy whose resource names its inner address): use `https` where
    /// clients reach the resource.
    #[error("a protected resource identifier must be an http(s) URL with a host")]
    NotHttp,
    /// It has a query: the well-known URL could not be derived plainly (§1.2: SHOULD NOT).
    #[error("a protected resource identifier must not have a query")]
    Query,
    /// Its path is not plain (letters, digits, `-`, `.`, `_`, `~` in
    /// non-empty segments, no trailing `/` after a path), or the URL is not
    /// written as the URL parser would write it (e.g. an upper-case host,
    /// a default port): the identifier is compared as text, so it must have
    /// one spelling.
    #[error(
        "a protected resource identifier must be a normalised URL with a plain path and no trailing slash"
    )]
    NotPlain,
}

/// A protected resource (RFC 9728): its identifier and what its metadata
/// says. Declared with [`ServerBuilder::protected_resource`](crate::ServerBuilder::protected_resource).
///
/// ```
/// use tessera::{ProtectedResource, ResourceIndicator, Scope};
/// let mcp = ProtectedResource::new(ResourceIndicator::new("https://photos.example/mcp").unwrap())
///     .unwrap()
///     .with_scopes(Scope::parse("photos.read").unwrap())
///     .with_resource_name("PhotoBook MCP");
/// assert_eq!(mcp.metadata_path(), "/.well-known/oauth-protected-resource/mcp");
/// assert_eq!(
///     mcp.metadata_url(),
///     "https://photos.example/.well-known/oauth-protected-resource/mcp"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtectedResource {
    identifier: ResourceIndicator,
    /// The scheme, host and port: `identifier` without its path.
    origin: String,
    /// The identifier's path: empty for a root resource, else `/a/b`.
    path: String,
    scopes: Option<Scope>,
    authorization_servers: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
}

/// The metadata document of a protected resource (RFC 9728 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (§2 `resource`, REQUIRED).
    pub resource: String,
    /// Issuers of the authorization servers whose tokens it accepts (§2).
    pub authorization_servers: Vec<String>,
    /// The scopes it uses (§2), when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// How it accepts bearer tokens (§2): only `header` (RFC 6750 §2.1);
    /// a token in the query is refused, as URLs leak.
    pub bearer_methods_supported: Vec<&'static str>,
    /// A human-readable name (§2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// A page for developers (§2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
}

impl ProtectedResource {
    /// A protected resource identified by `identifier`: an `http(s)` URL
    /// with no query, fragment or trailing slash after a path, written as
    /// the URL parser writes it. Its authorization server is, unless
    /// [`with_authorization_server`](Self::with_authorization_server)
    /// says otherwise, the issuer of the server it is declared to.
    pub fn new(identifier: ResourceIndicator) -> Result<Self, ProtectedResourceError> {
        let text = identifier.as_str();
        let url = url::Url::parse(text).map_err(|_| ProtectedResourceError::NotHttp)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ProtectedResourceError::NotHttp);
        }
        if url.query().is_some() {
            return Err(ProtectedResourceError::Query);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ProtectedResourceError::NotPlain);
        }
        let origin = url.origin().ascii_serialization();
        // §3.1: a terminating slash after the host is removed before the
        // well-known path is inserted; a root resource has no path.
        let path = match text.strip_prefix(origin.as_str()) {
            Some("" | "/") => String::new(),
            Some(path) if path == url.path() && plain_path(path) => path.to_owned(),
            _ => return Err(ProtectedResourceError::NotPlain),
        };
        Ok(Self {
            identifier,
            origin,
            path,
            scopes: None,
            authorization_servers: Vec::new(),
            resource_name: None,
            resource_documentation: None,
        })
    }

    /// The scopes it declared ([`with_scopes`](Self::with_scopes)), if any.
    pub fn scopes(&self) -> Option<&Scope> {
        self.scopes.as_ref()
    }

    /// The scopes it uses, listed as `scopes_supported` (§2).
    #[must_use]
    pub fn with_scopes(mut self, scopes: Scope) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Adds an authorization server (its issuer identifier, RFC 8414) whose
    /// tokens it accepts. Without any, the metadata names the issuer of the
    /// server the resource is declared to.
    #[must_use]
    pub fn with_authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// A human-readable name (§2 `resource_name`).
    #[must_use]
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// A page for developers (§2 `resource_documentation`).
    #[must_use]
    pub fn with_resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// Its identifier: the `resource` clients send and tokens' audience.
    pub fn identifier(&self) -> &ResourceIndicator {
        &self.identifier
    }

    /// The identifier's origin (`scheme://host[:port]`, as the URL parser
    /// writes it).
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The identifier's path (empty for a root resource): requests to it
    /// or below it are requests to this resource.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of its metadata document (§3.1): the well-known path
    /// followed by the identifier's path.
    pub fn metadata_path(&self) -> String {
        format!("{PROTECTED_RESOURCE_WELL_KNOWN_PATH}{}", self.path)
    }

    /// The URL of its metadata document (§3.1), sent as `resource_metadata`
    /// in challenges (§5.1).
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin, self.metadata_path())
    }

    /// Its metadata document (§2).
    pub fn metadata(&self) -> ProtectedResourceMetadata {
        ProtectedResourceMetadata {
            resource: self.identifier.as_str().to_owned(),
            authorization_servers: self.authorization_servers.clone(),
            // §2: a parameter with zero elements "MUST be omitted".
            scopes_supported: self
                .scopes
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.iter().map(str::to_owned).collect()),
            bearer_methods_supported: vec!["header"],
            resource_name: self.resource_name.clone(),
            resource_documentation: self.resource_documentation.clone(),
        }
    }

    /// Whether a request to `path` is a request to this resource: `path` is
    /// its path or below it, segment-wise (`/api` contains `/api/photos`,
    /// not `/apix`).
    pub fn contains_path(&self, path: &str) -> bool {
        match path.strip_prefix(self.path.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || self.path.is_empty(),
            None => false,
        }
    }

    /// Names the server's issuer as its authorization server when none was given.
    pub(crate) fn defaulting_authorization_server(mut self, issuer: &str) -> Self {
        if self.authorization_servers.is_empty() {
            self.authorization_servers.push(issuer.to_owned());
        }
        self
    }
}

/// `/` and non-empty segments of RFC 3986 unreserved characters, none `.`
/// or `..`: a path every framework routes literally and no parser rewrites.
fn plain_path(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|rest| {
        rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
    })
}

impl Server {
    /// The protected resources declared with
    /// [`ServerBuilder::protected_resource`](crate::ServerBuilder::protected_resource).
    pub fn protected_resources(&self) -> &[ProtectedResource] {
        self.protected()
    }

    /// The declared protected resource a request to `path` is for: the one
    /// with the longest path containing it
    /// ([`ProtectedResource::contains_path`]), if any.
    pub fn protected_resource_at(&self, path: &str) -> Option<&ProtectedResource> {
        self.protected()
            .iter()
            .filter(|r| r.contains_path(path))
            .max_by_key(|r| r.path.len())
    }

    /// The resource whose token a request to `path` needs: the declared
    /// one there, else the default resource when it is declared, as
    /// [`verify_access_at`](Self::verify_access_at) checks a path no
    /// declared resource covers against the default. Its challenges then
    /// name what it checks (RFC 9728 §5.1).
    fn resource_checked_at(&self, path: &str) -> Option<&ProtectedResource> {
        self.protected_resource_at(path).or_else(|| {
            let default = self.config().default_resource.as_ref()?;
            self.protected().iter().find(|r| r.identifier() == default)
        })
    }

    /// The `scope` for challenges at `path` to a request without a usable
    /// token: the declared scopes of the resource whose token it needs (the
    /// one there, else the default resource), so that a client knows what
    /// to ask for (RFC 6750 §3; the MCP authorization spec's scope
    /// selection). `None` when it declared none.
    pub fn scope_hint_at(&self, path: &str) -> Option<String> {
        self.resource_checked_at(path)
            .and_then(ProtectedResource::scopes)
            .filter(|s| !s.is_empty())
            .map(ToString::to_string)
    }

    /// The `resource_metadata` URL for challenges at `path` (RFC 9728 §5.1):
    /// the metadata URL of the resource whose token it needs: the one there
    /// ([`protected_resource_at`](Self::protected_resource_at)), else the
    /// default resource when it is declared (the one checked there).
    pub fn resource_metadata_url_at(&self, path: &str) -> Option<String> {
        self.resource_checked_at(path)
            .map(ProtectedResource::metadata_url)
    }

    /// The metadata document of the `index`-th protected resource as an
    /// HTTP response (served by [`Server::handle`]).
    pub(crate) fn protected_resource_metadata_response(&self, index: usize) -> HttpResponse {
        let answer = self
            .protected()
            .get(index)
            .map(|r| serde_json::to_string(&r.metadata()));
        match answer {
            Some(Ok(body)) => HttpResponse::json(200, body),
            Some(Err(e)) => {
                let e = crate::error::OAuthError::server_error().with_source(e);
                e.log("protected resource metadata");
                HttpResponse::oauth_error(&e, &self.config().realm)
            }
            None => HttpResponse::server_error(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(uri: &str) -> Result<ProtectedResource, ProtectedResourceError> {
        ProtectedResource::new(ResourceIndicator::new(uri).unwrap())
    }

    #[test]
    fn well_known_path_goes_before_the_resource_path_rfc9728_3_1() {
        let r = resource("http://127.0.0.1:9000/mcp").unwrap();
        assert_eq!(
            r.metadata_path(),
            "/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            r.metadata_url(),
            "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp"
        );
        let r = resource("https://api.example/v1/photos").unwrap();
        assert_eq!(
            r.metadata_url(),
            "https://api.example/.well-known/oauth-protected-resource/v1/photos"
        );
        for root in ["https://api.example", "https://api.example/"] {
            let r = resource(root).unwrap();
            assert_eq!(r.metadata_path(), "/.well-known/oauth-protected-resource");
            assert!(r.contains_path("/anything"));
        }
    }

    #[test]
    fn identifiers_have_one_spelling() {
        assert_eq!(
            resource("ftp://a.example/x").err(),
            Some(ProtectedResourceError::NotHttp)
        );
        assert_eq!(
            resource("urn:x:y").err(),
            Some(ProtectedResourceError::NotHttp)
        );
        assert_eq!(
            resource("https://a.example/x?y=1").err(),
            Some(ProtectedResourceError::Query)
        );
        for bad in [
            "https://A.example/x",
            "https://a.example:443/x",
            "https://a.example/x/",
            "https://a.example/a/../x",
            "https://a.example/%41",
            "https://u@a.example/x",
        ] {
            assert_eq!(
                resource(bad).err(),
                Some(ProtectedResourceError::NotPlain),
                "{bad}"
            );
        }
    }

    #[test]
    fn contains_paths_segment_wise() {
        let r = resource("https://a.example/api").unwrap();
        assert!(r.contains_path("/api"));
        assert!(r.contains_path("/api/photos"));
        assert!(!r.contains_path("/apix"));
        assert!(!r.contains_path("/mcp"));
        assert!(!r.contains_path("/"));
    }

    #[test]
    fn metadata_document_rfc9728_2() {
        let r = resource("https://a.example/mcp")
            .unwrap()
            .with_scopes(Scope::parse("photos.read").unwrap())
            .with_resource_name("MCP")
            .defaulting_authorization_server("https://a.example");
        let json: serde_json::Value = serde_json::to_value(r.metadata()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://a.example/mcp",
                "authorization_servers": ["https://a.example"],
                "scopes_supported": ["photos.read"],
                "bearer_methods_supported": ["header"],
                "resource_name": "MCP",
            })
        );
        let other = resource("https://a.example/mcp")
            .unwrap()
            .with_authorization_server("https://as.example")
            .defaulting_authorization_server("https://a.example");
        assert_eq!(
            other.metadata().authorization_servers,
            ["https://as.example"]
        );
        // §2: zero elements, omitted.
        let none = resource("https://a.example/mcp")
            .unwrap()
            .with_scopes(Scope::empty())
            .defaulting_authorization_server("https://a.example");
        let json: serde_json::Value = serde_json::to_value(none.metadata()).unwrap();
        assert!(json.get("scopes_supported").is_none(), "{json}");
    }
}
