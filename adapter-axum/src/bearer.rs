//! Resource-server side: the bearer-token extractor, its rejection, and a
//! layer that requires scopes.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Request, Uri};
use axum::response::{IntoResponse, Response};
use tessera::{AccessToken, BearerError, ResourceRequest, Server, TokenScheme, TokenVerifier};
use tower::{Layer, Service};

use crate::endpoints::header_text;
use crate::response::TesseraResponse;

/// Why a protected resource refused a request: a [`BearerError`] with the
/// realm to name in the challenge. Its response is the core's
/// ([`BearerError::to_http`]): `401` (no token, or `invalid_token`), `400`
/// (`invalid_request`, e.g. a token in the query) or `403`
/// (`insufficient_scope`), each with `WWW-Authenticate: Bearer ...`
/// (RFC 6750 §3).
///
/// Handlers return it with `?`:
///
/// ```
/// # use axum::Json;
/// # use tessera_axum::{Bearer, BearerRejection};
/// async fn photos(token: Bearer) -> Result<Json<Vec<String>>, BearerRejection> {
///     token.require(&["photos.read"])?;
///     Ok(Json(vec![format!("{}'s photos", token.principal())]))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerRejection(Box<Rejected>);

/// A rejection's parts, boxed: a `Result<_, BearerRejection>` stays one
/// pointer wide on the handler's path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejected {
    error: BearerError,
    realm: String,
    resource_metadata: Option<String>,
    scope_hint: Option<String>,
    scheme: Option<TokenScheme>,
}

impl BearerRejection {
    /// A rejection answered with `realm` in its challenge.
    pub fn new(error: BearerError, realm: impl Into<String>) -> Self {
        Self(Box::new(Rejected {
            error,
            realm: realm.into(),
            resource_metadata: None,
            scope_hint: None,
            scheme: None,
        }))
    }

    /// The same rejection, for a request that presented its token in
    /// `scheme`: one in the `DPoP` scheme is challenged in it whatever was
    /// wrong (RFC 9449 §7.1; [`BearerError::to_http_in`]).
    #[must_use]
    pub fn in_scheme(mut self, scheme: Option<TokenScheme>) -> Self {
        self.0.scheme = scheme;
        self
    }

    /// The same rejection, a `401`'s challenge naming `scope`: what the
    /// route requires ([`require_scope`]) or, by default, the scopes the
    /// resource declared ([`TokenVerifier::scope_hint_at`]; RFC 6750 §3,
    /// the MCP authorization spec's scope selection). `None` names none.
    #[must_use]
    pub fn with_scope_hint(mut self, scope: Option<String>) -> Self {
        self.0.scope_hint = scope;
        self
    }

    /// The same rejection, its challenge naming the protected resource's
    /// metadata URL (RFC 9728 §5.1 `resource_metadata`).
    #[must_use]
    pub fn with_resource_metadata(mut self, url: Option<String>) -> Self {
        self.0.resource_metadata = url;
        self
    }

    /// The `resource_metadata` URL its challenge names, if any.
    pub fn resource_metadata(&self) -> Option<&str> {
        self.0.resource_metadata.as_deref()
    }

    /// The core's error.
    pub fn error(&self) -> &BearerError {
        &self.0.error
    }

    /// The realm of the challenge.
    pub fn realm(&self) -> &str {
        &self.0.realm
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> u16 {
        self.0.error.status()
    }

    /// The core's error.
    pub fn into_error(self) -> BearerError {
        self.0.error
    }
}

impl fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.error.fmt(f)
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.error)
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        TesseraResponse(self.0.error.to_http_in(
            self.0.scheme,
            &self.0.realm,
            self.0.resource_metadata.as_deref(),
            self.0.scope_hint.as_deref(),
        ))
        .into_response()
    }
}

/// The path the client asked for: inside a nested router, axum's
/// `OriginalUri` (the request's own `Uri` has the prefix stripped).
fn request_path<'a>(extensions: &'a Extensions, uri: &'a Uri) -> &'a str {
    extensions
        .get::<OriginalUri>()
        .map_or(uri.path(), |original| original.0.path())
}

/// The request target as the client sent it (path and query), for a DPoP
/// proof's `htu` (RFC 9449 §4.3): inside a nested router, `OriginalUri`'s.
fn request_target<'a>(extensions: &'a Extensions, uri: &'a Uri) -> &'a str {
    let uri = extensions.get::<OriginalUri>().map_or(uri, |o| &o.0);
    uri.path_and_query().map_or(uri.path(), |pq| pq.as_str())
}

/// `scopes` as a challenge's `scope` value (space-separated, RFC 6750 §3),
/// empty ones left out; `None` when none is left.
fn required_scope(scopes: &[String]) -> Option<String> {
    let words: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Validates the request's bearer token with the verifier, for the
/// protected resource the path belongs to (the server's
/// [`Server::verify_bearer_at`], or a remote verifier: audience check,
/// `resource_metadata`).
async fn verify<V: TokenVerifier + ?Sized>(
    verifier: &V,
    headers: &HeaderMap,
    uri: &Uri,
    path: &str,
    (method, target): (&str, &str),
) -> Result<AccessToken, BearerRejection> {
    let authorization = header_text(headers, &AUTHORIZATION);
    let dpop = header_text(headers, &crate::endpoints::DPOP);
    let request = ResourceRequest::new(path)
        .with_authorization(authorization.as_deref())
        .with_query(uri.query())
        .with_dpop(Some(method), Some(target), dpop.as_deref());
    verifier.verify(&request).await.map_err(|error| {
        // The error's code only: never the header, which holds the token.
        match error.code() {
            Some(code) => tracing::debug!(error = %code, "bearer token refused"),
            None => tracing::debug!("no bearer token"),
        }
        BearerRejection::new(error, verifier.realm())
            .with_resource_metadata(verifier.resource_metadata_url_at(path))
            .with_scope_hint(verifier.scope_hint_at(path))
            .in_scheme(tessera::presented_scheme(authorization.as_deref()))
    })
}

/// An extractor for a valid access token, the resource server's side of
/// RFC 6750.
///
/// It reads the `Authorization: Bearer` header (a token in the query is
/// refused with `400 invalid_request`, as URLs leak), asks the core
/// ([`Server::verify_bearer`]) and yields the [`AccessToken`], or rejects
/// with a [`BearerRejection`]. The server comes from the app's state through
/// [`FromRef`], so the extractor works in any app whose state holds a
/// [`Server`]:
///
/// ```
/// use axum::extract::FromRef;
/// use tessera::Server;
/// use tessera_axum::Bearer;
///
/// #[derive(Clone, FromRef)]
/// struct AppState {
///     oauth: Server,
///     // ... the app's own state
/// }
///
/// async fn whoami(token: Bearer) -> String {
///     token.principal().to_owned()
/// }
///
/// // Optional authentication: `None` without credentials, still a
/// // rejection for a bad token.
/// async fn greet(token: Option<Bearer>) -> String {
///     token.map_or("hello, stranger".into(), |t| format!("hello, {}", t.principal()))
/// }
/// ```
///
/// It dereferences to the [`AccessToken`]. Its [`require`](Self::require)
/// checks scopes with a rejection usable with `?`. Behind a
/// [`require_scope`] layer it reuses the token the layer validated.
///
/// A resource server in another process than its authorization server
/// names its verifier as the type parameter, e.g.
/// `Bearer<tessera::SharedVerifier>` (or a verifier of the
/// `tessera-resource-server` crate: local JWT validation against the
/// authorization server's JWKS, or introspection), kept in the state like
/// the server: any [`TokenVerifier`] that is `Clone` and [`FromRef`] the
/// state.
#[derive(Clone)]
pub struct Bearer<V = Server> {
    token: AccessToken,
    server: V,
    resource_metadata: Option<String>,
}

impl<V> fmt::Debug for Bearer<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Bearer").field(&self.token).finish()
    }
}

impl<V: TokenVerifier> Bearer<V> {
    /// Checks the token carries every scope in `scopes`; otherwise `403
    /// insufficient_scope` naming them (RFC 6750 §3.1).
    pub fn require(&self, scopes: &[&str]) -> Result<(), BearerRejection> {
        self.token.require(scopes).map_err(|e| {
            BearerRejection::new(e, self.server.realm())
                .with_resource_metadata(self.resource_metadata.clone())
                .in_scheme(Some(self.token.scheme()))
        })
    }
}

impl<V> Bearer<V> {
    /// The validated token.
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The validated token.
    pub fn into_token(self) -> AccessToken {
        self.token
    }

    /// The verifier that validated it: the [`Server`] by default.
    pub fn verifier(&self) -> &V {
        &self.server
    }
}

impl Bearer<Server> {
    /// The server that validated it.
    pub fn server(&self) -> &Server {
        &self.server
    }
}

impl<V> Deref for Bearer<V> {
    type Target = AccessToken;

    fn deref(&self) -> &AccessToken {
        &self.token
    }
}

impl<St, V> FromRequestParts<St> for Bearer<V>
where
    V: TokenVerifier + Clone + FromRef<St>,
    St: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let server = V::from_ref(state);
        let path = request_path(&parts.extensions, &parts.uri);
        let resource_metadata = server.resource_metadata_url_at(path);
        let token = match parts.extensions.get::<AccessToken>() {
            Some(token) => token.clone(),
            None => {
                let facts = (
                    parts.method.as_str(),
                    request_target(&parts.extensions, &parts.uri),
                );
                verify(&server, &parts.headers, &parts.uri, path, facts).await?
            }
        };
        Ok(Self {
            token,
            server,
            resource_metadata,
        })
    }
}

impl<St, V> OptionalFromRequestParts<St> for Bearer<V>
where
    V: TokenVerifier + Clone + FromRef<St>,
    St: Send + Sync,
{
    type Rejection = BearerRejection;

    /// `None` when the request carries no credentials at all; a token that
    /// is sent must still be valid.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<St>>::from_request_parts(parts, state).await {
            Ok(bearer) => Ok(Some(bearer)),
            Err(rejection) if *rejection.error() == BearerError::Missing => Ok(None),
            Err(rejection) => Err(rejection),
        }
    }
}

/// A layer that lets a request through only with a valid bearer token
/// carrying every scope in `scopes`, and puts the [`AccessToken`] in the
/// request's extensions (for [`Extension<AccessToken>`](axum::Extension) or
/// [`Bearer`]). Otherwise it answers with the [`BearerRejection`].
///
/// Use it with [`Router::route_layer`](axum::Router::route_layer), so that
/// unmatched paths still answer `404`:
///
/// ```
/// use axum::{Extension, Router, routing::{get, post}};
/// use tessera::{AccessToken, Server};
/// use tessera_axum::require_scope;
///
/// async fn list(Extension(token): Extension<AccessToken>) -> String {
///     format!("photos of {}", token.principal())
/// }
/// async fn upload() {}
///
/// fn api(server: &Server) -> Router {
///     let read = Router::new()
///         .route("/api/photos", get(list))
///         .route_layer(require_scope(server.clone(), &["photos.read"]));
///     let write = Router::new()
///         .route("/api/photos/upload", post(upload))
///         .route_layer(require_scope(server.clone(), &["photos.write"]));
///     read.merge(write)
/// }
/// ```
///
/// On a route it also guards the route's other methods (a `POST` to a
/// `get` route is `401` without a token, `405` with one); to answer `405`
/// first, put it on the handler instead: `get(list.layer(require_scope(..)))`
/// ([`Handler::layer`](axum::handler::Handler::layer)).
///
/// A request without a valid token gets `401` with a challenge whose
/// `scope` names the layer's scopes (RFC 6750 §3), so a client asks for
/// what this route needs; with no scopes, the resource's declared ones
/// ([`TokenVerifier::scope_hint_at`]).
///
/// With no scopes it only requires a valid token. The first argument is
/// any [`TokenVerifier`]: the [`Server`], or a remote verifier for a
/// resource server in another process.
pub fn require_scope<V: TokenVerifier + Clone>(server: V, scopes: &[&str]) -> RequireScopeLayer<V> {
    RequireScopeLayer {
        server,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The [`Layer`] of [`require_scope`].
#[derive(Clone)]
pub struct RequireScopeLayer<V = Server> {
    server: V,
    scopes: Arc<[String]>,
}

impl<V> fmt::Debug for RequireScopeLayer<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeLayer")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl<I, V: Clone> Layer<I> for RequireScopeLayer<V> {
    type Service = RequireScope<I, V>;

    fn layer(&self, inner: I) -> Self::Service {
        RequireScope {
            inner,
            server: self.server.clone(),
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The [`Service`] of [`require_scope`].
#[derive(Clone)]
pub struct RequireScope<I, V = Server> {
    inner: I,
    server: V,
    scopes: Arc<[String]>,
}

impl<I, V> fmt::Debug for RequireScope<I, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl<I, V, B> Service<Request<B>> for RequireScope<I, V>
where
    V: TokenVerifier + Clone,
    I: Service<Request<B>> + Clone + Send + 'static,
    I::Response: IntoResponse,
    I::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, I::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone may not be ready: call the one that was polled, keep the clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let server = self.server.clone();
        let scopes = Arc::clone(&self.scopes);
        Box::pin(async move {
            let path = request_path(request.extensions(), request.uri()).to_owned();
            let facts = (
                request.method().as_str(),
                request_target(request.extensions(), request.uri()),
            );
            let token = match verify(&server, request.headers(), request.uri(), &path, facts).await
            {
                Ok(token) => token,
                // A `401`'s challenge names what this route requires (RFC
                // 6750 §3: "the required scope of the access token for
                // accessing the requested resource"), not every scope the
                // resource declared.
                Err(rejection) => {
                    let rejection = match required_scope(&scopes) {
                        Some(scope) => rejection.with_scope_hint(Some(scope)),
                        None => rejection,
                    };
                    return Ok(rejection.into_response());
                }
            };
            let required: Vec<&str> = scopes.iter().map(String::as_str).collect();
            if let Err(error) = token.require(&required) {
                tracing::debug!("bearer token lacks the required scope");
                let rejection = BearerRejection::new(error, server.realm())
                    .with_resource_metadata(server.resource_metadata_url_at(&path))
                    .in_scheme(Some(token.scheme()));
                return Ok(rejection.into_response());
            }
            request.extensions_mut().insert(token);
            inner.call(request).await.map(IntoResponse::into_response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::required_scope;

    /// RFC 6750 §3: `scope` is one or more scope tokens; an empty one, or
    /// none at all, names nothing (never `scope=""`).
    #[test]
    fn the_required_scope_leaves_out_empty_ones() {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(required_scope(&words(&["a", "b"])).as_deref(), Some("a b"));
        assert_eq!(required_scope(&words(&["", "a", ""])).as_deref(), Some("a"));
        assert_eq!(required_scope(&words(&[""])), None);
        assert_eq!(required_scope(&[]), None);
    }
}
