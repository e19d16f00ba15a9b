//! End-to-end tests of the photo-sharing demo in a real browser.
//!
//! The harness starts `photo-provider` (on a free loopback port) and
//! `printshop` (on 127.0.0.1:9001, the seeded client's redirect URI), then
//! drives Debian's headless Chromium through chromedriver with fantoccini,
//! clicking and typing as a person would. The device-grant scenario also
//! runs the real `photo-cli` and types the code it prints into the
//! provider's verification page. See `tests/browser.rs` for the scenarios.
//!
//! Environment:
//!
//! | variable | effect |
//! |---|---|
//! | `TESSERA_E2E_SKIP=1` | skip the browser scenarios (otherwise a missing browser fails them) |
//! | `TESSERA_E2E_CHROMIUM`, `TESSERA_E2E_CHROMEDRIVER` | browser and driver paths (default `/usr/bin/chromium`, `/usr/bin/chromedriver`) |
//! | `TESSERA_E2E_BIN_DIR` | directory with prebuilt `photo-provider`, `printshop` and `photo-cli` (default: `cargo build` them) |
//! | `TESSERA_E2E_BUILD_TIMEOUT_SECS` | bound on that build (default 1800) |
//!
//! On failure a screenshot, the page's HTML and the servers' logs are saved
//! in `e2e-artifacts/` at the workspace root. Every child process is killed
//! when its guard drops, also when a test panics; every wait is bounded.

pub mod binaries;
pub mod browser;
pub mod demo;
pub mod process;

pub use browser::{Browser, STEP_TIMEOUT, Tools};
pub use demo::{
    Demo, Finished, Instructions, PRINTSHOP_PORT, PhotoCli, artifacts_dir, docs_screenshots_dir,
};
