//! DPoP (RFC 9449) through the server: bound tokens at the token endpoint
//! (§5), refresh token binding (§5), introspection (§6.2), resource
//! requests (§7) and server nonces (§8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod dpop_client;

use common::{Fixture, VERIFIER, alice, auth_query, basic, fixture, fixture_with, query_param};
use dpop_client::DpopKey;
use tessera::{
    AuthorizeOutcome, BearerError, Decision, DpopError, DpopFacts, DpopPolicy, Endpoint, ErrorCode,
    HttpRequest, HttpResponse, Reason,
};

const API: &str = "https://as.example/api/photos";

fn token_url(f: &Fixture) -> String {
    f.server.endpoint_url(Endpoint::Token).unwrap()
}

async fn token_with(
    f: &Fixture,
    body: &str,
    auth: Option<&str>,
    proof: Option<&str>,
) -> (HttpResponse, serde_json::Value) {
    let r = f
        .server
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post(body, auth).with_dpop(proof),
        )
        .await;
    let v = serde_json::from_slice(&r.body).unwrap();
    (r, v)
}

async fn client_credentials(f: &Fixture, proof: Option<&str>) -> (HttpResponse, serde_json::Value) {
    token_with(
        f,
        "grant_type=client_credentials",
        Some(&basic("job", "job-secret")),
        proof,
    )
    .await
}

/// A code for the public client `cli` (login, consent, allow).
async fn code_for_cli(f: &Fixture) -> String {
    code_for_cli_with(f, "").await
}

/// A code for `cli` with `more` authorization request parameters.
async fn code_for_cli_with(f: &Fixture, more: &str) -> String {
    let extra = format!("&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback{more}");
    let extra = extra.as_str();
    let login = match f.server.authorize(&auth_query("cli", extra), None).await {
        AuthorizeOutcome::Login(p) => p.handle,
        other => panic!("expected login, got {other:?}"),
    };
    let location = match f.server.resume(&login, &alice()).await {
        AuthorizeOutcome::Consent(p) => {
            match f.server.decide(&p.handle, &alice(), Decision::Allow).await {
                AuthorizeOutcome::Redirect(r) => r.location().to_owned(),
                other => panic!("expected redirect, got {other:?}"),
            }
        }
        AuthorizeOutcome::Redirect(r) => r.location().to_owned(),
        other => panic!("expected consent, got {other:?}"),
    };
    query_param(&location, "code").unwrap()
}

async fn introspect(f: &Fixture, token: &str) -> serde_json::Value {
    let r = f
        .server
        .handle(
            Endpoint::Introspection,
            &HttpRequest::form_post(&format!("token={token}"), Some(&basic("api", "api-secret"))),
        )
        .await;
    serde_json::from_slice(&r.body).unwrap()
}

async fn resource(
    f: &Fixture,
    authorization: &str,
    proof: Option<&str>,
) -> Result<tessera::AccessToken, BearerError> {
    f.server
        .verify_access_at(
            "/api/photos",
            Some(authorization),
            None,
            Some(DpopFacts::new("GET", "/api/photos?page=2", proof)),
        )
        .await
}

fn dpop_reason(e: BearerError) -> Reason {
    match e {
        BearerError::Dpop(e) => e.reason(),
        other => panic!("expected a DPoP proof error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_proof_at_the_token_endpoint_binds_the_access_token() {
    let f = fixture();
    let key = DpopKey::es256();
    let proof = key.proof("POST", &token_url(&f), None);
    let (r, v) = client_credentials(&f, Some(&proof)).await;
    assert_eq!(r.status, 200, "{v}");
    // §5: token_type DPoP.
    assert_eq!(v["token_type"], "DPoP");
    let at = v["access_token"].as_str().unwrap();
    // §6.2: introspection shows the binding and the type.
    let i = introspect(&f, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.thumbprint());
    // Without a proof: a bearer token, as before.
    let (_, v) = client_credentials(&f, None).await;
    assert_eq!(v["token_type"], "Bearer");
    let i = introspect(&f, v["access_token"].as_str().unwrap()).await;
    assert!(i.get("cnf").is_none());
    assert_eq!(i["token_type"], "Bearer");
}

#[tokio::test]
async fn a_bad_or_replayed_proof_at_the_token_endpoint_is_400_invalid_dpop_proof() {
    let f = fixture();
    let key = DpopKey::ed25519();
    let proof = key.proof("POST", &token_url(&f), None);
    let (r, _) = client_credentials(&f, Some(&proof)).await;
    assert_eq!(r.status, 200);
    // §11.1: the same proof again.
    let (r, v) = client_credentials(&f, Some(&proof)).await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // A proof for another URI, another method, garbage.
    for bad in [
        key.proof("POST", "https://as.example/other", None),
        key.proof("GET", &token_url(&f), None),
        "not-a-proof".to_owned(),
    ] {
        let (r, v) = client_credentials(&f, Some(&bad)).await;
        assert_eq!(
            (r.status, v["error"].as_str()),
            (400, Some("invalid_dpop_proof"))
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn a_bound_token_needs_its_proof_at_the_resource() {
    let f = fixture();
    let key = DpopKey::es256();
    let (_, v) = client_credentials(&f, Some(&key.proof("POST", &token_url(&f), None))).await;
    let at = v["access_token"].as_str().unwrap().to_owned();
    let dpop = format!("DPoP {at}");

    // §7.1: DPoP scheme, a proof for this request, ath of the token.
    let proof = key.proof("GET", API, Some(&at));
    let token = resource(&f, &dpop, Some(&proof)).await.unwrap();
    assert_eq!(token.dpop_jkt.as_deref(), Some(key.thumbprint().as_str()));
    // The same proof again: a replay (§11.1).
    assert_eq!(
        dpop_reason(resource(&f, &dpop, Some(&proof)).await.unwrap_err()),
        Reason::DpopReplayed
    );
    // A stolen token, presented as a bearer token (§7.2).
    let e = resource(&f, &format!("Bearer {at}"), None)
        .await
        .unwrap_err();
    assert_eq!(e, BearerError::DpopBound);
    assert_eq!(e.status(), 401);
    let challenge = e.challenge("photos");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains("algs=\"ES256 EdDSA Ed25519\""),
        "{challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // ... and with the thief's own key (§4.3 item 12).
    let thief = DpopKey::es256();
    let e = resource(&f, &dpop, Some(&thief.proof("GET", API, Some(&at))))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    assert!(
        e.challenge("photos")
            .contains("error=\"invalid_dpop_proof\"")
    );
    assert_eq!(dpop_reason(e), Reason::DpopKeyMismatch);
    // Without a proof, with a proof without ath or for another URI/method.
    for (proof, reason) in [
        (None, Reason::DpopProofMissing),
        (Some(key.proof("GET", API, None)), Reason::DpopAthMismatch),
        (
            Some(key.proof("GET", "https://as.example/api/other", Some(&at))),
            Reason::DpopUriMismatch,
        ),
        (
            Some(key.proof("POST", API, Some(&at))),
            Reason::DpopMethodMismatch,
        ),
    ] {
        let e = resource(&f, &dpop, proof.as_deref()).await.unwrap_err();
        assert_eq!(dpop_reason(e), reason);
    }
    // An adapter that passes no DPoP facts cannot accept a bound token.
    let e = f
        .server
        .verify_bearer_at("/api/photos", Some(&dpop), None)
        .await
        .unwrap_err();
    assert_eq!(dpop_reason(e), Reason::DpopProofMissing);
}

#[tokio::test]
async fn a_bearer_token_is_not_accepted_with_the_dpop_scheme() {
    let f = fixture();
    let (_, v) = client_credentials(&f, None).await;
    let at = v["access_token"].as_str().unwrap();
    let key = DpopKey::es256();
    let e = resource(
        &f,
        &format!("DPoP {at}"),
        Some(&key.proof("GET", API, Some(at))),
    )
    .await
    .unwrap_err();
    assert_eq!(e, BearerError::NotDpopBound);
    // The answer says what is wrong with the request (an unbound token),
    // with a DPoP challenge since the request used that scheme.
    let error = e.oauth_error().unwrap();
    assert_eq!(error.code, ErrorCode::InvalidToken);
    assert!(
        error
            .description
            .as_deref()
            .unwrap_or("")
            .contains("not bound"),
        "{error:?}"
    );
    assert!(
        e.challenge("photobook").starts_with("DPoP "),
        "{}",
        e.challenge("photobook")
    );
    // It still works as what it is.
    resource(&f, &format!("Bearer {at}"), None).await.unwrap();
}

#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_its_key() {
    let f = fixture();
    let key = DpopKey::es256();
    let url = token_url(&f);
    let code = code_for_cli(&f).await;
    let body = format!(
        "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"
    );
    let (r, v) = token_with(&f, &body, None, Some(&key.proof("POST", &url, None))).await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let body = format!("grant_type=refresh_token&refresh_token={refresh}&client_id=cli");
    // §5: without a proof, or with another key's, the refresh token is no good.
    let (r, v) = token_with(&f, &body, None, None).await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let other = DpopKey::es256();
    let (r, v) = token_with(&f, &body, None, Some(&other.proof("POST", &url, None))).await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // With its key: new tokens, still bound.
    let (r, v) = token_with(&f, &body, None, Some(&key.proof("POST", &url, None))).await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let i = introspect(&f, v["access_token"].as_str().unwrap()).await;
    assert_eq!(i["cnf"]["jkt"], key.thumbprint());
    let next = v["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&refresh_token={next}&client_id=cli");
    let (r, v) = token_with(&f, &body, None, None).await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_confidential_clients_refresh_token_is_not_bound() {
    let f = fixture();
    let key = DpopKey::es256();
    let url = token_url(&f);
    let code = common::code_for_shop(&f).await;
    let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    let shop = basic("shop", common::SHOP_SECRET);
    let (r, v) = token_with(&f, &body, Some(&shop), Some(&key.proof("POST", &url, None))).await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    // §5: the client authenticates; its refresh token needs no proof, and
    // the new access token is a bearer token without one.
    let refresh = v["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&refresh_token={refresh}");
    let (r, v) = token_with(&f, &body, Some(&shop), None).await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
}

#[tokio::test]
async fn server_nonces_are_required_when_configured() {
    let f = fixture_with(|b| {
        b.dpop(DpopPolicy::new().with_nonces([3; 32], time::Duration::minutes(5)))
    });
    let key = DpopKey::es256();
    let url = token_url(&f);
    // §8: use_dpop_nonce, with the nonce in DPoP-Nonce.
    let (r, v) = client_credentials(&f, Some(&key.proof("POST", &url, None))).await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let nonce = r.header("dpop-nonce").unwrap().to_owned();
    let (r, v) =
        client_credentials(&f, Some(&key.proof_with_nonce("POST", &url, None, &nonce))).await;
    assert_eq!(r.status, 200, "{v}");
    // §9: at the resource, too: 401 use_dpop_nonce with the header.
    let at = v["access_token"].as_str().unwrap();
    let e = resource(
        &f,
        &format!("DPoP {at}"),
        Some(&key.proof("GET", API, Some(at))),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, BearerError::Dpop(DpopError::UseNonce { .. })));
    let http = e.to_http("photos");
    assert_eq!(http.status, 401);
    assert!(http.header("dpop-nonce").is_some());
    assert_eq!(e.code(), Some(ErrorCode::UseDpopNonce));
    let proof = key.proof_with_nonce("GET", API, Some(at), http.header("dpop-nonce").unwrap());
    resource(&f, &format!("DPoP {at}"), Some(&proof))
        .await
        .unwrap();
}

#[tokio::test]
async fn metadata_lists_the_dpop_algorithms() {
    let f = fixture();
    let m = serde_json::to_value(f.server.metadata()).unwrap();
    assert_eq!(
        m["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA", "Ed25519"])
    );
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_a_key() {
    // RFC 9449 §10: the authorization request names the key's thumbprint;
    // the code is good only with a proof by that key.
    let f = fixture();
    let key = DpopKey::es256();
    let url = token_url(&f);
    let redeem = |code: String| {
        format!(
            "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&client_id=cli&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"
        )
    };
    let bound = format!("&dpop_jkt={}", key.thumbprint());
    let code = code_for_cli_with(&f, &bound).await;
    let (r, v) = token_with(&f, &redeem(code), None, None).await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = code_for_cli_with(&f, &bound).await;
    let other = DpopKey::es256();
    let (r, v) = token_with(
        &f,
        &redeem(code),
        None,
        Some(&other.proof("POST", &url, None)),
    )
    .await;
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let code = code_for_cli_with(&f, &bound).await;
    let (r, v) = token_with(
        &f,
        &redeem(code),
        None,
        Some(&key.proof("POST", &url, None)),
    )
    .await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    // A malformed dpop_jkt is invalid_request, at the redirect URI.
    let query = auth_query(
        "cli",
        "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&dpop_jkt=not-a-thumbprint",
    );
    match f.server.authorize(&query, None).await {
        AuthorizeOutcome::Redirect(r) => {
            assert_eq!(
                query_param(r.location(), "error").as_deref(),
                Some("invalid_request")
            );
        }
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

/// RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens`
/// "MUST" have its token requests without a `DPoP` header rejected:
/// `400 invalid_dpop_proof`, nothing issued; with a proof it gets bound
/// tokens. Another client without the flag still may go without.
#[tokio::test]
async fn a_client_registered_for_dpop_needs_a_proof_at_the_token_endpoint_rfc9449_5_2() {
    let bound = tessera::Client::confidential(
        tessera::ClientId::new("bound").unwrap(),
        "Bound",
        tessera::SecretHash::of("bound-secret"),
    )
    .with_grant_types(["client_credentials"])
    .with_scope(tessera::Scope::parse("photos.read").unwrap())
    .with_dpop_bound_access_tokens(true);
    let job = tessera::Client::confidential(
        tessera::ClientId::new("job").unwrap(),
        "Job",
        tessera::SecretHash::of("job-secret"),
    )
    .with_grant_types(["client_credentials"])
    .with_scope(tessera::Scope::parse("photos.read").unwrap());
    let f = fixture_with(|b| {
        b.store(std::sync::Arc::new(
            tessera_memory::MemoryStore::with_clients([bound, job]),
        ))
    });
    let auth = basic("bound", "bound-secret");
    let (r, v) = token_with(&f, "grant_type=client_credentials", Some(&auth), None).await;
    assert_eq!(r.status, 400, "{v}");
    assert_eq!(v["error"], "invalid_dpop_proof");
    assert!(v.get("access_token").is_none());
    let key = DpopKey::es256();
    let proof = key.proof("POST", &token_url(&f), None);
    let (r, v) = token_with(
        &f,
        "grant_type=client_credentials",
        Some(&auth),
        Some(&proof),
    )
    .await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let (r, v) = client_credentials(&f, None).await;
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
}
