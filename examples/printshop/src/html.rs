//! PrintShop's HTML pages: tiny, dependency-free, every dynamic value escaped.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for use in HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink: #1f2933; --muted: #616e7c; --accent: #c2410c; --accent-dark: #9a3412; --bg: #fdf8f3; --card: #ffffff; --line: #eadfd3; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); line-height: 1.5; }
header { background: var(--card); border-bottom: 1px solid var(--line); }
header .bar { max-width: 760px; margin: 0 auto; padding: 14px 24px; display: flex; align-items: center; gap: 10px; }
header .logo { font-weight: 700; font-size: 1.25rem; letter-spacing: .02em; color: var(--accent); text-decoration: none; }
header .tag { color: var(--muted); font-size: .9rem; }
main { max-width: 760px; margin: 32px auto; padding: 0 24px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 28px 32px; box-shadow: 0 1px 3px rgba(0,0,0,.04); }
h1 { font-size: 1.6rem; margin: 0 0 12px; }
p { margin: 0 0 14px; }
.muted { color: var(--muted); }
.button { font: inherit; line-height: 1.5; display: inline-block; background: var(--accent); color: #fff; border: 0; border-radius: 8px; padding: 10px 18px; font-size: 1rem; font-weight: 600; text-decoration: none; cursor: pointer; }
.button:hover { background: var(--accent-dark); }
.button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--accent); }
.actions { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-top: 20px; }
.actions form { margin: 0; }
.error h1 { color: #b42318; }
ul.photos { list-style: none; padding: 0; margin: 16px 0 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 14px; }
ul.photos li { border: 1px solid var(--line); border-radius: 10px; padding: 14px; background: #fffaf5; }
ul.photos li .thumb { height: 90px; border-radius: 6px; background: linear-gradient(135deg, #fed7aa, #fdba74); margin-bottom: 10px; }
ul.photos li .title { font-weight: 600; }
footer { max-width: 760px; margin: 0 auto 32px; padding: 0 24px; color: var(--muted); font-size: .85rem; }
"#;

/// A complete HTML document around `body` (which must already be escaped markup).
pub fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · PrintShop</title>
<style>{STYLE}</style>
</head>
<body>
<header><div class="bar"><a class="logo" href="/">PrintShop</a><span class="tag">prints of your PhotoBook photos</span></div></header>
<main>
{body}
</main>
<footer>PrintShop never sees your PhotoBook password: you sign in at PhotoBook and choose what to share.</footer>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The home page, for a visitor who has or has not linked PhotoBook yet.
pub fn home(linked: bool) -> Html<String> {
    let body = if linked {
        r#"<section class="card">
<h1>Welcome back</h1>
<p>Your PhotoBook account is connected. Pick the photos you would like printed.</p>
<div class="actions">
<a class="button" id="view-photos" href="/photos">View my photos</a>
<form method="post" action="/disconnect"><button class="button secondary" type="submit">Disconnect PhotoBook</button></form>
</div>
<p class="muted">Another PhotoBook account? <a id="connect" href="/connect">Connect PhotoBook</a> again to link it instead.</p>
</section>"#
    } else {
        r#"<section class="card">
<h1>Beautiful prints of your photos</h1>
<p>Keep your pictures on PhotoBook? Connect your account and PrintShop will show your photos, ready to print.</p>
<p class="muted">You will sign in at PhotoBook itself and decide what PrintShop may see. You can disconnect at any time.</p>
<div class="actions"><a class="button" id="connect" href="/connect">Connect PhotoBook</a></div>
</section>"#
    };
    Html(layout("Home", body))
}

/// A photo as shown on the photos page.
#[derive(Debug, Clone)]
pub struct PhotoView {
    /// The provider's photo id, as text.
    pub id: String,
    /// The photo's title.
    pub title: String,
}

/// The page listing the linked user's photos.
pub fn photos(owner: &str, photos: &[PhotoView]) -> Html<String> {
    let mut items = String::new();
    for photo in photos {
        items.push_str(&format!(
            "<li class=\"photo\" data-photo-id=\"{id}\"><div class=\"thumb\"></div><div class=\"title\">{title}</div></li>\n",
            id = escape(&photo.id),
            title = escape(&photo.title),
        ));
    }
    let list = if photos.is_empty() {
        "<p class=\"muted\">No photos in this PhotoBook yet.</p>".to_owned()
    } else {
        format!("<ul class=\"photos\">\n{items}</ul>")
    };
    let count = match photos.len() {
        1 => "1 photo".to_owned(),
        n => format!("{n} photos"),
    };
    let body = format!(
        r#"<section class="card">
<h1>Photos of <span id="owner">{owner}</span></h1>
<p class="muted" id="photo-count">{count} from PhotoBook</p>
{list}
<div class="actions">
<form method="post" action="/disconnect"><button class="button secondary" type="submit">Disconnect PhotoBook</button></form>
</div>
</section>"#,
        owner = escape(owner),
    );
    Html(layout("Your photos", &body))
}

/// A friendly error page: a status, a headline, an explanation and a way on.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// HTTP status of the page.
    pub status: StatusCode,
    /// Headline, e.g. "You declined access".
    pub title: String,
    /// A sentence or two for a person.
    pub message: String,
    /// Whether to offer "Connect PhotoBook" (as opposed to only "Back to PrintShop").
    pub offer_connect: bool,
}

impl ErrorPage {
    /// A page with the given status, headline and explanation, offering to connect again.
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            offer_connect: true,
        }
    }

    /// The same page without the "Try again" link.
    pub fn without_connect(mut self) -> Self {
        self.offer_connect = false;
        self
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let connect = if self.offer_connect {
            r#"<a class="button" href="/connect">Try again</a>"#
        } else {
            ""
        };
        let body = format!(
            r#"<section class="card error" id="error">
<h1>{title}</h1>
<p>{message}</p>
<div class="actions">{connect}<a class="button secondary" href="/">Back to PrintShop</a></div>
</section>"#,
            title = escape(&self.title),
            message = escape(&self.message),
        );
        (self.status, Html(layout(&self.title, &body))).into_response()
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn photos_page_escapes_provider_data() {
        let page = photos(
            "<script>alice</script>",
            &[PhotoView {
                id: "1".into(),
                title: "<b>Sunset</b>".into(),
            }],
        );
        assert!(!page.0.contains("<script>alice"));
        assert!(page.0.contains("&lt;b&gt;Sunset&lt;/b&gt;"));
    }
}
