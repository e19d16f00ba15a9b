//! Framework-neutral HTTP values. Adapters translate their request into an
//! [`HttpRequest`] and an [`HttpResponse`] back into theirs; every protocol
//! decision (status, headers, body) is made here, once.

use std::borrow::Cow;

use crate::error::OAuthError;
use crate::params::{Flaws, Params};

/// The parts of an HTTP request the protocol looks at, lent by the adapter.
/// Built with [`HttpRequest::new`] and the `with_*` methods, so that parts
/// the core looks at later (a DPoP proof, say) default to absent.
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct HttpRequest<'a> {
    /// The method, e.g. `"POST"`.
    pub method: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body bytes (adapters cap them at [`crate::config::Config::max_body_bytes`]).
    pub body: &'a [u8],
    /// The `DPoP` header (RFC 9449 §4.1): repeated fields joined with
    /// `", "` (which the core refuses: one proof per request, §4.3).
    pub dpop: Option<&'a str>,
    /// The `Origin` header (RFC 6454 §7): sent by browsers on `fetch`; a
    /// request with one gets CORS headers ([`Config::cross_origin`](crate::Config::cross_origin)).
    pub origin: Option<&'a str>,
    /// The address the request came from, if the adapter knows it: what
    /// one host's share of a budget anybody can spend is counted by
    /// ([`SourceNetwork`](crate::SourceNetwork), RFC 6819 §4.4.1.11).
    /// Behind a reverse proxy, the client's address the proxy vouches for,
    /// not the proxy's; `None` counts only the budgets themselves.
    pub peer: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for HttpRequest<'_> {
    /// Headers and bodies carry secrets: only the shape is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .field("has_authorization", &self.authorization.is_some())
            .field("body_len", &self.body.len())
            .field("has_dpop", &self.dpop.is_some())
            .field("origin", &self.origin)
            .field("peer", &self.peer)
            .finish()
    }
}

/// The parameters of the back-channel endpoints that carry a secret: one
/// of them in a request's query is refused ([`HttpRequest::form_params`]),
/// whatever its value (too long, not UTF-8) but an empty one.
pub const SECRET_PARAMETERS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "access_token",
    "device_code",
    "assertion",
    "subject_token",
    "actor_token",
    "password",
];

impl<'a> HttpRequest<'a> {
    /// A request with `method` and nothing else.
    pub fn new(method: &'a str) -> Self {
        Self {
            method,
            ..Self::default()
        }
    }

    /// The raw query string, without `?`.
    #[must_use]
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// The `Content-Type` header.
    #[must_use]
    pub fn with_content_type(mut self, content_type: Option<&'a str>) -> Self {
        self.content_type = content_type;
        self
    }

    /// The `Authorization` header (repeated fields joined with `", "`).
    #[must_use]
    pub fn with_authorization(mut self, authorization: Option<&'a str>) -> Self {
        self.authorization = authorization;
        self
    }

    /// The body.
    #[must_use]
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The `DPoP` header (RFC 9449 §4.1; repeated fields joined with `", "`).
    #[must_use]
    pub fn with_dpop(mut self, dpop: Option<&'a str>) -> Self {
        self.dpop = dpop;
        self
    }

    /// The `Origin` header, sent by browsers (CORS).
    #[must_use]
    pub fn with_origin(mut self, origin: Option<&'a str>) -> Self {
        self.origin = origin;
        self
    }

    /// The address the request came from ([`peer`](Self::peer)).
    #[must_use]
    pub fn with_peer(mut self, peer: Option<std::net::IpAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// A POST with a form body.
    pub fn form_post(body: &'a str, authorization: Option<&'a str>) -> Self {
        Self {
            method: "POST",
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            authorization,
            body: body.as_bytes(),
            dpop: None,
            origin: None,
            peer: None,
        }
    }

    /// The form parameters of a POST to a back-channel endpoint (RFC 6749 §3.2:
    /// POST with `application/x-www-form-urlencoded`), read from the body only.
    ///
    /// The query is not read: RFC 6749 §3.2 lets the endpoint's URI carry
    /// one, and an unrecognized parameter MUST be ignored. But a query that
    /// carries a secret ([`SECRET_PARAMETERS`]: a client secret, a code, a
    /// token, ...) is refused with `invalid_request` naming it, rather than
    /// ignored: the request URI ends up in access logs and proxies, and
    /// client credentials "MUST NOT be included in the request URI" (RFC 6749
    /// §2.3.1; RFC 9700 §4.3 on credentials in URLs). The client learns its
    /// mistake instead of a puzzling "missing parameter".
    ///
    /// Every parameter is treated as one the endpoint reads: any sent twice,
    /// too long or not UTF-8 is `invalid_request`. The built-in endpoints
    /// refuse repeats and non-UTF-8 only in the parameters they read, and
    /// ignore the rest (RFC 6749 §3.2).
    pub fn form_params(&self) -> Result<Params, OAuthError> {
        let (params, flaws) = self.form_params_reporting_flaws()?;
        flaws.refuse_read(|_| true)?;
        Ok(params)
    }

    /// [`form_params`](Self::form_params) with the flaws reported, not
    /// refused: a repeated parameter's first value kept, a malformed one left
    /// out. The endpoint refuses the flaws of the parameters it reads, and
    /// any value too long ([`Flaws::refuse`]), and "MUST ignore" the others
    /// (RFC 6749 §3.2).
    pub(crate) fn form_params_reporting_flaws(&self) -> Result<(Params, Flaws), OAuthError> {
        if let Some(query) = self.query.filter(|q| !q.is_empty()) {
            // Names only: a secret too long or not UTF-8 (left out of the
            // parsed set as malformed) is still refused.
            let (in_query, flaws) = Params::parse_reporting_flaws(query);
            let names = in_query
                .iter()
                .map(|(name, _)| name)
                .chain(flaws.malformed.iter().map(|(name, _)| name.as_str()));
            if let Some(name) = names
                .into_iter()
                .find_map(|name| SECRET_PARAMETERS.iter().find(|s| **s == name))
            {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{name}` must be sent in the request body, not the query"
                ))
                .with_reason(crate::error::Reason::MalformedRequest));
            }
        }
        let is_form = self.content_type.is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        // A POST with no body at all carries no parameters, and some HTTP
        // clients then send no `Content-Type` (a client authenticating by
        // Basic and asking for nothing else, say): zero parameters, not
        // a malformed body.
        let nothing = self.content_type.is_none() && self.body.is_empty();
        if !(is_form || nothing) {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = std::str::from_utf8(self.body)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        Ok(Params::parse_reporting_flaws(body))
    }
}

/// How an adapter reads a request's body for the core: decided by the core
/// from the declared `Content-Length` ([`Server::body_plan`](crate::Server::body_plan)),
/// so every adapter treats an oversized body alike.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyPlan {
    /// Read the body, at most `max` bytes; one that turns out longer (a
    /// chunked body) is answered with [`Server::body_too_large`](crate::Server::body_too_large).
    Read {
        /// The most bytes to read.
        max: usize,
    },
    /// Do not hand the request to the core: answer `response` (`413`,
    /// RFC 9110 §15.5.14) at once. When `drain` is set, read and discard
    /// up to that many bytes of the body within `drain_timeout` first, so the
    /// connection can carry the next request (closing a socket with unread
    /// data makes the kernel reset it, and the client may lose the answer);
    /// when it is not, or draining fails, close the connection after the
    /// answer (RFC 9112 §9.6).
    Refuse {
        /// The answer.
        response: HttpResponse,
        /// How many bytes to drain, if any.
        drain: Option<u64>,
        /// How long draining may take.
        drain_timeout: std::time::Duration,
    },
}

/// The most bytes of an oversized body drained to keep its connection.
pub const DRAIN_MAX_BYTES: u64 = 1024 * 1024;
/// How long draining an oversized body may take.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an accepted body may take to arrive in full: a client that
/// trickles it (a byte every few seconds) would otherwise hold its
/// connection and task for as long as it likes. Past it, the adapters
/// answer [`Server::body_timed_out`](crate::Server::body_timed_out) and close
/// the connection. A token request's body is a few hundred bytes.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An HTTP response, ready for an adapter to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, in order. Values are mostly constants, borrowed for free.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON body that must not be cached (RFC 6749 §5.1: `Cache-Control: no-store`).
    pub fn json_no_store(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", Cow::Borrowed("application/json")),
                ("cache-control", Cow::Borrowed("no-store")),
                ("pragma", Cow::Borrowed("no-cache")),
            ],
            body: body.into(),
        }
    }

    /// A JSON body that may be cached (discovery metadata).
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type", Cow::Borrowed("application/json"))],
            body: body.into_bytes(),
        }
    }

    /// An RFC 6749 §5.2 error: JSON body, its status, `no-store`, and on a
    /// `401 invalid_client` a `WWW-Authenticate: Basic` challenge.
    pub fn oauth_error(error: &OAuthError, realm: &str) -> Self {
        let mut r = Self::json_no_store(error.status(), error.to_json());
        // A 401 names the scheme to authenticate with (RFC 9110 §15.5.2),
        // whether or not the client tried Basic (RFC 6749 §5.2 requires it
        // only then).
        if error.code == crate::error::ErrorCode::InvalidClient {
            r.headers.push((
                "www-authenticate",
                format!("Basic realm=\"{realm}\"").into(),
            ));
        }
        if let Some(seconds) = error.retry_after() {
            r.headers.push(("retry-after", seconds.to_string().into()));
        }
        r
    }

    /// `405 Method Not Allowed` with the RFC 6749 error body.
    pub fn method_not_allowed(allow: &str) -> Self {
        let e = OAuthError::invalid_request(format!("method not allowed; use {allow}"));
        let mut r = Self::json_no_store(405, e.to_json());
        r.headers.push(("allow", allow.to_owned().into()));
        r
    }

    /// `413 Content Too Large` (RFC 9110 §15.5.14) for a body over `limit`
    /// bytes, with an RFC 6749 error body: every adapter answers it identically.
    pub fn payload_too_large(limit: usize) -> Self {
        let e =
            OAuthError::invalid_request(format!("the request body is larger than {limit} bytes"));
        Self::json_no_store(413, e.to_json())
    }

    /// `408 Request Timeout` (RFC 9110 §15.5.9) for a body that did not
    /// arrive within [`BODY_READ_TIMEOUT`], with an RFC 6749 error body and
    /// `Connection: close` (the rest of the body may still come).
    pub fn request_timeout() -> Self {
        let e = OAuthError::invalid_request(format!(
            "the request body did not arrive within {} seconds",
            BODY_READ_TIMEOUT.as_secs()
        ));
        let mut r = Self::json_no_store(408, e.to_json());
        r.headers.push(("connection", Cow::Borrowed("close")));
        r
    }

    /// `500 server_error` for a server that is not set up to answer (e.g. an
    /// adapter's guard used without the adapter installed): what an adapter
    /// answers instead of a bare 500.
    pub fn misconfigured() -> Self {
        let e = OAuthError::misconfigured();
        Self::json_no_store(e.status(), e.to_json())
    }

    /// `500 server_error` ("internal error"): what an adapter answers instead
    /// of a response its framework cannot represent (it never happens with
    /// the core's own responses, whose headers are checked).
    pub fn server_error() -> Self {
        let e = OAuthError::server_error();
        Self::json_no_store(e.status(), e.to_json())
    }

    /// A redirect (`303 See Other`: safe after a POST, RFC 9700 §4.12).
    pub fn redirect(location: String) -> Self {
        Self {
            status: 303,
            headers: vec![
                ("location", location.into()),
                ("cache-control", Cow::Borrowed("no-store")),
            ],
            body: Vec::new(),
        }
    }

    /// A header's value, for tests and adapters.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}
