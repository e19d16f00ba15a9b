//! A DPoP client for tests (RFC 9449 §4.2), written independently of the
//! server's code: P-256 (ES256) or Ed25519 (EdDSA) keys from the RustCrypto
//! crates, proofs signed by hand.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub enum DpopKey {
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

fn random32() -> [u8; 32] {
    rand::random()
}

impl DpopKey {
    pub fn es256() -> Self {
        loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random32()) {
                return Self::Es256(k);
            }
        }
    }

    pub fn ed25519() -> Self {
        Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&random32()))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK (RFC 7517), no private member.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(point.x().unwrap()),
                    "y": b64(point.y().unwrap()),
                })
            }
            Self::Ed25519(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(k.verifying_key().as_bytes()),
            }),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint (required members, sorted, no spaces).
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            ),
            Self::Ed25519(_) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                jwk["x"].as_str().unwrap()
            ),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// Fresh claims: a random `jti`, `iat` now, `ath` when a token is given.
    pub fn claims(&self, htm: &str, htu: &str, access_token: Option<&str>) -> Value {
        let mut claims = json!({
            "jti": b64(&random32()[..16]),
            "htm": htm,
            "htu": htu,
            "iat": now_secs(),
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(b64(&Sha256::digest(token.as_bytes())));
        }
        claims
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            Self::Es256(k) => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    /// A valid proof for `htm` `htu` (with `ath` of `access_token`).
    pub fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>) -> String {
        self.sign(&self.header(), &self.claims(htm, htu, access_token))
    }

    /// A valid proof carrying the server's `nonce`.
    pub fn proof_with_nonce(
        &self,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
        nonce: &str,
    ) -> String {
        let mut claims = self.claims(htm, htu, access_token);
        claims["nonce"] = json!(nonce);
        self.sign(&self.header(), &claims)
    }
}
