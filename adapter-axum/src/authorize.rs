//! Helpers for the embedder's authorization endpoint.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The raw query string of a request to the authorization endpoint, for
/// [`Server::authorize`](tessera::Server::authorize), which parses it itself
/// (a repeated parameter is `invalid_request`, RFC 6749 §3.1, which a
/// deserializing extractor would hide). Empty when there is no query.
/// Never rejects.
///
/// ```
/// use axum::extract::State;
/// use axum::response::{Html, IntoResponse, Response};
/// use tessera::{AuthorizeOutcome, Server};
/// use tessera_axum::{AuthorizationQuery, respond};
///
/// async fn authorize(
///     State(server): State<Server>,
///     AuthorizationQuery(query): AuthorizationQuery,
/// ) -> Response {
///     // The logged-in user from the app's session, if any.
///     let owner = None;
///     match server.authorize(&query, owner).await {
///         AuthorizeOutcome::Redirect(redirect) => respond(redirect),
///         AuthorizeOutcome::Login(prompt) => Html(format!(
///             "<form method=post>... sign in to let {} ...</form>",
///             prompt.client.name
///         ))
///         .into_response(),
///         // Consent and error pages are the app's as well.
///         _ => Html("...").into_response(),
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

impl<St: Send + Sync> FromRequestParts<St> for AuthorizationQuery {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.uri.query().unwrap_or_default().to_owned()))
    }
}
