//! Client authentication at back-channel endpoints (RFC 6749 §2.3), as an
//! extension point: each method is a [`ClientAuthMethod`], registered on
//! the server by name like a grant type
//! ([`ServerBuilder::client_auth_method`](crate::ServerBuilder::client_auth_method)).
//! The built-in `client_secret_basic`, `client_secret_post` and `none`
//! ([`ClientSecretBasic`], [`ClientSecretPost`], [`NoClientAuth`]) are
//! registered by default; [`PrivateKeyJwt`] (RFC 7523 §2.2) when asked.
//!
//! The server composes them the same way at every endpoint that
//! authenticates clients (token, revocation, introspection, PAR, device
//! authorization):
//!
//! 1. every method says, cheaply and without I/O, whether the request
//!    carries its credentials, and for which client
//!    ([`ClientAuthMethod::presented`]);
//! 2. credentials of more than one method are `invalid_request` (RFC 6749
//!    §2.3: "MUST NOT use more than one authentication method in each
//!    request"); a bare `client_id` (`none`) counts only when no method
//!    presents credentials; nothing at all is `invalid_client`;
//! 3. the server applies the abuse hook (a client over its failure limit is
//!    refused before anything is verified), looks the client up, checks it
//!    is registered for the method, and only then asks the method to verify
//!    ([`ClientAuthMethod::verify`]);
//! 4. any failure is `401 invalid_client` with a `WWW-Authenticate`
//!    challenge (RFC 6749 §5.2), its precise cause kept in the error's
//!    [`Reason`].

mod private_key_jwt;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use crate::client::{AuthMethod, Client, ClientId, ClientKind};
use crate::error::{OAuthError, Reason};
use crate::keys::JwsAlgorithm;
use crate::params::Params;
use crate::secret::SecretVerifier;
use crate::server::Server;
use crate::storage::{ReplayKey, Store};

pub use private_key_jwt::{AssertionAudience, CLIENT_ASSERTION_TYPE_JWT_BEARER, PrivateKeyJwt};

/// What a client-authentication method sees of a request: the
/// `Authorization` header and the form (or query) parameters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientAuthRequest<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The request's parameters.
    pub params: &'a Params,
    /// The Basic credentials, decoded once for both steps of
    /// [`ClientSecretBasic`] (`None` inside: absent or malformed).
    basic: OnceLock<Option<(ClientId, String)>>,
}

impl<'a> ClientAuthRequest<'a> {
    /// A request with this header and these parameters.
    pub fn new(authorization: Option<&'a str>, params: &'a Params) -> Self {
        Self {
            authorization,
            params,
            basic: OnceLock::new(),
        }
    }

    /// The `Authorization: Basic` credentials (RFC 6749 §2.3.1), decoded
    /// on first use: `None` without a Basic header, `Some(None)` for a
    /// malformed one.
    fn basic_credentials(&self) -> Option<Option<&(ClientId, String)>> {
        let payload = self.authorization.and_then(basic_payload)?;
        Some(self.basic.get_or_init(|| decode_basic(payload)).as_ref())
    }
}

/// What a method found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Presented {
    /// The request carries this method's credentials, for this client.
    Credentials(ClientId),
    /// The request only names this client (`none`, RFC 6749 §3.2.1): it
    /// counts only when no method presents credentials.
    IdentifierOnly(ClientId),
}

impl Presented {
    /// The client the request claims to be.
    pub fn client_id(&self) -> &ClientId {
        match self {
            Self::Credentials(id) | Self::IdentifierOnly(id) => id,
        }
    }
}

/// What a method may use while verifying: the time, the server's identity
/// and endpoints, the store (e.g. its replay cache) and the server's secret
/// verifiers.
#[non_exhaustive]
pub struct ClientAuthContext<'a> {
    /// The time of this request.
    pub now: OffsetDateTime,
    server: &'a Server,
    /// Where the request came from, if the adapter said.
    peer: Option<std::net::IpAddr>,
}

impl fmt::Debug for ClientAuthContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuthContext")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> ClientAuthContext<'a> {
    pub(crate) fn new(
        server: &'a Server,
        now: OffsetDateTime,
        peer: Option<std::net::IpAddr>,
    ) -> Self {
        Self { now, server, peer }
    }

    /// The server's issuer identifier (RFC 8414 §2).
    pub fn issuer(&self) -> &str {
        &self.server.config().issuer
    }

    /// The token endpoint's absolute URL.
    pub fn token_endpoint_url(&self) -> Option<String> {
        self.server.endpoint_url(crate::Endpoint::Token)
    }

    /// The pushed authorization request endpoint's absolute URL (RFC 9126
    /// §5), when PAR is served.
    pub fn pushed_authorization_endpoint_url(&self) -> Option<String> {
        self.server
            .endpoint_url(crate::Endpoint::PushedAuthorization)
    }

    /// The store (its replay cache, say).
    pub fn store(&self) -> &dyn Store {
        self.server.store().as_ref()
    }

    /// Remembers the one-time value `key` (a `jti`) until `expires_at` in
    /// the store's replay cache ([`ReplayStore`](crate::storage::ReplayStore)):
    /// `true` the first time, `false` for a replay. Atomic across server
    /// instances sharing the store.
    pub async fn first_use(
        &self,
        key: ReplayKey,
        expires_at: OffsetDateTime,
    ) -> Result<bool, OAuthError> {
        Ok(self.store().first_use(key, expires_at, self.now).await?)
    }

    /// Counts a client assertion for the replay cache when `client`
    /// registered itself ([`Action::ClientAssertion`](crate::Action::ClientAssertion),
    /// one count for all such clients): `503 temporarily_unavailable` once
    /// they used it up, or once the request's network used up its share
    /// ([`SourceNetwork`](crate::SourceNetwork)). Call it before
    /// [`first_use`](Self::first_use) for a value a self-registered client
    /// chooses.
    pub async fn count_unvetted_assertion(&self, client: &Client) -> Result<(), OAuthError> {
        self.server
            .count_unvetted_one_time_value(client, crate::abuse::Action::ClientAssertion, self.peer)
            .await
    }

    /// Checks `presented` against `client`'s stored secret with the
    /// verifier of the hash's scheme, in constant time. A wrong secret is
    /// `invalid_client` with [`Reason::ClientSecretMismatch`] (what the
    /// abuse hook counts); a client without a secret is `invalid_client`.
    pub async fn verify_secret(&self, client: &Client, presented: &str) -> Result<(), OAuthError> {
        let verifier = client
            .secret_hash()
            .and_then(|h| self.server.secret_verifiers().for_hash(h));
        check_secret(client, verifier, presented).await
    }
}

/// Checks `presented` against `client`'s stored secret with `verifier`,
/// the verifier of the hash's scheme (looked up by the caller, who also
/// asks it [`is_slow`](SecretVerifier::is_slow)), in constant time.
pub(crate) async fn check_secret(
    client: &Client,
    verifier: Option<&Arc<dyn SecretVerifier>>,
    presented: &str,
) -> Result<(), OAuthError> {
    let Some(hash) = client.secret_hash() else {
        return Err(failed("client has no secret"));
    };
    let Some(verifier) = verifier else {
        tracing::error!(
            client = client.id.as_str(),
            scheme = hash.scheme(),
            "no verifier for the client's secret hash scheme"
        );
        return Err(failed("unknown secret hash scheme"));
    };
    let matches = match verifier.verify_now(hash, presented) {
        Some(matches) => matches,
        None => verifier.verify(hash, presented).await?,
    };
    if matches {
        Ok(())
    } else {
        Err(failed("wrong secret").with_reason(Reason::ClientSecretMismatch))
    }
}

/// `invalid_client`, the one answer to every failed authentication (RFC
/// 6749 §5.2); `why` is logged, never sent.
pub(crate) fn failed(why: &'static str) -> OAuthError {
    tracing::debug!(reason = why, "client authentication failed");
    OAuthError::invalid_client("client authentication failed")
}

/// One client-authentication method (RFC 6749 §2.3, RFC 7591 §2
/// `token_endpoint_auth_method`). Implement it for a method of your own and
/// register it with
/// [`ServerBuilder::client_auth_method`](crate::ServerBuilder::client_auth_method);
/// the built-in methods implement it too.
#[async_trait]
pub trait ClientAuthMethod: Send + Sync + fmt::Debug {
    /// The method's registered name: what clients are registered for
    /// ([`Client::auth_methods`]) and metadata lists (RFC 8414
    /// `token_endpoint_auth_methods_supported`).
    fn method(&self) -> AuthMethod;

    /// The JWS algorithms the method accepts, for RFC 8414
    /// `token_endpoint_auth_signing_alg_values_supported`; none by default.
    fn signing_algorithms(&self) -> Vec<JwsAlgorithm> {
        Vec::new()
    }

    /// The request parameters the method reads. A parameter that some
    /// method, the grant or the endpoint reads is refused when sent twice
    /// or malformed; any other is ignored (RFC 6749 §3.2: the server "MUST
    /// ignore unrecognized request parameters"). `None`, the default,
    /// counts every parameter as read, so that any repeat is refused: the
    /// safe choice for a method that does not list its own.
    fn parameters(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether the request uses this method, and which client it names:
    /// `Ok(None)` when it carries none of the method's credentials. Cheap
    /// and without I/O (every registered method is asked for every
    /// request). Malformed credentials of this method are `invalid_client`;
    /// a request that contradicts itself (a `client_id` parameter naming
    /// another client) is `invalid_request`.
    fn presented(&self, request: &ClientAuthRequest<'_>) -> Result<Option<Presented>, OAuthError>;

    /// Verifies the request's credentials for `client`: the server has
    /// looked it up by [`presented`](Self::presented)'s id and checked it
    /// is registered for this method. Failure is `invalid_client`.
    async fn verify(
        &self,
        ctx: &ClientAuthContext<'_>,
        request: &ClientAuthRequest<'_>,
        client: &Client,
    ) -> Result<(), OAuthError>;
}

/// `client_secret_basic`: HTTP Basic with the form-urlencoded id and
/// secret (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientSecretBasic;

#[async_trait]
impl ClientAuthMethod for ClientSecretBasic {
    fn method(&self) -> AuthMethod {
        AuthMethod::ClientSecretBasic
    }

    fn parameters(&self) -> Option<&'static [&'static str]> {
        Some(&["client_id"])
    }

    fn presented(&self, request: &ClientAuthRequest<'_>) -> Result<Option<Presented>, OAuthError> {
        let Some(decoded) = request.basic_credentials() else {
            return Ok(None);
        };
        let (id, _) = decoded.ok_or_else(malformed_basic)?;
        // §2.3.1 lets a client repeat its id in the body; it must agree.
        if request
            .params
            .get("client_id")
            .is_some_and(|form_id| form_id != id.as_str())
        {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        Ok(Some(Presented::Credentials(id.clone())))
    }

    async fn verify(
        &self,
        ctx: &ClientAuthContext<'_>,
        request: &ClientAuthRequest<'_>,
        client: &Client,
    ) -> Result<(), OAuthError> {
        let (_, secret) = request
            .basic_credentials()
            .flatten()
            .ok_or_else(|| failed("malformed Basic credentials"))?;
        ctx.verify_secret(client, secret).await
    }
}

/// `client_secret_post`: `client_id` and `client_secret` in the form body
/// (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientSecretPost;

#[async_trait]
impl ClientAuthMethod for ClientSecretPost {
    fn method(&self) -> AuthMethod {
        AuthMethod::ClientSecretPost
    }

    fn parameters(&self) -> Option<&'static [&'static str]> {
        Some(&["client_id", "client_secret"])
    }

    fn presented(&self, request: &ClientAuthRequest<'_>) -> Result<Option<Presented>, OAuthError> {
        if !request.params.contains("client_secret") {
            return Ok(None);
        }
        // Both parameters are required (§2.3.1); the id may not come from
        // a Basic header (that would be two methods).
        let Some(id) = request.params.get("client_id") else {
            return Err(OAuthError::invalid_request(
                "client_secret without client_id",
            ));
        };
        let id =
            ClientId::new(id).ok_or_else(|| OAuthError::invalid_client("malformed client_id"))?;
        Ok(Some(Presented::Credentials(id)))
    }

    async fn verify(
        &self,
        ctx: &ClientAuthContext<'_>,
        request: &ClientAuthRequest<'_>,
        client: &Client,
    ) -> Result<(), OAuthError> {
        let secret = request
            .params
            .get("client_secret")
            .ok_or_else(|| failed("no client_secret"))?;
        ctx.verify_secret(client, secret).await
    }
}

/// `none`: a public client names itself with `client_id` (RFC 6749
/// §3.2.1, RFC 7591 §2). It proves nothing, so it applies only when no
/// other method presents credentials, and only to public clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClientAuth;

#[async_trait]
impl ClientAuthMethod for NoClientAuth {
    fn method(&self) -> AuthMethod {
        AuthMethod::None
    }

    fn parameters(&self) -> Option<&'static [&'static str]> {
        Some(&["client_id", "client_assertion", "client_assertion_type"])
    }

    fn presented(&self, request: &ClientAuthRequest<'_>) -> Result<Option<Presented>, OAuthError> {
        // A client assertion no registered method recognised is a failed
        // authentication, not a public client (RFC 7521 §4.2).
        if request.params.contains("client_assertion")
            || request.params.contains("client_assertion_type")
        {
            return Ok(None);
        }
        match request.params.get("client_id") {
            None => Ok(None),
            Some(id) => ClientId::new(id)
                .map(|id| Some(Presented::IdentifierOnly(id)))
                .ok_or_else(|| OAuthError::invalid_client("malformed client_id")),
        }
    }

    async fn verify(
        &self,
        _ctx: &ClientAuthContext<'_>,
        _request: &ClientAuthRequest<'_>,
        client: &Client,
    ) -> Result<(), OAuthError> {
        public_client(client)
    }
}

/// `none` verified: only a public client may name itself (RFC 6749 §3.2.1).
pub(crate) fn public_client(client: &Client) -> Result<(), OAuthError> {
    if matches!(client.kind, ClientKind::Public) {
        Ok(())
    } else {
        Err(failed("a confidential client must authenticate"))
    }
}

/// Which of `methods` the request uses, by the rule of RFC 6749 §2.3: one
/// method's credentials; a bare `client_id` when nothing else; more than
/// one is `invalid_request`, none `invalid_client`.
pub(crate) fn select<'m>(
    methods: &'m [Arc<dyn ClientAuthMethod>],
    request: &ClientAuthRequest<'_>,
) -> Result<(&'m dyn ClientAuthMethod, ClientId), OAuthError> {
    let mut credentials = None;
    let mut identifier = None;
    for m in methods {
        let m = m.as_ref();
        match m.presented(request)? {
            Some(Presented::Credentials(id)) => {
                if credentials.is_some() {
                    return Err(two_methods());
                }
                credentials = Some((m, id));
            }
            Some(Presented::IdentifierOnly(id)) => {
                identifier.get_or_insert((m, id));
            }
            None => {}
        }
    }
    credentials.or(identifier).ok_or_else(|| {
        nothing_presented(
            request.params.contains("client_assertion")
                || request.params.contains("client_assertion_type"),
        )
    })
}

/// `invalid_client` for a request no method recognised.
fn nothing_presented(assertion: bool) -> OAuthError {
    // A client assertion of a type no method serves (RFC 7521 §4.2.1
    // names `invalid_client` for an assertion that cannot be used).
    if assertion {
        OAuthError::invalid_client("unsupported client assertion")
    } else {
        OAuthError::invalid_client("client authentication required")
            .with_reason(Reason::ClientAuthenticationMissing)
    }
}

fn malformed_basic() -> OAuthError {
    OAuthError::invalid_client("malformed Basic credentials")
        .with_reason(Reason::ClientAuthenticationFailed)
}

/// What [`select_builtin`] chose.
pub(crate) enum Selected<'m, 'r> {
    /// `client_secret_basic` or `client_secret_post` (the method's name),
    /// with the presented secret.
    Secret(AuthMethod, Cow<'r, str>),
    /// `none`: a public client's bare `client_id`.
    Public,
    /// A method registered besides the built-in ones.
    Other(&'m dyn ClientAuthMethod),
}

impl Selected<'_, '_> {
    /// The chosen method's registered name.
    pub(crate) fn method(&self) -> AuthMethod {
        match self {
            Self::Secret(m, _) => m.clone(),
            Self::Public => AuthMethod::None,
            Self::Other(m) => m.method(),
        }
    }
}

/// The client a request claims to be: the (checked) text the built-in
/// methods found, which needs no allocation, or an added method's id.
pub(crate) enum Claimed<'r> {
    /// Found by a built-in method; a valid client id.
    Text(Cow<'r, str>),
    /// Found by an added method.
    Id(ClientId),
}

impl Claimed<'_> {
    /// The id's text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Id(id) => id.as_str(),
        }
    }
}

/// The form parameters the built-in methods read, found in one pass.
#[derive(Default)]
struct AuthParams<'p> {
    client_id: Option<&'p str>,
    client_secret: Option<&'p str>,
    /// `client_assertion` or `client_assertion_type` was sent.
    assertion: bool,
}

impl<'p> AuthParams<'p> {
    fn scan(params: &'p Params) -> Self {
        let mut found = Self::default();
        for (name, value) in params.iter() {
            match name {
                // The first of each, as `Params::get` answers.
                "client_id" => {
                    found.client_id.get_or_insert(value);
                }
                "client_secret" => {
                    found.client_secret.get_or_insert(value);
                }
                "client_assertion" | "client_assertion_type" => found.assertion = true,
                _ => {}
            }
        }
        found
    }
}

/// [`select`] for a server whose registered methods are the built-in
/// `client_secret_basic`, `client_secret_post` and `none`, in that order,
/// followed by `others`: the same answers (errors included, in the same
/// order), but the built-in methods are decided in one pass over the header
/// and the form, with no `dyn` call, no cached decoding and no allocation
/// but the chosen client's id. The Basic credentials are decoded into
/// `buffer` (the secret borrows from it), `heap` when they do not fit.
pub(crate) fn select_builtin<'m, 'r>(
    others: &'m [Arc<dyn ClientAuthMethod>],
    request: &ClientAuthRequest<'r>,
    buffer: &'r mut [u8; BASIC_BUFFER],
    heap: &'r mut Vec<u8>,
) -> Result<(Selected<'m, 'r>, Claimed<'r>), OAuthError> {
    let form = AuthParams::scan(request.params);
    let mut credentials: Option<(Selected<'m, 'r>, Cow<'r, str>)> = None;
    // client_secret_basic (RFC 6749 §2.3.1), as `ClientSecretBasic::presented`.
    if let Some(payload) = request.authorization.and_then(basic_payload) {
        let (id, secret) = decode_raw(payload, buffer, heap)
            .and_then(split_basic)
            .filter(|(id, _)| ClientId::is_valid(id))
            .ok_or_else(malformed_basic)?;
        if form.client_id.is_some_and(|form_id| form_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        credentials = Some((Selected::Secret(AuthMethod::ClientSecretBasic, secret), id));
    }
    // client_secret_post (§2.3.1), as `ClientSecretPost::presented`.
    if let Some(secret) = form.client_secret {
        let Some(id) = form.client_id else {
            return Err(OAuthError::invalid_request(
                "client_secret without client_id",
            ));
        };
        if !ClientId::is_valid(id) {
            return Err(OAuthError::invalid_client("malformed client_id"));
        }
        if credentials.is_some() {
            return Err(two_methods());
        }
        credentials = Some((
            Selected::Secret(AuthMethod::ClientSecretPost, Cow::Borrowed(secret)),
            Cow::Borrowed(id),
        ));
    }
    // none (§3.2.1), as `NoClientAuth::presented`.
    let mut identifier: Option<(Selected<'m, 'r>, Cow<'r, str>)> = None;
    if let Some(id) = form.client_id.filter(|_| !form.assertion) {
        if !ClientId::is_valid(id) {
            return Err(OAuthError::invalid_client("malformed client_id"));
        }
        identifier = Some((Selected::Public, Cow::Borrowed(id)));
    }
    // The methods registered besides, as in `select`.
    let mut other_credentials = None;
    let mut other_identifier = None;
    for m in others {
        let m = m.as_ref();
        match m.presented(request)? {
            Some(Presented::Credentials(id)) => {
                if credentials.is_some() || other_credentials.is_some() {
                    return Err(two_methods());
                }
                other_credentials = Some((Selected::Other(m), id));
            }
            Some(Presented::IdentifierOnly(id)) => {
                other_identifier.get_or_insert((Selected::Other(m), id));
            }
            None => {}
        }
    }
    // Credentials before a bare `client_id`; among each, the first
    // registered (the built-in methods come first).
    let (selected, id) = match (credentials, other_credentials, identifier, other_identifier) {
        (Some((selected, id)), ..) => (selected, Claimed::Text(id)),
        (None, Some((selected, id)), ..) => (selected, Claimed::Id(id)),
        (None, None, Some((selected, id)), _) => (selected, Claimed::Text(id)),
        (None, None, None, Some((selected, id))) => (selected, Claimed::Id(id)),
        (None, None, None, None) => return Err(nothing_presented(form.assertion)),
    };
    Ok((selected, id))
}

fn two_methods() -> OAuthError {
    OAuthError::invalid_request("use only one client authentication method")
}

/// The credentials of an `Authorization: Basic` header (RFC 7617 §2; the
/// scheme is case-insensitive): what follows the first space when the word
/// before it is `basic`.
fn basic_payload(header: &str) -> Option<&str> {
    // Compared as bytes: the scheme is five ASCII letters and a space.
    let scheme = header.as_bytes().get(..6)?;
    let rest = header.get(6..)?;
    (scheme.eq_ignore_ascii_case(b"basic ")).then(|| rest.trim())
}

/// The size of the buffer Basic credentials are decoded into: usual
/// credentials fit; longer ones get a heap buffer.
pub(crate) const BASIC_BUFFER: usize = 256;

/// The base64 payload of Basic credentials, decoded into `stack` or, when
/// it does not fit, into `heap`.
fn decode_raw<'b>(
    payload: &str,
    stack: &'b mut [u8; BASIC_BUFFER],
    heap: &'b mut Vec<u8>,
) -> Option<&'b [u8]> {
    match STANDARD.decode_slice(payload, &mut stack[..]) {
        Ok(n) => {
            let stack: &'b [u8; BASIC_BUFFER] = stack;
            stack.get(..n)
        }
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            *heap = STANDARD.decode(payload).ok()?;
            let heap: &'b Vec<u8> = heap;
            Some(heap)
        }
        Err(_) => None,
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before being joined
/// with `:`. The id is not yet checked.
fn split_basic(raw: &[u8]) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    let text = std::str::from_utf8(raw).ok()?;
    // The id comes first and is short: a plain scan finds the `:` sooner
    // than a searcher is set up. `:` is ASCII, so both ends are char
    // boundaries.
    let colon = text.bytes().position(|b| b == b':')?;
    let (id, secret) = (text.get(..colon)?, text.get(colon + 1..)?);
    if !has_form_escape(raw) {
        // Nothing to decode (the usual case for generated ids and secrets).
        return Some((Cow::Borrowed(id), Cow::Borrowed(secret)));
    }
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Whether `bytes` holds a `+` or a `%`, the escapes of form encoding,
/// looked for eight bytes at a time (a byte of `x` is zero exactly when
/// `(x - 0x01..) & !x & 0x80..` is not).
fn has_form_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_byte = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        if has_byte(word, b'+') || has_byte(word, b'%') {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b == b'+' || b == b'%')
}

fn decode_basic(payload: &str) -> Option<(ClientId, String)> {
    let mut stack = [0u8; BASIC_BUFFER];
    let mut heap = Vec::new();
    let (id, secret) = split_basic(decode_raw(payload, &mut stack, &mut heap)?)?;
    Some((ClientId::new(id)?, secret.into_owned()))
}

fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    if !has_form_escape(s.as_bytes()) {
        // Nothing to decode (the usual case for generated ids and secrets).
        return Some(Cow::Borrowed(s));
    }
    let replaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&replaced)
        .decode_utf8()
        .ok()
        .map(|c| Cow::Owned(c.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn params(s: &str) -> Params {
        Params::parse(s).unwrap_or_default()
    }

    fn methods() -> Vec<Arc<dyn ClientAuthMethod>> {
        vec![
            Arc::new(ClientSecretBasic),
            Arc::new(ClientSecretPost),
            Arc::new(NoClientAuth),
            Arc::new(PrivateKeyJwt::default()),
        ]
    }

    /// The method chosen and the client named, or the error's code.
    fn pick(header: Option<&str>, form: &str) -> Result<(String, String), ErrorCode> {
        let p = params(form);
        let methods = methods();
        select(&methods, &ClientAuthRequest::new(header, &p))
            .map(|(m, id)| (m.method().as_str().to_owned(), id.as_str().to_owned()))
            .map_err(|e| e.code)
    }

    fn ok(method: &str, id: &str) -> Result<(String, String), ErrorCode> {
        Ok((method.to_owned(), id.to_owned()))
    }

    #[test]
    fn basic_is_form_urldecoded_rfc6749_2_3_1() {
        let decoded = decode_basic(basic("my%20app", "a%2Bb+c").trim_start_matches("Basic "));
        let (id, secret) = decoded.unwrap();
        assert_eq!(id.as_str(), "my app");
        assert_eq!(secret, "a+b c");
        assert_eq!(
            pick(Some(&basic("my%20app", "x")), ""),
            ok("client_secret_basic", "my app")
        );
    }

    #[test]
    fn escapes_are_found_anywhere() {
        for len in 0..40 {
            let plain = "a".repeat(len);
            assert!(!has_form_escape(plain.as_bytes()), "{len}");
            for at in 0..len {
                for escape in ["+", "%"] {
                    let mut s = plain.clone();
                    s.replace_range(at..=at, escape);
                    assert!(has_form_escape(s.as_bytes()), "{s}");
                }
            }
        }
        // Neighbours of the escapes, and bytes with the high bit set.
        assert!(!has_form_escape("*,$&\u{80}\u{ff}ü€aaaaaaaa".as_bytes()));
    }

    #[test]
    fn only_the_basic_scheme_carries_credentials_rfc7617_2() {
        assert_eq!(basic_payload("Basic YTpi"), Some("YTpi"));
        assert_eq!(basic_payload("bAsIc  YTpi "), Some("YTpi"));
        for h in [
            "Basic",
            "Basicx YTpi",
            "Bearer YTpi",
            "Basi YTpi",
            "",
            "Bäsic YTpi",
            "Basic\tYTpi",
        ] {
            assert_eq!(basic_payload(h), None, "{h}");
        }
    }

    #[test]
    fn long_basic_credentials_decode_too() {
        let secret = "s".repeat(1000);
        let (_, got) = decode_basic(basic("app", &secret).trim_start_matches("Basic ")).unwrap();
        assert_eq!(got, secret);
        assert_eq!(pick(Some("Basic !!!!"), ""), Err(ErrorCode::InvalidClient));
    }

    #[test]
    fn two_methods_at_once_is_invalid_request_rfc6749_2_3() {
        let both = pick(Some(&basic("a", "b")), "client_id=a&client_secret=b");
        assert_eq!(both, Err(ErrorCode::InvalidRequest));
        // A well-formed (unverified) assertion naming client `a`.
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"iss":"a","sub":"a"}"#);
        let assertion = format!(
            "client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion=e30.{payload}.c2ln"
        );
        assert_eq!(pick(None, &assertion), ok("private_key_jwt", "a"));
        assert_eq!(
            pick(None, &format!("client_id=a&client_secret=b&{assertion}")),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            pick(Some(&basic("a", "b")), &assertion),
            Err(ErrorCode::InvalidRequest)
        );
        // A client_id naming someone else than the assertion's sub.
        assert_eq!(
            pick(None, &format!("client_id=b&{assertion}")),
            Err(ErrorCode::InvalidRequest)
        );
        // RFC 7521 §4.2: both parameters, or it is malformed.
        assert_eq!(
            pick(
                None,
                &format!("client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}")
            ),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            pick(
                None,
                &format!(
                    "client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion=garbage"
                )
            ),
            Err(ErrorCode::InvalidClient)
        );
    }

    #[test]
    fn mismatched_ids_are_invalid_request() {
        assert_eq!(
            pick(Some(&basic("a", "b")), "client_id=z"),
            Err(ErrorCode::InvalidRequest)
        );
        // The same id repeated in the body is allowed (§2.3.1).
        assert_eq!(
            pick(Some(&basic("a", "b")), "client_id=a"),
            ok("client_secret_basic", "a")
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for h in ["Basic !!!", "Basic bm9jb2xvbg==", "basic %%%"] {
            assert_eq!(pick(Some(h), ""), Err(ErrorCode::InvalidClient), "{h}");
        }
    }

    #[test]
    fn post_and_none() {
        assert_eq!(
            pick(None, "client_id=a&client_secret=b"),
            ok("client_secret_post", "a")
        );
        assert_eq!(pick(None, "client_id=a"), ok("none", "a"));
        assert_eq!(pick(None, ""), Err(ErrorCode::InvalidClient));
        assert_eq!(
            pick(None, "client_secret=x"),
            Err(ErrorCode::InvalidRequest)
        );
        // Another scheme in the header is not client authentication.
        assert_eq!(pick(Some("Bearer abc"), "client_id=a"), ok("none", "a"));
    }

    /// The method chosen and the client named, or the error's code,
    /// description and reason.
    fn outcome(
        r: Result<(String, String), OAuthError>,
    ) -> Result<(String, String), (ErrorCode, Option<String>, Reason)> {
        r.map_err(|e| (e.code, e.description.clone(), e.reason()))
    }

    #[test]
    fn the_builtin_fast_path_answers_as_the_methods_do_rfc6749_2_3() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"iss":"a","sub":"a"}"#);
        let assertion = format!(
            "client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}&client_assertion=e30.{payload}.c2ln"
        );
        let long = basic("app", &"s".repeat(1000));
        let headers = [
            None,
            Some(basic("a", "b")),
            Some(basic("my%20app", "a%2Bb+c")),
            Some(basic("a\u{1}", "b")),
            Some(long),
            Some("Basic !!!".to_owned()),
            Some("Basic bm9jb2xvbg==".to_owned()),
            Some("Bearer abc".to_owned()),
        ];
        let forms = [
            String::new(),
            "client_id=a".to_owned(),
            "client_id=z".to_owned(),
            "client_id=my%20app".to_owned(),
            "client_id=a&client_secret=b".to_owned(),
            "client_secret=b".to_owned(),
            "client_id=%01&client_secret=b".to_owned(),
            "client_id=%01".to_owned(),
            "client_id=a&client_assertion_type=urn:x&client_assertion=abc".to_owned(),
            assertion.clone(),
            format!("client_id=a&{assertion}"),
            format!("client_id=b&{assertion}"),
            format!("client_id=a&client_secret=b&{assertion}"),
            format!("client_assertion_type={CLIENT_ASSERTION_TYPE_JWT_BEARER}"),
        ];
        let builtins: Vec<Arc<dyn ClientAuthMethod>> = vec![
            Arc::new(ClientSecretBasic),
            Arc::new(ClientSecretPost),
            Arc::new(NoClientAuth),
        ];
        for methods in [builtins, methods()] {
            for header in &headers {
                for form in &forms {
                    let p = params(form);
                    let request = ClientAuthRequest::new(header.as_deref(), &p);
                    let slow = select(&methods, &request)
                        .map(|(m, id)| (m.method().as_str().to_owned(), id.as_str().to_owned()));
                    let mut buffer = [0u8; BASIC_BUFFER];
                    let mut heap = Vec::new();
                    let fast = select_builtin(&methods[3..], &request, &mut buffer, &mut heap)
                        .map(|(s, id)| (s.method().as_str().to_owned(), id.as_str().to_owned()));
                    assert_eq!(outcome(fast), outcome(slow), "{header:?} {form:?}");
                }
            }
        }
    }

    #[test]
    fn the_builtin_fast_path_hands_over_the_secret() {
        let p = params("client_id=a&client_secret=s%2B1");
        let mut buffer = [0u8; BASIC_BUFFER];
        let mut heap = Vec::new();
        let request = ClientAuthRequest::new(None, &p);
        let secret = match select_builtin(&[], &request, &mut buffer, &mut heap) {
            Ok((Selected::Secret(_, secret), _)) => secret.into_owned(),
            _ => String::new(),
        };
        assert_eq!(secret, "s+1");
        let header = basic("a", "x%3Ay");
        let p = params("");
        let request = ClientAuthRequest::new(Some(&header), &p);
        let secret = match select_builtin(&[], &request, &mut buffer, &mut heap) {
            Ok((Selected::Secret(_, secret), _)) => secret.into_owned(),
            _ => String::new(),
        };
        assert_eq!(secret, "x:y");
    }

    #[test]
    fn an_assertion_nobody_serves_is_invalid_client_not_a_public_client() {
        let p = params("client_id=a&client_assertion_type=urn:x&client_assertion=abc");
        let methods: Vec<Arc<dyn ClientAuthMethod>> =
            vec![Arc::new(ClientSecretPost), Arc::new(NoClientAuth)];
        let e = select(&methods, &ClientAuthRequest::new(None, &p)).err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidClient));
    }
}
