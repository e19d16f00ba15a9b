//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document)
//! over HTTP, against both providers started with
//! `--client-metadata-documents --dangerous-client-metadata-documents-over-loopback-http`
//! (the test's document server speaks plain HTTP on 127.0.0.1; without the
//! dangerous flag the provider refuses exactly that, which the fetcher's own
//! tests show): the metadata advertises the feature (§5); a client known
//! only by the URL of its document runs the code flow with PKCE through the
//! `oauth2` crate, and the consent page says PhotoBook has not verified it
//! and names the document's host (§6.3); a document whose `client_id` is
//! not its URL, or that asks for a shared secret, gets an error page, never
//! a redirect (§4, §4.1, RFC 6749 §4.1.2.1). Without the flag (the
//! DEMO-CONTRACT's provider) nothing is advertised and nothing is fetched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
    TokenResponse as _, TokenUrl,
};
use tessera_conformance::demo::ALICE;
use tessera_conformance::flow::{self, Decision, Pkce};
use tessera_conformance::http::{Auth, Exchange, Request};
use tessera_conformance::{CheckResult, Ctx, Failure, Provider, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FLAGS: &str =
    "memory --client-metadata-documents --dangerous-client-metadata-documents-over-loopback-http";

/// A document server on 127.0.0.1: path -> JSON body; counts requests.
struct Documents {
    base: String,
    hits: Arc<AtomicUsize>,
}

async fn documents(make: impl FnOnce(&str) -> HashMap<String, String>) -> Documents {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let docs = Arc::new(make(&base));
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let docs = docs.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match docs.get(&path) {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=60\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Documents { base, hits }
}

/// The documents the checks use, with `redirect` as the redirect URI.
fn client_documents(base: &str, redirect: &str) -> HashMap<String, String> {
    let doc = |path: &str, client_id: &str, extra: serde_json::Value| {
        let mut d = serde_json::json!({
            "client_id": client_id,
            "client_name": "Metadata Document Client",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "photos.read",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            d[k] = v.clone();
        }
        (path.to_owned(), d.to_string())
    };
    HashMap::from([
        doc(
            "/client.json",
            &format!("{base}/client.json"),
            serde_json::json!({}),
        ),
        doc(
            "/mismatch.json",
            &format!("{base}/someone-else.json"),
            serde_json::json!({}),
        ),
        doc(
            "/secret.json",
            &format!("{base}/secret.json"),
            serde_json::json!({"token_endpoint_auth_method": "client_secret_basic"}),
        ),
    ])
}

async fn run<F, Fut>(bin: &str, flags: &str, name: &str, check: F)
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    let provider = match Provider::start(bin, flags).await {
        Ok(p) => p,
        Err(e) => panic!("cannot start {bin}: {e}"),
    };
    provider.run(name, check).await;
}

/// An HTML error page: 400, no `Location` (RFC 6749 §4.1.2.1).
fn expect_error_page(ex: &Exchange) -> CheckResult {
    ex.ensure(
        ex.location().is_none(),
        "an unverified client: an error page, never a redirect (RFC 6749 §4.1.2.1)",
    )?;
    ex.expect_status(400)?.expect_media_type("text/html")?;
    Ok(())
}

async fn authorize_get(ctx: &Ctx, client_id: &str, redirect: &str) -> Result<Exchange, Failure> {
    let pkce = Pkce::new();
    let url = flow::authorize_url(
        ctx,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("state", "s1"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    ctx.http.get(&url).await
}

/// The whole story, with the `oauth2` crate as the client.
async fn document_client_runs_the_code_flow(t: Target) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    ctx.meta.exchange.ensure(
        ctx.meta.raw["client_id_metadata_document_supported"] == serde_json::json!(true),
        "with --client-metadata-documents the metadata says client_id_metadata_document_supported: true (draft §5)",
    )?;
    let redirect = flow::loopback_redirect_uri()?;
    let docs = documents(|base| client_documents(base, &redirect)).await;
    let client_id = format!("{}/client.json", docs.base);
    let bad = |what: &str, e: &dyn std::fmt::Display| Failure::new(format!("{what}: {e}"));
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(ctx.meta.authorization_endpoint.clone())
                .map_err(|e| bad("authorization_endpoint", &e))?,
        )
        .set_token_uri(
            TokenUrl::new(ctx.meta.token_endpoint.clone())
                .map_err(|e| bad("token_endpoint", &e))?,
        )
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(|e| bad("redirect_uri", &e))?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("photos.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = ctx.fresh_browser()?;
    let landing = flow::browse(&browser, url.as_str(), &redirect, &ALICE, Decision::Allow).await?;
    landing.expect_state_and_iss(&ctx, Some(csrf.secret()))?;
    let consent = landing
        .trace
        .iter()
        .find(|ex| ex.body.contains("name=\"decision\""))
        .ok_or_else(|| landing.failure("no consent page in the dance"))?;
    consent.ensure(
        consent.body.contains("has not verified this app"),
        "the consent page of a metadata-document client must say PhotoBook has not verified it",
    )?;
    consent.ensure(
        consent.body.contains("127.0.0.1"),
        "the consent page must name the host of the client_id (draft §6.3)",
    )?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| bad("http client", &e))?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|e| Failure::new(format!("the oauth2 crate's token request failed: {e:?}")))?;
    let photos = flow::api(&ctx, token.access_token().secret()).await?;
    photos.expect_status(200)?;
    let json = photos.json()?;
    photos.ensure(json["owner"] == "alice", "the token is alice's")?;
    photos.ensure(
        token.refresh_token().is_some(),
        "a document naming refresh_token gets one",
    )?;
    // The document was fetched once for the whole dance (cached, §5.2).
    let hits = docs.hits.load(Ordering::SeqCst);
    photos.ensure(
        hits == 1,
        format!("the document was fetched {hits} times; once is enough within max-age"),
    )?;
    Ok(())
}

/// Refusals: an error page, never a redirect.
async fn bad_documents_get_error_pages(t: Target) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    let redirect = flow::loopback_redirect_uri()?;
    let docs = documents(|base| client_documents(base, &redirect)).await;
    for path in [
        "/mismatch.json",
        "/secret.json",
        "/missing.json",
        "/client.json#fragment",
    ] {
        let ex = authorize_get(&ctx, &format!("{}{path}", docs.base), &redirect).await?;
        expect_error_page(&ex)
            .map_err(|f| Failure::new(format!("client_id {}{path}: {}", docs.base, f.0)))?;
    }
    // A valid document, but a redirect URI it does not list.
    let ex = authorize_get(
        &ctx,
        &format!("{}/client.json", docs.base),
        "http://127.0.0.1:1/elsewhere",
    )
    .await?;
    expect_error_page(&ex)?;
    // A document client is public: a secret at the token endpoint is invalid_client.
    let secret_client = format!("{}/secret.json", docs.base);
    let verifier = Pkce::new().verifier;
    let ex = ctx
        .http
        .send(Request::post_form(
            ctx.meta.token_endpoint.clone(),
            Auth::Post(&secret_client, "guessed-secret"),
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("code_verifier", &verifier),
            ],
        ))
        .await?;
    ex.expect_oauth_error(401, "invalid_client")?;
    Ok(())
}

/// Without the flag (the DEMO-CONTRACT's provider): nothing advertised,
/// nothing fetched.
async fn off_by_default(t: Target) -> CheckResult {
    let ctx = Ctx::new(&t).await?;
    ctx.meta.exchange.ensure(
        ctx.meta
            .raw
            .get("client_id_metadata_document_supported")
            .is_none_or(|v| v == &serde_json::json!(false)),
        "client ID metadata documents are off by default",
    )?;
    let redirect = flow::loopback_redirect_uri()?;
    let docs = documents(|base| client_documents(base, &redirect)).await;
    let ex = authorize_get(&ctx, &format!("{}/client.json", docs.base), &redirect).await?;
    expect_error_page(&ex)?;
    let hits = docs.hits.load(Ordering::SeqCst);
    ex.ensure(
        hits == 0,
        format!("the provider fetched {hits} documents while off"),
    )?;
    Ok(())
}

#[tokio::test]
async fn axum_document_client_runs_the_code_flow() {
    run(
        "photo-provider",
        FLAGS,
        "document_client_runs_the_code_flow",
        document_client_runs_the_code_flow,
    )
    .await;
}

#[tokio::test]
async fn rocket_document_client_runs_the_code_flow() {
    run(
        "photo-provider-rocket",
        FLAGS,
        "document_client_runs_the_code_flow",
        document_client_runs_the_code_flow,
    )
    .await;
}

#[tokio::test]
async fn axum_bad_documents_get_error_pages() {
    run(
        "photo-provider",
        FLAGS,
        "bad_documents_get_error_pages",
        bad_documents_get_error_pages,
    )
    .await;
}

#[tokio::test]
async fn rocket_bad_documents_get_error_pages() {
    run(
        "photo-provider-rocket",
        FLAGS,
        "bad_documents_get_error_pages",
        bad_documents_get_error_pages,
    )
    .await;
}

#[tokio::test]
async fn axum_off_by_default() {
    run("photo-provider", "memory", "off_by_default", off_by_default).await;
}

#[tokio::test]
async fn rocket_off_by_default() {
    run(
        "photo-provider-rocket",
        "memory",
        "off_by_default",
        off_by_default,
    )
    .await;
}
