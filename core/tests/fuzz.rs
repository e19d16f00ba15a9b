//! Property-based fuzzing of every input the core parses: arbitrary bodies,
//! headers and queries must get a registered error code with its status,
//! never a panic or a 500 (DESIGN: tests, layer 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::prelude::*;
use tessera::SecretHash;
use tessera::{
    AuthorizeOutcome, Client, ClientId, HttpRequest, RedirectUri, Scope, Server, Subject,
};
use tessera_memory::MemoryStore;

fn server() -> Server {
    let shop = Client::confidential(ClientId::new("shop").unwrap(), "Shop", SecretHash::of("s"))
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code", "refresh_token", "client_credentials"])
        .with_scope(Scope::parse("a b").unwrap());
    let cli = Client::public(ClientId::new("cli").unwrap(), "Cli")
        .with_redirect_uri(RedirectUri::new("http://127.0.0.1/cb").unwrap())
        .with_grant_types(["authorization_code"])
        .with_scope(Scope::parse("a").unwrap());
    Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::with_clients([shop, cli])))
        .build()
        .unwrap()
}

/// Form-ish strings built from the protocol's own vocabulary, so the fuzzer
/// reaches deep paths, plus arbitrary noise.
fn form() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("grant_type"),
        Just("code"),
        Just("refresh_token"),
        Just("client_id"),
        Just("client_secret"),
        Just("scope"),
        Just("redirect_uri"),
        Just("code_verifier"),
        Just("token"),
        Just("token_type_hint"),
        Just("response_type"),
        Just("state"),
        Just("code_challenge"),
        Just("code_challenge_method"),
    ];
    let values = prop_oneof![
        Just("authorization_code".to_owned()),
        Just("client_credentials".to_owned()),
        Just("refresh_token".to_owned()),
        Just("shop".to_owned()),
        Just("cli".to_owned()),
        Just("s".to_owned()),
        Just("a b".to_owned()),
        Just("code".to_owned()),
        Just("S256".to_owned()),
        Just("tsa_".to_owned()),
        Just("https://shop.example/cb".to_owned()),
        Just("http://127.0.0.1:1/cb".to_owned()),
        "[ -~]{0,70}",
        ".{0,20}",
    ];
    proptest::collection::vec((names, values), 0..8).prop_map(|pairs| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, &v);
        }
        s.finish()
    })
}

fn any_form() -> impl Strategy<Value = String> {
    prop_oneof![form(), ".{0,200}", "[%&=+a-z0-9]{0,100}"]
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("Basic c2hvcDpz".to_owned())),
        Just(Some("Basic c2hvcDp3cm9uZw==".to_owned())),
        "Basic [A-Za-z0-9+/=%]{0,40}".prop_map(Some),
        ".{0,40}".prop_map(Some),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn assert_protocol_answer(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(matches!(status, 200 | 400 | 401 | 405), "status {status}");
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if status != 200 {
        let code = v["error"].as_str().unwrap_or_default();
        let known = [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
        ];
        prop_assert!(known.contains(&code), "unknown error code {code}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn back_channel_endpoints_answer_with_registered_errors(body in any_form(), auth in authorization(), which in 0..3u8) {
        let rt = runtime();
        let server = server();
        let request = HttpRequest::form_post(&body, auth.as_deref());
        let response = rt.block_on(async {
            match which {
                0 => server.handle(tessera::Endpoint::Token, &request).await,
                1 => server.handle(tessera::Endpoint::Revocation, &request).await,
                _ => server.handle(tessera::Endpoint::Introspection, &request).await,
            }
        });
        assert_protocol_answer(response.status, &response.body)?;
        if response.status == 200 || which == 0 {
            prop_assert_eq!(response.header("cache-control"), Some("no-store"));
        }
    }

    #[test]
    fn authorization_endpoint_never_redirects_to_unverified_uris(query in any_form(), logged_in in any::<bool>()) {
        let rt = runtime();
        let server = server();
        let owner = Subject::new("alice");
        let outcome = rt.block_on(server.authorize(&query, logged_in.then_some(&owner)));
        if let AuthorizeOutcome::Redirect(r) = outcome {
            let loc = r.location();
            prop_assert!(
                loc.starts_with("https://shop.example/cb?") || loc.starts_with("http://127.0.0.1:1/cb?") || loc.starts_with("http://127.0.0.1/cb?"),
                "redirect to {loc}"
            );
            prop_assert!(loc.contains("iss=https%3A%2F%2Fas.example"));
        }
    }

    #[test]
    fn bearer_parsing_never_panics(header in proptest::option::of(".{0,80}"), query in proptest::option::of(any_form())) {
        let rt = runtime();
        let server = server();
        let result = rt.block_on(server.verify_bearer(header.as_deref(), query.as_deref()));
        if let Err(e) = result {
            prop_assert!(matches!(e.status(), 400 | 401));
        }
    }
}
