//! Bearer token validation for resource servers (RFC 6750 §3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[tokio::test]
async fn bearer_errors_rfc6750_3() {
    let f = fixture();
    let none = f.server.verify_bearer(None, None).await.unwrap_err();
    assert_eq!(
        (none.status(), none.challenge("r")),
        (401, "Bearer realm=\"r\"".to_owned())
    );
    let bad = f
        .server
        .verify_bearer(Some("Bearer tsa_nope"), None)
        .await
        .unwrap_err();
    assert_eq!(bad.status(), 401);
    assert!(bad.challenge("r").contains("invalid_token"));
    let query = f
        .server
        .verify_bearer(None, Some("access_token=tsa_x"))
        .await
        .unwrap_err();
    assert_eq!(query.status(), 400);
    let malformed = f
        .server
        .verify_bearer(Some("Bearer a b"), None)
        .await
        .unwrap_err();
    assert_eq!(malformed.status(), 400);
}
