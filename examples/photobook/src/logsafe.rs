//! Values from requests, made safe to put in a log line (log injection,
//! CWE-117; RFC 6819 §5.1.6 asks for no secrets in logs).
//!
//! Whatever a request carries may hold a newline, a carriage return, an
//! ANSI escape or a bidirectional override (U+202E) that would forge or hide
//! log lines in a plain-text log. Every value the demo logs that came from a
//! request goes through [`escape`], which writes such characters as Rust
//! escapes (`\n`, `\u{202e}`) and cuts very long values short.
//!
//! A failed sign-in never logs the username as typed: people often type their
//! password into that field. [`AccountTag`] gives a short digest instead,
//! keyed per process, so the lines of one guessing run can be told apart
//! without the log holding what was typed.

use std::fmt;

use sha2::{Digest, Sha256};
use tessera::{OsRandom, Random};

/// At most this many characters of a value are logged.
pub const MAX_LOGGED_CHARS: usize = 128;

/// `text`, escaped for a log line: see [`Escaped`].
pub fn escape(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// Displays its text with every control, format (bidi), unassigned or
/// otherwise unprintable character, quote and backslash escaped as in Rust
/// source (`\n`, `\"`, `\u{202e}`), and at most [`MAX_LOGGED_CHARS`]
/// characters of it (then `…` and how many were left out). The result is one
/// line of printable text.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_LOGGED_CHARS) {
            fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        let rest = chars.count();
        if rest > 0 {
            write!(f, "…(+{rest} chars)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Names an account in logs without its text: the first 6 bytes (12 hex
/// digits) of SHA-256 over a per-process random key and the name. The same
/// name gives the same tag within one process; the tag cannot be turned back
/// into the name, nor checked against guesses without the key.
pub struct AccountTag {
    key: [u8; 32],
}

impl fmt::Debug for AccountTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountTag([redacted])")
    }
}

impl Default for AccountTag {
    fn default() -> Self {
        Self::new()
    }
}

impl AccountTag {
    /// A tagger with a fresh random key.
    pub fn new() -> Self {
        Self {
            key: OsRandom.bytes32(),
        }
    }

    /// The tag of `account`.
    pub fn tag(&self, account: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(account.as_bytes());
        let digest = h.finalize();
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_a_value_on_one_printable_line() {
        // A username that would forge a whole log line (issue 11, defect 4).
        let forged = "mallory\n2025-01-01T00:00:00Z  INFO photobook::flow: signed in user=alice";
        let shown = escape(forged).to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("mallory\\n2025"), "{shown}");
        for (raw, escaped) in [
            ("a\rb", "a\\rb"),
            ("a\tb", "a\\tb"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("q\"uote\\", "q\\\"uote\\\\"),
            ("nul\0", "nul\\0"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("plain alice", "plain alice"),
            ("café ☃", "café ☃"),
        ] {
            assert_eq!(escape(raw).to_string(), escaped, "{raw:?}");
        }
        assert_eq!(format!("{:?}", escape("a\nb")), "\"a\\nb\"");
    }

    #[test]
    fn escape_cuts_long_values() {
        let long = "x".repeat(10_000);
        let shown = escape(&long).to_string();
        assert!(shown.starts_with(&"x".repeat(MAX_LOGGED_CHARS)));
        assert!(shown.ends_with("…(+9872 chars)"), "{shown}");
        assert!(shown.len() < 200);
        assert_eq!(
            escape(&"y".repeat(MAX_LOGGED_CHARS)).to_string(),
            "y".repeat(MAX_LOGGED_CHARS)
        );
    }

    #[test]
    fn account_tags_are_stable_short_and_keyed() {
        let a = AccountTag::new();
        let b = AccountTag::new();
        let tag = a.tag("hunter2");
        assert_eq!(tag.len(), 12);
        assert!(tag.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.tag("hunter2"), tag, "stable within a process");
        assert_ne!(a.tag("hunter3"), tag);
        assert_ne!(b.tag("hunter2"), tag, "keyed per process");
        assert_eq!(format!("{a:?}"), "AccountTag([redacted])");
    }
}
