//! The polling logic against a scripted token endpoint, with a sleep that
//! only records how long it was asked to wait: `interval` and `slow_down`
//! (RFC 8628 §3.5), every outcome of §3.5 mapped, and giving up on a
//! provider that stopped answering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use photo_cli::{DeviceAuthorization, Error, Progress, Provider, Style, poll_for_token};
use support::{Script, device_answer, oauth_error, pending, tokens};

fn provider(url: &str) -> Provider {
    Provider {
        issuer: url.to_owned(),
        device_authorization_url: oauth2::DeviceAuthorizationUrl::new(format!(
            "{url}/oauth/device"
        ))
        .unwrap(),
        token_url: oauth2::TokenUrl::new(format!("{url}/oauth/token")).unwrap(),
        photos_url: url::Url::parse(&format!("{url}/api/photos")).unwrap(),
    }
}

/// Polls the scripted endpoint; answers the outcome and each requested sleep.
async fn poll(url: &str, interval: u64) -> (Result<String, Error>, Vec<Duration>) {
    let details: DeviceAuthorization =
        serde_json::from_value(device_answer(url, interval, 600)).unwrap();
    let progress = Progress::new(Style::Hidden, details.interval(), details.expires_in());
    let slept = Arc::new(Mutex::new(Vec::new()));
    let record = {
        let slept = slept.clone();
        move |d: Duration| {
            slept.lock().unwrap().push(d);
            std::future::ready(())
        }
    };
    let http = photo_cli::http_client().unwrap();
    let result = poll_for_token(&http, &provider(url), &details, &progress, record)
        .await
        .map(|token| token.secret().clone());
    let slept = slept.lock().unwrap().clone();
    (result, slept)
}

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().copied().map(Duration::from_secs).collect()
}

#[tokio::test]
async fn waits_interval_and_five_more_per_slow_down() {
    let script = Script::new(vec![
        oauth_error("slow_down"),
        pending(),
        oauth_error("slow_down"),
        pending(),
        tokens(),
    ]);
    let url = support::start_fake_provider(script.clone(), 5).await;
    let (result, slept) = poll(&url, 5).await;
    assert_eq!(result.unwrap(), "scripted-token");
    assert_eq!(slept, secs(&[10, 10, 15, 15]));
    assert_eq!(script.poll_times().len(), 5);

    let script = Script::new(vec![pending(), pending(), tokens()]);
    let url = support::start_fake_provider(script.clone(), 2).await;
    let (result, slept) = poll(&url, 2).await;
    assert_eq!(result.unwrap(), "scripted-token");
    assert_eq!(slept, secs(&[2, 2]));
}

#[tokio::test]
async fn each_final_answer_of_rfc8628_3_5_is_its_own_error() {
    for (answer, check) in [
        (
            oauth_error("access_denied"),
            (|e: &Error| matches!(e, Error::Denied)) as fn(&Error) -> bool,
        ),
        (oauth_error("expired_token"), |e| {
            matches!(e, Error::Expired)
        }),
        (
            oauth_error("invalid_grant"),
            |e| matches!(e, Error::OAuth(text) if text.starts_with("invalid_grant: scripted")),
        ),
        (
            oauth_error("invalid_client"),
            |e| matches!(e, Error::OAuth(text) if text.starts_with("invalid_client")),
        ),
        ((500, serde_json::json!("oops")), |e| {
            matches!(e, Error::BadResponse(_))
        }),
    ] {
        let script = Script::new(vec![pending(), answer.clone()]);
        let url = support::start_fake_provider(script, 5).await;
        let (result, slept) = poll(&url, 5).await;
        let error = result.unwrap_err();
        assert!(check(&error), "{answer:?} gave {error:?}");
        assert_eq!(slept, secs(&[5]));
        assert!(!error.to_string().contains('\n'));
    }
}

#[tokio::test]
async fn gives_up_when_the_provider_stops_answering() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (result, slept) = poll(&format!("http://127.0.0.1:{port}"), 5).await;
    let error = result.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error:?}");
    assert!(
        error.to_string().contains("3 polls in a row failed"),
        "{error}"
    );
    // The oauth2 crate backs off (doubling, at most 10 s) between failures.
    assert_eq!(slept, secs(&[10, 10]));
}
