//! DPoP (RFC 9449): proofs of possession of a key, which bind access and
//! refresh tokens to the client that holds it, so a stolen token is useless
//! without the key.
//!
//! A proof is a compact JWS in the `DPoP` request header (§4.1). Checking
//! one ([`verify_proof`]) follows §4.3 item by item, and every failure has
//! its own [`Reason`] (never sent; asserted by tests):
//!
//! 1. exactly one `DPoP` header ([`Reason::DpopProofRepeated`], [`Reason::DpopProofMissing`]);
//! 2. a well-formed compact JWS of JSON objects, at most [`MAX_DPOP_PROOF_BYTES`] ([`Reason::DpopProofMalformed`], [`Reason::DpopProofTooLarge`]);
//! 3. every required claim present ([`Reason::DpopProofMalformed`], [`Reason::DpopJtiInvalid`]);
//! 4. `typ` is `dpop+jwt` ([`Reason::DpopTypInvalid`]);
//! 5. `alg` is asymmetric and allowed, [`DPOP_ALGORITHMS`]: never `none` or an HMAC ([`Reason::DpopAlgNotAllowed`]);
//! 6. the signature verifies with the `jwk` header, the verifier chosen from the key's own type, which `alg` must name ([`Reason::DpopSignatureInvalid`]);
//! 7. `jwk` is a public key: no private members ([`Reason::DpopJwkInvalid`]);
//! 8. `htm` is the request's method ([`Reason::DpopMethodMismatch`]);
//! 9. `htu` is the request's URI without query and fragment, compared after
//!    RFC 3986 §6.2.2/§6.2.3 normalisation ([`Reason::DpopUriMismatch`]);
//! 10. the server's `nonce`, when it asks for nonces (§8; [`Reason::DpopNonceInvalid`], `use_dpop_nonce`);
//! 11. `iat` within the acceptance window ([`Reason::DpopIatOutOfWindow`]), and the `jti` not seen
//!     in that window, across instances, through the store's replay cache (§11.1; [`Reason::DpopReplayed`]);
//! 12. at a resource server, `ath` is the hash of the access token
//!     ([`Reason::DpopAthMismatch`]) and the proof's key is the token's
//!     (`cnf.jkt`, [`Reason::DpopKeyMismatch`]).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{ErrorCode, OAuthError, Reason};
use crate::keys::{Jwk, JwsAlgorithm, VerifyingKey};
use crate::storage::{ReplayKey, ReplayNamespace, ReplayStore};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_PROOF_TYP: &str = "dpop+jwt";

/// The largest `DPoP` header checked: a proof with an EC key is about 600
/// bytes; nothing larger is decoded.
pub const MAX_DPOP_PROOF_BYTES: usize = 4096;

/// The longest `jti` accepted (RFC 9449 §4.2 asks for at least 96 bits of
/// randomness; nobody needs more than a few dozen characters).
pub const MAX_DPOP_JTI_BYTES: usize = 256;

/// The proof algorithms accepted (RFC 9449 §4.3 item 5: asymmetric only),
/// as `dpop_signing_alg_values_supported` lists them (§5.1).
pub const DPOP_ALGORITHMS: [JwsAlgorithm; 2] = [JwsAlgorithm::Es256, JwsAlgorithm::EdDsa];

/// The `algs` parameter of a `DPoP` challenge (RFC 9449 §7.1).
/// Every name of [`DPOP_ALGORITHMS`] ([`JwsAlgorithm::names`]): `Ed25519`
/// is RFC 9864's name for `EdDSA` with Ed25519.
pub(crate) const DPOP_ALGS_PARAM: &str = "ES256 EdDSA Ed25519";

/// JWK members that only private (or symmetric) keys have (RFC 7518 §6.2.2,
/// §6.3.2, §6.4; RFC 8037 §2): a proof carrying one is refused (§4.3 item 7).
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// How proofs are accepted: the `iat` window and, optionally, server nonces.
#[derive(Clone)]
#[non_exhaustive]
pub struct DpopPolicy {
    /// How old a proof's `iat` may be (default 60 s): also how long its
    /// `jti` is remembered (RFC 9449 §11.1).
    pub max_age: Duration,
    /// How far in the future a proof's `iat` may be, for clock skew
    /// (default 5 s).
    pub max_skew: Duration,
    nonces: Option<NonceSecret>,
}

impl fmt::Debug for DpopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopPolicy")
            .field("max_age", &self.max_age)
            .field("max_skew", &self.max_skew)
            .field("nonces", &self.nonces.as_ref().map(|n| n.lifetime))
            .finish()
    }
}

impl Default for DpopPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::seconds(60),
            max_skew: Duration::seconds(5),
            nonces: None,
        }
    }
}

impl DpopPolicy {
    /// The defaults: proofs up to 60 s old, 5 s of clock skew, no nonces.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts proofs whose `iat` is at most `max_age` old (at least 1 s).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age.max(Duration::seconds(1));
        self
    }

    /// Accepts proofs whose `iat` is at most `max_skew` ahead of the server's clock.
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew.max(Duration::ZERO);
        self
    }

    /// Requires a server-provided nonce in every proof (RFC 9449 §8, §9):
    /// a proof without the current one is answered `use_dpop_nonce` with a
    /// fresh nonce in the `DPoP-Nonce` header. Nonces are stateless: an
    /// HMAC of the time step under `secret` (every instance behind one
    /// issuer must share it), each valid for one to two `lifetime`s (at
    /// least 10 s). This limits proofs made ahead of time by someone who
    /// briefly had the key.
    #[must_use]
    pub fn with_nonces(mut self, secret: [u8; 32], lifetime: Duration) -> Self {
        self.nonces = Some(NonceSecret {
            secret,
            lifetime: lifetime.max(Duration::seconds(10)),
        });
        self
    }

    /// Whether proofs must carry a server nonce.
    pub fn requires_nonce(&self) -> bool {
        self.nonces.is_some()
    }

    /// The nonce to hand out at `now` (for a `DPoP-Nonce` header), when
    /// nonces are required.
    pub fn current_nonce(&self, now: OffsetDateTime) -> Option<String> {
        self.nonces.as_ref().map(|n| n.nonce(n.step(now)))
    }

    /// How long a proof's `jti` must be remembered: past the last moment
    /// its `iat` is accepted.
    fn replay_expiry(&self, iat: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        (iat + self.max_age + self.max_skew).max(now + Duration::seconds(1))
    }
}

#[derive(Clone)]
struct NonceSecret {
    secret: [u8; 32],
    lifetime: Duration,
}

impl NonceSecret {
    fn step(&self, now: OffsetDateTime) -> i64 {
        now.unix_timestamp()
            .div_euclid(self.lifetime.whole_seconds().max(1))
    }

    /// `base64url(step ‖ HMAC-SHA-256(secret, "tessera-dpop-nonce" ‖ step)[..16])`.
    fn nonce(&self, step: i64) -> String {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&step.to_be_bytes());
        out[8..].copy_from_slice(&self.mac(step)[..16]);
        URL_SAFE_NO_PAD.encode(out)
    }

    fn mac(&self, step: i64) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return [0; 32]; // unreachable: HMAC takes any key length
        };
        mac.update(b"tessera-dpop-nonce");
        mac.update(&step.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A nonce of this step or the one before (so a nonce handed out just
    /// before a step ends still works).
    fn accepts(&self, nonce: &str, now: OffsetDateTime) -> bool {
        let mut raw = [0u8; 24];
        if nonce.len() != 32 || URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw).ok() != Some(24) {
            return false;
        }
        let mut step = [0u8; 8];
        step.copy_from_slice(&raw[..8]);
        let step = i64::from_be_bytes(step);
        let current = self.step(now);
        if step != current && Some(step) != current.checked_sub(1) {
            return false;
        }
        use subtle::ConstantTimeEq as _;
        bool::from(self.mac(step)[..16].ct_eq(&raw[8..]))
    }
}

/// Why a DPoP proof was refused: `invalid_dpop_proof` (400 at the token
/// endpoint, 401 at a resource server), or `use_dpop_nonce` when a server
/// nonce is missing or stale (RFC 9449 §7.1, §8, §12.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopError {
    /// The proof fails one of RFC 9449 §4.3's checks; the reason says which.
    InvalidProof(Reason),
    /// The server requires its nonce and the proof lacks the current one
    /// (§8): the client retries with `nonce` (sent as `DPoP-Nonce`).
    UseNonce {
        /// The nonce to use.
        nonce: String,
    },
    /// The replay cache could not be asked (the store failed): the proof is
    /// not accepted (`503` or `500`, logged where it arose).
    Unavailable(OAuthError),
}

impl DpopError {
    fn invalid(reason: Reason) -> Self {
        Self::InvalidProof(reason)
    }

    /// Which check failed (never sent to the client).
    pub fn reason(&self) -> Reason {
        match self {
            Self::InvalidProof(r) => *r,
            Self::UseNonce { .. } => Reason::DpopNonceInvalid,
            Self::Unavailable(e) => e.reason(),
        }
    }

    /// The error a token endpoint answers with (RFC 9449 §5: `400`).
    pub fn to_oauth_error(&self) -> OAuthError {
        match self {
            Self::InvalidProof(r) => {
                OAuthError::new(ErrorCode::InvalidDpopProof, "the DPoP proof is invalid")
                    .with_reason(*r)
            }
            Self::UseNonce { .. } => OAuthError::new(
                ErrorCode::UseDpopNonce,
                "the DPoP proof must carry the server's nonce",
            )
            .with_reason(Reason::DpopNonceInvalid),
            Self::Unavailable(e) => e.clone(),
        }
    }

    /// The nonce to send in `DPoP-Nonce`, for [`UseNonce`](Self::UseNonce).
    pub fn nonce(&self) -> Option<&str> {
        match self {
            Self::UseNonce { nonce } => Some(nonce),
            _ => None,
        }
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_oauth_error().fmt(f)
    }
}

impl std::error::Error for DpopError {}

/// A proof that passed every check: the key's thumbprint is what tokens
/// are bound to (`cnf.jkt`, RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpopProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's public key, base64url.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: OffsetDateTime,
}

impl DpopProof {
    /// The replay cache key of this proof: its `jti`, per key.
    pub fn replay_key(&self) -> ReplayKey {
        ReplayKey::new(ReplayNamespace::Dpop, &self.jkt, &self.jti)
    }
}

/// What a proof must match: the request it came with.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ProofContext<'a> {
    /// The request's method, e.g. `POST` (`htm`).
    pub method: &'a str,
    /// The request's URI as the client addressed it, absolute (`htu`);
    /// a query or fragment is ignored.
    pub uri: &'a str,
    /// At a resource server, the access token presented with the proof
    /// (`ath` must be its hash, §4.3 item 12); `None` at the token endpoint.
    pub access_token: Option<&'a str>,
    /// The time of the request.
    pub now: OffsetDateTime,
}

impl<'a> ProofContext<'a> {
    /// A request with `method` to `uri` at `now`.
    pub fn new(method: &'a str, uri: &'a str, now: OffsetDateTime) -> Self {
        Self {
            method,
            uri,
            access_token: None,
            now,
        }
    }

    /// The same request, presenting `access_token` (at a resource server).
    #[must_use]
    pub fn with_access_token(mut self, access_token: &'a str) -> Self {
        self.access_token = Some(access_token);
        self
    }
}

/// The proof of a request's `DPoP` header (RFC 9449 §4.1): `None` when
/// there is none. Adapters join repeated header fields with `", "`; a
/// proof never contains a comma, so a comma means several proofs (§4.3
/// item 1).
pub fn dpop_header(header: Option<&str>) -> Result<Option<&str>, DpopError> {
    match header {
        None => Ok(None),
        Some(h) if h.contains(',') => Err(DpopError::invalid(Reason::DpopProofRepeated)),
        Some(h) => Ok(Some(h.trim())),
    }
}

/// Checks a DPoP proof against its request, every RFC 9449 §4.3 check but
/// the `jti`'s replay (which needs a store: [`check_proof`] does both).
/// Pure: no I/O, no clock.
pub fn verify_proof(
    header: Option<&str>,
    context: &ProofContext<'_>,
    policy: &DpopPolicy,
) -> Result<DpopProof, DpopError> {
    let proof = dpop_header(header)?.ok_or(DpopError::invalid(Reason::DpopProofMissing))?;
    if proof.len() > MAX_DPOP_PROOF_BYTES {
        return Err(DpopError::invalid(Reason::DpopProofTooLarge));
    }
    let malformed = || DpopError::invalid(Reason::DpopProofMalformed);
    // §4.3 item 2: a well-formed compact JWS (RFC 7515 §7.1): three parts.
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed());
    let object = |bytes: Vec<u8>| match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    };
    let jose = object(decode(header_b64)?)?;
    let claims = object(decode(claims_b64)?)?;
    let signature = decode(signature_b64)?;

    // §4.3 item 4: typ.
    let typ = jose.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case(DPOP_PROOF_TYP)) {
        return Err(DpopError::invalid(Reason::DpopTypInvalid));
    }
    // We understand no JWS extension (RFC 7515 §4.1.11).
    if jose.contains_key("crit") {
        return Err(malformed());
    }
    // §4.3 item 5: an allowed, asymmetric alg (never `none`, never HMAC).
    let alg = jose
        .get("alg")
        .and_then(Value::as_str)
        .and_then(JwsAlgorithm::from_name)
        .filter(|a| DPOP_ALGORITHMS.contains(a))
        .ok_or(DpopError::invalid(Reason::DpopAlgNotAllowed))?;
    // §4.3 item 7: a public key, of a type we verify with.
    let key = public_key(jose.get("jwk"))?;
    // §4.3 item 6: the verifier is the key's own (its type decides), and
    // `alg` must name it: `alg` alone never picks one.
    if key.algorithm() != alg {
        return Err(DpopError::invalid(Reason::DpopAlgNotAllowed));
    }
    let signing_input = proof
        .get(..header_b64.len() + 1 + claims_b64.len())
        .ok_or_else(malformed)?;
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(DpopError::invalid(Reason::DpopSignatureInvalid));
    }

    // §4.3 item 3: the required claims; §4.2: `jti` unique, bounded here.
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_DPOP_JTI_BYTES)
        .ok_or(DpopError::invalid(Reason::DpopJtiInvalid))?;
    let htm = text("htm").ok_or_else(malformed)?;
    let htu = text("htu").ok_or_else(malformed)?;
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or_else(malformed)?;

    // §4.3 item 8: htm is the request's method (methods are case-sensitive, RFC 9110 §9.1).
    if htm != context.method {
        return Err(DpopError::invalid(Reason::DpopMethodMismatch));
    }
    // §4.3 item 9: htu is the request URI, without query and fragment.
    if !same_htu(htu, context.uri) {
        return Err(DpopError::invalid(Reason::DpopUriMismatch));
    }
    // §4.3 item 10, §8: the server's nonce, when it asks for one.
    if let Some(nonces) = &policy.nonces {
        let ok = text("nonce").is_some_and(|n| nonces.accepts(n, context.now));
        if !ok {
            return Err(DpopError::UseNonce {
                nonce: nonces.nonce(nonces.step(context.now)),
            });
        }
    }
    // §4.3 item 11: iat within the window (§11.1: the window bounds the replay cache).
    if iat < context.now - policy.max_age || iat > context.now + policy.max_skew {
        return Err(DpopError::invalid(Reason::DpopIatOutOfWindow));
    }
    // §4.3 item 12, §7: at a resource server, `ath` is the token's hash.
    if let Some(token) = context.access_token {
        let expected = access_token_hash(token);
        if text("ath") != Some(expected.as_str()) {
            return Err(DpopError::invalid(Reason::DpopAthMismatch));
        }
    }
    Ok(DpopProof {
        jkt: key.thumbprint(),
        jti: jti.to_owned(),
        iat,
    })
}

/// Checks a DPoP proof ([`verify_proof`]) and remembers its `jti` in
/// `store`'s replay cache until the proof could no longer be accepted, so a
/// second use, on any instance sharing the store, is refused (RFC 9449
/// §11.1, [`Reason::DpopReplayed`]).
pub async fn check_proof<S: ReplayStore + ?Sized>(
    store: &S,
    header: Option<&str>,
    context: &ProofContext<'_>,
    policy: &DpopPolicy,
) -> Result<DpopProof, DpopError> {
    let proof = verify_proof(header, context, policy)?;
    remember_proof(store, &proof, context, policy).await?;
    Ok(proof)
}

/// The replay check of a verified proof (RFC 9449 §11.1): its `jti` is
/// remembered until the proof could no longer be accepted; a second use is
/// [`Reason::DpopReplayed`].
pub(crate) async fn remember_proof<S: ReplayStore + ?Sized>(
    store: &S,
    proof: &DpopProof,
    context: &ProofContext<'_>,
    policy: &DpopPolicy,
) -> Result<(), DpopError> {
    remember_proof_at(store, proof, policy, context.now).await
}

/// The replay check of a proof [`verify_proof`] accepted at `now` (RFC
/// 9449 §11.1), for a resource server that checks proofs itself: its `jti`
/// is remembered in `store` (shared by every instance that must refuse the
/// replay) until the proof could no longer be accepted under `policy`; a
/// second use is [`Reason::DpopReplayed`], a store that cannot answer
/// [`DpopError::Unavailable`].
pub async fn remember_proof_at<S: ReplayStore + ?Sized>(
    store: &S,
    proof: &DpopProof,
    policy: &DpopPolicy,
    now: OffsetDateTime,
) -> Result<(), DpopError> {
    let expires_at = policy.replay_expiry(proof.iat, now);
    match store.first_use(proof.replay_key(), expires_at, now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(DpopError::invalid(Reason::DpopReplayed)),
        Err(e) => {
            let e = OAuthError::from(e);
            e.log("DPoP proof replay cache");
            Err(DpopError::Unavailable(e))
        }
    }
}

/// `ath`: base64url(SHA-256(the access token's ASCII text)) (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// A JSON number of seconds (RFC 7519 §2 NumericDate), fractions dropped.
fn numeric_date(v: &Value) -> Option<OffsetDateTime> {
    let secs = match v.as_i64() {
        Some(s) => s,
        None => {
            let f = v.as_f64()?;
            if !f.is_finite() || f.abs() > 1e15 {
                return None;
            }
            f.trunc() as i64
        }
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The `jwk` header as a verifying key: a JSON object with no private
/// member (§4.3 item 7), of a type and curve we verify (EC P-256, OKP
/// Ed25519); any `kid` it has is not needed.
fn public_key(jwk: Option<&Value>) -> Result<VerifyingKey, DpopError> {
    let invalid = || DpopError::invalid(Reason::DpopJwkInvalid);
    let Some(Value::Object(members)) = jwk else {
        return Err(invalid());
    };
    if PRIVATE_JWK_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(invalid());
    }
    let text = |m: &Map<String, Value>, name: &str| -> Result<Option<String>, DpopError> {
        match m.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid()),
        }
    };
    let key = Jwk {
        kty: text(members, "kty")?.ok_or_else(invalid)?,
        crv: text(members, "crv")?,
        x: text(members, "x")?.ok_or_else(invalid)?,
        y: text(members, "y")?,
        // RSA is not among the proof algorithms (`DPOP_ALGORITHMS`).
        n: None,
        e: None,
        // `VerifyingKey` wants a `kid`; a proof's key needs none (RFC 7638
        // thumbprints ignore it).
        kid: Some("dpop".to_owned()),
        alg: text(members, "alg")?,
        use_: text(members, "use")?,
    };
    VerifyingKey::from_jwk(&key).map_err(|_| invalid())
}

/// Whether a proof's `htu` names `request_uri` (RFC 9449 §4.3 item 9):
/// both without query and fragment, after syntax-based and scheme-based
/// normalisation (RFC 3986 §6.2.2, §6.2.3: case of scheme and host, default
/// port, empty path as `/`, dot segments, percent-encoding case and
/// unreserved characters). The proof's `htu` must be an RFC 3986 URI as
/// written: a browser's URL parser would also take `http:\\host\token`, a
/// tab inside, or `0x7f.1` for `127.0.0.1`, none of which RFC 3986's
/// normalisation makes equal. The host is compared as written, up to case:
/// a percent-encoded host name, or an IPv6 address spelled otherwise than
/// its shortest form, does not match.
pub fn same_htu(htu: &str, request_uri: &str) -> bool {
    match (normalise_uri(htu), normalise_uri(request_uri)) {
        (Some(a), Some(b)) => a == b && written_as_rfc3986(htu, &a),
        _ => false,
    }
}

/// Whether `uri` holds only URI characters (RFC 3986 §2), begins with
/// `http://` or `https://` in any case, and names as its host what its
/// parsed, normalised form `normal` does (up to case, §6.2.2.1).
fn written_as_rfc3986(uri: &str, normal: &str) -> bool {
    if !uri.bytes().all(crate::redirect::uri_byte) {
        return false;
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = |authority: &str| -> String {
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let host = match host_port.find(']') {
            Some(end) if host_port.starts_with('[') => &host_port[..=end],
            _ => host_port.split(':').next().unwrap_or(host_port),
        };
        host.to_ascii_lowercase()
    };
    let normal_authority = normal
        .split_once("://")
        .map_or("", |(_, r)| r.split(['/', '?', '#']).next().unwrap_or(r));
    host(authority) == host(normal_authority)
}

fn normalise_uri(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    // `url` lowercases scheme and host, drops the default port, turns an
    // empty path into `/` and removes dot segments; percent-encodings are
    // left as written, so normalise them here (§6.2.2.1, §6.2.2.2).
    let path = normalise_percent_encoding(url.path());
    url.set_path(&path);
    Some(url.into())
}

/// Uppercases percent-encoding hex digits and decodes the encodings of
/// unreserved characters (RFC 3986 §2.3, §6.2.2.2).
fn normalise_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            let decoded = (h * 16 + l) as u8;
            if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                out.push(decoded as char);
            } else {
                out.push('%');
                out.push_str(&format!("{decoded:02X}"));
            }
            i += 3;
            continue;
        }
        out.push(b as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_every_algorithm_the_metadata_lists() {
        // The challenge's `algs` is a constant (no allocation per answer);
        // it must say what `dpop_signing_alg_values_supported` says.
        let names: Vec<&str> = DPOP_ALGORITHMS
            .iter()
            .flat_map(|a| a.names().iter().copied())
            .collect();
        assert_eq!(DPOP_ALGS_PARAM, names.join(" "));
    }

    #[test]
    fn htu_comparison_normalises_per_rfc3986_6_2() {
        let same = [
            (
                "https://server.example/token",
                "https://server.example/token",
            ),
            (
                "HTTPS://Server.Example/token",
                "https://server.example/token",
            ),
            (
                "https://server.example:443/token",
                "https://server.example/token",
            ),
            ("http://server.example:80/a", "http://server.example/a"),
            ("https://server.example", "https://server.example/"),
            (
                "https://server.example/a/./b/../token",
                "https://server.example/a/token",
            ),
            (
                "https://server.example/%7Euser",
                "https://server.example/~user",
            ),
            (
                "https://server.example/a%2fb",
                "https://server.example/a%2Fb",
            ),
            (
                "https://server.example/token?x=1#f",
                "https://server.example/token",
            ),
            (
                "https://server.example/token",
                "https://server.example/token?code=abc",
            ),
        ];
        for (a, b) in same {
            assert!(same_htu(a, b), "{a} = {b}");
        }
        // The host's case, and an IPv6 literal as the server writes it.
        assert!(same_htu(
            "HTTPS://Server.Example:443/token",
            "https://server.example/token"
        ));
        assert!(same_htu(
            "http://[::1]:9000/token",
            "http://[::1]:9000/token"
        ));
        let differ = [
            (
                "https://server.example/token",
                "http://server.example/token",
            ),
            (
                "https://server.example/token",
                "https://server.example:8443/token",
            ),
            (
                "https://server.example/token",
                "https://other.example/token",
            ),
            (
                "https://server.example/token",
                "https://server.example/Token",
            ),
            (
                "https://server.example/token",
                "https://server.example/token/",
            ),
            ("https://server.example/a%2Fb", "https://server.example/a/b"),
            ("/token", "/token"),
            ("urn:x:y", "urn:x:y"),
            // What only a browser's URL parser makes of these (RFC 3986
            // normalisation does not): numeric IPv4 forms, a backslash, a
            // missing slash, whitespace.
            (
                "http://2130706433:9000/token",
                "http://127.0.0.1:9000/token",
            ),
            ("http://0x7f.1:9000/token", "http://127.0.0.1:9000/token"),
            ("http://127.1:9000/token", "http://127.0.0.1:9000/token"),
            (
                "http://127.0.0.1:9000\\token",
                "http://127.0.0.1:9000/token",
            ),
            ("http:/127.0.0.1:9000/token", "http://127.0.0.1:9000/token"),
            ("http:127.0.0.1:9000/token", "http://127.0.0.1:9000/token"),
            (
                "http://127.0.0.1:9000/to\tken",
                "http://127.0.0.1:9000/token",
            ),
            (
                " http://127.0.0.1:9000/token",
                "http://127.0.0.1:9000/token",
            ),
            ("http://[0:0::1]:9000/token", "http://[::1]:9000/token"),
        ];
        for (a, b) in differ {
            assert!(!same_htu(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn nonces_are_accepted_for_two_steps_only() {
        let policy = DpopPolicy::new().with_nonces([7; 32], Duration::seconds(60));
        let Some(n) = &policy.nonces else {
            panic!("nonces configured")
        };
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let nonce = policy.current_nonce(t0).unwrap();
        assert!(n.accepts(&nonce, t0));
        assert!(n.accepts(&nonce, t0 + Duration::seconds(60)));
        assert!(!n.accepts(&nonce, t0 + Duration::seconds(180)));
        let other = DpopPolicy::new().with_nonces([8; 32], Duration::seconds(60));
        assert!(!n.accepts(&other.current_nonce(t0).unwrap(), t0));
        assert!(!n.accepts("garbage", t0));
    }

    #[test]
    fn ath_is_base64url_sha256() {
        // RFC 9449 §7.1's example token and ath.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
