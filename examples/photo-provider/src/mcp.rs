//! PhotoBook as an MCP server (DEMO-CONTRACT "MCP server").
//!
//! `{issuer}/mcp` speaks the Model Context Protocol over the Streamable HTTP
//! transport, served by the official Rust SDK (`rmcp`) as a tower service.
//! Tessera makes it an OAuth protected resource (MCP authorization,
//! revision 2025-06-18 and later): every request needs an access token with
//! `photos.read` (RFC 6750), refusals carry the `resource_metadata` pointer
//! (RFC 9728 §5.1), and the protected resource metadata document is served
//! at `{host}/.well-known/oauth-protected-resource{path}` (RFC 9728 §3.1).
//!
//! The one tool, `list_photos`, answers with the token owner's photos: the
//! same JSON as `GET /api/photos`, as text content.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use photobook::logsafe::escape;
use photobook::photos::{PHOTOS_READ, photos_for};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use tessera::{AccessToken, Server};
use tessera_axum::require_scope;

/// The MCP endpoint's path below the issuer.
pub const MCP_PATH: &str = "/mcp";

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

/// Where the MCP resource lives, derived from the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpResource {
    /// The resource identifier (RFC 8707) and endpoint URL: `{issuer}/mcp`.
    pub resource: String,
    /// The path of the endpoint on this server (`{issuer path}/mcp`).
    pub path: String,
    /// The protected resource metadata URL (RFC 9728 §3.1): the well-known
    /// segment goes between the host and the resource's path.
    pub metadata_url: String,
    /// The path of that document on this server.
    pub metadata_path: String,
    /// The authorization server's issuer.
    pub issuer: String,
}

impl McpResource {
    /// The MCP resource of the server whose issuer is `issuer`.
    pub fn for_issuer(issuer: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let resource = format!("{issuer}{MCP_PATH}");
        let (origin, path) = match url::Url::parse(&resource) {
            Ok(u) => (
                u.origin().ascii_serialization(),
                u.path().trim_end_matches('/').to_owned(),
            ),
            Err(_) => (issuer.clone(), MCP_PATH.to_owned()),
        };
        let metadata_path = format!("/.well-known/oauth-protected-resource{path}");
        Self {
            metadata_url: format!("{origin}{metadata_path}"),
            metadata_path,
            path,
            resource,
            issuer,
        }
    }

    /// The RFC 9728 §2 document.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": [PHOTOS_READ],
            "bearer_methods_supported": ["header"],
            "resource_name": "PhotoBook MCP server",
        })
    }
}

/// The rmcp Streamable HTTP service: stateless (no `Mcp-Session-Id`, so an
/// authenticated client cannot make the server keep sessions), plain JSON
/// answers, bodies capped at `max_body_bytes`, and DNS-rebinding protection
/// that accepts the issuer's host and loopback names.
fn service(
    issuer: &str,
    max_body_bytes: usize,
) -> StreamableHttpService<PhotoBookMcp, NeverSessionManager> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(u) = url::Url::parse(issuer)
        && let Some(host) = u.host_str()
    {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(max_body_bytes);
    StreamableHttpService::new(
        || Ok(PhotoBookMcp::new()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// Adds `resource_metadata` (RFC 9728 §5.1) to the guard's Bearer challenge.
fn with_resource_metadata(mut response: Response, metadata_url: &str) -> Response {
    let Some(challenge) = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
    else {
        return response;
    };
    let value = format!("{challenge}, resource_metadata=\"{metadata_url}\"");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// The MCP endpoint behind Tessera's bearer guard (`photos.read`), and its
/// protected resource metadata.
pub fn router(server: &Server) -> Router {
    let config = server.config();
    let mcp = McpResource::for_issuer(&config.issuer);
    let metadata_url = mcp.metadata_url.clone();
    let endpoint = Router::new()
        .route_service(&mcp.path, service(&config.issuer, config.max_body_bytes))
        .route_layer(require_scope(server.clone(), &[PHOTOS_READ]))
        .route_layer(axum::middleware::map_response(move |r: Response| {
            let url = metadata_url.clone();
            async move { with_resource_metadata(r, &url) }
        }));
    let document = mcp.metadata();
    let metadata = Router::new().route(
        &mcp.metadata_path,
        get(move || {
            let document = document.clone();
            async move { ([(CACHE_CONTROL, "max-age=3600")], Json(document)).into_response() }
        }),
    );
    endpoint.merge(metadata)
}
