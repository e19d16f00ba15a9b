//! The token endpoint, `refresh_token` grant (RFC 6749 §6): rotation, reuse
//! detection (RFC 9700 §4.14), errors, and races on one refresh token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use time::Duration;

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_family_rfc9700_4_14() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (_, first) = redeem(&f, &code).await;
    let auth = basic("shop", SHOP_SECRET);
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt1}&scope=photos.read"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["scope"], "photos.read");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // The narrowed refresh keeps the original scope for the next refresh.
    let (status, third) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt2}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(third["scope"], "photos.read profile");
    // Reuse of rt1: the whole family dies.
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt1}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
    let rt3 = third["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt3}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 400);
    let at3 = format!("Bearer {}", third["access_token"].as_str().unwrap());
    assert!(f.server.verify_bearer(Some(&at3), None).await.is_err());
}

#[tokio::test]
async fn refresh_errors() {
    let f = fixture();
    let code = code_for_shop(&f).await;
    let (_, first) = redeem(&f, &code).await;
    let auth = basic("shop", SHOP_SECRET);
    let rt = first["refresh_token"].as_str().unwrap();
    let cases = [
        ("grant_type=refresh_token".to_owned(), "invalid_request"),
        (
            "grant_type=refresh_token&refresh_token=tsr_nope".to_owned(),
            "invalid_grant",
        ),
        (
            format!("grant_type=refresh_token&refresh_token={rt}&scope=photos.write"),
            "invalid_scope",
        ),
    ];
    for (body, code) in cases {
        let (status, v) = token(&f, &body, Some(&auth)).await;
        assert_eq!((status, err(&v)), (400, code), "{body}");
    }
    // Still usable after those failures.
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200);
    // Expired refresh token.
    f.clock.advance(Duration::days(31));
    let (status, v) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!((status, err(&v)), (400, "invalid_grant"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_refreshes_rotate_once_and_revoke_the_family() {
    let f = Arc::new(fixture());
    let (_, t) = redeem(&f, &code_for_shop(&f).await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let f = Arc::clone(&f);
        let body = format!("grant_type=refresh_token&refresh_token={rt}");
        tasks.push(tokio::spawn(async move {
            token(&f, &body, Some(&basic("shop", SHOP_SECRET))).await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        if status == 200 {
            winners.push(v);
        }
    }
    assert_eq!(winners.len(), 1);
    let newest = winners[0]["refresh_token"].as_str().unwrap();
    let (status, _) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={newest}"),
        Some(&basic("shop", SHOP_SECRET)),
    )
    .await;
    assert_eq!(
        status, 400,
        "the family must be revoked after concurrent reuse"
    );
}

/// A custom grant that delegates (an actor on its tokens, RFC 8693 §4.1)
/// and gives a refresh token: refreshing keeps the actor, so the refreshed
/// token does not pass for the user's own.
#[tokio::test]
async fn a_refresh_keeps_the_actor_of_a_delegated_grant() {
    struct Delegating;
    #[async_trait::async_trait]
    impl tessera::grant::GrantHandler for Delegating {
        fn grant_type(&self) -> &str {
            "authorization_code"
        }
        async fn exchange(
            &self,
            ctx: &tessera::grant::GrantContext<'_>,
            client: &tessera::Client,
            _: &tessera::Params,
        ) -> Result<tessera::grant::TokenResponse, tessera::OAuthError> {
            let grant = ctx.random.grant_id();
            let scope = tessera::Scope::parse("photos.read").unwrap();
            let minted = ctx
                .mint_tokens(grant, client, Some(&alice()), &scope, Some(&scope))
                .with_actor(tessera::storage::Actor::new("photo-api"));
            Ok(minted.issue(ctx.store, grant).await.unwrap().unwrap())
        }
    }
    let f = fixture_with(|b| b.grant(Delegating));
    let auth = basic("shop", SHOP_SECRET);
    let (status, first) = token(&f, "grant_type=authorization_code", Some(&auth)).await;
    assert_eq!(status, 200, "{first}");
    let rt = first["refresh_token"].as_str().unwrap();
    let actor = |v: &serde_json::Value| {
        let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
        let f = &f;
        async move {
            f.server
                .verify_bearer(Some(&bearer), None)
                .await
                .unwrap()
                .actor
                .map(|a| a.sub)
        }
    };
    assert_eq!(actor(&first).await.as_deref(), Some("photo-api"));
    let (status, second) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(actor(&second).await.as_deref(), Some("photo-api"));
    // And the next refresh token carries it on.
    let rt2 = second["refresh_token"].as_str().unwrap();
    let (status, third) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt2}"),
        Some(&auth),
    )
    .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(actor(&third).await.as_deref(), Some("photo-api"));
}

/// RFC 6749 §6: a refresh request carries `grant_type`, `refresh_token`
/// and `scope`; only a confidential client must authenticate. A public
/// client's refresh without `client_id` is served for the token's client
/// (and rotates, and its reuse is caught as ever, with or without
/// `client_id`); a confidential client's token without credentials, and
/// an unknown one, stay `401 invalid_client`.
#[tokio::test]
async fn a_public_client_refreshes_without_client_id_rfc6749_6() {
    let f = fixture();
    let redirect = "http%3A%2F%2F127.0.0.1%3A4567%2Fcallback";
    let query = auth_query("cli", &format!("&redirect_uri={redirect}"));
    let r = match f.server.authorize(&query, Some(&alice())).await {
        tessera::AuthorizeOutcome::Redirect(r) => r,
        tessera::AuthorizeOutcome::Consent(p) => {
            match f
                .server
                .decide(&p.handle, &alice(), tessera::Decision::Allow)
                .await
            {
                tessera::AuthorizeOutcome::Redirect(r) => r,
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    };
    let code = query_param(r.location(), "code").unwrap();
    let (status, first) = token(
        &f,
        &format!(
            "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&client_id=cli&redirect_uri={redirect}"
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt1}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    // The rotated-away token again, without client_id as with it, is
    // reuse: `invalid_grant`, and the family dies (RFC 9700 §4.14.2), so a
    // thief who refreshed first loses what it took.
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt1}"),
        None,
    )
    .await;
    assert_eq!((status, err(&body)), (400, "invalid_grant"));
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt2}&client_id=cli"),
        None,
    )
    .await;
    assert_eq!(
        (status, err(&body)),
        (400, "invalid_grant"),
        "the family is revoked"
    );
    let at2 = format!("Bearer {}", second["access_token"].as_str().unwrap());
    assert!(f.server.verify_bearer(Some(&at2), None).await.is_err());
    // A confidential client's refresh token still needs its credentials.
    let (_, shop) = redeem(&f, &code_for_shop(&f).await).await;
    let rt = shop["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &f,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        None,
    )
    .await;
    assert_eq!((status, err(&body)), (401, "invalid_client"));
    let (status, body) = token(
        &f,
        "grant_type=refresh_token&refresh_token=tsr_not-a-token",
        None,
    )
    .await;
    assert_eq!((status, err(&body)), (401, "invalid_client"));
    // Other grants still need the client named.
    let (status, _) = token(&f, "grant_type=client_credentials", None).await;
    assert_eq!(status, 401);
}
