//! `--store redis://...`: the demo on a throwaway `redis-server` of its own
//! (skipped, with a note, when `redis-server` is not installed).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use photobook::{Demo, StoreSpec, build_server};
use reqwest::StatusCode;
use tessera::ClientId;

/// A `redis-server` child, killed when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Option<Redis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("skipped: redis-server is not installed");
        return None;
    };
    let redis = Redis {
        child,
        url: format!("redis://127.0.0.1:{port}/0"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(redis)
}

#[tokio::test]
async fn demo_runs_on_redis_and_seeds_only_an_empty_store() {
    let Some(redis) = start_redis() else { return };
    let spec = StoreSpec::Redis(redis.url.clone());
    let printshop = ClientId::new("printshop").unwrap();

    // First start: the four clients are written.
    let store = photobook::store::open(&spec).await.unwrap();
    // The operator's own connection to the same Redis.
    let redis_store = tessera_redis::RedisStore::connect(redis.url.clone())
        .await
        .unwrap();
    for id in ["printshop", "photo-cli", "backup-job", "photo-api"] {
        assert!(
            store
                .client(&ClientId::new(id).unwrap())
                .await
                .unwrap()
                .is_some(),
            "{id} seeded"
        );
    }
    // An operator changes a client; a restart does not overwrite it.
    let mut changed = (*store.client(&printshop).await.unwrap().unwrap()).clone();
    changed.name = "PrintShop (renamed)".into();
    redis_store.put_client(&changed).await.unwrap();
    let reopened = photobook::store::open(&spec).await.unwrap();
    assert_eq!(
        reopened.client(&printshop).await.unwrap().unwrap().name,
        "PrintShop (renamed)"
    );

    // The whole dance on Redis: pending request, code, tokens, photos.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let demo = Demo::new(build_server(&issuer, reopened).unwrap()).unwrap();
    let app = photo_provider::app(demo.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let provider = Provider { issuer, demo };
    let browser = browser();
    let (verifier, challenge) = pkce("redis");
    let query = printshop_request("on redis", &challenge, "photos.read");
    let consent =
        sign_in_to_consent(&provider, &browser, &query, "alice", "alice-password-1").await;
    assert!(consent.html.contains("PrintShop (renamed)"));
    let response = decide(&provider, &browser, &consent, "allow").await;
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "state"), Some("on redis"));
    let (status, body) = token(
        &provider,
        ("printshop", Some(PRINTSHOP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", param(&params, "code").unwrap()),
            ("redirect_uri", PRINTSHOP_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: serde_json::Value = photos(&provider, body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["owner"], "alice");
    assert_eq!(list["photos"].as_array().unwrap().len(), 3);

    let (status, body) = token(
        &provider,
        ("backup-job", Some(BACKUP_SECRET)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: serde_json::Value = photos(&provider, body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["owner"], "backup-job");
    assert_eq!(list["photos"].as_array().unwrap().len(), 5);
}
