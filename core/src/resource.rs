//! Resource indicators (RFC 8707): which protected resource a token is for.
//!
//! A client names the resource it wants a token for with `resource` at the
//! authorization, pushed authorization and token endpoints (§2). The server
//! knows its resources (configuration, [`crate::ServerBuilder::resource`]),
//! each client may be limited to some of them
//! ([`crate::Client::with_resources`]), and a request without `resource`
//! gets the default resource, if one is configured
//! ([`crate::ServerBuilder::default_resource`]). The granted resource is the
//! token's audience: stored with the pending request, the code and every
//! token of the grant, shown as `aud` by introspection, and checked by
//! resource servers ([`crate::Server::verify_bearer_for`]).
//!
//! Tessera grants one resource per request: RFC 8707 §2 lets a client send
//! `resource` several times, and such a request is answered
//! `invalid_target` saying that only one is supported (a token for several
//! resources could be replayed by each of them at the others, §1).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{OAuthError, Reason};
use crate::params::{MAX_PARAMETER_BYTES, Params};

/// The name of the parameter (RFC 8707 §2).
pub(crate) const RESOURCE: &str = "resource";

/// A resource indicator (RFC 8707 §2): an absolute URI (RFC 3986 §4.3)
/// without a fragment, at most 2 KiB. A requested indicator names a
/// configured resource when its text is identical or, for an `http(s)`
/// URL, when the two are equal as the WHATWG URL parser (the `url` crate,
/// as browsers) normalises them, which covers RFC 3986 §6.2.2's (the case
/// of scheme and host, an empty path as `/`, the default port, dot
/// segments) and IPv4 spellings such as `127.1`: MCP clients send
/// `new URL(resource).href`, which turns a configured `https://mcp.example`
/// into `https://mcp.example/`
/// ([`same_resource`](Self::same_resource)). The configured text is what
/// the grant keeps, and what `aud` says.
///
/// ```
/// use tessera::ResourceIndicator;
/// let api = ResourceIndicator::new("https://photos.example/api").unwrap();
/// assert_eq!(api.as_str(), "https://photos.example/api");
/// assert!(ResourceIndicator::new("/api").is_err());
/// assert!(ResourceIndicator::new("https://photos.example/api#x").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceIndicator(Arc<str>);

/// Why a text is not a resource indicator (RFC 8707 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceIndicatorError {
    /// Not an absolute URI: no scheme, or not a URI at all.
    #[error("a resource indicator must be an absolute URI")]
    NotAbsolute,
    /// It has a fragment component, which §2 forbids.
    #[error("a resource indicator must not include a fragment component")]
    Fragment,
    /// Longer than 2 KiB.
    #[error("a resource indicator is at most 2048 bytes")]
    TooLong,
}

impl ResourceIndicator {
    /// Checks `uri` is an absolute URI without a fragment (RFC 8707 §2).
    pub fn new(uri: impl AsRef<str>) -> Result<Self, ResourceIndicatorError> {
        let uri = uri.as_ref();
        if uri.len() > MAX_PARAMETER_BYTES {
            return Err(ResourceIndicatorError::TooLong);
        }
        // `#` can appear nowhere else in a URI; an empty fragment is one too.
        if uri.contains('#') {
            return Err(ResourceIndicatorError::Fragment);
        }
        // The URL parser accepts what a browser would (spaces, a backslash,
        // surrounding blanks) and fixes it; a resource must be the text the
        // server knows, so only what it would leave unchanged but for
        // normalisation is taken: printable ASCII without spaces, quotes or
        // backslashes (RFC 3986 §2), and a scheme (§3.1).
        let plain = uri.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                )
        });
        if !plain || url::Url::parse(uri).is_err() {
            return Err(ResourceIndicatorError::NotAbsolute);
        }
        Ok(Self(uri.into()))
    }

    /// The URI as configured or sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names the same resource: the same text, or two
    /// `http(s)` URLs equal once the URL parser normalised them (MCP
    /// authorization 2025-11-25, canonical server URI: servers SHOULD
    /// accept the case of scheme and host, and a trailing slash on an
    /// empty path).
    ///
    /// ```
    /// use tessera::ResourceIndicator;
    /// let mcp = ResourceIndicator::new("https://mcp.example").unwrap();
    /// let sent = ResourceIndicator::new("HTTPS://MCP.example:443/").unwrap();
    /// assert!(mcp.same_resource(&sent));
    /// let other = ResourceIndicator::new("https://mcp.example/other").unwrap();
    /// assert!(!mcp.same_resource(&other));
    /// ```
    pub fn same_resource(&self, other: &Self) -> bool {
        if self.0 == other.0 {
            return true;
        }
        let web = |u: &url::Url| matches!(u.scheme(), "http" | "https") && u.has_host();
        match (url::Url::parse(&self.0), url::Url::parse(&other.0)) {
            (Ok(a), Ok(b)) => web(&a) && web(&b) && a == b,
            _ => false,
        }
    }
}

/// The configured resource `requested` names ([`ResourceIndicator::same_resource`]),
/// in its configured text; `None` when the server has no such resource.
fn configured(
    requested: ResourceIndicator,
    config: &crate::config::Config,
) -> Option<ResourceIndicator> {
    if config.resources.contains(&requested) {
        return Some(requested);
    }
    config
        .resources
        .iter()
        .find(|r| r.same_resource(&requested))
        .cloned()
}

impl std::fmt::Debug for ResourceIndicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResourceIndicator({})", self.0)
    }
}

impl std::fmt::Display for ResourceIndicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ResourceIndicator {
    type Err = ResourceIndicatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for ResourceIndicator {
    type Error = ResourceIndicatorError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ResourceIndicator> for String {
    fn from(r: ResourceIndicator) -> String {
        r.0.as_ref().to_owned()
    }
}

/// The `resource` of a request, checked for syntax only: `None` when not
/// sent; `invalid_target` (RFC 8707 §2) when it is not an absolute URI
/// without fragment, or when several are sent (Tessera grants one resource
/// per token: one with several audiences could be replayed at each of them).
///
/// Whether the server knows the resource and the client may have it is
/// [`crate::grant::GrantContext::resolve_audience`]'s question.
pub fn requested_resource(params: &Params) -> Result<Option<ResourceIndicator>, OAuthError> {
    let mut values = params.get_all(RESOURCE);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(
            OAuthError::invalid_target("only one resource per request is supported")
                .with_reason(Reason::TargetRepeated),
        );
    }
    ResourceIndicator::new(first)
        .map(Some)
        .map_err(|e| OAuthError::invalid_target(e.to_string()).with_reason(Reason::TargetMalformed))
}

/// The audience a new grant gets (RFC 8707 §2): the requested resource, or
/// the default resource when none is requested; refused with
/// `invalid_target` when the server does not know it or the client may not
/// have it.
pub(crate) fn resolve(
    requested: Option<ResourceIndicator>,
    client: &crate::client::Client,
    config: &crate::config::Config,
) -> Result<Option<ResourceIndicator>, OAuthError> {
    let sent = requested.is_some();
    let Some(resource) = requested.or_else(|| config.default_resource.clone()) else {
        return Ok(None);
    };
    let Some(resource) = configured(resource, config) else {
        return Err(
            OAuthError::invalid_target("unknown resource").with_reason(Reason::TargetUnknown)
        );
    };
    if !client.allows_resource(&resource) {
        let text = if sent {
            "the client may not request this resource"
        } else {
            "the client may not use the default resource: name one with `resource`"
        };
        return Err(OAuthError::invalid_target(text).with_reason(Reason::TargetNotAllowed));
    }
    Ok(Some(resource))
}

/// A grant's audience, when it continues (a refresh): still a resource the
/// server serves and the client may use. Removing a resource, or taking it
/// from a client, ends the refresh-token families already issued for it
/// (`invalid_target`, RFC 8707 §2), rather than let them renew its tokens
/// for months.
pub(crate) fn check_still_allowed(
    granted: Option<&ResourceIndicator>,
    client: &crate::client::Client,
    config: &crate::config::Config,
) -> Result<(), OAuthError> {
    let Some(resource) = granted else {
        return Ok(());
    };
    if !config.resources.contains(resource) {
        return Err(
            OAuthError::invalid_target("the grant's resource is no longer served")
                .with_reason(Reason::TargetUnknown),
        );
    }
    if !client.allows_resource(resource) {
        return Err(OAuthError::invalid_target(
            "the client may no longer use the grant's resource",
        )
        .with_reason(Reason::TargetNotAllowed));
    }
    Ok(())
}

/// A request that continues a grant (a code exchange, a refresh) may repeat
/// the grant's own resource or omit it; any other is `invalid_target`
/// (RFC 8707 §2: the audience cannot widen or move).
pub(crate) fn check_unchanged(
    granted: Option<&ResourceIndicator>,
    params: &Params,
) -> Result<(), OAuthError> {
    match requested_resource(params)? {
        None => Ok(()),
        Some(r) if granted.is_some_and(|g| g.same_resource(&r)) => Ok(()),
        Some(_) => Err(OAuthError::invalid_target(
            "resource differs from the one this grant was issued for",
        )
        .with_reason(Reason::TargetChanged)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn absolute_uri_without_fragment_rfc8707_2() {
        for ok in [
            "https://api.example/",
            "https://api.example/v1?x=1",
            "http://127.0.0.1:9000/api",
            "urn:example:resource",
        ] {
            assert_eq!(ResourceIndicator::new(ok).unwrap().as_str(), ok);
        }
        for (bad, why) in [
            ("/api", ResourceIndicatorError::NotAbsolute),
            ("api.example", ResourceIndicatorError::NotAbsolute),
            ("", ResourceIndicatorError::NotAbsolute),
            (
                "https://api.example/ x",
                ResourceIndicatorError::NotAbsolute,
            ),
            (" https://api.example/", ResourceIndicatorError::NotAbsolute),
            (
                "https://api.example\\x",
                ResourceIndicatorError::NotAbsolute,
            ),
            ("https://api.example/#", ResourceIndicatorError::Fragment),
            ("https://api.example/#f", ResourceIndicatorError::Fragment),
        ] {
            assert_eq!(ResourceIndicator::new(bad).err(), Some(why), "{bad:?}");
        }
        let long = format!("https://a.example/{}", "a".repeat(2048));
        assert_eq!(
            ResourceIndicator::new(long).err(),
            Some(ResourceIndicatorError::TooLong)
        );
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let r = ResourceIndicator::new("https://a.example/x").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"https://a.example/x\"");
        assert_eq!(serde_json::from_str::<ResourceIndicator>(&json).unwrap(), r);
        assert!(serde_json::from_str::<ResourceIndicator>("\"/x\"").is_err());
    }

    #[test]
    fn one_resource_per_request() {
        let p = Params::parse("resource=https%3A%2F%2Fa.example%2Fx").unwrap();
        assert_eq!(
            requested_resource(&p).unwrap().map(|r| r.to_string()),
            Some("https://a.example/x".into())
        );
        let p = Params::parse("resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example")
            .unwrap();
        let e = requested_resource(&p).unwrap_err();
        assert_eq!(
            (e.code, e.reason()),
            (ErrorCode::InvalidTarget, Reason::TargetRepeated)
        );
        let p = Params::parse("resource=%2Fx").unwrap();
        let e = requested_resource(&p).unwrap_err();
        assert_eq!(
            (e.code, e.reason()),
            (ErrorCode::InvalidTarget, Reason::TargetMalformed)
        );
        assert_eq!(e.code.status(), 400);
        assert_eq!(
            requested_resource(&Params::parse("a=1").unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn continuing_grant_may_repeat_or_omit_its_resource() {
        let a = ResourceIndicator::new("https://a.example/x").unwrap();
        let same = Params::parse("resource=https%3A%2F%2Fa.example%2Fx").unwrap();
        let other = Params::parse("resource=https%3A%2F%2Fa.example%2Fy").unwrap();
        let none = Params::default();
        assert!(check_unchanged(Some(&a), &same).is_ok());
        assert!(check_unchanged(Some(&a), &none).is_ok());
        assert!(check_unchanged(None, &none).is_ok());
        for (granted, p) in [(Some(&a), &other), (None, &same)] {
            let e = check_unchanged(granted, p).unwrap_err();
            assert_eq!(
                (e.code, e.reason()),
                (ErrorCode::InvalidTarget, Reason::TargetChanged)
            );
        }
    }
}
