//! The seeded data of the demo contract (DEMO-CONTRACT.md, "Seeded data").

/// A resource owner.
#[derive(Debug, Clone, Copy)]
pub struct User {
    /// The user name.
    pub username: &'static str,
    /// The password.
    pub password: &'static str,
    /// How many photos the user has.
    pub photos: usize,
}

/// `alice`, 3 photos.
pub const ALICE: User = User {
    username: "alice",
    password: "alice-password-1",
    photos: 3,
};

/// `bob`, 2 photos.
pub const BOB: User = User {
    username: "bob",
    password: "bob-password-1",
    photos: 2,
};

/// A registered client.
#[derive(Debug, Clone, Copy)]
pub struct DemoClient {
    /// The client id.
    pub id: &'static str,
    /// The secret of a confidential client.
    pub secret: Option<&'static str>,
    /// The registered redirect URI (photo-cli: any loopback port).
    pub redirect_uri: Option<&'static str>,
}

/// `printshop`: confidential, basic and post, code + refresh, `photos.read profile`.
pub const PRINTSHOP: DemoClient = DemoClient {
    id: "printshop",
    secret: Some("printshop-secret-0123456789abcdef0123456789abcdef"),
    redirect_uri: Some("http://127.0.0.1:9001/callback"),
};

/// `photo-cli`: public, code + refresh + device, `photos.read photos.write`.
/// Its redirect URI is `http://127.0.0.1/callback` with any port (RFC 8252 §7.3).
pub const PHOTO_CLI: DemoClient = DemoClient {
    id: "photo-cli",
    secret: None,
    redirect_uri: Some("http://127.0.0.1/callback"),
};

/// `backup-job`: confidential, basic and post, client_credentials, `photos.read`.
pub const BACKUP_JOB: DemoClient = DemoClient {
    id: "backup-job",
    secret: Some("backup-job-secret-0123456789abcdef0123456789ab"),
    redirect_uri: None,
};

/// `photo-api`: the resource server's identity, basic, introspects any token.
pub const PHOTO_API: DemoClient = DemoClient {
    id: "photo-api",
    secret: Some("photo-api-secret-0123456789abcdef0123456789abcd"),
    redirect_uri: None,
};

/// Every seeded scope.
pub const SCOPES: [&str; 3] = ["photos.read", "photos.write", "profile"];

impl DemoClient {
    /// The secret; empty for a public client.
    pub fn secret(&self) -> &'static str {
        self.secret.unwrap_or_default()
    }

    /// Client authentication with HTTP Basic (or `client_id` alone for a public client).
    pub fn basic(&self) -> crate::http::Auth<'static> {
        match self.secret {
            Some(s) => crate::http::Auth::Basic(self.id, s),
            None => crate::http::Auth::ClientId(self.id),
        }
    }

    /// Client authentication in the body (or `client_id` alone for a public client).
    pub fn post(&self) -> crate::http::Auth<'static> {
        match self.secret {
            Some(s) => crate::http::Auth::Post(self.id, s),
            None => crate::http::Auth::ClientId(self.id),
        }
    }
}
