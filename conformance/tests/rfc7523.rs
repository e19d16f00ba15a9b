//! RFC 7523 over HTTP, against both providers (axum and rocket): a client
//! that registered itself with `private_key_jwt` (RFC 7591 `jwks`)
//! authenticates with signed client assertions (§2.2), and trades an
//! identity provider's assertion for an access token with the JWT bearer
//! grant (§2.1). Assertions are signed with `jsonwebtoken` (ring), not with
//! Tessera's own JWS code.
//!
//! Each provider runs with `--trust-assertion-issuer https://idp.test=FILE`
//! (an addition to the demo contract; see photobook's `assertions` module).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assertions;
use assertions as rfc7523;

macro_rules! checks {
    ($bin:literal, $module:ident) => {
        mod $module {
            use super::rfc7523;

            async fn run(name: &str, check: rfc7523::Check) {
                let idp = std::sync::Arc::new(rfc7523::Keys::generate("idp-key"));
                let store = idp.provider_flags();
                let provider = match tessera_conformance::Provider::start($bin, &store).await {
                    Ok(p) => p,
                    Err(e) => panic!("cannot start {}: {e}", $bin),
                };
                provider
                    .run(name, |t| async move { check(t, idp).await })
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn private_key_jwt_authenticates_a_registered_client() {
                run(
                    "rfc7523::private_key_jwt_authenticates_a_registered_client",
                    |t, idp| {
                        Box::pin(rfc7523::private_key_jwt_authenticates_a_registered_client(
                            t, idp,
                        ))
                    },
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn client_assertion_refusals_are_401_invalid_client() {
                run(
                    "rfc7523::client_assertion_refusals_are_401_invalid_client",
                    |t, idp| {
                        Box::pin(rfc7523::client_assertion_refusals_are_401_invalid_client(
                            t, idp,
                        ))
                    },
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn jwt_bearer_grant_issues_a_token_for_the_user() {
                run(
                    "rfc7523::jwt_bearer_grant_issues_a_token_for_the_user",
                    |t, idp| {
                        Box::pin(rfc7523::jwt_bearer_grant_issues_a_token_for_the_user(
                            t, idp,
                        ))
                    },
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn jwt_bearer_refusals_are_invalid_grant() {
                run(
                    "rfc7523::jwt_bearer_refusals_are_invalid_grant",
                    |t, idp| Box::pin(rfc7523::jwt_bearer_refusals_are_invalid_grant(t, idp)),
                )
                .await;
            }
        }
    };
}

checks!("photo-provider", axum);
checks!("photo-provider-rocket", rocket);
