//! The token endpoint, `client_credentials` grant (RFC 6749 §4.4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[tokio::test]
async fn client_credentials_basic_and_post() {
    let f = fixture();
    let (status, v) = token(
        &f,
        "grant_type=client_credentials",
        Some(&basic("job", "job-secret")),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("refresh_token").is_none());
    // The job is registered for basic only: post is refused.
    let (status, v) = token(
        &f,
        "grant_type=client_credentials&client_id=job&client_secret=job-secret",
        None,
    )
    .await;
    assert_eq!((status, err(&v)), (401, "invalid_client"));
    let at = format!(
        "Bearer {}",
        v.get("access_token")
            .and_then(|t| t.as_str())
            .unwrap_or("tsa_x")
    );
    assert!(f.server.verify_bearer(Some(&at), None).await.is_err());
}
