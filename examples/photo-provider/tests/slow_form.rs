//! A page form trickled a byte at a time is cut off after
//! `tessera::BODY_READ_TIMEOUT`, as the adapter's endpoints are: a 408 page
//! and `Connection: close`, instead of holding the connection and its task
//! for as long as the sender likes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::{Body, Bytes};
use axum::http::Request;
use futures::StreamExt;
use photobook::{Demo, server_builder};
use tower::ServiceExt;

#[tokio::test(start_paused = true)]
async fn a_login_form_that_never_finishes_gets_408_and_close() {
    let server = server_builder("http://127.0.0.1:9000", photobook::store::memory())
        .build()
        .unwrap();
    let app = photo_provider::app(Demo::new(server).unwrap());
    for path in [
        "/login",
        "/consent",
        "/device",
        "/device/login",
        "/device/consent",
    ] {
        let trickle =
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"username=ali"))])
                .chain(futures::stream::pending());
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "60000")
            .body(Body::from_stream(trickle))
            .unwrap();
        let started = tokio::time::Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 408, "{path}");
        assert!(started.elapsed() >= tessera::BODY_READ_TIMEOUT, "{path}");
        assert_eq!(response.headers()["connection"], "close", "{path}");
    }
}
