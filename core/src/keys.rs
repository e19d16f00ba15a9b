//! Signing keys for JWT access tokens (RFC 9068), their public JWKs
//! (RFC 7517) and key rotation.
//!
//! A [`SigningKey`] is one asymmetric key pair with its `kid` and the one
//! algorithm it is used with (ES256 or EdDSA, RFC 7518 §3.4, RFC 8037 §3.1,
//! or RS256, RFC 7518 §3.3, which RFC 9068 §2.1 requires of every server):
//! a verifier is always chosen by `kid`, and the key's own algorithm decides
//! how to check a signature, never the token's `alg` header (RFC 8725
//! §3.1). Keys are generated, or loaded from PEM (the core reads no files:
//! the embedder passes the text).
//!
//! A [`KeySet`] says which key signs now and which keys still verify. The
//! built-in [`RotatingKeys`] keeps a current key and retired ones: after
//! [`RotatingKeys::rotate`], the new key signs and the old one keeps
//! verifying (and stays in the JWKS) until the last token it signed has
//! expired, then is dropped.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::token::Random;

/// A JWS signing algorithm Tessera signs and verifies with (RFC 7518 §3.1,
/// RFC 8037 §3.1). Only asymmetric algorithms: `none` and the HMAC family
/// do not exist here, so no token can ask for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4).
    Es256,
    /// EdDSA with Ed25519 (RFC 8037 §3.1).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3): the algorithm RFC
    /// 9068 §2.1 says every server "MUST include". Signing keys of 2048 to
    /// 4096 bits are loaded ([`SigningKey::from_pem`]), not generated;
    /// public keys of the same sizes verify.
    Rs256,
}

impl JwsAlgorithm {
    /// The `alg` value on the wire: `ES256` or `EdDSA`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    /// The algorithm named `alg`, exactly (JOSE names are case-sensitive).
    /// `Ed25519`, RFC 9864's fully specified name for EdDSA with Ed25519
    /// (RFC 9864 deprecates the polymorphic `EdDSA`), names
    /// [`EdDsa`](Self::EdDsa) too: clients such as oauth4webapi sign DPoP
    /// proofs and client assertions with it.
    pub fn from_name(alg: &str) -> Option<Self> {
        match alg {
            "ES256" => Some(Self::Es256),
            "EdDSA" | "Ed25519" => Some(Self::EdDsa),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    /// Every `alg` value that names the algorithm ([`from_name`](Self::from_name)),
    /// the one Tessera signs with ([`as_str`](Self::as_str)) first: what the
    /// metadata's `*_alg_values_supported` lists (RFC 8414 §2).
    pub const fn names(self) -> &'static [&'static str] {
        match self {
            Self::Es256 => &["ES256"],
            Self::EdDsa => &["EdDSA", "Ed25519"],
            Self::Rs256 => &["RS256"],
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be made, loaded or added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A `kid` must be 1 to 128 printable ASCII characters without
    /// quotes or backslashes.
    #[error("a kid must be 1 to 128 printable ASCII characters, no quotes or backslashes")]
    InvalidKid,
    /// The PEM or DER text is not a PKCS#8 (or SEC1) P-256 or Ed25519
    /// private key, nor a PKCS#8 (or PKCS#1) RSA key of 2048 to 4096 bits
    /// (public exponent at least 65537).
    #[error(
        "not a PKCS#8 or SEC1 private key for P-256 or Ed25519, nor a 2048- to 4096-bit RSA key"
    )]
    UnsupportedPrivateKey,
    /// The JWK is not a public P-256 (`EC`), Ed25519 (`OKP`) or 2048- to
    /// 4096-bit RSA signing key, or its `alg` or `use` contradict that.
    #[error("not a public P-256, Ed25519 or RSA signing JWK: {0}")]
    UnsupportedJwk(&'static str),
    /// `generate` was asked for an algorithm whose keys are loaded, not
    /// generated (RS256).
    #[error("keys for this algorithm are loaded from PEM, not generated")]
    CannotGenerate,
    /// A key set already holds a key with this `kid`.
    #[error("a key with this kid is already in the set")]
    DuplicateKid,
}

/// Whether `kid` is a `kid` Tessera accepts: printable ASCII, short, and
/// nothing that needs escaping in a header or a log line.
fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| (0x21..=0x7E).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid)
    }
}

enum PrivateKey {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
    Rs256(Box<ring::signature::RsaKeyPair>),
}

impl PrivateKey {
    fn public(&self) -> PublicKey {
        match self {
            Self::Es256(k) => PublicKey::Es256(*k.verifying_key()),
            Self::EdDsa(k) => PublicKey::EdDsa(k.verifying_key()),
            Self::Rs256(k) => {
                let c = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                PublicKey::Rs256 { n: c.n, e: c.e }
            }
        }
    }

    /// An RSA key pair from PKCS#8 or PKCS#1 DER (ring signs with 2048- to
    /// 4096-bit keys whose public exponent is at least 65537).
    fn rsa(der: &[u8]) -> Option<Self> {
        ring::signature::RsaKeyPair::from_pkcs8(der)
            .or_else(|_| ring::signature::RsaKeyPair::from_der(der))
            .ok()
            .map(|k| Self::Rs256(Box::new(k)))
    }
}

/// A signature as [`SigningKey::sign`] makes it: 64 bytes for ES256 and
/// EdDSA, the modulus's length for RS256.
pub(crate) enum Signature {
    Fixed([u8; 64]),
    Rsa(Vec<u8>),
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Fixed(b) => b,
            Self::Rsa(b) => b,
        }
    }
}

/// A private signing key with its `kid`. `Debug` shows the `kid` and the
/// algorithm only; the private part is wiped from memory when dropped
/// (ES256 and EdDSA keys; ring keeps an RSA key's).
pub struct SigningKey {
    kid: String,
    key: PrivateKey,
    public: Arc<VerifyingKey>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_private(kid: String, key: PrivateKey) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        let public = key.public();
        Ok(Self {
            public: Arc::new(VerifyingKey {
                kid: kid.clone(),
                key: public,
            }),
            kid,
            key,
        })
    }

    /// A new key for `alg` from `random`, named by its RFC 7638 JWK
    /// thumbprint (so two servers that load the same key agree on its
    /// `kid`).
    ///
    /// # Panics
    ///
    /// For [`JwsAlgorithm::Rs256`], whose keys are loaded
    /// ([`from_pem`](Self::from_pem)); [`try_generate`](Self::try_generate)
    /// answers an error instead.
    pub fn generate(alg: JwsAlgorithm, random: &dyn Random) -> Self {
        match Self::try_generate(alg, random) {
            Ok(key) => key,
            Err(e) => panic!("SigningKey::generate({alg}): {e}"),
        }
    }

    /// A new key for `alg` from `random`, as [`generate`](Self::generate);
    /// [`KeyError::CannotGenerate`] for RS256.
    pub fn try_generate(alg: JwsAlgorithm, random: &dyn Random) -> Result<Self, KeyError> {
        let key = match alg {
            JwsAlgorithm::Es256 => loop {
                // A uniformly random 256-bit string is a valid P-256
                // scalar except with probability ~2^-32; draw again then.
                let bytes = random.bytes32();
                if let Ok(k) = p256::ecdsa::SigningKey::from_bytes(&bytes.into()) {
                    break PrivateKey::Es256(k);
                }
            },
            JwsAlgorithm::EdDsa => {
                PrivateKey::EdDsa(ed25519_dalek::SigningKey::from_bytes(&random.bytes32()))
            }
            JwsAlgorithm::Rs256 => return Err(KeyError::CannotGenerate),
        };
        Ok(Self::named_by_thumbprint(key))
    }

    fn named_by_thumbprint(key: PrivateKey) -> Self {
        let public = key.public();
        let kid = public.thumbprint();
        Self {
            public: Arc::new(VerifyingKey {
                kid: kid.clone(),
                key: public,
            }),
            kid,
            key,
        }
    }

    /// Loads a private key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`, what
    /// `openssl genpkey` writes) for P-256, Ed25519 or RSA (2048 to 4096
    /// bits, used for RS256), SEC1 (`BEGIN EC PRIVATE KEY`) for P-256, or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RSA. The algorithm follows from
    /// the key. `kid` names it; `None` names it by its RFC 7638 thumbprint.
    pub fn from_pem(pem: &str, kid: Option<&str>) -> Result<Self, KeyError> {
        // One trait (the `pkcs8` crate's) for both key types.
        use p256::pkcs8::DecodePrivateKey as _;
        let key = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            PrivateKey::Es256(k)
        } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            PrivateKey::EdDsa(k)
        } else if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
            PrivateKey::Es256(k.into())
        } else if let Some(k) = p256::pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
            .ok()
            .filter(|(label, _)| matches!(*label, "PRIVATE KEY" | "RSA PRIVATE KEY"))
            .and_then(|(_, der)| PrivateKey::rsa(&der))
        {
            k
        } else {
            return Err(KeyError::UnsupportedPrivateKey);
        };
        match kid {
            Some(kid) => Self::from_private(kid.to_owned(), key),
            None => Ok(Self::named_by_thumbprint(key)),
        }
    }

    /// Loads a private key from PKCS#8 DER, like [`SigningKey::from_pem`].
    pub fn from_pkcs8_der(der: &[u8], kid: Option<&str>) -> Result<Self, KeyError> {
        // One trait (the `pkcs8` crate's) for both key types.
        use p256::pkcs8::DecodePrivateKey as _;
        let key = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            PrivateKey::Es256(k)
        } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            PrivateKey::EdDsa(k)
        } else if let Some(k) = PrivateKey::rsa(der) {
            k
        } else {
            return Err(KeyError::UnsupportedPrivateKey);
        };
        match kid {
            Some(kid) => Self::from_private(kid.to_owned(), key),
            None => Ok(Self::named_by_thumbprint(key)),
        }
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        match self.key {
            PrivateKey::Es256(_) => JwsAlgorithm::Es256,
            PrivateKey::EdDsa(_) => JwsAlgorithm::EdDsa,
            PrivateKey::Rs256(_) => JwsAlgorithm::Rs256,
        }
    }

    /// The public half, which verifies what this key signs.
    pub fn verifying_key(&self) -> &Arc<VerifyingKey> {
        &self.public
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) whose header
    /// carries `typ`, this key's `kid` and its algorithm: e.g. a JWT
    /// access token (`at+jwt`) in tests, or any JWT an embedder signs with
    /// the server's keys. `None` when `claims` cannot be serialized.
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Option<String> {
        crate::jwt::sign(self, typ, claims)
    }

    /// Signs `input` (a JWS signing input): the 64-byte `R || S` of ES256
    /// (RFC 7518 §3.4, deterministic per RFC 6979), an Ed25519 signature,
    /// or an RS256 one as long as the modulus. `None` only if the system's
    /// randomness (RSA blinding) failed.
    pub(crate) fn sign(&self, input: &[u8]) -> Option<Signature> {
        use p256::ecdsa::signature::Signer as _;
        Some(match &self.key {
            PrivateKey::Es256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(input);
                Signature::Fixed(signature.to_bytes().into())
            }
            PrivateKey::EdDsa(k) => Signature::Fixed(k.sign(input).to_bytes()),
            PrivateKey::Rs256(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    input,
                    &mut out,
                )
                .ok()?;
                Signature::Rsa(out)
            }
        })
    }
}

#[derive(Clone, PartialEq, Eq)]
enum PublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
    /// Modulus and public exponent, big-endian without leading zeros.
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// The RSA moduli verified, in bytes: 2048 bits at least (RFC 7518 §3.3:
/// "2048 bits or larger MUST be used") and 4096 at most, the sizes keys
/// are made in. A larger key would make every signature anyone sends in
/// its name (a self-registered client's assertions) cost four to eight
/// times an ES256 check; at 4096 bits it costs about as much.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=512;

impl PublicKey {
    /// The members of the public JWK that RFC 7638 §3.2 hashes, in its
    /// order, for an elliptic-curve key.
    fn required_members(&self) -> (&'static str, &'static str, String, Option<String>) {
        match self {
            Self::Es256(k) => {
                let point = k.to_encoded_point(false);
                let coordinate = |c: Option<&p256::FieldBytes>| {
                    c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default()
                };
                (
                    "EC",
                    "P-256",
                    coordinate(point.x()),
                    Some(coordinate(point.y())),
                )
            }
            Self::EdDsa(k) => ("OKP", "Ed25519", URL_SAFE_NO_PAD.encode(k.as_bytes()), None),
            Self::Rs256 { .. } => ("RSA", "", String::new(), None),
        }
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url.
    fn thumbprint(&self) -> String {
        if let Self::Rs256 { n, e } = self {
            // §3.2: `e`, `kty`, `n` for an RSA key (its §3.1 example).
            let canonical = format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(e),
                URL_SAFE_NO_PAD.encode(n)
            );
            return URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        }
        let (kty, crv, x, y) = self.required_members();
        // §3.3: the required members, lexicographic order, no whitespace.
        let canonical = match y {
            Some(y) => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}"#),
            None => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// A public key with its `kid`: what verifies a token's signature.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    kid: String,
    key: PublicKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish()
    }
}

impl VerifyingKey {
    /// The key a public JWK describes (RFC 7517 §4, RFC 7518 §6.2, §6.3,
    /// RFC 8037 §2): `kty` `EC` with `crv` `P-256`, `OKP` with `Ed25519`,
    /// or `RSA` with a 2048- to 4096-bit `n`; a `kid` is required
    /// (verifiers are found by it). An `alg` other than the
    /// curve's algorithm, or a `use` other than `sig`, is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let kid = jwk
            .kid
            .as_deref()
            .ok_or(KeyError::UnsupportedJwk("no kid"))?;
        check_kid(kid).map_err(|_| KeyError::UnsupportedJwk("bad kid"))?;
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::UnsupportedJwk("use is not sig"));
        }
        let coordinate = |c: &str| -> Result<[u8; 32], KeyError> {
            let mut out = [0u8; 32];
            match URL_SAFE_NO_PAD.decode_slice(c, &mut out) {
                Ok(32) => Ok(out),
                _ => Err(KeyError::UnsupportedJwk("bad coordinate")),
            }
        };
        let key = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let x = coordinate(&jwk.x)?;
                let y = coordinate(jwk.y.as_deref().ok_or(KeyError::UnsupportedJwk("no y"))?)?;
                let point =
                    p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
                PublicKey::Es256(
                    p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                        .map_err(|_| KeyError::UnsupportedJwk("not a point on P-256"))?,
                )
            }
            ("OKP", Some("Ed25519")) => PublicKey::EdDsa(
                ed25519_dalek::VerifyingKey::from_bytes(&coordinate(&jwk.x)?)
                    .map_err(|_| KeyError::UnsupportedJwk("not an Ed25519 key"))?,
            ),
            ("RSA", _) => {
                // RFC 7518 §6.3.1: base64url big-endian integers; a leading
                // zero octet, which some encoders add, is dropped.
                let integer = |v: Option<&str>, what: &'static str| -> Result<Vec<u8>, KeyError> {
                    let bytes = v
                        .filter(|v| v.len() <= 2048)
                        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                        .ok_or(KeyError::UnsupportedJwk(what))?;
                    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
                    Ok(bytes[start..].to_vec())
                };
                let n = integer(jwk.n.as_deref(), "bad n")?;
                let e = integer(jwk.e.as_deref(), "bad e")?;
                // 2048 to 4096 bits: a first byte with its top bit set
                // when the modulus is 256 bytes long. An RSA modulus is odd.
                let bits_ok = RSA_MODULUS_BYTES.contains(&n.len())
                    && (n.len() > 256 || n.first().is_some_and(|b| *b >= 0x80));
                if !bits_ok || n.last().is_none_or(|b| b % 2 == 0) {
                    return Err(KeyError::UnsupportedJwk(
                        "RSA modulus not 2048 to 4096 bits",
                    ));
                }
                // ring's bounds: an odd exponent from 3 to 2^33 - 1.
                let exponent = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                if e.len() > 5 || !(3..1 << 33).contains(&exponent) || exponent % 2 == 0 {
                    return Err(KeyError::UnsupportedJwk("bad e"));
                }
                PublicKey::Rs256 { n, e }
            }
            _ => return Err(KeyError::UnsupportedJwk("unsupported kty or crv")),
        };
        let key = Self {
            kid: kid.to_owned(),
            key,
        };
        match jwk.alg.as_deref() {
            // RFC 9864's `Ed25519` names an Ed25519 key's algorithm too
            // (WebCrypto exports it so).
            Some(alg) if JwsAlgorithm::from_name(alg) != Some(key.algorithm()) => {
                Err(KeyError::UnsupportedJwk("alg does not match the key"))
            }
            _ => Ok(key),
        }
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm signatures by this key are checked with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        match self.key {
            PublicKey::Es256(_) => JwsAlgorithm::Es256,
            PublicKey::EdDsa(_) => JwsAlgorithm::EdDsa,
            PublicKey::Rs256 { .. } => JwsAlgorithm::Rs256,
        }
    }

    /// The public JWK: `kty`, `crv`, `x` (and `y`), or `n` and `e` for
    /// RSA, `kid`, `alg`, `use: sig`. Never a private member.
    pub fn to_jwk(&self) -> Jwk {
        let (kty, crv, x, y) = self.key.required_members();
        let (n, e) = match &self.key {
            PublicKey::Rs256 { n, e } => (
                Some(URL_SAFE_NO_PAD.encode(n)),
                Some(URL_SAFE_NO_PAD.encode(e)),
            ),
            _ => (None, None),
        };
        Jwk {
            kty: kty.to_owned(),
            crv: (!crv.is_empty()).then(|| crv.to_owned()),
            x,
            y,
            n,
            e,
            kid: Some(self.kid.clone()),
            alg: Some(self.algorithm().as_str().to_owned()),
            use_: Some("sig".to_owned()),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url.
    pub fn thumbprint(&self) -> String {
        self.key.thumbprint()
    }

    /// Whether `signature` is this key's over `input`, by the key's own
    /// algorithm. ES256 signatures are exactly 64 bytes `R || S` (RFC 7518
    /// §3.4, not DER); Ed25519 is checked strictly (no small-order keys or
    /// non-canonical signatures).
    pub(crate) fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            PublicKey::Es256(k) => {
                use p256::ecdsa::signature::Verifier as _;
                if signature.len() != 64 {
                    return false;
                }
                let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
                    return false;
                };
                k.verify(input, &signature).is_ok()
            }
            PublicKey::EdDsa(k) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                k.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&bytes))
                    .is_ok()
            }
            PublicKey::Rs256 { n, e } => ring::signature::RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                input,
                signature,
            )
            .is_ok(),
        }
    }
}

/// A public JSON Web Key (RFC 7517 §4) of the kinds Tessera uses. It has no
/// field for private members, so serializing one never leaks a private key,
/// and parsing ignores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Jwk {
    /// The key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// The curve: `P-256` or `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The x coordinate (EC) or the public key (OKP), base64url; empty
    /// for RSA.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    /// The y coordinate (EC only), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The modulus (RSA only), base64url (RFC 7518 §6.3.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The public exponent (RSA only), base64url (RFC 7518 §6.3.1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The algorithm the key is used with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A JWK Set (RFC 7517 §5): what the JWKS endpoint serves, and a client's
/// registered `jwks` (RFC 7591 §2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// The most keys taken from one fetched JWK Set: a set is a handful of
/// keys, and a resource server keeps what it fetches.
pub const MAX_JWKS_KEYS: usize = 32;

impl Jwks {
    /// A set of these keys.
    pub fn new(keys: impl IntoIterator<Item = Jwk>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    /// The verifying keys of a fetched JWK Set document: each key Tessera
    /// can use (RFC 7517 §5: keys of unknown types are ignored, and so are
    /// ones without a `kid` or with a repeated one), at most
    /// [`MAX_JWKS_KEYS`]. `None` when the document is not a JWK Set.
    pub fn parse_verifying_keys(document: &[u8]) -> Option<Vec<VerifyingKey>> {
        Self::parse_verifying_keys_for(
            document,
            &[
                JwsAlgorithm::Es256,
                JwsAlgorithm::EdDsa,
                JwsAlgorithm::Rs256,
            ],
        )
    }

    /// [`parse_verifying_keys`](Self::parse_verifying_keys) keeping only
    /// keys of the `allowed` algorithms, before counting: keys of others
    /// neither take one of the [`MAX_JWKS_KEYS`] places nor make a `kid`
    /// ambiguous. Only the set's first 4 × [`MAX_JWKS_KEYS`] entries are
    /// read, whatever their algorithms: a publisher lists its keys first.
    pub fn parse_verifying_keys_for(
        document: &[u8],
        allowed: &[JwsAlgorithm],
    ) -> Option<Vec<VerifyingKey>> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_slice(document).ok()?;
        let mut keys: Vec<VerifyingKey> = Vec::new();
        let mut ambiguous: Vec<String> = Vec::new();
        for value in set.keys.into_iter().take(4 * MAX_JWKS_KEYS) {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Ok(key) = VerifyingKey::from_jwk(&jwk) else {
                continue;
            };
            if !allowed.contains(&key.algorithm()) {
                continue;
            }
            if ambiguous.contains(&key.kid) {
                continue;
            }
            if keys.iter().any(|k| k.kid == key.kid) {
                // Two keys under one kid: neither can be chosen by it.
                keys.retain(|k| k.kid != key.kid);
                ambiguous.push(key.kid);
                continue;
            }
            if keys.len() < MAX_JWKS_KEYS {
                keys.push(key);
            }
        }
        Some(keys)
    }
}

/// Where verifying keys are found by `kid`: a server's own [`KeySet`], or a
/// resource server's copy of a remote JWKS.
pub trait VerificationKeys: Send + Sync {
    /// The key named `kid` that may verify a token at `now`, if any.
    fn verifying_key(&self, kid: &str, now: OffsetDateTime) -> Option<Arc<VerifyingKey>>;
}

/// The authorization server's keys: which one signs now, which still
/// verify, and what the JWKS endpoint publishes.
///
/// Implement it to keep keys elsewhere (a KMS, a file watched for
/// rotation); [`RotatingKeys`] keeps them in memory.
pub trait KeySet: VerificationKeys + fmt::Debug {
    /// The key that signs tokens issued at `now`.
    fn signing_key(&self, now: OffsetDateTime) -> Arc<SigningKey>;

    /// The public keys to publish at `now`: every key that may verify a
    /// live token (RFC 7517 §5).
    fn published(&self, now: OffsetDateTime) -> Jwks;
}

#[derive(Debug)]
struct RotationState {
    current: Arc<SigningKey>,
    /// Keys that signed before, each kept verifying until its instant.
    retired: Vec<(Arc<VerifyingKey>, OffsetDateTime)>,
}

/// Keys in memory with rotation: one current signing key, and retired keys
/// that keep verifying until the tokens they signed have expired.
///
/// ```
/// use tessera::{JwsAlgorithm, OsRandom, RotatingKeys, SigningKey, KeySet};
/// let now = time::OffsetDateTime::now_utc();
/// let keys = RotatingKeys::new(SigningKey::generate(JwsAlgorithm::Es256, &OsRandom));
/// let old = keys.signing_key(now).kid().to_owned();
/// // The new key signs from now on; the old one verifies for another hour
/// // (the longest access-token lifetime), then is dropped.
/// keys.rotate(SigningKey::generate(JwsAlgorithm::EdDsa, &OsRandom), now, time::Duration::hours(1)).unwrap();
/// assert_ne!(keys.signing_key(now).kid(), old);
/// assert_eq!(keys.published(now).keys.len(), 2);
/// assert_eq!(keys.published(now + time::Duration::hours(2)).keys.len(), 1);
/// ```
#[derive(Debug)]
pub struct RotatingKeys {
    state: RwLock<Arc<RotationState>>,
}

/// How many retired keys a [`RotatingKeys`] keeps at most: rotating faster
/// than tokens expire must not grow the JWKS without bound.
pub const MAX_RETIRED_KEYS: usize = 8;

impl RotatingKeys {
    /// A set whose one key signs and verifies (a key, or one already shared).
    pub fn new(key: impl Into<Arc<SigningKey>>) -> Self {
        Self {
            state: RwLock::new(Arc::new(RotationState {
                current: key.into(),
                retired: Vec::new(),
            })),
        }
    }

    /// A set with one new key for `alg`.
    ///
    /// # Panics
    ///
    /// For [`JwsAlgorithm::Rs256`], as [`SigningKey::generate`]: load an
    /// RSA key and use [`RotatingKeys::new`].
    pub fn generate(alg: JwsAlgorithm, random: &dyn Random) -> Self {
        Self::new(SigningKey::generate(alg, random))
    }

    fn snapshot(&self) -> Arc<RotationState> {
        // A poisoned lock only means a writer panicked between two
        // assignments of a whole `Arc`: the value is still consistent.
        match self.state.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `key` the signing key from `now` on. The key it replaces keeps
    /// verifying (and stays published) for `keep_verifying_for`, which must
    /// be at least the longest access-token lifetime (plus any clock skew
    /// resource servers allow) so that no live token loses its key. Keys
    /// retired before and past their time are dropped; at most
    /// [`MAX_RETIRED_KEYS`] are kept (the oldest go first).
    pub fn rotate(
        &self,
        key: impl Into<Arc<SigningKey>>,
        now: OffsetDateTime,
        keep_verifying_for: Duration,
    ) -> Result<(), KeyError> {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key: Arc<SigningKey> = key.into();
        let old = Arc::clone(&guard);
        let clash = old.current.kid == key.kid
            || old
                .retired
                .iter()
                .any(|(k, until)| *until > now && k.kid == key.kid);
        if clash {
            return Err(KeyError::DuplicateKid);
        }
        let mut retired: Vec<_> = old
            .retired
            .iter()
            .filter(|(_, until)| *until > now)
            .cloned()
            .collect();
        retired.push((
            Arc::clone(old.current.verifying_key()),
            now + keep_verifying_for,
        ));
        if retired.len() > MAX_RETIRED_KEYS {
            retired.sort_by_key(|(_, until)| *until);
            let excess = retired.len() - MAX_RETIRED_KEYS;
            retired.drain(..excess);
        }
        *guard = Arc::new(RotationState {
            current: key,
            retired,
        });
        Ok(())
    }

    /// Adds the public key of a key retired before this process started
    /// (another instance's, or the previous run's), verifying until `until`.
    pub fn with_retired(self, key: VerifyingKey, until: OffsetDateTime) -> Result<Self, KeyError> {
        {
            let mut guard = match self.state.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if guard.current.kid == key.kid || guard.retired.iter().any(|(k, _)| k.kid == key.kid) {
                return Err(KeyError::DuplicateKid);
            }
            let mut next = RotationState {
                current: Arc::clone(&guard.current),
                retired: guard.retired.clone(),
            };
            next.retired.push((Arc::new(key), until));
            *guard = Arc::new(next);
        }
        Ok(self)
    }
}

impl VerificationKeys for RotatingKeys {
    fn verifying_key(&self, kid: &str, now: OffsetDateTime) -> Option<Arc<VerifyingKey>> {
        let state = self.snapshot();
        if state.current.kid == kid {
            return Some(Arc::clone(state.current.verifying_key()));
        }
        state
            .retired
            .iter()
            .find(|(k, until)| k.kid == kid && *until > now)
            .map(|(k, _)| Arc::clone(k))
    }
}

impl KeySet for RotatingKeys {
    fn signing_key(&self, _now: OffsetDateTime) -> Arc<SigningKey> {
        Arc::clone(&self.snapshot().current)
    }

    fn published(&self, now: OffsetDateTime) -> Jwks {
        let state = self.snapshot();
        let mut keys = vec![state.current.verifying_key().to_jwk()];
        keys.extend(
            state
                .retired
                .iter()
                .filter(|(_, until)| *until > now)
                .map(|(k, _)| k.to_jwk()),
        );
        Jwks { keys }
    }
}

impl<T: VerificationKeys + ?Sized> VerificationKeys for &T {
    fn verifying_key(&self, kid: &str, now: OffsetDateTime) -> Option<Arc<VerifyingKey>> {
        (**self).verifying_key(kid, now)
    }
}

impl<T: VerificationKeys + ?Sized> VerificationKeys for Arc<T> {
    fn verifying_key(&self, kid: &str, now: OffsetDateTime) -> Option<Arc<VerifyingKey>> {
        (**self).verifying_key(kid, now)
    }
}

/// A fixed set of public keys, e.g. parsed from a JWKS document
/// ([`Jwks::parse_verifying_keys`]) or configured by hand.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    keys: Vec<Arc<VerifyingKey>>,
}

impl StaticKeys {
    /// A set of these keys (a later key with a `kid` already present is ignored).
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut out: Vec<Arc<VerifyingKey>> = Vec::new();
        for k in keys {
            if !out.iter().any(|o| o.kid == k.kid) {
                out.push(Arc::new(k));
            }
        }
        Self { keys: out }
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl VerificationKeys for StaticKeys {
    fn verifying_key(&self, kid: &str, _now: OffsetDateTime) -> Option<Arc<VerifyingKey>> {
        self.keys.iter().find(|k| k.kid == kid).cloned()
    }
}

impl crate::server::Server {
    /// The JWK Set this server publishes (RFC 7517 §5): the public part of
    /// every key that may verify one of its live tokens. `None` when the
    /// server has no signing keys.
    pub fn jwks(&self) -> Option<Jwks> {
        self.jwt().map(|j| j.keys.published(self.now()))
    }

    /// The JWKS endpoint's answer: `application/jwk-set+json` (RFC 7517
    /// §8.5) that caches may keep for the configured max-age (keys change
    /// rarely, and a resource server that meets an unknown `kid` fetches
    /// again).
    pub(crate) fn jwks_response(&self) -> crate::http::HttpResponse {
        use std::borrow::Cow;
        let (Some(jwks), Some(j)) = (self.jwks(), self.jwt()) else {
            return crate::http::HttpResponse::server_error();
        };
        match serde_json::to_vec(&jwks) {
            Ok(body) => crate::http::HttpResponse {
                status: 200,
                headers: vec![
                    ("content-type", Cow::Borrowed("application/jwk-set+json")),
                    (
                        "cache-control",
                        format!("public, max-age={}", j.jwks_max_age.whole_seconds()).into(),
                    ),
                ],
                body,
            },
            Err(e) => {
                let e = crate::error::OAuthError::server_error().with_source(e);
                e.log("jwks");
                crate::http::HttpResponse::server_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::CountingRandom;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn generated_keys_sign_and_verify_with_their_own_algorithm() {
        let r = CountingRandom::default();
        for alg in [JwsAlgorithm::Es256, JwsAlgorithm::EdDsa] {
            let k = SigningKey::generate(alg, &r);
            assert_eq!(k.algorithm(), alg);
            let sig = k.sign(b"input").unwrap();
            let sig = sig.as_ref();
            assert!(k.verifying_key().verify(b"input", sig));
            assert!(!k.verifying_key().verify(b"inpuT", sig));
            assert!(!k.verifying_key().verify(b"input", &sig[..63]));
            // The kid is the RFC 7638 thumbprint: 43 base64url characters.
            assert_eq!(k.kid().len(), 43);
            assert_eq!(k.kid(), k.verifying_key().thumbprint());
        }
    }

    #[test]
    fn jwk_round_trip_public_members_only() {
        let r = CountingRandom::default();
        for alg in [JwsAlgorithm::Es256, JwsAlgorithm::EdDsa] {
            let k = SigningKey::generate(alg, &r);
            let jwk = k.verifying_key().to_jwk();
            let json = serde_json::to_value(&jwk).unwrap();
            assert!(json.get("d").is_none());
            assert_eq!(json["use"], "sig");
            assert_eq!(json["alg"], alg.as_str());
            let back = VerifyingKey::from_jwk(&jwk).unwrap();
            assert_eq!(&back, k.verifying_key().as_ref());
            // A JWK whose alg contradicts the key is refused.
            let mut lying = jwk.clone();
            lying.alg = Some("HS256".into());
            assert!(VerifyingKey::from_jwk(&lying).is_err());
            // Every name of the key's algorithm is accepted (RFC 9864's
            // `Ed25519` for an Ed25519 key), and only those.
            for name in alg.names() {
                let mut named = jwk.clone();
                named.alg = Some((*name).into());
                assert_eq!(
                    VerifyingKey::from_jwk(&named).as_ref(),
                    Ok(k.verifying_key().as_ref())
                );
            }
            let mut other = jwk.clone();
            other.alg = Some(
                if alg == JwsAlgorithm::Es256 {
                    "Ed25519"
                } else {
                    "ES256"
                }
                .into(),
            );
            assert!(VerifyingKey::from_jwk(&other).is_err());
            let mut enc = jwk.clone();
            enc.use_ = Some("enc".into());
            assert!(VerifyingKey::from_jwk(&enc).is_err());
            let mut no_kid = jwk;
            no_kid.kid = None;
            assert!(VerifyingKey::from_jwk(&no_kid).is_err());
        }
    }

    #[test]
    fn rfc7638_3_1_example_thumbprint() {
        // RFC 7638 §3.1 uses an RSA key; RFC 8037 Appendix A.3 gives the
        // Ed25519 one: kid "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}"#,
        )
        .unwrap();
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc7638_3_1_rsa_example_thumbprint() {
        // RFC 7638 §3.1's own example: an RSA key.
        let jwk: Jwk = serde_json::from_str(concat!(
            r#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":""#,
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo",
            "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0",
            "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI",
            "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            r#""}"#
        ))
        .unwrap();
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.algorithm(), JwsAlgorithm::Rs256);
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // It round-trips: `n` and `e`, no `x` or `crv`.
        let back = serde_json::to_value(key.to_jwk()).unwrap();
        assert_eq!(
            (back["n"].as_str(), back["e"].as_str()),
            (jwk.n.as_deref(), Some("AQAB"))
        );
        assert!(back.get("x").is_none() && back.get("crv").is_none());
        // A leading zero octet in `n` names the same key.
        let mut padded = jwk.clone();
        let mut n = URL_SAFE_NO_PAD.decode(jwk.n.as_deref().unwrap()).unwrap();
        n.insert(0, 0);
        padded.n = Some(URL_SAFE_NO_PAD.encode(&n));
        assert_eq!(VerifyingKey::from_jwk(&padded).unwrap(), key);
        // Under 2048 bits (RFC 7518 §3.3), an even exponent, no `n`, and
        // an `alg` of another family are refused.
        let mut short = jwk.clone();
        short.n = Some(URL_SAFE_NO_PAD.encode(&n[..200]));
        let mut even = jwk.clone();
        even.e = Some("AQAC".into());
        let mut no_n = jwk.clone();
        no_n.n = None;
        let mut es = jwk.clone();
        es.alg = Some("ES256".into());
        // 256 bytes but 2041 bits; an even modulus; exponents 1 and 2^33 + 1.
        let with_n = |change: &dyn Fn(&mut Vec<u8>)| {
            let mut n = URL_SAFE_NO_PAD.decode(jwk.n.as_deref().unwrap()).unwrap();
            change(&mut n);
            let mut k = jwk.clone();
            k.n = Some(URL_SAFE_NO_PAD.encode(&n));
            k
        };
        let low = with_n(&|n| n[0] = 0x01);
        // Over 4096 bits: 513 bytes.
        let long = with_n(&|n| {
            n.splice(0..0, [0x80; 257]);
        });
        let even_n = with_n(&|n| *n.last_mut().unwrap() &= 0xfe);
        let mut one = jwk.clone();
        one.e = Some(URL_SAFE_NO_PAD.encode([1u8]));
        let mut huge = jwk.clone();
        huge.e = Some(URL_SAFE_NO_PAD.encode([2u8, 0, 0, 0, 1]));
        for bad in [short, even, no_n, es, low, even_n, one, huge, long] {
            assert!(VerifyingKey::from_jwk(&bad).is_err(), "{bad:?}");
        }
    }

    /// RS256 (RFC 7518 §3.3; RFC 9068 §2.1 "MUST include RS256"): an RSA
    /// key loads from PKCS#8 or PKCS#1 PEM, signs, and its public JWK
    /// verifies; one under 2048 bits does not load; none is generated.
    #[test]
    fn rsa_keys_load_sign_and_verify() {
        let pkcs8 = include_str!("../testdata/rsa-2048.pem");
        let pkcs1 = include_str!("../testdata/rsa-2048-pkcs1.pem");
        let k = SigningKey::from_pem(pkcs8, None).unwrap();
        assert_eq!(k.algorithm(), JwsAlgorithm::Rs256);
        let same = SigningKey::from_pem(pkcs1, None).unwrap();
        assert_eq!(same.kid(), k.kid(), "one key, one thumbprint");
        let signature = k.sign(b"input").unwrap();
        assert_eq!(signature.as_ref().len(), 256);
        let public = VerifyingKey::from_jwk(&k.verifying_key().to_jwk()).unwrap();
        assert!(public.verify(b"input", signature.as_ref()));
        assert!(!public.verify(b"other", signature.as_ref()));
        assert!(!public.verify(b"input", &signature.as_ref()[1..]));
        assert_eq!(
            SigningKey::from_pem(include_str!("../testdata/rsa-1024.pem"), None).err(),
            Some(KeyError::UnsupportedPrivateKey)
        );
        assert_eq!(
            SigningKey::try_generate(JwsAlgorithm::Rs256, &CountingRandom::default()).err(),
            Some(KeyError::CannotGenerate)
        );
    }

    #[test]
    fn rfc8037_a_4_signature_verifies() {
        // RFC 8037 Appendix A.4: "Example Ed25519 Signing".
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k"}"#,
        )
        .unwrap();
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let sig = URL_SAFE_NO_PAD
            .decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
            .unwrap();
        assert!(key.verify(input, &sig));
    }

    #[test]
    fn pem_keys_load_with_their_algorithm() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410 §10.3's example key).
        let ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let k = SigningKey::from_pem(ed, Some("ed-1")).unwrap();
        assert_eq!((k.kid(), k.algorithm()), ("ed-1", JwsAlgorithm::EdDsa));
        assert!(SigningKey::from_pem("not a key", None).is_err());
        assert_eq!(
            SigningKey::from_pem(ed, Some("bad\"kid")).err(),
            Some(KeyError::InvalidKid)
        );
        // A generated P-256 key written as PKCS#8 PEM loads back.
        use p256::pkcs8::EncodePrivateKey as _;
        let p = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let pem = p.to_pkcs8_pem(Default::default()).unwrap();
        let k = SigningKey::from_pem(&pem, None).unwrap();
        assert_eq!(k.algorithm(), JwsAlgorithm::Es256);
    }

    #[test]
    fn rotation_keeps_old_keys_until_their_tokens_expire() {
        let r = CountingRandom::default();
        let keys = RotatingKeys::generate(JwsAlgorithm::Es256, &r);
        let first = keys.signing_key(NOW);
        let second = SigningKey::generate(JwsAlgorithm::EdDsa, &r);
        let second_kid = second.kid().to_owned();
        keys.rotate(second, NOW, Duration::hours(1)).unwrap();
        assert_eq!(keys.signing_key(NOW).kid(), second_kid);
        assert!(keys.verifying_key(first.kid(), NOW).is_some());
        assert!(
            keys.verifying_key(first.kid(), NOW + Duration::minutes(59))
                .is_some()
        );
        assert!(
            keys.verifying_key(first.kid(), NOW + Duration::hours(1))
                .is_none()
        );
        assert_eq!(keys.published(NOW).keys.len(), 2);
        assert_eq!(keys.published(NOW + Duration::hours(1)).keys.len(), 1);
        // The current key again: refused.
        let again = SigningKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n",
            Some(&second_kid),
        )
        .unwrap();
        assert_eq!(
            keys.rotate(again, NOW, Duration::hours(1)),
            Err(KeyError::DuplicateKid)
        );
        // Rotating many times keeps at most MAX_RETIRED_KEYS retired keys.
        for _ in 0..20 {
            keys.rotate(
                SigningKey::generate(JwsAlgorithm::EdDsa, &r),
                NOW,
                Duration::hours(1),
            )
            .unwrap();
        }
        assert_eq!(keys.published(NOW).keys.len(), 1 + MAX_RETIRED_KEYS);
    }

    #[test]
    fn jwks_parsing_skips_what_it_cannot_use() {
        let r = CountingRandom::default();
        let a = SigningKey::generate(JwsAlgorithm::Es256, &r);
        let b = SigningKey::generate(JwsAlgorithm::EdDsa, &r);
        let doc = serde_json::json!({"keys": [
            a.verifying_key().to_jwk(),
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            b.verifying_key().to_jwk(),
            "not an object",
        ]});
        let keys = Jwks::parse_verifying_keys(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(Jwks::parse_verifying_keys(b"[]").is_none());
        // A kid used twice names no key.
        let twice =
            serde_json::json!({"keys": [a.verifying_key().to_jwk(), a.verifying_key().to_jwk()]});
        assert!(
            Jwks::parse_verifying_keys(twice.to_string().as_bytes())
                .unwrap()
                .is_empty()
        );
        // Keys of an algorithm not allowed neither take a place nor make
        // a kid ambiguous: an RSA key under the EC key's kid, and a set
        // full of RSA keys listed first.
        let rsa =
            SigningKey::from_pem(include_str!("../testdata/rsa-2048.pem"), Some(a.kid())).unwrap();
        let mut listed: Vec<Jwk> = (0..MAX_JWKS_KEYS)
            .map(|i| {
                let mut k = rsa.verifying_key().to_jwk();
                k.kid = Some(format!("rsa-{i}"));
                k
            })
            .collect();
        listed.push(rsa.verifying_key().to_jwk());
        listed.push(a.verifying_key().to_jwk());
        let doc = serde_json::to_vec(&Jwks::new(listed)).unwrap();
        let only_ec = Jwks::parse_verifying_keys_for(&doc, &[JwsAlgorithm::Es256]).unwrap();
        assert_eq!(only_ec.len(), 1);
        assert_eq!(&only_ec[0], a.verifying_key().as_ref());
        let all = Jwks::parse_verifying_keys(&doc).unwrap();
        assert_eq!(
            all.len(),
            MAX_JWKS_KEYS,
            "the first 32 RSA keys; the shared kid names none"
        );
        assert!(all.iter().all(|k| k.kid() != a.kid()));
    }
}
