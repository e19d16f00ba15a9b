//! JWT access tokens (RFC 9068) beside opaque ones, single-threaded, memory
//! store: what a resource server pays per request to validate a token, and
//! what the token endpoint pays to issue one.
//!
//! DPoP (RFC 9449): what a resource server pays to check a proof per
//! request (parse, signature by the embedded key, htm/htu/iat/ath), beside
//! the token validations.
//!
//! `cargo bench -p tessera --bench jwt`. Printed per operation: criterion's
//! estimate; the summary at the end gives each JWT figure as a ratio of
//! its opaque counterpart, measured in the same run. `remote check_jwt`
//! is what a resource server in another process pays per request
//! (`RemoteResource::check_jwt` against keys parsed from the JWKS, as
//! `tessera-resource-server`'s `JwksVerifier` holds them).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::Criterion;
use tessera::{
    AccessTokenValidator, Client, ClientId, Endpoint, HttpRequest, Jwks, JwsAlgorithm, KeySet,
    ProtectedResource, RemoteResource, ResourceIndicator, RotatingKeys, Scope, ScopeToken,
    SecretHash, Server, StaticKeys,
};
use tessera_memory::MemoryStore;

const ISSUER: &str = "http://127.0.0.1:9000";
const BODY: &str = "grant_type=client_credentials&scope=photos.read";

fn server(keys: Option<Arc<dyn KeySet>>) -> Server {
    let job = Client::confidential(ClientId::new("job").unwrap(), "Job", SecretHash::of("s"))
        .with_grant_types(["client_credentials"])
        .with_scope(Scope::parse("photos.read").unwrap());
    let b = Server::builder()
        .issuer(ISSUER)
        .store(Arc::new(MemoryStore::with_clients([job])))
        .scope(ScopeToken::new("photos.read").unwrap(), "read");
    match keys {
        Some(k) => b.jwt_access_tokens(k),
        None => b,
    }
    .build()
    .unwrap()
}

fn basic() -> String {
    format!("Basic {}", STANDARD.encode("job:s"))
}

async fn issue(server: &Server, auth: &str) -> String {
    let r = server
        .handle(Endpoint::Token, &HttpRequest::form_post(BODY, Some(auth)))
        .await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// Runs `f` under criterion (its estimate printed) and returns the mean
/// time per call of a 1 s loop before it, for the summary's ratios. (The
/// loop's time is taken before criterion runs: criterion's own seconds
/// must not count.)
fn mean_ns(c: &mut Criterion, name: &str, f: impl FnMut() + Copy) -> f64 {
    let mut f = f;
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < std::time::Duration::from_secs(1) {
        f();
        n += 1;
    }
    let per_call = start.elapsed().as_nanos() as f64 / n as f64;
    c.bench_function(name, |b| b.iter(f));
    per_call
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    let auth = basic();
    let opaque = server(None);
    let mut rows = Vec::new();
    for alg in [JwsAlgorithm::Es256, JwsAlgorithm::EdDsa] {
        let keys = Arc::new(RotatingKeys::generate(alg, &tessera::OsRandom));
        let jwt = server(Some(keys.clone()));
        let opaque_token = rt.block_on(issue(&opaque, &auth));
        let jwt_token = rt.block_on(issue(&jwt, &auth));
        let opaque_header = format!("Bearer {opaque_token}");
        let jwt_header = format!("Bearer {jwt_token}");
        let validator = AccessTokenValidator::new(ISSUER, ISSUER, keys.clone());
        let now = time::OffsetDateTime::now_utc();
        let fetched = serde_json::to_vec(&jwt.jwks().unwrap()).unwrap();
        let remote_keys = StaticKeys::new(Jwks::parse_verifying_keys(&fetched).unwrap());
        let remote = RemoteResource::new(
            ISSUER,
            ProtectedResource::new(ResourceIndicator::new(ISSUER).unwrap()).unwrap(),
        );

        let o = mean_ns(&mut c, "verify_bearer/opaque (memory store)", || {
            rt.block_on(async {
                black_box(
                    opaque
                        .verify_bearer(Some(&opaque_header), None)
                        .await
                        .unwrap(),
                );
            })
        });
        let local = mean_ns(&mut c, &format!("validate/{alg} (local, no store)"), || {
            black_box(validator.validate(black_box(&jwt_token), now).unwrap());
        });
        let remote_ns = mean_ns(
            &mut c,
            &format!("remote check_jwt/{alg} (JWKS keys)"),
            || {
                black_box(
                    remote
                        .check_jwt("/api/photos", black_box(&jwt_token), &remote_keys, now)
                        .unwrap(),
                );
            },
        );
        let full = mean_ns(
            &mut c,
            &format!("verify_bearer/{alg} (signature + store)"),
            || {
                rt.block_on(async {
                    black_box(jwt.verify_bearer(Some(&jwt_header), None).await.unwrap());
                })
            },
        );
        let issue_o = mean_ns(&mut c, "token endpoint/opaque", || {
            rt.block_on(async {
                black_box(issue(&opaque, &auth).await);
            })
        });
        let issue_j = mean_ns(&mut c, &format!("token endpoint/{alg}"), || {
            rt.block_on(async {
                black_box(issue(&jwt, &auth).await);
            })
        });
        // The proof's `iat` is now: check it against now, not the instant
        // the loop began (the benches before took longer than the window).
        let (proof, htu) = dpop_proof(alg, &jwt_token);
        let dpop_now = time::OffsetDateTime::now_utc();
        let dpop_context =
            tessera::ProofContext::new("GET", &htu, dpop_now).with_access_token(&jwt_token);
        let policy = tessera::DpopPolicy::new();
        let dpop = mean_ns(
            &mut c,
            &format!("dpop proof/{alg} (all checks but replay)"),
            || {
                black_box(
                    tessera::verify_dpop_proof(Some(black_box(&proof)), &dpop_context, &policy)
                        .unwrap(),
                );
            },
        );
        rows.push((alg, o, local, remote_ns, full, issue_o, issue_j, dpop));
    }
    println!("\nper operation, one thread (mean of a 1 s loop each, same run):");
    for (alg, o, local, remote_ns, full, issue_o, issue_j, dpop) in rows {
        println!(
            "{alg}: opaque verify_bearer {o:.0} ns | JWT local validate {local:.0} ns ({:.1}x) | remote check_jwt {remote_ns:.0} ns ({:.1}x) | JWT verify_bearer {full:.0} ns ({:.1}x) | token endpoint opaque {issue_o:.0} ns, JWT {issue_j:.0} ns: {:.2}x the opaque req/s | DPoP proof check {dpop:.0} ns ({:.1}x opaque verify_bearer)",
            local / o,
            remote_ns / o,
            full / o,
            issue_o / issue_j,
            dpop / o
        );
    }
    c.final_summary();
}

/// A DPoP proof (RFC 9449 §4.2) for `GET {ISSUER}/api/photos` with `ath` of
/// `token`, signed with a fresh key of `alg`, as a client would make it.
fn dpop_proof(alg: JwsAlgorithm, token: &str) -> (String, String) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use sha2::Digest;
    let htu = format!("{ISSUER}/api/photos");
    let seed: [u8; 32] = rand::random();
    type Sign = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let (jwk, sign): (serde_json::Value, Sign) = match alg {
        JwsAlgorithm::EdDsa => {
            let k = ed25519_dalek::SigningKey::from_bytes(&seed);
            let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.verifying_key().as_bytes())});
            (
                jwk,
                Box::new(move |m: &[u8]| {
                    use ed25519_dalek::Signer;
                    k.sign(m).to_bytes().to_vec()
                }),
            )
        }
        _ => {
            let k = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
            let point = k.verifying_key().to_encoded_point(false);
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())});
            (
                jwk,
                Box::new(move |m: &[u8]| {
                    use p256::ecdsa::signature::Signer;
                    let s: p256::ecdsa::Signature = k.sign(m);
                    s.to_bytes().to_vec()
                }),
            )
        }
    };
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": alg.as_str(), "jwk": jwk});
    let claims = serde_json::json!({
        "jti": B64.encode(rand::random::<[u8; 16]>()),
        "htm": "GET",
        "htu": htu,
        "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        "ath": B64.encode(sha2::Sha256::digest(token.as_bytes())),
    });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = sign(input.as_bytes());
    (format!("{input}.{}", B64.encode(signature)), htu)
}
