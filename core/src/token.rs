//! Secrets the server hands out: tokens, codes and handles.
//!
//! Every secret is `prefix` + base64url(grant id ‖ 256 random bits). The short
//! type prefix lets secret scanners spot a leaked token; the 128-bit grant id
//! lets a store keep every record of one grant together (one Redis Cluster
//! slot) and revoke them as one. Stores keep only a SHA-256 ([`TokenHash`])
//! of the prefix and the 48 bytes the text encodes, so a leaked store yields
//! no usable token. The encoding is canonical (64 base64url characters carry
//! exactly 48 bytes), so this names the secret as surely as hashing its
//! text, in one SHA-256 block where the 68-character text needs two.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What a secret is for; each kind has its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TokenKind {
    /// An access token (`tsa_`).
    Access,
    /// A refresh token (`tsr_`).
    Refresh,
    /// An authorization code (`tsc_`).
    Code,
    /// A handle to a pending authorization request awaiting login/consent (`tsp_`).
    Pending,
    /// A device code (`tsd_`, RFC 8628 §3.2).
    Device,
    /// A pushed authorization request's handle (`tsu_`, RFC 9126 §2.2), sent
    /// inside `urn:ietf:params:oauth:request_uri:`.
    RequestUri,
}

impl TokenKind {
    /// The prefix this kind's secrets start with.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Access => "tsa_",
            Self::Refresh => "tsr_",
            Self::Code => "tsc_",
            Self::Pending => "tsp_",
            Self::Device => "tsd_",
            Self::RequestUri => "tsu_",
        }
    }
}

/// Identifies one grant: every code, access token and refresh token issued
/// from one authorization (or one client-credentials request) shares it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantId(pub [u8; 16]);

impl GrantId {
    /// A new grant's id: the milliseconds since 1970 at `now` in its first
    /// six bytes (big-endian), then ten bytes of which nine are random and
    /// one (byte 8) names the thread that minted it, so ids sort by when
    /// their grants began (as UUIDv7, RFC 9562 §5.7) and a thread's new
    /// grants share a shard.
    ///
    /// Why the time: a store that keeps grants in an ordered index (a
    /// B-tree: the memory store, a PostgreSQL primary key) adds each new
    /// grant beside the last one, in memory it touched a moment ago, where
    /// a random key lands anywhere in a table of millions: a cache miss, or
    /// a page read, per token issued. Why the thread: the memory store picks
    /// a grant's shard by byte 8, so each thread adds its grants to a shard
    /// that is usually its own (threads are numbered as they first mint, and
    /// the number wraps), whose lock and newest leaf stay in its core's
    /// cache; with a random byte, two cores issuing tokens wrote the same
    /// shards' lines in turn (bench/README.md). The 72 random bits keep ids unique;
    /// nothing is secret in a grant id (the secret is the token's other 32
    /// bytes). What it shows is when the grant began, to the millisecond,
    /// and which of the server's threads minted it: to whoever holds any
    /// token of the grant, refreshed and exchanged ones included, and,
    /// through a JWT access token's `jti`, to resource servers (as OpenID
    /// Connect's `auth_time` would).
    pub fn mint(now: OffsetDateTime, random: &dyn Random) -> Self {
        let mut id = [0u8; 16];
        let millis = now.unix_timestamp_nanos() / 1_000_000;
        // 48 bits hold the milliseconds until the year 10889; a time
        // before 1970 (a test clock) counts as 0.
        let millis = u64::try_from(millis).unwrap_or(0).to_be_bytes();
        id[..6].copy_from_slice(&millis[2..]);
        random.fill(&mut id[6..]);
        id[8] = thread_byte();
        Self(id)
    }

    /// When the grant began, to the millisecond, as [`mint`](Self::mint)
    /// wrote it: a time the server's clock has passed, which a store may
    /// use to expire what it holds without a clock of its own (an id made
    /// otherwise, from bytes, may say anything; one past the year 9999
    /// says 1970).
    pub fn began(&self) -> OffsetDateTime {
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&self.0[..6]);
        let millis = i128::from(u64::from_be_bytes(millis));
        OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The id as 22 base64url characters, for store keys.
    pub fn to_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// The calling thread's byte in the grant ids it mints: threads are
/// numbered in the order they first mint one (wrapping after 256).
fn thread_byte() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(0);
    thread_local! {
        static BYTE: u8 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    // A byte has no destructor, so this does not fail; were it to, the next
    // number serves as well: byte 8 only spreads grants over shards.
    BYTE.try_with(|b| *b)
        .unwrap_or_else(|_| NEXT.fetch_add(1, Ordering::Relaxed))
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantId({})", self.to_key())
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

/// The SHA-256 of a secret: what stores keep instead of the secret.
///
/// It prints as hex in logs and keys; it can never be turned back into the secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a secret's text (client secrets, and secrets not minted by [`Secret`]).
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// The hash of a [`Secret`]: its kind's prefix and its 48 raw bytes.
    fn of_minted(kind: TokenKind, raw: &[u8; 48]) -> Self {
        Self(
            Sha256::new()
                .chain_update(kind.prefix().as_bytes())
                .chain_update(raw)
                .finalize()
                .into(),
        )
    }

    /// The hash as 43 base64url characters, for store keys.
    pub fn to_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_key())
    }
}

/// A store key for one secret: the grant it belongs to and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretKey {
    /// The grant the secret belongs to.
    pub grant: GrantId,
    /// The SHA-256 of the secret.
    pub hash: TokenHash,
}

impl SecretKey {
    /// The store key of a presented secret of the expected kind, which is
    /// all a lookup needs. `None` when it is not one of ours (wrong prefix,
    /// length or encoding): callers answer that exactly like an unknown secret.
    pub fn parse(kind: TokenKind, text: &str) -> Option<Self> {
        let body = text.strip_prefix(kind.prefix())?;
        if body.len() != 64 {
            return None;
        }
        // 64 base64url characters are exactly 48 bytes: grant id and random part.
        let mut raw = [0u8; 48];
        if URL_SAFE_NO_PAD.decode_slice(body, &mut raw).ok()? != raw.len() {
            return None;
        }
        let grant = GrantId(raw[..16].try_into().ok()?);
        Some(Self {
            grant,
            hash: TokenHash::of_minted(kind, &raw),
        })
    }
}

/// A freshly minted or presented secret. Its text is reachable only through
/// [`Secret::expose`]; `Debug` and `Display` print the kind, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    kind: TokenKind,
    text: String,
    key: SecretKey,
}

impl Secret {
    /// Mints a secret of `kind` for `grant` from 32 random bytes.
    pub fn mint(kind: TokenKind, grant: GrantId, random: [u8; 32]) -> Self {
        let mut raw = [0u8; 48];
        raw[..16].copy_from_slice(&grant.0);
        raw[16..].copy_from_slice(&random);
        // 48 bytes encode to exactly 64 characters, written on the stack
        // (`encode_string` goes through a 1 KiB chunk buffer).
        let mut encoded = [0u8; 64];
        let n = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut encoded)
            .unwrap_or_default();
        let mut text = String::with_capacity(kind.prefix().len() + 64);
        text.push_str(kind.prefix());
        text.push_str(
            std::str::from_utf8(encoded.get(..n).unwrap_or_default()).unwrap_or_default(),
        );
        let hash = TokenHash::of_minted(kind, &raw);
        Self {
            kind,
            text,
            key: SecretKey { grant, hash },
        }
    }

    /// Parses a presented secret of the expected kind. `None` when it is not
    /// one of ours (wrong prefix, length or encoding): callers answer that
    /// exactly like an unknown secret. [`SecretKey::parse`] gives the key
    /// alone, without copying the text.
    pub fn parse(kind: TokenKind, text: &str) -> Option<Self> {
        SecretKey::parse(kind, text).map(|key| Self {
            kind,
            text: text.to_owned(),
            key,
        })
    }

    /// The secret's text, to send to its owner. Never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Gives the text up, to send it once (the response of the request that minted it).
    pub fn into_exposed(self) -> String {
        self.text
    }

    /// The kind of secret.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// Where a store keeps it.
    pub fn key(&self) -> SecretKey {
        self.key
    }

    /// The grant the secret belongs to.
    pub fn grant(&self) -> GrantId {
        self.key.grant
    }

    /// The hash a store keeps.
    pub fn hash(&self) -> TokenHash {
        self.key.hash
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?}, {:?})", self.kind, self.key.hash)
    }
}

/// A source of randomness for secrets and grant ids.
///
/// The default, [`OsRandom`], is a CSPRNG seeded by the OS. Tests pass a
/// deterministic source so every transition is reproducible.
pub trait Random: Send + Sync {
    /// Fills `buf` with unpredictable bytes.
    fn fill(&self, buf: &mut [u8]);

    /// 32 random bytes.
    fn bytes32(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.fill(&mut b);
        b
    }

    /// A grant id of 16 random bytes. The core mints time-ordered ones
    /// with [`GrantId::mint`]; this is for ids whose order means nothing.
    fn grant_id(&self) -> GrantId {
        let mut b = [0u8; 16];
        self.fill(&mut b);
        GrantId(b)
    }
}

/// The thread-local CSPRNG of `rand` (ChaCha, reseeded from the OS).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::rng().fill_bytes(buf);
    }
}

/// Deterministic "randomness" for tests: a counter run through SHA-256.
#[derive(Debug, Default)]
pub struct CountingRandom(std::sync::atomic::AtomicU64);

impl Random for CountingRandom {
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut block = Sha256::digest(n.to_le_bytes());
        for chunk in buf.chunks_mut(32) {
            chunk.copy_from_slice(&block[..chunk.len()]);
            block = Sha256::digest(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minted grant ids sort by their time, carry the milliseconds in their
    /// first six bytes, the minting thread's byte at 8 and randomness in the
    /// rest; a clock before 1970 gives a zero time, never a panic.
    #[test]
    fn minted_grant_ids_sort_by_time() {
        let random = OsRandom;
        let t0 = OffsetDateTime::from_unix_timestamp(1_764_547_200).unwrap();
        let ids: Vec<GrantId> = (0..200)
            .map(|i| GrantId::mint(t0 + time::Duration::milliseconds(i), &random))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&ids[0].0[..6]);
        assert_eq!(u64::from_be_bytes(millis), 1_764_547_200_000);
        assert_eq!(ids[7].began(), t0 + time::Duration::milliseconds(7));
        // Past the calendar (year 9999): 1970, the time that expires nothing.
        assert_eq!(GrantId([0xff; 16]).began(), OffsetDateTime::UNIX_EPOCH);
        // Two ids of the same millisecond differ (72 random bits).
        let (a, b) = (GrantId::mint(t0, &random), GrantId::mint(t0, &random));
        assert_eq!(a.0[..6], b.0[..6]);
        assert_ne!(a, b);
        // One thread's ids share byte 8 (the memory store's shard), and
        // so do another's.
        assert!(ids.iter().all(|id| id.0[8] == a.0[8]));
        let (c, d) =
            std::thread::spawn(move || (GrantId::mint(t0, &random), GrantId::mint(t0, &random)))
                .join()
                .unwrap();
        assert_eq!(c.0[8], d.0[8]);
        assert_ne!(c, d);
        let before = GrantId::mint(
            OffsetDateTime::UNIX_EPOCH - time::Duration::days(1),
            &random,
        );
        assert_eq!(before.0[..6], [0; 6]);
    }

    /// A presented secret parses only with all 64 characters in the
    /// base64url alphabet (RFC 4648 §5): every other byte, anywhere, makes
    /// it not one of ours.
    #[test]
    fn a_secret_with_a_byte_outside_the_alphabet_is_not_ours() {
        let minted = Secret::mint(TokenKind::Access, GrantId([7; 16]), [9; 32]);
        let body = &minted.expose()[TokenKind::Access.prefix().len()..];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for b in 0..=127u8 {
            for at in [0, 13, 63] {
                let mut text = body.as_bytes().to_vec();
                text[at] = b;
                let text = format!("tsa_{}", String::from_utf8(text).unwrap());
                assert_eq!(
                    SecretKey::parse(TokenKind::Access, &text).is_some(),
                    alphabet.contains(&b),
                    "byte {b} at {at}"
                );
            }
        }
    }

    #[test]
    fn same_bytes_of_another_kind_hash_apart() {
        let a = Secret::mint(TokenKind::Access, GrantId([1; 16]), [2; 32]);
        let r = Secret::mint(TokenKind::Refresh, GrantId([1; 16]), [2; 32]);
        assert_ne!(a.hash(), r.hash());
        assert_eq!(
            Secret::parse(TokenKind::Refresh, r.expose()).map(|p| p.hash()),
            Some(r.hash())
        );
    }

    #[test]
    fn mint_parse_round_trip() {
        let r = CountingRandom::default();
        let s = Secret::mint(TokenKind::Access, r.grant_id(), r.bytes32());
        assert!(s.expose().starts_with("tsa_"));
        assert_eq!(s.expose().len(), 4 + 64);
        let p = Secret::parse(TokenKind::Access, s.expose());
        assert_eq!(p.as_ref().map(Secret::key), Some(s.key()));
        assert!(Secret::parse(TokenKind::Refresh, s.expose()).is_none());
        // The key alone, as lookups take it: the same, and as strict.
        assert_eq!(
            SecretKey::parse(TokenKind::Access, s.expose()),
            Some(s.key())
        );
        assert_eq!(SecretKey::parse(TokenKind::Refresh, s.expose()), None);
        let mut tampered = s.expose().to_owned();
        tampered.pop();
        tampered.push('!');
        assert_eq!(SecretKey::parse(TokenKind::Access, &tampered), None);
    }

    #[test]
    fn foreign_strings_are_not_secrets() {
        for t in [
            "",
            "tsa_",
            "tsa_short",
            "Bearer x",
            &format!("tsa_{}", "!".repeat(64)),
        ] {
            assert!(Secret::parse(TokenKind::Access, t).is_none(), "{t}");
            assert!(SecretKey::parse(TokenKind::Access, t).is_none(), "{t}");
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = Secret::mint(TokenKind::Refresh, GrantId([1; 16]), [2; 32]);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&s.expose()[4..20]));
    }

    #[test]
    fn os_random_differs() {
        assert_ne!(OsRandom.bytes32(), OsRandom.bytes32());
    }
}
