//! The authorization code grant's token request (RFC 6749 §4.1.3, RFC 7636 §4.5).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::OAuthError;
use crate::params::Params;
use crate::storage::{CodeRecord, CodeTake, GrantStore};
use crate::token::{Secret, TokenKind};

/// Exchanges an authorization code for tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizationCodeGrant;

/// Checks a taken code against the token request: a pure function of the
/// record, the client and the parameters.
pub fn check_code(
    record: &CodeRecord,
    client: &Client,
    params: &Params,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    // §4.1.3: the code must have been issued to the authenticated client.
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    // §4.1.3: redirect_uri must be identical to the one in the authorization request.
    match (&record.redirect_uri, params.get("redirect_uri")) {
        (Some(expected), Some(got)) if expected == got => {}
        (Some(_), _) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        (None, Some(got)) if !client.redirect_uris.iter().any(|r| r.matches(got)) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        (None, _) => {}
    }
    // RFC 7636 §4.6; a verifier for a code issued without a challenge is a
    // downgrade attempt (RFC 9700 §2.1.1).
    match (&record.challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => challenge.verify(verifier),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "code_verifier is required for this code",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but the code has no code_challenge",
        )),
        (None, None) => Ok(()),
    }
}

#[async_trait]
impl<S: GrantStore + ?Sized> GrantHandler<S> for AuthorizationCodeGrant {
    fn grant_type(&self) -> &str {
        GrantType::AUTHORIZATION_CODE
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_, S>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params.require("code")?;
        let code = Secret::parse(TokenKind::Code, code)
            .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
        let record = match ctx.store.take_code(code.key(), ctx.now).await? {
            CodeTake::Taken(record) => record,
            CodeTake::AlreadyTaken => {
                // §4.1.2: a code used twice revokes every token issued from it.
                tracing::warn!(client = %client.id, grant = %code.grant(), "authorization code replayed; revoking its grant");
                ctx.store.revoke_grant(code.grant()).await?;
                return Err(OAuthError::invalid_grant(
                    "the authorization code was already used",
                ));
            }
            _ => {
                return Err(OAuthError::invalid_grant(
                    "unknown or expired authorization code",
                ));
            }
        };
        check_code(&record, client, params, ctx.now)?;
        let refresh = client
            .allows_grant(GrantType::REFRESH_TOKEN)
            .then_some(&record.scope);
        let minted = ctx.mint_tokens(
            code.grant(),
            client,
            Some(&record.subject),
            &record.scope,
            refresh,
        );
        if !ctx.store.issue(code.grant(), minted.records).await? {
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        Ok(minted.response)
    }
}
