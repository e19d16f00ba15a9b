//! The [`Responder`] for the core's framework-neutral responses.

use std::io::Cursor;

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use tessera::{AuthorizationRedirect, HttpResponse};

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
    ///
    /// The core only builds valid statuses and headers; should one ever not
    /// be (hyper would refuse to send it), the answer is the RFC's
    /// `server_error` rather than a mangled or dropped response. The value
    /// is not logged: a `Location` may carry a code.
    pub(crate) fn into_rocket(self) -> Response<'static> {
        if let Err(what) = representable(&self.0) {
            tracing::error!(
                invalid = what,
                "the core produced a response rocket cannot send"
            );
            return build(HttpResponse::server_error());
        }
        build(self.0)
    }
}

/// Whether hyper (under rocket) can send `response` as it is.
fn representable(response: &HttpResponse) -> Result<(), &'static str> {
    if !(100..=999).contains(&response.status) {
        return Err("status");
    }
    for (name, value) in &response.headers {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err("header name");
        }
        if !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err("header value");
        }
    }
    Ok(())
}

fn build(response: HttpResponse) -> Response<'static> {
    let HttpResponse {
        status,
        headers,
        body,
    } = response;
    let mut builder = Response::build();
    builder.status(Status::new(status));
    for (name, value) in headers {
        builder.header_adjoin(Header::new(name, value));
    }
    builder.sized_body(body.len(), Cursor::new(body));
    builder.finalize()
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

impl From<&AuthorizationRedirect> for TesseraResponse {
    /// The `303 See Other` back to the client.
    fn from(redirect: &AuthorizationRedirect) -> Self {
        Self(redirect.to_http())
    }
}

impl<'r> Responder<'r, 'static> for TesseraResponse {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Ok(self.into_rocket())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_status_headers_and_body() {
        let mut core = HttpResponse::json_no_store(400, "{}");
        core.headers.push(("vary", "a".into()));
        core.headers.push(("vary", "b".into()));
        let response = TesseraResponse(core).into_rocket();
        assert_eq!(response.status(), Status::BadRequest);
        assert_eq!(
            response.headers().get_one("content-type"),
            Some("application/json")
        );
        assert_eq!(
            response.headers().get_one("cache-control"),
            Some("no-store")
        );
        assert_eq!(response.headers().get("vary").count(), 2);
    }

    #[test]
    fn an_unrepresentable_response_becomes_server_error() {
        let core = HttpResponse::redirect("https://client.example/cb\r\nx: y".into());
        let response = TesseraResponse(core).into_rocket();
        assert_eq!(response.status(), Status::InternalServerError);
        assert!(response.headers().get_one("location").is_none());
        let core = HttpResponse::json(42, "{}".into());
        let response = TesseraResponse(core).into_rocket();
        assert_eq!(response.status(), Status::InternalServerError);
    }
}
