//! Migration 0003 (resource indicators, RFC 8707): the `audience` columns
//! are generated from the records' JSON, so operators can query tokens by
//! resource, and they agree with what the store hands back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{key, now, tokens};
use tessera::storage::{CodeTake, GrantStore};
use tessera::{ResourceIndicator, TokenKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_columns_follow_the_records() {
    let Some(url) = common::url() else { return };
    let store = common::fresh(&url).await;
    let s = store.schema().to_owned();
    let mut raw = common::raw(&url).await;
    let now = now();
    let mcp = ResourceIndicator::new("https://rs.example/mcp").unwrap();

    let g = common::grant();
    let (a, r, mut t) = tokens(g, now, true);
    t.access.1.audience = Some(mcp.clone());
    if let Some((_, refresh)) = t.refresh.as_mut() {
        refresh.audience = Some(mcp.clone());
    }
    assert!(store.issue(g, t).await.unwrap());
    let c = key(TokenKind::Code, g);
    let mut code = common::code(now, 60);
    code.audience = Some(mcp.clone());
    store.put_code(c, code.clone()).await.unwrap();
    // One grant without an audience: its column is NULL.
    let g2 = common::grant();
    let (a2, _, t2) = tokens(g2, now, false);
    assert!(store.issue(g2, t2).await.unwrap());

    let column = |table: &str, k: tessera::SecretKey| {
        let query =
            format!("SELECT audience FROM \"{s}\".{table} WHERE grant_id = $1 AND hash = $2");
        (query, k)
    };
    for (table, k, want) in [
        ("access_tokens", a, Some(mcp.as_str())),
        ("refresh_tokens", r.unwrap(), Some(mcp.as_str())),
        ("codes", c, Some(mcp.as_str())),
        ("access_tokens", a2, None),
    ] {
        let (query, k) = column(table, k);
        let got: Option<String> = sqlx::query_scalar(&query)
            .bind(&k.grant.0[..])
            .bind(&k.hash.0[..])
            .fetch_one(&mut raw)
            .await
            .unwrap();
        assert_eq!(got.as_deref(), want, "{table}");
    }
    // And the store hands the audience back.
    assert_eq!(
        store
            .access_token(a, now)
            .await
            .unwrap()
            .and_then(|r| r.audience),
        Some(mcp.clone())
    );
    assert_eq!(
        store.take_code(c, now).await.unwrap(),
        CodeTake::Taken(code)
    );
}
