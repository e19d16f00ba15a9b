//! Token verifiers for a resource server running in another process than
//! its authorization server (Tessera, or any RFC 8414 server), for the
//! `Bearer` extractor and `require_scope` layer of `tessera-axum` and the
//! `Bearer` / `Scoped` guards of `tessera-rocket`:
//!
//! - [`JwksVerifier`]: JWT access tokens (RFC 9068) validated locally
//!   against the authorization server's JWK Set, fetched through its
//!   metadata (RFC 8414 `jwks_uri`), kept, and fetched again on an unknown
//!   `kid` (a key rotation) at most once per cooldown;
//! - [`IntrospectionVerifier`]: every kind of token asked about at the
//!   introspection endpoint (RFC 7662), answers cached by the token's hash
//!   until its expiry and at most a minute, so revocation is seen.
//!
//! Both accept DPoP-bound tokens (RFC 9449 §7) only with a valid proof by
//! the token's key, as the in-process resource server does, each proof's
//! `jti` once: in a bounded [`MemoryReplayCache`] by default, or in a
//! store every instance shares (`replay_store` on the builders).
//!
//! Both check what [`tessera::RemoteResource`] says (issuer, the audience
//! of the protected resource at the request's path, expiry with a small
//! leeway) and fail closed: an authorization server that cannot be reached
//! gets the request `503 temporarily_unavailable`, never a token accepted
//! unchecked. Metadata, keys and introspection are fetched over `https`
//! only (plain `http` to a loopback host, or with
//! [`FetchLimits::dangerous_allow_plain_http`]), and an introspection
//! answer counts only for an access token (`token_type` `Bearer` or
//! `DPoP`): a refresh token is refused. The checks themselves are the
//! core's, free of I/O; this crate only fetches.
//!
//! See the how-to "Resource servers in another process" in the `tessera`
//! manual (`core/doc/howto/resource-server.md`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cache;
mod dpop;
mod fetch;
mod introspection;
mod jwks;
mod replay;

pub use fetch::{FetchError, FetchLimits};
pub use introspection::{IntrospectionVerifier, IntrospectionVerifierBuilder};
pub use jwks::{BuildError, JwksVerifier, JwksVerifierBuilder};
pub use replay::{DEFAULT_REPLAY_CAPACITY, MemoryReplayCache};
