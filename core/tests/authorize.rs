//! The authorization endpoint through `Server`: the code flow's redirect
//! (`state`, `iss`), denial, and the pending request's handle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tessera::{AuthorizeOutcome, Decision};
use time::Duration;

#[tokio::test]
async fn code_flow_issues_tokens_with_state_and_iss() {
    let f = fixture();
    let loc = authorize(&f, "shop", "", Decision::Allow).await;
    assert!(loc.starts_with("https://shop.example/cb?code=tsc_"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some("https://as.example")
    );
    let (status, body) = redeem(&f, &query_param(&loc, "code").unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "photos.read profile");
    assert!(body["access_token"].as_str().unwrap().starts_with("tsa_"));
    assert!(body["refresh_token"].as_str().unwrap().starts_with("tsr_"));
    let at = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let token = f.server.verify_bearer(Some(&at), None).await.unwrap();
    assert_eq!(token.subject, Some(alice()));
    assert!(token.require(&["photos.read"]).is_ok());
    assert_eq!(token.require(&["photos.write"]).unwrap_err().status(), 403);
}

#[tokio::test]
async fn deny_redirects_access_denied() {
    let f = fixture();
    let loc = authorize(&f, "shop", "", Decision::Deny).await;
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some("https://as.example")
    );
    assert_eq!(query_param(&loc, "code"), None);
}

#[tokio::test]
async fn pending_handles_are_single_use_and_expire() {
    let f = fixture();
    // The consent page's handle: single use.
    let AuthorizeOutcome::Login(p) = f.server.authorize(&auth_query("shop", ""), None).await else {
        panic!()
    };
    let login_redirect = p.redirect_uri.clone();
    let AuthorizeOutcome::Consent(p) = f.server.resume(&p.handle, &alice()).await else {
        panic!()
    };
    // Every prompt carries where the browser goes back to, for the page to
    // name its host (MCP authorization 2025-11-25).
    assert!(p.redirect_uri.starts_with("https://"), "{}", p.redirect_uri);
    assert_eq!(p.redirect_uri, login_redirect);
    assert_eq!(
        f.server
            .pending(&p.handle)
            .await
            .unwrap()
            .unwrap()
            .redirect_uri,
        p.redirect_uri
    );
    assert!(p.redirect_host().is_some());
    assert!(f.server.pending(&p.handle).await.unwrap().is_some());
    assert!(matches!(
        f.server.decide(&p.handle, &alice(), Decision::Allow).await,
        AuthorizeOutcome::Redirect(_)
    ));
    assert!(matches!(
        f.server.decide(&p.handle, &alice(), Decision::Allow).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
    // The login page's handle: it expires.
    let AuthorizeOutcome::Login(p) = f.server.authorize(&auth_query("shop", ""), None).await else {
        panic!()
    };
    f.clock.advance(Duration::minutes(11));
    assert!(f.server.pending(&p.handle).await.unwrap().is_none());
    assert!(matches!(
        f.server.resume(&p.handle, &alice()).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
    assert!(matches!(
        f.server.decide("garbage", &alice(), Decision::Allow).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
}

/// The consent prompt lists each requested scope token with the words
/// configured for it (`ServerBuilder::scope`), in the scope's order.
#[tokio::test]
async fn the_consent_prompt_describes_each_scope_token_in_words() {
    let f = fixture();
    let query = auth_query("shop", "&scope=profile%20photos.read");
    let AuthorizeOutcome::Consent(p) = f.server.authorize(&query, Some(&alice())).await else {
        panic!("expected a consent prompt")
    };
    assert_eq!(
        p.scope_descriptions().collect::<Vec<_>>(),
        [
            ("photos.read", "View your photos"),
            ("profile", "See your profile")
        ]
    );
}

/// RFC 6749 §3.1: the server "MUST ignore unrecognized request
/// parameters", repeated or too long ones too, while a parameter it reads
/// sent twice is `invalid_request` at the redirect URI.
#[tokio::test]
async fn unrecognized_parameters_are_ignored_even_repeated_rfc6749_3_1() {
    let f = fixture();
    let long = "x".repeat(3 * 1024);
    let loc = authorize(
        &f,
        "shop",
        "&foo=bar&foo=baz&utm_source=a&utm_source=b&junk=%FF",
        Decision::Allow,
    )
    .await;
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    // DEMO-CONTRACT: "every other parameter value" is at most 2 KiB, so an
    // unrecognized one too long is refused, at the redirect URI.
    let junk = format!("&junk={long}");
    for twice in [
        "&state=other",
        "&response_type=code",
        "&code_challenge_method=S256",
        &junk,
    ] {
        let outcome = f.server.authorize(&auth_query("shop", twice), None).await;
        let AuthorizeOutcome::Redirect(r) = outcome else {
            panic!("{twice}: {outcome:?}")
        };
        assert_eq!(
            query_param(r.location(), "error").as_deref(),
            Some("invalid_request"),
            "{twice}"
        );
    }
}
