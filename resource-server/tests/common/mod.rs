//! An authorization server (Tessera over tessera-axum, memory store, JWT
//! signing keys that rotate) on a local port, counting the JWKS fetches
//! and introspection calls it serves; resource servers start on ports of
//! their own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tessera::{
    AccessTokenFormat, Client, ClientId, JwsAlgorithm, KeySet, OsRandom, ProtectedResource,
    ResourceIndicator, RotatingKeys, Scope, ScopeToken, SecretHash, Server, SigningKey,
};
use tessera_memory::MemoryStore;
use tokio::net::TcpListener;

pub const JOB_SECRET: &str = "backup-job-secret-0123456789abcdef0123456789ab";
pub const API_SECRET: &str = "photo-api-secret-0123456789abcdef0123456789abcd";

/// The authorization server under test.
pub struct As {
    pub issuer: String,
    pub server: Server,
    pub keys: Arc<RotatingKeys>,
    pub jwks_fetches: Arc<AtomicU64>,
    pub introspections: Arc<AtomicU64>,
    pub http: reqwest::Client,
}

/// Binds a listener on a free loopback port (the resource server's, so
/// that its identifier is known before the authorization server starts).
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// The resource identifiers of a resource server at `rs`: `/api`, `/mcp`.
pub fn api(rs: SocketAddr) -> ProtectedResource {
    ProtectedResource::new(ResourceIndicator::new(format!("http://{rs}/api")).unwrap()).unwrap()
}

pub fn mcp(rs: SocketAddr) -> ProtectedResource {
    ProtectedResource::new(ResourceIndicator::new(format!("http://{rs}/mcp")).unwrap()).unwrap()
}

fn client(id: &str, secret: &str) -> Client {
    Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of(secret))
}

impl As {
    /// Starts it: `backup-job` gets JWT access tokens, `opaque-job` opaque
    /// ones (both client credentials, photos.read); `photo-api` may
    /// introspect every token. `{rs}/api` is the default resource.
    pub async fn start(rs: SocketAddr) -> Self {
        let (l, addr) = listener().await;
        let issuer = format!("http://{addr}");
        let store = MemoryStore::with_clients([
            client("backup-job", JOB_SECRET)
                .with_grant_types(["client_credentials"])
                .with_scope(Scope::parse("photos.read").unwrap()),
            client("opaque-job", JOB_SECRET)
                .with_grant_types(["client_credentials"])
                .with_scope(Scope::parse("photos.read").unwrap())
                .with_access_token_format(AccessTokenFormat::Opaque),
            client("photo-api", API_SECRET).with_introspect_any_token(true),
        ]);
        let keys = Arc::new(RotatingKeys::generate(JwsAlgorithm::Es256, &OsRandom));
        let server = Server::builder()
            .issuer(&issuer)
            .store(Arc::new(store))
            .scope(ScopeToken::new("photos.read").unwrap(), "read")
            .scope(ScopeToken::new("photos.write").unwrap(), "write")
            .default_resource(api(rs).identifier().clone())
            .resource(mcp(rs).identifier().clone())
            .jwt_access_tokens(Arc::clone(&keys) as Arc<dyn KeySet>)
            .build()
            .unwrap();
        let jwks_fetches = Arc::new(AtomicU64::new(0));
        let introspections = Arc::new(AtomicU64::new(0));
        let (j, i) = (Arc::clone(&jwks_fetches), Arc::clone(&introspections));
        let app: Router = tessera_axum::router(server.clone()).layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let (j, i) = (Arc::clone(&j), Arc::clone(&i));
                async move {
                    match req.uri().path() {
                        p if p.contains("jwks") => j.fetch_add(1, Ordering::SeqCst),
                        "/introspect" => i.fetch_add(1, Ordering::SeqCst),
                        _ => 0,
                    };
                    next.run(req).await
                }
            },
        ));
        tokio::spawn(async move { axum::serve(l, app).await });
        Self {
            issuer,
            server,
            keys,
            jwks_fetches,
            introspections,
            http: reqwest::Client::new(),
        }
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn introspections(&self) -> u64 {
        self.introspections.load(Ordering::SeqCst)
    }

    /// A client-credentials access token for `client` (RFC 6749 §4.4),
    /// for `resource` if given.
    pub async fn token(&self, client: &str, resource: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let r: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .header(
                "authorization",
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{client}:{JOB_SECRET}"))
                ),
            )
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// A client-credentials access token for `client` bound to the key of
    /// the DPoP `proof` (RFC 9449 §5): the answer's JSON.
    pub async fn dpop_token(&self, client: &str, proof: &str) -> Value {
        self.http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(JOB_SECRET))
            .header("dpop", proof)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Revokes `token` as `client` (RFC 7009).
    pub async fn revoke(&self, client: &str, token: &str) {
        let r = self
            .http
            .post(format!("{}/revoke", self.issuer))
            .basic_auth(client, Some(JOB_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Rotates the signing key: a new key (new `kid`) signs from now on.
    pub fn rotate(&self) -> String {
        self.rotate_to(SigningKey::generate(JwsAlgorithm::EdDsa, &OsRandom))
    }

    /// Rotates to an RSA key: RS256 signs from now on (RFC 9068 §2.1).
    pub fn rotate_to_rsa(&self) -> String {
        let pem = include_str!("../../../core/testdata/rsa-2048.pem");
        self.rotate_to(SigningKey::from_pem(pem, None).unwrap())
    }

    fn rotate_to(&self, key: SigningKey) -> String {
        let kid = key.kid().to_owned();
        self.keys
            .rotate(
                key,
                time::OffsetDateTime::now_utc(),
                time::Duration::hours(1),
            )
            .unwrap();
        kid
    }

    /// Claims of a valid token for `aud`, to be altered and signed.
    pub fn claims(&self, aud: &str) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": self.issuer, "sub": "alice", "aud": aud, "exp": now + 300, "iat": now,
            "jti": "abc", "client_id": "backup-job", "scope": "photos.read",
        })
    }

    /// `claims` signed by the server's current key with `typ`.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.keys
            .signing_key(time::OffsetDateTime::now_utc())
            .sign_jwt(typ, claims)
            .unwrap()
    }
}

/// A JWS with this header and payload and a garbage signature part.
pub fn forged(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(signature)
    )
}

/// A port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let (l, addr) = listener().await;
    drop(l);
    addr
}

/// GET `url` with `Authorization: Bearer token`: status, body, challenge.
pub async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, Value, String) {
    let mut r = http.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, challenge)
}
