//! The HTML pages, rendered with minijinja from the templates in
//! `examples/photobook/templates/` (compiled in; `.html` templates are
//! auto-escaped, so every value is HTML-escaped).

use minijinja::Environment;

use crate::flow::redacted;
use serde::Serialize;
use tessera::{Client, DevicePrompt, Prompt};

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The form field carrying the pending-request handle.
pub const HANDLE_FIELD: &str = "handle";

/// What the login page shows. Its `Debug` hides the handle, the CSRF token
/// and the username (often a password typed in the wrong field).
#[derive(Clone, Serialize)]
pub struct LoginPage<'a> {
    /// The client's display name.
    pub client_name: &'a str,
    /// The pending-request handle (hidden input).
    pub handle: &'a str,
    /// The session's CSRF token (hidden input).
    pub csrf_token: &'a str,
    /// The username to prefill (after a failed attempt).
    pub username: &'a str,
    /// An error to show, e.g. wrong credentials.
    pub error: Option<&'a str>,
}

/// One requested scope, in words.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeLine {
    /// The scope token, e.g. `photos.read`.
    pub token: String,
    /// What it allows, e.g. "View your photos".
    pub words: String,
}

/// What the consent page shows. Its `Debug` hides the handle and the CSRF
/// token.
#[derive(Clone, Serialize)]
pub struct ConsentPage<'a> {
    /// The client's display name.
    pub client_name: &'a str,
    /// The client's id, shown beside its name (DEMO-CONTRACT: the page
    /// names the client; `photo-cli` is "PhotoBook CLI" by name).
    pub client_id: &'a str,
    /// The host the browser is sent back to after the decision (the
    /// redirect URI's), which the page names: where the code goes is what
    /// a person can check (MCP authorization 2025-11-25, client ID metadata
    /// documents). `None` for the device flow, which has none.
    pub redirect_host: Option<String>,
    /// The redirect URI is a loopback address: the page warns that any app
    /// on the user's own machine could be the one receiving the code.
    pub redirect_loopback: bool,
    /// The signed-in user.
    pub username: &'a str,
    /// The requested scopes, in words.
    pub scopes: Vec<ScopeLine>,
    /// The pending-request handle (hidden input).
    pub handle: &'a str,
    /// The session's CSRF token (hidden input).
    pub csrf_token: &'a str,
    /// The client registered itself (RFC 7591): its name is its own claim,
    /// and the page says PhotoBook has not verified it.
    pub unverified: bool,
    /// For a client known by its client ID metadata document: the host of
    /// its `client_id` URL, which the page names (the draft's §6.3: the
    /// host is what a person can check, the name is anyone's claim).
    pub client_host: Option<&'a str>,
    /// The resource the access is for (RFC 8707: the photo API or the MCP
    /// server), which the page names: consent is to a client at a resource.
    pub resource: Option<&'a str>,
}

/// The host of a client known by its client ID metadata document.
fn document_host(client: &tessera::Client) -> Option<&str> {
    client
        .registration
        .as_ref()
        .and_then(|r| r.metadata_document_host.as_deref())
}

impl std::fmt::Debug for LoginPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPage")
            .field("client_name", &self.client_name)
            .field("handle", &redacted(self.handle))
            .field("csrf_token", &redacted(self.csrf_token))
            .field("username", &redacted(self.username))
            .field("error", &self.error)
            .finish()
    }
}

impl std::fmt::Debug for ConsentPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentPage")
            .field("client_name", &self.client_name)
            .field("username", &self.username)
            .field("scopes", &self.scopes)
            .field("unverified", &self.unverified)
            .field("client_host", &self.client_host)
            .field("handle", &redacted(self.handle))
            .field("csrf_token", &redacted(self.csrf_token))
            .finish()
    }
}

impl<'a> ConsentPage<'a> {
    /// The consent page for a prompt from the core.
    pub fn for_prompt(prompt: &'a Prompt, username: &'a str, csrf_token: &'a str) -> Self {
        let redirect = prompt.redirect_host();
        Self {
            client_name: display_name(prompt),
            client_id: prompt.client.id.as_str(),
            redirect_host: redirect.as_ref().map(|(host, _)| host.clone()),
            redirect_loopback: redirect.is_some_and(|(_, loopback)| loopback),
            username,
            scopes: prompt
                .scope_descriptions()
                .map(|(token, words)| ScopeLine {
                    token: token.to_owned(),
                    words: words.to_owned(),
                })
                .collect(),
            handle: &prompt.handle,
            csrf_token,
            unverified: prompt.client.is_dynamically_registered(),
            client_host: document_host(&prompt.client),
            resource: prompt.resource.as_ref().map(|r| r.as_str()),
        }
    }
}

/// The login page of the device flow: the [`LoginPage`] (without a handle)
/// posting to `action` with the user code in a hidden input. Its `Debug`
/// hides the user code.
#[derive(Clone, Serialize)]
pub struct DeviceLoginPage<'a> {
    /// What the login page shows.
    #[serde(flatten)]
    pub page: LoginPage<'a>,
    /// Where the form posts (an absolute path).
    pub action: &'a str,
    /// The normalised user code (hidden input).
    pub user_code: &'a str,
}

impl std::fmt::Debug for DeviceLoginPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLoginPage")
            .field("page", &self.page)
            .field("action", &self.action)
            .field("user_code", &redacted(self.user_code))
            .finish()
    }
}

/// The consent page of the device flow: the [`ConsentPage`] (without a
/// handle) posting to `action` with the user code in a hidden input. Its
/// `Debug` hides the user code.
#[derive(Clone, Serialize)]
pub struct DeviceConsentPage<'a> {
    /// What the consent page shows.
    #[serde(flatten)]
    pub page: ConsentPage<'a>,
    /// Where the form posts (an absolute path).
    pub action: &'a str,
    /// The normalised user code (shown, and a hidden input).
    pub user_code: &'a str,
}

impl std::fmt::Debug for DeviceConsentPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConsentPage")
            .field("page", &self.page)
            .field("action", &self.action)
            .field("user_code", &redacted(self.user_code))
            .finish()
    }
}

impl<'a> DeviceConsentPage<'a> {
    /// The consent page for a device prompt from the core.
    pub fn for_prompt(
        prompt: &'a DevicePrompt,
        username: &'a str,
        csrf_token: &'a str,
        action: &'a str,
    ) -> Self {
        Self {
            page: ConsentPage {
                client_name: client_display_name(&prompt.client),
                client_id: prompt.client.id.as_str(),
                redirect_host: None,
                redirect_loopback: false,
                username,
                scopes: prompt
                    .scope_descriptions()
                    .map(|(token, words)| ScopeLine {
                        token: token.to_owned(),
                        words: words.to_owned(),
                    })
                    .collect(),
                handle: "",
                csrf_token,
                unverified: prompt.client.is_dynamically_registered(),
                client_host: document_host(&prompt.client),
                resource: prompt.resource.as_ref().map(|r| r.as_str()),
            },
            action,
            user_code: &prompt.user_code,
        }
    }
}

/// What the device verification page shows: one form whose input is
/// `user_code`. Its `Debug` hides the CSRF token and the code.
#[derive(Clone, Serialize)]
pub struct DevicePage<'a> {
    /// Where the form posts (the verification path).
    pub action: &'a str,
    /// The CSRF token (hidden input).
    pub csrf_token: &'a str,
    /// The code to prefill.
    pub user_code: &'a str,
    /// An error to show, e.g. an unknown code.
    pub error: Option<&'a str>,
}

impl std::fmt::Debug for DevicePage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePage")
            .field("action", &self.action)
            .field("csrf_token", &redacted(self.csrf_token))
            .field("user_code", &redacted(self.user_code))
            .field("error", &self.error)
            .finish()
    }
}

/// The name a page shows for a client: its registered name, else its id.
pub fn client_display_name(client: &Client) -> &str {
    if client.name.trim().is_empty() {
        client.id.as_str()
    } else {
        &client.name
    }
}

/// The name a page shows for the prompt's client: its registered name, else its id.
pub fn display_name(prompt: &Prompt) -> &str {
    if prompt.client.name.trim().is_empty() {
        prompt.client.id.as_str()
    } else {
        &prompt.client.name
    }
}

/// What an error page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorPage<'a> {
    /// The heading.
    pub title: &'a str,
    /// What happened and what to do, in plain words.
    pub message: &'a str,
    /// The OAuth error code, for developers (shown with `detail`).
    pub code: &'a str,
    /// The technical description, for developers.
    pub detail: Option<&'a str>,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

/// Every template, by name.
const TEMPLATES: [(&str, &str); 6] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("device.html", include_str!("../templates/device.html")),
];

impl Pages {
    /// Compiles the templates (they are compiled in, so this fails only on a
    /// template syntax error, which the tests rule out).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    fn render<S: Serialize>(&self, name: &str, context: S) -> String {
        match self.env.get_template(name).and_then(|t| t.render(context)) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "page rendering failed");
                "<!doctype html><html lang=\"en\"><title>Error · PhotoBook</title><h1>Something went wrong</h1><p>Please try again later.</p></html>".to_owned()
            }
        }
    }

    /// The login page.
    pub fn login(&self, page: &LoginPage<'_>) -> String {
        self.render("login.html", page)
    }

    /// The consent page.
    pub fn consent(&self, page: &ConsentPage<'_>) -> String {
        self.render("consent.html", page)
    }

    /// The login page of the device flow.
    pub fn device_login(&self, page: &DeviceLoginPage<'_>) -> String {
        self.render("login.html", page)
    }

    /// The consent page of the device flow.
    pub fn device_consent(&self, page: &DeviceConsentPage<'_>) -> String {
        self.render("consent.html", page)
    }

    /// The device verification page.
    pub fn device(&self, page: &DevicePage<'_>) -> String {
        self.render("device.html", page)
    }

    /// An error page.
    pub fn error(&self, page: &ErrorPage<'_>) -> String {
        self.render("error.html", page)
    }

    /// The home page, linking to the metadata document.
    pub fn home(&self, metadata_url: &str) -> String {
        self.home_with_device(metadata_url, None)
    }

    /// The home page, linking to the metadata document and, when the device
    /// grant is on, to the device verification page.
    pub fn home_with_device(&self, metadata_url: &str, device_url: Option<&str>) -> String {
        self.render(
            "home.html",
            minijinja::context! { metadata_url, device_url },
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile_and_escape() {
        let pages = Pages::new().unwrap();
        let html = pages.login(&LoginPage {
            client_name: "<script>x</script>",
            handle: "h\"><b>",
            csrf_token: "c",
            username: "' onfocus='x",
            error: Some("<i>bad</i>"),
        });
        assert!(!html.contains("<script>x"));
        assert!(!html.contains("h\"><b>"));
        assert!(!html.contains("' onfocus='x"));
        assert!(!html.contains("<i>bad"));
        assert!(html.contains("&lt;script&gt;"));
        assert_eq!(html.matches("<form method=\"post\"").count(), 1);
        assert!(html.contains("name=\"username\""));
        assert!(html.contains("name=\"password\""));
        assert!(html.contains("<label for=\"username\">"));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn consent_lists_scopes_and_has_both_buttons() {
        let pages = Pages::new().unwrap();
        let html = pages.consent(&ConsentPage {
            client_name: "PrintShop",
            username: "alice",
            scopes: vec![ScopeLine {
                token: "photos.read".into(),
                words: "View your photos".into(),
            }],
            handle: "tsp_x",
            csrf_token: "c",
            unverified: false,
            client_host: None,
            resource: None,
            client_id: "printshop",
            redirect_host: Some("127.0.0.1".into()),
            redirect_loopback: true,
        });
        assert_eq!(html.matches("<form method=\"post\"").count(), 1);
        assert!(html.contains("name=\"decision\" value=\"allow\""));
        assert!(html.contains("name=\"decision\" value=\"deny\""));
        assert!(html.contains("View your photos"));
        assert!(html.contains("PrintShop"));
        assert!(!html.contains("not verified"));
        // The client's id beside its name, and where the browser goes back
        // to, with a warning for an app on the user's own machine.
        assert!(
            html.contains("<code id=\"client-id\">printshop</code>"),
            "{html}"
        );
        assert!(
            html.contains("go back to <strong>127.0.0.1</strong>"),
            "{html}"
        );
        assert!(html.contains("an app on your own computer"), "{html}");
    }

    #[test]
    fn the_consent_page_names_the_resource() {
        let pages = Pages::new().unwrap();
        let page = |resource| ConsentPage {
            client_name: "PrintShop",
            username: "alice",
            scopes: Vec::new(),
            handle: "tsp_x",
            csrf_token: "c",
            unverified: false,
            client_host: None,
            resource,
            client_id: "printshop",
            redirect_host: None,
            redirect_loopback: false,
        };
        let html = pages.consent(&page(Some("http://127.0.0.1:9000/mcp")));
        assert!(html.contains("id=\"resource\""), "{html}");
        assert!(html.contains("127.0.0.1:9000"), "{html}");
        assert!(!pages.consent(&page(None)).contains("id=\"resource\""));
    }

    #[test]
    fn a_self_registered_client_is_marked_not_verified() {
        // DEMO-CONTRACT "Pages a person sees": the consent page of a
        // dynamically registered client says PhotoBook has not verified it.
        let pages = Pages::new().unwrap();
        let html = pages.consent(&ConsentPage {
            client_name: "PrintShop <official>",
            username: "alice",
            scopes: Vec::new(),
            handle: "tsp_x",
            csrf_token: "c",
            unverified: true,
            client_host: None,
            resource: None,
            client_id: "printshop",
            redirect_host: Some("127.0.0.1".into()),
            redirect_loopback: true,
        });
        assert!(
            html.contains("PhotoBook has not verified this app"),
            "{html}"
        );
        assert!(html.contains("PrintShop &lt;official&gt;"));
        assert!(!html.contains("<official>"));
        assert_eq!(html.matches("<form method=\"post\"").count(), 1);
    }

    #[test]
    fn a_metadata_document_client_is_named_by_its_host() {
        // draft-ietf-oauth-client-id-metadata-document §6.3: show the host
        // of the client_id; anyone can publish a document with any name.
        let pages = Pages::new().unwrap();
        let html = pages.consent(&ConsentPage {
            client_name: "PrintShop",
            username: "alice",
            scopes: Vec::new(),
            handle: "tsp_x",
            csrf_token: "c",
            unverified: true,
            client_host: Some("apps.example"),
            resource: None,
            client_id: "printshop",
            redirect_host: Some("127.0.0.1".into()),
            redirect_loopback: true,
        });
        assert!(
            html.contains("PhotoBook has not verified this app"),
            "{html}"
        );
        assert!(
            html.contains("<strong id=\"client-host\">apps.example</strong>"),
            "{html}"
        );
        assert!(!html.contains("It registered itself"), "{html}");
    }

    #[test]
    fn page_debug_hides_handles_tokens_and_typed_usernames() {
        // Issue 11, defect 7: no handle or CSRF token in Debug output.
        let login = LoginPage {
            client_name: "PrintShop",
            handle: "tsp_secret-handle",
            csrf_token: "csrf-secret",
            username: "hunter2-typed-as-username",
            error: None,
        };
        let consent = ConsentPage {
            client_name: "PrintShop",
            username: "alice",
            scopes: vec![],
            handle: "tsp_secret-handle",
            csrf_token: "csrf-secret",
            unverified: false,
            client_host: None,
            resource: None,
            client_id: "printshop",
            redirect_host: Some("127.0.0.1".into()),
            redirect_loopback: true,
        };
        for shown in [format!("{login:?}"), format!("{consent:?}")] {
            assert!(shown.contains("PrintShop"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
            for secret in ["tsp_secret-handle", "csrf-secret", "hunter2"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn device_pages_have_the_code_form_and_escape() {
        let pages = Pages::new().unwrap();
        let html = pages.device(&DevicePage {
            action: "/device",
            csrf_token: "c\"><i>",
            user_code: "\"><script>x</script>",
            error: Some("<b>no</b>"),
        });
        assert_eq!(html.matches("<form method=\"post\"").count(), 1);
        assert!(html.contains("name=\"user_code\" value=\""));
        assert!(html.contains("<label for=\"user_code\">"));
        // minijinja escapes `/` too; browsers read the entity back.
        assert!(html.contains("action=\"&#x2f;device\""), "{html}");
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>no"));
        assert!(!html.contains("c\"><i>"));
        let login = pages.device_login(&DeviceLoginPage {
            page: LoginPage {
                client_name: "PhotoBook CLI",
                handle: "",
                csrf_token: "c",
                username: "",
                error: None,
            },
            action: "/device/login",
            user_code: "BCDF-GHJK",
        });
        assert!(
            login.contains("action=\"&#x2f;device&#x2f;login\""),
            "{login}"
        );
        assert!(login.contains("name=\"user_code\" value=\"BCDF-GHJK\""));
        assert!(!login.contains("name=\"handle\""));
        let consent = pages.device_consent(&DeviceConsentPage {
            page: ConsentPage {
                client_name: "PhotoBook CLI",
                username: "alice",
                scopes: vec![],
                handle: "",
                csrf_token: "c",
                unverified: false,
                client_host: None,
                resource: None,
                client_id: "photo-cli",
                redirect_host: None,
                redirect_loopback: false,
            },
            action: "/device/consent",
            user_code: "BCDF-GHJK",
        });
        assert!(
            consent.contains("action=\"&#x2f;device&#x2f;consent\""),
            "{consent}"
        );
        assert!(consent.contains("name=\"user_code\" value=\"BCDF-GHJK\""));
        assert!(consent.contains("name=\"decision\" value=\"allow\""));
        assert!(!consent.contains("name=\"handle\""));
        assert!(
            !format!(
                "{:?}",
                DevicePage {
                    action: "/device",
                    csrf_token: "secret",
                    user_code: "BCDF-GHJK",
                    error: None,
                }
            )
            .contains("BCDF")
        );
        // The code flow's forms are unchanged.
        let code_flow = pages.login(&LoginPage {
            client_name: "PrintShop",
            handle: "tsl_h",
            csrf_token: "c",
            username: "",
            error: None,
        });
        assert!(code_flow.contains("action=\"login\""));
        assert!(code_flow.contains("name=\"handle\" value=\"tsl_h\""));
        assert!(!code_flow.contains("user_code"));
    }

    #[test]
    fn error_page_renders() {
        let pages = Pages::new().unwrap();
        let html = pages.error(&ErrorPage {
            title: "Unknown app",
            message: "m",
            code: "invalid_client",
            detail: Some("unknown client_id"),
        });
        assert!(html.contains("invalid_client"));
        assert!(!html.contains("<form"));
        assert!(
            pages
                .home("http://x/.well-known/oauth-authorization-server")
                .contains("metadata")
        );
    }
}
