//! Headless Debian Chromium driven through chromedriver with fantoccini.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

use crate::process::{ChildGuard, free_port, wait_http_ok};

/// Default wait for anything a page should do promptly.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// The browser and its driver on this machine.
#[derive(Debug, Clone)]
pub struct Tools {
    /// Chromium binary (`/usr/bin/chromium`, or `TESSERA_E2E_CHROMIUM`).
    pub chromium: PathBuf,
    /// chromedriver binary (`/usr/bin/chromedriver`, or `TESSERA_E2E_CHROMEDRIVER`).
    pub chromedriver: PathBuf,
}

/// Whether the end-to-end tests are switched off with `TESSERA_E2E_SKIP=1`.
pub fn skip_requested() -> bool {
    std::env::var("TESSERA_E2E_SKIP").is_ok_and(|v| v == "1")
}

impl Tools {
    /// Finds Chromium and chromedriver, or explains how to install them.
    pub fn find() -> Result<Self, String> {
        let pick = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        let tools = Self {
            chromium: pick("TESSERA_E2E_CHROMIUM", "/usr/bin/chromium"),
            chromedriver: pick("TESSERA_E2E_CHROMEDRIVER", "/usr/bin/chromedriver"),
        };
        let missing: Vec<String> = [&tools.chromium, &tools.chromedriver]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if missing.is_empty() {
            Ok(tools)
        } else {
            Err(format!(
                "end-to-end browser tests need Debian's Chromium and chromedriver, but {} not found. \
                 Install them with `bash e2e/ci-setup.sh` (apt-get install chromium chromium-driver), \
                 point TESSERA_E2E_CHROMIUM / TESSERA_E2E_CHROMEDRIVER at them, \
                 or set TESSERA_E2E_SKIP=1 to skip these tests.",
                missing.join(" and ")
            ))
        }
    }
}

/// A running headless Chromium session with a fresh profile.
///
/// Dropping it kills chromedriver and the browser (one process group); call
/// [`Browser::close`] to end the WebDriver session politely first.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    // Field order matters: the driver (and its browser) die before the profile is deleted.
    driver: ChildGuard,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a Chromium session.
    pub async fn start(tools: &Tools, log_dir: &Path) -> Result<Self, String> {
        let profile = tempfile::Builder::new()
            .prefix("tessera-e2e-chromium-")
            .tempdir()
            .map_err(|e| format!("cannot create a Chromium profile dir: {e}"))?;
        let port = free_port()?;
        let mut command = Command::new(&tools.chromedriver);
        command.arg(format!("--port={port}"));
        let mut driver =
            ChildGuard::spawn("chromedriver", command, &log_dir.join("chromedriver.log"))?;
        let webdriver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        wait_http_ok(
            &http,
            &format!("{webdriver}/status"),
            &mut driver,
            STEP_TIMEOUT,
        )
        .await?;

        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1000,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium.display().to_string(),
                "args": args,
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            return Err("capabilities must be a JSON object".into());
        };
        let mut builder = ClientBuilder::native();
        builder.capabilities(capabilities);
        let connect = builder.connect(&webdriver);
        let client = match tokio::time::timeout(Duration::from_secs(60), connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(format!(
                    "chromedriver could not start Chromium: {e}; chromedriver output ends with:\n{}",
                    crate::process::log_tail(driver.log(), 4000)
                ));
            }
            Err(_) => return Err("Chromium did not start within 60 s".into()),
        };
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(30)),
                Some(Duration::ZERO),
            ))
            .await
            .map_err(|e| format!("setting WebDriver timeouts: {e}"))?;
        Ok(Self {
            client,
            driver,
            _profile: profile,
        })
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the WebDriver session (bounded), then kills the driver.
    pub async fn close(self) {
        let Self {
            client,
            driver,
            _profile,
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        drop(driver);
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        bounded(&format!("open {url}"), self.client.goto(url)).await
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String, String> {
        bounded("read the URL", self.client.current_url())
            .await
            .map(|u| u.to_string())
    }

    /// The page's HTML.
    pub async fn source(&self) -> Result<String, String> {
        bounded("read the page source", self.client.source()).await
    }

    /// The visible text of the page body.
    pub async fn body_text(&self) -> Result<String, String> {
        let body = self.find("body").await?;
        bounded("read the page text", body.text()).await
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        bounded("take a screenshot", self.client.screenshot()).await
    }

    /// The element matching CSS `selector`, now.
    pub async fn find(&self, selector: &str) -> Result<Element, String> {
        bounded(
            &format!("find {selector}"),
            self.client.find(Locator::Css(selector)),
        )
        .await
    }

    /// All elements matching CSS `selector`, now.
    pub async fn find_all(&self, selector: &str) -> Result<Vec<Element>, String> {
        bounded(
            &format!("find {selector}"),
            self.client.find_all(Locator::Css(selector)),
        )
        .await
    }

    /// Waits (at most [`STEP_TIMEOUT`]) for an element matching CSS `selector`.
    ///
    /// Any WebDriver error while polling is retried until the deadline:
    /// while a page is being replaced chromedriver answers with transient
    /// errors (e.g. "Node with given id does not belong to the document")
    /// that say nothing about the page that is coming.
    pub async fn wait_for(&self, selector: &str) -> Result<Element, String> {
        let found = poll(|| async {
            match self.client.find(Locator::Css(selector)).await {
                Ok(element) => Ok(element),
                Err(e) if e.is_no_such_element() => Err(String::from("not found")),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        match found {
            Ok(element) => Ok(element),
            Err(last) => Err(format!(
                "no element matching {selector} within {STEP_TIMEOUT:?} (on {}): {last}",
                self.url().await.unwrap_or_default()
            )),
        }
    }

    /// Clicks `element`, which must lead to a new page, and waits (at most
    /// [`STEP_TIMEOUT`]) until that page has loaded.
    ///
    /// The old document is marked with a script variable before the click;
    /// the new page is there when a document without the mark has finished
    /// loading. This asks the browser about the document rather than about an
    /// element of the old page, whose staleness chromedriver reports in
    /// several racy ways.
    pub async fn click_to_navigate(&self, element: &Element, what: &str) -> Result<(), String> {
        bounded(
            "mark the current page",
            self.client
                .execute("window.__tesseraOldPage = true; return true;", Vec::new()),
        )
        .await?;
        self.click(element, what).await?;
        let loaded = poll(|| async {
            let probe =
                "return document.readyState === 'complete' && window.__tesseraOldPage !== true;";
            match self.client.execute(probe, Vec::new()).await {
                Ok(serde_json::Value::Bool(true)) => Ok(()),
                Ok(_) => Err(String::from("the old page is still shown or loading")),
                // Mid-navigation the old document's script context may be gone.
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        match loaded {
            Ok(()) => Ok(()),
            Err(last) => Err(format!(
                "after clicking {what}, no new page within {STEP_TIMEOUT:?} (on {}): {last}",
                self.url().await.unwrap_or_default()
            )),
        }
    }

    /// Clicks `element`.
    pub async fn click(&self, element: &Element, what: &str) -> Result<(), String> {
        bounded(&format!("click {what}"), element.click()).await
    }

    /// Clears the input `element` and types `text` into it.
    pub async fn fill(&self, element: &Element, text: &str, what: &str) -> Result<(), String> {
        bounded(&format!("clear {what}"), element.clear()).await?;
        bounded(&format!("type into {what}"), element.send_keys(text)).await
    }
}

/// Runs `probe` every 100 ms until it succeeds, for at most [`STEP_TIMEOUT`]
/// (each attempt bounded by 5 s); else the last attempt's reason.
async fn poll<T, F, Fut>(mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let last = match tokio::time::timeout(Duration::from_secs(5), probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(why)) => why,
            Err(_) => String::from("no answer within 5 s"),
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one WebDriver command with a time bound, turning errors into text.
async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(45), future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("could not {what}: {e}")),
        Err(_) => Err(format!("could not {what}: no answer within 45 s")),
    }
}
