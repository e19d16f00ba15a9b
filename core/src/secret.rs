//! Client secrets at rest: hashes that name the scheme that made them, and
//! the pluggable verifiers that check a presented secret against them.
//!
//! Two schemes are built in, and every server verifies both:
//!
//! - **SHA-256** ([`Sha256Verifier`]) for the secrets the server generates
//!   ([`generate_client_secret`](crate::generate_client_secret): 256 random
//!   bits). Guessing such a secret is hopeless, so a fast hash suffices, and
//!   the token endpoint stays fast.
//! - **Argon2id** ([`Argon2idVerifier`], RFC 9106) for low-entropy secrets an
//!   embedder brings (a secret a person chose, or one imported from an older
//!   system). It is slow and memory-hard on purpose. It lives in the core, not
//!   behind a feature flag: a store written by one build must verify in every
//!   build, and a hash whose scheme a build lacks would lock its client out
//!   at run time. (The `argon2` crate is pure Rust and does no I/O.)
//!
//! A stored [`SecretHash`] is a PHC string (`$sha256$...`, `$argon2id$v=19$...`),
//! so one store can hold both kinds, and an embedder can add a scheme with
//! [`ServerBuilder::secret_verifier`](crate::ServerBuilder::secret_verifier).
//!
//! Slow hashes cost CPU and memory per attempt, which an unauthenticated
//! caller chooses to spend. Three things bound that: the server refuses a
//! client over its failure limit *before* verifying
//! ([`Action::SlowSecretFailure`](crate::Action::SlowSecretFailure), limited
//! by default), [`Argon2idVerifier`] runs at most a few verifications at once
//! (`temporarily_unavailable` beyond), and [`SecretVerifier::verify`] is
//! async so an embedder on tokio can move the hashing off the runtime's
//! workers (`spawn_blocking`; the manual's client-authentication how-to
//! shows the wrapper). The core itself spawns nothing: it has no runtime.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::error::{ErrorCode, OAuthError, Reason};
use crate::token::{Random, TokenHash};

/// The longest encoded hash accepted (PHC strings of the usual schemes are
/// about 100 bytes).
const MAX_ENCODED_BYTES: usize = 512;

/// The hash of a client secret, with the scheme that made it.
///
/// Serialized as a PHC string (`$sha256$<base64url>`, `$argon2id$v=19$m=..`);
/// hashes stored before schemes existed (a bare SHA-256) still deserialize,
/// as SHA-256. `Debug` shows the scheme only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// SHA-256 of the secret's text: compared without parsing.
    Sha256(TokenHash),
    /// Any other scheme, as its PHC string (`$id$...`).
    Encoded(Box<str>),
}

/// Why a hash could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretHashError {
    /// Not a PHC string `$<scheme>$...` of at most 512 bytes, or a
    /// `$sha256$` one whose hash is not 32 bytes of base64url.
    #[error("not a PHC-format secret hash")]
    Malformed,
    /// The hashing itself failed (bad parameters, say).
    #[error("the secret could not be hashed: {0}")]
    Hashing(String),
}

impl SecretHash {
    /// The SHA-256 hash of a secret, for the server's own 256-bit secrets
    /// (never for a secret a person chose: use [`Argon2idVerifier::hash`]).
    pub fn of(secret: &str) -> Self {
        Self(Repr::Sha256(TokenHash::of(secret)))
    }

    /// A hash in PHC string format (`$<scheme>$...`), e.g. one imported from
    /// an existing client database. The scheme needs a verifier on the
    /// server (SHA-256 and Argon2id are built in).
    pub fn from_phc(encoded: &str) -> Result<Self, SecretHashError> {
        let scheme = phc_scheme(encoded).ok_or(SecretHashError::Malformed)?;
        if scheme == Sha256Verifier::SCHEME {
            let b64 = &encoded[Sha256Verifier::SCHEME.len() + 2..];
            let mut out = [0u8; 32];
            return match URL_SAFE_NO_PAD.decode_slice(b64, &mut out) {
                Ok(32) => Ok(Self(Repr::Sha256(TokenHash(out)))),
                _ => Err(SecretHashError::Malformed),
            };
        }
        Ok(Self(Repr::Encoded(encoded.into())))
    }

    /// The scheme that made it: `sha256`, `argon2id`, ...
    pub fn scheme(&self) -> &str {
        match &self.0 {
            Repr::Sha256(_) => Sha256Verifier::SCHEME,
            // Checked by `from_phc`.
            Repr::Encoded(s) => phc_scheme(s).unwrap_or(""),
        }
    }

    /// The PHC string, as stored.
    pub fn to_phc(&self) -> String {
        match &self.0 {
            Repr::Sha256(h) => format!("${}${}", Sha256Verifier::SCHEME, h.to_key()),
            Repr::Encoded(s) => s.to_string(),
        }
    }

    /// Whether `presented` is the secret, in constant time, by the built-in
    /// schemes (SHA-256, Argon2id with its default bounds); `false` for any
    /// other. The server verifies through its registered
    /// [`SecretVerifier`]s instead.
    pub fn verify(&self, presented: &str) -> bool {
        match &self.0 {
            Repr::Sha256(h) => sha256_matches(h, &TokenHash::of(presented)),
            Repr::Encoded(s) => argon2id_verify(s, presented),
        }
    }
}

/// The scheme of a PHC string: `$` then `[a-z0-9-]{1,32}` then `$` or the end.
fn phc_scheme(encoded: &str) -> Option<&str> {
    if encoded.len() > MAX_ENCODED_BYTES || !encoded.is_ascii() {
        return None;
    }
    let rest = encoded.strip_prefix('$')?;
    let scheme = rest.split('$').next()?;
    let ok = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    // A scheme with nothing after it says nothing about the secret.
    (ok && rest.len() > scheme.len() + 1).then_some(scheme)
}

/// Two SHA-256 hashes compared in constant time, as four 64-bit words
/// (`subtle` fences each element).
fn sha256_matches(stored: &TokenHash, presented: &TokenHash) -> bool {
    words(&presented.0)[..].ct_eq(&words(&stored.0)[..]).into()
}

/// A 32-byte hash as four words, for a constant-time comparison.
fn words(hash: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(hash.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    words
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}, ..)", self.scheme())
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_phc())
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Hashes stored before schemes existed are a bare SHA-256.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Phc(String),
            Legacy(TokenHash),
        }
        match Wire::deserialize(d)? {
            Wire::Phc(s) => Self::from_phc(&s).map_err(serde::de::Error::custom),
            Wire::Legacy(h) => Ok(Self(Repr::Sha256(h))),
        }
    }
}

/// One secret-hashing scheme: makes hashes of new secrets and checks
/// presented secrets against stored ones. Register more with
/// [`ServerBuilder::secret_verifier`](crate::ServerBuilder::secret_verifier);
/// the server picks the verifier by the stored hash's
/// [`scheme`](SecretHash::scheme).
#[async_trait]
pub trait SecretVerifier: Send + Sync + fmt::Debug {
    /// The PHC identifier of the scheme, e.g. `argon2id`.
    fn scheme(&self) -> &str;

    /// The hash to store for a new secret (`random` for salts).
    fn hash(&self, secret: &str, random: &dyn Random) -> Result<SecretHash, SecretHashError>;

    /// Whether `presented` is the secret `stored` was made from, compared
    /// in constant time. `Err` only when the verifier cannot answer now
    /// (`temporarily_unavailable`) or the stored hash is unusable
    /// (`server_error`): never for a wrong secret.
    async fn verify(&self, stored: &SecretHash, presented: &str) -> Result<bool, OAuthError>;

    /// [`verify`](Self::verify) answered at once, for a scheme that never
    /// waits (a fast hash): saves the boxed future on every client
    /// authentication. `None` (the default) means "ask `verify`".
    fn verify_now(&self, stored: &SecretHash, presented: &str) -> Option<bool> {
        let _ = (stored, presented);
        None
    }

    /// Whether the scheme is slow on purpose, for low-entropy secrets: the
    /// server then limits failed attempts per client before verifying
    /// ([`Action::SlowSecretFailure`](crate::Action::SlowSecretFailure)).
    fn is_slow(&self) -> bool {
        false
    }
}

/// SHA-256, for high-entropy secrets (the server's generated 256-bit ones):
/// `$sha256$<base64url of the 32-byte digest>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sha256Verifier;

impl Sha256Verifier {
    /// Its PHC identifier.
    pub const SCHEME: &'static str = "sha256";
}

#[async_trait]
impl SecretVerifier for Sha256Verifier {
    fn scheme(&self) -> &str {
        Self::SCHEME
    }

    fn hash(&self, secret: &str, _random: &dyn Random) -> Result<SecretHash, SecretHashError> {
        Ok(SecretHash::of(secret))
    }

    async fn verify(&self, stored: &SecretHash, presented: &str) -> Result<bool, OAuthError> {
        self.verify_now(stored, presented)
            .ok_or_else(OAuthError::server_error)
    }

    fn verify_now(&self, stored: &SecretHash, presented: &str) -> Option<bool> {
        match &stored.0 {
            Repr::Sha256(h) => Some(sha256_matches(h, &TokenHash::of(presented))),
            Repr::Encoded(_) => None,
        }
    }
}

/// Argon2id (RFC 9106) for low-entropy secrets: slow and memory-hard, with
/// a random 128-bit salt per hash. Defaults: 19 MiB, 2 passes, 1 lane (the
/// OWASP recommendation), at most 2 verifications at once.
///
/// Verification reads the cost from the stored hash but refuses hashes
/// costlier than 256 MiB or 16 passes (a corrupted or hostile record must
/// not make the server allocate gigabytes), and refuses other variants
/// (`argon2i`, `argon2d`).
#[derive(Debug)]
pub struct Argon2idVerifier {
    params: argon2::Params,
    max_in_flight: usize,
    in_flight: AtomicUsize,
}

impl Default for Argon2idVerifier {
    fn default() -> Self {
        Self {
            params: argon2::Params::default(),
            max_in_flight: 2,
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl Argon2idVerifier {
    /// Its PHC identifier.
    pub const SCHEME: &'static str = "argon2id";
    /// The most memory a stored hash may ask for, in KiB.
    const MAX_MEMORY_KIB: u32 = 256 * 1024;
    /// The most passes a stored hash may ask for.
    const MAX_PASSES: u32 = 16;

    /// A verifier that hashes new secrets with `memory_kib` KiB, `passes`
    /// passes and `lanes` lanes (RFC 9106 §4 m, t, p).
    pub fn with_cost(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, SecretHashError> {
        if memory_kib > Self::MAX_MEMORY_KIB || passes > Self::MAX_PASSES {
            return Err(SecretHashError::Hashing(
                "more than 256 MiB or 16 passes".into(),
            ));
        }
        let params = argon2::Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| SecretHashError::Hashing(e.to_string()))?;
        Ok(Self {
            params,
            ..Self::default()
        })
    }

    /// Runs at most `n` (at least 1) verifications at once; more are
    /// answered `temporarily_unavailable` (503) instead of queueing, so a
    /// flood of guesses costs at most `n` × the memory cost.
    #[must_use]
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Checks `presented` against `stored` on the calling thread (no
    /// concurrency bound): what [`SecretVerifier::verify`] runs, for
    /// wrappers that move it to a blocking thread pool.
    pub fn verify_blocking(&self, stored: &SecretHash, presented: &str) -> bool {
        match &stored.0 {
            Repr::Encoded(s) => argon2id_verify(s, presented),
            Repr::Sha256(_) => false,
        }
    }
}

/// Argon2id verification of `presented` against the PHC string `encoded`,
/// within the cost limits.
fn argon2id_verify(encoded: &str, presented: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(parsed) = PasswordHash::new(encoded) else {
        return false;
    };
    if parsed.algorithm.as_str() != Argon2idVerifier::SCHEME {
        return false;
    }
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > Argon2idVerifier::MAX_MEMORY_KIB
        || params.t_cost() > Argon2idVerifier::MAX_PASSES
    {
        tracing::warn!("an Argon2id client secret hash asks for more than the allowed cost");
        return false;
    }
    // The output is compared in constant time by `password-hash`.
    argon2::Argon2::default()
        .verify_password(presented.as_bytes(), &parsed)
        .is_ok()
}

/// Gives back a verification slot when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[async_trait]
impl SecretVerifier for Argon2idVerifier {
    fn scheme(&self) -> &str {
        Self::SCHEME
    }

    fn hash(&self, secret: &str, random: &dyn Random) -> Result<SecretHash, SecretHashError> {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt_bytes = random.bytes32();
        let salt = SaltString::encode_b64(&salt_bytes[..16])
            .map_err(|e| SecretHashError::Hashing(e.to_string()))?;
        let hasher = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            self.params.clone(),
        );
        let hash = hasher
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| SecretHashError::Hashing(e.to_string()))?;
        SecretHash::from_phc(&hash.to_string())
    }

    async fn verify(&self, stored: &SecretHash, presented: &str) -> Result<bool, OAuthError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::info!(
                max = self.max_in_flight,
                "client authentication refused: too many Argon2id verifications at once"
            );
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "too many client authentications at once; try again",
            )
            .with_reason(Reason::RateLimited));
        }
        let _slot = Slot(&self.in_flight);
        Ok(self.verify_blocking(stored, presented))
    }

    fn is_slow(&self) -> bool {
        true
    }
}

/// The verifiers a server knows, by scheme.
#[derive(Debug, Clone)]
pub(crate) struct SecretVerifiers(Vec<Arc<dyn SecretVerifier>>);

impl Default for SecretVerifiers {
    fn default() -> Self {
        Self(vec![
            Arc::new(Sha256Verifier),
            Arc::new(Argon2idVerifier::default()),
        ])
    }
}

impl SecretVerifiers {
    /// Adds `verifier`, replacing one of the same scheme.
    pub(crate) fn insert(&mut self, verifier: Arc<dyn SecretVerifier>) {
        self.0.retain(|v| v.scheme() != verifier.scheme());
        self.0.push(verifier);
    }

    /// The verifier of `hash`'s scheme.
    pub(crate) fn for_hash(&self, hash: &SecretHash) -> Option<&Arc<dyn SecretVerifier>> {
        let scheme = hash.scheme();
        self.0.iter().find(|v| v.scheme() == scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::OsRandom;

    #[test]
    fn sha256_round_trips_and_reads_legacy_hashes() {
        let h = SecretHash::of("s3cret");
        assert_eq!(h.scheme(), "sha256");
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.starts_with("\"$sha256$"), "{json}");
        let back: SecretHash = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        // The format of records written before schemes: a bare digest.
        let legacy = serde_json::to_string(&TokenHash::of("s3cret")).unwrap();
        let old: SecretHash = serde_json::from_str(&legacy).unwrap();
        assert_eq!(old, h);
        assert!(old.verify("s3cret"));
        assert!(!old.verify("s3cret "));
        assert!(!format!("{h:?}").contains("s3cret"));
    }

    #[test]
    fn malformed_phc_strings_are_refused() {
        for bad in [
            "",
            "sha256$x",
            "$",
            "$$x",
            "$SHA256$x",
            "$sha256$short",
            "$argon2id",
            "$argon2id$",
        ] {
            assert!(SecretHash::from_phc(bad).is_err(), "{bad:?}");
        }
        assert!(SecretHash::from_phc(&format!("$x${}", "a".repeat(600))).is_err());
        assert!(serde_json::from_str::<SecretHash>("\"$nope\"").is_err());
    }

    #[tokio::test]
    async fn argon2id_hashes_verify_and_say_their_scheme() {
        // Cheap parameters: the test checks the plumbing, not the cost.
        let v = Argon2idVerifier::with_cost(64, 1, 1).unwrap();
        let h = v.hash("correct horse", &OsRandom).unwrap();
        assert_eq!(h.scheme(), "argon2id");
        assert!(h.to_phc().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(v.verify(&h, "correct horse").await, Ok(true));
        assert_eq!(v.verify(&h, "correct horsf").await, Ok(false));
        // Serialized and read back (what every store does).
        let back: SecretHash = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert!(back.verify("correct horse"));
        // A salt per hash.
        assert_ne!(v.hash("correct horse", &OsRandom).unwrap(), h);
        // Another variant with the same syntax is refused.
        let argon2i = h.to_phc().replacen("argon2id", "argon2i", 1);
        assert!(
            !SecretHash::from_phc(&argon2i)
                .unwrap()
                .verify("correct horse")
        );
        // The SHA-256 verifier does not pretend to check it.
        assert!(Sha256Verifier.verify(&h, "correct horse").await.is_err());
    }

    #[test]
    fn argon2id_refuses_absurd_costs() {
        assert!(Argon2idVerifier::with_cost(1024 * 1024, 2, 1).is_err());
        let costly = "$argon2id$v=19$m=2000000,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(!SecretHash::from_phc(costly).unwrap().verify("x"));
    }

    #[tokio::test]
    async fn argon2id_runs_a_bounded_number_at_once() {
        let v = Argon2idVerifier::with_cost(64, 1, 1)
            .unwrap()
            .with_max_in_flight(1);
        let h = v.hash("pw", &OsRandom).unwrap();
        v.in_flight.store(1, Ordering::SeqCst);
        let busy = v.verify(&h, "pw").await.err().map(|e| e.code);
        assert_eq!(busy, Some(ErrorCode::TemporarilyUnavailable));
        v.in_flight.store(0, Ordering::SeqCst);
        assert_eq!(v.verify(&h, "pw").await, Ok(true));
        assert_eq!(v.in_flight.load(Ordering::SeqCst), 0);
    }
}
