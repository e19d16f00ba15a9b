//! Protocol errors, as the RFCs register them.
//!
//! One [`OAuthError`] type carries an [`ErrorCode`] from the IANA "OAuth
//! Extensions Error Registry" (RFC 6749 §11.4) plus the bearer-token codes of
//! RFC 6750 §3.1. It knows its HTTP status and its `WWW-Authenticate` header,
//! so every adapter answers a given failure identically.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A registered OAuth 2 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed: missing or repeated parameter, bad syntax (RFC 6749 §5.2).
    InvalidRequest,
    /// Client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// The grant (code, refresh token, ...) is invalid, expired, revoked or bound to another client (RFC 6749 §5.2).
    InvalidGrant,
    /// The client may not use this grant or response type (RFC 6749 §4.1.2.1, §5.2).
    UnauthorizedClient,
    /// The grant type is not supported (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// The requested scope is invalid, unknown or exceeds what the client may get (RFC 6749 §5.2).
    InvalidScope,
    /// The resource owner or the server denied the request (RFC 6749 §4.1.2.1).
    AccessDenied,
    /// The response type is not supported (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// An unexpected condition on the server (RFC 6749 §4.1.2.1); details are logged, never sent.
    ServerError,
    /// The server is temporarily unable to answer, e.g. its store is down (RFC 6749 §4.1.2.1).
    TemporarilyUnavailable,
    /// The access token is missing, malformed, expired or revoked (RFC 6750 §3.1).
    InvalidToken,
    /// The access token lacks the scope the resource needs (RFC 6750 §3.1).
    InsufficientScope,
    /// The server does not revoke this type of token (RFC 7009 §2.2.1).
    UnsupportedTokenType,
    /// Device grant: the user has not decided yet (RFC 8628 §3.5).
    AuthorizationPending,
    /// Device grant: the client polls faster than its interval (RFC 8628 §3.5).
    SlowDown,
    /// Device grant: the device code expired (RFC 8628 §3.5).
    ExpiredToken,
    /// Registration: a redirect URI is missing or not allowed (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// Registration: a metadata value is invalid (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// The requested resource is malformed, unknown, not allowed for the
    /// client, or not the grant's (RFC 8707 §2, registered in §5.2).
    InvalidTarget,
    /// A DPoP proof is missing where required, or invalid (RFC 9449 §5,
    /// §7.1, registered in §12.2): 400 at the token endpoint, 401 at a
    /// resource server (with a `DPoP` challenge).
    InvalidDpopProof,
    /// The DPoP proof lacks the server's current nonce (RFC 9449 §8, §9):
    /// retry with the one in the `DPoP-Nonce` header.
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"invalid_grant"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The HTTP status this code is answered with at a token-style endpoint.
    ///
    /// RFC 6749 §5.2: 400 for everything but `invalid_client`, which is 401.
    /// RFC 6750 §3.1: `invalid_token` 401, `insufficient_scope` 403.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an [`OAuthError`] happened, beyond its wire code: never sent to the
/// client (the RFCs want one code for many causes, and a precise cause can
/// help an attacker), but kept for logs and asserted by tests, so that the
/// seven ways a code exchange is `invalid_grant` can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// A required parameter is missing (RFC 6749 §3.1, §4.1.3, §5.2).
    MissingParameter,
    /// A parameter was sent more than once (RFC 6749 §3.1).
    RepeatedParameter,
    /// A parameter's value is malformed.
    MalformedParameter,
    /// The request's transport is wrong: method, content type, query parameters.
    MalformedRequest,
    /// No client authentication was presented.
    ClientAuthenticationMissing,
    /// The client could not be authenticated: unknown client, wrong secret,
    /// or a method it did not register (RFC 6749 §2.3).
    ClientAuthenticationFailed,
    /// A registered confidential client presented a wrong secret (what the
    /// rate limiter counts, RFC 6819 §5.1.4.2.3).
    ClientSecretMismatch,
    /// The client may not use this grant, response type or endpoint.
    ClientNotAllowed,
    /// The authorization code is unknown or expired.
    CodeUnknown,
    /// The authorization code was redeemed before (RFC 6749 §4.1.2).
    CodeReplayed,
    /// The authorization code expired between its issue and its use.
    CodeExpired,
    /// The authorization code was issued to another client (RFC 6749 §4.1.3).
    CodeIssuedToAnotherClient,
    /// `redirect_uri` differs from the authorization request's (RFC 6749 §4.1.3).
    RedirectUriMismatch,
    /// The authorization request carried `redirect_uri` and the code
    /// redemption did not (RFC 6749 §4.1.3: then "REQUIRED").
    RedirectUriMissing,
    /// The code was issued with a PKCE challenge and no `code_verifier` came (RFC 7636 §4.5).
    VerifierMissing,
    /// The `code_verifier` does not match the challenge (RFC 7636 §4.6).
    VerifierMismatch,
    /// The `code_verifier` is not 43 to 128 unreserved characters (RFC 7636
    /// §4.1): it cannot match either, so `invalid_grant` as a mismatch (§4.6).
    VerifierMalformed,
    /// A `code_verifier` came for a code issued without a challenge (RFC 9700 §2.1.1).
    VerifierWithoutChallenge,
    /// The refresh token is unknown, expired or revoked.
    RefreshTokenUnknown,
    /// A refresh token that was rotated away was presented again (RFC 9700 §4.14.2).
    RefreshTokenReused,
    /// The refresh token was issued to another client (RFC 6749 §6).
    RefreshTokenIssuedToAnotherClient,
    /// The access token is unknown, expired or revoked (RFC 6750 §3.1).
    AccessTokenInvalid,
    /// The grant was revoked while the request ran.
    GrantRevoked,
    /// The scope asked for is unknown, malformed or more than allowed (RFC 6749 §3.3).
    ScopeNotAllowed,
    /// The `grant_type` is not registered (RFC 6749 §5.2).
    GrantTypeUnsupported,
    /// The `response_type` is not supported (RFC 6749 §4.1.2.1).
    ResponseTypeUnsupported,
    /// The pending authorization request is unknown, expired or already decided.
    PendingRequestExpired,
    /// The resource owner denied the request (RFC 6749 §4.1.2.1).
    OwnerDenied,
    /// Device grant: the user has not decided yet.
    DevicePending,
    /// Device grant: polled faster than the interval.
    DevicePolledTooFast,
    /// Device grant: the user denied.
    DeviceDenied,
    /// Device grant: the device code expired.
    DeviceCodeExpired,
    /// Device grant: the device code is unknown, used, or another client's.
    DeviceCodeUnknown,
    /// The caller made too many attempts lately (the rate limiter).
    RateLimited,
    /// The storage backend failed; the error's source says how.
    Storage,
    /// Something inside the server failed that is not the client's doing.
    Internal,
    /// `resource` is not an absolute URI without fragment (RFC 8707 §2).
    TargetMalformed,
    /// `resource` was sent more than once; Tessera grants one per request.
    TargetRepeated,
    /// `resource` names a resource the server does not know (RFC 8707 §2).
    TargetUnknown,
    /// The client may not obtain tokens for this resource.
    TargetNotAllowed,
    /// `resource` differs from the grant's own (a code or refresh token's).
    TargetChanged,
    /// The access token's audience is another resource (RFC 8707 §2, RFC 6750 §3.1).
    AudienceMismatch,
    /// A JWT assertion (RFC 7523 §3) is not a well-formed JWT with the
    /// required claims.
    AssertionMalformed,
    /// A JWT assertion's signature does not verify: unknown `kid`, an
    /// `alg` that is not the key's (`none`, HMAC), a bad signature, or a
    /// `typ` that is not an assertion's (RFC 7523 §3 item 9, RFC 8725 §3.1).
    AssertionSignatureInvalid,
    /// A JWT assertion's `iss` or `sub` is missing or not the expected one
    /// (RFC 7523 §3 items 1, 2; for client authentication both must be the
    /// `client_id`).
    AssertionIssuerMismatch,
    /// A JWT assertion's `aud` does not name this server (RFC 7523 §3 item 3).
    AssertionAudienceMismatch,
    /// A JWT assertion has no `exp`, is expired, or expires too far ahead
    /// (RFC 7523 §3 item 4).
    AssertionExpired,
    /// A JWT assertion's `nbf` or `iat` is unacceptable, or it has no `jti`
    /// (RFC 7523 §3 items 5–7).
    AssertionTimeInvalid,
    /// A JWT assertion's `jti` was used before (RFC 7523 §3 item 7).
    AssertionReplayed,
    /// DPoP (RFC 9449 §4.3 item 1): no `DPoP` header where a proof is
    /// required (the `DPoP` scheme, a DPoP-bound refresh token).
    DpopProofMissing,
    /// DPoP §4.3 item 1: more than one `DPoP` header.
    DpopProofRepeated,
    /// DPoP: the proof is larger than `MAX_DPOP_PROOF_BYTES`.
    DpopProofTooLarge,
    /// DPoP §4.3 items 2, 3: not a compact JWS of JSON objects, or a
    /// required claim (`htm`, `htu`, `iat`) is missing or mistyped, or a `crit` header.
    DpopProofMalformed,
    /// DPoP §4.3 item 4: `typ` is not `dpop+jwt`.
    DpopTypInvalid,
    /// DPoP §4.3 item 5: `alg` is not an allowed asymmetric algorithm
    /// (`none`, HMAC, RS256...) or not the `jwk`'s.
    DpopAlgNotAllowed,
    /// DPoP §4.3 item 7: `jwk` is missing, has private members, or is not
    /// a key type we verify with.
    DpopJwkInvalid,
    /// DPoP §4.3 item 6: the signature does not verify with `jwk`.
    DpopSignatureInvalid,
    /// DPoP §4.3 item 3: `jti` missing, empty or too long.
    DpopJtiInvalid,
    /// DPoP §4.3 item 8: `htm` is not the request's method.
    DpopMethodMismatch,
    /// DPoP §4.3 item 9: `htu` is not the request's URI.
    DpopUriMismatch,
    /// DPoP §4.3 items 10, §8: the server's nonce is missing or stale (`use_dpop_nonce`).
    DpopNonceInvalid,
    /// DPoP §4.3 item 11: `iat` outside the acceptance window.
    DpopIatOutOfWindow,
    /// DPoP §11.1: the proof's `jti` was used before (replay).
    DpopReplayed,
    /// DPoP §4.3 item 12: `ath` is not the access token's hash.
    DpopAthMismatch,
    /// DPoP §4.3 item 12, §5, §10: the proof's key is not the one the
    /// token, refresh token or code (`dpop_jkt`) is bound to.
    DpopKeyMismatch,
    /// DPoP §7.2: a DPoP-bound access token presented as a bearer token,
    /// or a token not bound to a key presented with the `DPoP` scheme.
    DpopSchemeMismatch,
    /// An extension grant's or the embedder's own reason.
    Other,
}

/// An OAuth 2 error response: a registered code, an optional human-readable
/// description and an optional URI (RFC 6749 §5.2), plus what is never sent:
/// the [`Reason`] and the underlying error (a storage fault, say).
///
/// Kept small (40 bytes), since a `Result<_, OAuthError>` sits in the state
/// of every future on a request's path: the parts that are rarely set (the
/// URI, the underlying error) live behind one pointer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OAuthError {
    /// The registered error code.
    pub code: ErrorCode,
    /// A short, human-readable explanation for the client developer.
    pub description: Option<String>,
    reason: Reason,
    rare: Option<Box<Rare>>,
}

/// The parts of an [`OAuthError`] that most errors lack.
#[derive(Debug, Clone, Default)]
struct Rare {
    uri: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    /// Answered with this status instead of the code's.
    status: Option<u16>,
    /// Seconds to wait before trying again (`Retry-After`).
    retry_after: Option<u64>,
}

impl PartialEq for OAuthError {
    /// Equal when the client would see the same answer and the reason is the
    /// same; the underlying error is not compared.
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.description == other.description
            && self.uri() == other.uri()
            && self.status() == other.status()
            && self.retry_after() == other.retry_after()
            && self.reason == other.reason
    }
}

impl Eq for OAuthError {}

impl OAuthError {
    /// An error with a code and a description; its reason is [`Reason::Other`]
    /// until [`with_reason`](Self::with_reason) says more.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            reason: Reason::Other,
            rare: None,
        }
    }

    /// The same error with `reason` recorded.
    #[must_use]
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }

    /// The same error with the failure that caused it, for logs.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.rare.get_or_insert_default().source = Some(Arc::new(source));
        self
    }

    /// The same error with a page for the client developer (`error_uri`,
    /// RFC 6749 §5.2).
    #[must_use]
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        self.rare.get_or_insert_default().uri = Some(uri.into());
        self
    }

    /// The page with more information (`error_uri`), if any.
    pub fn uri(&self) -> Option<&str> {
        self.rare.as_ref()?.uri.as_deref()
    }

    /// The underlying failure, if any.
    fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.rare.as_ref()?.source.as_deref()
    }

    /// Why it happened (never sent to the client).
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description).with_reason(Reason::MalformedParameter)
    }

    /// `invalid_client` with a description.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
            .with_reason(Reason::ClientAuthenticationFailed)
    }

    /// `invalid_grant` with a description.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope` with a description.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description).with_reason(Reason::ScopeNotAllowed)
    }

    /// `invalid_target` with a description (RFC 8707 §2).
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description).with_reason(Reason::TargetUnknown)
    }

    /// `unauthorized_client` with a description.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description).with_reason(Reason::ClientNotAllowed)
    }

    /// `server_error` ("internal error"), for a failure inside the server.
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error").with_reason(Reason::Internal)
    }

    /// `server_error` ("server misconfigured"), for a server that is not set
    /// up to answer (e.g. an adapter's guard used without the adapter).
    pub fn misconfigured() -> Self {
        Self::new(ErrorCode::ServerError, "server misconfigured").with_reason(Reason::Internal)
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        self.rare
            .as_ref()
            .and_then(|r| r.status)
            .unwrap_or_else(|| self.code.status())
    }

    /// The same error, its answer saying when to try again (`Retry-After`,
    /// RFC 9110 §10.2.3): a rate limit's.
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.rare.get_or_insert_default().retry_after = Some(seconds);
        self
    }

    /// Seconds to wait before trying again, when the answer says
    /// (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        self.rare.as_ref()?.retry_after
    }

    /// The same error answered `429 Too Many Requests` (RFC 6585 §4)
    /// rather than its code's status: for an endpoint whose RFC names 429
    /// for a client over its rate (RFC 9126 §2.3 for PAR).
    #[must_use]
    pub fn too_many_requests(mut self) -> Self {
        self.rare.get_or_insert_default().status = Some(429);
        self
    }

    /// Whether the server, not the client, is at fault (5xx): such errors
    /// are logged as errors at the endpoint boundary.
    pub fn is_server_fault(&self) -> bool {
        self.status() >= 500
    }

    /// The description as it goes on the wire (`error_description`): RFC
    /// 6749 §4.1.2.1 and §5.2 allow only %x20-21 / %x23-5B / %x5D-7E, so a
    /// `§` is written `Section` and any other character outside that set
    /// is dropped (a description is set by grants and embedders too).
    pub fn description_text(&self) -> Option<Cow<'_, str>> {
        let d = self.description.as_deref()?;
        if d.chars().all(description_char) {
            return Some(Cow::Borrowed(d));
        }
        Some(Cow::Owned(
            d.replace('§', "Section ")
                .replace("Section  ", "Section ")
                .chars()
                .filter(|c| description_char(*c))
                .collect(),
        ))
    }

    /// The JSON body of RFC 6749 §5.2.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("error".into(), self.code.as_str().into());
        if let Some(d) = self.description_text() {
            map.insert("error_description".into(), d.into_owned().into());
        }
        if let Some(u) = self.uri() {
            map.insert("error_uri".into(), u.into());
        }
        serde_json::Value::Object(map).to_string()
    }

    /// The `WWW-Authenticate` header for a resource-server answer (RFC 6750 §3).
    pub fn bearer_challenge(&self, realm: &str, scope: Option<&str>) -> String {
        let mut header = format!("Bearer realm=\"{}\"", quote_safe(realm));
        header.push_str(&format!(", error=\"{}\"", self.code.as_str()));
        if let Some(d) = self.description_text() {
            header.push_str(&format!(", error_description=\"{d}\""));
        }
        if let Some(s) = scope {
            header.push_str(&format!(", scope=\"{}\"", quote_safe(s)));
        }
        header
    }

    /// Logs the error once, where it leaves the server (an endpoint's
    /// answer or an authorization outcome): server faults as errors with
    /// their source chain, client errors at debug level with their reason.
    /// A refusal by the rate limiter (`503 temporarily_unavailable`,
    /// [`Reason::RateLimited`]) is no fault, and the limiter logged it at
    /// info already: an error line per refused request would turn a flood
    /// into a flood of error lines.
    pub fn log(&self, context: &'static str) {
        if self.is_server_fault() && self.reason != Reason::RateLimited {
            let chain = SourceChain(self.cause());
            tracing::error!(error = %self.code, reason = ?self.reason, source = %chain, "{context}");
        } else {
            tracing::debug!(error = %self.code, reason = ?self.reason, "{context}");
        }
    }
}

/// An error and its sources, joined with `": "`.
struct SourceChain<'a>(Option<&'a (dyn std::error::Error + Send + Sync + 'static)>);

impl fmt::Display for SourceChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.0 else {
            return f.write_str("-");
        };
        write!(f, "{first}")?;
        let mut next = first.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// RFC 6750 §3: the attribute values must not contain `"` or `\`; descriptions
/// are limited to %x20-21 / %x23-5B / %x5D-7E, so anything else is dropped.
pub(crate) fn quote_safe(s: &str) -> String {
    s.chars().filter(|c| description_char(*c)).collect()
}

/// A character `error_description` may hold (RFC 6749 §5.2, RFC 6750 §3):
/// %x20-21 / %x23-5B / %x5D-7E.
fn description_char(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~')
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {}", self.code, d),
            None => write!(f, "{}", self.code),
        }
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error a storage backend wraps: its own, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of a storage backend. Backends map their own errors to this,
/// keeping them as the source, so the core can answer `server_error` or
/// `temporarily_unavailable` without knowing the backend (the sqlx idea of
/// one backend-agnostic error) and the log still says what broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or timed out; retrying later may work.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend held a value that does not decode as a record.
    #[error("corrupt record in store")]
    Corrupt(#[source] BoxError),
    /// Any other backend failure.
    #[error("store failure")]
    Other(#[source] BoxError),
}

impl StoreError {
    /// [`Unavailable`](Self::Unavailable) from any error or message.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }

    /// [`Corrupt`](Self::Corrupt) from any error or message.
    pub fn corrupt(source: impl Into<BoxError>) -> Self {
        Self::Corrupt(source.into())
    }

    /// [`Other`](Self::Other) from any error or message.
    pub fn other(source: impl Into<BoxError>) -> Self {
        Self::Other(source.into())
    }
}

impl From<StoreError> for OAuthError {
    /// Storage faults are answered without detail (DESIGN: never leaked);
    /// the fault is kept as the source and logged where the answer leaves
    /// the server ([`OAuthError::log`]).
    fn from(e: StoreError) -> Self {
        let answer = match e {
            StoreError::Unavailable(_) => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization server is temporarily unavailable",
            ),
            _ => OAuthError::new(ErrorCode::ServerError, "internal error"),
        };
        answer.with_reason(Reason::Storage).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_rfc_6749_5_2_and_6750_3_1() {
        assert_eq!(ErrorCode::InvalidRequest.status(), 400);
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(ErrorCode::UnauthorizedClient.status(), 400);
        assert_eq!(ErrorCode::UnsupportedGrantType.status(), 400);
        assert_eq!(ErrorCode::InvalidScope.status(), 400);
        assert_eq!(ErrorCode::InvalidToken.status(), 401);
        assert_eq!(ErrorCode::InsufficientScope.status(), 403);
        assert_eq!(ErrorCode::TemporarilyUnavailable.status(), 503);
        assert_eq!(ErrorCode::ServerError.status(), 500);
    }

    #[test]
    fn json_body_has_error_and_description() {
        let e = OAuthError::invalid_grant("code expired");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap_or_default();
        assert_eq!(v["error"], "invalid_grant");
        assert_eq!(v["error_description"], "code expired");
        assert!(v.get("error_uri").is_none());
    }

    /// RFC 6749 §5.2 (and §4.1.2.1 for the redirect): `error_description`
    /// holds %x20-21 / %x23-5B / %x5D-7E only, whoever wrote it.
    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set_5_2() {
        let e = OAuthError::invalid_request("see RFC 7591 §3.1: \"json\" \\ only, é\n\t\u{7f}ok");
        let text = e.description_text().unwrap();
        assert_eq!(text, "see RFC 7591 Section 3.1: json  only, ok");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap_or_default();
        assert_eq!(v["error_description"], *text);
        let challenge = e.bearer_challenge("r", None);
        assert!(
            challenge.ends_with("error_description=\"see RFC 7591 Section 3.1: json  only, ok\"")
        );
        // Plain text is lent, not copied.
        let plain = OAuthError::invalid_request("plain text");
        assert!(matches!(
            plain.description_text(),
            Some(Cow::Borrowed("plain text"))
        ));
        for c in (0..=0x7f_u8).map(char::from) {
            let allowed = matches!(c, ' '..='~') && c != '"' && c != '\\';
            assert_eq!(description_char(c), allowed, "{c:?}");
        }
    }

    #[test]
    fn bearer_challenge_strips_quotes() {
        let e = OAuthError::new(ErrorCode::InvalidToken, "bad \"token\"\\");
        assert_eq!(
            e.bearer_challenge("photos", None),
            "Bearer realm=\"photos\", error=\"invalid_token\", error_description=\"bad token\""
        );
    }

    #[test]
    fn errors_stay_small_and_keep_their_rare_parts() {
        assert!(std::mem::size_of::<OAuthError>() <= 40);
        let e = OAuthError::invalid_request("x").with_uri("https://example.com/e");
        assert_eq!(e.uri(), Some("https://example.com/e"));
        assert!(e.to_json().contains("error_uri"));
        assert_eq!(OAuthError::invalid_request("x").uri(), None);
    }

    #[test]
    fn store_errors_are_not_leaked() {
        let e: OAuthError = StoreError::unavailable("redis at 10.0.0.1 refused").into();
        assert_eq!(e.reason(), Reason::Storage);
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        assert!(!e.to_json().contains("10.0.0.1"));
        let e: OAuthError = StoreError::corrupt("x").into();
        assert_eq!(e.code, ErrorCode::ServerError);
    }
}
