//! Turning the core's framework-neutral answers into axum responses.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera::{AuthorizationRedirect, HttpResponse};

/// A [`tessera::HttpResponse`] as an axum response: the core decided the
/// status, the headers and the body; this only copies them over.
///
/// Every answer of the endpoints in [`router`](crate::router) goes through
/// it, and so can the embedder's own, for instance the redirect that ends an
/// authorization request:
///
/// ```
/// use axum::response::{IntoResponse, Response};
/// use tessera::AuthorizeOutcome;
/// use tessera_axum::TesseraResponse;
///
/// fn answer(outcome: AuthorizeOutcome) -> Response {
///     match outcome {
///         // `303 See Other` to the client, with `code` (or `error`), `state` and `iss`.
///         AuthorizeOutcome::Redirect(redirect) => TesseraResponse::from(redirect).into_response(),
///         // Login and consent pages, and error pages, are the embedder's.
///         _ => "a page of your own".into_response(),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TesseraResponse(pub HttpResponse);

impl TesseraResponse {
    /// The core's response.
    pub fn into_inner(self) -> HttpResponse {
        self.0
    }
}

impl From<HttpResponse> for TesseraResponse {
    fn from(response: HttpResponse) -> Self {
        Self(response)
    }
}

impl From<AuthorizationRedirect> for TesseraResponse {
    /// `303 See Other` to the client's redirect URI.
    fn from(redirect: AuthorizationRedirect) -> Self {
        Self(redirect.to_http())
    }
}

impl From<&AuthorizationRedirect> for TesseraResponse {
    /// `303 See Other` to the client's redirect URI.
    fn from(redirect: &AuthorizationRedirect) -> Self {
        Self(redirect.to_http())
    }
}

impl IntoResponse for TesseraResponse {
    fn into_response(self) -> Response {
        match convert(self.0) {
            Ok(response) => response,
            Err(what) => {
                // The core only builds valid statuses and headers; should one
                // ever not be, answer the RFC's `server_error` rather than
                // sending a mangled response. The value is not logged: a
                // `Location` may carry a code.
                tracing::error!(
                    invalid = what,
                    "the core produced a response axum cannot represent"
                );
                convert(HttpResponse::server_error())
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }
    }
}

/// Answers with one part of an authorization outcome or any core response:
/// `respond(redirect)` is `TesseraResponse::from(redirect).into_response()`.
pub fn respond(part: impl Into<TesseraResponse>) -> Response {
    part.into().into_response()
}

fn convert(response: HttpResponse) -> Result<Response, &'static str> {
    let HttpResponse {
        status,
        headers,
        body,
    } = response;
    let status = StatusCode::from_u16(status).map_err(|_| "status")?;
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    let map = out.headers_mut();
    // One more for the `Content-Length` axum adds: reserving exactly the
    // core's headers left no room for it, and a `HeaderMap` that grows
    // moves every entry: 1,300 of the 39,000 instructions a token request
    // took (bench/README.md).
    map.reserve(headers.len() + 1);
    for (name, value) in headers {
        let name = header_name(name)?;
        // Checked once (RFC 9110 §5.5: visible characters, SP, HTAB and
        // obs-text; no CR, LF or other controls) and never copied:
        // the core's constants ("no-store", "application/json") are lent as
        // they are, an owned value hands over its buffer.
        let value = match value {
            Cow::Borrowed(text) => {
                HeaderValue::from_maybe_shared(Bytes::from_static(text.as_bytes()))
            }
            Cow::Owned(text) => HeaderValue::try_from(text),
        }
        .map_err(|_| "header value")?;
        map.append(name, value);
    }
    Ok(out)
}

/// The core's header names, most of them constants: the ones on every
/// token answer map to `http`'s own without being parsed again.
fn header_name(name: &'static str) -> Result<HeaderName, &'static str> {
    use axum::http::header;
    Ok(match name {
        "content-type" => header::CONTENT_TYPE,
        "cache-control" => header::CACHE_CONTROL,
        "pragma" => header::PRAGMA,
        "www-authenticate" => header::WWW_AUTHENTICATE,
        "location" => header::LOCATION,
        _ => HeaderName::from_bytes(name.as_bytes()).map_err(|_| "header name")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_status_headers_and_body() {
        let core = HttpResponse::json_no_store(400, "{\"error\":\"invalid_request\"}");
        let response = TesseraResponse(core).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let headers = response.headers();
        assert_eq!(
            headers.get("content-type").map(HeaderValue::as_bytes),
            Some(&b"application/json"[..])
        );
        assert_eq!(
            headers.get("cache-control").map(HeaderValue::as_bytes),
            Some(&b"no-store"[..])
        );
    }

    #[test]
    fn keeps_repeated_headers() {
        let mut core = HttpResponse::json(200, "{}".into());
        core.headers.push(("vary", "a".into()));
        core.headers.push(("vary", "b".into()));
        let response = TesseraResponse(core).into_response();
        assert_eq!(response.headers().get_all("vary").iter().count(), 2);
    }

    #[test]
    fn borrowed_values_beyond_visible_ascii_are_kept_and_bad_ones_refused() {
        let mut core = HttpResponse::json(200, "{}".into());
        core.headers.push(("x-a", Cow::Borrowed("caf\u{e9}")));
        let response = TesseraResponse(core).into_response();
        assert_eq!(
            response.headers().get("x-a").map(HeaderValue::as_bytes),
            Some("caf\u{e9}".as_bytes())
        );
        let mut core = HttpResponse::json(200, "{}".into());
        core.headers.push(("x-a", Cow::Borrowed("a\r\nb: c")));
        let response = TesseraResponse(core).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn known_and_other_header_names_arrive_and_a_bad_one_is_refused() {
        let mut core = HttpResponse::json_no_store(401, "{}");
        core.headers.push(("www-authenticate", "Bearer".into()));
        core.headers.push(("location", "https://c.example/".into()));
        core.headers.push(("DPoP-Nonce", "n".into()));
        let response = TesseraResponse(core).into_response();
        let headers = response.headers();
        for (name, value) in [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("pragma", "no-cache"),
            ("www-authenticate", "Bearer"),
            ("location", "https://c.example/"),
            ("dpop-nonce", "n"),
        ] {
            assert_eq!(
                headers.get(name).map(HeaderValue::as_bytes),
                Some(value.as_bytes()),
                "{name}"
            );
        }
        let mut core = HttpResponse::json(200, "{}".into());
        core.headers.push(("bad name", "x".into()));
        let response = TesseraResponse(core).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unrepresentable_response_becomes_server_error() {
        let core = HttpResponse::redirect("https://client.example/cb\r\nx: y".into());
        let response = TesseraResponse(core).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get("location").is_none());
    }
}
