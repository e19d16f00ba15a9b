//! The axum provider's browser-flow cases, unchanged, against the rocket app:
//! the rocket provider must behave exactly as the axum one.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../photo-provider/tests/cases/browser_flow.rs"]
mod cases;
mod common;
