//! Token exchange through the server's token endpoint (RFC 8693), on the
//! memory store: the happy path, every error path, and what the new token
//! is afterwards (introspection's `act`, bearer checks, revocation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;
use tessera::storage::{GrantStore, NewTokens, TokenRecord};
use tessera::{
    Client, ClientId, Endpoint, FixedClock, GrantId, HttpRequest, OsRandom, Random, Scope, Secret,
    SecretHash, Server, TokenKind,
};
use tessera_memory::MemoryStore;
use tessera_token_exchange::{
    ACCESS_TOKEN_TYPE, GRANT_TYPE, InvalidSubjectTokenError, TokenExchangeGrant,
};
use time::{Duration, OffsetDateTime};

const ENC_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange";
const ENC_AT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";

struct World {
    server: Server,
    store: Arc<MemoryStore>,
    clock: Arc<FixedClock>,
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn world_with(grant: TokenExchangeGrant) -> World {
    let api = Client::confidential(id("photo-api"), "API", SecretHash::of("api-secret"))
        .with_grant_types([GRANT_TYPE])
        .with_scope(Scope::parse("photos.read photos.write profile").unwrap())
        .with_introspect_any_token(true);
    let narrow = Client::confidential(id("narrow-api"), "Narrow", SecretHash::of("narrow-secret"))
        .with_grant_types([GRANT_TYPE])
        .with_scope(Scope::parse("photos.read").unwrap());
    let printshop = Client::confidential(id("printshop"), "PrintShop", SecretHash::of("ps-secret"))
        .with_grant_types(["authorization_code"])
        .with_scope(Scope::parse("photos.read profile").unwrap());
    let public = Client::public(id("public-app"), "Public").with_grant_types([GRANT_TYPE]);
    let store = Arc::new(MemoryStore::with_clients([api, narrow, printshop, public]));
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    ));
    let resource = |r: &str| tessera::ResourceIndicator::new(r).unwrap();
    let server = Server::builder()
        .issuer("https://as.example")
        .default_resource(resource("https://as.example/api"))
        .resource(resource("https://as.example/mcp"))
        .store(store.clone())
        .clock(clock.clone())
        .grant(grant)
        .build()
        .unwrap();
    World {
        server,
        store,
        clock,
    }
}

fn world() -> World {
    world_with(TokenExchangeGrant::new())
}

fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

impl World {
    /// Stores an access token as an earlier grant would have issued it.
    async fn subject_token(
        &self,
        client: &str,
        subject: Option<&str>,
        scope: &str,
        ttl: i64,
    ) -> (String, GrantId) {
        let grant = OsRandom.grant_id();
        let secret = Secret::mint(TokenKind::Access, grant, OsRandom.bytes32());
        let now = self.server.now();
        // From its JSON form, so this keeps compiling as records grow fields.
        let record: TokenRecord = serde_json::from_value(serde_json::json!({
            "client_id": client,
            "subject": subject,
            "scope": scope,
            "issued_at": now.unix_timestamp(),
            "expires_at": (now + Duration::seconds(ttl)).unix_timestamp(),
        }))
        .unwrap();
        let stored = self
            .store
            .issue(
                grant,
                NewTokens {
                    access: (secret.hash(), record),
                    refresh: None,
                },
            )
            .await
            .unwrap();
        assert!(stored);
        (secret.into_exposed(), grant)
    }

    async fn post(&self, endpoint: Endpoint, body: &str, auth: Option<&str>) -> (u16, Value) {
        let r = self
            .server
            .handle(endpoint, &HttpRequest::form_post(body, auth))
            .await;
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    async fn exchange_as(
        &self,
        who: (&str, &str),
        subject_token: &str,
        extra: &str,
    ) -> (u16, Value) {
        let body = format!(
            "grant_type={ENC_GRANT}&subject_token={subject_token}&subject_token_type={ENC_AT}{extra}"
        );
        self.post(Endpoint::Token, &body, Some(&basic(who.0, who.1)))
            .await
    }

    async fn exchange(&self, subject_token: &str, extra: &str) -> (u16, Value) {
        self.exchange_as(("photo-api", "api-secret"), subject_token, extra)
            .await
    }

    async fn introspect(&self, token: &str) -> Value {
        let (status, v) = self
            .post(
                Endpoint::Introspection,
                &format!("token={token}"),
                Some(&basic("photo-api", "api-secret")),
            )
            .await;
        assert_eq!(status, 200);
        v
    }
}

fn error(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["error"].as_str().unwrap_or("<none>"))
}

#[tokio::test]
async fn exchange_issues_a_narrower_token_for_the_same_user_rfc8693_2_2_1() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read profile", 3600)
        .await;
    let (status, v) = w.exchange(&subject, "&scope=photos.read").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "photos.read");
    assert!(v["expires_in"].as_i64().is_some_and(|e| e > 0));
    // §2.2.1: OPTIONAL; never issued (see the crate docs).
    assert!(v.get("refresh_token").is_none());
    let token = v["access_token"].as_str().unwrap();
    assert_ne!(token, subject);

    // §4.1: the actor shows at introspection.
    let i = w.introspect(token).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], "alice");
    assert_eq!(i["client_id"], "photo-api");
    assert_eq!(i["scope"], "photos.read");
    assert_eq!(i["act"], serde_json::json!({"sub": "photo-api"}));
    // The subject token itself is unchanged, and has no actor.
    let i = w.introspect(&subject).await;
    assert_eq!(i["active"], true);
    assert!(i.get("act").is_none());

    // A bearer token like any other, for alice, with the actor.
    let checked = w
        .server
        .verify_bearer(Some(&format!("Bearer {token}")), None)
        .await
        .unwrap();
    assert_eq!(checked.principal(), "alice");
    assert_eq!(checked.actor.map(|a| a.sub), Some("photo-api".to_owned()));
}

#[tokio::test]
async fn omitted_scope_is_the_subject_tokens() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read profile", 3600)
        .await;
    let (status, v) = w.exchange(&subject, "").await;
    assert_eq!(status, 200, "{v}");
    let mut scope: Vec<&str> = v["scope"].as_str().unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["photos.read", "profile"]);
}

#[tokio::test]
async fn wider_scope_is_invalid_scope() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    // Beyond the subject token (though within photo-api's registration).
    let r = w
        .exchange(&subject, "&scope=photos.read%20photos.write")
        .await;
    assert_eq!(error(&r), (400, "invalid_scope"));
    // Beyond the exchanging client's registration, omitted or asked for.
    let (wide, _) = w
        .subject_token("printshop", Some("alice"), "photos.read profile", 3600)
        .await;
    let narrow = ("narrow-api", "narrow-secret");
    let r = w.exchange_as(narrow, &wide, "").await;
    assert_eq!(error(&r), (400, "invalid_scope"));
    let r = w.exchange_as(narrow, &wide, "&scope=profile").await;
    assert_eq!(error(&r), (400, "invalid_scope"));
    let r = w.exchange_as(narrow, &wide, "&scope=photos.read").await;
    assert_eq!(r.0, 200, "{}", r.1);
}

#[tokio::test]
async fn inactive_subject_tokens_are_invalid_grant() {
    let w = world();
    // Unknown, or not a token at all.
    let (other, _) = {
        let grant = OsRandom.grant_id();
        let s = Secret::mint(TokenKind::Access, grant, OsRandom.bytes32());
        (s.into_exposed(), grant)
    };
    assert_eq!(error(&w.exchange(&other, "").await), (400, "invalid_grant"));
    assert_eq!(
        error(&w.exchange("not-a-token", "").await),
        (400, "invalid_grant")
    );
    // A refresh token is not an access token.
    let refresh = Secret::mint(TokenKind::Refresh, OsRandom.grant_id(), OsRandom.bytes32());
    assert_eq!(
        error(&w.exchange(refresh.expose(), "").await),
        (400, "invalid_grant")
    );
    // Revoked.
    let (revoked, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    let key = tessera::SecretKey::parse(TokenKind::Access, &revoked).unwrap();
    w.store.revoke_access_token(key).await.unwrap();
    assert_eq!(
        error(&w.exchange(&revoked, "").await),
        (400, "invalid_grant")
    );
    // Its grant revoked.
    let (in_revoked_grant, grant) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    w.store.revoke_grant(grant).await.unwrap();
    assert_eq!(
        error(&w.exchange(&in_revoked_grant, "").await),
        (400, "invalid_grant")
    );
    // Expired.
    let (expiring, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 60)
        .await;
    w.clock.advance(Duration::seconds(60));
    assert_eq!(
        error(&w.exchange(&expiring, "").await),
        (400, "invalid_grant")
    );
    // A client's own token (client credentials) has no user to act for:
    // live, but unacceptable by policy (RFC 8693 §2.2.2: `invalid_request`).
    let (cc, _) = w
        .subject_token("printshop", None, "photos.read", 3600)
        .await;
    assert_eq!(error(&w.exchange(&cc, "").await), (400, "invalid_request"));
}

#[tokio::test]
async fn the_rfc8693_letter_is_one_setting_away() {
    let w = world_with(
        TokenExchangeGrant::new()
            .invalid_subject_token_error(InvalidSubjectTokenError::InvalidRequest),
    );
    assert_eq!(
        error(&w.exchange("not-a-token", "").await),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn malformed_requests_are_invalid_request_rfc8693_2_2_2() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    let auth = basic("photo-api", "api-secret");
    let cases = [
        // Missing subject_token.
        format!("grant_type={ENC_GRANT}&subject_token_type={ENC_AT}"),
        // Missing subject_token_type.
        format!("grant_type={ENC_GRANT}&subject_token={subject}"),
        // Unsupported subject_token_type.
        format!(
            "grant_type={ENC_GRANT}&subject_token={subject}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
        ),
        // An actor token (not supported), and its type alone (§2.1 MUST NOT).
        format!(
            "grant_type={ENC_GRANT}&subject_token={subject}&subject_token_type={ENC_AT}&actor_token={subject}&actor_token_type={ENC_AT}"
        ),
        format!(
            "grant_type={ENC_GRANT}&subject_token={subject}&subject_token_type={ENC_AT}&actor_token_type={ENC_AT}"
        ),
        // A token type it cannot issue.
        format!(
            "grant_type={ENC_GRANT}&subject_token={subject}&subject_token_type={ENC_AT}&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"
        ),
        // A repeated parameter (RFC 6749 §3.2).
        format!(
            "grant_type={ENC_GRANT}&subject_token={subject}&subject_token={subject}&subject_token_type={ENC_AT}"
        ),
    ];
    for body in &cases {
        let r = w.post(Endpoint::Token, body, Some(&auth)).await;
        assert_eq!(error(&r), (400, "invalid_request"), "{body}");
    }
}

#[tokio::test]
async fn resource_names_a_known_resource_rfc8707_and_audience_is_invalid_target() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    // Omitted: the default resource.
    let (status, v) = w.exchange(&subject, "").await;
    assert_eq!(status, 200, "{v}");
    let i = w.introspect(v["access_token"].as_str().unwrap()).await;
    assert_eq!(i["aud"], "https://as.example/api");
    // Another known resource: the new token is for it.
    let (status, v) = w
        .exchange(&subject, "&resource=https%3A%2F%2Fas.example%2Fmcp")
        .await;
    assert_eq!(status, 200, "{v}");
    let i = w.introspect(v["access_token"].as_str().unwrap()).await;
    assert_eq!(i["aud"], "https://as.example/mcp");
    // Unknown, malformed, several: invalid_target; so is a logical audience.
    for extra in [
        "&resource=https%3A%2F%2Fother.example%2Fapi",
        "&resource=api",
        "&resource=https%3A%2F%2Fas.example%2Fapi&resource=https%3A%2F%2Fas.example%2Fmcp",
        "&audience=photo-api",
    ] {
        let r = w.exchange(&subject, extra).await;
        assert_eq!(error(&r), (400, "invalid_target"), "{extra}");
    }
}

#[tokio::test]
async fn other_clients_are_unauthorized_client() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    // Not registered for the grant: refused by the server before the grant runs.
    let r = w
        .exchange_as(("printshop", "ps-secret"), &subject, "")
        .await;
    assert_eq!(error(&r), (400, "unauthorized_client"));
    // Registered, but public: nobody to name as the actor.
    let body = format!(
        "grant_type={ENC_GRANT}&subject_token={subject}&subject_token_type={ENC_AT}&client_id=public-app"
    );
    let r = w.post(Endpoint::Token, &body, None).await;
    assert_eq!(error(&r), (400, "unauthorized_client"));
    // Unauthenticated: invalid_client, as at every grant.
    let body =
        format!("grant_type={ENC_GRANT}&subject_token={subject}&subject_token_type={ENC_AT}");
    let r = w.post(Endpoint::Token, &body, None).await;
    assert_eq!(error(&r), (401, "invalid_client"));
}

#[tokio::test]
async fn the_new_token_never_outlives_the_subject_token() {
    let w = world();
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 90)
        .await;
    let (status, v) = w.exchange(&subject, "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["expires_in"], 90);
    let token = v["access_token"].as_str().unwrap().to_owned();
    w.clock.advance(Duration::seconds(90));
    assert_eq!(w.introspect(&token).await["active"], false);
}

#[tokio::test]
async fn revoking_the_subjects_grant_revokes_the_exchanged_token() {
    let w = world();
    let (subject, grant) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    let (_, v) = w.exchange(&subject, "").await;
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.introspect(&token).await["active"], true);
    w.store.revoke_grant(grant).await.unwrap();
    assert_eq!(w.introspect(&token).await["active"], false);
}

#[tokio::test]
async fn exchanging_again_nests_the_prior_actor_and_the_chain_is_bounded_rfc8693_4_1() {
    let w = world_with(TokenExchangeGrant::new().max_delegation_depth(2));
    let (subject, _) = w
        .subject_token("printshop", Some("alice"), "photos.read", 3600)
        .await;
    let (_, first) = w.exchange(&subject, "").await;
    let first = first["access_token"].as_str().unwrap().to_owned();
    let (status, second) = w
        .exchange_as(("narrow-api", "narrow-secret"), &first, "")
        .await;
    assert_eq!(status, 200, "{second}");
    let second = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        w.introspect(&second).await["act"],
        serde_json::json!({"sub": "narrow-api", "act": {"sub": "photo-api"}})
    );
    // A third actor would make the chain longer than allowed.
    let r = w.exchange(&second, "").await;
    assert_eq!(error(&r), (400, "invalid_request"));
}

#[tokio::test]
async fn metadata_lists_the_grant() {
    let w = world();
    assert!(
        w.server
            .metadata()
            .grant_types_supported
            .iter()
            .any(|g| g == GRANT_TYPE)
    );
}
