//! Grant types behind one trait (RFC 6749 §4, §6; extensions by URI, §4.5).
//!
//! The built-in grants implement [`GrantHandler`] exactly as a custom grant
//! would; the server dispatches on `grant_type` after authenticating the
//! client and checking it is registered for that grant.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use std::borrow::Cow;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::client::Client;
use crate::config::Config;
use crate::error::OAuthError;
use crate::params::Params;
use crate::resource::ResourceIndicator;
use crate::scope::Scope;
use crate::storage::{Actor, NewTokens, Store, Subject, TokenRecord};
use crate::token::{GrantId, Random, Secret, SecretKey, TokenKind};

pub use authorization_code::AuthorizationCodeGrant;
pub use client_credentials::ClientCredentialsGrant;
pub use device_code::DeviceCodeGrant;
pub use refresh_token::RefreshTokenGrant;

/// What a grant handler may use: the store, the time, randomness and configuration.
#[non_exhaustive]
pub struct GrantContext<'a> {
    /// The storage backend.
    pub store: &'a dyn Store,
    /// The time of this request.
    pub now: OffsetDateTime,
    /// Server configuration.
    pub config: &'a Config,
    /// Randomness for new secrets.
    pub random: &'a dyn Random,
    /// The server's JWT signing keys and format, if it has keys.
    jwt: Option<&'a crate::jwt::JwtIssuing>,
    /// The thumbprint of the key of the request's checked DPoP proof
    /// (RFC 9449 §5), if it came with one.
    dpop_jkt: Option<&'a str>,
}

impl std::fmt::Debug for GrantContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantContext")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> GrantContext<'a> {
    /// A new grant's id, ordered by when it began ([`GrantId::mint`]):
    /// what a grant type hands [`GrantStore::issue_new_grant`](crate::storage::GrantStore::issue_new_grant).
    pub fn new_grant_id(&self) -> GrantId {
        GrantId::mint(self.now, self.random)
    }

    /// A context for one request.
    pub fn new(
        store: &'a dyn Store,
        now: OffsetDateTime,
        config: &'a Config,
        random: &'a dyn Random,
    ) -> Self {
        Self {
            store,
            now,
            config,
            random,
            jwt: None,
            dpop_jkt: None,
        }
    }

    /// The context of a request that came with a valid DPoP proof by the
    /// key whose RFC 7638 thumbprint is `jkt` (RFC 9449 §5): tokens minted
    /// in it are bound to that key.
    #[must_use]
    pub fn with_dpop_jkt(mut self, jkt: Option<&'a str>) -> Self {
        self.dpop_jkt = jkt;
        self
    }

    /// The thumbprint of the key of the request's DPoP proof, when it came
    /// with a valid one (RFC 9449 §5): what [`mint_tokens`](Self::mint_tokens)
    /// binds tokens to. A grant continuing a bound grant (a refresh token
    /// bound to a key) compares it with the binding.
    pub fn dpop_jkt(&self) -> Option<&'a str> {
        self.dpop_jkt
    }

    /// The context with the server's JWT signing keys, for clients whose
    /// access tokens are JWTs (RFC 9068).
    pub(crate) fn with_jwt(mut self, jwt: Option<&'a crate::jwt::JwtIssuing>) -> Self {
        self.jwt = jwt;
        self
    }

    /// Mints a new secret of `kind` in `grant`.
    pub fn mint(&self, kind: TokenKind, grant: GrantId) -> Secret {
        Secret::mint(kind, grant, self.random.bytes32())
    }

    /// The audience of a new grant's tokens (RFC 8707 §2): the request's
    /// `resource`, or the server's default resource when it names none.
    /// `invalid_target` when `resource` is malformed or sent more than
    /// once, or names a resource the server does not know or `client` may
    /// not have. For grants that start a grant (client credentials, an
    /// extension grant); a grant that continues one keeps its audience.
    pub fn resolve_audience(
        &self,
        client: &Client,
        params: &Params,
    ) -> Result<Option<ResourceIndicator>, OAuthError> {
        crate::resource::resolve(
            crate::resource::requested_resource(params)?,
            client,
            self.config,
        )
    }

    /// Mints an access token (and optionally a refresh token) for `grant` and
    /// the records to store; nothing is stored yet. Their audience is the
    /// default resource; [`MintedTokens::with_audience`] sets another.
    ///
    /// A request with a DPoP proof ([`dpop_jkt`](Self::dpop_jkt)) gets an
    /// access token bound to the proof's key (`token_type: DPoP`, RFC 9449
    /// §5); its refresh token is bound too when `client` is public (a
    /// confidential client's refresh token is bound to its authentication
    /// already, §5).
    pub fn mint_tokens(
        &self,
        grant: GrantId,
        client: &Client,
        subject: Option<&Subject>,
        scope: &Scope,
        refresh_scope: Option<&Scope>,
    ) -> MintedTokens {
        let life = &self.config.lifetimes;
        // A JWT (RFC 9068) if the client gets them, else an opaque secret.
        let jwt = self
            .jwt
            .filter(|j| j.is_for(client))
            .map(|j| crate::jwt::JwtMint::new(j, &self.config.issuer, grant, self.random));
        let (access_hash, access_text) = match &jwt {
            None => {
                let access = self.mint(TokenKind::Access, grant);
                (access.hash(), access.into_exposed())
            }
            Some((_, key)) => (key.hash, String::new()),
        };
        let access_record = TokenRecord {
            client_id: client.id.clone(),
            subject: subject.cloned(),
            scope: scope.clone(),
            issued_at: self.now,
            expires_at: self.now + life.access_token,
            family_expires_at: None,
            actor: None,
            audience: self.config.default_resource.clone(),
            dpop_jkt: self.dpop_jkt.map(str::to_owned),
        };
        let refresh = refresh_scope.map(|rs| {
            let secret = self.mint(TokenKind::Refresh, grant);
            let record = TokenRecord {
                client_id: client.id.clone(),
                subject: subject.cloned(),
                scope: rs.clone(),
                issued_at: self.now,
                expires_at: self.now + life.refresh_token.min(life.refresh_family),
                family_expires_at: Some(self.now + life.refresh_family),
                actor: None,
                audience: self.config.default_resource.clone(),
                dpop_jkt: self
                    .dpop_jkt
                    .filter(|_| client.is_public())
                    .map(str::to_owned),
            };
            (secret, record)
        });
        let (refresh_record, refresh_token) = refresh
            .map(|(secret, record)| ((secret.hash(), record), secret.into_exposed()))
            .unzip();
        let records = NewTokens {
            access: (access_hash, access_record),
            refresh: refresh_record,
        };
        let response = TokenResponse {
            access_token: access_text,
            token_type: if self.dpop_jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: life.access_token.whole_seconds(),
            refresh_token,
            scope: scope.clone(),
            issued_token_type: None,
        };
        let mut minted = MintedTokens {
            records,
            response,
            jwt: jwt.map(|(mint, _)| mint),
        };
        minted.resign_jwt();
        minted
    }

    /// A live access token this server issued, found by its text as the
    /// bearer check and introspection find it: `None` when it is not one of
    /// ours, unknown, expired or revoked (or its grant was). For grants that
    /// take a token as their credential, e.g. token exchange's
    /// `subject_token` (RFC 8693 §2.1).
    pub async fn access_token(&self, token: &str) -> Result<Option<LiveToken>, OAuthError> {
        let key = SecretKey::parse(TokenKind::Access, token)
            .or_else(|| crate::jwt::own_record_key(self.jwt, &self.config.issuer, token, self.now));
        let Some(key) = key else {
            return Ok(None);
        };
        let record = self.store.access_token(key, self.now).await?;
        Ok(record.map(|record| LiveToken {
            grant: key.grant,
            record,
        }))
    }
}

/// A live access token found by [`GrantContext::access_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveToken {
    /// The grant it belongs to: tokens derived from it can be issued into
    /// the same grant, so that revoking the grant revokes them too.
    pub grant: GrantId,
    /// What it stands for.
    pub record: TokenRecord,
}

/// Newly minted tokens: the records to store and the response to send once
/// stored ([`MintedTokens::issue`]).
///
/// The records change only through this type's methods, each of which signs
/// a JWT access token (RFC 9068) again over its record, so what
/// [`issue`](Self::issue) stores is what the token it hands out says. (A
/// grant that stores records of its own through
/// [`GrantStore::issue`](crate::storage::GrantStore::issue) answers for them
/// itself.)
#[derive(Debug)]
pub struct MintedTokens {
    /// What the store keeps (hashes and records).
    records: NewTokens,
    /// What the client receives.
    response: TokenResponse,
    /// The JWT being minted, when the access token is one: signed again
    /// whenever the access record changes.
    jwt: Option<crate::jwt::JwtMint>,
}

impl MintedTokens {
    /// What the store will keep (hashes and records), to look at.
    pub fn records(&self) -> &NewTokens {
        &self.records
    }

    /// What the client will receive.
    pub fn response(&self) -> &TokenResponse {
        &self.response
    }

    /// Stores the tokens in `grant` ([`GrantStore::issue`](crate::storage::GrantStore::issue),
    /// atomic with a revocation of the grant) and hands back the response to
    /// send; `None` when the grant was revoked meanwhile, and nothing was
    /// stored.
    pub async fn issue(
        self,
        store: &dyn Store,
        grant: GrantId,
    ) -> Result<Option<TokenResponse>, crate::error::StoreError> {
        if self.unsigned() {
            return Err(crate::error::StoreError::Other(
                "the JWT access token could not be signed".into(),
            ));
        }
        Ok(store
            .issue(grant, self.records)
            .await?
            .then_some(self.response))
    }

    /// Signs the JWT access token again from its record (a no-op for an
    /// opaque one): every method that changes the access record calls it.
    fn resign_jwt(&mut self) {
        if let Some(jwt) = &self.jwt {
            match jwt.sign(&self.records.access.1) {
                Some(token) => self.response.access_token = token,
                None => {
                    // Fail closed: never hand out a token signed over an
                    // earlier record (another audience, no `act`), nor an
                    // empty one (`signed`, `issue`).
                    self.response.access_token.clear();
                    tracing::error!("a JWT access token could not be signed");
                }
            }
        }
    }

    /// Whether the JWT access token could not be signed (`resign_jwt`
    /// left it empty): nothing may then be stored or answered.
    fn unsigned(&self) -> bool {
        self.jwt.is_some() && self.response.access_token.is_empty()
    }

    /// These tokens, if their JWT access token (if any) is signed: a
    /// `server_error` otherwise, before anything is stored. The built-in
    /// grants call it before they store; [`issue`](Self::issue) checks the
    /// same.
    pub fn signed(self) -> Result<Self, OAuthError> {
        if self.unsigned() {
            return Err(OAuthError::new(
                crate::error::ErrorCode::ServerError,
                "the access token could not be signed",
            ));
        }
        Ok(self)
    }

    /// Makes `audience` the resource these tokens are for (RFC 8707 §2):
    /// resource servers for any other refuse them, introspection shows it
    /// as `aud`.
    pub fn with_audience(mut self, audience: Option<ResourceIndicator>) -> Self {
        if let Some((_, refresh)) = self.records.refresh.as_mut() {
            refresh.audience = audience.clone();
        }
        // Signing is the costly part (an RS256 signature is milliseconds):
        // only when the audience changes.
        if self.records.access.1.audience != audience {
            self.records.access.1.audience = audience;
            self.resign_jwt();
        }
        self
    }

    /// Records `actor` as acting on the subject's behalf with these tokens
    /// (RFC 8693 §4.1): introspection shows it as `act`.
    pub fn with_actor(mut self, actor: Actor) -> Self {
        if let Some((_, refresh)) = self.records.refresh.as_mut() {
            refresh.actor = Some(actor.clone());
        }
        self.records.access.1.actor = Some(actor);
        self.resign_jwt();
        self
    }

    /// Makes the access token expire by `deadline` at the latest (e.g. not
    /// after the token it was exchanged for), adjusting `expires_in`.
    pub fn expiring_by(mut self, deadline: OffsetDateTime) -> Self {
        let access = &mut self.records.access.1;
        if deadline < access.expires_at {
            access.expires_at = deadline.max(access.issued_at);
            self.response.expires_in = (access.expires_at - access.issued_at).whole_seconds();
            self.resign_jwt();
        }
        self
    }

    /// Sets the response's `issued_token_type` (RFC 8693 §2.2.1), a token type URI.
    pub fn with_issued_token_type(mut self, token_type: impl Into<Cow<'static, str>>) -> Self {
        self.response.issued_token_type = Some(token_type.into());
        self
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer` (RFC 6750), or `DPoP` for a token bound to a DPoP key
    /// (RFC 9449 §5).
    pub token_type: &'static str,
    /// Lifetime in seconds; always sent.
    pub expires_in: i64,
    /// A refresh token, when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scope granted; always sent, so clients need not guess (RFC 6749 §5.1).
    pub scope: Scope,
    /// The type of the token issued, for grants that can issue several (RFC
    /// 8693 §2.2.1, e.g. `urn:ietf:params:oauth:token-type:access_token`);
    /// absent for the RFC 6749 grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<Cow<'static, str>>,
}

impl TokenResponse {
    /// Appends the response's JSON body (RFC 6749 §5.1) to `out`: byte for
    /// byte what `serde_json` writes for its `Serialize`, without serde's
    /// per-piece writes and per-byte escape table on the token endpoint's
    /// hot path (bench/README.md). A string that needs escaping (none of
    /// the built-in grants' does) is written by `serde_json`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        // Every field named: one added to the struct fails to compile here.
        let Self {
            access_token,
            token_type,
            expires_in,
            refresh_token,
            scope,
            issued_token_type,
        } = self;
        out.extend_from_slice(b"{\"access_token\":");
        push_json_str(out, access_token)?;
        out.extend_from_slice(b",\"token_type\":");
        push_json_str(out, token_type)?;
        out.extend_from_slice(b",\"expires_in\":");
        out.extend_from_slice(itoa::Buffer::new().format(*expires_in).as_bytes());
        if let Some(refresh_token) = refresh_token {
            out.extend_from_slice(b",\"refresh_token\":");
            push_json_str(out, refresh_token)?;
        }
        out.extend_from_slice(b",\"scope\":");
        push_json_str(out, scope.as_str())?;
        if let Some(token_type) = issued_token_type {
            out.extend_from_slice(b",\"issued_token_type\":");
            push_json_str(out, token_type)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// A JSON string: as it is between quotes when JSON needs no escape in it
/// (RFC 8259 §7: no `"`, `\\` or control character below U+0020), else as
/// `serde_json` escapes it.
fn push_json_str(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    if json_plain(text.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text)
    }
}

/// No byte of `bytes` needs a JSON escape (`"`, `\\`, below 0x20): eight
/// bytes at a time, since tokens are long and every answer carries them.
fn json_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit for some byte below `n` (n <= 0x80); exact for "any".
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte equal to `c` is a zero byte of `x ^ (ONES * c)`.
        if below(x, 0x20) | below(x ^ (ONES * 0x22), 1) | below(x ^ (ONES * 0x5c), 1) != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

/// One grant type at the token endpoint. Implement it for a custom grant and
/// register it with `ServerBuilder::grant`; the built-in grants implement it too.
///
/// The server has authenticated `client` and checked it is registered for
/// [`grant_type`](GrantHandler::grant_type) before calling [`exchange`](GrantHandler::exchange).
#[async_trait]
pub trait GrantHandler: Send + Sync {
    /// The `grant_type` value this handler answers, e.g. `"client_credentials"` or a URI.
    fn grant_type(&self) -> &str;

    /// The request parameters the grant reads, beside the ones the token
    /// endpoint reads for every grant (`grant_type`, `scope`, `resource`,
    /// and the client authentication's). A parameter read is refused when
    /// sent twice or malformed; any other is ignored (RFC 6749 §3.2: the
    /// server "MUST ignore unrecognized request parameters"). `None`, the
    /// default, counts every parameter as read, so that any repeat is
    /// refused: the safe choice for a grant that does not list its own.
    fn parameters(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Runs the grant: validates the parameters, updates storage, returns tokens.
    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError>;
}

/// The scope a token request gets: the requested one if the client may have
/// all of it, or the client's whole registered scope when `scope` is omitted.
///
/// Never silently narrowed: anything beyond the client's scope is `invalid_scope`
/// (RFC 6749 §3.3 allows narrowing; the demo contract forbids it).
pub fn resolve_scope(requested: Option<&str>, allowed: &Scope) -> Result<Scope, OAuthError> {
    let scope = match requested {
        // The client asking for exactly its registered scope (the usual
        // case) shares it instead of parsing a copy; it is a subset of
        // itself, so there is nothing to compare.
        Some(s) if s == allowed.as_str() => return non_empty(allowed.clone()),
        None => return non_empty(allowed.clone()),
        Some(s) => Scope::parse(s)?,
    };
    if !scope.is_subset(allowed) {
        return Err(OAuthError::invalid_scope(
            "the requested scope exceeds what the client may obtain",
        ));
    }
    non_empty(scope)
}

/// `scope`, unless it is empty: then there is nothing to grant.
fn non_empty(scope: Scope) -> Result<Scope, OAuthError> {
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope("no scope to grant"));
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    /// The hand-written body is serde's, byte for byte: every optional
    /// field present or absent, and strings that need escaping (quotes,
    /// backslashes, control characters) beside ones that do not (DEL,
    /// non-ASCII, `/`).
    #[test]
    fn the_written_json_body_is_what_serde_writes() {
        let odd = [
            "pM1_Qi9-9D1eNHDPOwSyUhtqxJq5FbuSJy2fPeVnZTY",
            "",
            "a\"b",
            "back\\slash",
            "new\nline\ttab\r\u{0}\u{1f}",
            "del\u{7f} and caf\u{e9} \u{1F600} a/b",
        ];
        for text in odd {
            for refresh in [None, Some(format!("r{text}"))] {
                for issued in [None, Some(Cow::Owned(format!("urn:{text}")))] {
                    for expires_in in [0, 3600, -5, i64::MAX, i64::MIN] {
                        let response = TokenResponse {
                            access_token: text.to_owned(),
                            token_type: "DPoP",
                            expires_in,
                            refresh_token: refresh.clone(),
                            scope: Scope::parse("photos.read profile").unwrap(),
                            issued_token_type: issued.clone(),
                        };
                        let mut written = Vec::new();
                        response.write_json(&mut written).unwrap();
                        assert_eq!(
                            String::from_utf8(written).unwrap(),
                            serde_json::to_string(&response).unwrap()
                        );
                    }
                }
            }
        }
    }

    /// The eight-bytes-at-a-time check agrees with the byte-by-byte rule
    /// for every byte value at every offset, in a word and in the tail,
    /// and beside bytes that could carry a borrow into it (0x00, 0x80, 0xff).
    #[test]
    fn the_word_check_agrees_with_the_byte_rule() {
        let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
        for len in [1, 7, 8, 9, 16, 17, 23] {
            for at in 0..len {
                for fill in [b'a', 0x80, 0xff, 0x7f, 0x21] {
                    for b in 0..=255u8 {
                        let mut text = vec![fill; len];
                        text[at] = b;
                        assert_eq!(
                            json_plain(&text),
                            plain(b) && plain(fill),
                            "{b:#x} at {at} of {len} among {fill:#x}"
                        );
                    }
                }
            }
        }
        assert!(json_plain(b""));
    }

    #[test]
    fn omitted_scope_means_all_registered_never_narrowed() {
        let allowed = Scope::parse("a b").unwrap();
        assert_eq!(resolve_scope(None, &allowed).unwrap(), allowed);
        assert_eq!(resolve_scope(Some("b"), &allowed).unwrap().to_string(), "b");
        assert_eq!(
            resolve_scope(Some("a c"), &allowed).err().map(|e| e.code),
            Some(ErrorCode::InvalidScope)
        );
        assert_eq!(
            resolve_scope(None, &Scope::empty()).err().map(|e| e.code),
            Some(ErrorCode::InvalidScope)
        );
    }
}
