//! The authorization endpoint's flow (RFC 6749 §4.1.1, §4.1.2): validate
//! the request and keep it pending; resume it once the owner has logged in;
//! answer the client once the owner has decided. Each public method logs
//! its outcome once, here, where it leaves the core.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Server;
use crate::abuse::Action;
use crate::authorize::{self, AuthorizeOutcome, Prompt, Rejection, ResponseTarget};
use crate::client::{Client, ClientId};
use crate::consent::{ConsentRequirement, Decision};
use crate::error::{ErrorCode, OAuthError, Reason, StoreError};
use crate::login_handle;
use crate::params::Params;
use crate::storage::{CodeRecord, PendingAuthorization, Subject};
use crate::token::{GrantId, Secret, SecretKey, TokenKind};

/// The answer to a handle that is unknown, expired or already decided.
fn expired() -> OAuthError {
    OAuthError::invalid_request("the authorization request expired; start again")
        .with_reason(Reason::PendingRequestExpired)
}

/// The one log line of a refused authorization step: a server fault as an
/// error with its cause, anything else at `INFO` with its code and reason.
fn log_rejection(e: &OAuthError, context: &'static str, answer: &'static str) {
    if e.is_server_fault() {
        e.log(context);
    } else {
        tracing::info!(error = %e.code, reason = ?e.reason(), answer, "{context}");
    }
}

impl Server {
    /// Handles a request to the authorization endpoint (RFC 6749 §4.1.1).
    ///
    /// `query` is the raw query string. `owner` is the logged-in resource
    /// owner from the embedder's session, if any.
    pub async fn authorize(&self, query: &str, owner: Option<&Subject>) -> AuthorizeOutcome {
        let outcome = self.try_authorize(query, owner).await;
        self.settle(outcome, "authorization request rejected")
    }

    /// Turns a rejection into its outcome, logging it once.
    fn settle(
        &self,
        outcome: Result<AuthorizeOutcome, Rejection>,
        context: &'static str,
    ) -> AuthorizeOutcome {
        match outcome {
            Ok(outcome) => outcome,
            Err(Rejection::ErrorPage(e)) => {
                log_rejection(&e, context, "error page");
                AuthorizeOutcome::ErrorPage(e)
            }
            Err(Rejection::Redirect(target, e)) => {
                log_rejection(&e, context, "redirect");
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
        let (params, flaws) = Params::parse_reporting_flaws(query);
        if let Some(request_uri) = params.get("request_uri") {
            return self
                .authorize_pushed(&params, &flaws, request_uri, owner, now)
                .await;
        }
        // A repeated client_id is refused below without fetching anything.
        let client_id = params
            .get("client_id")
            .filter(|_| !flaws.repeated.iter().any(|n| n == "client_id"))
            .and_then(ClientId::new);
        let client = match client_id {
            Some(id) => self
                .lookup_client(&id)
                .await
                .map_err(|e| Rejection::ErrorPage(e.into()))?
                .filter(|c| c.is_live(now)),
            None => None,
        };
        let valid = authorize::validate(&params, &flaws, client.as_ref(), &self.inner.config, now)?;
        // RFC 9126 §5, §6: a client (or a server) that requires pushed
        // requests refuses this one, at the redirect URI it just verified.
        if self.inner.config.require_pushed_authorization_requests
            || valid.client.require_pushed_authorization_requests
        {
            let refused = OAuthError::invalid_request("pushed authorization requests are required");
            // RFC 9700 §4.11.2: never an automatic redirect to a URI
            // nobody vetted (see `authorize::validate`).
            if valid.client.is_dynamically_registered() {
                return Err(Rejection::ErrorPage(refused));
            }
            let target = valid.pending.target(&self.inner.config.issuer);
            return Err(Rejection::Redirect(Box::new(target), refused));
        }
        tracing::info!(
            client = valid.client.id.as_str(),
            "authorization request accepted"
        );
        self.proceed(valid.pending, valid.client, owner, now).await
    }

    /// The authorization endpoint with a `request_uri` from the pushed
    /// authorization request endpoint (RFC 9126 §4): the pushed request is
    /// taken (single use), must be the named client's, and stands for every
    /// other parameter of this request.
    async fn authorize_pushed(
        &self,
        params: &Params,
        flaws: &crate::params::Flaws,
        request_uri: &str,
        owner: Option<&Subject>,
        now: OffsetDateTime,
    ) -> Result<AuthorizeOutcome, Rejection> {
        let unusable = || {
            Rejection::ErrorPage(
                OAuthError::invalid_request("request_uri is unknown, expired or already used")
                    .with_reason(Reason::PendingRequestExpired),
            )
        };
        flaws
            .refuse(|name| matches!(name, "client_id" | "request_uri"))
            .map_err(Rejection::ErrorPage)?;
        let client_id = params
            .get("client_id")
            .and_then(ClientId::new)
            .ok_or_else(|| {
                Rejection::ErrorPage(OAuthError::invalid_request(
                    "client_id is required with request_uri",
                ))
            })?;
        let key = crate::par::request_uri_key(request_uri).ok_or_else(unusable)?;
        // Another client's id must not burn the request: look, then take.
        let peeked = self
            .inner
            .store
            .get_pending(key, now)
            .await
            .map_err(|e| Rejection::ErrorPage(e.into()))?
            .ok_or_else(unusable)?;
        if peeked.client_id != client_id {
            return Err(unusable());
        }
        let mut pending = self
            .take_pending(key, now)
            .await
            .map_err(|e| Rejection::ErrorPage(e.into()))?
            .ok_or_else(unusable)?;
        let client = self.client_of(&pending).await?;
        // From here the request waits for login and consent like any other.
        pending.expires_at = now + self.inner.config.lifetimes.pending;
        tracing::info!(
            client = client.id.as_str(),
            "pushed authorization request accepted"
        );
        self.proceed(pending, client, owner, now).await
    }

    /// A validated request: the login page for a browser that has not
    /// signed in, else on to consent.
    async fn proceed(
        &self,
        pending: PendingAuthorization,
        client: Arc<Client>,
        owner: Option<&Subject>,
        now: OffsetDateTime,
    ) -> Result<AuthorizeOutcome, Rejection> {
        let valid = authorize::ValidatedRequest { client, pending };
        match owner {
            // Nothing is stored for a browser that has not signed in: the
            // login page carries the sealed request (see `login_handle`).
            None => {
                let handle = self.inner.login_key.seal(&valid.pending);
                Ok(AuthorizeOutcome::Login(self.prompt(
                    handle,
                    valid.client,
                    &valid.pending,
                )))
            }
            Some(owner) => {
                self.resume_with(valid.pending, valid.client, owner, now)
                    .await
            }
        }
    }

    /// The pending request behind a handle, to (re-)render a login or consent page.
    /// `None` if the handle is unknown, altered or expired.
    pub async fn pending(&self, handle: &str) -> Result<Option<Prompt>, OAuthError> {
        let found = async {
            let now = self.now();
            let pending = if login_handle::is_login_handle(handle) {
                self.inner.login_key.open(handle, now)
            } else {
                match SecretKey::parse(TokenKind::Pending, handle) {
                    Some(key) => self.inner.store.get_pending(key, now).await?,
                    None => None,
                }
            };
            let Some(pending) = pending else {
                return Ok(None);
            };
            let Some(client) = self.find_client(&pending.client_id).await? else {
                return Ok(None);
            };
            Ok(Some(self.prompt(handle.to_owned(), client, &pending)))
        };
        found.await.inspect_err(|e: &OAuthError| {
            e.log("pending authorization request could not be read");
        })
    }

    /// Continues a request once `owner` has logged in: asks the consent
    /// policy, then answers with the consent page or the code.
    ///
    /// `handle` is the login page's (the sealed request) or, should the
    /// embedder ask for a login again on its consent page, the consent
    /// page's.
    pub async fn resume(&self, handle: &str, owner: &Subject) -> AuthorizeOutcome {
        let outcome = self.try_resume(handle, owner).await;
        self.settle(outcome, "authorization could not be resumed")
    }

    async fn try_resume(
        &self,
        handle: &str,
        owner: &Subject,
    ) -> Result<AuthorizeOutcome, Rejection> {
        let now = self.now();
        if login_handle::is_login_handle(handle) {
            let pending = self
                .inner
                .login_key
                .open(handle, now)
                .ok_or_else(|| Rejection::ErrorPage(expired()))?;
            let client = self.client_of(&pending).await?;
            return self.resume_with(pending, client, owner, now).await;
        }
        // A consent handle: the request is stored already.
        let key = SecretKey::parse(TokenKind::Pending, handle)
            .ok_or_else(|| Rejection::ErrorPage(expired()))?;
        let pending = self
            .inner
            .store
            .get_pending(key, now)
            .await
            .map_err(|e| Rejection::ErrorPage(e.into()))?
            .ok_or_else(|| Rejection::ErrorPage(expired()))?;
        let client = self.client_of(&pending).await?;
        match self.consent_required(&client, owner, &pending).await? {
            true => Ok(AuthorizeOutcome::Consent(self.prompt(
                handle.to_owned(),
                client,
                &pending,
            ))),
            false => {
                let pending = self
                    .take_pending(key, now)
                    .await
                    .map_err(|e| Rejection::ErrorPage(e.into()))?
                    .ok_or_else(|| Rejection::ErrorPage(expired()))?;
                self.finish(key.grant, pending, owner, Decision::Allow, now, None)
                    .await
            }
        }
    }

    /// The client of a pending request: an error page if it is gone, or
    /// no longer live (a self-registered client that expired since the
    /// request was pushed or began: RFC 9126 §4 asks a pushed request to
    /// be validated "as it would any other").
    async fn client_of(&self, pending: &PendingAuthorization) -> Result<Arc<Client>, Rejection> {
        let now = self.now();
        match self.lookup_client(&pending.client_id).await {
            Ok(Some(client)) if client.is_live(now) => Ok(client),
            Ok(_) => Err(Rejection::ErrorPage(OAuthError::invalid_client(
                "unknown client_id",
            ))),
            // The document went bad since: nothing is verified any more.
            Err(e @ crate::client_metadata::LookupError::Document(_)) => {
                Err(Rejection::ErrorPage(e.into()))
            }
            Err(e) => {
                let target = pending.target(&self.inner.config.issuer);
                Err(Rejection::Redirect(Box::new(target), e.into()))
            }
        }
    }

    /// Whether the owner must be asked (the consent policy's word).
    async fn consent_required(
        &self,
        client: &Client,
        owner: &Subject,
        pending: &PendingAuthorization,
    ) -> Result<bool, Rejection> {
        let consent = &self.inner.consent;
        let resource = pending.audience.as_ref();
        let requirement = match consent.requirement_at_hand(client, owner, &pending.scope, resource)
        {
            Some(answer) => Ok(answer),
            None => {
                consent
                    .requirement(client, owner, &pending.scope, resource)
                    .await
            }
        };
        match requirement {
            Ok(ConsentRequirement::Granted) => {
                tracing::info!(
                    client = client.id.as_str(),
                    "consent policy granted without a prompt"
                );
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => {
                let target = pending.target(&self.inner.config.issuer);
                Err(Rejection::Redirect(Box::new(target), e.into()))
            }
        }
    }

    /// Continues with a validated request of a signed-in owner whose client
    /// is loaded: a code at once when the consent policy grants, else the
    /// request is stored (now, and only now) under a single-use consent
    /// handle and the consent page is asked for.
    async fn resume_with(
        &self,
        pending: PendingAuthorization,
        client: Arc<Client>,
        owner: &Subject,
        now: OffsetDateTime,
    ) -> Result<AuthorizeOutcome, Rejection> {
        let grant = crate::GrantId::mint(now, self.random());
        if !self.consent_required(&client, owner, &pending).await? {
            return self
                .finish(grant, pending, owner, Decision::Allow, now, None)
                .await;
        }
        // What a signed-in owner makes us keep is bounded too: a consent
        // prompt's pending request, per owner (RFC 6819 §4.4.1.3's
        // concern for state an attacker makes the server hold).
        if let Err(limited) = self.acquire_attempt(Action::ConsentPrompt, owner.as_str()) {
            tracing::info!(client = client.id.as_str(), retry_at = %limited.retry_at, "consent prompt refused: too many pending requests for one account");
            let refused = OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many authorization requests from this account; try again later",
            )
            .with_reason(Reason::RateLimited);
            // Anybody can send a signed-in owner's browser here in a
            // self-registered client's name: no automatic redirect to its
            // URI (RFC 9700 §4.11.2, see `authorize::validate`).
            if client.is_dynamically_registered() {
                return Err(Rejection::ErrorPage(refused));
            }
            let target = pending.target(&self.inner.config.issuer);
            return Err(Rejection::Redirect(Box::new(target), refused));
        }
        let handle = Secret::mint(TokenKind::Pending, grant, self.random().bytes32());
        let key = handle.key();
        let prompt = self.prompt(handle.into_exposed(), client, &pending);
        self.keep_pending(key, pending).await?;
        Ok(AuthorizeOutcome::Consent(prompt))
    }

    /// Stores a request under its consent handle, at hand if the store
    /// can (no boxed future); a store fault is answered at the request's
    /// verified redirect URI.
    async fn keep_pending(
        &self,
        handle: SecretKey,
        pending: PendingAuthorization,
    ) -> Result<(), Rejection> {
        let issuer = &self.inner.config.issuer;
        let refused = |e: StoreError, target| Rejection::Redirect(Box::new(target), e.into());
        match self.inner.store.pending_at_hand() {
            Some(at_hand) => at_hand
                .put_pending_now(handle, Box::new(pending))
                .map_err(|(e, pending)| refused(e, pending.target(issuer))),
            None => {
                let target = pending.target(issuer);
                self.inner
                    .store
                    .put_pending(handle, pending)
                    .await
                    .map_err(|e| refused(e, target))
            }
        }
    }

    /// Takes a pending request (once), at hand if the store can.
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        match self.inner.store.pending_at_hand() {
            Some(at_hand) => at_hand.take_pending_now(handle, now),
            None => self.inner.store.take_pending(handle, now).await,
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
        let outcome = match SecretKey::parse(TokenKind::Pending, handle) {
            Some(key) => match self.take_pending(key, now).await {
                Ok(Some(pending)) => {
                    // A decided prompt keeps nothing any more: only prompts
                    // still waiting count against their owner, so a person
                    // who decides each one may run as many flows as they
                    // like (`Action::ConsentPrompt`).
                    self.forgive_attempt(Action::ConsentPrompt, owner.as_str());
                    // A self-registered client that expired while its
                    // consent page was open gets nothing (`client_of`).
                    match self.client_of(&pending).await {
                        Ok(client) => {
                            let decided = Some(&*client);
                            self.finish(key.grant, pending, owner, decision, now, decided)
                                .await
                        }
                        Err(rejection) => Err(rejection),
                    }
                }
                Ok(None) => Err(Rejection::ErrorPage(expired())),
                Err(e) => Err(Rejection::ErrorPage(e.into())),
            },
            None => Err(Rejection::ErrorPage(expired())),
        };
        self.settle(outcome, "consent decision could not be completed")
    }

    /// Answers the client for a request taken out of storage (or never
    /// stored): `decided` is the client when the owner decided on a consent
    /// page (the policy may remember the decision).
    async fn finish(
        &self,
        grant: GrantId,
        pending: PendingAuthorization,
        owner: &Subject,
        decision: Decision,
        now: OffsetDateTime,
        decided: Option<&Client>,
    ) -> Result<AuthorizeOutcome, Rejection> {
        if let Some(client) = decided
            && self.inner.consent.records_decisions()
            && let Err(e) = self
                .inner
                .consent
                .record(
                    client,
                    owner,
                    &pending.scope,
                    pending.audience.as_ref(),
                    decision,
                )
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
            audience,
            dpop_jkt,
            expires_at: _,
        } = pending;
        let code_redirect_uri = redirect_uri_sent.then(|| redirect_uri.clone());
        let issuer = &self.inner.config.issuer;
        // Where a refusal goes (copies made only for one).
        let target = || ResponseTarget {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            issuer: issuer.clone(),
        };
        if decision == Decision::Deny {
            tracing::info!(client = client_id.as_str(), "resource owner denied access");
            let denied = OAuthError::new(
                ErrorCode::AccessDenied,
                "the resource owner denied the request",
            )
            .with_reason(Reason::OwnerDenied);
            return Ok(AuthorizeOutcome::Redirect(target().error(&denied)));
        }
        let code = Secret::mint(TokenKind::Code, grant, self.random().bytes32());
        let record = CodeRecord {
            client_id: client_id.clone(),
            redirect_uri: code_redirect_uri,
            challenge,
            subject: owner.clone(),
            scope,
            audience,
            dpop_jkt,
            expires_at: now + self.inner.config.lifetimes.code,
        };
        let kept = match self.inner.store.codes_at_hand() {
            Some(codes) => codes.put_code_now(code.key(), record),
            None => self.inner.store.put_code(code.key(), record).await,
        };
        if let Err(e) = kept {
            return Err(Rejection::Redirect(Box::new(target()), e.into()));
        }
        tracing::info!(client = client_id.as_str(), grant = %code.grant(), "authorization code issued");
        Ok(AuthorizeOutcome::Redirect(authorize::code_redirect(
            &redirect_uri,
            state.as_deref(),
            issuer,
            code.expose(),
        )))
    }
}
