//! The conformance suite against `photo-provider` (the axum adapter).

tessera_conformance::suite!("photo-provider");
