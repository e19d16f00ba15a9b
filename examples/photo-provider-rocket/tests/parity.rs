//! Parity with the axum provider: one [`Demo`] (one store, one session
//! table, one issuer) served by both `photo_provider::app` (axum) and
//! `photo_provider_rocket::app`, the same scripted conversation held with
//! each, and every answer compared: status, every header, body. Secrets
//! that differ per run (tokens, codes, handles, CSRF tokens, session ids)
//! are masked before comparing; nothing else is.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use photobook::{Demo, build_server};
use reqwest::Method;

/// One answer, with per-run secrets masked.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    step: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Replaces what follows each `marker` up to a delimiter with `…`.
fn mask(text: &str) -> String {
    const MARKERS: [&str; 14] = [
        "name=\"csrf_token\" value=\"",
        "name=\"handle\" value=\"",
        "photobook_session=",
        "code=",
        "tsa_",
        "tsr_",
        "tsc_",
        "tsp_",
        "tsd_",
        "tsu_",
        "name=\"user_code\" value=\"",
        "\"user_code\":\"",
        "user_code=",
        "the code <strong>",
    ];
    let mut out = text.to_owned();
    for marker in MARKERS {
        let mut masked = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(marker) {
            let after = i + marker.len();
            masked.push_str(&rest[..after]);
            let tail = &rest[after..];
            let end = tail
                .find(['"', '&', ';', ' ', '<', '\n'])
                .unwrap_or(tail.len());
            if end > 0 {
                masked.push('…');
            }
            rest = &tail[end..];
        }
        masked.push_str(rest);
        out = masked;
    }
    out
}

struct Conversation {
    base: String,
    http: reqwest::Client,
    answers: Vec<Answer>,
}

struct Reply {
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn input(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).map_or(0, |i| i + marker.len());
        let end = self.body[start..].find('"').map_or(start, |i| i + start);
        self.body[start..end].to_owned()
    }

    fn cookie(&self) -> Option<String> {
        self.headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
    }

    fn location_param(&self, name: &str) -> String {
        let location = self.headers["location"].to_str().unwrap();
        let url = url::Url::parse(location).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    fn json(&self, field: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        value[field].as_str().unwrap_or_default().to_owned()
    }
}

impl Conversation {
    fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            answers: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        step: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        let mut shown: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), mask(v.to_str().unwrap_or("<bytes>"))))
            .collect();
        shown.sort();
        self.answers.push(Answer {
            step: step.to_owned(),
            status,
            headers: shown,
            body: mask(&body),
        });
        Reply { headers, body }
    }

    async fn get(&mut self, step: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(step, Method::GET, path, headers, None).await
    }

    async fn form(
        &mut self,
        step: &str,
        path: &str,
        cookie: &str,
        pairs: &[(&str, &str)],
    ) -> Reply {
        let body = serde_urlencoded_pairs(pairs);
        self.send(
            step,
            Method::POST,
            path,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", cookie),
            ],
            Some(body),
        )
        .await
    }
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let c = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {c}")
}

/// The whole conversation, against `base`.
async fn converse(base: String) -> Vec<Answer> {
    let mut c = Conversation::new(base);
    let (verifier, challenge) = pkce("parity");
    let query = printshop_request("st", &challenge, "photos.read profile");

    c.get("home", "/", &[]).await;
    c.send("head home", Method::HEAD, "/", &[], None).await;
    c.get("unknown path", "/nope", &[]).await;
    c.get("unknown nested path", "/api/nope", &[]).await;
    for path in [
        "/authorize/",
        "/api/photos/",
        "/nope/",
        "//",
        "//authorize",
        "/.well-known/oauth-authorization-server/",
        "/token/",
        "/?x=1",
        "/authorize%2F",
        "/%61uthorize",
        "/Authorize",
        "/api//photos",
    ] {
        c.get(&format!("path {path}"), path, &[]).await;
    }
    for path in ["/login/", "/consent/", "/token/", "/revoke/"] {
        c.send(&format!("POST {path}"), Method::POST, path, &[], None)
            .await;
    }
    c.get("authorize without query", "/authorize", &[]).await;
    c.get(
        "unknown client",
        &format!(
            "/authorize?{}",
            authorize_query(&[("response_type", "code"), ("client_id", "nobody")])
        ),
        &[],
    )
    .await;
    c.get(
        "no PKCE",
        &format!(
            "/authorize?{}",
            authorize_query(&[
                ("response_type", "code"),
                ("client_id", "printshop"),
                ("redirect_uri", PRINTSHOP_REDIRECT),
                ("state", "s")
            ])
        ),
        &[],
    )
    .await;
    for (method, path) in [
        (Method::POST, "/"),
        (Method::PUT, "/authorize"),
        (Method::DELETE, "/authorize"),
        (Method::GET, "/login"),
        (Method::GET, "/consent"),
        (Method::POST, "/api/photos"),
        (Method::OPTIONS, "/api/photos"),
        (Method::GET, "/token"),
        (Method::OPTIONS, "/token"),
        (Method::PUT, "/revoke"),
        (Method::GET, "/introspect"),
        (Method::POST, "/.well-known/oauth-authorization-server"),
    ] {
        c.send(&format!("{method} {path}"), method.clone(), path, &[], None)
            .await;
    }
    c.get("metadata", "/.well-known/oauth-authorization-server", &[])
        .await;
    c.send(
        "head metadata",
        Method::HEAD,
        "/.well-known/oauth-authorization-server",
        &[],
        None,
    )
    .await;

    // Login page, then the ways a login goes wrong, then right.
    let login = c
        .get("login page", &format!("/authorize?{query}"), &[])
        .await;
    let cookie = login.cookie().unwrap();
    let (csrf, handle) = (login.input("csrf_token"), login.input("handle"));
    c.form(
        "wrong password",
        "/login",
        &cookie,
        &[
            ("csrf_token", &csrf),
            ("handle", &handle),
            ("username", "alice"),
            ("password", "nope"),
        ],
    )
    .await;
    c.form(
        "no CSRF",
        "/login",
        &cookie,
        &[
            ("handle", &handle),
            ("username", "alice"),
            ("password", "x"),
        ],
    )
    .await;
    c.form("unknown handle", "/login", &cookie, &[("handle", "tsp_x")])
        .await;
    c.send(
        "login not a form",
        Method::POST,
        "/login",
        &[("cookie", &cookie)],
        Some("%%%".into()),
    )
    .await;
    c.send(
        "login over 64 KiB (announced)",
        Method::POST,
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("username={}", "a".repeat(70 * 1024))),
    )
    .await;
    let consent = c
        .form(
            "sign in",
            "/login",
            &cookie,
            &[
                ("csrf_token", &csrf),
                ("handle", &handle),
                ("username", "alice"),
                ("password", "alice-password-1"),
            ],
        )
        .await;
    let cookie = consent.cookie().unwrap();
    let (csrf, handle) = (consent.input("csrf_token"), consent.input("handle"));
    c.form(
        "bad decision",
        "/consent",
        &cookie,
        &[
            ("csrf_token", &csrf),
            ("handle", &handle),
            ("decision", "maybe"),
        ],
    )
    .await;
    c.form(
        "consent without session",
        "/consent",
        "",
        &[
            ("csrf_token", &csrf),
            ("handle", &handle),
            ("decision", "allow"),
        ],
    )
    .await;
    let allowed = c
        .form(
            "allow",
            "/consent",
            &cookie,
            &[
                ("csrf_token", &csrf),
                ("handle", &handle),
                ("decision", "allow"),
            ],
        )
        .await;
    let code = allowed.location_param("code");
    c.form(
        "consent replayed",
        "/consent",
        &cookie,
        &[
            ("csrf_token", &csrf),
            ("handle", &handle),
            ("decision", "allow"),
        ],
    )
    .await;

    // The token, then the API.
    let printshop = basic("printshop", PRINTSHOP_SECRET);
    let tokens = c
        .send(
            "code exchange",
            Method::POST,
            "/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &printshop),
            ],
            Some(serde_urlencoded_pairs(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", PRINTSHOP_REDIRECT),
                ("code_verifier", &verifier),
            ])),
        )
        .await;
    let access = format!("Bearer {}", tokens.json("access_token"));
    c.get("photos", "/api/photos", &[("authorization", &access)])
        .await;
    c.send(
        "head photos",
        Method::HEAD,
        "/api/photos",
        &[("authorization", &access)],
        None,
    )
    .await;
    c.get("photos without token", "/api/photos", &[]).await;
    c.get(
        "photos with unknown token",
        "/api/photos",
        &[("authorization", "Bearer tsa_unknown")],
    )
    .await;
    c.get(
        "photos with malformed header",
        "/api/photos",
        &[("authorization", "Bearer a b")],
    )
    .await;
    c.get(
        "photos with token in query",
        "/api/photos?access_token=x",
        &[("authorization", &access)],
    )
    .await;

    // A signed-in owner asking for `profile` only: consent, then a token
    // the API refuses with 403.
    let (verifier, challenge) = pkce("parity-profile");
    let query = printshop_request("st2", &challenge, "profile");
    let consent = c
        .get(
            "signed-in authorize",
            &format!("/authorize?{query}"),
            &[("cookie", &cookie)],
        )
        .await;
    let allowed = c
        .form(
            "allow profile",
            "/consent",
            &cookie,
            &[
                ("csrf_token", &consent.input("csrf_token")),
                ("handle", &consent.input("handle")),
                ("decision", "allow"),
            ],
        )
        .await;
    let tokens = c
        .send(
            "profile code exchange",
            Method::POST,
            "/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &printshop),
            ],
            Some(serde_urlencoded_pairs(&[
                ("grant_type", "authorization_code"),
                ("code", &allowed.location_param("code")),
                ("redirect_uri", PRINTSHOP_REDIRECT),
                ("code_verifier", &verifier),
            ])),
        )
        .await;
    c.get(
        "photos with profile only",
        "/api/photos",
        &[(
            "authorization",
            &format!("Bearer {}", tokens.json("access_token")),
        )],
    )
    .await;

    // The back channel's errors and limits.
    let backup = basic("backup-job", BACKUP_SECRET);
    let cc = c
        .send(
            "client credentials",
            Method::POST,
            "/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &backup),
            ],
            Some("grant_type=client_credentials".into()),
        )
        .await;
    c.get(
        "photos as backup-job",
        "/api/photos",
        &[(
            "authorization",
            &format!("Bearer {}", cc.json("access_token")),
        )],
    )
    .await;
    c.send(
        "wrong secret",
        Method::POST,
        "/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic("backup-job", "wrong")),
        ],
        Some("grant_type=client_credentials".into()),
    )
    .await;
    c.send(
        "token over 64 KiB",
        Method::POST,
        "/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &backup),
        ],
        Some(format!(
            "grant_type=client_credentials&pad={}",
            "a".repeat(70 * 1024)
        )),
    )
    .await;
    c.send(
        "two authorization headers",
        Method::POST,
        "/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &backup),
            ("authorization", &backup),
        ],
        Some("grant_type=client_credentials".into()),
    )
    .await;
    c.send(
        "revoke",
        Method::POST,
        "/revoke",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &backup),
        ],
        Some(format!("token={}", cc.json("access_token"))),
    )
    .await;
    c.send(
        "introspect unauthenticated",
        Method::POST,
        "/introspect",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("token={}", cc.json("access_token"))),
    )
    .await;
    device(&mut c).await;
    c.answers
}

/// The device grant (RFC 8628): the endpoint, the verification page and its
/// forms, and the token endpoint's answers.
async fn device(c: &mut Conversation) {
    for path in ["/device/", "//device", "/device/login/", "/device/consent/"] {
        c.get(&format!("device path {path}"), path, &[]).await;
        c.send(&format!("POST {path}"), Method::POST, path, &[], None)
            .await;
    }
    for (method, path) in [
        (Method::PUT, "/device"),
        (Method::DELETE, "/device"),
        (Method::GET, "/device/login"),
        (Method::GET, "/device/consent"),
        (Method::GET, "/device_authorization"),
    ] {
        c.send(&format!("{method} {path}"), method.clone(), path, &[], None)
            .await;
    }
    let form = [("content-type", "application/x-www-form-urlencoded")];
    c.send(
        "device authorization as printshop",
        Method::POST,
        "/device_authorization",
        &[
            form[0],
            ("authorization", &basic("printshop", PRINTSHOP_SECRET)),
        ],
        Some("scope=photos.read".into()),
    )
    .await;
    c.send(
        "device authorization unknown scope",
        Method::POST,
        "/device_authorization",
        &form,
        Some("client_id=photo-cli&scope=nope".into()),
    )
    .await;
    let codes = c
        .send(
            "device authorization",
            Method::POST,
            "/device_authorization",
            &form,
            Some("client_id=photo-cli&scope=photos.read".into()),
        )
        .await;
    let (device_code, user_code) = (codes.json("device_code"), codes.json("user_code"));
    let poll = serde_urlencoded_pairs(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", &device_code),
        ("client_id", "photo-cli"),
    ]);

    c.get("device page", "/device", &[]).await;
    c.send("head device page", Method::HEAD, "/device", &[], None)
        .await;
    let page = c
        .get("device page prefilled", "/device?user_code=bcdfghjk", &[])
        .await;
    let cookie = page.cookie().unwrap();
    let csrf = page.input("csrf_token");
    c.form(
        "device code without CSRF",
        "/device",
        &cookie,
        &[("user_code", &user_code)],
    )
    .await;
    c.form(
        "device code unknown",
        "/device",
        &cookie,
        &[("csrf_token", &csrf), ("user_code", "<b>BCDF</b>")],
    )
    .await;
    c.send(
        "device form not a form",
        Method::POST,
        "/device",
        &[("cookie", &cookie)],
        Some("%%%".into()),
    )
    .await;
    c.send(
        "device form over 64 KiB (announced)",
        Method::POST,
        "/device",
        &form,
        Some(format!("user_code={}", "a".repeat(70 * 1024))),
    )
    .await;
    let login = c
        .form(
            "device code",
            "/device",
            &cookie,
            &[
                ("csrf_token", &csrf),
                ("user_code", &user_code.replace('-', "").to_lowercase()),
            ],
        )
        .await;
    c.form(
        "device login without CSRF",
        "/device/login",
        &cookie,
        &[
            ("user_code", &user_code),
            ("username", "bob"),
            ("password", "bob-password-1"),
        ],
    )
    .await;
    let consent = c
        .form(
            "device sign in",
            "/device/login",
            &cookie,
            &[
                ("csrf_token", &login.input("csrf_token")),
                ("user_code", &login.input("user_code")),
                ("username", "bob"),
                ("password", "bob-password-1"),
            ],
        )
        .await;
    let cookie = consent.cookie().unwrap();
    let (consent_csrf, consent_code) = (consent.input("csrf_token"), consent.input("user_code"));
    let allow = [
        ("csrf_token", consent_csrf.as_str()),
        ("user_code", consent_code.as_str()),
        ("decision", "allow"),
    ];
    c.form(
        "device consent without session",
        "/device/consent",
        "",
        &allow,
    )
    .await;
    let done = c
        .form("device allow", "/device/consent", &cookie, &allow)
        .await;
    assert!(
        done.body.contains("You can now return to your device"),
        "{}",
        done.body
    );
    c.form("device allow replayed", "/device/consent", &cookie, &allow)
        .await;
    let tokens = c
        .send(
            "device token",
            Method::POST,
            "/token",
            &form,
            Some(poll.clone()),
        )
        .await;
    assert!(!tokens.json("access_token").is_empty(), "{}", tokens.body);
    c.send(
        "device token replayed",
        Method::POST,
        "/token",
        &form,
        Some(poll),
    )
    .await;
}

/// Serves one demo with issuer `http://127.0.0.1:AXUM_PORT{path}` on both
/// providers, holds the conversation with each, and compares.
async fn compare(path: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}{path}", listener.local_addr().unwrap());
    let demo = Demo::new(build_server(&issuer, photobook::store::memory()).unwrap()).unwrap();
    let app = photo_provider::app(demo.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let port = free_port();
    launch_rocket(demo, port).await;

    let axum_answers = converse(issuer).await;
    let rocket_answers = converse(format!("http://127.0.0.1:{port}{path}")).await;
    assert_eq!(axum_answers.len(), rocket_answers.len());
    let mut differences = Vec::new();
    for (a, r) in axum_answers.iter().zip(&rocket_answers) {
        if a != r {
            differences.push(format!("axum:   {a:?}\nrocket: {r:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} answers differ:\n\n{}",
        differences.len(),
        axum_answers.len(),
        differences.join("\n\n")
    );
}

#[tokio::test]
async fn the_rocket_provider_answers_exactly_as_the_axum_one() {
    compare("").await;
}

#[tokio::test]
async fn the_same_below_an_issuer_path() {
    compare("/tenant").await;
}
