//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` offers no
//! protection against a leaked authorization request and is refused
//! (RFC 9700 §2.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::OAuthError;

/// An S256 code challenge: base64url(SHA-256(verifier)), 43 characters (RFC 7636 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeChallenge(String);

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
        let ok = challenge.len() == 43
            && URL_SAFE_NO_PAD
                .decode(challenge)
                .is_ok_and(|b| b.len() == 32);
        if !ok {
            return Err(OAuthError::invalid_request(
                "code_challenge must be a base64url SHA-256 digest",
            ));
        }
        Ok(Self(challenge.to_owned()))
    }

    /// The challenge for a verifier (what a client computes).
    pub fn s256(verifier: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
    }

    /// The challenge's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a `code_verifier` against this challenge (RFC 7636 §4.6), in constant time.
    ///
    /// A verifier outside the §4.1 grammar is `invalid_request`; a mismatch `invalid_grant`.
    pub fn verify(&self, verifier: &str) -> Result<(), OAuthError> {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !well_formed {
            return Err(OAuthError::invalid_request(
                "code_verifier must be 43 to 128 unreserved characters",
            ));
        }
        let expected = Self::s256(verifier);
        if bool::from(expected.0.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn appendix_b_vector() {
        assert_eq!(CodeChallenge::s256(VERIFIER).as_str(), CHALLENGE);
        let c = CodeChallenge::parse(CHALLENGE, Some("S256"));
        assert!(c.is_ok_and(|c| c.verify(VERIFIER).is_ok()));
    }

    #[test]
    fn plain_and_missing_method_refused() {
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, Some("S512")).is_err());
        assert!(CodeChallenge::parse("short", Some("S256")).is_err());
    }

    #[test]
    fn wrong_verifier_is_invalid_grant_malformed_is_invalid_request() {
        let c = CodeChallenge::s256(VERIFIER);
        let wrong = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            c.verify(wrong).err().map(|e| e.code),
            Some(ErrorCode::InvalidGrant)
        );
        assert_eq!(
            c.verify("short").err().map(|e| e.code),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            c.verify(&"a".repeat(129)).err().map(|e| e.code),
            Some(ErrorCode::InvalidRequest)
        );
    }
}
