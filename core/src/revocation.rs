//! Token revocation (RFC 7009).

use crate::error::OAuthError;
use crate::http::HttpRequest;
use crate::server::Server;
use crate::storage::RefreshLookup;
use crate::token::{SecretKey, TokenKind};

impl Server {
    /// Handles a request to the revocation endpoint (RFC 7009 §2).
    ///
    /// The client authenticates (a public client names itself with
    /// `client_id`). It can revoke only its own tokens; anything else, and
    /// unknown tokens, get `200` and change nothing (§2.2), so the answer
    /// reveals nothing about other clients' tokens. Revoking a refresh token
    /// revokes its whole grant (§2.1).
    ///
    /// Served by [`Server::handle`] with [`Endpoint::Revocation`](crate::Endpoint::Revocation).
    pub(crate) async fn revoke(&self, request: &HttpRequest<'_>) -> Result<(), OAuthError> {
        // RFC 7009 §2.1: `token`; `token_type_hint` is not read (the token's
        // form tells its kind), so it is ignored like any other.
        let params = self.back_channel_params(request, |_, name| name == "token")?;
        let client = self.authenticate_request(request, &params).await?;
        let token = params.require("token")?;
        let now = self.now();
        // The hint only orders the search (§2.1); our prefixes make it unnecessary.
        let access =
            SecretKey::parse(TokenKind::Access, token).or_else(|| self.own_jwt_record_key(token));
        if let Some(secret) = access {
            if let Some(record) = self.store().access_token(secret, now).await?
                && record.client_id == client.id
            {
                self.store().revoke_access_token(secret).await?;
                tracing::info!(client = client.id.as_str(), "access token revoked");
            }
        } else if let Some(secret) = SecretKey::parse(TokenKind::Refresh, token)
            && let RefreshLookup::Current(record) = self.store().refresh_token(secret, now).await?
            && record.client_id == client.id
        {
            self.store().revoke_grant(secret.grant).await?;
            tracing::info!(client = client.id.as_str(), grant = %secret.grant, "refresh token revoked with its grant");
        }
        Ok(())
    }
}
