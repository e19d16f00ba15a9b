//! Reading a request for the core: method, query, headers, and a body capped
//! at the core's [`tessera::Config::max_body_bytes`].

use rocket::data::{self, ByteUnit, Data, FromData};
use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::Request;
use tessera::{BodyPlan, HttpRequest, Server};

use crate::rejection;
use crate::response::TesseraResponse;
use crate::state::server_of;

/// The parts of a rocket request the core looks at, owned, with the body
/// read in full: a [`FromData`] guard for routes of your own that hand a
/// request to the core (e.g. an extension endpoint).
///
/// The body is capped at the server's [`tessera::Config::max_body_bytes`]
/// (64 KiB) as the core's [`Server::body_plan`] says: a larger body,
/// announced by `Content-Length` or found while reading, fails the guard
/// with `413 Payload Too Large`; it is never truncated and passed on.
/// Rocket's own [`rocket::data::Limits`] play no part here, so the core's
/// limit holds whatever `Rocket.toml` says. Needs the fairing
/// ([`crate::fairing`]); without it the guard fails with `500`.
///
/// ```
/// use rocket::post;
/// use tessera_rocket::{OAuthRequest, TesseraResponse};
///
/// #[post("/echo-method", data = "<request>")]
/// fn echo(request: OAuthRequest) -> String {
///     request.as_http().method.to_owned()
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthRequest {
    method: String,
    query: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    dpop: Option<String>,
    origin: Option<String>,
    peer: Option<std::net::IpAddr>,
    body: Vec<u8>,
}

impl std::fmt::Debug for OAuthRequest {
    /// Headers and bodies carry secrets: only the shape is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_http().fmt(f)
    }
}

impl OAuthRequest {
    /// Reads `req` and its body as `server`'s [`Server::body_plan`] says,
    /// refusing an oversized body with the core's `413` (drained first
    /// where the plan allows, so the connection stays usable; otherwise the
    /// connection is closed after the answer).
    pub async fn read(
        req: &Request<'_>,
        data: Data<'_>,
        server: &Server,
    ) -> Result<Self, TesseraResponse> {
        let declared = header_text(req, "Content-Length");
        let expects = req.headers().contains("Expect");
        let limit = match server.body_plan(declared.as_deref(), expects) {
            BodyPlan::Read { max } => max,
            BodyPlan::Refuse {
                response,
                drain,
                drain_timeout,
            } => {
                let drained = match drain {
                    Some(bytes) => {
                        let sink = data
                            .open(ByteUnit::from(bytes))
                            .stream_to(rocket::tokio::io::sink());
                        matches!(
                            rocket::tokio::time::timeout(drain_timeout, sink).await,
                            Ok(Ok(n)) if n.complete
                        )
                    }
                    None => false,
                };
                let mut response = TesseraResponse(response);
                if !drained {
                    response.0.headers.push(("connection", "close".into()));
                }
                return Err(response);
            }
            _ => server.config().max_body_bytes,
        };
        let read = data.open(ByteUnit::from(limit)).into_bytes();
        let body = match rocket::tokio::time::timeout(tessera::BODY_READ_TIMEOUT, read).await {
            Ok(Ok(body)) if body.is_complete() => body.into_inner(),
            Ok(Ok(_)) => return Err(TesseraResponse(server.body_too_large())),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "could not read a request body");
                return Err(TesseraResponse(server.body_unreadable()));
            }
            Err(_) => return Err(TesseraResponse(server.body_timed_out())),
        };
        Ok(Self {
            body,
            ..Self::without_body(req)
        })
    }

    /// The request without reading its body (for endpoints that take none).
    pub(crate) fn without_body(req: &Request<'_>) -> Self {
        Self {
            method: req.method().as_str().to_owned(),
            query: req.uri().query().map(|q| q.as_str().to_owned()),
            content_type: header_text(req, "Content-Type"),
            authorization: header_text(req, "Authorization"),
            dpop: header_text(req, "DPoP"),
            origin: header_text(req, "Origin"),
            // The connection's peer, never a header (Rocket's `client_ip`
            // trusts `X-Real-IP` by default, which any client can forge to
            // get a fresh share each time, or to spend another's):
            // `tessera::SourceNetwork`.
            peer: req.remote().map(|addr| addr.ip()),
            body: Vec::new(),
        }
    }

    /// The request as the core takes it.
    pub fn as_http(&self) -> HttpRequest<'_> {
        HttpRequest::new(&self.method)
            .with_query(self.query.as_deref())
            .with_content_type(self.content_type.as_deref())
            .with_authorization(self.authorization.as_deref())
            .with_dpop(self.dpop.as_deref())
            .with_origin(self.origin.as_deref())
            .with_peer(self.peer)
            .with_body(&self.body)
    }
}

/// A header's value as text for the core. Repeated fields are joined with
/// `", "` (RFC 9110 §5.3), so two `Authorization` headers reach the core as
/// one malformed value instead of the adapter picking one.
pub(crate) fn header_text(req: &Request<'_>, name: &str) -> Option<String> {
    let mut values = req.headers().get(name);
    let mut text = values.next()?.to_owned();
    for value in values {
        text.push_str(", ");
        text.push_str(value);
    }
    Some(text)
}

#[rocket::async_trait]
impl<'r> FromData<'r> for OAuthRequest {
    type Error = TesseraResponse;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let server = match server_of(req) {
            Ok(server) => server,
            Err(response) => {
                return Outcome::Error((Status::InternalServerError, TesseraResponse(response)));
            }
        };
        match Self::read(req, data, server).await {
            Ok(request) => Outcome::Success(request),
            Err(response) => {
                rejection::remember(req, response.0.clone());
                Outcome::Error((Status::new(response.0.status), response))
            }
        }
    }
}
