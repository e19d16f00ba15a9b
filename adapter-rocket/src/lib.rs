//! Placeholder: implemented in a later step.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
