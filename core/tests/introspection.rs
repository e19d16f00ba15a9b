//! The introspection endpoint (RFC 7662).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tessera::HttpRequest;
use time::Duration;

#[tokio::test]
async fn introspection_rfc7662() {
    let f = fixture();
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let (_, job) = token(
        &f,
        "grant_type=client_credentials",
        Some(&basic("job", "job-secret")),
    )
    .await;
    let job_at = job["access_token"].as_str().unwrap();
    let introspect = |body: String, auth: Option<String>| {
        let f = &f;
        async move {
            let r = f
                .server
                .handle(
                    tessera::Endpoint::Introspection,
                    &HttpRequest::form_post(&body, auth.as_deref()),
                )
                .await;
            (
                r.status,
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
            )
        }
    };
    let (status, v) = introspect(format!("token={at}"), Some(basic("api", "api-secret"))).await;
    assert_eq!(status, 200);
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "shop");
    assert_eq!(v["username"], "alice");
    assert_eq!(v["scope"], "photos.read profile");
    assert_eq!(v["iss"], "https://as.example");
    assert_eq!(v["token_type"], "Bearer");
    // A refresh token is active but has no `token_type`: RFC 7662 §2.2 takes
    // it from RFC 6749 §5.1, which types access tokens only.
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, v) = introspect(format!("token={rt}"), Some(basic("api", "api-secret"))).await;
    assert_eq!(
        (v["active"].clone(), v.get("token_type")),
        (true.into(), None)
    );
    // Own token: visible. Another client's: inactive.
    assert_eq!(
        introspect(format!("token={at}"), Some(basic("shop", SHOP_SECRET)))
            .await
            .1["active"],
        true
    );
    let (_, v) = introspect(format!("token={job_at}"), Some(basic("shop", SHOP_SECRET))).await;
    assert_eq!(v, serde_json::json!({"active": false}));
    // Unauthenticated, and public clients.
    assert_eq!(introspect(format!("token={at}"), None).await.0, 401);
    assert_eq!(
        introspect(format!("token={at}&client_id=cli"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        introspect(String::new(), Some(basic("api", "api-secret")))
            .await
            .0,
        400
    );
    // Expired.
    f.clock.advance(Duration::hours(2));
    assert_eq!(
        introspect(format!("token={at}"), Some(basic("api", "api-secret")))
            .await
            .1["active"],
        false
    );
}

/// RFC 6749 §3.2: a parameter the endpoint does not read is ignored, also
/// when sent twice or malformed (`token_type_hint` among them: the token's
/// form tells its kind); `token` and the client's credentials are
/// `invalid_request` twice.
#[tokio::test]
async fn unread_parameters_are_ignored_read_ones_refused_twice_rfc6749_3_2() {
    unread_parameters_are_ignored_at(tessera::Endpoint::Introspection).await;
}
