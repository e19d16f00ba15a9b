//! `--access-tokens opaque|jwt` and `--signing-key FILE` (DEMO-CONTRACT
//! "Processes"): which access tokens the provider issues.
//!
//! In `jwt` mode every access token is an RFC 9068 JWT signed with ES256
//! (or the algorithm of `--signing-key`), its key published at `jwks_uri`.
//! JWTs are stored like opaque tokens, so every rule of the contract holds
//! in both modes: the provider's own `/api/photos` and `/mcp` check the
//! store, and a revoked JWT is refused there and inactive at introspection.

use std::sync::Arc;

use tessera::{JwsAlgorithm, KeySet, OsRandom, RotatingKeys, SigningKey};

use crate::{Args, Demo, StartError, server_builder, store};

/// The access-token format of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccessTokens {
    /// Opaque handles (`tsa_...`) that only the provider's store resolves.
    #[default]
    Opaque,
    /// Signed JWTs (RFC 9068), verifiable with the provider's JWKS.
    Jwt,
}

/// A private key read from a PEM file for `--signing-key`.
#[derive(Debug, Clone)]
pub struct SigningKeyFile(pub Arc<SigningKey>);

/// Reads and validates `--signing-key FILE`: a PKCS#8 (or SEC1) PEM P-256
/// or Ed25519 private key. Instances that share a store and serve the same
/// clients must share the key, so each accepts the others' tokens.
pub fn parse_signing_key(path: &str) -> Result<SigningKeyFile, String> {
    let pem = String::from_utf8(crate::config::read_flag_file(path)?)
        .map_err(|_| format!("{path}: not a PEM file"))?;
    SigningKey::from_pem(&pem, None)
        .map(|k| SigningKeyFile(Arc::new(k)))
        .map_err(|e| format!("{path}: {e}"))
}

/// The signing keys: the `--signing-key`, or a P-256 key generated at
/// start (its tokens then verify only while this process runs). Published
/// at `jwks_uri` in both modes, as DEMO-CONTRACT's discovery list asks
/// (`jwks_uri` "once signed tokens exist"); in opaque mode nothing is
/// signed with them.
pub fn signing_keys(args: &Args) -> Arc<RotatingKeys> {
    match &args.signing_key {
        Some(SigningKeyFile(key)) => Arc::new(RotatingKeys::new(Arc::clone(key))),
        None => generated_keys(),
    }
}

/// A P-256 key generated now, as the only signing key.
pub fn generated_keys() -> Arc<RotatingKeys> {
    Arc::new(RotatingKeys::new(Arc::new(SigningKey::generate(
        JwsAlgorithm::Es256,
        &OsRandom,
    ))))
}

impl Demo {
    /// The demo as `args` ask for it, at `issuer`: its store opened (and
    /// seeded), opaque or JWT access tokens.
    pub async fn start_for(args: &Args, issuer: &str) -> Result<Self, StartError> {
        let store = store::open(&args.store).await?;
        let mut builder = crate::assertions::with_jwt_bearer(
            server_builder(issuer, store),
            &args.trust_assertion_issuer,
        );
        builder = crate::client_metadata::enable(builder, args)?;
        let keys: Arc<dyn KeySet> = signing_keys(args);
        builder = match args.access_tokens {
            AccessTokens::Jwt => builder.jwt_access_tokens(keys),
            AccessTokens::Opaque => builder.signing_keys(keys),
        };
        Self::new(builder.build()?)
    }
}
