//! Helpers shared by both providers' test crates: drive the app like a
//! browser. Each crate's `common/mod.rs` adds `Provider::start` for its app.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use photobook::Demo;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use sha2::{Digest, Sha256};
use url::Url;

pub const PRINTSHOP_REDIRECT: &str = "http://127.0.0.1:9001/callback";
pub const PRINTSHOP_SECRET: &str = "printshop-secret-0123456789abcdef0123456789abcdef";
pub const BACKUP_SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";

/// The app served on a loopback port; its issuer is `http://127.0.0.1:PORT`.
pub struct Provider {
    pub issuer: String,
    pub demo: Demo,
}

impl Provider {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// A browser: cookies kept, redirects not followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("verifier-{seed}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization request's query string.
pub fn authorize_query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// The printshop request used by most tests.
pub fn printshop_request(state: &str, challenge: &str, scope: &str) -> String {
    authorize_query(&[
        ("response_type", "code"),
        ("client_id", "printshop"),
        ("redirect_uri", PRINTSHOP_REDIRECT),
        ("scope", scope),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ])
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        Self {
            status,
            headers,
            html,
        }
    }

    /// The value of the input named `name` (the pages put `name` before `value`).
    pub fn input(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.html))
            + marker.len();
        let end = self.html[start..].find('"').unwrap() + start;
        self.html[start..end].to_owned()
    }

    pub fn is_html(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
    }

    pub fn forms(&self) -> usize {
        self.html.matches("<form method=\"post\"").count()
    }

    pub fn assert_login_page(&self) {
        assert!(self.is_html());
        assert_eq!(self.forms(), 1, "{}", self.html);
        assert!(self.html.contains("name=\"username\""));
        assert!(self.html.contains("name=\"password\""));
        assert!(self.html.contains("type=\"password\""));
        assert!(self.html.contains("<label for=\"username\">"));
        assert!(self.html.contains("<label for=\"password\">"));
        assert!(!self.html.contains("name=\"decision\""));
    }

    pub fn assert_consent_page(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.html);
        assert!(self.is_html());
        assert_eq!(self.forms(), 1, "{}", self.html);
        assert!(self.html.contains("name=\"decision\" value=\"allow\""));
        assert!(self.html.contains("name=\"decision\" value=\"deny\""));
        assert!(!self.html.contains("name=\"password\""));
    }
}

/// The query pairs of a `Location`.
pub fn location_params(response: &reqwest::Response) -> (Url, Vec<(String, String)>) {
    let location = response
        .headers()
        .get(LOCATION)
        .expect("a Location")
        .to_str()
        .unwrap();
    let url = Url::parse(location).unwrap();
    let pairs = url.query_pairs().into_owned().collect();
    (url, pairs)
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut found = pairs.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{name} repeated");
    first
}

/// The page `GET /authorize?{query}` answers `browser` with.
pub async fn authorize_page(provider: &Provider, browser: &reqwest::Client, query: &str) -> Page {
    Page::of(
        browser
            .get(provider.url(&format!("/authorize?{query}")))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Posts the login form with `csrf` and `handle` (from whichever page) and
/// the credentials; the page answered.
pub async fn post_login(
    provider: &Provider,
    browser: &reqwest::Client,
    csrf: &str,
    handle: &str,
    user: &str,
    password: &str,
) -> Page {
    Page::of(
        browser
            .post(provider.url("/login"))
            .form(&[
                ("csrf_token", csrf),
                ("handle", handle),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Signs in through the login page of `query` and returns the consent page.
pub async fn sign_in_to_consent(
    provider: &Provider,
    browser: &reqwest::Client,
    query: &str,
    user: &str,
    password: &str,
) -> Page {
    let login = authorize_page(provider, browser, query).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.html);
    login.assert_login_page();
    let consent = post_login(
        provider,
        browser,
        &login.input("csrf_token"),
        &login.input("handle"),
        user,
        password,
    )
    .await;
    consent.assert_consent_page();
    consent
}

/// Posts the consent form with `decision`.
pub async fn decide(
    provider: &Provider,
    browser: &reqwest::Client,
    consent: &Page,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(provider.url("/consent"))
        .form(&[
            ("csrf_token", consent.input("csrf_token").as_str()),
            ("handle", consent.input("handle").as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

/// A token response's JSON.
pub async fn token(
    provider: &Provider,
    client: (&str, Option<&str>),
    form: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let http = reqwest::Client::new();
    let mut request = http.post(provider.url("/token"));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    match client.1 {
        Some(secret) => request = request.basic_auth(client.0, Some(secret)),
        None => form.push(("client_id", client.0)),
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// `GET /api/photos` with a bearer token.
pub async fn photos(provider: &Provider, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(provider.url("/api/photos"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}
