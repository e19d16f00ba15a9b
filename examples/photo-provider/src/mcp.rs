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
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use photobook::mcp::{
    BodyProblem, McpAnswer, body_refusal, invalid_params, is_json, malformed_message, service,
};
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
        .route_layer(from_fn_with_state(
            config.max_body_bytes,
            refuse_malformed_bodies,
        ))
        .route_layer(require_scope(server.clone(), &[PHOTOS_READ]))
        .route_layer(axum::middleware::map_response(no_store))
}

/// Reads a JSON POST's body for the MCP service (at most `max_body_bytes`,
/// within [`tessera::BODY_READ_TIMEOUT`], as the adapter reads its
/// endpoints'), so that a body broken on the wire is a `400`, not the
/// SDK's `500`, and answers a JSON body that is not one JSON-RPC message
/// with a `400` JSON-RPC error instead of the SDK's `415`
/// ([`photobook::mcp::malformed_message`]). Runs after the bearer guard:
/// nothing is read for a request without a valid token.
async fn refuse_malformed_bodies(
    State(max_body_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    // Only a JSON POST's body is read here: anything else goes to the SDK
    // unread, whose own checks (`Accept`, `Content-Type`) answer first.
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if request.method() != Method::POST || !is_json(content_type.as_deref()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, max_body_bytes).collect();
    let body = match tokio::time::timeout(tessera::BODY_READ_TIMEOUT, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return answer(body_refusal(BodyProblem::TooLarge(max_body_bytes)));
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "could not read an MCP request body");
            return answer(body_refusal(BodyProblem::Unreadable));
        }
        Err(_) => return answer(body_refusal(BodyProblem::TimedOut)),
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(body.clone())))
        .await;
    if let Some(refusal) =
        malformed_message(content_type.as_deref(), response.status().as_u16(), &body)
    {
        return answer(refusal);
    }
    // A served method with params that do not fit: -32602, not the SDK's
    // -32601 (`photobook::mcp::invalid_params`). The answer is one small
    // JSON object, read whole only when it is JSON.
    if !is_json(
        response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    ) {
        return response;
    }
    let (mut parts, answer_body) = response.into_parts();
    let Ok(collected) = answer_body.collect().await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    let answer_bytes = collected.to_bytes();
    match invalid_params(&body, &answer_bytes) {
        Some(new) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(new))
        }
        None => Response::from_parts(parts, Body::from(answer_bytes)),
    }
}

/// A framework-neutral MCP answer as an axum response.
fn answer(answer: McpAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, answer.body).into_response();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The issuer's path (`""` for `http://127.0.0.1:9000`).
fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}
