//! The fetcher's SSRF defences (draft-ietf-oauth-client-id-metadata-document
//! §6.5, §6.6, §4) against real sockets: a local server is refused unless
//! the dangerous options allow it; a host name that resolves to a loopback
//! address is refused; special-use address literals are refused without a
//! connection; redirects are not followed; size and time are bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tessera::{ClientIdUrl, ClientMetadataFetcher, FetchError};
use tessera_client_metadata::{FetcherOptions, HttpFetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the local server does with each connection.
#[derive(Clone)]
enum Behaviour {
    /// Answers with this raw HTTP response.
    Respond(Arc<Vec<u8>>),
    /// Accepts and says nothing for this long.
    Stall(Duration),
    /// Sends headers, then one byte of body per 200 ms, forever.
    Trickle,
}

/// A local HTTP server on 127.0.0.1; how many requests it has seen.
async fn serve(behaviour: Behaviour) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let behaviour = behaviour.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::Respond(bytes) => {
                        let _ = socket.write_all(&bytes).await;
                    }
                    Behaviour::Stall(d) => tokio::time::sleep(d).await,
                    Behaviour::Trickle => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
                            .await;
                        loop {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            if socket.write_all(b" ").await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (port, hits)
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Behaviour {
    let mut r = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Behaviour::Respond(Arc::new(r.into_bytes()))
}

fn json(body: &str) -> Behaviour {
    response("200 OK", &[("content-type", "application/json")], body)
}

fn url(s: &str) -> ClientIdUrl {
    ClientIdUrl::parse(s).unwrap()
}

fn dangerous() -> HttpFetcher {
    HttpFetcher::with_options(
        FetcherOptions::default()
            .dangerous_allow_http_and_loopback()
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap()
}

const DOC: &str = r#"{"client_id":"x","redirect_uris":["https://a.example/cb"]}"#;

#[tokio::test]
async fn a_local_server_is_refused_without_the_dangerous_options() {
    let (port, hits) = serve(json(DOC)).await;
    let production = HttpFetcher::new().unwrap();
    // https to a loopback literal: refused before any connection.
    let e = production
        .fetch(&url(&format!("https://127.0.0.1:{port}/client")), 5120)
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchError::ForbiddenAddress(ip) if ip.is_loopback()),
        "{e:?}"
    );
    // A name that resolves to loopback: refused after resolution.
    let e = production
        .fetch(&url(&format!("https://localhost:{port}/client")), 5120)
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchError::ForbiddenAddress(ip) if ip.is_loopback()),
        "{e:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // With the dangerous options the same server answers.
    let doc = dangerous()
        .fetch(&http(port, "/client"), 5120)
        .await
        .unwrap();
    assert_eq!(doc.body, DOC.as_bytes());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// `http://127.0.0.1:{port}{path}` as a ClientIdUrl (the core accepts it
/// only under `ClientMetadataPolicy::dangerous_allow_http`).
fn http(port: u16, path: &str) -> ClientIdUrl {
    http_url(&format!("http://127.0.0.1:{port}{path}"))
}

fn http_url(s: &str) -> ClientIdUrl {
    ClientIdUrl::dangerous_parse_allowing_http(s).unwrap()
}

#[tokio::test]
async fn http_alone_does_not_open_loopback_and_https_only_is_the_default() {
    let (port, hits) = serve(json(DOC)).await;
    // http allowed, loopback not: localhost is still refused.
    let http_only =
        HttpFetcher::with_options(FetcherOptions::default().dangerous_allow_http()).unwrap();
    let e = http_only
        .fetch(&http_url(&format!("http://localhost:{port}/client")), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::ForbiddenAddress(_)), "{e:?}");
    // Production: http is refused whatever the host.
    let e = HttpFetcher::new()
        .unwrap()
        .fetch(&http(port, "/client"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::Scheme), "{e:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn special_use_literals_are_refused_without_connecting_rfc6890() {
    let production = HttpFetcher::new().unwrap();
    for s in [
        "https://10.0.0.1/client",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/client",
        "https://192.168.1.1/client",
        "https://0.0.0.0/client",
        "https://[::1]/client",
        "https://[fe80::1]/client",
        "https://[fd00::1]/client",
        "https://[::ffff:a00:1]/client",
        "https://[::ffff:7f00:1]/client",
        "https://224.0.0.1/client",
    ] {
        let started = Instant::now();
        let e = production.fetch(&url(s), 5120).await.unwrap_err();
        assert!(matches!(e, FetchError::ForbiddenAddress(_)), "{s}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{s}");
    }
    // Even the dangerous options open loopback only.
    let e = dangerous()
        .fetch(&url("https://10.0.0.1/client"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::ForbiddenAddress(_)), "{e:?}");
}

#[tokio::test]
async fn redirects_are_not_followed_draft_4() {
    let (target, target_hits) = serve(json(DOC)).await;
    let location = format!("http://127.0.0.1:{target}/client");
    let (port, _) = serve(response("302 Found", &[("location", &location)], "")).await;
    let e = dangerous()
        .fetch(&http(port, "/client"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::Redirect(302)), "{e:?}");
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn only_200_and_json_are_accepted_draft_4() {
    let (port, _) = serve(response(
        "404 Not Found",
        &[("content-type", "application/json")],
        "{}",
    ))
    .await;
    let e = dangerous()
        .fetch(&http(port, "/c"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::Status(404)), "{e:?}");
    let (port, _) = serve(response("200 OK", &[("content-type", "text/html")], DOC)).await;
    let e = dangerous()
        .fetch(&http(port, "/c"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::NotJson(Some(_))), "{e:?}");
    let (port, _) = serve(response("200 OK", &[], DOC)).await;
    let e = dangerous()
        .fetch(&http(port, "/c"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::NotJson(None)), "{e:?}");
    // A more specific +json type is fine, and max-age is passed on.
    let (port, _) = serve(response(
        "200 OK",
        &[
            (
                "content-type",
                "application/oauth-client+json; charset=utf-8",
            ),
            ("cache-control", "public, max-age=300"),
        ],
        DOC,
    ))
    .await;
    let doc = dangerous().fetch(&http(port, "/c"), 5120).await.unwrap();
    assert_eq!(doc.max_age, Some(Duration::from_secs(300)));
}

#[tokio::test]
async fn a_huge_document_is_cut_off_at_the_limit_draft_6_6() {
    let huge = format!(r#"{{"x":"{}"}}"#, "a".repeat(1024 * 1024));
    // Announced by content-length: refused before reading.
    let (port, _) = serve(json(&huge)).await;
    let e = dangerous()
        .fetch(&http(port, "/c"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::TooLarge(5120)), "{e:?}");
    // Not announced (close-delimited): refused once the limit is passed.
    let raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{huge}"
    );
    let (port, _) = serve(Behaviour::Respond(Arc::new(raw.into_bytes()))).await;
    let e = dangerous()
        .fetch(&http(port, "/c"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::TooLarge(5120)), "{e:?}");
    // Exactly at the limit is fine.
    let exact = format!(r#"{{"x":"{}"}}"#, "a".repeat(5120 - 8));
    assert_eq!(exact.len(), 5120);
    let (port, _) = serve(json(&exact)).await;
    assert!(dangerous().fetch(&http(port, "/c"), 5120).await.is_ok());
}

#[tokio::test]
async fn a_slow_server_is_cut_off_at_the_time_limit() {
    let quick = HttpFetcher::with_options(
        FetcherOptions::default()
            .dangerous_allow_http_and_loopback()
            .with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    for behaviour in [
        Behaviour::Stall(Duration::from_secs(30)),
        Behaviour::Trickle,
    ] {
        let (port, _) = serve(behaviour).await;
        let started = Instant::now();
        let e = quick.fetch(&http(port, "/c"), 5120).await.unwrap_err();
        assert!(matches!(e, FetchError::Timeout), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn an_unresolvable_host_is_a_resolution_error() {
    let e = HttpFetcher::new()
        .unwrap()
        .fetch(&url("https://no-such-host.invalid/client"), 5120)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::Resolve(_)), "{e:?}");
}
