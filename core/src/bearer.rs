//! Checking bearer tokens at a resource server (RFC 6750).

use time::OffsetDateTime;

use crate::client::ClientId;
use crate::error::{ErrorCode, OAuthError};
use crate::http::HttpResponse;
use crate::scope::Scope;
use crate::server::Server;
use crate::storage::{Store, Subject};
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
}

impl AccessToken {
    /// Checks that the token carries every scope token in `required`
    /// (`insufficient_scope`, 403, RFC 6750 §3.1).
    pub fn require(&self, required: &[&str]) -> Result<(), BearerError> {
        if required.iter().all(|s| self.scope.contains(s)) {
            Ok(())
        } else {
            Err(BearerError {
                error: Some(OAuthError::new(
                    ErrorCode::InsufficientScope,
                    "the token lacks the required scope",
                )),
                scope: Some(required.join(" ")),
            })
        }
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
pub struct BearerError {
    /// The error; `None` when no credentials were sent (§3.1: no error code then).
    pub error: Option<OAuthError>,
    /// The scope needed, for `insufficient_scope`.
    pub scope: Option<String>,
}

impl BearerError {
    fn new(code: ErrorCode, description: &str) -> Self {
        Self {
            error: Some(OAuthError::new(code, description)),
            scope: None,
        }
    }

    /// The HTTP status: 401, 400 for malformed requests, 403 for insufficient scope.
    pub fn status(&self) -> u16 {
        self.error.as_ref().map_or(401, |e| e.status())
    }

    /// The `WWW-Authenticate` header value.
    pub fn challenge(&self, realm: &str) -> String {
        match &self.error {
            None => format!("Bearer realm=\"{realm}\""),
            Some(e) => e.bearer_challenge(realm, self.scope.as_deref()),
        }
    }

    /// As an HTTP response with the JSON error body.
    pub fn to_http(&self, realm: &str) -> HttpResponse {
        let mut r = match &self.error {
            Some(e) => HttpResponse::json_no_store(self.status(), e.to_json()),
            None => HttpResponse::json_no_store(401, "{\"error\":\"unauthorized\"}"),
        };
        r.headers
            .push(("www-authenticate", self.challenge(realm).into()));
        r
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(e) => e.fmt(f),
            None => f.write_str("no bearer token"),
        }
    }
}

impl std::error::Error for BearerError {}

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
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if ok {
        Ok(Some(token))
    } else {
        Err(BearerError::new(
            ErrorCode::InvalidRequest,
            "malformed bearer token",
        ))
    }
}

impl<S: Store> Server<S> {
    /// Validates the bearer token of a resource request.
    ///
    /// `authorization` is the `Authorization` header; `query` the raw query
    /// string: a token there (RFC 6750 §2.3) is refused, since URLs leak into
    /// logs and `Referer` headers (RFC 9700 §4.3.2).
    pub async fn verify_bearer(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> Result<AccessToken, BearerError> {
        let in_query = query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
        });
        if in_query {
            return Err(BearerError::new(
                ErrorCode::InvalidRequest,
                "send the access token in the Authorization header",
            ));
        }
        let Some(token) = bearer_token(authorization)? else {
            return Err(BearerError {
                error: None,
                scope: None,
            });
        };
        let invalid = || {
            BearerError::new(
                ErrorCode::InvalidToken,
                "the access token is invalid, expired or revoked",
            )
        };
        let secret = SecretKey::parse(TokenKind::Access, token).ok_or_else(invalid)?;
        let record = self
            .store()
            .access_token(secret, self.now())
            .await
            .map_err(|e| BearerError {
                error: Some(OAuthError::from(e)),
                scope: None,
            })?;
        let record = record.ok_or_else(invalid)?;
        Ok(AccessToken {
            client_id: record.client_id,
            subject: record.subject,
            scope: record.scope,
            expires_at: record.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn challenges_follow_rfc6750_3() {
        let none = BearerError {
            error: None,
            scope: None,
        };
        assert_eq!(none.status(), 401);
        assert_eq!(none.challenge("r"), "Bearer realm=\"r\"");
        let bad = BearerError::new(ErrorCode::InvalidToken, "x");
        assert_eq!(bad.status(), 401);
        assert!(bad.challenge("r").contains("error=\"invalid_token\""));
        let scope = BearerError {
            error: Some(OAuthError::new(ErrorCode::InsufficientScope, "y")),
            scope: Some("a".into()),
        };
        assert_eq!(scope.status(), 403);
        assert!(scope.challenge("r").contains("scope=\"a\""));
    }
}
