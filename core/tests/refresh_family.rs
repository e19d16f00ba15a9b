//! A refresh token family ends at an absolute time, however often it is
//! rotated (issue 11; RFC 9700 §4.14.2, RFC 6819 §5.2.2.3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use tessera::{
    AuthorizeOutcome, Client, ClientId, CodeChallenge, Decision, FixedClock, HttpRequest,
    Lifetimes, Reason, RedirectUri, Scope, SecretHash, Server, Subject,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[tokio::test]
async fn rotation_never_outlives_the_family() {
    let shop = Client::confidential(ClientId::new("shop").unwrap(), "Shop", SecretHash::of("s"))
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code", "refresh_token"])
        .with_scope(Scope::parse("read").unwrap());
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let server = Server::builder()
        .issuer("https://as.example")
        .store(Arc::new(MemoryStore::with_clients([shop])))
        .clock(clock.clone())
        .lifetimes(
            Lifetimes::default()
                .with_refresh_token(Duration::days(30))
                .with_refresh_family(Duration::days(90)),
        )
        .build()
        .unwrap();
    let owner = Subject::new("alice");
    let query = format!(
        "response_type=code&client_id=shop&code_challenge={}&code_challenge_method=S256",
        CodeChallenge::s256(VERIFIER)
    );
    let AuthorizeOutcome::Consent(p) = server.authorize(&query, Some(&owner)).await else {
        panic!()
    };
    let AuthorizeOutcome::Redirect(r) = server.decide(&p.handle, &owner, Decision::Allow).await
    else {
        panic!()
    };
    let code = url::form_urlencoded::parse(r.location().split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop:s")
    );
    let token = |body: String| {
        let server = server.clone();
        let auth = auth.clone();
        async move {
            server
                .token_response(&HttpRequest::form_post(&body, Some(&auth)))
                .await
        }
    };
    let first = token(format!(
        "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"
    ))
    .await
    .unwrap();
    let mut refresh = first.refresh_token.clone().unwrap();
    // Three rotations 29 days apart: each within the token's 30 days.
    for _ in 0..3 {
        clock.advance(Duration::days(29));
        let next = token(format!("grant_type=refresh_token&refresh_token={refresh}"))
            .await
            .unwrap();
        refresh = next.refresh_token.clone().unwrap();
    }
    // 87 days in; the newest token would live to day 117, but the family
    // ends on day 90.
    clock.advance(Duration::days(3));
    let e = token(format!("grant_type=refresh_token&refresh_token={refresh}"))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::RefreshTokenUnknown);
}
