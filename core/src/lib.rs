//! # Tessera: an embeddable OAuth 2 authorization server core
//!
//! This crate is the protocol, with no I/O and no web framework: requests
//! are parsed once into types, each grant is a transition over plain values,
//! and a thin async service layer ([`Server`]) runs them against storage and
//! consent traits. Adapters (`tessera-axum`, `tessera-rocket`) translate HTTP
//! to and from [`HttpRequest`] / [`HttpResponse`] and serve the [`Server::routes`] with [`Server::handle`]; stores
//! (`tessera-memory`, `tessera-redis`) implement [`storage`]'s traits.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

// The modules are private; what an embedder, a grant author or a backend
// author needs is re-exported below, in one place (rustls' model), and the
// two extension points keep a namespace of their own: `grant` (custom grant
// types) and `storage` (custom backends).
mod abuse;
mod assertion;
mod authorize;
mod bearer;
mod client;
mod client_auth;
mod client_metadata;
mod clock;
mod config;
mod consent;
mod device;
mod dpop;
mod endpoint;
mod error;
pub mod grant;
mod http;
mod introspection;
mod jwt;
mod keys;
mod login_handle;
mod metadata;
mod par;
mod params;
mod pkce;
mod protected_resource;
mod redirect;
mod registration;
mod resource;
mod revocation;
mod scope;
mod secret;
mod server;
pub mod storage;
mod token;
mod verifier;

// manual.md links each how-to by its file, for reading it on a forge; the
// link definitions below come first, so rustdoc links the modules instead.
/// The manual: defaults and the vulnerabilities each defends against, and
/// how-tos for embedding, extending and porting Tessera.
///
/// [embed-axum]: crate::manual::embed_axum
/// [embed-rocket]: crate::manual::embed_rocket
/// [consent-policy]: crate::manual::consent_policy
/// [custom-grant]: crate::manual::custom_grant
/// [client-auth]: crate::manual::client_auth
/// [custom-store]: crate::manual::custom_store
/// [new-adapter]: crate::manual::new_adapter
/// [jwt-access-tokens]: crate::manual::jwt_access_tokens
/// [client-id-metadata-documents]: crate::manual::client_id_metadata_documents
/// [dpop]: crate::manual::dpop
/// [resource-server]: crate::manual::resource_server
pub mod manual {
    #![doc = include_str!("../doc/manual.md")]

    /// How to embed Tessera in an axum service.
    pub mod embed_axum {
        #![doc = include_str!("../doc/howto/embed-axum.md")]
    }

    /// How to embed Tessera in a rocket service.
    pub mod embed_rocket {
        #![doc = include_str!("../doc/howto/embed-rocket.md")]
    }

    /// How to skip the consent page when it may be: a consent policy.
    pub mod consent_policy {
        #![doc = include_str!("../doc/howto/consent-policy.md")]
    }

    /// How to add a grant type of your own.
    pub mod custom_grant {
        #![doc = include_str!("../doc/howto/custom-grant.md")]
    }

    /// How to write a client-authentication method; secret hashes and
    /// verifiers; `private_key_jwt`.
    pub mod client_auth {
        #![doc = include_str!("../doc/howto/client-auth.md")]
    }

    /// How to write a storage backend and prove it with the testkit.
    pub mod custom_store {
        #![doc = include_str!("../doc/howto/custom-store.md")]
    }

    /// How to write an adapter for another web framework.
    pub mod new_adapter {
        #![doc = include_str!("../doc/howto/new-adapter.md")]
    }

    /// How to issue signed access tokens (RFC 9068) and validate them.
    pub mod jwt_access_tokens {
        #![doc = include_str!("../doc/howto/jwt-access-tokens.md")]
    }

    /// How to accept clients known by a client ID metadata document
    /// (draft-ietf-oauth-client-id-metadata-document), with SSRF defences.
    pub mod client_id_metadata_documents {
        #![doc = include_str!("../doc/howto/client-id-metadata-documents.md")]
    }

    /// Sender-constrained tokens with DPoP (RFC 9449).
    pub mod dpop {
        #![doc = include_str!("../doc/howto/dpop.md")]
    }

    /// How to protect an API in another process than the authorization
    /// server: JWTs validated against the remote JWKS, or introspection.
    pub mod resource_server {
        #![doc = include_str!("../doc/howto/resource-server.md")]
    }
}

// The server and its endpoints.
pub use endpoint::{Endpoint, Route, WELL_KNOWN_PATH};
pub use http::{
    BODY_READ_TIMEOUT, BodyPlan, DRAIN_MAX_BYTES, DRAIN_TIMEOUT, HttpRequest, HttpResponse,
    SECRET_PARAMETERS,
};
pub use server::{BuildError, Server, ServerBuilder};

// Configuration.
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{Config, CrossOrigin, EndpointPaths, Lifetimes, PkcePolicy};
pub use token::{OsRandom, Random};

// Clients and what they are registered for.
pub use client::{
    AuthMethod, Client, ClientId, ClientKind, ClientRegistry, GrantType, generate_client_secret,
};

// Client authentication (RFC 6749 §2.3) as an extension point, and the
// secret hashes and verifiers behind `client_secret_*`.
pub use client_auth::{
    AssertionAudience, CLIENT_ASSERTION_TYPE_JWT_BEARER, ClientAuthContext, ClientAuthMethod,
    ClientAuthRequest, ClientSecretBasic, ClientSecretPost, NoClientAuth, Presented, PrivateKeyJwt,
};
pub use secret::{Argon2idVerifier, SecretHash, SecretHashError, SecretVerifier, Sha256Verifier};

// JWT assertions (RFC 7523 §3): private_key_jwt and the JWT bearer grant.
pub use assertion::{
    AssertionError, AssertionRules, AssertionUse, JWT_BEARER_GRANT_TYPE, JwtAssertion, peek_claim,
};
pub use redirect::{RedirectUri, RedirectUriError};
pub use scope::{Scope, ScopeToken};

// Resource indicators (RFC 8707): which resource a token is for.
pub use resource::{ResourceIndicator, ResourceIndicatorError, requested_resource};

// The authorization endpoint: outcomes for the embedder's pages.
pub use authorize::{AuthorizationRedirect, AuthorizeOutcome, Prompt};
pub use consent::{AlwaysPrompt, ConsentPolicy, ConsentRequirement, Decision, SkipForFirstParty};
pub use storage::{Actor, Store, Subject};

// The abuse hook, shared by the core and the embedder's login page.
pub use abuse::{Action, Limit, Limited, MemoryRateLimiter, RateLimiter, SourceNetwork};

// Dynamic client registration (RFC 7591).
pub use registration::{
    ClientInformation, DynamicRegistration, MAX_CONTACTS, MAX_REDIRECT_URIS, MAX_TEXT_BYTES,
    MAX_URI_BYTES, RegisterOutcome, RegistrationPolicy,
};

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document).
pub use client_metadata::{
    ClientIdUrl, ClientIdUrlError, ClientMetadataError, ClientMetadataFetcher,
    ClientMetadataPolicy, DEFAULT_MAX_DOCUMENT_BYTES, FetchError, FetchedDocument,
    MAX_CLIENT_ID_URL_BYTES, STALE_IF_ERROR,
};

// Pushed authorization requests (RFC 9126).
pub use par::{PushedRequest, REQUEST_URI_PREFIX};

// The device authorization grant (RFC 8628).
pub use device::{DeviceAuthorization, DevicePrompt, UserCode, UserCodeError};

// Signed access tokens (RFC 9068): keys, JWKS, validation.
pub use jwt::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, AccessTokenFormat, AccessTokenValidator, JwtError,
    MAX_JWT_BYTES,
};
pub use keys::{
    Jwk, Jwks, JwsAlgorithm, KeyError, KeySet, MAX_JWKS_KEYS, MAX_RETIRED_KEYS, RotatingKeys,
    SigningKey, StaticKeys, VerificationKeys, VerifyingKey,
};

// Sender-constrained tokens: DPoP (RFC 9449).
pub use dpop::{
    DPOP_ALGORITHMS, DPOP_PROOF_TYP, DpopError, DpopPolicy, DpopProof, MAX_DPOP_JTI_BYTES,
    MAX_DPOP_PROOF_BYTES, ProofContext, access_token_hash, check_proof as check_dpop_proof,
    dpop_header, remember_proof_at as remember_dpop_proof, same_htu,
    verify_proof as verify_dpop_proof,
};

// Resource servers.
pub use bearer::{
    AccessToken, BearerError, DpopFacts, TokenScheme, access_token_credentials, bearer_token,
    presented_scheme,
};
// Resource servers in any process: one verifier trait for the adapters.
pub use protected_resource::{
    PROTECTED_RESOURCE_WELL_KNOWN_PATH, ProtectedResource, ProtectedResourceError,
    ProtectedResourceMetadata,
};
pub use verifier::{
    IntrospectionError, MAX_LEEWAY, RefusedToken, RemoteResource, ResourceRequest, SharedVerifier,
    TokenVerifier, unreachable_authorization_server,
};

// Answers of the other endpoints, for embedders that call them directly.
pub use introspection::{Confirmation, Introspection};
pub use metadata::Metadata;

// Errors.
pub use error::{BoxError, ErrorCode, OAuthError, Reason, StoreError};

// Secrets, and the values grants and stores handle.
pub use params::{MAX_PARAMETER_BYTES, Params};
pub use pkce::CodeChallenge;
pub use token::{GrantId, Secret, SecretKey, TokenHash, TokenKind};

#[doc(hidden)]
pub use token::CountingRandom;
