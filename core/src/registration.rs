//! Dynamic client registration (RFC 7591): a client that knows nothing in
//! advance (an MCP client, say) posts its metadata as JSON and gets a
//! `client_id` (and, for a confidential client, a secret) back.
//!
//! Off unless the embedder turns it on with
//! [`ServerBuilder::enable_dynamic_registration`](crate::ServerBuilder::enable_dynamic_registration).
//! What an anonymous caller can make the server keep is bounded three ways
//! ([`RegistrationPolicy`]): a rate ([`Action::ClientRegistration`] through
//! the abuse hook), a total number of dynamically registered clients, and a
//! time: a registration never used to obtain a token within
//! [`RegistrationPolicy::unused_lifetime`] expires, and one used once is
//! forgotten after [`RegistrationPolicy::idle_lifetime`] without a token
//! (so the cap cannot fill for good with clients nobody uses any more).
//! Use is recorded when a token is issued to the client
//! ([`ClientRegistry::mark_client_used`](crate::ClientRegistry::mark_client_used)),
//! at most once a day per client: one store write per client and day, not
//! one per token.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::abuse::Action;
use crate::client::{AuthMethod, Client, ClientId, GrantType, SecretHash, generate_client_secret};
use crate::error::{ErrorCode, OAuthError, Reason};
use crate::http::{HttpRequest, HttpResponse};
use crate::redirect::RedirectUri;
use crate::scope::{Scope, ScopeToken};
use crate::server::Server;

/// The most redirect URIs one registration may carry.
pub const MAX_REDIRECT_URIS: usize = 20;
/// The most contacts one registration may carry.
pub const MAX_CONTACTS: usize = 10;
/// The longest URI (redirect, client, logo, terms, policy) accepted, in bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// The longest text value (name, contact, software id or version) accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// How the registration endpoint is run: who may register, and the bounds
/// on what registrations make the server keep. Built from [`open`](Self::open)
/// with the `with_*` methods:
///
/// ```
/// use tessera::RegistrationPolicy;
/// let policy = RegistrationPolicy::open()
///     .with_max_clients(1_000)
///     .with_unused_lifetime(time::Duration::hours(1));
/// assert!(policy.initial_access_tokens.is_empty());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistrationPolicy {
    /// Hashes of the initial access tokens (RFC 7591 §3) that may register;
    /// empty: registration is open to anyone.
    pub initial_access_tokens: Vec<SecretHash>,
    /// The most dynamically registered clients kept at once (live unused
    /// ones and used ones): 10,000 by default. At it, the registration
    /// nearest its deadline, if that comes within the unused lifetime (one
    /// never used, registered longest ago; a used one only in the last
    /// stretch of its idle lifetime), is forgotten to make room; else a
    /// registration is refused with `temporarily_unavailable` until some
    /// expire.
    pub max_clients: usize,
    /// How long a registration may go unused (no token obtained) before it
    /// expires: 24 hours by default.
    pub unused_lifetime: Duration,
    /// How long a client that has obtained tokens is kept after the last
    /// token issued to it (longer than `unused_lifetime`: the builder
    /// refuses less): 90 days by default, and never less than the
    /// server's refresh token and refresh family lifetimes, so no live
    /// refresh token outlives its client. It may be kept up to a day
    /// longer (use is recorded at most once a day). `None`: a client that
    /// obtained a token once is kept until it is removed, and the cap can
    /// fill for good.
    pub idle_lifetime: Option<Duration>,
    /// The grant types a client may register: `authorization_code` and
    /// `refresh_token` by default (each must also be served by the server).
    pub grant_types: BTreeSet<String>,
    /// The scope registered for a client that names none; `None` (the
    /// default): every scope the server knows.
    pub default_scope: Option<Scope>,
}

impl RegistrationPolicy {
    /// Anyone may register (no initial access token), with the default bounds.
    pub fn open() -> Self {
        Self {
            initial_access_tokens: Vec::new(),
            max_clients: 10_000,
            unused_lifetime: Duration::hours(24),
            idle_lifetime: Some(Duration::days(90)),
            grant_types: [GrantType::AUTHORIZATION_CODE, GrantType::REFRESH_TOKEN]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            default_scope: None,
        }
    }

    /// Requires an initial access token (RFC 7591 §3): registrations must
    /// carry `Authorization: Bearer <token>` with a token whose hash is
    /// one of these (call it again to accept several).
    #[must_use]
    pub fn with_initial_access_token(mut self, token: SecretHash) -> Self {
        self.initial_access_tokens.push(token);
        self
    }

    /// Keeps at most `max` dynamically registered clients.
    #[must_use]
    pub fn with_max_clients(mut self, max: usize) -> Self {
        self.max_clients = max;
        self
    }

    /// Expires a registration never used to obtain a token after `lifetime`.
    #[must_use]
    pub fn with_unused_lifetime(mut self, lifetime: Duration) -> Self {
        self.unused_lifetime = lifetime;
        self
    }

    /// Forgets a client that obtained tokens once after `lifetime` without
    /// another (`None`: keeps it until it is removed). See
    /// [`idle_lifetime`](Self::idle_lifetime).
    #[must_use]
    pub fn with_idle_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.idle_lifetime = lifetime;
        self
    }

    /// The grant types clients may register.
    #[must_use]
    pub fn with_grant_types<S: Into<String>>(
        mut self,
        grants: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_types = grants.into_iter().map(Into::into).collect();
        self
    }

    /// The scope of a client that registers without naming one.
    #[must_use]
    pub fn with_default_scope(mut self, scope: Scope) -> Self {
        self.default_scope = Some(scope);
        self
    }
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self::open()
    }
}

/// What a dynamically registered client's record knows about its
/// registration: when, whether it has been used, and the display metadata
/// it registered (RFC 7591 §2), which nobody has verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DynamicRegistration {
    /// When the client registered (`client_id_issued_at`).
    #[serde(with = "time::serde::timestamp")]
    pub issued_at: OffsetDateTime,
    /// Until when the client must obtain a token, or expire. Once it has,
    /// until when it is kept without another
    /// ([`RegistrationPolicy::idle_lifetime`]); `None`: kept until removed.
    #[serde(
        default,
        with = "time::serde::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub unused_until: Option<OffsetDateTime>,
    /// `client_name` as registered (the client's `name` is this, or its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `client_uri`: the client's home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// `logo_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `tos_uri`: the client's terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `policy_uri`: the client's privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `contacts`: people responsible for the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// `software_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// `software_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// For a client identified by a client ID metadata document
    /// (draft-ietf-oauth-client-id-metadata-document): the host of its
    /// `client_id` URL, which a consent page should show (§6.3: anyone can
    /// publish a document, so the host is what the person can check).
    /// `None` for a client that registered at the registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_document_host: Option<String>,
}

impl DynamicRegistration {
    /// A registration made at `issued_at` that expires unused at `unused_until`.
    pub fn new(issued_at: OffsetDateTime, unused_until: OffsetDateTime) -> Self {
        Self {
            issued_at,
            unused_until: Some(unused_until),
            client_name: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            contacts: Vec::new(),
            software_id: None,
            software_version: None,
            metadata_document_host: None,
        }
    }

    /// Records a token issued to the client at `now`: `unused_until`
    /// becomes `until` (`None`: the client no longer expires) if that is
    /// later than it was (a client kept for good, without one, gets one).
    /// `false` when nothing changes: already as late, or the registration
    /// expired at or before `now` (a token for a client that is gone must
    /// not bring it back). Every store applies this one rule in
    /// [`ClientRegistry::mark_client_used`](crate::ClientRegistry::mark_client_used).
    pub fn mark_used(&mut self, now: OffsetDateTime, until: Option<OffsetDateTime>) -> bool {
        let next = match (self.unused_until, until) {
            (Some(current), _) if current <= now => return false,
            (None, None) => return false,
            (Some(_), None) => None,
            (Some(current), Some(until)) if current >= until => return false,
            (_, Some(until)) => Some(until),
        };
        self.unused_until = next;
        true
    }
}

/// What a store answered to [`register_client`](crate::ClientRegistry::register_client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterOutcome {
    /// Stored.
    Registered,
    /// Not stored: as many dynamically registered clients as allowed are live.
    CapReached,
    /// Not stored: a client with this id exists.
    IdTaken,
}

/// The registration response (RFC 7591 §3.2.1): the client's id, its
/// secret if it is confidential, and every metadata value registered.
/// `Debug` hides the secret.
#[derive(Clone, Serialize)]
#[non_exhaustive]
pub struct ClientInformation {
    /// The new `client_id`.
    pub client_id: String,
    /// The secret, for a confidential client: shown once, stored only as its hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the id was issued, in seconds since the epoch.
    pub client_id_issued_at: i64,
    /// `0`: the secret does not expire (required with a secret, §3.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// The registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The registered authentication method.
    pub token_endpoint_auth_method: String,
    /// The registered grant types.
    pub grant_types: Vec<String>,
    /// The registered response types.
    pub response_types: Vec<&'static str>,
    /// The registered scope.
    pub scope: String,
    /// `client_name`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `client_uri`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// `logo_uri`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `tos_uri`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `policy_uri`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `contacts`, if registered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// `software_id`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// `software_version`, if registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// `jwks`, if registered (the public keys of `private_key_jwt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<crate::keys::Jwks>,
    /// `dpop_bound_access_tokens` as registered, if sent (RFC 9449 §5.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    /// `require_pushed_authorization_requests` as registered, if sent
    /// (RFC 9126 §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
}

impl fmt::Debug for ClientInformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInformation")
            .field("client_id", &self.client_id)
            .field("has_secret", &self.client_secret.is_some())
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

/// `invalid_client_metadata` (RFC 7591 §3.2.2).
fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
        .with_reason(Reason::MalformedParameter)
}

/// `invalid_redirect_uri` (RFC 7591 §3.2.2).
fn bad_redirect(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description)
        .with_reason(Reason::MalformedParameter)
}

/// A string member, if present; `null` counts as absent, an empty string
/// too (RFC 7591 §2 defines no meaning for an empty value); any other JSON
/// type is `invalid_client_metadata`.
fn text(map: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_metadata(format!("{name} must be a string"))),
    }
}

/// An array-of-strings member, if present.
fn texts(
    map: &Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<Vec<String>>, OAuthError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            if items.len() > max {
                return Err(bad_metadata(format!("{name} has more than {max} values")));
            }
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad_metadata(format!("{name} must be an array of strings"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(bad_metadata(format!("{name} must be an array of strings"))),
    }
}

/// Display text: bounded, printable (no control characters that could
/// forge lines in a page or a log).
fn display_text(map: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(s) = text(map, name)? else {
        return Ok(None);
    };
    if s.len() > MAX_TEXT_BYTES {
        return Err(bad_metadata(format!(
            "{name} is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(bad_metadata(format!(
            "{name} must not contain control characters"
        )));
    }
    if s.chars().any(is_invisible_format) {
        return Err(bad_metadata(format!(
            "{name} must not contain invisible or direction-changing characters"
        )));
    }
    Ok(Some(s))
}

/// Unicode characters that change how a name reads without being seen
/// (Unicode's default-ignorable code points, line and paragraph
/// separators): bidirectional overrides and isolates (a name such as
/// `Evil\u{202E}pohStnirP` shows as "EvilPrintShop"), zero-width
/// characters, the soft hyphen, variation selectors, Hangul fillers (a
/// name of U+3164 alone shows blank) and tag characters. A self-chosen name on a consent page
/// must read as it is (RFC 7591 §5: the page shows what the client claims).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A display URI (`client_uri`, `logo_uri`, `tos_uri`, `policy_uri`, RFC
/// 7591 §2): an absolute `https` URL without credentials, so a consent page
/// can link to it without running anything.
fn display_uri(map: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(s) = text(map, name)? else {
        return Ok(None);
    };
    if s.len() > MAX_URI_BYTES {
        return Err(bad_metadata(format!(
            "{name} is longer than {MAX_URI_BYTES} bytes"
        )));
    }
    // RFC 7591 §2 asks no scheme of these; `https`, and plain `http` to the
    // loopback interface as for redirect URIs (a client in development
    // names its own `http://localhost:3000`), never a script or a file.
    let ok = url::Url::parse(&s).is_ok_and(|u| {
        let web = match u.scheme() {
            "https" => true,
            "http" => matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")),
            _ => false,
        };
        web && u.host_str().is_some() && u.username().is_empty() && u.password().is_none()
    });
    if !ok {
        return Err(bad_metadata(format!(
            "{name} must be an absolute https URL (or http to the loopback interface)"
        )));
    }
    Ok(Some(s))
}

/// A redirect URI a client may register for itself: `https`, or plain
/// `http` to the loopback interface (`127.0.0.1`, `[::1]`, `localhost`;
/// RFC 8252 §7.3, §8.3), never a fragment (RFC 6749 §3.1.2); no private-use
/// schemes, since nobody vouches for who owns one.
fn redirect_uri(s: String) -> Result<RedirectUri, OAuthError> {
    if s.len() > MAX_URI_BYTES {
        return Err(bad_redirect(format!(
            "a redirect URI is longer than {MAX_URI_BYTES} bytes"
        )));
    }
    let parsed =
        url::Url::parse(&s).map_err(|_| bad_redirect("a redirect URI is not an absolute URI"))?;
    let loopback = parsed.scheme() == "http"
        && matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if !(parsed.scheme() == "https" || loopback) {
        return Err(bad_redirect(
            "redirect URIs must be https, or http to 127.0.0.1, [::1] or localhost",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty)
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(bad_redirect(
            "a redirect URI must name a host and no credentials",
        ));
    }
    RedirectUri::new(s).map_err(|e| bad_redirect(e.to_string()))
}

/// A registration request, validated: the client to store and the answer.
#[derive(Debug)]
pub(crate) struct Validated {
    pub client: Client,
    pub information: ClientInformation,
}

/// Validates a registration request's metadata (RFC 7591 §2) and builds
/// the client. Pure: `id`, `secret` (for a confidential client) and `now`
/// come from the caller.
pub(crate) fn validate(
    body: &[u8],
    known_scopes: &BTreeMap<ScopeToken, String>,
    policy: &RegistrationPolicy,
    served_grants: &dyn Fn(&str) -> bool,
    id: ClientId,
    secret: impl FnOnce() -> (String, SecretHash),
    now: OffsetDateTime,
) -> Result<Validated, OAuthError> {
    let map = json_object(body).map_err(|e| bad_metadata(e.to_string()))?;
    validate_map(&map, known_scopes, policy, served_grants, id, secret, now)
}

/// Why a body is not metadata: not a JSON object, or one with a member
/// named twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JsonObjectError {
    /// Not JSON, or JSON but not an object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// A member name appears twice at the top level.
    #[error("a member name appears twice in the JSON object")]
    DuplicateName,
}

/// A JSON object whose member names are unique. RFC 8259 §4: with
/// duplicates "the behavior of software that receives such an object is
/// unpredictable"; one parser taking the first `redirect_uris` and another
/// the last is how a check and a use come to disagree, so metadata naming
/// a member twice is refused (as a repeated form parameter is, RFC 6749
/// §3.1).
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, JsonObjectError> {
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use std::cell::Cell;
    /// Sets `duplicate` when it meets a name again, so the caller tells
    /// that refusal from any other without reading error text.
    struct Unique<'a> {
        duplicate: &'a Cell<bool>,
    }
    impl<'de> Visitor<'de> for Unique<'_> {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = Map::new();
            while let Some((name, value)) = access.next_entry::<String, Value>()? {
                if map.insert(name, value).is_some() {
                    self.duplicate.set(true);
                    return Err(de::Error::custom("a member name appears twice"));
                }
            }
            Ok(map)
        }
    }
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de
        .deserialize_map(Unique {
            duplicate: &duplicate,
        })
        .and_then(|map| de.end().map(|()| map));
    match parsed {
        Ok(map) => Ok(map),
        Err(_) if duplicate.get() => Err(JsonObjectError::DuplicateName),
        Err(_) => Err(JsonObjectError::NotAnObject),
    }
}

/// [`validate`] on metadata already parsed as a JSON object: what a client
/// ID metadata document (draft-ietf-oauth-client-id-metadata-document §4)
/// is checked with too, after its own rules.
pub(crate) fn validate_map(
    map: &Map<String, Value>,
    known_scopes: &BTreeMap<ScopeToken, String>,
    policy: &RegistrationPolicy,
    served_grants: &dyn Fn(&str) -> bool,
    id: ClientId,
    secret: impl FnOnce() -> (String, SecretHash),
    now: OffsetDateTime,
) -> Result<Validated, OAuthError> {
    // §2: token_endpoint_auth_method, default client_secret_basic.
    let method = match text(map, "token_endpoint_auth_method")?.as_deref() {
        None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some("none") => AuthMethod::None,
        // RFC 7523 §2.2 (served only where the server registered the
        // method: `Server::register` checks).
        Some("private_key_jwt") => AuthMethod::PrivateKeyJwt,
        Some(other) => {
            return Err(bad_metadata(format!(
                "token_endpoint_auth_method {other:?} is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)"
            )));
        }
    };
    let jwks = client_jwks(map)?;
    if method == AuthMethod::PrivateKeyJwt && jwks.is_none() {
        return Err(bad_metadata(
            "private_key_jwt needs the client's public keys in jwks",
        ));
    }

    // §2: grant_types, default ["authorization_code"]; each one allowed by
    // the policy and served here.
    let grant_types: BTreeSet<String> = texts(map, "grant_types", 16)?
        .unwrap_or_else(|| vec![GrantType::AUTHORIZATION_CODE.to_owned()])
        .into_iter()
        .collect();
    if grant_types.is_empty() {
        return Err(bad_metadata(
            "grant_types must name at least one grant type",
        ));
    }
    for g in &grant_types {
        if !policy.grant_types.contains(g) || !served_grants(g) {
            return Err(bad_metadata(format!(
                "grant type {g:?} may not be registered here"
            )));
        }
    }
    let code_flow = grant_types.contains(GrantType::AUTHORIZATION_CODE);
    if grant_types.contains(GrantType::REFRESH_TOKEN)
        && !code_flow
        && !grant_types.contains(GrantType::DEVICE_CODE)
    {
        return Err(bad_metadata(
            "refresh_token needs a grant type that issues refresh tokens",
        ));
    }
    if method == AuthMethod::None && grant_types.contains(GrantType::CLIENT_CREDENTIALS) {
        return Err(bad_metadata(
            "client_credentials needs a confidential client (token_endpoint_auth_method)",
        ));
    }

    // §2.1: response_types and grant_types must agree: `code` with
    // `authorization_code`, and nothing else is served (no implicit grant).
    let response_types: BTreeSet<String> = match texts(map, "response_types", 16)? {
        Some(r) => r.into_iter().collect(),
        None if code_flow => ["code".to_owned()].into(),
        None => BTreeSet::new(),
    };
    if let Some(other) = response_types.iter().find(|r| r.as_str() != "code") {
        return Err(bad_metadata(format!(
            "response type {other:?} is not supported (only code)"
        )));
    }
    if code_flow != response_types.contains("code") {
        return Err(bad_metadata(
            "grant_types authorization_code and response_types code go together (RFC 7591 Section 2.1)",
        ));
    }

    // §2: redirect_uris, required for redirect-based flows.
    let redirect_uris = match texts(map, "redirect_uris", MAX_REDIRECT_URIS) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return Err(bad_redirect(e.description.unwrap_or_default())),
    };
    if code_flow && redirect_uris.is_empty() {
        return Err(bad_redirect(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    let mut uris: Vec<RedirectUri> = Vec::with_capacity(redirect_uris.len());
    for s in redirect_uris {
        let uri = redirect_uri(s)?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }

    // §2: scope, every value known here; never silently narrowed.
    let scope = match text(map, "scope")? {
        Some(s) => {
            let scope = Scope::parse(&s)
                .map_err(|_| bad_metadata("scope is not a space-separated list of scope tokens"))?;
            if let Some(unknown) = scope.iter().find(|t| !known_scopes.contains_key(*t)) {
                return Err(bad_metadata(format!("unknown scope {unknown:?}")));
            }
            scope
        }
        None => policy
            .default_scope
            .clone()
            .unwrap_or_else(|| Scope::from_tokens(known_scopes.keys().cloned())),
    };

    // §2: jwks_uri and jwks are mutually exclusive. Neither is used here (no
    // key-based client authentication), so neither is registered.
    if map.get("jwks_uri").is_some_and(|v| !v.is_null())
        && map.get("jwks").is_some_and(|v| !v.is_null())
    {
        return Err(bad_metadata("jwks_uri and jwks must not both be present"));
    }

    let mut display = DynamicRegistration::new(now, now + policy.unused_lifetime);
    display.client_name = display_text(map, "client_name")?;
    display.client_uri = display_uri(map, "client_uri")?;
    display.logo_uri = display_uri(map, "logo_uri")?;
    display.tos_uri = display_uri(map, "tos_uri")?;
    display.policy_uri = display_uri(map, "policy_uri")?;
    display.software_id = display_text(map, "software_id")?;
    display.software_version = display_text(map, "software_version")?;
    if let Some(contacts) = texts(map, "contacts", MAX_CONTACTS)? {
        for c in &contacts {
            if c.is_empty() || c.len() > MAX_TEXT_BYTES || c.chars().any(char::is_control) {
                return Err(bad_metadata("contacts must be short printable strings"));
            }
        }
        display.contacts = contacts;
    }

    let name = display
        .client_name
        .clone()
        .unwrap_or_else(|| id.as_str().to_owned());
    let (mut client, client_secret) = if method == AuthMethod::None {
        (Client::public(id, name), None)
    } else if let Some(jwks) = jwks
        .as_ref()
        .filter(|_| method == AuthMethod::PrivateKeyJwt)
    {
        // No shared secret: the client proves itself with its key.
        (Client::with_private_key_jwt(id, name, jwks.clone()), None)
    } else {
        let (secret, hash) = secret();
        // RFC 6749 §2.3.1: a client issued a password "MUST" be able to
        // authenticate with HTTP Basic, whatever method it registered.
        (
            Client::confidential(id, name, hash)
                .with_auth_methods([method.clone(), AuthMethod::ClientSecretBasic]),
            Some(secret),
        )
    };
    // RFC 9449 §5.2: a client that always uses DPoP says so, and then its
    // token requests without a proof are refused. RFC 9126 §6: a client
    // that always pushes its authorization requests says so, and then a
    // plain one in its name is refused (so nobody can start one for it
    // with parameters of their choosing).
    let dpop_bound = flag(map, "dpop_bound_access_tokens")?;
    let require_par = flag(map, "require_pushed_authorization_requests")?;
    client = client
        .with_grant_types(grant_types.iter().cloned())
        .with_scope(scope.clone())
        .with_dpop_bound_access_tokens(dpop_bound == Some(true))
        .with_require_pushed_authorization_requests(require_par == Some(true));
    for uri in &uris {
        client = client.with_redirect_uri(uri.clone());
    }
    let information = ClientInformation {
        client_id: client.id.as_str().to_owned(),
        client_secret_expires_at: client_secret.as_ref().map(|_| 0),
        client_secret,
        client_id_issued_at: now.unix_timestamp(),
        redirect_uris: uris.iter().map(|u| u.as_str().to_owned()).collect(),
        token_endpoint_auth_method: method.as_str().to_owned(),
        grant_types: grant_types.into_iter().collect(),
        response_types: if code_flow { vec!["code"] } else { Vec::new() },
        scope: scope.to_string(),
        client_name: display.client_name.clone(),
        client_uri: display.client_uri.clone(),
        logo_uri: display.logo_uri.clone(),
        tos_uri: display.tos_uri.clone(),
        policy_uri: display.policy_uri.clone(),
        contacts: display.contacts.clone(),
        software_id: display.software_id.clone(),
        software_version: display.software_version.clone(),
        jwks: jwks.clone(),
        dpop_bound_access_tokens: dpop_bound,
        require_pushed_authorization_requests: require_par,
    };
    if let Some(jwks) = jwks {
        client.jwks = Some(jwks);
    }
    client.registration = Some(Box::new(display));
    Ok(Validated {
        client,
        information,
    })
}

/// A boolean member of the metadata, if sent (`null` is absent); anything
/// else is `invalid_client_metadata`.
fn flag(map: &Map<String, Value>, name: &str) -> Result<Option<bool>, OAuthError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(bad_metadata(format!("{name} must be a boolean"))),
    }
}

/// RFC 7591 §2 `jwks`: a JWK Set of at most [`MAX_JWKS_KEYS`](crate::MAX_JWKS_KEYS)
/// public P-256 or Ed25519 signing keys, each with a distinct `kid` (the
/// key that verifies a client assertion is chosen by it). `jwks_uri` is not
/// supported: Tessera fetches nothing for clients, so keys are registered
/// inline (and §2 forbids sending both).
fn client_jwks(map: &Map<String, Value>) -> Result<Option<crate::keys::Jwks>, OAuthError> {
    if map.get("jwks_uri").is_some_and(|v| !v.is_null()) {
        return Err(bad_metadata(
            "jwks_uri is not supported here; register the public keys inline as jwks",
        ));
    }
    let Some(value) = map.get("jwks").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let set: crate::keys::Jwks = serde_json::from_value(value.clone())
        .map_err(|_| bad_metadata("jwks must be a JWK Set: {\"keys\": [...]}"))?;
    if set.keys.is_empty() || set.keys.len() > crate::keys::MAX_JWKS_KEYS {
        return Err(bad_metadata(format!(
            "jwks must hold 1 to {} keys",
            crate::keys::MAX_JWKS_KEYS
        )));
    }
    let mut kids = BTreeSet::new();
    for jwk in &set.keys {
        let key = crate::keys::VerifyingKey::from_jwk(jwk).map_err(|e| {
            bad_metadata(format!(
                "each key in jwks must be a public P-256 or Ed25519 signing key with a kid ({e})"
            ))
        })?;
        if !kids.insert(key.kid().to_owned()) {
            return Err(bad_metadata("two keys in jwks share a kid"));
        }
    }
    // Only the public members are kept (`Jwk` has no field for others).
    Ok(Some(set))
}

/// A new client id: 128 random bits, base64url, after a recognisable prefix.
fn new_client_id(random: &dyn crate::token::Random) -> Option<ClientId> {
    use base64::Engine;
    let bytes = random.bytes32();
    ClientId::new(format!(
        "dyn_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..16])
    ))
}

/// The key the rate limiter counts registrations under: one for everybody
/// when registration is open (each network's share of it is counted too,
/// when the adapter names the peer: [`HttpRequest::peer`]), one per initial
/// access token otherwise.
const OPEN_REGISTRATION_KEY: &str = "open";

impl Server {
    /// The registration endpoint's logic (RFC 7591 §3), for embedders that
    /// skip HTTP (the endpoint itself is [`Server::handle`] with
    /// [`Endpoint::Registration`](crate::Endpoint::Registration)).
    pub async fn register(
        &self,
        request: &HttpRequest<'_>,
    ) -> Result<ClientInformation, OAuthError> {
        let Some(policy) = self.config().registration.as_ref() else {
            return Err(OAuthError::misconfigured());
        };
        let limit_key = self.initial_access_token_key(policy, request.authorization)?;
        // §3: the request is a POST of JSON.
        let is_json = request.content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            return Err(
                bad_metadata("the body must be application/json (RFC 7591 Section 3.1)")
                    .with_reason(Reason::MalformedRequest),
            );
        }
        if let Err(limited) = self
            .check_limit(Action::ClientRegistration, &limit_key)
            .await
        {
            tracing::info!(retry_at = %limited.retry_at, "client registration refused: too many");
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many client registrations; try again later",
            )
            .with_reason(Reason::RateLimited)
            .with_retry_after(limited.retry_after_secs(self.now())));
        }
        let now = self.now();
        let served = |g: &str| self.grant_types().any(|served| served == g);
        // A collision of 128 random bits does not happen; a second draw
        // covers a broken random source without looping on it.
        // Counted once, even when a colliding id makes the loop go round.
        let mut network_counted = false;
        for _ in 0..2 {
            let id = new_client_id(self.random()).ok_or_else(OAuthError::server_error)?;
            let valid = validate(
                request.body,
                &self.config().scopes,
                policy,
                &served,
                id,
                || generate_client_secret(self.random()),
                now,
            )?;
            // A method the server does not serve could never authenticate.
            if let Some(method) = valid.client.auth_methods.iter().find(|m| {
                !self
                    .client_auth_methods()
                    .any(|served| &served.method() == *m)
            }) {
                return Err(bad_metadata(format!(
                    "token_endpoint_auth_method {method} is not supported here"
                )));
            }
            // Open registration: anybody's request, so one network's share
            // first (only a valid one counts), and one host cannot spend
            // the registrations other hosts' apps need (RFC 6819 §4.4.1.11).
            if limit_key == OPEN_REGISTRATION_KEY && !network_counted {
                self.count_network(Action::ClientRegistration, request.peer)?;
                network_counted = true;
            }
            let client_id = valid.client.id.clone();
            // At the cap, the registration nearest its unused deadline is
            // forgotten to make room, once: a flood of registrations that
            // are never used cannot shut registration until they expire
            // (the rate limit above bounds how fast it can push others out).
            let mut made_room = false;
            let outcome = loop {
                match self
                    .store()
                    .register_client(valid.client.clone(), policy.max_clients, now)
                    .await?
                {
                    RegisterOutcome::CapReached if !made_room => {
                        let before = now.checked_add(policy.unused_lifetime).unwrap_or(now);
                        match self.store().evict_unused_client(before).await? {
                            Some(gone) => {
                                tracing::info!(
                                    client = gone.as_str(),
                                    "an unused client registration was forgotten to make room"
                                );
                                made_room = true;
                            }
                            None => break RegisterOutcome::CapReached,
                        }
                    }
                    other => break other,
                }
            };
            match outcome {
                RegisterOutcome::Registered => {
                    self.record_attempt(Action::ClientRegistration, &limit_key)
                        .await;
                    tracing::info!(client = client_id.as_str(), "client registered dynamically");
                    return Ok(valid.information);
                }
                RegisterOutcome::CapReached => {
                    tracing::warn!(
                        max = policy.max_clients,
                        "client registration refused: the cap of dynamically registered clients is reached"
                    );
                    return Err(OAuthError::new(
                        ErrorCode::TemporarilyUnavailable,
                        "no more clients can be registered now; try again later",
                    )
                    .with_reason(Reason::RateLimited));
                }
                RegisterOutcome::IdTaken => continue,
            }
        }
        Err(OAuthError::server_error())
    }

    /// §3: with initial access tokens configured, the request must carry
    /// one as a bearer token (RFC 6750 §2.1); the rate-limit key is then
    /// the token's hash.
    fn initial_access_token_key(
        &self,
        policy: &RegistrationPolicy,
        authorization: Option<&str>,
    ) -> Result<String, OAuthError> {
        if policy.initial_access_tokens.is_empty() {
            return Ok(OPEN_REGISTRATION_KEY.to_owned());
        }
        let token = authorization.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "an initial access token is required",
            )
            .with_reason(Reason::ClientAuthenticationMissing));
        };
        // Every hash is compared (constant time each), so the time taken
        // does not tell which one nearly matched.
        let matched = policy
            .initial_access_tokens
            .iter()
            .fold(false, |found, h| h.verify(token) | found);
        if !matched {
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "the initial access token is not valid",
            )
            .with_reason(Reason::ClientAuthenticationFailed));
        }
        Ok(crate::token::TokenHash::of(token).to_key())
    }

    /// The registration endpoint over HTTP: `201` with the client's
    /// information (§3.2.1), errors per §3.2.2, and RFC 6750 §3 challenges
    /// for a missing or wrong initial access token.
    pub(crate) async fn registration_http(&self, request: &HttpRequest<'_>) -> HttpResponse {
        match self.register(request).await {
            Ok(info) => match serde_json::to_vec(&info) {
                Ok(body) => HttpResponse::json_no_store(201, body),
                Err(e) => {
                    let e = OAuthError::server_error().with_source(e);
                    e.log("registration");
                    HttpResponse::oauth_error(&e, &self.config().realm)
                }
            },
            Err(e) => {
                e.log("registration");
                let realm = &self.config().realm;
                let mut response = HttpResponse::oauth_error(&e, realm);
                if e.code == ErrorCode::InvalidToken {
                    // RFC 6750 §3.1: no error code when no token was sent.
                    let challenge = if e.reason() == Reason::ClientAuthenticationMissing {
                        format!("Bearer realm=\"{realm}\"")
                    } else {
                        e.bearer_challenge(realm, None)
                    };
                    response
                        .headers
                        .push(("www-authenticate", challenge.into()));
                }
                response
            }
        }
    }

    /// After a token was issued to `client`: a dynamically registered
    /// client's expiry is moved to [`RegistrationPolicy::idle_lifetime`]
    /// from now, when it is due within that (so at most once a day per
    /// client), or cleared once if the policy keeps used clients.
    pub(crate) async fn note_client_used(&self, client: &Client) {
        let Some(registration) = client.registration.as_deref() else {
            return;
        };
        // A client ID metadata document's client is not in the store.
        if registration.metadata_document_host.is_some() {
            return;
        }
        let now = self.now();
        let until = self.idle_expiry(now);
        let due = match (registration.unused_until, until) {
            (None, None) => false,
            (Some(_), None) | (None, Some(_)) => true,
            (Some(current), Some((renew_before, _))) => current < renew_before,
        };
        if !due {
            return;
        }
        let until = until.map(|(_, until)| until);
        if let Err(e) = self.store().mark_client_used(&client.id, now, until).await {
            tracing::warn!(client = client.id.as_str(), error = %e, "recording a registered client's use failed");
        }
    }

    /// For a client used at `now`, under the registration policy's idle
    /// lifetime (never shorter than a refresh token or family lives; the
    /// default policy's while registration is off): `(renew_before,
    /// until)`. An expiry already at `renew_before` or later is left
    /// alone; a sooner one moves to `until`, up to a day later, which
    /// bounds the writes to one per client and day; in whole seconds, as
    /// records keep it. `None`: used clients are kept.
    fn idle_expiry(&self, now: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
        let config = self.config();
        let idle = match &config.registration {
            Some(policy) => policy.idle_lifetime?,
            None => RegistrationPolicy::open().idle_lifetime?,
        };
        let life = &config.lifetimes;
        let idle = idle.max(life.refresh_token).max(life.refresh_family);
        let slack = (idle / 4_i32).min(Duration::days(1));
        // The builder bounds every lifetime to ten years: no overflow for
        // any clock this side of the year 9000; checked all the same.
        let renew_before = now.checked_add(idle)?;
        let until = renew_before.checked_add(slack)?;
        Some((renew_before, until.replace_nanosecond(0).unwrap_or(until)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    /// `mark_used`, the rule every store applies: later only, `None`
    /// clears, an expired registration is left expired.
    #[test]
    fn marking_used_moves_the_expiry_later_only() {
        let h = Duration::hours;
        let cases = [
            // (unused_until, now, until) -> changed, result
            (Some(T0 + h(1)), T0, Some(T0 + h(5)), true, Some(T0 + h(5))),
            (Some(T0 + h(5)), T0, Some(T0 + h(3)), false, Some(T0 + h(5))),
            (Some(T0 + h(5)), T0, Some(T0 + h(5)), false, Some(T0 + h(5))),
            (Some(T0 + h(1)), T0, None, true, None),
            (None, T0, None, false, None),
            (None, T0, Some(T0 + h(5)), true, Some(T0 + h(5))),
            // Expired at `now`: a late token does not bring it back.
            (
                Some(T0 + h(1)),
                T0 + h(1),
                Some(T0 + h(9)),
                false,
                Some(T0 + h(1)),
            ),
            (Some(T0 + h(1)), T0 + h(2), None, false, Some(T0 + h(1))),
        ];
        for (current, now, until, changed, after) in cases {
            let mut r = DynamicRegistration::new(T0, T0);
            r.unused_until = current;
            assert_eq!(
                r.mark_used(now, until),
                changed,
                "{current:?} at {now} with {until:?}"
            );
            assert_eq!(r.unused_until, after, "{current:?} at {now} with {until:?}");
        }
    }

    fn scopes() -> BTreeMap<ScopeToken, String> {
        ["photos.read", "photos.write", "profile"]
            .into_iter()
            .map(|s| (ScopeToken::new(s).unwrap(), s.to_owned()))
            .collect()
    }

    fn run(body: &str) -> Result<Validated, OAuthError> {
        let served = |g: &str| {
            [
                GrantType::AUTHORIZATION_CODE,
                GrantType::REFRESH_TOKEN,
                GrantType::CLIENT_CREDENTIALS,
            ]
            .contains(&g)
        };
        validate(
            body.as_bytes(),
            &scopes(),
            &RegistrationPolicy::open(),
            &served,
            ClientId::new("dyn_x").unwrap(),
            || ("s3cret".to_owned(), SecretHash::of("s3cret")),
            T0,
        )
    }

    fn code_of(body: &str) -> ErrorCode {
        run(body).unwrap_err().code
    }

    #[test]
    fn a_public_mcp_client_registers_rfc7591_3_1() {
        let v = run(r#"{"redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none",
            "grant_types":["authorization_code","refresh_token"],"response_types":["code"],
            "client_name":"Claude","client_uri":"https://claude.ai","scope":"photos.read"}"#)
        .unwrap();
        assert!(v.client.is_public());
        assert!(v.client.is_dynamically_registered());
        assert_eq!(v.client.name, "Claude");
        assert_eq!(v.client.scope.as_str(), "photos.read");
        assert!(v.client.allows_grant("refresh_token"));
        let json = serde_json::to_value(&v.information).unwrap();
        assert_eq!(json["client_id"], "dyn_x");
        assert!(json.get("client_secret").is_none());
        assert!(json.get("client_secret_expires_at").is_none());
        assert_eq!(json["redirect_uris"][0], "http://127.0.0.1:33418/callback");
        assert_eq!(json["token_endpoint_auth_method"], "none");
        assert_eq!(json["response_types"][0], "code");
        assert_eq!(json["client_uri"], "https://claude.ai");
        assert_eq!(json["client_id_issued_at"], 0);
        // The expiry is the server's business, not echoed.
        assert!(json.get("unused_until").is_none());
        assert_eq!(
            v.client.registration.as_ref().unwrap().unused_until,
            Some(T0 + Duration::hours(24))
        );
    }

    /// A boolean client metadata `name`: registered as sent (`flag` reads
    /// it from the client), echoed in the response, absent and `false`
    /// when not sent or `null`, kept through serde (a store), and anything but a
    /// boolean is `invalid_client_metadata`.
    fn assert_boolean_metadata(name: &str, flag: fn(&Client) -> bool) {
        let uris = r#""redirect_uris":["https://app.example/cb"]"#;
        for (sent, expected) in [("true", true), ("false", false)] {
            let v = run(&format!(r#"{{{uris},"{name}":{sent}}}"#)).unwrap();
            assert_eq!(flag(&v.client), expected, "{name}");
            let json = serde_json::to_value(&v.information).unwrap();
            assert_eq!(json[name], expected, "{name}");
            let stored: Client =
                serde_json::from_str(&serde_json::to_string(&v.client).unwrap()).unwrap();
            assert_eq!(flag(&stored), expected, "{name} kept");
        }
        // Absent, or `null` (as every member: RFC 7591 §2 omits what is
        // not set), it is `false` and not echoed.
        for body in [
            format!("{{{uris}}}"),
            format!(r#"{{{uris},"{name}":null}}"#),
        ] {
            let v = run(&body).unwrap();
            assert!(!flag(&v.client), "{name}");
            let json = serde_json::to_value(&v.information).unwrap();
            assert!(json.get(name).is_none(), "{name}");
        }
        for bad in [r#""true""#, r#""yes""#, "1", "[true]"] {
            assert_eq!(
                code_of(&format!(r#"{{{uris},"{name}":{bad}}}"#)),
                ErrorCode::InvalidClientMetadata,
                "{name}: {bad}"
            );
        }
    }

    /// RFC 9449 §5.2: `dpop_bound_access_tokens` (absent, the client may
    /// use DPoP or not).
    #[test]
    fn dpop_bound_access_tokens_is_registered_rfc9449_5_2() {
        assert_boolean_metadata("dpop_bound_access_tokens", |c| c.dpop_bound_access_tokens);
    }

    /// RFC 9126 §6: `require_pushed_authorization_requests`.
    #[test]
    fn require_pushed_authorization_requests_is_registered_rfc9126_6() {
        assert_boolean_metadata("require_pushed_authorization_requests", |c| {
            c.require_pushed_authorization_requests
        });
    }

    #[test]
    fn defaults_are_rfc7591_2_and_a_confidential_client_gets_a_secret() {
        let v = run(r#"{"redirect_uris":["https://app.example/cb"]}"#).unwrap();
        assert!(!v.client.is_public());
        assert_eq!(
            v.client.auth_methods,
            [AuthMethod::ClientSecretBasic].into()
        );
        let json = serde_json::to_value(&v.information).unwrap();
        assert_eq!(json["client_secret"], "s3cret");
        assert_eq!(json["client_secret_expires_at"], 0);
        assert_eq!(
            json["grant_types"],
            serde_json::json!(["authorization_code"])
        );
        assert_eq!(json["response_types"], serde_json::json!(["code"]));
        // No scope asked: every scope the server knows.
        assert_eq!(json["scope"], "photos.read photos.write profile");
        assert!(format!("{:?}", v.information).contains("has_secret: true"));
        assert!(!format!("{:?}", v.information).contains("s3cret"));
    }

    #[test]
    fn metadata_is_one_json_object_with_unique_names_rfc8259_4() {
        assert!(json_object(br#"{"a": 1, "b": {"c": 2}}"#).is_ok());
        assert_eq!(
            json_object(br#"{"redirect_uris": ["https://a.example/cb"], "redirect_uris": ["https://b.example/cb"]}"#),
            Err(JsonObjectError::DuplicateName)
        );
        for bad in [&b"[]"[..], b"\"x\"", b"{} {}", b"{", b"", b"{\"a\":1}x"] {
            assert_eq!(
                json_object(bad),
                Err(JsonObjectError::NotAnObject),
                "{bad:?}"
            );
        }
        // Whitespace around the object is JSON too.
        assert!(json_object(b" {} \n").is_ok());
    }

    #[test]
    fn redirect_uri_rules_give_invalid_redirect_uri_rfc7591_3_2_2() {
        for body in [
            r#"{"token_endpoint_auth_method":"none"}"#,
            r#"{"redirect_uris":[]}"#,
            r#"{"redirect_uris":["http://app.example/cb"]}"#,
            r#"{"redirect_uris":["http://192.168.1.2/cb"]}"#,
            r#"{"redirect_uris":["https://app.example/cb#frag"]}"#,
            r#"{"redirect_uris":["com.example.app:/cb"]}"#,
            r#"{"redirect_uris":["javascript:alert(1)"]}"#,
            r#"{"redirect_uris":["/relative"]}"#,
            r#"{"redirect_uris":["https://user:pw@app.example/cb"]}"#,
            r#"{"redirect_uris":"https://app.example/cb"}"#,
            r#"{"redirect_uris":[42]}"#,
        ] {
            assert_eq!(code_of(body), ErrorCode::InvalidRedirectUri, "{body}");
        }
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        let body = serde_json::json!({ "redirect_uris": many }).to_string();
        assert_eq!(code_of(&body), ErrorCode::InvalidRedirectUri);
        let long = format!("https://a.example/{}", "x".repeat(MAX_URI_BYTES));
        let body = serde_json::json!({ "redirect_uris": [long] }).to_string();
        assert_eq!(code_of(&body), ErrorCode::InvalidRedirectUri);
        for ok in [
            "http://localhost:8080/cb",
            "http://[::1]/cb",
            "http://127.0.0.1/callback",
            "https://app.example/cb?x=1",
        ] {
            let body = serde_json::json!({ "redirect_uris": [ok] }).to_string();
            assert!(run(&body).is_ok(), "{ok}");
        }
    }

    #[test]
    fn metadata_rules_give_invalid_client_metadata_rfc7591_2() {
        for body in [
            "not json",
            "[1,2]",
            r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":7}"#,
            // §2.1: implicit is not served, and types must agree.
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"],"response_types":["token"]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code"],"response_types":[]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"],"response_types":["code"]}"#,
            r#"{"grant_types":["refresh_token"],"response_types":[]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":[]}"#,
            // Not allowed by the default policy, though served.
            r#"{"grant_types":["client_credentials"],"response_types":[]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["urn:ietf:params:oauth:grant-type:device_code"]}"#,
            // Scopes: unknown, or malformed; never silently dropped.
            r#"{"redirect_uris":["https://a.example/cb"],"scope":"photos.read admin"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"scope":"photos.read  profile"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"scope":["photos.read"]}"#,
            // Display data.
            r#"{"redirect_uris":["https://a.example/cb"],"client_uri":"javascript:alert(1)"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/logo.png"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"tos_uri":"not a uri"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"policy_uri":"https://u:p@a.example/"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":"a\nb"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"client_name":{"x":1}}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"contacts":"me@a.example"}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"contacts":[""]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"jwks_uri":"https://a.example/jwks","jwks":{"keys":[]}}"#,
        ] {
            assert_eq!(code_of(body), ErrorCode::InvalidClientMetadata, "{body}");
        }
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let body =
            serde_json::json!({ "redirect_uris": ["https://a.example/cb"], "client_name": long })
                .to_string();
        assert_eq!(code_of(&body), ErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn unknown_members_are_ignored_rfc7591_2() {
        let v = run(r#"{"redirect_uris":["https://a.example/cb"],"x-vendor":{"deep":[1]},"client_name#ja-Jpan-JP":"x","software_statement":"eyJ..."}"#).unwrap();
        let json = serde_json::to_value(&v.information).unwrap();
        assert!(json.get("x-vendor").is_none());
        assert!(json.get("software_statement").is_none());
    }

    #[test]
    fn the_stored_client_round_trips_through_serde() {
        let v = run(r#"{"redirect_uris":["https://a.example/cb"],"client_name":"A","contacts":["a@a.example"],"logo_uri":"https://a.example/l.png"}"#).unwrap();
        let json = serde_json::to_string(&v.client).unwrap();
        let back: Client = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v.client);
    }
}
