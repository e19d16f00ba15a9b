//! The device authorization grant (RFC 8628): the device authorization
//! endpoint, user codes, and the verification step the embedder's page
//! drives.
//!
//! A device with no browser (a TV, a CLI) asks the device authorization
//! endpoint for a device code and a user code; the person types the user
//! code on the embedder's verification page, signs in and decides; the
//! device polls the token endpoint with the device code
//! ([`crate::grant::DeviceCodeGrant`]). The server keeps each request only as
//! hashes of both codes, for its short lifetime.

use std::sync::Arc;

use serde::Serialize;

use crate::abuse::{Action, Limited};
use crate::client::{Client, GrantType};
use crate::consent::Decision;
use crate::endpoint::Endpoint;
use crate::error::{OAuthError, Reason};
use crate::grant::resolve_scope;
use crate::http::HttpRequest;
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::server::Server;
use crate::storage::{DeviceRecord, DeviceStatus, Subject};
use crate::token::{Secret, TokenHash, TokenKind};

/// The characters of a user code: consonants only, so no word is spelled
/// and no character is mistaken for another (RFC 8628 §6.1).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (about 34.6 bits).
const LENGTH: usize = 8;

/// A user code, normalised: eight characters of `BCDFGHJKLMNPQRSTVWXZ`.
/// Shown as `XXXX-XXXX`; read case- and dash-insensitively (RFC 8628 §6.1).
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode([u8; LENGTH]);

impl std::fmt::Debug for UserCode {
    /// A live user code is a credential for a few minutes: not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(..)")
    }
}

impl UserCode {
    /// A fresh random code (rejection sampling, so every character is
    /// equally likely).
    pub(crate) fn generate(random: &dyn crate::token::Random) -> Self {
        let mut code = [0u8; LENGTH];
        let mut filled = 0;
        // A source that keeps giving bytes over 239 (a broken or test RNG)
        // must not hang the server: after 64 rounds, take what comes.
        for round in 0..=64 {
            let mut bytes = [0u8; 16];
            random.fill(&mut bytes);
            for b in bytes {
                // 240 = 12 × 20: the bytes above would favour the first letters.
                if (b < 240 || round == 64) && filled < LENGTH {
                    code[filled] = ALPHABET[usize::from(b % 20)];
                    filled += 1;
                }
            }
            if filled == LENGTH {
                break;
            }
        }
        Self(code)
    }

    /// Reads what a person typed: any case, dashes and spaces ignored.
    /// `None` unless it is eight characters of the alphabet.
    pub fn parse(typed: &str) -> Option<Self> {
        let mut code = [0u8; LENGTH];
        let mut n = 0;
        for c in typed.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) || n == LENGTH {
                return None;
            }
            code[n] = upper as u8;
            n += 1;
        }
        (n == LENGTH).then_some(Self(code))
    }

    /// The code as shown to people: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let text: String = self.0.iter().map(|&b| char::from(b)).collect();
        format!("{}-{}", &text[..4], &text[4..])
    }

    /// What the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&format!("user_code:{}", self.display()))
    }
}

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The device code the device polls with.
    pub device_code: String,
    /// The code the person types, `XXXX-XXXX`.
    pub user_code: String,
    /// The embedder's verification page.
    pub verification_uri: String,
    /// The page with the user code filled in (RFC 8628 §3.3.1).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: u32,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// What the verification page shows once a user code is found.
#[derive(Clone)]
#[non_exhaustive]
pub struct DevicePrompt {
    /// The code, normalised, to carry in the consent form.
    pub user_code: String,
    /// The device's client.
    pub client: Arc<Client>,
    /// The scope asked for.
    pub scope: Scope,
    /// The resource the device's tokens will be for (RFC 8707 §2: the one
    /// it named, else the default resource), to show beside the scope: its
    /// tokens are for it alone. `None` when it named none and the server
    /// has no default resource: its tokens then have no audience.
    pub resource: Option<ResourceIndicator>,
    /// The configured words for scope tokens, shared.
    words: crate::scope::ScopeWords,
}

impl DevicePrompt {
    /// Each token of [`scope`](Self::scope) with its description
    /// ([`Config::scopes`](crate::Config::scopes); the token itself where
    /// none is configured), for listing in words. Lent, not copied.
    pub fn scope_descriptions(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.words.describe(&self.scope)
    }
}

impl std::fmt::Debug for DevicePrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePrompt")
            .field("client", &self.client.id)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// Why a typed user code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserCodeError {
    /// No live request has this code (or it is not a code at all).
    #[error("unknown or expired code")]
    Unknown,
    /// Too many wrong codes from this person lately (RFC 8628 §5.1).
    #[error(transparent)]
    Limited(#[from] Limited),
    /// The store failed.
    #[error("{0}")]
    Server(OAuthError),
}

impl Server {
    /// A client that names itself by `client_id` alone, as a device does,
    /// and is registered but not for the device grant (a confidential web
    /// app such as the demo's `printshop`) is told `unauthorized_client`
    /// (RFC 8628 §3.1 uses RFC 6749 §5.2's codes; DEMO-CONTRACT names this
    /// case) rather than `invalid_client`, which would send its developer
    /// looking for a secret that would not help. Client ids are not secret:
    /// this says nothing a front-channel request does not. (RFC 6749 §5.2
    /// words `unauthorized_client` for an authenticated client; the contract
    /// asks it of this unauthenticated case too.)
    async fn device_refusal(
        &self,
        refusal: OAuthError,
        request: &HttpRequest<'_>,
        params: &crate::params::Params,
    ) -> OAuthError {
        if refusal.code != crate::error::ErrorCode::InvalidClient
            || refusal.reason() == Reason::RateLimited
        {
            return refusal;
        }
        // A bare `client_id`: credentials that fail stay `invalid_client`.
        let Some(id) = params.get("client_id") else {
            return refusal;
        };
        if request.authorization.is_some()
            || params.get("client_secret").is_some()
            || params.get("client_assertion").is_some()
        {
            return refusal;
        }
        // A URL-shaped id is a client ID metadata document: looking it up
        // again could fetch the document a second time for a request that
        // failed already (failures are not cached).
        if id.starts_with("https://") || id.starts_with("http://") {
            return refusal;
        }
        match crate::client::lookup_client_str(&self.clients(), id).await {
            Ok(Some(client)) if !client.allows_grant(GrantType::DEVICE_CODE) => {
                OAuthError::unauthorized_client(
                    "the client may not use the device authorization grant",
                )
            }
            _ => refusal,
        }
    }

    /// The device authorization endpoint (RFC 8628 §3.1, §3.2): served by
    /// [`Server::handle`] with [`Endpoint::DeviceAuthorization`].
    pub(crate) async fn device_authorization(
        &self,
        request: &HttpRequest<'_>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        // RFC 8628 §3.1: `client_id`, `scope`, and RFC 8707's `resource`.
        let params =
            self.back_channel_params(request, |_, name| matches!(name, "scope" | "resource"))?;
        let client = match self.authenticate_request(request, &params).await {
            Ok(client) => client,
            Err(e) => return Err(self.device_refusal(e, request, &params).await),
        };
        if !client.allows_grant(GrantType::DEVICE_CODE) {
            return Err(OAuthError::unauthorized_client(
                "the client may not use the device authorization grant",
            ));
        }
        // Public clients ask without a secret: bound what one can make us keep.
        if let Err(limited) = self
            .check_limit(Action::DeviceAuthorization, client.id.as_str())
            .await
        {
            tracing::info!(client = client.id.as_str(), retry_at = %limited.retry_at, "device authorization refused: too many requests");
            // RFC 8628 §3.2 answers with RFC 6749 §5.2's codes; `slow_down`
            // is for polling.
            return Err(OAuthError::new(
                crate::error::ErrorCode::TemporarilyUnavailable,
                "too many device authorization requests; try again later",
            )
            .with_reason(Reason::RateLimited)
            .with_retry_after(limited.retry_after_secs(self.now())));
        }
        let scope = resolve_scope(params.get("scope"), &client.scope)?;
        let now = self.now();
        let config = self.config();
        // RFC 8707 §2: the resource named in this (the device flow's)
        // authorization request, else the default one, is fixed here, where
        // the user is shown it, as the authorization endpoint fixes a code's:
        // the token request may repeat it, not move the consent elsewhere.
        let resource = crate::resource::resolve(
            crate::resource::requested_resource(&params)?,
            &client,
            config,
        )?;
        // A client anybody can act as (a public one, the usual device
        // client, or a self-registered one): one network's share first, so
        // one host cannot spend the budget that the client's users on
        // other hosts need (RFC 6819 §4.4.1.11, RFC 8628 §5.2).
        if client.is_public() || client.is_dynamically_registered() {
            self.count_network(Action::DeviceAuthorization, request.peer)?;
        }
        // Only a valid request counts: an invalid one keeps nothing, and a
        // public client's budget must not be spent by anybody's bad
        // requests in its name (an independent flood audit did).
        self.record_attempt(Action::DeviceAuthorization, client.id.as_str())
            .await;
        let record = DeviceRecord {
            client_id: client.id.clone(),
            scope,
            resource,
            status: DeviceStatus::Pending,
            interval: config.device_poll_interval,
            last_polled_at: None,
            expires_at: now + config.lifetimes.device_code,
        };
        let grant = crate::GrantId::mint(now, self.random());
        let device = Secret::mint(TokenKind::Device, grant, self.random().bytes32());
        // A user code names one live request: on the rare clash, draw again.
        for _ in 0..4 {
            let user_code = UserCode::generate(self.random());
            if self
                .store()
                .put_device(device.key(), user_code.hash(), record.clone(), now)
                .await?
            {
                tracing::info!(client = client.id.as_str(), "device authorization issued");
                let verification_uri = self.device_verification_uri();
                let display = user_code.display();
                let complete = format!(
                    "{verification_uri}?user_code={}",
                    url::form_urlencoded::byte_serialize(display.as_bytes()).collect::<String>()
                );
                return Ok(DeviceAuthorization {
                    device_code: device.into_exposed(),
                    user_code: display,
                    verification_uri,
                    verification_uri_complete: complete,
                    expires_in: config.lifetimes.device_code.whole_seconds(),
                    interval: config.device_poll_interval,
                });
            }
        }
        Err(OAuthError::server_error())
    }

    /// The absolute URL of the embedder's verification page
    /// ([`Server::device_verification_path`]).
    pub fn device_verification_uri(&self) -> String {
        format!(
            "{}{}",
            self.routes_table().origin(),
            self.device_verification_path()
        )
    }

    /// The path the embedder serves its device verification page at (the
    /// issuer's path followed by
    /// [`EndpointPaths::device_verification`](crate::EndpointPaths::device_verification)).
    pub fn device_verification_path(&self) -> &str {
        self.routes_table().device_verification()
    }

    /// Whether the device grant is on ([`crate::ServerBuilder::enable_device_grant`]).
    pub fn device_grant_enabled(&self) -> bool {
        self.routes_table()
            .path_of(Endpoint::DeviceAuthorization)
            .is_some()
    }

    /// Looks up what a person typed on the verification page (RFC 8628
    /// §3.3). `limit_key` names who is typing (the embedder's session, say):
    /// wrong codes count against it, and after too many it is refused for a
    /// while without a lookup (§5.1: user codes can be guessed otherwise).
    /// A code counts before it is looked up, so a burst of concurrent
    /// guesses cannot all pass the check while the lookups wait on the
    /// store; a right one is then taken back.
    pub async fn device_prompt(
        &self,
        typed: &str,
        limit_key: &str,
    ) -> Result<DevicePrompt, UserCodeError> {
        self.check_limit(Action::UserCodeEntry, limit_key).await?;
        self.record_attempt(Action::UserCodeEntry, limit_key).await;
        let now = self.now();
        let found = match UserCode::parse(typed) {
            Some(code) => {
                let record = self
                    .store()
                    .device_by_user_code(code.hash(), now)
                    .await
                    .map_err(|e| server_fault(e.into()))?;
                record.map(|r| (code, r))
            }
            None => None,
        };
        let Some((code, record)) = found else {
            return Err(UserCodeError::Unknown);
        };
        if record.status != DeviceStatus::Pending {
            return Err(UserCodeError::Unknown);
        }
        self.forgive_attempt(Action::UserCodeEntry, limit_key);
        let client = self
            .lookup_client(&record.client_id)
            .await
            .map_err(|e| server_fault(e.into()))?
            .ok_or(UserCodeError::Unknown)?;
        Ok(DevicePrompt {
            user_code: code.display(),
            client,
            words: self.scope_words(),
            scope: record.scope,
            resource: record.resource,
        })
    }

    /// Records the signed-in `owner`'s decision for a user code (RFC 8628
    /// §3.3). `Ok(false)` when the code is no longer pending (decided in
    /// another tab, or expired).
    ///
    /// Call it with a code [`device_prompt`](Self::device_prompt) accepted
    /// in the same session. Should a page post codes here directly, the
    /// guessing stays bounded all the same (§5.1): a code that decides
    /// nothing counts against `owner` under [`Action::UserCodeEntry`], and
    /// once over the limit the call is refused with
    /// `temporarily_unavailable` without a lookup.
    pub async fn device_decide(
        &self,
        user_code: &str,
        owner: &Subject,
        decision: Decision,
    ) -> Result<bool, OAuthError> {
        if let Err(limited) = self
            .check_limit(Action::UserCodeEntry, owner.as_str())
            .await
        {
            tracing::info!(retry_at = %limited.retry_at, "device decision refused: too many unknown codes");
            return Err(OAuthError::new(
                crate::error::ErrorCode::TemporarilyUnavailable,
                "too many unknown codes; try again later",
            )
            .with_reason(crate::error::Reason::RateLimited));
        }
        let Some(code) = UserCode::parse(user_code) else {
            self.record_attempt(Action::UserCodeEntry, owner.as_str())
                .await;
            return Ok(false);
        };
        let status = match decision {
            Decision::Allow => DeviceStatus::Approved {
                subject: owner.clone(),
            },
            Decision::Deny => DeviceStatus::Denied,
        };
        let decided = self
            .store()
            .decide_device(code.hash(), status, self.now())
            .await
            .map_err(|e| {
                let e = OAuthError::from(e);
                e.log("device decision could not be stored");
                e
            })?;
        if decided {
            tracing::info!(decision = ?decision, "device authorization decided");
        } else {
            self.record_attempt(Action::UserCodeEntry, owner.as_str())
                .await;
        }
        Ok(decided)
    }
}

fn server_fault(e: OAuthError) -> UserCodeError {
    e.log("user code could not be looked up");
    UserCodeError::Server(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::OsRandom;

    #[test]
    fn user_codes_use_the_alphabet_and_read_loosely_rfc8628_6_1() {
        let code = UserCode::generate(&OsRandom);
        let shown = code.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        assert!(
            shown
                .bytes()
                .filter(|&b| b != b'-')
                .all(|b| ALPHABET.contains(&b))
        );
        let loose = shown.to_lowercase().replace('-', " ");
        assert_eq!(UserCode::parse(&loose), Some(code.clone()));
        assert_eq!(UserCode::parse(&shown.replace('-', "")), Some(code));
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "BCDF-GHJA",
            "ÉCDF-GHJK",
            "BCDF_GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_letter_is_drawn() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.extend(UserCode::generate(&OsRandom).0);
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }
}
