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

/// RFC 8414 §3.2: "Claims with zero elements MUST be omitted": a server
/// without configured scopes lists no `scopes_supported`.
#[tokio::test]
async fn empty_lists_are_omitted_rfc8414_3_2() {
    let server = tessera::Server::builder()
        .issuer("https://as.example")
        .store(std::sync::Arc::new(tessera_memory::MemoryStore::new()))
        .build()
        .unwrap();
    let r = server
        .handle(
            tessera::Endpoint::Metadata,
            &tessera::HttpRequest::new("GET"),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let object = v.as_object().unwrap();
    assert!(!object.contains_key("scopes_supported"), "{v}");
    for (name, value) in object {
        assert!(
            value.as_array().is_none_or(|a| !a.is_empty()),
            "{name} is empty"
        );
    }
}
