//! The whole demo for one scenario: provider, PrintShop and a browser.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::{Mutex, MutexGuard};

use crate::binaries::{demo_binaries, workspace_root};
use crate::browser::{Browser, Tools, skip_requested};
use crate::process::{ChildGuard, free_port, log_tail, port_is_free, wait_http_ok};

/// PrintShop's port: the seeded `printshop` client's only redirect URI is
/// `http://127.0.0.1:9001/callback` (DEMO-CONTRACT.md), so it must run there.
pub const PRINTSHOP_PORT: u16 = 9001;

/// How long a server may take to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Scenarios share port 9001, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A running demo. Dropping it (also while a failed test unwinds) kills the
/// browser, PrintShop and the provider.
#[derive(Debug)]
pub struct Demo {
    name: String,
    /// The provider's base URL (its issuer), e.g. `http://127.0.0.1:40123`.
    pub provider_url: String,
    /// PrintShop's base URL, `http://127.0.0.1:9001`.
    pub printshop_url: String,
    // Drop order: browser, then servers, then logs, then the lock.
    browser: Browser,
    printshop: ChildGuard,
    provider: ChildGuard,
    logs: TempDir,
    photo_cli: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Demo {
    /// Starts everything for scenario `name`, or returns `None` when
    /// `TESSERA_E2E_SKIP=1`. A missing browser is an error, not a skip.
    pub async fn start(name: &str) -> Result<Option<Self>, String> {
        if skip_requested() {
            eprintln!("TESSERA_E2E_SKIP=1: skipping end-to-end scenario {name}");
            return Ok(None);
        }
        let tools = Tools::find()?;
        let serial = SERIAL.lock().await;
        let binaries = tokio::task::spawn_blocking(demo_binaries)
            .await
            .map_err(|e| format!("building the demo binaries panicked: {e}"))??;
        let logs = tempfile::Builder::new()
            .prefix(&format!("tessera-e2e-{name}-"))
            .tempdir()
            .map_err(|e| format!("cannot create a log dir: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;

        // A previous scenario's PrintShop may still be on its way out.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !port_is_free(PRINTSHOP_PORT) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !port_is_free(PRINTSHOP_PORT) {
            return Err(format!(
                "port {PRINTSHOP_PORT} is in use, but PrintShop must run there: the seeded \
                 `printshop` client's redirect URI is http://127.0.0.1:{PRINTSHOP_PORT}/callback. \
                 Stop whatever listens on it (a demo left running?) and run the tests again."
            ));
        }

        let mut provider_port = free_port()?;
        while provider_port == PRINTSHOP_PORT {
            provider_port = free_port()?;
        }
        let provider_url = format!("http://127.0.0.1:{provider_port}");
        let mut command = Command::new(&binaries.photo_provider);
        command.args([
            "--listen",
            &format!("127.0.0.1:{provider_port}"),
            "--issuer",
            &provider_url,
            "--store",
            "memory",
        ]);
        let mut provider = ChildGuard::spawn(
            "photo-provider",
            command,
            &logs.path().join("photo-provider.log"),
        )?;
        let metadata = wait_http_ok(
            &http,
            &format!("{provider_url}/.well-known/oauth-authorization-server"),
            &mut provider,
            STARTUP_TIMEOUT,
        )
        .await?;
        let metadata: serde_json::Value = serde_json::from_str(&metadata)
            .map_err(|e| format!("provider metadata is not JSON: {e}: {metadata}"))?;
        if metadata["issuer"] != serde_json::Value::String(provider_url.clone()) {
            return Err(format!(
                "provider metadata names issuer {}, expected {provider_url:?}",
                metadata["issuer"]
            ));
        }

        let printshop_url = format!("http://127.0.0.1:{PRINTSHOP_PORT}");
        let mut command = Command::new(&binaries.printshop);
        command.args([
            "--listen",
            &format!("127.0.0.1:{PRINTSHOP_PORT}"),
            "--provider",
            &provider_url,
            "--public-url",
            &printshop_url,
        ]);
        let mut printshop =
            ChildGuard::spawn("printshop", command, &logs.path().join("printshop.log"))?;
        wait_http_ok(
            &http,
            &format!("{printshop_url}/"),
            &mut printshop,
            STARTUP_TIMEOUT,
        )
        .await?;

        let browser = Browser::start(&tools, logs.path()).await?;
        Ok(Some(Self {
            name: name.to_owned(),
            provider_url,
            printshop_url,
            browser,
            printshop,
            provider,
            logs,
            photo_cli: binaries.photo_cli.clone(),
            _serial: serial,
        }))
    }

    /// The browser.
    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    /// Starts the real `photo-cli` against the provider (its stdout and
    /// stderr are kept apart: the photos, and the instructions and progress).
    pub fn start_photo_cli(&self) -> Result<PhotoCli, String> {
        let mut command = Command::new(&self.photo_cli);
        command.args(["--provider", &self.provider_url]);
        let stderr = self.logs.path().join("photo-cli.log");
        let stdout = self.logs.path().join("photo-cli.stdout");
        let child = ChildGuard::spawn_split("photo-cli", command, &stderr, &stdout)?;
        Ok(PhotoCli {
            child,
            stdout,
            stderr,
        })
    }

    /// PrintShop's output so far.
    pub fn printshop_output(&self) -> String {
        log_tail(self.printshop.log(), 64 * 1024)
    }

    /// Ends the scenario: on failure saves a screenshot, the page's HTML and
    /// the servers' logs to `e2e-artifacts/` and panics with `outcome`'s error.
    pub async fn finish(self, outcome: Result<(), String>) {
        let saved = match &outcome {
            Ok(()) => String::new(),
            Err(error) => self.save_artifacts(error).await,
        };
        let Self {
            name,
            browser,
            printshop,
            provider,
            logs,
            _serial: serial,
            ..
        } = self;
        browser.close().await;
        let provider_log = log_tail(provider.log(), 2000);
        let printshop_log = log_tail(printshop.log(), 2000);
        // Servers die before the lock is released: the next scenario needs port 9001.
        drop(printshop);
        drop(provider);
        drop(logs);
        drop(serial);
        if let Err(error) = outcome {
            panic!(
                "end-to-end scenario `{name}` failed: {error}\n{saved}\n\
                 --- photo-provider output (tail) ---\n{provider_log}\n\
                 --- printshop output (tail) ---\n{printshop_log}"
            );
        }
    }

    /// Writes the failure artifacts; returns a line saying where (or why not).
    async fn save_artifacts(&self, error: &str) -> String {
        let dir = artifacts_dir();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return format!("(could not create {}: {e})", dir.display());
        }
        let name = &self.name;
        let mut notes = Vec::new();
        {
            let browser = &self.browser;
            let url = browser.url().await.unwrap_or_else(|e| e);
            let _ = std::fs::write(
                dir.join(format!("{name}.txt")),
                format!("scenario: {name}\nurl: {url}\nerror: {error}\n"),
            );
            match browser.screenshot().await {
                Ok(png) => {
                    let _ = std::fs::write(dir.join(format!("{name}.png")), png);
                }
                Err(e) => notes.push(format!("no screenshot: {e}")),
            }
            match browser.source().await {
                Ok(html) => {
                    let _ = std::fs::write(dir.join(format!("{name}.html")), html);
                }
                Err(e) => notes.push(format!("no page source: {e}")),
            }
        }
        for log in [
            "photo-provider.log",
            "printshop.log",
            "chromedriver.log",
            "photo-cli.log",
            "photo-cli.stdout",
        ] {
            let _ = std::fs::copy(
                self.logs.path().join(log),
                dir.join(format!("{name}-{log}")),
            );
        }
        format!(
            "artifacts (screenshot, HTML, logs) saved in {}{}",
            dir.display(),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        )
    }
}

/// A running `photo-cli`; killed when dropped.
#[derive(Debug)]
pub struct PhotoCli {
    child: ChildGuard,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What `photo-cli` tells the person on stderr.
#[derive(Debug, Clone)]
pub struct Instructions {
    /// The verification page (`verification_uri`).
    pub verification_uri: String,
    /// The user code, as shown (`XXXX-XXXX`).
    pub user_code: String,
}

/// How `photo-cli` ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl PhotoCli {
    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        log_tail(&self.stderr, 64 * 1024)
    }

    /// Waits (at most `timeout`) until the verification URL and the code are
    /// printed, and reads them.
    pub async fn instructions(&mut self, timeout: Duration) -> Result<Instructions, String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = self.stderr();
            if let Some(found) = parse_instructions(&text) {
                return Ok(found);
            }
            if let Some(status) = self.child.try_status()? {
                return Err(format!(
                    "photo-cli exited ({status}) before showing a code; stderr:\n{text}"
                ));
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "photo-cli showed no code within {timeout:?}; stderr:\n{text}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (at most `timeout`) for `photo-cli` to exit.
    pub async fn finished(&mut self, timeout: Duration) -> Result<Finished, String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_status()? {
                return Ok(Finished {
                    status,
                    stdout: log_tail(&self.stdout, 64 * 1024),
                    stderr: self.stderr(),
                });
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "photo-cli did not finish within {timeout:?}; stderr:\n{}",
                    self.stderr()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The URL after "open this page in a browser:" and the code after
/// "enter the code:" in `photo-cli`'s stderr.
fn parse_instructions(text: &str) -> Option<Instructions> {
    let after_page = &text[text.find("open this page in a browser:")?..];
    let verification_uri = after_page
        .lines()
        .skip(1)
        .map(str::trim)
        .find(|line| !line.is_empty())?
        .to_owned();
    let after_code = &text[text.find("enter the code:")? + "enter the code:".len()..];
    let user_code = after_code.lines().next()?.trim().to_owned();
    if !verification_uri.starts_with("http") || user_code.is_empty() {
        return None;
    }
    Some(Instructions {
        verification_uri,
        user_code,
    })
}

/// `e2e-artifacts/` at the workspace root.
pub fn artifacts_dir() -> PathBuf {
    workspace_root().join("e2e-artifacts")
}

/// `docs/screenshots/` at the workspace root.
pub fn docs_screenshots_dir() -> PathBuf {
    workspace_root().join("docs").join("screenshots")
}
