//! Checking access tokens at a resource server, wherever it runs: one trait
//! ([`TokenVerifier`]) for the adapters' bearer extractors and guards, met
//! by the in-process [`Server`] (its store sees every token) and by
//! verifiers of a resource server in another process (the
//! `tessera-resource-server` crate: local JWT validation against the
//! authorization server's JWKS, or remote introspection, RFC 7662).
//!
//! The core stays free of I/O: it defines the trait, what a resource
//! server knows about itself ([`RemoteResource`]) and the pure checks
//! ([`RemoteResource::check_jwt`], [`RemoteResource::check_introspection`]);
//! fetching is the verifier crate's business.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::bearer::{
    AccessToken, BearerError, TokenScheme, access_token_credentials, bearer_token,
};
use crate::client::ClientId;
use crate::dpop::{DpopError, DpopPolicy, DpopProof, ProofContext, verify_proof};
use crate::error::Reason;
use crate::error::{ErrorCode, OAuthError};
use crate::http::HttpResponse;
use crate::jwt::{JwtError, verify_access_token};
use crate::keys::VerificationKeys;
use crate::protected_resource::ProtectedResource;
use crate::scope::Scope;
use crate::server::Server;
use crate::storage::{Actor, Subject};

/// A request to a protected resource, as a [`TokenVerifier`] sees it: the
/// path (which resource it is for, RFC 9728), the `Authorization` header
/// and the raw query string (a token there is refused, RFC 6750 §2.3).
///
/// ```
/// use tessera::ResourceRequest;
/// let request = ResourceRequest::new("/api/photos").with_authorization(Some("Bearer abc"));
/// assert_eq!(request.bearer_token(), Ok("abc"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceRequest<'a> {
    /// The request's path as the application routes it.
    pub path: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The request method, e.g. `GET`, for a DPoP proof's `htm` (RFC 9449 §4.3).
    pub method: Option<&'a str>,
    /// The request target as the client sent it (path and query, not
    /// decoded), for a DPoP proof's `htu` (RFC 9449 §4.3 item 9).
    pub target: Option<&'a str>,
    /// The `DPoP` header (RFC 9449 §4.1; repeated fields joined with `", "`).
    pub dpop: Option<&'a str>,
}

impl<'a> ResourceRequest<'a> {
    /// A request to `path` without credentials.
    pub fn new(path: &'a str) -> Self {
        Self {
            path,
            authorization: None,
            query: None,
            method: None,
            target: None,
            dpop: None,
        }
    }

    /// The same request with what a DPoP proof is checked against (RFC
    /// 9449 §7.1): its `method`, its request `target` as received (path and
    /// query), and its `DPoP` header. Adapters always pass them; without
    /// them a DPoP-bound token is refused.
    #[must_use]
    pub fn with_dpop(
        mut self,
        method: Option<&'a str>,
        target: Option<&'a str>,
        dpop: Option<&'a str>,
    ) -> Self {
        self.method = method;
        self.target = target;
        self.dpop = dpop;
        self
    }

    /// The DPoP facts of this request, when the adapter gave its method
    /// and target.
    pub fn dpop_facts(&self) -> Option<crate::bearer::DpopFacts<'a>> {
        Some(crate::bearer::DpopFacts::new(
            self.method?,
            self.target?,
            self.dpop,
        ))
    }

    /// The same request with its `Authorization` header.
    #[must_use]
    pub fn with_authorization(mut self, authorization: Option<&'a str>) -> Self {
        self.authorization = authorization;
        self
    }

    /// The same request with its raw query string.
    #[must_use]
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// The access token the request presents and its scheme: `Bearer`
    /// (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1), with the same refusals
    /// as [`bearer_token`](Self::bearer_token): [`BearerError::Missing`]
    /// without one, [`BearerError::Malformed`] for a malformed header or a
    /// token in the query string.
    pub fn access_token(&self) -> Result<(TokenScheme, &'a str), BearerError> {
        let in_query = self.query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
        });
        if in_query {
            return Err(BearerError::Malformed(
                "send the access token in the Authorization header",
            ));
        }
        access_token_credentials(self.authorization)?.ok_or(BearerError::Missing)
    }

    /// The bearer token the request presents (RFC 6750 §2.1):
    /// [`BearerError::Missing`] without one, [`BearerError::Malformed`] for
    /// a malformed header or a token in the query string (§2.3 allows it,
    /// but URLs leak into logs and `Referer` headers, RFC 9700 §4.3.2).
    pub fn bearer_token(&self) -> Result<&'a str, BearerError> {
        let in_query = self.query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
        });
        if in_query {
            return Err(BearerError::Malformed(
                "send the access token in the Authorization header",
            ));
        }
        bearer_token(self.authorization)?.ok_or(BearerError::Missing)
    }
}

/// What the adapters' bearer extractors and guards ask to check a
/// request's access token (RFC 6750 §2), for the protected resource its
/// path belongs to (RFC 8707 §2 audience, RFC 9728 §5.1 challenges).
///
/// [`Server`] implements it with its store (opaque and JWT tokens,
/// revocation seen at once); a resource server in another process uses a
/// remote verifier (crate `tessera-resource-server`) instead. Implement it
/// to check tokens some other way.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// The access token of `request` if it may be used there; otherwise
    /// why not: `401` for no or a bad token, `400` for a malformed
    /// request, `503` when the token could not be checked (never accepted
    /// then: verifiers fail closed).
    async fn verify(&self, request: &ResourceRequest<'_>) -> Result<AccessToken, BearerError>;

    /// The realm named in `WWW-Authenticate` challenges (RFC 6750 §3).
    fn realm(&self) -> &str;

    /// The `resource_metadata` URL for challenges at `path` (RFC 9728
    /// §5.1), when the resource there publishes metadata.
    fn resource_metadata_url_at(&self, path: &str) -> Option<String>;

    /// The `scope` of a `401` challenge at `path` (no token, or a bad one):
    /// the scopes the resource there declared, so that a client knows what
    /// to ask for (RFC 6750 §3; the MCP authorization spec: servers SHOULD
    /// name it). `None` (the default): the challenge names none.
    fn scope_hint_at(&self, path: &str) -> Option<String> {
        let _ = path;
        None
    }
}

#[async_trait]
impl TokenVerifier for Server {
    /// [`Server::verify_access_at`] (DPoP-bound tokens with their proof): the store resolves the token, and the
    /// declared protected resource at the path checks its audience.
    async fn verify(&self, request: &ResourceRequest<'_>) -> Result<AccessToken, BearerError> {
        self.verify_access_at(
            request.path,
            request.authorization,
            request.query,
            request.dpop_facts(),
        )
        .await
    }

    fn realm(&self) -> &str {
        &self.config().realm
    }

    fn resource_metadata_url_at(&self, path: &str) -> Option<String> {
        Server::resource_metadata_url_at(self, path)
    }

    fn scope_hint_at(&self, path: &str) -> Option<String> {
        Server::scope_hint_at(self, path)
    }
}

/// Any [`TokenVerifier`], shared: what an application keeps in its state
/// when it chooses the verifier at run time (e.g. JWT validation or
/// introspection by configuration).
#[derive(Clone)]
pub struct SharedVerifier(Arc<dyn TokenVerifier>);

impl SharedVerifier {
    /// Shares `verifier`.
    pub fn new(verifier: impl TokenVerifier) -> Self {
        Self(Arc::new(verifier))
    }
}

impl fmt::Debug for SharedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedVerifier")
            .field("realm", &self.0.realm())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenVerifier for SharedVerifier {
    async fn verify(&self, request: &ResourceRequest<'_>) -> Result<AccessToken, BearerError> {
        self.0.verify(request).await
    }

    fn realm(&self) -> &str {
        self.0.realm()
    }

    fn resource_metadata_url_at(&self, path: &str) -> Option<String> {
        self.0.resource_metadata_url_at(path)
    }

    fn scope_hint_at(&self, path: &str) -> Option<String> {
        self.0.scope_hint_at(path)
    }
}

/// The most clock leeway a [`RemoteResource`] allows on `exp` and `nbf`:
/// skew is seconds, not minutes.
pub const MAX_LEEWAY: Duration = Duration::minutes(5);

/// A resource server in another process than its authorization server:
/// which issuer it trusts, which protected resources it serves (their
/// identifiers are the audiences its tokens must name, RFC 8707 §2,
/// RFC 9068 §4), its realm and clock leeway. The pure half of a remote
/// verifier: it checks a JWT against given keys and reads an
/// introspection answer; fetching keys and answers is the verifier's.
///
/// ```
/// use tessera::{ProtectedResource, RemoteResource, ResourceIndicator};
/// let api = ProtectedResource::new(ResourceIndicator::new("https://api.example/photos").unwrap()).unwrap();
/// let rs = RemoteResource::new("https://as.example", api).with_realm("photos");
/// assert_eq!(rs.resource_at("/photos/1").identifier().as_str(), "https://api.example/photos");
/// assert_eq!(
///     rs.resource_metadata_url_at("/photos"),
///     "https://api.example/.well-known/oauth-protected-resource/photos"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteResource {
    issuer: String,
    /// The resource a request outside every declared path is for.
    default: ProtectedResource,
    others: Vec<ProtectedResource>,
    realm: String,
    leeway: Duration,
    /// The origin clients address, for DPoP `htu`; `None`: the resource's.
    origin: Option<String>,
    /// Introspection answers without `token_type` are taken for access
    /// tokens ([`dangerous_accept_untyped_introspection`](Self::dangerous_accept_untyped_introspection)).
    untyped_introspection: bool,
}

/// Why a remote verifier refused a token: for logs and tests; each is
/// answered `401 invalid_token` (RFC 6750 §3.1) by [`RefusedToken::bearer_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedToken {
    /// The JWT failed validation (RFC 9068 §4).
    #[error("{0}")]
    Jwt(JwtError),
    /// The authorization server says the token is not active (RFC 7662 §2.2).
    #[error("inactive token")]
    Inactive,
    /// The introspection answer names another issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// The token's audience is not this resource (RFC 8707 §2).
    #[error("wrong audience")]
    WrongAudience,
    /// Expired (past `exp` and the leeway).
    #[error("expired")]
    Expired,
    /// A claim or member the resource server needs is missing or malformed
    /// (`client_id`, `exp`, `scope`, `act`).
    #[error("missing or malformed claim")]
    Malformed,
    /// The token is sender-constrained (`cnf`, RFC 7800; DPoP, RFC 9449
    /// §6): a bearer presentation of it is refused.
    #[error("sender-constrained token presented as a bearer token")]
    SenderConstrained,
    /// The introspection answer's `token_type` is not an access token's
    /// (`Bearer` or `DPoP`, RFC 6749 §7.1), or is missing: a refresh token,
    /// for instance (see
    /// [`RemoteResource::dangerous_accept_untyped_introspection`]).
    #[error("not an access token")]
    NotAnAccessToken,
}

impl RefusedToken {
    /// The resource server's answer: `401 invalid_token` (RFC 6750 §3.1),
    /// [`BearerError::WrongAudience`] for another resource's token.
    pub fn bearer_error(self) -> BearerError {
        match self {
            Self::WrongAudience | Self::Jwt(JwtError::WrongAudience) => BearerError::WrongAudience,
            _ => BearerError::Invalid,
        }
    }
}

/// An introspection answer (RFC 7662 §2.2) as a resource server reads it:
/// only the members it uses; others are ignored (§2.2 allows extensions).
#[derive(Deserialize)]
struct IntrospectionAnswer {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    act: Option<serde_json::Value>,
    #[serde(default)]
    cnf: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(one) => one == value,
            Self::Many(many) => many.iter().any(|m| m == value),
        }
    }
}

/// The members of a JWT access token's claims that [`AccessTokenClaims`]
/// does not keep but a remote resource server must see.
#[derive(Deserialize)]
struct Confirmation {
    #[serde(default)]
    cnf: Option<serde_json::Value>,
}

/// `access`, unless it is bound to a key: what a bearer-only check accepts.
fn bearer_only(access: AccessToken) -> Result<AccessToken, RefusedToken> {
    match access.dpop_jkt {
        None => Ok(access),
        Some(_) => Err(RefusedToken::SenderConstrained),
    }
}

/// The DPoP key a token is bound to (RFC 9449 §6: `cnf.jkt`), if its
/// confirmation (RFC 7800 §3.1) is one: `Ok(None)` without `cnf`; any other
/// confirmation method (e.g. a certificate, RFC 8705) cannot be checked
/// here, and is refused.
fn dpop_binding(cnf: Option<&serde_json::Value>) -> Result<Option<String>, RefusedToken> {
    let Some(cnf) = cnf else {
        return Ok(None);
    };
    match cnf.get("jkt").and_then(serde_json::Value::as_str) {
        Some(jkt) if !jkt.is_empty() => Ok(Some(jkt.to_owned())),
        _ => Err(RefusedToken::SenderConstrained),
    }
}

impl RemoteResource {
    /// A resource server trusting tokens of `issuer` (its RFC 8414 issuer
    /// identifier, compared exactly) for `resource`, which names `issuer`
    /// as its authorization server unless it names others. Its realm is
    /// the resource's identifier; no clock leeway.
    pub fn new(issuer: impl Into<String>, resource: ProtectedResource) -> Self {
        let issuer = issuer.into();
        Self {
            realm: resource.identifier().as_str().to_owned(),
            default: resource.defaulting_authorization_server(&issuer),
            others: Vec::new(),
            issuer,
            leeway: Duration::ZERO,
            origin: None,
            untyped_introspection: false,
        }
    }

    /// The origin (`scheme://host[:port]`) clients address this resource
    /// server at, when it is not that of its resource identifiers (e.g.
    /// behind a proxy that serves it under another name): DPoP proofs'
    /// `htu` must name it (RFC 9449 §4.3 item 9).
    #[must_use]
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into().trim_end_matches('/').to_owned());
        self
    }

    /// Takes an introspection answer without `token_type` for an access
    /// token. By default such an answer is refused
    /// ([`RefusedToken::NotAnAccessToken`]): RFC 7662 §2.2 types access
    /// tokens only (`Bearer`, `DPoP`: RFC 6749 §7.1), and an authorization
    /// server that lets this resource server introspect any token (as
    /// Tessera's does for `introspect_any_token` clients) answers a
    /// refresh token `active` without one, so a stolen refresh token would
    /// pass here for an access token, good for weeks and without its
    /// client's secret. Dangerous: only for an authorization server that
    /// leaves out `token_type` for access tokens **and** never answers a
    /// refresh token `active` to this resource server.
    #[must_use]
    pub fn dangerous_accept_untyped_introspection(mut self) -> Self {
        self.untyped_introspection = true;
        self
    }

    /// Also serves `resource` (e.g. `/mcp` beside `/api`): requests to its
    /// paths need tokens for it.
    #[must_use]
    pub fn with_resource(mut self, resource: ProtectedResource) -> Self {
        self.others
            .push(resource.defaulting_authorization_server(&self.issuer));
        self
    }

    /// The realm of challenges (RFC 6750 §3).
    #[must_use]
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Allows `leeway` of clock skew on `exp` and `nbf` (RFC 7519 §4.1.4),
    /// at most [`MAX_LEEWAY`].
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.clamp(Duration::ZERO, MAX_LEEWAY);
        self
    }

    /// The trusted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The clock leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The protected resources served, the default first.
    pub fn resources(&self) -> impl Iterator<Item = &ProtectedResource> {
        std::iter::once(&self.default).chain(&self.others)
    }

    /// The resource a request to `path` is for: the one with the longest
    /// path containing it, else the first declared (every request a
    /// remote verifier sees is for one of its resources, so every token is
    /// audience-checked, RFC 9068 §4 step 6).
    pub fn resource_at(&self, path: &str) -> &ProtectedResource {
        self.resources()
            .filter(|r| r.contains_path(path))
            .max_by_key(|r| r.path().len())
            .unwrap_or(&self.default)
    }

    /// The `resource_metadata` URL of challenges at `path` (RFC 9728 §5.1).
    pub fn resource_metadata_url_at(&self, path: &str) -> String {
        self.resource_at(path).metadata_url()
    }

    /// The `scope` of `401` challenges at `path`: the scopes declared by
    /// the resource there, if any (see [`TokenVerifier::scope_hint_at`]).
    pub fn scope_hint_at(&self, path: &str) -> Option<String> {
        self.resource_at(path)
            .scopes()
            .filter(|s| !s.is_empty())
            .map(ToString::to_string)
    }

    /// The protected resource metadata document (RFC 9728 §3) when `path`
    /// is one resource's well-known metadata path, for the application to
    /// serve (`GET`, `200 application/json`).
    pub fn metadata_response(&self, path: &str) -> Option<HttpResponse> {
        let resource = self.resources().find(|r| r.metadata_path() == path)?;
        Some(match serde_json::to_string(&resource.metadata()) {
            Ok(body) => HttpResponse::json(200, body),
            Err(_) => HttpResponse::server_error(),
        })
    }

    /// Checks a JWT access token for a request to `path` against the
    /// authorization server's `keys` at `now`, as RFC 9068 §4 says: `typ`
    /// `at+jwt`, the key named by `kid` and its own algorithm (so `alg:
    /// none` and HMAC with a public key select nothing, RFC 8725 §3.1),
    /// the signature, `iss`, `exp` and `nbf` (with the leeway), and that
    /// `aud` names the resource at `path`. A token bound to a key (`cnf`)
    /// is refused ([`RefusedToken::SenderConstrained`]): for a caller that
    /// knows bearer tokens only, it was stolen or misused. To accept
    /// DPoP-bound tokens with their proofs, use
    /// [`check_jwt_with_binding`](Self::check_jwt_with_binding).
    pub fn check_jwt(
        &self,
        path: &str,
        token: &str,
        keys: &dyn VerificationKeys,
        now: OffsetDateTime,
    ) -> Result<AccessToken, RefusedToken> {
        bearer_only(self.check_jwt_with_binding(path, token, keys, now)?)
    }

    /// As [`check_jwt`](Self::check_jwt), but a token bound to a DPoP key
    /// (`cnf.jkt`, RFC 9449 §6.1) comes back with
    /// [`dpop_jkt`](AccessToken::dpop_jkt) set, and the caller **must**
    /// then check how it was presented with
    /// [`check_presentation`](Self::check_presentation) (a bound token is
    /// good only with a proof by its key); any other confirmation (`cnf`)
    /// is refused.
    pub fn check_jwt_with_binding(
        &self,
        path: &str,
        token: &str,
        keys: &dyn VerificationKeys,
        now: OffsetDateTime,
    ) -> Result<AccessToken, RefusedToken> {
        let claims = verify_access_token(token, keys, &self.issuer, self.leeway, now).map_err(
            |e| match e {
                JwtError::Expired => RefusedToken::Expired,
                e => RefusedToken::Jwt(e),
            },
        )?;
        let resource = self.resource_at(path);
        if !claims
            .aud
            .iter()
            .any(|a| a == resource.identifier().as_str())
        {
            return Err(RefusedToken::WrongAudience);
        }
        // The signature verified, so the payload is well-formed: read the
        // one member the claims type does not keep.
        let confirmation = token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Confirmation>(&p).ok())
            .ok_or(RefusedToken::Malformed)?;
        let jkt = dpop_binding(confirmation.cnf.as_ref())?;
        let mut access = access_token(
            resource,
            &claims.client_id,
            Some(&claims.sub),
            claims.scope.as_deref(),
            claims.exp,
            claims.act,
        )?;
        access.dpop_jkt = jkt;
        Ok(access)
    }

    /// Reads an introspection answer (RFC 7662 §2.2, the body of a `200`)
    /// for a request to `path` at `now`: `active` must be `true`; `iss`,
    /// if given, the trusted issuer; `aud` must name the resource at
    /// `path`; `exp` (required here, so that no answer is kept past it)
    /// in the future; `client_id` present. A sender-constrained token
    /// (`cnf`, or `token_type` `DPoP`) is refused as a bearer token
    /// ([`RefusedToken::SenderConstrained`]); to accept DPoP-bound tokens
    /// with their proofs, use
    /// [`check_introspection_with_binding`](Self::check_introspection_with_binding).
    pub fn check_introspection(
        &self,
        path: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<AccessToken, IntrospectionError> {
        let access = self.check_introspection_with_binding(path, body, now)?;
        Ok(bearer_only(access)?)
    }

    /// As [`check_introspection`](Self::check_introspection), but a
    /// DPoP-bound token (`cnf.jkt`, RFC 9449 §6.2) comes back with
    /// [`dpop_jkt`](AccessToken::dpop_jkt) set, and the caller **must**
    /// then check how it was presented with
    /// [`check_presentation`](Self::check_presentation); any other
    /// confirmation, or `token_type` `DPoP` without `cnf.jkt`, is refused.
    pub fn check_introspection_with_binding(
        &self,
        path: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<AccessToken, IntrospectionError> {
        let answer: IntrospectionAnswer =
            serde_json::from_slice(body).map_err(|_| IntrospectionError::NotAnAnswer)?;
        if !answer.active {
            return Err(RefusedToken::Inactive.into());
        }
        if answer.iss.as_deref().is_some_and(|iss| iss != self.issuer) {
            return Err(RefusedToken::WrongIssuer.into());
        }
        let exp = answer.exp.ok_or(RefusedToken::Malformed)?;
        self.check_times(Some(exp), answer.nbf, now)?;
        let resource = self.resource_at(path);
        if !answer
            .aud
            .as_ref()
            .is_some_and(|aud| aud.contains(resource.identifier().as_str()))
        {
            return Err(RefusedToken::WrongAudience.into());
        }
        // RFC 9449 §6.2: a DPoP-bound token's answer has `cnf.jkt`; a
        // `DPoP` token type without it names no key to check.
        let jkt = dpop_binding(answer.cnf.as_ref())?;
        // RFC 7662 §2.2: `token_type` is an access token's type (RFC 6749
        // §7.1); a token without one (a refresh token) is not for here.
        let dpop = match answer.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("dpop") => true,
            Some(t) if t.eq_ignore_ascii_case("bearer") => false,
            None if self.untyped_introspection => false,
            _ => return Err(RefusedToken::NotAnAccessToken.into()),
        };
        if dpop && jkt.is_none() {
            return Err(RefusedToken::SenderConstrained.into());
        }
        let client_id = answer.client_id.ok_or(RefusedToken::Malformed)?;
        let mut access = access_token(
            resource,
            &client_id,
            answer.sub.as_deref(),
            answer.scope.as_deref(),
            exp,
            answer.act,
        )?;
        access.dpop_jkt = jkt;
        Ok(access)
    }

    /// The origin requests to `path` are addressed to (RFC 6454 §4): the
    /// one set by [`with_origin`](Self::with_origin), else that of the
    /// identifier of the resource at `path` (RFC 9728 §1.2: the resource's
    /// URL). A DPoP proof's `htu` is this origin and the request's path.
    pub fn origin_at(&self, path: &str) -> String {
        if let Some(origin) = &self.origin {
            return origin.clone();
        }
        url::Url::parse(self.resource_at(path).identifier().as_str())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// Checks how a token that passed
    /// [`check_jwt_with_binding`](Self::check_jwt_with_binding) or
    /// [`check_introspection_with_binding`](Self::check_introspection_with_binding) was presented,
    /// as the in-process resource server does (RFC 9449 §7): a token bound
    /// to no key only as `Bearer`; a DPoP-bound token only as `DPoP` with
    /// a proof of this request (§4.3: `htm` its method, `htu` this
    /// [`origin_at`](Self::origin_at) its path, `iat` in `policy`'s window,
    /// `ath` the token's hash, its server nonce if `policy` requires one)
    /// by the key the token is bound to (§7.1, [`Reason::DpopKeyMismatch`]).
    /// A bound token sent as `Bearer` is [`BearerError::DpopBound`] (§7.2),
    /// an unbound one sent as `DPoP` [`BearerError::NotDpopBound`].
    ///
    /// Pure: the proof that comes back (for a DPoP-bound token) must still
    /// have its `jti` used once (§11.1): remember it in a replay cache with
    /// [`remember_dpop_proof`](crate::remember_dpop_proof), only then
    /// accept the request. Done in this order, only the holder of a bound
    /// token and its key can put entries in the cache.
    pub fn check_presentation(
        &self,
        request: &ResourceRequest<'_>,
        scheme: TokenScheme,
        token: &str,
        access: &AccessToken,
        policy: &DpopPolicy,
        now: OffsetDateTime,
    ) -> Result<Option<DpopProof>, BearerError> {
        let bound = match (scheme, access.dpop_jkt.as_deref()) {
            (TokenScheme::Bearer, None) => return Ok(None),
            // §7.2: a bound token is never a bearer token; and the `DPoP`
            // scheme says "bound", which an unbound token is not.
            (TokenScheme::Bearer, Some(_)) => return Err(BearerError::DpopBound),
            (TokenScheme::Dpop, None) => return Err(BearerError::NotDpopBound),
            (TokenScheme::Dpop, Some(bound)) => bound,
        };
        let Some(facts) = request.dpop_facts() else {
            // The adapter gave no method and target: no proof can be checked.
            return Err(BearerError::Dpop(DpopError::InvalidProof(
                Reason::DpopProofMissing,
            )));
        };
        let path = facts.target.split(['?', '#']).next().unwrap_or("");
        let htu = format!("{}{path}", self.origin_at(request.path));
        let context = ProofContext::new(facts.method, &htu, now).with_access_token(token);
        let proof = verify_proof(facts.proof, &context, policy).map_err(BearerError::Dpop)?;
        if proof.jkt != bound {
            return Err(BearerError::Dpop(DpopError::InvalidProof(
                Reason::DpopKeyMismatch,
            )));
        }
        Ok(Some(proof))
    }

    fn check_times(
        &self,
        exp: Option<i64>,
        nbf: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(), RefusedToken> {
        let now_s = now.unix_timestamp();
        let leeway_s = self.leeway.whole_seconds();
        if exp.is_some_and(|exp| now_s >= exp.saturating_add(leeway_s)) {
            return Err(RefusedToken::Expired);
        }
        if nbf.is_some_and(|nbf| now_s < nbf.saturating_sub(leeway_s)) {
            return Err(RefusedToken::Jwt(JwtError::NotYetValid));
        }
        Ok(())
    }
}

/// What reading an introspection answer found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The token is refused (`401 invalid_token`).
    #[error(transparent)]
    Refused(#[from] RefusedToken),
    /// The body is not an introspection answer (RFC 7662 §2.2): the
    /// authorization server misbehaves, the token is not checked (`503`).
    #[error("not an introspection answer")]
    NotAnAnswer,
}

/// The validated token a resource handler sees.
fn access_token(
    resource: &ProtectedResource,
    client_id: &str,
    sub: Option<&str>,
    scope: Option<&str>,
    exp: i64,
    act: Option<serde_json::Value>,
) -> Result<AccessToken, RefusedToken> {
    let client_id = ClientId::new(client_id).ok_or(RefusedToken::Malformed)?;
    // RFC 9068 §2.2: `sub` is the client itself for a token a client
    // obtained for itself (client credentials): no resource owner then.
    let subject = sub
        .filter(|s| !s.is_empty() && *s != client_id.as_str())
        .map(Subject::new);
    let scope = match scope {
        None | Some("") => Scope::empty(),
        Some(s) => Scope::parse(s).map_err(|_| RefusedToken::Malformed)?,
    };
    let expires_at =
        OffsetDateTime::from_unix_timestamp(exp).map_err(|_| RefusedToken::Malformed)?;
    let actor = match act {
        None => None,
        Some(v) => Some(serde_json::from_value::<Actor>(v).map_err(|_| RefusedToken::Malformed)?),
    };
    Ok(AccessToken {
        client_id,
        subject,
        scope,
        expires_at,
        actor,
        audience: Some(resource.identifier().clone()),
        dpop_jkt: None,
    })
}

/// The answer of a verifier that could not reach the authorization server
/// (its JWKS or introspection endpoint): `503 temporarily_unavailable`,
/// the token neither accepted nor called invalid (RFC 6749 §5.2's code for
/// a server that cannot answer now; RFC 6750 §3 allows other codes).
pub fn unreachable_authorization_server(detail: impl Into<String>) -> BearerError {
    let detail: String = detail.into();
    tracing::warn!(detail = %detail, "the authorization server could not be reached to check a token");
    BearerError::Unavailable(OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the access token cannot be checked now; try again later",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{JwsAlgorithm, KeySet, RotatingKeys};
    use crate::resource::ResourceIndicator;
    use crate::token::CountingRandom;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn rs() -> RemoteResource {
        let api =
            ProtectedResource::new(ResourceIndicator::new("https://rs/api").unwrap()).unwrap();
        let mcp =
            ProtectedResource::new(ResourceIndicator::new("https://rs/mcp").unwrap()).unwrap();
        RemoteResource::new("https://as", api).with_resource(mcp)
    }

    fn claims(aud: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": "https://as", "sub": "alice", "aud": aud, "exp": 3600, "iat": 0,
            "jti": "j", "client_id": "printshop", "scope": "photos.read",
        })
    }

    #[test]
    fn jwt_checks_follow_rfc9068_4() {
        let r = CountingRandom::default();
        let keys = RotatingKeys::generate(JwsAlgorithm::Es256, &r);
        let key = keys.signing_key(NOW);
        let sign = |c: &serde_json::Value, typ: &str| key.sign_jwt(typ, c).unwrap();
        let rs = rs();
        let good = sign(&claims("https://rs/api"), "at+jwt");
        let t = rs.check_jwt("/api/photos", &good, &keys, NOW).unwrap();
        assert_eq!(t.principal(), "alice");
        assert_eq!(t.audience.unwrap().as_str(), "https://rs/api");
        // §4 step 6: another resource's token; the path decides the resource.
        assert_eq!(
            rs.check_jwt("/mcp", &good, &keys, NOW),
            Err(RefusedToken::WrongAudience)
        );
        assert_eq!(
            RefusedToken::WrongAudience.bearer_error(),
            BearerError::WrongAudience
        );
        // §4 step 1: typ at+jwt required (RFC 8725 §3.11).
        let jwt_typ = sign(&claims("https://rs/api"), "JWT");
        assert_eq!(
            rs.check_jwt("/api", &jwt_typ, &keys, NOW),
            Err(RefusedToken::Jwt(JwtError::WrongType))
        );
        // §4 step 2: iss.
        let mut other_iss = claims("https://rs/api");
        other_iss["iss"] = "https://evil".into();
        assert_eq!(
            rs.check_jwt("/api", &sign(&other_iss, "at+jwt"), &keys, NOW),
            Err(RefusedToken::Jwt(JwtError::WrongIssuer))
        );
        // §4 step 7: exp, with the leeway.
        let later = NOW + Duration::hours(1);
        assert_eq!(
            rs.check_jwt("/api", &good, &keys, later),
            Err(RefusedToken::Expired)
        );
        let lenient = rs.clone().with_leeway(Duration::seconds(5));
        assert!(lenient.check_jwt("/api", &good, &keys, later).is_ok());
        assert_eq!(
            rs.clone().with_leeway(Duration::days(1)).leeway(),
            MAX_LEEWAY
        );
        // RFC 9449 §6.1: a DPoP-bound token names its key, for the
        // presentation check; another confirmation (RFC 8705 §3.1) cannot
        // be checked here and is refused.
        let mut bound = claims("https://rs/api");
        bound["cnf"] = serde_json::json!({"jkt": "abc"});
        let bound = sign(&bound, "at+jwt");
        assert_eq!(
            rs.check_jwt("/api", &bound, &keys, NOW),
            Err(RefusedToken::SenderConstrained),
            "a bearer-only check refuses it"
        );
        let t = rs
            .check_jwt_with_binding("/api", &bound, &keys, NOW)
            .unwrap();
        assert_eq!(t.dpop_jkt.as_deref(), Some("abc"));
        let request = ResourceRequest::new("/api").with_dpop(Some("GET"), Some("/api"), None);
        assert_eq!(
            rs.check_presentation(
                &request,
                TokenScheme::Bearer,
                "t",
                &t,
                &DpopPolicy::new(),
                NOW
            ),
            Err(BearerError::DpopBound),
            "RFC 9449 §7.2: a bound token as Bearer"
        );
        let unbound = rs
            .check_jwt_with_binding("/api", &good, &keys, NOW)
            .unwrap();
        assert_eq!(
            rs.check_presentation(
                &request,
                TokenScheme::Dpop,
                "t",
                &unbound,
                &DpopPolicy::new(),
                NOW
            ),
            Err(BearerError::NotDpopBound),
            "RFC 9449 §7.1: an unbound token with the DPoP scheme"
        );
        assert!(matches!(
            rs.check_presentation(
                &request,
                TokenScheme::Dpop,
                "t",
                &t,
                &DpopPolicy::new(),
                NOW
            ),
            Err(BearerError::Dpop(DpopError::InvalidProof(
                Reason::DpopProofMissing
            )))
        ));
        assert_eq!(rs.origin_at("/api"), "https://rs");
        assert_eq!(
            rs.clone()
                .with_origin("https://proxy.example/")
                .origin_at("/api"),
            "https://proxy.example"
        );
        let mut mtls = claims("https://rs/api");
        mtls["cnf"] = serde_json::json!({"x5t#S256": "abc"});
        assert!(matches!(
            rs.check_jwt_with_binding("/api", &sign(&mtls, "at+jwt"), &keys, NOW),
            Err(RefusedToken::SenderConstrained | RefusedToken::Jwt(JwtError::Malformed))
        ));
        // alg none: no key has it (RFC 8725 §3.1).
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#,
            key.kid()
        ));
        let payload = URL_SAFE_NO_PAD.encode(claims("https://rs/api").to_string());
        let none = format!("{header}.{payload}.");
        assert_eq!(
            rs.check_jwt("/api", &none, &keys, NOW),
            Err(RefusedToken::Jwt(JwtError::AlgorithmMismatch))
        );
    }

    #[test]
    fn introspection_answers_follow_rfc7662_2_2() {
        let rs = rs();
        let ok = serde_json::json!({
            "active": true, "iss": "https://as", "aud": "https://rs/api", "exp": 60,
            "client_id": "backup-job", "sub": "backup-job", "scope": "photos.read",
            "token_type": "Bearer",
        });
        let t = rs
            .check_introspection("/api", ok.to_string().as_bytes(), NOW)
            .unwrap();
        assert_eq!(t.subject, None, "client credentials: sub is the client");
        assert!(t.scope.contains("photos.read"));
        let check = |v: serde_json::Value, path: &str, now| match rs.check_introspection(
            path,
            v.to_string().as_bytes(),
            now,
        ) {
            Err(IntrospectionError::Refused(r)) => Some(r),
            _ => None,
        };
        assert_eq!(
            check(serde_json::json!({"active": false}), "/api", NOW),
            Some(RefusedToken::Inactive)
        );
        assert_eq!(
            check(ok.clone(), "/mcp", NOW),
            Some(RefusedToken::WrongAudience)
        );
        assert_eq!(
            check(ok.clone(), "/api", NOW + Duration::minutes(1)),
            Some(RefusedToken::Expired)
        );
        let mut v = ok.clone();
        v["iss"] = "https://evil".into();
        assert_eq!(check(v, "/api", NOW), Some(RefusedToken::WrongIssuer));
        // RFC 9449 §6.2: `DPoP` without `cnf.jkt` names no key to check.
        let mut v = ok.clone();
        v["token_type"] = "DPoP".into();
        assert_eq!(
            check(v.clone(), "/api", NOW),
            Some(RefusedToken::SenderConstrained)
        );
        v["cnf"] = serde_json::json!({"jkt": "abc"});
        assert_eq!(
            check(v.clone(), "/api", NOW),
            Some(RefusedToken::SenderConstrained)
        );
        let t = rs
            .check_introspection_with_binding("/api", v.to_string().as_bytes(), NOW)
            .unwrap();
        assert_eq!(t.dpop_jkt.as_deref(), Some("abc"));
        v["cnf"] = serde_json::json!({"x5t#S256": "abc"});
        assert_eq!(check(v, "/api", NOW), Some(RefusedToken::SenderConstrained));
        // A refresh token answered `active` (no `token_type`), or any other
        // type: not an access token, unless the resource server is told
        // its authorization server leaves the type out.
        let mut v = ok.clone();
        v.as_object_mut().unwrap().remove("token_type");
        assert_eq!(
            check(v.clone(), "/api", NOW),
            Some(RefusedToken::NotAnAccessToken)
        );
        let lenient = rs.clone().dangerous_accept_untyped_introspection();
        assert!(
            lenient
                .check_introspection("/api", v.to_string().as_bytes(), NOW)
                .is_ok()
        );
        v["token_type"] = "refresh_token".into();
        assert_eq!(check(v, "/api", NOW), Some(RefusedToken::NotAnAccessToken));
        let mut v = ok.clone();
        v["token_type"] = "bearer".into();
        assert!(
            check(v, "/api", NOW).is_none(),
            "case-insensitive (RFC 6749 §5.1)"
        );
        let mut v = ok.clone();
        v.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(v, "/api", NOW), Some(RefusedToken::Malformed));
        let mut v = ok.clone();
        v.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(v, "/api", NOW), Some(RefusedToken::WrongAudience));
        let mut v = ok;
        v["scope"] = "bad  scope".into();
        assert_eq!(check(v, "/api", NOW), Some(RefusedToken::Malformed));
        assert_eq!(
            rs.check_introspection("/api", b"<html>", NOW),
            Err(IntrospectionError::NotAnAnswer)
        );
    }

    #[test]
    fn requests_carry_their_token_in_the_header_only() {
        let r = ResourceRequest::new("/api");
        assert_eq!(r.bearer_token(), Err(BearerError::Missing));
        let r = r
            .with_authorization(Some("Bearer abc"))
            .with_query(Some("access_token=abc"));
        assert!(matches!(r.bearer_token(), Err(BearerError::Malformed(_))));
    }

    #[test]
    fn metadata_is_served_at_each_resources_well_known_path_rfc9728_3_1() {
        let rs = rs();
        let r = rs
            .metadata_response("/.well-known/oauth-protected-resource/mcp")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["resource"], "https://rs/mcp");
        assert_eq!(v["authorization_servers"][0], "https://as");
        assert!(
            rs.metadata_response("/.well-known/oauth-protected-resource")
                .is_none()
        );
        assert_eq!(
            rs.resource_at("/other").identifier().as_str(),
            "https://rs/api"
        );
    }
}
