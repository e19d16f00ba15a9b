//! The revocation endpoint (RFC 7009).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tessera::HttpRequest;

#[tokio::test]
async fn revocation_rfc7009() {
    let f = fixture();
    let auth = basic("shop", SHOP_SECRET);
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let bearer = format!("Bearer {at}");
    // Another client cannot revoke it; the answer is the same 200.
    let r = f
        .server
        .handle(
            tessera::Endpoint::Revocation,
            &HttpRequest::form_post(&format!("token={at}"), Some(&basic("job", "job-secret"))),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(f.server.verify_bearer(Some(&bearer), None).await.is_ok());
    // Unknown tokens: 200.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post("token=whatever", Some(&auth))
            )
            .await
            .status,
        200
    );
    // Missing token: invalid_request. Bad auth: 401.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post("", Some(&auth))
            )
            .await
            .status,
        400
    );
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post(&format!("token={at}"), Some(&basic("shop", "no")))
            )
            .await
            .status,
        401
    );
    // Own access token.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post(&format!("token={at}"), Some(&auth))
            )
            .await
            .status,
        200
    );
    assert!(f.server.verify_bearer(Some(&bearer), None).await.is_err());
    // Own refresh token: the grant dies.
    assert_eq!(
        f.server
            .handle(
                tessera::Endpoint::Revocation,
                &HttpRequest::form_post(
                    &format!("token={rt}&token_type_hint=refresh_token"),
                    Some(&auth)
                )
            )
            .await
            .status,
        200
    );
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 400);
}

/// RFC 6749 §3.2: a parameter the endpoint does not read is ignored, also
/// when sent twice or malformed (`token_type_hint` among them: the token's
/// form tells its kind); `token` and the client's credentials are
/// `invalid_request` twice.
#[tokio::test]
async fn unread_parameters_are_ignored_read_ones_refused_twice_rfc6749_3_2() {
    unread_parameters_are_ignored_at(tessera::Endpoint::Revocation).await;
}
