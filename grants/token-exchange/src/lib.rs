//! # Token exchange (RFC 8693) for Tessera
//!
//! A resource server that received a user's access token can trade it at
//! the token endpoint for a new access token of its own, for the same user,
//! with the same or a narrower scope: the "delegation" of RFC 8693 §1.1.
//! The new token records the resource server as the actor (`act`, §4.1),
//! which introspection shows, so every later use says who acted for whom.
//!
//! The grant lives outside the core and uses only its public extension
//! point, [`GrantHandler`]: register it with
//! [`ServerBuilder::grant`](tessera::ServerBuilder::grant) and register the
//! clients that may exchange tokens for [`GRANT_TYPE`]. Any other client is
//! refused with `unauthorized_client` by the server before this grant runs.
//!
//! ```
//! use std::sync::Arc;
//! use tessera::{Client, ClientId, Scope, SecretHash, Server};
//! use tessera_token_exchange::{GRANT_TYPE, TokenExchangeGrant};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The resource server's own identity, allowed to exchange tokens.
//! let api = Client::confidential(
//!     ClientId::new("photo-api").ok_or("bad id")?,
//!     "PhotoBook API",
//!     SecretHash::of("photo-api-secret"),
//! )
//! .with_grant_types([GRANT_TYPE])
//! .with_scope(Scope::parse("photos.read photos.write")?);
//! let server = Server::builder()
//!     .issuer("https://photos.example")
//!     .store(Arc::new(tessera_memory::MemoryStore::with_clients([api])))
//!     .grant(TokenExchangeGrant::new())
//!     .build()?;
//! assert!(server.grant_types().any(|g| g == GRANT_TYPE));
//! # Ok(())
//! # }
//! ```
//!
//! ## What it accepts (RFC 8693 §2.1)
//!
//! - `subject_token`: an access token this server issued, live (unknown,
//!   expired or revoked: `invalid_grant`), for a resource owner (a client's
//!   own client-credentials token has no user to act for: a live token
//!   "unacceptable based on policy", `invalid_request` as §2.2.2 says);
//! - `subject_token_type`: `urn:ietf:params:oauth:token-type:access_token`
//!   ([`ACCESS_TOKEN_TYPE`]); missing or any other: `invalid_request`;
//! - `scope` (optional): at most the subject token's scope and the client's
//!   registered scope (`invalid_scope` beyond, never silently narrowed);
//!   omitted, the subject token's scope;
//! - `requested_token_type` (optional): only the access-token type;
//! - `actor_token` / `actor_token_type`: not supported (`invalid_request`):
//!   the authenticated client is the actor;
//! - `resource` (optional, RFC 8707): the resource the new token is for,
//!   one the server knows and the client may obtain tokens for
//!   (`invalid_target` otherwise, §2.2.2); omitted, the server's default
//!   resource. Unlike a refresh, the audience may differ from the subject
//!   token's: that is what a resource server calling another one needs;
//! - `audience` (a logical name): not supported (`invalid_target`): name
//!   the target with `resource`.
//!
//! ## What it issues (§2.2.1)
//!
//! An access token (`issued_token_type` [`ACCESS_TOKEN_TYPE`], `token_type`
//! `Bearer`, or `DPoP` and bound to the exchanger's key when its request
//! carries a DPoP proof, RFC 9449 §5) for the subject token's user, issued to the exchanging client,
//! with `act: {"sub": "<client_id>"}` (the subject token's own actor, if
//! it had one, nested inside: §4.1), expiring no later than the subject
//! token. It joins the subject token's grant, so whatever revokes that
//! grant (refresh-token reuse, code replay, revocation of the refresh
//! token) revokes the exchanged token too.
//!
//! No refresh token is issued (§2.2.1 makes it optional): the exchanged
//! token is derived from the subject token and must not outlive it; a
//! refresh token would let the actor keep access after the user's token
//! expired. An actor that still holds a live subject token exchanges it
//! again.
//!
//! ## Whom to register for it
//!
//! A client registered for [`GRANT_TYPE`] is trusted with every live
//! access token it presents: this grant does not ask whether the subject
//! token was meant for that client's resource (its audience) or bound to a
//! DPoP key the client does not hold (RFC 9449 §6); a resource server
//! that received a bound token is exactly who exchanges it, without the
//! key. So register only your own resource servers, whose credentials are
//! kept like any server secret: a client that could exchange tokens it
//! stole would turn a sender-constrained token into one of its own.
//!
//! ## A deliberate choice: `invalid_grant` for a bad subject token
//!
//! RFC 8693 §2.2.2 names `invalid_request` for a subject token that is
//! "invalid for any reason"; this grant answers `invalid_grant` (RFC 6749
//! §5.2: the grant presented is invalid, expired or revoked), as the
//! PhotoBook demo contract fixes and as clients handle an expired
//! credential, unless [`TokenExchangeGrant::invalid_subject_token_error`]
//! says otherwise.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use async_trait::async_trait;
use tessera::grant::{GrantContext, GrantHandler, TokenResponse};
use tessera::{Actor, Client, ErrorCode, OAuthError, Params, Reason, Scope};

/// The `grant_type` of token exchange (RFC 8693 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type URI of an OAuth 2 access token (RFC 8693 §3): the only
/// `subject_token_type` accepted and the `issued_token_type` of every answer.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How many actors a delegation chain may hold by default (see
/// [`TokenExchangeGrant::max_delegation_depth`]).
pub const DEFAULT_MAX_DELEGATION_DEPTH: usize = 4;

/// The error code answered for a subject token that is not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InvalidSubjectTokenError {
    /// `invalid_grant` (RFC 6749 §5.2), the default: what the demo contract fixes.
    #[default]
    InvalidGrant,
    /// `invalid_request`, the letter of RFC 8693 §2.2.2.
    InvalidRequest,
}

/// Token exchange (RFC 8693) for delegation: see the [crate] documentation.
#[derive(Debug, Clone)]
pub struct TokenExchangeGrant {
    max_delegation_depth: usize,
    invalid_subject: InvalidSubjectTokenError,
}

impl Default for TokenExchangeGrant {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenExchangeGrant {
    /// The grant with its defaults: delegation chains of at most
    /// [`DEFAULT_MAX_DELEGATION_DEPTH`] actors, `invalid_grant` for a
    /// subject token that is not live.
    pub fn new() -> Self {
        Self {
            max_delegation_depth: DEFAULT_MAX_DELEGATION_DEPTH,
            invalid_subject: InvalidSubjectTokenError::default(),
        }
    }

    /// How many actors one token's `act` chain may hold (at least 1): an
    /// exchanged token exchanged again nests the previous actor (§4.1), and
    /// this bounds how deep a chain, and so a stored record, can grow.
    /// Beyond it the exchange is `invalid_request`.
    pub fn max_delegation_depth(mut self, depth: usize) -> Self {
        self.max_delegation_depth = depth.max(1);
        self
    }

    /// The error code for a subject token that is not one of this server's
    /// live access tokens (default [`InvalidSubjectTokenError::InvalidGrant`]).
    pub fn invalid_subject_token_error(mut self, code: InvalidSubjectTokenError) -> Self {
        self.invalid_subject = code;
        self
    }

    fn subject_refused(&self, why: &'static str) -> OAuthError {
        let code = match self.invalid_subject {
            InvalidSubjectTokenError::InvalidGrant => ErrorCode::InvalidGrant,
            InvalidSubjectTokenError::InvalidRequest => ErrorCode::InvalidRequest,
        };
        OAuthError::new(code, why).with_reason(Reason::AccessTokenInvalid)
    }
}

/// `invalid_request` for a malformed or unsupported parameter.
fn bad_parameter(why: &'static str) -> OAuthError {
    OAuthError::invalid_request(why).with_reason(Reason::MalformedParameter)
}

/// The checks of the request's shape (RFC 8693 §2.1), before any lookup.
fn check_request(params: &Params) -> Result<(), OAuthError> {
    // §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT come
    // without it. Actor tokens are not supported at all: the authenticated
    // client is the actor.
    if params.contains("actor_token") {
        return Err(bad_parameter(
            "actor_token is not supported: the authenticated client is the actor",
        ));
    }
    if params.contains("actor_token_type") {
        return Err(bad_parameter("actor_token_type without actor_token"));
    }
    match params.get("subject_token_type") {
        None => {
            return Err(
                OAuthError::invalid_request("missing parameter `subject_token_type`")
                    .with_reason(Reason::MissingParameter),
            );
        }
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(bad_parameter(
                "unsupported subject_token_type: only urn:ietf:params:oauth:token-type:access_token",
            ));
        }
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(bad_parameter(
            "unsupported requested_token_type: only urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    // §2.2.2: `invalid_target` when the server is unwilling to issue a
    // token for the target named. `audience` is a logical name the server
    // would have to map to a resource; only `resource` (a URI, RFC 8707) is
    // understood.
    if params.contains("audience") {
        return Err(OAuthError::invalid_target(
            "audience is not supported: name the resource with `resource`",
        )
        .with_reason(Reason::TargetNotAllowed));
    }
    Ok(())
}

/// The scope of the new token: the requested one if both the subject token
/// and the client's registration cover it, else the subject token's (RFC
/// 8693 §2.1 `scope`; never silently narrowed).
fn exchanged_scope(
    requested: Option<&str>,
    subject: &Scope,
    client: &Scope,
) -> Result<Scope, OAuthError> {
    let scope = match requested {
        Some(s) => Scope::parse(s)?,
        None => subject.clone(),
    };
    if !scope.is_subset(subject) {
        return Err(
            OAuthError::invalid_scope("the requested scope exceeds the subject token's")
                .with_reason(Reason::ScopeNotAllowed),
        );
    }
    if !scope.is_subset(client) {
        return Err(
            OAuthError::invalid_scope("the scope exceeds what the client may obtain")
                .with_reason(Reason::ScopeNotAllowed),
        );
    }
    if scope.is_empty() {
        return Err(
            OAuthError::invalid_scope("no scope to grant").with_reason(Reason::ScopeNotAllowed)
        );
    }
    Ok(scope)
}

#[async_trait]
impl GrantHandler for TokenExchangeGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // RFC 8693 §2.1. `audience` may be sent more than once (§2.1),
        // but it is read (any at all is refused), so a repeat or a value
        // that is not UTF-8 is refused too, never dropped unseen.
        Some(&[
            "subject_token",
            "subject_token_type",
            "actor_token",
            "actor_token_type",
            "requested_token_type",
            "audience",
        ])
    }

    fn grant_type(&self) -> &str {
        GRANT_TYPE
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        // The actor must be someone: a public client's id proves nothing.
        if client.is_public() {
            return Err(
                OAuthError::unauthorized_client("public clients cannot exchange tokens")
                    .with_reason(Reason::ClientNotAllowed),
            );
        }
        let subject_token = params.require("subject_token")?;
        check_request(params)?;
        let subject = ctx.access_token(subject_token).await?.ok_or_else(|| {
            self.subject_refused("the subject token is invalid, expired or revoked")
        })?;
        let record = &subject.record;
        let Some(user) = record.subject.as_ref() else {
            // §2.2.2: a live token unacceptable by policy is
            // `invalid_request` (what the demo contract fixes otherwise is
            // the inactive token's code).
            return Err(OAuthError::invalid_request(
                "the subject token has no resource owner to act for",
            )
            .with_reason(Reason::MalformedParameter));
        };
        let actor = Actor::client(&client.id).with_prior(record.actor.clone());
        if actor.depth() > self.max_delegation_depth {
            return Err(bad_parameter("the delegation chain is too long"));
        }
        let scope = exchanged_scope(params.get("scope"), &record.scope, &client.scope)?;
        // §2.1 `resource` (RFC 8707): one the server knows and the client may
        // obtain tokens for, else `invalid_target`; omitted, the default.
        let audience = ctx.resolve_audience(client, params)?;
        let minted = ctx
            .mint_tokens(subject.grant, client, Some(user), &scope, None)
            .with_audience(audience)
            .with_actor(actor)
            .expiring_by(record.expires_at)
            .with_issued_token_type(ACCESS_TOKEN_TYPE);
        // Into the subject token's grant: revoked with it. `false`: the
        // grant was revoked since the lookup, so the subject token is dead.
        let Some(response) = minted.issue(ctx.store, subject.grant).await? else {
            return Err(self.subject_refused("the subject token was revoked"));
        };
        tracing::info!(
            actor = %client.id,
            subject_client = record.client_id.as_str(),
            grant = %subject.grant,
            "token exchanged (RFC 8693)"
        );
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        Params::parse(s).unwrap()
    }

    const SUBJECT: &str = "subject_token=x&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";

    #[test]
    fn request_shape_rfc8693_2_1() {
        assert_eq!(check_request(&params(SUBJECT)), Ok(()));
        let code = |extra: &str| {
            check_request(&params(&format!("{SUBJECT}&{extra}")))
                .err()
                .map(|e| e.code)
        };
        assert_eq!(
            code("actor_token=y&actor_token_type=urn%3Ax"),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code("actor_token_type=urn%3Ax"),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code("requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token"),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code("requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"),
            None
        );
        // `resource` is resolved later, against the server's resources.
        assert_eq!(code("resource=https%3A%2F%2Fa.example%2F"), None);
        assert_eq!(code("audience=a"), Some(ErrorCode::InvalidTarget));
        for bad in [
            "subject_token=x",
            "subject_token=x&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token",
        ] {
            assert_eq!(
                check_request(&params(bad)).err().map(|e| e.code),
                Some(ErrorCode::InvalidRequest),
                "{bad}"
            );
        }
    }

    #[test]
    fn scope_equal_or_narrower_never_silently_narrowed() {
        let s = |t: &str| Scope::parse(t).unwrap();
        let subject = s("photos.read profile");
        let client = s("photos.read photos.write profile");
        assert_eq!(
            exchanged_scope(None, &subject, &client),
            Ok(subject.clone())
        );
        assert_eq!(
            exchanged_scope(Some("photos.read"), &subject, &client),
            Ok(s("photos.read"))
        );
        let code =
            |r: Option<&str>, c: &Scope| exchanged_scope(r, &subject, c).err().map(|e| e.code);
        assert_eq!(
            code(Some("photos.read photos.write"), &client),
            Some(ErrorCode::InvalidScope)
        );
        assert_eq!(code(None, &s("photos.read")), Some(ErrorCode::InvalidScope));
        assert_eq!(
            code(Some("photos.read  profile"), &client),
            Some(ErrorCode::InvalidScope)
        );
    }
}
