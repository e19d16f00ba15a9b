//! Helpers for the embedder's authorization endpoint.

use std::convert::Infallible;

use rocket::request::{FromRequest, Outcome, Request};

/// The raw query string of a request to the authorization endpoint, for
/// [`Server::authorize`](tessera::Server::authorize), which parses it itself
/// (a repeated parameter is `invalid_request`, RFC 6749 §3.1, which rocket's
/// typed query parameters would hide). Empty when there is no query. Never
/// fails.
///
/// ```
/// use rocket::{State, get};
/// use tessera::{AuthorizeOutcome, Server};
/// use tessera_rocket::{AuthorizationQuery, TesseraResponse};
///
/// #[get("/authorize")]
/// async fn authorize(server: &State<Server>, query: AuthorizationQuery) -> Result<TesseraResponse, String> {
///     // The logged-in user from the app's session, if any.
///     let owner = None;
///     match server.authorize(query.as_str(), owner).await {
///         AuthorizeOutcome::Redirect(redirect) => Ok(TesseraResponse::from(redirect)),
///         // Login, consent and error pages are the app's.
///         _ => Err("a page of your own".into()),
///     }
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationQuery(pub String);

impl AuthorizationQuery {
    /// The query string, without `?`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AuthorizationQuery {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(Self(
            req.uri()
                .query()
                .map(|q| q.as_str().to_owned())
                .unwrap_or_default(),
        ))
    }
}
