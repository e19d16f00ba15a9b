//! The provider's store: in memory, or Redis (`--store`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera::storage::{
    CodeRecord, CodeTake, NewTokens, PendingAuthorization, RefreshLookup, TokenRecord,
};
use tessera::{
    Client, ClientId, ClientRegistry, GrantId, GrantStore, PendingStore, SecretKey, StoreError,
};
use tessera_memory::MemoryStore;
use tessera_redis::{ConnectError, RedisStore};
use time::OffsetDateTime;

use crate::clients::seeded_clients;
use crate::config::StoreSpec;

/// How long connecting to Redis may take at start-up before giving up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the memory store forgets expired records.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Either backend, behind one type, so a `tessera::Server<DemoStore>` serves
/// both. Every trait method delegates. Cheap to clone.
#[derive(Debug, Clone)]
pub enum DemoStore {
    /// In process memory, seeded with the demo clients at start.
    Memory(Arc<MemoryStore>),
    /// Redis, seeded with the demo clients if it had none.
    Redis(RedisStore),
}

/// Why the store could not be opened: one line, fit for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Redis did not answer, or refused.
    #[error("cannot use the Redis store {store}: {reason}")]
    Redis {
        /// The store, password masked.
        store: String,
        /// What went wrong, on one line.
        reason: String,
    },
}

/// A connection error without the URL (which may hold a password).
fn describe(error: &ConnectError) -> String {
    match error {
        ConnectError::Unreachable { reason, .. } => format!("unreachable ({reason})"),
        ConnectError::InvalidUrl { reason, .. } => format!("invalid URL ({reason})"),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl DemoStore {
    /// A memory store holding the demo clients (no sweeper: see [`DemoStore::open`]).
    pub fn memory() -> Self {
        Self::Memory(Arc::new(MemoryStore::with_clients(seeded_clients())))
    }

    /// Opens the store `spec` names and seeds it. Must run on a Tokio runtime
    /// (the memory store's sweeper is spawned on it).
    pub async fn open(spec: &StoreSpec) -> Result<Self, OpenError> {
        match spec {
            StoreSpec::Memory => {
                let store = Arc::new(MemoryStore::with_clients(seeded_clients()));
                // Ends by itself once the store is dropped.
                drop(store.spawn_sweeper(SWEEP_EVERY));
                Ok(Self::Memory(store))
            }
            StoreSpec::Redis(url) => {
                let fail = |reason: String| OpenError::Redis {
                    store: spec.to_string(),
                    reason: one_line(&reason),
                };
                let store = RedisStore::connect(url.clone())
                    .connect_timeout(REDIS_CONNECT_TIMEOUT)
                    .await
                    .map_err(|e| fail(describe(&e)))?;
                if store.is_empty().await.map_err(|e| fail(e.to_string()))? {
                    for client in seeded_clients() {
                        store
                            .put_client(&client)
                            .await
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    tracing::info!(store = %spec, "seeded the demo clients into an empty Redis store");
                } else {
                    tracing::info!(store = %spec, "Redis store already has clients; not seeding");
                }
                Ok(Self::Redis(store))
            }
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            DemoStore::Memory($s) => $call,
            DemoStore::Redis($s) => $call,
        }
    };
}

#[async_trait]
impl ClientRegistry for DemoStore {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        delegate!(self, s => s.client(id).await)
    }
}

#[async_trait]
impl GrantStore for DemoStore {
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError> {
        delegate!(self, s => s.put_code(code, record).await)
    }

    async fn take_code(
        &self,
        code: SecretKey,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        delegate!(self, s => s.take_code(code, now).await)
    }

    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        delegate!(self, s => s.issue(grant, tokens).await)
    }

    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        delegate!(self, s => s.access_token(token, now).await)
    }

    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        delegate!(self, s => s.refresh_token(token, now).await)
    }

    async fn rotate_refresh(
        &self,
        old: SecretKey,
        tokens: NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.rotate_refresh(old, tokens, now).await)
    }

    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        delegate!(self, s => s.revoke_access_token(token).await)
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        delegate!(self, s => s.revoke_grant(grant).await)
    }
}

#[async_trait]
impl PendingStore for DemoStore {
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.put_pending(handle, request).await)
    }

    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        delegate!(self, s => s.get_pending(handle, now).await)
    }

    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        delegate!(self, s => s.take_pending(handle, now).await)
    }
}
