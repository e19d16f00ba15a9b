//! # tessera-memory: the in-process store
//!
//! [`MemoryStore`] keeps Tessera's clients, grants and pending authorization
//! requests in process memory. It is the embedded default: one server
//! instance, nothing to run beside it, state gone on restart. For several
//! instances behind a load balancer use a shared store (`tessera-redis`).
//!
//! It implements [`tessera::ClientRegistry`], [`tessera::storage::GrantStore`]
//! and [`tessera::storage::PendingStore`] with the semantics documented in
//! [`tessera::storage`], and passes the conformance suite of
//! `tessera_testkit`:
//!
//! - every step on a grant (take a code, rotate a refresh token, issue
//!   versus revoke) happens under that grant's lock, so it is atomic;
//! - a record is never answered as live once `expires_at <= now`;
//! - rotated-away refresh tokens are remembered until their own expiry, so
//!   reuse is detected; a taken code answers `AlreadyTaken` for as long as
//!   its grant lives; a revoked grant refuses new tokens until it expires.
//!
//! ## Layout, and why
//!
//! Records are grouped per grant ([`tessera::GrantId`]), in maps split into
//! 64 independently locked shards by grant id, so requests for different
//! grants rarely contend. No lock is ever held across an `.await` (the trait
//! methods do not await at all). Per-grant state is kept small because an
//! authorization server may hold millions of live access tokens: about
//! 180 bytes for a client-credentials grant with one access token (see
//! [`MemoryStore`]). Each shard keeps its grants in a B-tree by id, and the
//! core's ids begin with their time ([`tessera::GrantId::mint`]): a new
//! grant goes beside the last, in memory the previous insert just touched.
//! A grant's shard is chosen by the byte of its id that names the thread
//! that minted it, so two cores issuing tokens do not write the same
//! shard's lock and leaves in turn. A shard may then hold millions of
//! grants: [`MemoryStore::sweep`] walks it a few thousand at a time.
//!
//! ## Expiry
//!
//! Expired records are never answered, but they occupy memory until swept.
//! Start [`MemoryStore::spawn_sweeper`] once on a Tokio runtime (or call
//! [`MemoryStore::sweep`] yourself). Until a sweeper runs, the store sweeps
//! as it is written: every 128 writes on a thread (tokens issued, codes,
//! pending requests, device requests, one-time values) it visits the next
//! 256 grants, and each shard done, a shard of pending requests; each
//! round, the device requests and expired registrations (the replay cache
//! bounds itself). So nothing grows without bound even when no sweeper
//! was started. "Now" for that sweep is the written time by the server's
//! clock (a new grant's id carries it, [`tessera::GrantId::began`]); a
//! time ahead of the system clock sweeps nothing.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use tessera::{Client, ClientId, ClientRegistry, SecretHash};
//! use tessera_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let id = ClientId::new("printshop").expect("a valid client id");
//! let store = Arc::new(MemoryStore::with_clients([Client::confidential(
//!     id.clone(),
//!     "Printshop",
//!     SecretHash::of("a 256-bit secret, generated"),
//! )]));
//! // Forget expired tokens every minute; stops when the store is dropped.
//! let _sweeper = store.spawn_sweeper(Duration::from_secs(60));
//!
//! assert!(store.client(&id).await.ok().flatten().is_some());
//! assert_eq!(store.stats().grants, 0);
//! // Hand `store` to the server as its `tessera::Store`.
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod grant;
mod replay;
mod shard;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tessera::storage::{
    CodeTake, CodesAtHand, DevicePoll, DeviceRecord, DeviceStatus, DeviceStore, GrantStore,
    NewTokens, PendingAtHand, PendingAuthorization, PendingStore, RefreshLookup, ReplayKey,
    ReplayNamespace, ReplayStore, TokenRecord,
};
use tessera::{
    Client, ClientId, ClientRegistry, GrantId, RegisterOutcome, SecretKey, StoreError, TokenHash,
};
use time::OffsetDateTime;

use crate::grant::{Grant, GrantShard, RefreshView, Take};
use crate::shard::{IdMap, Shards, shrink_if_sparse};

/// Shards of the grant map. 64 keeps contention negligible on any machine a
/// single in-process store is sensible for, for 4 KiB of padded mutexes.
const GRANT_SHARDS: usize = 64;
/// Shards of the pending-request map (short-lived, far fewer records).
const PENDING_SHARDS: usize = 16;

/// How long a grant revoked before anything was issued into it is
/// remembered as revoked.
const REVOKED_UNKNOWN_GRANT_KEPT: time::Duration = time::Duration::hours(24);

/// Writes on one thread between two steps of the sweep that runs as the
/// store is written ([`MemoryStore::spawn_sweeper`] not started).
const AUTO_SWEEP_EVERY: u32 = 128;
/// Grants one such step visits: twice as many as the writes between two
/// steps can add, so the sweep keeps up with any rate of writes (at most
/// about as many expired grants wait as live ones), for two grant visits
/// per write and a short hold of one shard's lock (a few microseconds).
const AUTO_SWEEP_GRANTS: usize = 256;

thread_local! {
    /// Writes counted on this thread ([`MemoryStore::wrote`]).
    static WRITES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Turns the sweep as the store is written back on when dropped: held by
/// the sweeper task, so that a store whose sweeper ended sweeps again.
struct ResumeOnDrop(Weak<MemoryStore>);

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        if let Some(store) = self.0.upgrade() {
            store
                .auto_sweep
                .on
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The sweep that runs as the store is written, for a store whose owner
/// started no sweeper: a step every [`AUTO_SWEEP_EVERY`] writes on a
/// thread, so that nothing grows without bound by default (DESIGN
/// "Storage"). Off once [`MemoryStore::spawn_sweeper`] runs.
#[derive(Debug)]
struct AutoSweep {
    on: std::sync::atomic::AtomicBool,
    /// The grant shard being swept, and where in it.
    cursor: Mutex<(usize, grant::SweepStep)>,
}

impl Default for AutoSweep {
    fn default() -> Self {
        Self {
            on: std::sync::atomic::AtomicBool::new(true),
            cursor: Mutex::new((0, grant::SweepStep::START)),
        }
    }
}

/// An in-memory [`tessera::Store`]: clients, grants and pending requests.
///
/// Share it as `Arc<MemoryStore>`. All methods take `&self`.
///
/// # Memory
///
/// A client-credentials grant with one live access token costs about 180
/// bytes (measured: `tessera-bench --only tokens`): a 24-byte B-tree entry
/// (16-byte id, 8-byte box; nodes filled in order end about half full) and
/// one 120-byte grant holding its token inline (32-byte
/// hash, two timestamps, and a pointer to the client/subject/scope it
/// carries, which is stored once and shared by every token that carries the
/// same): one allocation per issued token. More tokens in a grant go to a
/// vector. Codes,
/// refresh tokens and their retired predecessors live in a separate box that
/// only authorization-code grants allocate.
pub struct MemoryStore {
    grants: Shards<GrantShard>,
    pending: Shards<IdMap<SecretKey, Box<PendingAuthorization>>>,
    devices: Mutex<Devices>,
    replay: replay::ReplayCache,
    /// Looked up on every back-channel request: foldhash, seeded per process.
    clients: RwLock<HashMap<ClientId, Arc<Client>, foldhash::fast::RandomState>>,
    auto_sweep: AutoSweep,
}

/// Counts of what a [`MemoryStore`] holds, expired-but-unswept records included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Grants (including revoked ones, kept until they expire).
    pub grants: usize,
    /// Access tokens.
    pub access_tokens: usize,
    /// Current refresh tokens.
    pub refresh_tokens: usize,
    /// Rotated-away refresh tokens remembered for reuse detection.
    pub retired_refresh_tokens: usize,
    /// Authorization codes, taken or not.
    pub codes: usize,
    /// Pending authorization requests.
    pub pending: usize,
    /// Distinct (client, subject, scope) combinations shared by tokens.
    pub shared_token_metadata: usize,
    /// Registered clients.
    pub clients: usize,
    /// Replay cache entries (DPoP proofs, assertions), all namespaces.
    pub replay_entries: usize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            grants: Shards::new(GRANT_SHARDS),
            pending: Shards::new(PENDING_SHARDS),
            devices: Mutex::new(Devices::default()),
            replay: replay::ReplayCache::new(replay::DEFAULT_REPLAY_CAPACITY),
            clients: RwLock::new(HashMap::default()),
            auto_sweep: AutoSweep::default(),
        }
    }

    /// This store with at most `capacity` live replay cache entries per
    /// [`ReplayNamespace`] (default 250,000; about 100 bytes each). At the
    /// cap, expired entries are swept and, if the namespace is still full,
    /// new values of that namespace are refused with
    /// [`StoreError::Unavailable`] (`503 temporarily_unavailable`) until
    /// entries expire, never let through: see [`ReplayStore`].
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = replay::ReplayCache::new(capacity);
        self
    }

    /// The cap on live replay cache entries per namespace.
    pub fn replay_capacity(&self) -> usize {
        self.replay.capacity()
    }

    /// An empty store with these clients registered.
    pub fn with_clients(clients: impl IntoIterator<Item = Client>) -> Self {
        let store = Self::new();
        for c in clients {
            store.insert_client(c);
        }
        store
    }

    /// Registers a client, replacing one with the same id. Returns the replaced one.
    pub fn insert_client(&self, client: Client) -> Option<Arc<Client>> {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        clients.insert(client.id.clone(), Arc::new(client))
    }

    /// Unregisters a client. Tokens already issued to it stay until they
    /// expire or are revoked (the server checks the client on use).
    pub fn remove_client(&self, id: &ClientId) -> Option<Arc<Client>> {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        clients.remove(id)
    }

    /// Forgets everything that expired by `now`: grants whose latest expiry
    /// passed, expired tokens and codes inside live grants, and expired
    /// pending requests, and dynamically registered clients that expired
    /// unused. Locks one shard at a time, and a shard's grants a few
    /// thousand at a time, so requests wait at most that long.
    pub fn sweep(&self, now: OffsetDateTime) {
        // Step by step, the lock taken again for each: a shard may hold
        // millions of grants (`grant::SWEEP_STEP`).
        for index in 0..GRANT_SHARDS {
            let selector = u8::try_from(index).unwrap_or(u8::MAX);
            let mut step = grant::SweepStep::START;
            while let Some(next) = self.grants.lock(selector).sweep_step(step, now) {
                step = next;
            }
        }
        for mut shard in self.pending.each() {
            shard.retain(|_, p| p.expires_at > now);
            shrink_if_sparse(&mut shard);
        }
        self.devices().sweep(now);
        self.replay.sweep(now);
        self.sweep_clients(now);
    }

    /// Dynamic registrations that expired, unused or idle (RFC 7591
    /// bounds); the write lock only when there is one.
    fn sweep_clients(&self, now: OffsetDateTime) {
        let expired = {
            let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
            clients.values().any(|c| !c.is_live(now))
        };
        if expired {
            let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
            clients.retain(|_, c| c.is_live(now));
        }
    }

    /// Starts a Tokio task that calls [`sweep`](Self::sweep) with the system
    /// clock every `every` (at least 1 ms). The task holds only a [`Weak`]
    /// reference, so it ends by itself once the store is dropped; each sweep
    /// runs on the blocking pool so it never stalls the async workers.
    ///
    /// # Panics
    ///
    /// Like [`tokio::spawn`], when called outside a Tokio runtime.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        // The sweeper does the work of the sweep that runs as the store is written.
        self.auto_sweep
            .on
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = every.max(Duration::from_millis(1));
        // Should the task end (aborted, its runtime gone) while the store
        // lives, the writes sweep again.
        let resume = ResumeOnDrop(weak.clone());
        tokio::spawn(async move {
            let _resume = resume;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(store) = weak.upgrade() else { break };
                let swept = tokio::task::spawn_blocking(move || {
                    store.sweep(OffsetDateTime::now_utc());
                })
                .await;
                if swept.is_err() {
                    // The runtime is shutting down (or a sweep panicked): stop.
                    break;
                }
            }
        })
    }

    /// Counts what the store holds. Locks every shard in turn: meant for
    /// tests, benchmarks and occasional metrics, not for every request.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        let mut metas = std::collections::HashSet::new();
        for shard in self.grants.each() {
            stats.grants += shard.grants.len();
            metas.extend(shard.metas.metas().map(Arc::clone));
            for g in shard.grants.values() {
                let (access, refresh, retired, codes) = g.counts();
                stats.access_tokens += access;
                stats.refresh_tokens += refresh;
                stats.retired_refresh_tokens += retired;
                stats.codes += codes;
            }
        }
        stats.pending = self.pending.each().map(|s| s.len()).sum();
        stats.shared_token_metadata = metas.len();
        stats.clients = self.clients.read().unwrap_or_else(|p| p.into_inner()).len();
        stats.replay_entries = [
            ReplayNamespace::Dpop,
            ReplayNamespace::ClientAssertion,
            ReplayNamespace::JwtBearer,
        ]
        .into_iter()
        .map(|ns| self.replay.len(ns))
        .sum();
        stats
    }

    /// Counts a write made when the server's clock read `at` or later (a
    /// new grant's [`GrantId::began`], or the call's `now`), and every
    /// [`AUTO_SWEEP_EVERY`] on this thread runs a step of the sweep, unless
    /// a sweeper runs. A thread-local count: nothing shared is written on
    /// the way (two cores writing one counter would cost every request).
    fn wrote(&self, at: OffsetDateTime) {
        let due = WRITES.with(|writes| {
            let n = writes.get().wrapping_add(1);
            writes.set(n);
            n % AUTO_SWEEP_EVERY == 0
        });
        if due
            && self
                .auto_sweep
                .on
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            // `at` is no later than the server's clock for ids the server
            // minted. A later one (random bytes, a forged id, a test clock
            // ahead) is not trusted: no step on its word.
            if at <= OffsetDateTime::now_utc() {
                self.auto_sweep_step(at);
            }
        }
    }

    /// One step of the sweep as the store is written: the next
    /// [`AUTO_SWEEP_GRANTS`] grants of the shard being swept; a shard done
    /// sweeps a pending shard too, and a round of every shard the device
    /// requests and expired registrations. Skipped when another thread is
    /// taking a step.
    fn auto_sweep_step(&self, now: OffsetDateTime) {
        let Ok(mut cursor) = self.auto_sweep.cursor.try_lock() else {
            return;
        };
        let (index, step) = *cursor;
        let selector = u8::try_from(index).unwrap_or(u8::MAX);
        let next = self
            .grants
            .lock(selector)
            .sweep_step_by(step, now, AUTO_SWEEP_GRANTS);
        *cursor = match next {
            Some(next) => (index, next),
            None => {
                let pending = u8::try_from(index % PENDING_SHARDS).unwrap_or(0);
                let mut shard = self.pending.lock(pending);
                shard.retain(|_, p| p.expires_at > now);
                shrink_if_sparse(&mut shard);
                drop(shard);
                let index = (index + 1) % GRANT_SHARDS;
                // (The replay cache bounds itself: it sweeps when full.)
                if index == 0 {
                    self.devices().sweep(now);
                    self.sweep_clients(now);
                }
                (index, grant::SweepStep::START)
            }
        };
    }

    /// The shard selector of a grant: the byte of its id that names the
    /// thread that minted it ([`GrantId::mint`]), so each thread adds its
    /// new grants to a shard that is usually its own, whose lock and newest B-tree leaf
    /// stay in that core's cache. (Ids minted otherwise are spread by
    /// whatever that byte holds.)
    fn grant_shard(&self, grant: GrantId) -> std::sync::MutexGuard<'_, GrantShard> {
        self.grants.lock(grant.0[8])
    }

    fn pending_shard(
        &self,
        key: SecretKey,
    ) -> std::sync::MutexGuard<'_, IdMap<SecretKey, Box<PendingAuthorization>>> {
        self.pending.lock(key.hash.0[0])
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("grant_shards", &GRANT_SHARDS)
            .field("pending_shards", &PENDING_SHARDS)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ClientRegistry for MemoryStore {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.client_at_hand(id))
    }

    /// Always at hand: the clients are in memory.
    fn client_at_hand(&self, id: &ClientId) -> Option<Arc<Client>> {
        self.client_at_hand_str(id.as_str())
    }

    /// Looked up by the text: no `ClientId` made.
    fn client_at_hand_str(&self, id: &str) -> Option<Arc<Client>> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        clients.get(id).map(Arc::clone)
    }

    /// Under the registry's write lock: expired registrations are removed,
    /// the dynamic ones counted, and the client inserted, as one step.
    async fn register_client(
        &self,
        client: Client,
        max_dynamic: usize,
        now: OffsetDateTime,
    ) -> Result<RegisterOutcome, StoreError> {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        clients.retain(|_, c| c.is_live(now));
        if clients.contains_key(&client.id) {
            return Ok(RegisterOutcome::IdTaken);
        }
        let dynamic = clients
            .values()
            .filter(|c| c.is_dynamically_registered())
            .count();
        if dynamic >= max_dynamic {
            return Ok(RegisterOutcome::CapReached);
        }
        clients.insert(client.id.clone(), Arc::new(client));
        Ok(RegisterOutcome::Registered)
    }

    async fn dynamic_client_count(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        let n = clients
            .values()
            .filter(|c| c.is_dynamically_registered() && c.is_live(now))
            .count();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn mark_client_used(
        &self,
        id: &ClientId,
        now: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get_mut(id)
            && let Some(registration) = c.registration.as_deref()
        {
            let mut marked = registration.clone();
            if marked.mark_used(now, until) {
                let mut used = Client::clone(c);
                used.registration = Some(Box::new(marked));
                *c = Arc::new(used);
            }
        }
        Ok(())
    }

    async fn evict_unused_client(
        &self,
        before: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        let victim = clients
            .values()
            .filter(|c| c.is_dynamically_registered())
            .filter_map(|c| {
                let until = c.registration.as_ref()?.unused_until?;
                (until < before).then(|| (until, c.id.clone()))
            })
            .min_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, id)| id);
        if let Some(id) = &victim {
            clients.remove(id);
        }
        Ok(victim)
    }

    async fn expire_unused_clients(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        let before = clients.len();
        clients.retain(|_, c| c.is_live(now));
        Ok(u64::try_from(before - clients.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn put_code(
        &self,
        code: SecretKey,
        record: tessera::storage::CodeRecord,
    ) -> Result<(), StoreError> {
        self.put_code_now(code, record)
    }

    async fn take_code(
        &self,
        code: SecretKey,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        self.take_code_now(code, now)
    }

    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        let issued = {
            let mut guard = self.grant_shard(grant);
            let shard = &mut *guard;
            let (access, refresh, until) = shard.metas.stored(tokens);
            let g = shard.grants.get_or_insert_with(grant, || Grant::new(until));
            g.issue(access, refresh, until)
        };
        self.wrote(grant.began());
        Ok(issued)
    }

    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let view = {
            let shard = self.grant_shard(token.grant);
            shard
                .grants
                .get(&token.grant)
                .and_then(|g| g.access_token(token.hash, now))
        };
        Ok(view.map(grant::TokenView::into_record))
    }

    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        let view = {
            let shard = self.grant_shard(token.grant);
            match shard.grants.get(&token.grant) {
                Some(g) => g.refresh_token(token.hash, now),
                None => RefreshView::Unknown,
            }
        };
        Ok(match view {
            RefreshView::Current(v) => RefreshLookup::Current(v.into_record()),
            RefreshView::Retired => RefreshLookup::Retired,
            RefreshView::Unknown => RefreshLookup::Unknown,
        })
    }

    async fn rotate_refresh(
        &self,
        old: SecretKey,
        tokens: NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut guard = self.grant_shard(old.grant);
        let shard = &mut *guard;
        let Some(g) = shard.grants.get_mut(&old.grant) else {
            return Ok(false);
        };
        let (access, refresh, until) = shard.metas.stored(tokens);
        let rotated = g.rotate_refresh(old.hash, access, refresh, until, now);
        drop(guard);
        self.wrote(now);
        Ok(rotated)
    }

    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError> {
        let mut shard = self.grant_shard(token.grant);
        if let Some(g) = shard.grants.get_mut(&token.grant) {
            g.revoke_access_token(token.hash);
            if g.is_void() {
                shard.grants.remove(&token.grant);
            }
        }
        Ok(())
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        // A grant nothing was issued into yet is remembered as revoked, so
        // that "any [token] issued later is dead" holds for it too (a
        // grant of one's own may revoke first), for a day as the Redis
        // store's marker; then swept.
        let until = OffsetDateTime::now_utc() + REVOKED_UNKNOWN_GRANT_KEPT;
        self.grant_shard(grant)
            .grants
            .get_or_insert_with(grant, || Grant::new(until))
            .revoke();
        Ok(())
    }

    /// Always at hand: the codes are in memory.
    fn codes_at_hand(&self) -> Option<&dyn CodesAtHand> {
        Some(self)
    }
}

/// The code steps themselves; the async [`GrantStore`] methods call these.
impl CodesAtHand for MemoryStore {
    fn put_code_now(
        &self,
        code: SecretKey,
        record: tessera::storage::CodeRecord,
    ) -> Result<(), StoreError> {
        self.grant_shard(code.grant)
            .grants
            .get_or_insert_with(code.grant, || Grant::new(record.expires_at))
            .put_code(code.hash, record);
        self.wrote(code.grant.began());
        Ok(())
    }

    fn take_code_now(&self, code: SecretKey, now: OffsetDateTime) -> Result<CodeTake, StoreError> {
        let take = {
            let mut shard = self.grant_shard(code.grant);
            match shard.grants.get_mut(&code.grant) {
                Some(g) => g.take_code(code.hash, now),
                None => Take::Unknown,
            }
        };
        Ok(match take {
            Take::Taken(record) => CodeTake::Taken(*record),
            Take::AlreadyTaken => CodeTake::AlreadyTaken,
            Take::Unknown => CodeTake::Unknown,
        })
    }
}

/// Device authorization requests, by device code and by user code (both
/// hashes). Few and short-lived: one lock.
#[derive(Default)]
struct Devices {
    by_device: HashMap<TokenHash, (TokenHash, DeviceRecord)>,
    by_user_code: HashMap<TokenHash, TokenHash>,
}

/// How long an expired device request is kept, so that a late poll hears
/// `expired_token` rather than `invalid_grant` (RFC 8628 §3.5).
const DEVICE_GRACE: time::Duration = time::Duration::minutes(10);

impl Devices {
    fn remove(&mut self, device: &TokenHash) {
        if let Some((user_code, _)) = self.by_device.remove(device) {
            self.by_user_code.remove(&user_code);
        }
    }

    fn sweep(&mut self, now: OffsetDateTime) {
        let gone: Vec<TokenHash> = self
            .by_device
            .iter()
            .filter(|(_, (_, r))| r.expires_at + DEVICE_GRACE <= now)
            .map(|(k, _)| *k)
            .collect();
        for device in gone {
            self.remove(&device);
        }
    }
}

impl MemoryStore {
    fn devices(&self) -> std::sync::MutexGuard<'_, Devices> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn put_device(
        &self,
        device: SecretKey,
        user_code: TokenHash,
        record: DeviceRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut devices = self.devices();
        if let Some(existing) = devices.by_user_code.get(&user_code).copied() {
            let live = devices
                .by_device
                .get(&existing)
                .is_some_and(|(_, r)| r.expires_at > now);
            if live {
                return Ok(false);
            }
            devices.remove(&existing);
        }
        devices.by_user_code.insert(user_code, device.hash);
        devices.by_device.insert(device.hash, (user_code, record));
        drop(devices);
        self.wrote(now);
        Ok(true)
    }

    async fn device_by_user_code(
        &self,
        user_code: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let devices = self.devices();
        Ok(devices
            .by_user_code
            .get(&user_code)
            .and_then(|d| devices.by_device.get(d))
            .filter(|(_, r)| r.expires_at > now)
            .map(|(_, r)| r.clone()))
    }

    async fn decide_device(
        &self,
        user_code: TokenHash,
        decision: DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut devices = self.devices();
        let Some(device) = devices.by_user_code.get(&user_code).copied() else {
            return Ok(false);
        };
        match devices.by_device.get_mut(&device) {
            Some((_, r)) if r.expires_at > now && r.status == DeviceStatus::Pending => {
                r.status = decision;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn poll_device(
        &self,
        device: SecretKey,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        let mut devices = self.devices();
        let Some((user_code, record)) = devices.by_device.remove(&device.hash) else {
            return Ok(DevicePoll::Unknown);
        };
        let (answer, keep) = record.poll(client, now);
        match keep {
            Some(record) => {
                devices.by_device.insert(device.hash, (user_code, record));
            }
            None => {
                devices.by_user_code.remove(&user_code);
            }
        }
        Ok(answer)
    }
}

#[async_trait]
impl PendingStore for MemoryStore {
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError> {
        self.put_pending_now(handle, Box::new(request))
            .map_err(|(e, _)| e)
    }

    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let shard = self.pending_shard(handle);
        Ok(shard
            .get(&handle)
            .filter(|p| p.expires_at > now)
            .map(|p| PendingAuthorization::clone(p)))
    }

    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.take_pending_now(handle, now)
    }

    /// Always at hand: the pending requests are in memory.
    fn pending_at_hand(&self) -> Option<&dyn PendingAtHand> {
        Some(self)
    }
}

/// The pending-request steps themselves; the async [`PendingStore`]
/// methods call these.
impl PendingAtHand for MemoryStore {
    fn put_pending_now(
        &self,
        handle: SecretKey,
        request: Box<PendingAuthorization>,
    ) -> Result<(), (StoreError, Box<PendingAuthorization>)> {
        let replaced = self.pending_shard(handle).insert(handle, request);
        drop(replaced); // outside the lock
        self.wrote(handle.grant.began());
        Ok(())
    }

    fn take_pending_now(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let taken = {
            let mut shard = self.pending_shard(handle);
            match shard.get(&handle) {
                Some(p) if p.expires_at > now => shard.remove(&handle),
                _ => None,
            }
        };
        Ok(taken.map(|p| *p))
    }
}

/// Bounded per namespace; see [`MemoryStore::with_replay_capacity`].
#[async_trait]
impl ReplayStore for MemoryStore {
    async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let first = self.replay.first_use(key, expires_at, now);
        self.wrote(now);
        first
    }
}
