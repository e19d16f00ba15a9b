//! Registered clients (RFC 6749 §2) and the registry trait that finds them.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::redirect::RedirectUri;
use crate::registration::{DynamicRegistration, RegisterOutcome};
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
pub use crate::secret::SecretHash;
use crate::token::Random;

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
        Self::is_valid(id).then(|| Self(Arc::from(id)))
    }

    /// Whether `id` is a valid client id ([`new`](Self::new) would accept
    /// it), checked without allocating.
    pub(crate) fn is_valid(id: &str) -> bool {
        !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| (0x20..=0x7E).contains(&b))
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

/// How a client authenticates at the token, revocation, introspection and
/// PAR endpoints (RFC 6749 §2.3): a name from the OAuth Token Endpoint
/// Authentication Methods registry (RFC 7591 §2, e.g.
/// `client_secret_basic`, `private_key_jwt`), or an extension's own.
///
/// An open set, like grant types: each name is served by a
/// [`ClientAuthMethod`](crate::ClientAuthMethod) registered on the server,
/// and a client may use the methods it is registered for. The former enum
/// variants stay as constants of the same names, so
/// `AuthMethod::ClientSecretBasic` reads as before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthMethod(Cow<'static, str>);

#[allow(non_upper_case_globals)]
impl AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    pub const ClientSecretBasic: Self = Self(Cow::Borrowed("client_secret_basic"));
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    pub const ClientSecretPost: Self = Self(Cow::Borrowed("client_secret_post"));
    /// A public client: `client_id` only (RFC 7591 §2 `none`).
    pub const None: Self = Self(Cow::Borrowed("none"));
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OpenID
    /// Connect Core §9 `private_key_jwt`).
    pub const PrivateKeyJwt: Self = Self(Cow::Borrowed("private_key_jwt"));

    /// A method by its registered name, for extension methods
    /// (`tls_client_auth`, say).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self(name.into())
    }

    /// The name registered for RFC 8414 `token_endpoint_auth_methods_supported`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    /// Can authenticate, but shares no secret with the server: it proves
    /// itself with a key ([`AuthMethod::PrivateKeyJwt`], its public keys in
    /// [`Client::jwks`]) or by a method of an extension.
    ConfidentialWithoutSecret,
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
    /// Whether it always uses DPoP at the token endpoint (RFC 9449 §5.2
    /// `dpop_bound_access_tokens`): a token request of it without a `DPoP`
    /// proof is refused, so its codes and refresh tokens, if stolen, can
    /// never be redeemed for bearer tokens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
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
    /// Its public keys (RFC 7591 §2 `jwks`), which verify the JWTs it signs
    /// to authenticate with [`AuthMethod::PrivateKeyJwt`] (RFC 7523 §2.2).
    /// Held inline: Tessera does not fetch a `jwks_uri` for clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<crate::keys::Jwks>,
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
            dpop_bound_access_tokens: false,
            access_token_format: None,
            registration: None,
            resources: None,
            jwks: None,
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
            dpop_bound_access_tokens: false,
            access_token_format: None,
            registration: None,
            resources: None,
            jwks: None,
        }
    }

    /// A confidential client that holds no shared secret: it authenticates
    /// with `private_key_jwt` against `jwks` (RFC 7523 §2.2).
    pub fn with_private_key_jwt(
        id: ClientId,
        name: impl Into<String>,
        jwks: crate::keys::Jwks,
    ) -> Self {
        let mut client = Self::public(id, name);
        client.kind = ClientKind::ConfidentialWithoutSecret;
        client.auth_methods = [AuthMethod::PrivateKeyJwt].into();
        client.jwks = Some(jwks);
        client
    }

    /// Sets the client's public keys (RFC 7591 §2 `jwks`), for
    /// `private_key_jwt`.
    pub fn with_jwks(mut self, jwks: crate::keys::Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// The hash of the client's secret, if it has one.
    pub fn secret_hash(&self) -> Option<&SecretHash> {
        match &self.kind {
            ClientKind::Confidential { secret } => Some(secret),
            _ => None,
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

    /// Requires DPoP of the client at the token endpoint (RFC 9449 §5.2
    /// `dpop_bound_access_tokens`): a token request without a `DPoP` proof
    /// is `400 invalid_dpop_proof`, so every access token it gets is bound
    /// to a key.
    pub fn with_dpop_bound_access_tokens(mut self, required: bool) -> Self {
        self.dpop_bound_access_tokens = required;
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
    /// registration that expired, unused or idle (a store may not have
    /// removed it yet).
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

    /// Whether `requested` designates one of the client's redirect URIs
    /// (RFC 6749 §3.1.2.3: the same string, RFC 9700 §2.1), a loopback IP
    /// literal with any port (RFC 8252 §7.3) when it registered none, and,
    /// for a public client (a native app), whatever port it registered.
    pub fn accepts_redirect_uri(&self, requested: &str) -> bool {
        if self.is_public() {
            self.redirect_uris
                .iter()
                .any(|r| r.matches_any_loopback_port(requested))
        } else {
            self.redirect_uris.iter().any(|r| r.matches(requested))
        }
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

    /// [`client_at_hand`](Self::client_at_hand) by the id's text, for the
    /// server's client authentication, which has not made a [`ClientId`]
    /// (that would be an allocation per request). A registry whose map is
    /// keyed by `ClientId` answers with `map.get(id)` (`ClientId` borrows
    /// as `str`). The default makes the `ClientId` and asks
    /// `client_at_hand`: always correct.
    fn client_at_hand_str(&self, id: &str) -> Option<Arc<Client>> {
        ClientId::new(id).and_then(|id| self.client_at_hand(&id))
    }

    /// Stores a dynamically registered client (RFC 7591), atomically
    /// unless `max_dynamic` dynamically registered clients are live at
    /// `now` (then `CapReached`, storing nothing), or a client with its id
    /// exists (`IdTaken`). Registrations that expired by `now` do not
    /// count (and may be removed). A client whose
    /// [`registration`](Client::registration) has an `unused_until` must be
    /// forgotten after it unless [`mark_client_used`](Self::mark_client_used)
    /// moves it first.
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

    /// Records that a dynamically registered client obtained a token at
    /// `now`: its `registration.unused_until` becomes `until` when that is
    /// later, by [`DynamicRegistration::mark_used`]'s rule (`None`:
    /// cleared, the client no longer expires; a client without one gets
    /// one; nothing for a registration that expired at or before `now`).
    /// A store that keeps the expiry outside the record (a TTL, an index)
    /// moves it too. The server calls it when the client's expiry is due
    /// within the registration policy's idle lifetime, at most about once
    /// a day per client; repeating it is harmless. Nothing happens for an
    /// unknown or not dynamically registered client.
    ///
    /// [`DynamicRegistration::mark_used`]: crate::DynamicRegistration::mark_used
    async fn mark_client_used(
        &self,
        id: &ClientId,
        now: time::OffsetDateTime,
        until: Option<time::OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let _ = (id, now, until);
        Ok(())
    }

    /// Forgets the dynamically registered client whose `unused_until` comes
    /// soonest, if it comes before `before`: the registration endpoint
    /// makes room so at its cap, with `before` its unused lifetime from
    /// now, so that a flood of registrations nobody uses cannot shut
    /// registration until they expire (a client that obtained tokens has a
    /// later deadline, and is touched only in the last stretch of its idle
    /// lifetime). Instances evicting at once must each forget a different
    /// one. The client forgotten, or `None` when none is due that soon.
    /// The default forgets nothing (the cap then refuses until
    /// registrations expire).
    async fn evict_unused_client(
        &self,
        before: time::OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        let _ = before;
        Ok(None)
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

/// [`lookup_client`] by the id's text: the registry's
/// [`client_at_hand_str`](ClientRegistry::client_at_hand_str), else its
/// [`client`](ClientRegistry::client). An id that is not a valid
/// [`ClientId`] names no client.
pub(crate) async fn lookup_client_str(
    registry: &(impl ClientRegistry + ?Sized),
    id: &str,
) -> Result<Option<Arc<Client>>, StoreError> {
    if let Some(client) = registry.client_at_hand_str(id) {
        return Ok(Some(client));
    }
    match ClientId::new(id) {
        Some(id) => registry.client(&id).await,
        None => Ok(None),
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

    /// RFC 8252 §7.3: a native app (public client) may use any port on a
    /// loopback redirect URI, even one registered with a port; a
    /// confidential web client keeps the port it registered.
    #[test]
    fn loopback_ports_are_free_for_public_clients_rfc8252_7_3() {
        let cb = crate::redirect::RedirectUri::new("http://127.0.0.1:9001/callback").unwrap();
        let native =
            Client::public(ClientId::new("cli").unwrap(), "CLI").with_redirect_uri(cb.clone());
        let web = Client::confidential(ClientId::new("web").unwrap(), "Web", SecretHash::of("s"))
            .with_redirect_uri(cb);
        for requested in [
            "http://127.0.0.1:9001/callback",
            "http://127.0.0.1:50123/callback",
        ] {
            assert!(native.accepts_redirect_uri(requested), "{requested}");
        }
        assert!(web.accepts_redirect_uri("http://127.0.0.1:9001/callback"));
        assert!(!web.accepts_redirect_uri("http://127.0.0.1:50123/callback"));
        assert!(!native.accepts_redirect_uri("http://127.0.0.1:50123/other"));
    }

    #[test]
    fn generated_secrets_are_long_and_verify() {
        let (s, h) = generate_client_secret(&crate::token::OsRandom);
        assert_eq!(s.len(), 43);
        assert!(h.verify(&s));
    }
}
