//! Building a [`Server`]: safe defaults, and every configuration check made
//! once, here, so that no adapter can fail on a bad path later.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Inner, Server};
use crate::abuse::{MemoryRateLimiter, RateLimiter};
use crate::client::AuthMethod;
use crate::client_auth::{ClientAuthMethod, ClientSecretBasic, ClientSecretPost, NoClientAuth};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, EndpointPaths, Lifetimes, PkcePolicy};
use crate::consent::{AlwaysPrompt, ConsentPolicy};
use crate::endpoint::{Endpoint, Routes};
use crate::grant::{
    AuthorizationCodeGrant, ClientCredentialsGrant, DeviceCodeGrant, GrantHandler,
    RefreshTokenGrant,
};
use crate::jwt::AccessTokenFormat;
use crate::keys::KeySet;
use crate::login_handle::LoginHandleKey;
use crate::protected_resource::ProtectedResource;
use crate::registration::RegistrationPolicy;
use crate::resource::ResourceIndicator;
use crate::scope::ScopeToken;
use crate::secret::{SecretVerifier, SecretVerifiers};
use crate::storage::Store;
use crate::token::{OsRandom, Random};

/// Why a server could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No issuer was set.
    #[error("the issuer is required")]
    MissingIssuer,
    /// The issuer is not an http(s) URL without query or fragment (RFC 8414 §2).
    #[error("the issuer must be an http(s) URL without query or fragment: {0}")]
    InvalidIssuer(String),
    /// No store was set.
    #[error("a store is required")]
    MissingStore,
    /// An endpoint's path (the issuer's path followed by the configured one)
    /// is not a plain absolute path: it must start with `/` and hold only
    /// letters, digits, `-`, `.`, `_`, `~` and `/`, with no empty, `.` or
    /// `..` segment.
    #[error("the {endpoint} endpoint's path {path:?} is not a plain absolute path")]
    InvalidPath {
        /// The endpoint, by name.
        endpoint: &'static str,
        /// The path refused.
        path: String,
    },
    /// Two endpoints would be served at one path.
    #[error("two endpoints share the path {0:?}")]
    DuplicatePath(String),
    /// A lifetime is not between one second and ten years: shorter makes
    /// every secret dead on arrival, longer is a mistake (and `now +
    /// lifetime` could leave the calendar).
    #[error("the {which} lifetime must be between 1 second and 3650 days")]
    InvalidLifetime {
        /// Which lifetime, by name.
        which: &'static str,
    },
    /// The realm is empty or holds a character a quoted string in a
    /// `WWW-Authenticate` challenge cannot (RFC 9110 §11.6.1, §5.6.4: a
    /// `"`, a `\`, a control character or non-ASCII text).
    #[error("the realm {0:?} must be visible ASCII (spaces allowed) without `\"` or `\\`")]
    InvalidRealm(String),
    /// Two configured resources are one URL once normalised (such as
    /// `https://a.example` and `https://a.example/`): a request for either
    /// would name both ([`ResourceIndicator::same_resource`](crate::ResourceIndicator::same_resource)).
    #[error("the resources {0:?} and {1:?} are the same URL; configure one")]
    EquivalentResources(String, String),
}

/// Every lifetime between one second and ten years.
fn check_lifetimes(
    l: &Lifetimes,
    registration: Option<&RegistrationPolicy>,
) -> Result<(), BuildError> {
    let range = time::Duration::seconds(1)..=time::Duration::days(3650);
    if let Some(policy) = registration {
        if !range.contains(&policy.unused_lifetime) {
            return Err(BuildError::InvalidLifetime {
                which: "unused registration",
            });
        }
        if policy.idle_lifetime.is_some_and(|d| !range.contains(&d)) {
            return Err(BuildError::InvalidLifetime {
                which: "idle registration",
            });
        }
        // A used client's deadline must lie beyond an unused one's, or
        // making room at the cap could push out clients in use.
        if policy
            .idle_lifetime
            .is_some_and(|idle| idle <= policy.unused_lifetime)
        {
            return Err(BuildError::InvalidLifetime {
                which: "idle registration (longer than the unused one)",
            });
        }
    }
    for (which, d) in [
        ("code", l.code),
        ("access_token", l.access_token),
        ("refresh_token", l.refresh_token),
        ("refresh_family", l.refresh_family),
        ("pending", l.pending),
        ("device_code", l.device_code),
        ("request_uri", l.request_uri),
    ] {
        if !range.contains(&d) {
            return Err(BuildError::InvalidLifetime { which });
        }
    }
    Ok(())
}

/// Builds a [`Server`] with safe defaults: PKCE S256 for every client, 60 s
/// codes, rotating refresh tokens, consent always asked.
#[must_use]
pub struct ServerBuilder {
    issuer: Option<String>,
    store: Option<Arc<dyn Store>>,
    limiter: Arc<dyn RateLimiter>,
    login_key: Option<[u8; 32]>,
    device_grant: bool,
    registration: Option<RegistrationPolicy>,
    require_par: bool,
    cross_origin: crate::config::CrossOrigin,
    lifetimes: Lifetimes,
    pkce: PkcePolicy,
    paths: EndpointPaths,
    scopes: BTreeMap<ScopeToken, String>,
    resources: BTreeSet<ResourceIndicator>,
    default_resource: Option<ResourceIndicator>,
    protected: Vec<ProtectedResource>,
    realm: String,
    grants: BTreeMap<String, Arc<dyn GrantHandler>>,
    auth_methods: Vec<Arc<dyn ClientAuthMethod>>,
    secrets: SecretVerifiers,
    consent: Arc<dyn ConsentPolicy>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    signing_keys: Option<Arc<dyn KeySet>>,
    access_token_format: AccessTokenFormat,
    jwks_max_age: time::Duration,
    dpop: crate::dpop::DpopPolicy,
    documents: Option<crate::client_metadata::DocumentClients>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    pub(super) fn new() -> Self {
        Self {
            issuer: None,
            store: None,
            limiter: Arc::new(MemoryRateLimiter::default()),
            login_key: None,
            device_grant: false,
            registration: None,
            require_par: false,
            cross_origin: crate::config::CrossOrigin::default(),
            lifetimes: Lifetimes::default(),
            pkce: PkcePolicy::default(),
            paths: EndpointPaths::default(),
            scopes: BTreeMap::new(),
            resources: BTreeSet::new(),
            default_resource: None,
            protected: Vec::new(),
            realm: "tessera".into(),
            grants: BTreeMap::new(),
            auth_methods: Vec::new(),
            secrets: SecretVerifiers::default(),
            consent: Arc::new(AlwaysPrompt),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            signing_keys: None,
            access_token_format: AccessTokenFormat::Opaque,
            jwks_max_age: time::Duration::minutes(5),
            dpop: crate::dpop::DpopPolicy::default(),
            documents: None,
        }
    }

    /// The issuer identifier, e.g. `https://photos.example` (RFC 8414 §2).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The storage backend: any type with every capability of [`Store`]
    /// (a missing one is a compile error here, not a failure at run time).
    pub fn store<S: Store>(mut self, store: Arc<S>) -> Self {
        self.store = Some(store);
        self
    }

    /// The storage backend, already shared as a trait object.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The abuse hook (default: [`MemoryRateLimiter::default`], per process).
    pub fn rate_limiter(mut self, limiter: impl RateLimiter + 'static) -> Self {
        self.limiter = Arc::new(limiter);
        self
    }

    /// The key that seals login handles (the authorization request of a
    /// browser that has not signed in, carried by the browser so that
    /// anonymous requests make the server keep nothing). Default: a random
    /// key per server; servers behind one balancer that may see the login
    /// form of each other's requests must share one. Keep it secret: with
    /// it, anyone can forge a login handle for any request.
    pub fn login_handle_key(mut self, key: [u8; 32]) -> Self {
        self.login_key = Some(key);
        self
    }

    /// Turns on the device authorization grant (RFC 8628): the device
    /// authorization endpoint joins the endpoint table and the metadata, and
    /// the `device_code` grant type is registered. The embedder serves the
    /// verification page at [`Server::device_verification_path`] (with
    /// [`Server::device_prompt`] and [`Server::device_decide`]).
    pub fn enable_device_grant(mut self) -> Self {
        self.device_grant = true;
        self
    }

    /// Turns on dynamic client registration (RFC 7591): the registration
    /// endpoint joins the endpoint table (at [`EndpointPaths::registration`])
    /// and the metadata (`registration_endpoint`). The store must implement
    /// [`ClientRegistry::register_client`](crate::ClientRegistry::register_client)
    /// and its companions (the workspace's stores do).
    pub fn enable_dynamic_registration(mut self, policy: RegistrationPolicy) -> Self {
        self.registration = Some(policy);
        self
    }

    /// Turns on client ID metadata documents
    /// (draft-ietf-oauth-client-id-metadata-document): a `client_id` that
    /// is an `https` URL the registry does not know names the client
    /// described by the JSON document at that URL, which `fetcher` fetches
    /// (with SSRF defences: `tessera-client-metadata` has one) and the
    /// server validates and caches within `policy`. The metadata says
    /// `client_id_metadata_document_supported: true`.
    pub fn enable_client_id_metadata_documents(
        mut self,
        policy: crate::client_metadata::ClientMetadataPolicy,
        fetcher: Arc<dyn crate::client_metadata::ClientMetadataFetcher>,
    ) -> Self {
        self.documents = Some(crate::client_metadata::DocumentClients::new(
            policy, fetcher,
        ));
        self
    }

    /// Requires every client to push its authorization requests first
    /// (RFC 9126 §5, `require_pushed_authorization_requests`): a plain
    /// request at the authorization endpoint is refused. (Per client:
    /// [`Client::with_require_pushed_authorization_requests`](crate::Client::with_require_pushed_authorization_requests).)
    pub fn require_pushed_authorization_requests(mut self) -> Self {
        self.require_par = true;
        self
    }

    /// Which endpoints pages of other origins may call with `fetch`
    /// (CORS): by default the public documents (metadata, JWKS, protected
    /// resource metadata); [`CrossOrigin::ClientEndpoints`](crate::CrossOrigin::ClientEndpoints) adds the token,
    /// revocation, registration, PAR and device authorization endpoints for
    /// single-page apps and browser-based MCP clients (read its caveat);
    /// [`CrossOrigin::Off`](crate::CrossOrigin::Off) when the embedder's own middleware answers CORS.
    pub fn cross_origin(mut self, policy: crate::config::CrossOrigin) -> Self {
        self.cross_origin = policy;
        self
    }

    /// Declares a scope with the words a consent page shows for it.
    pub fn scope(mut self, token: ScopeToken, description: impl Into<String>) -> Self {
        self.scopes.insert(token, description.into());
        self
    }

    /// Declares a resource tokens may be requested for with `resource`
    /// (RFC 8707 §2); a request naming any other is `invalid_target`.
    /// Clients may be limited to some ([`Client::with_resources`](crate::Client::with_resources)).
    pub fn resource(mut self, resource: ResourceIndicator) -> Self {
        self.resources.insert(resource);
        self
    }

    /// Declares the resource a token is for when its request names none
    /// (RFC 8707 §2 lets the server choose), and declares it known. Without
    /// a default, such tokens have no audience.
    pub fn default_resource(mut self, resource: ResourceIndicator) -> Self {
        self.resources.insert(resource.clone());
        self.default_resource = Some(resource);
        self
    }

    /// Declares a protected resource (RFC 9728) this server's tokens are
    /// for: its identifier becomes a known resource (as with
    /// [`resource`](Self::resource)), its metadata document is served at
    /// its well-known path ([`ProtectedResource::metadata_path`]) through
    /// the endpoint table, and the adapters' bearer extractors and guards on
    /// its paths check tokens' audience and send `resource_metadata` in
    /// their challenges. A second declaration of the same identifier is a
    /// [`BuildError::DuplicatePath`].
    pub fn protected_resource(mut self, resource: ProtectedResource) -> Self {
        self.resources.insert(resource.identifier().clone());
        self.protected.push(resource);
        self
    }

    /// Lifetimes of codes and tokens.
    pub fn lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Endpoint paths, relative to the issuer.
    pub fn paths(mut self, paths: EndpointPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The realm of `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Lets confidential clients skip PKCE. Dangerous: they then have no
    /// defence against authorization code injection (RFC 9700 §4.5).
    pub fn dangerous_pkce_optional_for_confidential_clients(mut self) -> Self {
        self.pkce = PkcePolicy::DangerousRequiredForPublicOnly;
        self
    }

    /// Registers a grant type (or replaces a built-in one with the same `grant_type`).
    pub fn grant(mut self, handler: impl GrantHandler + 'static) -> Self {
        self.grants
            .insert(handler.grant_type().to_owned(), Arc::new(handler));
        self
    }

    /// Registers a client-authentication method (or replaces a built-in
    /// one with the same name): clients registered for it may then
    /// authenticate with it at every endpoint that authenticates clients,
    /// and metadata lists it. `client_secret_basic`, `client_secret_post`
    /// and `none` are registered by default; add
    /// [`PrivateKeyJwt`](crate::PrivateKeyJwt) for RFC 7523 client assertions.
    pub fn client_auth_method(mut self, method: impl ClientAuthMethod + 'static) -> Self {
        let name = method.method();
        self.auth_methods.retain(|m| m.method() != name);
        self.auth_methods.push(Arc::new(method));
        self
    }

    /// Registers a secret verifier for its hash scheme (or replaces the
    /// built-in one: SHA-256 and Argon2id are built in), e.g. an Argon2id
    /// verifier with other bounds, or one that hashes on a blocking thread.
    pub fn secret_verifier(mut self, verifier: impl SecretVerifier + 'static) -> Self {
        self.secrets.insert(Arc::new(verifier));
        self
    }

    /// The consent policy (default: always ask).
    pub fn consent(mut self, policy: impl ConsentPolicy + 'static) -> Self {
        self.consent = Arc::new(policy);
        self
    }

    /// The clock (default: the system clock). Tests pass a [`crate::FixedClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The randomness source (default: the OS-seeded CSPRNG). Byte 8 of a
    /// minted grant id names the minting thread instead
    /// ([`GrantId::mint`](crate::GrantId::mint)), so ids are not wholly
    /// determined by a deterministic source.
    pub fn random(mut self, random: Arc<dyn Random>) -> Self {
        self.random = random;
        self
    }

    /// The keys that sign JWT access tokens (RFC 9068): the JWKS endpoint
    /// joins the endpoint table and `jwks_uri` the metadata, and clients
    /// that ask for JWTs ([`Client::with_access_token_format`](crate::Client::with_access_token_format))
    /// get them. Others keep opaque tokens unless
    /// [`jwt_access_tokens`](Self::jwt_access_tokens) makes JWTs the default.
    pub fn signing_keys(mut self, keys: Arc<dyn KeySet>) -> Self {
        self.signing_keys = Some(keys);
        self
    }

    /// Issues every client's access tokens as JWTs signed by `keys` (RFC
    /// 9068), unless a client chose opaque ones. Opaque is the default
    /// without this. JWTs are stored like opaque tokens, so introspection,
    /// revocation and [`Server::verify_bearer`] treat both alike.
    pub fn jwt_access_tokens(mut self, keys: Arc<dyn KeySet>) -> Self {
        self.signing_keys = Some(keys);
        self.access_token_format = AccessTokenFormat::Jwt;
        self
    }

    /// How long caches may keep the JWKS (`Cache-Control: max-age`): 5
    /// minutes by default.
    pub fn jwks_max_age(mut self, max_age: time::Duration) -> Self {
        self.jwks_max_age = max_age.max(time::Duration::ZERO);
        self
    }

    /// How DPoP proofs (RFC 9449) are accepted, at the token endpoint and
    /// by [`Server::verify_bearer_at`]: by default proofs up to 60 s old
    /// and no server nonces. DPoP is always available: a client opts in by
    /// sending a proof.
    pub fn dpop(mut self, policy: crate::dpop::DpopPolicy) -> Self {
        self.dpop = policy;
        self
    }

    /// Builds the server, with the built-in grants registered unless
    /// replaced, and its endpoint table computed and checked.
    pub fn build(mut self) -> Result<Server, BuildError> {
        let issuer = self.issuer.ok_or(BuildError::MissingIssuer)?;
        let issuer = issuer.strip_suffix('/').unwrap_or(&issuer).to_owned();
        let parsed =
            url::Url::parse(&issuer).map_err(|_| BuildError::InvalidIssuer(issuer.clone()))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || parsed.host_str().is_none()
        {
            return Err(BuildError::InvalidIssuer(issuer));
        }
        let store = self.store.ok_or(BuildError::MissingStore)?;
        check_lifetimes(&self.lifetimes, self.registration.as_ref())?;
        // Written into every challenge as a quoted string, unescaped.
        if self.realm.is_empty() || crate::error::quote_safe(&self.realm) != self.realm {
            return Err(BuildError::InvalidRealm(self.realm));
        }
        if let Some((a, b)) = self.resources.iter().enumerate().find_map(|(i, a)| {
            self.resources
                .iter()
                .skip(i + 1)
                .find(|b| a.same_resource(b))
                .map(|b| (a, b))
        }) {
            return Err(BuildError::EquivalentResources(
                a.as_str().to_owned(),
                b.as_str().to_owned(),
            ));
        }
        let mut routes = Routes::compute(
            &issuer,
            parsed.path(),
            &self.paths,
            self.device_grant,
            self.registration.is_some(),
        )?;
        let protected: Vec<ProtectedResource> = self
            .protected
            .into_iter()
            .map(|r| r.defaulting_authorization_server(&issuer))
            .collect();
        routes.add_protected_resources(&protected)?;
        let routes = match &self.signing_keys {
            Some(_) => routes.with_jwks(format!(
                "{}{}",
                parsed.path().trim_end_matches('/'),
                self.paths.jwks
            ))?,
            None => routes,
        };
        if self.device_grant {
            let grant: Arc<dyn GrantHandler> = Arc::new(DeviceCodeGrant);
            self.grants
                .entry(grant.grant_type().to_owned())
                .or_insert(grant);
        }
        let builtins: [Arc<dyn GrantHandler>; 3] = [
            Arc::new(AuthorizationCodeGrant),
            Arc::new(RefreshTokenGrant),
            Arc::new(ClientCredentialsGrant),
        ];
        for g in builtins {
            self.grants.entry(g.grant_type().to_owned()).or_insert(g);
        }
        // Whether the built-in methods stand first, in their order, as
        // themselves (none replaced): authentication then decides them
        // without asking them (`client_auth::select_builtin`).
        let builtin_auth = !self.auth_methods.iter().any(|m| {
            let name = m.method();
            name == AuthMethod::ClientSecretBasic
                || name == AuthMethod::ClientSecretPost
                || name == AuthMethod::None
        });
        let builtin_methods: [Arc<dyn ClientAuthMethod>; 3] = [
            Arc::new(ClientSecretBasic),
            Arc::new(ClientSecretPost),
            Arc::new(NoClientAuth),
        ];
        for (i, m) in builtin_methods.into_iter().enumerate() {
            if !self.auth_methods.iter().any(|r| r.method() == m.method()) {
                self.auth_methods.insert(i.min(self.auth_methods.len()), m);
            }
        }
        debug_assert!(routes.path_of(Endpoint::Token).is_some());
        let scope_words = crate::scope::ScopeWords::new(self.scopes.clone());
        Ok(Server {
            inner: Arc::new(Inner {
                scope_words,
                store,
                limiter: self.limiter,
                login_key: LoginHandleKey::new(
                    self.login_key.unwrap_or_else(|| self.random.bytes32()),
                ),
                config: Config {
                    issuer,
                    lifetimes: self.lifetimes,
                    pkce: self.pkce,
                    paths: self.paths,
                    scopes: self.scopes,
                    realm: self.realm,
                    max_body_bytes: 64 * 1024,
                    device_poll_interval: 5,
                    require_pushed_authorization_requests: self.require_par,
                    cross_origin: self.cross_origin,
                    registration: self.registration,
                    resources: self.resources,
                    default_resource: self.default_resource,
                    dpop: self.dpop,
                },
                routes,
                grants: self.grants,
                auth_methods: self.auth_methods,
                builtin_auth,
                secrets: self.secrets,
                consent: self.consent,
                clock: self.clock,
                random: self.random,
                jwt: self.signing_keys.map(|keys| crate::jwt::JwtIssuing {
                    keys,
                    default_format: self.access_token_format,
                    jwks_max_age: self.jwks_max_age,
                }),
                protected,
                documents: self.documents,
            }),
        })
    }
}
