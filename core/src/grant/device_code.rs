//! The device code grant's token request (RFC 8628 §3.4, §3.5).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::{ErrorCode, OAuthError, Reason};
use crate::params::Params;
use crate::storage::{DevicePoll, DeviceStatus};
use crate::token::{SecretKey, TokenKind};

/// Exchanges an approved device code for tokens; registered by
/// [`ServerBuilder::enable_device_grant`](crate::ServerBuilder::enable_device_grant).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceCodeGrant;

#[async_trait]
impl GrantHandler for DeviceCodeGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // RFC 8628 §3.4.
        Some(&["device_code"])
    }

    fn grant_type(&self) -> &str {
        GrantType::DEVICE_CODE
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.require("device_code")?;
        let unknown = || {
            OAuthError::invalid_grant("unknown, used or expired device_code")
                .with_reason(Reason::DeviceCodeUnknown)
        };
        let device = SecretKey::parse(TokenKind::Device, presented).ok_or_else(unknown)?;
        // RFC 8707 §2 at the token request: a named resource is checked
        // before polling, so a bad one neither uses up nor slows down the
        // device code.
        if let Some(named) = crate::resource::requested_resource(params)? {
            crate::resource::resolve(Some(named), client, ctx.config)?;
        }
        // §3.5: each answer but the tokens tells the device what to do next.
        let record = match ctx.store.poll_device(device, &client.id, ctx.now).await? {
            DevicePoll::Approved(record) => record,
            DevicePoll::Pending => {
                return Err(OAuthError::new(
                    ErrorCode::AuthorizationPending,
                    "the user has not yet decided",
                )
                .with_reason(Reason::DevicePending));
            }
            DevicePoll::SlowDown => {
                return Err(OAuthError::new(
                    ErrorCode::SlowDown,
                    "polling too fast: wait 5 seconds longer between requests",
                )
                .with_reason(Reason::DevicePolledTooFast));
            }
            DevicePoll::Denied => {
                return Err(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the user denied the request",
                )
                .with_reason(Reason::DeviceDenied));
            }
            DevicePoll::Expired => {
                return Err(OAuthError::new(
                    ErrorCode::ExpiredToken,
                    "the device_code has expired",
                )
                .with_reason(Reason::DeviceCodeExpired));
            }
            _ => return Err(unknown()),
        };
        let DeviceStatus::Approved { subject } = &record.status else {
            return Err(unknown());
        };
        // RFC 8707 §2, as for a code: the resource fixed at the device
        // authorization request (the one the user was shown, or none) may be
        // repeated, not changed, and must still be served and the client's.
        // The code is spent either way, as an authorization code is (RFC 6749
        // §4.1.2): single use. (A record without a resource, from before it
        // was stored, gives tokens without audience: the default resource's,
        // `Config::audience_of`.)
        crate::resource::check_unchanged(record.resource.as_ref(), params)?;
        crate::resource::check_still_allowed(record.resource.as_ref(), client, ctx.config)?;
        let audience = record.resource;
        let refresh = client
            .allows_grant(GrantType::REFRESH_TOKEN)
            .then_some(&record.scope);
        let minted = ctx
            .mint_tokens(device.grant, client, Some(subject), &record.scope, refresh)
            .with_audience(audience)
            .signed()?;
        if !ctx.store.issue(device.grant, minted.records).await? {
            return Err(OAuthError::invalid_grant("the grant was revoked")
                .with_reason(Reason::GrantRevoked));
        }
        tracing::info!(client = client.id.as_str(), grant = %device.grant, "device code exchanged");
        Ok(minted.response)
    }
}
