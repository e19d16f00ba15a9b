//! `MemoryStore` answers client lookups at hand (without a future), and
//! exactly as `client` does: the server's fast path must not change answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera::{Client, ClientId, ClientRegistry, SecretHash};
use tessera_memory::MemoryStore;

#[tokio::test]
async fn client_at_hand_agrees_with_client() {
    let id = ClientId::new("app").unwrap();
    let store =
        MemoryStore::with_clients([Client::confidential(id.clone(), "App", SecretHash::of("s"))]);
    let at_hand = store.client_at_hand(&id).unwrap();
    let looked_up = store.client(&id).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&at_hand, &looked_up));
    let other = ClientId::new("other").unwrap();
    assert!(store.client_at_hand(&other).is_none());
    assert!(store.client(&other).await.unwrap().is_none());
    store.remove_client(&id);
    assert!(store.client_at_hand(&id).is_none());
}
