//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` offers no
//! protection against a leaked authorization request and is refused
//! (RFC 9700 §2.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::OAuthError;

/// An S256 code challenge: base64url(SHA-256(verifier)), 43 characters (RFC 7636 §4.2).
///
/// Held as the 32-byte digest it encodes (base64url without padding is
/// canonical, so the text and the digest name each other): checking a
/// verifier compares digests, and a copy is a copy of 32 bytes. It
/// serialises as its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeChallenge([u8; 32]);

impl CodeChallenge {
    /// Parses `code_challenge` and `code_challenge_method` from an authorization request.
    ///
    /// The method defaults to `plain` when omitted (RFC 7636 §4.3), which is refused.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, OAuthError> {
        match method {
            Some("S256") => {}
            None | Some("plain") => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256; plain is not supported",
                ));
            }
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "unsupported code_challenge_method",
                ));
            }
        }
        Self::from_text(challenge).ok_or_else(|| {
            OAuthError::invalid_request("code_challenge must be a base64url SHA-256 digest")
        })
    }

    /// The challenge a 43-character base64url text encodes, if it is one.
    /// The decoder refuses non-zero trailing bits, so one digest has one text.
    fn from_text(text: &str) -> Option<Self> {
        if text.len() != 43 {
            return None;
        }
        let mut digest = [0u8; 33];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut digest) {
            Ok(32) => digest.first_chunk().copied().map(Self),
            _ => None,
        }
    }

    /// The challenge for a verifier (what a client computes).
    pub fn s256(verifier: &str) -> Self {
        Self(Sha256::digest(verifier.as_bytes()).into())
    }

    /// Checks a `code_verifier` against this challenge (RFC 7636 §4.6), in constant time.
    ///
    /// A mismatch is `invalid_grant` (§4.6), and so is a verifier outside the
    /// §4.1 grammar, which cannot match (clients and conformance suites test
    /// a "wrong verifier" with any text); their [`Reason`](crate::Reason)s
    /// differ.
    pub fn verify(&self, verifier: &str) -> Result<(), OAuthError> {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !well_formed {
            return Err(OAuthError::invalid_grant(
                "code_verifier must be 43 to 128 unreserved characters",
            )
            .with_reason(crate::error::Reason::VerifierMalformed));
        }
        let expected = Self::s256(verifier);
        if bool::from(expected.0.ct_eq(&self.0)) {
            Ok(())
        } else {
            Err(
                OAuthError::invalid_grant("code_verifier does not match the code_challenge")
                    .with_reason(crate::error::Reason::VerifierMismatch),
            )
        }
    }
}

impl fmt::Display for CodeChallenge {
    /// The challenge's text, as the client sent it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 43];
        match URL_SAFE_NO_PAD.encode_slice(self.0, &mut text) {
            Ok(_) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for CodeChallenge {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CodeChallenge {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_text(&text)
            .ok_or_else(|| de::Error::custom("not a base64url SHA-256 code challenge"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, Reason};

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn appendix_b_vector() {
        assert_eq!(CodeChallenge::s256(VERIFIER).to_string(), CHALLENGE);
        let c = CodeChallenge::parse(CHALLENGE, Some("S256"));
        assert!(c.is_ok_and(|c| c.verify(VERIFIER).is_ok()));
    }

    #[test]
    fn text_round_trips_and_non_canonical_text_is_refused() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).map_err(|e| e.code);
        assert_eq!(c.map(|c| c.to_string()), Ok(CHALLENGE.to_owned()));
        let json = serde_json::to_string(&CodeChallenge::s256(VERIFIER)).unwrap_or_default();
        assert_eq!(json, format!("\"{CHALLENGE}\""));
        let back: Result<CodeChallenge, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(CodeChallenge::s256(VERIFIER)));
        // The last character carries 4 bits of padding that must be zero:
        // `cM` is canonical, `cN` encodes the same digest with a stray bit.
        let stray = format!("{}N", &CHALLENGE[..42]);
        assert!(CodeChallenge::parse(&stray, Some("S256")).is_err());
        assert!(serde_json::from_str::<CodeChallenge>(&format!("\"{stray}\"")).is_err());
        assert!(CodeChallenge::parse(&format!("{CHALLENGE}="), Some("S256")).is_err());
        assert!(CodeChallenge::parse(&CHALLENGE.replace('-', "+"), Some("S256")).is_err());
    }

    #[test]
    fn plain_and_missing_method_refused() {
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, Some("S512")).is_err());
        assert!(CodeChallenge::parse("short", Some("S256")).is_err());
    }

    /// RFC 7636 §4.1: a verifier is `unreserved` characters only; every
    /// byte value is tried in a verifier of valid length.
    #[test]
    fn verifier_grammar_is_unreserved_for_every_byte() {
        let challenge = CodeChallenge::s256(VERIFIER);
        for b in 0..=255u8 {
            let mut v = VERIFIER.as_bytes().to_vec();
            v[10] = b;
            let Ok(text) = String::from_utf8(v) else {
                continue;
            };
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            let code = challenge.verify(&text).err().map(|e| (e.code, e.reason()));
            let expected = if unreserved {
                (b != VERIFIER.as_bytes()[10])
                    .then_some((ErrorCode::InvalidGrant, Reason::VerifierMismatch))
            } else {
                Some((ErrorCode::InvalidGrant, Reason::VerifierMalformed))
            };
            assert_eq!(code, expected, "byte {b}");
        }
    }

    #[test]
    fn wrong_or_malformed_verifiers_are_invalid_grant_rfc7636_4_6() {
        let c = CodeChallenge::s256(VERIFIER);
        let wrong = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let answer = |v: &str| c.verify(v).err().map(|e| (e.code, e.reason()));
        assert_eq!(
            answer(wrong),
            Some((ErrorCode::InvalidGrant, Reason::VerifierMismatch))
        );
        for malformed in ["short", "wrong", &"a".repeat(42), &"a".repeat(129), ""] {
            assert_eq!(
                answer(malformed),
                Some((ErrorCode::InvalidGrant, Reason::VerifierMalformed)),
                "{malformed:?}"
            );
        }
    }
}
