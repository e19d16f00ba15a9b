//! The `photo-provider-rocket` binary's command line: the axum provider's
//! cases, unchanged.

#![allow(clippy::expect_used, clippy::unwrap_used)]

const BIN: &str = env!("CARGO_BIN_EXE_photo-provider-rocket");
const NAME: &str = "photo-provider-rocket";

#[path = "../../photo-provider/tests/cases/cli.rs"]
mod cases;
