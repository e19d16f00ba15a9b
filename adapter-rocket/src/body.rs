//! Reading a request for the core: method, query, headers, and a body capped
//! at the core's [`tessera::Config::max_body_bytes`].

use rocket::data::{self, ByteUnit, Data, FromData};
use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::Request;
use tessera::OAuthError;
use tessera::http::{HttpRequest, HttpResponse};

use crate::installed::Installed;
use crate::rejection;
use crate::response::TesseraResponse;

/// The parts of a rocket request the core looks at, owned, with the body
/// read in full: a [`FromData`] guard for routes of your own that hand a
/// request to the core (e.g. an extension endpoint).
///
/// The body is capped at the server's [`tessera::Config::max_body_bytes`]
/// (64 KiB): a larger body, announced by `Content-Length` or found while
/// reading, fails the guard with `413 Payload Too Large`; it is never
/// truncated and passed on. Rocket's own [`rocket::data::Limits`] play no
/// part here, so the core's limit holds whatever `Rocket.toml` says. Needs
/// the fairing ([`crate::Tessera::fairing`]); without it the guard fails
/// with `500`.
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
    body: Vec<u8>,
}

impl std::fmt::Debug for OAuthRequest {
    /// Headers and bodies carry secrets: only the shape is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_http().fmt(f)
    }
}

impl OAuthRequest {
    /// Reads `req` and its body, refusing a body over `limit` bytes with the
    /// core-shaped `413` answer.
    pub async fn read(
        req: &Request<'_>,
        data: Data<'_>,
        limit: usize,
    ) -> Result<Self, TesseraResponse> {
        let too_large = || TesseraResponse(HttpResponse::payload_too_large(limit));
        let announced = req
            .headers()
            .get_one("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let body = match data.open(ByteUnit::from(limit)).into_bytes().await {
            Ok(body) if body.is_complete() => body.into_inner(),
            Ok(_) => return Err(too_large()),
            Err(e) => {
                tracing::info!(error = %e, "could not read a request body");
                let error = OAuthError::invalid_request("the request body could not be read");
                return Err(TesseraResponse(HttpResponse::json_no_store(
                    400,
                    error.to_json(),
                )));
            }
        };
        Ok(Self {
            method: req.method().as_str().to_owned(),
            query: req.uri().query().map(|q| q.as_str().to_owned()),
            content_type: header_text(req, "Content-Type"),
            authorization: header_text(req, "Authorization"),
            body,
        })
    }

    /// The request as the core takes it.
    pub fn as_http(&self) -> HttpRequest<'_> {
        HttpRequest {
            method: &self.method,
            query: self.query.as_deref(),
            content_type: self.content_type.as_deref(),
            authorization: self.authorization.as_deref(),
            body: &self.body,
        }
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
        let Some(installed) = Installed::of(req) else {
            return Outcome::Error((
                Status::InternalServerError,
                TesseraResponse(HttpResponse::json_no_store(
                    500,
                    OAuthError::new(tessera::ErrorCode::ServerError, "server misconfigured")
                        .to_json(),
                )),
            ));
        };
        match Self::read(req, data, installed.max_body_bytes()).await {
            Ok(request) => Outcome::Success(request),
            Err(response) => {
                rejection::remember(req, response.0.clone());
                Outcome::Error((Status::new(response.0.status), response))
            }
        }
    }
}
