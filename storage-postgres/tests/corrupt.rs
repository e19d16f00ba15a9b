//! Rows whose JSON body is not the record: every method answers
//! `StoreError::Corrupt` or a clean answer, never panics, never `Other`;
//! a corrupt code is spent, never handed out later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{code, key, now, tokens};
use sqlx::Executor;
use tessera::storage::{CodeTake, GrantStore, PendingStore};
use tessera::{Client, ClientId, ClientRegistry, StoreError, TokenKind};

/// JSON bodies that are valid JSON (the column is `jsonb`) but no record.
const FOREIGN: &[&str] = &[
    "null",
    "\"text\"",
    "[1,2,3]",
    "{}",
    "{\"expires_at\": \"tomorrow\"}",
    "{\"client_id\": 5, \"expires_at\": 99999999999}",
    "{\"client_id\": \"c\", \"scope\": \"bad scope \\\\\", \"expires_at\": 99999999999}",
    "{\"client_id\": \"\", \"expires_at\": 1e300}",
];

#[track_caller]
fn corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "{what}: expected Corrupt, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_corrupt() {
    let Some(url) = common::url() else { return };
    let store = common::fresh(&url).await;
    let s = store.schema().to_owned();
    let mut raw = common::raw(&url).await;
    let now = now();

    for (i, body) in FOREIGN.iter().enumerate() {
        let ctx = |slot: &str| format!("foreign body #{i} {body} as {slot}");
        let set = |table: &str| {
            format!(
                "UPDATE \"{s}\".{table} SET record = $1::jsonb WHERE grant_id = $2 AND hash = $3"
            )
        };
        let g = common::grant();
        let c = key(TokenKind::Code, g);
        store.put_code(c, code(now, 60)).await.unwrap();
        let (a, r, t) = tokens(g, now, true);
        assert!(store.issue(g, t).await.unwrap());
        let r = r.unwrap();
        for (table, k) in [("codes", c), ("access_tokens", a), ("refresh_tokens", r)] {
            let done = sqlx::query(&set(table))
                .bind(*body)
                .bind(&k.grant.0[..])
                .bind(&k.hash.0[..])
                .execute(&mut raw)
                .await
                .unwrap();
            assert_eq!(done.rows_affected(), 1, "{table}");
        }

        corrupt(&ctx("code"), store.take_code(c, now).await);
        // The corrupt code was spent by that take: it is never handed out.
        assert_eq!(
            store.take_code(c, now).await.unwrap(),
            CodeTake::AlreadyTaken,
            "{}",
            ctx("code, again")
        );
        corrupt(&ctx("access token"), store.access_token(a, now).await);
        corrupt(&ctx("refresh token"), store.refresh_token(r, now).await);
        // Rotation compares columns, not bodies: a clean answer.
        assert!(
            store
                .rotate_refresh(r, tokens(g, now, true).2, now)
                .await
                .is_ok(),
            "{}",
            ctx("rotate")
        );
        store.revoke_access_token(a).await.unwrap();
        store.revoke_grant(g).await.unwrap();

        let p = key(TokenKind::Pending, common::grant());
        store
            .put_pending(p, common::pending(now, 600))
            .await
            .unwrap();
        sqlx::query(&set("pending"))
            .bind(*body)
            .bind(&p.grant.0[..])
            .bind(&p.hash.0[..])
            .execute(&mut raw)
            .await
            .unwrap();
        corrupt(&ctx("pending, get"), store.get_pending(p, now).await);
        corrupt(&ctx("pending, take"), store.take_pending(p, now).await);
        assert_eq!(store.take_pending(p, now).await.unwrap(), None);

        let id = ClientId::new(format!("client-{i}")).unwrap();
        sqlx::query(&format!(
            "INSERT INTO \"{s}\".clients (id, record) VALUES ($1, $2::jsonb)"
        ))
        .bind(id.as_str())
        .bind(*body)
        .execute(&mut raw)
        .await
        .unwrap();
        corrupt(&ctx("client"), store.client(&id).await);
    }
}

#[tokio::test]
async fn a_client_stored_under_another_id_is_corrupt() {
    let Some(url) = common::url() else { return };
    let store = common::fresh(&url).await;
    let mut raw = common::raw(&url).await;
    let alice = ClientId::new("alice-app").unwrap();
    let json = serde_json::to_string(&Client::public(alice, "Alice")).unwrap();
    raw.execute(
        sqlx::query(&format!(
            "INSERT INTO \"{}\".clients (id, record) VALUES ('mallory-app', $1::jsonb)",
            store.schema()
        ))
        .bind(json),
    )
    .await
    .unwrap();
    let mallory = ClientId::new("mallory-app").unwrap();
    corrupt("client under another id", store.client(&mallory).await);
}

#[tokio::test]
async fn clients_round_trip_and_seed_only_an_empty_store() {
    let Some(url) = common::url() else { return };
    let store = common::fresh(&url).await;
    assert!(store.is_empty().await.unwrap());
    let id = ClientId::new("printshop").unwrap();
    assert_eq!(store.client(&id).await.unwrap(), None);
    let client = Client::confidential(
        id.clone(),
        "PrintShop",
        tessera::SecretHash::of("a 256-bit secret"),
    );
    store.put_client(&client).await.unwrap();
    store.put_client(&client).await.unwrap(); // an upsert: harmless twice
    assert!(!store.is_empty().await.unwrap());
    assert_eq!(store.client(&id).await.unwrap().as_deref(), Some(&client));
    // Another schema is another store.
    assert!(common::fresh(&url).await.is_empty().await.unwrap());
    assert!(store.remove_client(&id).await.unwrap());
    assert!(!store.remove_client(&id).await.unwrap());
    assert!(store.is_empty().await.unwrap());
}
