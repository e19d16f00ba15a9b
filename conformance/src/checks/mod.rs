//! The checks, one module per RFC (or concern). Each takes a [`Target`] and
//! talks to it over HTTP only.

use std::future::Future;
use std::pin::Pin;

use crate::{CheckResult, Target};

pub mod oauth;
pub mod races;
pub mod rfc6749_authorize;
pub mod rfc6749_happy;
pub mod rfc6749_token;
pub mod rfc6750;
pub mod rfc7009;
pub mod rfc7591;
pub mod rfc7662;
pub mod rfc8414;
pub mod rfc8628;
pub mod rfc8693;
pub mod rfc8707;
pub mod rfc9126;
pub mod rfc9449;
pub mod rfc9728;

/// A boxed check future.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;

/// One check of the suite.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Its group (module), e.g. `rfc7009`.
    pub group: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(Target) -> CheckFuture,
}

/// Every check, in suite order.
pub fn all() -> Vec<Check> {
    crate::__with_checks! { __check_list!() }
}
