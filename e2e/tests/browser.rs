//! The photo-sharing demo in headless Chromium, as a person uses it.
//!
//! Assumptions about the provider's pages (DEMO-CONTRACT.md, "Pages a person sees"):
//! the login page has one `<form method="post">` with inputs `username` and
//! `password` and a submit button; the consent page has buttons
//! `name="decision"` with `value="allow"` / `value="deny"` and names the client;
//! a wrong password shows the login page again with a message that contains a
//! word like "invalid", "incorrect", "wrong", "error" or "failed"; the device
//! grant's verification page has one form whose input is `user_code`, then
//! the same login and consent pages.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use tessera_e2e::{Browser, Demo, docs_screenshots_dir};

/// Bound on one whole scenario.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `scenario` on a freshly started demo, saving artifacts and failing on error.
macro_rules! run_scenario {
    ($name:literal, $scenario:expr) => {{
        let demo = match Demo::start($name).await {
            Ok(Some(demo)) => demo,
            Ok(None) => return,
            Err(e) => panic!("end-to-end scenario `{}` could not start: {e}", $name),
        };
        let outcome = match tokio::time::timeout(SCENARIO_TIMEOUT, $scenario(&demo)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "scenario did not finish within {SCENARIO_TIMEOUT:?}"
            )),
        };
        demo.finish(outcome).await;
    }};
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

/// On PrintShop's home page, click "Connect PhotoBook" and arrive at the provider's login page.
async fn open_login(demo: &Demo) -> Result<(), String> {
    let b = demo.browser();
    b.goto(&format!("{}/", demo.printshop_url)).await?;
    let connect = b.wait_for("a#connect").await?;
    let label = connect.text().await.map_err(|e| e.to_string())?;
    check(label.contains("Connect PhotoBook"), || {
        format!("PrintShop's link reads {label:?}, expected \"Connect PhotoBook\"")
    })?;
    b.click_to_navigate(&connect, "\"Connect PhotoBook\"")
        .await?;
    b.wait_for("form input[name=\"password\"]").await?;
    let url = b.url().await?;
    check(url.starts_with(&demo.provider_url), || {
        format!(
            "the login page should be served by the provider ({}), but the browser is on {url}",
            demo.provider_url
        )
    })
}

/// Fills in the login form and submits it; returns once the next page has loaded.
async fn log_in(b: &Browser, username: &str, password: &str) -> Result<(), String> {
    let user = b.wait_for("form input[name=\"username\"]").await?;
    let pass = b.find("form input[name=\"password\"]").await?;
    b.fill(&user, username, "the username field").await?;
    b.fill(&pass, password, "the password field").await?;
    let submit = b
        .find(
            "form:has(input[name=\"password\"]) button[type=\"submit\"], \
             form:has(input[name=\"password\"]) input[type=\"submit\"], \
             form:has(input[name=\"password\"]) button:not([type])",
        )
        .await?;
    b.click_to_navigate(&submit, "the sign-in button").await
}

/// Waits for the consent page and checks it names PrintShop and the scopes.
async fn consent_page(b: &Browser) -> Result<(), String> {
    b.wait_for("[name=\"decision\"][value=\"allow\"]").await?;
    b.find("[name=\"decision\"][value=\"deny\"]").await?;
    let text = b.body_text().await?.to_lowercase();
    check(text.contains("printshop"), || {
        format!("the consent page should name the client (PrintShop); it reads: {text}")
    })
}

/// Clicks `allow` or `deny` on the consent page.
async fn decide(b: &Browser, decision: &str) -> Result<(), String> {
    let button = b
        .find(&format!("[name=\"decision\"][value=\"{decision}\"]"))
        .await?;
    b.click_to_navigate(&button, &format!("\"{decision}\""))
        .await
}

/// Checks that PrintShop shows alice's three photos, on `path`: `/callback`
/// where the dance ends (DEMO-CONTRACT), `/photos` afterwards.
async fn sees_alices_photos(demo: &Demo, path: &str) -> Result<(), String> {
    let b = demo.browser();
    let owner = b.wait_for("#owner").await?;
    let url = b.url().await?;
    let at = format!("{}{path}", demo.printshop_url);
    check(url == at || url.starts_with(&format!("{at}?")), || {
        format!("expected to land on PrintShop's {path}, but the browser is on {url}")
    })?;
    let owner = owner.text().await.map_err(|e| e.to_string())?;
    check(owner == "alice", || {
        format!("PrintShop shows the photos of {owner:?}, expected alice")
    })?;
    let photos = b.find_all("li.photo").await?;
    check(photos.len() == 3, || {
        format!("alice has 3 photos, PrintShop shows {}", photos.len())
    })?;
    for photo in &photos {
        let title = photo.text().await.map_err(|e| e.to_string())?;
        check(!title.trim().is_empty(), || {
            "a photo without a title".into()
        })?;
    }
    Ok(())
}

/// Saves the current page as `docs/screenshots/<name>.png` for the README.
async fn save_docs_screenshot(b: &Browser, name: &str) -> Result<(), String> {
    let dir = docs_screenshots_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let png = b.screenshot().await?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).map_err(|e| format!("write {}: {e}", path.display()))
}

async fn happy_path(demo: &Demo) -> Result<(), String> {
    let b = demo.browser();
    open_login(demo).await?;
    save_docs_screenshot(b, "login").await?;
    log_in(b, "alice", "alice-password-1").await?;
    consent_page(b).await?;
    save_docs_screenshot(b, "consent").await?;
    decide(b, "allow").await?;
    sees_alices_photos(demo, "/callback").await?;
    // Back home, PrintShop remembers the link; its "View my photos" reloads
    // them from the server-side session alone.
    b.goto(&format!("{}/", demo.printshop_url)).await?;
    let view = b.wait_for("a#view-photos").await?;
    b.click_to_navigate(&view, "\"View my photos\"").await?;
    sees_alices_photos(demo, "/photos").await?;
    // The session cookie is HttpOnly: page scripts cannot read it, and no token is in the page.
    let html = b.source().await?;
    for prefix in ["tsa_", "tsr_", "access_token", "refresh_token"] {
        check(!html.contains(prefix), || {
            format!("PrintShop's page contains {prefix:?}")
        })?;
    }
    // Disconnecting revokes the grant at the provider (RFC 7009) and forgets it.
    let disconnect = b.find("form[action=\"/disconnect\"] button").await?;
    b.click_to_navigate(&disconnect, "\"Disconnect PhotoBook\"")
        .await?;
    b.wait_for("a#connect").await?;
    let log = demo.printshop_output();
    check(log.contains("PhotoBook link revoked"), || {
        format!("PrintShop did not revoke its token at the provider; its log:\n{log}")
    })
}

async fn deny(demo: &Demo) -> Result<(), String> {
    let b = demo.browser();
    open_login(demo).await?;
    log_in(b, "alice", "alice-password-1").await?;
    consent_page(b).await?;
    decide(b, "deny").await?;
    let heading = b.wait_for("#error h1").await?;
    let url = b.url().await?;
    check(url.starts_with(&demo.printshop_url), || {
        format!("after deny the browser should be back on PrintShop, but is on {url}")
    })?;
    let heading = heading.text().await.map_err(|e| e.to_string())?;
    check(heading == "You declined access", || {
        format!("PrintShop's page after deny reads {heading:?}")
    })?;
    check(b.find_all("#owner").await?.is_empty(), || {
        "photos shown after deny".into()
    })
}

async fn wrong_password(demo: &Demo) -> Result<(), String> {
    let b = demo.browser();
    open_login(demo).await?;
    let before = b.body_text().await?;
    log_in(b, "alice", "not-alices-password").await?;
    b.wait_for("form input[name=\"password\"]").await?;
    let url = b.url().await?;
    check(url.starts_with(&demo.provider_url), || {
        format!("after a wrong password the browser should stay at the provider, but is on {url}")
    })?;
    check(b.find_all("[name=\"decision\"]").await?.is_empty(), || {
        "a wrong password led to the consent page".into()
    })?;
    let after = b.body_text().await?;
    let lower = after.to_lowercase();
    let says_why = [
        "invalid",
        "incorrect",
        "wrong",
        "error",
        "failed",
        "not match",
        "try again",
    ]
    .iter()
    .any(|word| lower.contains(word));
    check(says_why && after != before, || {
        format!("the login page after a wrong password shows no error message; it reads: {after}")
    })?;
    // A person then types the right password and carries on.
    log_in(b, "alice", "alice-password-1").await?;
    consent_page(b).await?;
    decide(b, "allow").await?;
    sees_alices_photos(demo, "/callback").await
}

/// The device grant (RFC 8628) as a person lives it: `photo-cli` prints a
/// URL and a code; in the browser alice opens the URL, types the code, signs
/// in and allows; `photo-cli` then lists her photos and exits 0.
async fn device_flow(demo: &Demo) -> Result<(), String> {
    let b = demo.browser();
    let mut cli = demo.start_photo_cli()?;
    let shown = cli.instructions(Duration::from_secs(30)).await?;
    check(
        shown.verification_uri == format!("{}/device", demo.provider_url),
        || {
            format!(
                "photo-cli shows the verification page {:?}, expected {}/device",
                shown.verification_uri, demo.provider_url
            )
        },
    )?;

    // The verification page: one form, whose input is the code.
    b.goto(&shown.verification_uri).await?;
    let input = b.wait_for("form input[name=\"user_code\"]").await?;
    check(b.find_all("form").await?.len() == 1, || {
        "the verification page should have one form".into()
    })?;
    b.fill(&input, &shown.user_code, "the code field").await?;
    let submit = b
        .find("form:has(input[name=\"user_code\"]) button[type=\"submit\"]")
        .await?;
    b.click_to_navigate(&submit, "\"Continue\"").await?;

    // Then the same login and consent pages as the code flow.
    b.wait_for("form input[name=\"password\"]").await?;
    log_in(b, "alice", "alice-password-1").await?;
    b.wait_for("[name=\"decision\"][value=\"allow\"]").await?;
    let text = b.body_text().await?;
    check(
        text.contains("PhotoBook CLI") || text.contains("photo-cli"),
        || format!("the consent page should name the device's client; it reads: {text}"),
    )?;
    check(text.contains(&shown.user_code), || {
        format!("the consent page should show the code; it reads: {text}")
    })?;
    decide(b, "allow").await?;
    b.wait_for("h1").await?;
    let text = b.body_text().await?;
    check(text.contains("You can now return to your device"), || {
        format!("after allowing, the page reads: {text}")
    })?;

    // photo-cli was polling all along: it gets its token and lists the photos.
    let finished = cli.finished(Duration::from_secs(90)).await?;
    check(finished.status.success(), || {
        format!(
            "photo-cli exited with {}; stderr:\n{}",
            finished.status, finished.stderr
        )
    })?;
    check(finished.stdout.starts_with("alice has 3 photos:"), || {
        format!("photo-cli printed: {:?}", finished.stdout)
    })?;
    check(finished.stdout.lines().count() == 4, || {
        format!(
            "photo-cli should list 3 photos, it printed: {:?}",
            finished.stdout
        )
    })?;
    check(!finished.stdout.contains(&shown.user_code), || {
        "photo-cli's stdout is for the photos".into()
    })
}

#[tokio::test]
async fn alice_links_printshop_and_sees_her_photos() {
    run_scenario!("happy-path", happy_path);
}

#[tokio::test]
async fn alice_denies_and_printshop_says_so() {
    run_scenario!("deny", deny);
}

#[tokio::test]
async fn wrong_password_shows_login_again_with_error() {
    run_scenario!("wrong-password", wrong_password);
}

#[tokio::test]
async fn alice_allows_photo_cli_on_the_verification_page() {
    run_scenario!("device-flow", device_flow);
}
