//! The bounded listener (`photo_provider::connections`): at the bound, a
//! new connection gets in and the quietest one is closed; a flood of silent
//! connections cannot stop another user's request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::serve::ListenerExt;
use photo_provider::connections::Bounded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(max: usize) -> SocketAddr {
    serve_with(max, Duration::from_secs(30)).await
}

async fn serve_with(max: usize, unanswered: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let listener = Bounded::new(listener, max)
        .with_unanswered_limit(unanswered)
        .tap_io(|_| {});
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// One request on `conn`, keep-alive; the response's body.
async fn request(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.rsplit("\r\n\r\n").next().unwrap().to_owned()
}

/// Whether the server closed `conn` (end of stream or an error within `wait`).
async fn closed_by_server(conn: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0; 64];
    match tokio::time::timeout(wait, conn.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("unexpected bytes"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn at_the_bound_the_quietest_connection_makes_room() {
    let addr = serve(4).await;
    // Three silent connections, then one that is served (and so active).
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut active = TcpStream::connect(addr).await.unwrap();
    // ConnectInfo<SocketAddr> still works through the bounded listener.
    assert_eq!(request(&mut active).await, "127.0.0.1");
    // A fifth connection at the bound is served...
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut newcomer = TcpStream::connect(addr).await.unwrap();
    assert_eq!(request(&mut newcomer).await, "127.0.0.1");
    // ...and the quietest, the first silent one, was closed for it.
    assert!(closed_by_server(&mut silent[0], Duration::from_secs(2)).await);
    for s in &mut silent[1..] {
        assert!(!closed_by_server(s, Duration::from_millis(200)).await);
    }
    // The connection that was served recently is kept and still works.
    assert_eq!(request(&mut active).await, "127.0.0.1");
}

/// A flood of silent connections far beyond the bound: every new user is
/// still served, and the server never holds more than the bound (closing
/// the quietest a few at a time: 128 / 64 per scan here).
#[tokio::test]
async fn a_flood_of_silent_connections_does_not_stop_other_users() {
    let addr = serve(128).await;
    let mut flood = Vec::new();
    for round in 0..5 {
        for _ in 0..60 {
            flood.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut user = TcpStream::connect(addr).await.unwrap();
        assert_eq!(request(&mut user).await, "127.0.0.1", "round {round}");
    }
    // At most 128 of the 300 silent ones can still be open.
    let mut open = 0;
    for conn in &mut flood {
        if !closed_by_server(conn, Duration::from_millis(5)).await {
            open += 1;
        }
    }
    assert!(open <= 128, "{open} silent connections still open");
    assert!(
        open >= 100,
        "only the fewest needed are closed ({open} open)"
    );
}

/// A request head trickled in (axum's `serve` has no head timeout) is cut
/// off once its first bytes waited longer than the limit for an answer;
/// a keep-alive connection idle for longer is not.
#[tokio::test]
async fn a_trickled_request_is_cut_off_an_idle_one_is_not() {
    let addr = serve_with(16, Duration::from_millis(300)).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(request(&mut idle).await, "127.0.0.1");
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    slow.write_all(b"host: t\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // 450 ms after its first bytes: the next ones end it.
    let _ = slow.write_all(b"x-a: b\r\n").await;
    assert!(closed_by_server(&mut slow, Duration::from_secs(2)).await);
    // Idle (no request waiting) for longer than the limit: still served.
    assert_eq!(request(&mut idle).await, "127.0.0.1");
}

/// A connection to `addr` from the loopback address `from` (Linux answers
/// on all of 127.0.0.0/8): another network, as the listener counts them.
async fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// One network holds at most its share of the table: a flood from one
/// host, its connections kept busy, closes its own quietest ones at that
/// share and cannot fill the table, so another host's quiet (idle
/// keep-alive) connection is kept and new users are served.
#[tokio::test]
async fn one_network_holds_at_most_its_share() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let listener = Bounded::new(listener, 8).with_network_max(4).tap_io(|_| {});
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    // Another host's connection, served once and then idle: the quietest.
    let mut other = connect_from(addr, "127.0.0.2").await;
    assert_eq!(request(&mut other).await, "127.0.0.2");
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A flood of 20 busy connections from one host.
    let mut flood = Vec::new();
    for _ in 0..20 {
        let mut conn = connect_from(addr, "127.0.0.3").await;
        assert_eq!(request(&mut conn).await, "127.0.0.3");
        flood.push(conn);
    }
    // Only 4 of the flood's are still open, and the other host's is kept.
    let mut open = 0;
    for conn in &mut flood {
        if !closed_by_server(conn, Duration::from_millis(5)).await {
            open += 1;
        }
    }
    assert_eq!(open, 4);
    assert_eq!(request(&mut other).await, "127.0.0.2");
    let mut user = connect_from(addr, "127.0.0.4").await;
    assert_eq!(request(&mut user).await, "127.0.0.4");
}
