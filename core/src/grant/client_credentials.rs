//! The client credentials grant (RFC 6749 §4.4).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, TokenResponse, resolve_scope};
use crate::client::{Client, GrantType};
use crate::error::OAuthError;
use crate::params::Params;

/// Issues an access token to a confidential client acting on its own behalf.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCredentialsGrant;

#[async_trait]
impl GrantHandler for ClientCredentialsGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // RFC 6749 §4.4.2: `scope` alone, which every grant reads.
        Some(&[])
    }

    fn grant_type(&self) -> &str {
        GrantType::CLIENT_CREDENTIALS
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        // §4.4: only confidential clients.
        if client.is_public() {
            return Err(OAuthError::unauthorized_client(
                "public clients cannot use client_credentials",
            ));
        }
        let scope = resolve_scope(params.get("scope"), &client.scope)?;
        let audience = ctx.resolve_audience(client, params)?;
        let grant = ctx.new_grant_id();
        // §4.4.3: a refresh token SHOULD NOT be included.
        let minted = ctx
            .mint_tokens(grant, client, None, &scope, None)
            .with_audience(audience)
            .signed()?;
        // A fresh grant: the store may skip the revocation check.
        if !ctx.store.issue_new_grant(grant, minted.records).await? {
            return Err(OAuthError::new(
                crate::error::ErrorCode::ServerError,
                "could not issue the token",
            )
            .with_reason(crate::error::Reason::GrantRevoked));
        }
        Ok(minted.response)
    }
}
