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
