//! PhotoBook as an MCP server (DEMO-CONTRACT "MCP server"), against
//! `photo-provider`.
//!
//! The end-to-end check is played by the official Rust MCP SDK's own client
//! (`rmcp`, with its OAuth support) knowing nothing but the URL of
//! `{issuer}/mcp`: it probes the endpoint and reads the `401`'s
//! `resource_metadata` (RFC 9728 §5.1), fetches the protected resource
//! metadata (RFC 9728 §3) and the authorization server's (RFC 8414),
//! registers itself (RFC 7591), sends the person to the authorization
//! endpoint with PKCE (RFC 7636) and `resource` (RFC 8707), redeems the code,
//! and calls the `list_photos` tool over the Streamable HTTP transport. The
//! person's part (login as alice, allow) is played by the conformance
//! crate's form-filling browser.
//!
//! The other checks hold the endpoint's refusals to RFC 6750 §3 and RFC 9728
//! §5.1 with raw HTTP.

use std::future::Future;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tessera_conformance::demo::{ALICE, BACKUP_JOB, PHOTO_CLI, User};
use tessera_conformance::flow::{self, Decision};
use tessera_conformance::http::{Exchange, Request};
use tessera_conformance::{CheckResult, Ctx, Failure, Provider, Target};

/// Both providers serve `/mcp` (DEMO-CONTRACT: the rocket one is "the same
/// provider").
const BINS: [&str; 2] = ["photo-provider", "photo-provider-rocket"];

/// Runs `check` against a fresh provider of each kind (memory store).
async fn run<F, Fut>(name: &str, check: F)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    for bin in BINS {
        let provider = match Provider::start(bin, "memory").await {
            Ok(p) => p,
            Err(e) => panic!("cannot start {bin}: {e}"),
        };
        provider.run(&format!("{bin}: {name}"), &check).await;
    }
}

/// `{issuer}/mcp`.
fn mcp_url(ctx: &Ctx) -> String {
    format!("{}/mcp", ctx.meta.issuer)
}

/// `{issuer}/.well-known/oauth-protected-resource/mcp` (RFC 9728 §3.1: the
/// well-known segment between the host and the resource's path).
fn mcp_metadata_url(ctx: &Ctx) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        ctx.meta.issuer
    )
}

/// An MCP `initialize` request (JSON-RPC over Streamable HTTP, as any MCP
/// client sends it first), with `authorization` if given.
fn initialize(ctx: &Ctx, authorization: Option<&str>) -> Request {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "tessera-conformance", "version": "0"}
        }
    });
    let r = Request::get(mcp_url(ctx))
        .method(reqwest::Method::POST)
        .content_type("application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    match authorization {
        Some(a) => r.header("authorization", a),
        None => r,
    }
}

/// Checks the challenge carries `resource_metadata` naming the MCP
/// resource's metadata (RFC 9728 §5.1), first, as DEMO-CONTRACT writes it:
/// `Bearer resource_metadata="{issuer}/.well-known/oauth-protected-resource/mcp"`.
fn expect_resource_metadata(ctx: &Ctx, ex: &Exchange, what: &str) -> CheckResult {
    let challenge = ex.header("www-authenticate").unwrap_or_default();
    let want = format!("Bearer resource_metadata=\"{}\"", mcp_metadata_url(ctx));
    ex.ensure(
        flow::is_bearer_challenge(challenge) && challenge.starts_with(&want),
        format!("{what}: expected `WWW-Authenticate: Bearer` with {want}, got {challenge:?}"),
    )?;
    Ok(())
}

/// Tokens for `client` as `user` through the code flow, with extra
/// authorization request parameters `extra` (e.g. `resource`).
async fn user_tokens(
    ctx: &Ctx,
    client: &tessera_conformance::demo::DemoClient,
    user: &User,
    scope: &str,
    extra: &[(&str, &str)],
) -> Result<flow::Tokens, Failure> {
    let redirect_uri = flow::loopback_redirect_uri()?;
    let pkce = flow::Pkce::new();
    let state = flow::random_string();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client.id),
        ("redirect_uri", redirect_uri.as_str()),
        ("state", state.as_str()),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", scope),
    ];
    pairs.extend_from_slice(extra);
    let url = flow::authorize_url(ctx, &pairs);
    let landing = flow::browse(ctx, &url, &redirect_uri, user, Decision::Allow).await?;
    landing.expect_state_and_iss(ctx, Some(&state))?;
    let code = landing
        .param("code")
        .ok_or_else(|| landing.failure("the redirect carries no code"))?;
    let mut token_pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    token_pairs.extend_from_slice(extra);
    let ex = ctx
        .http
        .post_form(&ctx.meta.token_endpoint, client.post(), &token_pairs)
        .await?;
    flow::expect_tokens(&ex)
}

/// The photos in a `list_photos` result: its one text content, parsed.
fn photos_of(result: &CallToolResult) -> Result<serde_json::Value, Failure> {
    if result.is_error == Some(true) {
        return Err(Failure::new(format!(
            "list_photos answered with an error: {result:?}"
        )));
    }
    let [content] = result.content.as_slice() else {
        return Err(Failure::new(format!(
            "list_photos: expected one content block, got {result:?}"
        )));
    };
    let text = content
        .as_text()
        .ok_or_else(|| Failure::new(format!("list_photos: not text content: {content:?}")))?;
    serde_json::from_str(&text.text)
        .map_err(|e| Failure::new(format!("list_photos: not JSON ({e}): {}", text.text)))
}

/// Checks `json` is `user`'s photo list: `owner` and as many photos, each
/// with `id` and `title`.
fn expect_photos_of(json: &serde_json::Value, user: &User) -> CheckResult {
    let owner = json.get("owner").and_then(|v| v.as_str());
    let photos = json.get("photos").and_then(|v| v.as_array());
    let ok = owner == Some(user.username)
        && photos.is_some_and(|p| {
            p.len() == user.photos
                && p.iter().all(|photo| {
                    photo.get("id").is_some_and(serde_json::Value::is_string)
                        && photo.get("title").is_some_and(serde_json::Value::is_string)
                })
        });
    tessera_conformance::ensure(ok, || {
        format!(
            "expected {}'s {} photos ({{\"owner\", \"photos\": [{{\"id\", \"title\"}}]}}), got {json}",
            user.username, user.photos
        )
    })
}

/// How the `rmcp` client gets its client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// It registers itself (RFC 7591) at the discovered
    /// `registration_endpoint`: the client knows nothing in advance.
    Dynamic,
    /// It was configured with a client id the provider knows (MCP
    /// authorization's first choice when one exists).
    Preregistered(&'static str),
}

/// The MCP authorization story with the `rmcp` client, told nothing but the
/// endpoint's URL (and, for [`Registration::Preregistered`], a client id):
/// returns the access token it got.
async fn rmcp_client_lists_alices_photos(
    ctx: &Ctx,
    registration: Registration,
) -> Result<String, Failure> {
    let endpoint = mcp_url(ctx);
    let sdk =
        |what: &str, e: &dyn std::fmt::Display| Failure::new(format!("rmcp's client: {what}: {e}"));

    // Without a token the client is refused.
    let anonymous = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_uri(endpoint.clone()))
        .await;
    tessera_conformance::ensure(anonymous.is_err(), || {
        "an MCP client without a token was served".into()
    })?;

    // Discovery from the 401 (RFC 9728), RFC 8414 metadata, registration
    // (RFC 7591), and the authorization URL with PKCE and `resource`
    // (RFC 8707): all the SDK's own doing.
    let redirect_uri = flow::loopback_redirect_uri()?;
    let mut oauth = OAuthState::new(endpoint.as_str(), None)
        .await
        .map_err(|e| sdk("setting up OAuth", &e))?;
    let request =
        AuthorizationRequest::new(redirect_uri.as_str()).with_client_name("An MCP client");
    let request = match registration {
        Registration::Dynamic => request,
        Registration::Preregistered(id) => request.with_preregistered_client(id),
    };
    oauth
        .start_authorization(request)
        .await
        .map_err(|e| sdk("discovery and registration", &e))?;
    let authorization_url = oauth
        .get_authorization_url()
        .await
        .map_err(|e| sdk("the authorization URL", &e))?;
    let url = url::Url::parse(&authorization_url).map_err(|e| {
        Failure::new(format!(
            "the SDK's authorization URL {authorization_url}: {e}"
        ))
    })?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let client_id_ok = match registration {
        Registration::Dynamic => {
            param("client_id").is_some_and(|id| !id.is_empty() && id != PHOTO_CLI.id)
        }
        Registration::Preregistered(id) => param("client_id").as_deref() == Some(id),
    };
    tessera_conformance::ensure(
        url.as_str().starts_with(&ctx.meta.authorization_endpoint)
            && param("resource").as_deref() == Some(endpoint.as_str())
            && param("code_challenge_method").as_deref() == Some("S256")
            && client_id_ok,
        || {
            format!(
                "expected the discovered authorization endpoint with the client id ({registration:?}), PKCE S256 and resource={endpoint}, got {authorization_url}"
            )
        },
    )?;

    // The person: logs in as alice and allows.
    let landing = flow::browse(
        ctx,
        &authorization_url,
        &redirect_uri,
        &ALICE,
        Decision::Allow,
    )
    .await?;
    oauth
        .handle_callback_url(landing.location.as_str())
        .await
        .map_err(|e| sdk("redeeming the code", &e))?;
    let manager = oauth
        .into_authorization_manager()
        .ok_or_else(|| Failure::new("rmcp's client is not authorized after the callback"))?;
    let token = manager
        .get_access_token()
        .await
        .map_err(|e| sdk("the access token", &e))?;

    // The MCP session with the token.
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest13::Client::new(), manager),
        StreamableHttpClientTransportConfig::with_uri(endpoint.clone()),
    );
    let client = ClientConfig::default()
        .serve(transport)
        .await
        .map_err(|e| sdk("initialize", &e))?;
    let tools = client
        .list_all_tools()
        .await
        .map_err(|e| sdk("tools/list", &e))?;
    tessera_conformance::ensure(tools.iter().any(|t| t.name == "list_photos"), || {
        format!("tools/list has no list_photos: {tools:?}")
    })?;
    let result = client
        .call_tool(CallToolRequestParams::new("list_photos"))
        .await
        .map_err(|e| sdk("tools/call list_photos", &e))?;
    expect_photos_of(&photos_of(&result)?, &ALICE)?;
    let _ = client.cancel().await;
    Ok(token)
}

/// The issue's "done when": an MCP client never configured for PhotoBook
/// connects, registers itself (RFC 7591), gets alice's consent and lists her
/// photos; the same token is refused at `/api/photos` (RFC 8707 audience).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_mcp_client_registers_and_lists_alices_photos() {
    run(
        "mcp::unconfigured_mcp_client_registers_and_lists_alices_photos",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let token = rmcp_client_lists_alices_photos(&ctx, Registration::Dynamic).await?;
            let ex = flow::api(&ctx, &token).await?;
            flow::expect_invalid_token(&ex, "the MCP server's token at /api/photos")?;
            Ok(())
        },
    )
    .await;
}

/// The same story for an MCP client configured with a known client id
/// (`photo-cli`, public, loopback redirect): discovery, PKCE, `resource`,
/// consent, the tool call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preregistered_mcp_client_lists_alices_photos() {
    run(
        "mcp::preregistered_mcp_client_lists_alices_photos",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            rmcp_client_lists_alices_photos(&ctx, Registration::Preregistered(PHOTO_CLI.id))
                .await?;
            Ok(())
        },
    )
    .await;
}

/// RFC 9728 §3.2: the document names the resource, its authorization
/// server, the scope and how to send the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata() {
    run("mcp::protected_resource_metadata", |t| async move {
        let ctx = Ctx::new(&t).await?;
        let ex = ctx.http.get(&mcp_metadata_url(&ctx)).await?;
        ex.expect_status(200)?
            .expect_media_type("application/json")?;
        let json = ex.json()?;
        let want_resource = mcp_url(&ctx);
        ex.ensure(
            json.get("resource").and_then(|v| v.as_str()) == Some(want_resource.as_str()),
            format!("expected resource {want_resource}"),
        )?;
        ex.ensure(
            json.get("authorization_servers") == Some(&serde_json::json!([ctx.meta.issuer])),
            format!("expected authorization_servers [{}]", ctx.meta.issuer),
        )?;
        ex.ensure(
            json.get("scopes_supported") == Some(&serde_json::json!(["photos.read"])),
            "expected scopes_supported [\"photos.read\"]",
        )?;
        ex.ensure(
            json.get("bearer_methods_supported") == Some(&serde_json::json!(["header"])),
            "expected bearer_methods_supported [\"header\"]",
        )?;
        Ok(())
    })
    .await;
}

/// No token: `401` with a bare Bearer challenge (RFC 6750 §3.1: no error
/// code) carrying `resource_metadata` (RFC 9728 §5.1) and the scopes to
/// ask for (`scope`, as the MCP authorization spec recommends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_401_with_resource_metadata() {
    run(
        "mcp::no_token_is_401_with_resource_metadata",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            for request in [initialize(&ctx, None), Request::get(mcp_url(&ctx))] {
                let ex = ctx.http.send(request).await?;
                ex.expect_status(401)?;
                expect_resource_metadata(&ctx, &ex, "no token")?;
                let challenge = ex.header("www-authenticate").unwrap_or_default();
                ex.ensure(
                    !challenge.contains("error="),
                    "a request without credentials gets no error code (RFC 6750 §3.1)",
                )?;
                // MCP authorization: the challenge SHOULD name the scopes
                // to ask for (RFC 6750 §3 `scope`).
                ex.ensure(
                    challenge.contains("scope=\"photos.read\""),
                    format!("the challenge names scope=\"photos.read\", got {challenge:?}"),
                )?;
            }
            Ok(())
        },
    )
    .await;
}

/// An unknown token: `401 invalid_token` with `resource_metadata`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_is_401_invalid_token_with_resource_metadata() {
    run(
        "mcp::bad_token_is_401_invalid_token_with_resource_metadata",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let ex = ctx
                .http
                .send(initialize(&ctx, Some("Bearer not-a-token-we-issued")))
                .await?;
            flow::expect_invalid_token(&ex, "an unknown token at /mcp")?;
            expect_resource_metadata(&ctx, &ex, "an unknown token")?;
            Ok(())
        },
    )
    .await;
}

/// A valid token without `photos.read`: `403 insufficient_scope` naming it
/// (RFC 6750 §3.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_without_photos_read_is_403_insufficient_scope() {
    run(
        "mcp::token_without_photos_read_is_403_insufficient_scope",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let resource = mcp_url(&ctx);
            let tokens = user_tokens(
                &ctx,
                &PHOTO_CLI,
                &ALICE,
                "photos.write",
                &[("resource", &resource)],
            )
            .await?;
            let ex = ctx
                .http
                .send(initialize(&ctx, Some(&format!("Bearer {}", tokens.access))))
                .await?;
            flow::expect_bearer_error(&ex, 403, "insufficient_scope", "photos.write only at /mcp")?;
            let challenge = ex.header("www-authenticate").unwrap_or_default();
            ex.ensure(
                challenge.contains("scope=\"photos.read\""),
                format!("the challenge should name scope=\"photos.read\", got {challenge:?}"),
            )?;
            Ok(())
        },
    )
    .await;
}

/// A client-credentials token for `{issuer}/mcp` (RFC 8707 §2 `resource` at
/// the token endpoint).
async fn mcp_client_token(ctx: &Ctx) -> Result<flow::Tokens, Failure> {
    let resource = mcp_url(ctx);
    let ex = ctx
        .http
        .post_form(
            &ctx.meta.token_endpoint,
            BACKUP_JOB.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource.as_str()),
            ],
        )
        .await?;
    flow::expect_tokens(&ex)
}

/// A token with `photos.read` for the MCP server answers MCP: `initialize`
/// over raw HTTP, as a client of another SDK would send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_token_initializes() {
    run("mcp::valid_token_initializes", |t| async move {
        let ctx = Ctx::new(&t).await?;
        let tokens = mcp_client_token(&ctx).await?;
        let ex = ctx
            .http
            .send(initialize(&ctx, Some(&format!("Bearer {}", tokens.access))))
            .await?;
        ex.expect_status(200)?;
        let json = ex.json()?;
        ex.ensure(
            json.pointer("/result/serverInfo/name").is_some()
                && json.pointer("/result/capabilities/tools").is_some(),
            "expected an initialize result with serverInfo and the tools capability",
        )?;
        // Streamable HTTP transport, security warning: a present `Origin`
        // is validated, and an invalid one is 403; the server's own origin
        // and a local app's pass.
        let bearer = format!("Bearer {}", tokens.access);
        let own = url::Url::parse(&mcp_url(&ctx))
            .map_err(|e| Failure::new(e.to_string()))?
            .origin()
            .ascii_serialization();
        for (origin, status) in [
            ("https://evil.example", 403),
            (own.as_str(), 200),
            ("http://localhost:6274", 200),
        ] {
            let ex = ctx
                .http
                .send(initialize(&ctx, Some(&bearer)).header("origin", origin))
                .await?;
            ex.expect_status(status)?;
        }
        Ok(())
    })
    .await;
}

/// RFC 8707 both ways: a token for the photo API (no `resource`: the
/// default audience `{issuer}/api`) is refused at `/mcp` with `401
/// invalid_token` and the MCP server's `resource_metadata`; a token for
/// `/mcp` is refused at `/api/photos`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_one_resource_are_refused_at_the_other() {
    run(
        "mcp::tokens_for_one_resource_are_refused_at_the_other",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let api_token = flow::client_token(&ctx, &BACKUP_JOB, None).await?;
            flow::api(&ctx, &api_token.access)
                .await?
                .expect_status(200)?;
            let ex = ctx
                .http
                .send(initialize(
                    &ctx,
                    Some(&format!("Bearer {}", api_token.access)),
                ))
                .await?;
            flow::expect_invalid_token(&ex, "a token for /api at /mcp")?;
            expect_resource_metadata(&ctx, &ex, "a token for /api at /mcp")?;

            let mcp_token = mcp_client_token(&ctx).await?;
            let ex = flow::api(&ctx, &mcp_token.access).await?;
            flow::expect_invalid_token(&ex, "a token for /mcp at /api/photos")?;
            Ok(())
        },
    )
    .await;
}

/// A POST whose body is not one JSON-RPC message is `400` with a JSON-RPC
/// error whose `id` is null (MCP Streamable HTTP transport, 2025-06-18,
/// "Sending Messages to the Server": an input the server cannot accept
/// gets an HTTP error status, "e.g., 400 Bad Request", and MAY carry a
/// JSON-RPC error response that has no id; JSON-RPC 2.0 §5 and §5.1 give
/// the codes): not JSON is -32700, a batch (no longer part of MCP since
/// 2025-06-18) or an object that is no message -32600. A `Content-Type`
/// that is not JSON stays `415`, and a body broken on the wire (a malformed
/// chunked encoding) is `400`, not a `500`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_json_rpc_errors() {
    run(
        "mcp::malformed_bodies_are_400_json_rpc_errors",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let tokens = mcp_client_token(&ctx).await?;
            let bearer = format!("Bearer {}", tokens.access);
            for (body, code) in [
                ("{not json", -32700),
                ("", -32700),
                (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
                (r#"{"hello":"world"}"#, -32600),
                (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
            ] {
                let ex = ctx
                    .http
                    .send(initialize(&ctx, Some(&bearer)).body(body.to_owned()))
                    .await?;
                ex.expect_status(400)?;
                let json = ex.json()?;
                ex.ensure(
                    json.get("jsonrpc") == Some(&serde_json::json!("2.0"))
                        && json.get("id") == Some(&serde_json::Value::Null)
                        && json.pointer("/error/code") == Some(&serde_json::json!(code)),
                    format!(
                        "{body:?}: expected a JSON-RPC error {code} with a null id, got {json}"
                    ),
                )?;
            }
            // A valid message still answers, and a non-JSON media type is 415.
            let ping = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
            let ex = ctx
                .http
                .send(initialize(&ctx, Some(&bearer)).body(ping.to_owned()))
                .await?;
            ex.expect_status(200)?;
            let ex = ctx
                .http
                .send(
                    initialize(&ctx, Some(&bearer))
                        .content_type("text/plain")
                        .body(ping.to_owned()),
                )
                .await?;
            ex.expect_status(415)?;
            let status = broken_chunked_post(&ctx, &bearer).await?;
            if status != 400 {
                return Err(Failure::new(format!(
                    "a malformed chunked body: expected 400, got {status}"
                )));
            }
            Ok(())
        },
    )
    .await;
}

/// JSON-RPC 2.0 §5.1: a served method whose `params` do not fit it is
/// `-32602 Invalid params`, answered to the request's `id`, not the SDK's
/// `-32601 Method not found`; an unknown method stays `-32601`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_that_do_not_fit_are_invalid_params() {
    run(
        "mcp::params_that_do_not_fit_are_invalid_params",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let tokens = mcp_client_token(&ctx).await?;
            let bearer = format!("Bearer {}", tokens.access);
            for (body, code) in [
                (r#"{"jsonrpc":"2.0","id":3,"method":"tools/call"}"#, -32602),
                (
                    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_photos","arguments":[1,2]}}"#,
                    -32602,
                ),
                (
                    r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"junk":true}}"#,
                    -32602,
                ),
                (r#"{"jsonrpc":"2.0","id":3,"method":"no/such/method"}"#, -32601),
            ] {
                let ex = ctx
                    .http
                    .send(initialize(&ctx, Some(&bearer)).body(body.to_owned()))
                    .await?;
                let json = ex.json()?;
                ex.ensure(
                    json.get("id") == Some(&serde_json::json!(3))
                        && json.pointer("/error/code") == Some(&serde_json::json!(code)),
                    format!("{body}: expected a JSON-RPC error {code} for id 3, got {json}"),
                )?;
            }
            Ok(())
        },
    )
    .await;
}

/// Sends `POST /mcp` whose chunked body breaks after its first chunk (a
/// chunk size that is not hex) over a raw connection, and returns the
/// answer's status.
async fn broken_chunked_post(ctx: &Ctx, bearer: &str) -> Result<u16, Failure> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let url = url::Url::parse(&mcp_url(ctx)).map_err(|e| Failure::new(e.to_string()))?;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| Failure::new(format!("connect: {e}")))?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"jso\r\nZZ\r\nxx\r\n",
        url.path()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Failure::new(format!("write: {e}")))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), read)
        .await
        .map_err(|_| Failure::new("no answer to a malformed chunked body within 15 s"))?;
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::new(format!("no status line in {line:?}")))
}

/// Methods other than `POST` (the one the stateless Streamable HTTP
/// endpoint serves) answer alike on both providers: without a token `401`
/// with the challenge, as for `POST`; with one, `405` whose `Allow` names
/// only `POST` (RFC 9110 §15.5.6: the methods the resource supports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_are_guarded_then_405_allow_post() {
    run(
        "mcp::other_methods_are_guarded_then_405_allow_post",
        |t| async move {
            let ctx = Ctx::new(&t).await?;
            let tokens = mcp_client_token(&ctx).await?;
            let bearer = format!("Bearer {}", tokens.access);
            for method in ["GET", "DELETE", "PUT", "PATCH", "OPTIONS"] {
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|e| Failure::new(e.to_string()))?;
                let ex = ctx
                    .http
                    .send(Request::get(mcp_url(&ctx)).method(method.clone()))
                    .await?;
                ex.expect_status(401)?;
                expect_resource_metadata(&ctx, &ex, &format!("{method} without a token"))?;
                let ex = ctx
                    .http
                    .send(
                        Request::get(mcp_url(&ctx))
                            .method(method.clone())
                            .header("authorization", bearer.as_str()),
                    )
                    .await?;
                ex.expect_status(405)?;
                ex.ensure(
                    ex.header("allow") == Some("POST"),
                    format!(
                        "{method}: expected `Allow: POST`, got {:?}",
                        ex.header("allow")
                    ),
                )?;
            }
            Ok(())
        },
    )
    .await;
}
