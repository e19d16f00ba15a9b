//! The token endpoint's orchestration (RFC 6749 §3.2): authenticate the
//! client, check it may use the grant, and hand over to the grant's handler.

use super::Server;
use crate::abuse::Action;
use crate::client::Client;
use crate::error::{ErrorCode, OAuthError, Reason};
use crate::grant::{GrantContext, TokenResponse};
use crate::http::HttpRequest;
use crate::params::Params;

impl Server {
    /// The token endpoint's logic, for embedders and benchmarks that skip
    /// HTTP (the endpoint itself is [`Server::handle`] with
    /// [`Endpoint::Token`](crate::Endpoint::Token)).
    ///
    /// Every request is logged once at `INFO` (client, grant type, outcome):
    /// the audit trail of issued tokens.
    pub async fn token_response(
        &self,
        request: &HttpRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        // The token endpoint reads `grant_type`, `scope` and `resource` for
        // every grant (RFC 6749 §4, RFC 8707 §2), and the grant its own.
        let params = self.back_channel_params(request, |params, name| {
            matches!(name, "grant_type" | "scope" | "resource")
                || params
                    .get("grant_type")
                    .and_then(|grant_type| self.inner.grants.get(grant_type))
                    .is_some_and(|grant| grant.parameters().is_none_or(|read| read.contains(&name)))
        })?;
        let grant_type = params.require("grant_type")?;
        let client = match self.authenticate_request(request, &params).await {
            Ok(client) => client,
            Err(e) if e.reason() == Reason::ClientAuthenticationMissing => self
                .refreshing_public_client(grant_type, &params)
                .await?
                .ok_or(e)?,
            Err(e) => return Err(e),
        };
        let proof = self.token_endpoint_dpop_proof(&client, request).await?;
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        let result = self.exchange(&client, grant_type, &params, jkt).await;
        match &result {
            Ok(_) => {
                // Every value a `&str`: a subscriber copies it without
                // `core::fmt` (this line is on every token request).
                tracing::info!(
                    message = "token request",
                    client = client.id.as_str(),
                    grant_type,
                    outcome = "issued"
                );
                self.note_client_used(&client).await;
            }
            Err(e) => {
                tracing::info!(
                    message = "token request",
                    client = client.id.as_str(),
                    grant_type,
                    outcome = e.code.as_str()
                )
            }
        }
        result
    }

    /// The client of a refresh request that names none (RFC 6749 §6 lists
    /// only `grant_type`, `refresh_token` and `scope`, and asks only
    /// confidential clients to authenticate): the refresh token's client,
    /// when the token is current and its client one that authenticates by
    /// `none` (a public client, registered for `none`, which this server
    /// serves: its `client_id` would prove nothing anyway). A rotated-away
    /// token is reuse, whoever sends it (RFC 9700 §4.14.2): its grant is
    /// revoked and the answer is `invalid_grant`, as with `client_id`.
    /// `None` otherwise, and the request stays `invalid_client`: a
    /// confidential client's token, an unknown or expired one. The client
    /// is looked up in the store only (no metadata document is fetched for
    /// a caller that named nobody).
    async fn refreshing_public_client(
        &self,
        grant_type: &str,
        params: &Params,
    ) -> Result<Option<std::sync::Arc<Client>>, OAuthError> {
        use crate::client::AuthMethod;
        use crate::storage::RefreshLookup;
        if grant_type != crate::client::GrantType::REFRESH_TOKEN
            || !self
                .client_auth_methods()
                .any(|m| m.method() == AuthMethod::None)
        {
            return Ok(None);
        }
        let Some(key) = params
            .get("refresh_token")
            .and_then(|t| crate::token::SecretKey::parse(crate::token::TokenKind::Refresh, t))
        else {
            return Ok(None);
        };
        let record = match self.store().refresh_token(key, self.now()).await? {
            RefreshLookup::Current(record) => record,
            RefreshLookup::Retired => {
                let store = self.store().as_ref();
                return Err(
                    crate::grant::refresh_token::revoke_reused(store, key.grant, None).await,
                );
            }
            _ => return Ok(None),
        };
        let client = crate::client::lookup_client(self.store().as_ref(), &record.client_id).await?;
        Ok(client.filter(|c| {
            c.is_public() && c.auth_methods.contains(&AuthMethod::None) && c.is_live(self.now())
        }))
    }

    /// The request's DPoP proof, checked (RFC 9449 §5, §4.3: `htm` the
    /// method, `htu` the token endpoint's URL, `jti` once): `None` without
    /// a `DPoP` header, unless the client is registered to always use DPoP
    /// (§5.2 `dpop_bound_access_tokens`: the server "MUST reject token
    /// requests from the client that do not contain the DPoP header"), which
    /// is `invalid_dpop_proof` (400) as a bad proof is; `use_dpop_nonce` for
    /// a proof without the server's nonce. Checked after the client is
    /// authenticated, so only a client's requests can fill the replay cache,
    /// and counted when the client registered itself or is public
    /// ([`Server::count_unvetted_one_time_value`]).
    async fn token_endpoint_dpop_proof(
        &self,
        client: &Client,
        request: &HttpRequest<'_>,
    ) -> Result<Option<crate::dpop::DpopProof>, OAuthError> {
        if request.dpop.is_none() {
            if client.dpop_bound_access_tokens {
                return Err(OAuthError::new(
                    crate::error::ErrorCode::InvalidDpopProof,
                    "this client is registered to use DPoP (dpop_bound_access_tokens): send a DPoP proof",
                )
                .with_reason(crate::error::Reason::DpopProofMissing));
            }
            return Ok(None);
        }
        let htu = self
            .endpoint_url(crate::endpoint::Endpoint::Token)
            .unwrap_or_default();
        let context = crate::dpop::ProofContext::new(request.method, &htu, self.now());
        let policy = &self.config().dpop;
        let proof = crate::dpop::verify_proof(request.dpop, &context, policy)
            .map_err(|e| e.to_oauth_error())?;
        // Counted once verified and before it is kept: a malformed header
        // costs the other self-registered clients nothing.
        self.count_unvetted_one_time_value(client, Action::DpopProof, request.peer)
            .await?;
        crate::dpop::remember_proof(self.inner.store.as_ref(), &proof, &context, policy)
            .await
            .map_err(|e| e.to_oauth_error())?;
        Ok(Some(proof))
    }

    async fn exchange(
        &self,
        client: &Client,
        grant_type: &str,
        params: &Params,
        dpop_jkt: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let handler = self.inner.grants.get(grant_type).ok_or_else(|| {
            OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type")
                .with_reason(Reason::GrantTypeUnsupported)
        })?;
        if !client.allows_grant(grant_type) {
            return Err(OAuthError::unauthorized_client(
                "the client may not use this grant type",
            ));
        }
        let ctx = GrantContext::new(
            self.inner.store.as_ref(),
            self.now(),
            &self.inner.config,
            self.random(),
        )
        .with_jwt(self.jwt())
        .with_dpop_jkt(dpop_jkt);
        handler.exchange(&ctx, client, params).await
    }
}
