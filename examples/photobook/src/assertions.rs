//! JWT assertions in the demo (RFC 7523): `private_key_jwt` client
//! authentication, always on, and the JWT bearer grant, on with
//! `--trust-assertion-issuer ISSUER=JWKS_FILE` (additions to DEMO-CONTRACT:
//! the seeded clients are unchanged; new clients use them by registering
//! dynamically).
//!
//! - Any client may register with `token_endpoint_auth_method`
//!   `private_key_jwt` and its public keys in `jwks` (RFC 7591 §2), then
//!   authenticate at the token, revocation, introspection and PAR endpoints
//!   with a signed `client_assertion` (RFC 7523 §2.2).
//! - With `--trust-assertion-issuer`, the JWT bearer grant
//!   (`urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523 §2.1) is
//!   registered through the public grant trait (crate `tessera-jwt-bearer`),
//!   trusting assertions of ISSUER signed by a key of the JWK Set in
//!   JWKS_FILE whose `sub` is a demo user (`alice`, `bob`); dynamic
//!   registration then also allows that grant type.

use tessera::{Jwk, ServerBuilder, Subject};
use tessera_jwt_bearer::{GRANT_TYPE, JwtBearerGrant, TrustedIssuer};

use crate::users::Users;

/// An issuer whose JWT bearer assertions the demo accepts
/// (`--trust-assertion-issuer ISSUER=JWKS_FILE`).
#[derive(Debug, Clone)]
pub struct TrustedAssertionIssuer {
    /// The issuer identifier (the assertions' `iss`).
    pub issuer: String,
    /// Its public keys.
    pub keys: Vec<Jwk>,
}

/// Parses `ISSUER=JWKS_FILE`: the file is a JWK Set of P-256 or Ed25519
/// public keys with `kid`s.
pub fn parse_trusted_issuer(text: &str) -> Result<TrustedAssertionIssuer, String> {
    let (issuer, path) = text
        .split_once('=')
        .filter(|(i, p)| !i.is_empty() && !p.is_empty())
        .ok_or("expected ISSUER=JWKS_FILE")?;
    let json = crate::config::read_flag_file(path)?;
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let set: Set =
        serde_json::from_slice(&json).map_err(|e| format!("{path}: not a JWK Set: {e}"))?;
    if set.keys.is_empty() {
        return Err(format!("{path}: the JWK Set holds no key"));
    }
    // A private key here means the issuer's secret was handed out.
    if set.keys.iter().any(|k| k.contains_key("d")) {
        return Err(format!(
            "{path}: the JWK Set holds a private key (\"d\"): give the public keys only"
        ));
    }
    let keys = set
        .keys
        .into_iter()
        .map(|k| serde_json::from_value::<Jwk>(serde_json::Value::Object(k)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: not a JWK Set: {e}"))?;
    // Refused now rather than at the first assertion.
    TrustedIssuer::from_jwks(issuer, &keys).map_err(|e| format!("{path}: {e}"))?;
    Ok(TrustedAssertionIssuer {
        issuer: issuer.to_owned(),
        keys,
    })
}

/// Registers the JWT bearer grant trusting `issuers` (nothing without
/// any), its subjects mapped to the demo's users, and lets dynamically
/// registered clients use it.
pub fn with_jwt_bearer(
    builder: ServerBuilder,
    issuers: &[TrustedAssertionIssuer],
) -> ServerBuilder {
    if issuers.is_empty() {
        return builder;
    }
    let users = Users::seeded();
    let mut grant = JwtBearerGrant::new(move |_issuer: &str, sub: &str| {
        users.exists(sub).then(|| Subject::new(sub))
    });
    for i in issuers {
        match TrustedIssuer::from_jwks(i.issuer.clone(), &i.keys) {
            Ok(trusted) => grant = grant.trust(trusted),
            Err(e) => {
                tracing::error!(issuer = %i.issuer, error = %e, "assertion issuer not trusted")
            }
        }
    }
    builder
        .grant(grant)
        .enable_dynamic_registration(crate::registration_policy().with_grant_types([
            tessera::GrantType::AUTHORIZATION_CODE,
            tessera::GrantType::REFRESH_TOKEN,
            GRANT_TYPE,
        ]))
}
