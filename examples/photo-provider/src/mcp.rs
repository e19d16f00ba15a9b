//! PhotoBook as an MCP server (DEMO-CONTRACT "MCP server").
//!
//! `{issuer}/mcp` speaks the Model Context Protocol over the Streamable HTTP
//! transport, served by the official Rust SDK (`rmcp`) as a tower service.
//! Tessera makes it an OAuth protected resource (MCP authorization,
//! revision 2025-06-18 and later): `{issuer}/mcp` is declared once, in
//! [`photobook::server_builder`], as a [`tessera::ProtectedResource`]; from
//! that declaration `tessera-axum`'s guard demands a token whose audience is
//! `{issuer}/mcp` (RFC 8707) and that carries `photos.read` (RFC 6750),
//! every refusal carries the `resource_metadata` pointer (RFC 9728 §5.1),
//! and [`tessera_axum::router`] serves the metadata document at
//! `{host}/.well-known/oauth-protected-resource{path}` (RFC 9728 §3.1).
//! The how-to (`examples/photo-provider/MCP.md`) shows the same in one page.
//!
//! The one tool, `list_photos`, answers with the token owner's photos: the
//! same JSON as `GET /api/photos`, as text content.

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::http::request::Parts;
use axum::response::Response;
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

pub use photobook::MCP_PATH;

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

/// The rmcp Streamable HTTP service: stateless (no `Mcp-Session-Id`, so an
/// authenticated client cannot make the server keep sessions), plain JSON
/// answers, bodies capped at `max_body_bytes`, and DNS-rebinding protection
/// that accepts the issuer's host and loopback names.
///
/// `Origin`, when a request carries one, must be the issuer's own origin or
/// a loopback one (any port: a local MCP inspector or desktop app), else
/// 403 (MCP Streamable HTTP transport, security warning: servers MUST
/// validate `Origin` and answer 403 to an invalid one). Clients that are
/// not pages send none and pass.
fn service(
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

/// MCP answers carry the user's data: never cached (RFC 9111 §5.2.2.5).
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The MCP endpoint, `{issuer}/mcp`, behind Tessera's bearer guard.
///
/// The endpoint is declared as a protected resource in the demo's server
/// ([`photobook::server_builder`]), so the guard checks that a token's
/// audience is `{issuer}/mcp` (RFC 8707) besides its `photos.read` scope,
/// and every refusal names the resource's metadata
/// (`{issuer}/.well-known/oauth-protected-resource/mcp`, RFC 9728 §5.1),
/// which [`tessera_axum::router`] serves.
pub fn router(server: &Server) -> Router {
    let config = server.config();
    let path = format!("{}{MCP_PATH}", issuer_path(&config.issuer));
    Router::new()
        .route_service(&path, service(&config.issuer, config.max_body_bytes))
        .route_layer(require_scope(server.clone(), &[PHOTOS_READ]))
        .route_layer(axum::middleware::map_response(no_store))
}

/// The issuer's path (`""` for `http://127.0.0.1:9000`).
fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}
