//! Checking bearer tokens at a resource server (RFC 6750).

use time::OffsetDateTime;

use crate::client::ClientId;
use crate::dpop::{DpopError, ProofContext};
use crate::error::{ErrorCode, OAuthError, Reason};
use crate::http::HttpResponse;
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::server::Server;
use crate::storage::{Actor, Subject};
use crate::token::{SecretKey, TokenKind};

/// A validated access token: who it is for and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessToken {
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The resource owner, `None` for a client acting for itself.
    pub subject: Option<Subject>,
    /// Its scope.
    pub scope: Scope,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Who acts on the subject's behalf, for a token issued by delegation
    /// (RFC 8693 §4.1 `act`); `None` otherwise.
    pub actor: Option<Actor>,
    /// The resource it is for (RFC 8707 §2); `None`: no audience.
    pub audience: Option<ResourceIndicator>,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §6,
    /// `cnf.jkt`): it was presented with a valid proof by that key.
    /// `None`: a bearer token.
    pub dpop_jkt: Option<String>,
}

impl AccessToken {
    /// Checks that the token carries every scope token in `required`
    /// (`insufficient_scope`, 403, RFC 6750 §3.1). An empty name beside
    /// others names nothing and is skipped, as in the challenge's scope
    /// hint; names that are all empty (a scope left out of a
    /// configuration, say) refuse every token, rather than none, and the
    /// challenge then names no scope (§3: never `scope=""`).
    pub fn require(&self, required: &[&str]) -> Result<(), BearerError> {
        let named = || required.iter().copied().filter(|s| !s.is_empty());
        let misconfigured = !required.is_empty() && named().next().is_none();
        if !misconfigured && named().all(|s| self.scope.contains(s)) {
            return Ok(());
        }
        Err(BearerError::InsufficientScope {
            required: named().collect::<Vec<_>>().join(" "),
        })
    }

    /// Who acts: the owner, or the client itself for client-credentials tokens.
    pub fn principal(&self) -> &str {
        self.subject
            .as_ref()
            .map_or(self.client_id.as_str(), Subject::as_str)
    }
}

/// Why a protected resource refuses a request (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// No credentials were sent: `401` with a bare challenge, no error code (§3.1).
    Missing,
    /// The request is malformed (a token in the query string, a malformed
    /// `Authorization: Bearer` value): `400 invalid_request` (§3.1).
    Malformed(&'static str),
    /// The token is unknown, expired, revoked or malformed: `401 invalid_token` (§3.1).
    Invalid,
    /// The token is for another resource, or for none (RFC 8707 §2):
    /// `401 invalid_token` (RFC 6750 §3.1), like any token not good here.
    WrongAudience,
    /// The token lacks a scope the resource needs: `403 insufficient_scope`,
    /// naming the scopes `required` (§3.1).
    InsufficientScope {
        /// The scopes needed, space-separated.
        required: String,
    },
    /// The token could not be checked (the store failed): `503
    /// temporarily_unavailable` or `500 server_error`, logged where it arose.
    Unavailable(OAuthError),
    /// The token was sent with the `DPoP` scheme and its proof is invalid:
    /// `401 invalid_dpop_proof`, or `401 use_dpop_nonce` with a `DPoP-Nonce`
    /// header (RFC 9449 §7.1, §9), with a `DPoP` challenge.
    Dpop(DpopError),
    /// A DPoP-bound token sent as a bearer token: `401 invalid_token` with
    /// a `DPoP` challenge (RFC 9449 §7.1, §7.2). Whoever sends a bound
    /// token without its proof may have stolen it.
    DpopBound,
    /// A token bound to no key sent with the `DPoP` scheme, which says
    /// "bound": `401 invalid_token` with a `DPoP` challenge (RFC 9449
    /// §7.1). The token itself is fine as a bearer token.
    NotDpopBound,
}

impl AccessToken {
    /// The scheme it was presented in: `DPoP` for a token bound to a key
    /// (only a proof by that key gets it accepted, RFC 9449 §7.1), else
    /// `Bearer`. For answering a later refusal (too little scope) in the
    /// request's own scheme ([`BearerError::to_http_in`]).
    pub fn scheme(&self) -> TokenScheme {
        if self.dpop_jkt.is_some() {
            TokenScheme::Dpop
        } else {
            TokenScheme::Bearer
        }
    }
}

/// The scheme an `Authorization` header names, for answering a refusal in
/// it ([`BearerError::to_http_in`]), even when what follows is malformed:
/// `None` for no header or another scheme.
pub fn presented_scheme(authorization: Option<&str>) -> Option<TokenScheme> {
    let header = authorization?;
    let scheme = header.split_once(' ').map_or(header, |(scheme, _)| scheme);
    if scheme.eq_ignore_ascii_case("dpop") {
        Some(TokenScheme::Dpop)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(TokenScheme::Bearer)
    } else {
        None
    }
}

impl BearerError {
    /// The RFC 6750 error this answers with; `None` for [`Missing`](Self::Missing).
    pub fn oauth_error(&self) -> Option<OAuthError> {
        match self {
            Self::Missing => None,
            Self::Malformed(why) => {
                Some(OAuthError::invalid_request(*why).with_reason(Reason::MalformedRequest))
            }
            Self::Invalid => Some(
                OAuthError::new(
                    ErrorCode::InvalidToken,
                    "the access token is invalid, expired or revoked",
                )
                .with_reason(Reason::AccessTokenInvalid),
            ),
            Self::WrongAudience => Some(
                OAuthError::new(
                    ErrorCode::InvalidToken,
                    "the access token is not for this resource",
                )
                .with_reason(Reason::AudienceMismatch),
            ),
            Self::InsufficientScope { .. } => Some(OAuthError::new(
                ErrorCode::InsufficientScope,
                "the token lacks the required scope",
            )),
            Self::Unavailable(e) => Some(e.clone()),
            Self::Dpop(e) => Some(e.to_oauth_error()),
            Self::DpopBound => Some(
                OAuthError::new(
                    ErrorCode::InvalidToken,
                    "the access token is bound to a DPoP key: present it with the DPoP scheme and a proof",
                )
                .with_reason(Reason::DpopSchemeMismatch),
            ),
            Self::NotDpopBound => Some(
                OAuthError::new(
                    ErrorCode::InvalidToken,
                    "the access token is not bound to a DPoP key: present it with the Bearer scheme",
                )
                .with_reason(Reason::DpopSchemeMismatch),
            ),
        }
    }

    /// The error code; `None` for [`Missing`](Self::Missing).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Missing => None,
            Self::Malformed(_) => Some(ErrorCode::InvalidRequest),
            Self::Invalid | Self::WrongAudience | Self::DpopBound | Self::NotDpopBound => {
                Some(ErrorCode::InvalidToken)
            }
            Self::InsufficientScope { .. } => Some(ErrorCode::InsufficientScope),
            Self::Unavailable(e) => Some(e.code),
            Self::Dpop(e) => Some(e.to_oauth_error().code),
        }
    }

    /// The HTTP status: 401, 400 for malformed requests, 403 for insufficient
    /// scope, 5xx when the token could not be checked. DPoP proof errors
    /// are 401 at a resource server (RFC 9449 §7.1).
    pub fn status(&self) -> u16 {
        match self {
            Self::Dpop(DpopError::Unavailable(e)) => e.status(),
            Self::Dpop(_) => 401,
            // Its own status: a rate limit's 429, say.
            Self::Unavailable(e) => e.status(),
            _ => self.code().map_or(401, ErrorCode::status),
        }
    }

    /// The error of a token that could not be checked (a store fault, a
    /// limit reached): not the token's fault, so its code (not one RFC 6750
    /// §3.1 defines for a resource) stays out of the challenge.
    fn unavailable(&self) -> Option<OAuthError> {
        match self {
            Self::Unavailable(e) => Some(e.clone()),
            Self::Dpop(e @ DpopError::Unavailable(_)) => Some(e.to_oauth_error()),
            _ => None,
        }
    }

    /// Whether the answer challenges with the `DPoP` scheme (RFC 9449 §7.1):
    /// the request used it, or sent a DPoP-bound token.
    fn is_dpop(&self) -> bool {
        matches!(self, Self::Dpop(e) if !matches!(e, DpopError::Unavailable(_)))
            || matches!(self, Self::DpopBound | Self::NotDpopBound)
    }

    /// The `WWW-Authenticate` header value.
    pub fn challenge(&self, realm: &str) -> String {
        self.challenge_with(realm, None)
    }

    /// The `WWW-Authenticate` header value of a protected resource that
    /// publishes metadata (RFC 9728 §5.1): `resource_metadata` is its URL,
    /// in every challenge (no token, a bad token, too little scope), so a
    /// client that knows nothing can find the authorization server.
    pub fn challenge_with(&self, realm: &str, resource_metadata: Option<&str>) -> String {
        self.challenge_for(realm, resource_metadata, None)
    }

    /// As [`challenge_with`](Self::challenge_with), and a `401` (no token,
    /// or a bad one) also names `scope_hint`, the scopes the resource
    /// declared (RFC 6750 §3; the MCP authorization spec: a server SHOULD
    /// say which scopes to ask for). A `403 insufficient_scope` names the
    /// scopes the request lacked instead.
    pub fn challenge_for(
        &self,
        realm: &str,
        resource_metadata: Option<&str>,
        scope_hint: Option<&str>,
    ) -> String {
        self.challenge_in(None, realm, resource_metadata, scope_hint)
    }

    /// As [`challenge_for`](Self::challenge_for), for a request that
    /// presented its token in `scheme`: one in the `DPoP` scheme is
    /// challenged in it, whatever was wrong (an unknown token, another
    /// resource's, too little scope; RFC 9449 §7.1), with the algorithms
    /// accepted (`algs`).
    pub fn challenge_in(
        &self,
        scheme: Option<TokenScheme>,
        realm: &str,
        resource_metadata: Option<&str>,
        scope_hint: Option<&str>,
    ) -> String {
        let dpop = self.is_dpop() || scheme == Some(TokenScheme::Dpop);
        let scope = match self {
            Self::InsufficientScope { required } => Some(required.as_str()),
            _ if self.status() == 401 => scope_hint,
            _ => None,
        }
        // `scope-token *( SP scope-token )` (RFC 6750 §3): never empty.
        .filter(|s| !s.is_empty());
        // RFC 6750 §3.1 defines `invalid_request`, `invalid_token` and
        // `insufficient_scope` for a resource; a token that could not be
        // checked is none of them, and gets the bare challenge.
        let error = self.oauth_error().filter(|_| self.unavailable().is_none());
        let mut header = match error {
            None => {
                let realm = crate::error::quote_safe(realm);
                // A request in the `DPoP` scheme is challenged in it (RFC
                // 9449 §7.1), a token that could not be checked too.
                let mut header = if dpop {
                    format!(
                        "DPoP algs=\"{}\", realm=\"{realm}\"",
                        crate::dpop::DPOP_ALGS_PARAM
                    )
                } else {
                    format!("Bearer realm=\"{realm}\"")
                };
                if let Some(scope) = scope {
                    header.push_str(&format!(", scope=\"{}\"", crate::error::quote_safe(scope)));
                }
                header
            }
            // RFC 9449 §7.1: the `DPoP` scheme, with the algorithms accepted.
            Some(e) if dpop => {
                let bearer = e.bearer_challenge(realm, scope);
                let params = bearer.strip_prefix("Bearer ").unwrap_or(&bearer);
                format!("DPoP algs=\"{}\", {params}", crate::dpop::DPOP_ALGS_PARAM)
            }
            Some(e) => e.bearer_challenge(realm, scope),
        };
        // First after the scheme, as DEMO-CONTRACT writes the MCP
        // challenge (`Bearer resource_metadata="…"`); auth-params are
        // unordered (RFC 9110 §11.6.1), so any client reads it alike.
        if let Some(url) = resource_metadata {
            let at = header.find(' ').map_or(header.len(), |i| i + 1);
            header.insert_str(
                at,
                &format!("resource_metadata=\"{}\", ", crate::error::quote_safe(url)),
            );
        }
        header
    }

    /// As an HTTP response with the JSON error body and the challenge.
    pub fn to_http(&self, realm: &str) -> HttpResponse {
        self.to_http_with(realm, None)
    }

    /// As an HTTP response whose challenge names the resource's metadata
    /// (RFC 9728 §5.1; see [`challenge_with`](Self::challenge_with)).
    pub fn to_http_with(&self, realm: &str, resource_metadata: Option<&str>) -> HttpResponse {
        self.to_http_for(realm, resource_metadata, None)
    }

    /// As [`to_http_with`](Self::to_http_with), a `401`'s challenge also
    /// naming `scope_hint` (see [`challenge_for`](Self::challenge_for)).
    pub fn to_http_for(
        &self,
        realm: &str,
        resource_metadata: Option<&str>,
        scope_hint: Option<&str>,
    ) -> HttpResponse {
        self.to_http_in(None, realm, resource_metadata, scope_hint)
    }

    /// As [`to_http_for`](Self::to_http_for), for a request that presented
    /// its token in `scheme` (see [`challenge_in`](Self::challenge_in)):
    /// what the adapters answer.
    pub fn to_http_in(
        &self,
        scheme: Option<TokenScheme>,
        realm: &str,
        resource_metadata: Option<&str>,
        scope_hint: Option<&str>,
    ) -> HttpResponse {
        let mut r = match self.oauth_error() {
            Some(e) => HttpResponse::json_no_store(self.status(), e.to_json()),
            // RFC 6750 §3.1: no credentials, no error information: an
            // empty object, in the body as in the bare challenge.
            None => HttpResponse::json_no_store(401, "{}"),
        };
        r.headers.push((
            "www-authenticate",
            self.challenge_in(scheme, realm, resource_metadata, scope_hint)
                .into(),
        ));
        if let Self::Dpop(DpopError::UseNonce { nonce }) = self {
            // RFC 9449 §9: the nonce to use.
            r.headers.push(("dpop-nonce", nonce.clone().into()));
        }
        // A limit's answer says when to try again (RFC 9110 §10.2.3).
        if let Some(seconds) = self.unavailable().and_then(|e| e.retry_after()) {
            r.headers.push(("retry-after", seconds.to_string().into()));
        }
        r
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.oauth_error() {
            Some(e) => e.fmt(f),
            None => f.write_str("no bearer token"),
        }
    }
}

impl std::error::Error for BearerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(e) | Self::Dpop(DpopError::Unavailable(e)) => Some(e),
            _ => None,
        }
    }
}

/// Which bytes RFC 6750 §2.1's `b68token` is made of (before its trailing
/// `=`s): one table lookup per byte of every presented token.
const B68TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < table.len() {
        let b = i as u8;
        table[i] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        i += 1;
    }
    table
};

/// The token in an `Authorization: Bearer` header (RFC 6750 §2.1), if the
/// header uses that scheme. `Err` for a malformed value.
pub fn bearer_token(authorization: Option<&str>) -> Result<Option<&str>, BearerError> {
    let Some(header) = authorization else {
        return Ok(None);
    };
    // A bare `Bearer` (HTTP trims the space after it) is the scheme with its
    // token missing: malformed, not absent (§3.1 `invalid_request`).
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim_start_matches(' ');
    // b68token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let bytes = token.as_bytes();
    let body = match bytes.iter().rposition(|&b| b != b'=') {
        Some(last) => bytes.get(..=last).unwrap_or_default(),
        None => &[],
    };
    let ok = !body.is_empty() && body.iter().all(|&b| B68TOKEN_CHARS[usize::from(b)]);
    if ok {
        Ok(Some(token))
    } else {
        Err(BearerError::Malformed("malformed bearer token"))
    }
}

/// How a resource request presents its access token (RFC 6750 §2.1,
/// RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: DPoP <token>`, with a proof in the `DPoP` header.
    Dpop,
}

/// The access token in an `Authorization` header and its scheme, `Bearer`
/// or `DPoP` (schemes are case-insensitive, RFC 9110 §11.1); `None` for no
/// header or another scheme. `Err` for a malformed value.
pub fn access_token_credentials(
    authorization: Option<&str>,
) -> Result<Option<(TokenScheme, &str)>, BearerError> {
    match presented_scheme(authorization) {
        None => Ok(None),
        Some(TokenScheme::Bearer) => {
            Ok(bearer_token(authorization)?.map(|t| (TokenScheme::Bearer, t)))
        }
        Some(TokenScheme::Dpop) => {
            // The same token68 syntax as Bearer (RFC 9449 §7.1).
            let rest = authorization
                .and_then(|h| h.split_once(' '))
                .map_or("", |(_, rest)| rest);
            match bearer_token(Some(&format!("Bearer {rest}"))) {
                Ok(Some(_)) => Ok(Some((TokenScheme::Dpop, rest.trim_start_matches(' ')))),
                _ => Err(BearerError::Malformed("malformed DPoP access token")),
            }
        }
    }
}

/// What a resource request says for checking a DPoP proof (RFC 9449 §7):
/// its method, its request target as received, and its `DPoP` header.
/// Adapters fill it from the request; the core decides everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpopFacts<'a> {
    /// The request method, e.g. `GET` (`htm`).
    pub method: &'a str,
    /// The request target as the client sent it: path and optional query
    /// (the query is ignored); the server's origin (its issuer's scheme,
    /// host and port) is put in front for `htu`.
    pub target: &'a str,
    /// The `DPoP` header (repeated fields joined with `", "`).
    pub proof: Option<&'a str>,
}

impl<'a> DpopFacts<'a> {
    /// The facts of a request with `method` to `target` carrying `proof`.
    pub fn new(method: &'a str, target: &'a str, proof: Option<&'a str>) -> Self {
        Self {
            method,
            target,
            proof,
        }
    }
}

impl Server {
    /// Validates the bearer token of a request to the resource `resource`
    /// (RFC 8707 §2): as [`verify_bearer`](Self::verify_bearer), and the
    /// token's audience must be `resource`. A token for another resource,
    /// or for none, is [`BearerError::WrongAudience`] (`401
    /// invalid_token`): it was issued to be presented elsewhere. (A token
    /// stored without an audience counts as the default resource's, see
    /// [`Config::audience_of`](crate::Config::audience_of).)
    pub async fn verify_bearer_for(
        &self,
        resource: &ResourceIndicator,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> Result<AccessToken, BearerError> {
        self.verify_access(Some(resource), authorization, query, None)
            .await
    }

    /// Validates the bearer token of a request to `path`: with
    /// [`verify_bearer_for`](Self::verify_bearer_for) for the declared
    /// protected resource that contains `path`
    /// ([`Server::protected_resource_at`]), else for the default resource
    /// when there is one, else with [`verify_bearer`](Self::verify_bearer)
    /// (a server that declares no resources). A DPoP-bound token is
    /// refused here (no proof can be checked without the request's
    /// facts): see [`verify_access_at`](Self::verify_access_at).
    pub async fn verify_bearer_at(
        &self,
        path: &str,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> Result<AccessToken, BearerError> {
        self.verify_access_at(path, authorization, query, None)
            .await
    }

    /// Validates the access token of a request to `path`, as
    /// [`verify_bearer_at`](Self::verify_bearer_at), presented as a bearer
    /// token or, with `dpop` facts, as a DPoP-bound token (RFC 9449 §7):
    /// `Authorization: DPoP <token>` with a proof for this request's method
    /// and URI, whose `ath` is the token's hash and whose key is the one the
    /// token is bound to; its `jti` is used once across instances (the
    /// store's replay cache). A DPoP-bound token sent as `Bearer` is
    /// refused ([`BearerError::DpopBound`]). What the adapters' bearer
    /// extractors and guards call.
    pub async fn verify_access_at(
        &self,
        path: &str,
        authorization: Option<&str>,
        query: Option<&str>,
        dpop: Option<DpopFacts<'_>>,
    ) -> Result<AccessToken, BearerError> {
        // A path no declared resource covers is the default resource's,
        // when there is one (as a token requested without `resource` is):
        // a token for another resource (`/mcp`) is refused there too, not
        // taken by any route the embedder did not declare (RFC 8707 §2).
        let resource = self
            .protected_resource_at(path)
            .map(|r| r.identifier())
            .or(self.config().default_resource.as_ref());
        self.verify_access(resource, authorization, query, dpop)
            .await
    }

    /// Validates the bearer token of a resource request, whatever its
    /// audience (see [`verify_bearer_for`](Self::verify_bearer_for) for a
    /// resource's own check).
    ///
    /// `authorization` is the `Authorization` header; `query` the raw query
    /// string: a token there (RFC 6750 §2.3) is refused, since URLs leak into
    /// logs and `Referer` headers (RFC 9700 §4.3.2).
    pub async fn verify_bearer(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> Result<AccessToken, BearerError> {
        self.verify_access(None, authorization, query, None).await
    }

    async fn verify_access(
        &self,
        resource: Option<&ResourceIndicator>,
        authorization: Option<&str>,
        query: Option<&str>,
        dpop: Option<DpopFacts<'_>>,
    ) -> Result<AccessToken, BearerError> {
        let in_query = query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
        });
        if in_query {
            return Err(BearerError::Malformed(
                "send the access token in the Authorization header",
            ));
        }
        let Some((scheme, token)) = access_token_credentials(authorization)? else {
            return Err(BearerError::Missing);
        };
        let access = self.resolve_access_token(token).await?;
        if let Some(resource) = resource {
            let audience = access
                .audience
                .as_ref()
                .or(self.config().default_resource.as_ref());
            if audience != Some(resource) {
                tracing::debug!(resource = %resource, audience = ?audience, "bearer token for another resource refused");
                return Err(BearerError::WrongAudience);
            }
        }
        match (scheme, access.dpop_jkt.as_deref()) {
            (TokenScheme::Bearer, None) => Ok(access),
            // RFC 9449 §7.2: a bound token is never a bearer token; and the
            // `DPoP` scheme says "bound", which an unbound token is not.
            (TokenScheme::Bearer, Some(_)) => Err(BearerError::DpopBound),
            (TokenScheme::Dpop, None) => Err(BearerError::NotDpopBound),
            (TokenScheme::Dpop, Some(bound)) => {
                self.check_resource_proof(token, bound, &access.client_id, dpop)
                    .await?;
                Ok(access)
            }
        }
    }

    /// RFC 9449 §7.1: the proof of a request presenting a DPoP-bound
    /// token: every §4.3 check with `htm`/`htu` of this request and `ath` of
    /// the token, its key the bound one, its `jti` not seen before.
    async fn check_resource_proof(
        &self,
        token: &str,
        bound: &str,
        client_id: &ClientId,
        dpop: Option<DpopFacts<'_>>,
    ) -> Result<(), BearerError> {
        let Some(facts) = dpop else {
            // The adapter gave no facts: no proof can be checked.
            return Err(BearerError::Dpop(DpopError::InvalidProof(
                Reason::DpopProofMissing,
            )));
        };
        let path = facts.target.split(['?', '#']).next().unwrap_or("");
        let htu = format!("{}{path}", self.routes_table().origin());
        let context = ProofContext::new(facts.method, &htu, self.now()).with_access_token(token);
        // Checked before the replay cache is touched, so a proof by another
        // key never takes a place in it.
        let proof = crate::dpop::verify_proof(facts.proof, &context, &self.config().dpop)
            .map_err(BearerError::Dpop)?;
        if proof.jkt != bound {
            return Err(BearerError::Dpop(DpopError::InvalidProof(
                Reason::DpopKeyMismatch,
            )));
        }
        // A self-registered client's token must not let its holder fill the
        // replay cache with proofs either.
        self.count_unvetted_resource_proof(client_id)
            .await
            .map_err(BearerError::Unavailable)?;
        crate::dpop::remember_proof(self.store().as_ref(), &proof, &context, &self.config().dpop)
            .await
            .map_err(BearerError::Dpop)
    }

    /// The live access token `token` names (opaque, or a JWT of ours whose
    /// signature checks), as its record says; `Invalid` otherwise.
    async fn resolve_access_token(&self, token: &str) -> Result<AccessToken, BearerError> {
        // Opaque tokens first, exactly as cheap as before; then a JWT of ours
        // (signature checked, then its record: revocation is seen).
        let secret = match SecretKey::parse(TokenKind::Access, token) {
            Some(secret) => secret,
            None => self.own_jwt_record_key(token).ok_or(BearerError::Invalid)?,
        };
        let record = self
            .store()
            .access_token(secret, self.now())
            .await
            .map_err(|e| {
                let e = OAuthError::from(e);
                e.log("bearer token could not be checked");
                BearerError::Unavailable(e)
            })?;
        let record = record.ok_or(BearerError::Invalid)?;
        Ok(AccessToken {
            client_id: record.client_id,
            subject: record.subject,
            scope: record.scope,
            expires_at: record.expires_at,
            actor: record.actor,
            audience: record.audience,
            dpop_jkt: record.dpop_jkt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty required name beside others names nothing; never a 403
    /// with `scope=""`.
    #[test]
    fn an_empty_required_name_names_nothing() {
        let token = AccessToken {
            client_id: ClientId::new("c").unwrap(),
            subject: None,
            scope: Scope::parse("a").unwrap(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            actor: None,
            audience: None,
            dpop_jkt: None,
        };
        assert!(token.require(&["", "a"]).is_ok());
        assert!(token.require(&[]).is_ok());
        // All empty: misconfigured, refused, and no `scope=""` named.
        let refused = token.require(&[""]).unwrap_err();
        let challenge = refused.challenge("r");
        assert!(!challenge.contains("scope="), "{challenge}");
        assert_eq!(refused.status(), 403);
        assert_eq!(
            token.require(&["", "b", "", "c"]),
            Err(BearerError::InsufficientScope {
                required: "b c".into()
            })
        );
    }

    /// A token that could not be checked is not the token's fault: RFC
    /// 6750 §3.1 defines no such code for a resource, so the challenge is
    /// the bare one; the answer keeps its own status (a limit's 429) and
    /// says when to try again.
    #[test]
    fn an_unchecked_token_gets_the_bare_challenge_and_retry_after_rfc6750_3_1() {
        let limited = OAuthError::new(ErrorCode::TemporarilyUnavailable, "busy")
            .with_retry_after(7)
            .too_many_requests();
        for (e, status) in [
            (BearerError::Unavailable(limited), 429),
            (
                BearerError::Unavailable(OAuthError::new(ErrorCode::ServerError, "broken")),
                500,
            ),
        ] {
            let r = e.to_http_in(None, "r", Some("https://rs.example/meta"), Some("a"));
            assert_eq!(r.status, status);
            let challenge = r.header("www-authenticate").unwrap();
            assert_eq!(
                challenge,
                "Bearer resource_metadata=\"https://rs.example/meta\", realm=\"r\""
            );
            assert_eq!(r.header("retry-after"), (status == 429).then_some("7"));
        }
        // In the `DPoP` scheme, a `DPoP` challenge (RFC 9449 §7.1).
        let e = BearerError::Unavailable(OAuthError::new(ErrorCode::ServerError, "broken"));
        let challenge = e.challenge_in(Some(TokenScheme::Dpop), "r", None, None);
        assert!(challenge.starts_with("DPoP algs="), "{challenge}");
        assert!(!challenge.contains("error="), "{challenge}");
    }

    #[test]
    fn parses_bearer_header() {
        assert_eq!(bearer_token(Some("Bearer abc")).ok().flatten(), Some("abc"));
        assert_eq!(
            bearer_token(Some("bearer abc==")).ok().flatten(),
            Some("abc==")
        );
        assert_eq!(bearer_token(Some("Basic abc")).ok().flatten(), None);
        assert_eq!(bearer_token(None).ok().flatten(), None);
        assert!(bearer_token(Some("Bearer a b")).is_err());
        assert!(bearer_token(Some("Bearer ")).is_err());
        assert!(bearer_token(Some("Bearer ===")).is_err());
        // RFC 6750 §3.1: the scheme without its token is malformed (400), not absent (401).
        assert!(bearer_token(Some("Bearer")).is_err());
        assert!(bearer_token(Some("bearer")).is_err());
        assert_eq!(bearer_token(Some("Bearerx")).ok().flatten(), None);
    }

    #[test]
    fn b68token_table_is_rfc6750_2_1() {
        for b in 0..=255u8 {
            let b68 = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(B68TOKEN_CHARS[usize::from(b)], b68, "byte {b}");
        }
        assert_eq!(
            bearer_token(Some("Bearer a-b.c_d~e+f/g==")).ok().flatten(),
            Some("a-b.c_d~e+f/g==")
        );
        assert!(bearer_token(Some("Bearer a=b")).is_err());
        assert!(bearer_token(Some("Bearer a\u{e9}")).is_err());
    }

    /// RFC 6750 §3.1: a request without credentials gets a bare challenge
    /// and no error code, in the body either.
    #[test]
    fn no_credentials_get_no_error_information_rfc6750_3_1() {
        let r = BearerError::Missing.to_http("photos");
        assert_eq!(r.status, 401);
        assert_eq!(r.body, b"{}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"photos\"")
        );
    }

    /// RFC 9449 §7.1: a request in the `DPoP` scheme is challenged in it,
    /// whatever was wrong; a Bearer request (or none) as Bearer.
    #[test]
    fn a_dpop_request_is_challenged_in_dpop_rfc9449_7_1() {
        let dpop = Some(TokenScheme::Dpop);
        for (error, code) in [
            (BearerError::Invalid, "invalid_token"),
            (BearerError::WrongAudience, "invalid_token"),
            (
                BearerError::InsufficientScope {
                    required: "photos.read".into(),
                },
                "insufficient_scope",
            ),
        ] {
            let c = error.challenge_in(dpop, "r", None, None);
            assert!(c.starts_with("DPoP algs=\""), "{c}");
            assert!(c.contains(&format!("error=\"{code}\"")), "{c}");
            let r = error.to_http_in(dpop, "r", None, None);
            assert_eq!(r.header("www-authenticate"), Some(c.as_str()));
            for bearer in [None, Some(TokenScheme::Bearer)] {
                let c = error.challenge_in(bearer, "r", None, None);
                assert!(c.starts_with("Bearer realm="), "{c}");
            }
        }
        assert_eq!(presented_scheme(Some("DPoP abc")), dpop);
        assert_eq!(presented_scheme(Some("dpop abc")), dpop);
        assert_eq!(
            presented_scheme(Some("Bearer abc")),
            Some(TokenScheme::Bearer)
        );
        assert_eq!(presented_scheme(Some("Basic abc")), None);
        // A malformed value is still answered in the scheme it names.
        assert_eq!(presented_scheme(Some("DPoP a b")), dpop);
        assert_eq!(presented_scheme(Some("DPoP")), dpop);
        assert_eq!(presented_scheme(None), None);
    }

    #[test]
    fn challenges_follow_rfc6750_3() {
        let none = BearerError::Missing;
        assert_eq!(none.status(), 401);
        assert_eq!(none.challenge("r"), "Bearer realm=\"r\"");
        let bad = BearerError::Invalid;
        assert_eq!(bad.status(), 401);
        assert!(bad.challenge("r").contains("error=\"invalid_token\""));
        let scope = BearerError::InsufficientScope {
            required: "a".into(),
        };
        assert_eq!(scope.status(), 403);
        assert!(scope.challenge("r").contains("scope=\"a\""));
    }
}
