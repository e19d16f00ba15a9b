//! Serve the axum app on an ephemeral port; the browser helpers are shared
//! with the rocket provider's tests (`shared.rs`).

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

mod shared;
pub use shared::*;

use photobook::{Demo, build_server};

impl Provider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let demo = Demo::new(build_server(&issuer, photobook::store::memory()).unwrap()).unwrap();
        let app = photo_provider::app(demo.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { issuer, demo }
    }
}
