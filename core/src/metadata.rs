//! Authorization server metadata (RFC 8414), built from configuration.

use serde::Serialize;

use crate::client::AuthMethod;
use crate::http::HttpResponse;
use crate::server::Server;
use crate::storage::Store;

/// The path metadata is served at, relative to the issuer (RFC 8414 §3).
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-authorization-server";

/// RFC 8414 §2 metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The issuer identifier.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The revocation endpoint (RFC 7009).
    pub revocation_endpoint: String,
    /// The introspection endpoint (RFC 7662).
    pub introspection_endpoint: String,
    /// Known scopes.
    pub scopes_supported: Vec<String>,
    /// Only `code`.
    pub response_types_supported: Vec<&'static str>,
    /// Only `query`.
    pub response_modes_supported: Vec<&'static str>,
    /// Registered grant types.
    pub grant_types_supported: Vec<String>,
    /// Only `S256`.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication methods at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication methods at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// `iss` is sent in authorization responses (RFC 9207 §3).
    pub authorization_response_iss_parameter_supported: bool,
}

impl<S: Store> Server<S> {
    /// This server's metadata.
    pub fn metadata(&self) -> Metadata {
        let c = self.config();
        let all = vec![
            AuthMethod::ClientSecretBasic.as_str(),
            AuthMethod::ClientSecretPost.as_str(),
            AuthMethod::None.as_str(),
        ];
        Metadata {
            issuer: c.issuer.clone(),
            authorization_endpoint: c.endpoint_url(&c.paths.authorize),
            token_endpoint: c.endpoint_url(&c.paths.token),
            revocation_endpoint: c.endpoint_url(&c.paths.revoke),
            introspection_endpoint: c.endpoint_url(&c.paths.introspect),
            scopes_supported: c.scopes.keys().map(|s| s.to_string()).collect(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: self.grant_types().map(str::to_owned).collect(),
            code_challenge_methods_supported: vec!["S256"],
            token_endpoint_auth_methods_supported: all.clone(),
            revocation_endpoint_auth_methods_supported: all,
            introspection_endpoint_auth_methods_supported: vec![
                AuthMethod::ClientSecretBasic.as_str(),
                AuthMethod::ClientSecretPost.as_str(),
            ],
            authorization_response_iss_parameter_supported: true,
        }
    }

    /// The metadata document as an HTTP response.
    pub fn metadata_response(&self) -> HttpResponse {
        HttpResponse::json(
            200,
            serde_json::to_string(&self.metadata()).unwrap_or_default(),
        )
    }
}
