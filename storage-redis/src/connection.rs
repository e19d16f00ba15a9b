//! The connection: one server (reconnecting) or a cluster (following its
//! topology), opened within the connect timeout; every call bounded by the
//! command timeout.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Value};
use tessera::StoreError;

use crate::errors::{ConnectError, map_err};

/// What to connect to.
#[derive(Clone)]
pub(crate) enum Target {
    Single(String),
    Cluster(Vec<String>),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Single(url) => f.debug_tuple("Single").field(&redact(url)).finish(),
            Target::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// A URL fit for errors and logs: a password in it is replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{hidden}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// The connection: a reconnecting single-server manager or a cluster connection.
/// Both are cheap handles over one multiplexed connection (per node), cloned per call.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects to `target`; answers the connection and the (redacted)
    /// target for errors.
    pub(crate) async fn open(
        target: &Target,
        command_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<(Self, String), ConnectError> {
        let per_try = command_timeout.min(connect_timeout);
        Ok(match target {
            Target::Single(url) => {
                let client =
                    redis::Client::open(url.as_str()).map_err(|e| ConnectError::InvalidUrl {
                        url: redact(url),
                        reason: e.to_string(),
                    })?;
                // Reconnection: quick, capped backoff so a restarted server is
                // found again within about half a second; the command timeout
                // still bounds every call while it is down.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(per_try))
                    // Every call is bounded by `bounded` (the command
                    // timeout, reconnection waits included); a second
                    // timer per command inside the connection would only
                    // cost a timer-wheel entry per request.
                    .set_response_timeout(None)
                    .set_min_delay(Duration::from_millis(20))
                    .set_max_delay(Duration::from_millis(500))
                    .set_number_of_retries(3);
                let unreachable = |reason: String| ConnectError::Unreachable {
                    target: redact(url),
                    reason,
                };
                let manager = tokio::time::timeout(
                    connect_timeout,
                    ConnectionManager::new_with_config(client, config),
                )
                .await
                .map_err(|_| unreachable(format!("timed out after {connect_timeout:?}")))?
                .map_err(|e| unreachable(e.to_string()))?;
                (Conn::Single(manager), redact(url))
            }
            Target::Cluster(urls) => {
                if urls.is_empty() {
                    return Err(ConnectError::NoNodes);
                }
                let joined = urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(",");
                let client =
                    redis::cluster::ClusterClient::builder(urls.iter().map(String::as_str))
                        .connection_timeout(per_try)
                        .response_timeout(command_timeout)
                        .retries(3)
                        .min_retry_wait(10)
                        .max_retry_wait(200)
                        .build()
                        .map_err(|e| ConnectError::InvalidUrl {
                            url: joined.clone(),
                            reason: e.to_string(),
                        })?;
                let unreachable = |reason: String| ConnectError::Unreachable {
                    target: joined.clone(),
                    reason,
                };
                let conn = tokio::time::timeout(connect_timeout, client.get_async_connection())
                    .await
                    .map_err(|_| unreachable(format!("timed out after {connect_timeout:?}")))?
                    .map_err(|e| unreachable(e.to_string()))?;
                (Conn::Cluster(conn), joined)
            }
        })
    }

    pub(crate) async fn query(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    /// Several commands in one write and one read (a pipeline, not a
    /// transaction), bounded by `timeout`. On a cluster, every key must
    /// be in one slot (the callers' keys share a grant's hash tag).
    pub(crate) async fn exec_pipe(
        &self,
        pipe: &redis::Pipeline,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        bounded(timeout, async {
            match self {
                Conn::Single(c) => pipe.query_async::<()>(&mut c.clone()).await,
                Conn::Cluster(c) => pipe.query_async::<()>(&mut c.clone()).await,
            }
        })
        .await
    }

    /// One command, bounded by `timeout`.
    pub(crate) async fn exec(&self, cmd: &Cmd, timeout: Duration) -> Result<Value, StoreError> {
        bounded(timeout, self.query(cmd)).await
    }
}

/// A call to Redis bounded by `t`: a timeout is `Unavailable`, a Redis
/// failure is mapped by [`map_err`].
pub(crate) async fn bounded<T>(
    t: Duration,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(t, call).await {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(StoreError::unavailable(format!(
            "Redis did not answer within {t:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisStore;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(redact("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("rediss://bob:s3cret@h:1/"), "rediss://bob:***@h:1/");
        assert_eq!(redact("redis://token@h/"), "redis://***@h/");
        assert_eq!(redact("redis://h/x@y"), "redis://h/x@y");
        assert_eq!(redact("nonsense"), "nonsense");
        let b = RedisStore::connect("redis://u:pw@h:1/");
        assert!(!format!("{b:?}").contains("pw"));
    }
}
