//! RFC 8414: authorization server metadata, as the demo contract lists it.

use serde_json::Value;

use crate::http::Request;
use crate::{CheckResult, Ctx, Target};

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Every field DEMO-CONTRACT.md lists, with the values it fixes.
pub async fn metadata_lists_every_contract_field(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = &ctx.meta.exchange;
    let m = &ctx.meta.raw;
    ex.expect_status(200)?
        .expect_media_type("application/json")?;
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let v = m.get(field).and_then(Value::as_str).unwrap_or_default();
        let ok = url::Url::parse(v)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none());
        ex.ensure(
            ok,
            format!("`{field}` must be an absolute http(s) URL, got {v:?}"),
        )?;
    }
    let list = |field: &str| strings(m.get(field));
    let scopes = list("scopes_supported").unwrap_or_default();
    for s in crate::demo::SCOPES {
        ex.ensure(
            scopes.iter().any(|x| x == s),
            format!("`scopes_supported` must list {s:?}, got {scopes:?}"),
        )?;
    }
    ex.ensure(
        list("response_types_supported") == Some(vec!["code".to_owned()]),
        "`response_types_supported` must be [\"code\"]",
    )?;
    ex.ensure(
        list("code_challenge_methods_supported") == Some(vec!["S256".to_owned()]),
        "`code_challenge_methods_supported` must be [\"S256\"]",
    )?;
    let grants = list("grant_types_supported").unwrap_or_default();
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        ex.ensure(
            grants.iter().any(|x| x == g),
            format!("`grant_types_supported` must list {g:?}, got {grants:?}"),
        )?;
    }
    for g in ["implicit", "password"] {
        ex.ensure(
            !grants.iter().any(|x| x == g),
            format!("`grant_types_supported` must not list {g:?}"),
        )?;
    }
    let device = "urn:ietf:params:oauth:grant-type:device_code";
    if grants.iter().any(|x| x == device) {
        ex.ensure(
            m.get("device_authorization_endpoint")
                .and_then(Value::as_str)
                .is_some_and(|u| url::Url::parse(u).is_ok()),
            "the device grant is listed, so `device_authorization_endpoint` must be too",
        )?;
    }
    // DEMO-CONTRACT: `jwks_uri` is listed (signed tokens exist), in every
    // mode.
    ex.ensure(
        m.get("jwks_uri")
            .and_then(Value::as_str)
            .is_some_and(|u| url::Url::parse(u).is_ok()),
        "`jwks_uri` must be listed, a URL",
    )?;
    let methods = list("token_endpoint_auth_methods_supported").unwrap_or_default();
    for a in ["client_secret_basic", "client_secret_post", "none"] {
        ex.ensure(
            methods.iter().any(|x| x == a),
            format!("`token_endpoint_auth_methods_supported` must list {a:?}, got {methods:?}"),
        )?;
    }
    ex.ensure(
        m.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true)),
        "`authorization_response_iss_parameter_supported` must be true",
    )?;
    Ok(())
}

/// `issuer` is exactly the base URL: `http://HOST:PORT`, no trailing slash.
pub async fn issuer_is_the_base_url_exactly(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let ex = &ctx.meta.exchange;
    let issuer = &ctx.meta.issuer;
    ex.ensure(
        issuer == &t.base_url,
        format!("`issuer` must be exactly {:?}, got {issuer:?}", t.base_url),
    )?;
    ex.ensure(!issuer.ends_with('/'), "`issuer` must not end with a slash")?;
    ex.ensure(
        !issuer.contains('?') && !issuer.contains('#'),
        "`issuer` must have no query or fragment (RFC 8414 §2)",
    )?;
    Ok(())
}

/// CORS: a browser-based client (a single-page app, a browser-based MCP
/// client) discovers the server with `fetch` from its own origin: the
/// metadata carries `Access-Control-Allow-Origin: *`, and the preflight of
/// a `GET` with `MCP-Protocol-Version` (as MCP clients send while
/// discovering) is allowed; never with credentials.
pub async fn browser_apps_may_fetch_the_metadata(t: &Target) -> CheckResult {
    let ctx = Ctx::new(t).await?;
    let origin = "https://spa.example";
    let metadata_url = format!("{}/.well-known/oauth-authorization-server", t.base_url);
    let ex = ctx
        .http
        .send(Request::get(&metadata_url).header("origin", origin))
        .await?;
    ex.expect_status(200)?;
    ex.ensure(
        ex.header("access-control-allow-origin") == Some("*"),
        "metadata fetched from a page: Access-Control-Allow-Origin: *",
    )?;
    let preflight = ctx
        .http
        .send(
            Request::get(&metadata_url)
                .method(reqwest::Method::OPTIONS)
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "mcp-protocol-version"),
        )
        .await?;
    preflight.ensure(
        (200..300).contains(&preflight.status),
        format!("the metadata's preflight: 2xx, got {}", preflight.status),
    )?;
    let allowed = |name: &str| {
        preflight
            .header(name)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    preflight.ensure(
        preflight.header("access-control-allow-origin") == Some("*")
            && allowed("access-control-allow-methods").contains("get")
            && allowed("access-control-allow-headers").contains("mcp-protocol-version"),
        "the preflight allows GET with MCP-Protocol-Version from any origin",
    )?;
    preflight.ensure(
        preflight
            .header("access-control-allow-credentials")
            .is_none(),
        "never with credentials",
    )?;
    Ok(())
}
