//! The service layer: the only async code in the core. It authenticates
//! clients, loads state, runs the pure transitions and persists the result.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::authorize::{self, AuthorizeOutcome, Prompt, Rejection, ResponseTarget};
use crate::client::{Client, ClientId};
use crate::client_auth::ClientCredentials;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, EndpointPaths, Lifetimes, PkcePolicy};
use crate::consent::{AlwaysPrompt, ConsentPolicy, ConsentRequirement, Decision};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{
    AuthorizationCodeGrant, ClientCredentialsGrant, GrantContext, GrantHandler, RefreshTokenGrant,
    TokenResponse,
};
use crate::http::{HttpRequest, HttpResponse};
use crate::params::Params;
use crate::scope::{Scope, ScopeToken};
use crate::storage::{CodeRecord, PendingAuthorization, Store, Subject};
use crate::token::{OsRandom, Random, Secret, SecretKey, TokenKind};

/// An OAuth 2 authorization server over a store `S`. Cheap to clone (an `Arc` inside).
pub struct Server<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Server<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("issuer", &self.inner.config.issuer)
            .field("grants", &self.inner.grants.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    store: Arc<S>,
    config: Config,
    grants: BTreeMap<String, Arc<dyn GrantHandler<S>>>,
    consent: Arc<dyn ConsentPolicy>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

/// Why a server could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No issuer was set.
    #[error("the issuer is required")]
    MissingIssuer,
    /// The issuer is not an http(s) URL without query or fragment (RFC 8414 §2).
    #[error("the issuer must be an http(s) URL without query or fragment: {0}")]
    InvalidIssuer(String),
    /// No store was set.
    #[error("a store is required")]
    MissingStore,
}

/// Builds a [`Server`] with safe defaults: PKCE S256 for every client, 60 s
/// codes, rotating refresh tokens, consent always asked.
pub struct ServerBuilder<S> {
    issuer: Option<String>,
    store: Option<Arc<S>>,
    lifetimes: Lifetimes,
    pkce: PkcePolicy,
    paths: EndpointPaths,
    scopes: BTreeMap<ScopeToken, String>,
    realm: String,
    grants: BTreeMap<String, Arc<dyn GrantHandler<S>>>,
    consent: Arc<dyn ConsentPolicy>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl<S> std::fmt::Debug for ServerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Server<S> {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder<S> {
        ServerBuilder {
            issuer: None,
            store: None,
            lifetimes: Lifetimes::default(),
            pkce: PkcePolicy::default(),
            paths: EndpointPaths::default(),
            scopes: BTreeMap::new(),
            realm: "tessera".into(),
            grants: BTreeMap::new(),
            consent: Arc::new(AlwaysPrompt),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
        }
    }
}

impl<S: Store> ServerBuilder<S> {
    /// The issuer identifier, e.g. `https://photos.example` (RFC 8414 §2).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The storage backend.
    pub fn store(mut self, store: Arc<S>) -> Self {
        self.store = Some(store);
        self
    }

    /// Declares a scope with the words a consent page shows for it.
    pub fn scope(mut self, token: ScopeToken, description: impl Into<String>) -> Self {
        self.scopes.insert(token, description.into());
        self
    }

    /// Lifetimes of codes and tokens.
    pub fn lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Endpoint paths, relative to the issuer.
    pub fn paths(mut self, paths: EndpointPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The realm of `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Lets confidential clients skip PKCE. Dangerous: they then have no
    /// defence against authorization code injection (RFC 9700 §4.5).
    pub fn dangerous_pkce_optional_for_confidential_clients(mut self) -> Self {
        self.pkce = PkcePolicy::DangerousRequiredForPublicOnly;
        self
    }

    /// Registers a grant type (or replaces a built-in one with the same `grant_type`).
    pub fn grant(mut self, handler: impl GrantHandler<S> + 'static) -> Self {
        self.grants
            .insert(handler.grant_type().to_owned(), Arc::new(handler));
        self
    }

    /// The consent policy (default: always ask).
    pub fn consent(mut self, policy: impl ConsentPolicy + 'static) -> Self {
        self.consent = Arc::new(policy);
        self
    }

    /// The clock (default: the system clock). Tests pass a [`crate::FixedClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The randomness source (default: the OS-seeded CSPRNG).
    pub fn random(mut self, random: Arc<dyn Random>) -> Self {
        self.random = random;
        self
    }

    /// Builds the server, with the built-in grants registered unless replaced.
    pub fn build(mut self) -> Result<Server<S>, BuildError> {
        let issuer = self.issuer.ok_or(BuildError::MissingIssuer)?;
        let issuer = issuer.strip_suffix('/').unwrap_or(&issuer).to_owned();
        let parsed =
            url::Url::parse(&issuer).map_err(|_| BuildError::InvalidIssuer(issuer.clone()))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(BuildError::InvalidIssuer(issuer));
        }
        let store = self.store.ok_or(BuildError::MissingStore)?;
        let builtins: [Arc<dyn GrantHandler<S>>; 3] = [
            Arc::new(AuthorizationCodeGrant),
            Arc::new(RefreshTokenGrant),
            Arc::new(ClientCredentialsGrant),
        ];
        for g in builtins {
            self.grants.entry(g.grant_type().to_owned()).or_insert(g);
        }
        Ok(Server {
            inner: Arc::new(Inner {
                store,
                config: Config {
                    issuer,
                    lifetimes: self.lifetimes,
                    pkce: self.pkce,
                    paths: self.paths,
                    scopes: self.scopes,
                    realm: self.realm,
                    max_body_bytes: 64 * 1024,
                },
                grants: self.grants,
                consent: self.consent,
                clock: self.clock,
                random: self.random,
            }),
        })
    }
}

impl<S: Store> Server<S> {
    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.inner.store
    }

    /// The registered grant types.
    pub fn grant_types(&self) -> impl Iterator<Item = &str> {
        self.inner.grants.keys().map(String::as_str)
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn random(&self) -> &dyn Random {
        self.inner.random.as_ref()
    }

    /// Authenticates the client of a back-channel request (RFC 6749 §2.3).
    pub async fn authenticate_client(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Arc<Client>, OAuthError> {
        ClientCredentials::extract(authorization, params)?
            .authenticate(self.inner.store.as_ref())
            .await
    }

    fn describe(&self, scope: &Scope) -> Vec<(String, String)> {
        scope
            .iter()
            .map(|t| {
                let words = self
                    .inner
                    .config
                    .scopes
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| t.to_owned());
                (t.to_owned(), words)
            })
            .collect()
    }

    fn prompt(&self, handle: String, client: Arc<Client>, scope: Scope) -> Prompt {
        let scope_descriptions = self.describe(&scope);
        Prompt {
            handle,
            client,
            scope,
            scope_descriptions,
        }
    }

    // ---- Authorization endpoint -------------------------------------------------

    /// Handles a request to the authorization endpoint (RFC 6749 §4.1.1).
    ///
    /// `query` is the raw query string. `owner` is the logged-in resource
    /// owner from the embedder's session, if any.
    pub async fn authorize(&self, query: &str, owner: Option<&Subject>) -> AuthorizeOutcome {
        match self.try_authorize(query, owner).await {
            Ok(outcome) => outcome,
            Err(Rejection::ErrorPage(e)) => {
                tracing::info!(error = %e.code, "authorization request rejected with an error page");
                AuthorizeOutcome::ErrorPage(e)
            }
            Err(Rejection::Redirect(target, e)) => {
                tracing::info!(error = %e.code, "authorization request rejected to the client");
                AuthorizeOutcome::Redirect(target.error(&e))
            }
        }
    }

    async fn try_authorize(
        &self,
        query: &str,
        owner: Option<&Subject>,
    ) -> Result<AuthorizeOutcome, Rejection> {
        let now = self.now();
        let (params, duplicates) = Params::parse_reporting_duplicates(query);
        let client = match params.get("client_id").and_then(ClientId::new) {
            Some(id) => self
                .inner
                .store
                .client(&id)
                .await
                .map_err(|e| Rejection::ErrorPage(e.into()))?,
            None => None,
        };
        let valid = authorize::validate(
            &params,
            &duplicates,
            client.as_ref(),
            &self.inner.config,
            now,
        )?;
        let grant = self.random().grant_id();
        let handle = Secret::mint(TokenKind::Pending, grant, self.random().bytes32());
        self.inner
            .store
            .put_pending(handle.key(), valid.pending.clone())
            .await
            .map_err(|e| {
                let target = valid.pending.target(&self.inner.config.issuer);
                Rejection::Redirect(Box::new(target), e.into())
            })?;
        tracing::info!(client = %valid.client.id, "authorization request accepted");
        match owner {
            None => Ok(AuthorizeOutcome::Login(self.prompt(
                handle.expose().to_owned(),
                valid.client,
                valid.pending.scope,
            ))),
            Some(owner) => Ok(self
                .resume_with(handle, valid.pending, valid.client, owner, now)
                .await),
        }
    }

    /// The pending request behind a handle, to (re-)render a login or consent page.
    /// `None` if the handle is unknown or expired.
    pub async fn pending(&self, handle: &str) -> Result<Option<Prompt>, OAuthError> {
        let Some(key) = SecretKey::parse(TokenKind::Pending, handle) else {
            return Ok(None);
        };
        let Some(pending) = self.inner.store.get_pending(key, self.now()).await? else {
            return Ok(None);
        };
        let Some(client) = self.inner.store.client(&pending.client_id).await? else {
            return Ok(None);
        };
        Ok(Some(self.prompt(handle.to_owned(), client, pending.scope)))
    }

    /// Continues a pending request once `owner` has logged in: asks the
    /// consent policy, then answers with the consent page or the code.
    pub async fn resume(&self, handle: &str, owner: &Subject) -> AuthorizeOutcome {
        let now = self.now();
        let expired = || {
            AuthorizeOutcome::ErrorPage(OAuthError::invalid_request(
                "the authorization request expired; start again",
            ))
        };
        let Some(secret) = Secret::parse(TokenKind::Pending, handle) else {
            return expired();
        };
        let pending = match self.inner.store.get_pending(secret.key(), now).await {
            Ok(Some(pending)) => pending,
            Ok(None) => return expired(),
            Err(e) => return AuthorizeOutcome::ErrorPage(e.into()),
        };
        match self.inner.store.client(&pending.client_id).await {
            Ok(Some(client)) => self.resume_with(secret, pending, client, owner, now).await,
            Ok(None) => {
                AuthorizeOutcome::ErrorPage(OAuthError::invalid_client("unknown client_id"))
            }
            Err(e) => {
                let target = pending.target(&self.inner.config.issuer);
                AuthorizeOutcome::Redirect(target.error(&e.into()))
            }
        }
    }

    /// Continues with a validated request whose client is already loaded.
    async fn resume_with(
        &self,
        handle: Secret,
        pending: PendingAuthorization,
        client: Arc<Client>,
        owner: &Subject,
        now: OffsetDateTime,
    ) -> AuthorizeOutcome {
        match self
            .inner
            .consent
            .requirement(&client, owner, &pending.scope)
            .await
        {
            Ok(ConsentRequirement::Granted) => {
                tracing::info!(client = %client.id, "consent policy granted without a prompt");
                self.finish(handle.key(), owner, Decision::Allow, now, false)
                    .await
            }
            Ok(_) => AuthorizeOutcome::Consent(self.prompt(
                handle.expose().to_owned(),
                client,
                pending.scope,
            )),
            Err(e) => {
                let target = pending.target(&self.inner.config.issuer);
                AuthorizeOutcome::Redirect(target.error(&e.into()))
            }
        }
    }

    /// Records the owner's decision on the consent page and answers the client:
    /// a code on `Allow`, `access_denied` on `Deny` (RFC 6749 §4.1.2.1).
    ///
    /// The handle is consumed: a second submission gets an error page.
    pub async fn decide(
        &self,
        handle: &str,
        owner: &Subject,
        decision: Decision,
    ) -> AuthorizeOutcome {
        let now = self.now();
        match SecretKey::parse(TokenKind::Pending, handle) {
            Some(key) => self.finish(key, owner, decision, now, true).await,
            None => AuthorizeOutcome::ErrorPage(OAuthError::invalid_request(
                "the authorization request expired; start again",
            )),
        }
    }

    async fn finish(
        &self,
        handle: SecretKey,
        owner: &Subject,
        decision: Decision,
        now: OffsetDateTime,
        record: bool,
    ) -> AuthorizeOutcome {
        let pending = match self.inner.store.take_pending(handle, now).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return AuthorizeOutcome::ErrorPage(OAuthError::invalid_request(
                    "the authorization request expired; start again",
                ));
            }
            Err(e) => return AuthorizeOutcome::ErrorPage(e.into()),
        };
        if record
            && self.inner.consent.records_decisions()
            && let Ok(Some(client)) = self.inner.store.client(&pending.client_id).await
            && let Err(e) = self
                .inner
                .consent
                .record(&client, owner, &pending.scope, decision)
                .await
        {
            tracing::warn!(error = %e, "consent policy could not record the decision");
        }
        // The request is spent: its parts move into the answer and the code.
        let PendingAuthorization {
            client_id,
            redirect_uri,
            redirect_uri_sent,
            scope,
            state,
            challenge,
            expires_at: _,
        } = pending;
        let code_redirect_uri = redirect_uri_sent.then(|| redirect_uri.clone());
        let target = ResponseTarget {
            redirect_uri,
            state,
            issuer: self.inner.config.issuer.clone(),
        };
        if decision == Decision::Deny {
            tracing::info!(client = %client_id, "resource owner denied access");
            return AuthorizeOutcome::Redirect(target.error(&OAuthError::new(
                ErrorCode::AccessDenied,
                "the resource owner denied the request",
            )));
        }
        let code = Secret::mint(TokenKind::Code, handle.grant, self.random().bytes32());
        let record = CodeRecord {
            client_id: client_id.clone(),
            redirect_uri: code_redirect_uri,
            challenge,
            subject: owner.clone(),
            scope,
            expires_at: now + self.inner.config.lifetimes.code,
        };
        if let Err(e) = self.inner.store.put_code(code.key(), record).await {
            return AuthorizeOutcome::Redirect(target.error(&e.into()));
        }
        tracing::info!(client = %client_id, grant = %code.grant(), "authorization code issued");
        AuthorizeOutcome::Redirect(target.code(code.expose()))
    }

    // ---- Token endpoint -------------------------------------------------------------

    /// Handles a request to the token endpoint (RFC 6749 §3.2).
    pub async fn token(&self, request: &HttpRequest<'_>) -> HttpResponse {
        if !request.method.eq_ignore_ascii_case("POST") {
            return HttpResponse::method_not_allowed("POST");
        }
        match self.token_response(request).await {
            Ok(response) => {
                // Sized for two tokens and a scope, so the body is written
                // without growing.
                let mut body = Vec::with_capacity(384);
                match serde_json::to_writer(&mut body, &response) {
                    Ok(()) => HttpResponse::json_no_store(200, body),
                    Err(_) => HttpResponse::oauth_error(
                        &OAuthError::new(ErrorCode::ServerError, "internal error"),
                        &self.inner.config.realm,
                    ),
                }
            }
            Err(e) => HttpResponse::oauth_error(&e, &self.inner.config.realm),
        }
    }

    /// The token endpoint's logic, for embedders and benchmarks that skip HTTP.
    pub async fn token_response(
        &self,
        request: &HttpRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let params = request.form_params()?;
        let grant_type = params.require("grant_type")?;
        let client = self
            .authenticate_client(request.authorization, &params)
            .await?;
        let result = self.exchange(&client, grant_type, &params).await;
        match &result {
            Ok(_) => {
                tracing::info!(client = %client.id, grant_type = %grant_type, outcome = "issued", "token request")
            }
            Err(e) => {
                tracing::info!(client = %client.id, grant_type = %grant_type, outcome = %e.code, "token request")
            }
        }
        result
    }

    async fn exchange(
        &self,
        client: &Client,
        grant_type: &str,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let handler = self.inner.grants.get(grant_type).ok_or_else(|| {
            OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type")
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
        );
        handler.exchange(&ctx, client, params).await
    }
}
