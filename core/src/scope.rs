//! Scopes (RFC 6749 §3.3): a set of space-delimited tokens whose syntax is
//! checked on construction, so a [`Scope`] can only hold valid tokens.

use std::collections::BTreeSet;
use std::fmt;

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
        if token.is_empty() || !token.bytes().all(is_scope_char) {
            return Err(OAuthError::invalid_scope(
                "scope tokens are printable ASCII without spaces, quotes or backslashes",
            ));
        }
        Ok(Self(token))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
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

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// A set of scope tokens. Order and repetition carry no meaning (RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Scope(BTreeSet<ScopeToken>);

impl Scope {
    /// Parses a `scope` parameter: tokens separated by single spaces.
    ///
    /// Leading, trailing or doubled spaces, and characters outside the
    /// grammar, are `invalid_scope`.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ') {
            set.insert(ScopeToken::new(token)?);
        }
        Ok(Self(set))
    }

    /// An empty scope.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a scope from tokens.
    pub fn from_tokens(tokens: impl IntoIterator<Item = ScopeToken>) -> Self {
        Self(tokens.into_iter().collect())
    }

    /// Whether no token is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the scope has this token.
    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t.as_str() == token)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &ScopeToken> {
        self.0.iter()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(t.as_str())?;
        }
        Ok(())
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.to_string()
    }
}

impl TryFrom<String> for Scope {
    type Error = OAuthError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() {
            Ok(Scope::empty())
        } else {
            Scope::parse(&s)
        }
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
