//! What the tests stand up: a real Tessera provider in process, fake
//! providers that answer from a script, and a runner for the real binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tessera::{Client, ClientId, GrantType, Lifetimes, Scope, ScopeToken, Server};
use tessera_axum::{Bearer, BearerRejection};
use tessera_memory::MemoryStore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;

/// Alice's photos as the test provider serves them.
pub const ALICE_PHOTOS: [(&str, &str); 3] = [
    ("p1", "Sunset over the harbour"),
    ("p2", "Grandma's birthday cake"),
    ("p3", "First snow in the garden"),
];

/// Serves `app` on an ephemeral loopback port; answers its base URL.
pub async fn serve(app: impl FnOnce(String) -> Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = app(url.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A Tessera provider with the device grant on and the `photo-cli` client.
pub struct TestProvider {
    pub server: Server,
    pub url: String,
}

/// Starts a provider; `device_grant_for_cli: false` registers `photo-cli`
/// without the device grant (so it gets `unauthorized_client`).
pub async fn start_provider(lifetimes: Lifetimes, device_grant_for_cli: bool) -> TestProvider {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let grants = if device_grant_for_cli {
        vec![GrantType::DEVICE_CODE, "refresh_token"]
    } else {
        vec!["authorization_code", "refresh_token"]
    };
    let cli = Client::public(ClientId::new("photo-cli").unwrap(), "photo-cli")
        .with_grant_types(grants)
        .with_scope(Scope::parse("photos.read photos.write").unwrap());
    let server = Server::builder()
        .issuer(&url)
        .store(Arc::new(MemoryStore::with_clients([cli])))
        .scope(ScopeToken::new("photos.read").unwrap(), "See your photos")
        .scope(ScopeToken::new("photos.write").unwrap(), "Add photos")
        .lifetimes(lifetimes)
        .enable_device_grant()
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api/photos", get(photos))
        .with_state(server.clone())
        .merge(tessera_axum::router(server.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestProvider { server, url }
}

async fn photos(token: Bearer) -> Result<Json<Value>, BearerRejection> {
    token.require(&["photos.read"])?;
    let photos: Vec<Value> = if token.principal() == "alice" {
        ALICE_PHOTOS
            .iter()
            .map(|(id, title)| json!({"id": id, "title": title}))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(json!({"owner": token.principal(), "photos": photos})))
}

/// A token endpoint answering from a script, one answer per poll, noting
/// when each poll came.
#[derive(Clone, Default)]
pub struct Script {
    answers: Arc<Mutex<Vec<(u16, Value)>>>,
    pub polls: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    pub fn new(answers: Vec<(u16, Value)>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers)),
            polls: Arc::default(),
        }
    }

    pub fn poll_times(&self) -> Vec<Instant> {
        self.polls.lock().unwrap().clone()
    }
}

pub fn pending() -> (u16, Value) {
    oauth_error("authorization_pending")
}

pub fn oauth_error(code: &str) -> (u16, Value) {
    (
        400,
        json!({"error": code, "error_description": format!("scripted {code}")}),
    )
}

pub fn tokens() -> (u16, Value) {
    (
        200,
        json!({"access_token": "scripted-token", "token_type": "Bearer", "expires_in": 60}),
    )
}

async fn scripted_token(State(script): State<Script>, body: String) -> impl IntoResponse {
    assert!(body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"));
    assert!(body.contains("device_code=scripted-device-code"));
    assert!(body.contains("client_id=photo-cli"));
    script.polls.lock().unwrap().push(Instant::now());
    let (status, body) = {
        let mut answers = script.answers.lock().unwrap();
        if answers.is_empty() {
            (500, json!({"error": "server_error"}))
        } else {
            answers.remove(0)
        }
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [("cache-control", "no-store")],
        Json(body),
    )
}

/// The device authorization answer the fake provider gives.
pub fn device_answer(url: &str, interval: u64, expires_in: u64) -> Value {
    json!({
        "device_code": "scripted-device-code",
        "user_code": "BCDF-GHJK",
        "verification_uri": format!("{url}/device"),
        "verification_uri_complete": format!("{url}/device?user_code=BCDF-GHJK"),
        "expires_in": expires_in,
        "interval": interval,
    })
}

/// A whole fake provider: metadata, a device authorization endpoint
/// answering `interval`, the scripted token endpoint and `/api/photos`.
pub async fn start_fake_provider(script: Script, interval: u64) -> String {
    serve(move |url| {
        let metadata = json!({
            "issuer": url,
            "token_endpoint": format!("{url}/oauth/token"),
            "device_authorization_endpoint": format!("{url}/oauth/device"),
            "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code"],
        });
        let device = device_answer(&url, interval, 60);
        Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { Json(metadata) }),
            )
            .route("/oauth/device", post(move || async move { Json(device) }))
            .route("/oauth/token", post(scripted_token))
            .route(
                "/api/photos",
                get(|headers: axum::http::HeaderMap| async move {
                    let auth = headers.get("authorization").unwrap().to_str().unwrap();
                    assert_eq!(auth, "Bearer scripted-token");
                    Json(json!({"owner": "carol", "photos": [{"id": 7, "title": "Kite"}]}))
                }),
            )
            .with_state(script)
    })
    .await
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// A failure whose last stderr line is `photo-cli: ...` and that no panic
    /// preceded; answers that line.
    pub fn error_line(&self) -> &str {
        assert!(!self.status.success(), "{self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        let last = self.stderr.trim_end().lines().last().unwrap_or("");
        assert!(last.starts_with("photo-cli: "), "{self:#?}");
        last
    }

    /// A failure whose whole stderr is one line.
    pub fn only_error_line(&self) -> &str {
        let line = self.error_line();
        assert_eq!(self.stderr.trim_end().lines().count(), 1, "{self:#?}");
        line
    }
}

fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_photo-cli"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs photo-cli to the end, with no person at the browser.
pub async fn run(args: &[&str]) -> Run {
    run_with_person(args, |_code| async {}).await
}

/// Runs photo-cli; once it has printed the user code, `person` is handed the
/// code (to approve or deny it), then the run goes on to the end.
pub async fn run_with_person<F, Fut>(args: &[&str], person: F) -> Run
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    let work = async {
        let mut child = command(args).spawn().expect("start photo-cli");
        let mut stdout = child.stdout.take().unwrap();
        let out_task = tokio::spawn(async move {
            let mut text = String::new();
            stdout.read_to_string(&mut text).await.unwrap();
            text
        });
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut stderr = String::new();
        let mut person = Some(person);
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.push_str(&line);
            stderr.push('\n');
            if line.contains("enter the code:") {
                let code = line.split_whitespace().last().unwrap().to_owned();
                if let Some(person) = person.take() {
                    person(code).await;
                }
            }
        }
        let status = child.wait().await.unwrap();
        Run {
            status,
            stdout: out_task.await.unwrap(),
            stderr,
            took: started.elapsed(),
        }
    };
    tokio::time::timeout(Duration::from_secs(25), work)
        .await
        .expect("photo-cli finished within 25 s")
}
