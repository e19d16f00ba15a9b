//! The resource server's side: request guards that admit a request only with
//! a valid bearer token (RFC 6750), and the answers when they refuse.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder};
use tessera::{AccessToken, BearerError, ErrorCode, HttpResponse, OAuthError, ResourceRequest};

use crate::body::header_text;
use crate::rejection;
use crate::response::TesseraResponse;
use crate::state::verifier_of;

/// A request guard for a valid access token: reads `Authorization` and the
/// raw query and asks the verifier: the [`tessera::Server`] of the
/// [fairing](crate::fairing) ([`tessera::Server::verify_bearer_at`]), or,
/// in a resource server of its own, the verifier of the
/// [`resource_server`](crate::resource_server) fairing (e.g. local JWT
/// validation against the authorization server's JWKS, or introspection).
/// Derefs to the [`AccessToken`].
///
/// On failure the guard fails with the core's status (401 with no or a bad
/// token, 400 for a malformed request, 503 when the store is down) and,
/// with the fairing attached, the client gets exactly
/// [`BearerError::to_http`]: the JSON body and the `WWW-Authenticate`
/// challenge, whatever catcher rocket picked. To answer yourself, take
/// `Result<Bearer, BearerRejection>` instead and return the rejection.
///
/// Optional authentication: rocket's `Option<Bearer>` is `None` on *any*
/// failure, a bad token included. To let anonymous requests through but
/// still refuse a bad token, take `Result<Bearer, BearerRejection>` and
/// treat only a rejection for which [`BearerRejection::is_missing_token`]
/// holds as anonymous:
///
/// ```
/// use rocket::get;
/// use tessera_rocket::{Bearer, BearerRejection};
///
/// #[get("/greet")]
/// fn greet(token: Result<Bearer, BearerRejection>) -> Result<String, BearerRejection> {
///     match token {
///         Ok(token) => Ok(format!("hello, {}", token.principal())),
///         Err(rejection) if rejection.is_missing_token() => Ok("hello, stranger".into()),
///         Err(rejection) => Err(rejection),
///     }
/// }
/// ```
///
/// Needs one of the fairings ([`crate::fairing`] or
/// [`crate::resource_server`]); without both the guard fails with `500`.
#[derive(Debug, Clone)]
pub struct Bearer {
    token: AccessToken,
    realm: Arc<str>,
    resource_metadata: Option<Arc<str>>,
}

impl Bearer {
    /// The validated token.
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The validated token, owned.
    pub fn into_token(self) -> AccessToken {
        self.token
    }

    /// Checks that the token carries every scope in `required`; the
    /// rejection answers `403 insufficient_scope` naming them.
    pub fn require(&self, required: &[&str]) -> Result<(), BearerRejection> {
        self.token.require(required).map_err(|error| {
            BearerRejection::for_request(
                error,
                &self.realm,
                self.resource_metadata.as_deref(),
                None,
                Some(self.token.scheme()),
            )
        })
    }
}

impl Deref for Bearer {
    type Target = AccessToken;

    fn deref(&self) -> &AccessToken {
        &self.token
    }
}

/// The request's path as rocket's router matches it: its non-empty,
/// percent-decoded segments joined by `/`.
fn routed_path(req: &Request<'_>) -> String {
    let mut path = String::with_capacity(req.uri().path().as_str().len());
    for segment in req.uri().path().segments() {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// The verification result, cached per request so several guards on one
/// route hit the store once.
struct Verified(Result<Bearer, BearerRejection>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = BearerRejection;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, BearerRejection> {
        let verified = req
            .local_cache_async(async {
                let verifier = match verifier_of(req) {
                    Ok(verifier) => verifier,
                    Err(_) => return Verified(Err(BearerRejection::not_installed())),
                };
                let authorization = header_text(req, "Authorization");
                let query = req.uri().query().map(|q| q.as_str());
                // The path as rocket routes it: percent-decoded, empty
                // segments dropped. The raw text would let `/%61pi/photos`
                // or `//api/photos` reach the `/api/photos` route while
                // belonging to no declared resource, skipping the audience
                // check (RFC 8707 §2).
                let path = routed_path(req);
                let path = path.as_str();
                let realm: Arc<str> = verifier.realm().into();
                // The protected resource the path belongs to, if declared:
                // audience check and `resource_metadata` (RFC 9728 §5.1).
                let resource_metadata: Option<Arc<str>> =
                    verifier.resource_metadata_url_at(path).map(Into::into);
                // What a DPoP proof is checked against (RFC 9449 §7.1): the
                // method, the target as sent (not decoded), the header.
                let target = req.uri().to_string();
                let dpop = header_text(req, "DPoP");
                let request = ResourceRequest::new(path)
                    .with_authorization(authorization.as_deref())
                    .with_query(query)
                    .with_dpop(Some(req.method().as_str()), Some(&target), dpop.as_deref());
                Verified(match verifier.verify(&request).await {
                    Ok(token) => Ok(Bearer {
                        token,
                        realm,
                        resource_metadata,
                    }),
                    Err(error) => {
                        // The error's code only: never the header, which holds the token.
                        match error.code() {
                            Some(code) => {
                                tracing::debug!(error = %code, "bearer token refused")
                            }
                            None => tracing::debug!("no bearer token"),
                        }
                        Err(BearerRejection::for_request(
                            error,
                            &realm,
                            resource_metadata.as_deref(),
                            verifier.scope_hint_at(path).as_deref(),
                            tessera::presented_scheme(authorization.as_deref()),
                        ))
                    }
                })
            })
            .await;
        match &verified.0 {
            Ok(bearer) => Outcome::Success(bearer.clone()),
            Err(rejection) => rejection.clone().fail(req),
        }
    }
}

/// The scopes a [`Scoped`] guard demands: implement it on a marker type, or
/// declare one with [`required_scopes!`](crate::required_scopes).
pub trait RequiredScopes: Send + Sync + 'static {
    /// Every scope token the route needs.
    const SCOPES: &'static [&'static str];
}

/// Declares marker types for [`Scoped`]:
///
/// ```
/// tessera_rocket::required_scopes! {
///     /// Reading photos.
///     pub PhotosRead => ["photos.read"];
///     /// Reading and writing.
///     pub PhotosWrite => ["photos.read", "photos.write"];
/// }
/// ```
#[macro_export]
macro_rules! required_scopes {
    ($($(#[$meta:meta])* $vis:vis $name:ident => [$($scope:literal),+ $(,)?];)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $name;
        impl $crate::RequiredScopes for $name {
            const SCOPES: &'static [&'static str] = &[$($scope),+];
        }
    )+};
}

/// A [`Bearer`] guard that also demands the scopes of `R`: a valid token
/// without them is refused with `403` and
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`; a
/// request without a valid token gets `401` with `scope` naming them too
/// (RFC 6750 §3), so a client asks for what this route needs.
/// Derefs to the [`AccessToken`].
#[derive(Debug)]
pub struct Scoped<R> {
    bearer: Bearer,
    scopes: PhantomData<fn() -> R>,
}

impl<R> Clone for Scoped<R> {
    fn clone(&self) -> Self {
        Self {
            bearer: self.bearer.clone(),
            scopes: PhantomData,
        }
    }
}

impl<R> Scoped<R> {
    /// The validated token.
    pub fn token(&self) -> &AccessToken {
        &self.bearer.token
    }

    /// The validated token, owned.
    pub fn into_token(self) -> AccessToken {
        self.bearer.token
    }
}

impl<R> Deref for Scoped<R> {
    type Target = AccessToken;

    fn deref(&self) -> &AccessToken {
        &self.bearer.token
    }
}

#[rocket::async_trait]
impl<'r, R: RequiredScopes> FromRequest<'r> for Scoped<R> {
    type Error = BearerRejection;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, BearerRejection> {
        match req.guard::<Bearer>().await {
            Outcome::Success(bearer) => match bearer.require(R::SCOPES) {
                Ok(_) => Outcome::Success(Scoped {
                    bearer,
                    scopes: PhantomData,
                }),
                Err(rejection) => rejection.fail(req),
            },
            // A `401` names the route's scopes (RFC 6750 §3).
            Outcome::Error((_, rejection)) => rejection.requiring(R::SCOPES).fail(req),
            Outcome::Forward(s) => Outcome::Forward(s),
        }
    }
}

/// Why a protected route refuses a request: the core's [`BearerError`] with
/// the realm, answered exactly as [`BearerError::to_http`] (status, JSON
/// body, `WWW-Authenticate`).
#[derive(Clone, PartialEq, Eq)]
pub struct BearerRejection(Box<Rejected>);

impl std::fmt::Debug for BearerRejection {
    /// Short: rocket logs a failed guard's error with `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.0.error.code().map_or("no token", ErrorCode::as_str);
        write!(f, "BearerRejection({} {code})", self.0.response.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejected {
    response: HttpResponse,
    error: BearerError,
    /// What the challenge was made from, so that a guard knowing the
    /// route's scopes can name them instead ([`Scoped`]).
    challenge: Option<Challenge>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    realm: String,
    resource_metadata: Option<String>,
    scheme: Option<tessera::TokenScheme>,
}

impl BearerRejection {
    /// The rejection for `error`, challenging for `realm`.
    pub fn new(error: BearerError, realm: &str) -> Self {
        Self::for_resource(error, realm, None)
    }

    /// The rejection for `error` at a protected resource whose metadata is
    /// at `resource_metadata` (RFC 9728 §5.1): its challenge names it.
    pub fn for_resource(error: BearerError, realm: &str, resource_metadata: Option<&str>) -> Self {
        Self::for_resource_with_scope(error, realm, resource_metadata, None)
    }

    /// As [`for_resource`](Self::for_resource), a `401`'s challenge also
    /// naming the scopes the resource declared (`scope_hint`:
    /// [`TokenVerifier::scope_hint_at`](tessera::TokenVerifier::scope_hint_at);
    /// RFC 6750 §3, the MCP authorization spec's scope selection).
    pub fn for_resource_with_scope(
        error: BearerError,
        realm: &str,
        resource_metadata: Option<&str>,
        scope_hint: Option<&str>,
    ) -> Self {
        Self::for_request(error, realm, resource_metadata, scope_hint, None)
    }

    /// As [`for_resource_with_scope`](Self::for_resource_with_scope), for a
    /// request that presented its token in `scheme`: one in the `DPoP`
    /// scheme is challenged in it whatever was wrong (RFC 9449 §7.1;
    /// [`BearerError::to_http_in`]).
    pub fn for_request(
        error: BearerError,
        realm: &str,
        resource_metadata: Option<&str>,
        scope_hint: Option<&str>,
        scheme: Option<tessera::TokenScheme>,
    ) -> Self {
        Self(Box::new(Rejected {
            response: error.to_http_in(scheme, realm, resource_metadata, scope_hint),
            error,
            challenge: Some(Challenge {
                realm: realm.to_owned(),
                resource_metadata: resource_metadata.map(str::to_owned),
                scheme,
            }),
        }))
    }

    /// The same rejection, a `401`'s challenge naming `scopes`: what the
    /// route requires (RFC 6750 §3), rather than every scope the resource
    /// declared.
    fn requiring(self, scopes: &[&str]) -> Self {
        let Some(challenge) = self.0.challenge.clone() else {
            return self;
        };
        let words: Vec<&str> = scopes.iter().copied().filter(|s| !s.is_empty()).collect();
        if words.is_empty() {
            return self;
        }
        Self::for_request(
            self.0.error,
            &challenge.realm,
            challenge.resource_metadata.as_deref(),
            Some(&words.join(" ")),
            challenge.scheme,
        )
    }

    /// The fairing is missing: `500 server_error`.
    fn not_installed() -> Self {
        Self(Box::new(Rejected {
            response: HttpResponse::misconfigured(),
            error: BearerError::Unavailable(OAuthError::misconfigured()),
            challenge: None,
        }))
    }

    /// The core's error.
    pub fn error(&self) -> &BearerError {
        &self.0.error
    }

    /// The core's error, owned.
    pub fn into_error(self) -> BearerError {
        self.0.error
    }

    /// Whether the request carried no bearer token at all (RFC 6750 §3.1:
    /// a `401` without an error code), as opposed to a bad one.
    pub fn is_missing_token(&self) -> bool {
        self.0.error == BearerError::Missing
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.0.response.status
    }

    /// The answer the client gets.
    pub fn to_http(&self) -> &HttpResponse {
        &self.0.response
    }

    /// Fails a guard with this rejection, leaving the answer for the fairing.
    fn fail<T>(self, req: &Request<'_>) -> request::Outcome<T, Self> {
        rejection::remember(req, self.0.response.clone());
        Outcome::Error((Status::new(self.0.response.status), self))
    }
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.error.fmt(f)
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.error)
    }
}

impl<'r> Responder<'r, 'static> for BearerRejection {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        rejection::forget(req);
        Ok(TesseraResponse(self.0.response).into_rocket())
    }
}
