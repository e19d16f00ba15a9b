//! The endpoint table: which endpoints exist, at which paths, answering
//! which methods, and the one entry point that serves them all
//! ([`Server::handle`]).
//!
//! The table is computed from configuration and checked when the server is
//! built (a bad or shared path is a [`BuildError`]). An adapter mounts every
//! [`Route`] of [`Server::routes`] for every method, translates the request
//! into an [`HttpRequest`], calls [`Server::handle`] and translates the
//! [`HttpResponse`] back: an endpoint added to the core appears in every
//! adapter with no adapter code.

use crate::config::EndpointPaths;
use crate::error::OAuthError;
use crate::http::{BodyPlan, DRAIN_MAX_BYTES, DRAIN_TIMEOUT, HttpRequest, HttpResponse};
use crate::server::{BuildError, Server};

/// The path of authorization server metadata, relative to the issuer's host
/// (RFC 8414 §3); an issuer's own path goes after it (§3.1).
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-authorization-server";

/// An endpoint the core serves over HTTP.
///
/// The authorization endpoint is not one of them: its login and consent
/// pages are the embedder's, which calls [`Server::authorize`] and serves
/// it at [`Server::authorization_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// Authorization server metadata (RFC 8414).
    Metadata,
    /// The token endpoint (RFC 6749 §3.2).
    Token,
    /// Token revocation (RFC 7009).
    Revocation,
    /// Token introspection (RFC 7662).
    Introspection,
    /// Device authorization (RFC 8628 §3.1), when the device grant is on.
    DeviceAuthorization,
    /// Pushed authorization requests (RFC 9126 §2).
    PushedAuthorization,
    /// The JSON Web Key Set (RFC 7517 §5) that verifies the server's JWT
    /// access tokens (RFC 9068), when it has signing keys: `jwks_uri`.
    Jwks,
    /// Dynamic client registration (RFC 7591 §3), when enabled.
    Registration,
    /// The metadata of the `n`-th protected resource declared with
    /// [`ServerBuilder::protected_resource`](crate::ServerBuilder::protected_resource)
    /// (RFC 9728 §3), see [`Server::protected_resources`].
    ProtectedResourceMetadata(usize),
}

impl Endpoint {
    /// The methods it answers; any other gets `405` with an `Allow` header
    /// listing these.
    pub const fn methods(self) -> &'static [&'static str] {
        match self {
            Self::Metadata | Self::Jwks | Self::ProtectedResourceMetadata(_) => &["GET", "HEAD"],
            Self::Token
            | Self::Revocation
            | Self::Introspection
            | Self::DeviceAuthorization
            | Self::PushedAuthorization
            | Self::Registration => &["POST"],
        }
    }

    /// A short name, for logs, spans and route names.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Token => "token",
            Self::Revocation => "revocation",
            Self::Introspection => "introspection",
            Self::DeviceAuthorization => "device_authorization",
            Self::PushedAuthorization => "pushed_authorization",
            Self::Jwks => "jwks",
            Self::Registration => "registration",
            Self::ProtectedResourceMetadata(_) => "protected_resource_metadata",
        }
    }

    /// Whether the endpoint reads a request body (adapters may skip reading
    /// one for the others).
    pub const fn reads_body(self) -> bool {
        !matches!(
            self,
            Self::Metadata | Self::Jwks | Self::ProtectedResourceMetadata(_)
        )
    }

    /// Whether a page of another origin may call it with `fetch` under
    /// `policy` (CORS): the public documents unless CORS is off; the
    /// endpoints a browser app calls when the policy says so; never
    /// introspection, which only resource servers call.
    pub const fn allows_cross_origin(self, policy: crate::config::CrossOrigin) -> bool {
        use crate::config::CrossOrigin;
        match policy {
            CrossOrigin::Off => false,
            CrossOrigin::Documents => self.is_document(),
            CrossOrigin::ClientEndpoints => !matches!(self, Self::Introspection),
        }
    }

    /// A public document (metadata, JWKS): the same for every reader.
    const fn is_document(self) -> bool {
        matches!(
            self,
            Self::Metadata | Self::Jwks | Self::ProtectedResourceMetadata(_)
        )
    }

    fn allow_header(self) -> &'static str {
        match self {
            Self::Metadata | Self::Jwks | Self::ProtectedResourceMetadata(_) => "GET, HEAD",
            Self::Token
            | Self::Revocation
            | Self::Introspection
            | Self::DeviceAuthorization
            | Self::PushedAuthorization
            | Self::Registration => "POST",
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of the endpoint table: an endpoint and the exact path it is
/// served at (the issuer's path included), e.g. `/tenant/token`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The absolute path, checked at build time to be plain: `/` followed
    /// by segments of letters, digits, `-`, `.`, `_` and `~`.
    pub path: String,
}

/// The table, computed once by the builder.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    routes: Vec<Route>,
    authorization: String,
    device_verification: String,
    origin: String,
    /// The issuer's path without its trailing `/` (empty for none).
    base: String,
}

impl Routes {
    /// The table for an issuer whose URL path is `issuer_path` and the
    /// configured `paths`: metadata at the well-known path followed by the
    /// issuer's path (RFC 8414 §3.1) and, for an issuer with a path, also at
    /// the issuer's path followed by the well-known path (where many clients
    /// look); every other endpoint at the issuer's path followed by its own.
    pub(crate) fn compute(
        issuer: &str,
        issuer_path: &str,
        paths: &EndpointPaths,
        device_grant: bool,
        registration: bool,
    ) -> Result<Self, BuildError> {
        let base = issuer_path.trim_end_matches('/');
        let origin = issuer.strip_suffix(base).unwrap_or(issuer).to_owned();
        let mut wanted = vec![(Endpoint::Metadata, format!("{WELL_KNOWN_PATH}{base}"))];
        if !base.is_empty() {
            wanted.push((Endpoint::Metadata, format!("{base}{WELL_KNOWN_PATH}")));
        }
        wanted.extend([
            (Endpoint::Token, format!("{base}{}", paths.token)),
            (Endpoint::Revocation, format!("{base}{}", paths.revoke)),
            (
                Endpoint::Introspection,
                format!("{base}{}", paths.introspect),
            ),
            (
                Endpoint::PushedAuthorization,
                format!("{base}{}", paths.pushed_authorization),
            ),
        ]);
        if device_grant {
            wanted.push((
                Endpoint::DeviceAuthorization,
                format!("{base}{}", paths.device_authorization),
            ));
        }
        if registration {
            wanted.push((
                Endpoint::Registration,
                format!("{base}{}", paths.registration),
            ));
        }
        let authorization = format!("{base}{}", paths.authorize);
        check_path("authorization", &authorization)?;
        let device_verification = format!("{base}{}", paths.device_verification);
        check_path("device verification", &device_verification)?;
        if device_grant && device_verification == authorization {
            return Err(BuildError::DuplicatePath(device_verification));
        }
        let mut routes: Vec<Route> = Vec::with_capacity(wanted.len());
        for (endpoint, path) in wanted {
            check_path(endpoint.name(), &path)?;
            let pages = [authorization.as_str(), device_verification.as_str()];
            if pages.contains(&path.as_str()) || routes.iter().any(|r| r.path == path) {
                return Err(BuildError::DuplicatePath(path));
            }
            routes.push(Route { endpoint, path });
        }
        Ok(Self {
            routes,
            authorization,
            device_verification,
            origin,
            base: base.to_owned(),
        })
    }

    /// Adds the metadata route of each protected resource (RFC 9728 §3.1),
    /// checked like every other path; for a resource below an issuer with
    /// a path, also at the issuer's path followed by the well-known path
    /// and the rest (`{issuer}/.well-known/oauth-protected-resource/mcp`,
    /// where DEMO-CONTRACT and many clients look, as for the server's own
    /// metadata, RFC 8414 §3.1's note).
    pub(crate) fn add_protected_resources(
        &mut self,
        resources: &[crate::protected_resource::ProtectedResource],
    ) -> Result<(), BuildError> {
        for (index, resource) in resources.iter().enumerate() {
            let endpoint = Endpoint::ProtectedResourceMetadata(index);
            let below_issuer = (!self.base.is_empty() && resource.origin() == self.origin)
                .then(|| resource.path().strip_prefix(self.base.as_str()))
                .flatten()
                .filter(|rest| rest.starts_with('/'))
                .map(|rest| {
                    let well_known = crate::protected_resource::PROTECTED_RESOURCE_WELL_KNOWN_PATH;
                    format!("{}{well_known}{rest}", self.base)
                });
            for path in std::iter::once(resource.metadata_path()).chain(below_issuer) {
                check_path(endpoint.name(), &path)?;
                let pages = [
                    self.authorization.as_str(),
                    self.device_verification.as_str(),
                ];
                if pages.contains(&path.as_str()) || self.routes.iter().any(|r| r.path == path) {
                    return Err(BuildError::DuplicatePath(path));
                }
                self.routes.push(Route { endpoint, path });
            }
        }
        Ok(())
    }

    /// The table with the JWKS endpoint at `path` (the issuer's path
    /// included), checked like every other.
    pub(crate) fn with_jwks(mut self, path: String) -> Result<Self, BuildError> {
        check_path(Endpoint::Jwks.name(), &path)?;
        let taken = path == self.authorization
            || path == self.device_verification
            || self.routes.iter().any(|r| r.path == path);
        if taken {
            return Err(BuildError::DuplicatePath(path));
        }
        self.routes.push(Route {
            endpoint: Endpoint::Jwks,
            path,
        });
        Ok(self)
    }

    pub(crate) fn device_verification(&self) -> &str {
        &self.device_verification
    }

    /// The issuer's scheme, host and port: what a path is appended to for
    /// an absolute URL.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn path_of(&self, endpoint: Endpoint) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.endpoint == endpoint)
            .map(|r| r.path.as_str())
    }
}

/// A path every framework routes literally: `/`, then non-empty segments of
/// RFC 3986 unreserved characters, none of them `.` or `..`.
fn check_path(endpoint: &'static str, path: &str) -> Result<(), BuildError> {
    let plain = path.strip_prefix('/').is_some_and(|rest| {
        rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
    });
    if plain {
        Ok(())
    } else {
        Err(BuildError::InvalidPath {
            endpoint,
            path: path.to_owned(),
        })
    }
}

/// A `200` JSON answer that must not be cached.
fn json_200(answer: &impl serde::Serialize) -> Result<HttpResponse, OAuthError> {
    serde_json::to_vec(answer)
        .map(|body| HttpResponse::json_no_store(200, body))
        .map_err(|e| OAuthError::server_error().with_source(e))
}

impl Server {
    /// Every endpoint the core serves, with its path: what an adapter mounts.
    pub fn routes(&self) -> &[Route] {
        &self.routes_table().routes
    }

    /// The endpoint served at exactly `path`, if any: for adapters whose
    /// framework routes to one handler.
    pub fn endpoint_at(&self, path: &str) -> Option<Endpoint> {
        self.routes()
            .iter()
            .find(|r| r.path == path)
            .map(|r| r.endpoint)
    }

    /// The path the embedder serves the authorization endpoint at (its
    /// pages are the embedder's): the issuer's path followed by
    /// [`EndpointPaths::authorize`], e.g. `/authorize`, so that it is where
    /// the metadata says.
    pub fn authorization_path(&self) -> &str {
        &self.routes_table().authorization
    }

    /// Serves one request to `endpoint`: checks the method (`405` with
    /// `Allow`) and the body size (`413`), dispatches, and renders every
    /// error as the RFC says (JSON body, status, `Cache-Control: no-store`,
    /// `WWW-Authenticate: Basic` on `401 invalid_client`). Errors are
    /// logged here, once ([`OAuthError::log`]).
    ///
    /// The adapter caps the body it reads at
    /// [`max_body_bytes`](crate::Config::max_body_bytes) and answers an
    /// over-long one with [`Server::body_too_large`]; a body that still
    /// arrives over the cap gets the same answer here.
    pub async fn handle(&self, endpoint: Endpoint, request: &HttpRequest<'_>) -> HttpResponse {
        // A CORS preflight (Fetch standard §3.2.2; RFC 9110 §9.3.7): which
        // methods and request headers a page may use here
        // (`MCP-Protocol-Version`: MCP clients send it while discovering).
        if request.method == "OPTIONS"
            && request.origin.is_some()
            && endpoint.allows_cross_origin(self.config().cross_origin)
        {
            return HttpResponse {
                status: 204,
                headers: vec![
                    ("access-control-allow-origin", "*".into()),
                    (
                        "access-control-allow-methods",
                        endpoint.allow_header().into(),
                    ),
                    (
                        "access-control-allow-headers",
                        "Authorization, Content-Type, DPoP, MCP-Protocol-Version".into(),
                    ),
                    ("access-control-max-age", "600".into()),
                ],
                body: Vec::new(),
            };
        }
        let mut response = self.handle_same_origin(endpoint, request).await;
        self.add_cross_origin_headers(endpoint, request.origin, &mut response);
        response
    }

    /// Adds the CORS headers a page's request to `endpoint` gets under
    /// [`Config::cross_origin`](crate::Config::cross_origin), if any
    /// ([`Server::handle`] adds them itself): for the answers an adapter
    /// makes on its own, such as [`Server::body_too_large`] or
    /// [`Server::body_timed_out`], so a page can read those too. `origin`
    /// is the request's `Origin` header.
    pub fn add_cross_origin_headers(
        &self,
        endpoint: Endpoint,
        origin: Option<&str>,
        response: &mut HttpResponse,
    ) {
        // A document says `*` to everyone, so a cache keeps one version;
        // an endpoint only to a page's `fetch` (it sends `Origin`).
        if !endpoint.allows_cross_origin(self.config().cross_origin)
            || (origin.is_none() && !endpoint.is_document())
        {
            return;
        }
        response
            .headers
            .push(("access-control-allow-origin", "*".into()));
        // What a page needs to read: the challenge, the DPoP nonce to retry
        // with (RFC 9449 §8), when to retry.
        response.headers.push((
            "access-control-expose-headers",
            "WWW-Authenticate, DPoP-Nonce, Retry-After".into(),
        ));
    }

    /// [`handle`](Self::handle) without its CORS headers.
    async fn handle_same_origin(
        &self,
        endpoint: Endpoint,
        request: &HttpRequest<'_>,
    ) -> HttpResponse {
        // Methods are case-sensitive (RFC 9110 §9.1): `post` is not `POST`,
        // as Rocket and the DPoP `htm` check also hold.
        if !endpoint.methods().contains(&request.method) {
            return HttpResponse::method_not_allowed(endpoint.allow_header());
        }
        let max = self.config().max_body_bytes;
        if request.body.len() > max {
            return HttpResponse::payload_too_large(max);
        }
        let result = match endpoint {
            Endpoint::Metadata => Ok(self.metadata_response()),
            Endpoint::Jwks => Ok(self.jwks_response()),
            Endpoint::ProtectedResourceMetadata(index) => {
                Ok(self.protected_resource_metadata_response(index))
            }
            Endpoint::Token => self.token_http(request).await,
            Endpoint::Revocation => self
                .revoke(request)
                .await
                .map(|()| HttpResponse::json_no_store(200, "{}")),
            Endpoint::Introspection => self
                .introspect(request)
                .await
                .and_then(|answer| json_200(&answer)),
            Endpoint::DeviceAuthorization => self
                .device_authorization(request)
                .await
                .and_then(|answer| json_200(&answer)),
            Endpoint::Registration => return self.registration_http(request).await,
            Endpoint::PushedAuthorization => self.push(request).await.and_then(|answer| {
                // RFC 9126 §2.2: `201 Created`.
                json_200(&answer).map(|mut r| {
                    r.status = 201;
                    r
                })
            }),
        };
        result.unwrap_or_else(|e| {
            e.log(endpoint.name());
            let mut r = HttpResponse::oauth_error(&e, &self.config().realm);
            if e.code == crate::error::ErrorCode::UseDpopNonce {
                // RFC 9449 §8 (token endpoint), §10.1 (PAR): the nonce to
                // use comes in `DPoP-Nonce`.
                if let Some(nonce) = self.config().dpop.current_nonce(self.now()) {
                    r.headers.push(("dpop-nonce", nonce.into()));
                }
            }
            r
        })
    }

    /// How to read the body of a request that declares `content_length`
    /// (the header's text, if sent); `expects_continue` when it carries
    /// `Expect: 100-continue` (such a client has sent nothing yet, so there
    /// is nothing to drain, RFC 9110 §10.1.1).
    pub fn body_plan(&self, content_length: Option<&str>, expects_continue: bool) -> BodyPlan {
        let max = self.config().max_body_bytes;
        let declared = content_length.and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(declared) if declared > u64::try_from(max).unwrap_or(u64::MAX) => {
                tracing::info!(
                    declared,
                    max,
                    "request body over the limit refused with 413"
                );
                BodyPlan::Refuse {
                    response: self.body_too_large(),
                    drain: (!expects_continue && declared <= DRAIN_MAX_BYTES).then_some(declared),
                    drain_timeout: DRAIN_TIMEOUT,
                }
            }
            _ => BodyPlan::Read { max },
        }
    }

    /// The answer to a request whose body is over
    /// [`max_body_bytes`](crate::Config::max_body_bytes): `413` with an
    /// `invalid_request` body (RFC 9110 §15.5.14).
    pub fn body_too_large(&self) -> HttpResponse {
        HttpResponse::payload_too_large(self.config().max_body_bytes)
    }

    /// The answer to a request whose body could not be read (the client
    /// went away or sent a broken chunked encoding): `400 invalid_request`.
    pub fn body_unreadable(&self) -> HttpResponse {
        let e = OAuthError::invalid_request("the request body could not be read")
            .with_reason(crate::error::Reason::MalformedRequest);
        HttpResponse::oauth_error(&e, &self.config().realm)
    }

    /// The answer to a request whose body did not arrive within
    /// [`BODY_READ_TIMEOUT`](crate::BODY_READ_TIMEOUT): `408` with
    /// `invalid_request` and `Connection: close` (RFC 9110 §15.5.9).
    pub fn body_timed_out(&self) -> HttpResponse {
        tracing::info!("request body too slow; answered 408");
        HttpResponse::request_timeout()
    }

    async fn token_http(&self, request: &HttpRequest<'_>) -> Result<HttpResponse, OAuthError> {
        let response = self.token_response(request).await?;
        // Sized for two tokens and a scope, so the body is written without growing.
        let mut body = Vec::with_capacity(384);
        response
            .write_json(&mut body)
            .map_err(|e| OAuthError::server_error().with_source(e))?;
        Ok(HttpResponse::json_no_store(200, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(
        issuer_path: &str,
        paths: &EndpointPaths,
    ) -> Result<Vec<(Endpoint, String)>, BuildError> {
        Routes::compute("https://as.example", issuer_path, paths, false, false)
            .map(|t| t.routes.into_iter().map(|r| (r.endpoint, r.path)).collect())
    }

    #[test]
    fn root_issuer_serves_metadata_at_the_well_known_path_rfc8414_3() {
        let t = table("/", &EndpointPaths::default()).unwrap();
        assert_eq!(
            t,
            vec![
                (Endpoint::Metadata, WELL_KNOWN_PATH.to_owned()),
                (Endpoint::Token, "/token".to_owned()),
                (Endpoint::Revocation, "/revoke".to_owned()),
                (Endpoint::Introspection, "/introspect".to_owned()),
                (Endpoint::PushedAuthorization, "/par".to_owned()),
            ]
        );
    }

    #[test]
    fn issuer_path_goes_after_the_well_known_path_rfc8414_3_1() {
        let t = Routes::compute(
            "https://as.example/tenant/a",
            "/tenant/a/",
            &EndpointPaths::default(),
            true,
            true,
        )
        .unwrap();
        assert_eq!(
            t.path_of(Endpoint::Registration),
            Some("/tenant/a/register")
        );
        assert_eq!(
            t.path_of(Endpoint::DeviceAuthorization),
            Some("/tenant/a/device_authorization")
        );
        assert_eq!(t.device_verification(), "/tenant/a/device");
        assert_eq!(t.origin(), "https://as.example");
        let metadata: Vec<_> = t
            .routes
            .iter()
            .filter(|r| r.endpoint == Endpoint::Metadata)
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(
            metadata,
            [
                "/.well-known/oauth-authorization-server/tenant/a",
                "/tenant/a/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(t.path_of(Endpoint::Token), Some("/tenant/a/token"));
        assert_eq!(t.authorization, "/tenant/a/authorize");
    }

    #[test]
    fn bad_and_shared_paths_are_build_errors() {
        for bad in [
            "token", "/a b", "/a?b", "/{x}", "/*x", "/a//b", "/a/../b", "/", "/a/", "/%41", "/<x>",
            "/:x",
        ] {
            let paths = EndpointPaths {
                token: bad.into(),
                ..EndpointPaths::default()
            };
            assert!(
                matches!(
                    table("", &paths),
                    Err(BuildError::InvalidPath {
                        endpoint: "token",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let paths = EndpointPaths {
            revoke: "/token".into(),
            ..EndpointPaths::default()
        };
        assert_eq!(
            table("", &paths),
            Err(BuildError::DuplicatePath("/token".into()))
        );
        let paths = EndpointPaths {
            authorize: "/token".into(),
            ..EndpointPaths::default()
        };
        assert_eq!(
            table("", &paths),
            Err(BuildError::DuplicatePath("/token".into()))
        );
        // An issuer path with characters outside the plain set is refused too.
        assert!(matches!(
            table("/a%20b", &EndpointPaths::default()),
            Err(BuildError::InvalidPath { .. })
        ));
    }
}
