//! The conformance suite against `photo-provider-rocket` (the rocket adapter).
//!
//! Until `examples/photo-provider-rocket/src/main.rs` is more than its
//! placeholder, `build.rs` leaves `cfg(tessera_rocket_provider)` unset and
//! every test here is reported as ignored, with the reason. From then on they
//! run, and a missing or unbuildable binary fails them.

tessera_conformance::suite!(
    #[cfg_attr(
        not(tessera_rocket_provider),
        ignore = "examples/photo-provider-rocket is still a placeholder"
    )]
    "photo-provider-rocket"
);
