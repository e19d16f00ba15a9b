//! Resource indicators (RFC 8707) and protected resource metadata (RFC 9728)
//! through the core's endpoints: every `invalid_target` path, the audience
//! carried from the authorization request to the code, the tokens and every
//! refresh, `aud` at introspection, and a resource server refusing a token
//! for another resource.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine;
use tessera::{
    AuthorizeOutcome, BearerError, BuildError, Client, ClientId, CodeChallenge, Decision, Endpoint,
    ErrorCode, HttpRequest, ProtectedResource, Reason, RedirectUri, ResourceIndicator, Scope,
    SecretHash, Server, Subject,
};
use tessera_memory::MemoryStore;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const ISSUER: &str = "https://as.example";
const API: &str = "https://as.example/api";
const MCP: &str = "https://as.example/mcp";
const API_ENC: &str = "https%3A%2F%2Fas.example%2Fapi";
const MCP_ENC: &str = "https%3A%2F%2Fas.example%2Fmcp";

fn r(uri: &str) -> ResourceIndicator {
    ResourceIndicator::new(uri).unwrap()
}

fn server() -> Server {
    let shop = |id: &str| {
        Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of("s"))
            .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
            .with_grant_types([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code",
            ])
            .with_scope(Scope::parse("photos.read").unwrap())
    };
    Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([
            shop("shop"),
            // Only the MCP server: the default resource is not for it.
            shop("mcp-only").with_resources([r(MCP)]),
            shop("api").with_introspect_any_token(true),
        ])))
        .default_resource(r(API))
        .protected_resource(
            ProtectedResource::new(r(MCP))
                .unwrap()
                .with_scopes(Scope::parse("photos.read").unwrap()),
        )
        .protected_resource(ProtectedResource::new(r(API)).unwrap())
        .enable_device_grant()
        .build()
        .unwrap()
}

fn basic(id: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:s"))
    )
}

async fn token(s: &Server, client: &str, body: &str) -> (u16, serde_json::Value) {
    let r = s
        .handle(
            Endpoint::Token,
            &HttpRequest::form_post(body, Some(&basic(client))),
        )
        .await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

fn auth_query(client: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client}&state=s&code_challenge={}&code_challenge_method=S256{extra}",
        CodeChallenge::s256(VERIFIER)
    )
}

/// Runs the authorization endpoint as alice and allows: the code, or the
/// redirect's error.
async fn code(s: &Server, client: &str, extra: &str) -> Result<String, String> {
    let alice = Subject::new("alice");
    let location = match s.authorize(&auth_query(client, extra), Some(&alice)).await {
        AuthorizeOutcome::Consent(p) => match s.decide(&p.handle, &alice, Decision::Allow).await {
            AuthorizeOutcome::Redirect(r) => r.location().to_owned(),
            other => panic!("{other:?}"),
        },
        AuthorizeOutcome::Redirect(r) => r.location().to_owned(),
        other => panic!("{other:?}"),
    };
    let url = url::Url::parse(&location).unwrap();
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    match get("code") {
        Some(c) => Ok(c),
        None => Err(get("error").unwrap()),
    }
}

async fn introspect_aud(s: &Server, token: &str) -> Option<String> {
    let body = format!("token={token}");
    let r = s
        .handle(
            Endpoint::Introspection,
            &HttpRequest::form_post(&body, Some(&basic("api"))),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["active"], true, "{v}");
    v["aud"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn code_flow_carries_the_resource_to_tokens_and_refreshes_rfc8707_2() {
    let s = server();
    let c = code(&s, "shop", &format!("&resource={MCP_ENC}"))
        .await
        .unwrap();
    // The token request may repeat the authorization request's resource.
    let (status, body) = token(
        &s,
        "shop",
        &format!(
            "grant_type=authorization_code&code={c}&code_verifier={VERIFIER}&resource={MCP_ENC}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect_aud(&s, &access).await.as_deref(), Some(MCP));
    assert_eq!(introspect_aud(&s, &refresh).await.as_deref(), Some(MCP));

    // A refresh may omit the resource (the audience stays)...
    let (status, body) = token(
        &s,
        "shop",
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect_aud(&s, &access).await.as_deref(), Some(MCP));
    // ...or repeat it...
    let (status, body) = token(
        &s,
        "shop",
        &format!("grant_type=refresh_token&refresh_token={refresh}&resource={MCP_ENC}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    // ...but not name another: invalid_target, and the token stays usable.
    let (status, body) = token(
        &s,
        "shop",
        &format!("grant_type=refresh_token&refresh_token={refresh}&resource={API_ENC}"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (status, _) = token(
        &s,
        "shop",
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(status, 200);
}

/// A refresh renews the grant's audience only while the client may still
/// use it: taking the resource from the client ends the family's renewals
/// with `invalid_target` (RFC 8707 §2), where they went on for months.
#[tokio::test]
async fn a_refresh_needs_the_resource_still_allowed_rfc8707_2() {
    let shop = || {
        Client::confidential(ClientId::new("shop").unwrap(), "shop", SecretHash::of("s"))
            .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
            .with_grant_types(["authorization_code", "refresh_token"])
            .with_scope(Scope::parse("photos.read").unwrap())
    };
    let store = Arc::new(MemoryStore::with_clients([shop()]));
    let s = Server::builder()
        .issuer(ISSUER)
        .store(store.clone())
        .default_resource(r(API))
        .resource(r(MCP))
        .build()
        .unwrap();
    let c = code(&s, "shop", &format!("&resource={MCP_ENC}"))
        .await
        .unwrap();
    let (_, body) = token(
        &s,
        "shop",
        &format!("grant_type=authorization_code&code={c}&code_verifier={VERIFIER}"),
    )
    .await;
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    // The operator takes the MCP server from the client.
    store.insert_client(shop().with_resources([r(API)]));
    let (status, body) = token(
        &s,
        "shop",
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
}

#[tokio::test]
async fn omitted_resource_is_the_default_resource() {
    let s = server();
    let c = code(&s, "shop", "").await.unwrap();
    let (status, body) = token(
        &s,
        "shop",
        &format!("grant_type=authorization_code&code={c}&code_verifier={VERIFIER}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(API));
    // Client credentials: the default, or the one asked for.
    let (_, body) = token(&s, "shop", "grant_type=client_credentials").await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(API));
    let (_, body) = token(
        &s,
        "shop",
        &format!("grant_type=client_credentials&resource={MCP_ENC}"),
    )
    .await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(MCP));
}

#[tokio::test]
async fn authorization_endpoint_answers_invalid_target_at_the_redirect_uri() {
    let s = server();
    for extra in [
        "&resource=%2Fapi".to_owned(), // not absolute
        "&resource=https%3A%2F%2Fas.example%2Fapi%23f".to_owned(), // fragment
        "&resource=https%3A%2F%2Fevil.example%2F".to_owned(), // unknown
        format!("&resource={API_ENC}&resource={MCP_ENC}"), // several
        format!("&resource={API_ENC}&resource={API_ENC}"), // several, the same
    ] {
        assert_eq!(
            code(&s, "shop", &extra).await,
            Err("invalid_target".into()),
            "{extra}"
        );
    }
    // Not allowed for the client, explicitly or by default.
    assert_eq!(
        code(&s, "mcp-only", &format!("&resource={API_ENC}")).await,
        Err("invalid_target".into())
    );
    assert_eq!(code(&s, "mcp-only", "").await, Err("invalid_target".into()));
    assert!(
        code(&s, "mcp-only", &format!("&resource={MCP_ENC}"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn token_endpoint_refuses_another_resource_than_the_codes() {
    let s = server();
    for (auth_extra, token_extra) in [
        (
            format!("&resource={MCP_ENC}"),
            format!("&resource={API_ENC}"),
        ),
        // The default resource was granted: naming another is a change too.
        (String::new(), format!("&resource={MCP_ENC}")),
        (String::new(), "&resource=%2Fx".to_owned()),
        (
            String::new(),
            format!("&resource={API_ENC}&resource={API_ENC}"),
        ),
    ] {
        let c = code(&s, "shop", &auth_extra).await.unwrap();
        let (status, body) = token(
            &s,
            "shop",
            &format!(
                "grant_type=authorization_code&code={c}&code_verifier={VERIFIER}{token_extra}"
            ),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_target")),
            "{token_extra}"
        );
    }
    // The default resource repeated is the same audience.
    let c = code(&s, "shop", "").await.unwrap();
    let (status, _) = token(
        &s,
        "shop",
        &format!(
            "grant_type=authorization_code&code={c}&code_verifier={VERIFIER}&resource={API_ENC}"
        ),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn client_credentials_and_pushed_requests_check_the_resource() {
    let s = server();
    for body in [
        "grant_type=client_credentials&resource=https%3A%2F%2Fevil.example%2F".to_owned(),
        "grant_type=client_credentials&resource=relative".to_owned(),
        format!("grant_type=client_credentials&resource={API_ENC}&resource={MCP_ENC}"),
    ] {
        let (status, v) = token(&s, "shop", &body).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_target")),
            "{body}"
        );
    }
    let (status, v) = token(&s, "mcp-only", "grant_type=client_credentials").await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_target")));
    // RFC 9126 §2.3: the pushed request's errors are JSON.
    let body = format!(
        "{}&resource=https%3A%2F%2Fevil.example%2F",
        auth_query("shop", "")
    );
    let r = s
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(&body, Some(&basic("shop"))),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // A pushed request's resource reaches the code.
    let body = format!("{}&resource={MCP_ENC}", auth_query("shop", ""));
    let r = s
        .handle(
            Endpoint::PushedAuthorization,
            &HttpRequest::form_post(&body, Some(&basic("shop"))),
        )
        .await;
    assert_eq!(r.status, 201);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let uri = v["request_uri"].as_str().unwrap();
    let alice = Subject::new("alice");
    let q = format!(
        "client_id=shop&request_uri={}",
        url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
    );
    let AuthorizeOutcome::Consent(p) = s.authorize(&q, Some(&alice)).await else {
        panic!()
    };
    let AuthorizeOutcome::Redirect(redirect) = s.decide(&p.handle, &alice, Decision::Allow).await
    else {
        panic!()
    };
    let url = url::Url::parse(redirect.location()).unwrap();
    let c = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (_, v) = token(
        &s,
        "shop",
        &format!("grant_type=authorization_code&code={c}&code_verifier={VERIFIER}"),
    )
    .await;
    let access = v["access_token"].as_str().unwrap();
    assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(MCP));
}

#[tokio::test]
async fn a_resource_server_refuses_tokens_for_another_resource() {
    let s = server();
    let (_, v) = token(
        &s,
        "shop",
        &format!("grant_type=client_credentials&resource={MCP_ENC}"),
    )
    .await;
    let header = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let auth = Some(header.as_str());
    assert!(s.verify_bearer_for(&r(MCP), auth, None).await.is_ok());
    let e = s.verify_bearer_for(&r(API), auth, None).await.unwrap_err();
    assert_eq!(e, BearerError::WrongAudience);
    assert_eq!((e.status(), e.code()), (401, Some(ErrorCode::InvalidToken)));
    assert_eq!(e.oauth_error().unwrap().reason(), Reason::AudienceMismatch);
    // By path: the declared resource containing it.
    assert!(s.verify_bearer_at("/mcp", auth, None).await.is_ok());
    assert!(s.verify_bearer_at("/mcp/x", auth, None).await.is_ok());
    assert_eq!(
        s.verify_bearer_at("/api/photos", auth, None)
            .await
            .unwrap_err(),
        BearerError::WrongAudience
    );
    // A path of no declared resource is the default resource's (as a
    // token requested without `resource` is): another resource's token is
    // refused there too, not taken by a route nobody declared.
    assert_eq!(
        s.verify_bearer_at("/other", auth, None).await.unwrap_err(),
        BearerError::WrongAudience
    );
    let token = s.verify_bearer(auth, None).await.unwrap();
    assert_eq!(token.audience, Some(r(MCP)));
}

#[tokio::test]
async fn protected_resource_metadata_and_challenges_rfc9728() {
    let s = server();
    let path = "/.well-known/oauth-protected-resource/mcp";
    let endpoint = s.endpoint_at(path).unwrap();
    let r = s.handle(endpoint, &HttpRequest::new("GET")).await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "resource": MCP,
            "authorization_servers": [ISSUER],
            "scopes_supported": ["photos.read"],
            "bearer_methods_supported": ["header"],
        })
    );
    let r = s.handle(endpoint, &HttpRequest::new("POST")).await;
    assert_eq!(r.status, 405);
    let api = s
        .handle(
            s.endpoint_at("/.well-known/oauth-protected-resource/api")
                .unwrap(),
            &HttpRequest::new("GET"),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(v["resource"], API);
    assert!(v.get("scopes_supported").is_none());
    // §5.1: every challenge names the metadata, 401 and 403 alike.
    let url = s.resource_metadata_url_at("/mcp").unwrap();
    assert_eq!(url, format!("{ISSUER}{path}"));
    for e in [
        BearerError::Missing,
        BearerError::Invalid,
        BearerError::WrongAudience,
        BearerError::InsufficientScope {
            required: "photos.read".into(),
        },
    ] {
        let challenge = e.challenge_with("r", Some(&url));
        assert!(
            challenge.starts_with(&format!("Bearer resource_metadata=\"{url}\", realm=")),
            "{challenge}"
        );
        let http = e.to_http_with("r", Some(&url));
        assert_eq!(http.header("www-authenticate"), Some(challenge.as_str()));
    }
    // A 401 also names the scopes the resource declared, so a client (an
    // MCP client) knows what to ask for (RFC 6750 §3; MCP authorization:
    // SHOULD); a 403 names the scopes the request lacked; a resource that
    // declared none gets no `scope`.
    let hint = s.scope_hint_at("/mcp");
    assert_eq!(hint.as_deref(), Some("photos.read"));
    assert_eq!(s.scope_hint_at("/api/photos"), None);
    let missing = BearerError::Missing.challenge_for("r", Some(&url), hint.as_deref());
    assert_eq!(
        missing,
        format!("Bearer resource_metadata=\"{url}\", realm=\"r\", scope=\"photos.read\"")
    );
    let invalid = BearerError::Invalid.challenge_for("r", Some(&url), hint.as_deref());
    assert!(invalid.contains("error=\"invalid_token\""), "{invalid}");
    assert!(invalid.contains("scope=\"photos.read\""), "{invalid}");
    let lacking = BearerError::InsufficientScope {
        required: "photos.write".into(),
    }
    .challenge_for("r", Some(&url), hint.as_deref());
    assert!(lacking.contains("scope=\"photos.write\""), "{lacking}");
    assert!(!lacking.contains("photos.read"), "{lacking}");
    // A path no declared resource covers is checked against the default
    // resource (`/api`, declared here): its challenges name that resource's
    // metadata, so a client that knows nothing finds where to get a token.
    let api_metadata = s.resource_metadata_url_at("/api").unwrap();
    assert!(api_metadata.ends_with("/.well-known/oauth-protected-resource/api"));
    assert_eq!(s.resource_metadata_url_at("/other"), Some(api_metadata));
    assert_eq!(s.scope_hint_at("/other"), s.scope_hint_at("/api"));
    // The authorization server's metadata is unchanged by resources.
    let m = s.metadata();
    assert_eq!(m.issuer, ISSUER);
}

#[tokio::test]
async fn declaring_resources_is_checked_at_build() {
    let build = |a: &str, b: &str| {
        Server::builder()
            .issuer(ISSUER)
            .store(Arc::new(MemoryStore::with_clients([])))
            .protected_resource(ProtectedResource::new(r(a)).unwrap())
            .protected_resource(ProtectedResource::new(r(b)).unwrap())
            .build()
            .map(|_| ())
    };
    assert_eq!(
        build(MCP, MCP),
        Err(BuildError::DuplicatePath(
            "/.well-known/oauth-protected-resource/mcp".into()
        ))
    );
    assert_eq!(build(MCP, API), Ok(()));
    // Two spellings of one URL: a request for either would name both.
    let twice = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([])))
        .protected_resource(ProtectedResource::new(r("https://a.example")).unwrap())
        .resource(r("https://A.example:443/"))
        .build()
        .map(|_| ());
    assert_eq!(
        twice,
        Err(BuildError::EquivalentResources(
            "https://A.example:443/".into(),
            "https://a.example".into()
        ))
    );
}

#[tokio::test]
async fn without_resources_configured_resource_is_refused_and_tokens_have_no_audience() {
    let s = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([Client::confidential(
            ClientId::new("shop").unwrap(),
            "shop",
            SecretHash::of("s"),
        )
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse("a").unwrap())
        .with_introspect_any_token(true)])))
        .build()
        .unwrap();
    let (status, v) = token(
        &s,
        "shop",
        &format!("grant_type=client_credentials&resource={API_ENC}"),
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_target")));
    let (status, v) = token(&s, "shop", "grant_type=client_credentials").await;
    assert_eq!(status, 200);
    let access = v["access_token"].as_str().unwrap();
    let body = format!("token={access}");
    let answer = s
        .handle(
            Endpoint::Introspection,
            &HttpRequest::form_post(&body, Some(&basic("shop"))),
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(v.get("aud").is_none(), "{v}");
    // A resource server that declares itself refuses a token for none.
    let header = format!("Bearer {access}");
    assert_eq!(
        s.verify_bearer_for(&r(API), Some(&header), None)
            .await
            .unwrap_err(),
        BearerError::WrongAudience
    );
}

/// A device authorization request (RFC 8628 §3.1) with `extra`; its
/// answer's status and body.
async fn device_authorization(s: &Server, client: &str, extra: &str) -> (u16, serde_json::Value) {
    let r = s
        .handle(
            Endpoint::DeviceAuthorization,
            &HttpRequest::form_post(&format!("scope=photos.read{extra}"), Some(&basic(client))),
        )
        .await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

/// A device flow up to alice's approval: the device code, and the resource
/// the verification page was told.
async fn approved_device(
    s: &Server,
    client: &str,
    extra: &str,
) -> (String, Option<ResourceIndicator>) {
    let (status, body) = device_authorization(s, client, extra).await;
    assert_eq!(status, 200, "{body}");
    let user_code = body["user_code"].as_str().unwrap();
    let prompt = s.device_prompt(user_code, "alice's browser").await.unwrap();
    let alice = Subject::new("alice");
    assert!(
        s.device_decide(&prompt.user_code, &alice, Decision::Allow)
            .await
            .unwrap()
    );
    (
        body["device_code"].as_str().unwrap().to_owned(),
        prompt.resource,
    )
}

async fn device_token(
    s: &Server,
    client: &str,
    device_code: &str,
    extra: &str,
) -> (u16, serde_json::Value) {
    token(
        s,
        client,
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={device_code}{extra}"
        ),
    )
    .await
}

#[tokio::test]
async fn a_device_names_its_resource_in_its_request_and_the_user_sees_it_rfc8707_2() {
    let s = server();
    let mcp = format!("&resource={MCP_ENC}");
    let api = format!("&resource={API_ENC}");

    // Named in the device authorization request: shown on the verification
    // page, and the audience whether the token request repeats it or not.
    for repeat in ["", mcp.as_str()] {
        let (device, shown) = approved_device(&s, "shop", &mcp).await;
        assert_eq!(shown, Some(r(MCP)), "the user is told the resource");
        let (status, body) = device_token(&s, "shop", &device, repeat).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(MCP));
    }

    // The token request cannot move it to another resource (the user
    // consented to the MCP server's access only); the code is spent, as an
    // authorization code is.
    let (device, _) = approved_device(&s, "shop", &mcp).await;
    let (status, body) = device_token(&s, "shop", &device, &api).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    let (_, body) = device_token(&s, "shop", &device, "").await;
    assert_eq!(body["error"], "invalid_grant");

    // A client that may use only the MCP server, which is not the default:
    // fixed at the device authorization request, its poll need not repeat it.
    let (device, _) = approved_device(&s, "mcp-only", &mcp).await;
    let (status, body) = device_token(&s, "mcp-only", &device, "").await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(MCP));

    // Named nowhere: the default resource, shown and fixed as a named one
    // (as the authorization endpoint fixes a code's): the token request may
    // repeat it, not name another the user was not shown.
    for repeat in ["", api.as_str()] {
        let (device, shown) = approved_device(&s, "shop", "").await;
        assert_eq!(shown, Some(r(API)));
        let (status, body) = device_token(&s, "shop", &device, repeat).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(introspect_aud(&s, access).await.as_deref(), Some(API));
    }
    let (device, _) = approved_device(&s, "shop", "").await;
    let (status, body) = device_token(&s, "shop", &device, &mcp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );

    // A client that may not use the default resource and names none is
    // refused before anyone is asked (not after the user approved).
    let (status, body) = device_authorization(&s, "mcp-only", "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
}

#[tokio::test]
async fn the_device_authorization_endpoint_answers_invalid_target_rfc8707_2() {
    let s = server();
    for (client, extra, why) in [
        (
            "shop",
            "&resource=https%3A%2F%2Fother.example%2F",
            "unknown resource",
        ),
        (
            "mcp-only",
            &*format!("&resource={API_ENC}"),
            "not the client's",
        ),
        ("shop", "&resource=relative%2Fpath", "not an absolute URI"),
        (
            "shop",
            "&resource=https%3A%2F%2Fas.example%2Fapi%23frag",
            "a fragment",
        ),
        (
            "shop",
            &*format!("&resource={API_ENC}&resource={MCP_ENC}"),
            "two resources",
        ),
    ] {
        let (status, body) = device_authorization(&s, client, extra).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "invalid_target", "{why}");
    }
}

/// A server that declares resources but no default: a device that names
/// none is granted for none (no audience, none shown), and its token
/// request cannot name one the user was not shown (RFC 8707 §2), as a code's
/// cannot.
#[tokio::test]
async fn without_a_default_a_device_cannot_add_a_resource_at_the_token_request() {
    let s = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([Client::confidential(
            ClientId::new("shop").unwrap(),
            "shop",
            SecretHash::of("s"),
        )
        .with_grant_types(["urn:ietf:params:oauth:grant-type:device_code"])
        .with_scope(Scope::parse("photos.read").unwrap())])))
        .protected_resource(ProtectedResource::new(r(MCP)).unwrap())
        .enable_device_grant()
        .build()
        .unwrap();
    let (device, shown) = approved_device(&s, "shop", "").await;
    assert_eq!(shown, None);
    let (status, body) = device_token(&s, "shop", &device, &format!("&resource={MCP_ENC}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    // Named at the device authorization request, it is shown and granted.
    let (device, shown) = approved_device(&s, "shop", &format!("&resource={MCP_ENC}")).await;
    assert_eq!(shown, Some(r(MCP)));
    let (status, body) = device_token(&s, "shop", &device, "").await;
    assert_eq!(status, 200, "{body}");
}

/// MCP clients send the resource as `new URL(resource).href`: a configured
/// `https://root.example` arrives as `https://root.example/`, and the case of
/// scheme and host or a default port may differ (MCP authorization
/// 2025-11-25, canonical server URI; RFC 3986 §6.2.2). Such a request names
/// the configured resource, which the grant keeps in its configured text;
/// another path is another resource.
#[tokio::test]
async fn a_resource_is_recognised_after_uri_normalisation() {
    let root = "https://root.example";
    let s = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([Client::confidential(
            ClientId::new("shop").unwrap(),
            "shop",
            SecretHash::of("s"),
        )
        .with_redirect_uri(RedirectUri::new("https://shop.example/cb").unwrap())
        .with_grant_types(["authorization_code", "client_credentials"])
        .with_scope(Scope::parse("photos.read").unwrap())])))
        .protected_resource(ProtectedResource::new(r(root)).unwrap())
        .protected_resource(ProtectedResource::new(r(MCP)).unwrap())
        .build()
        .unwrap();
    let cc = |resource: &str| {
        format!(
            "grant_type=client_credentials&resource={}",
            url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
        )
    };
    for (sent, granted) in [
        ("https://root.example/", root),
        ("HTTPS://Root.Example", root),
        ("https://root.example:443/", root),
        ("https://AS.example/mcp", MCP),
        ("https://as.example/./mcp", MCP),
    ] {
        let (status, body) = token(&s, "shop", &cc(sent)).await;
        assert_eq!(status, 200, "{sent}: {body}");
        let access = body["access_token"].as_str().unwrap();
        let bearer = format!("Bearer {access}");
        let info = s.verify_bearer_for(&r(granted), Some(&bearer), None).await;
        assert!(info.is_ok(), "{sent}");
    }
    for other in [
        "https://root.example/x",
        "https://root.example:8443/",
        "http://root.example/",
        "https://as.example/mcp/",
        "https://as.example/MCP",
    ] {
        let (status, body) = token(&s, "shop", &cc(other)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_target")),
            "{other}"
        );
    }
    // The code flow: requested in one spelling, repeated in another.
    let c = code(&s, "shop", "&resource=https%3A%2F%2Froot.example%2F")
        .await
        .unwrap();
    let (status, body) = token(
        &s,
        "shop",
        &format!(
            "grant_type=authorization_code&code={c}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&code_verifier={VERIFIER}&resource=https%3A%2F%2Froot.example"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Below an issuer with a path, a resource's metadata is served where RFC
/// 9728 §3.1 puts it (the well-known path, then the resource's path) and
/// also at the issuer's path followed by the well-known path
/// (DEMO-CONTRACT's `{issuer}/.well-known/oauth-protected-resource/mcp`),
/// as the server's own metadata is; both are the same document.
#[tokio::test]
async fn below_an_issuer_with_a_path_resource_metadata_is_served_twice() {
    let resource = "https://as.example/tenant/mcp";
    let s = Server::builder()
        .issuer("https://as.example/tenant")
        .store(Arc::new(MemoryStore::with_clients([])))
        .protected_resource(ProtectedResource::new(r(resource)).unwrap())
        .build()
        .unwrap();
    for path in [
        "/.well-known/oauth-protected-resource/tenant/mcp",
        "/tenant/.well-known/oauth-protected-resource/mcp",
    ] {
        let endpoint = s.endpoint_at(path).unwrap();
        let answer = s.handle(endpoint, &HttpRequest::new("GET")).await;
        assert_eq!(answer.status, 200, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(v["resource"], resource, "{path}");
    }
    // The challenge names RFC 9728's location.
    assert_eq!(
        s.resource_metadata_url_at("/tenant/mcp").as_deref(),
        Some("https://as.example/.well-known/oauth-protected-resource/tenant/mcp")
    );
    // A resource on another origin whose path begins with the issuer's
    // gets no route in the issuer's path: its metadata is its own origin's.
    let elsewhere = Server::builder()
        .issuer("https://as.example/tenant")
        .store(Arc::new(MemoryStore::with_clients([])))
        .protected_resource(ProtectedResource::new(r("https://rs.example/tenant/mcp")).unwrap())
        .build()
        .unwrap();
    assert!(
        elsewhere
            .endpoint_at("/tenant/.well-known/oauth-protected-resource/mcp")
            .is_none()
    );
    assert!(
        elsewhere
            .endpoint_at("/.well-known/oauth-protected-resource/tenant/mcp")
            .is_some()
    );
}
