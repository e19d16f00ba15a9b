//! Pushed authorization requests (RFC 9126): a client sends its
//! authorization request on the back channel first, authenticated, and the
//! browser carries only a `request_uri` to the authorization endpoint, so
//! nothing in the front channel can be tampered with or read.
//!
//! A pushed request is validated exactly as at the authorization endpoint,
//! but errors are answered as JSON (§2.3); it is kept as a pending request
//! under a single-use handle for 60 s by default, bound to its client.
//!
//! A `DPoP` header with a valid proof binds the pushed request (and so the
//! code) to the proof's key, as the `dpop_jkt` parameter does (RFC 9449
//! §10.1).

use serde::Serialize;

use crate::abuse::Action;
use crate::authorize::{self, Rejection};
use crate::client::Client;
use crate::dpop::{DpopError, ProofContext, remember_proof, verify_proof};
use crate::error::{ErrorCode, OAuthError, Reason};
use crate::http::HttpRequest;
use crate::params::Flaws;
use crate::server::Server;
use crate::token::{Secret, SecretKey, TokenKind};

/// What a `request_uri` starts with (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The answer of the pushed authorization request endpoint (RFC 9126 §2.2).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PushedRequest {
    /// Where the browser is sent: `urn:ietf:params:oauth:request_uri:…`.
    pub request_uri: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl std::fmt::Debug for PushedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedRequest")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The store key a `request_uri` names, if it is one of ours.
pub(crate) fn request_uri_key(request_uri: &str) -> Option<SecretKey> {
    SecretKey::parse(
        TokenKind::RequestUri,
        request_uri.strip_prefix(REQUEST_URI_PREFIX)?,
    )
}

impl Server {
    /// The pushed authorization request endpoint (RFC 9126 §2): served by
    /// [`Server::handle`] with [`Endpoint::PushedAuthorization`](crate::Endpoint::PushedAuthorization).
    pub(crate) async fn push(
        &self,
        request: &HttpRequest<'_>,
    ) -> Result<PushedRequest, OAuthError> {
        // RFC 9126 §2.1: the authorization request's parameters.
        let params = self.back_channel_params(request, |_, name| {
            crate::authorize::RECOGNIZED.contains(&name)
        })?;
        let client = self.authenticate_request(request, &params).await?;
        if params.contains("request_uri") {
            // §2.1: a pushed request must not itself name a pushed request.
            return Err(OAuthError::invalid_request(
                "request_uri must not be sent to the pushed authorization request endpoint",
            ));
        }
        if params.get("client_id") != Some(client.id.as_str()) {
            // §2.1: the request carries `client_id`, the client's own.
            return Err(OAuthError::invalid_request(
                "client_id is required and must be the authenticated client's",
            ));
        }
        // Public clients push without a secret: bound what one can make us keep.
        if let Err(limited) = self
            .check_limit(Action::PushedAuthorization, client.id.as_str())
            .await
        {
            tracing::info!(client = client.id.as_str(), retry_at = %limited.retry_at, "pushed request refused: too many");
            // RFC 9126 §2.3: 429 for a client over the allowed number.
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many pushed authorization requests; try again later",
            )
            .with_reason(Reason::RateLimited)
            .with_retry_after(limited.retry_after_secs(self.now()))
            .too_many_requests());
        }
        let now = self.now();
        let mut valid = authorize::validate(
            &params,
            &Flaws::default(),
            Some(&client),
            self.config(),
            now,
        )
        .map_err(|rejection| match rejection {
            // §2.3: every error is answered here, as JSON.
            Rejection::ErrorPage(e) | Rejection::Redirect(_, e) => e,
        })?;
        // A client anybody can act as (public, or self-registered): one
        // network's share first, so one host cannot spend the client's
        // budget, or the one all self-registered clients share, that other
        // hosts' users need (RFC 6819 §4.4.1.11). §2.3: a requester over
        // its number is answered 429.
        if client.is_public() || client.is_dynamically_registered() {
            self.count_network(Action::PushedAuthorization, request.peer)
                .map_err(OAuthError::too_many_requests)?;
        }
        // Only a valid request counts: an invalid one keeps nothing, and a
        // public client's budget must not be spent by anybody's bad
        // requests in its name (an independent flood audit did).
        self.record_attempt(Action::PushedAuthorization, client.id.as_str())
            .await;
        // Anyone can become a client (open registration, metadata
        // documents), so the per-client budget alone bounds nothing: the
        // self-registered clients share one (RFC 6819 §4.4.1.11).
        // Over the budget all self-registered clients share, a client within
        // its own rate is not "a client over its number" (RFC 9126 §2.3):
        // 503 with `Retry-After`, as the other shared budgets.
        // Its network was counted above.
        self.count_unvetted_one_time_value(&client, Action::PushedAuthorization, None)
            .await?;
        // RFC 9449 §10.1: a DPoP proof binds the pushed request to its key.
        if let Some(jkt) = self
            .pushed_request_dpop_jkt(&client, request, valid.pending.dpop_jkt.as_deref())
            .await?
        {
            valid.pending.dpop_jkt = Some(jkt);
        }
        let lifetime = self.config().lifetimes.request_uri;
        valid.pending.expires_at = now + lifetime;
        // A time-ordered id, as every grant's: the store reads its time
        // (`GrantId::began`) as a time the server's clock has passed.
        let handle = Secret::mint(
            TokenKind::RequestUri,
            crate::GrantId::mint(now, self.random()),
            self.random().bytes32(),
        );
        self.store()
            .put_pending(handle.key(), valid.pending)
            .await?;
        tracing::info!(client = client.id.as_str(), "authorization request pushed");
        Ok(PushedRequest {
            request_uri: format!("{REQUEST_URI_PREFIX}{}", handle.expose()),
            expires_in: lifetime.whole_seconds(),
        })
    }

    /// The key a pushed request's `DPoP` header binds it to (RFC 9449
    /// §10.1): `None` without the header. The proof is checked as at the
    /// token endpoint (§4.3, `htm` `POST`, `htu` this endpoint's URL), and
    /// must be by the key `dpop_jkt` names when the request has one (§10.1:
    /// "MUST match"); otherwise `400 invalid_dpop_proof`, or
    /// `use_dpop_nonce` when the server requires nonces. Its `jti` is used
    /// once, through the store's replay cache (§11.1), recorded only once
    /// the client is authenticated, the request valid and the keys match,
    /// and counted when the client registered itself or is public
    /// ([`Server::count_unvetted_one_time_value`]).
    async fn pushed_request_dpop_jkt(
        &self,
        client: &Client,
        request: &HttpRequest<'_>,
        dpop_jkt: Option<&str>,
    ) -> Result<Option<String>, OAuthError> {
        if request.dpop.is_none() {
            return Ok(None);
        }
        let htu = self
            .endpoint_url(crate::endpoint::Endpoint::PushedAuthorization)
            .unwrap_or_default();
        let context = ProofContext::new(request.method, &htu, self.now());
        let policy = &self.config().dpop;
        let proof = verify_proof(request.dpop, &context, policy).map_err(|e| e.to_oauth_error())?;
        if dpop_jkt.is_some_and(|jkt| jkt != proof.jkt) {
            return Err(DpopError::InvalidProof(Reason::DpopKeyMismatch).to_oauth_error());
        }
        // Counted once verified and before it is kept.
        self.count_unvetted_one_time_value(client, Action::DpopProof, request.peer)
            .await?;
        remember_proof(self.store().as_ref(), &proof, &context, policy)
            .await
            .map_err(|e| e.to_oauth_error())?;
        Ok(Some(proof.jkt))
    }
}
