//! Two instances of a resource server sharing a real Redis as their DPoP
//! replay store (RFC 9449 §11.1): a proof accepted by one is refused by the
//! other, for both remote verifiers; 16 requests racing one proof across
//! both get one acceptance. Needs `TESSERA_REDIS_URL`
//! (`storage-redis/scripts/redis-up.sh`), or `TESSERA_REDIS_SKIP=1` to skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../core/tests/dpop_client/mod.rs"]
mod dpop_client;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tessera::storage::ReplayStore;
use tessera::{RemoteResource, SharedVerifier, TokenVerifier};
use tessera_axum::Bearer;
use tessera_redis::RedisStore;
use tessera_resource_server::{IntrospectionVerifier, JwksVerifier};

use common::{API_SECRET, As, api, listener};
use dpop_client::DpopKey;

/// The standalone Redis's URL; `None` (skip) only with `TESSERA_REDIS_SKIP=1`.
fn redis_url() -> Option<String> {
    match std::env::var("TESSERA_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("TESSERA_REDIS_SKIP").is_ok_and(|v| v == "1") => {
            eprintln!("skipped: TESSERA_REDIS_URL is not set and TESSERA_REDIS_SKIP=1");
            None
        }
        _ => panic!(
            "TESSERA_REDIS_URL is not set: this test needs a standalone redis-server. Start one \
             with storage-redis/scripts/redis-up.sh ENVFILE (and source it), or set \
             TESSERA_REDIS_SKIP=1 to skip."
        ),
    }
}

/// A store on `url` under `prefix`: one per resource server instance, as
/// two processes would each connect.
async fn store(url: &str, prefix: &str) -> Arc<dyn ReplayStore> {
    Arc::new(
        RedisStore::connect(url)
            .prefix(prefix)
            .command_timeout(Duration::from_secs(5))
            .await
            .expect("connect to TESSERA_REDIS_URL"),
    )
}

async fn photos<V: TokenVerifier + Clone>(token: Bearer<V>) -> String {
    token.client_id.to_string()
}

async fn dpop_across_instances(jwks: bool) {
    let Some(url) = redis_url() else {
        return;
    };
    let prefix = format!("tessera-rs-test-{:016x}", rand::random::<u64>());
    let (l1, rs1) = listener().await;
    let (l2, rs2) = listener().await;
    let auth = As::start(rs1).await;
    // Clients address both instances at one public origin.
    let public = format!("http://{rs1}");
    let rs = RemoteResource::new(&auth.issuer, api(rs1)).with_origin(&public);
    for l in [l1, l2] {
        let replay = store(&url, &prefix).await;
        let verifier = if jwks {
            SharedVerifier::new(
                JwksVerifier::builder(rs.clone())
                    .jwks_uri(format!("{}/jwks", auth.issuer))
                    .replay_store(replay)
                    .build()
                    .unwrap(),
            )
        } else {
            SharedVerifier::new(
                IntrospectionVerifier::builder(rs.clone(), "photo-api", API_SECRET)
                    .replay_store(replay)
                    .build()
                    .unwrap(),
            )
        };
        let app = Router::new()
            .route("/api/photos", get(photos::<SharedVerifier>))
            .with_state(verifier);
        tokio::spawn(async move { axum::serve(l, app).await });
    }
    let client = if jwks { "backup-job" } else { "opaque-job" };
    let key = DpopKey::es256();
    let answer = auth
        .dpop_token(
            client,
            &key.proof("POST", &format!("{}/token", auth.issuer), None),
        )
        .await;
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let htu = format!("{public}/api/photos");
    let http = reqwest::Client::new();
    let send = |rs: std::net::SocketAddr, proof: String| {
        http.get(format!("http://{rs}/api/photos"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let proof = key.proof("GET", &htu, Some(&token));
    let r = send(rs1, proof.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "jwks {jwks}: first use at instance 1");
    let r = send(rs2, proof).await.unwrap();
    assert_eq!(r.status(), 401, "jwks {jwks}: replayed at instance 2");
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    let r = send(rs2, key.proof("GET", &htu, Some(&token)))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "jwks {jwks}: a fresh proof at instance 2");

    // One proof raced by 16 requests split across both: one acceptance.
    let proof = key.proof("GET", &htu, Some(&token));
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..16 {
        let url = format!("http://{}/api/photos", if i % 2 == 0 { rs1 } else { rs2 });
        let (http, token, proof) = (http.clone(), token.clone(), proof.clone());
        racers.spawn(async move {
            http.get(url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = racers.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "jwks {jwks}: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_verifiers_on_one_redis_use_each_dpop_proof_once() {
    dpop_across_instances(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_verifiers_on_one_redis_use_each_dpop_proof_once() {
    dpop_across_instances(false).await;
}
