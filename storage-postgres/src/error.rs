//! How database failures become [`StoreError`]s and [`ConnectError`]s.

use tessera::StoreError;

/// Why opening a [`PostgresStore`](crate::PostgresStore) failed. URLs in it
/// have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a PostgreSQL connection URL sqlx understands.
    #[error("invalid PostgreSQL URL {url}: {reason}")]
    InvalidUrl {
        /// The URL as given, password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The schema name is not a plain lower-case identifier.
    #[error("invalid schema name {0:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit")]
    InvalidSchema(String),
    /// The server did not answer in time, or refused the connection.
    #[error("cannot reach PostgreSQL at {target}: {reason}")]
    Unreachable {
        /// The URL tried, password masked.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered but refused us: authentication failed, the
    /// database does not exist, no permission to create the schema, ...
    #[error("PostgreSQL at {target} refused: {reason}")]
    Refused {
        /// The URL tried, password masked.
        target: String,
        /// What the server said.
        reason: String,
    },
    /// Creating the schema or running the migrations failed.
    #[error("cannot migrate the Tessera schema at {target}: {reason}")]
    Migration {
        /// The URL tried, password masked.
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

/// SQLSTATEs after which retrying later may work: the server is going away
/// or starting (57P0x), out of resources (53xxx), a connection failure (08xxx),
/// a statement or lock timeout (57014, 55P03), a serialization failure or
/// deadlock (40001, 40P01), a read-only standby (25006).
fn transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P05" | "57014" | "55P03" | "40001" | "40P01" | "25006"
        )
}

/// Maps a sqlx failure, keeping it as the source: unreachable, timed out or
/// overloaded is `Unavailable`, an undecodable value `Corrupt`, anything else
/// `Other`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            StoreError::unavailable(e)
        }
        E::Database(db) if db.code().is_some_and(|c| transient(&c)) => StoreError::unavailable(e),
        E::Decode(_) | E::ColumnDecode { .. } => StoreError::corrupt(e),
        _ => StoreError::other(e),
    }
}

/// Whether a connect failure means the server could not be reached (as
/// opposed to reached and refusing).
pub(crate) fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // Too many connections or starting up / shutting down: try later.
            c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
        }),
        _ => false,
    }
}

/// A connection URL fit for errors and logs: a password in the user info or
/// in a `password=` query parameter is replaced by `***`. A URL that does not
/// parse is not echoed at all (it may hold a password in a shape we do not
/// recognise).
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(unparseable URL)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let r = redact("postgres://h/db?user=u&password=s3cret&sslmode=disable");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("sslmode=disable"), "{r}");
        assert_eq!(redact("not a url s3cret"), "(unparseable URL)");
    }

    #[test]
    fn transient_states() {
        for c in ["08006", "57P01", "53300", "57014", "40001"] {
            assert!(transient(c), "{c}");
        }
        for c in ["23505", "42P01", "22P02"] {
            assert!(!transient(c), "{c}");
        }
    }

    #[test]
    fn io_and_pool_timeouts_are_unavailable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(map_err(io), StoreError::Unavailable(_)));
        assert!(matches!(
            map_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::Decode("bad".into())),
            StoreError::Corrupt(_)
        ));
        // The source is kept.
        let e = map_err(sqlx::Error::PoolTimedOut);
        assert!(std::error::Error::source(&e).is_some());
    }
}
