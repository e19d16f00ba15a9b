//! A small, forgiving HTML scan for what a browser needs to submit a form:
//! each `<form>` with its method and action, its inputs and its buttons.
//! Comments, `<script>` and `<style>` are skipped; attribute values may be
//! double-, single- or un-quoted; character references are decoded.

/// A control inside a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `input`, `button`, `select` or `textarea`.
    pub tag: String,
    /// The `type` attribute, lowercased (`text` for inputs, `submit` for buttons by default).
    pub kind: String,
    /// The `name` attribute.
    pub name: Option<String>,
    /// The `value` attribute (decoded), or empty.
    pub value: String,
    /// Whether `checked` is present.
    pub checked: bool,
}

impl Field {
    /// Whether clicking it submits the form.
    pub fn is_submit(&self) -> bool {
        matches!(
            (self.tag.as_str(), self.kind.as_str()),
            ("button", "submit") | ("input", "submit") | ("input", "image")
        )
    }
}

/// A form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Form {
    /// The `method` attribute, lowercased (`get` by default).
    pub method: String,
    /// The `action` attribute (decoded), if present and not empty.
    pub action: Option<String>,
    /// Every control, in document order.
    pub fields: Vec<Field>,
}

impl Form {
    /// The control named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.as_deref() == Some(name))
    }

    /// The submit control with this name and value.
    pub fn submit_button(&self, name: &str, value: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.is_submit() && f.name.as_deref() == Some(name) && f.value == value)
    }

    /// The pairs a browser sends when `clicked` (a submit control's name and
    /// value) is pressed, with `fill` overriding the values of named controls.
    pub fn submission(
        &self,
        fill: &[(&str, &str)],
        clicked: Option<(&str, &str)>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in &self.fields {
            let Some(name) = &f.name else { continue };
            if f.is_submit() || matches!(f.kind.as_str(), "button" | "reset" | "file") {
                continue;
            }
            if matches!(f.kind.as_str(), "checkbox" | "radio") && !f.checked {
                continue;
            }
            let value = fill
                .iter()
                .find(|(k, _)| k == name)
                .map_or(f.value.as_str(), |(_, v)| v);
            out.push((name.clone(), value.to_owned()));
        }
        if let Some((n, v)) = clicked {
            out.push((n.to_owned(), v.to_owned()));
        }
        out
    }
}

/// Every form in `html`, in document order.
pub fn forms(html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut current: Option<Form> = None;
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            i = rest
                .find("-->")
                .map_or(html.len(), |e| start + e + "-->".len());
            continue;
        }
        let Some(tag) = parse_tag(html, start) else {
            i = start + 1;
            continue;
        };
        i = tag.end;
        match (tag.closing, tag.name.as_str()) {
            (false, "script" | "style") => {
                let close = format!("</{}", tag.name);
                i = find_ci(html, i, &close).unwrap_or(html.len());
            }
            (false, "form") => {
                if let Some(f) = current.take() {
                    forms.push(f);
                }
                current = Some(Form {
                    method: tag
                        .attr("method")
                        .map_or_else(|| "get".to_owned(), |m| m.trim().to_ascii_lowercase()),
                    action: tag.attr("action").filter(|a| !a.trim().is_empty()),
                    fields: Vec::new(),
                });
            }
            (true, "form") => {
                if let Some(f) = current.take() {
                    forms.push(f);
                }
            }
            (false, "input" | "button" | "select" | "textarea") => {
                if let Some(form) = current.as_mut() {
                    let default_kind = match tag.name.as_str() {
                        "button" => "submit",
                        "input" => "text",
                        other => other,
                    };
                    form.fields.push(Field {
                        tag: tag.name.clone(),
                        kind: tag
                            .attr("type")
                            .map_or_else(|| default_kind.to_owned(), |t| t.to_ascii_lowercase()),
                        name: tag.attr("name"),
                        value: tag.attr("value").unwrap_or_default(),
                        checked: tag.has("checked"),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(f) = current.take() {
        forms.push(f);
    }
    forms
}

struct Tag {
    name: String,
    closing: bool,
    attrs: Vec<(String, Option<String>)>,
    end: usize,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone().unwrap_or_default())
    }

    fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(k, _)| k == name)
    }
}

fn find_ci(html: &str, from: usize, needle: &str) -> Option<usize> {
    let hay = html.as_bytes();
    let n = needle.as_bytes();
    (from..hay.len().saturating_sub(n.len() - 1))
        .find(|&p| hay[p..p + n.len()].eq_ignore_ascii_case(n))
}

/// Parses the tag starting at `start` (which holds `<`).
fn parse_tag(html: &str, start: usize) -> Option<Tag> {
    let b = html.as_bytes();
    let mut p = start + 1;
    let closing = b.get(p) == Some(&b'/');
    if closing {
        p += 1;
    }
    let name_start = p;
    while p < b.len() && b[p].is_ascii_alphanumeric() {
        p += 1;
    }
    if p == name_start {
        return None;
    }
    let name = html[name_start..p].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while p < b.len() && (b[p].is_ascii_whitespace() || b[p] == b'/') {
            p += 1;
        }
        if p >= b.len() {
            return Some(Tag {
                name,
                closing,
                attrs,
                end: b.len(),
            });
        }
        if b[p] == b'>' {
            return Some(Tag {
                name,
                closing,
                attrs,
                end: p + 1,
            });
        }
        let an_start = p;
        while p < b.len() && !b[p].is_ascii_whitespace() && !matches!(b[p], b'=' | b'>' | b'/') {
            p += 1;
        }
        let attr_name = html[an_start..p].to_ascii_lowercase();
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        if b.get(p) != Some(&b'=') {
            attrs.push((attr_name, None));
            continue;
        }
        p += 1;
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        let value = match b.get(p) {
            Some(&q @ (b'"' | b'\'')) => {
                let v_start = p + 1;
                let v_end = html[v_start..]
                    .find(q as char)
                    .map_or(b.len(), |e| v_start + e);
                p = (v_end + 1).min(b.len());
                &html[v_start..v_end]
            }
            _ => {
                let v_start = p;
                while p < b.len() && !b[p].is_ascii_whitespace() && b[p] != b'>' {
                    p += 1;
                }
                &html[v_start..p]
            }
        };
        attrs.push((attr_name, Some(decode_entities(value))));
    }
}

/// Decodes the character references a template engine produces.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&e| e <= 10).and_then(|e| {
            let ent = &after[..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let num = ent.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_login_form_with_hidden_inputs() {
        let html = r#"<!doctype html><html><head><style>form{}</style>
            <script>var s = "<form method=get>";</script></head><body>
            <!-- <form method="post" action="/nope"> -->
            <FORM Method="POST" action="/login?x=1&amp;y=2">
              <input type="hidden" name="handle" value="tsp_a&#x2F;b&#47;c">
              <input type=hidden name=csrf value=abc>
              <label>User <input name="username" autocomplete="username"></label>
              <input type="password" name="password">
              <input type="checkbox" name="remember" value="1">
              <button>Log in</button>
            </FORM></body></html>"#;
        let f = forms(html);
        assert_eq!(f.len(), 1);
        let form = &f[0];
        assert_eq!(form.method, "post");
        assert_eq!(form.action.as_deref(), Some("/login?x=1&y=2"));
        assert_eq!(
            form.field("handle").map(|f| f.value.as_str()),
            Some("tsp_a/b/c")
        );
        assert_eq!(
            form.field("password").map(|f| f.kind.as_str()),
            Some("password")
        );
        let sub = form.submission(&[("username", "alice"), ("password", "pw")], None);
        assert_eq!(
            sub,
            vec![
                ("handle".to_owned(), "tsp_a/b/c".to_owned()),
                ("csrf".to_owned(), "abc".to_owned()),
                ("username".to_owned(), "alice".to_owned()),
                ("password".to_owned(), "pw".to_owned()),
            ]
        );
    }

    #[test]
    fn consent_buttons() {
        let html = r#"<form method='post'><input type='hidden' name='h' value='v'/>
            <button type="submit" name="decision" value="allow">Allow</button>
            <input type="submit" name="decision" value="deny"></form>"#;
        let f = forms(html);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].action, None);
        assert!(f[0].submit_button("decision", "allow").is_some());
        assert!(f[0].submit_button("decision", "deny").is_some());
        assert_eq!(
            f[0].submission(&[], Some(("decision", "deny"))),
            vec![
                ("h".to_owned(), "v".to_owned()),
                ("decision".to_owned(), "deny".to_owned())
            ]
        );
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode_entities("a&amp;b&lt;&#39;&unknown;&"),
            "a&b<'&unknown;&"
        );
    }

    #[test]
    fn truncated_html_does_not_panic() {
        for s in [
            "<",
            "<form",
            "<form method=\"post",
            "<input name=",
            "<a b='",
            "é<f é>",
        ] {
            let _ = forms(s);
        }
    }
}
