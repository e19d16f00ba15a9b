//! One grant's records, kept together and compact.
//!
//! A client-credentials grant with one access token is the common case, and
//! the one the memory bar is set on: it costs one `Grant` (120 bytes, its one
//! [`StoredToken`] of 88 bytes held inline), plus the map slot. What
//! a token *says* (client, subject, scope) is interned in a [`Meta`] shared
//! by every token that says the same thing, so a scope's `BTreeSet` is not
//! copied into each of a million tokens.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use foldhash::fast::RandomState;
use tessera::storage::{
    Actor, CodeRecord, MAX_ACCESS_TOKENS_PER_GRANT, MAX_RETIRED_REFRESH_PER_GRANT, NewTokens,
    Subject, TokenRecord,
};
use tessera::{ClientId, GrantId, ResourceIndicator, Scope, TokenHash};
use time::OffsetDateTime;

/// What a token stands for, apart from its times: shared between tokens.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Meta {
    client_id: ClientId,
    subject: Option<Subject>,
    scope: Scope,
    /// Who acts for the subject (RFC 8693 token exchange); rare, so it
    /// lives here, shared, rather than in every token.
    actor: Option<Actor>,
    /// The resource the token is for (RFC 8707): one per resource server,
    /// so interned with the rest.
    audience: Option<ResourceIndicator>,
    /// The DPoP key the token is bound to (RFC 9449 §6), if any: a bound
    /// access token shares it with its (public client's) refresh token.
    dpop_jkt: Option<String>,
}

/// Deduplicates [`Meta`]s so equal ones are stored once per grant shard.
///
/// One interner lives in each grant shard, under that shard's lock: a
/// token is interned while its grant is stored, with no lock of its own,
/// and the shared copy's reference count is touched only by the tokens of
/// that shard. A single interner for the whole store was one more lock,
/// and one reference count, that every request on every core wrote: under
/// load on two cores that cache line moved between them on every token
/// (bench/README.md, "Nothing shared between cores"). A meta is held at
/// most once per shard, so the copies are bounded by the shard count.
///
/// Hashed with foldhash, seeded per process: a few nanoseconds for a meta
/// where SipHash takes tens, on every issued token, while the seed keeps
/// colliding subjects or scopes out of an attacker's reach.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<Meta>, RandomState>,
}

impl Interner {
    /// The shared copy of `meta`.
    fn intern(&mut self, meta: Meta) -> Arc<Meta> {
        if let Some(shared) = self.set.get(&meta) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(meta);
        self.set.insert(Arc::clone(&shared));
        shared
    }

    /// Forgets every entry no token uses any more. Sound without a race:
    /// the set's copy is only cloned under the shard lock the caller
    /// holds, so a count of one cannot grow while we look.
    pub(crate) fn sweep(&mut self) {
        self.set.retain(|m| Arc::strong_count(m) > 1);
        if self.set.capacity() > 64 && self.set.len() * 4 < self.set.capacity() {
            self.set.shrink_to_fit();
        }
    }

    /// The metas held.
    pub(crate) fn metas(&self) -> impl Iterator<Item = &Arc<Meta>> {
        self.set.iter()
    }

    /// Converts new tokens to their stored form, interning what they say.
    pub(crate) fn stored(
        &mut self,
        tokens: NewTokens,
    ) -> (StoredToken, Option<StoredToken>, OffsetDateTime) {
        let until = tokens.expires_at();
        let NewTokens { access, refresh } = tokens;
        let access = self.token(access.0, access.1);
        let refresh = refresh.map(|(h, r)| self.token_beside(h, r, Some(&access)));
        (access, refresh, until)
    }

    /// A compact token from a record, interning what it says.
    pub(crate) fn token(&mut self, hash: TokenHash, record: TokenRecord) -> StoredToken {
        self.token_beside(hash, record, None)
    }

    /// [`token`](Self::token) for the second token of a pair: a refresh
    /// token usually says what its access token says (same client, subject,
    /// scope and audience), and comparing with that meta costs a fraction
    /// of hashing it and locking a shard to find it again.
    pub(crate) fn token_beside(
        &mut self,
        hash: TokenHash,
        record: TokenRecord,
        sibling: Option<&StoredToken>,
    ) -> StoredToken {
        let TokenRecord {
            client_id,
            subject,
            scope,
            issued_at,
            expires_at,
            family_expires_at,
            actor,
            audience,
            dpop_jkt,
        } = record;
        let meta = Meta {
            client_id,
            subject,
            scope,
            actor,
            audience,
            dpop_jkt,
        };
        let meta = match sibling {
            Some(s) if *s.meta == meta => Arc::clone(&s.meta),
            _ => self.intern(meta),
        };
        StoredToken {
            hash,
            meta,
            issued_at,
            expires_at,
            family_expires_at,
        }
    }
}

/// An access or refresh token as kept in memory: 88 bytes.
#[derive(Debug, Clone)]
pub(crate) struct StoredToken {
    hash: TokenHash,
    meta: Arc<Meta>,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    family_expires_at: Option<OffsetDateTime>,
}

impl StoredToken {
    fn live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }

    /// The record it stands for. Cheap to take under a lock (one refcount);
    /// the record's strings are copied after the lock is released.
    fn view(&self) -> TokenView {
        TokenView(
            Arc::clone(&self.meta),
            self.issued_at,
            self.expires_at,
            self.family_expires_at,
        )
    }
}

/// A token's record, not yet copied out.
#[derive(Debug)]
pub(crate) struct TokenView(
    Arc<Meta>,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

impl TokenView {
    pub(crate) fn into_record(self) -> TokenRecord {
        let TokenView(meta, issued_at, expires_at, family_expires_at) = self;
        TokenRecord {
            client_id: meta.client_id.clone(),
            subject: meta.subject.clone(),
            scope: meta.scope.clone(),
            issued_at,
            expires_at,
            family_expires_at,
            actor: meta.actor.clone(),
            audience: meta.audience.clone(),
            dpop_jkt: meta.dpop_jkt.clone(),
        }
    }
}

/// How long a grant outlives the moment one of its codes is taken, at
/// least: time for the exchange to store its tokens.
const TAKEN_CODE_GRACE: time::Duration = time::Duration::minutes(5);

/// Remembers a displaced refresh token. Most grants retire one token or
/// none, so the first slot is exact; a family that keeps rotating grows
/// amortised, not by one reallocation (and copy) per rotation, up to
/// [`MAX_RETIRED_REFRESH_PER_GRANT`].
fn retire(
    retired: &mut Vec<(TokenHash, OffsetDateTime)>,
    hash: TokenHash,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) {
    if retired.is_empty() {
        retired.reserve_exact(1);
    }
    if retired.len() >= MAX_RETIRED_REFRESH_PER_GRANT {
        retired.retain(|&(_, until)| until > now);
        if retired.len() >= MAX_RETIRED_REFRESH_PER_GRANT {
            // In the order retired: the first is the oldest.
            retired.remove(0);
        }
    }
    retired.push((hash, expires_at));
}

/// An authorization code of the grant.
#[derive(Debug)]
struct CodeSlot {
    hash: TokenHash,
    expires_at: OffsetDateTime,
    /// `None` once taken: the hash stays (to answer a replay) but the record
    /// is freed.
    record: Option<Box<CodeRecord>>,
}

/// A grant's codes. A grant the server made holds exactly one (a code is
/// minted with a fresh grant id), so the first is kept inline: storing it
/// costs no allocation beyond the grant's [`AuthState`], the same memory
/// as the vector's own allocation did.
#[derive(Debug, Default)]
struct Codes {
    first: Option<CodeSlot>,
    more: Vec<CodeSlot>,
}

impl Codes {
    fn find_mut(&mut self, hash: TokenHash) -> Option<&mut CodeSlot> {
        self.first
            .iter_mut()
            .chain(self.more.iter_mut())
            .find(|c| c.hash == hash)
    }

    fn push(&mut self, slot: CodeSlot) {
        match &self.first {
            None => self.first = Some(slot),
            Some(_) => {
                self.more.reserve_exact(1);
                self.more.push(slot);
            }
        }
    }

    fn retain(&mut self, keep: impl Fn(&CodeSlot) -> bool) {
        self.more.retain(&keep);
        if self.first.as_ref().is_some_and(|c| !keep(c)) {
            // The next one (if any) takes the inline place.
            self.first = (!self.more.is_empty()).then(|| self.more.remove(0));
        }
        if self.more.capacity() > self.more.len() * 2 {
            self.more.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

/// The parts only an authorization-code grant has. Boxed, so a
/// client-credentials grant pays 8 bytes for them.
#[derive(Debug, Default)]
struct AuthState {
    codes: Codes,
    /// The grant's current refresh token.
    refresh: Option<StoredToken>,
    /// Rotated-away refresh tokens and their own expiries, to detect reuse.
    retired: Vec<(TokenHash, OffsetDateTime)>,
}

impl AuthState {
    fn is_empty(&self) -> bool {
        self.codes.is_empty() && self.refresh.is_none() && self.retired.is_empty()
    }
}

/// The answer to taking a code, before the record leaves the lock.
#[derive(Debug)]
pub(crate) enum Take {
    Taken(Box<CodeRecord>),
    AlreadyTaken,
    Unknown,
}

/// The answer to a refresh lookup, before the record leaves the lock.
#[derive(Debug)]
pub(crate) enum RefreshView {
    Current(TokenView),
    Retired,
    Unknown,
}

/// Every record of one grant.
#[derive(Debug)]
pub(crate) struct Grant {
    /// The latest expiry of anything ever put in the grant: until then a
    /// revocation and a taken code must be remembered.
    expires_at: OffsetDateTime,
    revoked: bool,
    access: AccessTokens,
    auth: Option<Box<AuthState>>,
}

impl Grant {
    pub(crate) fn new(expires_at: OffsetDateTime) -> Self {
        Self {
            expires_at,
            revoked: false,
            access: AccessTokens::None,
            auth: None,
        }
    }

    /// Whether the grant itself still lives at `now`.
    fn live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }

    fn extend(&mut self, until: OffsetDateTime) {
        self.expires_at = self.expires_at.max(until);
    }

    fn auth_mut(&mut self) -> &mut AuthState {
        self.auth.get_or_insert_with(Box::default)
    }

    /// Drops `auth` when nothing is left in it.
    fn normalize(&mut self) {
        if self.auth.as_ref().is_some_and(|a| a.is_empty()) {
            self.auth = None;
        }
        self.access.compact();
    }

    /// Whether the grant holds nothing worth remembering: no tokens, no
    /// codes, no revocation. Such a grant may be forgotten early; a later
    /// `issue` into its id would recreate exactly the same state.
    pub(crate) fn is_void(&self) -> bool {
        !self.revoked && self.access.is_empty() && self.auth.is_none()
    }

    /// Stores a code. Into a revoked grant nothing is stored (its code
    /// could only ever lead to `issue` answering `false`).
    pub(crate) fn put_code(&mut self, hash: TokenHash, record: CodeRecord) {
        if self.revoked {
            return;
        }
        self.extend(record.expires_at);
        let slot = CodeSlot {
            hash,
            expires_at: record.expires_at,
            record: Some(Box::new(record)),
        };
        let codes = &mut self.auth_mut().codes;
        match codes.find_mut(hash) {
            Some(existing) => *existing = slot,
            None => codes.push(slot),
        }
    }

    pub(crate) fn take_code(&mut self, hash: TokenHash, now: OffsetDateTime) -> Take {
        if !self.live(now) {
            return Take::Unknown;
        }
        let revoked = self.revoked;
        let Some(slot) = self.auth.as_mut().and_then(|a| a.codes.find_mut(hash)) else {
            return Take::Unknown;
        };
        if slot.record.is_none() {
            // Taken before; remembered for as long as the grant lives,
            // past the code's own expiry and past a revocation.
            return Take::AlreadyTaken;
        }
        if revoked || slot.expires_at <= now {
            return Take::Unknown;
        }
        let taken = match slot.record.take() {
            Some(record) => Take::Taken(record),
            None => return Take::Unknown,
        };
        // The grant lived until the code's expiry: a sweep between this take
        // and the `issue` of its tokens could forget the grant, taken marker
        // and all, and a replay of the code would then be unknown instead of
        // revoking what it got (RFC 6749 §4.1.2). Remember it a while longer;
        // the tokens' own lifetimes extend it further.
        self.extend(now + TAKEN_CODE_GRACE);
        taken
    }

    /// Adds tokens; `false`, storing nothing, when revoked.
    pub(crate) fn issue(
        &mut self,
        access: StoredToken,
        refresh: Option<StoredToken>,
        until: OffsetDateTime,
    ) -> bool {
        if self.revoked {
            return false;
        }
        self.extend(until);
        let now = access.issued_at;
        self.access.push(access, now);
        if let Some(refresh) = refresh {
            let auth = self.auth_mut();
            // A refresh token displaced by a new one is retired, not
            // forgotten: presenting it later is reuse.
            if let Some(old) = auth.refresh.replace(refresh) {
                retire(&mut auth.retired, old.hash, old.expires_at, now);
            }
        }
        true
    }

    pub(crate) fn access_token(&self, hash: TokenHash, now: OffsetDateTime) -> Option<TokenView> {
        if self.revoked || !self.live(now) {
            return None;
        }
        self.access
            .iter()
            .find(|t| t.hash == hash && t.live(now))
            .map(StoredToken::view)
    }

    pub(crate) fn refresh_token(&self, hash: TokenHash, now: OffsetDateTime) -> RefreshView {
        let Some(auth) = self.auth.as_deref() else {
            return RefreshView::Unknown;
        };
        if self.revoked || !self.live(now) {
            return RefreshView::Unknown;
        }
        if let Some(current) = auth.refresh.as_ref().filter(|r| r.hash == hash) {
            return if current.live(now) {
                RefreshView::Current(current.view())
            } else {
                RefreshView::Unknown
            };
        }
        if auth
            .retired
            .iter()
            .any(|&(h, expires_at)| h == hash && expires_at > now)
        {
            return RefreshView::Retired;
        }
        RefreshView::Unknown
    }

    /// The compare-and-swap of refresh rotation.
    pub(crate) fn rotate_refresh(
        &mut self,
        old: TokenHash,
        access: StoredToken,
        refresh: Option<StoredToken>,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        if self.revoked || !self.live(now) {
            return false;
        }
        let Some(auth) = self.auth.as_deref_mut() else {
            return false;
        };
        let is_current = auth
            .refresh
            .as_ref()
            .is_some_and(|r| r.hash == old && r.live(now));
        if !is_current {
            return false;
        }
        if let Some(previous) = std::mem::replace(&mut auth.refresh, refresh) {
            retire(&mut auth.retired, previous.hash, previous.expires_at, now);
        }
        self.access.push(access, now);
        self.extend(until);
        true
    }

    pub(crate) fn revoke_access_token(&mut self, hash: TokenHash) {
        if self.access.remove(hash) {
            self.normalize();
        }
    }

    /// Kills every token and refuses new ones until the grant expires. Only
    /// the revocation itself and taken-code markers are kept.
    pub(crate) fn revoke(&mut self) {
        self.revoked = true;
        self.access = AccessTokens::None;
        if let Some(auth) = self.auth.as_deref_mut() {
            auth.refresh = None;
            auth.retired = Vec::new();
            auth.codes.retain(|c| c.record.is_none());
        }
        self.normalize();
    }

    /// Forgets what expired by `now`. Returns whether the grant should be kept.
    pub(crate) fn sweep(&mut self, now: OffsetDateTime) -> bool {
        if !self.live(now) {
            return false;
        }
        self.access.retain(|t| t.live(now));
        if let Some(auth) = self.auth.as_deref_mut() {
            // A taken code stays as long as the grant does (replay detection).
            auth.codes
                .retain(|c| c.record.is_none() || c.expires_at > now);
            if auth.refresh.as_ref().is_some_and(|r| !r.live(now)) {
                auth.refresh = None;
            }
            auth.retired.retain(|&(_, expires_at)| expires_at > now);
        }
        self.normalize();
        !self.is_void()
    }

    /// Counts for [`crate::Stats`]: (access, refresh, retired, codes).
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        let (refresh, retired, codes) = self.auth.as_deref().map_or((0, 0, 0), |a| {
            (
                usize::from(a.refresh.is_some()),
                a.retired.len(),
                a.codes.len(),
            )
        });
        (self.access.len(), refresh, retired, codes)
    }
}

/// A grant's access tokens. Almost every grant holds one at a time (a
/// client-credentials grant, or a code grant until its first refresh), so one is
/// kept inline: issuing it costs no allocation beyond the grant's own.
#[derive(Debug)]
enum AccessTokens {
    None,
    One(StoredToken),
    Many(Vec<StoredToken>),
}

impl AccessTokens {
    /// Adds a token, first making room under [`MAX_ACCESS_TOKENS_PER_GRANT`]:
    /// the expired ones go, then, if need be, the oldest live one.
    fn push(&mut self, token: StoredToken, now: OffsetDateTime) {
        match std::mem::replace(self, Self::None) {
            Self::None => *self = Self::One(token),
            Self::One(first) => *self = Self::Many(vec![first, token]),
            // Amortised growth: a grant holds a third live access token
            // only when it is refreshed often, and then it will hold more.
            Self::Many(mut all) => {
                if all.len() >= MAX_ACCESS_TOKENS_PER_GRANT {
                    all.retain(|t| t.live(now));
                    if all.len() >= MAX_ACCESS_TOKENS_PER_GRANT {
                        // In the order issued: the first is the oldest.
                        all.remove(0);
                    }
                }
                all.push(token);
                *self = Self::Many(all);
            }
        }
    }

    fn iter(&self) -> std::slice::Iter<'_, StoredToken> {
        match self {
            Self::None => [].iter(),
            Self::One(token) => std::slice::from_ref(token).iter(),
            Self::Many(all) => all.iter(),
        }
    }

    fn len(&self) -> usize {
        self.iter().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the token with this hash; whether there was one.
    fn remove(&mut self, hash: TokenHash) -> bool {
        let before = self.len();
        self.retain(|t| t.hash != hash);
        self.len() != before
    }

    fn retain(&mut self, keep: impl Fn(&StoredToken) -> bool) {
        match self {
            Self::None => {}
            Self::One(token) => {
                if !keep(token) {
                    *self = Self::None;
                }
            }
            Self::Many(all) => all.retain(keep),
        }
        self.compact();
    }

    /// Back to the smallest form after removals.
    fn compact(&mut self) {
        if let Self::Many(all) = self {
            match all.len() {
                0 => *self = Self::None,
                1 => {
                    if let Some(only) = all.pop() {
                        *self = Self::One(only);
                    }
                }
                n if all.capacity() > n * 2 => all.shrink_to_fit(),
                _ => {}
            }
        }
    }
}

/// A grant id as one number that sorts as the id's bytes do: one compare
/// per step of a search instead of a 16-byte `memcmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GrantKey(u128);

impl From<GrantId> for GrantKey {
    fn from(id: GrantId) -> Self {
        Self(u128::from_be_bytes(id.0))
    }
}

/// One shard's grants, in the order of their ids.
///
/// Why a B-tree and not a hash table: the core mints ids that begin with
/// the time ([`GrantId::mint`]), so a new grant goes beside the last one,
/// in the tree's rightmost leaf, which the previous insert just touched. In
/// a hash table of millions of grants every insert lands on a random slot:
/// two cache misses (its control bytes and its bucket) per token issued,
/// the largest single cost of a `client_credentials` request under load
/// (bench/README.md). Lookups cost about the same either way: a hash
/// table's two misses, or the tree's last levels (its upper ones stay in
/// cache). Ids minted otherwise (random ones from a custom grant) are
/// stored and found all the same, only without the saving.
#[derive(Debug, Default)]
pub(crate) struct GrantTable(BTreeMap<GrantKey, Box<Grant>>);

impl GrantTable {
    pub(crate) fn get(&self, id: &GrantId) -> Option<&Grant> {
        self.0.get(&GrantKey::from(*id)).map(|g| &**g)
    }

    pub(crate) fn get_mut(&mut self, id: &GrantId) -> Option<&mut Grant> {
        self.0.get_mut(&GrantKey::from(*id)).map(|g| &mut **g)
    }

    /// The grant `id`, made by `make` when there is none.
    pub(crate) fn get_or_insert_with(
        &mut self,
        id: GrantId,
        make: impl FnOnce() -> Grant,
    ) -> &mut Grant {
        self.0
            .entry(GrantKey::from(id))
            .or_insert_with(|| Box::new(make()))
    }

    pub(crate) fn remove(&mut self, id: &GrantId) {
        self.0.remove(&GrantKey::from(*id));
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Grant> {
        self.0.values().map(|g| &**g)
    }
}

/// One shard of the grant table: the grants whose id falls into it, and
/// the metas their tokens share (see [`Interner`]), under one lock.
#[derive(Debug, Default)]
pub(crate) struct GrantShard {
    pub(crate) grants: GrantTable,
    pub(crate) metas: Interner,
}

/// How many grants one step of a sweep visits under a shard's lock: a
/// thread's new grants share a shard ([`GrantId::mint`]), so a shard can
/// hold millions, and sweeping one whole under its lock would stall every
/// request for its grants (tens of milliseconds a million).
pub(crate) const SWEEP_STEP: usize = 4096;

impl GrantShard {
    /// One step of a sweep: forgets what expired by `now` among the next
    /// [`SWEEP_STEP`] grants after `after` (from the first when `None`), up
    /// to the last grant the shard held when the sweep began (grants added
    /// since are new), and answers where to go on, or `None` when the shard
    /// is done (then the metas no token uses go too). (A B-tree gives its
    /// nodes back as it empties: nothing to shrink.)
    pub(crate) fn sweep_step(&mut self, step: SweepStep, now: OffsetDateTime) -> Option<SweepStep> {
        self.sweep_step_by(step, now, SWEEP_STEP)
    }

    /// [`sweep_step`](Self::sweep_step) visiting at most `most` grants.
    pub(crate) fn sweep_step_by(
        &mut self,
        step: SweepStep,
        now: OffsetDateTime,
        most: usize,
    ) -> Option<SweepStep> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let SweepStep { after, until } = match step {
            SweepStep { until: None, .. } => SweepStep {
                after: None,
                until: self.grants.0.keys().next_back().copied(),
            },
            step => step,
        };
        let Some(last_key) = until else {
            self.metas.sweep();
            return None;
        };
        let start = after.map_or(Unbounded, Excluded);
        let mut dead = Vec::new();
        let mut last = None;
        let mut visited = 0;
        for (key, grant) in self.grants.0.range_mut((start, Included(last_key))) {
            if !grant.sweep(now) {
                dead.push(*key);
            }
            last = Some(*key);
            visited += 1;
            if visited == most {
                break;
            }
        }
        for key in &dead {
            self.grants.0.remove(key);
        }
        match last {
            Some(key) if visited == most && key < last_key => Some(SweepStep {
                after: Some(key),
                until: Some(last_key),
            }),
            _ => {
                self.metas.sweep();
                None
            }
        }
    }
}

/// Where a sweep of one shard goes on: after which grant, up to which.
/// [`SweepStep::START`] begins one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepStep {
    after: Option<GrantKey>,
    until: Option<GrantKey>,
}

impl SweepStep {
    /// The first step of a shard's sweep.
    pub(crate) const START: Self = Self {
        after: None,
        until: None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(interner: &mut Interner, byte: u8, expires: i64) -> StoredToken {
        let record = TokenRecord {
            client_id: ClientId::new("c").unwrap(),
            subject: None,
            scope: Scope::parse("a").unwrap(),
            issued_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(expires),
            family_expires_at: None,
            actor: None,
            audience: None,
            dpop_jkt: None,
        };
        interner.token(TokenHash([byte; 32]), record)
    }

    #[test]
    fn access_tokens_grow_and_shrink_back_to_inline() {
        let mut interner = Interner::default();
        let mut tokens = AccessTokens::None;
        assert!(tokens.is_empty());
        let t0 = OffsetDateTime::UNIX_EPOCH;
        tokens.push(token(&mut interner, 1, 10), t0);
        assert!(matches!(tokens, AccessTokens::One(_)));
        tokens.push(token(&mut interner, 2, 20), t0);
        tokens.push(token(&mut interner, 3, 30), t0);
        assert_eq!(tokens.len(), 3);
        assert!(tokens.remove(TokenHash([2; 32])));
        assert!(!tokens.remove(TokenHash([2; 32])));
        assert_eq!(
            tokens.iter().map(|t| t.hash.0[0]).collect::<Vec<_>>(),
            [1, 3]
        );
        // Expiry sweeps keep the live one, inline again.
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(15);
        tokens.retain(|t| t.live(at));
        assert!(matches!(&tokens, AccessTokens::One(t) if t.hash == TokenHash([3; 32])));
        tokens.retain(|_| false);
        assert!(matches!(tokens, AccessTokens::None));
        // One interned meta for all of them.
        assert_eq!(interner.metas().count(), 1);
    }

    fn code(byte: u8, expires: i64) -> (TokenHash, CodeRecord) {
        let record = tessera_testkit::code_record(OffsetDateTime::UNIX_EPOCH, expires);
        (TokenHash([byte; 32]), record)
    }

    /// The first code is kept inline, more go beside it; each is taken
    /// once, found wherever it sits, and sweeps and revocation keep exactly
    /// the taken ones (replay detection) however they are placed.
    #[test]
    fn codes_inline_and_beside_are_kept_and_taken_alike() {
        let at = |s: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
        let mut g = Grant::new(at(100));
        for (byte, expires) in [(1, 10), (2, 20), (3, 30)] {
            let (hash, record) = code(byte, expires);
            g.put_code(hash, record);
        }
        assert_eq!(g.counts().3, 3);
        assert!(matches!(
            g.take_code(TokenHash([2; 32]), at(0)),
            Take::Taken(_)
        ));
        assert!(matches!(
            g.take_code(TokenHash([2; 32]), at(0)),
            Take::AlreadyTaken
        ));
        assert!(matches!(
            g.take_code(TokenHash([9; 32]), at(0)),
            Take::Unknown
        ));
        // At 15 the first (untaken, expired) goes: the taken one moves inline.
        assert!(g.sweep(at(15)));
        assert_eq!(g.counts().3, 2);
        assert!(matches!(
            g.take_code(TokenHash([2; 32]), at(15)),
            Take::AlreadyTaken
        ));
        assert!(matches!(
            g.take_code(TokenHash([3; 32]), at(15)),
            Take::Taken(_)
        ));
        // Revocation keeps the taken markers only.
        let (hash, record) = code(4, 40);
        g.put_code(hash, record);
        g.revoke();
        assert_eq!(g.counts().3, 2);
        assert!(matches!(
            g.take_code(TokenHash([3; 32]), at(15)),
            Take::AlreadyTaken
        ));
        assert!(matches!(
            g.take_code(TokenHash([4; 32]), at(15)),
            Take::Unknown
        ));
        // A grant with one code holds it inline.
        let mut one = Grant::new(at(100));
        let (hash, record) = code(5, 10);
        one.put_code(hash, record);
        let auth = one.auth.as_deref().unwrap();
        assert!(auth.codes.first.is_some() && auth.codes.more.capacity() == 0);
    }

    fn hashed(interner: &mut Interner, n: u32, expires: i64) -> StoredToken {
        let mut t = token(interner, 0, expires);
        t.hash = TokenHash([0; 32]);
        t.hash.0[..4].copy_from_slice(&n.to_le_bytes());
        t
    }

    /// A client refreshing in a loop cannot grow its grant without end
    /// (RFC 6819 §4.4.1.11): at the caps the expired entries go first, then
    /// the oldest; the newest are always found.
    #[test]
    fn a_grant_refreshed_in_a_loop_stays_bounded() {
        let mut interner = Interner::default();
        let at = |s: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
        let mut g = Grant::new(at(1_000_000));
        let first = hashed(&mut interner, 0, 1_000_000);
        assert!(g.issue(
            hashed(&mut interner, 1_000_000, 3600),
            Some(first),
            at(1_000_000)
        ));
        let rotations: u32 = 3_000;
        for n in 1..=rotations {
            let old = TokenHash({
                let mut h = [0; 32];
                h[..4].copy_from_slice(&(n - 1).to_le_bytes());
                h
            });
            let access = hashed(&mut interner, 1_000_000 + n, 3600);
            let refresh = hashed(&mut interner, n, 1_000_000);
            assert!(g.rotate_refresh(old, access, Some(refresh), at(1_000_000), at(0)));
        }
        let (access, refresh, retired, _) = g.counts();
        assert_eq!(access, MAX_ACCESS_TOKENS_PER_GRANT);
        assert_eq!(refresh, 1);
        assert_eq!(retired, MAX_RETIRED_REFRESH_PER_GRANT);
        let key = |n: u32| {
            let mut h = [0; 32];
            h[..4].copy_from_slice(&n.to_le_bytes());
            TokenHash(h)
        };
        // The newest access tokens and retired refresh tokens are known,
        // the oldest forgotten.
        assert!(g.access_token(key(1_000_000 + rotations), at(0)).is_some());
        assert!(g.access_token(key(1_000_000), at(0)).is_none());
        assert!(matches!(
            g.refresh_token(key(rotations), at(0)),
            RefreshView::Current(_)
        ));
        assert!(matches!(
            g.refresh_token(key(rotations - 1), at(0)),
            RefreshView::Retired
        ));
        assert!(matches!(
            g.refresh_token(key(0), at(0)),
            RefreshView::Unknown
        ));
        // Expired entries make room before any live one is dropped.
        let mut h = Grant::new(at(1_000_000));
        for n in 0..(MAX_ACCESS_TOKENS_PER_GRANT as u32) {
            assert!(h.issue(hashed(&mut interner, n, 10), None, at(10)));
        }
        let mut late = hashed(&mut interner, 9_999, 100);
        late.issued_at = at(20);
        assert!(h.issue(late, None, at(100)));
        assert_eq!(h.counts().0, 1);
    }

    /// A code taken just before it expires keeps its grant alive past a
    /// sweep, so its replay is still recognised.
    #[test]
    fn a_code_taken_at_its_last_moment_outlives_the_next_sweep() {
        let at = |s: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
        let (hash, record) = code(1, 60);
        let mut g = Grant::new(at(60));
        g.put_code(hash, record);
        assert!(matches!(g.take_code(hash, at(59)), Take::Taken(_)));
        // The sweep runs before the exchange stores its tokens.
        assert!(g.sweep(at(61)));
        assert!(matches!(g.take_code(hash, at(62)), Take::AlreadyTaken));
    }

    #[test]
    fn per_grant_state_is_compact() {
        assert_eq!(std::mem::size_of::<OffsetDateTime>(), 16);
        assert_eq!(std::mem::size_of::<StoredToken>(), 88);
        assert_eq!(std::mem::size_of::<Grant>(), 120);
        // B-tree entry: key + box pointer.
        assert_eq!(std::mem::size_of::<GrantKey>(), 16);
        assert_eq!(std::mem::size_of::<Box<Grant>>(), 8);
    }
}
