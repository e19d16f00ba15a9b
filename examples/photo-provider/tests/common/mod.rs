//! Serve the axum app on an ephemeral port; the browser helpers are shared
//! with the rocket provider's tests (`shared.rs`).

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

mod shared;
pub use shared::*;

use std::sync::Arc;

use photobook::{Demo, server_builder};
use tessera::{Clock, SystemClock};

impl Provider {
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// The app on `clock` (a `tessera::FixedClock` lets a test move time).
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let server = server_builder(&issuer, photobook::store::memory())
            .clock(clock.clone())
            .build()
            .unwrap();
        let demo = Demo::with_clock(server, clock).unwrap();
        let app = photo_provider::app(demo.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { issuer, demo }
    }
}
