//! `--store postgres://...`: the demo on a fresh database of its own on the
//! test server (`TESSERA_POSTGRES_URL`, as `scripts/test.sh` and
//! `storage-postgres/scripts/postgres-up.sh` set it). Without it the test
//! fails, unless `TESSERA_POSTGRES_SKIP=1`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use photobook::{Demo, StoreSpec, build_server};
use reqwest::StatusCode;
use sqlx::migrate::MigrateDatabase;
use tessera::ClientId;

/// A new, empty database on the test server; its URL. `None`: skipped.
async fn fresh_database() -> Option<String> {
    let base = match std::env::var("TESSERA_POSTGRES_URL") {
        Ok(v) if !v.trim().is_empty() => v,
        _ if std::env::var("TESSERA_POSTGRES_SKIP").is_ok_and(|v| v == "1") => {
            eprintln!("skipped: TESSERA_POSTGRES_URL is not set and TESSERA_POSTGRES_SKIP=1");
            return None;
        }
        _ => panic!(
            "TESSERA_POSTGRES_URL is not set: this test runs the demo on PostgreSQL. Start one \
             with `eval \"$(storage-postgres/scripts/postgres-up.sh)\"`, or set \
             TESSERA_POSTGRES_SKIP=1 to skip."
        ),
    };
    let mut url = url::Url::parse(base.trim()).unwrap();
    url.set_path(&format!("/photobook_{:016x}", rand_u64()));
    sqlx::Postgres::create_database(url.as_str()).await.unwrap();
    Some(url.to_string())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

#[tokio::test]
async fn demo_runs_on_postgres_and_seeds_only_an_empty_store() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let spec = StoreSpec::Postgres(url.clone());
    let printshop = ClientId::new("printshop").unwrap();

    // First start: the four clients are written.
    let store = photobook::store::open(&spec).await.unwrap();
    // The operator's own connection to the same database.
    let operator = tessera_postgres::PostgresStore::connect(url.clone())
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
    operator.put_client(&changed).await.unwrap();
    let reopened = photobook::store::open(&spec).await.unwrap();
    assert_eq!(
        reopened.client(&printshop).await.unwrap().unwrap().name,
        "PrintShop (renamed)"
    );

    // The whole dance on PostgreSQL: pending request, code, tokens, photos.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let demo = Demo::new(build_server(&issuer, reopened).unwrap()).unwrap();
    let app = photo_provider::app(demo.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let provider = Provider { issuer, demo };
    let browser = browser();
    let (verifier, challenge) = pkce("postgres");
    let query = printshop_request("on postgres", &challenge, "photos.read");
    let consent =
        sign_in_to_consent(&provider, &browser, &query, "alice", "alice-password-1").await;
    assert!(consent.html.contains("PrintShop (renamed)"));
    let response = decide(&provider, &browser, &consent, "allow").await;
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "state"), Some("on postgres"));
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

    // The grants really are in PostgreSQL: the two access tokens (and the
    // refresh token) issued above are rows of the `tessera` schema.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let access: i64 = sqlx::query_scalar("SELECT count(*) FROM tessera.access_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let refresh: i64 = sqlx::query_scalar("SELECT count(*) FROM tessera.refresh_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!((access, refresh), (2, 1));
}
