//! The provider as photo-cli sees it: its RFC 8414 metadata and the
//! endpoints found there.

use oauth2::{DeviceAuthorizationUrl, TokenUrl};
use serde::Deserialize;
use url::Url;

use crate::error::{Error, describe_reqwest};

/// The `grant_type` of the device grant (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The part of the RFC 8414 metadata photo-cli uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer identifier; must equal the provider URL (RFC 8414 §3.3).
    pub issuer: String,
    /// Where the device polls for its tokens.
    pub token_endpoint: String,
    /// Where the device asks for a user code (RFC 8628 §4).
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// Grant types; must include the device grant when listed.
    #[serde(default)]
    pub grant_types_supported: Option<Vec<String>>,
}

/// A discovered provider: the endpoints photo-cli calls.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The issuer identifier, as the metadata states it.
    pub issuer: String,
    /// The device authorization endpoint.
    pub device_authorization_url: DeviceAuthorizationUrl,
    /// The token endpoint.
    pub token_url: TokenUrl,
    /// The photos API: `{issuer}/api/photos` (DEMO-CONTRACT "Protected API").
    pub photos_url: Url,
}

/// The issuer identifier a provider URL stands for: no trailing slash.
fn issuer_of(provider: &Url) -> String {
    provider.as_str().trim_end_matches('/').to_owned()
}

/// The RFC 8414 §3.1 metadata URL: the well-known segment goes between the
/// host and the issuer's path (`http://h/t` → `http://h/.well-known/oauth-authorization-server/t`).
pub fn metadata_url(provider: &Url) -> Url {
    let path = provider.path().trim_end_matches('/').to_owned();
    let mut url = provider.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url
}

/// Fetches the provider's metadata and checks it.
pub async fn discover(http: &reqwest::Client, provider: &Url) -> Result<Provider, Error> {
    let url = metadata_url(provider);
    let unreachable = |why: String| Error::Unreachable {
        url: issuer_of(provider),
        why,
    };
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| unreachable(format!("GET {url}: {}", describe_reqwest(&e))))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Metadata(format!("GET {url} answered {status}")));
    }
    let body = crate::error::read_capped(response)
        .await
        .map_err(|why| unreachable(format!("GET {url}: {why}")))?;
    let metadata: Metadata = serde_json::from_slice(&body)
        .map_err(|e| Error::Metadata(format!("GET {url}: not RFC 8414 metadata ({e})")))?;
    from_metadata(provider, metadata)
}

/// Checks `metadata` against the provider URL it was fetched for and what
/// photo-cli needs.
pub fn from_metadata(provider: &Url, metadata: Metadata) -> Result<Provider, Error> {
    let expected = issuer_of(provider);
    if metadata.issuer != expected {
        return Err(Error::Metadata(format!(
            "it names issuer {:?}, not {expected:?} (RFC 8414 §3.3); try --provider {}",
            crate::clean(&metadata.issuer),
            crate::clean(&metadata.issuer),
        )));
    }
    if let Some(grants) = &metadata.grant_types_supported {
        if !grants.iter().any(|g| g == DEVICE_CODE_GRANT) {
            return Err(Error::Metadata(
                "the provider does not support the device grant (grant_types_supported)".into(),
            ));
        }
    }
    let device = metadata
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| {
            Error::Metadata(
                "the provider does not support the device grant (no device_authorization_endpoint)"
                    .into(),
            )
        })?;
    let device = http_url("device_authorization_endpoint", device)?;
    let token = http_url("token_endpoint", &metadata.token_endpoint)?;
    let photos_url = http_url("issuer", &format!("{expected}/api/photos"))?;
    Ok(Provider {
        issuer: metadata.issuer,
        device_authorization_url: DeviceAuthorizationUrl::from_url(device),
        token_url: TokenUrl::from_url(token),
        photos_url,
    })
}

/// An absolute http(s) URL named `what` in the metadata.
fn http_url(what: &str, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|e| {
        Error::Metadata(format!(
            "{what} {:?} is not a URL ({e})",
            crate::clean(text)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Metadata(format!(
            "{what} {:?} is not an http(s) URL",
            crate::clean(text)
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn metadata(issuer: &str) -> Metadata {
        Metadata {
            issuer: issuer.into(),
            token_endpoint: format!("{issuer}/token"),
            device_authorization_endpoint: Some(format!("{issuer}/device_authorization")),
            grant_types_supported: Some(vec![DEVICE_CODE_GRANT.into()]),
        }
    }

    #[test]
    fn metadata_url_follows_rfc8414_3_1() {
        assert_eq!(
            metadata_url(&url("http://127.0.0.1:9000")).as_str(),
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            metadata_url(&url("https://h.example/tenant/a/")).as_str(),
            "https://h.example/.well-known/oauth-authorization-server/tenant/a"
        );
    }

    #[test]
    fn endpoints_come_from_the_metadata() {
        let mut m = metadata("http://127.0.0.1:9000");
        m.token_endpoint = "http://127.0.0.1:9000/elsewhere/token".into();
        let p = from_metadata(&url("http://127.0.0.1:9000/"), m).unwrap();
        assert_eq!(
            p.token_url.as_str(),
            "http://127.0.0.1:9000/elsewhere/token"
        );
        assert_eq!(
            p.device_authorization_url.as_str(),
            "http://127.0.0.1:9000/device_authorization"
        );
        assert_eq!(p.photos_url.as_str(), "http://127.0.0.1:9000/api/photos");
    }

    #[test]
    fn unusable_metadata_is_refused() {
        let provider = url("http://127.0.0.1:9000");
        assert!(from_metadata(&provider, metadata("http://localhost:9000")).is_err());
        let mut m = metadata("http://127.0.0.1:9000");
        m.device_authorization_endpoint = None;
        assert!(from_metadata(&provider, m).is_err());
        let mut m = metadata("http://127.0.0.1:9000");
        m.grant_types_supported = Some(vec!["authorization_code".into()]);
        assert!(from_metadata(&provider, m).is_err());
        let mut m = metadata("http://127.0.0.1:9000");
        m.token_endpoint = "javascript:alert(1)".into();
        assert!(from_metadata(&provider, m).is_err());
    }
}
