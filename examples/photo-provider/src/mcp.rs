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

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::Response;
use photobook::mcp::service;
use photobook::photos::PHOTOS_READ;
use tessera::Server;
use tessera_axum::require_scope;

pub use photobook::MCP_PATH;
pub use photobook::mcp::PhotoBookMcp;

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
