//! A body that trickles in is cut off after `tessera::BODY_READ_TIMEOUT`:
//! `408` with `invalid_request` and `Connection: close` (RFC 9110
//! §15.5.9), instead of holding the connection and its task for ever.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::Request;
use futures::StreamExt;
use tessera::{ScopeToken, Server};
use tessera_memory::MemoryStore;
use tower::ServiceExt;

#[tokio::test(start_paused = true)]
async fn a_body_that_never_finishes_gets_408_and_close() {
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::new()))
        .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
        .build()
        .unwrap();
    let app = tessera_axum::router::<()>(server);
    // The first bytes of a form, then nothing more, ever.
    let trickle = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
        b"grant_type=client_",
    ))])
    .chain(futures::stream::pending());
    let request = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "47")
        .body(Body::from_stream(trickle))
        .unwrap();
    let started = tokio::time::Instant::now();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 408);
    assert!(started.elapsed() >= tessera::BODY_READ_TIMEOUT);
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "invalid_request");
}
