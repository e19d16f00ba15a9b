//! The abuse hook: one place that bounds how often an unauthenticated
//! caller may try something that guesses a secret or makes the server keep
//! state (RFC 6749 §10.10, RFC 6819 §4.4.1.3, §5.1.4.2.3).
//!
//! The core consults it for client-secret failures at every back-channel
//! endpoint; the embedder's login page uses the same limiter for wrong
//! passwords ([`Server::check_limit`](crate::Server::check_limit),
//! [`Server::record_attempt`](crate::Server::record_attempt)), so one policy
//! and one table cover both.
//!
//! The built-in [`MemoryRateLimiter`] counts attempts per key in fixed
//! windows, in a table whose size is bounded (a flood of distinct keys
//! evicts the windows with the fewest attempts, never grows memory, never
//! unlocks a locked key while others remain to evict, and never stops
//! counting) and whose keys are 64-bit
//! hashes keyed at random per process (the table never holds what people
//! typed, and nobody can aim collisions at a chosen account). It is per process;
//! a deployment of many instances that wants one shared count implements
//! [`RateLimiter`] over its shared store.
//!
//! **One host's share.** A budget that anybody can spend (the one count
//! all self-registered clients share, a public client's id, open
//! registration) is also counted per [`SourceNetwork`] when the adapter
//! says where the request came from ([`HttpRequest::peer`](crate::HttpRequest::peer)),
//! with a tenth of the budget each by default
//! ([`MemoryRateLimiter::with_network_limit`]): a flood from one host
//! (RFC 6819 §4.4.1.11) spends at most that tenth, and the others' requests
//! still pass. Behind a reverse proxy every request comes from the proxy:
//! have the adapter pass the client's address (see its docs), or lift the
//! per-network limits.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use foldhash::quality::RandomState;
use time::{Duration, OffsetDateTime};

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// A wrong password at the embedder's login form, keyed by account
    /// (RFC 6749 §10.10: the server must prevent guessing).
    LoginFailure,
    /// A failed client authentication at a back-channel endpoint, keyed by
    /// `client_id` (RFC 6819 §5.1.4.2.3, brute force of client secrets).
    ClientAuthenticationFailure,
    /// A wrong secret of a client whose secret is hashed with a slow,
    /// low-entropy scheme (Argon2id), keyed by `client_id`: limited by
    /// default, since such a secret can be guessed and every guess costs
    /// the server a slow hash.
    SlowSecretFailure,
    /// A device authorization request, keyed by `client_id`: public
    /// clients make them without a secret, and each is kept for minutes.
    DeviceAuthorization,
    /// A wrong user code typed on the verification page, keyed by whoever
    /// types (RFC 8628 §5.1: user codes can be guessed otherwise).
    UserCodeEntry,
    /// A pushed authorization request, keyed by `client_id`: public clients
    /// push without a secret, and each is kept until used or expired.
    PushedAuthorization,
    /// A dynamic client registration (RFC 7591), keyed by the initial
    /// access token's hash, or one key for everybody when registration is
    /// open: each is a client record kept until it expires unused.
    ClientRegistration,
    /// A fetch of a client ID metadata document, keyed by the host of its
    /// URL (draft-ietf-oauth-client-id-metadata-document §6.5): anyone can
    /// name any URL as a `client_id`, so fetches from one host are bounded,
    /// and the server cannot be turned into a flood against a host.
    ClientMetadataFetch,
    /// A DPoP proof presented at the token or pushed authorization request
    /// endpoint by a client that registered itself (RFC 7591), is a client
    /// ID metadata document or is public (no authentication: anybody can
    /// present its id, the operator's public clients too), or at a
    /// resource with such a client's token, counted once it verifies and
    /// before it is kept, all such clients under one key: each proof's
    /// `jti` is kept in the replay cache for the acceptance window (RFC 9449
    /// §11.1), and anybody can act as such a client, so without this bound
    /// one of them could fill the cache and refuse every other client's
    /// DPoP requests. Confidential clients the operator registered are not
    /// counted. The price: one such client sending valid proofs at the
    /// limit's rate holds up the DPoP requests of the others (never the
    /// operator's confidential clients), as one key for all open
    /// registrations does.
    DpopProof,
    /// A `private_key_jwt` client assertion (RFC 7523) of a client that
    /// registered itself with its own keys, all such clients under one key:
    /// each assertion's `jti` is kept in the replay cache until its `exp` (plus the skew)
    /// (up to 5 minutes), as with [`Action::DpopProof`].
    ClientAssertion,
    /// A consent prompt kept for a signed-in owner, keyed by the owner's
    /// subject: each stores the pending request until it is decided or
    /// expires (10 minutes by default), and a signed-in account (anyone's,
    /// where accounts are open) could otherwise store requests as fast as
    /// it can send them. A decided prompt is forgiven
    /// ([`RateLimiter::forgive`]): it keeps nothing any more.
    ConsentPrompt,
}

impl Action {
    /// A short name, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::LoginFailure => "login_failure",
            Self::ClientAuthenticationFailure => "client_authentication_failure",
            Self::SlowSecretFailure => "slow_secret_failure",
            Self::DeviceAuthorization => "device_authorization",
            Self::UserCodeEntry => "user_code_entry",
            Self::PushedAuthorization => "pushed_authorization",
            Self::ClientRegistration => "client_registration",
            Self::ClientMetadataFetch => "client_metadata_fetch",
            Self::DpopProof => "dpop_proof",
            Self::ClientAssertion => "client_assertion",
            Self::ConsentPrompt => "consent_prompt",
        }
    }
}

/// The network a request came from, as one host's share of a budget is
/// counted: an IPv4 address, or the /64 of an IPv6 one (the smallest block
/// a subscriber is given: counting single IPv6 addresses would give one
/// host 2^64 shares). RFC 6177 §3 advises giving end sites more, a /56 or
/// a /48, so such a subscriber holds 256 or 65,536 networks: the budget
/// itself still bounds them together, as it bounds many hosts. An IPv4-mapped IPv6
/// address (`::ffff:a.b.c.d`, a dual-stack socket's view of an IPv4 peer)
/// counts as its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceNetwork(IpAddr);

impl SourceNetwork {
    /// The network of the address `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }

    /// The network's first address: the IPv4 address itself, or the /64's
    /// prefix with the rest zero.
    pub fn address(&self) -> IpAddr {
        self.0
    }
}

impl From<IpAddr> for SourceNetwork {
    fn from(ip: IpAddr) -> Self {
        Self::of(ip)
    }
}

impl std::fmt::Display for SourceNetwork {
    /// `203.0.113.7`, or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// How many attempts a key may make in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limit {
    /// Attempts allowed in one window.
    pub max: u32,
    /// The window, counted from the first attempt in it.
    pub window: Duration,
}

impl Limit {
    /// `max` attempts per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

/// The answer when a key has used up its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; try again at {retry_at}")]
#[non_exhaustive]
pub struct Limited {
    /// When the key may try again.
    pub retry_at: OffsetDateTime,
}

impl Limited {
    /// Whole seconds from `now` until the key may try again (at least 1),
    /// for a `Retry-After` header (RFC 9110 §10.2.3).
    pub fn retry_after_secs(&self, now: OffsetDateTime) -> u64 {
        // Rounded up: a client that waits exactly this long is not early.
        let left = self.retry_at - now;
        let whole = left.whole_seconds() + i64::from(left.subsec_nanoseconds() > 0);
        u64::try_from(whole.max(1)).unwrap_or(1)
    }
}

/// Counts attempts and says when a key must wait.
///
/// `check` comes before the attempt (a limited key is refused without the
/// secret even being compared); `record` after a failed one. Both run on
/// every client authentication, so they are synchronous and must be cheap:
/// never block on I/O (a limiter shared by many instances keeps a local
/// view and syncs it in the background). They must not fail: a limiter
/// that cannot count lets the attempt through and logs why, so that its own
/// trouble never locks everyone out.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// `Err` while `key` has used up its attempts at `action`.
    fn check(&self, action: Action, key: &str, now: OffsetDateTime) -> Result<(), Limited>;

    /// Records one attempt (a failure, for the failure actions).
    fn record(&self, action: Action, key: &str, now: OffsetDateTime);

    /// [`check`](Self::check) and, if the key may try, [`record`](Self::record)
    /// one attempt: for actions counted whatever their outcome (a consent
    /// prompt kept, a request kept). The default calls the two; the
    /// built-in limiter does both under one lock and one lookup.
    fn acquire(&self, action: Action, key: &str, now: OffsetDateTime) -> Result<(), Limited> {
        self.check(action, key, now)?;
        self.record(action, key, now);
        Ok(())
    }

    /// Takes back one attempt recorded for `key` in its current window: an
    /// attempt counted before its outcome was known (so that concurrent
    /// ones cannot all pass the check) that turned out right, such as a
    /// user code that was found. The default keeps it counted, which only
    /// errs on the strict side.
    fn forgive(&self, action: Action, key: &str, now: OffsetDateTime) {
        let _ = (action, key, now);
    }

    /// `false` when no key is limited or close to it, so that a check may
    /// be skipped (without even reading the clock). The default, `true`,
    /// always checks.
    fn is_counting(&self) -> bool {
        true
    }

    /// Checks and counts one request at `action` from `network`: one
    /// host's share of a budget anybody can spend, counted with that
    /// budget (the module docs say which). The default counts nothing, so
    /// a limiter of one's own keeps only the budgets it counts by key.
    fn acquire_from(
        &self,
        action: Action,
        network: SourceNetwork,
        now: OffsetDateTime,
    ) -> Result<(), Limited> {
        let _ = (action, network, now);
        Ok(())
    }
}

/// Whose count a window is: a key the caller named, or a network
/// ([`RateLimiter::acquire_from`]), each with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Counted {
    Key,
    Network,
}

/// A window's place in the table: the action, whose count, and the key's
/// or network's keyed hash.
type WindowId = (Action, Counted, u64);

/// The built-in limiter: fixed windows per (action, key) in a bounded
/// in-process table.
///
/// Defaults: 5 wrong passwords per account per 15 minutes (the demo
/// contract's rule), 6,000 device authorization requests and 6,000 pushed
/// authorization requests per client per minute (what bounds the state a
/// public client's id can make the server keep, high enough that nobody can
/// starve a client's real users with it), 10 wrong user codes per person
/// per 15 minutes, 120 client registrations per minute (per initial
/// access token, or in all when registration is open), 10 wrong secrets
/// per minute for a client whose secret is an Argon2id hash
/// ([`Action::SlowSecretFailure`]), 30 fetches of client ID metadata
/// documents per host per minute ([`Action::ClientMetadataFetch`]), 60,000
/// DPoP proofs per minute from all self-registered and public clients together
/// ([`Action::DpopProof`]: with proofs kept about 65 s, at most about a
/// quarter of the memory store's replay cache, 250,000 entries), 10,000
/// client assertions per minute from all self-registered clients together
/// ([`Action::ClientAssertion`]: kept up to 5 minutes, at most a fifth of
/// it), 60 consent prompts per owner per minute ([`Action::ConsentPrompt`];
/// a prompt the owner decides is forgiven, so only waiting ones count: at
/// most 660 kept per account with the default 10-minute lifetime); at
/// most 100,000 keys counted at once. Per [`SourceNetwork`], a tenth of
/// each budget anybody can spend ([`RateLimiter::acquire_from`]): 12
/// open registrations, 600 pushed and 600 device authorization requests
/// of clients anyone can act as, 6,000 DPoP proofs and 1,000 client
/// assertions of unvetted clients, per minute. Wrong client
/// secrets are counted but not limited unless you add a limit for
/// [`Action::ClientAuthenticationFailure`] (for low-entropy secrets; know
/// that anyone with the client id can then lock the client out).
#[derive(Debug)]
pub struct MemoryRateLimiter {
    limits: Vec<(Action, Limit)>,
    /// One network's share ([`RateLimiter::acquire_from`]).
    network_limits: Vec<(Action, Limit)>,
    capacity: usize,
    keys: RandomState,
    windows: Mutex<HashMap<WindowId, Window, RandomState>>,
    /// The table's size, readable without the lock: while nothing was
    /// counted (no failures, no consent prompts), a check costs one atomic
    /// load; and an action without a limit never takes the lock.
    counted: AtomicUsize,
    /// When locks were last forgotten to make room: the warning is logged
    /// at most once a second, not on every attempt of a flood.
    warned_at: Mutex<Option<OffsetDateTime>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: OffsetDateTime,
    count: u32,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        let per_minute = |max| Limit::new(max, Duration::minutes(1));
        Self::new()
            .with_limit(Action::LoginFailure, Limit::new(5, Duration::minutes(15)))
            .with_limit(Action::DeviceAuthorization, per_minute(6_000))
            .with_limit(Action::UserCodeEntry, Limit::new(10, Duration::minutes(15)))
            .with_limit(Action::PushedAuthorization, per_minute(6_000))
            .with_limit(Action::ClientRegistration, per_minute(120))
            .with_limit(Action::SlowSecretFailure, per_minute(10))
            .with_limit(Action::ClientMetadataFetch, per_minute(30))
            .with_limit(Action::DpopProof, per_minute(60_000))
            .with_limit(Action::ClientAssertion, per_minute(10_000))
            .with_limit(Action::ConsentPrompt, per_minute(60))
            // A tenth of each budget anybody can spend, per network: one
            // host spends at most that, and ten must join to spend it all.
            .with_network_limit(Action::ClientRegistration, per_minute(12))
            .with_network_limit(Action::PushedAuthorization, per_minute(600))
            .with_network_limit(Action::DeviceAuthorization, per_minute(600))
            .with_network_limit(Action::DpopProof, per_minute(6_000))
            .with_network_limit(Action::ClientAssertion, per_minute(1_000))
    }
}

impl MemoryRateLimiter {
    /// A limiter that limits nothing until limits are added.
    pub fn new() -> Self {
        Self {
            limits: Vec::new(),
            network_limits: Vec::new(),
            capacity: 100_000,
            keys: RandomState::default(),
            windows: Mutex::new(HashMap::with_hasher(RandomState::default())),
            counted: AtomicUsize::new(0),
            warned_at: Mutex::new(None),
        }
    }

    /// Limits `action` to `limit`.
    #[must_use]
    pub fn with_limit(mut self, action: Action, limit: Limit) -> Self {
        self.limits.retain(|(a, _)| *a != action);
        self.limits.push((action, limit));
        self
    }

    /// Limits one network's share of `action` to `limit`
    /// ([`RateLimiter::acquire_from`]): what one host may spend of a budget
    /// anybody can spend. Behind a reverse proxy that the adapter cannot
    /// see past, every request is the proxy's: raise it, or drop it with
    /// [`without_network_limits`](Self::without_network_limits).
    #[must_use]
    pub fn with_network_limit(mut self, action: Action, limit: Limit) -> Self {
        self.network_limits.retain(|(a, _)| *a != action);
        self.network_limits.push((action, limit));
        self
    }

    /// Counts nothing per network: only the budgets themselves.
    #[must_use]
    pub fn without_network_limits(mut self) -> Self {
        self.network_limits.clear();
        self
    }

    fn limit(&self, action: Action) -> Option<Limit> {
        self.limits
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, l)| *l)
    }

    fn limit_of(&self, (action, counted, _): &WindowId) -> Option<Limit> {
        match counted {
            Counted::Key => self.limit(*action),
            Counted::Network => self
                .network_limits
                .iter()
                .find(|(a, _)| a == action)
                .map(|(_, l)| *l),
        }
    }

    /// Counts at most `capacity` keys at once (at least 1).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    fn key(&self, action: Action, key: &str) -> WindowId {
        (action, Counted::Key, self.keys.hash_one(key))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<WindowId, Window, RandomState>> {
        // A panic elsewhere while holding the lock leaves counts that are
        // still counts: keep using them.
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn is_counting(&self) -> bool {
        self.counted.load(Ordering::Relaxed) > 0
    }

    fn forgive(&self, action: Action, key: &str, now: OffsetDateTime) {
        let Some(limit) = self.limit(action) else {
            return;
        };
        let mut table = self.table();
        if let Some(w) = table.get_mut(&self.key(action, key))
            && now < w.start + limit.window
        {
            w.count = w.count.saturating_sub(1);
        }
    }

    fn check(&self, action: Action, key: &str, now: OffsetDateTime) -> Result<(), Limited> {
        // Nothing counted at all: nobody is limited. (A count being added
        // right now may be missed by one concurrent check, no more.)
        if self.counted.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let Some(limit) = self.limit(action) else {
            return Ok(());
        };
        let table = self.table();
        match table.get(&self.key(action, key)) {
            Some(w) if w.count >= limit.max && now < w.start + limit.window => Err(Limited {
                retry_at: w.start + limit.window,
            }),
            _ => Ok(()),
        }
    }

    fn acquire(&self, action: Action, key: &str, now: OffsetDateTime) -> Result<(), Limited> {
        let Some(limit) = self.limit(action) else {
            return Ok(());
        };
        self.acquire_in(self.key(action, key), limit, now)
    }

    fn acquire_from(
        &self,
        action: Action,
        network: SourceNetwork,
        now: OffsetDateTime,
    ) -> Result<(), Limited> {
        let id = (action, Counted::Network, self.keys.hash_one(network));
        let Some(limit) = self.limit_of(&id) else {
            return Ok(());
        };
        self.acquire_in(id, limit, now)
    }

    fn record(&self, action: Action, key: &str, now: OffsetDateTime) {
        let Some(limit) = self.limit(action) else {
            return;
        };
        let id = self.key(action, key);
        let mut table = self.table();
        self.record_in(&mut table, id, limit, now);
    }
}

impl MemoryRateLimiter {
    /// Checks and counts one attempt of `id` under one lock and lookup.
    fn acquire_in(&self, id: WindowId, limit: Limit, now: OffsetDateTime) -> Result<(), Limited> {
        let mut table = self.table();
        if let Some(w) = table.get_mut(&id)
            && now < w.start + limit.window
        {
            if w.count >= limit.max {
                return Err(Limited {
                    retry_at: w.start + limit.window,
                });
            }
            w.count = w.count.saturating_add(1);
            return Ok(());
        }
        self.record_in(&mut table, id, limit, now);
        Ok(())
    }

    /// Counts one attempt of `id` in `table` (the lock held), making room
    /// first when the table is full.
    fn record_in(
        &self,
        table: &mut HashMap<WindowId, Window, RandomState>,
        id: WindowId,
        limit: Limit,
        now: OffsetDateTime,
    ) {
        if !table.contains_key(&id) && table.len() >= self.capacity {
            // Full: drop the windows that are over, then, until a tenth of
            // the table is free, the unlocked counts with the fewest
            // attempts (the oldest among equals), and only when none is left
            // (a table of locks) the locks that began first. A flood of new
            // keys (one attempt each) is forgotten before any count that has
            // more: to wipe a guesser's count of n, a flood must make n
            // attempts for every key, and the count all self-registered
            // clients share (`Action::DpopProof`, ...), in the thousands
            // under such load, outlives any flood. Freeing a tenth each time
            // pays the O(n) sweep under the lock once per tenth of the
            // capacity. Not counting new keys instead would turn every limit
            // off, the shared ones included: a guesser's lock is forgotten
            // (5 more guesses) only after a flood has locked nine tenths of
            // the capacity anew (450,000 wrong passwords by default).
            let locked = |k: &WindowId, w: &Window| {
                self.limit_of(k)
                    .is_some_and(|l| w.count >= l.max && now < w.start + l.window)
            };
            table.retain(|k, w| self.limit_of(k).is_some_and(|l| now < w.start + l.window));
            let room = self.capacity.saturating_sub((self.capacity / 10).max(1));
            if table.len() > room {
                // Absolute counts, not counts against each limit: a share
                // of a large limit (60,000 proofs a minute) would rank a
                // shared count in the thousands below one wrong password.
                let mut order: Vec<(bool, u32, OffsetDateTime, WindowId)> = table
                    .iter()
                    .map(|(k, w)| {
                        let lock = locked(k, w);
                        (lock, if lock { 0 } else { w.count }, w.start, *k)
                    })
                    .collect();
                let excess = table.len() - room;
                if excess < order.len() {
                    order.select_nth_unstable(excess);
                }
                let mut locks_forgotten = false;
                for (lock, _, _, k) in order.iter().take(excess) {
                    locks_forgotten |= *lock;
                    table.remove(k);
                }
                let mut warned_at = self.warned_at.lock().unwrap_or_else(|p| p.into_inner());
                if locks_forgotten && !warned_at.is_some_and(|at| now < at + Duration::seconds(1)) {
                    tracing::warn!(
                        action = id.0.name(),
                        capacity = self.capacity,
                        "rate-limit table full of locked keys; forgetting the oldest locks"
                    );
                    *warned_at = Some(now);
                }
            }
        }
        let window = table.entry(id).or_insert(Window {
            start: now,
            count: 0,
        });
        if now >= window.start + limit.window {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
        self.counted.store(table.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn five_failures_per_fifteen_minutes_then_retry_after_the_window() {
        let l = MemoryRateLimiter::default();
        for i in 0..5 {
            assert!(l.check(Action::LoginFailure, "alice", T0).is_ok(), "{i}");
            l.record(Action::LoginFailure, "alice", T0 + Duration::seconds(i));
        }
        let limited = l
            .check(Action::LoginFailure, "alice", T0 + Duration::minutes(1))
            .unwrap_err();
        assert_eq!(limited.retry_at, T0 + Duration::minutes(15));
        assert_eq!(limited.retry_after_secs(T0 + Duration::minutes(14)), 60);
        // Rounded up, so waiting that long is never early; at least 1.
        let almost = T0 + Duration::minutes(14) + Duration::milliseconds(500);
        assert_eq!(limited.retry_after_secs(almost), 60);
        assert_eq!(limited.retry_after_secs(T0 + Duration::minutes(16)), 1);
        // Another account, and another action, are not affected.
        assert!(l.check(Action::LoginFailure, "bob", T0).is_ok());
        assert!(
            l.check(Action::ClientAuthenticationFailure, "alice", T0)
                .is_ok()
        );
        // After the window the account may try again, and counts anew.
        let later = T0 + Duration::minutes(15);
        assert!(l.check(Action::LoginFailure, "alice", later).is_ok());
        l.record(Action::LoginFailure, "alice", later);
        assert!(l.check(Action::LoginFailure, "alice", later).is_ok());
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_keys() {
        let l = MemoryRateLimiter::default().with_capacity(100);
        for i in 0..10_000 {
            l.record(Action::LoginFailure, &format!("user{i}"), T0);
        }
        assert!(l.table().len() <= 100);
        // The newest keys are still counted.
        for _ in 0..5 {
            l.record(Action::LoginFailure, "victim", T0);
        }
        assert!(l.check(Action::LoginFailure, "victim", T0).is_err());
    }

    #[test]
    fn a_flood_of_other_keys_cannot_unlock_a_locked_key() {
        let l = MemoryRateLimiter::default().with_capacity(50);
        for _ in 0..5 {
            l.record(Action::LoginFailure, "alice", T0);
        }
        for i in 0..10_000 {
            l.record(
                Action::LoginFailure,
                &format!("x{i}"),
                T0 + Duration::seconds(1),
            );
        }
        assert!(
            l.check(Action::LoginFailure, "alice", T0 + Duration::minutes(1))
                .is_err()
        );
    }

    /// A table full of locked keys (a flood of made-up accounts, five wrong
    /// passwords each) must not switch the limits off: a new account is
    /// still counted and locked, and so is a shared key.
    #[test]
    fn a_table_full_of_locked_keys_still_counts_new_keys() {
        let l = MemoryRateLimiter::default().with_capacity(10);
        for i in 0..10 {
            for _ in 0..5 {
                l.record(Action::LoginFailure, &format!("x{i}"), T0);
            }
        }
        let later = T0 + Duration::seconds(1);
        for _ in 0..20 {
            l.record(Action::LoginFailure, "alice", later);
        }
        assert!(l.check(Action::LoginFailure, "alice", later).is_err());
        for _ in 0..120 {
            l.record(Action::ClientRegistration, "open", later);
        }
        assert!(l.check(Action::ClientRegistration, "open", later).is_err());
        assert!(l.table().len() <= 10);
        // The locks forgotten to make room are the oldest: the two newest
        // (alice and the shared key) survive a further flood of locks
        // until nine tenths of the table is locked anew.
        for i in 10..17 {
            for _ in 0..5 {
                l.record(Action::LoginFailure, &format!("x{i}"), later);
            }
        }
        assert!(l.check(Action::LoginFailure, "alice", later).is_err());
        assert!(l.check(Action::ClientRegistration, "open", later).is_err());
    }

    /// A table of locks with a few unlocked keys among them: every sweep
    /// still frees a tenth of the table, so a flood of new keys (one wrong
    /// password each) pays the O(n) sweep once per tenth of the capacity,
    /// not on every attempt.
    #[test]
    fn every_sweep_frees_a_tenth_of_the_table() {
        let l = MemoryRateLimiter::default().with_capacity(100);
        for i in 0..99 {
            for _ in 0..5 {
                l.record(Action::LoginFailure, &format!("locked{i}"), T0);
            }
        }
        l.record(Action::LoginFailure, "one", T0);
        assert_eq!(l.table().len(), 100);
        l.record(Action::LoginFailure, "new0", T0);
        let after = l.table().len();
        assert!(after <= 91, "{after}");
        // The next nine new keys fit without a sweep.
        for i in 1..10 {
            l.record(Action::LoginFailure, &format!("new{i}"), T0);
        }
        assert_eq!(l.table().len(), after + 9);
    }

    #[test]
    fn acquire_checks_and_counts_at_once() {
        let l = MemoryRateLimiter::default();
        for i in 0..60 {
            assert!(l.acquire(Action::ConsentPrompt, "alice", T0).is_ok(), "{i}");
        }
        let refused = l.acquire(Action::ConsentPrompt, "alice", T0).unwrap_err();
        assert_eq!(refused.retry_at, T0 + Duration::minutes(1));
        assert!(l.check(Action::ConsentPrompt, "alice", T0).is_err());
        assert!(l.acquire(Action::ConsentPrompt, "bob", T0).is_ok());
        let later = T0 + Duration::minutes(1);
        assert!(l.acquire(Action::ConsentPrompt, "alice", later).is_ok());
        // An action without a limit is never refused nor counted.
        let none = MemoryRateLimiter::new();
        for _ in 0..100 {
            assert!(none.acquire(Action::ConsentPrompt, "alice", T0).is_ok());
        }
        assert!(!none.is_counting());
    }

    /// A guesser's lock, a few more locks, then a flood of one-attempt
    /// keys: the sweeps forget the flood's keys, never the lock, while
    /// unlocked keys remain.
    #[test]
    fn a_flood_of_unlocked_keys_never_forgets_a_lock() {
        let l = MemoryRateLimiter::default().with_capacity(1_000);
        for _ in 0..5 {
            l.record(Action::LoginFailure, "alice", T0);
        }
        for i in 0..20 {
            for _ in 0..5 {
                l.record(Action::LoginFailure, &format!("locked{i}"), T0);
            }
        }
        for i in 0..20_000 {
            l.record(
                Action::LoginFailure,
                &format!("x{i}"),
                T0 + Duration::milliseconds(i),
            );
            assert!(
                l.check(Action::LoginFailure, "alice", T0 + Duration::seconds(30))
                    .is_err(),
                "alice's lock forgotten after {i} keys"
            );
        }
    }

    #[test]
    fn a_flood_of_new_keys_cannot_reset_a_count_under_way() {
        // With the default limits: 4 of 5 wrong passwords for alice, and
        // a shared count of proofs far from its 60,000 a minute; a flood
        // of one-attempt keys is forgotten first.
        let l = MemoryRateLimiter::default().with_capacity(50);
        for _ in 0..4 {
            l.record(Action::LoginFailure, "alice", T0);
        }
        for _ in 0..50 {
            l.record(Action::DpopProof, "self-registered clients", T0);
        }
        for i in 0..10_000 {
            l.record(
                Action::LoginFailure,
                &format!("x{i}"),
                T0 + Duration::seconds(1),
            );
        }
        assert!(l.table().len() <= 50);
        let later = T0 + Duration::seconds(2);
        l.record(Action::LoginFailure, "alice", later);
        assert!(l.check(Action::LoginFailure, "alice", later).is_err());
        // The shared count kept its 50: 59,950 more reach the limit.
        for _ in 0..59_949 {
            l.record(Action::DpopProof, "self-registered clients", later);
        }
        assert!(
            l.check(Action::DpopProof, "self-registered clients", later)
                .is_ok()
        );
        l.record(Action::DpopProof, "self-registered clients", later);
        assert!(
            l.check(Action::DpopProof, "self-registered clients", later)
                .is_err()
        );
    }

    #[test]
    fn unlimited_actions_pass() {
        let l = MemoryRateLimiter::new();
        for _ in 0..100 {
            l.record(Action::LoginFailure, "a", T0);
        }
        assert!(l.check(Action::LoginFailure, "a", T0).is_ok());
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_network_is_an_ipv4_address_or_an_ipv6_64_rfc6177_3() {
        let n = |t| SourceNetwork::of(ip(t));
        assert_eq!(n("203.0.113.7").to_string(), "203.0.113.7");
        assert_ne!(n("203.0.113.7"), n("203.0.113.8"));
        // One /64 is one host's: every address in it counts together.
        assert_eq!(n("2001:db8:1:2::1"), n("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(n("2001:db8:1:2:ffff::9").to_string(), "2001:db8:1:2::/64");
        assert_ne!(n("2001:db8:1:2::1"), n("2001:db8:1:3::1"));
        // A dual-stack socket's view of an IPv4 peer is that peer.
        assert_eq!(n("::ffff:203.0.113.7"), n("203.0.113.7"));
        assert_eq!(n("::ffff:203.0.113.7").address(), ip("203.0.113.7"));
    }

    #[test]
    fn a_network_spends_its_share_and_others_keep_theirs() {
        let l = MemoryRateLimiter::new()
            .with_limit(Action::DpopProof, Limit::new(100, Duration::minutes(1)))
            .with_network_limit(Action::DpopProof, Limit::new(3, Duration::minutes(1)));
        let a = SourceNetwork::of(ip("2001:db8::1"));
        let a_too = SourceNetwork::of(ip("2001:db8::2"));
        let b = SourceNetwork::of(ip("198.51.100.1"));
        for _ in 0..3 {
            assert!(l.acquire_from(Action::DpopProof, a, T0).is_ok());
        }
        let limited = l.acquire_from(Action::DpopProof, a_too, T0).err();
        assert_eq!(limited.map(|e| e.retry_at), Some(T0 + Duration::minutes(1)));
        assert!(l.acquire_from(Action::DpopProof, b, T0).is_ok());
        // The budget itself, counted by key, is another count.
        assert!(l.acquire(Action::DpopProof, "shared", T0).is_ok());
        // Another action's share is its own, and unlimited without a limit.
        for _ in 0..10 {
            assert!(l.acquire_from(Action::PushedAuthorization, a, T0).is_ok());
        }
        // The window passes.
        let later = T0 + Duration::minutes(1);
        assert!(l.acquire_from(Action::DpopProof, a, later).is_ok());
        // Without network limits, nothing is counted per network.
        let off = MemoryRateLimiter::default().without_network_limits();
        for _ in 0..20 {
            assert!(off.acquire_from(Action::ClientRegistration, a, T0).is_ok());
        }
    }

    #[test]
    fn the_defaults_give_a_network_a_tenth_of_each_open_budget() {
        let l = MemoryRateLimiter::default();
        let a = SourceNetwork::of(ip("192.0.2.1"));
        for (action, share) in [
            (Action::ClientRegistration, 12),
            (Action::PushedAuthorization, 600),
            (Action::DeviceAuthorization, 600),
            (Action::DpopProof, 6_000),
            (Action::ClientAssertion, 1_000),
        ] {
            let budget = l.limit(action).map(|b| b.max);
            // Registrations: 120 in all; the others' budgets as documented.
            assert_eq!(budget, Some(share * 10), "{action:?}");
            for _ in 0..share {
                assert!(l.acquire_from(action, a, T0).is_ok(), "{action:?}");
            }
            assert!(l.acquire_from(action, a, T0).is_err(), "{action:?}");
        }
        // Actions that are no open budget have no share.
        assert!(l.acquire_from(Action::LoginFailure, a, T0).is_ok());
    }
}
