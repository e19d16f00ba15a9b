//! The person's side of the demo, driven like a browser against the real app
//! (the cases are in `cases/browser_flow.rs`, shared with the rocket provider).

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cases/browser_flow.rs"]
mod cases;
mod common;
