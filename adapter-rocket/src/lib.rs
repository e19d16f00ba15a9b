#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod body;
mod endpoints;
mod fairing;
mod guard;
mod installed;
mod rejection;
mod response;

pub use body::OAuthRequest;
pub use fairing::{Tessera, TesseraFairing};
pub use guard::{Bearer, BearerRejection, RequiredScopes, Scoped};
pub use response::TesseraResponse;
