//! Authorization server metadata (RFC 8414), built from configuration.

use serde::Serialize;

use crate::client::AuthMethod;
use crate::endpoint::Endpoint;
use crate::http::HttpResponse;
use crate::keys::JwsAlgorithm;
use crate::server::Server;

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
    /// The revocation endpoint (RFC 7009), when served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The introspection endpoint (RFC 7662), when served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// The pushed authorization request endpoint (RFC 9126 §5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Whether every client must push its authorization requests (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// The client registration endpoint (RFC 7591 §3, RFC 8414 §2), when
    /// dynamic registration is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The JWK Set document that verifies JWT access tokens (RFC 8414 §2),
    /// when the server has signing keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The device authorization endpoint (RFC 8628 §4), when the device grant is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// Known scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Only `code`.
    pub response_types_supported: Vec<&'static str>,
    /// Only `query`.
    pub response_modes_supported: Vec<&'static str>,
    /// Registered grant types.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    /// Only `S256`.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Client authentication methods at the token endpoint: the registered
    /// [`ClientAuthMethod`](crate::ClientAuthMethod)s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The JWS algorithms of JWT-based client authentication
    /// (`private_key_jwt`, RFC 8414 §2), when such a method is registered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The JWS algorithms of JWT-based client authentication at the
    /// revocation endpoint (RFC 8414 §2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Client authentication methods at the introspection endpoint (every
    /// method but `none`: introspection needs an authenticated client).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// The JWS algorithms of JWT-based client authentication at the
    /// introspection endpoint (RFC 8414 §2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// `iss` is sent in authorization responses (RFC 9207 §3).
    pub authorization_response_iss_parameter_supported: bool,
    /// The JWS algorithms accepted for DPoP proofs (RFC 9449 §5.1):
    /// `ES256` and `EdDSA`.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// Whether a `client_id` may be the URL of a client ID metadata
    /// document (draft-ietf-oauth-client-id-metadata-document §5); sent
    /// only when it may.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_id_metadata_document_supported: bool,
}

impl Server {
    /// An endpoint's absolute URL, if the server serves it: the issuer's
    /// origin followed by the endpoint's path in [`Server::routes`].
    pub fn endpoint_url(&self, endpoint: Endpoint) -> Option<String> {
        let path = self
            .routes()
            .iter()
            .find(|r| r.endpoint == endpoint)?
            .path
            .as_str();
        Some(format!("{}{path}", self.routes_table().origin()))
    }

    /// This server's metadata: every endpoint of [`Server::routes`], and
    /// nothing it does not serve.
    pub fn metadata(&self) -> Metadata {
        let c = self.config();
        let all: Vec<String> = self
            .client_auth_methods()
            .map(|m| m.method().as_str().to_owned())
            .collect();
        let authenticating: Vec<String> = all
            .iter()
            .filter(|m| m.as_str() != AuthMethod::None.as_str())
            .cloned()
            .collect();
        let mut algs: Vec<JwsAlgorithm> = self
            .client_auth_methods()
            .flat_map(|m| m.signing_algorithms())
            .collect();
        algs.sort();
        algs.dedup();
        let algs: Vec<&'static str> = algs
            .into_iter()
            .flat_map(|a| a.names().iter().copied())
            .collect();
        Metadata {
            issuer: c.issuer.clone(),
            authorization_endpoint: format!(
                "{}{}",
                self.routes_table().origin(),
                self.authorization_path()
            ),
            token_endpoint: self.endpoint_url(Endpoint::Token).unwrap_or_default(),
            revocation_endpoint: self.endpoint_url(Endpoint::Revocation),
            introspection_endpoint: self.endpoint_url(Endpoint::Introspection),
            device_authorization_endpoint: self.endpoint_url(Endpoint::DeviceAuthorization),
            registration_endpoint: self.endpoint_url(Endpoint::Registration),
            jwks_uri: self.endpoint_url(Endpoint::Jwks),
            pushed_authorization_request_endpoint: self.endpoint_url(Endpoint::PushedAuthorization),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            scopes_supported: c.scopes.keys().map(|s| s.to_string()).collect(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: self.grant_types().map(str::to_owned).collect(),
            code_challenge_methods_supported: vec!["S256"],
            token_endpoint_auth_methods_supported: all.clone(),
            token_endpoint_auth_signing_alg_values_supported: algs.clone(),
            revocation_endpoint_auth_methods_supported: all,
            revocation_endpoint_auth_signing_alg_values_supported: algs.clone(),
            introspection_endpoint_auth_methods_supported: authenticating,
            introspection_endpoint_auth_signing_alg_values_supported: algs,
            authorization_response_iss_parameter_supported: true,
            dpop_signing_alg_values_supported: crate::dpop::DPOP_ALGORITHMS
                .iter()
                .flat_map(|a| a.names().iter().copied())
                .collect(),
            client_id_metadata_document_supported: self.documents().is_some(),
        }
    }

    /// The metadata document as an HTTP response (served by
    /// [`Server::handle`] with [`Endpoint::Metadata`]).
    pub(crate) fn metadata_response(&self) -> HttpResponse {
        match serde_json::to_string(&self.metadata()) {
            Ok(body) => HttpResponse::json(200, body),
            Err(e) => {
                let e = crate::error::OAuthError::server_error().with_source(e);
                e.log("metadata");
                HttpResponse::oauth_error(&e, &self.config().realm)
            }
        }
    }
}
