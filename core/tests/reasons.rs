//! Errors keep why they happened: every `invalid_grant` (and the other
//! shared wire codes) carries a `Reason` that tests and logs can tell apart,
//! and a storage fault keeps its backend error as the source.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use tessera::storage::{
    CodeRecord, CodeTake, DevicePoll, DeviceRecord, DeviceStatus, DeviceStore, GrantStore,
    NewTokens, PendingAuthorization, PendingStore, RefreshLookup, TokenRecord,
};
use tessera::{
    AuthorizeOutcome, Client, ClientId, ClientRegistry, CodeChallenge, Decision, ErrorCode,
    GrantId, HttpRequest, OAuthError, Reason, RedirectUri, Scope, SecretHash, SecretKey, Server,
    StoreError, Subject, TokenHash,
};
use tessera_memory::MemoryStore;
use time::OffsetDateTime;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn shop() -> Client {
    Client::confidential(ClientId::new("shop").unwrap(), "Shop", SecretHash::of("s"))
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code", "refresh_token"])
        .with_scope(Scope::parse("read").unwrap())
}

fn server_on(store: Arc<dyn tessera::Store>) -> Server {
    Server::builder()
        .issuer("https://as.example")
        .shared_store(store)
        .build()
        .unwrap()
}

fn auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:s")
    )
}

async fn code(server: &Server) -> String {
    let query = format!(
        "response_type=code&client_id=shop&code_challenge={}&code_challenge_method=S256",
        CodeChallenge::s256(VERIFIER)
    );
    let owner = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = server.authorize(&query, Some(&owner)).await else {
        panic!("consent expected")
    };
    let AuthorizeOutcome::Redirect(r) =
        server.decide(&prompt.handle, &owner, Decision::Allow).await
    else {
        panic!("redirect expected")
    };
    let query = r.location().split_once('?').unwrap().1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn token(server: &Server, body: &str) -> Result<serde_json::Value, OAuthError> {
    let auth = auth();
    server
        .token_response(&HttpRequest::form_post(body, Some(&auth)))
        .await
        .map(|r| serde_json::to_value(&r).unwrap())
}

#[tokio::test]
async fn code_exchange_reasons_rfc6749_4_1_3() {
    let server = server_on(Arc::new(MemoryStore::with_clients([shop()])));
    let exchange =
        |code: &str| format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    // Not a code at all, and a well-formed code nobody issued.
    let e = token(&server, &exchange("nonsense")).await.unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::InvalidGrant, Reason::CodeUnknown)
    );
    let c = code(&server).await;
    let forged = format!("{}A", &c[..c.len() - 1]);
    let forged = if forged == c {
        format!("{}B", &c[..c.len() - 1])
    } else {
        forged
    };
    let e = token(&server, &exchange(&forged)).await.unwrap_err();
    assert_eq!(e.reason(), Reason::CodeUnknown);
    // The code once, then its replay (RFC 6749 §4.1.2).
    token(&server, &exchange(&c)).await.unwrap();
    let e = token(&server, &exchange(&c)).await.unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::InvalidGrant, Reason::CodeReplayed)
    );
    // A missing parameter is `invalid_request` with its own reason.
    let e = token(&server, "grant_type=authorization_code")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::InvalidRequest, Reason::MissingParameter)
    );
    let e = token(&server, "grant_type=password").await.unwrap_err();
    assert_eq!(e.reason(), Reason::GrantTypeUnsupported);
}

#[tokio::test]
async fn refresh_reasons_rfc9700_4_14() {
    let server = server_on(Arc::new(MemoryStore::with_clients([shop()])));
    let c = code(&server).await;
    let first = token(
        &server,
        &format!("grant_type=authorization_code&code={c}&code_verifier={VERIFIER}"),
    )
    .await
    .unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    let refresh = format!("grant_type=refresh_token&refresh_token={rt}");
    token(&server, &refresh).await.unwrap();
    let e = token(&server, &refresh).await.unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::InvalidGrant, Reason::RefreshTokenReused)
    );
    let e = token(&server, "grant_type=refresh_token&refresh_token=tsr_x")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::RefreshTokenUnknown);
}

#[tokio::test]
async fn client_authentication_reasons_rfc6749_2_3() {
    let server = server_on(Arc::new(MemoryStore::with_clients([shop()])));
    let e = server
        .token_response(&HttpRequest::form_post(
            "grant_type=client_credentials",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (
            ErrorCode::InvalidClient,
            Reason::ClientAuthenticationMissing
        )
    );
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:x")
    );
    let e = server
        .token_response(&HttpRequest::form_post(
            "grant_type=client_credentials",
            Some(&wrong),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::ClientSecretMismatch);
    let unknown = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("nobody:x")
    );
    let e = server
        .token_response(&HttpRequest::form_post(
            "grant_type=client_credentials",
            Some(&unknown),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::ClientAuthenticationFailed);
    let e = token(&server, "grant_type=client_credentials")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::UnauthorizedClient, Reason::ClientNotAllowed)
    );
}

/// A store whose every call fails as an unreachable backend would.
#[derive(Debug)]
struct Down;

#[derive(Debug, thiserror::Error)]
#[error("connection refused by 10.0.0.7:6379")]
struct Refused;

fn down() -> StoreError {
    StoreError::unavailable(Refused)
}

#[async_trait]
impl ClientRegistry for Down {
    async fn client(&self, _: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Err(down())
    }
}

#[async_trait]
impl GrantStore for Down {
    async fn put_code(&self, _: SecretKey, _: CodeRecord) -> Result<(), StoreError> {
        Err(down())
    }
    async fn take_code(&self, _: SecretKey, _: OffsetDateTime) -> Result<CodeTake, StoreError> {
        Err(down())
    }
    async fn issue(&self, _: GrantId, _: NewTokens) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn access_token(
        &self,
        _: SecretKey,
        _: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        Err(down())
    }
    async fn refresh_token(
        &self,
        _: SecretKey,
        _: OffsetDateTime,
    ) -> Result<RefreshLookup, StoreError> {
        Err(down())
    }
    async fn rotate_refresh(
        &self,
        _: SecretKey,
        _: NewTokens,
        _: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_access_token(&self, _: SecretKey) -> Result<(), StoreError> {
        Err(down())
    }
    async fn revoke_grant(&self, _: GrantId) -> Result<(), StoreError> {
        Err(down())
    }
}

#[async_trait]
impl PendingStore for Down {
    async fn put_pending(&self, _: SecretKey, _: PendingAuthorization) -> Result<(), StoreError> {
        Err(down())
    }
    async fn get_pending(
        &self,
        _: SecretKey,
        _: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        Err(down())
    }
    async fn take_pending(
        &self,
        _: SecretKey,
        _: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn a_storage_fault_keeps_its_cause_and_is_not_leaked() {
    let server = server_on(Arc::new(Down));
    let e = token(&server, "grant_type=client_credentials")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::TemporarilyUnavailable, Reason::Storage)
    );
    // The chain reaches the backend's own error, for the log ...
    let store_error = std::error::Error::source(&e).unwrap();
    let backend = store_error.source().unwrap();
    assert_eq!(backend.to_string(), "connection refused by 10.0.0.7:6379");
    // ... and the client sees none of it (DESIGN: storage faults never leak).
    assert!(!e.to_json().contains("10.0.0.7"));
    // The bearer check says the same, as an enum the resource server can match.
    let access = tessera::Secret::mint(tessera::TokenKind::Access, GrantId([7; 16]), [9; 32]);
    let err = server
        .verify_bearer(Some(&format!("Bearer {}", access.expose())), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    let tessera::BearerError::Unavailable(cause) = err else {
        panic!("expected Unavailable, got {err:?}")
    };
    assert_eq!(cause.reason(), Reason::Storage);
    // A token that cannot be ours never reaches the store.
    let err = server
        .verify_bearer(Some("Bearer tsa_abc"), None)
        .await
        .unwrap_err();
    assert_eq!(err, tessera::BearerError::Invalid);
}

#[tokio::test]
async fn client_secret_guessing_is_bounded_rfc6819_5_1_4_2_3() {
    let clock = Arc::new(tessera::FixedClock::new(OffsetDateTime::now_utc()));
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::with_clients([shop()])))
        .clock(clock.clone())
        .rate_limiter(tessera::MemoryRateLimiter::new().with_limit(
            tessera::Action::ClientAuthenticationFailure,
            tessera::Limit::new(3, time::Duration::minutes(1)),
        ))
        .build()
        .unwrap();
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:guess")
    );
    for _ in 0..3 {
        let e = server
            .token_response(&HttpRequest::form_post(
                "grant_type=client_credentials",
                Some(&wrong),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), Reason::ClientSecretMismatch);
    }
    // Locked: even the right secret is not compared until the window ends.
    let e = token(&server, "grant_type=refresh_token&refresh_token=x")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.reason()),
        (ErrorCode::InvalidClient, Reason::RateLimited)
    );
    clock.advance(time::Duration::minutes(1));
    let e = token(&server, "grant_type=refresh_token&refresh_token=x")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::RefreshTokenUnknown);
}

#[async_trait]
impl DeviceStore for Down {
    async fn put_device(
        &self,
        _: SecretKey,
        _: TokenHash,
        _: DeviceRecord,
        _: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn device_by_user_code(
        &self,
        _: TokenHash,
        _: OffsetDateTime,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        Err(down())
    }
    async fn decide_device(
        &self,
        _: TokenHash,
        _: DeviceStatus,
        _: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn poll_device(
        &self,
        _: SecretKey,
        _: &ClientId,
        _: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn nobody_can_lock_a_client_out_by_default() {
    // Anyone who knows a client id could otherwise cut the client off with
    // a few wrong secrets a minute; generated secrets have 256 bits.
    let server = server_on(Arc::new(MemoryStore::with_clients([shop()])));
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:guess")
    );
    for _ in 0..100 {
        let e = server
            .token_response(&HttpRequest::form_post(
                "grant_type=client_credentials",
                Some(&wrong),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), Reason::ClientSecretMismatch);
    }
    let e = token(&server, "grant_type=refresh_token&refresh_token=x")
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::RefreshTokenUnknown);
}

#[async_trait]
impl tessera::storage::ReplayStore for Down {
    async fn first_use(
        &self,
        _: tessera::storage::ReplayKey,
        _: time::OffsetDateTime,
        _: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
}
