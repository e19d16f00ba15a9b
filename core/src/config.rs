//! Server configuration: the issuer, lifetimes and policies, with safe defaults.

use std::collections::BTreeMap;

use time::Duration;

use crate::scope::{Scope, ScopeToken};

/// How long each kind of secret lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Authorization codes: 60 s by default (RFC 6749 §4.1.2 recommends at most 10 minutes).
    pub code: Duration,
    /// Access tokens: 1 hour by default.
    pub access_token: Duration,
    /// Refresh tokens: 30 days by default, renewed on every rotation.
    pub refresh_token: Duration,
    /// Pending authorization requests (login and consent pages): 10 minutes by default.
    pub pending: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            code: Duration::seconds(60),
            access_token: Duration::hours(1),
            refresh_token: Duration::days(30),
            pending: Duration::minutes(10),
        }
    }
}

/// Which clients must use PKCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PkcePolicy {
    /// Every client, confidential ones included (RFC 9700 §2.1.1): the default.
    #[default]
    RequiredForAll,
    /// Only public clients. Confidential clients then rely on their secret
    /// alone against code injection: weaker, so it is named as dangerous in
    /// the builder.
    DangerousRequiredForPublicOnly,
}

/// The paths endpoints are served at, relative to the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPaths {
    /// The authorization endpoint.
    pub authorize: String,
    /// The token endpoint.
    pub token: String,
    /// The revocation endpoint (RFC 7009).
    pub revoke: String,
    /// The introspection endpoint (RFC 7662).
    pub introspect: String,
}

impl Default for EndpointPaths {
    fn default() -> Self {
        Self {
            authorize: "/authorize".into(),
            token: "/token".into(),
            revoke: "/revoke".into(),
            introspect: "/introspect".into(),
        }
    }
}

/// Everything that tunes the protocol.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2), also sent as `iss` (RFC 9207).
    pub issuer: String,
    /// Lifetimes of codes and tokens.
    pub lifetimes: Lifetimes,
    /// Which clients must use PKCE.
    pub pkce: PkcePolicy,
    /// Endpoint paths.
    pub paths: EndpointPaths,
    /// Known scopes with a human-readable description for consent pages.
    pub scopes: BTreeMap<ScopeToken, String>,
    /// The realm in `WWW-Authenticate` challenges.
    pub realm: String,
    /// The largest request body an adapter should accept: 64 KiB.
    pub max_body_bytes: usize,
}

impl Config {
    /// All known scopes.
    pub fn scopes_supported(&self) -> Scope {
        Scope::from_tokens(self.scopes.keys().cloned())
    }
}
