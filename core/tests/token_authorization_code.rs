//! The token endpoint, `authorization_code` grant (RFC 6749 §4.1.3): expiry,
//! single use, the code's bindings, and races on one code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use tessera::{
    AuthorizeOutcome, Client, ClientId, Decision, ErrorCode, HttpRequest, RedirectUri, Scope,
    SecretHash, Server,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    f.clock.advance(Duration::seconds(61));
    let (status, body) = redeem(&f, &code).await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn code_replay_revokes_tokens_rfc6749_4_1_2() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (_, first) = redeem(&f, &code).await;
    let (status, body) = redeem(&f, &code).await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
    let at = format!("Bearer {}", first["access_token"].as_str().unwrap());
    let e = f.server.verify_bearer(Some(&at), None).await.unwrap_err();
    assert_eq!(e, tessera::BearerError::Invalid);
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&basic("shop", SHOP_SECRET)),
    )
    .await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn code_bound_to_client_redirect_and_verifier() {
    let f = fixture();
    let auth = basic("shop", SHOP_SECRET);
    // A code redeemed by another client.
    let code = code_for_shop(&f).await;
    let body =
        format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&client_id=cli");
    let (status, v) = token(&f, &body, None).await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
    // Missing verifier.
    let code = code_for_shop(&f).await;
    let (status, v) = token(
        &f,
        &format!("grant_type=authorization_code&code={code}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
    // Wrong verifier.
    let code = code_for_shop(&f).await;
    let wrong = "x".repeat(43);
    let (status, v) = token(
        &f,
        &format!("grant_type=authorization_code&code={code}&code_verifier={wrong}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
    // redirect_uri sent in the authorization request must be repeated: a
    // required parameter missing is `invalid_request` (RFC 6749 §4.1.3,
    // §5.2).
    let loc = authorize(
        &f,
        "shop",
        "&redirect_uri=https%3A%2F%2Fshop.example%2Fcb",
        Decision::Allow,
    )
    .await;
    let code = query_param(&loc, "code").unwrap();
    let (status, v) = token(
        &f,
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_redemptions_yield_one_token() {
    let f = Arc::new(fixture());
    let code = code_for_shop(&f).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let f = Arc::clone(&f);
        let code = code.clone();
        tasks.push(tokio::spawn(async move { redeem(&f, &code).await.0 }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

/// A store on which a replay revokes the grant between the winner's take of
/// the code and the storing of its tokens: the narrowest race there is.
struct ReplayBetweenTakeAndIssue(MemoryStore);

#[async_trait::async_trait]
impl tessera::ClientRegistry for ReplayBetweenTakeAndIssue {
    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, tessera::StoreError> {
        self.0.client(id).await
    }
}

#[async_trait::async_trait]
impl tessera::storage::PendingStore for ReplayBetweenTakeAndIssue {
    async fn put_pending(
        &self,
        h: tessera::SecretKey,
        r: tessera::storage::PendingAuthorization,
    ) -> Result<(), tessera::StoreError> {
        self.0.put_pending(h, r).await
    }
    async fn get_pending(
        &self,
        h: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::PendingAuthorization>, tessera::StoreError> {
        self.0.get_pending(h, now).await
    }
    async fn take_pending(
        &self,
        h: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::PendingAuthorization>, tessera::StoreError> {
        self.0.take_pending(h, now).await
    }
}

#[async_trait::async_trait]
impl tessera::storage::GrantStore for ReplayBetweenTakeAndIssue {
    async fn put_code(
        &self,
        c: tessera::SecretKey,
        r: tessera::storage::CodeRecord,
    ) -> Result<(), tessera::StoreError> {
        self.0.put_code(c, r).await
    }
    async fn take_code(
        &self,
        c: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<tessera::storage::CodeTake, tessera::StoreError> {
        let taken = self.0.take_code(c, now).await?;
        // The replay: it finds the code taken and revokes the grant.
        assert_eq!(
            self.0.take_code(c, now).await?,
            tessera::storage::CodeTake::AlreadyTaken
        );
        self.0.revoke_grant(c.grant).await?;
        Ok(taken)
    }
    async fn issue(
        &self,
        g: tessera::GrantId,
        t: tessera::storage::NewTokens,
    ) -> Result<bool, tessera::StoreError> {
        self.0.issue(g, t).await
    }
    async fn access_token(
        &self,
        t: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::TokenRecord>, tessera::StoreError> {
        self.0.access_token(t, now).await
    }
    async fn refresh_token(
        &self,
        t: tessera::SecretKey,
        now: OffsetDateTime,
    ) -> Result<tessera::storage::RefreshLookup, tessera::StoreError> {
        self.0.refresh_token(t, now).await
    }
    async fn rotate_refresh(
        &self,
        o: tessera::SecretKey,
        t: tessera::storage::NewTokens,
        now: OffsetDateTime,
    ) -> Result<bool, tessera::StoreError> {
        self.0.rotate_refresh(o, t, now).await
    }
    async fn revoke_access_token(&self, t: tessera::SecretKey) -> Result<(), tessera::StoreError> {
        self.0.revoke_access_token(t).await
    }
    async fn revoke_grant(&self, g: tessera::GrantId) -> Result<(), tessera::StoreError> {
        self.0.revoke_grant(g).await
    }
}

/// RFC 6749 §4.1.2 denies the *second* use: the first still gets its answer
/// (tokens already revoked by the replay), so a race always has one winner.
#[tokio::test]
async fn replay_between_take_and_issue_still_answers_the_first_use() {
    let shop = Client::confidential(
        ClientId::new("shop").unwrap(),
        "Print Shop",
        SecretHash::of(SHOP_SECRET),
    )
    .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
    .with_grant_types(["authorization_code", "refresh_token"])
    .with_scope(Scope::parse("photos.read").unwrap());
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(ReplayBetweenTakeAndIssue(
            MemoryStore::with_clients([shop]),
        )))
        .build()
        .unwrap();
    let AuthorizeOutcome::Consent(p) = server
        .authorize(&auth_query("shop", ""), Some(&alice()))
        .await
    else {
        panic!()
    };
    let AuthorizeOutcome::Redirect(r) = server.decide(&p.handle, &alice(), Decision::Allow).await
    else {
        panic!()
    };
    let code = query_param(r.location(), "code").unwrap();
    let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    let response = server
        .handle(
            tessera::Endpoint::Token,
            &HttpRequest::form_post(&body, Some(&basic("shop", SHOP_SECRET))),
        )
        .await;
    assert_eq!(response.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let at = format!("Bearer {}", v["access_token"].as_str().unwrap());
    assert!(
        server.verify_bearer(Some(&at), None).await.is_err(),
        "the replay's revocation holds"
    );
}

#[async_trait::async_trait]
impl tessera::storage::DeviceStore for ReplayBetweenTakeAndIssue {
    async fn put_device(
        &self,
        device: tessera::SecretKey,
        user_code: tessera::TokenHash,
        record: tessera::storage::DeviceRecord,
        now: OffsetDateTime,
    ) -> Result<bool, tessera::StoreError> {
        self.0.put_device(device, user_code, record, now).await
    }
    async fn device_by_user_code(
        &self,
        user_code: tessera::TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<tessera::storage::DeviceRecord>, tessera::StoreError> {
        self.0.device_by_user_code(user_code, now).await
    }
    async fn decide_device(
        &self,
        user_code: tessera::TokenHash,
        decision: tessera::storage::DeviceStatus,
        now: OffsetDateTime,
    ) -> Result<bool, tessera::StoreError> {
        self.0.decide_device(user_code, decision, now).await
    }
    async fn poll_device(
        &self,
        device: tessera::SecretKey,
        client: &tessera::ClientId,
        now: OffsetDateTime,
    ) -> Result<tessera::storage::DevicePoll, tessera::StoreError> {
        self.0.poll_device(device, client, now).await
    }
}

#[async_trait::async_trait]
impl tessera::storage::ReplayStore for ReplayBetweenTakeAndIssue {
    async fn first_use(
        &self,
        key: tessera::storage::ReplayKey,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, tessera::StoreError> {
        tessera::storage::ReplayStore::first_use(&self.0, key, expires_at, now).await
    }
}

/// A grant registered as `authorization_code` replaces the built-in one at
/// the token endpoint: built-in grants run through the same `GrantHandler`
/// table as any other.
#[tokio::test]
async fn a_replaced_authorization_code_grant_is_the_one_that_runs() {
    struct Replacement;
    #[async_trait::async_trait]
    impl tessera::grant::GrantHandler for Replacement {
        fn grant_type(&self) -> &str {
            "authorization_code"
        }
        async fn exchange(
            &self,
            _: &tessera::grant::GrantContext<'_>,
            _: &Client,
            _: &tessera::Params,
        ) -> Result<tessera::grant::TokenResponse, tessera::OAuthError> {
            Err(tessera::OAuthError::invalid_request("the replacement ran"))
        }
    }
    let f = fixture_with(|b| b.grant(Replacement));
    let code = code_for_shop(&f).await;
    let (status, body) = redeem(&f, &code).await;
    assert_eq!((status, err(&body)), (400, "invalid_request"));
    assert_eq!(body["error_description"], "the replacement ran");
    // The built-in grant still answers where it is not replaced.
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (status, body) = redeem(&f, &code).await;
    assert_eq!(status, 200, "{body}");
}
