//! Why connecting failed, and Redis failures as `StoreError`s.

use redis::RedisError;
use tessera::StoreError;

/// Why connecting to Redis failed. URLs in it have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A URL could not be parsed as a Redis URL.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A cluster was asked for without any node URL.
    #[error("no Redis Cluster node URL given")]
    NoNodes,
    /// The key prefix contains `{` or `}`, which would break the per-grant hash tags.
    #[error("invalid key prefix {0:?}: it must not contain '{{' or '}}'")]
    InvalidPrefix(String),
    /// The server or cluster did not answer in time or refused the connection.
    #[error("cannot reach Redis at {target}: {reason}")]
    Unreachable {
        /// The URL(s) tried.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<ConnectError> for StoreError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Unreachable { .. } => StoreError::unavailable(e),
            _ => StoreError::other(e),
        }
    }
}

/// Maps a Redis failure: unreachable or overloaded is `Unavailable`, a
/// foreign value type is `Corrupt`, anything else `Other`.
pub(crate) fn map_err(e: RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    if e.code() == Some("WRONGTYPE") {
        return StoreError::corrupt(e);
    }
    // A Redis at `maxmemory` with `noeviction` refuses writes with OOM: the
    // store is full, not broken, and reads still work; retrying later may
    // succeed (RFC 6749 §5.2 `temporarily_unavailable`, never a 500).
    if e.code() == Some("OOM") {
        return StoreError::unavailable(e);
    }
    let unavailable = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        // Redirections left over after the client's retries:
                        // the cluster's topology is in flux (a master down).
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        );
    if unavailable {
        StoreError::unavailable(e)
    } else {
        StoreError::other(e)
    }
}
