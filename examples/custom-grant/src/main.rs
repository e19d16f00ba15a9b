//! A custom grant type, registered through the same [`GrantHandler`] trait the
//! built-in grants implement (RFC 6749 §4.5: extension grants are named by an
//! absolute URI).
//!
//! The grant: a kiosk in a photo shop holds a *device key* and exchanges it,
//! together with the user id a shop assistant looked up, for a short-lived,
//! read-only token on that user's photos. The embedder owns the device keys;
//! Tessera owns issuance, storage and revocation.
//!
//! Run it with `cargo run -p custom-grant`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use subtle::ConstantTimeEq;
use tessera::grant::{GrantContext, GrantHandler, TokenResponse};
use tessera::{
    Client, ClientId, Endpoint, ErrorCode, HttpRequest, OAuthError, Params, Scope, ScopeToken,
    SecretHash, Server, Subject,
};
use tessera_memory::MemoryStore;

/// The grant type URI clients send as `grant_type`.
pub const KIOSK_GRANT: &str = "urn:example:params:oauth:grant-type:kiosk";

/// Exchanges a kiosk's device key and a user id for a read-only token.
#[derive(Debug)]
pub struct KioskGrant {
    /// Device key hashes by kiosk id: the embedder's own records.
    device_keys: BTreeMap<String, [u8; 32]>,
}

impl KioskGrant {
    fn device_key_ok(&self, kiosk: &str, key: &str) -> bool {
        let presented = tessera::TokenHash::of(key).0;
        self.device_keys
            .get(kiosk)
            .is_some_and(|expected| bool::from(expected.ct_eq(&presented)))
    }
}

#[async_trait]
impl GrantHandler for KioskGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // What `exchange` reads: these are refused when sent twice, and
        // any parameter nobody reads is ignored (RFC 6749 §3.2).
        Some(&["kiosk_id", "device_key", "user"])
    }

    fn grant_type(&self) -> &str {
        KIOSK_GRANT
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        // Parameters are already parsed with RFC 6749's rules (no repeats, empty = absent).
        let kiosk = params.require("kiosk_id")?;
        let key = params.require("device_key")?;
        let user = params.require("user")?;
        if !self.device_key_ok(kiosk, key) {
            return Err(OAuthError::invalid_grant(
                "unknown kiosk or wrong device key",
            ));
        }
        // Always read-only, whatever the client's registration allows.
        let scope = Scope::parse("photos.read")?;
        if !scope.is_subset(&client.scope) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the client may not read photos",
            ));
        }
        let grant = ctx.new_grant_id();
        let minted = ctx.mint_tokens(grant, client, Some(&Subject::new(user)), &scope, None);
        // `None`: the grant was revoked before the tokens were stored.
        minted
            .issue(ctx.store, grant)
            .await?
            .ok_or_else(|| OAuthError::new(ErrorCode::ServerError, "could not issue the token"))
    }
}

/// Builds a server with the kiosk grant registered beside the built-in ones.
pub fn server() -> Result<Server, Box<dyn std::error::Error>> {
    let kiosk_app = Client::confidential(
        ClientId::new("kiosk-app").ok_or("bad client id")?,
        "Shop kiosk",
        SecretHash::of("kiosk-app-secret"),
    )
    .with_grant_types([KIOSK_GRANT])
    .with_scope(Scope::parse("photos.read")?);
    let grant = KioskGrant {
        device_keys: BTreeMap::from([(
            "kiosk-7".to_owned(),
            tessera::TokenHash::of("device-key-7").0,
        )]),
    };
    Ok(Server::builder()
        .issuer("http://127.0.0.1:9000")
        .store(Arc::new(MemoryStore::with_clients([kiosk_app])))
        .scope(ScopeToken::new("photos.read")?, "View your photos")
        .grant(grant)
        .build()?)
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    // It takes no flags: a flag given is a mistake, said in one line.
    if let Some(arg) = std::env::args_os().nth(1) {
        if arg == "--help" || arg == "-h" {
            println!(
                "custom-grant: runs the kiosk grant (a custom grant type) once against an in-memory server and prints what happened; it takes no flags"
            );
            return Ok(std::process::ExitCode::SUCCESS);
        }
        eprintln!(
            "custom-grant: unexpected argument {:?}: it takes none (see --help)",
            arg.to_string_lossy()
        );
        return Ok(std::process::ExitCode::from(2));
    }
    let server = server()?;
    let auth = basic("kiosk-app", "kiosk-app-secret");
    let body =
        format!("grant_type={KIOSK_GRANT}&kiosk_id=kiosk-7&device_key=device-key-7&user=alice");
    let response = server
        .handle(Endpoint::Token, &HttpRequest::form_post(&body, Some(&auth)))
        .await;
    println!("kiosk grant: HTTP {}", response.status);
    let json: serde_json::Value = serde_json::from_slice(&response.body)?;
    let token = json["access_token"].as_str().unwrap_or_default();
    let checked = server
        .verify_bearer(Some(&format!("Bearer {token}")), None)
        .await?;
    println!(
        "token for {} with scope {:?}",
        checked.principal(),
        checked.scope.to_string()
    );
    let metadata = server.metadata();
    println!(
        "grant_types_supported: {:?}",
        metadata.grant_types_supported
    );
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn call(body: &str) -> (u16, serde_json::Value) {
        let server = server().unwrap();
        let r = server
            .handle(
                tessera::Endpoint::Token,
                &HttpRequest::form_post(body, Some(&basic("kiosk-app", "kiosk-app-secret"))),
            )
            .await;
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    #[tokio::test]
    async fn kiosk_grant_issues_a_read_only_token() {
        let (status, v) = call(&format!(
            "grant_type={KIOSK_GRANT}&kiosk_id=kiosk-7&device_key=device-key-7&user=alice"
        ))
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["scope"], "photos.read");
        assert!(v.get("refresh_token").is_none());
    }

    #[tokio::test]
    async fn kiosk_grant_errors() {
        let (status, v) = call(&format!(
            "grant_type={KIOSK_GRANT}&kiosk_id=kiosk-7&device_key=wrong&user=alice"
        ))
        .await;
        assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
        let (status, v) = call(&format!(
            "grant_type={KIOSK_GRANT}&kiosk_id=kiosk-7&user=alice"
        ))
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request"))
        );
        // The kiosk client is not registered for built-in grants.
        let (status, v) = call("grant_type=client_credentials").await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
    }

    #[test]
    fn metadata_lists_the_custom_grant() {
        let server = server().unwrap();
        assert!(
            server
                .metadata()
                .grant_types_supported
                .iter()
                .any(|g| g == KIOSK_GRANT)
        );
    }
}
