//! The command line and process life of the demo programs (the two
//! providers, PrintShop, photo-cli and `tessera-bench`), kept in one place
//! so they all behave alike:
//!
//! - [`flags`]: a flag error is one line on stderr and exit status 2, with
//!   clap's details and without anything that could break the line or
//!   show a password;
//! - [`shutdown`]: Ctrl-C or SIGTERM stops a server gracefully, and within
//!   a bound, whatever its clients do.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod flags;
pub mod shutdown;
