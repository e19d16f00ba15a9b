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
    /// Allows plain `http` to hosts other than loopback ones. Off by
    /// default: over `http` anyone on the path could hand the resource
    /// server a signing key of their own (forging every token) or an
    /// `active` answer, and read its client secret. Dangerous: for a
    /// private network you trust as much as the process itself.
    pub dangerous_allow_plain_http: bool,
}

impl Default for FetchLimits {
    /// 5 s and 64 KiB: a metadata document, a JWK Set of a few keys or an
    /// introspection answer is a few KiB.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_document_bytes: 64 * 1024,
            dangerous_allow_plain_http: false,
        }
    }
}

/// An HTTP client with [`FetchLimits`], following no redirect (a
/// verifier's URLs are configured or discovered, never moved).
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
    /// [`FetchLimits::dangerous_allow_plain_http`].
    plain_http: bool,
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
            plain_http: limits.dangerous_allow_plain_http,
        })
    }

    /// `GET url` answered `200`: its body.
    pub(crate) async fn get(&self, url: &str, accept: &str) -> Result<Vec<u8>, FetchError> {
        let response = self
            .client
            .get(checked(url, self.plain_http)?)
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
            .post(checked(url, self.plain_http)?)
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

/// `url` if it is an `https` URL, or an `http` one to a loopback host
/// (RFC 8414 §2, RFC 7662 §4: TLS for metadata, keys and introspection)
/// unless `plain_http` allows any.
fn checked(url: &str, plain_http: bool) -> Result<url::Url, FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::BadUrl("endpoint"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(FetchError::BadUrl("endpoint")),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback || plain_http => Ok(parsed),
        "http" => Err(FetchError::BadUrl(
            "endpoint: plain http to a host other than loopback",
        )),
        _ => Err(FetchError::BadUrl("endpoint")),
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

    /// Keys, metadata and introspection go over TLS, or to a loopback
    /// host; plain `http` elsewhere only when allowed as dangerous.
    #[test]
    fn plain_http_only_to_loopback_unless_dangerously_allowed() {
        for ok in [
            "https://as.example/jwks",
            "http://127.0.0.1:9000/jwks",
            "http://[::1]:9000/introspect",
            "http://localhost:9000/jwks",
        ] {
            assert!(checked(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://as.example/jwks",
            "http://10.0.0.1/introspect",
            "ftp://as.example/x",
        ] {
            assert!(checked(bad, false).is_err(), "{bad}");
        }
        assert!(checked("http://as.example/jwks", true).is_ok());
        assert!(checked("ftp://as.example/x", true).is_err());
    }

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
