//! JWT access tokens (RFC 9068): the compact JWS they travel in (RFC 7515
//! §7.1), their claims, and their validation.
//!
//! Validation follows RFC 9068 §4 and RFC 8725: the header's `typ` must be
//! `at+jwt`; the verifying key is found by `kid` alone and checks the
//! signature by its own algorithm, which the header's `alg` must name (so
//! `alg: none`, the HMAC family, or an algorithm of another key type never
//! select anything); a `crit` header is refused (we understand no
//! extension); then `iss`, `exp`, `nbf` and `aud` are checked.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use std::sync::Arc;

use crate::client::Client;
use crate::keys::{JwsAlgorithm, KeySet, SigningKey, VerificationKeys, VerifyingKey};
use crate::server::Server;
use crate::storage::TokenRecord;
use crate::token::{GrantId, SecretKey, TokenHash};

/// The `typ` header of a JWT access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The longest JWT Tessera parses: access tokens are a few hundred bytes,
/// and nothing larger is decoded or hashed.
pub const MAX_JWT_BYTES: usize = 8 * 1024;

/// How an access token is issued: opaque (the default) or a signed JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccessTokenFormat {
    /// A random handle (`tsa_...`) that only the server's store can resolve:
    /// resource servers ask the store or introspect (RFC 7662).
    #[default]
    Opaque,
    /// A signed JWT (RFC 9068) that resource servers can validate on their
    /// own with the server's JWKS. It is stored too, so introspection and
    /// revocation work as for opaque tokens.
    Jwt,
}

/// Why a JWT was refused. Each is answered `invalid_token` at a resource
/// server (RFC 6750 §3.1); the variants are for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS of three base64url parts with JSON header and
    /// claims, or over [`MAX_JWT_BYTES`], or a required claim is missing.
    #[error("malformed JWT")]
    Malformed,
    /// The header's `typ` is not the expected one (RFC 9068 §4, RFC 8725 §3.11).
    #[error("wrong JWT typ")]
    WrongType,
    /// The header names an extension as critical (RFC 7515 §4.1.11).
    #[error("unsupported critical header")]
    CriticalHeader,
    /// No key has the header's `kid` (or there is no `kid`).
    #[error("unknown signing key")]
    UnknownKey,
    /// The header's `alg` is not the algorithm of the key named by `kid`
    /// (`none`, an HMAC, or another key type's algorithm).
    #[error("alg does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// Before `nbf`.
    #[error("not yet valid")]
    NotYetValid,
    /// The token is bound to a key (`cnf`, RFC 7800; DPoP, RFC 9449 §6.1)
    /// and was to be taken as a bearer token: see
    /// [`AccessTokenValidator::validate_with_binding`].
    #[error("sender-constrained token presented as a bearer token")]
    SenderConstrained,
}

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The resource owner, or the client for a client-credentials token.
    pub sub: String,
    /// The audiences: the resource(s) the token is for (RFC 9068 §3). One
    /// is written as a string, several as an array (RFC 7519 §4.1.3).
    #[serde(with = "audience")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The token's id: names its record in the server's store.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The scope, space-separated (RFC 9068 §2.2.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Not before, seconds since the epoch (not set by Tessera, honoured if present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Who acts on the subject's behalf (RFC 8693 §4.1), for a delegated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6.1: `cnf.jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::introspection::Confirmation>,
}

impl AccessTokenClaims {
    /// The scope tokens.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// The store key of the token's record, when `jti` is one Tessera minted.
    pub(crate) fn record_key(&self) -> Option<SecretKey> {
        record_key(&self.jti)
    }
}

/// `aud` as a string or an array of strings (RFC 7519 §4.1.3).
mod audience {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn serialize<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
        match aud {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        })
    }
}

/// The prefix hashed with a `jti`'s bytes for its store key, so no opaque
/// token's hash can equal a JWT's.
const JTI_DOMAIN: &[u8] = b"tsj_";

/// A new `jti` for a token of `grant`: base64url(grant id ‖ 16 random
/// bytes). It is not a secret (the signature is what makes the token), so
/// it may be logged; the store keeps its hash, like an opaque token's.
pub(crate) fn new_jti(grant: GrantId, random: &dyn crate::token::Random) -> (String, SecretKey) {
    let mut raw = [0u8; 32];
    raw[..16].copy_from_slice(&grant.0);
    random.fill(&mut raw[16..]);
    let jti = URL_SAFE_NO_PAD.encode(raw);
    (jti, jti_key(grant, &raw))
}

fn jti_key(grant: GrantId, raw: &[u8; 32]) -> SecretKey {
    use sha2::{Digest, Sha256};
    SecretKey {
        grant,
        hash: TokenHash(
            Sha256::new()
                .chain_update(JTI_DOMAIN)
                .chain_update(raw)
                .finalize()
                .into(),
        ),
    }
}

/// The store key a `jti` minted by [`new_jti`] names.
pub(crate) fn record_key(jti: &str) -> Option<SecretKey> {
    if jti.len() != 43 {
        return None;
    }
    let mut raw = [0u8; 32];
    if URL_SAFE_NO_PAD.decode_slice(jti, &mut raw).ok()? != 32 {
        return None;
    }
    let grant = GrantId(raw[..16].try_into().ok()?);
    Some(jti_key(grant, &raw))
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// A JOSE header as parsed: only what validation looks at. Duplicate
/// members are refused by the parser (RFC 7515 §5.2 allows that).
#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Signs `claims` as a compact JWS with `key`, with `typ` and the key's
/// `kid` and `alg` in the header (RFC 7515 §7.1).
pub(crate) fn sign(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Option<String> {
    let header = serde_json::to_vec(&HeaderOut {
        alg: key.algorithm().as_str(),
        typ,
        kid: key.kid(),
    })
    .ok()?;
    let payload = serde_json::to_vec(claims).ok()?;
    let mut out = String::with_capacity((header.len() + payload.len() + 64) * 4 / 3 + 4);
    URL_SAFE_NO_PAD.encode_string(&header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    Some(out)
}

/// Whether `token` has the shape of a compact JWS (three dot-separated
/// parts), the cheap test that routes a presented token to JWT validation.
pub(crate) fn looks_like_jws(token: &str) -> bool {
    token.len() <= MAX_JWT_BYTES && token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Checks a compact JWS's header and signature against `keys` and returns
/// its decoded payload.
fn verify_jws(
    token: &str,
    typ: &str,
    keys: &dyn VerificationKeys,
    now: OffsetDateTime,
) -> Result<Vec<u8>, JwtError> {
    verify_jws_typed(token, &|t| t.eq_ignore_ascii_case(typ), keys, now)
}

/// [`verify_jws`] for a JWT whose `typ` is one of several, or may be
/// absent: `accept_typ` sees the header's `typ` without an
/// `application/` prefix (`""` when absent).
pub(crate) fn verify_jws_typed(
    token: &str,
    accept_typ: &dyn Fn(&str) -> bool,
    keys: &dyn VerificationKeys,
    now: OffsetDateTime,
) -> Result<Vec<u8>, JwtError> {
    if token.len() > MAX_JWT_BYTES {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Malformed)
    };
    let header: HeaderIn =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| JwtError::Malformed)?;
    if header.crit.is_some() {
        return Err(JwtError::CriticalHeader);
    }
    // RFC 7515 §4.1.9: a `typ` of `application/at+jwt` is the same media
    // type; media types compare case-insensitively (RFC 2045 §5.1).
    let header_typ = header.typ.as_deref().unwrap_or("");
    let header_typ = header_typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(header_typ, |_| &header_typ[12..]);
    if !accept_typ(header_typ) {
        return Err(JwtError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let key: std::sync::Arc<VerifyingKey> =
        keys.verifying_key(kid, now).ok_or(JwtError::UnknownKey)?;
    // The key decides the algorithm; the header must agree with it (RFC
    // 8725 §3.1). `none`, `HS256` etc. name no key's algorithm.
    if JwsAlgorithm::from_name(&header.alg) != Some(key.algorithm()) {
        return Err(JwtError::AlgorithmMismatch);
    }
    let signature = decode(signature_b64)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(JwtError::BadSignature);
    }
    decode(payload_b64)
}

/// Validates a JWT access token's signature, header and time claims and
/// its issuer, not its audience: what the issuing server itself checks
/// (introspection and revocation answer for every audience).
pub(crate) fn verify_access_token(
    token: &str,
    keys: &dyn VerificationKeys,
    issuer: &str,
    leeway: Duration,
    now: OffsetDateTime,
) -> Result<AccessTokenClaims, JwtError> {
    let payload = verify_jws(token, ACCESS_TOKEN_TYP, keys, now)?;
    let claims: AccessTokenClaims =
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
    if claims.iss != issuer {
        return Err(JwtError::WrongIssuer);
    }
    let now_s = now.unix_timestamp();
    let leeway_s = leeway.whole_seconds();
    if now_s >= claims.exp.saturating_add(leeway_s) {
        return Err(JwtError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| now_s < nbf.saturating_sub(leeway_s))
    {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims)
}

/// Validates JWT access tokens at a resource server (RFC 9068 §4): the
/// signature against `keys` (the authorization server's own
/// [`KeySet`](crate::KeySet), or a fetched JWKS), `typ: at+jwt`, `iss`,
/// `exp` and `nbf`, and that `aud` names this resource.
///
/// It does not see revocation: a resource server that must refuse a
/// revoked token before it expires asks the issuer (introspection, or the
/// issuer's store through [`Server::verify_bearer`](crate::Server::verify_bearer)).
///
/// ```
/// use std::sync::Arc;
/// use tessera::{AccessTokenValidator, JwsAlgorithm, OsRandom, RotatingKeys};
/// let keys = Arc::new(RotatingKeys::generate(JwsAlgorithm::Es256, &OsRandom));
/// let validator = AccessTokenValidator::new("https://as.example", "https://as.example/api", keys);
/// let now = time::OffsetDateTime::now_utc();
/// assert!(validator.validate("not.a.jwt", now).is_err());
/// ```
pub struct AccessTokenValidator<K> {
    issuer: String,
    audience: String,
    leeway: Duration,
    keys: K,
}

impl<K> fmt::Debug for AccessTokenValidator<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenValidator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl<K: VerificationKeys> AccessTokenValidator<K> {
    /// Accepts tokens of `issuer` for `audience` (this resource server's
    /// identifier, RFC 9068 §4 step 6) signed by one of `keys`. No clock
    /// leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, keys: K) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::ZERO,
            keys,
        }
    }

    /// Allows `leeway` of clock skew on `exp` and `nbf` (RFC 7519 §4.1.4);
    /// keep it small (seconds).
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.max(Duration::ZERO);
        self
    }

    /// The keys.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// The issuer accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience required.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The claims of a bearer token valid at `now`. A token bound to a key
    /// (`cnf`: DPoP, RFC 9449 §6.1) is refused
    /// ([`JwtError::SenderConstrained`]): taken as a bearer token, a stolen
    /// bound token would be as good as an unbound one.
    pub fn validate(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, JwtError> {
        let claims = self.validate_with_binding(token, now)?;
        if claims.cnf.is_some() {
            return Err(JwtError::SenderConstrained);
        }
        Ok(claims)
    }

    /// As [`validate`](Self::validate), but a token bound to a key comes
    /// back with its `cnf`, and the caller **must** then check the request's
    /// DPoP proof against `cnf.jkt` (RFC 9449 §7: `Authorization: DPoP`, a
    /// proof by that key for this request, its `ath` the token's hash, its
    /// `jti` used once: [`verify_dpop_proof`](crate::verify_dpop_proof) and
    /// a replay cache). A resource server in another process is better
    /// served by [`RemoteResource::check_jwt_with_binding`](crate::RemoteResource::check_jwt_with_binding)
    /// and `check_presentation`, which do all of it.
    pub fn validate_with_binding(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, JwtError> {
        let claims = verify_access_token(token, &self.keys, &self.issuer, self.leeway, now)?;
        if !claims.aud.contains(&self.audience) {
            return Err(JwtError::WrongAudience);
        }
        Ok(claims)
    }
}

/// What a server needs to issue JWT access tokens: its keys, which
/// clients get JWTs by default, and how long the JWKS may be cached.
#[derive(Debug, Clone)]
pub(crate) struct JwtIssuing {
    pub(crate) keys: Arc<dyn KeySet>,
    pub(crate) default_format: AccessTokenFormat,
    pub(crate) jwks_max_age: Duration,
}

impl JwtIssuing {
    /// Whether `client`'s access tokens are JWTs: its own choice, else the
    /// server's default.
    pub(crate) fn is_for(&self, client: &Client) -> bool {
        client.access_token_format.unwrap_or(self.default_format) == AccessTokenFormat::Jwt
    }
}

/// A JWT access token being minted, with what re-signing it needs when a
/// grant changes its record after minting (audience, actor, expiry).
#[derive(Debug, Clone)]
pub(crate) struct JwtMint {
    keys: Arc<dyn KeySet>,
    issuer: String,
    jti: String,
}

impl JwtMint {
    /// A new `jti` in `grant`, and the store key of its record.
    pub(crate) fn new(
        issuing: &JwtIssuing,
        issuer: &str,
        grant: GrantId,
        random: &dyn crate::token::Random,
    ) -> (Self, SecretKey) {
        let (jti, key) = new_jti(grant, random);
        let mint = Self {
            keys: Arc::clone(&issuing.keys),
            issuer: issuer.to_owned(),
            jti,
        };
        (mint, key)
    }

    /// The JWT for `record` (RFC 9068 §2.2), signed by the current key.
    /// `None` only if serialization failed, which plain strings and
    /// numbers cannot, or an RS256 signature's randomness (blinding) did.
    pub(crate) fn sign(&self, record: &TokenRecord) -> Option<String> {
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            // §2.2: the resource owner, or the client itself for a token
            // issued to a client acting on its own behalf.
            sub: record
                .subject
                .as_ref()
                .map_or_else(|| record.client_id.to_string(), |s| s.as_str().to_owned()),
            aud: vec![audience_of(record, &self.issuer)],
            exp: record.expires_at.unix_timestamp(),
            iat: record.issued_at.unix_timestamp(),
            jti: self.jti.clone(),
            client_id: record.client_id.to_string(),
            scope: Some(record.scope.to_string()),
            nbf: None,
            act: record
                .actor
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
            cnf: record
                .dpop_jkt
                .clone()
                .map(crate::introspection::Confirmation::jkt),
        };
        sign(
            &self.keys.signing_key(record.issued_at),
            ACCESS_TOKEN_TYP,
            &claims,
        )
    }
}

/// The `aud` of a JWT access token (RFC 9068 §3): the resource the token
/// was granted for (RFC 8707, the default resource when none was asked
/// for), else the issuer itself when the server declares no resources.
fn audience_of(record: &TokenRecord, issuer: &str) -> String {
    record
        .audience
        .as_ref()
        .map_or_else(|| issuer.to_owned(), |a| a.as_str().to_owned())
}

/// The store key of the record of an access token `token`, if it is a JWT
/// signed by one of `issuing`'s keys, of `issuer`, not expired at `now`.
/// The signature is checked before the `jti` is trusted: a `jti` is not a
/// secret.
pub(crate) fn own_record_key(
    issuing: Option<&JwtIssuing>,
    issuer: &str,
    token: &str,
    now: OffsetDateTime,
) -> Option<SecretKey> {
    let issuing = issuing?;
    if !looks_like_jws(token) {
        return None;
    }
    match verify_access_token(token, issuing.keys.as_ref(), issuer, Duration::ZERO, now) {
        Ok(claims) => claims.record_key(),
        Err(e) => {
            tracing::debug!(error = %e, "JWT access token refused");
            None
        }
    }
}

impl Server {
    /// The store key of an access token this server signed (see [`own_record_key`]).
    pub(crate) fn own_jwt_record_key(&self, token: &str) -> Option<SecretKey> {
        own_record_key(self.jwt(), &self.config().issuer, token, self.now())
    }

    /// A validator of this server's JWT access tokens for `audience`, over
    /// its own keys: what a resource server in the same process uses to
    /// check tokens without the store (it then does not see revocation;
    /// [`Server::verify_bearer`] does). `None` when the server has no
    /// signing keys.
    pub fn access_token_validator(
        &self,
        audience: impl Into<String>,
    ) -> Option<AccessTokenValidator<Arc<dyn KeySet>>> {
        self.jwt().map(|j| {
            AccessTokenValidator::new(self.config().issuer.clone(), audience, Arc::clone(&j.keys))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{JwsAlgorithm, KeySet, RotatingKeys};
    use crate::token::{CountingRandom, Random};

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn claims(r: &CountingRandom) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://as".into(),
            sub: "alice".into(),
            aud: vec!["https://as/api".into()],
            exp: 3600,
            iat: 0,
            jti: new_jti(r.grant_id(), r).0,
            client_id: "printshop".into(),
            scope: Some("photos.read profile".into()),
            nbf: None,
            act: None,
            cnf: None,
        }
    }

    #[test]
    fn jti_names_its_record_and_nothing_else() {
        let r = CountingRandom::default();
        let grant = r.grant_id();
        let (jti, key) = new_jti(grant, &r);
        assert_eq!(key.grant, grant);
        assert_eq!(record_key(&jti), Some(key));
        assert_eq!(record_key("short"), None);
        assert_eq!(record_key(&format!("{jti}A")), None);
        // The same 48 bytes as an opaque access token hash elsewhere.
        let opaque = crate::token::Secret::mint(crate::token::TokenKind::Access, grant, [0; 32]);
        assert_ne!(opaque.hash(), key.hash);
    }

    #[test]
    fn an_ed25519_token_may_name_its_alg_as_rfc_9864_does() {
        // RFC 9864 (fully specified algorithms): `Ed25519` names EdDSA with Ed25519; a token so
        // named verifies with an Ed25519 key and never with a P-256 one.
        let r = CountingRandom::default();
        let signed_as = |key: &SigningKey, alg: &str, c: &AccessTokenClaims| {
            let header = serde_json::json!({"alg": alg, "typ": ACCESS_TOKEN_TYP, "kid": key.kid()});
            let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
            out.push('.');
            out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap()));
            let signature = key.sign(out.as_bytes()).unwrap();
            out.push('.');
            out.push_str(&URL_SAFE_NO_PAD.encode(signature));
            out
        };
        let ed = RotatingKeys::generate(JwsAlgorithm::EdDsa, &r);
        let c = claims(&r);
        let token = signed_as(&ed.signing_key(NOW), "Ed25519", &c);
        let v = AccessTokenValidator::new("https://as", "https://as/api", &ed);
        assert_eq!(v.validate(&token, NOW), Ok(c.clone()));
        let ec = RotatingKeys::generate(JwsAlgorithm::Es256, &r);
        let token = signed_as(&ec.signing_key(NOW), "Ed25519", &c);
        let v = AccessTokenValidator::new("https://as", "https://as/api", &ec);
        assert_eq!(v.validate(&token, NOW), Err(JwtError::AlgorithmMismatch));
    }

    #[test]
    fn signed_tokens_validate_for_their_audience() {
        let r = CountingRandom::default();
        for alg in [JwsAlgorithm::Es256, JwsAlgorithm::EdDsa] {
            let keys = RotatingKeys::generate(alg, &r);
            let c = claims(&r);
            let token = sign(&keys.signing_key(NOW), ACCESS_TOKEN_TYP, &c).unwrap();
            assert!(looks_like_jws(&token));
            let v = AccessTokenValidator::new("https://as", "https://as/api", &keys);
            assert_eq!(v.validate(&token, NOW), Ok(c.clone()));
            let other = AccessTokenValidator::new("https://as", "https://as/mcp", &keys);
            assert_eq!(other.validate(&token, NOW), Err(JwtError::WrongAudience));
            let wrong_iss = AccessTokenValidator::new("https://evil", "https://as/api", &keys);
            assert_eq!(wrong_iss.validate(&token, NOW), Err(JwtError::WrongIssuer));
            assert_eq!(
                v.validate(&token, NOW + Duration::hours(1)),
                Err(JwtError::Expired)
            );
            let lenient = AccessTokenValidator::new("https://as", "https://as/api", &keys)
                .with_leeway(Duration::seconds(30));
            assert!(lenient.validate(&token, NOW + Duration::hours(1)).is_ok());
        }
    }
}
