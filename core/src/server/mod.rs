//! The service layer: the only async code in the core. It authenticates
//! clients, loads state, runs the pure transitions and persists the result.
//!
//! - [`builder`]: [`ServerBuilder`] and the checks `build()` makes;
//! - [`authorization`]: the authorization endpoint's flow (authorize, resume
//!   after login, decide after consent);
//! - [`token`]: the token endpoint's orchestration over the grant handlers.
//!
//! The other endpoints (revocation, introspection, metadata, bearer
//! validation) live with their concept, and [`crate::endpoint`] dispatches
//! HTTP requests to all of them.

mod authorization;
mod builder;
mod token;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::abuse::{Action, Limited, RateLimiter, SourceNetwork};
use crate::authorize::Prompt;
use crate::client::Client;
use crate::client_auth::{
    self, Claimed, ClientAuthContext, ClientAuthMethod, ClientAuthRequest, Selected,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::consent::ConsentPolicy;
use crate::endpoint::Routes;
use crate::error::{OAuthError, Reason};
use crate::grant::GrantHandler;
use crate::login_handle::LoginHandleKey;
use crate::params::Params;
use crate::protected_resource::ProtectedResource;
use crate::storage::Store;
use crate::token::Random;

pub use builder::{BuildError, ServerBuilder};

/// The one key of every client nobody vetted ([`Action::DpopProof`],
/// [`Action::ClientAssertion`]). Not a valid `client_id` (it has spaces),
/// so no client's own key can be it.
const UNVETTED_CLIENTS: &str = "self-registered clients";

/// An OAuth 2 authorization server: configuration, a store, grant handlers
/// and a consent policy. Cheap to clone (an `Arc` inside), and not generic
/// over its store, so handlers, extractors and guards name it as `Server`
/// whatever backend it runs on.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("issuer", &self.inner.config.issuer)
            .field("grants", &self.inner.grants.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn Store>,
    limiter: Arc<dyn RateLimiter>,
    login_key: LoginHandleKey,
    config: Config,
    /// `config.scopes`, shared with every consent prompt.
    scope_words: crate::scope::ScopeWords,
    routes: Routes,
    grants: BTreeMap<String, Arc<dyn GrantHandler>>,
    /// The client-authentication methods, in registration order.
    auth_methods: Vec<Arc<dyn ClientAuthMethod>>,
    /// Whether `auth_methods` starts with the three built-in methods, none
    /// replaced: they are then decided without `dyn` calls.
    builtin_auth: bool,
    /// The secret verifiers, by hash scheme.
    secrets: crate::secret::SecretVerifiers,
    consent: Arc<dyn ConsentPolicy>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    /// Signing keys and format of JWT access tokens (RFC 9068), if any.
    jwt: Option<crate::jwt::JwtIssuing>,
    /// The protected resources (RFC 9728), in declaration order: the
    /// endpoint table names their metadata routes by index.
    protected: Vec<ProtectedResource>,
    /// Client ID metadata documents, when on.
    documents: Option<crate::client_metadata::DocumentClients>,
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The registered grant types.
    pub fn grant_types(&self) -> impl Iterator<Item = &str> {
        self.inner.grants.keys().map(String::as_str)
    }

    /// The registered client-authentication methods.
    pub fn client_auth_methods(&self) -> impl Iterator<Item = &dyn ClientAuthMethod> {
        self.inner.auth_methods.iter().map(|m| m.as_ref())
    }

    /// Whether a registered client-authentication method reads the
    /// parameter `name` ([`ClientAuthMethod::parameters`]).
    fn client_auth_reads(&self, name: &str) -> bool {
        self.inner
            .auth_methods
            .iter()
            .any(|m| m.parameters().is_none_or(|read| read.contains(&name)))
    }

    /// The form parameters of a request to a back-channel endpoint (RFC
    /// 6749 §3.2, [`HttpRequest::form_params`]'s rules): a parameter sent
    /// twice or not UTF-8 is `invalid_request` when it is one the endpoint
    /// reads (`reads`, given the parameters), `client_id`, or one a client
    /// authentication method reads; any other is ignored, as the server
    /// "MUST ignore unrecognized request parameters". A value over
    /// [`MAX_PARAMETER_BYTES`](crate::params::MAX_PARAMETER_BYTES) is
    /// refused whoever reads it ([`Flaws::refuse`](crate::params::Flaws)).
    pub(crate) fn back_channel_params(
        &self,
        request: &crate::http::HttpRequest<'_>,
        reads: impl Fn(&crate::params::Params, &str) -> bool,
    ) -> Result<crate::params::Params, OAuthError> {
        let (params, flaws) = request.form_params_reporting_flaws()?;
        // Only a request with a flaw asks who reads what.
        flaws.refuse(|name| {
            name == "client_id" || reads(&params, name) || self.client_auth_reads(name)
        })?;
        Ok(params)
    }

    pub(crate) fn secret_verifiers(&self) -> &crate::secret::SecretVerifiers {
        &self.inner.secrets
    }

    pub(crate) fn protected(&self) -> &[ProtectedResource] {
        &self.inner.protected
    }

    pub(crate) fn documents(&self) -> Option<&crate::client_metadata::DocumentClients> {
        self.inner.documents.as_ref()
    }

    pub(crate) fn routes_table(&self) -> &Routes {
        &self.inner.routes
    }

    /// The time by the server's clock ([`crate::ServerBuilder::clock`]), for
    /// embedders whose pages must agree with it (a lockout's end, say).
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn random(&self) -> &dyn Random {
        self.inner.random.as_ref()
    }

    pub(crate) fn jwt(&self) -> Option<&crate::jwt::JwtIssuing> {
        self.inner.jwt.as_ref()
    }

    /// Authenticates the client of a back-channel request (RFC 6749 §2.3)
    /// with the registered [`ClientAuthMethod`]s: exactly one method's
    /// credentials (two at once are `invalid_request`), or a bare
    /// `client_id` for a public client; failure is `invalid_client`.
    ///
    /// Wrong secrets of a registered confidential client are counted
    /// ([`Action::ClientAuthenticationFailure`]); when the rate limiter
    /// limits that action, a client over the limit is refused with
    /// `invalid_client` before its secret is compared, so a low-entropy
    /// secret cannot be guessed at the server's speed (RFC 6819
    /// §5.1.4.2.3). The built-in limiter does not limit it by default:
    /// generated secrets have 256 bits, and a lockout would let anyone who
    /// knows a client id cut the client off. A client whose secret is
    /// hashed by a slow scheme (Argon2id: a low-entropy secret) is also
    /// counted under [`Action::SlowSecretFailure`], which the built-in
    /// limiter does limit.
    pub async fn authenticate_client(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Arc<Client>, OAuthError> {
        self.authenticate_client_from(authorization, params, None)
            .await
    }

    /// [`authenticate_client`](Self::authenticate_client) for a request of
    /// the endpoints: its `Authorization` header, its parameters, and where
    /// it came from (one network's share of the assertions of
    /// self-registered clients, [`Action::ClientAssertion`]).
    pub(crate) async fn authenticate_request(
        &self,
        request: &crate::http::HttpRequest<'_>,
        params: &Params,
    ) -> Result<Arc<Client>, OAuthError> {
        self.authenticate_client_from(request.authorization, params, request.peer)
            .await
    }

    async fn authenticate_client_from(
        &self,
        authorization: Option<&str>,
        params: &Params,
        peer: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        let request = ClientAuthRequest::new(authorization, params);
        let mut buffer = [0u8; client_auth::BASIC_BUFFER];
        let mut heap = Vec::new();
        let methods = &self.inner.auth_methods;
        let (selected, id) = match methods.get(3..) {
            Some(others) if self.inner.builtin_auth => {
                client_auth::select_builtin(others, &request, &mut buffer, &mut heap)?
            }
            _ => {
                let (method, id) = client_auth::select(methods, &request)?;
                (Selected::Other(method), Claimed::Id(id))
            }
        };
        let id_text = id.as_str();
        let refused = |limited: Limited| {
            // The claimed id is nobody's yet: logged quoted (`?`), so that
            // spaces, `=` or quotes in it cannot forge a field of the line.
            tracing::info!(client = ?id_text, retry_at = %limited.retry_at, "client authentication refused: too many failures");
            OAuthError::invalid_client("too many failed client authentications; try again later")
                .with_reason(Reason::RateLimited)
        };
        self.check_limit(Action::ClientAuthenticationFailure, id_text)
            .await
            .map_err(refused)?;
        let fail = |why: &str| {
            tracing::info!(client = ?id_text, method = %selected.method(), reason = why, "client authentication failed");
            OAuthError::invalid_client("client authentication failed")
        };
        let client = crate::client::lookup_client_str(&self.clients(), id_text)
            .await?
            .ok_or_else(|| fail("unknown client"))?;
        if !client.auth_methods.contains(&selected.method()) {
            return Err(fail("method not registered for client"));
        }
        // A slow hash is guarded by a limit that applies by default.
        let verifier = client
            .secret_hash()
            .and_then(|h| self.inner.secrets.for_hash(h));
        let slow = verifier.is_some_and(|v| v.is_slow());
        if slow {
            self.check_limit(Action::SlowSecretFailure, id_text)
                .await
                .map_err(refused)?;
        }
        // The clock is read only when something needs it: a method of
        // its own, or a registration that can expire.
        let mut now = None;
        let result = match &selected {
            Selected::Secret(_, secret) => {
                client_auth::check_secret(&client, verifier, secret).await
            }
            Selected::Public => client_auth::public_client(&client),
            Selected::Other(method) => {
                let ctx = ClientAuthContext::new(self, *now.insert(self.now()), peer);
                method.verify(&ctx, &request, &client).await
            }
        };
        let result = result.and_then(|()| {
            // A registration that expired (unused or idle) is gone,
            // whether or not the store has removed it yet (RFC 7591 bounds).
            if client.registration.is_none() || client.is_live(now.unwrap_or_else(|| self.now())) {
                Ok(())
            } else {
                Err(fail("registration expired"))
            }
        });
        match result {
            Ok(()) => Ok(client),
            Err(e) => {
                if e.reason() == Reason::ClientSecretMismatch {
                    self.record_attempt(Action::ClientAuthenticationFailure, id_text)
                        .await;
                    if slow {
                        self.record_attempt(Action::SlowSecretFailure, id_text)
                            .await;
                    }
                }
                if e.code == crate::error::ErrorCode::InvalidClient {
                    tracing::info!(client = ?id_text, method = %selected.method(), reason = ?e.reason(), "client authentication failed");
                }
                Err(e)
            }
        }
    }

    /// `Err` while `key` has used up its attempts at `action` (see
    /// [`RateLimiter`]): what the embedder's login page asks before
    /// checking a password, with the account as `key`.
    pub async fn check_limit(&self, action: Action, key: &str) -> Result<(), Limited> {
        if !self.inner.limiter.is_counting() {
            return Ok(());
        }
        self.inner.limiter.check(action, key, self.now())
    }

    /// Records an attempt at `action` by `key` (a wrong password, for
    /// [`Action::LoginFailure`]).
    pub async fn record_attempt(&self, action: Action, key: &str) {
        self.inner.limiter.record(action, key, self.now());
    }

    /// Checks and counts one attempt at `action` by `key` at once
    /// ([`RateLimiter::acquire`](crate::RateLimiter::acquire)): for what is
    /// counted whatever its outcome, such as a consent prompt kept.
    pub(crate) fn acquire_attempt(&self, action: Action, key: &str) -> Result<(), Limited> {
        self.inner.limiter.acquire(action, key, self.now())
    }

    /// Takes back an attempt recorded before its outcome was known that
    /// turned out right ([`RateLimiter::forgive`](crate::RateLimiter::forgive)).
    pub(crate) fn forgive_attempt(&self, action: Action, key: &str) {
        self.inner.limiter.forgive(action, key, self.now());
    }

    /// Counts a one-time value that `client` presents for the replay cache
    /// to keep (a DPoP proof, [`Action::DpopProof`]; a client assertion,
    /// [`Action::ClientAssertion`]) when nobody vetted the client (a
    /// self-registered client or a client ID metadata document), or, for a
    /// DPoP proof, when anybody may present its id (a public client, the
    /// operator's too): one key for all of them;
    /// `503 temporarily_unavailable` once they used up their count. The cache refuses every such value when full (a live `jti` is
    /// never forgotten: RFC 9449 §11.1, RFC 7523 §3), and anybody can
    /// become such a client, so their values together must stay well below
    /// its size.
    ///
    /// With `peer`, the request's network is counted against its share
    /// too ([`count_network`](Self::count_network)), once the shared budget
    /// has room and before it is counted.
    pub(crate) async fn count_unvetted_one_time_value(
        &self,
        client: &Client,
        action: Action,
        peer: Option<IpAddr>,
    ) -> Result<(), OAuthError> {
        // A public client's id is all it takes to present a proof as it
        // (the grant may fail after the proof was kept), so its proofs
        // count with the self-registered clients'.
        let public_proof = action == Action::DpopProof && client.is_public();
        if !client.is_dynamically_registered() && !public_proof {
            return Ok(());
        }
        self.count_unvetted(&client.id, action, peer).await
    }

    /// Counts a request at `action` against its network's share of a
    /// budget anybody can spend ([`RateLimiter::acquire_from`]), when the
    /// adapter said where it came from: one host cannot spend the budget
    /// that other hosts' requests need (RFC 6819 §4.4.1.11).
    /// `temporarily_unavailable` (503) with `Retry-After` beyond.
    pub(crate) fn count_network(
        &self,
        action: Action,
        peer: Option<IpAddr>,
    ) -> Result<(), OAuthError> {
        let Some(ip) = peer else {
            return Ok(());
        };
        let network = SourceNetwork::of(ip);
        self.inner
            .limiter
            .acquire_from(action, network, self.now())
            .map_err(|limited| {
                tracing::info!(network = %network, action = action.name(), retry_at = %limited.retry_at, "request refused: too many from one network");
                OAuthError::new(
                    crate::error::ErrorCode::TemporarilyUnavailable,
                    "too many requests from this network; try again later",
                )
                .with_reason(Reason::RateLimited)
                .with_retry_after(limited.retry_after_secs(self.now()))
            })
    }

    /// [`count_unvetted_one_time_value`](Self::count_unvetted_one_time_value)
    /// for a DPoP proof at a resource, which knows only the token's client
    /// id: a client ID metadata document (its id is a URL, while documents
    /// are on), a stored self-registered client or a public one is counted.
    pub(crate) async fn count_unvetted_resource_proof(
        &self,
        id: &crate::client::ClientId,
    ) -> Result<(), OAuthError> {
        let document = self.documents().is_some()
            && crate::client_metadata::ClientIdUrl::looks_like_url(id.as_str());
        let unvetted = document
            || self
                .store()
                .client(id)
                .await?
                .is_some_and(|c| c.is_dynamically_registered() || c.is_public());
        if unvetted {
            self.count_unvetted(id, Action::DpopProof, None).await?;
        }
        Ok(())
    }

    /// Checks the budget all unvetted clients share, then counts the
    /// network's share (`peer`), then the budget: a value the budget
    /// refuses spends no network's share.
    async fn count_unvetted(
        &self,
        id: &crate::client::ClientId,
        action: Action,
        peer: Option<IpAddr>,
    ) -> Result<(), OAuthError> {
        if let Err(limited) = self.check_limit(action, UNVETTED_CLIENTS).await {
            tracing::info!(client = id.as_str(), action = action.name(), retry_at = %limited.retry_at, "one-time value refused: too many from self-registered or public clients");
            return Err(OAuthError::new(
                crate::error::ErrorCode::TemporarilyUnavailable,
                "too many requests from self-registered or public clients; try again later",
            )
            .with_reason(Reason::RateLimited)
            .with_retry_after(limited.retry_after_secs(self.now())));
        }
        self.count_network(action, peer)?;
        self.record_attempt(action, UNVETTED_CLIENTS).await;
        Ok(())
    }

    /// The words for scope tokens, shared with every prompt.
    pub(crate) fn scope_words(&self) -> crate::scope::ScopeWords {
        self.inner.scope_words.clone()
    }

    fn prompt(
        &self,
        handle: String,
        client: Arc<Client>,
        pending: &crate::storage::PendingAuthorization,
    ) -> Prompt {
        Prompt {
            handle,
            client,
            scope: pending.scope.clone(),
            resource: pending.audience.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            words: self.scope_words(),
        }
    }
}
