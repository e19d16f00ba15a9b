//! `photo-cli`: PhotoBook in the terminal.
//!
//! A client with no browser of its own signs a person in with the OAuth 2
//! device authorization grant (RFC 8628): it discovers the provider's
//! endpoints from its metadata (RFC 8414), asks the device authorization
//! endpoint for a user code, tells the person where to type it, polls the
//! token endpoint until they have decided (honouring `interval` and
//! `slow_down`, RFC 8628 §3.5), and then lists the person's photos from
//! `{provider}/api/photos`.
//!
//! Like PrintShop, this is a *third-party* client: it knows nothing of
//! Tessera, only the `oauth2` crate and the demo's public contract.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use url::Url;

mod device;
mod error;
mod photos;
mod progress;
mod provider;

pub use device::{DeviceAuthorization, poll_for_token, request_device_authorization};
pub use error::Error;
pub use photos::{Photo, Photos, fetch_photos};
pub use progress::{Progress, Style};
pub use provider::{Metadata, Provider, discover, metadata_url};

/// The provider photo-cli talks to unless told otherwise (DEMO-CONTRACT.md).
pub const DEFAULT_PROVIDER: &str = "http://127.0.0.1:9000";
/// The client identifier the demo provider registers for photo-cli (public, no secret).
pub const CLIENT_ID: &str = "photo-cli";
/// What photo-cli asks for: reading photos, nothing more.
pub const SCOPE: &str = "photos.read";
/// The longest any single HTTP request may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest connecting to the provider may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Polls in a row that may fail to reach the token endpoint before photo-cli
/// gives up (the oauth2 crate alone would retry until the code expires).
pub const MAX_POLL_FAILURES: u32 = 3;

/// The command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "photo-cli",
    version,
    about = "List your PhotoBook photos from the terminal, signing in with the OAuth 2 device grant (RFC 8628).",
    long_about = "List your PhotoBook photos from the terminal, signing in with the OAuth 2 \
                  device authorization grant (RFC 8628).\n\n\
                  photo-cli discovers the provider's endpoints from its metadata (RFC 8414), \
                  prints a URL and a code for you to open and type in a browser, waits while \
                  you sign in and approve, then prints your photos on stdout. Instructions \
                  and progress go to stderr."
)]
pub struct Args {
    /// Base URL (issuer identifier) of the PhotoBook provider. Every endpoint is
    /// discovered from its metadata at `{URL}/.well-known/oauth-authorization-server`;
    /// the photos are read from `{URL}/api/photos`.
    #[arg(long, value_name = "URL", default_value = DEFAULT_PROVIDER, value_parser = parse_provider)]
    pub provider: Url,

    /// `opaque` or `jwt`: accepted as every demo program takes it
    /// (DEMO-CONTRACT), so that one set of flags starts them all. A client
    /// uses whatever access tokens the provider issues: it changes nothing here.
    #[arg(long, value_name = "FORMAT", default_value = "opaque", value_parser = ["opaque", "jwt"])]
    pub access_tokens: String,
}

/// Accepts an `http(s)://HOST[:PORT][/PATH]` URL with no query or fragment.
fn parse_provider(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment (it is an issuer identifier)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
}

/// The HTTP client every request goes through: bounded in time, and never
/// following redirects (an OAuth client must not, RFC 6749 §3.2 and the
/// oauth2 crate's advice against SSRF).
pub fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("photo-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Other(format!("cannot set up the HTTP client: {e}")))
}

/// The whole program: discover, ask for a code, show it, poll, list photos.
pub async fn run(args: &Args) -> Result<(), Error> {
    let http = http_client()?;
    let provider = discover(&http, &args.provider).await?;
    let details = request_device_authorization(&http, &provider).await?;
    show_instructions(&details);
    let progress = Progress::new(Style::detect(), details.interval(), details.expires_in());
    let token = poll_for_token(&http, &provider, &details, &progress, tokio::time::sleep).await?;
    let photos = fetch_photos(&http, &provider.photos_url, &token).await?;
    let mut out = std::io::stdout().lock();
    photos
        .write_to(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))
}

/// Tells the person what to do, on stderr (stdout is for the photos).
fn show_instructions(details: &DeviceAuthorization) {
    let uri = clean(details.verification_uri().as_str());
    let code = clean(details.user_code().secret());
    let mut text = format!(
        "To let photo-cli see your photos, open this page in a browser:\n\n    {uri}\n\n\
         and enter the code:  {code}\n"
    );
    if let Some(complete) = details.verification_uri_complete() {
        text.push_str(&format!(
            "\nOr open this link, which fills in the code for you:\n\n    {}\n",
            clean(complete.secret())
        ));
    }
    text.push('\n');
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Text from the provider, made safe to print on a terminal: control
/// characters (escape sequences, carriage returns, newlines) become `?`.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls_are_checked() {
        assert!(parse_provider("http://127.0.0.1:9000").is_ok());
        assert!(parse_provider("https://photos.example/tenant").is_ok());
        for bad in [
            "127.0.0.1:9000",
            "ftp://x",
            "http://h/?q=1",
            "http://h/#f",
            "http://u:p@h/",
            "nonsense",
        ] {
            assert!(parse_provider(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_not_printed() {
        assert_eq!(clean("a\u{1b}[2Jb\r\nc"), "a?[2Jb??c");
        assert_eq!(clean("BCDF-GHJK"), "BCDF-GHJK");
    }
}
