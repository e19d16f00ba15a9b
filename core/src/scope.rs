//! Scopes (RFC 6749 §3.3): a set of space-delimited tokens whose syntax is
//! checked on construction, so a [`Scope`] can only hold valid tokens.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::OAuthError;

/// One scope token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ScopeToken(String);

impl ScopeToken {
    /// Validates one scope token.
    pub fn new(token: impl Into<String>) -> Result<Self, OAuthError> {
        let token = token.into();
        if !is_scope_token(&token) {
            return Err(invalid_token());
        }
        Ok(Self(token))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ScopeToken {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ScopeToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScopeToken::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ScopeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_scope_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(is_scope_char)
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// A set of scope tokens. Order and repetition carry no meaning (RFC 6749 §3.3).
///
/// Kept as one shared canonical string (tokens sorted, each once, single
/// spaces), so that cloning a scope into every token record costs a
/// reference count, equal sets compare and hash equal, and printing it
/// allocates nothing.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(Option<Arc<str>>);

impl Scope {
    /// Parses a `scope` parameter: tokens separated by single spaces.
    ///
    /// Leading, trailing or doubled spaces, and characters outside the
    /// grammar, are `invalid_scope`.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let mut canonical = true;
        let mut previous: Option<&str> = None;
        for token in s.split(' ') {
            if !is_scope_token(token) {
                return Err(invalid_token());
            }
            canonical &= previous.is_none_or(|p| p < token);
            previous = Some(token);
        }
        if canonical {
            // The common case (one token, or tokens already sorted): one allocation.
            return Ok(Self(Some(Arc::from(s))));
        }
        let mut tokens: Vec<&str> = s.split(' ').collect();
        tokens.sort_unstable();
        tokens.dedup();
        Ok(Self::from_sorted(&tokens))
    }

    /// A stored or serialised scope: like [`Scope::parse`], but `""` is the
    /// empty scope (a record may hold none; a request's `scope` may not).
    fn from_stored(s: &str) -> Result<Self, OAuthError> {
        if s.is_empty() {
            Ok(Self::empty())
        } else {
            Self::parse(s)
        }
    }

    /// The scope of sorted, distinct, valid tokens.
    fn from_sorted(tokens: &[&str]) -> Self {
        if tokens.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::from(tokens.join(" "))))
        }
    }

    /// An empty scope.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a scope from tokens.
    pub fn from_tokens(tokens: impl IntoIterator<Item = ScopeToken>) -> Self {
        let owned: Vec<ScopeToken> = tokens.into_iter().collect();
        let mut tokens: Vec<&str> = owned.iter().map(ScopeToken::as_str).collect();
        tokens.sort_unstable();
        tokens.dedup();
        Self::from_sorted(&tokens)
    }

    /// Whether no token is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Whether the scope has this token.
    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|t| t == token)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.iter().all(|t| other.contains(t))
    }

    /// The tokens, sorted, each once.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.as_str().split(' ').filter(|t| !t.is_empty())
    }

    /// The space-separated tokens, sorted (`""` when empty): the form of
    /// the `scope` parameter and of RFC 6749 §5.1's `scope` response field.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

fn invalid_token() -> OAuthError {
    OAuthError::invalid_scope(
        "scope tokens are printable ASCII without spaces, quotes or backslashes",
    )
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scope").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    /// As the space-separated string.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    /// From the space-separated string; `""` is the empty scope.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Scope::from_stored(&s).map_err(serde::de::Error::custom)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.as_str().to_owned()
    }
}

impl TryFrom<String> for Scope {
    type Error = OAuthError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Scope::from_stored(&s)
    }
}

impl std::str::FromStr for Scope {
    type Err = OAuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_orders() {
        let s = Scope::parse("profile photos.read").unwrap_or_default();
        assert_eq!(s.to_string(), "photos.read profile");
        assert!(s.contains("profile"));
    }

    #[test]
    fn rejects_bad_syntax_rfc6749_3_3() {
        for bad in ["", " a", "a ", "a  b", "a\"b", "a\\b", "caf\u{e9}", "a\tb"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn repeats_and_order_carry_no_meaning_rfc6749_3_3() {
        let a = Scope::parse("b a b").unwrap_or_default();
        let b = Scope::parse("a b").unwrap_or_default();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "a b");
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(!a.contains("a b"));
        assert!(Scope::empty().iter().next().is_none());
        assert_eq!(
            Scope::from_tokens(["z", "y", "z"].map(|t| ScopeToken::new(t).unwrap())).as_str(),
            "y z"
        );
    }

    #[test]
    fn serde_round_trip_as_string() {
        let s = Scope::parse("profile photos.read").unwrap_or_default();
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert_eq!(json, r#""photos.read profile""#);
        let back: Scope = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, s);
        let empty: Scope = serde_json::from_str(r#""""#).unwrap_or_default();
        assert!(empty.is_empty());
        assert!(serde_json::from_str::<Scope>(r#""a  b""#).is_err());
    }

    #[test]
    fn subset() {
        let a = Scope::parse("a").unwrap_or_default();
        let ab = Scope::parse("a b").unwrap_or_default();
        assert!(a.is_subset(&ab));
        assert!(!ab.is_subset(&a));
    }

    proptest! {
        #[test]
        fn valid_tokens_round_trip(tokens in proptest::collection::btree_set("[!#-\\[\\]-~]{1,12}", 1..6)) {
            let text = tokens.iter().cloned().collect::<Vec<_>>().join(" ");
            let scope = Scope::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(scope.iter().count(), tokens.len());
            let again = Scope::parse(&scope.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, scope);
        }

        #[test]
        fn parse_never_panics_and_only_accepts_grammar(s in ".{0,40}") {
            if let Ok(scope) = Scope::parse(&s) {
                prop_assert!(!s.is_empty());
                prop_assert!(s.bytes().all(|b| b == b' ' || is_scope_char(b)));
                prop_assert!(!scope.is_empty());
            }
        }
    }
}

/// The words for each scope token on consent pages ([`Config::scopes`]),
/// shared by every prompt instead of copied into each one.
///
/// [`Config::scopes`]: crate::Config::scopes
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ScopeWords(std::sync::Arc<std::collections::BTreeMap<ScopeToken, String>>);

impl ScopeWords {
    pub(crate) fn new(words: std::collections::BTreeMap<ScopeToken, String>) -> Self {
        Self(std::sync::Arc::new(words))
    }

    /// Each token of `scope` with its words, the token itself where none
    /// are configured.
    pub(crate) fn describe<'a>(
        &'a self,
        scope: &'a Scope,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        scope
            .iter()
            .map(|t| (t, self.0.get(t).map_or(t, String::as_str)))
    }
}
