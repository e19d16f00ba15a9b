//! Request parameters, parsed once with RFC 6749's rules.
//!
//! - A parameter sent more than once is `invalid_request` (RFC 6749 §3.1, §3.2).
//! - A parameter sent without a value is treated as omitted (§3.1, §3.2).
//! - Values are `application/x-www-form-urlencoded` (Appendix B).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::error::OAuthError;

/// The parameters of one request: each name at most once, empty values dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl std::fmt::Debug for Params {
    /// Values may be secrets (codes, tokens, client secrets), so only names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` string (a query string or a form body).
    ///
    /// Fails with `invalid_request` naming the first repeated parameter.
    pub fn parse(encoded: &str) -> Result<Self, OAuthError> {
        Self::from_pairs(
            url::form_urlencoded::parse(encoded.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Builds parameters from already-decoded pairs, applying the same rules as [`Params::parse`].
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, OAuthError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        // Empty values stay in the map until every pair is seen, so that a
        // repeat is caught even when one of the copies is empty.
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            match map.entry(k.into()) {
                Entry::Occupied(e) => {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter `{}` was sent more than once",
                        printable(e.key())
                    )));
                }
                Entry::Vacant(e) => {
                    e.insert(v.into());
                }
            }
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Self { map })
    }

    /// Parses like [`Params::parse`] but keeps the first value of a repeated
    /// parameter and reports the repeated names. The authorization endpoint
    /// needs this: a repeated `client_id` or `redirect_uri` must not lead to a
    /// redirect, while other repeats are reported *to* the verified redirect URI.
    pub fn parse_reporting_duplicates(encoded: &str) -> (Self, Vec<String>) {
        let mut map = BTreeMap::new();
        let mut duplicates = Vec::new();
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            match map.entry(k.into_owned()) {
                Entry::Occupied(e) => duplicates.push(e.key().clone()),
                Entry::Vacant(e) => {
                    e.insert(v.into_owned());
                }
            }
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        (Self { map }, duplicates)
    }

    /// The value of a parameter, if sent with a non-empty value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The value of a required parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
    }

    /// Whether the parameter was sent with a value.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Every parameter name and value, for extension grants.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Parameter names from the wire go into error descriptions; keep them short
/// and within the characters RFC 6749 §5.2 allows for `error_description`.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| matches!(*c, ' '..='!' | '#'..='[' | ']'..='~'))
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn duplicate_parameter_is_invalid_request_rfc6749_3_1() {
        let err = Params::parse("a=1&b=2&a=3").err();
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn duplicate_even_when_empty_is_rejected() {
        assert!(Params::parse("a=&a=1").is_err());
    }

    #[test]
    fn empty_values_count_as_absent_rfc6749_3_1() {
        let p = Params::parse("scope=&state=xyz").unwrap_or_default();
        assert_eq!(p.get("scope"), None);
        assert!(p.require("scope").is_err());
        assert_eq!(p.get("state"), Some("xyz"));
    }

    #[test]
    fn decodes_form_encoding() {
        let p = Params::parse("redirect_uri=http%3A%2F%2Fx%2Fcb&scope=a+b").unwrap_or_default();
        assert_eq!(p.get("redirect_uri"), Some("http://x/cb"));
        assert_eq!(p.get("scope"), Some("a b"));
    }

    #[test]
    fn debug_hides_values() {
        let p = Params::parse("client_secret=hunter2").unwrap_or_default();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
