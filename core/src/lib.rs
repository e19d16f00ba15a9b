//! # Tessera: an embeddable OAuth 2 authorization server core
//!
//! This crate is the protocol, with no I/O and no web framework: requests
//! are parsed once into types, each grant is a transition over plain values,
//! and a thin async service layer ([`Server`]) runs them against storage and
//! consent traits. Adapters (`tessera-axum`, `tessera-rocket`) translate HTTP
//! to and from [`http::HttpRequest`] / [`http::HttpResponse`]; stores
//! (`tessera-memory`, `tessera-redis`) implement [`storage`]'s traits.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod clock;
pub mod error;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod token;

pub use client::{AuthMethod, Client, ClientId, ClientKind, ClientRegistry, GrantType, SecretHash};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{ErrorCode, OAuthError, StoreError};
pub use params::Params;
pub use pkce::CodeChallenge;
pub use redirect::RedirectUri;
pub use scope::{Scope, ScopeToken};
pub use storage::{GrantStore, PendingStore, Store, Subject};
pub use token::{GrantId, OsRandom, Random, Secret, SecretKey, TokenHash, TokenKind};

/// Defaults, and the vulnerabilities each defends against.
#[doc = include_str!("../doc/manual.md")]
pub mod manual {}

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod config;
pub mod consent;
pub mod grant;
pub mod http;
pub mod introspection;
pub mod metadata;
pub mod revocation;
pub mod server;

pub use authorize::{AuthorizationRedirect, AuthorizeOutcome, Prompt};
pub use bearer::{AccessToken, BearerError};
pub use config::{Config, Lifetimes};
pub use consent::{AlwaysPrompt, ConsentPolicy, ConsentRequirement, Decision, SkipForFirstParty};
pub use grant::{GrantContext, GrantHandler, TokenResponse};
pub use http::{HttpRequest, HttpResponse};
pub use server::{BuildError, Server, ServerBuilder};
