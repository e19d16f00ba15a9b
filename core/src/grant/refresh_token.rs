//! Refreshing an access token (RFC 6749 §6), with rotation and reuse
//! detection (RFC 9700 §4.14.2): each use retires the refresh token; a retired
//! one presented again revokes its whole grant.

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::{OAuthError, Reason};
use crate::params::Params;
use crate::scope::Scope;
use crate::storage::{RefreshLookup, TokenRecord};
use crate::token::{SecretKey, TokenKind};

/// Exchanges a refresh token for a new access token and a new refresh token.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefreshTokenGrant;

/// The scope of the new access token: the refresh token's, or a subset of it (§6).
pub fn refreshed_scope(
    record: &TokenRecord,
    client: &Client,
    requested: Option<&str>,
) -> Result<Scope, OAuthError> {
    if record.client_id != client.id {
        return Err(
            OAuthError::invalid_grant("the refresh token was issued to another client")
                .with_reason(Reason::RefreshTokenIssuedToAnotherClient),
        );
    }
    match requested {
        None => Ok(record.scope.clone()),
        Some(s) => {
            let scope = Scope::parse(s)?;
            if scope.is_subset(&record.scope) {
                Ok(scope)
            } else {
                Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the original grant",
                ))
            }
        }
    }
}

/// A refresh token bound to a DPoP key (a public client's, RFC 9449 §5)
/// is good only with a proof by that key: without a proof the grant cannot
/// be used (`invalid_grant`); with another key's proof the proof is not
/// good for it (`invalid_dpop_proof`).
pub fn check_refresh_binding(record: &TokenRecord, jkt: Option<&str>) -> Result<(), OAuthError> {
    match (record.dpop_jkt.as_deref(), jkt) {
        (None, _) => Ok(()),
        (Some(bound), Some(presented)) if bound == presented => Ok(()),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "the refresh token is bound to a DPoP key: send a DPoP proof",
        )
        .with_reason(Reason::DpopProofMissing)),
        (Some(_), Some(_)) => Err(OAuthError::new(
            crate::error::ErrorCode::InvalidDpopProof,
            "the DPoP proof is not by the key the refresh token is bound to",
        )
        .with_reason(Reason::DpopKeyMismatch)),
    }
}

/// A rotated-away refresh token presented again (RFC 9700 §4.14.2): its
/// grant is revoked, whoever presented it (`client`, if one was
/// authenticated), and this is the answer.
pub(crate) async fn revoke_reused(
    store: &dyn crate::storage::Store,
    grant: crate::GrantId,
    client: Option<&str>,
) -> OAuthError {
    tracing::warn!(client, grant = %grant, "retired refresh token reused; revoking its grant");
    match store.revoke_grant(grant).await {
        Ok(()) => reused(),
        Err(e) => e.into(),
    }
}

fn reused() -> OAuthError {
    OAuthError::invalid_grant("the refresh token was already used")
        .with_reason(Reason::RefreshTokenReused)
}

#[async_trait]
impl GrantHandler for RefreshTokenGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // RFC 6749 §6.
        Some(&["refresh_token"])
    }

    fn grant_type(&self) -> &str {
        GrantType::REFRESH_TOKEN
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.require("refresh_token")?;
        let old = SecretKey::parse(TokenKind::Refresh, presented).ok_or_else(|| {
            OAuthError::invalid_grant("unknown refresh token")
                .with_reason(Reason::RefreshTokenUnknown)
        })?;
        let record = match ctx.store.refresh_token(old, ctx.now).await? {
            RefreshLookup::Current(record) => record,
            RefreshLookup::Retired => {
                return Err(revoke_reused(ctx.store, old.grant, Some(client.id.as_str())).await);
            }
            _ => {
                return Err(
                    OAuthError::invalid_grant("unknown, expired or revoked refresh token")
                        .with_reason(Reason::RefreshTokenUnknown),
                );
            }
        };
        let scope = refreshed_scope(&record, client, params.get("scope"))?;
        check_refresh_binding(&record, ctx.dpop_jkt())?;
        // RFC 8707 §2: a refresh may repeat the grant's resource or omit
        // it; the audience stays the grant's.
        crate::resource::check_unchanged(record.audience.as_ref(), params)?;
        crate::resource::check_still_allowed(record.audience.as_ref(), client, ctx.config)?;
        // §6: the new refresh token keeps the original scope.
        let mut minted = ctx
            .mint_tokens(
                old.grant,
                client,
                record.subject.as_ref(),
                &scope,
                Some(&record.scope),
            )
            .with_audience(record.audience.clone());
        // A delegated grant stays delegated (RFC 8693 §4.1): the actor a
        // custom grant put on the refresh token goes on what it mints.
        if let Some(actor) = record.actor.clone() {
            minted = minted.with_actor(actor);
        }
        // The family's end stays where the code exchange put it: rotation
        // renews the token, never the family (RFC 9700 §4.14.2).
        if let (Some(end), Some((_, new))) =
            (record.family_expires_at, minted.records.refresh.as_mut())
        {
            if end <= ctx.now {
                return Err(
                    OAuthError::invalid_grant("unknown, expired or revoked refresh token")
                        .with_reason(Reason::RefreshTokenUnknown),
                );
            }
            new.family_expires_at = Some(end);
            new.expires_at = new.expires_at.min(end);
        }
        let minted = minted.signed()?;
        if !ctx
            .store
            .rotate_refresh(old, minted.records, ctx.now)
            .await?
        {
            // Someone rotated it first: two parties hold the token (RFC 9700 §4.14.2).
            tracing::warn!(client = client.id.as_str(), grant = %old.grant, "concurrent refresh token use; revoking its grant");
            ctx.store.revoke_grant(old.grant).await?;
            return Err(reused());
        }
        Ok(minted.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientId, SecretHash};
    use crate::error::ErrorCode;
    use time::OffsetDateTime;

    fn record() -> TokenRecord {
        TokenRecord {
            client_id: ClientId::new("c").unwrap(),
            subject: None,
            scope: Scope::parse("a b").unwrap(),
            issued_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            family_expires_at: None,
            actor: None,
            audience: None,
            dpop_jkt: None,
        }
    }

    fn client(id: &str) -> Client {
        Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of("s"))
    }

    #[test]
    fn scope_may_narrow_but_not_widen_rfc6749_6() {
        assert_eq!(
            refreshed_scope(&record(), &client("c"), None)
                .unwrap()
                .to_string(),
            "a b"
        );
        assert_eq!(
            refreshed_scope(&record(), &client("c"), Some("a"))
                .unwrap()
                .to_string(),
            "a"
        );
        assert_eq!(
            refreshed_scope(&record(), &client("c"), Some("a c"))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidScope)
        );
        assert_eq!(
            refreshed_scope(&record(), &client("c"), Some("a  b"))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidScope)
        );
    }

    #[test]
    fn bound_to_its_client() {
        assert_eq!(
            refreshed_scope(&record(), &client("d"), None)
                .err()
                .map(|e| (e.code, e.reason())),
            Some((
                ErrorCode::InvalidGrant,
                Reason::RefreshTokenIssuedToAnotherClient
            ))
        );
    }
}
