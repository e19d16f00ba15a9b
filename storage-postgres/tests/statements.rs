//! Statements per grant step, counted on the wire by a proxy (extended
//! protocol `Execute` messages, and simple `Query`s): every store method is
//! exactly one statement, so each is atomic on the server by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Proxy, code, key, now, tokens};
use tessera::storage::{GrantStore, PendingStore};
use tessera::{ClientId, ClientRegistry, TokenKind};
use tessera_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_is_one_statement() {
    let Some(url) = common::url() else { return };
    let proxy = Proxy::start(common::socket_of(&url)).await;
    let store = PostgresStore::connect(proxy.url_for(&url))
        .schema(common::unique_schema())
        .max_connections(1)
        .command_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    let now = now();
    let g = common::grant();
    let c = key(TokenKind::Code, g);
    let (a, r, t) = tokens(g, now, true);
    let (_, _, t2) = tokens(g, now, true);
    let p = key(TokenKind::Pending, common::grant());
    let id = ClientId::new("printshop").unwrap();

    let mut counts = Vec::new();
    let mut last = proxy.statements();
    macro_rules! step {
        ($name:literal, $call:expr) => {{
            $call.await.unwrap();
            let n = proxy.statements();
            counts.push(($name, n - last));
            #[allow(unused_assignments)]
            {
                last = n;
            }
        }};
    }
    step!("put_code", store.put_code(c, code(now, 60)));
    step!("take_code", store.take_code(c, now));
    step!("issue", store.issue(g, t.clone()));
    step!("access_token", store.access_token(a, now));
    step!("refresh_token", store.refresh_token(r.unwrap(), now));
    step!("rotate_refresh", store.rotate_refresh(r.unwrap(), t2, now));
    step!("revoke_access_token", store.revoke_access_token(a));
    step!("revoke_grant", store.revoke_grant(g));
    step!(
        "put_pending",
        store.put_pending(p, common::pending(now, 60))
    );
    step!("get_pending", store.get_pending(p, now));
    step!("take_pending", store.take_pending(p, now));
    step!("client", store.client(&id));
    step!("is_empty", store.is_empty());
    eprintln!("statements per step: {counts:?}");
    for (name, n) in counts {
        assert_eq!(n, 1, "{name} ran {n} statements");
    }
}
