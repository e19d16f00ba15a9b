//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document)
//! through the server, with a fake fetcher: the code flow of a client known
//! only by its document, every refusal (an error page at the authorization
//! endpoint, never a redirect; `invalid_client` at the token endpoint), the
//! cache (§5.2: valid documents only, bounded, re-fetched after max-age),
//! and the bounds a flood of attacker-chosen URLs meets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tessera::{
    AuthorizeOutcome, Client, ClientId, ClientIdUrl, ClientMetadataFetcher, ClientMetadataPolicy,
    CodeChallenge, Decision, Endpoint, ErrorCode, FetchError, FetchedDocument, FixedClock,
    HttpRequest, RedirectUri, Scope, ScopeToken, Server, ServerBuilder, Subject,
};
use tessera_memory::MemoryStore;
use time::{Duration, OffsetDateTime};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const URL: &str = "https://mcp-client.example/oauth/client.json";
const REDIRECT: &str = "http://127.0.0.1:4567/callback";

/// What the fake network answers for a URL.
type Answer = Result<FetchedDocument, fn() -> FetchError>;

#[derive(Debug, Default)]
struct FakeFetcher {
    answers: Mutex<HashMap<String, Answer>>,
    fetches: AtomicUsize,
    /// When set, every fetch waits for it (to hold fetches in progress).
    gate: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl FakeFetcher {
    fn serve(&self, url: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(url.to_owned(), answer);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClientMetadataFetcher for FakeFetcher {
    async fn fetch(
        &self,
        url: &ClientIdUrl,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.notified().await;
        }
        let answer = match self.answers.lock().unwrap().get(url.as_str()) {
            Some(Ok(doc)) => Ok(doc.clone()),
            Some(Err(e)) => Err(e()),
            None => Err(FetchError::Status(404)),
        };
        // A real fetcher stops reading at the limit.
        match answer {
            Ok(doc) if doc.body.len() > max_bytes => Err(FetchError::TooLarge(max_bytes)),
            other => other,
        }
    }
}

struct Fixture {
    server: Server,
    fetcher: Arc<FakeFetcher>,
    clock: Arc<FixedClock>,
}

fn fixture_with(
    policy: Option<ClientMetadataPolicy>,
    f: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> Fixture {
    let store = Arc::new(MemoryStore::with_clients([]));
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    ));
    let fetcher = Arc::new(FakeFetcher::default());
    let mut builder = Server::builder()
        .issuer("https://as.example")
        .store(store)
        .clock(clock.clone());
    for s in ["photos.read", "photos.write", "profile"] {
        builder = builder.scope(ScopeToken::new(s).unwrap(), s);
    }
    if let Some(policy) = policy {
        builder = builder.enable_client_id_metadata_documents(policy, fetcher.clone());
    }
    Fixture {
        server: f(builder).build().unwrap(),
        fetcher,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(Some(ClientMetadataPolicy::default()), |b| b)
}

fn document(client_id: &str) -> String {
    serde_json::json!({
        "client_id": client_id,
        "client_name": "Some MCP client",
        "client_uri": "https://mcp-client.example",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "photos.read"
    })
    .to_string()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn authorize_query(client_id: &str) -> String {
    format!(
        "response_type=code&client_id={}&redirect_uri={}&state=s1&code_challenge={}&code_challenge_method=S256",
        enc(client_id),
        enc(REDIRECT),
        CodeChallenge::s256(VERIFIER)
    )
}

/// The authorization endpoint's error page for `client_id`; panics on a redirect.
async fn error_page(f: &Fixture, client_id: &str) -> tessera::OAuthError {
    match f
        .server
        .authorize(&authorize_query(client_id), Some(&Subject::new("alice")))
        .await
    {
        AuthorizeOutcome::ErrorPage(e) => e,
        other => panic!("{client_id}: an error page expected, got {other:?}"),
    }
}

async fn token(f: &Fixture, body: &str) -> (u16, serde_json::Value) {
    let r = f
        .server
        .handle(Endpoint::Token, &HttpRequest::form_post(body, None))
        .await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

/// Runs the code flow for `client_id` as alice; the token endpoint's answer.
async fn code_flow(f: &Fixture, client_id: &str) -> (u16, serde_json::Value) {
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = f
        .server
        .authorize(&authorize_query(client_id), Some(&alice))
        .await
    else {
        panic!("consent expected")
    };
    // The consent page can tell nobody verified the app, and name its host (§6.3).
    assert!(prompt.client.is_dynamically_registered());
    assert_eq!(
        prompt
            .client
            .registration
            .as_ref()
            .unwrap()
            .metadata_document_host
            .as_deref(),
        Some("mcp-client.example")
    );
    assert_eq!(prompt.client.name, "Some MCP client");
    let AuthorizeOutcome::Redirect(r) = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await
    else {
        panic!("redirect expected")
    };
    let location = r.location();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    token(
        f,
        &format!(
            "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri={}&client_id={}",
            enc(REDIRECT),
            enc(client_id)
        ),
    )
    .await
}

#[tokio::test]
async fn off_by_default_and_advertised_when_on_draft_5() {
    let off = fixture_with(None, |b| b);
    assert!(!off.server.metadata().client_id_metadata_document_supported);
    let json = serde_json::to_value(off.server.metadata()).unwrap();
    assert!(json.get("client_id_metadata_document_supported").is_none());
    // A URL client_id is then just an unknown client; nothing is fetched.
    assert_eq!(error_page(&off, URL).await.code, ErrorCode::InvalidClient);
    assert_eq!(off.fetcher.fetches(), 0);

    let on = fixture();
    let json = serde_json::to_value(on.server.metadata()).unwrap();
    assert_eq!(json["client_id_metadata_document_supported"], true);
}

#[tokio::test]
async fn a_client_known_only_by_its_document_runs_the_code_flow_draft_4() {
    let f = fixture();
    f.fetcher
        .serve(URL, Ok(FetchedDocument::new(document(URL))));
    let (status, body) = code_flow(&f, URL).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "photos.read");
    // Refresh and revocation name the client by its URL too.
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = token(
        &f,
        &format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id={}",
            enc(URL)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let r = f
        .server
        .handle(
            Endpoint::Revocation,
            &HttpRequest::form_post(&format!("token={access}&client_id={}", enc(URL)), None),
        )
        .await;
    assert_eq!(r.status, 200);
    // One fetch served all of it (§5.2 caching).
    assert_eq!(f.fetcher.fetches(), 1);
    // A confidential-looking request (a secret) is refused: the client is public.
    let (status, body) = token(
        &f,
        &format!(
            "grant_type=refresh_token&refresh_token=x&client_id={}&client_secret=guess",
            enc(URL)
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn every_refusal_is_an_error_page_never_a_redirect_draft_4_2() {
    let f = fixture();
    let mut cases: Vec<(String, Answer, ErrorCode)> = Vec::new();
    let mut doc = |name: &str, body: String| {
        // One host per case: fetches are counted per host.
        let url = format!("https://{name}.example/client");
        let body = body.replace(URL, &url);
        cases.push((
            url,
            Ok(FetchedDocument::new(body)),
            ErrorCode::InvalidClient,
        ));
    };
    let with = |extra: serde_json::Value| {
        let mut d: serde_json::Value = serde_json::from_str(&document(URL)).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d.to_string()
    };
    doc("mismatch", document("https://mcp-client.example/other"));
    doc(
        "mismatch-case",
        document("https://MISMATCH-case.example/client"),
    );
    doc(
        "no-client-id",
        r#"{"redirect_uris":["http://127.0.0.1:4567/callback"]}"#.into(),
    );
    doc(
        "bad-redirect",
        with(serde_json::json!({"redirect_uris": ["http://evil.example/cb"]})),
    );
    doc(
        "fragment-redirect",
        with(serde_json::json!({"redirect_uris": ["https://a.example/cb#x"]})),
    );
    doc(
        "basic",
        with(serde_json::json!({"token_endpoint_auth_method": "client_secret_basic"})),
    );
    doc(
        "post",
        with(serde_json::json!({"token_endpoint_auth_method": "client_secret_post"})),
    );
    doc(
        "secret",
        with(serde_json::json!({"client_secret": "s3cret"})),
    );
    doc(
        "unknown-scope",
        with(serde_json::json!({"scope": "photos.read admin"})),
    );
    doc(
        "client-credentials",
        with(serde_json::json!({"grant_types": ["client_credentials"]})),
    );
    doc("not-json", "<html>hello</html>".into());
    doc("array", "[]".into());
    doc(
        "oversized",
        with(serde_json::json!({"x": "a".repeat(6 * 1024)})),
    );
    for (name, e) in [
        ("status", (|| FetchError::Status(404)) as fn() -> FetchError),
        ("redirect", || FetchError::Redirect(302)),
        ("private", || {
            FetchError::ForbiddenAddress([192, 168, 1, 1].into())
        }),
        ("not-json-type", || {
            FetchError::NotJson(Some("text/html".into()))
        }),
        ("slow", || FetchError::Timeout),
        ("huge", || FetchError::TooLarge(5120)),
    ] {
        cases.push((
            format!("https://{name}.example/client"),
            Err(e),
            ErrorCode::InvalidClient,
        ));
    }
    for (url, answer, code) in cases {
        f.fetcher.serve(&url, answer);
        let e = error_page(&f, &url).await;
        assert_eq!(e.code, code, "{url}: {e}");
        // And at the token endpoint: invalid_client (RFC 6749 §5.2).
        let (status, body) = token(
            &f,
            &format!(
                "grant_type=authorization_code&code=x&code_verifier={VERIFIER}&client_id={}",
                enc(&url)
            ),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{url}"
        );
    }
    // The cause of a network failure stays in the log.
    let e = error_page(&f, "https://private.example/client").await;
    assert!(!e.to_string().contains("192.168"), "{e}");
}

#[tokio::test]
async fn malformed_client_identifier_urls_are_invalid_request_draft_3() {
    let f = fixture();
    for bad in [
        "http://mcp-client.example/client.json",
        "https://mcp-client.example/client.json#frag",
        "https://user:pw@mcp-client.example/client.json",
        "https://mcp-client.example",
        "https://mcp-client.example/a/../client.json",
        "https://MCP-client.example/client.json",
    ] {
        let e = error_page(&f, bad).await;
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{bad}: {e}");
        let (status, body) = token(
            &f,
            &format!(
                "grant_type=authorization_code&code=x&client_id={}",
                enc(bad)
            ),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{bad}"
        );
    }
    assert_eq!(f.fetcher.fetches(), 0);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_an_error_page_rfc6749_4_1_2_1() {
    let f = fixture();
    f.fetcher
        .serve(URL, Ok(FetchedDocument::new(document(URL))));
    let query = authorize_query(URL).replace(&enc(REDIRECT), &enc("https://evil.example/cb"));
    assert!(matches!(
        f.server.authorize(&query, None).await,
        AuthorizeOutcome::ErrorPage(_)
    ));
}

#[tokio::test]
async fn failures_are_not_cached_and_documents_are_refetched_after_max_age_draft_5_2() {
    let f = fixture();
    f.fetcher.serve(URL, Err(|| FetchError::Status(500)));
    assert_eq!(error_page(&f, URL).await.code, ErrorCode::InvalidClient);
    // Fixed: the next request fetches again.
    f.fetcher.serve(
        URL,
        Ok(FetchedDocument::new(document(URL)).with_max_age(std::time::Duration::from_secs(120))),
    );
    assert_eq!(code_flow(&f, URL).await.0, 200);
    assert_eq!(f.fetcher.fetches(), 2);
    // Within max-age: cached, even if the document changed.
    f.fetcher.serve(URL, Err(|| FetchError::Status(404)));
    f.clock.advance(Duration::seconds(119));
    assert!(matches!(
        f.server.authorize(&authorize_query(URL), None).await,
        AuthorizeOutcome::Login(_)
    ));
    assert_eq!(f.fetcher.fetches(), 2);
    // After it: fetched again, and the client is gone with its document.
    f.clock.advance(Duration::seconds(1));
    assert_eq!(error_page(&f, URL).await.code, ErrorCode::InvalidClient);
    assert_eq!(f.fetcher.fetches(), 3);
}

#[tokio::test]
async fn a_registered_client_with_a_url_id_wins_draft_prereg() {
    let store = Arc::new(MemoryStore::with_clients([Client::public(
        ClientId::new(URL).unwrap(),
        "Vetted client",
    )
    .with_redirect_uri(RedirectUri::new(REDIRECT).unwrap())
    .with_grant_types(["authorization_code"])
    .with_scope(Scope::parse("photos.read").unwrap())]));
    let fetcher = Arc::new(FakeFetcher::default());
    let server = Server::builder()
        .issuer("https://as.example")
        .store(store)
        .scope(ScopeToken::new("photos.read").unwrap(), "read")
        .enable_client_id_metadata_documents(ClientMetadataPolicy::default(), fetcher.clone())
        .build()
        .unwrap();
    let AuthorizeOutcome::Login(prompt) = server.authorize(&authorize_query(URL), None).await
    else {
        panic!("login expected")
    };
    assert_eq!(prompt.client.name, "Vetted client");
    assert!(!prompt.client.is_dynamically_registered());
    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn a_flood_of_urls_on_one_host_is_cut_off_per_host() {
    let f = fixture();
    // Thirty fetches per host per minute (the default limit of
    // Action::ClientMetadataFetch), then temporarily_unavailable.
    for i in 0..30 {
        let url = format!("https://attacker.example/c{i}");
        assert_eq!(error_page(&f, &url).await.code, ErrorCode::InvalidClient);
    }
    let e = error_page(&f, "https://attacker.example/c30").await;
    assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
    assert_eq!(f.fetcher.fetches(), 30);
    // Another host's client is not affected.
    f.fetcher
        .serve(URL, Ok(FetchedDocument::new(document(URL))));
    assert_eq!(code_flow(&f, URL).await.0, 200);
    // After the window the host may be fetched from again.
    f.clock.advance(Duration::minutes(1));
    assert_eq!(
        error_page(&f, "https://attacker.example/c30").await.code,
        ErrorCode::InvalidClient
    );
}

/// Nobody can cut a known client off by spending its host's fetch budget
/// on URLs that answer 404: a document valid a moment ago is fetched again
/// outside that count, and used for up to `STALE_IF_ERROR` past its expiry
/// while fetching it again fails for a passing reason (a 5xx, the network,
/// load); a 404 or an invalid document ends it at once.
#[tokio::test]
async fn a_known_client_outlives_a_flood_on_its_host_and_a_failing_refetch() {
    let f = fixture();
    let doc =
        || Ok(FetchedDocument::new(document(URL)).with_max_age(std::time::Duration::from_secs(60)));
    f.fetcher.serve(URL, doc());
    assert_eq!(code_flow(&f, URL).await.0, 200);
    // Its document expires; meanwhile 30 URLs on its host answer 404.
    f.clock.advance(Duration::seconds(61));
    for i in 0..30 {
        let url = format!("https://mcp-client.example/junk{i}");
        assert_eq!(error_page(&f, &url).await.code, ErrorCode::InvalidClient);
    }
    let e = error_page(&f, "https://mcp-client.example/junk30").await;
    assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
    // The known client is fetched again all the same, and works.
    let before = f.fetcher.fetches();
    assert_eq!(code_flow(&f, URL).await.0, 200);
    assert_eq!(f.fetcher.fetches(), before + 1);
    // Expired again, and its host now fails: the last valid document
    // serves, and the failing host is asked once per 30 s, not by every
    // lookup.
    f.fetcher.serve(URL, Err(|| FetchError::Status(503)));
    f.clock.advance(Duration::seconds(61));
    let before = f.fetcher.fetches();
    assert_eq!(code_flow(&f, URL).await.0, 200);
    assert_eq!(code_flow(&f, URL).await.0, 200);
    assert_eq!(f.fetcher.fetches(), before + 1);
    f.fetcher.serve(URL, Err(|| FetchError::Timeout));
    f.clock.advance(Duration::seconds(31));
    assert_eq!(code_flow(&f, URL).await.0, 200);
    f.fetcher.serve(URL, Err(|| FetchError::Status(429)));
    f.clock.advance(Duration::seconds(31));
    assert_eq!(code_flow(&f, URL).await.0, 200);
    assert_eq!(f.fetcher.fetches(), before + 3);
    // Not for ever: past STALE_IF_ERROR it is gone.
    f.clock.advance(tessera::STALE_IF_ERROR);
    assert_eq!(error_page(&f, URL).await.code, ErrorCode::InvalidClient);
    // And a 404 (the document withdrawn) ends it at once.
    f.fetcher.serve(URL, doc());
    assert_eq!(code_flow(&f, URL).await.0, 200);
    f.fetcher.serve(URL, Err(|| FetchError::Status(404)));
    f.clock.advance(Duration::seconds(61));
    assert_eq!(error_page(&f, URL).await.code, ErrorCode::InvalidClient);
    f.fetcher.serve(URL, Err(|| FetchError::Status(503)));
    assert_eq!(error_page(&f, URL).await.code, ErrorCode::InvalidClient);
}

/// A fetch failure is described alike whatever the URL answered, so the
/// server cannot be used to probe other hosts' ports and pages.
#[tokio::test]
async fn fetch_failures_do_not_describe_what_the_url_answered() {
    let f = fixture();
    let answers: [fn() -> FetchError; 5] = [
        || FetchError::Status(401),
        || FetchError::Redirect(302),
        || FetchError::NotJson(Some("text/html".into())),
        || FetchError::TooLarge(5120),
        || FetchError::Timeout,
    ];
    let mut descriptions = std::collections::HashSet::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let url = format!("https://probe{i}.example/c");
        f.fetcher.serve(&url, Err(answer));
        let e = error_page(&f, &url).await;
        assert_eq!(e.code, ErrorCode::InvalidClient);
        descriptions.insert(e.description.clone());
    }
    assert_eq!(descriptions.len(), 1, "{descriptions:?}");
}

#[tokio::test]
async fn the_cache_is_bounded_by_count() {
    let f = fixture_with(
        Some(ClientMetadataPolicy::default().with_max_cached(3)),
        |b| b,
    );
    let urls: Vec<String> = (0..5)
        .map(|i| format!("https://host{i}.example/client"))
        .collect();
    for url in &urls {
        f.fetcher
            .serve(url, Ok(FetchedDocument::new(document(url))));
        assert!(matches!(
            f.server.authorize(&authorize_query(url), None).await,
            AuthorizeOutcome::Login(_)
        ));
    }
    assert_eq!(f.fetcher.fetches(), 5);
    // The newest are cached; the oldest were pushed out and are fetched again.
    f.server.authorize(&authorize_query(&urls[4]), None).await;
    assert_eq!(f.fetcher.fetches(), 5);
    f.server.authorize(&authorize_query(&urls[0]), None).await;
    assert_eq!(f.fetcher.fetches(), 6);
}

#[tokio::test]
async fn fetches_in_progress_are_capped_and_cached_clients_keep_working() {
    let f = Arc::new(fixture_with(
        Some(ClientMetadataPolicy::default().with_max_concurrent_fetches(2)),
        |b| b,
    ));
    f.fetcher
        .serve(URL, Ok(FetchedDocument::new(document(URL))));
    assert!(matches!(
        f.server.authorize(&authorize_query(URL), None).await,
        AuthorizeOutcome::Login(_)
    ));
    // Two slow documents hold both fetch slots.
    let gate = Arc::new(tokio::sync::Notify::new());
    *f.fetcher.gate.lock().unwrap() = Some(gate.clone());
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                let url = format!("https://slow{i}.example/client");
                f.server.authorize(&authorize_query(&url), None).await
            })
        })
        .collect();
    while f.fetcher.fetches() < 3 {
        tokio::task::yield_now().await;
    }
    // A third is refused at once, and says to come back later.
    let e = error_page(&f, "https://third.example/client").await;
    assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
    // The cached client is not held up.
    assert!(matches!(
        f.server.authorize(&authorize_query(URL), None).await,
        AuthorizeOutcome::Login(_)
    ));
    gate.notify_waiters();
    for task in slow {
        assert!(matches!(
            task.await.unwrap(),
            AuthorizeOutcome::ErrorPage(_)
        ));
    }
    // The slots are free again.
    *f.fetcher.gate.lock().unwrap() = None;
    assert_eq!(
        error_page(&f, "https://third.example/client").await.code,
        ErrorCode::InvalidClient
    );
}

#[tokio::test]
async fn a_document_with_keys_makes_a_private_key_jwt_client_draft_6_2() {
    use tessera::{CLIENT_ASSERTION_TYPE_JWT_BEARER, Jwks, JwsAlgorithm, OsRandom, SigningKey};
    let key = SigningKey::generate(JwsAlgorithm::Es256, &OsRandom);
    let jwks = Jwks::new([key.verifying_key().to_jwk()]);
    let f = fixture_with(Some(ClientMetadataPolicy::default()), |b| {
        b.client_auth_method(tessera::PrivateKeyJwt::new())
    });
    let mut doc: serde_json::Value = serde_json::from_str(&document(URL)).unwrap();
    doc["token_endpoint_auth_method"] = "private_key_jwt".into();
    doc["jwks"] = serde_json::to_value(&jwks).unwrap();
    f.fetcher
        .serve(URL, Ok(FetchedDocument::new(doc.to_string())));
    let alice = Subject::new("alice");
    let AuthorizeOutcome::Consent(prompt) = f
        .server
        .authorize(&authorize_query(URL), Some(&alice))
        .await
    else {
        panic!("consent expected")
    };
    assert!(!prompt.client.is_public());
    assert!(prompt.client.secret_hash().is_none());
    let AuthorizeOutcome::Redirect(r) = f
        .server
        .decide(&prompt.handle, &alice, Decision::Allow)
        .await
    else {
        panic!("redirect expected")
    };
    let location = r.location();
    let code = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let grant = format!(
        "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&redirect_uri={}",
        enc(REDIRECT)
    );
    // The client_id alone no longer does: it must prove the key (RFC 7523 §2.2).
    let (status, body) = token(&f, &format!("{grant}&client_id={}", enc(URL))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let now = f.server.now().unix_timestamp();
    let assertion = key
        .sign_jwt(
            "JWT",
            &serde_json::json!({"iss": URL, "sub": URL, "aud": "https://as.example",
                "exp": now + 60, "iat": now, "jti": "one"}),
        )
        .unwrap();
    let (status, body) = token(
        &f,
        &format!(
            "{grant}&client_assertion_type={}&client_assertion={assertion}",
            enc(CLIENT_ASSERTION_TYPE_JWT_BEARER)
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Without the method on the server, such a document is refused.
    let off = fixture();
    off.fetcher
        .serve(URL, Ok(FetchedDocument::new(doc.to_string())));
    assert_eq!(error_page(&off, URL).await.code, ErrorCode::InvalidClient);
}
