//! Stopping: once `shutdown` completes, open connections get
//! `SHUTDOWN_GRACE` to finish and are then closed, so a client holding a
//! half-sent request cannot keep PrintShop running.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn a_half_sent_request_does_not_keep_it_from_stopping() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = printshop::Config::try_parse_from(["printshop", "--listen", &addr.to_string()])
        .expect("valid flags");
    let sessions = printshop::open_store(&config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(printshop::serve_with(listener, config, sessions, async {
        let _ = stopped.await;
    }));
    // Half of a first request on one connection; then a whole request
    // answered on a second, so the first was surely accepted (in order).
    let mut held = TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut probe = TcpStream::connect(addr).await.unwrap();
    probe
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), probe.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 "));
    let signalled = std::time::Instant::now();
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(printshop::SHUTDOWN_GRACE + Duration::from_secs(5), serving)
        .await
        .expect("stopped within the grace period");
    ended.unwrap().unwrap();
    // It waited for the held connection (an idle server stops at once).
    assert!(signalled.elapsed() >= printshop::SHUTDOWN_GRACE - Duration::from_millis(500));
    drop(held);
}
