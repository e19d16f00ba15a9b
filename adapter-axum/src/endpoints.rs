//! The core's endpoint table as an axum [`Router`]: every route the core
//! lists, every method, each request translated into a
//! [`tessera::HttpRequest`] and the core's answer back. No path, method or
//! protocol decision is made here.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::Future as _;
use std::net::SocketAddr;
use std::task::Poll;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tessera::{BodyPlan, Endpoint, HttpRequest, HttpResponse, Server};
use tracing::Instrument;

use crate::response::TesseraResponse;

/// The `DPoP` request header (RFC 9449 §4.1), passed to the core as is.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The OAuth endpoints of `server` as a router to [`merge`](Router::merge)
/// into the embedder's app: every [`Route`](tessera::Route) of
/// [`Server::routes`] (metadata at its RFC 8414 §3 location, the token,
/// revocation and introspection endpoints, and whatever the core serves
/// next), for every method; the core answers `405` to the wrong ones.
///
/// The authorization endpoint is not served here: its login and consent
/// pages are the embedder's, routed at [`Server::authorization_path`] (see
/// [`AuthorizationQuery`](crate::AuthorizationQuery)).
///
/// Request bodies are capped at
/// [`max_body_bytes`](tessera::Config::max_body_bytes) (64 KiB) as the core's
/// [`Server::body_plan`] says, without a body-limit layer: a
/// `Content-Length` over it is refused before the body is read (the body is
/// drained up to a bound so the connection stays usable, else the connection
/// is closed), a body without a length is cut off while it is read. Either
/// way the answer is `413` with an `invalid_request` JSON body. Each request
/// runs in a DEBUG-level `tracing` span named `oauth` with the endpoint and
/// the method (`RUST_LOG=tessera_axum=debug` shows it); query strings,
/// headers and bodies are never logged.
///
/// Serve the app with
/// [`into_make_service_with_connect_info::<SocketAddr>`](Router::into_make_service_with_connect_info):
/// the core then counts one host's share of the budgets anybody can spend
/// (open registration, a public client's pushed and device authorization
/// requests, DPoP proofs) by the peer's address
/// ([`HttpRequest::peer`](tessera::HttpRequest::peer)). Behind a reverse
/// proxy, a layer of yours puts the client's address the proxy vouches for
/// into the request's extensions as [`ConnectInfo<SocketAddr>`]; without
/// `ConnectInfo` only the budgets themselves are counted.
///
/// The router carries its own state (the server), so it merges into an app
/// with any state type `T`. Its paths were checked when the server was
/// built, so this cannot panic on them.
pub fn router<T>(server: Server) -> Router<T>
where
    T: Clone + Send + Sync + 'static,
{
    let mut router = Router::new();
    for route in server.routes() {
        let endpoint = route.endpoint;
        router = router.route(
            &route.path,
            any(move |State(server): State<Server>, request: Request| {
                serve(server, endpoint, request)
            }),
        );
    }
    router.with_state(server)
}

/// Reads the request and hands it to the core, lending it the request's
/// own method, query, headers and body: nothing is copied, but a repeated
/// header (joined) or a body that arrived in several frames (concatenated).
async fn serve(server: Server, endpoint: Endpoint, request: Request) -> Response {
    // DEBUG, as tower-http's `TraceLayer`: at the INFO most deployments
    // log at, a span per request cost more than the event it would frame
    // (bench/README.md), and every event already names its endpoint by
    // its target (`tessera::server::token`, ...).
    let span = tracing::debug_span!(
        "oauth",
        endpoint = endpoint.name(),
        method = %request.method(),
    );
    let work = async move {
        let (parts, body) = request.into_parts();
        let origin = header_text(&parts.headers, &ORIGIN);
        let body = if endpoint.reads_body() {
            let declared = header_text(&parts.headers, &CONTENT_LENGTH);
            let plan = server.body_plan(declared.as_deref(), parts.headers.contains_key(EXPECT));
            match read_body(&server, plan, body).await {
                Ok(body) => body,
                Err(mut response) => {
                    // A page reads this answer too (CORS), as the core's.
                    server.add_cross_origin_headers(endpoint, origin.as_deref(), &mut response);
                    return TesseraResponse(response).into_response();
                }
            }
        } else {
            Bytes::new()
        };
        let content_type = header_text(&parts.headers, &CONTENT_TYPE);
        let authorization = header_text(&parts.headers, &AUTHORIZATION);
        let dpop = header_text(&parts.headers, &DPOP);
        // Where it came from, when served with `ConnectInfo` (or a proxy
        // layer put the client's address there): one host's share of the
        // budgets anybody can spend (`tessera::SourceNetwork`).
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let core = HttpRequest::new(parts.method.as_str())
            .with_query(parts.uri.query())
            .with_content_type(content_type.as_deref())
            .with_authorization(authorization.as_deref())
            .with_dpop(dpop.as_deref())
            .with_origin(origin.as_deref())
            .with_peer(peer)
            .with_body(&body);
        TesseraResponse(server.handle(endpoint, &core).await).into_response()
    };
    // A disabled span still costs a check on every poll when instrumented.
    if span.is_disabled() {
        work.await
    } else {
        work.instrument(span).await
    }
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

/// Reads the body as the core's plan says: at most `max` bytes (a body
/// without a `Content-Length` is only known to be too large once `max`
/// bytes have arrived: [`Limited`] stops there), or the core's `413` at
/// once, draining what it allows.
async fn read_body(server: &Server, plan: BodyPlan, body: Body) -> Result<Bytes, HttpResponse> {
    let max = match plan {
        BodyPlan::Read { max } => max,
        BodyPlan::Refuse {
            response,
            drain,
            drain_timeout,
        } => {
            let drained = match drain {
                Some(bytes) => {
                    matches!(
                        tokio::time::timeout(drain_timeout, discard(body, bytes)).await,
                        Ok(true)
                    )
                }
                None => false,
            };
            let mut response = response;
            if !drained {
                response.headers.push(("connection", "close".into()));
            }
            return Err(response);
        }
        _ => server.config().max_body_bytes,
    };
    let mut read = std::pin::pin!(Limited::new(body, max).collect());
    // A form body usually arrives with the head: taken at once, it needs no
    // timer (whose deadline reads the clock and whose runtime handle is a
    // reference count every worker thread writes).
    let at_once = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let read = match at_once {
        Poll::Ready(read) => Ok(read),
        Poll::Pending => tokio::time::timeout(tessera::BODY_READ_TIMEOUT, read).await,
    };
    match read {
        // One frame (the usual case) comes back as it is, without a copy.
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if too_large(e.as_ref()) => Err(server.body_too_large()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not read the request body");
            Err(server.body_unreadable())
        }
        Err(_) => Err(server.body_timed_out()),
    }
}

/// Reads a refused body to its end and keeps none of it, so the connection
/// can serve the next request: `true` when it ended within `cap` bytes.
/// (Collecting it, even under a limit, held up to `cap` bytes per
/// connection for the drain's timeout.)
async fn discard(mut body: Body, cap: u64) -> bool {
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return false };
        if let Some(data) = frame.data_ref() {
            seen = seen.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
            if seen > cap {
                return false;
            }
        }
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;

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
