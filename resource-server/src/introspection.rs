//! Remote token introspection (RFC 7662) with a bounded cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use tessera::storage::ReplayStore;
use tessera::{
    AccessToken, BearerError, DpopPolicy, IntrospectionError, RemoteResource, ResourceRequest,
    TokenVerifier, unreachable_authorization_server,
};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::cache::{TokenKey, TtlCache, token_key};
use crate::dpop::DpopCheck;
use crate::fetch::{FetchError, FetchLimits, Fetcher};
use crate::jwks::BuildError;

/// What the authorization server said about a token, as cached: the body
/// of an active answer (read again for each request's resource and time),
/// or that it is not active.
#[derive(Debug, Clone)]
enum Verdict {
    Active(Arc<[u8]>),
    Inactive,
}

type Lookup = Result<Verdict, Arc<FetchError>>;

struct Inner {
    resource: RemoteResource,
    fetcher: Fetcher,
    client_id: String,
    client_secret: String,
    settings: IntrospectionSettings,
    endpoint: tokio::sync::Mutex<Endpoint>,
    /// Active answers.
    cache: Mutex<TtlCache<Verdict>>,
    /// Inactive answers, bounded apart: junk tokens, which anyone can send
    /// by the thousand, cannot push the active answers out.
    inactive: Mutex<TtlCache<Verdict>>,
    /// Lookups under way, so that concurrent requests with one token make
    /// one call.
    in_flight: Mutex<HashMap<TokenKey, Arc<OnceCell<Lookup>>>>,
    calls: std::sync::atomic::AtomicU64,
    dpop: DpopCheck,
}

#[derive(Debug, Default)]
struct Endpoint {
    url: Option<String>,
    last_discovery: Option<Instant>,
}

#[derive(Debug, Clone)]
struct IntrospectionSettings {
    max_ttl: Duration,
    negative_ttl: Duration,
    max_entries: usize,
    cooldown: Duration,
}

/// A [`TokenVerifier`] that asks the authorization server about each token
/// (RFC 7662 §2): a `POST` to its `introspection_endpoint` (configured, or
/// from the issuer's metadata, RFC 8414), authenticated as the resource
/// server's own client with `client_secret_basic` (§2.1).
///
/// Answers are cached under the token's SHA-256 (never the token): an
/// active one until the token's `exp` and at most
/// [`max_ttl`](IntrospectionVerifierBuilder::max_ttl) (default 60 s: how
/// long a revocation may take to be seen here, RFC 7662 §4), an inactive
/// one for [`negative_ttl`](IntrospectionVerifierBuilder::negative_ttl)
/// (default 5 s); at most
/// [`max_entries`](IntrospectionVerifierBuilder::max_entries) of each kind
/// (active answers and inactive ones apart, so a flood of junk tokens
/// cannot evict the active answers), the oldest evicted first. Concurrent
/// requests with the same token make one call.
///
/// Works for opaque and JWT access tokens alike, and sees revocation. A
/// DPoP-bound token (the answer's `cnf.jkt`, RFC 9449 §6.2) is accepted
/// only as `Authorization: DPoP` with a proof of the request by its key
/// (§7.1: every §4.3 check, `ath`), each proof once
/// ([`replay_store`](IntrospectionVerifierBuilder::replay_store)); sent as
/// `Bearer` it is refused (§7.2). An
/// authorization server that cannot be reached, times out or answers
/// anything but an introspection answer gets the request `503
/// temporarily_unavailable`: the token is never accepted unchecked.
///
/// Cloning it shares the cache.
#[derive(Clone)]
pub struct IntrospectionVerifier(Arc<Inner>);

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("resource", &self.0.resource)
            .field("client_id", &self.0.client_id)
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IntrospectionVerifier`].
#[must_use]
pub struct IntrospectionVerifierBuilder {
    resource: RemoteResource,
    client_id: String,
    client_secret: String,
    endpoint: Option<String>,
    settings: IntrospectionSettings,
    limits: FetchLimits,
    dpop: DpopCheck,
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    /// The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("resource", &self.resource)
            .field("client_id", &self.client_id)
            .field("endpoint", &self.endpoint)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifierBuilder {
    /// Posts to `url` instead of the `introspection_endpoint` of the
    /// issuer's metadata.
    pub fn introspection_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The longest an active answer is kept (default 60 s; never past the
    /// token's `exp`): a revoked token is refused here at most this long
    /// after its revocation. Zero caches nothing.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.settings.max_ttl = ttl;
        self
    }

    /// How long an inactive answer is kept (default 5 s), so that a flood
    /// of one bad token costs one call per period.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_ttl = ttl;
        self
    }

    /// The most answers kept of each kind, active and inactive (default
    /// 10 000 each); beyond, the oldest of that kind go.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.settings.max_entries = max;
        self
    }

    /// Timeouts and the largest answer read (default 5 s, 64 KiB).
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
    pub fn build(self) -> Result<IntrospectionVerifier, BuildError> {
        if self.client_id.is_empty() {
            return Err(BuildError::Setting("an empty client_id"));
        }
        Ok(IntrospectionVerifier(Arc::new(Inner {
            fetcher: Fetcher::new(self.limits).map_err(BuildError::Client)?,
            resource: self.resource,
            client_id: self.client_id,
            client_secret: self.client_secret,
            cache: Mutex::new(TtlCache::new(self.settings.max_entries)),
            inactive: Mutex::new(TtlCache::new(self.settings.max_entries)),
            settings: self.settings,
            endpoint: tokio::sync::Mutex::new(Endpoint {
                url: self.endpoint,
                last_discovery: None,
            }),
            in_flight: Mutex::new(HashMap::new()),
            calls: std::sync::atomic::AtomicU64::new(0),
            dpop: self.dpop,
        })))
    }
}

/// What the cache needs of an answer: whether it is active and until when.
#[derive(Deserialize)]
struct Lifetime {
    active: bool,
    #[serde(default)]
    exp: Option<i64>,
}

impl IntrospectionVerifier {
    /// A verifier for `resource` that authenticates to the introspection
    /// endpoint as `client_id` with `client_secret` (the resource server's
    /// own registration, allowed to introspect others' tokens).
    pub fn builder(
        resource: RemoteResource,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            resource,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoint: None,
            settings: IntrospectionSettings {
                max_ttl: Duration::from_secs(60),
                negative_ttl: Duration::from_secs(5),
                max_entries: 10_000,
                cooldown: Duration::from_secs(10),
            },
            limits: FetchLimits::default(),
            dpop: DpopCheck::default(),
        }
    }

    /// The resource server's configuration.
    pub fn resource(&self) -> &RemoteResource {
        &self.0.resource
    }

    /// How many introspection calls were made.
    pub fn call_count(&self) -> u64 {
        self.0.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many answers are cached, active and inactive.
    pub fn cached(&self) -> usize {
        self.lock_cache(true).len() + self.lock_cache(false).len()
    }

    /// The cache of active answers, or of inactive ones.
    fn lock_cache(&self, active: bool) -> std::sync::MutexGuard<'_, TtlCache<Verdict>> {
        let cache = if active {
            &self.0.cache
        } else {
            &self.0.inactive
        };
        cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoint, discovered once (retried after a cooldown on failure).
    async fn endpoint(&self) -> Result<String, FetchError> {
        let mut endpoint = self.0.endpoint.lock().await;
        if let Some(url) = &endpoint.url {
            return Ok(url.clone());
        }
        if endpoint
            .last_discovery
            .is_some_and(|t| t.elapsed() < self.0.settings.cooldown)
        {
            return Err(FetchError::CoolingDown);
        }
        endpoint.last_discovery = Some(Instant::now());
        let metadata = self.0.fetcher.discover(self.0.resource.issuer()).await?;
        let url = metadata
            .introspection_endpoint
            .ok_or(FetchError::NoEndpoint("introspection_endpoint"))?;
        endpoint.url = Some(url.clone());
        Ok(url)
    }

    /// One call to the introspection endpoint, its answer cached.
    async fn introspect(&self, key: TokenKey, token: &str) -> Lookup {
        let url = self.endpoint().await.map_err(Arc::new)?;
        self.0
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // RFC 7662 §2.1: `token`, with a hint that it is an access token.
        let (status, body) = self
            .0
            .fetcher
            .post_form(
                &url,
                (&self.0.client_id, &self.0.client_secret),
                &[("token", token), ("token_type_hint", "access_token")],
            )
            .await
            .map_err(Arc::new)?;
        if status != 200 {
            if status == 401 || status == 400 {
                tracing::error!(
                    status,
                    "the introspection endpoint refused this resource server's request: check its client_id and secret"
                );
            }
            return Err(Arc::new(FetchError::Status(status)));
        }
        let lifetime: Lifetime = serde_json::from_slice(&body)
            .map_err(|_| Arc::new(FetchError::Malformed("not an introspection answer")))?;
        let now = Instant::now();
        let (verdict, ttl) = match lifetime {
            Lifetime {
                active: true,
                exp: Some(exp),
            } => {
                // RFC 7662 §4: never kept past the token's expiry.
                let left = exp.saturating_sub(OffsetDateTime::now_utc().unix_timestamp());
                let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
                (
                    Verdict::Active(Arc::from(body)),
                    left.min(self.0.settings.max_ttl),
                )
            }
            // Active without `exp`: not cached (the check then refuses it).
            Lifetime { active: true, .. } => (Verdict::Active(Arc::from(body)), Duration::ZERO),
            Lifetime { active: false, .. } => (Verdict::Inactive, self.0.settings.negative_ttl),
        };
        // A TTL past what `Instant` can hold (a setting of `Duration::MAX`)
        // is not cached rather than overflow.
        if let Some(until) = now.checked_add(ttl).filter(|_| !ttl.is_zero()) {
            let active = matches!(verdict, Verdict::Active(_));
            self.lock_cache(active).insert(key, verdict.clone(), until);
        }
        Ok(verdict)
    }

    /// The verdict on `token`: cached, or the one call under way for it,
    /// or a new call.
    async fn verdict(&self, token: &str) -> Lookup {
        let key = token_key(token);
        let now = Instant::now();
        let cached = self.lock_cache(true).get(&key, now);
        if let Some(v) = cached.or_else(|| self.lock_cache(false).get(&key, now)) {
            return Ok(v);
        }
        let cell = {
            let mut in_flight = self.0.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(in_flight.entry(key).or_default())
        };
        // The first to finish removes the entry (later lookups use the
        // cache), and so does a lookup whose request is dropped midway (a
        // client that disconnects, a timeout): otherwise each such token
        // would leave its entry for ever, and a stream of junk tokens cut
        // off at once would grow the map without bound.
        let _leave = LeaveInFlight {
            verifier: self,
            key,
            cell: &cell,
        };
        cell.get_or_init(|| self.introspect(key, token))
            .await
            .clone()
    }
}

/// Removes a lookup's in-flight entry when the lookup ends, however it
/// ends, if the entry is still its own.
struct LeaveInFlight<'a> {
    verifier: &'a IntrospectionVerifier,
    key: TokenKey,
    cell: &'a Arc<OnceCell<Lookup>>,
}

impl Drop for LeaveInFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .verifier
            .0
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if in_flight
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, self.cell))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[async_trait]
impl TokenVerifier for IntrospectionVerifier {
    /// The token of `request` as the authorization server describes it,
    /// then as presented: a DPoP-bound token (`cnf.jkt` in the answer, RFC
    /// 9449 §6.2) only as `DPoP` with a valid proof by its key, used once
    /// (§7); an unbound one only as `Bearer`.
    async fn verify(&self, request: &ResourceRequest<'_>) -> Result<AccessToken, BearerError> {
        let (scheme, token) = request.access_token()?;
        let verdict = self
            .verdict(token)
            .await
            .map_err(|e| unreachable_authorization_server(e.to_string()))?;
        let body = match verdict {
            Verdict::Active(body) => body,
            Verdict::Inactive => {
                tracing::debug!("inactive access token refused");
                return Err(BearerError::Invalid);
            }
        };
        let access = self
            .0
            .resource
            .check_introspection_with_binding(request.path, &body, OffsetDateTime::now_utc())
            .map_err(|e| match e {
                IntrospectionError::Refused(refused) => {
                    tracing::debug!(reason = %refused, "introspected access token refused");
                    refused.bearer_error()
                }
                _ => unreachable_authorization_server("not an introspection answer"),
            })?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tessera::{ProtectedResource, RemoteResource, ResourceIndicator};

    /// A lookup whose request is dropped midway (the client went away)
    /// leaves no in-flight entry behind: junk tokens cut off at once
    /// cannot grow the map.
    #[tokio::test]
    async fn a_dropped_lookup_leaves_no_in_flight_entry() {
        // An authorization server that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let resource =
            ProtectedResource::new(ResourceIndicator::new("https://rs.example/api").unwrap())
                .unwrap();
        let rs = RemoteResource::new(format!("http://{addr}"), resource);
        let verifier = IntrospectionVerifier::builder(rs, "photo-api", "secret")
            .introspection_endpoint(format!("http://{addr}/introspect"))
            .build()
            .unwrap();
        for i in 0..20 {
            let token = format!("tsa_junk{i}");
            let lookup = verifier.verdict(&token);
            assert!(
                tokio::time::timeout(Duration::from_millis(20), lookup)
                    .await
                    .is_err()
            );
        }
        assert_eq!(verifier.0.in_flight.lock().unwrap().len(), 0);
    }
}
