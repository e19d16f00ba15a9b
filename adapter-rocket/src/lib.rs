#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authorize;
mod body;
mod endpoints;
mod fairing;
mod guard;
mod rejection;
mod response;
mod state;

pub use authorize::AuthorizationQuery;
pub use body::OAuthRequest;
pub use fairing::{
    ResourceServerFairing, TesseraFairing, fairing, resource_server, undo_method_override,
};
pub use guard::{Bearer, BearerRejection, RequiredScopes, Scoped};
pub use response::TesseraResponse;
