//! Command-line configuration.

use std::net::SocketAddr;

use clap::Parser;
use url::Url;

/// The client secret seeded for `printshop` in the demo provider (see DEMO-CONTRACT.md).
pub const DEFAULT_CLIENT_SECRET: &str = "printshop-secret-0123456789abcdef0123456789abcdef";

/// PrintShop: a third-party web app that prints your PhotoBook photos.
///
/// It links to the PhotoBook provider with OAuth 2 (authorization code grant
/// with PKCE S256 and `state`), discovering the provider's endpoints from its
/// RFC 8414 metadata. Tokens stay on the server; the browser only gets an
/// opaque session cookie.
#[derive(Debug, Clone, Parser)]
#[command(name = "printshop", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,

    /// Base URL (issuer identifier) of the PhotoBook provider. Its endpoints are
    /// discovered from `{URL}/.well-known/oauth-authorization-server`.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9000", value_parser = parse_base_url)]
    pub provider: Url,

    /// OAuth client identifier registered at the provider.
    #[arg(long, value_name = "ID", default_value = "printshop", value_parser = parse_client_id)]
    pub client_id: String,

    /// OAuth client secret (sent with HTTP Basic authentication to the token endpoint).
    #[arg(long, value_name = "SECRET", default_value = DEFAULT_CLIENT_SECRET, hide_default_value = true, allow_hyphen_values = true, value_parser = parse_client_secret)]
    pub client_secret: String,

    /// URL under which browsers reach PrintShop [default: `http://` + the listen address].
    /// The redirect URI sent to the provider is `{URL}/callback`. `--issuer`
    /// is accepted as another name for it, as every demo program takes it.
    #[arg(long, visible_alias = "issuer", value_name = "URL", value_parser = parse_base_url)]
    pub public_url: Option<Url>,

    /// Where sessions (pending sign-ins and the linked account's tokens) are
    /// kept: `memory` (the default; lost on restart), a Redis server as
    /// `redis://HOST:PORT[/DB]`, under keys `printshop:session:*` that expire
    /// after an hour unused, or PostgreSQL as
    /// `postgres://USER:PASS@HOST:PORT/DB`, in the schema `printshop`
    /// (created at start). A store that does not answer within a few seconds
    /// at start-up is an error.
    #[arg(long, value_name = "STORE", default_value = "memory", value_parser = parse_store)]
    pub store: String,

    /// `opaque` or `jwt`: accepted as every demo program takes it
    /// (DEMO-CONTRACT), so that one set of flags starts them all. A client
    /// reads whatever access tokens the provider issues: it changes nothing here.
    #[arg(long, value_name = "FORMAT", default_value = "opaque", value_parser = ["opaque", "jwt"])]
    pub access_tokens: String,
}

/// A client secret is not empty: an empty one would only be refused at a
/// user's first sign-in, by the provider.
fn parse_client_secret(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(text.to_owned())
}

/// Accepts an `http(s)://HOST[:PORT][/PATH]` URL without query, fragment
/// or credentials: the provider's issuer, or PrintShop's own base URL
/// (`{URL}/callback` is the redirect URI, which must not carry them
/// either, RFC 6749 §3.1.2). Refused at start, not at a user's first
/// sign-in.
fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() || text.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
}

/// A client identifier: not empty, and visible ASCII only (RFC 6749 §2.2,
/// Appendix A.1: VSCHAR).
fn parse_client_id(text: &str) -> Result<String, String> {
    if text.is_empty() || !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("must be one or more visible ASCII characters".into());
    }
    Ok(text.to_owned())
}

/// Accepts `memory`, a `redis://HOST:PORT[/DB]` URL or a
/// `postgres://USER:PASS@HOST:PORT/DB` URL.
fn parse_store(value: &str) -> Result<String, String> {
    if value == "memory" {
        return Ok(value.to_owned());
    }
    match Url::parse(value) {
        Ok(url)
            if url.scheme() == "redis"
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Ok(value.to_owned())
        }
        Ok(url)
            if matches!(url.scheme(), "postgres" | "postgresql")
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.fragment().is_none() =>
        {
            Ok(value.to_owned())
        }
        _ => Err(
            "expected `memory`, redis://HOST:PORT[/DB] or postgres://USER:PASS@HOST:PORT/DB"
                .to_owned(),
        ),
    }
}

impl Config {
    /// The configuration with every flag at its default value.
    pub fn defaults() -> Self {
        // Parsing no arguments can only fail if the defaults above are invalid,
        // which the `defaults_parse` unit test rules out.
        Self::parse_from(["printshop"])
    }

    /// The public base URL, without a trailing slash: `--public-url` or `http://` + listen address.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => trim_base(url),
            None => format!("http://{}", self.listen),
        }
    }

    /// The redirect URI registered for this client: `{public-url}/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.public_base())
    }

    /// The provider's issuer identifier as PrintShop expects it in metadata and
    /// in `iss` parameters: the `--provider` URL without a trailing slash.
    pub fn expected_issuer(&self) -> String {
        trim_base(&self.provider)
    }

    /// Whether cookies should carry the `Secure` attribute (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https")
    }
}

/// `url` as a string without the trailing slash the URL parser adds to an empty path.
pub(crate) fn trim_base(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn takes_every_demo_programs_flags() {
        let config = Config::try_parse_from([
            "printshop",
            "--issuer",
            "http://127.0.0.1:9001",
            "--store",
            "redis://127.0.0.1:6379/0",
        ])
        .expect("the contract's common flags are accepted");
        assert_eq!(config.redirect_uri(), "http://127.0.0.1:9001/callback");
        assert!(Config::try_parse_from(["printshop", "--store", "memory"]).is_ok());
        // DEMO-CONTRACT: `--store postgres://USER:PASS@HOST:PORT/DB` too.
        assert!(
            Config::try_parse_from([
                "printshop",
                "--store",
                "postgres://shop:pw@127.0.0.1:5432/shop"
            ])
            .is_ok()
        );
        assert!(Config::try_parse_from(["printshop", "--store", "postgres://"]).is_err());
        assert!(Config::try_parse_from(["printshop", "--store", "mysql://x"]).is_err());
        assert!(Config::try_parse_from(["printshop", "--store", "nonsense"]).is_err());
        assert!(Config::try_parse_from(["printshop", "--store", "redis://"]).is_err());
    }

    #[test]
    fn defaults_parse() {
        let config = Config::try_parse_from(["printshop"]).expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(config.expected_issuer(), "http://127.0.0.1:9000");
        assert_eq!(config.redirect_uri(), "http://127.0.0.1:9001/callback");
        assert_eq!(config.client_id, "printshop");
        assert_eq!(config.client_secret, DEFAULT_CLIENT_SECRET);
        assert!(!config.secure_cookies());
    }

    #[test]
    fn public_url_drives_redirect_uri() {
        let config = Config::try_parse_from([
            "printshop",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "https://print.example/",
            "--provider",
            "http://127.0.0.1:7000/",
        ])
        .expect("valid flags");
        assert_eq!(config.redirect_uri(), "https://print.example/callback");
        assert_eq!(config.expected_issuer(), "http://127.0.0.1:7000");
        assert!(config.secure_cookies());
    }

    /// A bad `--public-url`, `--provider` or `--client-id` is refused at
    /// start (it used to start and fail at a user's first sign-in).
    #[test]
    fn bad_urls_and_ids_are_refused_at_start() {
        for (flag, bad) in [
            ("--public-url", "javascript:alert(1)"),
            ("--public-url", "ftp://x"),
            ("--public-url", "http://127.0.0.1:9001?x=1"),
            ("--public-url", "http://127.0.0.1:9001#f"),
            ("--public-url", "http://u:p@127.0.0.1:9001"),
            ("--issuer", "http://127.0.0.1:9001?x=1"),
            ("--provider", "ftp://x"),
            ("--provider", "http://127.0.0.1:9000?x=1"),
            ("--provider", "http://127.0.0.1:9000#f"),
            ("--provider", "http://u:p@127.0.0.1:9000"),
            ("--client-id", ""),
            ("--client-id", "print shop\n"),
        ] {
            assert!(
                Config::try_parse_from(["printshop", flag, bad]).is_err(),
                "{flag} {bad:?}"
            );
        }
    }
}
