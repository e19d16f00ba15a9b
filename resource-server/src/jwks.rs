//! Local validation of JWT access tokens (RFC 9068 §4) against the
//! authorization server's JWK Set, fetched and kept.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tessera::storage::ReplayStore;
use tessera::{
    AccessToken, BearerError, DpopPolicy, Jwks, JwsAlgorithm, JwtError, RefusedToken,
    RemoteResource, ResourceRequest, StaticKeys, TokenVerifier, unreachable_authorization_server,
};
use time::OffsetDateTime;

use crate::dpop::DpopCheck;
use crate::fetch::{FetchError, FetchLimits, Fetcher};

/// The keys in use and when they were fetched.
#[derive(Debug, Default)]
struct Snapshot {
    keys: StaticKeys,
    fetched: Option<Instant>,
    /// Bumped by every successful fetch.
    generation: u64,
}

/// The fetching side: one fetch at a time.
#[derive(Debug, Default)]
struct Refresh {
    last_attempt: Option<Instant>,
    last_failed: bool,
    /// The JWKS URL, configured or discovered (RFC 8414 `jwks_uri`).
    jwks_uri: Option<String>,
}

struct Inner {
    resource: RemoteResource,
    fetcher: Fetcher,
    settings: JwksSettings,
    keys: RwLock<Arc<Snapshot>>,
    refresh: tokio::sync::Mutex<Refresh>,
    fetches: AtomicU64,
    dpop: DpopCheck,
}

#[derive(Debug, Clone)]
struct JwksSettings {
    cooldown: Duration,
    max_age: Duration,
    max_stale: Duration,
    algorithms: Vec<JwsAlgorithm>,
}

/// A [`TokenVerifier`] for JWT access tokens (RFC 9068), validated in the
/// resource server's own process against the authorization server's JWK
/// Set (RFC 7517 §5): no call to the authorization server per request.
///
/// The JWK Set comes from the configured URL or from the `jwks_uri` of the
/// issuer's metadata (RFC 8414 §3); it is fetched on first use, again once
/// it is older than [`max_age`](JwksVerifierBuilder::max_age), and again
/// when a token names a `kid` it does not hold (a key rotation), but at
/// most once per [`refresh_cooldown`](JwksVerifierBuilder::refresh_cooldown):
/// tokens with made-up `kid`s cannot make the resource server hammer the
/// authorization server. Documents are bounded in size and keys in number
/// ([`tessera::MAX_JWKS_KEYS`]); fetches in time.
///
/// Validation is [`RemoteResource::check_jwt_with_binding`]: `typ: at+jwt`, the key's
/// own algorithm (from the allow-list), signature, `iss`, `exp`/`nbf` with
/// the leeway, and `aud` naming the resource of the request's path. It
/// fails closed: without keys (the authorization server unreachable) a
/// token is answered `503 temporarily_unavailable`, never accepted.
///
/// A DPoP-bound token (`cnf.jkt`, RFC 9449 §6.1) is accepted only as
/// `Authorization: DPoP` with a proof of the request by its key (§7.1: every
/// §4.3 check, `ath`), each proof once ([`replay_store`](JwksVerifierBuilder::replay_store));
/// sent as `Bearer` it is refused (§7.2).
///
/// Revocation is not seen before the token expires: keep access tokens
/// short-lived, or use [`IntrospectionVerifier`](crate::IntrospectionVerifier).
///
/// Cloning it shares the keys.
#[derive(Clone)]
pub struct JwksVerifier(Arc<Inner>);

impl fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("resource", &self.0.resource)
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwksVerifier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct JwksVerifierBuilder {
    resource: RemoteResource,
    jwks_uri: Option<String>,
    settings: JwksSettings,
    limits: FetchLimits,
    dpop: DpopCheck,
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The HTTP client could not be made (e.g. no TLS roots).
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Setting(&'static str),
}

impl JwksVerifierBuilder {
    /// Fetches the JWK Set from `url` instead of the `jwks_uri` of the
    /// issuer's metadata.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// The least time between two fetches (default 10 s): a token with an
    /// unknown `kid` fetches the set again only if the last fetch is that
    /// old, so a flood of such tokens costs the authorization server at
    /// most one request per cooldown. A key rotation is seen within it.
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.cooldown = cooldown;
        self
    }

    /// How long a fetched set is used before it is fetched again (default
    /// 5 minutes): how soon a key the authorization server withdrew stops
    /// verifying. A failed refresh keeps the last set, up to
    /// [`max_stale`](Self::max_stale).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.settings.max_age = max_age;
        self
    }

    /// How old the last fetched set may grow while fetching it again fails
    /// (default an hour; it must be longer than
    /// [`max_age`](Self::max_age)); past that, tokens are answered `503`
    /// until a fetch succeeds. Without a bound, whoever can make the fetches fail
    /// (a network position, a flood of the authorization server) would
    /// keep a key the server withdrew, a compromised one say, verifying
    /// for ever.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.settings.max_stale = max_stale;
        self
    }

    /// The signature algorithms accepted (default ES256, EdDSA and RS256,
    /// the one RFC 9068 §2.1 says a resource server "MUST include"): keys
    /// of others in the set are ignored.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        self.settings.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Timeouts and the largest document read (default 5 s, 64 KiB).
    pub fn limits(mut self, limits: FetchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How DPoP proofs of DPoP-bound tokens are accepted (RFC 9449 §4.3:
    /// the `iat` window, server nonces; default [`DpopPolicy::default`]).
    /// The window is also how long a proof's `jti` is remembered.
    pub fn dpop_policy(mut self, policy: DpopPolicy) -> Self {
        self.dpop.policy = policy;
        self
    }

    /// Where DPoP proofs' `jti`s are remembered so each is used once (RFC
    /// 9449 §11.1). Default: a [`MemoryReplayCache`](crate::MemoryReplayCache)
    /// of this verifier (clones share it), which is enough for one
    /// instance; several instances of the resource server must share one
    /// store (e.g. a `tessera_redis::RedisStore`), or a proof used at one
    /// is accepted at another.
    pub fn replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.dpop.replay = store;
        self
    }

    /// The verifier. Nothing is fetched yet.
    pub fn build(self) -> Result<JwksVerifier, BuildError> {
        if self.settings.algorithms.is_empty() {
            return Err(BuildError::Setting("no algorithm allowed"));
        }
        if self.settings.max_age < self.settings.cooldown {
            return Err(BuildError::Setting("max_age is shorter than the cooldown"));
        }
        if self.settings.max_stale <= self.settings.max_age {
            return Err(BuildError::Setting(
                "max_stale is not longer than max_age: every refresh would refuse tokens",
            ));
        }
        Ok(JwksVerifier(Arc::new(Inner {
            resource: self.resource,
            fetcher: Fetcher::new(self.limits).map_err(BuildError::Client)?,
            settings: self.settings,
            keys: RwLock::new(Arc::new(Snapshot::default())),
            refresh: tokio::sync::Mutex::new(Refresh {
                jwks_uri: self.jwks_uri,
                ..Refresh::default()
            }),
            fetches: AtomicU64::new(0),
            dpop: self.dpop,
        })))
    }
}

/// What a check found, before the fetching decision.
enum Checked {
    Done(Result<AccessToken, BearerError>),
    UnknownKey,
}

impl JwksVerifier {
    /// A verifier for `resource` (its issuer, protected resources, realm
    /// and leeway), with the defaults of [`JwksVerifierBuilder`].
    pub fn builder(resource: RemoteResource) -> JwksVerifierBuilder {
        JwksVerifierBuilder {
            resource,
            jwks_uri: None,
            settings: JwksSettings {
                cooldown: Duration::from_secs(10),
                max_age: Duration::from_secs(300),
                max_stale: Duration::from_secs(3600),
                algorithms: vec![
                    JwsAlgorithm::Es256,
                    JwsAlgorithm::EdDsa,
                    JwsAlgorithm::Rs256,
                ],
            },
            limits: FetchLimits::default(),
            dpop: DpopCheck::default(),
        }
    }

    /// The resource server's configuration.
    pub fn resource(&self) -> &RemoteResource {
        &self.0.resource
    }

    /// How many times the JWK Set was requested (successfully or not).
    pub fn fetch_count(&self) -> u64 {
        self.0.fetches.load(Ordering::Relaxed)
    }

    /// Fetches the JWK Set now (e.g. at start-up, to fail early), unless
    /// the last fetch is younger than the cooldown.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let mut refresh = self.0.refresh.lock().await;
        self.fetch(&mut refresh).await
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.0.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn check(&self, snapshot: &Snapshot, path: &str, token: &str) -> Checked {
        let now = OffsetDateTime::now_utc();
        match self
            .0
            .resource
            .check_jwt_with_binding(path, token, &snapshot.keys, now)
        {
            Ok(token) => Checked::Done(Ok(token)),
            Err(RefusedToken::Jwt(JwtError::UnknownKey)) => Checked::UnknownKey,
            Err(refused) => {
                tracing::debug!(reason = %refused, "JWT access token refused");
                Checked::Done(Err(refused.bearer_error()))
            }
        }
    }

    /// One fetch of the set, under the refresh lock: discovery first if no
    /// URL is known yet. On failure the last set stays.
    async fn fetch(&self, refresh: &mut Refresh) -> Result<(), FetchError> {
        if refresh
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.0.settings.cooldown)
        {
            return if refresh.last_failed {
                Err(FetchError::CoolingDown)
            } else {
                Ok(())
            };
        }
        refresh.last_attempt = Some(Instant::now());
        refresh.last_failed = true;
        let url = match &refresh.jwks_uri {
            Some(url) => url.clone(),
            None => {
                let metadata = self.0.fetcher.discover(self.0.resource.issuer()).await?;
                let url = metadata
                    .jwks_uri
                    .ok_or(FetchError::NoEndpoint("jwks_uri"))?;
                refresh.jwks_uri = Some(url.clone());
                url
            }
        };
        self.0.fetches.fetch_add(1, Ordering::Relaxed);
        let body = self
            .0
            .fetcher
            .get(&url, "application/jwk-set+json, application/json")
            .await?;
        let keys = Jwks::parse_verifying_keys_for(&body, &self.0.settings.algorithms)
            .ok_or(FetchError::Malformed("not a JWK Set"))?;
        let keys = StaticKeys::new(keys);
        let generation = self.snapshot().generation + 1;
        let snapshot = Arc::new(Snapshot {
            keys,
            fetched: Some(Instant::now()),
            generation,
        });
        match self.0.keys.write() {
            Ok(mut keys) => *keys = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        refresh.last_failed = false;
        tracing::debug!(url = %url, generation, "JWK Set fetched");
        Ok(())
    }

    /// Refreshes the set because `seen` (a snapshot generation) lacked a
    /// key, unless someone else already did: the newest snapshot after.
    async fn refreshed_after(&self, seen: u64) -> Result<Arc<Snapshot>, FetchError> {
        let mut refresh = self.0.refresh.lock().await;
        let current = self.snapshot();
        if current.generation != seen {
            return Ok(current);
        }
        let result = self.fetch(&mut refresh).await;
        drop(refresh);
        match result {
            Ok(()) => Ok(self.snapshot()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl TokenVerifier for JwksVerifier {
    /// The token of `request`, checked locally, then as presented: a
    /// DPoP-bound token (`cnf.jkt`) only as `DPoP` with a valid proof by
    /// its key, used once (RFC 9449 §7); an unbound one only as `Bearer`.
    async fn verify(&self, request: &ResourceRequest<'_>) -> Result<AccessToken, BearerError> {
        let (scheme, token) = request.access_token()?;
        let access = self.validate(request, token).await?;
        self.0
            .dpop
            .check(&self.0.resource, request, scheme, token, access)
            .await
    }

    fn realm(&self) -> &str {
        self.0.resource.realm()
    }

    fn resource_metadata_url_at(&self, path: &str) -> Option<String> {
        Some(self.0.resource.resource_metadata_url_at(path))
    }

    fn scope_hint_at(&self, path: &str) -> Option<String> {
        self.0.resource.scope_hint_at(path)
    }
}

impl JwksVerifier {
    /// The JWT `token`, validated against the keys (fetched if needed).
    async fn validate(
        &self,
        request: &ResourceRequest<'_>,
        token: &str,
    ) -> Result<AccessToken, BearerError> {
        let mut snapshot = self.snapshot();
        let stale = snapshot
            .fetched
            .is_none_or(|t| t.elapsed() >= self.0.settings.max_age);
        if stale {
            // First use, or a periodic refresh: one request fetches, the
            // others go on with the keys they have (if any).
            let refreshed = if snapshot.fetched.is_none() {
                Some(self.refreshed_after(snapshot.generation).await)
            } else if let Ok(mut refresh) = self.0.refresh.try_lock() {
                Some(self.fetch(&mut refresh).await.map(|()| self.snapshot()))
            } else {
                None
            };
            match refreshed {
                Some(Ok(s)) => snapshot = s,
                Some(Err(e)) if snapshot.fetched.is_none() => {
                    return Err(unreachable_authorization_server(e.to_string()));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "JWK Set refresh failed; the last set stays")
                }
                None => {}
            }
            if snapshot.fetched.is_none() {
                return Err(unreachable_authorization_server("no JWK Set fetched yet"));
            }
            if snapshot
                .fetched
                .is_some_and(|t| t.elapsed() >= self.0.settings.max_stale)
            {
                return Err(unreachable_authorization_server(
                    "the JWK Set could not be fetched again and is older than max_stale",
                ));
            }
        }
        match self.check(&snapshot, request.path, token) {
            Checked::Done(result) => return result,
            Checked::UnknownKey => {}
        }
        // A `kid` we do not hold: a rotation, or a forgery. Fetch again,
        // at most once per cooldown whoever asks.
        match self.refreshed_after(snapshot.generation).await {
            Ok(fresh) => match self.check(&fresh, request.path, token) {
                Checked::Done(result) => result,
                Checked::UnknownKey => {
                    tracing::debug!("JWT access token signed by an unknown key refused");
                    Err(BearerError::Invalid)
                }
            },
            Err(e) => Err(unreachable_authorization_server(e.to_string())),
        }
    }
}
