//! The PhotoBook provider as PrintShop sees it: discovered metadata (RFC 8414),
//! the OAuth client built from it, and the photos API.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RedirectUrl,
    TokenUrl,
};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::config::{Config, trim_base};

/// The OAuth client type: authorization and token endpoints set.
///
/// Revocation is done by hand (see [`revoke`]): the oauth2 crate refuses plain-http
/// revocation URLs, and the demo runs on plain-http loopback.
pub type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// How long any single request to the provider may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The subset of RFC 8414 authorization server metadata PrintShop uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer identifier; must equal the URL the metadata was fetched for.
    pub issuer: String,
    /// Where the browser is sent to authorize.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// RFC 7009 revocation endpoint, used on "Disconnect".
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// PKCE methods; must include `S256` when present.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Response types; must include `code` when present.
    #[serde(default)]
    pub response_types_supported: Option<Vec<String>>,
    /// RFC 9207: when true, every authorization response must carry `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// A discovered provider, ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The validated metadata.
    pub metadata: Metadata,
    /// OAuth client configured from the metadata.
    pub client: OAuthClient,
    /// The photos API: `{issuer}/api/photos`.
    pub photos_url: Url,
    /// The RFC 7009 revocation endpoint, if the provider has one.
    pub revocation_url: Option<Url>,
}

/// Why the provider could not be discovered.
#[derive(Debug)]
pub enum DiscoveryError {
    /// The provider could not be reached or answered with an HTTP error.
    Unreachable(String),
    /// The provider answered, but its metadata is unusable.
    Invalid(String),
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "provider unreachable: {why}"),
            Self::Invalid(why) => write!(f, "provider metadata invalid: {why}"),
        }
    }
}

/// The RFC 8414 §3 metadata URL for an issuer: the well-known segment goes
/// between the host and any path component of the issuer.
pub fn metadata_url(issuer: &Url) -> Result<Url, DiscoveryError> {
    let path = issuer.path().trim_end_matches('/');
    let mut url = issuer.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(DiscoveryError::Invalid(format!(
            "provider URL {issuer} is not an http(s) URL"
        )));
    }
    Ok(url)
}

/// Fetches and validates the provider's metadata and builds the OAuth client.
pub async fn discover(config: &Config, http: &reqwest::Client) -> Result<Provider, DiscoveryError> {
    let url = metadata_url(&config.provider)?;
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| DiscoveryError::Unreachable(format!("GET {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DiscoveryError::Unreachable(format!(
            "GET {url} answered {status}"
        )));
    }
    let metadata: Metadata = response
        .json()
        .await
        .map_err(|e| DiscoveryError::Invalid(format!("GET {url}: {e}")))?;
    build(config, metadata)
}

/// Validates `metadata` against what PrintShop needs and builds a [`Provider`].
pub fn build(config: &Config, metadata: Metadata) -> Result<Provider, DiscoveryError> {
    let expected = config.expected_issuer();
    if metadata.issuer != expected {
        return Err(DiscoveryError::Invalid(format!(
            "metadata names issuer {:?}, expected {:?} (RFC 8414 §3.3)",
            metadata.issuer, expected
        )));
    }
    if let Some(methods) = &metadata.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err(DiscoveryError::Invalid(
                "provider does not support PKCE S256".into(),
            ));
        }
    }
    if let Some(types) = &metadata.response_types_supported {
        if !types.iter().any(|t| t == "code") {
            return Err(DiscoveryError::Invalid(
                "provider does not support response_type=code".into(),
            ));
        }
    }
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        DiscoveryError::Invalid(format!("{what} is not a valid URL: {e}"))
    };
    let auth_url = AuthUrl::new(metadata.authorization_endpoint.clone())
        .map_err(|e| invalid("authorization_endpoint", &e))?;
    let token_url = TokenUrl::new(metadata.token_endpoint.clone())
        .map_err(|e| invalid("token_endpoint", &e))?;
    let revocation_url = match &metadata.revocation_endpoint {
        Some(endpoint) => {
            Some(Url::parse(endpoint).map_err(|e| invalid("revocation_endpoint", &e))?)
        }
        None => None,
    };
    let redirect_url = RedirectUrl::new(config.redirect_uri())
        .map_err(|e| DiscoveryError::Invalid(format!("redirect URI: {e}")))?;
    let issuer_url = Url::parse(&metadata.issuer).map_err(|e| invalid("issuer", &e))?;
    let photos_url = Url::parse(&format!("{}/api/photos", trim_base(&issuer_url)))
        .map_err(|e| invalid("photos API", &e))?;

    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_client_secret(ClientSecret::new(config.client_secret.clone()))
        .set_auth_uri(auth_url)
        .set_token_uri(token_url)
        .set_redirect_uri(redirect_url);

    Ok(Provider {
        metadata,
        client,
        photos_url,
        revocation_url,
    })
}

/// The provider, discovered on first use and cached; a failed discovery is
/// retried on the next request (the provider may simply not be up yet).
#[derive(Debug, Default)]
pub struct LazyProvider {
    cached: Mutex<Option<Provider>>,
}

impl LazyProvider {
    /// The discovered provider, discovering it now if needed.
    pub async fn get(
        &self,
        config: &Config,
        http: &reqwest::Client,
    ) -> Result<Provider, DiscoveryError> {
        let mut cached = self.cached.lock().await;
        if let Some(provider) = cached.as_ref() {
            return Ok(provider.clone());
        }
        let provider = discover(config, http).await?;
        tracing::info!(
            issuer = %provider.metadata.issuer,
            authorization_endpoint = %provider.metadata.authorization_endpoint,
            token_endpoint = %provider.metadata.token_endpoint,
            "discovered PhotoBook provider"
        );
        *cached = Some(provider.clone());
        Ok(provider)
    }
}

/// One photo as the provider's API returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiPhoto {
    /// Photo id (a number or a string).
    pub id: serde_json::Value,
    /// Photo title.
    pub title: String,
}

/// The photos API's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiPhotos {
    /// The user (or client) the photos belong to.
    pub owner: String,
    /// The photos.
    pub photos: Vec<ApiPhoto>,
}

/// Why the photos API call failed.
#[derive(Debug)]
pub enum ApiError {
    /// 401: the token is expired, revoked or unknown.
    Unauthorized,
    /// 403: the token lacks `photos.read`.
    Forbidden,
    /// Anything else: network trouble, an unexpected status or body.
    Other(String),
}

/// Calls the photos API with `token`.
pub async fn fetch_photos(
    http: &reqwest::Client,
    provider: &Provider,
    token: &AccessToken,
) -> Result<ApiPhotos, ApiError> {
    let response = http
        .get(provider.photos_url.clone())
        .bearer_auth(token.secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Other(format!("GET {}: {e}", provider.photos_url)))?;
    match response.status() {
        reqwest::StatusCode::UNAUTHORIZED => Err(ApiError::Unauthorized),
        reqwest::StatusCode::FORBIDDEN => Err(ApiError::Forbidden),
        status if status.is_success() => response
            .json()
            .await
            .map_err(|e| ApiError::Other(format!("photos API sent an unexpected body: {e}"))),
        status => Err(ApiError::Other(format!("photos API answered {status}"))),
    }
}

/// Revokes `token` (RFC 7009), authenticating with client_secret_basic.
///
/// `hint` is `refresh_token` or `access_token`. Any answer but 200 is an error.
pub async fn revoke(
    http: &reqwest::Client,
    config: &Config,
    url: &Url,
    token: &str,
    hint: &str,
) -> Result<(), String> {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let response = http
        .post(url.clone())
        .basic_auth(
            encode(&config.client_id),
            Some(encode(&config.client_secret)),
        )
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("POST {url} answered {status}")),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_per_rfc8414() {
        let url = |s: &str| Url::parse(s).expect("valid URL");
        assert_eq!(
            metadata_url(&url("http://127.0.0.1:9000"))
                .expect("ok")
                .as_str(),
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            metadata_url(&url("https://example.com/tenant/"))
                .expect("ok")
                .as_str(),
            "https://example.com/.well-known/oauth-authorization-server/tenant"
        );
        assert!(metadata_url(&url("mailto:a@b")).is_err());
    }

    fn metadata(issuer: &str) -> Metadata {
        Metadata {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            revocation_endpoint: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            response_types_supported: Some(vec!["code".into()]),
            authorization_response_iss_parameter_supported: true,
        }
    }

    #[test]
    fn build_checks_issuer_and_pkce() {
        let config = Config::defaults();
        assert!(build(&config, metadata("http://127.0.0.1:9000")).is_ok());
        assert!(build(&config, metadata("http://evil.example")).is_err());
        let mut plain_only = metadata("http://127.0.0.1:9000");
        plain_only.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(build(&config, plain_only).is_err());
        let provider = build(&config, metadata("http://127.0.0.1:9000")).expect("valid");
        assert_eq!(
            provider.photos_url.as_str(),
            "http://127.0.0.1:9000/api/photos"
        );
    }
}
