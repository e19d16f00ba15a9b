//! Registered clients (RFC 6749 §2) and the registry trait that finds them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::StoreError;
use crate::redirect::RedirectUri;
use crate::registration::{DynamicRegistration, RegisterOutcome};
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::token::{Random, TokenHash};

/// A client identifier (RFC 6749 §2.2): printable ASCII, 1 to 255 characters.
///
/// Shared, so that copying it into every token record costs a reference count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// Validates a client id: `VSCHAR` (%x20-7E) per RFC 6749 Appendix A.1, at most 255 bytes.
    pub fn new(id: impl AsRef<str>) -> Option<Self> {
        let id = id.as_ref();
        (!id.is_empty() && id.len() <= 255 && id.bytes().all(|b| (0x20..=0x7E).contains(&b)))
            .then(|| Self(Arc::from(id)))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClientId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ClientId::new(s).ok_or_else(|| "invalid client_id".to_owned())
    }
}

impl From<ClientId> for String {
    fn from(c: ClientId) -> String {
        c.0.as_ref().to_owned()
    }
}

impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// How a client authenticates at the token, revocation and introspection endpoints (RFC 6749 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A public client: `client_id` only (RFC 7591 §2 `none`).
    None,
}

impl AuthMethod {
    /// The name registered for RFC 8414 `token_endpoint_auth_methods_supported`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// A grant type a client may use (RFC 6749 §4, RFC 8628, extensions by URI).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantType(pub String);

impl GrantType {
    /// `authorization_code` (RFC 6749 §4.1).
    pub const AUTHORIZATION_CODE: &'static str = "authorization_code";
    /// `refresh_token` (RFC 6749 §6).
    pub const REFRESH_TOKEN: &'static str = "refresh_token";
    /// `client_credentials` (RFC 6749 §4.4).
    pub const CLIENT_CREDENTIALS: &'static str = "client_credentials";
    /// The device authorization grant (RFC 8628 §3.4).
    pub const DEVICE_CODE: &'static str = "urn:ietf:params:oauth:grant-type:device_code";

    /// A grant type by name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 of a client secret. Secrets are generated with 256 bits of
/// entropy, so a fast hash suffices; comparison is constant-time.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHash(TokenHash);

impl SecretHash {
    /// Hashes a secret for registration.
    pub fn of(secret: &str) -> Self {
        Self(TokenHash::of(secret))
    }

    /// Whether `presented` is the secret, in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        self.matches(&TokenHash::of(presented))
    }

    /// Whether `presented` is the hash of the secret, in constant time:
    /// compared as four 64-bit words (`subtle` fences each element).
    pub(crate) fn matches(&self, presented: &TokenHash) -> bool {
        words(&presented.0)[..].ct_eq(&words(&self.0.0)[..]).into()
    }
}

/// A 32-byte hash as four words, for a constant-time comparison.
fn words(hash: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(hash.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    words
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Generates a client secret with 256 bits of entropy, returned once in clear
/// with the hash to store.
pub fn generate_client_secret(random: &dyn Random) -> (String, SecretHash) {
    use base64::Engine;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random.bytes32());
    let hash = SecretHash::of(&secret);
    (secret, hash)
}

/// Whether the client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClientKind {
    /// Cannot keep a secret (native and browser apps); authenticates with `none`.
    Public,
    /// Holds a secret; stored only as its hash.
    Confidential {
        /// The secret's hash.
        secret: SecretHash,
    },
}

/// A registered client and everything the server enforces about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Client {
    /// The client's id.
    pub id: ClientId,
    /// A human-readable name for consent pages.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// How it may authenticate; a public client has only [`AuthMethod::None`].
    pub auth_methods: BTreeSet<AuthMethod>,
    /// Registered redirect URIs, matched exactly (loopback ports excepted, RFC 8252 §7.3).
    pub redirect_uris: Vec<RedirectUri>,
    /// Grant types it may use.
    pub grant_types: BTreeSet<GrantType>,
    /// The largest scope it may obtain; an omitted `scope` means all of it.
    pub scope: Scope,
    /// Whether it may introspect tokens issued to other clients (a resource server's identity).
    pub introspect_any_token: bool,
    /// Whether consent may be skipped for it (a first-party client), subject to the consent policy.
    pub first_party: bool,
    /// Whether its authorization requests must be pushed first (RFC 9126 §6).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Its access tokens' format, opaque or JWT (RFC 9068); `None`: the
    /// server's default. JWTs need the server's signing keys
    /// ([`ServerBuilder::signing_keys`](crate::ServerBuilder::signing_keys));
    /// without them the client gets opaque tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_format: Option<crate::jwt::AccessTokenFormat>,
    /// For a client that registered itself (RFC 7591): when, whether it
    /// has been used, and the display metadata it sent, which nobody has
    /// verified (a consent page should say so). `None` for clients the
    /// embedder registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Box<DynamicRegistration>>,
    /// The resources it may obtain tokens for (RFC 8707); `None`: every
    /// resource the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<BTreeSet<ResourceIndicator>>,
}

impl Client {
    /// A confidential client authenticating with `client_secret_basic`.
    pub fn confidential(id: ClientId, name: impl Into<String>, secret: SecretHash) -> Self {
        Self {
            id,
            name: name.into(),
            kind: ClientKind::Confidential { secret },
            auth_methods: [AuthMethod::ClientSecretBasic].into(),
            redirect_uris: Vec::new(),
            grant_types: BTreeSet::new(),
            scope: Scope::empty(),
            introspect_any_token: false,
            first_party: false,
            require_pushed_authorization_requests: false,
            access_token_format: None,
            registration: None,
            resources: None,
        }
    }

    /// A public client (authenticates with `none`).
    pub fn public(id: ClientId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            kind: ClientKind::Public,
            auth_methods: [AuthMethod::None].into(),
            redirect_uris: Vec::new(),
            grant_types: BTreeSet::new(),
            scope: Scope::empty(),
            introspect_any_token: false,
            first_party: false,
            require_pushed_authorization_requests: false,
            access_token_format: None,
            registration: None,
            resources: None,
        }
    }

    /// Sets the accepted authentication methods.
    pub fn with_auth_methods(mut self, methods: impl IntoIterator<Item = AuthMethod>) -> Self {
        self.auth_methods = methods.into_iter().collect();
        self
    }

    /// Adds a redirect URI.
    pub fn with_redirect_uri(mut self, uri: RedirectUri) -> Self {
        self.redirect_uris.push(uri);
        self
    }

    /// Sets the grant types.
    pub fn with_grant_types<S: Into<String>>(
        mut self,
        grants: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_types = grants.into_iter().map(|g| GrantType(g.into())).collect();
        self
    }

    /// Sets the client's scope.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Lets the client introspect every token. Give this only to resource servers.
    pub fn with_introspect_any_token(mut self, allowed: bool) -> Self {
        self.introspect_any_token = allowed;
        self
    }

    /// Marks the client first-party (the consent policy may skip the page).
    pub fn with_first_party(mut self, first_party: bool) -> Self {
        self.first_party = first_party;
        self
    }

    /// Requires the client to push its authorization requests (RFC 9126 §6):
    /// a plain one at the authorization endpoint is refused.
    pub fn with_require_pushed_authorization_requests(mut self, required: bool) -> Self {
        self.require_pushed_authorization_requests = required;
        self
    }

    /// Limits the client to these resources (RFC 8707): a request for any
    /// other is `invalid_target`. Without this, it may have every resource
    /// the server knows.
    pub fn with_resources(
        mut self,
        resources: impl IntoIterator<Item = ResourceIndicator>,
    ) -> Self {
        self.resources = Some(resources.into_iter().collect());
        self
    }

    /// Whether the client may obtain tokens for `resource` (the server
    /// checks separately that it knows it).
    pub fn allows_resource(&self, resource: &ResourceIndicator) -> bool {
        self.resources.as_ref().is_none_or(|r| r.contains(resource))
    }

    /// Whether the client registered itself (RFC 7591): its name and
    /// other metadata are its own claims, not verified by anyone.
    pub fn is_dynamically_registered(&self) -> bool {
        self.registration.is_some()
    }

    /// Whether the client is registered at `now`: `false` for a dynamic
    /// registration that expired unused (a store may not have removed it yet).
    pub fn is_live(&self, now: time::OffsetDateTime) -> bool {
        self.registration
            .as_ref()
            .and_then(|r| r.unused_until)
            .is_none_or(|until| now < until)
    }

    /// Chooses the client's access-token format (RFC 9068 JWT or opaque),
    /// whatever the server's default.
    pub fn with_access_token_format(mut self, format: crate::jwt::AccessTokenFormat) -> Self {
        self.access_token_format = Some(format);
        self
    }

    /// Whether the client is public.
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }

    /// Whether the client may use the grant type.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g.as_str() == grant_type)
    }
}

/// Where the server finds clients. Implemented by every store crate; an
/// embedder with its own client database implements it too.
#[async_trait]
pub trait ClientRegistry: Send + Sync {
    /// The client with this id, if registered.
    ///
    /// Shared (`Arc`), because the server looks a client up on every token,
    /// introspection and revocation request: a registry that keeps clients in
    /// memory hands out a reference count, not a deep copy.
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError>;

    /// The client with this id when the registry can answer at once,
    /// without I/O: one that keeps its clients in memory, or a cache that
    /// holds this one. The server asks here first where it looks clients up
    /// on every request (client authentication, the authorization request),
    /// which spares it [`client`](Self::client)'s boxed future. `None`
    /// means "ask `client`": the default, always correct.
    fn client_at_hand(&self, id: &ClientId) -> Option<Arc<Client>> {
        let _ = id;
        None
    }

    /// Stores a dynamically registered client (RFC 7591), atomically
    /// unless `max_dynamic` dynamically registered clients are live at
    /// `now` (then `CapReached`, storing nothing), or a client with its id
    /// exists (`IdTaken`). Registrations that expired unused by `now` do
    /// not count (and may be removed). A client whose
    /// [`registration`](Client::registration) has an `unused_until` must be
    /// forgotten after it unless [`mark_client_used`](Self::mark_client_used)
    /// is called first.
    ///
    /// The default answers an error: a registry that does not implement it
    /// cannot serve the registration endpoint.
    async fn register_client(
        &self,
        client: Client,
        max_dynamic: usize,
        now: time::OffsetDateTime,
    ) -> Result<RegisterOutcome, StoreError> {
        let _ = (client, max_dynamic, now);
        Err(StoreError::other(
            "this client registry does not support dynamic registration",
        ))
    }

    /// How many dynamically registered clients are live at `now` (what
    /// [`register_client`](Self::register_client) compares with its cap).
    async fn dynamic_client_count(&self, now: time::OffsetDateTime) -> Result<u64, StoreError> {
        let _ = now;
        Ok(0)
    }

    /// Records that a dynamically registered client obtained a token: its
    /// `registration.unused_until` is cleared and it no longer expires. The
    /// server calls it once per client (while the record it reads still
    /// has an `unused_until`); repeating it is harmless. Nothing happens
    /// for an unknown or not dynamically registered client.
    async fn mark_client_used(
        &self,
        id: &ClientId,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let _ = (id, now);
        Ok(())
    }

    /// Removes the dynamically registered clients whose `unused_until` is
    /// at or before `now`; how many. (Stores also expire them by
    /// themselves: a sweeper, TTLs; this is for callers with their own clock.)
    async fn expire_unused_clients(&self, now: time::OffsetDateTime) -> Result<u64, StoreError> {
        let _ = now;
        Ok(0)
    }
}

/// [`ClientRegistry::client`], answered by
/// [`client_at_hand`](ClientRegistry::client_at_hand) when the registry can.
pub(crate) async fn lookup_client(
    registry: &(impl ClientRegistry + ?Sized),
    id: &ClientId,
) -> Result<Option<Arc<Client>>, StoreError> {
    match registry.client_at_hand(id) {
        Some(client) => Ok(Some(client)),
        None => registry.client(id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_syntax() {
        assert!(ClientId::new("printshop").is_some());
        assert!(ClientId::new("").is_none());
        assert!(ClientId::new("a\u{7f}").is_none());
        assert!(ClientId::new("x".repeat(256)).is_none());
    }

    #[test]
    fn secret_verification() {
        let h = SecretHash::of("s3cret");
        assert!(h.verify("s3cret"));
        assert!(!h.verify("s3cret "));
        assert!(!format!("{h:?}").contains("s3cret"));
    }

    #[test]
    fn generated_secrets_are_long_and_verify() {
        let (s, h) = generate_client_secret(&crate::token::OsRandom);
        assert_eq!(s.len(), 43);
        assert!(h.verify(&s));
    }
}
