//! Authorization server metadata (RFC 8414).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[tokio::test]
async fn metadata_rfc8414() {
    let f = fixture();
    let m = f.server.metadata();
    assert_eq!(m.issuer, "https://as.example");
    assert_eq!(m.token_endpoint, "https://as.example/token");
    assert_eq!(m.code_challenge_methods_supported, vec!["S256"]);
    assert!(m.authorization_response_iss_parameter_supported);
    let v: serde_json::Value = serde_json::from_slice(
        &f.server
            .handle(
                tessera::Endpoint::Metadata,
                &tessera::HttpRequest::new("GET"),
            )
            .await
            .body,
    )
    .unwrap();
    assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        v["scopes_supported"],
        serde_json::json!(["photos.read", "profile"])
    );
}
