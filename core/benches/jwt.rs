//! JWT access tokens (RFC 9068) beside opaque ones, single-threaded, memory
//! store: what a resource server pays per request to validate a token, and
//! what the token endpoint pays to issue one.
//!
//! `cargo bench -p tessera --bench jwt`. Printed per operation: criterion's
//! estimate; the summary at the end gives each JWT figure as a ratio of
//! its opaque counterpart, measured in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::Criterion;
use tessera::{
    AccessTokenValidator, Client, ClientId, Endpoint, HttpRequest, JwsAlgorithm, KeySet,
    RotatingKeys, Scope, ScopeToken, SecretHash, Server,
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

fn median_ns(c: &mut Criterion, name: &str, f: impl FnMut() + Copy) -> f64 {
    let mut f = f;
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < std::time::Duration::from_millis(300) {
        f();
        n += 1;
    }
    c.bench_function(name, |b| b.iter(f));
    start.elapsed().as_nanos() as f64 / n as f64
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

        let o = median_ns(&mut c, "verify_bearer/opaque (memory store)", || {
            rt.block_on(async {
                black_box(
                    opaque
                        .verify_bearer(Some(&opaque_header), None)
                        .await
                        .unwrap(),
                );
            })
        });
        let local = median_ns(&mut c, &format!("validate/{alg} (local, no store)"), || {
            black_box(validator.validate(black_box(&jwt_token), now).unwrap());
        });
        let full = median_ns(
            &mut c,
            &format!("verify_bearer/{alg} (signature + store)"),
            || {
                rt.block_on(async {
                    black_box(jwt.verify_bearer(Some(&jwt_header), None).await.unwrap());
                })
            },
        );
        let issue_o = median_ns(&mut c, "token endpoint/opaque", || {
            rt.block_on(async {
                black_box(issue(&opaque, &auth).await);
            })
        });
        let issue_j = median_ns(&mut c, &format!("token endpoint/{alg}"), || {
            rt.block_on(async {
                black_box(issue(&jwt, &auth).await);
            })
        });
        rows.push((alg, o, local, full, issue_o, issue_j));
    }
    println!("\nper operation, one thread (rough: 300 ms of calls each):");
    for (alg, o, local, full, issue_o, issue_j) in rows {
        println!(
            "{alg}: opaque verify_bearer {o:.0} ns | JWT local validate {local:.0} ns ({:.1}x) | JWT verify_bearer {full:.0} ns ({:.1}x) | token endpoint opaque {issue_o:.0} ns, JWT {issue_j:.0} ns: {:.2}x the opaque req/s",
            local / o,
            full / o,
            issue_o / issue_j
        );
    }
    c.final_summary();
}
