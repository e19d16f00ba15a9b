//! The seeded scopes and clients, exactly as DEMO-CONTRACT.md lists them.

use tessera::{
    AuthMethod, Client, ClientId, GrantType, RedirectUri, Scope, ScopeToken, SecretHash,
};

/// The scopes, with the words the consent page shows for each.
pub const SCOPES: [(&str, &str); 3] = [
    ("photos.read", "View your photos"),
    ("photos.write", "Upload and edit your photos"),
    ("profile", "See your name and profile"),
];

/// `printshop`'s secret.
pub const PRINTSHOP_SECRET: &str = "printshop-secret-0123456789abcdef0123456789abcdef";
/// `backup-job`'s secret.
pub const BACKUP_JOB_SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";
/// `photo-api`'s secret.
pub const PHOTO_API_SECRET: &str = "photo-api-secret-0123456789abcdef0123456789abcd";

/// The scopes as tokens with their descriptions.
pub fn scopes() -> Vec<(ScopeToken, &'static str)> {
    SCOPES
        .iter()
        .filter_map(|(token, words)| ScopeToken::new(*token).ok().map(|t| (t, *words)))
        .collect()
}

/// The four demo clients: `printshop`, `photo-cli`, `backup-job`, `photo-api`.
pub fn seeded_clients() -> Vec<Client> {
    // Every literal below is valid (the tests check all four are built);
    // `?` only keeps this free of panics.
    [printshop(), photo_cli(), backup_job(), photo_api()]
        .into_iter()
        .flatten()
        .collect()
}

fn printshop() -> Option<Client> {
    Some(
        Client::confidential(
            ClientId::new("printshop")?,
            "PrintShop",
            SecretHash::of(PRINTSHOP_SECRET),
        )
        .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
        .with_redirect_uri(RedirectUri::new("http://127.0.0.1:9001/callback").ok()?)
        .with_grant_types([GrantType::AUTHORIZATION_CODE, GrantType::REFRESH_TOKEN])
        .with_scope(Scope::parse("photos.read profile").ok()?),
    )
}

fn photo_cli() -> Option<Client> {
    Some(
        Client::public(ClientId::new("photo-cli")?, "PhotoBook CLI")
            // A loopback IP literal: any port matches (RFC 8252 §7.3).
            .with_redirect_uri(RedirectUri::new("http://127.0.0.1/callback").ok()?)
            .with_grant_types([
                GrantType::AUTHORIZATION_CODE,
                GrantType::REFRESH_TOKEN,
                GrantType::DEVICE_CODE,
            ])
            .with_scope(Scope::parse("photos.read photos.write").ok()?),
    )
}

fn backup_job() -> Option<Client> {
    Some(
        Client::confidential(
            ClientId::new("backup-job")?,
            "Nightly Backup",
            SecretHash::of(BACKUP_JOB_SECRET),
        )
        .with_auth_methods([AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost])
        .with_grant_types([GrantType::CLIENT_CREDENTIALS])
        .with_scope(Scope::parse("photos.read").ok()?),
    )
}

fn photo_api() -> Option<Client> {
    Some(
        Client::confidential(
            ClientId::new("photo-api")?,
            "PhotoBook API",
            SecretHash::of(PHOTO_API_SECRET),
        )
        .with_auth_methods([AuthMethod::ClientSecretBasic])
        // Its scopes only by exchanging a user's token (RFC 8693): it is
        // registered for no other grant.
        .with_grant_types([tessera_token_exchange::GRANT_TYPE])
        .with_scope(Scope::parse("photos.read photos.write profile").ok()?)
        .with_introspect_any_token(true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(id: &str) -> Client {
        let all = seeded_clients();
        assert_eq!(all.len(), 4);
        all.into_iter()
            .find(|c| c.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} is seeded"))
    }

    #[test]
    fn clients_follow_the_contract_table() {
        let p = find("printshop");
        assert!(!p.is_public());
        assert_eq!(
            p.auth_methods,
            [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost].into()
        );
        assert!(p.redirect_uris[0].matches("http://127.0.0.1:9001/callback"));
        assert!(!p.redirect_uris[0].matches("http://127.0.0.1:9001/other"));
        assert!(p.allows_grant("authorization_code") && p.allows_grant("refresh_token"));
        assert!(!p.allows_grant("client_credentials"));
        assert!(!p.allows_grant(GrantType::DEVICE_CODE));
        assert_eq!(p.scope.to_string(), "photos.read profile");

        let cli = find("photo-cli");
        assert!(cli.is_public());
        assert_eq!(cli.auth_methods, [AuthMethod::None].into());
        assert!(cli.redirect_uris[0].matches("http://127.0.0.1:53117/callback"));
        assert!(cli.allows_grant(GrantType::DEVICE_CODE));
        assert_eq!(cli.scope.to_string(), "photos.read photos.write");

        let backup = find("backup-job");
        assert!(backup.redirect_uris.is_empty());
        assert_eq!(backup.grant_types.len(), 1);
        assert!(backup.allows_grant("client_credentials"));
        assert_eq!(backup.scope.to_string(), "photos.read");

        let api = find("photo-api");
        assert_eq!(api.auth_methods, [AuthMethod::ClientSecretBasic].into());
        assert_eq!(api.grant_types.len(), 1);
        assert!(api.allows_grant(tessera_token_exchange::GRANT_TYPE));
        assert_eq!(api.scope.to_string(), "photos.read photos.write profile");
        assert!(api.introspect_any_token);
    }

    #[test]
    fn scopes_are_valid() {
        assert_eq!(scopes().len(), 3);
    }
}
