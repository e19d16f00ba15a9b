//! What the core asks of a storage backend, and which operations must be atomic.
//!
//! Every record belongs to a grant ([`GrantId`]), which the secret's text
//! carries, so a backend can keep one grant's records together (one Redis
//! Cluster slot, one map entry) and revoke them as one. Stores see only
//! [`TokenHash`]es, never secrets. Every record carries its expiry; the
//! backend must forget it after that (memory: a sweeper; Redis: TTLs), and
//! must not answer an expired record as live.
//!
//! A backend proves itself with the conformance suite in `tessera_testkit`
//! (feature `testkit`).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::client::{ClientId, ClientRegistry};
use crate::error::StoreError;
use crate::pkce::CodeChallenge;
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::token::{GrantId, SecretKey, TokenHash};

/// The resource owner a grant was made by: the embedder's user id.
///
/// Shared, so that copying it into every token record (an access and a
/// refresh token per exchange) costs a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(Arc<str>);

impl Subject {
    /// A subject from the embedder's user id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Serialized as the bare id text, as before it was shared.
impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acts on the subject's behalf with a token obtained by delegation
/// (RFC 8693 §4.1, the `act` claim): e.g. a resource server that exchanged
/// a user's token for one of its own.
///
/// `act` nests the prior actor when a delegated token is exchanged again
/// (§4.1: the outermost is the current actor; nested ones are prior and
/// informational only, never used for access control).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Actor {
    /// The actor's identity: for a client, its `client_id`.
    pub sub: String,
    /// The actor before this one, if the token it acted with was itself delegated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// An actor identified by `sub`, with no prior actor.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            act: None,
        }
    }

    /// A client acting: `sub` is its `client_id`.
    pub fn client(client: &ClientId) -> Self {
        Self::new(client.as_str())
    }

    /// This actor, having acted with a token whose actor was `prior` (§4.1 nesting).
    pub fn with_prior(mut self, prior: Option<Actor>) -> Self {
        self.act = prior.map(Box::new);
        self
    }

    /// How many actors the chain holds (this one included).
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
}

/// An issued authorization code and everything it is bound to (RFC 6749 §4.1.2, §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The `redirect_uri` sent in the authorization request, if one was sent;
    /// the token request must then repeat it exactly (§4.1.3).
    pub redirect_uri: Option<String>,
    /// The PKCE challenge (RFC 7636).
    pub challenge: Option<CodeChallenge>,
    /// Who authorized.
    pub subject: Subject,
    /// The scope granted.
    pub scope: Scope,
    /// The resource the code's tokens are for (RFC 8707 §2): the
    /// authorization request's `resource`, or the default resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<ResourceIndicator>,
    /// The DPoP key the code is bound to (RFC 9449 §10: the authorization
    /// request's `dpop_jkt`): the token request must bring a proof by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// When it stops being redeemable.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// What a stored access or refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The resource owner, or `None` for a client acting on its own behalf (client credentials).
    pub subject: Option<Subject>,
    /// The scope it carries.
    pub scope: Scope,
    /// The resource it is for (RFC 8707 §2), shown as `aud` at
    /// introspection; a refresh token's is its grant's, kept on rotation.
    /// `None`: no audience (no resource was requested and no default is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<ResourceIndicator>,
    /// When it was issued.
    #[serde(with = "time::serde::timestamp")]
    pub issued_at: OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
    /// For a refresh token: when its family ends whatever the rotations
    /// ([`Lifetimes::refresh_family`](crate::Lifetimes::refresh_family));
    /// every rotated token keeps it and expires by then at the latest.
    /// `None` for access tokens (and refresh tokens stored before it existed).
    #[serde(
        default,
        with = "time::serde::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub family_expires_at: Option<OffsetDateTime>,
    /// Who acts with the token on the subject's behalf, for a token issued
    /// by delegation (RFC 8693 §4.1, shown as `act` at introspection);
    /// `None` for a token the client obtained for itself or its user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// The key the token is bound to (RFC 9449 §6): the JWK SHA-256
    /// thumbprint (RFC 7638) of the DPoP proof's key it was issued with,
    /// shown as `cnf.jkt` (in JWT access tokens and at introspection). A
    /// resource server then accepts it only with a proof by that key. For a
    /// refresh token: bound only for public clients (§5). `None`: a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// Tokens to add to a grant in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokens {
    /// The access token's hash and record.
    pub access: (TokenHash, TokenRecord),
    /// The refresh token's hash and record, which becomes the grant's current one.
    pub refresh: Option<(TokenHash, TokenRecord)>,
}

impl NewTokens {
    /// The latest expiry among the tokens: how long the grant must be kept.
    pub fn expires_at(&self) -> OffsetDateTime {
        let a = self.access.1.expires_at;
        self.refresh
            .as_ref()
            .map_or(a, |(_, r)| a.max(r.expires_at))
    }
}

/// The answer to taking a code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeTake {
    /// This caller took the code; nobody else ever will.
    Taken(CodeRecord),
    /// The code was taken before: a replay (RFC 6749 §4.1.2).
    AlreadyTaken,
    /// No such live code.
    Unknown,
}

/// The answer to looking up a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshLookup {
    /// The grant's current refresh token, live and not revoked.
    Current(TokenRecord),
    /// A refresh token of this grant that was rotated away: presenting it is
    /// reuse (RFC 9700 §4.14.2).
    Retired,
    /// Unknown, expired, or its grant was revoked.
    Unknown,
}

/// The live access tokens a store keeps per grant at most. A client that
/// refreshes in a loop adds one per rotation; past this many, the oldest
/// (the first issued) is dropped: revoked early. 256 is a refresh every 15
/// seconds for an hour's tokens (RFC 6819 §4.4.1.11: bounded storage).
pub const MAX_ACCESS_TOKENS_PER_GRANT: usize = 256;

/// The rotated-away refresh tokens a store remembers per grant at most, to
/// recognise their reuse (RFC 9700 §4.14.2). Each is kept until its own
/// expiry (30 days by default); past this many, the oldest (the first
/// retired; never by expiry, which refresh tokens share near their family's
/// end) is forgotten, and presenting it is then an unknown token
/// (`invalid_grant`) rather than a reuse that revokes the family.
pub const MAX_RETIRED_REFRESH_PER_GRANT: usize = 1024;

/// Storage of grants: codes, access tokens, refresh tokens.
///
/// # Bounds
///
/// One grant holds at most [`MAX_ACCESS_TOKENS_PER_GRANT`] live access
/// tokens and remembers at most [`MAX_RETIRED_REFRESH_PER_GRANT`] retired
/// refresh tokens, however often its client refreshes (checked by
/// `tessera_testkit::a_refresh_loop_is_bounded_per_grant`).
///
/// # Atomicity
///
/// With many server instances racing on one backend:
/// - [`take_code`](GrantStore::take_code) answers `Taken` at most once per code.
/// - [`rotate_refresh`](GrantStore::rotate_refresh) succeeds at most once per refresh token.
/// - [`issue`](GrantStore::issue) and `rotate_refresh` store nothing into a
///   revoked grant, and [`revoke_grant`](GrantStore::revoke_grant) kills every
///   token issued into the grant, before or after (until the grant expires).
///
/// Each method is one round trip on a networked backend.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new authorization code under its grant.
    async fn put_code(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError>;

    /// Takes a code for redemption. After a successful take, the store
    /// remembers the code was taken for as long as the grant lives, and
    /// keeps the grant at least five minutes past the take (until the
    /// exchange issues its tokens, which extend it), so a replay answers
    /// `AlreadyTaken` even if the code expires in between (checked by
    /// `tessera_testkit::taken_code_outlives_its_expiry`).
    async fn take_code(&self, code: SecretKey, now: OffsetDateTime)
    -> Result<CodeTake, StoreError>;

    /// Adds tokens to a grant, extending its life to the tokens' expiry.
    /// Returns `false`, storing nothing, when the grant was revoked.
    async fn issue(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError>;

    /// Adds the first tokens of a grant the caller has just made: `grant`
    /// is a fresh id nobody else has seen ([`GrantId::mint`]; a client-credentials
    /// grant, RFC 6749 §4.4), so nothing can have revoked it or stored
    /// under it, and a store may write without checking (the Redis store
    /// saves a script run). The grant must afterwards behave exactly as
    /// one started by [`issue`](Self::issue): its tokens found, revocable
    /// with [`revoke_grant`](Self::revoke_grant). Returns `false` only
    /// where `issue` would. The default calls `issue`.
    async fn issue_new_grant(&self, grant: GrantId, tokens: NewTokens) -> Result<bool, StoreError> {
        self.issue(grant, tokens).await
    }

    /// A live access token: `None` when unknown, expired, revoked, or its grant was revoked.
    async fn access_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Looks up a refresh token.
    async fn refresh_token(
        &self,
        token: SecretKey,
        now: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError>;

    /// Rotates a refresh token: if `old` is the grant's current, live refresh
    /// token and the grant is not revoked, retire `old` (remembered until its
    /// own expiry), make `tokens.refresh` current, add `tokens.access`, and
    /// return `true`. Otherwise change nothing and return `false`.
    async fn rotate_refresh(
        &self,
        old: SecretKey,
        tokens: NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Revokes one access token.
    async fn revoke_access_token(&self, token: SecretKey) -> Result<(), StoreError>;

    /// Revokes a grant: every token issued into it, and any issued later, is dead.
    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError>;

    /// The same store's codes, for a store that keeps them in this
    /// process's memory and so stores and takes one at once, without I/O
    /// (see [`CodesAtHand`]). The server asks here first, which spares it
    /// [`put_code`](Self::put_code)'s and [`take_code`](Self::take_code)'s
    /// boxed futures. `None` means "use the async methods": the default,
    /// always correct.
    fn codes_at_hand(&self) -> Option<&dyn CodesAtHand> {
        None
    }
}

/// [`GrantStore::put_code`] and [`GrantStore::take_code`] without a future,
/// for a store whose codes are in this process's memory (see
/// [`GrantStore::codes_at_hand`]). Each must do exactly what its async
/// counterpart does, on the same records: a code put here is taken there
/// and the other way round, and the atomicity promised there holds here.
pub trait CodesAtHand: Send + Sync {
    /// [`GrantStore::put_code`], at once.
    fn put_code_now(&self, code: SecretKey, record: CodeRecord) -> Result<(), StoreError>;

    /// [`GrantStore::take_code`], at once.
    fn take_code_now(&self, code: SecretKey, now: OffsetDateTime) -> Result<CodeTake, StoreError>;
}

/// An authorization request that passed validation and waits for the
/// resource owner to log in and decide (the handle the embedder's pages carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The requesting client.
    pub client_id: ClientId,
    /// The verified redirect URI to answer at.
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (then the token request must repeat it, §4.1.3).
    pub redirect_uri_sent: bool,
    /// The scope requested (already checked against the client's registration).
    pub scope: Scope,
    /// The client's `state`, echoed exactly.
    pub state: Option<String>,
    /// The PKCE challenge.
    pub challenge: Option<CodeChallenge>,
    /// The resource the tokens will be for (RFC 8707 §2): the request's
    /// `resource` (already checked: known, allowed for the client), or the
    /// default resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<ResourceIndicator>,
    /// The request's `dpop_jkt` (RFC 9449 §10), already checked: the code
    /// will be bound to that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// When the handle stops working.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// Storage of pending authorization requests.
///
/// # Atomicity
/// [`take_pending`](PendingStore::take_pending) answers `Some` at most once per handle.
#[async_trait]
pub trait PendingStore: Send + Sync {
    /// Stores a pending request under its handle.
    async fn put_pending(
        &self,
        handle: SecretKey,
        request: PendingAuthorization,
    ) -> Result<(), StoreError>;
    /// Reads a live pending request without consuming it (to render the consent page).
    async fn get_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Consumes a live pending request (when the owner decides).
    async fn take_pending(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// The same store's pending requests, for a store that keeps them in
    /// this process's memory and so stores and takes one at once, without
    /// I/O (see [`PendingAtHand`]). The server asks here first, which spares
    /// it [`put_pending`](Self::put_pending)'s and
    /// [`take_pending`](Self::take_pending)'s boxed futures. `None` means
    /// "use the async methods": the default, always correct.
    fn pending_at_hand(&self) -> Option<&dyn PendingAtHand> {
        None
    }
}

/// [`PendingStore::put_pending`] and [`PendingStore::take_pending`] without
/// a future, for a store whose pending requests are in this process's
/// memory (see [`PendingStore::pending_at_hand`]). Each must do exactly
/// what its async counterpart does, on the same records: a request put
/// here is taken there and the other way round, at most once.
pub trait PendingAtHand: Send + Sync {
    /// [`PendingStore::put_pending`], at once. The request comes boxed (an
    /// in-memory store keeps it so) and, should it not be stored, comes back
    /// with the error: the server still answers at its redirect URI.
    fn put_pending_now(
        &self,
        handle: SecretKey,
        request: Box<PendingAuthorization>,
    ) -> Result<(), (StoreError, Box<PendingAuthorization>)>;

    /// [`PendingStore::take_pending`], at once.
    fn take_pending_now(
        &self,
        handle: SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
}

/// A device authorization request (RFC 8628 §3.1) and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The client (the device) that asked.
    pub client_id: ClientId,
    /// The scope asked for (already checked against the client's registration).
    pub scope: Scope,
    /// The resource the device's tokens are for (RFC 8707 §2: the one it
    /// named in its request, else the default resource), already checked,
    /// shown to the user and fixed: the token request may repeat it, not
    /// change it. `None` when it named none and the server has no default
    /// resource (its tokens have no audience, and the token request may
    /// name none), or for a record stored before this field (its tokens
    /// count as the default resource's, `Config::audience_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceIndicator>,
    /// Pending, approved or denied.
    pub status: DeviceStatus,
    /// The polling interval in seconds (RFC 8628 §3.2; +5 for every
    /// `slow_down`, §3.5).
    pub interval: u32,
    /// When the device last polled, for enforcing the interval.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub last_polled_at: Option<OffsetDateTime>,
    /// When the device code and the user code stop working.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// What the user decided on the verification page (RFC 8628 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Not yet.
    Pending,
    /// Approved by `subject`.
    Approved {
        /// Who approved.
        subject: Subject,
    },
    /// Denied.
    Denied,
}

/// The answer to a device polling the token endpoint (RFC 8628 §3.4, §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePoll {
    /// The user has not decided yet: `authorization_pending`.
    Pending,
    /// Polled before its interval was up: `slow_down` (the interval is now 5 s longer).
    SlowDown,
    /// Approved: the record, taken; nobody will get it again.
    Approved(DeviceRecord),
    /// Denied: `access_denied`, to every later poll too, until the record
    /// expires (a device whose answer was lost hears it again).
    Denied,
    /// The device code expired: `expired_token`, to every later poll too,
    /// while the store keeps the record (RFC 8628 §3.5: the client then
    /// starts anew, which it can only know from this answer).
    Expired,
    /// Unknown, already used, or another client's: `invalid_grant`.
    Unknown,
}

impl DeviceRecord {
    /// The pure transition of one poll by `client` at `now`: the answer, and
    /// what to keep afterwards (`None`: delete the record). Every store
    /// applies exactly this, atomically (the Redis store mirrors it in Lua).
    ///
    /// Another client's poll changes nothing (it must not consume or slow
    /// down the real device's code). A decided code answers its decision
    /// whatever the interval; a pending one polled early is `SlowDown` and
    /// its interval grows by 5 seconds (RFC 8628 §3.5).
    pub fn poll(self, client: &ClientId, now: OffsetDateTime) -> (DevicePoll, Option<Self>) {
        if self.client_id != *client {
            return (DevicePoll::Unknown, Some(self));
        }
        // A decision that ends the flow is kept and answered again, so a
        // device whose answer was lost (RFC 8628 §3.5 has it retry after a
        // timeout) hears it rather than `invalid_grant`; the store forgets
        // the record after its grace period. Only an approval is taken.
        if now >= self.expires_at {
            return (DevicePoll::Expired, Some(self));
        }
        match self.status {
            DeviceStatus::Approved { .. } => (DevicePoll::Approved(self), None),
            DeviceStatus::Denied => (DevicePoll::Denied, Some(self)),
            DeviceStatus::Pending => {
                let early = self.last_polled_at.is_some_and(|last| {
                    now < last + time::Duration::seconds(i64::from(self.interval))
                });
                let mut next = self;
                next.last_polled_at = Some(now);
                if early {
                    next.interval = next.interval.saturating_add(5);
                    (DevicePoll::SlowDown, Some(next))
                } else {
                    (DevicePoll::Pending, Some(next))
                }
            }
        }
    }
}

/// Storage of device authorization requests (RFC 8628).
///
/// A request is found by its device code (the device polls) and by its
/// user code (the person types it on the verification page); both are
/// stored only as hashes.
///
/// # Atomicity
///
/// - [`put_device`](DeviceStore::put_device) stores nothing and answers
///   `false` when the user code is already live (the caller draws another).
/// - [`decide_device`](DeviceStore::decide_device) changes a record only
///   while it is pending and live, once.
/// - [`poll_device`](DeviceStore::poll_device) applies
///   [`DeviceRecord::poll`] atomically: an approved code yields `Approved`
///   at most once, however many pollers race, on however many instances.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a new request under its device code and user code, unless
    /// the user code names a request still live at `now`.
    async fn put_device(
        &self,
        device: SecretKey,
        user_code: TokenHash,
        record: DeviceRecord,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The live request a user code names, for the verification page.
    async fn device_by_user_code(
        &self,
        user_code: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError>;

    /// Records the user's decision (`Approved` or `Denied`) if the request
    /// is still pending and live; `false` otherwise.
    async fn decide_device(
        &self,
        user_code: TokenHash,
        decision: DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// One poll of `client` with a device code: [`DeviceRecord::poll`],
    /// applied atomically. `Unknown` when there is no record.
    async fn poll_device(
        &self,
        device: SecretKey,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError>;
}

/// What a [`ReplayKey`] guards: one namespace per kind of one-time value,
/// so a value seen in one never collides with a value of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplayNamespace {
    /// A DPoP proof's `jti` (RFC 9449 §11.1), per proof key.
    Dpop,
    /// A client assertion's `jti` (RFC 7523 §3 item 7, `private_key_jwt`), per client.
    ClientAssertion,
    /// A JWT bearer grant assertion's `jti` (RFC 7523 §3 item 7), per issuer.
    JwtBearer,
}

impl ReplayNamespace {
    /// The namespace's short name, as backends put it in their keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpop => "dpop",
            Self::ClientAssertion => "client-assertion",
            Self::JwtBearer => "jwt-bearer",
        }
    }
}

impl std::fmt::Display for ReplayNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A one-time value to remember: its namespace and the SHA-256 of who
/// issued it and its `jti`. Stores see only the hash, never the value,
/// and one key never stands for a value of another namespace or owner.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    namespace: ReplayNamespace,
    hash: [u8; 32],
}

impl ReplayKey {
    /// The key of `jti` issued by `owner` in `namespace`: SHA-256 over the
    /// namespace, the owner and the `jti`, each length-prefixed, so no two
    /// different triples hash alike. `owner` is what makes the `jti` unique:
    /// the proof key's JWK thumbprint for DPoP, the `client_id` for a
    /// client assertion, the issuer for a JWT bearer grant.
    pub fn new(namespace: ReplayNamespace, owner: &str, jti: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [namespace.as_str(), owner, jti] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        Self {
            namespace,
            hash: h.finalize().into(),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> ReplayNamespace {
        self.namespace
    }

    /// The 32-byte hash (unique within the namespace).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// `<namespace>:<43 base64url characters of the hash>`, for store keys.
    pub fn to_key(&self) -> String {
        use base64::Engine as _;
        format!(
            "{}:{}",
            self.namespace,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.hash)
        )
    }
}

impl std::fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplayKey({})", self.to_key())
    }
}

/// A replay cache: remembers one-time values (`jti`s of DPoP proofs and
/// JWT assertions) until they expire, so each is accepted once, across
/// every server instance sharing the backend (RFC 9449 §11.1, RFC 7523 §3).
///
/// # Atomicity
///
/// Of any number of concurrent callers of
/// [`first_use`](ReplayStore::first_use) with the same key, on however many
/// instances, exactly one gets `true` while the entry lives.
///
/// # Bounds
///
/// What is kept is chosen by whoever presents a validly signed value, so a
/// backend must bound it: entries expire (`expires_at`, which the core
/// keeps short: the proof's acceptance window), and a backend with a hard
/// capacity answers [`StoreError::Unavailable`] (the client sees
/// `temporarily_unavailable`) rather than forgetting a live entry, which
/// would let a replay through. It should isolate namespaces so a flood of
/// one kind of value does not refuse the others.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Remembers `key` until `expires_at` and answers `true` if it was not
    /// already remembered live at `now` (the value's first use), `false`
    /// if it was (a replay). An entry whose `expires_at <= now` counts as
    /// absent, and is replaced.
    async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// Everything the built-in server needs from one backend.
pub trait Store:
    ClientRegistry + GrantStore + PendingStore + DeviceStore + ReplayStore + 'static
{
}

impl<T: ClientRegistry + GrantStore + PendingStore + DeviceStore + ReplayStore + 'static> Store
    for T
{
}
