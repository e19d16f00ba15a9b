//! Client-cache invalidation: a task subscribed to `<prefix>clients:changed`
//! drops the ids it hears from the [`ClientCache`], and marks the cache
//! live only while it is subscribed (see `client_cache.rs` for the
//! guarantee). On a cluster, `PUBLISH` reaches every node, so the task
//! subscribes on any node it can reach.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use tessera::ClientId;
use tokio::sync::watch;

use crate::client_cache::ClientCache;
use crate::connection::{Target, redact};

/// Aborts the subscription task when the store's last clone is dropped.
pub(crate) struct Subscription {
    task: tokio::task::AbortHandle,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the task; answers its handle and a receiver that turns `true`
/// when the first subscription is up.
pub(crate) fn spawn(
    target: &Target,
    channel: String,
    cache: &Arc<ClientCache>,
    connect_timeout: Duration,
) -> (Subscription, watch::Receiver<bool>) {
    let urls = match target {
        Target::Single(url) => vec![url.clone()],
        Target::Cluster(urls) => urls.clone(),
    };
    let (up_tx, up_rx) = watch::channel(false);
    let cache = Arc::downgrade(cache);
    let task = tokio::spawn(listen(urls, channel, cache, connect_timeout, up_tx));
    (
        Subscription {
            task: task.abort_handle(),
        },
        up_rx,
    )
}

async fn listen(
    urls: Vec<String>,
    channel: String,
    cache: Weak<ClientCache>,
    connect_timeout: Duration,
    up: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    for url in urls.iter().cycle() {
        let subscribed = tokio::time::timeout(connect_timeout, async {
            let mut pubsub = redis::Client::open(url.as_str())?
                .get_async_pubsub()
                .await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                let Some(c) = cache.upgrade() else { return };
                c.set_live(true);
                drop(c);
                let _ = up.send(true);
                backoff = Duration::from_millis(50);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(c) = cache.upgrade() else { return };
                    let id = msg.get_payload::<String>().ok().and_then(ClientId::new);
                    match id {
                        Some(id) => c.invalidate(&id),
                        // Not a client id: forget everything rather than guess.
                        None => c.clear(),
                    }
                }
                let Some(c) = cache.upgrade() else { return };
                c.set_live(false);
                tracing::warn!(node = %redact(url), "client cache: invalidation subscription lost; cache bypassed until it is back");
            }
            Ok(Err(e)) => {
                tracing::warn!(node = %redact(url), error = %e, "client cache: cannot subscribe to invalidations; cache bypassed");
            }
            Err(_) => {
                tracing::warn!(node = %redact(url), "client cache: subscribing to invalidations timed out; cache bypassed");
            }
        }
        if cache.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
