//! `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2, OpenID Connect Core
//! §9): the client authenticates with a JWT it signed with its private key;
//! the server checks it with the public keys the client registered
//! ([`Client::jwks`](crate::Client::jwks), inline: no `jwks_uri` is fetched).

use async_trait::async_trait;
use time::Duration;

use super::{ClientAuthContext, ClientAuthMethod, ClientAuthRequest, Presented, failed};
use crate::assertion::{AssertionError, AssertionRules, AssertionUse, peek_claim};
use crate::client::{AuthMethod, Client, ClientId};
use crate::error::OAuthError;
use crate::keys::{JwsAlgorithm, StaticKeys, VerifyingKey};
use crate::storage::{ReplayKey, ReplayNamespace};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Which `aud` values name this server in a client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AssertionAudience {
    /// The issuer identifier, as the sole value (draft-ietf-oauth-rfc7523bis,
    /// the 2025 fix for audience injection: a client that took a token
    /// endpoint URL from a malicious server's metadata may have signed an
    /// assertion for it; it never signs one for another issuer).
    #[default]
    Issuer,
    /// The issuer, the token endpoint's URL or the pushed authorization
    /// request endpoint's URL, among other values (RFC 7523 §3 item 3 and
    /// RFC 9126 §2 as published), for clients that cannot yet send the
    /// issuer. Open to audience injection: an assertion a client made for
    /// a malicious server that named one of these URLs as its own endpoint
    /// is accepted here.
    IssuerOrTokenEndpoint,
}

/// `private_key_jwt`: `client_assertion_type` =
/// [`CLIENT_ASSERTION_TYPE_JWT_BEARER`] and `client_assertion` = a JWT whose
/// `iss` and `sub` are the `client_id` (RFC 7523 §3 items 1, 2.B), whose
/// `aud` names this server, with `exp` at most
/// [`with_max_lifetime`](Self::with_max_lifetime) ahead (5 minutes by
/// default) and a `jti` used once (kept in the store's replay cache until
/// `exp`), signed ES256, EdDSA or RS256 by a key in the client's `jwks` chosen by
/// `kid` (the key decides the algorithm, never the token's header).
///
/// Not registered by default: add it with
/// [`ServerBuilder::client_auth_method`](crate::ServerBuilder::client_auth_method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyJwt {
    audience: AssertionAudience,
    max_lifetime: Duration,
}

impl Default for PrivateKeyJwt {
    fn default() -> Self {
        Self {
            audience: AssertionAudience::Issuer,
            max_lifetime: Duration::minutes(5),
        }
    }
}

impl PrivateKeyJwt {
    /// The method with its defaults: `aud` the issuer alone, `exp` within 5 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which `aud` values are accepted.
    #[must_use]
    pub fn with_audience(mut self, audience: AssertionAudience) -> Self {
        self.audience = audience;
        self
    }

    /// How far ahead `exp` may be (at least 1 second, at most 1 hour):
    /// every assertion's `jti` is remembered until then.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime.clamp(Duration::seconds(1), Duration::hours(1));
        self
    }
}

#[async_trait]
impl ClientAuthMethod for PrivateKeyJwt {
    fn method(&self) -> AuthMethod {
        AuthMethod::PrivateKeyJwt
    }

    fn signing_algorithms(&self) -> Vec<JwsAlgorithm> {
        vec![
            JwsAlgorithm::Es256,
            JwsAlgorithm::EdDsa,
            JwsAlgorithm::Rs256,
        ]
    }

    fn parameters(&self) -> Option<&'static [&'static str]> {
        Some(&["client_id", "client_assertion", "client_assertion_type"])
    }

    fn presented(&self, request: &ClientAuthRequest<'_>) -> Result<Option<Presented>, OAuthError> {
        let params = request.params;
        let assertion = match (
            params.get("client_assertion_type"),
            params.get("client_assertion"),
        ) {
            (None, None) => return Ok(None),
            // Another assertion type: another method's (or nobody's).
            (Some(t), _) if t != CLIENT_ASSERTION_TYPE_JWT_BEARER => return Ok(None),
            (Some(_), Some(a)) => a,
            // RFC 7521 §4.2: both parameters are required.
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "client_assertion_type without client_assertion",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "client_assertion without client_assertion_type",
                ));
            }
        };
        // RFC 7523 §3 item 2.B: `sub` is the client_id. Read unverified
        // here, only to find the client whose keys verify it.
        let sub = peek_claim(assertion, "sub").ok_or_else(|| {
            OAuthError::invalid_client("malformed client assertion")
                .with_reason(AssertionError::Malformed.reason())
        })?;
        let id = ClientId::new(&sub).ok_or_else(|| {
            OAuthError::invalid_client("malformed client assertion")
                .with_reason(AssertionError::WrongIssuerOrSubject.reason())
        })?;
        // RFC 7521 §4.2: a client_id, if sent, identifies the same client.
        if params.get("client_id").is_some_and(|c| c != id.as_str()) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the client assertion's sub",
            ));
        }
        Ok(Some(Presented::Credentials(id)))
    }

    async fn verify(
        &self,
        ctx: &ClientAuthContext<'_>,
        request: &ClientAuthRequest<'_>,
        client: &Client,
    ) -> Result<(), OAuthError> {
        let token = request
            .params
            .get("client_assertion")
            .ok_or_else(|| failed("no client_assertion"))?;
        let keys = client
            .jwks
            .as_ref()
            .map(|set| {
                StaticKeys::new(
                    set.keys
                        .iter()
                        .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok()),
                )
            })
            .filter(|k| !k.is_empty())
            .ok_or_else(|| failed("client has no usable jwks"))?;
        let mut rules = AssertionRules::for_issuer(ctx.issuer())
            .with_max_lifetime(self.max_lifetime)
            .used_as(AssertionUse::ClientAuthentication);
        if self.audience == AssertionAudience::IssuerOrTokenEndpoint {
            // RFC 9126 §2: the server "MUST accept its issuer identifier,
            // token endpoint URL, or pushed authorization request endpoint
            // URL" at any endpoint.
            let urls = [
                ctx.token_endpoint_url(),
                ctx.pushed_authorization_endpoint_url(),
            ];
            for url in urls.into_iter().flatten() {
                rules = rules.also_accepting(url);
            }
        }
        let refuse = |e: AssertionError| {
            tracing::info!(client = client.id.as_str(), error = %e, "client assertion refused");
            failed("client assertion refused").with_reason(e.reason())
        };
        let assertion = rules.validate(token, &keys, ctx.now).map_err(refuse)?;
        // RFC 7523 §3 items 1, 2.B: both are the client_id.
        if assertion.iss != client.id.as_str() || assertion.sub != client.id.as_str() {
            return Err(refuse(AssertionError::WrongIssuerOrSubject));
        }
        // §3 item 7: each jti once, remembered for as long as the rules
        // would accept the assertion (its exp plus the clock skew).
        let jti = assertion
            .jti
            .as_deref()
            .ok_or_else(|| refuse(AssertionError::MissingJti))?;
        let key = ReplayKey::new(ReplayNamespace::ClientAssertion, client.id.as_str(), jti);
        // A self-registered client brings its own keys: bound what all of
        // them can make the replay cache keep.
        ctx.count_unvetted_assertion(client).await?;
        if !ctx.first_use(key, rules.replay_expiry(&assertion)).await? {
            return Err(refuse(AssertionError::Replayed));
        }
        Ok(())
    }
}
