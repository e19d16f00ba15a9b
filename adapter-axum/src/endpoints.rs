//! The back-channel endpoints and discovery as an axum [`Router`].

use std::borrow::Cow;
use std::error::Error as StdError;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tessera::metadata::WELL_KNOWN_PATH;
use tessera::{HttpRequest, HttpResponse, OAuthError, Server, Store};
use tracing::Instrument;

use crate::response::TesseraResponse;

/// How much of an oversized body (announced by `Content-Length`) is read
/// and thrown away before answering `413`, so the connection stays usable:
/// closing a socket with unread data makes the kernel reset it, and the
/// client may then lose the answer. Bigger bodies get the answer and a
/// closed connection.
const DRAIN_MAX_BYTES: u64 = 1024 * 1024;
/// How long draining may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The OAuth endpoints of `server` as a router to [`merge`](Router::merge)
/// into the embedder's app.
///
/// Served, below the issuer's path (usually the root):
///
/// - `GET` [`WELL_KNOWN_PATH`]: authorization server metadata (RFC 8414);
///   for an issuer with a path, such as `https://example.com/tenant`, at
///   `/.well-known/oauth-authorization-server/tenant` (RFC 8414 §3.1) and at
///   `/tenant/.well-known/oauth-authorization-server`;
/// - [`paths.token`](tessera::config::EndpointPaths::token) (RFC 6749 §3.2),
///   [`paths.revoke`](tessera::config::EndpointPaths::revoke) (RFC 7009) and
///   [`paths.introspect`](tessera::config::EndpointPaths::introspect)
///   (RFC 7662), for every method: the core answers `405` to all but `POST`.
///
/// The authorization endpoint is not served here: its login and consent
/// pages are the embedder's (see [`AuthorizationQuery`](crate::AuthorizationQuery)).
///
/// Request bodies are capped at
/// [`max_body_bytes`](tessera::Config::max_body_bytes) (64 KiB) by the
/// handlers themselves, without a body-limit layer: a `Content-Length` over
/// it is refused before the body is read, a body without a length is cut
/// off while it is read. Either way the answer is `413` with an
/// `invalid_request` JSON body, and the server goes on serving. Each request
/// runs in a `tracing` span named `oauth` with the method and the path;
/// query strings, headers and bodies are never logged.
///
/// The router carries its own state (the server), so it merges into an app
/// with any state type `T`.
///
/// # Panics
///
/// Like [`Router::route`], if two endpoints share a path or a path is not
/// an absolute path without `{`, `}` or `*` (configuration, not input).
pub fn router<S, T>(server: Server<S>) -> Router<T>
where
    S: Store,
    T: Clone + Send + Sync + 'static,
{
    let config = server.config();
    let prefix = issuer_path(&config.issuer).to_owned();
    let paths = &config.paths;

    let mut metadata_paths = vec![format!("{WELL_KNOWN_PATH}{prefix}")];
    if !prefix.is_empty() {
        metadata_paths.push(format!("{prefix}{WELL_KNOWN_PATH}"));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut checked = |path: String| {
        assert!(
            path.starts_with('/') && !path.contains(['{', '}', '*']),
            "tessera-axum: endpoint path {path:?} must be absolute, without `{{`, `}}` or `*`"
        );
        assert!(
            !seen.contains(&path),
            "tessera-axum: two endpoints share the path {path:?}"
        );
        seen.push(path.clone());
        path
    };

    let mut router = Router::new();
    for path in metadata_paths {
        router = router.route(&checked(path), any(metadata_endpoint::<S>));
    }
    router
        .route(
            &checked(format!("{prefix}{}", paths.token)),
            any(token_endpoint::<S>),
        )
        .route(
            &checked(format!("{prefix}{}", paths.revoke)),
            any(revocation_endpoint::<S>),
        )
        .route(
            &checked(format!("{prefix}{}", paths.introspect)),
            any(introspection_endpoint::<S>),
        )
        .with_state(server)
}

/// The path of the authorization endpoint as the router sees it: the
/// issuer's path followed by [`paths.authorize`](tessera::config::EndpointPaths::authorize),
/// e.g. `/authorize`. Route the embedder's authorization handler there, so
/// that it matches the `authorization_endpoint` the metadata announces.
pub fn authorization_path<S: Store>(server: &Server<S>) -> String {
    let config = server.config();
    format!("{}{}", issuer_path(&config.issuer), config.paths.authorize)
}

/// The path part of the issuer (`""` for `https://example.com`), without a
/// trailing slash. The core has checked the issuer is an http(s) URL without
/// query or fragment.
fn issuer_path(issuer: &str) -> &str {
    let after_scheme = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.trim_end_matches('/')
}

/// The span each request is handled in: method and path. Never the query,
/// which is where a misbehaving client puts secrets.
fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!(
        "oauth",
        method = %request.method(),
        path = %request.uri().path(),
    )
}

async fn metadata_endpoint<S: Store>(
    State(server): State<Server<S>>,
    request: Request,
) -> Response {
    request_span(&request).in_scope(|| {
        let method = request.method();
        let response = if method == Method::GET || method == Method::HEAD {
            server.metadata_response()
        } else {
            HttpResponse::method_not_allowed("GET, HEAD")
        };
        TesseraResponse(response).into_response()
    })
}

async fn token_endpoint<S: Store>(State(server): State<Server<S>>, request: Request) -> Response {
    back_channel(server, request, Endpoint::Token).await
}

async fn revocation_endpoint<S: Store>(
    State(server): State<Server<S>>,
    request: Request,
) -> Response {
    back_channel(server, request, Endpoint::Revocation).await
}

async fn introspection_endpoint<S: Store>(
    State(server): State<Server<S>>,
    request: Request,
) -> Response {
    back_channel(server, request, Endpoint::Introspection).await
}

/// Which core call a back-channel request goes to.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// [`Server::token`] (RFC 6749 §3.2).
    Token,
    /// [`Server::revoke`] (RFC 7009).
    Revocation,
    /// [`Server::introspect`] (RFC 7662).
    Introspection,
}

/// Reads the request and hands it to the core, lending it the request's
/// own method, query, headers and body: nothing is copied, but a repeated
/// header (joined) or a body that arrived in several frames (concatenated).
async fn back_channel<S: Store>(
    server: Server<S>,
    request: Request,
    endpoint: Endpoint,
) -> Response {
    let span = request_span(&request);
    async move {
        let max = server.config().max_body_bytes;
        let (parts, body) = request.into_parts();
        if let Some(declared) = declared_over(&parts.headers, max) {
            return refuse_oversized(&parts.headers, body, declared, max).await;
        }
        let body = match read_body(body, max).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let content_type = header_text(&parts.headers, &CONTENT_TYPE);
        let authorization = header_text(&parts.headers, &AUTHORIZATION);
        let core = HttpRequest {
            method: parts.method.as_str(),
            query: parts.uri.query(),
            content_type: content_type.as_deref(),
            authorization: authorization.as_deref(),
            body: &body,
        };
        let response = match endpoint {
            Endpoint::Token => server.token(&core).await,
            Endpoint::Revocation => server.revoke(&core).await,
            Endpoint::Introspection => server.introspect(&core).await,
        };
        TesseraResponse(response).into_response()
    }
    .instrument(span)
    .await
}

/// A header's value as text for the core. Repeated fields are joined with
/// `", "` (RFC 9110 §5.3), so two `Authorization` headers reach the core as
/// one malformed value instead of the adapter picking one. Bytes that are not
/// UTF-8 become U+FFFD, which no scheme or token accepts: the core then
/// refuses the value itself. A single UTF-8 value (the usual case) is lent
/// from `headers`, not copied.
pub(crate) fn header_text<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<Cow<'h, str>> {
    let mut values = headers.get_all(name).iter();
    let first = text(values.next()?);
    let Some(second) = values.next() else {
        // The usual case: one value, borrowed as it is.
        return Some(first);
    };
    let mut joined = first.into_owned();
    for value in std::iter::once(second).chain(values) {
        joined.push_str(", ");
        joined.push_str(&text(value));
    }
    Some(Cow::Owned(joined))
}

/// A header value's bytes as text: borrowed when they are UTF-8 (checked
/// with [`std::str::from_utf8`], not [`HeaderValue::to_str`], which refuses
/// anything but visible ASCII), else with U+FFFD for what is not.
fn text(value: &HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

/// Reads a body of at most `max` bytes. A body without a `Content-Length`
/// (chunked) is only known to be too large once `max` bytes have arrived:
/// [`Limited`] stops there and the answer is `413`.
async fn read_body(body: Body, max: usize) -> Result<Bytes, Response> {
    match Limited::new(body, max).collect().await {
        // One frame (the usual case) comes back as it is, without a copy.
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if too_large(e.as_ref()) => Err(payload_too_large(max)),
        Err(e) => {
            tracing::debug!(error = %e, "could not read the request body");
            let error = OAuthError::invalid_request("the request body could not be read");
            Err(TesseraResponse(HttpResponse::oauth_error(&error, "")).into_response())
        }
    }
}

/// Whether a body error is (or wraps) [`Limited`]'s length limit being hit.
fn too_large(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// `413 Content Too Large` (RFC 9110 §15.5.14), with an RFC 6749 error body.
fn payload_too_large(max: usize) -> Response {
    TesseraResponse(HttpResponse::payload_too_large(max)).into_response()
}

/// The length `Content-Length` declares, if it is over `max`: such a
/// request is refused before its body is read.
fn declared_over(headers: &HeaderMap, max: usize) -> Option<u64> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    let limit = u64::try_from(max).unwrap_or(u64::MAX);
    (declared > limit).then_some(declared)
}

/// Answers `413` (RFC 9110 §15.5.14) to a body whose `Content-Length`
/// (`declared`) is over `max`, without handing the request to the core. The
/// body is drained (up to [`DRAIN_MAX_BYTES`]) so the connection can carry
/// the next request; beyond that, or if draining stalls, the connection is
/// closed after the answer (RFC 9112 §9.6). Bodies without a length are cut
/// off by [`read_body`].
async fn refuse_oversized(headers: &HeaderMap, body: Body, declared: u64, max: usize) -> Response {
    tracing::info!(
        declared,
        max,
        "request body over the limit refused with 413"
    );
    let mut response = payload_too_large(max);
    // A client waiting for `100 Continue` has sent nothing yet: no draining
    // (RFC 9110 §10.1.1).
    let drained = if headers.contains_key(EXPECT) || declared > DRAIN_MAX_BYTES {
        false
    } else {
        let cap = usize::try_from(DRAIN_MAX_BYTES).unwrap_or(usize::MAX);
        let drain = Limited::new(body, cap).collect();
        matches!(tokio::time::timeout(DRAIN_TIMEOUT, drain).await, Ok(Ok(_)))
    };
    if !drained {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_paths() {
        assert_eq!(issuer_path("http://127.0.0.1:9000"), "");
        assert_eq!(issuer_path("https://example.com/"), "");
        assert_eq!(issuer_path("https://example.com/tenant"), "/tenant");
        assert_eq!(issuer_path("https://example.com/a/b/"), "/a/b");
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = HeaderMap::new();
        assert_eq!(header_text(&headers, &AUTHORIZATION), None);
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        assert_eq!(
            header_text(&headers, &AUTHORIZATION).as_deref(),
            Some("Bearer a")
        );
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(
            header_text(&headers, &AUTHORIZATION).as_deref(),
            Some("Bearer a, Bearer b")
        );
    }

    #[test]
    fn one_value_is_borrowed_even_beyond_ascii() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        assert!(matches!(
            header_text(&headers, &AUTHORIZATION),
            Some(Cow::Borrowed("Bearer a"))
        ));
        // UTF-8 that `HeaderValue::to_str` refuses still arrives as it was.
        let value = HeaderValue::from_bytes("Bearer é".as_bytes()).unwrap();
        headers.insert(AUTHORIZATION, value);
        assert!(matches!(
            header_text(&headers, &AUTHORIZATION),
            Some(Cow::Borrowed("Bearer é"))
        ));
    }

    #[test]
    fn non_utf8_header_bytes_are_replaced() {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_bytes(b"Bearer \xff").unwrap_or(HeaderValue::from_static(""));
        headers.insert(AUTHORIZATION, value);
        assert_eq!(
            header_text(&headers, &AUTHORIZATION).as_deref(),
            Some("Bearer \u{fffd}")
        );
    }
}
