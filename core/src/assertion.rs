//! JWT assertions (RFC 7523 §3, RFC 7521): the rules shared by
//! `private_key_jwt` client authentication (RFC 7523 §2.2) and the JWT
//! bearer grant (RFC 7523 §2.1), for the core and for grant crates.
//!
//! [`AssertionRules::validate`] checks, in this order: the compact JWS and
//! its signature against the issuer's keys (the key is found by `kid` and
//! decides the algorithm: `alg: none`, the HMAC family or another key
//! type's algorithm select nothing, RFC 8725 §3.1), the `typ` (absent or
//! `JWT`, and `client-authentication+jwt` where a client authenticates:
//! an access token `at+jwt` or a DPoP proof is never an assertion, RFC
//! 8725 §3.11, §3.12), then §3's claims: `iss`
//! and `sub` present, `aud` naming this server, `exp` present and not
//! passed, nor too far ahead, `nbf` and `iat` sane. `jti` is returned for
//! the caller's replay cache (§3 item 7: the server "MAY ensure that JWTs
//! are not replayed"; Tessera's callers always do, until `exp`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::error::Reason;
use crate::jwt::{JwtError, MAX_JWT_BYTES};
use crate::keys::VerificationKeys;

/// The JWT bearer grant's `grant_type` (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What the validated claims say (RFC 7519 §4.1). Time claims are seconds
/// since the epoch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JwtAssertion {
    /// `iss`: who made the assertion (the client, for client authentication).
    pub iss: String,
    /// `sub`: whom it is about (the client itself, or a user).
    pub sub: String,
    /// `aud`, as one list.
    pub aud: Vec<String>,
    /// `exp`.
    pub exp: i64,
    /// `iat`, if present.
    pub iat: Option<i64>,
    /// `nbf`, if present.
    pub nbf: Option<i64>,
    /// `jti`, if present.
    pub jti: Option<String>,
    /// Every other claim, for the caller's own rules.
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl JwtAssertion {
    /// Its `exp` as a time. Rules with clock skew accept it for a while
    /// after this: a replay cache keeps its `jti` until
    /// [`AssertionRules::replay_expiry`], not until `exp`.
    pub fn expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.exp).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Why an assertion was refused: `invalid_client` for client
/// authentication, `invalid_grant` for the bearer grant (RFC 7523 §3.1);
/// the variants are for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// Not a compact JWS with JSON header and claims of the right types,
    /// or longer than [`MAX_JWT_BYTES`].
    #[error("malformed assertion")]
    Malformed,
    /// The JWS itself failed: unknown `kid`, `alg` not the key's (`none`,
    /// HMAC), bad signature, a `crit` header, or a `typ` that is not an
    /// assertion's.
    #[error("assertion signature: {0}")]
    Signature(JwtError),
    /// `iss` or `sub` missing, or not the expected value.
    #[error("wrong iss or sub")]
    WrongIssuerOrSubject,
    /// `aud` does not name this server (alone, when that is required).
    #[error("wrong audience")]
    WrongAudience,
    /// No `exp` (RFC 7523 §3 item 4: required).
    #[error("no exp")]
    MissingExpiry,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// `exp` further ahead than the rules allow.
    #[error("exp too far in the future")]
    ExpiresTooLate,
    /// Before `nbf`, or `iat` in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` longer ago than the rules allow.
    #[error("issued too long ago")]
    TooOld,
    /// No `jti` where the rules require one.
    #[error("no jti")]
    MissingJti,
    /// The `jti` was seen before (a replay).
    #[error("replayed jti")]
    Replayed,
}

impl AssertionError {
    /// The [`Reason`] an error built from this one carries.
    pub fn reason(self) -> Reason {
        match self {
            Self::Malformed => Reason::AssertionMalformed,
            Self::Signature(_) => Reason::AssertionSignatureInvalid,
            Self::WrongIssuerOrSubject => Reason::AssertionIssuerMismatch,
            Self::WrongAudience => Reason::AssertionAudienceMismatch,
            Self::MissingExpiry | Self::Expired | Self::ExpiresTooLate => Reason::AssertionExpired,
            Self::NotYetValid | Self::TooOld | Self::MissingJti => Reason::AssertionTimeInvalid,
            Self::Replayed => Reason::AssertionReplayed,
        }
    }
}

/// The RFC 7523 §3 checks an assertion must pass, with Tessera's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssertionRules {
    /// The `aud` values that name this server.
    pub audiences: Vec<String>,
    /// Whether `aud` must be exactly one value (draft-ietf-oauth-rfc7523bis:
    /// an assertion with several audiences can be replayed at each).
    pub sole_audience: bool,
    /// How far ahead `exp` may be (RFC 7523 §3 item 4 lets the server
    /// refuse long-lived assertions; each is remembered until `exp`).
    pub max_lifetime: Duration,
    /// How long ago `iat` may be, when present (§3 item 6).
    pub max_age: Duration,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (§3 items 4–6).
    pub leeway: Duration,
    /// Whether `jti` is required.
    pub require_jti: bool,
    /// What the assertion is presented as, which decides the `typ`s it
    /// may carry.
    pub used_as: AssertionUse,
}

/// What an assertion is presented as. Each use accepts its own `typ`s
/// (RFC 8725 §3.12, mutually exclusive validation rules), so a JWT made
/// to authenticate a client is never taken as an authorization grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AssertionUse {
    /// Client authentication (RFC 7523 §2.2): `typ` absent, `JWT`, or
    /// `client-authentication+jwt` (draft-ietf-oauth-rfc7523bis).
    ClientAuthentication,
    /// An authorization grant (RFC 7523 §2.1): `typ` absent or `JWT`. The
    /// default, as the narrower rule.
    #[default]
    AuthorizationGrant,
}

impl AssertionRules {
    /// Accepts an assertion whose sole `aud` is `issuer` (the 2025
    /// audience-injection fix of draft-ietf-oauth-rfc7523bis), that
    /// expires within 5 minutes, was issued at most 5 minutes ago, and has
    /// a `jti`; 30 seconds of clock skew; checked as an authorization grant
    /// ([`used_as`](Self::used_as) for client authentication).
    pub fn for_issuer(issuer: impl Into<String>) -> Self {
        Self {
            audiences: vec![issuer.into()],
            sole_audience: true,
            max_lifetime: Duration::minutes(5),
            max_age: Duration::minutes(5),
            leeway: Duration::seconds(30),
            require_jti: true,
            used_as: AssertionUse::AuthorizationGrant,
        }
    }

    /// Checks the assertion as `used_as` is presented (its `typ`).
    #[must_use]
    pub fn used_as(mut self, used_as: AssertionUse) -> Self {
        self.used_as = used_as;
        self
    }

    /// Also accepts `audience` (e.g. the token endpoint's URL, RFC 7523 §3
    /// item 3), and `aud` holding several values of which one is accepted.
    /// Prefer the issuer alone: an assertion made for a URL an attacker's
    /// metadata named can be replayed here.
    #[must_use]
    pub fn also_accepting(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self.sole_audience = false;
        self
    }

    /// Allows `exp` up to `max_lifetime` ahead.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Until when a replay cache must remember `assertion`'s `jti` (RFC
    /// 7523 §3 item 7): until these rules would refuse it as expired,
    /// `exp` plus the allowed clock skew. Remembering it only until `exp`
    /// would let the very assertion be used again in the skew window, and
    /// one accepted after its `exp` (within the skew) at once.
    pub fn replay_expiry(&self, assertion: &JwtAssertion) -> OffsetDateTime {
        let until = assertion
            .exp
            .saturating_add(self.leeway.whole_seconds().max(0));
        OffsetDateTime::from_unix_timestamp(until).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Validates `token` at `now`: signature by one of `keys`, `typ`, and
    /// the §3 claims. `iss` and `sub` are returned for the caller to
    /// compare (they must be the `client_id` for client authentication).
    pub fn validate(
        &self,
        token: &str,
        keys: &dyn VerificationKeys,
        now: OffsetDateTime,
    ) -> Result<JwtAssertion, AssertionError> {
        let accept_typ: &dyn Fn(&str) -> bool = match self.used_as {
            AssertionUse::ClientAuthentication => &client_authentication_typ,
            AssertionUse::AuthorizationGrant => &authorization_grant_typ,
        };
        let payload =
            crate::jwt::verify_jws_typed(token, accept_typ, keys, now).map_err(|e| match e {
                JwtError::Malformed => AssertionError::Malformed,
                other => AssertionError::Signature(other),
            })?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| AssertionError::Malformed)?;
        let assertion = claims.into_assertion()?;
        self.check(&assertion, now)?;
        Ok(assertion)
    }

    fn check(&self, a: &JwtAssertion, now: OffsetDateTime) -> Result<(), AssertionError> {
        let ours = |aud: &String| self.audiences.contains(aud);
        let aud_ok = if self.sole_audience {
            a.aud.len() == 1 && a.aud.iter().all(ours)
        } else {
            a.aud.iter().any(ours)
        };
        if !aud_ok {
            return Err(AssertionError::WrongAudience);
        }
        let now = now.unix_timestamp();
        let leeway = self.leeway.whole_seconds();
        if now >= a.exp.saturating_add(leeway) {
            return Err(AssertionError::Expired);
        }
        if a.exp > now.saturating_add(self.max_lifetime.whole_seconds()) {
            return Err(AssertionError::ExpiresTooLate);
        }
        if a.nbf.is_some_and(|nbf| now < nbf.saturating_sub(leeway)) {
            return Err(AssertionError::NotYetValid);
        }
        if let Some(iat) = a.iat {
            if iat > now.saturating_add(leeway) {
                return Err(AssertionError::NotYetValid);
            }
            if iat < now.saturating_sub(self.max_age.whole_seconds()) {
                return Err(AssertionError::TooOld);
            }
        }
        if self.require_jti && a.jti.is_none() {
            return Err(AssertionError::MissingJti);
        }
        Ok(())
    }
}

/// The `typ`s a grant assertion may carry: none (RFC 7523 sets none) or
/// `JWT` (RFC 7519 §5.1).
fn authorization_grant_typ(typ: &str) -> bool {
    typ.is_empty() || typ.eq_ignore_ascii_case("JWT")
}

/// The `typ`s a client assertion may carry: a grant's, or
/// `client-authentication+jwt` (draft-ietf-oauth-rfc7523bis).
fn client_authentication_typ(typ: &str) -> bool {
    authorization_grant_typ(typ) || typ.eq_ignore_ascii_case("client-authentication+jwt")
}

/// A string claim of a JWT (`iss`, `sub`), read WITHOUT checking
/// anything: to choose whose keys verify it (the client's, a trusted
/// issuer's). Never trust it before [`AssertionRules::validate`] succeeds.
pub fn peek_claim(token: &str, name: &str) -> Option<String> {
    if token.len() > MAX_JWT_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    match claims.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The claims as they arrive; `aud` a string or an array (RFC 7519 §4.1.3).
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date_down")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date_up")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date_up")]
    nbf: Option<i64>,
    jti: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// A NumericDate (RFC 7519 §2: seconds since the epoch, "non-integer
/// values can be represented") as whole seconds, a fraction rounded by
/// `round`; `None` for `null` or absent, an error for anything but a
/// finite number in range.
fn numeric_date<'de, D: serde::Deserializer<'de>>(
    d: D,
    round: fn(f64) -> f64,
) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(whole) = n.as_i64() {
        return Ok(Some(whole));
    }
    // Within ±2^53 every whole `f64` is exact, and `as` cannot saturate.
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    match n.as_f64().map(round) {
        Some(secs) if secs.is_finite() && secs.abs() <= LIMIT => Ok(Some(secs as i64)),
        _ => Err(serde::de::Error::custom("NumericDate out of range")),
    }
}

/// `exp`: a fraction rounds down, so the assertion expires no later.
fn numeric_date_down<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d, f64::floor)
}

/// `iat`, `nbf`: a fraction rounds up, so the assertion is valid no sooner.
fn numeric_date_up<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d, f64::ceil)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Claims {
    fn into_assertion(self) -> Result<JwtAssertion, AssertionError> {
        let (Some(iss), Some(sub)) = (self.iss, self.sub) else {
            return Err(AssertionError::WrongIssuerOrSubject);
        };
        let aud = match self.aud {
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(a)) => a,
            None => return Err(AssertionError::WrongAudience),
        };
        let exp = self.exp.ok_or(AssertionError::MissingExpiry)?;
        Ok(JwtAssertion {
            iss,
            sub,
            aud,
            exp,
            iat: self.iat,
            nbf: self.nbf,
            jti: self.jti.filter(|j| !j.is_empty()),
            other: self.other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{JwsAlgorithm, SigningKey, StaticKeys};
    use crate::token::OsRandom;
    use serde_json::json;

    const AS: &str = "https://as.example";
    const NOW: i64 = 1_800_000_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::generate(JwsAlgorithm::Es256, &OsRandom)
    }

    fn claims() -> serde_json::Value {
        json!({"iss": "app", "sub": "app", "aud": AS, "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    fn check(key: &SigningKey, token: &str) -> Result<JwtAssertion, AssertionError> {
        let keys = StaticKeys::new([key.verifying_key().as_ref().clone()]);
        AssertionRules::for_issuer(AS).validate(token, &keys, now())
    }

    fn signed(key: &SigningKey, claims: &serde_json::Value) -> String {
        key.sign_jwt("JWT", claims).unwrap()
    }

    #[test]
    fn a_good_assertion_passes_rfc7523_3() {
        let k = key();
        let a = check(&k, &signed(&k, &claims())).unwrap();
        assert_eq!((a.iss.as_str(), a.sub.as_str()), ("app", "app"));
        assert_eq!(a.jti.as_deref(), Some("j1"));
        assert_eq!(
            peek_claim(&signed(&k, &claims()), "sub").as_deref(),
            Some("app")
        );
        assert_eq!(peek_claim(&signed(&k, &claims()), "exp"), None);
        assert_eq!(peek_claim("a.b.c", "sub"), None);
    }

    #[test]
    fn each_claim_rule_rfc7523_3() {
        let k = key();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims();
            f(&mut c);
            check(&k, &signed(&k, &c)).err()
        };
        use AssertionError as E;
        assert_eq!(
            with(&|c| c["aud"] = json!("https://evil.example")),
            Some(E::WrongAudience)
        );
        // The token endpoint URL is not the issuer: refused by default.
        assert_eq!(
            with(&|c| c["aud"] = json!("https://as.example/token")),
            Some(E::WrongAudience)
        );
        // Several audiences: refused by default (rfc7523bis).
        assert_eq!(
            with(&|c| c["aud"] = json!([AS, "https://other.example"])),
            Some(E::WrongAudience)
        );
        assert_eq!(with(&|c| c["aud"] = json!([AS])), None);
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            Some(E::WrongAudience)
        );
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Some(E::MissingExpiry)
        );
        assert_eq!(with(&|c| c["exp"] = json!(NOW - 31)), Some(E::Expired));
        assert_eq!(
            with(&|c| c["exp"] = json!(NOW + 3600)),
            Some(E::ExpiresTooLate)
        );
        assert_eq!(with(&|c| c["nbf"] = json!(NOW + 120)), Some(E::NotYetValid));
        assert_eq!(with(&|c| c["iat"] = json!(NOW + 120)), Some(E::NotYetValid));
        assert_eq!(with(&|c| c["iat"] = json!(NOW - 3600)), Some(E::TooOld));
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Some(E::MissingJti)
        );
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            Some(E::WrongIssuerOrSubject)
        );
        assert_eq!(with(&|c| c["exp"] = json!("soon")), Some(E::Malformed));
        assert_eq!(with(&|c| c["exp"] = json!(1e300)), Some(E::Malformed));
    }

    /// RFC 7519 §2: a NumericDate may have a fraction. It is taken to the
    /// safe side: `exp` down, `iat` and `nbf` up.
    #[test]
    fn fractional_numeric_dates_are_dates_rfc7519_2() {
        let k = key();
        let mut c = claims();
        c["exp"] = json!(NOW as f64 + 60.75);
        c["iat"] = json!(NOW as f64 - 0.5);
        c["nbf"] = json!(NOW as f64 - 0.25);
        let a = check(&k, &signed(&k, &c)).unwrap();
        assert_eq!((a.exp, a.iat, a.nbf), (NOW + 60, Some(NOW), Some(NOW)));
        c["exp"] = json!(NOW as f64 - 30.5);
        assert_eq!(
            check(&k, &signed(&k, &c)).err(),
            Some(AssertionError::Expired)
        );
    }

    #[test]
    fn endpoint_audience_only_when_allowed() {
        let k = key();
        let keys = StaticKeys::new([k.verifying_key().as_ref().clone()]);
        let mut c = claims();
        c["aud"] = json!(["https://as.example/token", "x"]);
        let rules = AssertionRules::for_issuer(AS).also_accepting("https://as.example/token");
        assert!(rules.validate(&signed(&k, &c), &keys, now()).is_ok());
    }

    #[test]
    fn signature_rules_rfc8725_3_1() {
        let k = key();
        let other = key();
        let token = signed(&k, &claims());
        // Another key: unknown kid.
        assert!(matches!(
            check(&other, &token),
            Err(AssertionError::Signature(JwtError::UnknownKey))
        ));
        // A tampered payload.
        let mut parts: Vec<&str> = token.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"iss":"app","sub":"admin","aud":AS,"exp":NOW+60,"jti":"x"}))
                .unwrap(),
        );
        parts[1] = &evil;
        assert!(matches!(
            check(&k, &parts.join(".")),
            Err(AssertionError::Signature(JwtError::BadSignature))
        ));
        // alg none and HS256 with the same kid.
        for alg in ["none", "HS256", "EdDSA", "Ed25519"] {
            let header =
                URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, k.kid()));
            let forged = format!("{header}.{}.", token.split('.').nth(1).unwrap());
            assert!(
                matches!(
                    check(&k, &forged),
                    Err(AssertionError::Signature(JwtError::AlgorithmMismatch))
                ),
                "{alg}"
            );
        }
        // An access token is not an assertion (explicit typing).
        let at = k.sign_jwt("at+jwt", &claims()).unwrap();
        assert!(matches!(
            check(&k, &at),
            Err(AssertionError::Signature(JwtError::WrongType))
        ));
        // A client's authentication assertion is one only where a client
        // authenticates (RFC 8725 §3.12), which is not the default.
        let client_auth = k.sign_jwt("client-authentication+jwt", &claims()).unwrap();
        assert!(matches!(
            check(&k, &client_auth),
            Err(AssertionError::Signature(JwtError::WrongType))
        ));
        assert!(
            AssertionRules::for_issuer(AS)
                .used_as(AssertionUse::ClientAuthentication)
                .validate(
                    &client_auth,
                    &StaticKeys::new([k.verifying_key().as_ref().clone()]),
                    now()
                )
                .is_ok()
        );
        assert_eq!(check(&k, "a.b"), Err(AssertionError::Malformed));
        assert_eq!(
            check(&k, &"a".repeat(MAX_JWT_BYTES + 1)),
            Err(AssertionError::Malformed)
        );
    }
}
