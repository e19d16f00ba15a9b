//! The adapter-agnostic HTTP conformance suite for Tessera providers.
//!
//! Every check talks only HTTP to a [`Target`] base URL: it discovers the
//! endpoints through RFC 8414 metadata, plays the browser's part of the
//! authorization dance with raw HTTP (login form, consent form, a cookie jar,
//! no automatic redirects), and plays the client's part with the `oauth2`
//! crate or raw requests. The checks assert the demo contract
//! (`DEMO-CONTRACT.md`) and the RFCs to the letter: statuses, error codes,
//! headers.
//!
//! Checks are grouped by RFC in [`checks`]; [`suite!`] turns every check into
//! one `#[tokio::test]` against a provider binary, so the same list runs
//! against every adapter:
//!
//! ```ignore
//! tessera_conformance::suite!("photo-provider");
//! ```
//!
//! A failure message carries the exact requests and responses involved and
//! the tail of the provider's log.
//!
//! Each test starts its own provider process on a free loopback port
//! (`--listen 127.0.0.1:P --issuer http://127.0.0.1:P --store ...`), killed
//! when the test ends. The binary is built once per test process with
//! `cargo build -p NAME` in the test's own target directory and profile (a
//! no-op after `cargo test --workspace`).
//!
//! Environment:
//! - `TESSERA_CONFORMANCE_BASE_URL`: test a provider already running there
//!   instead of spawning one;
//! - `TESSERA_CONFORMANCE_BIN_DIR`: a directory of prebuilt provider binaries
//!   (no build);
//! - `TESSERA_CONFORMANCE_BUILD_TIMEOUT_SECS`: bound on that build (30 min);
//! - `TESSERA_CONFORMANCE_KEEP_LOGS`: keep the providers' logs in the temp dir;
//! - `TESSERA_REDIS_URL` / `TESSERA_REDIS_SKIP=1`: see [`redis_store`].

#![forbid(unsafe_code)]

pub mod checks;
pub mod demo;
pub mod flow;
pub mod html;
pub mod http;
pub mod provider;

use std::time::Duration;

pub use provider::{Provider, ProviderProcess, locate_binary};

/// How long one check may take in all.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a check failed: a readable account, with the HTTP exchanges involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    /// A failure with this account.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// What a check returns.
pub type CheckResult = Result<(), Failure>;

/// Fails with `message` unless `cond` holds.
pub fn ensure(cond: bool, message: impl FnOnce() -> String) -> CheckResult {
    if cond {
        Ok(())
    } else {
        Err(Failure::new(message()))
    }
}

/// The Redis URL to run a provider on (`--store`): `TESSERA_REDIS_URL`, as
/// `storage-redis/scripts/redis-up.sh` sets it (and `scripts/test.sh` in CI).
///
/// Unset, it panics (so CI cannot pass silently without Redis) unless
/// `TESSERA_REDIS_SKIP=1`, which skips (passes) the tests instead: the same
/// convention as the `tessera-redis` tests.
pub fn redis_store() -> Option<String> {
    match std::env::var("TESSERA_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("TESSERA_REDIS_SKIP").is_ok_and(|v| v == "1") => None,
        _ => panic!(
            "TESSERA_REDIS_URL is not set: these tests run the provider on Redis. Start one with \
             `eval \"$(storage-redis/scripts/redis-up.sh)\"`, or set TESSERA_REDIS_SKIP=1 to skip."
        ),
    }
}

/// The provider under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The base URL, which is also the issuer, e.g. `http://127.0.0.1:9000`.
    pub base_url: String,
}

impl Target {
    /// A target at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
        }
    }

    /// The RFC 8414 §3 metadata URL: the well-known segment goes between the
    /// host and any path of the issuer.
    pub fn metadata_url(&self) -> String {
        match url::Url::parse(&self.base_url) {
            Ok(mut u) => {
                let path = u.path().trim_end_matches('/').to_owned();
                u.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
                u.to_string()
            }
            Err(_) => format!(
                "{}/.well-known/oauth-authorization-server",
                self.base_url.trim_end_matches('/')
            ),
        }
    }
}

/// The RFC 8414 metadata fields the checks use.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// `issuer`.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `revocation_endpoint`.
    pub revocation_endpoint: String,
    /// `introspection_endpoint`.
    pub introspection_endpoint: String,
    /// The whole document.
    pub raw: serde_json::Value,
    /// The exchange that fetched it.
    pub exchange: http::Exchange,
}

/// What every check starts from: the target, its discovered metadata, and a
/// fresh HTTP client (its own cookie jar: a new browser).
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The provider under test.
    pub target: Target,
    /// Its metadata.
    pub meta: Metadata,
    /// A fresh HTTP client.
    pub http: http::Http,
}

impl Ctx {
    /// Discovers `target`'s metadata (RFC 8414 §3).
    pub async fn new(target: &Target) -> Result<Self, Failure> {
        let http = http::Http::new()?;
        let ex = http.get(&target.metadata_url()).await?;
        ex.expect_status(200)?;
        let raw = ex.json()?;
        let field = |name: &str| -> Result<String, Failure> {
            match raw.get(name).and_then(|v| v.as_str()) {
                Some(s) => Ok(s.to_owned()),
                None => ex.fail(format!("the metadata has no string `{name}`")),
            }
        };
        let meta = Metadata {
            issuer: field("issuer")?,
            authorization_endpoint: field("authorization_endpoint")?,
            token_endpoint: field("token_endpoint")?,
            revocation_endpoint: field("revocation_endpoint")?,
            introspection_endpoint: field("introspection_endpoint")?,
            raw: raw.clone(),
            exchange: ex.clone(),
        };
        Ok(Self {
            target: target.clone(),
            meta,
            http,
        })
    }

    /// A new browser: the same target and metadata, an empty cookie jar.
    pub fn fresh_browser(&self) -> Result<Self, Failure> {
        Ok(Self {
            http: http::Http::new()?,
            ..self.clone()
        })
    }

    /// The protected API: `{issuer}/api/photos`.
    pub fn photos_url(&self) -> String {
        format!("{}/api/photos", self.meta.issuer)
    }
}

/// Calls `$cb!` with `$args` followed by every check, grouped by module of
/// [`checks`]. The one list of checks; [`suite!`] and [`checks::all`] use it.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_checks {
    ($cb:ident ! ($($args:tt)*)) => {
        $crate::$cb! { ($($args)*)
            rfc8414 {
                metadata_lists_every_contract_field,
                issuer_is_the_base_url_exactly,
                browser_apps_may_fetch_the_metadata,
            }
            rfc6749_happy {
                printshop_code_flow_with_oauth2_crate,
                printshop_refresh_rotates,
                photo_cli_loopback_any_port_with_pkce,
                backup_job_client_credentials_basic,
                backup_job_client_credentials_post,
                photos_api_answers_per_owner,
                login_with_wrong_password_shows_login_again,
                session_cookie_is_httponly_and_lax,
            }
            rfc6749_authorize {
                unknown_client_gets_error_page,
                unregistered_redirect_uri_gets_error_page,
                web_client_redirect_port_is_exact,
                missing_response_type_redirects_invalid_request,
                response_type_token_redirects_unsupported_response_type,
                missing_code_challenge_redirects_invalid_request,
                plain_code_challenge_method_redirects_invalid_request,
                unregistered_scope_redirects_invalid_scope,
                unknown_scope_redirects_invalid_scope,
                duplicate_state_redirects_invalid_request,
                value_over_2_kib_redirects_invalid_request_whatever_its_name,
                duplicate_client_id_gets_error_page,
                client_without_code_grant_gets_error_page,
                deny_redirects_access_denied,
                consent_page_names_the_client,
            }
            rfc6749_token {
                missing_grant_type_is_invalid_request,
                unknown_grant_type_is_unsupported_grant_type,
                wrong_secret_is_401_invalid_client_with_basic_challenge,
                unknown_client_is_401_invalid_client,
                basic_and_body_secret_is_invalid_request,
                get_is_405,
                json_body_is_invalid_request,
                duplicate_parameter_is_invalid_request,
                unrecognized_parameters_are_ignored_even_twice,
                code_redeemed_by_another_client_is_invalid_grant,
                wrong_redirect_uri_is_invalid_grant,
                missing_redirect_uri_is_invalid_request,
                loopback_port_must_match_at_token_endpoint,
                missing_code_verifier_is_refused,
                wrong_code_verifier_is_invalid_grant,
                malformed_code_verifier_is_invalid_grant,
                code_replay_is_invalid_grant_and_revokes_tokens,
                public_client_with_wrong_client_id_is_refused,
                client_credentials_for_printshop_is_unauthorized_client,
                client_credentials_beyond_registered_scope_is_invalid_scope,
                refresh_with_broader_scope_is_invalid_scope,
                refresh_token_of_another_client_is_invalid_grant,
                public_client_refreshes_without_client_id,
                rotated_refresh_token_reuse_revokes_family,
                body_over_64_kib_is_413_and_server_keeps_serving,
            }
            rfc7009 {
                revoke_own_access_token,
                revoke_refresh_token_kills_grant,
                revoke_other_clients_token_changes_nothing,
                revoke_unknown_token_is_200,
                revoke_without_token_is_invalid_request,
                revoke_with_bad_client_auth_is_401,
                public_client_revokes_own_token_with_client_id,
                wrong_token_type_hint_still_revokes,
            }
            rfc9126 {
                pushed_request_runs_the_code_flow,
                request_uri_is_single_use,
                push_without_client_authentication_is_401,
                push_with_unregistered_redirect_uri_is_400,
                a_client_registered_for_par_must_push,
            }
            rfc7591 {
                public_client_registers_and_runs_the_code_flow,
                confidential_client_registers_and_authenticates,
                bad_metadata_is_refused_with_its_error,
                a_self_registered_clients_errors_are_pages_not_redirects,
            }
            rfc8628 {
                device_authorization_response,
                polling_before_a_decision,
                printshop_is_unauthorized_client,
            }
            rfc8693 {
                photo_api_exchanges_a_users_token,
                wider_scope_is_invalid_scope,
                inactive_subject_token_is_invalid_grant,
                a_token_without_a_user_is_invalid_request,
                malformed_exchange_is_invalid_request,
                other_clients_are_unauthorized_client,
                resource_names_the_new_tokens_audience,
            }
            rfc7662 {
                photo_api_introspects_any_token,
                client_introspects_own_token,
                other_clients_token_is_inactive,
                unauthenticated_introspection_is_401,
                revoked_and_unknown_tokens_are_inactive,
            }
            rfc6750 {
                no_token_is_401_bearer_without_error,
                a_401_names_the_routes_scope,
                bad_token_is_401_invalid_token,
                token_in_query_is_refused,
                insufficient_scope_is_403,
                scheme_is_case_insensitive,
                scheme_without_token_is_400_invalid_request,
            }
            rfc8707 {
                code_flow_with_resource_is_audience_restricted,
                omitted_resource_means_the_api,
                unknown_resource_redirects_invalid_target,
                malformed_resource_redirects_invalid_target,
                several_resources_are_invalid_target,
                client_credentials_resource,
                changed_resource_at_token_endpoint_is_invalid_target,
                refresh_keeps_the_audience,
            }
            rfc9728 {
                api_metadata_is_served,
                api_challenges_carry_resource_metadata,
            }
            rfc9449 {
                metadata_lists_dpop_algorithms,
                token_request_with_a_proof_binds_the_token,
                bad_proofs_at_the_token_endpoint_are_invalid_dpop_proof,
                bound_token_needs_its_proof_at_the_api,
                public_clients_refresh_token_is_bound,
                a_proof_at_par_binds_the_code,
                a_client_registered_for_dpop_needs_a_proof,
            }
            races {
                concurrent_code_redemptions_one_winner,
                concurrent_refreshes_one_winner,
            }
        }
    };
}

/// Generates one `#[tokio::test]` per check against the workspace binary
/// `$bin` (spawned on a free loopback port for each test), in one module per
/// RFC group. Attributes given before the binary name go on every test, e.g.
/// `#[ignore = "..."]`.
///
/// `store = EXPR` picks the provider's `--store` (an `Option<String>`;
/// `None` skips the tests, see [`redis_store`]); the default is `memory`.
#[macro_export]
macro_rules! suite {
    ($(#[$attr:meta])* $bin:literal) => {
        $crate::suite! { $(#[$attr])* $bin, store = ::std::option::Option::Some("memory".to_owned()) }
    };
    ($(#[$attr:meta])* $bin:literal, store = $store:expr) => {
        $crate::__with_checks! { __suite_tests!(($(#[$attr])*) $bin ($store)) }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    (($attrs:tt $bin:literal $store:tt) $($group:ident { $($check:ident),* $(,)? })*) => {
        $(
            mod $group {
                $(
                    $crate::__suite_test! { $attrs $bin $store $group $check }
                )*
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_test {
    (($(#[$attr:meta])*) $bin:literal ($store:expr) $group:ident $check:ident) => {
        $(#[$attr])*
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let store: ::std::option::Option<::std::string::String> = $store;
            let ::std::option::Option::Some(store) = store else {
                eprintln!("skipped: no store for {}", $bin);
                return;
            };
            let provider = match $crate::Provider::start($bin, &store).await {
                Ok(p) => p,
                Err(e) => panic!("cannot start {}: {e}", $bin),
            };
            provider
                .run(
                    concat!(stringify!($group), "::", stringify!($check)),
                    |t| async move { $crate::checks::$group::$check(&t).await },
                )
                .await;
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __check_list {
    (() $($group:ident { $($check:ident),* $(,)? })*) => {
        vec![
            $($(
                $crate::checks::Check {
                    group: stringify!($group),
                    name: stringify!($check),
                    run: |t| ::std::boxed::Box::pin(async move {
                        $crate::checks::$group::$check(&t).await
                    }),
                },
            )*)*
        ]
    };
}
