//! The [`Responder`] for the core's framework-neutral responses.

use std::io::Cursor;

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use tessera::AuthorizationRedirect;
use tessera::http::HttpResponse;

/// A [`tessera::HttpResponse`] as a rocket [`Responder`]: the status, every
/// header and the body exactly as the core decided them.
///
/// Return it from a route for anything the core answers, e.g. an
/// authorization redirect:
///
/// ```
/// # use tessera_rocket::TesseraResponse;
/// # fn f(outcome: tessera::AuthorizationRedirect) -> TesseraResponse {
/// TesseraResponse::from(outcome)
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TesseraResponse(pub HttpResponse);

impl TesseraResponse {
    /// The core's response inside.
    pub fn into_inner(self) -> HttpResponse {
        self.0
    }

    /// Builds the rocket response. Infallible, unlike `respond_to`'s signature.
    pub(crate) fn into_rocket(self) -> Response<'static> {
        let HttpResponse {
            status,
            headers,
            body,
        } = self.0;
        let mut builder = Response::build();
        builder.status(Status::new(status));
        for (name, value) in headers {
            builder.header_adjoin(Header::new(name, value));
        }
        builder.sized_body(body.len(), Cursor::new(body));
        builder.finalize()
    }
}

impl From<HttpResponse> for TesseraResponse {
    fn from(response: HttpResponse) -> Self {
        Self(response)
    }
}

impl From<AuthorizationRedirect> for TesseraResponse {
    /// The `303 See Other` back to the client (see [`AuthorizationRedirect::to_http`]).
    fn from(redirect: AuthorizationRedirect) -> Self {
        Self(redirect.to_http())
    }
}

impl<'r> Responder<'r, 'static> for TesseraResponse {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Ok(self.into_rocket())
    }
}
