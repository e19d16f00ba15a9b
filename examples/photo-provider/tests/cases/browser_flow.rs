//! The person's side of the demo, driven like a browser against the real app:
//! login page, consent page, redirects, error pages, CSRF, then the tokens
//! and the photos API. Shared by both providers' test crates (included by
//! path), so the axum and the rocket provider pass the very same checks.

use std::sync::Arc;

use crate::common::*;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use tessera::{Clock, FixedClock, SystemClock};

/// A `state` full of characters that need encoding, echoed exactly.
const STATE: &str = "xyz ABC/+=&?#%20é☃\"'<>";

#[tokio::test]
async fn allow_then_token_then_photos() {
    let provider = Provider::start().await;
    let browser = browser();
    let (verifier, challenge) = pkce("allow");
    let query = printshop_request(STATE, &challenge, "photos.read profile");

    // Login page: 200, one POST form, labelled username/password, a session cookie.
    let response = browser
        .get(provider.url(&format!("/authorize?{query}")))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("photobook_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    let login = Page::of(response).await;
    assert_eq!(login.status, StatusCode::OK);
    login.assert_login_page();
    assert!(login.html.contains("PrintShop"), "names the client");
    assert!(login.html.contains("lang=\"en\""));
    assert!(!login.html.contains("<script"));
    assert_eq!(
        login.headers.get("cache-control").unwrap(),
        "no-store",
        "pages are not cached"
    );
    assert!(login.headers.get("content-security-policy").is_some());
    let csrf = login.input("csrf_token");
    let handle = login.input("handle");
    assert!(
        handle.starts_with("tsl_"),
        "a sealed login handle: {handle}"
    );

    // Wrong password: the login page again, with an error, nobody signed in.
    let wrong = post_login(
        &provider,
        &browser,
        &csrf,
        &handle,
        "alice",
        "bob-password-1",
    )
    .await;
    // The form again, 200: a 401 would need a `WWW-Authenticate` scheme
    // (RFC 9110 §15.5.2), which a form sign-in has not.
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.headers.get(WWW_AUTHENTICATE).is_none());
    wrong.assert_login_page();
    assert!(wrong.html.contains("incorrect"), "{}", wrong.html);
    assert!(wrong.html.contains("role=\"alert\""));
    assert!(wrong.html.contains("value=\"alice\""), "username kept");

    // Right password: the consent page, naming the client and each scope in words.
    let consent = post_login(
        &provider,
        &browser,
        &wrong.input("csrf_token"),
        &wrong.input("handle"),
        "alice",
        "alice-password-1",
    )
    .await;
    consent.assert_consent_page();
    assert!(consent.html.contains("PrintShop"));
    assert!(consent.html.contains("View your photos"));
    assert!(consent.html.contains("See your name and profile"));
    assert!(!consent.html.contains("Upload and edit your photos"));
    assert!(consent.html.contains("alice"));
    let new_cookie = consent.headers.get(SET_COOKIE).expect("a new session id");
    assert!(
        !new_cookie.to_str().unwrap().contains(
            cookie
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("photobook_session=")
        ),
        "the session id changes at sign-in"
    );
    assert_ne!(consent.input("csrf_token"), csrf, "a new CSRF token");

    // Allow: 303 to the registered redirect URI with code, exact state, iss.
    let response = decide(&provider, &browser, &consent, "allow").await;
    assert!(
        matches!(response.status(), StatusCode::FOUND | StatusCode::SEE_OTHER),
        "{}",
        response.status()
    );
    let (url, params) = location_params(&response);
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        PRINTSHOP_REDIRECT
    );
    assert_eq!(param(&params, "state"), Some(STATE));
    assert_eq!(param(&params, "iss"), Some(provider.issuer.as_str()));
    assert_eq!(param(&params, "error"), None);
    let code = param(&params, "code").expect("a code").to_owned();

    // The consent handle is single use.
    let again = Page::of(decide(&provider, &browser, &consent, "allow").await).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.headers.get(LOCATION).is_none());

    // Exchange the code (PKCE S256), then read alice's photos.
    let (status, body) = token(
        &provider,
        ("printshop", Some(PRINTSHOP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", PRINTSHOP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap();
    let response = photos(&provider, access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let list: serde_json::Value = response.json().await.unwrap();
    assert_eq!(list["owner"], "alice");
    let items = list["photos"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for photo in items {
        assert!(photo["id"].is_string() && photo["title"].is_string());
    }
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state_and_iss() {
    let provider = Provider::start().await;
    let browser = browser();
    let (_, challenge) = pkce("deny");
    let query = printshop_request(STATE, &challenge, "photos.read");
    let consent = sign_in_to_consent(&provider, &browser, &query, "bob", "bob-password-1").await;
    assert!(consent.html.contains("View your photos"));
    assert!(!consent.html.contains("See your name and profile"));
    let response = decide(&provider, &browser, &consent, "deny").await;
    assert!(matches!(
        response.status(),
        StatusCode::FOUND | StatusCode::SEE_OTHER
    ));
    let (url, params) = location_params(&response);
    assert!(url.as_str().starts_with(PRINTSHOP_REDIRECT));
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some(STATE));
    assert_eq!(param(&params, "iss"), Some(provider.issuer.as_str()));
    assert_eq!(param(&params, "code"), None);

    // Signed in now: the next request goes straight to the consent page.
    let (_, challenge) = pkce("deny-2");
    let page = authorize_page(
        &provider,
        &browser,
        &printshop_request("s2", &challenge, "profile"),
    )
    .await;
    page.assert_consent_page();
    assert!(page.html.contains("See your name and profile"));
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_get_an_error_page() {
    let provider = Provider::start().await;
    let browser = browser();
    let (_, challenge) = pkce("errors");
    for query in [
        authorize_query(&[
            ("response_type", "code"),
            ("client_id", "no-such-app"),
            ("redirect_uri", PRINTSHOP_REDIRECT),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]),
        authorize_query(&[
            ("response_type", "code"),
            ("client_id", "printshop"),
            ("redirect_uri", "https://evil.example/callback"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]),
        authorize_query(&[
            ("response_type", "code"),
            ("client_id", "printshop"),
            ("redirect_uri", "http://127.0.0.1:9001/other"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]),
        // Client with no redirect URI at all.
        authorize_query(&[
            ("response_type", "code"),
            ("client_id", "backup-job"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]),
        String::new(),
    ] {
        let page = authorize_page(&provider, &browser, &query).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.headers.get(LOCATION).is_none(), "{query}");
        assert!(page.is_html());
        assert_eq!(page.forms(), 0);
        assert!(page.html.contains("<h1"));
    }
    let unknown = Page::of(
        browser
            .get(provider.url("/authorize?response_type=code&client_id=%3Cscript%3E"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(!unknown.html.contains("<script>"));
    assert!(unknown.html.contains("Unknown app"));
}

#[tokio::test]
async fn errors_after_verification_go_to_the_client() {
    let provider = Provider::start().await;
    let browser = browser();
    // No PKCE challenge: reported at the (verified) redirect URI, with state and iss.
    let query = authorize_query(&[
        ("response_type", "code"),
        ("client_id", "printshop"),
        ("redirect_uri", PRINTSHOP_REDIRECT),
        ("state", STATE),
    ]);
    let response = browser
        .get(provider.url(&format!("/authorize?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert_eq!(param(&params, "state"), Some(STATE));
    assert_eq!(param(&params, "iss"), Some(provider.issuer.as_str()));
}

#[tokio::test]
async fn csrf_is_required_on_both_forms() {
    let provider = Provider::start().await;
    let browser = browser();
    let (_, challenge) = pkce("csrf");
    let query = printshop_request("s", &challenge, "photos.read");
    let login = authorize_page(&provider, &browser, &query).await;
    let handle = login.input("handle");
    for csrf in [None, Some(""), Some("forged-token")] {
        let mut form = vec![
            ("handle", handle.as_str()),
            ("username", "alice"),
            ("password", "alice-password-1"),
        ];
        if let Some(csrf) = csrf {
            form.push(("csrf_token", csrf));
        }
        let page = Page::of(
            browser
                .post(provider.url("/login"))
                .form(&form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{csrf:?}");
        page.assert_login_page();
        assert!(page.headers.get(SET_COOKIE).is_none(), "nobody signed in");
    }
    // A login post from another browser (no session cookie at all).
    let stranger = post_login(
        &provider,
        &crate::common::browser(),
        &login.input("csrf_token"),
        &handle,
        "alice",
        "alice-password-1",
    )
    .await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    stranger.assert_login_page();

    // Still signed out: the authorization request shows the login page again.
    let still = authorize_page(&provider, &browser, &query).await;
    still.assert_login_page();

    // Consent form without or with a wrong CSRF token: refused, no redirect.
    let consent =
        sign_in_to_consent(&provider, &browser, &query, "alice", "alice-password-1").await;
    for csrf in ["", "forged-token"] {
        let response = browser
            .post(provider.url("/consent"))
            .form(&[
                ("csrf_token", csrf),
                ("handle", consent.input("handle").as_str()),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().get(LOCATION).is_none());
    }
    // Without a session: refused.
    let response = crate::common::browser()
        .post(provider.url("/consent"))
        .form(&[
            ("csrf_token", consent.input("csrf_token").as_str()),
            ("handle", consent.input("handle").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A decision that is neither allow nor deny: refused.
    let response = browser
        .post(provider.url("/consent"))
        .form(&[
            ("csrf_token", consent.input("csrf_token").as_str()),
            ("handle", consent.input("handle").as_str()),
            ("decision", "maybe"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The request was not consumed by the refusals: allowing still works.
    let response = decide(&provider, &browser, &consent, "allow").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn expired_or_unknown_handle_is_an_error_page() {
    let provider = Provider::start().await;
    let browser = browser();
    let page = post_login(
        &provider,
        &browser,
        "x",
        "tsp_unknown",
        "alice",
        "alice-password-1",
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("expired"));
    assert!(page.headers.get(LOCATION).is_none());
    // Not a web form at all (JSON), or a form with a `_method` field (a
    // field like any other, which rocket would otherwise route as that
    // method): a page that says the form could not be read, not that a
    // request expired.
    let bodies = [
        (
            "application/json",
            r#"{"username":"alice","password":"alice-password-1"}"#,
        ),
        ("application/x-www-form-urlencoded", "_method=GET"),
    ];
    for path in ["/login", "/consent"] {
        for (content_type, body) in bodies {
            let page = Page::of(
                browser
                    .post(provider.url(path))
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path} {body}");
            assert!(
                page.html.contains("could not be read"),
                "{path} {body}: {}",
                page.html
            );
        }
    }
}

/// Posts the consent form with `csrf` from `browser`'s page, and someone's `handle`.
async fn post_consent(
    provider: &Provider,
    browser: &reqwest::Client,
    csrf: &str,
    handle: &str,
) -> Page {
    Page::of(
        browser
            .post(provider.url("/consent"))
            .form(&[
                ("csrf_token", csrf),
                ("handle", handle),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn consent_handle_only_works_in_its_own_session() {
    let provider = Provider::start().await;
    // Alice reaches the consent page.
    let alice = browser();
    let (verifier, challenge) = pkce("alice-bound");
    let query = printshop_request("alice-state", &challenge, "photos.read");
    let alice_consent =
        sign_in_to_consent(&provider, &alice, &query, "alice", "alice-password-1").await;
    let alice_handle = alice_consent.input("handle");
    // Carol only got as far as the login page (a session that never signed in).
    let carol = browser();
    let (_, carol_challenge) = pkce("carol-bound");
    let carol_login = authorize_page(
        &provider,
        &carol,
        &printshop_request("carol-state", &carol_challenge, "photos.read"),
    )
    .await;
    carol_login.assert_login_page();
    let carol_handle = carol_login.input("handle");

    // Bob, signed in with his own session and CSRF token, posts their handles.
    let bob = browser();
    let (_, bob_challenge) = pkce("bob-bound");
    let bob_consent = sign_in_to_consent(
        &provider,
        &bob,
        &printshop_request("bob-state", &bob_challenge, "photos.read"),
        "bob",
        "bob-password-1",
    )
    .await;
    let bob_csrf = bob_consent.input("csrf_token");
    let unknown = post_consent(&provider, &bob, &bob_csrf, "tsp_unknown").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    for handle in [&alice_handle, &carol_handle] {
        let page = post_consent(&provider, &bob, &bob_csrf, handle).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.html);
        assert!(page.headers.get(LOCATION).is_none(), "no redirect");
        assert!(!page.html.contains("code="), "{}", page.html);
        assert!(page.is_html());
        assert_eq!(
            page.html, unknown.html,
            "the same page as an unknown handle"
        );
    }

    // Nothing was decided: alice's own session still allows and gets a code.
    let response = decide(&provider, &alice, &alice_consent, "allow").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "state"), Some("alice-state"));
    let code = param(&params, "code").expect("a code").to_owned();
    let (status, body) = token(
        &provider,
        ("printshop", Some(PRINTSHOP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", PRINTSHOP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = photos(&provider, body["access_token"].as_str().unwrap()).await;
    let list: serde_json::Value = response.json().await.unwrap();
    assert_eq!(list["owner"], "alice", "the code is alice's, not bob's");

    // Decided: the handle has left alice's session too.
    let again = post_consent(
        &provider,
        &alice,
        &alice_consent.input("csrf_token"),
        &alice_handle,
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    // Bob's own handle still works for bob.
    let response = decide(&provider, &bob, &bob_consent, "deny").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_handle_only_works_in_its_own_session() {
    let provider = Provider::start().await;
    let alice = browser();
    let (_, challenge) = pkce("alice-login-bound");
    let query = printshop_request("alice-state", &challenge, "photos.read");
    let alice_login = authorize_page(&provider, &alice, &query).await;
    alice_login.assert_login_page();
    let alice_handle = alice_login.input("handle");

    // A fresh session with its own login page and CSRF token, which never saw
    // alice's handle, posts it with valid credentials.
    let stranger = browser();
    let (_, other_challenge) = pkce("stranger-login-bound");
    let other_query = printshop_request("other-state", &other_challenge, "photos.read");
    let stranger_login = authorize_page(&provider, &stranger, &other_query).await;
    stranger_login.assert_login_page();
    for (username, password) in [("bob", "bob-password-1"), ("alice", "alice-password-1")] {
        let page = post_login(
            &provider,
            &stranger,
            &stranger_login.input("csrf_token"),
            &alice_handle,
            username,
            password,
        )
        .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.html);
        assert!(page.html.contains("expired"), "{}", page.html);
        assert!(page.headers.get(LOCATION).is_none());
        assert!(page.headers.get(SET_COOKIE).is_none(), "nobody signed in");
        assert_eq!(page.forms(), 0);
    }
    // The stranger is still signed out.
    let still = authorize_page(&provider, &stranger, &other_query).await;
    still.assert_login_page();

    // The handle was not consumed: alice signs in with it, across the new
    // session id, and allows.
    let consent = post_login(
        &provider,
        &alice,
        &alice_login.input("csrf_token"),
        &alice_handle,
        "alice",
        "alice-password-1",
    )
    .await;
    consent.assert_consent_page();
    assert!(
        consent.headers.get(SET_COOKIE).is_some(),
        "a new session id"
    );
    assert!(
        consent.input("handle").starts_with("tsp_"),
        "the request is stored once alice has signed in"
    );
    let response = decide(&provider, &alice, &consent, "allow").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "state"), Some("alice-state"));
    assert!(param(&params, "code").is_some());
}

#[tokio::test]
async fn public_client_on_any_loopback_port_as_bob() {
    let provider = Provider::start().await;
    let browser = browser();
    let (verifier, challenge) = pkce("cli");
    let redirect = "http://127.0.0.1:53117/callback";
    let query = authorize_query(&[
        ("response_type", "code"),
        ("client_id", "photo-cli"),
        ("redirect_uri", redirect),
        ("state", "cli-state"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let consent = sign_in_to_consent(&provider, &browser, &query, "bob", "bob-password-1").await;
    assert!(consent.html.contains("PhotoBook CLI"));
    assert!(consent.html.contains("Upload and edit your photos"));
    let response = decide(&provider, &browser, &consent, "allow").await;
    let (url, params) = location_params(&response);
    assert!(url.as_str().starts_with(redirect));
    let code = param(&params, "code").unwrap().to_owned();
    let (status, body) = token(
        &provider,
        ("photo-cli", None),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = photos(&provider, body["access_token"].as_str().unwrap()).await;
    let list: serde_json::Value = response.json().await.unwrap();
    assert_eq!(list["owner"], "bob");
    assert_eq!(list["photos"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn client_credentials_token_sees_every_photo() {
    let provider = Provider::start().await;
    let (status, body) = token(
        &provider,
        ("backup-job", Some(BACKUP_SECRET)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = photos(&provider, body["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let list: serde_json::Value = response.json().await.unwrap();
    assert_eq!(list["owner"], "backup-job");
    assert_eq!(list["photos"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn photos_api_follows_rfc6750() {
    let provider = Provider::start().await;
    let browser = browser();
    // A token with `profile` only.
    let (verifier, challenge) = pkce("profile");
    let query = printshop_request("p", &challenge, "profile");
    let consent =
        sign_in_to_consent(&provider, &browser, &query, "alice", "alice-password-1").await;
    let response = decide(&provider, &browser, &consent, "allow").await;
    let (_, params) = location_params(&response);
    let (status, body) = token(
        &provider,
        ("printshop", Some(PRINTSHOP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", param(&params, "code").unwrap()),
            ("redirect_uri", PRINTSHOP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "profile");
    let response = photos(&provider, body["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );

    // No token: 401, a Bearer challenge without an error code.
    let response = reqwest::Client::new()
        .get(provider.url("/api/photos"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"));
    assert!(!challenge.contains("error="));

    // An unknown token: 401 invalid_token.
    let response = photos(&provider, "tsa_not-a-real-token").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn metadata_pages_and_limits() {
    let provider = Provider::start().await;
    let http = reqwest::Client::new();
    let metadata: serde_json::Value = http
        .get(provider.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], provider.issuer.as_str());
    assert_eq!(
        metadata["authorization_endpoint"],
        provider.url("/authorize")
    );
    assert_eq!(metadata["token_endpoint"], provider.url("/token"));
    let scopes = metadata["scopes_supported"].as_array().unwrap();
    assert_eq!(scopes.len(), 3);
    // DEMO-CONTRACT's discovery list: `jwks_uri` (signed tokens exist), in
    // the default opaque mode too, where it publishes the key unused.
    let jwks_uri = metadata["jwks_uri"].as_str().unwrap();
    let jwks: serde_json::Value = http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");

    let home = Page::of(http.get(provider.url("/")).send().await.unwrap()).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.is_html());
    let missing = Page::of(http.get(provider.url("/nope")).send().await.unwrap()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.is_html());

    // Form bodies over 64 KiB: 413, and the server keeps serving.
    let big = format!("username={}", "a".repeat(70 * 1024));
    for path in ["/login", "/consent"] {
        let response = http
            .post(provider.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    let still = http.get(provider.url("/")).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::OK);
    assert!(provider.demo.sessions().len() < 5);
}

/// Moves `clock` on by `seconds`.
fn advance(clock: &FixedClock, seconds: u64) {
    clock.advance(std::time::Duration::from_secs(seconds).try_into().unwrap());
}

/// RFC 6749 §10.10 and DEMO-CONTRACT "Limits against floods": 5 wrong
/// passwords per account per 15 minutes, then 429 with a page saying when to
/// try again and `Retry-After`; even the right password is refused (not
/// checked) until the window ends; after it, the right password works.
#[tokio::test]
async fn login_is_throttled_after_five_wrong_passwords_rfc6749_10_10() {
    let clock = Arc::new(FixedClock::new(SystemClock.now()));
    let provider = Provider::start_with_clock(clock.clone()).await;
    let browser = browser();
    let (_, challenge) = pkce("throttle");
    let query = printshop_request("throttled", &challenge, "photos.read");
    let mut page = authorize_page(&provider, &browser, &query).await;
    page.assert_login_page();
    for i in 0..5 {
        page = post_login(
            &provider,
            &browser,
            &page.input("csrf_token"),
            &page.input("handle"),
            "alice",
            &format!("wrong-{i}"),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "attempt {i}");
        assert!(page.headers.get(RETRY_AFTER).is_none());
    }
    advance(&clock, 60);

    // The sixth attempt, with the right password: refused, unchecked.
    let limited = post_login(
        &provider,
        &browser,
        &page.input("csrf_token"),
        &page.input("handle"),
        "alice",
        "alice-password-1",
    )
    .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.html
    );
    assert!(limited.is_html());
    limited.assert_login_page();
    assert!(limited.html.contains("try again after"), "{}", limited.html);
    assert!(limited.html.contains(" UTC"), "{}", limited.html);
    assert!(
        limited.html.contains("in about 14 minutes"),
        "{}",
        limited.html
    );
    assert_eq!(
        limited.headers[RETRY_AFTER], "840",
        "15 min from the first failure"
    );
    assert!(
        limited.headers.get(SET_COOKIE).is_none(),
        "nobody signed in"
    );
    // The case of the name does not make another account of it.
    let limited = post_login(
        &provider,
        &browser,
        &page.input("csrf_token"),
        &page.input("handle"),
        " Alice",
        "alice-password-1",
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);

    // Another account is not affected: bob signs in meanwhile.
    let bob = crate::common::browser();
    let (_, bob_challenge) = pkce("throttle-bob");
    sign_in_to_consent(
        &provider,
        &bob,
        &printshop_request("bob", &bob_challenge, "photos.read"),
        "bob",
        "bob-password-1",
    )
    .await;

    // A second before the window ends: still refused.
    advance(&clock, 14 * 60 - 1);
    let page = authorize_page(&provider, &browser, &query).await;
    let limited = post_login(
        &provider,
        &browser,
        &page.input("csrf_token"),
        &page.input("handle"),
        "alice",
        "alice-password-1",
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers[RETRY_AFTER], "1");

    // After the window: the right password works.
    advance(&clock, 1);
    let consent =
        sign_in_to_consent(&provider, &browser, &query, "alice", "alice-password-1").await;
    assert!(consent.html.contains("alice"));
}

/// The throttle counts wrong passwords for names nobody has too, and answers
/// them alike, so that it tells nothing about which accounts exist.
#[tokio::test]
async fn unknown_usernames_are_throttled_alike() {
    let provider = Provider::start().await;
    let browser = browser();
    let (_, challenge) = pkce("throttle-unknown");
    let query = printshop_request("s", &challenge, "photos.read");
    let mut page = authorize_page(&provider, &browser, &query).await;
    for user in ["mallory", "alice"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            page = post_login(
                &provider,
                &browser,
                &page.input("csrf_token"),
                &page.input("handle"),
                user,
                "guess",
            )
            .await;
            statuses.push(page.status.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429], "{user}");
        assert!(page.html.contains("try again after"), "{}", page.html);
    }
}

// The device authorization grant (RFC 8628): the verification page, then the
// same login and consent pages, while the device polls.

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /device_authorization` as `client` (a public client names itself).
async fn device_authorization(
    provider: &Provider,
    client: (&str, Option<&str>),
    scope: &str,
) -> (StatusCode, serde_json::Value) {
    let http = reqwest::Client::new();
    let mut request = http.post(provider.url("/device_authorization"));
    let mut form = vec![("scope", scope)];
    match client.1 {
        Some(secret) => request = request.basic_auth(client.0, Some(secret)),
        None => form.push(("client_id", client.0)),
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The device code and user code photo-cli gets for `photos.read`.
async fn photo_cli_codes(provider: &Provider) -> (String, String) {
    let (status, body) = device_authorization(provider, ("photo-cli", None), "photos.read").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["verification_uri"].as_str().unwrap(),
        provider.url("/device")
    );
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    assert_eq!(
        body["verification_uri_complete"].as_str().unwrap(),
        provider.url(&format!("/device?user_code={user_code}"))
    );
    (body["device_code"].as_str().unwrap().to_owned(), user_code)
}

/// How a person might type `XXXX-XXXX`: lowercase, no dash.
fn sloppy(user_code: &str) -> String {
    user_code.replace('-', "").to_lowercase()
}

/// `GET /device{query}`.
async fn device_page(provider: &Provider, browser: &reqwest::Client, query: &str) -> Page {
    Page::of(
        browser
            .get(provider.url(&format!("/device{query}")))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Posts `form` to `path`.
async fn post_form(
    provider: &Provider,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> Page {
    Page::of(
        browser
            .post(provider.url(path))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

impl Page {
    fn assert_device_page(&self) {
        assert!(self.is_html());
        assert_eq!(self.forms(), 1, "{}", self.html);
        assert!(self.html.contains("name=\"user_code\""), "{}", self.html);
        assert!(self.html.contains("<label for=\"user_code\">"));
        assert!(!self.html.contains("name=\"password\""));
        assert!(!self.html.contains("name=\"decision\""));
        self.assert_page_headers();
    }

    fn assert_page_headers(&self) {
        assert_eq!(self.headers.get("cache-control").unwrap(), "no-store");
        assert_eq!(self.headers.get("x-frame-options").unwrap(), "DENY");
        assert!(
            self.headers
                .get("content-security-policy")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}

/// The verification page, the code typed sloppily, then the login page.
async fn device_login_page(
    provider: &Provider,
    browser: &reqwest::Client,
    user_code: &str,
) -> Page {
    let page = device_page(provider, browser, "").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_device_page();
    let login = post_form(
        provider,
        browser,
        "/device",
        &[
            ("csrf_token", &page.input("csrf_token")),
            ("user_code", &sloppy(user_code)),
        ],
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.html);
    login.assert_login_page();
    login.assert_page_headers();
    login
}

/// Signs in on a device login page; the consent page.
async fn device_sign_in(
    provider: &Provider,
    browser: &reqwest::Client,
    login: &Page,
    user: &str,
    password: &str,
) -> Page {
    post_form(
        provider,
        browser,
        "/device/login",
        &[
            ("csrf_token", &login.input("csrf_token")),
            ("user_code", &login.input("user_code")),
            ("username", user),
            ("password", password),
        ],
    )
    .await
}

/// Posts the device consent form with `decision`.
async fn device_decide(
    provider: &Provider,
    browser: &reqwest::Client,
    consent: &Page,
    decision: &str,
) -> Page {
    post_form(
        provider,
        browser,
        "/device/consent",
        &[
            ("csrf_token", &consent.input("csrf_token")),
            ("user_code", &consent.input("user_code")),
            ("decision", decision),
        ],
    )
    .await
}

/// One poll of the token endpoint with the device code.
async fn poll(provider: &Provider, device_code: &str) -> (StatusCode, serde_json::Value) {
    token(
        provider,
        ("photo-cli", None),
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await
}

#[tokio::test]
async fn device_verification_page_has_one_form_with_user_code() {
    let provider = Provider::start().await;
    let browser = browser();
    let response = browser.get(provider.url("/device")).send().await.unwrap();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .expect("a browser cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let page = Page::of(response).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_device_page();
    assert_eq!(page.input("user_code"), "");
    assert!(!page.input("csrf_token").is_empty());
    assert!(page.html.contains("lang=\"en\""));
    assert!(!page.html.contains("<script"));
    // Nothing is stored for a browser that has not signed in.
    assert!(provider.demo.sessions().is_empty());

    // `verification_uri_complete` prefills the code, normalised.
    let page = device_page(&provider, &browser, "?user_code=bcdf%20ghjk").await;
    page.assert_device_page();
    assert_eq!(page.input("user_code"), "BCDF-GHJK");
    // Anything else is not echoed.
    let page = device_page(&provider, &browser, "?user_code=%22%3E%3Cscript%3Ex").await;
    page.assert_device_page();
    assert_eq!(page.input("user_code"), "");
    assert!(!page.html.contains("<script"));

    // The home page points people with a device there.
    let home = Page::of(browser.get(provider.url("/")).send().await.unwrap()).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html.contains("photo-cli"), "{}", home.html);
    assert!(home.html.contains("&#x2f;device\""), "{}", home.html);
}

#[tokio::test]
async fn device_flow_allow_then_polling_gives_tokens_and_photos() {
    let provider = Provider::start().await;
    let browser = browser();
    let (device_code, user_code) = photo_cli_codes(&provider).await;

    let login = device_login_page(&provider, &browser, &user_code).await;
    assert!(login.html.contains("photo-cli") || login.html.contains("Photo"));
    assert_eq!(login.input("user_code"), user_code, "normalised");
    let consent = device_sign_in(&provider, &browser, &login, "alice", "alice-password-1").await;
    consent.assert_consent_page();
    consent.assert_page_headers();
    assert!(consent.html.contains("View your photos"));
    assert!(!consent.html.contains("Upload and edit your photos"));
    assert!(consent.html.contains("alice"));
    assert!(consent.html.contains(&user_code), "shows the code");
    assert!(
        consent.headers.get(SET_COOKIE).is_some(),
        "a new session id at sign-in"
    );

    let done = device_decide(&provider, &browser, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(done.html.contains("You can now return to your device"));
    assert_eq!(done.forms(), 0);
    done.assert_page_headers();

    // The device's poll gets the tokens, once.
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "photos.read");
    let response = photos(&provider, body["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let list: serde_json::Value = response.json().await.unwrap();
    assert_eq!(list["owner"], "alice");
    assert_eq!(list["photos"].as_array().unwrap().len(), 3);
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The consent form cannot decide twice.
    let again = device_decide(&provider, &browser, &consent, "deny").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.html);
    assert!(again.html.contains("expired"));
}

#[tokio::test]
async fn device_flow_deny_then_polling_gives_access_denied() {
    let provider = Provider::start().await;
    let browser = browser();
    let (device_code, user_code) = photo_cli_codes(&provider).await;
    let login = device_login_page(&provider, &browser, &user_code).await;

    // A wrong password: the login page again, still for the code.
    let wrong = device_sign_in(&provider, &browser, &login, "bob", "alice-password-1").await;
    // The form again, 200: a 401 would need a `WWW-Authenticate` scheme
    // (RFC 9110 §15.5.2), which a form sign-in has not.
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.headers.get(WWW_AUTHENTICATE).is_none());
    wrong.assert_login_page();
    assert!(wrong.html.contains("incorrect"));
    let consent = device_sign_in(&provider, &browser, &wrong, "bob", "bob-password-1").await;
    consent.assert_consent_page();
    let done = device_decide(&provider, &browser, &consent, "deny").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(done.html.contains("Access was denied"));
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "access_denied");

    // Signed in now: the next code goes straight to the consent page.
    let (device_code, user_code) = photo_cli_codes(&provider).await;
    let page = device_page(&provider, &browser, "").await;
    page.assert_device_page();
    let consent = post_form(
        &provider,
        &browser,
        "/device",
        &[
            ("csrf_token", &page.input("csrf_token")),
            ("user_code", &user_code),
        ],
    )
    .await;
    consent.assert_consent_page();
    assert!(consent.html.contains("bob"));
    let done = device_decide(&provider, &browser, &consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK);
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = photos(&provider, body["access_token"].as_str().unwrap()).await;
    let list: serde_json::Value = response.json().await.unwrap();
    assert_eq!(list["owner"], "bob");
}

#[tokio::test]
async fn a_wrong_device_code_shows_the_page_again_then_429() {
    let provider = Provider::start().await;
    let browser = browser();
    let page = device_page(&provider, &browser, "").await;
    let csrf = page.input("csrf_token");
    for typed in ["BCDF-GHJK", "not a code", "<b>x</b>", ""] {
        let again = post_form(
            &provider,
            &browser,
            "/device",
            &[("csrf_token", &csrf), ("user_code", typed)],
        )
        .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.html);
        again.assert_device_page();
        assert!(again.html.contains("role=\"alert\""));
        assert!(again.html.contains("not valid"), "{}", again.html);
        assert!(!again.html.contains("<b>x"), "escaped");
    }
    // RFC 8628 §5.1: guessing is bounded (10 wrong codes per 15 minutes).
    let mut limited = None;
    for _ in 0..10 {
        let again = post_form(
            &provider,
            &browser,
            "/device",
            &[("csrf_token", &csrf), ("user_code", "BCDF-GHJK")],
        )
        .await;
        if again.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(again);
            break;
        }
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
    }
    let limited = limited.expect("429 after too many wrong codes");
    limited.assert_device_page();
    assert!(limited.html.contains("try again after"), "{}", limited.html);
    let retry: u64 = limited
        .headers
        .get(RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // A right code is refused too, for this browser, until the window ends.
    let (_, user_code) = photo_cli_codes(&provider).await;
    let still = post_form(
        &provider,
        &browser,
        "/device",
        &[("csrf_token", &csrf), ("user_code", &user_code)],
    )
    .await;
    assert_eq!(still.status, StatusCode::TOO_MANY_REQUESTS);
    // A fresh cookie from the same address does not buy fresh guesses where
    // the framework reports the address (rocket here; the axum binary, whose
    // tests serve without it, counts by cookie then); another address is not
    // held up (photobook's `fresh_cookies_do_not_buy_fresh_user_code_guesses`).
}

#[tokio::test]
async fn device_forms_require_csrf() {
    let provider = Provider::start().await;
    let browser = browser();
    let (device_code, user_code) = photo_cli_codes(&provider).await;

    // The verification form: no token, or another browser's.
    let foreign = device_page(&provider, &crate::common::browser(), "").await;
    let _ = device_page(&provider, &browser, "").await;
    for csrf in ["", foreign.input("csrf_token").as_str()] {
        let refused = post_form(
            &provider,
            &browser,
            "/device",
            &[("csrf_token", csrf), ("user_code", &user_code)],
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
        refused.assert_device_page();
        assert!(!refused.html.contains("name=\"password\""));
    }
    // Without any cookie at all.
    let refused = post_form(
        &provider,
        &reqwest::Client::new(),
        "/device",
        &[("csrf_token", "x"), ("user_code", &user_code)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The login form: a wrong token signs nobody in.
    let login = device_login_page(&provider, &browser, &user_code).await;
    let refused = post_form(
        &provider,
        &browser,
        "/device/login",
        &[
            ("csrf_token", "forged"),
            ("user_code", &user_code),
            ("username", "alice"),
            ("password", "alice-password-1"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    assert!(refused.headers.get(SET_COOKIE).is_none());
    assert!(provider.demo.sessions().is_empty());
    // A login form made for another code is not accepted for this one.
    let (_, other_code) = photo_cli_codes(&provider).await;
    let refused = post_form(
        &provider,
        &browser,
        "/device/login",
        &[
            ("csrf_token", &login.input("csrf_token")),
            ("user_code", &other_code),
            ("username", "alice"),
            ("password", "alice-password-1"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(provider.demo.sessions().is_empty());

    // The consent form: a wrong token, or a code not shown to this session,
    // decides nothing.
    let consent = device_sign_in(&provider, &browser, &login, "alice", "alice-password-1").await;
    consent.assert_consent_page();
    let refused = post_form(
        &provider,
        &browser,
        "/device/consent",
        &[
            ("csrf_token", "forged"),
            ("user_code", &user_code),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = post_form(
        &provider,
        &browser,
        "/device/consent",
        &[
            ("csrf_token", &consent.input("csrf_token")),
            ("user_code", &other_code),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "authorization_pending");
}

#[tokio::test]
async fn printshop_may_not_use_the_device_grant() {
    let provider = Provider::start().await;
    let (status, body) = device_authorization(
        &provider,
        ("printshop", Some(PRINTSHOP_SECRET)),
        "photos.read",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    let metadata: serde_json::Value =
        reqwest::get(provider.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        metadata["device_authorization_endpoint"],
        provider.url("/device_authorization")
    );
}

/// RFC 8628 §3.5 through HTTP: polling answers `authorization_pending`, then
/// `slow_down` when too fast, and `expired_token` once the device code's
/// 10 minutes are over (the provider on a fixed clock).
#[tokio::test]
async fn device_codes_answer_pending_slow_down_then_expired_token_rfc8628_3_5() {
    let clock = Arc::new(FixedClock::new(SystemClock.now()));
    let provider = Provider::start_with_clock(clock.clone()).await;
    let (device_code, _) = photo_cli_codes(&provider).await;
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("slow_down"))
    );
    advance(&clock, 10 * 60);
    let (status, body) = poll(&provider, &device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expired_token"))
    );
}
