#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authorize;
mod bearer;
mod endpoints;
mod response;

pub use authorize::AuthorizationQuery;
pub use bearer::{Bearer, BearerRejection, RequireScope, RequireScopeLayer, require_scope};
pub use endpoints::router;
pub use response::{TesseraResponse, respond};

/// The workspace README's embedding example, compiled as a doc test so the
/// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadme;
