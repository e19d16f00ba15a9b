//! The real `photo-cli` binary against a Tessera provider running in this
//! process (axum adapter, device grant on), a person played by calling
//! `device_prompt` / `device_decide` directly; and against fake providers for
//! what a real one does not do on demand (`slow_down`, bad metadata).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{ALICE_PHOTOS, Script, run, run_with_person, start_fake_provider, start_provider};
use tessera::{Decision, Lifetimes, Subject};

#[tokio::test]
async fn approved_lists_alices_photos_on_stdout() {
    let provider = start_provider(Lifetimes::default(), true).await;
    let server = provider.server.clone();
    let out = run_with_person(&["--provider", &provider.url], |code| async move {
        // Let the first poll find the request pending.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let prompt = server.device_prompt(&code, "test").await.unwrap();
        assert_eq!(prompt.client.id.as_str(), "photo-cli");
        assert_eq!(prompt.scope.to_string(), "photos.read");
        let decided = server
            .device_decide(&code, &Subject::new("alice"), Decision::Allow)
            .await
            .unwrap();
        assert!(decided);
    })
    .await;
    assert!(out.status.success(), "{out:#?}");
    assert!(out.stdout.contains("alice"), "{out:#?}");
    for (id, title) in ALICE_PHOTOS {
        assert!(out.stdout.contains(id), "{out:#?}");
        assert!(out.stdout.contains(title), "{out:#?}");
    }
    // The person was told where to go, with the complete URL too.
    assert!(
        out.stderr.contains(&format!("{}/device", provider.url)),
        "{out:#?}"
    );
    assert!(out.stderr.contains("?user_code="), "{out:#?}");
    // Not a terminal: plain progress, no escape sequences.
    assert!(!out.stderr.contains('\u{1b}'), "{out:#?}");
    assert!(
        out.stderr
            .contains("Waiting for approval in the browser (checking every 5 s): . approved."),
        "{out:#?}"
    );
    assert!(
        !out.stdout.contains("user_code"),
        "stdout is for the photos"
    );
}

#[tokio::test]
async fn denied_is_a_one_line_error() {
    let provider = start_provider(Lifetimes::default(), true).await;
    let server = provider.server.clone();
    let out = run_with_person(&["--provider", &provider.url], |code| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.device_prompt(&code, "test").await.unwrap();
        let decided = server
            .device_decide(&code, &Subject::new("alice"), Decision::Deny)
            .await
            .unwrap();
        assert!(decided);
    })
    .await;
    let line = out.error_line();
    assert!(line.contains("denied"), "{line}");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{out:#?}");
}

#[tokio::test]
async fn expired_code_is_a_one_line_error() {
    let lifetimes = Lifetimes::default().with_device_code(time::Duration::seconds(3));
    let provider = start_provider(lifetimes, true).await;
    let out = run(&["--provider", &provider.url]).await;
    let line = out.error_line();
    assert!(line.contains("expired"), "{line}");
    assert!(out.stdout.is_empty(), "{out:#?}");
}

#[tokio::test]
async fn unreachable_provider_is_a_one_line_error() {
    // Bind and drop: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["--provider", &format!("http://127.0.0.1:{port}")]).await;
    let line = out.only_error_line();
    assert!(line.contains("cannot reach the provider"), "{line}");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.took < Duration::from_secs(5), "{out:#?}");
    // DEMO-CONTRACT's `--access-tokens`, taken by every demo program: it
    // changes nothing for a client, and the run goes on to the provider.
    let provider = format!("http://127.0.0.1:{port}");
    let out = run(&["--access-tokens", "jwt", "--provider", &provider]).await;
    assert!(out.only_error_line().contains("cannot reach the provider"));
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn other_oauth_errors_are_one_line_errors() {
    // photo-cli not registered for the device grant: unauthorized_client.
    let provider = start_provider(Lifetimes::default(), false).await;
    let out = run(&["--provider", &provider.url]).await;
    let line = out.only_error_line();
    assert!(line.contains("unauthorized_client"), "{line}");
}

#[tokio::test]
async fn bad_metadata_is_a_one_line_error() {
    let garbage = support::serve(|_| {
        axum::Router::new().route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(|| async { "<html>not metadata</html>" }),
        )
    })
    .await;
    let line = run(&["--provider", &garbage])
        .await
        .only_error_line()
        .to_owned();
    assert!(line.contains("metadata"), "{line}");

    // An endless answer is cut off, not read into memory.
    let huge = support::serve(|_| {
        axum::Router::new().route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(|| async { " ".repeat(3 * 1024 * 1024) }),
        )
    })
    .await;
    let line = run(&["--provider", &huge])
        .await
        .only_error_line()
        .to_owned();
    assert!(line.contains("larger than"), "{line}");

    // Metadata of another issuer (RFC 8414 §3.3).
    let other = support::serve(|_| {
        axum::Router::new().route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(|| async {
                axum::Json(json!({
                    "issuer": "http://elsewhere.example",
                    "token_endpoint": "http://elsewhere.example/token",
                    "device_authorization_endpoint": "http://elsewhere.example/device",
                }))
            }),
        )
    })
    .await;
    let line = run(&["--provider", &other])
        .await
        .only_error_line()
        .to_owned();
    assert!(line.contains("elsewhere.example"), "{line}");

    // A provider without the device grant.
    let provider = start_provider(Lifetimes::default(), true).await;
    let no_device = support::serve(move |url| {
        axum::Router::new().route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(move || async move {
                axum::Json(json!({"issuer": url, "token_endpoint": format!("{url}/token")}))
            }),
        )
    })
    .await;
    drop(provider);
    let line = run(&["--provider", &no_device])
        .await
        .only_error_line()
        .to_owned();
    assert!(line.contains("device_authorization_endpoint"), "{line}");
}

#[tokio::test]
async fn help_lists_every_flag() {
    let out = run(&["--help"]).await;
    assert!(out.status.success(), "{out:#?}");
    assert!(out.stdout.contains("--provider"), "{out:#?}");
    assert!(out.stdout.contains("--access-tokens"), "{out:#?}");
    assert!(out.stdout.contains("http://127.0.0.1:9000"), "{out:#?}");
    assert!(!out.stdout.contains("--issuer"), "{out:#?}");
    assert!(!out.stdout.contains("--store"), "{out:#?}");
}

#[tokio::test]
async fn bad_flags_are_one_line_errors() {
    for args in [
        &["--bogus"][..],
        &["--provider"][..],
        &["--provider", "not a url"][..],
        &["--provider", "ftp://127.0.0.1:9000"][..],
        &["--issuer", "http://127.0.0.1:9000"][..],
        &["--store", "memory"][..],
        &["--access-tokens", "xml"][..],
    ] {
        let out = run(args).await;
        out.only_error_line();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:#?}");
    }
}

#[tokio::test]
async fn slow_down_adds_five_seconds_rfc8628_3_5() {
    // A fake provider with a 1 s interval: the first poll is told to slow
    // down, so the next may come 1 + 5 s later, not sooner.
    let script = Script::new(vec![support::oauth_error("slow_down"), support::tokens()]);
    let url = start_fake_provider(script.clone(), 1).await;
    let out = run(&["--provider", &url]).await;
    assert!(out.status.success(), "{out:#?}");
    assert!(out.stdout.contains("carol has 1 photo"), "{out:#?}");
    assert!(out.stdout.contains("Kite"), "{out:#?}");
    assert!(out.stderr.contains("slow down"), "{out:#?}");
    let polls = script.poll_times();
    assert_eq!(polls.len(), 2, "{out:#?}");
    let gap = polls[1] - polls[0];
    assert!(gap >= Duration::from_secs(6), "polled again after {gap:?}");
    assert!(gap < Duration::from_secs(8), "polled again after {gap:?}");
}
