//! # The JWT bearer grant (RFC 7523 §2.1) for Tessera
//!
//! A client trades a JWT that a trusted issuer signed (an identity
//! provider, another authorization server, a workload's own token service)
//! for an access token for the user the JWT names. The JWT is the
//! authorization grant (RFC 7521 §4.1): `grant_type` =
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` ([`GRANT_TYPE`]) and
//! `assertion` = the JWT.
//!
//! The grant lives outside the core and uses only its public extension
//! points: [`GrantHandler`], the core's JWT assertion rules
//! ([`AssertionRules`], shared with `private_key_jwt`) and the store's
//! replay cache ([`ReplayStore`](tessera::storage::ReplayStore)). Register it with
//! [`ServerBuilder::grant`](tessera::ServerBuilder::grant), trust issuers
//! with their public keys, and map each assertion's subject to one of your
//! users:
//!
//! ```
//! use std::sync::Arc;
//! use tessera::{Client, ClientId, JwsAlgorithm, OsRandom, Scope, SecretHash, Server, SigningKey, Subject};
//! use tessera_jwt_bearer::{GRANT_TYPE, JwtBearerGrant, TrustedIssuer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The identity provider's public key (in practice, from its JWKS).
//! let idp_key = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
//! let idp = TrustedIssuer::new("https://idp.example", [idp_key.verifying_key().as_ref().clone()]);
//! let grant = JwtBearerGrant::new(|issuer: &str, subject: &str| {
//!     // Only this IdP's users, and only those who have an account here.
//!     (issuer == "https://idp.example" && subject.starts_with("user-"))
//!         .then(|| Subject::new(subject))
//! })
//! .trust(idp);
//! let client = Client::confidential(ClientId::new("batch").ok_or("id")?, "Batch", SecretHash::of("s"))
//!     .with_grant_types([GRANT_TYPE])
//!     .with_scope(Scope::parse("photos.read")?);
//! let server = Server::builder()
//!     .issuer("https://photos.example")
//!     .store(Arc::new(tessera_memory::MemoryStore::with_clients([client])))
//!     .grant(grant)
//!     .build()?;
//! assert!(server.grant_types().any(|g| g == GRANT_TYPE));
//! # Ok(())
//! # }
//! ```
//!
//! ## What it checks (RFC 7523 §3), each failure `invalid_grant` (§3.1)
//!
//! - the JWT's `iss` is a trusted issuer, and its signature verifies with
//!   one of that issuer's keys, chosen by `kid` (ES256, EdDSA or RS256; the key
//!   decides the algorithm: `alg: none` and HMAC never verify anything);
//! - `typ` absent or `JWT` (an access token, `at+jwt`, is not an
//!   assertion, nor is a client's `client-authentication+jwt`: RFC 8725
//!   §3.12);
//! - `sub` present, and mapped to a user by your function (`None`:
//!   refused);
//! - `aud` is this server's issuer identifier, alone
//!   (draft-ietf-oauth-rfc7523bis; [`JwtBearerGrant::accepting_token_endpoint_audience`]
//!   also accepts the token endpoint URL, as RFC 7523 §3 item 3 allows);
//! - `exp` present, not passed, at most 5 minutes ahead by default
//!   ([`JwtBearerGrant::with_max_lifetime`]); `nbf` and `iat` sane (30 s of skew);
//! - `jti` present and used once: remembered per issuer in the store's
//!   replay cache until `exp` plus the allowed clock skew (an assertion is
//!   accepted that long), atomically across server instances.
//!
//! A missing `assertion` is `invalid_request`. The client is authenticated
//! (or, if public, identified) by the server before the grant runs, and
//! must be registered for [`GRANT_TYPE`] (`unauthorized_client` otherwise).
//!
//! ## What it issues
//!
//! An access token for the mapped user, with the requested `scope` (at most
//! the client's registered scope: `invalid_scope` beyond; omitted, all of
//! it) and `resource` (RFC 8707), and no refresh token: the client presents
//! a fresh assertion instead (RFC 7523 does not call for one).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::Duration;

use tessera::grant::{GrantContext, GrantHandler, TokenResponse, resolve_scope};
use tessera::storage::{ReplayKey, ReplayNamespace};
use tessera::{
    AssertionError, AssertionRules, AssertionUse, Client, ErrorCode, Jwk, JwtAssertion, KeyError,
    OAuthError, Params, Reason, StaticKeys, Subject, VerifyingKey, peek_claim,
};

/// The JWT bearer grant's `grant_type` (RFC 7523 §2.1).
pub const GRANT_TYPE: &str = tessera::JWT_BEARER_GRANT_TYPE;

/// An issuer whose assertions this server accepts, with its public keys.
pub struct TrustedIssuer {
    issuer: String,
    keys: StaticKeys,
}

impl fmt::Debug for TrustedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedIssuer")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TrustedIssuer {
    /// Trusts assertions whose `iss` is `issuer` (compared exactly) and
    /// whose signature one of `keys` verifies.
    pub fn new(issuer: impl Into<String>, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self {
            issuer: issuer.into(),
            keys: StaticKeys::new(keys),
        }
    }

    /// Trusts `issuer` with the keys of its JWK Set (RFC 7517 §5): P-256
    /// or Ed25519 signing keys, each with a `kid`. A key Tessera cannot use
    /// is an error, not silently dropped (this is configuration).
    pub fn from_jwks(issuer: impl Into<String>, keys: &[Jwk]) -> Result<Self, KeyError> {
        let keys = keys
            .iter()
            .map(VerifyingKey::from_jwk)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(issuer, keys))
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// Maps a verified assertion's subject to a user of this server: the
/// embedder's decision (an account may not exist, or not be linked to that
/// issuer). Implemented for closures `Fn(issuer, sub) -> Option<Subject>`.
#[async_trait]
pub trait SubjectMapper: Send + Sync {
    /// The user `assertion.sub` of `issuer` stands for here, or `None` to
    /// refuse the assertion (`invalid_grant`).
    async fn subject(
        &self,
        issuer: &str,
        assertion: &JwtAssertion,
    ) -> Result<Option<Subject>, OAuthError>;
}

#[async_trait]
impl<F> SubjectMapper for F
where
    F: Fn(&str, &str) -> Option<Subject> + Send + Sync,
{
    async fn subject(
        &self,
        issuer: &str,
        assertion: &JwtAssertion,
    ) -> Result<Option<Subject>, OAuthError> {
        Ok(self(issuer, &assertion.sub))
    }
}

/// The JWT bearer grant: register it with
/// [`ServerBuilder::grant`](tessera::ServerBuilder::grant).
pub struct JwtBearerGrant {
    issuers: Vec<TrustedIssuer>,
    mapper: Arc<dyn SubjectMapper>,
    max_lifetime: Duration,
    token_endpoint_audience: bool,
}

impl fmt::Debug for JwtBearerGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearerGrant")
            .field("issuers", &self.issuers)
            .field("max_lifetime", &self.max_lifetime)
            .field("token_endpoint_audience", &self.token_endpoint_audience)
            .finish_non_exhaustive()
    }
}

impl JwtBearerGrant {
    /// The grant with no trusted issuer yet, mapping subjects with `mapper`.
    pub fn new(mapper: impl SubjectMapper + 'static) -> Self {
        Self {
            issuers: Vec::new(),
            mapper: Arc::new(mapper),
            max_lifetime: Duration::minutes(5),
            token_endpoint_audience: false,
        }
    }

    /// Trusts `issuer` (replacing an earlier one with the same identifier).
    #[must_use]
    pub fn trust(mut self, issuer: TrustedIssuer) -> Self {
        self.issuers.retain(|i| i.issuer != issuer.issuer);
        self.issuers.push(issuer);
        self
    }

    /// Accepts `exp` up to `max_lifetime` ahead (at least 1 second, at most
    /// 1 hour; 5 minutes by default). Each `jti` is remembered until `exp`
    /// plus the clock skew.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime.clamp(Duration::seconds(1), Duration::hours(1));
        self
    }

    /// Also accepts the token endpoint's URL as `aud` (RFC 7523 §3 item 3),
    /// among other values. Prefer the default, the issuer alone: an
    /// assertion made for a URL that an attacker's metadata named can be
    /// replayed here (draft-ietf-oauth-rfc7523bis).
    #[must_use]
    pub fn accepting_token_endpoint_audience(mut self) -> Self {
        self.token_endpoint_audience = true;
        self
    }
}

/// `invalid_grant` for an assertion refused for `e` (RFC 7523 §3.1).
fn refused(e: AssertionError) -> OAuthError {
    tracing::info!(error = %e, "JWT bearer assertion refused");
    OAuthError::invalid_grant("the assertion is not valid").with_reason(e.reason())
}

#[async_trait]
impl GrantHandler for JwtBearerGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // RFC 7523 §2.1.
        Some(&["assertion"])
    }

    fn grant_type(&self) -> &str {
        GRANT_TYPE
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        // RFC 7521 §4.1: `assertion` is required.
        let token = params.require("assertion")?;
        // The issuer decides which keys verify; read before verifying,
        // trusted only once the signature holds.
        let iss = peek_claim(token, "iss").ok_or_else(|| refused(AssertionError::Malformed))?;
        let trusted = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| refused(AssertionError::WrongIssuerOrSubject))?;
        let config = ctx.config;
        let mut rules = AssertionRules::for_issuer(&config.issuer)
            .with_max_lifetime(self.max_lifetime)
            .used_as(AssertionUse::AuthorizationGrant);
        if self.token_endpoint_audience {
            rules = rules.also_accepting(format!("{}{}", config.issuer, config.paths.token));
        }
        let assertion = rules
            .validate(token, &trusted.keys, ctx.now)
            .map_err(refused)?;
        if assertion.iss != trusted.issuer {
            return Err(refused(AssertionError::WrongIssuerOrSubject));
        }
        let subject = self
            .mapper
            .subject(&trusted.issuer, &assertion)
            .await?
            .ok_or_else(|| {
                tracing::info!(issuer = %trusted.issuer, "JWT bearer assertion names no user here");
                OAuthError::invalid_grant("the assertion's subject is not known here")
                    .with_reason(Reason::AssertionIssuerMismatch)
            })?;
        let scope = resolve_scope(params.get("scope"), &client.scope)?;
        let audience = ctx.resolve_audience(client, params)?;
        // RFC 7523 §3 item 7: each jti once per issuer, for as long as these
        // rules would accept the assertion (`exp` plus the clock skew: one
        // accepted just after its `exp` must still be remembered); last, so
        // a request refused for another reason does not burn it.
        let jti = assertion
            .jti
            .as_deref()
            .ok_or_else(|| refused(AssertionError::MissingJti))?;
        let key = ReplayKey::new(ReplayNamespace::JwtBearer, &trusted.issuer, jti);
        if !ctx
            .store
            .first_use(key, rules.replay_expiry(&assertion), ctx.now)
            .await?
        {
            return Err(refused(AssertionError::Replayed));
        }
        let grant = ctx.new_grant_id();
        let minted = ctx
            .mint_tokens(grant, client, Some(&subject), &scope, None)
            .with_audience(audience);
        minted.issue(ctx.store, grant).await?.ok_or_else(|| {
            OAuthError::new(ErrorCode::ServerError, "could not issue the token")
                .with_reason(Reason::GrantRevoked)
        })
    }
}
