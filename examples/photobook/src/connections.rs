//! How many connections a provider may hold open at once.
//!
//! Every open connection holds a file descriptor. Once a process has used
//! up its limit, `accept` fails for everybody: a flood of connections that
//! send nothing (or a request head a byte at a time) then stops every
//! other user's logins and token requests, though it costs the attacker
//! nothing but sockets. Two defences, both at start-up:
//!
//! - [`raise_open_file_limit`]: the soft limit on open files raised to the
//!   hard one (often 1,024 against 524,288 under systemd), as the Go
//!   runtime does for every program;
//! - [`max_connections`]: the bound a server keeps below that limit,
//!   leaving room for the store's connections, log files and the like.
//!   `photo-provider` closes the quietest connection to admit a new one at
//!   that bound (`photo_provider::connections`); Rocket 0.5 serves its own
//!   listener, so `photo-provider-rocket` relies on the raised limit alone
//!   (the manual's deployment notes: put a proxy that bounds connections
//!   in front of it).

/// Descriptors kept for everything but client connections: the store's
/// pool, log files, the listener itself.
pub const RESERVED_DESCRIPTORS: u64 = 128;

/// The fewest connections [`max_connections`] allows, whatever the limit.
pub const MIN_CONNECTIONS: usize = 16;

/// The most connections [`max_connections`] allows, whatever the limit: a
/// table this size is scanned when full, and one process on this demo's
/// scale does not serve more clients at once.
pub const MAX_CONNECTIONS: usize = 16_384;

/// Raises the soft limit on open files to the hard limit; the limit now in
/// force, `None` where it cannot be read (not a Unix system).
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return limit.maximum;
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many client connections to hold at once under an open-file limit
/// of `limit` (unknown or unlimited: as high as allowed): the limit less
/// [`RESERVED_DESCRIPTORS`], between [`MIN_CONNECTIONS`] and
/// [`MAX_CONNECTIONS`].
pub fn max_connections(limit: Option<u64>) -> usize {
    let usable = limit.map_or(u64::MAX, |l| l.saturating_sub(RESERVED_DESCRIPTORS));
    usize::try_from(usable)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_room_below_the_limit() {
        assert_eq!(max_connections(Some(1024)), 1024 - 128);
        assert_eq!(max_connections(Some(100)), MIN_CONNECTIONS);
        assert_eq!(max_connections(None), MAX_CONNECTIONS);
        assert_eq!(max_connections(Some(524_288)), MAX_CONNECTIONS);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let raised = raise_open_file_limit();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(raised, now.current);
        assert_eq!(now.current, now.maximum);
    }
}
