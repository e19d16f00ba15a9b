//! The token endpoint's error answers (RFC 6749 §5.2), whatever the grant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tessera::HttpRequest;

#[tokio::test]
async fn token_endpoint_errors_rfc6749_5_2() {
    let f = fixture();
    let shop = basic("shop", SHOP_SECRET);
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("", Some(shop.clone()), 400, "invalid_request"),
        (
            "grant_type=password&username=a&password=b",
            Some(shop.clone()),
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=client_credentials",
            Some(shop.clone()),
            400,
            "unauthorized_client",
        ),
        (
            "grant_type=client_credentials",
            Some(basic("shop", "wrong")),
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials",
            Some(basic("nobody", "x")),
            401,
            "invalid_client",
        ),
        ("grant_type=client_credentials", None, 401, "invalid_client"),
        (
            "grant_type=client_credentials&client_id=shop",
            None,
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&client_secret=x",
            None,
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            Some(shop.clone()),
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&client_id=shop&client_secret=shop-secret",
            Some(shop.clone()),
            400,
            "invalid_request",
        ),
        (
            "grant_type=authorization_code",
            Some(shop.clone()),
            400,
            "invalid_request",
        ),
        (
            "grant_type=authorization_code&code=tsc_bogus",
            Some(shop.clone()),
            400,
            "invalid_grant",
        ),
        (
            "grant_type=client_credentials&scope=photos.write",
            Some(basic("job", "job-secret")),
            400,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials&client_id=cli",
            None,
            400,
            "unauthorized_client",
        ),
    ];
    for (body, auth, status, code) in cases {
        let r = f
            .server
            .handle(
                tessera::Endpoint::Token,
                &HttpRequest::form_post(body, auth.as_deref()),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((r.status, err(&v)), (status, code), "{body}");
        // Every 401 names a scheme (RFC 9110 §15.5.2), also when the client
        // sent no Authorization header (RFC 6749 §5.2 requires it only then).
        if code == "invalid_client" {
            assert_eq!(
                r.header("www-authenticate"),
                Some("Basic realm=\"tessera\""),
                "{body}"
            );
        } else {
            assert_eq!(r.header("www-authenticate"), None, "{body}");
        }
    }
    // Wrong method and content type.
    let mut get = HttpRequest::form_post("grant_type=client_credentials", Some(&shop));
    get.method = "GET";
    let r = f.server.handle(tessera::Endpoint::Token, &get).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let mut json = HttpRequest::form_post("{}", Some(&shop));
    json.content_type = Some("application/json");
    assert_eq!(
        f.server
            .handle(tessera::Endpoint::Token, &json)
            .await
            .status,
        400
    );
    let mut query = HttpRequest::form_post("grant_type=client_credentials", Some(&shop));
    query.query = Some("client_secret=x");
    assert_eq!(
        f.server
            .handle(tessera::Endpoint::Token, &query)
            .await
            .status,
        400
    );
}

/// RFC 6749 §3.2: the token endpoint "MUST ignore unrecognized request
/// parameters", also when one is sent twice, too long or not UTF-8; a
/// parameter it reads (for every grant, for the client's authentication,
/// or the grant's own) is `invalid_request` when sent twice (§3.1, §5.2).
#[tokio::test]
async fn unread_parameters_are_ignored_read_ones_refused_twice_rfc6749_3_2() {
    let f = fixture();
    let job = basic("job", "job-secret");
    let long = "x".repeat(3000);
    for extra in [
        "&foo=1&foo=2",
        "&foo=%FF",
        // Read by the introspection and revocation endpoints, not here.
        "&token=a&token=b",
    ] {
        let body = format!("grant_type=client_credentials{extra}");
        let (status, v) = token(&f, &body, Some(&job)).await;
        assert_eq!(status, 200, "{extra}: {v}");
    }
    let code = code_for_shop(&f).await;
    let cases = [
        // Read for every grant.
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            Some(&job),
        ),
        (
            "grant_type=client_credentials&scope=photos.read&scope=photos.read",
            Some(&job),
        ),
        ("grant_type=client_credentials&scope=%FF", Some(&job)),
        // Too long, whoever reads it (DEMO-CONTRACT: every value at most 2 KiB).
        (
            &*format!("grant_type=client_credentials&foo={long}"),
            Some(&job),
        ),
        // Read by the client's authentication.
        (
            "grant_type=client_credentials&client_id=cli&client_id=cli",
            None,
        ),
        (
            "grant_type=client_credentials&client_id=job&client_secret=job-secret&client_secret=job-secret",
            None,
        ),
        // Read by the grant.
        (
            &*format!("grant_type=authorization_code&code={code}&code=x&code_verifier={VERIFIER}"),
            None,
        ),
        (
            &*format!(
                "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&code_verifier={VERIFIER}"
            ),
            None,
        ),
        (
            &*format!(
                "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&redirect_uri=x"
            ),
            None,
        ),
        (
            "grant_type=refresh_token&refresh_token=a&refresh_token=b",
            None,
        ),
    ];
    let shop = basic("shop", SHOP_SECRET);
    for (body, auth) in cases {
        let auth = auth.map_or(shop.as_str(), String::as_str);
        let auth = (!body.contains("client_id")).then_some(auth);
        let (status, v) = token(&f, body, auth).await;
        assert_eq!((status, err(&v)), (400, "invalid_request"), "{body}");
    }
    // The code survived every refused request.
    let (status, v) = redeem(&f, &code).await;
    assert_eq!(status, 200, "{v}");
}

/// A grant of one's own declares the parameters it reads
/// (`GrantHandler::parameters`): those are refused when sent twice, others
/// ignored. A grant that declares nothing counts every parameter as read,
/// so any repeat is refused.
#[tokio::test]
async fn a_grant_of_ones_own_declares_what_it_reads_rfc6749_3_2() {
    struct Reads(Option<&'static [&'static str]>);
    #[async_trait::async_trait]
    impl tessera::grant::GrantHandler for Reads {
        fn grant_type(&self) -> &str {
            "client_credentials"
        }
        fn parameters(&self) -> Option<&'static [&'static str]> {
            self.0
        }
        async fn exchange(
            &self,
            _: &tessera::grant::GrantContext<'_>,
            _: &tessera::Client,
            _: &tessera::Params,
        ) -> Result<tessera::grant::TokenResponse, tessera::OAuthError> {
            Err(tessera::OAuthError::invalid_request("the grant ran"))
        }
    }
    let job = basic("job", "job-secret");
    let ran = |v: &serde_json::Value| v["error_description"] == "the grant ran";
    let f = fixture_with(|b| b.grant(Reads(Some(&["kiosk"]))));
    let (status, v) = token(
        &f,
        "grant_type=client_credentials&other=1&other=2",
        Some(&job),
    )
    .await;
    assert!(status == 400 && ran(&v), "{v}");
    let (status, v) = token(
        &f,
        "grant_type=client_credentials&kiosk=1&kiosk=2",
        Some(&job),
    )
    .await;
    assert!(status == 400 && !ran(&v), "{v}");
    let f = fixture_with(|b| b.grant(Reads(None)));
    let (status, v) = token(
        &f,
        "grant_type=client_credentials&other=1&other=2",
        Some(&job),
    )
    .await;
    assert!(status == 400 && !ran(&v), "{v}");
    assert_eq!(err(&v), "invalid_request");
    let (status, v) = token(&f, "grant_type=client_credentials&other=1", Some(&job)).await;
    assert!(status == 400 && ran(&v), "{v}");
}

/// A POST with no body and no `Content-Type` carries no parameters (some
/// HTTP clients send none for an empty body): what is missing is named,
/// not the body's type. A body of another type stays refused (§3.2).
#[tokio::test]
async fn an_empty_post_without_content_type_has_no_parameters() {
    let f = fixture();
    let job = basic("job", "job-secret");
    let post = HttpRequest::new("POST").with_authorization(Some(&job));
    let r = f.server.handle(tessera::Endpoint::Token, &post).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((r.status, err(&v)), (400, "invalid_request"));
    assert_eq!(v["error_description"], "missing parameter `grant_type`");
    let body = post.with_body(b"grant_type=client_credentials");
    let r = f.server.handle(tessera::Endpoint::Token, &body).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((r.status, err(&v)), (400, "invalid_request"));
    assert_eq!(
        v["error_description"],
        "the body must be application/x-www-form-urlencoded"
    );
}
