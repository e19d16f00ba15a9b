//! The core's endpoints as rocket routes, with paths taken from the server's
//! configuration.

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::uri::{Absolute, Origin};
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::route::{self, Handler, Route};
use tessera::http::HttpResponse;
use tessera::metadata::WELL_KNOWN_PATH;
use tessera::{Server, Store};

use crate::body::OAuthRequest;
use crate::response::TesseraResponse;

/// Every method rocket can route. The core answers each one at the
/// back-channel endpoints (a `405` for all but `POST`), so none falls
/// through to rocket's `404`.
const ALL_METHODS: [Method; 9] = [
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Metadata,
    Token,
    Revoke,
    Introspect,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Self::Metadata => "tessera: metadata",
            Self::Token => "tessera: token",
            Self::Revoke => "tessera: revocation",
            Self::Introspect => "tessera: introspection",
        }
    }
}

struct EndpointHandler<S> {
    server: Server<S>,
    endpoint: Endpoint,
    /// The exact path served: rocket also routes `/token/` and `//token`
    /// here, which are not the endpoint (and not where axum answers).
    path: Arc<str>,
}

impl<S> Clone for EndpointHandler<S> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
            endpoint: self.endpoint,
            path: Arc::clone(&self.path),
        }
    }
}

impl<S: Store> EndpointHandler<S> {
    async fn answer(&self, req: &Request<'_>, data: Data<'_>) -> HttpResponse {
        if self.endpoint == Endpoint::Metadata {
            // HEAD reaches here as GET (rocket answers it from the GET route).
            return if req.method() == Method::Get {
                self.server.metadata_response()
            } else {
                HttpResponse::method_not_allowed("GET, HEAD")
            };
        }
        let limit = self.server.config().max_body_bytes;
        let request = match OAuthRequest::read(req, data, limit).await {
            Ok(request) => request,
            Err(response) => return response.0,
        };
        let http = request.as_http();
        match self.endpoint {
            Endpoint::Token => self.server.token(&http).await,
            Endpoint::Revoke => self.server.revoke(&http).await,
            Endpoint::Introspect | Endpoint::Metadata => self.server.introspect(&http).await,
        }
    }
}

#[rocket::async_trait]
impl<S: Store> Handler for EndpointHandler<S> {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> route::Outcome<'r> {
        if req.uri().path().as_str() != &*self.path {
            return route::Outcome::forward(data, Status::NotFound);
        }
        route::Outcome::from(req, TesseraResponse(self.answer(req, data).await))
    }
}

/// Why routes could not be built from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// Not a plain absolute path.
    Invalid(String),
    /// Two endpoints at one path.
    Shared(String),
}

impl std::fmt::Display for BadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(path) => write!(
                f,
                "tessera-rocket: endpoint path {path:?} must start with `/` and hold no `<`, `>`, `?`, `#`, `%`, `\\` or spaces"
            ),
            Self::Shared(path) => {
                write!(f, "tessera-rocket: two endpoints share the path {path:?}")
            }
        }
    }
}

/// The path of the issuer URL, without a trailing `/`: `""` for `http://host:port`.
pub(crate) fn issuer_path(issuer: &str) -> String {
    Absolute::parse(issuer)
        .map(|u| u.path().as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// Checks what `Route::new` would otherwise panic on.
fn checked(path: String) -> Result<String, BadPath> {
    let plain = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>?#%\\".contains(&b))
        && Origin::parse_route(&path).is_ok();
    if plain {
        Ok(path)
    } else {
        Err(BadPath::Invalid(path))
    }
}

/// The routes for `server`, to mount at `/`, each answering its exact path
/// only (not `/token/` or `//token`, which rocket would route there too): metadata at the RFC 8414 §3
/// location (the well-known path, then the issuer's path, if any; for an
/// issuer with a path also at that path followed by the well-known one) and the
/// token, revocation and introspection endpoints at the issuer's path
/// followed by [`tessera::config::EndpointPaths`], so they are where the
/// metadata says.
pub(crate) fn routes<S: Store>(server: &Server<S>) -> Result<Vec<Route>, BadPath> {
    let config = server.config();
    let base = issuer_path(&config.issuer);
    let mut endpoints = vec![(Endpoint::Metadata, format!("{WELL_KNOWN_PATH}{base}"))];
    if !base.is_empty() {
        endpoints.push((Endpoint::Metadata, format!("{base}{WELL_KNOWN_PATH}")));
    }
    endpoints.extend([
        (Endpoint::Token, format!("{base}{}", config.paths.token)),
        (Endpoint::Revoke, format!("{base}{}", config.paths.revoke)),
        (
            Endpoint::Introspect,
            format!("{base}{}", config.paths.introspect),
        ),
    ]);
    let mut routes = Vec::new();
    let mut seen = Vec::new();
    for (endpoint, path) in endpoints {
        let path = checked(path)?;
        if seen.contains(&path) {
            return Err(BadPath::Shared(path));
        }
        seen.push(path.clone());
        let handler = EndpointHandler {
            server: server.clone(),
            endpoint,
            path: path.as_str().into(),
        };
        for method in ALL_METHODS {
            // Rocket answers HEAD from the GET route, which is what metadata wants.
            if endpoint == Endpoint::Metadata && method == Method::Head {
                continue;
            }
            let mut route = Route::new(method, &path, handler.clone());
            route.name = Some(endpoint.name().into());
            routes.push(route);
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_paths() {
        assert_eq!(issuer_path("http://127.0.0.1:9000"), "");
        assert_eq!(issuer_path("https://a.example/"), "");
        assert_eq!(issuer_path("https://a.example/tenant/x"), "/tenant/x");
    }

    #[test]
    fn path_checks() {
        assert!(checked("/token".into()).is_ok());
        assert!(checked("/.well-known/oauth-authorization-server".into()).is_ok());
        assert!(checked("token".into()).is_err());
        assert!(checked("/<x>".into()).is_err());
        assert!(checked("/a b".into()).is_err());
        assert!(checked("/a?b".into()).is_err());
    }
}
