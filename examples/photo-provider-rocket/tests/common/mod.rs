//! Launch the rocket app on a free port; the browser helpers are the axum
//! provider's (`examples/photo-provider/tests/common/shared.rs`), so both
//! providers pass the very same checks.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

#[path = "../../../photo-provider/tests/common/shared.rs"]
mod shared;
pub use shared::*;

use std::sync::Arc;

use photobook::{Demo, server_builder};
use tessera::{Clock, SystemClock};

/// A free loopback port: bound, noted, freed (rocket 0.5 binds by itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Launches the rocket app over `demo` on `port`, returning once it listens.
pub async fn launch_rocket(demo: Demo, port: u16) {
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let rocket = photo_provider_rocket::app(demo, photo_provider_rocket::rocket_config(listen))
        .unwrap()
        .attach(rocket::fairing::AdHoc::on_liftoff("ready", move |_| {
            Box::pin(async move {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            })
        }));
    tokio::spawn(async move {
        if let Err(e) = rocket.launch().await {
            panic!("rocket: {}", e.kind());
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), rx)
        .await
        .expect("rocket listens within 30 s")
        .unwrap();
}

impl Provider {
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// The app on `clock` (a `tessera::FixedClock` lets a test move time).
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let server = server_builder(&issuer, photobook::store::memory())
            .clock(clock.clone())
            .build()
            .unwrap();
        let demo = Demo::with_clock(server, clock).unwrap();
        launch_rocket(demo.clone(), port).await;
        Self { issuer, demo }
    }
}
