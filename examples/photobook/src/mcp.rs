//! PhotoBook's MCP server (DEMO-CONTRACT "MCP server"), shared by both
//! providers: the handler with its one tool, `list_photos` (the token
//! owner's photos, the same JSON as `GET /api/photos`, as text content), and
//! the official Rust SDK's (`rmcp`) Streamable HTTP service that serves it.
//!
//! The axum provider routes `{issuer}/mcp` to [`service`] behind
//! `tessera_axum::require_scope`; the rocket provider, whose framework does
//! not run tower services, checks the token with `tessera_rocket`'s guard and
//! hands the request to [`call`].

use std::sync::Arc;

use http::request::Parts;
use http_body_util::{BodyExt, Full};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use tessera::AccessToken;

use crate::logsafe::escape;
use crate::photos::photos_for;

/// The MCP service type both providers run.
pub type McpService = StreamableHttpService<PhotoBookMcp, NeverSessionManager>;

/// The MCP server's handler: one tool, `list_photos`.
///
/// It holds no state of its own; who is asking comes with each request, as
/// the [`AccessToken`] the bearer guard validated (rmcp hands the HTTP
/// request's [`Parts`], extensions included, to the tool).
#[derive(Debug, Clone)]
pub struct PhotoBookMcp {
    tool_router: ToolRouter<Self>,
}

impl Default for PhotoBookMcp {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_router]
impl PhotoBookMcp {
    /// A handler with its tools.
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// The token owner's photos as JSON text: `{"owner", "photos": [...]}`.
    #[tool(
        description = "List the photos of the PhotoBook user who authorized this client, as JSON: {\"owner\": ..., \"photos\": [{\"id\", \"title\"}, ...]}",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_photos(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        // The guard in front of the endpoint put it there; without it the
        // request never reached rmcp.
        let Some(token) = parts.extensions.get::<AccessToken>() else {
            return Err(ErrorData::internal_error("no validated access token", None));
        };
        let list = photos_for(token);
        let text = serde_json::to_string(&list)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        tracing::info!(
            principal = %escape(token.principal()),
            client = %escape(token.client_id.as_str()),
            "photos listed over MCP"
        );
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PhotoBookMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("photobook", env!("CARGO_PKG_VERSION")))
            .with_instructions("PhotoBook: call `list_photos` to list the signed-in user's photos.")
    }
}

/// The rmcp Streamable HTTP service for the issuer `issuer`: stateless (no `Mcp-Session-Id`, so an
/// authenticated client cannot make the server keep sessions), plain JSON
/// answers, bodies capped at `max_body_bytes`, and DNS-rebinding protection
/// that accepts the issuer's host and loopback names.
///
/// `Origin`, when a request carries one, must be the issuer's own origin or
/// a loopback one (any port: a local MCP inspector or desktop app), else
/// 403 (MCP Streamable HTTP transport, security warning: servers MUST
/// validate `Origin` and answer 403 to an invalid one). Clients that are
/// not pages send none and pass.
pub fn service(
    issuer: &str,
    max_body_bytes: usize,
) -> StreamableHttpService<PhotoBookMcp, NeverSessionManager> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let mut origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .flat_map(|host| [format!("http://{host}:*"), format!("https://{host}:*")])
        .collect();
    if let Ok(u) = url::Url::parse(issuer)
        && let Some(host) = u.host_str()
    {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
        if let Some(port) = u.port_or_known_default() {
            origins.push(format!("{}://{host}:{port}", u.scheme()));
        }
    }
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(max_body_bytes);
    StreamableHttpService::new(
        || Ok(PhotoBookMcp::new()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// One MCP answer, framework-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (JSON: the service answers with plain JSON, never a stream).
    pub body: Vec<u8>,
}

/// JSON-RPC 2.0 §5.1: the body is not JSON.
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0 §5.1: JSON, but not one valid request.
const INVALID_REQUEST: i64 = -32600;

/// Why a POST's body never reached the MCP service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProblem {
    /// Longer than the server's `max_body_bytes` (the value).
    TooLarge(usize),
    /// Broken on the wire (a malformed chunked encoding, a client gone).
    Unreadable,
    /// Not arrived within [`tessera::BODY_READ_TIMEOUT`].
    TimedOut,
}

/// The answer to a POST to `/mcp` whose body could not be read: `413`,
/// `400` (a JSON-RPC parse error, as for any body that is not JSON) or
/// `408` with `Connection: close`. A client error, never the `500` the SDK
/// answers a body it cannot read.
pub fn body_refusal(problem: BodyProblem) -> McpAnswer {
    match problem {
        BodyProblem::TooLarge(max) => McpAnswer {
            status: 413,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("Payload Too Large: request body exceeds {max} bytes").into_bytes(),
        },
        BodyProblem::Unreadable => json_rpc_error(
            PARSE_ERROR,
            "Parse error: the request body could not be read",
        ),
        BodyProblem::TimedOut => McpAnswer {
            status: 408,
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("connection".into(), "close".into()),
            ],
            body: b"Request Timeout: the request body took too long to arrive".to_vec(),
        },
    }
}

/// What replaces the SDK's `415` for a POST whose `Content-Type` is JSON
/// but whose body is not one JSON-RPC message (not JSON, a batch, an object
/// that is no request, notification or response): `400` with a JSON-RPC
/// error whose `id` is null. The MCP Streamable HTTP transport (2025-06-18,
/// "Sending Messages to the Server") says a server that cannot accept the
/// input MUST answer an HTTP error status, "e.g., 400 Bad Request", with
/// a JSON-RPC error response that has no id; JSON-RPC 2.0 §5 gives the
/// codes (-32700 parse error, -32600 invalid request) and the null id.
/// `415` stays what it means: a `Content-Type` that is not JSON.
///
/// `status` is the SDK's answer to the request; `None`: that answer stands.
pub fn malformed_message(
    content_type: Option<&str>,
    status: u16,
    body: &[u8],
) -> Option<McpAnswer> {
    if status != 415 || !is_json(content_type) {
        return None;
    }
    if serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(body).is_ok() {
        return None;
    }
    Some(
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            json_rpc_error(PARSE_ERROR, "Parse error: the body is not JSON")
        } else {
            json_rpc_error(
                INVALID_REQUEST,
                "Invalid Request: the body is not one JSON-RPC request, notification or response (batches are not supported)",
            )
        },
    )
}

/// The methods this server serves with params (the SDK answers `ping`
/// alike, whatever its params).
const SERVED_METHODS: &[&str] = &["initialize", "tools/list", "tools/call"];

/// JSON-RPC 2.0 §5.1: `-32602 Invalid params`. The SDK reads a request for
/// a method it serves whose `params` do not fit that method (`tools/call`
/// without a tool name, `arguments` that are no object) as some other,
/// unknown method, and answers `-32601 Method not found`; this puts the
/// code the client can act on in its place. `request` and `response` are
/// the bodies; `None` keeps the answer as it is.
pub fn invalid_params(request: &[u8], response: &[u8]) -> Option<Vec<u8>> {
    let request: serde_json::Value = serde_json::from_slice(request).ok()?;
    let method = request.get("method")?.as_str()?;
    if !SERVED_METHODS.contains(&method) {
        return None;
    }
    let mut response: serde_json::Value = serde_json::from_slice(response).ok()?;
    let error = response.get_mut("error")?;
    if error.get("code")?.as_i64()? != -32601 {
        return None;
    }
    error["code"] = serde_json::json!(-32602);
    error["message"] = serde_json::json!(format!(
        "Invalid params: the params of {method} are not what the method takes"
    ));
    Some(response.to_string().into_bytes())
}

/// Whether a `Content-Type` is one the SDK reads as JSON:
/// `application/json`, parameters allowed, any case.
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// `400` with a JSON-RPC error object whose `id` is null.
fn json_rpc_error(code: i64, message: &str) -> McpAnswer {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    });
    McpAnswer {
        status: 400,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// Serves one request with `service` for a framework that does not run tower
/// services: `method`, `uri` (path and query), the request's `headers`
/// (`Host`, `Origin`, `Accept`, `Content-Type`, `MCP-Protocol-Version`, ...)
/// and `body`, from a client whose `token` the caller's bearer guard
/// validated (the tool reads it from the request's extensions).
pub async fn call(
    service: &McpService,
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    token: AccessToken,
) -> McpAnswer {
    let mut request = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let body = bytes::Bytes::from(body);
    let content_type = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.clone());
    let mut request = match request.body(Full::new(body.clone())) {
        Ok(request) => request,
        Err(e) => {
            tracing::info!(error = %e, "MCP request refused: not a valid HTTP request");
            return McpAnswer {
                status: 400,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"Bad Request".to_vec(),
            };
        }
    };
    request.extensions_mut().insert(token);
    let response = service.handle(request).await;
    if method.eq_ignore_ascii_case("POST")
        && let Some(refusal) =
            malformed_message(content_type.as_deref(), response.status().as_u16(), &body)
    {
        return refusal;
    }
    let (parts, response_body) = response.into_parts();
    let mut answer_body = match response_body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(never) => match never {},
    };
    let rewritten = if method.eq_ignore_ascii_case("POST") {
        invalid_params(&body, &answer_body)
    } else {
        None
    };
    let length_changed = rewritten.is_some();
    if let Some(new) = rewritten {
        answer_body = new;
    }
    McpAnswer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| !(length_changed && *name == http::header::CONTENT_LENGTH))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: answer_body,
    }
}
