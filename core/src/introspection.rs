//! Token introspection (RFC 7662).

use serde::Serialize;

use crate::client::Client;
use crate::config::Config;
use crate::error::OAuthError;
use crate::http::HttpRequest;
use crate::server::Server;
use crate::storage::{Actor, RefreshLookup, TokenRecord};
use crate::token::{SecretKey, TokenKind};

/// An introspection answer (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is live.
    pub active: bool,
    /// The token's scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The resource owner's user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The subject: the owner, or the client for client-credentials tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `Bearer` for access tokens. RFC 7662 §2.2 defines `token_type` as an
    /// access token type (RFC 6749 §5.1), so a refresh token has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The resource the token is for (RFC 7662 §2.2 `aud`, RFC 8707 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Who acts on the subject's behalf, for a token issued by delegation
    /// (token exchange): RFC 8693 §4.1 `act`, e.g. `{"sub": "photo-api"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6.2, RFC 7800
    /// `cnf`): `{"jkt": "<thumbprint>"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// A token's confirmation claim (RFC 7800 §3.1): the key it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint (RFC 7638) of the DPoP key (RFC 9449 §6.1).
    pub jkt: String,
}

impl Confirmation {
    /// The confirmation of a key with thumbprint `jkt`.
    pub fn jkt(jkt: impl Into<String>) -> Self {
        Self { jkt: jkt.into() }
    }
}

impl Introspection {
    /// `{"active": false}`: unknown, expired, revoked, or not the caller's to see.
    pub fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            username: None,
            sub: None,
            token_type: None,
            exp: None,
            iat: None,
            iss: None,
            act: None,
            aud: None,
            cnf: None,
        }
    }

    fn active(record: TokenRecord, token_type: Option<&'static str>, config: &Config) -> Self {
        let issuer = &config.issuer;
        let aud = config.audience_of(&record).map(|r| r.as_str().to_owned());
        Self {
            aud,
            active: true,
            scope: Some(record.scope.to_string()),
            username: record.subject.as_ref().map(|s| s.to_string()),
            sub: Some(
                record
                    .subject
                    .map_or_else(|| record.client_id.to_string(), |s| s.as_str().to_owned()),
            ),
            client_id: Some(record.client_id.to_string()),
            // RFC 9449 §6.2: a DPoP-bound access token's type is `DPoP`.
            token_type: token_type.map(|t| if record.dpop_jkt.is_some() { "DPoP" } else { t }),
            exp: Some(record.expires_at.unix_timestamp()),
            iat: Some(record.issued_at.unix_timestamp()),
            iss: Some(issuer.to_owned()),
            act: record.actor,
            cnf: record.dpop_jkt.map(Confirmation::jkt),
        }
    }
}

impl Server {
    /// Handles a request to the introspection endpoint (RFC 7662 §2).
    ///
    /// Only confidential clients may introspect (§2.1; public clients get
    /// `401 invalid_client`). A client registered with
    /// `introspect_any_token` (a resource server) sees every token; any other
    /// client only its own, and others' answer `{"active": false}` (§4).
    ///
    /// Served by [`Server::handle`] with [`Endpoint::Introspection`](crate::Endpoint::Introspection).
    pub(crate) async fn introspect(
        &self,
        request: &HttpRequest<'_>,
    ) -> Result<Introspection, OAuthError> {
        // RFC 7662 §2.1: `token`; `token_type_hint` is not read (the token's
        // form tells its kind), so it is ignored like any other.
        let params = self.back_channel_params(request, |_, name| name == "token")?;
        let client = self.authenticate_request(request, &params).await?;
        if client.is_public() {
            return Err(
                OAuthError::invalid_client("public clients may not introspect")
                    .with_reason(crate::error::Reason::ClientNotAllowed),
            );
        }
        let token = params.require("token")?;
        self.introspect_token(&client, token).await
    }

    /// Introspects `token` on behalf of an authenticated `client`.
    pub async fn introspect_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Introspection, OAuthError> {
        let now = self.now();
        let (record, kind) = if let Some(s) = SecretKey::parse(TokenKind::Access, token) {
            (self.store().access_token(s, now).await?, Some("Bearer"))
        } else if let Some(s) = self.own_jwt_record_key(token) {
            // RFC 9068 §5: a JWT access token introspects like any other.
            (self.store().access_token(s, now).await?, Some("Bearer"))
        } else if let Some(s) = SecretKey::parse(TokenKind::Refresh, token) {
            match self.store().refresh_token(s, now).await? {
                RefreshLookup::Current(r) => (Some(r), None),
                _ => (None, None),
            }
        } else {
            (None, None)
        };
        Ok(match record {
            Some(r) if client.introspect_any_token || r.client_id == client.id => {
                Introspection::active(r, kind, self.config())
            }
            _ => Introspection::inactive(),
        })
    }
}
