//! The two servers under test: the demo provider itself
//! (`photo_provider::app` over a `photobook::Demo`, built in process so
//! that codes can be minted through the core into the store it serves) and
//! a bare axum handler doing only the minimal honest work of a token endpoint.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tessera::CodeChallenge;
use tessera::{AuthorizeOutcome, Client, Decision, HttpRequest, Lifetimes, Server, Store, Subject};

/// The demo's seeded client secrets (DEMO-CONTRACT.md).
pub use photobook::clients::{
    BACKUP_JOB_SECRET as BACKUP_SECRET, PHOTO_API_SECRET as API_SECRET, PRINTSHOP_SECRET,
};
pub const REDIRECT: &str = "http://127.0.0.1:9001/callback";
pub const ISSUER: &str = "http://127.0.0.1:9000";
/// A fixed PKCE verifier: every minted code carries its challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CC_BODY: &str = "grant_type=client_credentials&scope=photos.read";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Basic base64(id:secret)`.
pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The clients the demo provider seeds (`photobook::clients`).
pub fn clients() -> Vec<Client> {
    photobook::clients::seeded_clients()
}

/// A server over `store` configured like the demo provider
/// (`photobook::build_server`), with these lifetimes.
pub fn server(store: Arc<dyn Store>, lifetimes: Lifetimes) -> Result<Server, BoxError> {
    server_with_keys(store, lifetimes, None)
}

/// [`server`], issuing JWT access tokens (RFC 9068) signed with `keys`
/// when given, as `photo-provider --access-tokens jwt` does.
pub fn server_with_keys(
    store: Arc<dyn Store>,
    lifetimes: Lifetimes,
    keys: Option<Arc<dyn tessera::KeySet>>,
) -> Result<Server, BoxError> {
    let mut builder = Server::builder()
        .issuer(ISSUER)
        .shared_store(store)
        .realm(photobook::REALM)
        .lifetimes(lifetimes);
    for (token, words) in photobook::clients::scopes() {
        builder = builder.scope(token, words);
    }
    if let Some(keys) = keys {
        builder = builder.jwt_access_tokens(keys);
    }
    Ok(builder.build()?)
}

/// The demo provider's whole axum app (`photo_provider::app`: pages, OAuth
/// endpoints through `tessera_axum::router`, `GET /api/photos` behind the
/// `Bearer` extractor) over `server`.
pub fn provider_app(server: Server) -> Result<Router, BoxError> {
    Ok(photo_provider::app(photobook::Demo::new(server)?))
}

/// Mints authorization codes through the core, as the provider's login and
/// consent pages would: `authorize` (a user logged in) then `decide(Allow)`.
/// The codes are spread over many users, as a server's are: the built-in
/// limiter allows one owner 60 consent prompts a minute
/// (`Action::ConsentPrompt`).
#[derive(Debug)]
pub struct CodeMinter {
    server: Server,
    query: Arc<str>,
    owners: Vec<Subject>,
    next_owner: std::sync::atomic::AtomicUsize,
}

/// How many users [`CodeMinter`] spreads its codes over.
const OWNERS: usize = 50_000;

impl CodeMinter {
    pub fn new(server: Server) -> Self {
        let query = format!(
            "response_type=code&client_id=printshop&redirect_uri={}&scope=photos.read%20profile&state=af0ifjsldkj&code_challenge={}&code_challenge_method=S256",
            encode(REDIRECT),
            CodeChallenge::s256(VERIFIER)
        );
        Self {
            server,
            query: query.into(),
            owners: (0..OWNERS)
                .map(|i| Subject::new(format!("user{i}")))
                .collect(),
            next_owner: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A code of the next user in turn.
    pub async fn code(&self) -> Result<String, BoxError> {
        let n = self
            .next_owner
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.code_for(&self.owners[n % OWNERS]).await
    }

    async fn code_for(&self, owner: &Subject) -> Result<String, BoxError> {
        let handle = match self.server.authorize(&self.query, Some(owner)).await {
            AuthorizeOutcome::Consent(p) => p.handle,
            other => return Err(format!("expected a consent prompt, got {other:?}").into()),
        };
        match self.server.decide(&handle, owner, Decision::Allow).await {
            AuthorizeOutcome::Redirect(r) => query_param(r.location(), "code")
                .ok_or_else(|| format!("no code in {}", r.location()).into()),
            other => Err(format!("expected a redirect, got {other:?}").into()),
        }
    }

    /// A code exchanged through the core: alice's (access, refresh) tokens
    /// (alice has photos: the protected API answers what the bare handler
    /// does).
    pub async fn tokens(&self) -> Result<(String, String), BoxError> {
        let code = self.code_for(&Subject::new("alice")).await?;
        let body = format!(
            "grant_type=authorization_code&code={code}{}",
            exchange_tail()
        );
        let auth = basic("printshop", PRINTSHOP_SECRET);
        let r = self
            .server
            .token_response(&HttpRequest::form_post(&body, Some(&auth)))
            .await
            .map_err(|e| format!("code exchange failed: {e}"))?;
        let refresh = r.refresh_token.ok_or("no refresh token")?;
        Ok((r.access_token, refresh))
    }
}

/// What follows the code in a token request for a minted code.
pub fn exchange_tail() -> String {
    format!(
        "&redirect_uri={}&code_verifier={VERIFIER}",
        encode(REDIRECT)
    )
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ---- The bare handler -----------------------------------------------------------

fn json_response(status: StatusCode, body: String, no_store: bool) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if no_store {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    }
    r
}

/// The registered (id, SHA-256 of secret) pairs the bare handler checks against.
#[derive(Debug, Clone)]
pub struct BareClients(Arc<[(String, [u8; 32])]>);

impl BareClients {
    pub fn demo() -> Self {
        Self(
            [
                ("backup-job", BACKUP_SECRET),
                ("printshop", PRINTSHOP_SECRET),
                ("photo-api", API_SECRET),
            ]
            .iter()
            .map(|(id, s)| ((*id).to_owned(), Sha256::digest(s.as_bytes()).into()))
            .collect(),
        )
    }
}

/// The minimal honest work of a token endpoint, and nothing of OAuth
/// beyond it: parse the form and the Basic header, check the secret with
/// one SHA-256, mint one 32-byte random token, answer a JSON body with
/// `Cache-Control: no-store`. `None` means `401`. The same work answers the
/// bare `/introspect`, whose form has no `grant_type`.
pub fn minimal_token(clients: &BareClients, authorization: &str, body: &[u8]) -> Option<String> {
    minimal_token_parts(clients, authorization, body).map(|(_, json)| json)
}

/// [`minimal_token`]'s work, also handing back the minted token.
fn minimal_token_parts(
    clients: &BareClients,
    authorization: &str,
    body: &[u8],
) -> Option<(String, String)> {
    let mut grant_type = None;
    let mut scope = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match &*k {
            "grant_type" => grant_type = Some(v),
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    let raw = STANDARD
        .decode(authorization.strip_prefix("Basic ")?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    clients.0.iter().find(|(i, h)| i == id && *h == digest)?;
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let token = URL_SAFE_NO_PAD.encode(random);
    let json = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope.as_deref().or(grant_type.as_deref()).unwrap_or(""),
    })
    .to_string();
    Some((token, json))
}

/// [`minimal_token_parts`] from a request's headers and body.
fn minimal_from(
    clients: &BareClients,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(String, String)> {
    let auth = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    minimal_token_parts(clients, auth, body)
}

/// What the bare handlers answer a client they do not recognise.
fn unrecognised_client() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"invalid_client"}"#.into(),
        true,
    )
}

async fn bare_token(
    axum::extract::State(clients): axum::extract::State<BareClients>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match minimal_token(&clients, auth, &body) {
        Some(json) => json_response(StatusCode::OK, json, true),
        None => json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_client"}"#.into(),
            true,
        ),
    }
}

/// alice's photos, serialised as the provider answers them.
fn photos_json() -> String {
    use photobook::photos::{PHOTOS, PhotoList};
    let list = PhotoList {
        owner: "alice".into(),
        photos: PHOTOS
            .iter()
            .filter(|p| p.owner == "alice")
            .cloned()
            .collect(),
    };
    serde_json::to_string(&list).unwrap_or_default()
}

/// The resource side's minimal work: parse the Bearer header, one SHA-256
/// of the token (what a store lookup is keyed by), the same JSON body.
async fn bare_api(headers: HeaderMap) -> Response {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) => {
            std::hint::black_box(Sha256::digest(t.as_bytes()));
            json_response(StatusCode::OK, photos_json(), false)
        }
        None => json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_token"}"#.into(),
            false,
        ),
    }
}

/// The bare server: the same paths as the provider, each doing the
/// minimal work above.
pub fn bare_app() -> Router {
    Router::new()
        .route("/token", post(bare_token))
        .route("/introspect", post(bare_token))
        .route("/api/photos", get(bare_api))
        .with_state(BareClients::demo())
}

// ---- The bare handler with one in-memory insert -------------------------------

/// Shards of the bare handler's token table (as the memory store's grants).
const BARE_MAP_SHARDS: usize = 64;

/// Token hash -> expiry (unix seconds): the least a process must keep to
/// answer for a token later.
type BareTable = Vec<std::sync::Mutex<std::collections::HashMap<[u8; 32], u64>>>;

#[derive(Clone)]
struct BareMap {
    clients: BareClients,
    table: Arc<BareTable>,
}

/// The minimal work of [`minimal_token`], then ONE insert of the token's
/// SHA-256 and expiry into a sharded in-memory map before answering: the
/// least a token endpoint that can later recognise its tokens does in
/// memory, as `bare+SET` is on Redis. Nothing is ever removed (tokens
/// live an hour, longer than any run), as in the provider's store.
async fn bare_map_token(
    axum::extract::State(state): axum::extract::State<BareMap>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((token, json)) = minimal_from(&state.clients, &headers, &body) else {
        return unrecognised_client();
    };
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let shard = &state.table[usize::from(hash[0]) % BARE_MAP_SHARDS];
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(hash, expires);
    json_response(StatusCode::OK, json, true)
}

/// The bare server plus one in-memory insert per token
/// ([`bare_map_token`]) on `/token` and `/introspect`; `/api/photos` as
/// [`bare_app`].
pub fn bare_map_app() -> Router {
    let table: BareTable = (0..BARE_MAP_SHARDS)
        .map(|_| std::sync::Mutex::new(std::collections::HashMap::new()))
        .collect();
    Router::new()
        .route("/token", post(bare_map_token))
        .route("/introspect", post(bare_map_token))
        .route("/api/photos", get(bare_api))
        .with_state(BareMap {
            clients: BareClients::demo(),
            table: Arc::new(table),
        })
}

// ---- The bare handler with one Redis round trip ------------------------------

#[derive(Clone)]
struct BareRedis {
    clients: BareClients,
    conn: redis::aio::ConnectionManager,
}

/// The minimal work of [`minimal_token`], then ONE `SET <sha256 of the
/// token> <client and scope> EX 3600` through a multiplexed connection
/// (the kind the Redis store uses) before answering: the least a token
/// endpoint on Redis does.
async fn bare_redis_token(
    axum::extract::State(state): axum::extract::State<BareRedis>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((token, json)) = minimal_from(&state.clients, &headers, &body) else {
        return unrecognised_client();
    };
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut key = String::with_capacity(10 + 43);
    key.push_str("bench:tok:");
    URL_SAFE_NO_PAD.encode_string(hash, &mut key);
    let mut conn = state.conn.clone();
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg(key)
        .arg("backup-job photos.read")
        .arg("EX")
        .arg(3600)
        .query_async(&mut conn)
        .await;
    match set {
        Ok(()) => json_response(StatusCode::OK, json, true),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"temporarily_unavailable"}"#.into(),
            true,
        ),
    }
}

/// The resource side's minimal work ([`bare_api`]) plus one Redis round
/// trip (`GET` of the token's hash), as a store lookup would make.
async fn bare_redis_api(
    axum::extract::State(state): axum::extract::State<BareRedis>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(t) = token else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_token"}"#.into(),
            false,
        );
    };
    let mut key = String::with_capacity(10 + 43);
    key.push_str("bench:tok:");
    URL_SAFE_NO_PAD.encode_string(Sha256::digest(t.as_bytes()), &mut key);
    let mut conn = state.conn.clone();
    let got: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg(key).query_async(&mut conn).await;
    match got {
        Ok(_) => json_response(StatusCode::OK, photos_json(), false),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"temporarily_unavailable"}"#.into(),
            false,
        ),
    }
}

/// The bare server on Redis: `/token` and `/introspect` do the minimal
/// work plus one `SET`, `/api/photos` plus one `GET`, through `conn`: one
/// Redis round trip per request.
pub fn bare_redis_app(conn: redis::aio::ConnectionManager) -> Router {
    Router::new()
        .route("/token", post(bare_redis_token))
        .route("/introspect", post(bare_redis_token))
        .route("/api/photos", get(bare_redis_api))
        .with_state(BareRedis {
            clients: BareClients::demo(),
            conn,
        })
}

// ---- The bare handler with one INSERT (PostgreSQL) ----------------------------

/// The table the bare handler on PostgreSQL inserts into: one row per
/// minted token, keyed by its SHA-256, as a store keys a token.
pub const BARE_TABLE: &str = "bench_tokens";

#[derive(Debug, Clone)]
struct BarePg {
    clients: BareClients,
    pool: sqlx::PgPool,
}

/// Creates (or empties) [`BARE_TABLE`] in the database `pool` opens.
pub async fn bare_pg_table(pool: &sqlx::PgPool) -> Result<(), BoxError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_tokens (hash bytea PRIMARY KEY, expires_at timestamptz NOT NULL)",
    )
    .execute(pool)
    .await?;
    sqlx::query("TRUNCATE bench_tokens").execute(pool).await?;
    Ok(())
}

/// The minimal work of [`minimal_token`], then ONE `INSERT` of the token's
/// SHA-256 and expiry into [`BARE_TABLE`] before answering: the least a
/// token endpoint on a database does.
async fn bare_pg_token(
    axum::extract::State(state): axum::extract::State<BarePg>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((token, json)) = minimal_from(&state.clients, &headers, &body) else {
        return unrecognised_client();
    };
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let inserted = sqlx::query(
        "INSERT INTO bench_tokens (hash, expires_at) VALUES ($1, now() + interval '1 hour')",
    )
    .bind(&hash[..])
    .execute(&state.pool)
    .await;
    match inserted {
        Ok(_) => json_response(StatusCode::OK, json, true),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"temporarily_unavailable"}"#.into(),
            true,
        ),
    }
}

/// The bare server on PostgreSQL: `/token` does the minimal work plus one
/// `INSERT` through `pool` (the table made by [`bare_pg_table`]).
pub fn bare_pg_app(pool: sqlx::PgPool) -> Router {
    Router::new()
        .route("/token", post(bare_pg_token))
        .with_state(BarePg {
            clients: BareClients::demo(),
            pool,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_checks_the_secret() {
        let c = BareClients::demo();
        let ok = minimal_token(&c, &basic("backup-job", BACKUP_SECRET), CC_BODY.as_bytes());
        assert!(ok.is_some_and(|b| b.contains("\"access_token\"")));
        let bad = minimal_token(&c, &basic("backup-job", "nope"), CC_BODY.as_bytes());
        assert!(bad.is_none());
    }
}
