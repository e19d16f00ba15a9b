//! Protocol errors, as the RFCs register them.
//!
//! One [`OAuthError`] type carries an [`ErrorCode`] from the IANA "OAuth
//! Extensions Error Registry" (RFC 6749 §11.4) plus the bearer-token codes of
//! RFC 6750 §3.1. It knows its HTTP status and its `WWW-Authenticate` header,
//! so every adapter answers a given failure identically.

use std::fmt;

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
    /// Device grant: the user has not yet acted (RFC 8628 §3.5).
    AuthorizationPending,
    /// Device grant: the client polls too fast (RFC 8628 §3.5).
    SlowDown,
    /// Device grant: the device code expired (RFC 8628 §3.5).
    ExpiredToken,
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

/// An OAuth 2 error response: a registered code, an optional human-readable
/// description and an optional URI (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The registered error code.
    pub code: ErrorCode,
    /// A short, human-readable explanation for the client developer.
    pub description: Option<String>,
    /// A page with more information.
    pub uri: Option<String>,
}

impl OAuthError {
    /// An error with a code and a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            uri: None,
        }
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client` with a description.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `invalid_grant` with a description.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope` with a description.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `unauthorized_client` with a description.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body of RFC 6749 §5.2.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("error".into(), self.code.as_str().into());
        if let Some(d) = &self.description {
            map.insert("error_description".into(), d.as_str().into());
        }
        if let Some(u) = &self.uri {
            map.insert("error_uri".into(), u.as_str().into());
        }
        serde_json::Value::Object(map).to_string()
    }

    /// The `WWW-Authenticate` header for a resource-server answer (RFC 6750 §3).
    pub fn bearer_challenge(&self, realm: &str, scope: Option<&str>) -> String {
        let mut header = format!("Bearer realm=\"{}\"", quote_safe(realm));
        header.push_str(&format!(", error=\"{}\"", self.code.as_str()));
        if let Some(d) = &self.description {
            header.push_str(&format!(", error_description=\"{}\"", quote_safe(d)));
        }
        if let Some(s) = scope {
            header.push_str(&format!(", scope=\"{}\"", quote_safe(s)));
        }
        header
    }
}

/// RFC 6750 §3: the attribute values must not contain `"` or `\`; descriptions
/// are limited to %x20-21 / %x23-5B / %x5D-7E, so anything else is dropped.
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(*c, ' ' | '!' | '#'..='[' | ']'..='~'))
        .collect()
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {}", self.code, d),
            None => write!(f, "{}", self.code),
        }
    }
}

impl std::error::Error for OAuthError {}

/// A failure of a storage backend. Backends map their own errors to this, so
/// the core can answer `server_error` or `temporarily_unavailable` without
/// knowing the backend (the sqlx idea of one backend-agnostic error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or timed out; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend held a value that does not decode as a record.
    #[error("corrupt record in store: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("store failure: {0}")]
    Other(String),
}

impl From<StoreError> for OAuthError {
    /// Storage faults are logged and answered without detail (DESIGN: never leaked).
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        match e {
            StoreError::Unavailable(_) => OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization server is temporarily unavailable",
            ),
            _ => OAuthError::new(ErrorCode::ServerError, "internal error"),
        }
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

    #[test]
    fn bearer_challenge_strips_quotes() {
        let e = OAuthError::new(ErrorCode::InvalidToken, "bad \"token\"\\");
        assert_eq!(
            e.bearer_challenge("photos", None),
            "Bearer realm=\"photos\", error=\"invalid_token\", error_description=\"bad token\""
        );
    }

    #[test]
    fn store_errors_are_not_leaked() {
        let e: OAuthError = StoreError::Unavailable("redis at 10.0.0.1 refused".into()).into();
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        assert!(!e.to_json().contains("10.0.0.1"));
        let e: OAuthError = StoreError::Corrupt("x".into()).into();
        assert_eq!(e.code, ErrorCode::ServerError);
    }
}
