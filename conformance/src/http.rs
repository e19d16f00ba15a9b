//! Raw HTTP with a memory: every request and its response are kept as an
//! [`Exchange`], so a failed assertion can print exactly what was sent and
//! what came back.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Failure;

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Bodies longer than this are cut in failure reports.
const SHOWN_BODY: usize = 1500;

/// One request and its response, as seen on the wire.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request method.
    pub method: String,
    /// The request URL.
    pub url: String,
    /// The request headers that were set explicitly (the client adds a few more).
    pub request_headers: Vec<(String, String)>,
    /// The request body, if any (lossy UTF-8).
    pub request_body: Option<String>,
    /// The response status.
    pub status: u16,
    /// The response headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The response body (lossy UTF-8).
    pub body: String,
}

/// HTML with `<style>`, `<script>`, `<head>` and comments dropped and
/// whitespace collapsed: what matters in a failure report is the markup.
fn readable_html(html: &str) -> String {
    let mut out = html.to_owned();
    for (open, close) in [
        ("<head", "</head>"),
        ("<style", "</style>"),
        ("<script", "</script>"),
        ("<!--", "-->"),
    ] {
        let mut from = 0;
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(start) = lower[from..].find(open).map(|i| from + i) else {
                break;
            };
            let after = lower.as_bytes().get(start + open.len()).copied();
            if open != "<!--" && after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-') {
                from = start + open.len();
                continue;
            }
            let end = lower[start..]
                .find(close)
                .map_or(start + open.len(), |e| start + e + close.len());
            out.replace_range(start..end, "");
            from = start;
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(s: &str) -> String {
    if s.len() <= SHOWN_BODY {
        return s.to_owned();
    }
    let mut end = SHOWN_BODY;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

impl Exchange {
    /// The first value of a response header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a response header.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The exchange as text: request line, headers, body; status, headers, body.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "  > {} {}", self.method, self.url);
        for (k, v) in &self.request_headers {
            let _ = writeln!(s, "  > {k}: {v}");
        }
        if let Some(b) = &self.request_body {
            let _ = writeln!(s, "  >");
            let _ = writeln!(s, "  > {}", cut(b));
        }
        let _ = writeln!(s, "  < {}", self.status);
        for (k, v) in &self.headers {
            let _ = writeln!(s, "  < {k}: {v}");
        }
        if !self.body.is_empty() {
            let is_html = self
                .header("content-type")
                .is_some_and(|c| c.to_ascii_lowercase().contains("html"));
            let body = if is_html {
                readable_html(&self.body)
            } else {
                self.body.clone()
            };
            let _ = writeln!(s, "  <");
            let _ = writeln!(s, "  < {}", cut(&body));
        }
        s
    }

    /// A failure naming `what` went wrong, with this exchange attached.
    pub fn failure(&self, what: impl std::fmt::Display) -> Failure {
        Failure::new(format!("{what}\n{}", self.describe()))
    }

    /// Fails with `what` and this exchange.
    pub fn fail<T>(&self, what: impl std::fmt::Display) -> Result<T, Failure> {
        Err(self.failure(what))
    }

    /// Fails with `what` unless `cond` holds.
    pub fn ensure(&self, cond: bool, what: impl std::fmt::Display) -> Result<&Self, Failure> {
        if cond { Ok(self) } else { self.fail(what) }
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, Failure> {
        serde_json::from_str(&self.body)
            .map_err(|e| self.failure(format!("the response body is not JSON: {e}")))
    }

    /// Checks the status is exactly `status`.
    pub fn expect_status(&self, status: u16) -> Result<&Self, Failure> {
        self.ensure(
            self.status == status,
            format!("expected status {status}, got {}", self.status),
        )
    }

    /// Checks the status is one of `statuses`.
    pub fn expect_status_in(&self, statuses: &[u16]) -> Result<&Self, Failure> {
        self.ensure(
            statuses.contains(&self.status),
            format!("expected a status in {statuses:?}, got {}", self.status),
        )
    }

    /// Checks the `Content-Type` media type (parameters ignored).
    pub fn expect_media_type(&self, media: &str) -> Result<&Self, Failure> {
        let got = self.header("content-type").unwrap_or_default();
        let base = got.split(';').next().unwrap_or_default().trim();
        self.ensure(
            base.eq_ignore_ascii_case(media),
            format!("expected Content-Type {media}, got {got:?}"),
        )
    }

    /// Checks `Cache-Control` contains `no-store` (RFC 6749 §5.1).
    pub fn expect_no_store(&self) -> Result<&Self, Failure> {
        let cc = self.headers_named("cache-control").join(",");
        let ok = cc
            .split(',')
            .any(|d| d.trim().eq_ignore_ascii_case("no-store"));
        self.ensure(
            ok,
            format!("expected `Cache-Control: no-store`, got {cc:?}"),
        )
    }

    /// Checks an RFC 6749 §5.2 error: this status, a JSON body whose `error`
    /// is one of `codes`.
    pub fn expect_oauth_error_in(&self, status: u16, codes: &[&str]) -> Result<&Self, Failure> {
        let json = self.json();
        let code = json
            .as_ref()
            .ok()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str())
            .map(str::to_owned);
        let want = if codes.len() == 1 {
            format!("{status} {}", codes[0])
        } else {
            format!("{status} and one of {codes:?}")
        };
        self.ensure(
            self.status == status && code.as_deref().is_some_and(|c| codes.contains(&c)),
            format!(
                "expected {want}, got {} {}",
                self.status,
                code.as_deref().unwrap_or("(no JSON `error` field)")
            ),
        )?;
        self.expect_media_type("application/json")
    }

    /// Checks an RFC 6749 §5.2 error with exactly this status and code.
    pub fn expect_oauth_error(&self, status: u16, code: &str) -> Result<&Self, Failure> {
        self.expect_oauth_error_in(status, &[code])
    }

    /// A string field of the JSON body.
    pub fn json_str(&self, field: &str) -> Result<String, Failure> {
        let json = self.json()?;
        match json.get(field).and_then(|v| v.as_str()) {
            Some(s) => Ok(s.to_owned()),
            None => self.fail(format!("the JSON body has no string field `{field}`")),
        }
    }
}

/// Client authentication for a back-channel request (RFC 6749 §2.3).
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No client authentication at all.
    Nothing,
    /// `Authorization: Basic` (§2.3.1).
    Basic(&'a str, &'a str),
    /// `client_id` and `client_secret` in the body (§2.3.1).
    Post(&'a str, &'a str),
    /// `client_id` alone, for a public client (§3.2.1).
    ClientId(&'a str),
}

/// The `Authorization: Basic` value for a client (ids and secrets are
/// form-urlencoded first, RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Form-encodes pairs in order, repeats included.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A cookie-keeping HTTP client that never follows redirects and records
/// every exchange.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: reqwest::Method,
    /// The URL.
    pub url: String,
    /// Headers to set.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A GET.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: reqwest::Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST with a form body and the client authentication `auth`.
    pub fn post_form(url: impl Into<String>, auth: Auth<'_>, pairs: &[(&str, &str)]) -> Self {
        let mut all: Vec<(&str, &str)> = Vec::new();
        let mut r = Self {
            method: reqwest::Method::POST,
            url: url.into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: None,
        };
        match auth {
            Auth::Nothing => {}
            Auth::Basic(id, secret) => r.headers.push(("authorization".into(), basic(id, secret))),
            Auth::Post(id, secret) => {
                all.push(("client_id", id));
                all.push(("client_secret", secret));
            }
            Auth::ClientId(id) => all.push(("client_id", id)),
        }
        all.extend_from_slice(pairs);
        r.body = Some(form(&all).into_bytes());
        r
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the method.
    pub fn method(mut self, method: reqwest::Method) -> Self {
        self.method = method;
        self
    }

    /// Replaces the `Content-Type`.
    pub fn content_type(mut self, value: &str) -> Self {
        self.headers.retain(|(k, _)| k != "content-type");
        self.header("content-type", value)
    }
}

impl Http {
    /// A fresh client: its own cookie jar, no redirects, bounded timeouts.
    pub fn new() -> Result<Self, Failure> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Failure::new(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// The underlying reqwest client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` and records the exchange. A transport error is a failure.
    pub async fn send(&self, request: Request) -> Result<Exchange, Failure> {
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.as_str());
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &request.body {
            builder = builder.body(b.clone());
        }
        let mut exchange = Exchange {
            method: request.method.to_string(),
            url: request.url.clone(),
            request_headers: request.headers.clone(),
            request_body: request
                .body
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                return exchange.fail(format!("the request failed before a response: {e:?}"));
            }
        };
        exchange.status = response.status().as_u16();
        exchange.headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        match response.bytes().await {
            Ok(b) => exchange.body = String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return exchange.fail(format!("reading the response body failed: {e}")),
        }
        Ok(exchange)
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Result<Exchange, Failure> {
        self.send(Request::get(url)).await
    }

    /// POST a form to `url` with client authentication `auth`.
    pub async fn post_form(
        &self,
        url: &str,
        auth: Auth<'_>,
        pairs: &[(&str, &str)],
    ) -> Result<Exchange, Failure> {
        self.send(Request::post_form(url, auth, pairs)).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn readable_html_keeps_the_markup() {
        let html = "<html><head><style>a{}</style></head>\n<body><header>H</header><!-- c -->\n  <form method=post><script>x</script><p>ok</p></body></html>";
        assert_eq!(
            super::readable_html(html),
            "<html> <body><header>H</header> <form method=post><p>ok</p></body></html>"
        );
    }
}
