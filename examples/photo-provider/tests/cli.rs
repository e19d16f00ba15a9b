//! The `photo-provider` binary's command line (cases in `cases/cli.rs`,
//! shared with the rocket provider).

#![allow(clippy::expect_used, clippy::unwrap_used)]

const BIN: &str = env!("CARGO_BIN_EXE_photo-provider");
const NAME: &str = "photo-provider";

#[path = "cases/cli.rs"]
mod cases;
