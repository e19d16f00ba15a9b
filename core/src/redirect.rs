//! Redirect URIs and how a requested one is matched against the registered ones.
//!
//! Matching is exact string comparison (RFC 9700 §2.1, RFC 6749 §3.1.2.3), with
//! one exception: an `http` loopback IP literal (RFC 8252 §7.3) matches any
//! port, since native apps listen on whatever port is free. A public client
//! (a native app) gets that freedom whether it registered a port or not
//! (§7.3: the server "MUST allow any port"); a confidential client (a web
//! client run locally, outside RFC 8252's scope) that registered a port
//! gets that port only
//! ([`Client::accepts_redirect_uri`](crate::Client::accepts_redirect_uri)).
//! A loopback URI's scheme and host are compared without regard to case
//! (RFC 3986 §6.2.2.1), so `HTTP://LOCALHOST/cb` gets the freedom too.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A redirection endpoint: an absolute URI with no fragment (RFC 6749
/// §3.1.2), not a script or data URI, and served over TLS unless it is a
/// loopback URI of a native app (RFC 6749 §3.1.2.1, RFC 8252 §7.3, §8.3;
/// RFC 9700 §2.1). Private-use schemes of native apps (`com.example.app:/cb`,
/// RFC 8252 §7.1) are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri(String);

/// Why a string is not a redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectUriError {
    /// Not an absolute URI.
    #[error("redirect URI is not an absolute URI")]
    NotAbsolute,
    /// Carries a fragment, forbidden by RFC 6749 §3.1.2.
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    /// A scheme that runs or embeds content instead of reaching a client
    /// (`javascript:`, `data:`, `vbscript:`, `file:`, ...).
    #[error("redirect URI has a dangerous scheme")]
    DangerousScheme,
    /// Plain `http` to a host other than the loopback interface (RFC 6749
    /// §3.1.2.1: the code would cross the network in clear).
    #[error("redirect URI must use https unless it is a loopback URI")]
    PlainHttp,
    /// A character no URI holds as it is (RFC 3986 §2: a space, a control
    /// character, non-ASCII text, `"`, `<`, ...; percent-encode it). The
    /// URI is sent back as it is in a `Location` header, where such a
    /// character has no place, and a URL parser would silently change it.
    #[error("redirect URI holds a character a URI cannot hold unencoded")]
    InvalidCharacter,
    /// A scheme other than `http` and `https` without a period: RFC 8252
    /// §7.1 asks native apps for a reverse domain name (`com.example.app`),
    /// and §8.4 says such a scheme "SHOULD be rejected", as any app could
    /// claim it (`myapp:`, and `ws:` or `ftp:` as well).
    #[error("a private-use redirect URI scheme must be a reverse domain name, with a period")]
    UnqualifiedScheme,
}

/// A byte a URI may hold as it is (RFC 3986 §2.2, §2.3, §2.1's `%`): the
/// unreserved and reserved characters.
pub(crate) fn uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Schemes that are never a client's redirection endpoint.
const DANGEROUS_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "blob", "about"];

impl RedirectUri {
    /// Validates a redirect URI for registration.
    pub fn new(uri: impl Into<String>) -> Result<Self, RedirectUriError> {
        let uri = uri.into();
        let parsed = Self::checked(&uri)?;
        // Checked at registration only: a client stored before this rule
        // still decodes (`TryFrom<String>`).
        if !matches!(parsed.scheme(), "http" | "https") && !parsed.scheme().contains('.') {
            return Err(RedirectUriError::UnqualifiedScheme);
        }
        if parsed.scheme() == "http"
            && !matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
        {
            return Err(RedirectUriError::PlainHttp);
        }
        Ok(Self(uri))
    }

    /// Like [`RedirectUri::new`], but allows plain `http` to any host.
    /// Dangerous: the authorization code then crosses the network in clear
    /// (RFC 6749 §3.1.2.1); for test rigs on private networks only.
    pub fn dangerous_allow_plain_http(uri: impl Into<String>) -> Result<Self, RedirectUriError> {
        let uri = uri.into();
        Self::checked(&uri)?;
        Ok(Self(uri))
    }

    /// The checks no option lifts: only URI characters, absolute, no
    /// fragment, no dangerous scheme.
    fn checked(uri: &str) -> Result<url::Url, RedirectUriError> {
        if !uri.bytes().all(uri_byte) {
            return Err(RedirectUriError::InvalidCharacter);
        }
        let parsed = url::Url::parse(uri).map_err(|_| RedirectUriError::NotAbsolute)?;
        if parsed.fragment().is_some() || uri.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        if DANGEROUS_SCHEMES.contains(&parsed.scheme()) {
            return Err(RedirectUriError::DangerousScheme);
        }
        Ok(parsed)
    }

    /// The URI's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As [`matches`](Self::matches), and a loopback IP literal registered
    /// *with* a port matches any port too: for a native app, which listens
    /// wherever the system lets it (RFC 8252 §7.3).
    pub fn matches_any_loopback_port(&self, requested: &str) -> bool {
        self.matches_with(requested, true)
    }

    /// Whether `requested` designates this registered URI: the same string,
    /// or, when this is an `http` loopback IP literal registered without a
    /// port, the same string with any port.
    pub fn matches(&self, requested: &str) -> bool {
        self.matches_with(requested, false)
    }

    /// The same string, or the same loopback IP literal with any port when
    /// registered without one (or with one, given `any_registered_port`).
    fn matches_with(&self, requested: &str, any_registered_port: bool) -> bool {
        if self.0 == requested {
            return true;
        }
        match (
            loopback_without_port(&self.0),
            loopback_without_port(requested),
        ) {
            (Some((registered, had_port)), Some((requested, _))) => {
                registered == requested && (any_registered_port || !had_port)
            }
            _ => false,
        }
    }
}

/// For `http://127.0.0.1[:port]/rest`, `http://[::1][:port]/rest` or
/// `http://localhost[:port]/rest`, the URI without the port and whether it
/// had one; `None` for
/// anything else (RFC 8252 §7.3). RFC 8252 §8.3 does not recommend
/// `localhost` but says it functions like the IP literals, and native MCP
/// clients register it (MCP authorization 2025-11-25's own client metadata
/// example is `http://localhost:3000/callback`; published client ID metadata
/// documents list `http://localhost/callback` and then listen on any free
/// port), so it gets the same port freedom: whoever can listen on one of
/// its ports can listen on the IP literal's as well.
fn loopback_without_port(uri: &str) -> Option<(String, bool)> {
    // Scheme and host are case-insensitive (RFC 3986 §6.2.2.1); the rest
    // is compared as it is.
    fn strip<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
        s.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| s.get(prefix.len()..))
    }
    let rest = strip(uri, "http://")?;
    let (host, after_host) = if let Some(r) = strip(rest, "127.0.0.1") {
        ("127.0.0.1", r)
    } else if let Some(r) = strip(rest, "[::1]") {
        ("[::1]", r)
    } else if let Some(r) = strip(rest, "localhost") {
        ("localhost", r)
    } else {
        return None;
    };
    let tail = match after_host.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            // A port is 1..=65535 (RFC 3986 §3.2.3 allows more digits; no
            // socket does), found by the fuzzer.
            match p.get(..digits).map(str::parse::<u16>) {
                Some(Ok(port)) if port > 0 && digits <= 5 => {}
                _ => return None,
            }
            &p[digits..]
        }
        None => after_host,
    };
    if !(tail.is_empty() || tail.starts_with('/') || tail.starts_with('?')) {
        return None;
    }
    Some((
        format!("http://{host}{tail}"),
        tail.len() != after_host.len(),
    ))
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = RedirectUriError;
    /// Decoding a stored registration: it was checked when registered, maybe
    /// with [`RedirectUri::dangerous_allow_plain_http`], so only the checks no
    /// option lifts apply.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RedirectUri::dangerous_allow_plain_http(s)
    }
}

impl From<RedirectUri> for String {
    fn from(r: RedirectUri) -> String {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uri(s: &str) -> RedirectUri {
        match RedirectUri::new(s) {
            Ok(u) => u,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn exact_match_only() {
        let r = uri("https://app.example/cb");
        assert!(r.matches("https://app.example/cb"));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "http://app.example/cb",
            "https://app.example/c",
            "https://app.example/cb#f",
            "https://app.example.evil/cb",
        ] {
            assert!(!r.matches(other), "{other}");
        }
    }

    #[test]
    fn loopback_port_is_free_rfc8252_7_3() {
        let r = uri("http://127.0.0.1/callback");
        assert!(r.matches("http://127.0.0.1:53124/callback"));
        assert!(r.matches("http://127.0.0.1/callback"));
        assert!(!r.matches("http://127.0.0.1:53124/other"));
        assert!(!r.matches("http://127.0.0.1:/callback"));
        assert!(!r.matches("http://127.0.0.1:5x/callback"));
        assert!(!r.matches("http://127.0.0.1.evil.com:80/callback"));
        assert!(!r.matches("https://127.0.0.1:443/callback"));
        assert!(!r.matches("http://localhost:5000/callback"));
        let v6 = uri("http://[::1]/cb");
        assert!(v6.matches("http://[::1]:8080/cb"));
        // `localhost` as well (RFC 8252 §8.3: it functions like them; MCP
        // clients register it), never a host that merely begins with it.
        let local = uri("http://localhost/callback");
        assert!(local.matches("http://localhost:53124/callback"));
        assert!(!local.matches("http://127.0.0.1:53124/callback"));
        assert!(!local.matches("http://localhost.evil.com:80/callback"));
        assert!(!local.matches("http://localhost:53124/other"));
        assert!(!local.matches("http://localhost:0/callback"));
    }

    #[test]
    fn registered_ports_are_fixed() {
        // Registered with a port: that port only; freedom is for native apps
        // that register the loopback URI without one (RFC 8252 §7.3).
        let r = uri("http://127.0.0.1:9001/callback");
        assert!(r.matches("http://127.0.0.1:9001/callback"));
        assert!(!r.matches("http://127.0.0.1:9002/callback"));
        assert!(!r.matches("http://127.0.0.1/callback"));
        let r =
            RedirectUri::dangerous_allow_plain_http("http://photos.example:9001/callback").unwrap();
        assert!(!r.matches("http://photos.example:9002/callback"));
    }

    #[test]
    fn loopback_scheme_and_host_are_case_insensitive_rfc3986_6_2_2_1() {
        // Registered in capitals: still a loopback URI, with its port free.
        for registered in [
            "HTTP://127.0.0.1/cb",
            "http://LOCALHOST/cb",
            "Http://LocalHost:7/cb",
        ] {
            let r = uri(registered);
            for requested in ["http://127.0.0.1:5000/cb", "HTTP://127.0.0.1:5000/cb"] {
                assert_eq!(
                    r.matches_any_loopback_port(requested),
                    registered.to_ascii_lowercase().contains("127.0.0.1"),
                    "{registered} / {requested}"
                );
            }
            // Registered without a port, capitals or not: any port, also
            // for a client that keeps registered ports (`matches`).
            let ported = registered.contains(":7/");
            assert_eq!(
                r.matches("http://127.0.0.1:5000/cb") || r.matches("http://localhost:5000/cb"),
                !ported,
                "{registered}"
            );
            let localhost = registered.to_ascii_lowercase().contains("localhost");
            assert_eq!(
                r.matches_any_loopback_port("http://LOCALHOST:5000/cb"),
                localhost
            );
            // The path is compared as it is.
            assert!(!r.matches_any_loopback_port("http://127.0.0.1:5000/CB"));
            assert!(!r.matches_any_loopback_port("http://localhost:5000/CB"));
        }
    }

    #[test]
    fn a_native_apps_registered_port_is_free_too_rfc8252_7_3() {
        let r = uri("http://127.0.0.1:9001/callback");
        assert!(r.matches_any_loopback_port("http://127.0.0.1:9002/callback"));
        assert!(r.matches_any_loopback_port("http://127.0.0.1/callback"));
        assert!(r.matches_any_loopback_port("http://127.0.0.1:9001/callback"));
        assert!(!r.matches_any_loopback_port("http://127.0.0.1:9002/other"));
        assert!(!r.matches_any_loopback_port("http://[::1]:9001/callback"));
        assert!(!r.matches_any_loopback_port("http://localhost:9001/callback"));
        let local = uri("http://localhost:3000/callback");
        assert!(local.matches_any_loopback_port("http://localhost:53124/callback"));
        assert!(!local.matches("http://localhost:53124/callback"));
        assert!(!r.matches_any_loopback_port("https://127.0.0.1:9001/callback"));
        let v6 = uri("http://[::1]:7/cb");
        assert!(v6.matches_any_loopback_port("http://[::1]:8080/cb"));
        // Not loopback: exact only.
        let r = RedirectUri::dangerous_allow_plain_http("http://photos.example:9001/cb").unwrap();
        assert!(!r.matches_any_loopback_port("http://photos.example:9002/cb"));
        let r = uri("https://a.example/cb");
        assert!(!r.matches_any_loopback_port("https://a.example:444/cb"));
    }

    #[test]
    fn refuses_what_a_uri_cannot_hold_rfc3986_2() {
        for bad in [
            "https://a.example/cb\n",
            "https://a.example/cb\r\nSet-Cookie: x=1",
            "\thttps://a.example/cb",
            "https://a.example/c b",
            "https://a.example/caf\u{e9}",
            "https://a.example/cb?x=\"y\"",
            "https://a.example/<cb>",
            "https://a.example/cb\u{7f}",
            "data:text/html,<script>alert(1)</script>",
        ] {
            assert_eq!(
                RedirectUri::new(bad),
                Err(RedirectUriError::InvalidCharacter),
                "{bad:?}"
            );
            assert!(RedirectUri::dangerous_allow_plain_http(bad).is_err());
        }
        // Percent-encoded, the same text is a URI.
        assert!(RedirectUri::new("https://a.example/caf%C3%A9?x=%22y%22&z=a+b").is_ok());
        assert!(RedirectUri::new("com.example.app:/oauth2redirect/example-provider").is_ok());
        assert!(RedirectUri::new("http://[::1]:8080/cb").is_ok());
    }

    #[test]
    fn rejects_fragments_and_relative() {
        assert_eq!(
            RedirectUri::new("https://a/cb#x"),
            Err(RedirectUriError::Fragment)
        );
        assert_eq!(RedirectUri::new("/cb"), Err(RedirectUriError::NotAbsolute));
    }

    #[test]
    fn private_use_schemes_need_a_period_rfc8252_8_4() {
        for bad in [
            "myapp:/cb",
            "myapp://cb",
            "ws://client.example/cb",
            "ftp://client.example/cb",
        ] {
            assert_eq!(
                RedirectUri::new(bad),
                Err(RedirectUriError::UnqualifiedScheme),
                "{bad}"
            );
            // A client stored before the rule still decodes.
            assert!(RedirectUri::try_from(bad.to_owned()).is_ok(), "{bad}");
        }
        for ok in [
            "com.example.app:/cb",
            "com.example:/cb",
            "HTTPS://client.example/cb",
        ] {
            assert!(RedirectUri::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_scripts_data_and_plain_http_rfc6749_3_1_2_1() {
        for bad in [
            "javascript:alert(1)",
            "JavaScript://x/%0aalert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                RedirectUri::new(bad),
                Err(RedirectUriError::DangerousScheme),
                "{bad}"
            );
            // No option lifts it.
            assert!(
                RedirectUri::dangerous_allow_plain_http(bad).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            RedirectUri::new("http://client.example/cb"),
            Err(RedirectUriError::PlainHttp)
        );
        assert!(RedirectUri::dangerous_allow_plain_http("http://client.example/cb").is_ok());
        for ok in [
            "https://client.example/cb",
            "http://127.0.0.1:9001/callback",
            "http://[::1]/cb",
            "http://localhost:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(RedirectUri::new(ok).is_ok(), "{ok}");
        }
        // A stored registration decodes even if it was allowed plain http.
        let stored: RedirectUri = serde_json::from_str("\"http://client.example/cb\"").unwrap();
        assert_eq!(stored.as_str(), "http://client.example/cb");
        assert!(serde_json::from_str::<RedirectUri>("\"javascript:alert(1)\"").is_err());
    }

    proptest! {
        #[test]
        fn only_identical_non_loopback_strings_match(a in "https://[a-z]{1,8}\\.example/[a-z]{0,8}", b in "https://[a-z]{1,8}\\.example/[a-z]{0,8}") {
            let r = uri(&a);
            prop_assert_eq!(r.matches(&b), a == b);
        }

        #[test]
        fn loopback_matches_any_port(port in 1u16..=65535, path in "/[a-z]{0,10}") {
            let r = uri(&format!("http://127.0.0.1{path}"));
            let requested = format!("http://127.0.0.1:{port}{path}");
            prop_assert!(r.matches(&requested));
            let other_path = format!("http://127.0.0.1:{port}{path}x");
            prop_assert!(!r.matches(&other_path));
        }

        #[test]
        fn matching_never_panics(s in ".{0,60}") {
            let _ = uri("http://127.0.0.1/cb").matches(&s);
        }
    }
}
