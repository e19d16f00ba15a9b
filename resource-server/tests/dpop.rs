//! DPoP-bound access tokens (RFC 9449) at a resource server in its own
//! axum app, over HTTP, for both remote verifiers: JWT access tokens
//! validated against the JWKS (`cnf.jkt` in the token, §6.1) and
//! introspection (`cnf.jkt` in the answer, §6.2; opaque and JWT tokens).
//! Each refusal is checked for its answer: `401` with a `DPoP` challenge,
//! `invalid_dpop_proof` for a bad proof (§7.1), `invalid_token` for a bound
//! token sent as `Bearer` (§7.2); a proof's `jti` is used once (§11.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../core/tests/dpop_client/mod.rs"]
mod dpop_client;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tessera::storage::ReplayStore;
use tessera::{DpopPolicy, RemoteResource, TokenVerifier};
use tessera_axum::Bearer;
use tessera_resource_server::{IntrospectionVerifier, JwksVerifier, MemoryReplayCache};

use common::{API_SECRET, As, api, listener};
use dpop_client::DpopKey;

/// `GET /api/photos` (and `POST`): who the token is for and its key.
async fn photos<V: TokenVerifier + Clone>(token: Bearer<V>) -> axum::Json<Value> {
    axum::Json(json!({
        "client": token.client_id.as_str(),
        "jkt": token.dpop_jkt.clone(),
    }))
}

fn app<V: TokenVerifier + Clone>(verifier: V) -> Router {
    Router::new()
        .route("/api/photos", get(photos::<V>).post(photos::<V>))
        .route("/api/other", get(photos::<V>))
        .with_state(verifier)
}

async fn serve(app: Router, l: tokio::net::TcpListener) {
    tokio::spawn(async move { axum::serve(l, app).await });
}

/// Which verifier a test runs against.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Jwks,
    Introspection,
}

fn verifier(
    kind: Kind,
    rs: RemoteResource,
    auth: &As,
    replay: Option<Arc<dyn ReplayStore>>,
    policy: Option<DpopPolicy>,
) -> tessera::SharedVerifier {
    match kind {
        Kind::Jwks => {
            let mut b = JwksVerifier::builder(rs).jwks_uri(format!("{}/jwks", auth.issuer));
            if let Some(r) = replay {
                b = b.replay_store(r);
            }
            if let Some(p) = policy {
                b = b.dpop_policy(p);
            }
            tessera::SharedVerifier::new(b.build().unwrap())
        }
        Kind::Introspection => {
            let mut b = IntrospectionVerifier::builder(rs, "photo-api", API_SECRET);
            if let Some(r) = replay {
                b = b.replay_store(r);
            }
            if let Some(p) = policy {
                b = b.dpop_policy(p);
            }
            tessera::SharedVerifier::new(b.build().unwrap())
        }
    }
}

/// One request: status, JSON body, `WWW-Authenticate`, `DPoP-Nonce`.
struct Answer {
    status: u16,
    body: Value,
    challenge: String,
    nonce: Option<String>,
}

async fn call(
    method: reqwest::Method,
    url: &str,
    authorization: Option<&str>,
    proof: Option<&str>,
) -> Answer {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(a) = authorization {
        r = r.header("authorization", a);
    }
    if let Some(p) = proof {
        r = r.header("dpop", p);
    }
    let r = r.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let challenge = header("www-authenticate").unwrap_or_default();
    let nonce = header("dpop-nonce");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        challenge,
        nonce,
    }
}

/// A `401` with a `DPoP` challenge carrying `error` (RFC 9449 §7.1).
fn expect_dpop_refusal(a: &Answer, error: &str, what: &str) {
    assert_eq!(a.status, 401, "{what}: {}", a.body);
    assert_eq!(a.body["error"], error, "{what}");
    assert!(
        a.challenge.starts_with("DPoP ") && a.challenge.contains("algs=\""),
        "{what}: {}",
        a.challenge
    );
    assert!(
        a.challenge.contains(&format!("error=\"{error}\"")),
        "{what}: {}",
        a.challenge
    );
}

/// A DPoP-bound token of `client` for `key` (RFC 9449 §5).
async fn bound_token(auth: &As, client: &str, key: &DpopKey) -> String {
    let proof = key.proof("POST", &format!("{}/token", auth.issuer), None);
    let answer = auth.dpop_token(client, &proof).await;
    assert_eq!(answer["token_type"], "DPoP", "{answer}");
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Every RFC 9449 §7 check at a resource server using `kind`, with tokens
/// of `client` (`backup-job`: JWT, `opaque-job`: opaque).
async fn dpop_checks(kind: Kind, client: &str) {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    serve(app(verifier(kind, rs, &auth, None, None)), l).await;
    let url = format!("http://{rs_addr}/api/photos");
    let what = |w: &str| format!("{kind:?}, {client}: {w}");

    let key = DpopKey::es256();
    let token = bound_token(&auth, client, &key).await;
    let dpop = format!("DPoP {token}");

    // A valid proof: accepted, the token's key known to the handler.
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&dpop),
        Some(&key.proof("GET", &url, Some(&token))),
    )
    .await;
    assert_eq!(a.status, 200, "{}: {}", what("valid proof"), a.body);
    assert_eq!(a.body["jkt"], key.thumbprint());
    assert_eq!(a.body["client"], client);
    // Another method and path, each with its own proof.
    let other = format!("http://{rs_addr}/api/other?page=2");
    let a = call(
        reqwest::Method::GET,
        &other,
        Some(&dpop),
        Some(&key.proof("GET", &format!("http://{rs_addr}/api/other"), Some(&token))),
    )
    .await;
    assert_eq!(
        a.status,
        200,
        "{}: {}",
        what("htu without the query"),
        a.body
    );
    let a = call(
        reqwest::Method::POST,
        &url,
        Some(&dpop),
        Some(&key.proof("POST", &url, Some(&token))),
    )
    .await;
    assert_eq!(a.status, 200, "{}: {}", what("POST"), a.body);

    // §11.1: the same proof again is a replay.
    let proof = key.proof("GET", &url, Some(&token));
    let a = call(reqwest::Method::GET, &url, Some(&dpop), Some(&proof)).await;
    assert_eq!(a.status, 200, "{}", what("first use"));
    let a = call(reqwest::Method::GET, &url, Some(&dpop), Some(&proof)).await;
    expect_dpop_refusal(&a, "invalid_dpop_proof", &what("replayed jti"));

    // Each bad proof: 401 invalid_dpop_proof (§7.1).
    let thief = DpopKey::es256();
    let other_token = bound_token(&auth, client, &key).await;
    let mut no_ath = key.claims("GET", &url, None);
    no_ath.as_object_mut().unwrap().remove("ath");
    let cases = [
        ("no proof", None),
        // A stolen token used with the thief's own key (§7.1: the key must
        // be the token's), ath right.
        (
            "another key (a stolen token)",
            Some(thief.proof("GET", &url, Some(&token))),
        ),
        // §4.3 item 12: ath of another token, or none.
        (
            "ath of another token",
            Some(key.proof("GET", &url, Some(&other_token))),
        ),
        ("no ath", Some(key.sign(&key.header(), &no_ath))),
        // §4.3 items 8 and 9.
        ("htm POST", Some(key.proof("POST", &url, Some(&token)))),
        (
            "htu of another path",
            Some(key.proof("GET", &format!("http://{rs_addr}/api/other"), Some(&token))),
        ),
        (
            "htu of another origin",
            Some(key.proof("GET", "https://elsewhere.example/api/photos", Some(&token))),
        ),
        (
            "htu of the authorization server",
            Some(key.proof("GET", &format!("{}/api/photos", auth.issuer), Some(&token))),
        ),
        ("not a proof", Some("not-a-jws".to_owned())),
        (
            "two proofs",
            Some(format!(
                "{}, {}",
                key.proof("GET", &url, Some(&token)),
                key.proof("GET", &url, Some(&token))
            )),
        ),
    ];
    for (w, proof) in cases {
        let a = call(reqwest::Method::GET, &url, Some(&dpop), proof.as_deref()).await;
        expect_dpop_refusal(&a, "invalid_dpop_proof", &what(w));
    }

    // §7.2: a bound token sent as a bearer token, with or without a proof:
    // 401 invalid_token, with a DPoP challenge.
    let bearer = format!("Bearer {token}");
    for (w, proof) in [
        ("bound token as Bearer", None),
        (
            "bound token as Bearer with a proof",
            Some(key.proof("GET", &url, Some(&token))),
        ),
    ] {
        let a = call(reqwest::Method::GET, &url, Some(&bearer), proof.as_deref()).await;
        expect_dpop_refusal(&a, "invalid_token", &what(w));
    }
    // An unbound token under the DPoP scheme: not what it claims (§7.1).
    let plain = auth.token(client, None).await;
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&format!("DPoP {plain}")),
        Some(&key.proof("GET", &url, Some(&plain))),
    )
    .await;
    expect_dpop_refusal(&a, "invalid_token", &what("unbound token as DPoP"));
    // ... and as Bearer it still works.
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&format!("Bearer {plain}")),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", what("unbound token as Bearer"));
    assert_eq!(a.body["jkt"], Value::Null);

    // The good key still works after all of these (nothing consumed it).
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&dpop),
        Some(&key.proof("GET", &url, Some(&token))),
    )
    .await;
    assert_eq!(a.status, 200, "{}", what("a fresh proof at the end"));
}

#[tokio::test]
async fn jwks_verifier_checks_dpop_proofs_rfc9449_7() {
    dpop_checks(Kind::Jwks, "backup-job").await;
}

#[tokio::test]
async fn introspection_verifier_checks_dpop_proofs_of_opaque_tokens_rfc9449_7() {
    dpop_checks(Kind::Introspection, "opaque-job").await;
}

#[tokio::test]
async fn introspection_verifier_checks_dpop_proofs_of_jwt_tokens_rfc9449_7() {
    dpop_checks(Kind::Introspection, "backup-job").await;
}

/// Two resource server instances behind one public origin, sharing a
/// replay store: a proof used at one is refused at the other (§11.1).
/// Each with its own default cache, the same proof would pass twice: the
/// control shows that the shared store is what refuses it.
async fn shared_replay_store(kind: Kind) {
    let (l1, rs1) = listener().await;
    let (l2, rs2) = listener().await;
    let auth = As::start(rs1).await;
    // Clients address both at rs1's origin (behind one load balancer).
    let public = format!("http://{rs1}");
    let rs = RemoteResource::new(&auth.issuer, api(rs1)).with_origin(&public);
    let shared: Arc<dyn ReplayStore> = Arc::new(tessera_memory::MemoryStore::new());
    serve(
        app(verifier(
            kind,
            rs.clone(),
            &auth,
            Some(Arc::clone(&shared)),
            None,
        )),
        l1,
    )
    .await;
    serve(
        app(verifier(kind, rs.clone(), &auth, Some(shared), None)),
        l2,
    )
    .await;
    let client = match kind {
        Kind::Jwks => "backup-job",
        Kind::Introspection => "opaque-job",
    };
    let key = DpopKey::ed25519();
    let token = bound_token(&auth, client, &key).await;
    let dpop = format!("DPoP {token}");
    let htu = format!("{public}/api/photos");
    let proof = key.proof("GET", &htu, Some(&token));
    let at = |rs: SocketAddr| format!("http://{rs}/api/photos");
    let a = call(reqwest::Method::GET, &at(rs1), Some(&dpop), Some(&proof)).await;
    assert_eq!(a.status, 200, "{kind:?}: {}", a.body);
    let a = call(reqwest::Method::GET, &at(rs2), Some(&dpop), Some(&proof)).await;
    expect_dpop_refusal(
        &a,
        "invalid_dpop_proof",
        &format!("{kind:?}: replayed at instance 2"),
    );
    let a = call(
        reqwest::Method::GET,
        &at(rs2),
        Some(&dpop),
        Some(&key.proof("GET", &htu, Some(&token))),
    )
    .await;
    assert_eq!(
        a.status, 200,
        "{kind:?}: a fresh proof at instance 2: {}",
        a.body
    );

    // Control: instances with their own caches both take one proof.
    let (l3, rs3) = listener().await;
    serve(app(verifier(kind, rs, &auth, None, None)), l3).await;
    let proof = key.proof("GET", &htu, Some(&token));
    assert_eq!(
        call(reqwest::Method::GET, &at(rs1), Some(&dpop), Some(&proof))
            .await
            .status,
        200
    );
    assert_eq!(
        call(reqwest::Method::GET, &at(rs3), Some(&dpop), Some(&proof))
            .await
            .status,
        200,
        "{kind:?}: a separate cache does not know the proof"
    );
}

#[tokio::test]
async fn jwks_verifiers_sharing_a_replay_store_use_each_proof_once_rfc9449_11_1() {
    shared_replay_store(Kind::Jwks).await;
}

#[tokio::test]
async fn introspection_verifiers_sharing_a_replay_store_use_each_proof_once_rfc9449_11_1() {
    shared_replay_store(Kind::Introspection).await;
}

/// A full replay cache refuses new proofs with `503
/// temporarily_unavailable` (never forgetting a live `jti`, which would let
/// its replay through), and the replay of a remembered one is still
/// refused; nonces (§8, §9) are asked for with `use_dpop_nonce`.
async fn full_cache_and_nonces(kind: Kind) {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    let cache = Arc::new(MemoryReplayCache::new(1));
    serve(
        app(verifier(kind, rs.clone(), &auth, Some(cache.clone()), None)),
        l,
    )
    .await;
    let client = match kind {
        Kind::Jwks => "backup-job",
        Kind::Introspection => "opaque-job",
    };
    let url = format!("http://{rs_addr}/api/photos");
    let key = DpopKey::es256();
    let token = bound_token(&auth, client, &key).await;
    let dpop = format!("DPoP {token}");
    let first = key.proof("GET", &url, Some(&token));
    let a = call(reqwest::Method::GET, &url, Some(&dpop), Some(&first)).await;
    assert_eq!(a.status, 200, "{kind:?}: {}", a.body);
    assert_eq!(cache.len(), 1);
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&dpop),
        Some(&key.proof("GET", &url, Some(&token))),
    )
    .await;
    assert_eq!(a.status, 503, "{kind:?}: full cache: {}", a.body);
    assert_eq!(a.body["error"], "temporarily_unavailable");
    let a = call(reqwest::Method::GET, &url, Some(&dpop), Some(&first)).await;
    expect_dpop_refusal(
        &a,
        "invalid_dpop_proof",
        &format!("{kind:?}: replay at the cap"),
    );
    // Bad proofs never reach the cache: still one entry.
    let thief = DpopKey::es256();
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&dpop),
        Some(&thief.proof("GET", &url, Some(&token))),
    )
    .await;
    expect_dpop_refusal(&a, "invalid_dpop_proof", &format!("{kind:?}: another key"));
    assert_eq!(cache.len(), 1);

    // Server nonces (§9): a proof without the current one is use_dpop_nonce
    // with a DPoP-Nonce header; with it, accepted.
    let (l, rs_addr) = listener().await;
    let policy = DpopPolicy::new().with_nonces([3; 32], time::Duration::seconds(60));
    // (The tokens are for the first server's resource; this one answers
    // at its own origin.)
    let rs = rs.with_origin(format!("http://{rs_addr}"));
    serve(app(verifier(kind, rs, &auth, None, Some(policy))), l).await;
    let url = format!("http://{rs_addr}/api/photos");
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&dpop),
        Some(&key.proof("GET", &url, Some(&token))),
    )
    .await;
    expect_dpop_refusal(&a, "use_dpop_nonce", &format!("{kind:?}: no nonce"));
    let nonce = a.nonce.expect("a DPoP-Nonce header");
    let a = call(
        reqwest::Method::GET,
        &url,
        Some(&dpop),
        Some(&key.proof_with_nonce("GET", &url, Some(&token), &nonce)),
    )
    .await;
    assert_eq!(a.status, 200, "{kind:?}: with the nonce: {}", a.body);
}

#[tokio::test]
async fn jwks_verifier_replay_cache_is_bounded_and_nonces_work() {
    full_cache_and_nonces(Kind::Jwks).await;
}

#[tokio::test]
async fn introspection_verifier_replay_cache_is_bounded_and_nonces_work() {
    full_cache_and_nonces(Kind::Introspection).await;
}

/// One proof raced by many requests at once: exactly one is accepted
/// (RFC 9449 §11.1; the replay store's first use is atomic).
async fn racing_replays(kind: Kind) {
    let (l, rs_addr) = listener().await;
    let auth = As::start(rs_addr).await;
    let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
    serve(app(verifier(kind, rs, &auth, None, None)), l).await;
    let client = match kind {
        Kind::Jwks => "backup-job",
        Kind::Introspection => "opaque-job",
    };
    let url = format!("http://{rs_addr}/api/photos");
    let key = DpopKey::es256();
    let token = bound_token(&auth, client, &key).await;
    let dpop = format!("DPoP {token}");
    // Warm the verifier (JWKS fetched, introspection answer cached).
    let warm = key.proof("GET", &url, Some(&token));
    assert_eq!(
        call(reqwest::Method::GET, &url, Some(&dpop), Some(&warm))
            .await
            .status,
        200
    );
    let proof = key.proof("GET", &url, Some(&token));
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let (url, dpop, proof) = (url.clone(), dpop.clone(), proof.clone());
            tokio::spawn(async move {
                call(reqwest::Method::GET, &url, Some(&dpop), Some(&proof))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{kind:?}: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{kind:?}: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_verifier_one_proof_raced_is_accepted_once() {
    racing_replays(Kind::Jwks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_verifier_one_proof_raced_is_accepted_once() {
    racing_replays(Kind::Introspection).await;
}

/// A replay store that cannot answer (Redis down).
struct DownStore;

#[async_trait::async_trait]
impl ReplayStore for DownStore {
    async fn first_use(
        &self,
        _key: tessera::storage::ReplayKey,
        _expires_at: time::OffsetDateTime,
        _now: time::OffsetDateTime,
    ) -> Result<bool, tessera::StoreError> {
        Err(tessera::StoreError::unavailable("connection refused"))
    }
}

/// The replay store unreachable: a valid proof is not accepted unchecked,
/// the request is `503 temporarily_unavailable` (never `200`, never a
/// client error: the proof may be good), for both verifiers.
#[tokio::test]
async fn an_unreachable_replay_store_is_503_never_accepted() {
    for (kind, client) in [
        (Kind::Jwks, "backup-job"),
        (Kind::Introspection, "opaque-job"),
    ] {
        let (l, rs_addr) = listener().await;
        let auth = As::start(rs_addr).await;
        let rs = RemoteResource::new(&auth.issuer, api(rs_addr));
        serve(
            app(verifier(kind, rs, &auth, Some(Arc::new(DownStore)), None)),
            l,
        )
        .await;
        let url = format!("http://{rs_addr}/api/photos");
        let key = DpopKey::es256();
        let token = bound_token(&auth, client, &key).await;
        let a = call(
            reqwest::Method::GET,
            &url,
            Some(&format!("DPoP {token}")),
            Some(&key.proof("GET", &url, Some(&token))),
        )
        .await;
        assert_eq!(a.status, 503, "{kind:?}: {}", a.body);
        assert_eq!(a.body["error"], "temporarily_unavailable", "{kind:?}");
        // Bearer tokens need no replay store.
        let plain = auth.token(client, None).await;
        let a = call(
            reqwest::Method::GET,
            &url,
            Some(&format!("Bearer {plain}")),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{kind:?}");
    }
}
