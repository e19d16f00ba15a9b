//! The conformance suite against `photo-provider` (axum) on a Redis store
//! (`TESSERA_REDIS_URL`): the same checks, the races included, with every
//! grant step going through Redis.

tessera_conformance::suite!("photo-provider", store = tessera_conformance::redis_store());
