//! HTTP to the authorization server: bounded in time and size, no
//! redirects, and RFC 8414 discovery of its endpoints.

use std::time::Duration;

use serde::Deserialize;

/// Why a document could not be had from the authorization server. A
/// verifier answers each with `503 temporarily_unavailable`: the token is
/// neither accepted nor called invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No connection, a timeout, or a broken transfer.
    #[error("the authorization server could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// It answered with an unexpected status.
    #[error("the authorization server answered {0}")]
    Status(u16),
    /// The document is larger than the configured limit.
    #[error("the document exceeds {0} bytes")]
    TooLarge(usize),
    /// The document is not what was asked for (not JSON, not a JWK Set,
    /// not an introspection answer).
    #[error("the document is malformed: {0}")]
    Malformed(&'static str),
    /// The metadata's `issuer` differs from the issuer it was fetched for
    /// (RFC 8414 §3.3: it MUST be identical, or it is not used).
    #[error("the metadata names another issuer")]
    IssuerMismatch,
    /// The metadata has no such endpoint.
    #[error("the authorization server's metadata has no {0}")]
    NoEndpoint(&'static str),
    /// The last attempt failed and the cooldown before the next has not
    /// passed: the authorization server is not asked again yet.
    #[error("the last fetch failed; not retried before the cooldown")]
    CoolingDown,
    /// The issuer or an endpoint is not an `http(s)` URL.
    #[error("not an http(s) URL: {0}")]
    BadUrl(&'static str),
}

/// How verifiers talk to the authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchLimits {
    /// The whole exchange, connecting included.
    pub timeout: Duration,
    /// The largest document read; a larger one is refused unread.
    pub max_document_bytes: usize,
}

impl Default for FetchLimits {
    /// 5 s and 64 KiB: a metadata document, a JWK Set of a few keys or an
    /// introspection answer is a few KiB.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_document_bytes: 64 * 1024,
        }
    }
}

/// An HTTP client with [`FetchLimits`], following no redirect (a
/// verifier's URLs are configured or discovered, never moved).
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

/// The members of authorization server metadata (RFC 8414 §2) a resource
/// server uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AsMetadata {
    issuer: String,
    #[serde(default)]
    pub(crate) jwks_uri: Option<String>,
    #[serde(default)]
    pub(crate) introspection_endpoint: Option<String>,
}

impl Fetcher {
    pub(crate) fn new(limits: FetchLimits) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            max_bytes: limits.max_document_bytes,
        })
    }

    /// `GET url` answered `200`: its body.
    pub(crate) async fn get(&self, url: &str, accept: &str) -> Result<Vec<u8>, FetchError> {
        let response = self
            .client
            .get(checked(url)?)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(FetchError::Transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        self.body(response).await
    }

    /// `POST url` with a form body and HTTP Basic client authentication
    /// (RFC 6749 §2.3.1: id and secret form-urlencoded first): the status
    /// and the body.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        (client_id, secret): (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), FetchError> {
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(checked(url)?)
            .basic_auth(encode(client_id), Some(encode(secret)))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(FetchError::Transport)?;
        let status = response.status().as_u16();
        Ok((status, self.body(response).await?))
    }

    /// Reads a body of at most the limit, refusing a longer one as soon as
    /// it is known to be longer.
    async fn body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::Transport)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The authorization server metadata of `issuer` (RFC 8414 §3): at
    /// the well-known path inserted between the host and the issuer's
    /// path (§3.1), and naming exactly `issuer` (§3.3).
    pub(crate) async fn discover(&self, issuer: &str) -> Result<AsMetadata, FetchError> {
        let url = well_known_url(issuer)?;
        let body = self.get(&url, "application/json").await?;
        let metadata: AsMetadata = serde_json::from_slice(&body)
            .map_err(|_| FetchError::Malformed("not authorization server metadata"))?;
        if metadata.issuer != issuer {
            return Err(FetchError::IssuerMismatch);
        }
        Ok(metadata)
    }
}

/// `url` if it is an `http(s)` URL.
fn checked(url: &str) -> Result<url::Url, FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::BadUrl("endpoint"))?;
    if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() {
        Ok(parsed)
    } else {
        Err(FetchError::BadUrl("endpoint"))
    }
}

/// RFC 8414 §3.1: `https://as.example/tenant` has its metadata at
/// `https://as.example/.well-known/oauth-authorization-server/tenant`.
pub(crate) fn well_known_url(issuer: &str) -> Result<String, FetchError> {
    let url = url::Url::parse(issuer).map_err(|_| FetchError::BadUrl("issuer"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(FetchError::BadUrl("issuer"));
    }
    let path = url.path().trim_end_matches('/');
    Ok(format!(
        "{}/.well-known/oauth-authorization-server{path}",
        url.origin().ascii_serialization()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_path_is_inserted_before_the_issuer_path_rfc8414_3_1() {
        assert_eq!(
            well_known_url("https://as.example").unwrap(),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            well_known_url("https://as.example/tenant1").unwrap(),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            well_known_url("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server"
        );
        assert!(well_known_url("ftp://as.example").is_err());
        assert!(well_known_url("https://as.example/?x=1").is_err());
        assert!(well_known_url("not a url").is_err());
    }
}
